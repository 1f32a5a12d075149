"""The broker over raw sockets: ApiVersions (KIP-511), Metadata, CreateTopics, Produce, Fetch,
ListOffsets, pipelining, error isolation, idle timeout. One real ``odradek serve`` process."""

from __future__ import annotations

import struct
import time
import uuid


from odradek.broker.handlers import REGISTRY
from odradek.protocol import error_codes
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.messages.delete_topics import DeleteTopicsRequest
from odradek.protocol.messages.describe_cluster import DescribeClusterRequest
from odradek.protocol.messages.fetch import FetchRequest
from odradek.protocol.messages.list_offsets import ListOffsetsRequest
from odradek.protocol.messages.metadata import MetadataRequest
from odradek.protocol.messages.produce import ProduceRequest
from odradek.protocol.records.batch import Record, build_batch, iter_batches

from .conftest import RawClient


def registry_answer():
    return sorted((entry.api_key, entry.min_version, entry.max_version) for entry in REGISTRY.advertised())


def api_list(response):
    return sorted((item.api_key, item.min_version, item.max_version) for item in response.api_keys)


def create_topic(client, name, partitions=1, version=7, **extra):
    request = CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=1, **extra)], timeout_ms=5000)
    return client.request(request, version).topics[0]


def produce(client, topic, partition, batch, acks=-1, version=9):
    request = ProduceRequest(acks=acks, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
        name=topic, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(index=partition, records=batch)])])
    return client.request(request, version).responses[0].partition_responses[0]


def fetch_request(topic, partition, offset, max_wait_ms=0, min_bytes=1, partition_max_bytes=1 << 20):
    return FetchRequest(replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=min_bytes, max_bytes=50 << 20,
                        isolation_level=0, session_id=0, session_epoch=-1, topics=[FetchRequest.FetchTopic(
                            topic=topic, partitions=[FetchRequest.FetchTopic.FetchPartition(
                                partition=partition, fetch_offset=offset, partition_max_bytes=partition_max_bytes)])])


def records_of(batch_bytes):
    return [record for batch in iter_batches(bytes(batch_bytes)) for record in batch.records]


def batch_of(*values, timestamp=1_700_000_000_000):
    return build_batch([Record(offset_delta=i, timestamp_delta=0, key=b"k%d" % i, value=value)
                        for i, value in enumerate(values)], base_timestamp=timestamp)


def test_api_versions_is_the_registry(raw_client):
    client = raw_client()
    for version in range(0, 6):
        response = client.request(ApiVersionsRequest(client_software_name="odradek-test",
                                                     client_software_version="1.0"), version)
        assert response.error_code == error_codes.NONE
        assert api_list(response) == registry_answer()


def test_api_versions_v5_checks_the_cluster_and_node_the_client_means(raw_client):
    client = raw_client()
    described = client.request(DescribeClusterRequest(), 0)
    cluster_id, node_id = described.cluster_id, described.brokers[0].broker_id

    def ask(**fields):
        return client.request(ApiVersionsRequest(client_software_name="odradek-test", client_software_version="1.0",
                                                 **fields), 5)

    for fields in ({}, {"cluster_id": cluster_id, "node_id": node_id}, {"node_id": node_id + 1}):
        answer = ask(**fields)  # right ids, or no cluster id (the check is skipped): the list
        assert answer.error_code == error_codes.NONE and api_list(answer) == registry_answer(), fields
    for fields in ({"cluster_id": "another-cluster", "node_id": node_id},
                   {"cluster_id": cluster_id, "node_id": node_id + 1},
                   {"cluster_id": cluster_id}):  # node id left at its default, -1
        answer = ask(**fields)
        assert (answer.error_code, answer.api_keys) == (error_codes.REBOOTSTRAP_REQUIRED, []), fields
    # v4 cannot carry the ids: the same request is answered normally there.
    assert client.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 4).error_code == 0


def test_api_versions_at_an_unsupported_version_answers_v0_with_its_own_range(raw_client):
    client = raw_client()
    client.send_raw(client.connection.encode_raw_request(18, 99, 7, b"\x00garbage-body"))
    correlation_id, response = client.receive()
    assert correlation_id == 7
    assert response.error_code == error_codes.UNSUPPORTED_VERSION
    # Kafka lists ApiVersions' own range only; the client retries at a version in it.
    assert api_list(response) == [entry for entry in registry_answer() if entry[0] == 18]
    # The connection stays usable.
    assert client.request(ApiVersionsRequest(), 0).error_code == error_codes.NONE


