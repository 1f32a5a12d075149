"""Offsets sent in a transaction by real clients (consume-transform-produce): they become the
group's committed offsets exactly when the transaction commits, never when it aborts.
confluent-kafka (librdkafka: AddOffsetsToTxn + TxnOffsetCommit) and kafka-python against a real
``odradek serve``."""

from __future__ import annotations

import time

import pytest

from broker.test_server import create_topic
from odradek.protocol import error_codes as E

from .conftest import FAST_GROUPS, RawClient, assert_no_traceback
from .test_txn_offset_commit_wire import fetch

confluent_kafka = pytest.importorskip("confluent_kafka")


def produce_inputs(bootstrap, topic, count):
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap})
    for number in range(count):
        producer.produce(topic, key=str(number % 2).encode(), value=f"in-{number}".encode(), partition=number % 2)
    assert producer.flush(10) == 0


def consume(consumer, count, timeout=20.0):
    records = []
    deadline = time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            records.append(message)
    assert len(records) == count
    return records


def test_librdkafka_offsets_are_committed_with_the_transaction_and_not_with_an_abort(broker_process):
    broker = broker_process(None, *FAST_GROUPS, "transaction.state.log.num.partitions=4",
                            "offsets.topic.num.partitions=5")
    bootstrap = f"{broker.host}:{broker.port}"
    raw = RawClient(broker.host, broker.port)
    create_topic(raw, "ctp-in", partitions=2)
    create_topic(raw, "ctp-out", partitions=1)
    produce_inputs(bootstrap, "ctp-in", 10)

    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "ctp",
                                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                         "isolation.level": "read_committed", "session.timeout.ms": 6000})
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "transactional.id": "ctp-app"})
    try:
        producer.init_transactions(20)
        consumer.subscribe(["ctp-in"])
        first = consume(consumer, 6)
        producer.begin_transaction()
        for message in first:
            producer.produce("ctp-out", value=message.value().upper())
        positions = consumer.position(consumer.assignment())
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 20)
        # Sent, not committed: the group's offsets are unstable, not moved.
        unstable = fetch(raw, "ctp", "ctp-in", [0, 1], require_stable=True)
        assert {error for _, _, error in unstable} == {E.UNSTABLE_OFFSET_COMMIT}
        assert [offset for _, offset, _ in fetch(raw, "ctp", "ctp-in", [0, 1])] == [-1, -1]
        producer.commit_transaction(20)
        committed = {tp.partition: tp.offset for tp in consumer.committed(consumer.assignment(), 20)}
        expected = {tp.partition: tp.offset for tp in positions}
        assert committed == expected and sum(expected.values()) == 6

        rest = consume(consumer, 4)
        producer.begin_transaction()
        for message in rest:
            producer.produce("ctp-out", value=message.value().upper())
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 20)
        producer.abort_transaction(20)
        deadline = time.monotonic() + 10  # until the ABORT marker has reached the group's partition
        while E.UNSTABLE_OFFSET_COMMIT in {error for _, _, error in fetch(raw, "ctp", "ctp-in", [0, 1],
                                                                           require_stable=True)} \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        after_abort = {tp.partition: tp.offset for tp in consumer.committed(consumer.assignment(), 20)}
        assert after_abort == expected  # the abort left the committed offsets where they were
    finally:
        consumer.close()
        raw.close()
    assert_no_traceback(broker)


def test_kafka_python_offsets_of_a_group_member_commit_with_the_transaction(broker_process):
    """kafka-python with the consumer's group metadata (KIP-447: the member and generation are
    checked by the group coordinator)."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    broker = broker_process(None, *FAST_GROUPS, "transaction.state.log.num.partitions=4",
                            "offsets.topic.num.partitions=5")
    bootstrap = f"{broker.host}:{broker.port}"
    raw = RawClient(broker.host, broker.port)
    create_topic(raw, "kp-in", partitions=1)
    consumer = KafkaConsumer("kp-in", bootstrap_servers=bootstrap, group_id="kp", enable_auto_commit=False,
                             auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500)
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp-app")
    partition = TopicPartition("kp-in", 0)
    try:
        deadline = time.monotonic() + 20
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(200)
        assert consumer.assignment() == {partition}
        producer.init_transactions()
        producer.begin_transaction()
        producer.send("kp-in", b"through the transaction", partition=0)
        producer.send_offsets_to_transaction({partition: OffsetAndMetadata(5, "", -1)}, consumer.group_metadata())
        assert fetch(raw, "kp", "kp-in", [0], require_stable=True) == [(0, -1, E.UNSTABLE_OFFSET_COMMIT)]
        producer.commit_transaction()
        deadline = time.monotonic() + 10
        while consumer.committed(partition) != 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert consumer.committed(partition) == 5
        producer.begin_transaction()
        producer.send_offsets_to_transaction({partition: OffsetAndMetadata(9, "", -1)}, consumer.group_metadata())
        producer.abort_transaction()
        deadline = time.monotonic() + 10  # until the ABORT marker has reached the group's partition
        while fetch(raw, "kp", "kp-in", [0], require_stable=True)[0][2] != E.NONE and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fetch(raw, "kp", "kp-in", [0], require_stable=True) == [(0, 5, E.NONE)]
        assert consumer.committed(partition) == 5
    finally:
        producer.close()
        consumer.close()
        raw.close()
    assert_no_traceback(broker)
