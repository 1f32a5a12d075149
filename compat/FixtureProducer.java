// Produces the records of the Kafka-written fixture with Kafka's own Java client.
// Run by compat/make_kafka_fixture.py as a single-file source program:
//     java -cp <kafka jars> compat/FixtureProducer.java <bootstrap> < commands
//
// Commands on stdin, one per line, fields separated by tabs; bytes are base64, "-" is null:
//     TOPIC <name> <partitions> [<config>=<value>]...  create the topic (Admin client)
//     PRODUCER <codec> <mode> [<config>=<value>]...
//                                a new producer (the previous one is closed); mode is
//                                plain (acks=1, no idempotence), idempotent, or transactional
//     RECORD <id> <timestamp> <key> <value> [<header key> <header value>]...
//     FLUSH | BEGIN | COMMIT | ABORT | SLEEP <ms>
//     TIMES <target>...          ListOffsets by timestamp (Admin.listOffsets) on partition 0;
//                                target "max" asks for the max timestamp (KIP-734)
// For every RECORD, once acknowledged (at the next FLUSH/COMMIT/ABORT or at the end), prints
//     ACK <id> <partition> <offset> <timestamp>
// and for every TIMES target, Kafka's answer (offset -1 when no record is that late):
//     TIME <target> <offset> <timestamp>
// Anything that fails makes the program exit non-zero: the fixture is then not written.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class FixtureProducer {
    private static final class Pending {
        final String id;
        final Future<RecordMetadata> ack;

        Pending(String id, Future<RecordMetadata> ack) {
            this.id = id;
            this.ack = ack;
        }
    }

    private static byte[] bytes(String field) {
        return field.equals("-") ? null : Base64.getDecoder().decode(field);
    }

    private static void report(List<Pending> pending) throws Exception {
        for (Pending p : pending) {
            RecordMetadata metadata = p.ack.get(60, TimeUnit.SECONDS);
            System.out.println("ACK " + p.id + " " + metadata.partition() + " " + metadata.offset()
                    + " " + metadata.timestamp());
        }
        pending.clear();
        System.out.flush();
    }

    public static void main(String[] args) {
        // Report failures here: the single-file source launcher's own handler can itself fail
        // on some stack traces ("IllegalArgumentException: 0 > -7") and hide the real error.
        try {
            run(args[0]);
        } catch (Throwable error) {
            error.printStackTrace();
            System.out.flush();
            System.exit(1);
        }
        System.exit(0);
    }

    private static void run(String bootstrap) throws Exception {
        String topic = null;
        KafkaProducer<byte[], byte[]> producer = null;
        List<Pending> pending = new ArrayList<>();
        BufferedReader input = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = input.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.split("\t", -1);
            switch (f[0]) {
                case "TOPIC": {
                    topic = f[1];
                    Map<String, String> configs = new HashMap<>();
                    for (int i = 3; i < f.length; i++) {
                        String[] kv = f[i].split("=", 2);
                        configs.put(kv[0], kv[1]);
                    }
                    Properties adminProps = new Properties();
                    adminProps.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                    try (Admin admin = Admin.create(adminProps)) {
                        NewTopic newTopic = new NewTopic(topic, Integer.parseInt(f[2]), (short) 1).configs(configs);
                        admin.createTopics(List.of(newTopic)).all().get(60, TimeUnit.SECONDS);
                    }
                    break;
                }
                case "PRODUCER": {
                    if (producer != null) {
                        report(pending);
                        producer.close();
                    }
                    Properties props = new Properties();
                    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
                    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
                    props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, f[1]);
                    // Batches are cut by FLUSH, not by time: what the script groups is one batch.
                    props.put(ProducerConfig.LINGER_MS_CONFIG, "60000");
                    props.put(ProducerConfig.BATCH_SIZE_CONFIG, "1048576");
                    props.put("max.in.flight.requests.per.connection", "1");
                    String mode = f[2];
                    if (mode.equals("plain")) {
                        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
                        props.put(ProducerConfig.ACKS_CONFIG, "1");
                    } else {
                        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
                        props.put(ProducerConfig.ACKS_CONFIG, "all");
                    }
                    if (mode.equals("transactional")) {
                        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "fixture-" + f[1]);
                    }
                    for (int i = 3; i < f.length; i++) {
                        String[] kv = f[i].split("=", 2);
                        props.put(kv[0], kv[1]);
                    }
                    producer = new KafkaProducer<>(props);
                    if (mode.equals("transactional")) {
                        producer.initTransactions();
                    }
                    break;
                }
                case "RECORD": {
                    ProducerRecord<byte[], byte[]> record = new ProducerRecord<>(
                            topic, 0, Long.parseLong(f[2]), bytes(f[3]), bytes(f[4]));
                    for (int i = 5; i + 1 < f.length; i += 2) {
                        String headerKey = new String(Base64.getDecoder().decode(f[i]), StandardCharsets.UTF_8);
                        record.headers().add(headerKey, bytes(f[i + 1]));
                    }
                    pending.add(new Pending(f[1], producer.send(record)));
                    break;
                }
                case "FLUSH":
                    producer.flush();
                    report(pending);
                    break;
                case "BEGIN":
                    producer.beginTransaction();
                    break;
                case "COMMIT":
                    producer.commitTransaction();
                    report(pending);
                    break;
                case "ABORT":
                    producer.flush();
                    report(pending);
                    producer.abortTransaction();
                    break;
                case "TIMES": {
                    Properties adminProps = new Properties();
                    adminProps.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                    TopicPartition partition = new TopicPartition(topic, 0);
                    try (Admin admin = Admin.create(adminProps)) {
                        for (int i = 1; i < f.length; i++) {
                            OffsetSpec spec = f[i].equals("max")
                                    ? OffsetSpec.maxTimestamp() : OffsetSpec.forTimestamp(Long.parseLong(f[i]));
                            ListOffsetsResult.ListOffsetsResultInfo info = admin.listOffsets(Map.of(partition, spec))
                                    .partitionResult(partition).get(60, TimeUnit.SECONDS);
                            System.out.println("TIME " + f[i] + " " + info.offset() + " " + info.timestamp());
                        }
                    }
                    System.out.flush();
                    break;
                }
                case "SLEEP":
                    Thread.sleep(Long.parseLong(f[1]));
                    break;
                default:
                    throw new IllegalArgumentException("unknown command: " + line);
            }
        }
        if (producer != null) {
            producer.flush();
            report(pending);
            producer.close();
        }
    }
}
