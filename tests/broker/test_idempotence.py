"""Idempotent producers end to end: InitProducerId hands out ids that are never reused (also
across restarts), a retried batch is answered with its original offsets and stored once,
sequence gaps and fenced epochs are refused with Kafka's codes."""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.init_producer_id import InitProducerIdRequest
from odradek.protocol.records.batch import Record, build_batch

from .conftest import RawClient
from .test_server import create_topic, fetch_request, produce, records_of


def init_producer_id(client, producer_id=-1, epoch=-1, transactional_id=None, version=4):
    request = InitProducerIdRequest(transactional_id=transactional_id, transaction_timeout_ms=60000,
                                    producer_id=producer_id, producer_epoch=epoch)
    return client.request(request, version)


def idempotent_batch(producer_id, epoch, sequence, *values):
    return build_batch([Record(i, 0, None, value) for i, value in enumerate(values)], producer_id=producer_id,
                       producer_epoch=epoch, base_sequence=sequence, base_timestamp=1_700_000_000_000)


def test_retries_are_stored_once_and_gaps_refused(raw_client):
    client = raw_client()
    create_topic(client, "idem")
    answer = init_producer_id(client)
    assert answer.error_code == 0 and answer.producer_id >= 0 and answer.producer_epoch == 0
    pid = answer.producer_id
    first = produce(client, "idem", 0, idempotent_batch(pid, 0, 0, b"a", b"b"))
    retry = produce(client, "idem", 0, idempotent_batch(pid, 0, 0, b"a", b"b"))
    assert (first.error_code, first.base_offset) == (0, 0)
    assert (retry.error_code, retry.base_offset) == (0, 0)
    gap = produce(client, "idem", 0, idempotent_batch(pid, 0, 5, b"c"))
    assert gap.error_code == error_codes.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert produce(client, "idem", 0, idempotent_batch(pid, 0, 2, b"c")).base_offset == 2

    bumped = init_producer_id(client, pid, 0)
    assert (bumped.producer_id, bumped.producer_epoch) == (pid, 1)
    assert produce(client, "idem", 0, idempotent_batch(pid, 1, 0, b"d")).error_code == 0
    fenced = produce(client, "idem", 0, idempotent_batch(pid, 0, 3, b"e"))
    assert fenced.error_code == error_codes.INVALID_PRODUCER_EPOCH

    data = client.request(fetch_request("idem", 0, 0), 12).responses[0].partitions[0]
    assert [r.value for r in records_of(data.records)] == [b"a", b"b", b"c", b"d"]


def test_producer_ids_are_unique(raw_client):
    client = raw_client()
    ids = {init_producer_id(client).producer_id for _ in range(20)}
    assert len(ids) == 20


def test_producer_ids_are_not_reused_after_a_restart(broker_process, tmp_path):
    data_dir = tmp_path / "ids"
    first = broker_process(data_dir)
    client = RawClient(first.host, first.port)
    before = init_producer_id(client).producer_id
    client.close()
    assert first.stop() == 0
    second = broker_process(data_dir)
    client = RawClient(second.host, second.port)
    try:
        assert init_producer_id(client).producer_id > before
    finally:
        client.close()


def test_describe_producers(raw_client):
    from odradek.protocol.messages.describe_producers import DescribeProducersRequest

    client = raw_client()
    create_topic(client, "described-producers")
    pid = init_producer_id(client).producer_id
    produce(client, "described-producers", 0, idempotent_batch(pid, 0, 0, b"a", b"b", b"c"))
    request = DescribeProducersRequest(topics=[DescribeProducersRequest.TopicRequest(
        name="described-producers", partition_indexes=[0, 3])])
    (topic,) = client.request(request, 0).topics
    known, unknown = topic.partitions
    assert unknown.error_code == error_codes.UNKNOWN_TOPIC_OR_PARTITION
    assert [(p.producer_id, p.producer_epoch, p.last_sequence) for p in known.active_producers] == [(pid, 0, 2)]