def test_an_unserved_version_of_another_api_closes_only_that_connection(raw_client):
    bad, good = raw_client(), raw_client()
    bad.send_raw(bad.connection.encode_raw_request(3, 99, 1, b""))  # Metadata v99: not served
    assert bad.is_closed_by_peer()
    assert good.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 3).error_code == error_codes.NONE


def test_bad_frames_close_only_their_connection(raw_client):
    negative, oversized, garbage, good = raw_client(), raw_client(), raw_client(), raw_client()
    negative.send_raw(struct.pack(">i", -5))
    oversized.send_raw(struct.pack(">i", 2**31 - 1))
    garbage.send_raw(struct.pack(">i", 6) + b"\x00\x03\x00\x05\x00\x00")  # truncated header
    for client in (negative, oversized, garbage):
        assert client.is_closed_by_peer()
    assert good.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 3).error_code == error_codes.NONE


def test_pipelined_requests_are_answered_in_order(raw_client):
    client = raw_client()
    create_topic(client, "pipelined")
    frames = []
    expected = []
    for i in range(30):
        correlation_id = client.next_correlation_id()
        expected.append(correlation_id)
        if i % 3 == 0:  # a long poll that cannot be satisfied: answered after its wait
            frames.append(client.connection.encode_request(
                fetch_request("pipelined", 0, 0, max_wait_ms=50, min_bytes=1 << 20), 12, correlation_id))
        elif i % 3 == 1:
            frames.append(client.connection.encode_request(MetadataRequest(topics=None), 12, correlation_id))
        else:
            frames.append(client.connection.encode_request(ApiVersionsRequest(), 2, correlation_id))
    client.send_raw(b"".join(frames))
    received = [client.receive()[0] for _ in expected]
    assert received == expected


def test_metadata_auto_creates_and_reports_the_node(shared_broker, raw_client):
    client = raw_client()
    response = client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="auto-made")],
                                              allow_auto_topic_creation=True), 12)
    assert [(b.node_id, b.host, b.port) for b in response.brokers] == [(1, "127.0.0.1", shared_broker.port)]
    assert response.controller_id == 1 and response.cluster_id
    (topic,) = response.topics
    assert (topic.name, topic.error_code, len(topic.partitions)) == ("auto-made", 0, 1)
    assert topic.topic_id != uuid.UUID(int=0)
    assert topic.partitions[0].leader_id == 1 and topic.partitions[0].isr_nodes == [1]
    refused = client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="not-made")],
                                             allow_auto_topic_creation=False), 12)
    assert refused.topics[0].error_code == error_codes.UNKNOWN_TOPIC_OR_PARTITION
    illegal = client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="bad/name")]), 12)
    assert illegal.topics[0].error_code == error_codes.INVALID_TOPIC_EXCEPTION
    # Old versions (no topic ids, no cluster id before v2) encode too.
    for version in (0, 1, 4, 9):
        old = client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="auto-made")]), version)
        assert old.topics[0].name == "auto-made" and old.topics[0].error_code == 0


def test_create_topics_errors(raw_client):
    client = raw_client()
    assert create_topic(client, "ct", partitions=2).error_code == error_codes.NONE
    assert create_topic(client, "ct").error_code == error_codes.TOPIC_ALREADY_EXISTS
    assert create_topic(client, "bad name").error_code == error_codes.INVALID_TOPIC_EXCEPTION
    assert create_topic(client, "zero", partitions=0).error_code == error_codes.INVALID_PARTITIONS
    request = CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(name="rf3", num_partitions=1,
                                                                             replication_factor=3)])
    assert client.request(request, 7).topics[0].error_code == error_codes.INVALID_REPLICATION_FACTOR
    bad_config = create_topic(client, "cfg", configs=[CreateTopicsRequest.CreatableTopic.CreatableTopicConfig(
        name="retention.ms", value="soon")])
    assert bad_config.error_code == error_codes.INVALID_CONFIG and "retention.ms" in bad_config.error_message
    validate = CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(name="dry", num_partitions=3,
                                                                              replication_factor=-1)],
                                   validate_only=True)
    answer = client.request(validate, 7).topics[0]
    assert (answer.error_code, answer.num_partitions) == (0, 3)
    listed = {topic.name for topic in client.request(MetadataRequest(topics=None), 12).topics}
    assert "ct" in listed and not listed & {"dry", "zero", "rf3", "cfg", "bad name"}


