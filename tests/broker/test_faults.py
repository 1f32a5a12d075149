"""Faults applied by a running broker, seen by a raw protocol client over TCP: an error code in
the place the API's error response carries it, a delay that holds the requests behind it in
order, a request never answered, a connection closed before or after the response, a
throttled response and the connection not read meanwhile, a partition offline for Metadata,
Produce, Fetch, ListOffsets and OffsetForLeaderEpoch until the fault is removed."""

from __future__ import annotations

import socket
import time

import pytest

from odradek import Broker
from odradek.protocol import error_codes as E
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.create_topics import CreatableTopic, CreateTopicsRequest
from odradek.protocol.messages.fetch import FetchPartition, FetchRequest, FetchTopic
from odradek.protocol.messages.list_offsets import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from odradek.protocol.messages.metadata import MetadataRequest, MetadataRequestTopic
from odradek.protocol.messages.offset_for_leader_epoch import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from odradek.protocol.messages.produce import PartitionProduceData, ProduceRequest, TopicProduceData
from odradek.protocol.records.batch import Record, build_batch

from .conftest import RawClient, raw_clients


@pytest.fixture(scope="module")
def broker():
    with Broker() as running:
        yield running


@pytest.fixture
def client(broker):
    yield from raw_clients(broker.host, broker.port)
    broker.clear_faults()


def create_topic(client, name, partitions=1):
    response = client.request(CreateTopicsRequest(topics=[CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=1)], timeout_ms=5000), 5)
    assert response.topics[0].error_code == E.NONE


def produce_request(topic, partition=0, value=b"v", acks=-1):
    batch = build_batch([Record(0, 0, None, value)], base_timestamp=int(time.time() * 1000))
    return ProduceRequest(acks=acks, timeout_ms=5000, topic_data=[TopicProduceData(
        name=topic, partition_data=[PartitionProduceData(index=partition, records=batch)])])


def partition_code(response):
    return response.responses[0].partition_responses[0].error_code


def test_error_answers_the_code_without_handling_the_request(broker, client):
    raw = client()
    create_topic(raw, "err")
    fault = broker.add_fault("error", api="Produce", error="NOT_LEADER_OR_FOLLOWER", count=2, topic="err")
    for _ in range(2):
        assert partition_code(raw.request(produce_request("err"), 9)) == E.NOT_LEADER_OR_FOLLOWER
    answer = raw.request(produce_request("err"), 9)
    assert partition_code(answer) == E.NONE
    assert answer.responses[0].partition_responses[0].base_offset == 0  # the two failed ones were not appended
    [listed] = broker.faults()
    assert (listed["id"], listed["hits"], listed["remaining"], listed["active"]) == (fault["id"], 2, 0, False)
    # The activity stream shows what the fault answered.
    produced = broker.activity(api="Produce", topic="err")
    assert [event["errors"] for event in produced][-3:] == [["NOT_LEADER_OR_FOLLOWER"]] * 2 + [[]]


def test_error_on_an_acks_0_produce_closes_the_connection(broker, client):
    raw = client()
    create_topic(raw, "acks0")
    broker.add_fault("error", api="Produce", error="TOPIC_AUTHORIZATION_FAILED", count=1)
    raw.send(produce_request("acks0", acks=0), 9)
    assert raw.is_closed_by_peer()


def test_delay_holds_the_request_and_those_behind_it_in_order(broker, client):
    raw = client()
    create_topic(raw, "delayed")
    broker.add_fault("delay", api="Produce", delay_ms=400, count=1)
    began = time.monotonic()
    first = raw.send(produce_request("delayed", value=b"first"), 9)
    second = raw.send(ApiVersionsRequest(), 0)
    third = raw.send(produce_request("delayed", value=b"second"), 9)
    answers = [raw.receive() for _ in range(3)]
    assert time.monotonic() - began >= 0.4
    assert [correlation_id for correlation_id, _ in answers] == [first, second, third]
    assert [response.responses[0].partition_responses[0].base_offset for _, response in (answers[0], answers[2])] \
        == [0, 1]


def test_no_response_leaves_the_request_and_later_ones_unanswered(broker, client):
    raw = client()
    broker.add_fault("no_response", api="Metadata", count=1)
    raw.send(MetadataRequest(topics=[]), 12)
    raw.send(ApiVersionsRequest(), 0)
    raw.sock.settimeout(0.5)
    with pytest.raises(socket.timeout):
        raw.receive()
    # Another connection is served; the hung one closes when the client gives up.
    other = client()
    assert other.request(MetadataRequest(topics=[]), 12).brokers
    assert broker.faults()[0]["hits"] == 1
    connections = broker.status()["connections"]
    raw.close()
    deadline = time.monotonic() + 5
    while broker.status()["connections"] != connections - 1:
        assert time.monotonic() < deadline, "the broker kept the connection its client closed"
        time.sleep(0.02)


