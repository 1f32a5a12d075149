"""Produce per-record errors against a real ``odradek serve``: a keyless record on a compacted
topic (INVALID_RECORD) and a timestamp out of bounds (INVALID_TIMESTAMP) are answered as Kafka
answers its RecordValidationException: v8+ ``record_errors`` (index in the batch, Kafka's
message) and ``error_message``; real clients see the error."""

from __future__ import annotations

import time
import uuid

import pytest

from odradek.protocol import error_codes
from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.messages.produce import ProduceRequest
from odradek.protocol.records.batch import Record, build_batch
from odradek.protocol.records.compression import GZIP

from .test_server import create_topic

Config = CreateTopicsRequest.CreatableTopic.CreatableTopicConfig
KEYLESS = "Compacted topic cannot accept message without key in topic partition {}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce_answer(client, topic, batch, version=9):
    request = ProduceRequest(acks=1, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
        name=topic, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=batch)])])
    return client.request(request, version).responses[0].partition_responses[0]


def record_errors(answer):
    return [(item.batch_index, item.batch_index_error_message) for item in answer.record_errors]


@pytest.mark.parametrize("compression", [0, GZIP])
def test_compacted_topic_refuses_keyless_records(raw_client, compression):
    client = raw_client()
    topic = unique("compacted")
    assert create_topic(client, topic, configs=[Config(name="cleanup.policy", value="compact")]).error_code == 0
    now = int(time.time() * 1000)
    batch = build_batch([Record(i, 0, key, b"v%d" % i) for i, key in enumerate([b"a", None, b"c", None])],
                        base_timestamp=now, compression=compression)
    answer = produce_answer(client, topic, batch)
    assert answer.error_code == error_codes.INVALID_RECORD
    message = KEYLESS.format(f"{topic}-0")
    assert record_errors(answer) == [(1, message), (3, message)]
    assert answer.error_message == (
        "One or more records have been rejected due to 2 record errors in total, and only showing the first "
        f"three errors at most: [RecordError(batchIndex=1, message='{message}'), "
        f"RecordError(batchIndex=3, message='{message}')]")
    assert (answer.base_offset, answer.log_start_offset) == (-1, 0)
    # Before v8 the response has no place for them: the error code alone.
    old = produce_answer(client, topic, batch, version=7)
    assert old.error_code == error_codes.INVALID_RECORD and old.record_errors == []
    # Nothing was appended; keyed records are taken at offset 0.
    keyed = build_batch([Record(0, 0, b"k", b"v")], base_timestamp=now, compression=compression)
    assert produce_answer(client, topic, keyed).base_offset == 0


def test_timestamps_out_of_bounds_are_named_per_record(raw_client):
    client = raw_client()
    topic = unique("old-timestamps")
    configs = [Config(name="message.timestamp.before.max.ms", value="60000"),
               Config(name="message.timestamp.after.max.ms", value="60000")]
    assert create_topic(client, topic, configs=configs).error_code == 0
    now = int(time.time() * 1000)
    records = [Record(0, 0, b"k", b"fine"), Record(1, -3_600_000, b"k", b"old"), Record(2, 3_600_000, b"k", b"new")]
    answer = produce_answer(client, topic, build_batch(records, base_timestamp=now))
    assert answer.error_code == error_codes.INVALID_TIMESTAMP
    assert answer.error_message == "One or more records have been rejected due to invalid timestamp"
    errors = record_errors(answer)
    assert [index for index, _ in errors] == [1, 2]
    for (index, message), timestamp in zip(errors, (now - 3_600_000, now + 3_600_000)):
        assert message.startswith(f"Timestamp {timestamp} of message with offset {index} is out of range. "
                                  "The timestamp should be within [")
        low, high = (int(part) for part in message.rsplit("[", 1)[1].rstrip("]").split(", "))
        assert high - low == 120_000 and low <= now - 60_000 + 60_000  # the broker's clock, within a minute
    # A batch whose records are all in bounds is taken.
    assert produce_answer(client, topic, build_batch([Record(0, 0, b"k", b"v")], base_timestamp=now)).error_code == 0


def test_clients_see_the_record_errors(shared_broker):
    from confluent_kafka import KafkaError, Producer
    from kafka import KafkaProducer
    from kafka.errors import InvalidRecordError, KafkaError as KafkaPythonError
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = unique("compacted-clients")
    admin = KafkaAdminClient(bootstrap_servers=shared_broker.bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    admin.close()

    producer = KafkaProducer(bootstrap_servers=shared_broker.bootstrap, retries=0, linger_ms=300)
    assert producer.send(topic, key=b"k", value=b"kept").get(timeout=15).offset == 0
    # One batch (linger): the keyless record refuses it whole, the keyed one with it, as in
    # Kafka; the client (KIP-467) gives the keyless record its own message from record_errors.
    keyed = producer.send(topic, key=b"k", value=b"with it")
    keyless = producer.send(topic, value=b"refused")
    with pytest.raises(InvalidRecordError) as raised:
        keyless.get(timeout=15)
    assert KEYLESS.format(f"{topic}-0") in str(raised.value)
    with pytest.raises(KafkaPythonError) as raised:
        keyed.get(timeout=15)
    assert "part of a batch which had one more more invalid records" in str(raised.value)
    producer.close()

    reports = []
    producer = Producer({"bootstrap.servers": shared_broker.bootstrap, "enable.idempotence": False, "retries": 0})
    producer.produce(topic, value=b"refused too", partition=0,
                     on_delivery=lambda error, message: reports.append(error))
    assert producer.flush(15) == 0
    assert len(reports) == 1 and reports[0] is not None
    assert reports[0].code() == KafkaError.INVALID_RECORD
    # Only the first record is in the log.
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=shared_broker.bootstrap)
    partition = TopicPartition(topic, 0)
    assert consumer.end_offsets([partition])[partition] == 1
    consumer.close()


def test_partition_errors_other_than_record_validation_carry_no_error_message(raw_client):
    """Kafka's ReplicaManager sets error_message only for a RecordValidationException: an unknown
    partition, a corrupt or oversized batch or an empty record set has none."""
    client = raw_client()
    topic = unique("refused")
    configs = [Config(name="max.message.bytes", value="200")]
    assert create_topic(client, topic, configs=configs).error_code == 0
    now = int(time.time() * 1000)
    small = build_batch([Record(0, 0, b"k", b"v")], base_timestamp=now)
    corrupt = bytearray(small)
    corrupt[-1] ^= 0xFF
    large = build_batch([Record(0, 0, b"k", b"x" * 500)], base_timestamp=now)

    def answer(partition, batch, acks=1):
        request = ProduceRequest(acks=acks, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
            name=topic, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
                index=partition, records=batch)])])
        got = client.request(request, 9).responses[0].partition_responses[0]
        return got.error_code, got.error_message, got.record_errors

    assert answer(7, small) == (error_codes.UNKNOWN_TOPIC_OR_PARTITION, None, [])
    assert answer(0, bytes(corrupt)) == (error_codes.CORRUPT_MESSAGE, None, [])
    assert answer(0, large) == (error_codes.MESSAGE_TOO_LARGE, None, [])
    assert answer(0, b"") == (error_codes.INVALID_RECORD, None, [])
    assert answer(0, small) == (error_codes.NONE, None, [])