def test_produce_fetch_list_offsets_and_delete(raw_client):
    client = raw_client()
    create_topic(client, "pf")
    first = produce(client, "pf", 0, batch_of(b"a", b"b", None))
    assert (first.error_code, first.base_offset) == (0, 0)
    second = produce(client, "pf", 0, batch_of(b"c"), acks=1)
    assert (second.error_code, second.base_offset) == (0, 3)
    assert produce(client, "pf", 7, batch_of(b"x")).error_code == error_codes.UNKNOWN_TOPIC_OR_PARTITION
    assert produce(client, "pf", 0, batch_of(b"x"), acks=2).error_code == error_codes.INVALID_REQUIRED_ACKS
    corrupt = bytearray(batch_of(b"x"))
    corrupt[-1] ^= 0xFF
    assert produce(client, "pf", 0, bytes(corrupt)).error_code == error_codes.CORRUPT_MESSAGE

    response = client.request(fetch_request("pf", 0, 0), 12)
    data = response.responses[0].partitions[0]
    assert (data.error_code, data.high_watermark) == (0, 4)
    assert [record.value for record in records_of(data.records)] == [b"a", b"b", None, b"c"]
    later = client.request(fetch_request("pf", 0, 3), 12).responses[0].partitions[0]
    assert [record.value for record in records_of(later.records)] == [b"c"]
    out_of_range = client.request(fetch_request("pf", 0, 99), 12).responses[0].partitions[0]
    assert out_of_range.error_code == error_codes.OFFSET_OUT_OF_RANGE

    def list_offset(timestamp, version=7):
        request = ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsRequest.ListOffsetsTopic(
            name="pf", partitions=[ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
                partition_index=0, timestamp=timestamp)])])
        return client.request(request, version).topics[0].partitions[0]

    assert list_offset(-2).offset == 0
    assert list_offset(-1).offset == 4
    assert list_offset(1_700_000_000_000).offset == 0
    assert list_offset(1_800_000_000_000).offset == -1
    assert list_offset(-1, version=0).old_style_offsets == [4]

    deleted = client.request(DeleteTopicsRequest(topic_names=["pf"], timeout_ms=5000), 4).responses[0]
    assert deleted.error_code == 0
    gone = client.request(fetch_request("pf", 0, 0), 12).responses[0].partitions[0]
    assert gone.error_code == error_codes.UNKNOWN_TOPIC_OR_PARTITION


def test_fetch_long_poll_waits_and_wakes_on_produce(raw_client):
    waiter, producer = raw_client(), raw_client()
    create_topic(producer, "lp")
    started = time.monotonic()
    empty = waiter.request(fetch_request("lp", 0, 0, max_wait_ms=300), 12)
    assert time.monotonic() - started >= 0.25
    assert len(empty.responses[0].partitions[0].records or b"") == 0
    correlation_id = waiter.send(fetch_request("lp", 0, 0, max_wait_ms=10_000), 12)
    time.sleep(0.1)
    started = time.monotonic()
    produce(producer, "lp", 0, batch_of(b"wake"))
    received_id, woken = waiter.receive()
    assert received_id == correlation_id and time.monotonic() - started < 5
    assert [r.value for r in records_of(woken.responses[0].partitions[0].records)] == [b"wake"]


def test_fetch_returns_at_least_one_batch_and_respects_partition_max_bytes(raw_client):
    client = raw_client()
    create_topic(client, "big")
    for _i in range(3):
        produce(client, "big", 0, batch_of(b"x" * 2000))
    one = client.request(fetch_request("big", 0, 0, partition_max_bytes=10), 12).responses[0].partitions[0]
    assert len(records_of(one.records)) == 1
    all_three = client.request(fetch_request("big", 0, 0), 12).responses[0].partitions[0]
    assert len(records_of(all_three.records)) == 3


def test_describe_cluster(shared_broker, raw_client):
    response = raw_client().request(DescribeClusterRequest(), 1)
    assert response.error_code == 0 and response.controller_id == 1
    assert [(b.broker_id, b.port) for b in response.brokers] == [(1, shared_broker.port)]


def test_idle_connections_are_closed(broker_process):
    broker = broker_process(None, "connections.max.idle.ms=300")
    client = RawClient(broker.host, broker.port)
    try:
        assert client.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 3).error_code == 0
        assert client.is_closed_by_peer(timeout=5)
    finally:
        client.close()


