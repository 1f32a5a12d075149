// A Java consumer in a group, for the KIP-848 tests (run as a single-file source program:
// java -cp <kafka jars> compat/GroupConsumer.java <bootstrap> <group> <topic> [key=value ...]).
// Extra arguments are consumer configs (group.protocol=consumer, group.instance.id, ...).
//
// It subscribes to the topic (or, with subscribe.regex=<regex>, to a broker-side RE2J pattern,
// KIP-848's SubscribedTopicRegex; with subscribe.pattern=<regex> to a java.util.regex pattern the
// client matches against the topics in its metadata), polls, prints
// what it gets and commits synchronously after each non-empty poll. Lines on stdout, flushed:
//   ASSIGNED <topic>:<partition>,...     the rebalance listener's view after each change
//   REVOKED <topic>:<partition>,...      partitions given up
//   LOST <topic>:<partition>,...         partitions lost (fenced)
//   RECORD <topic> <partition> <offset> <value>
//   COMMITTED <topic>:<partition>=<offset>,...
//   CLOSED
// A line "stop" on stdin (or its end) makes it close cleanly (leaving the group).
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.SubscriptionPattern;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.StringDeserializer;

public class GroupConsumer {
    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static String names(Collection<TopicPartition> partitions) {
        return partitions.stream().map(tp -> tp.topic() + ":" + tp.partition()).sorted()
            .collect(Collectors.joining(","));
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("group.id", args[1]);
        props.put("key.deserializer", StringDeserializer.class.getName());
        props.put("value.deserializer", StringDeserializer.class.getName());
        props.put("auto.offset.reset", "earliest");
        props.put("enable.auto.commit", "false");
        String pattern = null;
        String regex = null;
        for (int i = 3; i < args.length; i++) {
            String[] pair = args[i].split("=", 2);
            if (pair[0].equals("subscribe.pattern")) {
                pattern = pair[1];
            } else if (pair[0].equals("subscribe.regex")) {
                regex = pair[1];
            } else {
                props.put(pair[0], pair[1]);
            }
        }
        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props);
        AtomicBoolean stopping = new AtomicBoolean(false);
        Thread stdin = new Thread(() -> {
            try {
                java.io.BufferedReader reader = new java.io.BufferedReader(new java.io.InputStreamReader(System.in));
                String line;
                while ((line = reader.readLine()) != null && !line.trim().equals("stop")) {
                    // only "stop" (or the end of input) means anything
                }
            } catch (java.io.IOException ignored) {
            }
            stopping.set(true);
            consumer.wakeup();
        });
        stdin.setDaemon(true);
        stdin.start();
        ConsumerRebalanceListener listener = new ConsumerRebalanceListener() {
            public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                if (!partitions.isEmpty()) say("REVOKED " + names(partitions));
            }
            public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                say("ASSIGNED " + names(consumer.assignment()));
            }
            public void onPartitionsLost(Collection<TopicPartition> partitions) {
                say("LOST " + names(partitions));
            }
        };
        if (regex != null) {
            consumer.subscribe(new SubscriptionPattern(regex), listener);
        } else if (pattern != null) {
            consumer.subscribe(Pattern.compile(pattern), listener);
        } else {
            consumer.subscribe(List.of(args[2]), listener);
        }
        try {
            while (!stopping.get()) {
                ConsumerRecords<String, String> records;
                try {
                    records = consumer.poll(Duration.ofMillis(200));
                } catch (WakeupException e) {
                    break;
                }
                if (records.isEmpty()) continue;
                Map<TopicPartition, OffsetAndMetadata> offsets = new TreeMap<>(
                    (a, b) -> a.toString().compareTo(b.toString()));
                for (ConsumerRecord<String, String> record : records) {
                    say("RECORD " + record.topic() + " " + record.partition() + " " + record.offset() + " " + record.value());
                    offsets.put(new TopicPartition(record.topic(), record.partition()),
                                new OffsetAndMetadata(record.offset() + 1));
                }
                try {
                    consumer.commitSync(offsets);
                } catch (WakeupException e) {
                    consumer.commitSync(offsets);
                    break;
                }
                List<String> committed = new ArrayList<>();
                offsets.forEach((tp, om) -> committed.add(tp.topic() + ":" + tp.partition() + "=" + om.offset()));
                say("COMMITTED " + String.join(",", committed));
            }
        } finally {
            consumer.close();
            say("CLOSED");
        }
    }
}
