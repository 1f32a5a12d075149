"""Real Kafka clients against a real ``odradek serve``: kafka-python, confluent-kafka
(librdkafka) and aiokafka produce and consume, with keys, null values, headers and every codec."""

from __future__ import annotations

import asyncio
import uuid

import pytest

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def expected_messages(count: int):
    """(key, value, headers) triples: every 5th value null, headers on odd ones."""
    messages = []
    for i in range(count):
        key = None if i % 7 == 3 and i % 5 != 4 else b"key-%d" % i  # never both null (clients refuse it)
        value = None if i % 5 == 4 else (b"value-%d-" % i) * (i % 4 + 1)
        headers = [("h", b"%d" % i), ("empty", b"")] if i % 2 else []
        messages.append((key, value, headers))
    return messages


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_produce_consume(shared_broker, codec):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = unique(f"kp-{codec}")
    admin = KafkaAdminClient(bootstrap_servers=shared_broker.bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=shared_broker.bootstrap, acks="all", compression_type=codec,
                             linger_ms=5)
    messages = expected_messages(40)
    futures = [producer.send(topic, key=key, value=value, headers=headers, partition=i % 2)
               for i, (key, value, headers) in enumerate(messages)]
    producer.flush()
    metadata = [future.get(timeout=10) for future in futures]
    assert [m.offset for m in metadata if m.partition == 0] == list(range(20))
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=shared_broker.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=15000)
    consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    received = {}
    for record in consumer:
        received[(record.partition, record.offset)] = (record.key, record.value, [(k, v) for k, v in record.headers])
        if len(received) == len(messages):
            break
    consumer.close()
    expected = {(i % 2, i // 2): (key, value, [(k, v) for k, v in headers])
                for i, (key, value, headers) in enumerate(messages)}
    assert received == expected


def test_kafka_python_offsets_by_timestamp_and_end_offsets(shared_broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic = unique("kp-times")
    producer = KafkaProducer(bootstrap_servers=shared_broker.bootstrap, acks=1)
    base = 1_700_000_000_000
    for i in range(5):
        producer.send(topic, value=b"%d" % i, timestamp_ms=base + i * 1000, partition=0).get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=shared_broker.bootstrap, group_id=None)
    partition = TopicPartition(topic, 0)
    assert consumer.beginning_offsets([partition]) == {partition: 0}
    assert consumer.end_offsets([partition]) == {partition: 5}
    found = consumer.offsets_for_times({partition: base + 2500})[partition]
    assert (found.offset, found.timestamp) == (3, base + 3000)
    consumer.close()


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_confluent_kafka_produce_consume(shared_broker, codec):
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = unique(f"ck-{codec}")
    producer = Producer({"bootstrap.servers": shared_broker.bootstrap, "compression.type": codec,
                         "enable.idempotence": True, "linger.ms": 5})
    messages = expected_messages(30)
    delivered = []
    for key, value, headers in messages:
        producer.produce(topic, key=key, value=value, headers=headers or None, partition=0,
                         on_delivery=lambda error, message: delivered.append((error, message.offset())))
    assert producer.flush(15) == 0
    assert [error for error, _ in delivered] == [None] * len(messages)
    assert sorted(offset for _, offset in delivered) == list(range(len(messages)))

    consumer = Consumer({"bootstrap.servers": shared_broker.bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    received = []
    while len(received) < len(messages):
        message = consumer.poll(10)
        assert message is not None, f"only {len(received)} of {len(messages)} received"
        assert message.error() is None, message.error()
        received.append((message.key(), message.value(), message.headers() or []))
    consumer.close()
    assert received == [(k, v, list(h)) for k, v, h in messages]


def test_aiokafka_produce_consume(shared_broker):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition

    topic = unique("aio")

    async def scenario():
        producer = AIOKafkaProducer(bootstrap_servers=shared_broker.bootstrap, acks="all",
                                    enable_idempotence=True, compression_type="gzip")
        await producer.start()
        try:
            for i in range(25):
                await producer.send_and_wait(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0,
                                             headers=[("n", b"%d" % i)])
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=shared_broker.bootstrap, group_id=None,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0)])
            received = []
            while len(received) < 25:
                batches = await consumer.getmany(timeout_ms=15000)
                assert batches, "no records within 15 s"
                for records in batches.values():
                    received += [(r.offset, r.key, r.value, list(r.headers)) for r in records]
        finally:
            await consumer.stop()
        return received

    received = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert received == [(i, b"k%d" % i, b"v%d" % i, [("n", b"%d" % i)]) for i in range(25)]


def test_kafka_python_speaking_kafka_0_10(shared_broker):
    """An 0.10-era client: Produce v2 with magic-1 message sets (up-converted on append) and
    Fetch v3 (down-converted to magic 1 on read)."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic = unique("old-client")
    producer = KafkaProducer(bootstrap_servers=shared_broker.bootstrap, api_version=(0, 10, 1), acks=1)
    offsets = [producer.send(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0).get(timeout=10).offset
               for i in range(5)]
    producer.close()
    assert offsets == list(range(5))
    consumer = KafkaConsumer(bootstrap_servers=shared_broker.bootstrap, api_version=(0, 10, 1), group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=15000, auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, 0)])
    received = []
    for record in consumer:
        received.append((record.offset, record.key, record.value))
        if len(received) == 5:
            break
    consumer.close()
    assert received == [(i, b"k%d" % i, b"v%d" % i) for i in range(5)]