def test_sigterm_with_a_long_poll_in_flight_answers_it_and_exits_0(broker_process):
    broker = broker_process()
    client = RawClient(broker.host, broker.port)
    try:
        create_topic(client, "stop")
        correlation_id = client.send(fetch_request("stop", 0, 0, max_wait_ms=30_000), 12)
        time.sleep(0.2)
        started = time.monotonic()
        broker.process.send_signal(15)
        assert client.receive()[0] == correlation_id
        assert broker.stop() == 0
        assert time.monotonic() - started < 10
    finally:
        client.close()


def test_acks_0_sends_nothing_and_closes_the_connection_on_error(raw_client):
    client = raw_client()
    create_topic(client, "fire-and-forget")
    request = ProduceRequest(acks=0, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
        name="fire-and-forget", partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
            index=0, records=batch_of(b"quiet"))])])
    client.send(request, 9)
    client.connection._in_flight.clear()  # acks=0: no response is coming for it
    assert client.request(ApiVersionsRequest(), 2).error_code == 0
    data = client.request(fetch_request("fire-and-forget", 0, 0), 12).responses[0].partitions[0]
    assert [r.value for r in records_of(data.records)] == [b"quiet"]
    bad = ProduceRequest(acks=0, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
        name="fire-and-forget", partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
            index=5, records=batch_of(b"lost"))])])
    client.send(bad, 9)
    assert client.is_closed_by_peer()


def test_quickstart_api_table_is_generated_from_the_registry():
    import pathlib

    from odradek.broker.config_docs import render_api_table, with_api_table

    text = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "quickstart.md").read_text()
    assert text == with_api_table(text), "run python tools/gen_config_docs.py"
    table = render_api_table()
    for entry in REGISTRY:
        versions = f"{entry.min_version}-{entry.max_version}"
        suffix = " |" if entry.advertised else ", answered but not advertised |"
        assert f"| {entry.name} | {entry.api_key} | {versions}{suffix}" in table


def test_min_insync_replicas_is_capped_at_the_replication_factor(raw_client):
    # Kafka's Partition.effectiveMinIsr = min(min.insync.replicas, replicas): a real Kafka 4.3
    # broker takes acks=all on a replication-factor-1 topic with min.insync.replicas=2.
    client = raw_client()
    Config = CreateTopicsRequest.CreatableTopic.CreatableTopicConfig
    create_topic(client, "isr2", configs=[Config(name="min.insync.replicas", value="2")])
    assert produce(client, "isr2", 0, batch_of(b"x"), acks=-1).error_code == 0
    assert produce(client, "isr2", 0, batch_of(b"y"), acks=1).error_code == 0
    assert client.request(fetch_request("isr2", 0, 0), 12).responses[0].partitions[0].high_watermark == 2


def test_old_fetch_versions_get_down_converted_message_sets(raw_client):
    from odradek.protocol.records.legacy import decode_message_set

    client = raw_client()
    Config = CreateTopicsRequest.CreatableTopic.CreatableTopicConfig
    create_topic(client, "old-fetch")
    create_topic(client, "no-down", configs=[Config(name="message.downconversion.enable", value="false")])
    produce(client, "old-fetch", 0, batch_of(b"a", b"b", None))
    produce(client, "old-fetch", 0, batch_of(b"c"))
    for version, magic in ((0, 0), (1, 0), (2, 1), (3, 1)):
        data = client.request(fetch_request("old-fetch", 0, 1), version).responses[0].partitions[0]
        assert data.error_code == 0 and data.high_watermark == 4
        messages = decode_message_set(bytes(data.records), max_decompressed_size=1 << 20)
        assert [(m.offset, m.value) for m in messages] == [(1, b"b"), (2, None), (3, b"c")]
        assert {m.magic for m in messages} == {magic}
    refused = client.request(fetch_request("no-down", 0, 0), 3).responses[0].partitions[0]
    assert refused.error_code == error_codes.UNSUPPORTED_VERSION


def test_metadata_names_illegal_topics_even_without_auto_creation(raw_client):
    client = raw_client()
    wanted = [MetadataRequest.MetadataRequestTopic(name=name) for name in ("", "bad/name", "fine-but-missing")]
    for version in (4, 9, 12):  # before v4 every Metadata request may auto-create
        response = client.request(MetadataRequest(topics=wanted, allow_auto_topic_creation=False), version)
        assert [(t.name, t.error_code) for t in response.topics] == [
            ("", error_codes.INVALID_TOPIC_EXCEPTION), ("bad/name", error_codes.INVALID_TOPIC_EXCEPTION),
            ("fine-but-missing", error_codes.UNKNOWN_TOPIC_OR_PARTITION)]