def test_a_connection_left_unanswered_does_not_hold_up_shutdown():
    stopping = Broker().start()
    raw = RawClient(stopping.host, stopping.port)
    try:
        stopping.add_fault("no_response", api="ApiVersions")
        raw.send(ApiVersionsRequest(), 0)
        while not stopping.faults()[0]["hits"]:
            time.sleep(0.01)
        began = time.monotonic()
        stopping.stop()
        assert time.monotonic() - began < 3  # not the 10 s the shutdown waits for busy connections
        assert raw.is_closed_by_peer()
    finally:
        raw.close()


def test_close_before_response_closes_in_the_requests_place(broker, client):
    raw = client()
    create_topic(raw, "closed-before")
    broker.add_fault("close_before_response", api="Produce", count=1)
    earlier = raw.send(ApiVersionsRequest(), 0)
    raw.send(produce_request("closed-before"), 9)
    raw.send(ApiVersionsRequest(), 0)
    correlation_id, _ = raw.receive()
    assert correlation_id == earlier  # the response before it is sent
    assert raw.is_closed_by_peer()
    check = client()
    listed = check.request(ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsTopic(name="closed-before", partitions=[
        ListOffsetsPartition(partition_index=0, timestamp=-1)])]), 7)
    assert listed.topics[0].partitions[0].offset == 0  # never appended


def test_close_after_response_answers_then_closes(broker, client):
    raw = client()
    create_topic(raw, "closed-after")
    broker.add_fault("close_after_response", api="Produce", count=1)
    produced = raw.send(produce_request("closed-after"), 9)
    raw.send(ApiVersionsRequest(), 0)
    correlation_id, response = raw.receive()
    assert correlation_id == produced and partition_code(response) == E.NONE
    assert raw.is_closed_by_peer()


def test_throttle_sets_throttle_time_and_mutes_the_connection(broker, client):
    raw = client()
    broker.add_fault("throttle", api="ApiVersions", throttle_ms=500, count=1)
    began = time.monotonic()
    assert raw.request(ApiVersionsRequest(), 3).throttle_time_ms == 500
    assert raw.request(ApiVersionsRequest(), 3).throttle_time_ms == 0
    assert time.monotonic() - began >= 0.5  # the second was not read before the throttle ended


def test_offline_partition_until_the_fault_is_removed(broker, client):
    raw = client()
    create_topic(raw, "off", partitions=2)
    fault = broker.add_fault("offline", topic="off", partition=1)

    def metadata():
        topic = raw.request(MetadataRequest(topics=[MetadataRequestTopic(name="off")]), 12).topics[0]
        return [(p.partition_index, p.error_code, p.leader_id) for p in topic.partitions]
    assert metadata() == [(0, E.NONE, 1), (1, E.LEADER_NOT_AVAILABLE, -1)]  # node.id 1
    assert partition_code(raw.request(produce_request("off", 1), 9)) == E.NOT_LEADER_OR_FOLLOWER
    assert partition_code(raw.request(produce_request("off", 0), 9)) == E.NONE
    fetch = raw.request(FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20, topics=[
        FetchTopic(topic="off", partitions=[FetchPartition(partition=1, fetch_offset=0, partition_max_bytes=1 << 20)])]),
        11)
    assert fetch.responses[0].partitions[0].error_code == E.NOT_LEADER_OR_FOLLOWER
    offsets = raw.request(ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsTopic(name="off", partitions=[
        ListOffsetsPartition(partition_index=1, timestamp=-1)])]), 7)
    assert offsets.topics[0].partitions[0].error_code == E.NOT_LEADER_OR_FOLLOWER
    epochs = raw.request(OffsetForLeaderEpochRequest(replica_id=-1, topics=[OffsetForLeaderTopic(topic="off", partitions=[
        OffsetForLeaderPartition(partition=1, leader_epoch=0)])]), 4)
    assert epochs.topics[0].partitions[0].error_code == E.NOT_LEADER_OR_FOLLOWER
    assert broker.remove_fault(fault["id"])
    assert [code for _, code, _ in metadata()] == [E.NONE, E.NONE]
    assert partition_code(raw.request(produce_request("off", 1), 9)) == E.NONE
