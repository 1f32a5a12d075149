"""A consume-transform-produce application with librdkafka (confluent-kafka), run as a
subprocess by test_exactly_once_crashes.py: it copies every record of the input topic to the
output topic (same key, value prefixed), sending the consumed offsets in the same
transaction, as an exactly-once pipeline does. On any error it exits (non-zero); the test
starts it again, and the group's committed offsets tell it where to resume.

    python exactly_once_app.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID
"""

from __future__ import annotations

import sys

from confluent_kafka import Consumer, KafkaException, Producer

BATCH = 20


def main() -> int:
    bootstrap, input_topic, output_topic, group, transactional_id = sys.argv[1:6]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "transaction.timeout.ms": 10000, "linger.ms": 5})
    producer.init_transactions(30)
    consumer.subscribe([input_topic])
    try:
        while True:
            messages = consumer.consume(BATCH, 0.2)
            if not messages:
                continue
            producer.begin_transaction()
            for message in messages:
                if message.error():
                    raise KafkaException(message.error())
                producer.produce(output_topic, key=message.key(), value=b"copy:" + message.value())
            producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                 consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
            print("committed", len(messages), flush=True)
    except KafkaException as error:
        print("stopping on", error, file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
