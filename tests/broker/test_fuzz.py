"""Random and mutated frames thrown at a running broker: it never dies, answers or closes only
the offending connection, stays within bounded memory, and a well-behaved client on another
connection keeps working throughout."""

from __future__ import annotations

import socket
import struct
import uuid

from hypothesis import HealthCheck, given, settings, strategies as st

from odradek.protocol.connection import ClientConnection
from odradek.protocol.messages.add_offsets_to_txn import AddOffsetsToTxnRequest
from odradek.protocol.messages.add_partitions_to_txn import (
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
)
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.create_partitions import CreatePartitionsRequest
from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.messages.delete_records import DeleteRecordsRequest
from odradek.protocol.messages.describe_cluster import DescribeClusterRequest
from odradek.protocol.messages.describe_configs import DescribeConfigsRequest
from odradek.protocol.messages.describe_log_dirs import DescribeLogDirsRequest
from odradek.protocol.messages.describe_topic_partitions import DescribeTopicPartitionsRequest
from odradek.protocol.messages.describe_transactions import DescribeTransactionsRequest
from odradek.protocol.messages.end_txn import EndTxnRequest
from odradek.protocol.messages.incremental_alter_configs import IncrementalAlterConfigsRequest
from odradek.protocol.messages.init_producer_id import InitProducerIdRequest
from odradek.protocol.messages.offset_for_leader_epoch import OffsetForLeaderEpochRequest
from odradek.protocol.messages.fetch import FetchRequest
from odradek.protocol.messages.get_telemetry_subscriptions import GetTelemetrySubscriptionsRequest
from odradek.protocol.messages.list_offsets import ListOffsetsRequest
from odradek.protocol.messages.list_transactions import ListTransactionsRequest
from odradek.protocol.messages.metadata import MetadataRequest
from odradek.protocol.messages.produce import ProduceRequest
from odradek.protocol.messages.push_telemetry import PushTelemetryRequest
from odradek.protocol.messages.write_txn_markers import (
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
)
from odradek.protocol.records.batch import Record, build_batch

from .conftest import RawClient


def _valid_frames() -> list[bytes]:
    client = ClientConnection()
    batch = build_batch([Record(0, 0, b"k", b"v")])
    messages = [
        (ApiVersionsRequest(client_software_name="fuzz", client_software_version="1"), 3),
        (MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="fuzzed")]), 12),
        (CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(name="fuzzed", num_partitions=1,
                                                                        replication_factor=1)]), 7),
        (ProduceRequest(acks=1, timeout_ms=1000, topic_data=[ProduceRequest.TopicProduceData(
            name="fuzzed", partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
                index=0, records=batch)])]), 9),
        (FetchRequest(max_wait_ms=0, min_bytes=1, max_bytes=1 << 20, topics=[FetchRequest.FetchTopic(
            topic="fuzzed", partitions=[FetchRequest.FetchTopic.FetchPartition(
                partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])]), 12),
        (ListOffsetsRequest(topics=[ListOffsetsRequest.ListOffsetsTopic(
            name="fuzzed", partitions=[ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
                partition_index=0, timestamp=-1)])]), 7),
        (DescribeConfigsRequest(resources=[DescribeConfigsRequest.DescribeConfigsResource(
            resource_type=2, resource_name="fuzzed", configuration_keys=None)], include_synonyms=True), 4),
        (IncrementalAlterConfigsRequest(resources=[IncrementalAlterConfigsRequest.AlterConfigsResource(
            resource_type=2, resource_name="fuzzed", configs=[IncrementalAlterConfigsRequest.AlterConfigsResource
                                                              .AlterableConfig(name="cleanup.policy",
                                                                               config_operation=2,
                                                                               value="compact")])]), 1),
        (CreatePartitionsRequest(topics=[CreatePartitionsRequest.CreatePartitionsTopic(
            name="fuzzed", count=2, assignments=None)], validate_only=True), 3),
        (DeleteRecordsRequest(topics=[DeleteRecordsRequest.DeleteRecordsTopic(
            name="fuzzed", partitions=[DeleteRecordsRequest.DeleteRecordsTopic.DeleteRecordsPartition(
                partition_index=0, offset=0)])]), 2),
        (OffsetForLeaderEpochRequest(topics=[OffsetForLeaderEpochRequest.OffsetForLeaderTopic(
            topic="fuzzed", partitions=[OffsetForLeaderEpochRequest.OffsetForLeaderTopic.OffsetForLeaderPartition(
                partition=0, leader_epoch=0)])]), 4),
        (DescribeLogDirsRequest(topics=None), 4),
        (DescribeTopicPartitionsRequest(topics=[DescribeTopicPartitionsRequest.TopicRequest(name="fuzzed")],
                                        response_partition_limit=1), 0),
        (InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=1000), 4),
        (DescribeClusterRequest(), 1),
        (GetTelemetrySubscriptionsRequest(), 0),
        (PushTelemetryRequest(client_instance_id=uuid.UUID(int=7), subscription_id=1, metrics=b"m"), 0),
    ]
    return [client.encode_request(message, version, 1) for message, version in messages]


