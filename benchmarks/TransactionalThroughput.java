// A transactional producer as fast as it goes: transactions of a fixed number of records,
// each committed before the next begins (what an exactly-once pipeline does per batch of
// input). Run by benchmarks/transactions.py with Kafka's client jars on the class path:
//
//   java -cp <kafka-clients jars> TransactionalThroughput.java BOOTSTRAP TOPIC RECORDS_PER_TXN
//        RECORD_SIZE WARM_UP_SECONDS SECONDS
//
// Prints one line: "records=R transactions=T seconds=S" for the measured part (after the
// warm-up, which runs the same loop unmeasured so that the JIT and the broker settle).

import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class TransactionalThroughput {
    public static void main(String[] args) {
        String bootstrap = args[0];
        String topic = args[1];
        int perTransaction = Integer.parseInt(args[2]);
        byte[] value = new byte[Integer.parseInt(args[3])];
        long warmUpNanos = (long) (Double.parseDouble(args[4]) * 1e9);
        long measureNanos = (long) (Double.parseDouble(args[5]) * 1e9);
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("transactional.id", "throughput-" + topic);
        props.put("key.serializer", ByteArraySerializer.class.getName());
        props.put("value.serializer", ByteArraySerializer.class.getName());
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            producer.initTransactions();
            long start = System.nanoTime();
            long measuredFrom = -1;
            long records = 0;
            long transactions = 0;
            while (true) {
                long now = System.nanoTime();
                if (measuredFrom < 0 && now - start >= warmUpNanos) {
                    measuredFrom = now;
                    records = 0;
                    transactions = 0;
                }
                if (measuredFrom >= 0 && now - measuredFrom >= measureNanos) {
                    System.out.printf("records=%d transactions=%d seconds=%.3f%n", records, transactions,
                                      (now - measuredFrom) / 1e9);
                    return;
                }
                producer.beginTransaction();
                for (int i = 0; i < perTransaction; i++) {
                    producer.send(new ProducerRecord<>(topic, value));
                }
                producer.commitTransaction();
                records += perTransaction;
                transactions += 1;
            }
        }
    }
}
