"""Random and mutated frames thrown at a running broker: it never dies, answers or closes only
the offending connection, stays within bounded memory, and a well-behaved client on another
connection keeps working throughout."""

from __future__ import annotations

import socket
import struct

from hypothesis import HealthCheck, given, settings, strategies as st

from odradek.protocol.connection import ClientConnection
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.messages.fetch import FetchRequest
from odradek.protocol.messages.list_offsets import ListOffsetsRequest
from odradek.protocol.messages.metadata import MetadataRequest
from odradek.protocol.messages.produce import ProduceRequest
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