VALID = _valid_frames()


@st.composite
def hostile_frames(draw) -> bytes:
    kind = draw(st.sampled_from(["random", "mutated", "truncated", "resized"]))
    if kind == "random":
        payload = draw(st.binary(max_size=300))
        return struct.pack(">i", len(payload)) + payload
    frame = bytearray(draw(st.sampled_from(VALID)))
    if kind == "mutated":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(4, len(frame) - 1))
            frame[position] = draw(st.integers(0, 255))
        return bytes(frame)
    if kind == "truncated":
        cut = draw(st.integers(5, len(frame) - 1))
        payload = frame[4:cut]
        return struct.pack(">i", len(payload)) + bytes(payload)
    size = draw(st.one_of(st.integers(-(2**31), -1), st.integers(2**27, 2**31 - 1)))
    return struct.pack(">i", size) + bytes(frame[4:])


def _throw(broker, data: bytes) -> None:
    sock = socket.create_connection((broker.host, broker.port), timeout=5)
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):  # whatever it answers, until it closes
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        sock.close()


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_hostile_frames_never_hurt_the_broker_or_other_connections(shared_broker):
    witness = RawClient(shared_broker.host, shared_broker.port)

    @settings(max_examples=int(__import__("os").environ.get("ODRADEK_FUZZ_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(hostile_frames())
    def throw(data):
        _throw(shared_broker, data)
        assert shared_broker.process.poll() is None, shared_broker.log()
        response = witness.request(ApiVersionsRequest(client_software_name="w", client_software_version="1"), 3)
        assert response.error_code == 0

    try:
        throw()
    finally:
        witness.close()
    assert _rss_kb(shared_broker.process.pid) < 150_000


INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
NAMES = st.sampled_from(["fuzzed", "", "missing", "a" * 300, "bad name"])


@st.composite
def odd_but_valid_requests(draw):
    """Requests that decode fine but carry values a careful client would not send: every
    handler must answer them (with error codes), never fail."""
    kind = draw(st.sampled_from(["fetch", "list_offsets", "create_partitions", "delete_records", "epochs",
                                 "topic_partitions", "create_topics", "init_producer_id", "telemetry",
                                 "transactions"]))
    name = draw(NAMES)
    if kind == "fetch":
        return FetchRequest(max_wait_ms=draw(st.integers(-5, 50)), min_bytes=draw(INT32), max_bytes=draw(INT32),
                            isolation_level=draw(st.integers(-1, 2)),
                            session_id=draw(st.one_of(st.sampled_from([0, 0, 1, -1]), INT32)),
                            session_epoch=draw(st.one_of(st.sampled_from([-1, 0, 1, 7]), INT32)),
                            topics=[FetchRequest.FetchTopic(topic=name, partitions=[
                                FetchRequest.FetchTopic.FetchPartition(
                                    partition=draw(INT32), fetch_offset=draw(INT64),
                                    partition_max_bytes=draw(INT32), current_leader_epoch=draw(INT32))])],
                            forgotten_topics_data=[FetchRequest.ForgottenTopic(
                                topic=draw(NAMES), partitions=draw(st.lists(INT32, max_size=2)))]), 12
    if kind == "list_offsets":
        return ListOffsetsRequest(isolation_level=draw(st.integers(-1, 2)), topics=[ListOffsetsRequest.ListOffsetsTopic(
            name=name, partitions=[ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
                partition_index=draw(st.integers(-1, 3)), timestamp=draw(INT64),
                current_leader_epoch=draw(st.integers(-2, 2)))])]), draw(st.sampled_from([7, 9]))
    if kind == "create_partitions":
        return CreatePartitionsRequest(topics=[CreatePartitionsRequest.CreatePartitionsTopic(
            name=name, count=draw(st.integers(-3, 5)),
            assignments=draw(st.one_of(st.none(), st.lists(st.builds(
                CreatePartitionsRequest.CreatePartitionsTopic.CreatePartitionsAssignment,
                broker_ids=st.lists(st.integers(-1, 3), max_size=3)), max_size=4))))],
            validate_only=True), 3
    if kind == "delete_records":
        return DeleteRecordsRequest(topics=[DeleteRecordsRequest.DeleteRecordsTopic(
            name=name, partitions=[DeleteRecordsRequest.DeleteRecordsTopic.DeleteRecordsPartition(
                partition_index=draw(st.integers(-1, 2)), offset=draw(st.integers(-3, 3)))])]), 2
    if kind == "epochs":
        return OffsetForLeaderEpochRequest(topics=[OffsetForLeaderEpochRequest.OffsetForLeaderTopic(
            topic=name, partitions=[OffsetForLeaderEpochRequest.OffsetForLeaderTopic.OffsetForLeaderPartition(
                partition=draw(st.integers(-1, 2)), leader_epoch=draw(INT32),
                current_leader_epoch=draw(st.integers(-2, 2)))])]), 4
    if kind == "topic_partitions":
        cursor = draw(st.one_of(st.none(), st.builds(DescribeTopicPartitionsRequest.Cursor, topic_name=NAMES,
                                                     partition_index=INT32)))
        return DescribeTopicPartitionsRequest(topics=[DescribeTopicPartitionsRequest.TopicRequest(name=name)],
                                              response_partition_limit=draw(INT32), cursor=cursor), 0
    if kind == "create_topics":
        return CreateTopicsRequest(validate_only=True, topics=[CreateTopicsRequest.CreatableTopic(
            name=name, num_partitions=draw(st.integers(-2, 3)), replication_factor=draw(st.integers(-2, 3)),
            assignments=draw(st.lists(st.builds(CreateTopicsRequest.CreatableTopic.CreatableReplicaAssignment,
                                                partition_index=st.integers(-1, 3),
                                                broker_ids=st.lists(st.integers(-1, 2), max_size=2)), max_size=3)),
            configs=[CreateTopicsRequest.CreatableTopic.CreatableTopicConfig(
                name=draw(st.sampled_from(["retention.ms", "cleanup.policy", "nope", "segment.bytes"])),
                value=draw(st.one_of(st.none(), st.text(max_size=8))))])]), 7
    if kind == "telemetry":
        instance_id = draw(st.sampled_from([uuid.UUID(int=0), uuid.UUID(int=1), uuid.UUID(int=7)]))
        if draw(st.booleans()):
            return GetTelemetrySubscriptionsRequest(client_instance_id=instance_id), 0
        return PushTelemetryRequest(client_instance_id=instance_id, subscription_id=draw(INT32),
                                    terminating=draw(st.booleans()), compression_type=draw(st.integers(-128, 127)),
                                    metrics=draw(st.binary(max_size=64))), 0
    if kind == "transactions":
        return draw(transaction_requests(name))
    return InitProducerIdRequest(transactional_id=draw(st.one_of(st.none(), st.just("t"))),
                                 transaction_timeout_ms=draw(INT32), producer_id=draw(st.integers(-2, 5)),
                                 producer_epoch=draw(st.integers(-2, 32767))), 4


@st.composite
def transaction_requests(draw, topic: str):
    """The transaction APIs with odd ids, epochs, partitions and filters."""
    transactional_id = draw(st.sampled_from(["t", "", "fuzz-txn", "\u00e9"]))
    producer_id, epoch = draw(st.integers(-2, 5)), draw(st.integers(-2, 32767))
    partitions = draw(st.lists(st.integers(-1, 3), max_size=3))
    kind = draw(st.sampled_from(["add", "add_batched", "offsets", "end", "markers", "describe", "list", "produce"]))
    if kind == "add":
        return AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=transactional_id, v3_and_below_producer_id=producer_id,
            v3_and_below_producer_epoch=epoch,
            v3_and_below_topics=[AddPartitionsToTxnTopic(name=topic, partitions=partitions)]), draw(st.integers(0, 3))
    if kind == "add_batched":
        return AddPartitionsToTxnRequest(transactions=[AddPartitionsToTxnTransaction(
            transactional_id=transactional_id, producer_id=producer_id, producer_epoch=epoch,
            verify_only=draw(st.booleans()),
            topics=draw(st.lists(st.just(AddPartitionsToTxnTopic(name=topic, partitions=partitions)), max_size=2)))]), 5
    if kind == "offsets":
        return AddOffsetsToTxnRequest(transactional_id=transactional_id, producer_id=producer_id, producer_epoch=epoch,
                                      group_id=draw(st.sampled_from(["", "g", topic]))), draw(st.integers(0, 4))
    if kind == "end":
        return EndTxnRequest(transactional_id=transactional_id, producer_id=producer_id, producer_epoch=epoch,
                             committed=draw(st.booleans())), draw(st.integers(0, 5))
    if kind == "markers":
        return WriteTxnMarkersRequest(markers=[WritableTxnMarker(
            producer_id=producer_id, producer_epoch=epoch, transaction_result=draw(st.booleans()),
            coordinator_epoch=draw(INT32), topics=[WritableTxnMarkerTopic(name=topic, partition_indexes=partitions)])]), 1
    if kind == "describe":
        return DescribeTransactionsRequest(transactional_ids=[transactional_id]), 0
    if kind == "list":
        return ListTransactionsRequest(state_filters=draw(st.lists(st.sampled_from(["Ongoing", "Bogus", ""]), max_size=2)),
                                       producer_id_filters=draw(st.lists(st.integers(-1, 5), max_size=2)),
                                       duration_filter=draw(st.integers(-2, 10**12)),
                                       transactional_id_pattern=draw(st.sampled_from([None, "", ".*", "(", "t.*"]))), 2
    batch = build_batch([Record(0, 0, b"k", b"v")], producer_id=producer_id, producer_epoch=max(epoch, -1),
                        base_sequence=0, transactional=draw(st.booleans()))
    return ProduceRequest(transactional_id=transactional_id, acks=-1, timeout_ms=1000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic, partition_data=[
            ProduceRequest.TopicProduceData.PartitionProduceData(index=draw(st.integers(-1, 1)), records=batch)])]), \
        draw(st.sampled_from([9, 11, 12]))


def test_odd_but_valid_requests_are_answered(shared_broker):
    client = RawClient(shared_broker.host, shared_broker.port)

    @settings(max_examples=int(__import__("os").environ.get("ODRADEK_FUZZ_EXAMPLES", "60")), deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(odd_but_valid_requests())
    def ask(item):
        message, version = item
        client.request(message, version)  # a handler failure would close the connection here

    try:
        ask()
    finally:
        client.close()
