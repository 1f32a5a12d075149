// Kafka's Java transactional producer, a read_committed / read_uncommitted consumer and the
// Admin client's view of a group's offsets, driven by a script (compat/test_kafka_cli.py).
// Run as a single-file source program:
//     java -cp <kafka jars> compat/TransactionalClient.java <bootstrap> < commands
//
// Commands on stdin, one per line, fields separated by tabs; several producers live at once,
// each under a name:
//     TOPIC <name> <partitions>                                   create a topic (Admin client)
//     PRODUCER <name> <transactional.id> [<config>=<value>]...   create it, initTransactions()
//     BEGIN <name> | FLUSH <name> | COMMIT <name> | ABORT <name>
//     SEND <name> <topic> <partition> <value>                     send (asynchronous)
//     OFFSETS <name> <group> <topic>:<partition>=<offset>[,...]   sendOffsetsToTransaction
//     CLOSE <name>                                                close(0): what a crash leaves
//     JOIN <member> <group> <topic> <count>
//         a consumer subscribes to the topic in the group and polls until it has <count> records
//         (or 20 s pass); the group metadata it then has (generation, member id) is kept
//     MEMBER_OFFSETS <name> <member> <topic>:<partition>=<offset>[,...]
//         sendOffsetsToTransaction with the metadata JOIN kept (KIP-447: the broker checks them)
//     LEAVE <member>                                              the member's consumer closes
//     SLEEP <ms>
//     READ <isolation.level> <count> <topic>:<partition>[,...]
//         a consumer (no group) reads the partitions from the start until it has <count>
//         records (then one more second, in which nothing more may come) or 20 s pass
//     COMMITTED <group> <topic>:<partition>[,...]                 Admin.listConsumerGroupOffsets: the
//                                         last committed offsets, pending transactional ones not included
//     STABLE <group> <topic>:<partition>[,...]
//         KafkaConsumer.committed() of a read_committed consumer of the group (not joined): it
//         asks for stable offsets and waits (up to 15 s) while a transaction's commit is pending
// Output lines:
//     OK <command> <name>                     the command returned
//     ERROR <command> <name> <exception class> <message>
//                                             it threw (the script goes on: a test asserts which)
//     ACK <name> <topic> <partition> <offset> a send acknowledged (reported at FLUSH, COMMIT, ABORT)
//     NACK <name> <topic> <partition> <exception class>   a send that failed
//     RECORD <topic> <partition> <offset> <value>
//     COMMITTED <topic>:<partition> <offset>  (-1: no committed offset)
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TransactionalClient {
    private static final class Sent {
        final TopicPartition partition;
        final Future<RecordMetadata> ack;

        Sent(TopicPartition partition, Future<RecordMetadata> ack) {
            this.partition = partition;
            this.ack = ack;
        }
    }

    private static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    private static String oneLine(Throwable error) {
        String message = String.valueOf(error.getMessage());
        return message.replace('\n', ' ').replace('\t', ' ');
    }

    private static List<TopicPartition> partitions(String field) {
        List<TopicPartition> result = new ArrayList<>();
        for (String item : field.split(",")) {
            int colon = item.lastIndexOf(':');
            result.add(new TopicPartition(item.substring(0, colon), Integer.parseInt(item.substring(colon + 1))));
        }
        return result;
    }

    // "<topic>:<partition>=<offset>,..."
    private static Map<TopicPartition, OffsetAndMetadata> offsets(String field) {
        Map<TopicPartition, OffsetAndMetadata> offsets = new LinkedHashMap<>();
        for (String item : field.split(",")) {
            String[] tpo = item.split("=", 2);
            offsets.put(partitions(tpo[0]).get(0), new OffsetAndMetadata(Long.parseLong(tpo[1])));
        }
        return offsets;
    }

    // Waits for the sends of one producer (each was bounded by delivery.timeout.ms already).
    private static void report(String name, List<Sent> sent) {
        for (Sent s : sent) {
            try {
                RecordMetadata metadata = s.ack.get(60, TimeUnit.SECONDS);
                say("ACK " + name + " " + metadata.topic() + " " + metadata.partition() + " " + metadata.offset());
            } catch (ExecutionException error) {
                say("NACK " + name + " " + s.partition.topic() + " " + s.partition.partition() + " "
                    + error.getCause().getClass().getSimpleName());
            } catch (Exception error) {
                say("NACK " + name + " " + s.partition.topic() + " " + s.partition.partition() + " "
                    + error.getClass().getSimpleName());
            }
        }
        sent.clear();
    }

    public static void main(String[] args) {
        // Report failures here: the single-file source launcher's own handler can itself fail
        // on some stack traces and hide the real error.
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
        Map<String, KafkaProducer<String, String>> producers = new HashMap<>();
        Map<String, List<Sent>> pending = new HashMap<>();
        Map<String, KafkaConsumer<String, String>> members = new HashMap<>();
        Map<String, ConsumerGroupMetadata> memberMetadata = new HashMap<>();
        BufferedReader input = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = input.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.split("\t", -1);
            String command = f[0];
            String name = f.length > 1 ? f[1] : "-";
            try {
                switch (command) {
                    case "PRODUCER": {
                        Properties props = new Properties();
                        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, f[2]);
                        for (int i = 3; i < f.length; i++) {
                            String[] kv = f[i].split("=", 2);
                            props.put(kv[0], kv[1]);
                        }
                        KafkaProducer<String, String> producer = new KafkaProducer<>(props);
                        producers.put(name, producer);
                        pending.put(name, new ArrayList<>());
                        producer.initTransactions();
                        break;
                    }
                    case "TOPIC": {
                        Properties props = new Properties();
                        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                        try (Admin admin = Admin.create(props)) {
                            admin.createTopics(List.of(new NewTopic(name, Integer.parseInt(f[2]), (short) 1)))
                                .all().get(30, TimeUnit.SECONDS);
                        }
                        break;
                    }
                    case "BEGIN":
                        producers.get(name).beginTransaction();
                        break;
                    case "SEND": {
                        TopicPartition partition = new TopicPartition(f[2], Integer.parseInt(f[3]));
                        pending.get(name).add(new Sent(partition, producers.get(name).send(
                            new ProducerRecord<>(partition.topic(), partition.partition(), null, f[4]))));
                        break;
                    }
                    case "FLUSH":
                        producers.get(name).flush();
                        report(name, pending.get(name));
                        break;
                    case "OFFSETS":
                        // The group's metadata as a consumer of it has them (not joined: no generation).
                        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps(bootstrap, f[2]))) {
                            producers.get(name).sendOffsetsToTransaction(offsets(f[3]), consumer.groupMetadata());
                        }
                        break;
                    case "COMMIT":
                        try {
                            producers.get(name).commitTransaction();
                        } finally {
                            report(name, pending.get(name));
                        }
                        break;
                    case "ABORT":
                        try {
                            producers.get(name).abortTransaction();
                        } finally {
                            report(name, pending.get(name));
                        }
                        break;
                    case "JOIN": {
                        Properties props = consumerProps(bootstrap, f[2]);
                        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
                        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
                        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props);
                        members.put(name, consumer);
                        consumer.subscribe(List.of(f[3]));
                        int count = Integer.parseInt(f[4]);
                        int received = 0;
                        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                        while (received < count && System.nanoTime() < deadline) {
                            for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(200))) {
                                say("RECORD " + record.topic() + " " + record.partition() + " " + record.offset() + " "
                                    + record.value());
                                received++;
                            }
                        }
                        memberMetadata.put(name, consumer.groupMetadata());
                        break;
                    }
                    case "MEMBER_OFFSETS":
                        producers.get(name).sendOffsetsToTransaction(offsets(f[3]), memberMetadata.get(f[2]));
                        break;
                    case "LEAVE":
                        members.remove(name).close();
                        break;
                    case "CLOSE":
                        producers.remove(name).close(Duration.ZERO);
                        break;
                    case "SLEEP":
                        Thread.sleep(Long.parseLong(f[1]));
                        break;
                    case "READ":
                        read(bootstrap, f[1], Integer.parseInt(f[2]), partitions(f[3]));
                        break;
                    case "COMMITTED": {
                        Properties props = new Properties();
                        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                        try (Admin admin = Admin.create(props)) {
                            Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(f[1])
                                .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
                            for (TopicPartition partition : partitions(f[2])) {
                                OffsetAndMetadata offset = offsets.get(partition);
                                say("COMMITTED " + partition.topic() + ":" + partition.partition() + " "
                                    + (offset == null ? -1 : offset.offset()));
                            }
                        }
                        break;
                    }
                    case "STABLE": {
                        Properties props = consumerProps(bootstrap, f[1]);
                        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
                        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
                            List<TopicPartition> wanted = partitions(f[2]);
                            Map<TopicPartition, OffsetAndMetadata> offsets = consumer.committed(
                                new HashSet<>(wanted), Duration.ofSeconds(15));
                            for (TopicPartition partition : wanted) {
                                OffsetAndMetadata offset = offsets.get(partition);
                                say("COMMITTED " + partition.topic() + ":" + partition.partition() + " "
                                    + (offset == null ? -1 : offset.offset()));
                            }
                        }
                        break;
                    }
                    default:
                        throw new IllegalArgumentException("unknown command: " + line);
                }
                say("OK " + command + " " + name);
            } catch (IllegalArgumentException error) {
                throw error;
            } catch (Exception error) {
                Throwable cause = error instanceof ExecutionException ? error.getCause() : error;
                say("ERROR " + command + " " + name + " " + cause.getClass().getSimpleName() + " " + oneLine(cause));
            }
        }
        for (KafkaProducer<String, String> producer : producers.values()) {
            producer.close(Duration.ofSeconds(5));
        }
        for (KafkaConsumer<String, String> consumer : members.values()) {
            consumer.close();
        }
    }

    // A consumer's configs; group null: none (assigned partitions only).
    private static Properties consumerProps(String bootstrap, String group) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (group != null) {
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        return props;
    }

    private static void read(String bootstrap, String isolation, int count, List<TopicPartition> partitions) {
        Properties props = consumerProps(bootstrap, null);
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            int received = 0;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            long quietUntil = Long.MAX_VALUE;
            while (System.nanoTime() < Math.min(deadline, quietUntil)) {
                for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(200))) {
                    say("RECORD " + record.topic() + " " + record.partition() + " " + record.offset() + " "
                        + record.value());
                    received++;
                }
                if (received >= count && quietUntil == Long.MAX_VALUE) {
                    quietUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
                }
            }
        }
    }
}
