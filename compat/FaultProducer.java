// An idempotent Java producer for the fault tests (tests/compat_clients/test_fault_clients.py),
// run as a single-file source program or compiled:
//   java -cp <kafka jars> compat/FaultProducer.java <bootstrap> <topic> <count> [key=value ...]
// Extra arguments are producer configs (delivery.timeout.ms, request.timeout.ms, ...).
//
// It sends <count> records with the values value-0 .. value-<count-1> to partition 0 of <topic>
// (acks=all, enable.idempotence=true, both Kafka's defaults, set anyway so that the test does not
// depend on them), flushes, closes, and prints what the client reported for each record, one
// line each on stdout, then DONE:
//   ACK <index> <partition> <offset>
//   ERROR <index> <exception class> <Kafka error code or -> <message>
// The code is Errors.forException's for the exception, so that a test compares it with the code
// it injected. Exit 0 whatever the records' fate.
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.serialization.StringSerializer;

public class FaultProducer {
    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        props.put("acks", "all");
        props.put("enable.idempotence", "true");
        String topic = args[1];
        int count = Integer.parseInt(args[2]);
        for (int i = 3; i < args.length; i++) {
            String[] pair = args[i].split("=", 2);
            props.put(pair[0], pair[1]);
        }
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            for (int i = 0; i < count; i++) {
                final int index = i;
                producer.send(new ProducerRecord<>(topic, 0, null, "value-" + i), (metadata, error) -> {
                    if (error == null) {
                        say("ACK " + index + " " + metadata.partition() + " " + metadata.offset());
                    } else {
                        Throwable cause = error;
                        while (!(cause instanceof ApiException) && cause.getCause() != null) {
                            cause = cause.getCause();
                        }
                        String code = cause instanceof ApiException ? String.valueOf(Errors.forException(cause).code()) : "-";
                        say("ERROR " + index + " " + cause.getClass().getSimpleName() + " " + code + " "
                            + String.valueOf(error.getMessage()).replace('\n', ' '));
                    }
                });
            }
            producer.flush();
        }
        say("DONE");
    }
}
