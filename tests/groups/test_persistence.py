"""Groups and offsets in __consumer_offsets: Kafka's record formats, replay after a restart
(clean and kill -9)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, strategies as st

from broker.test_server import create_topic
from odradek.broker.groups import CommittedOffset
from odradek.broker.groups.persistence import (
    StoredGroup,
    StoredMember,
    decode_record,
    group_metadata_key,
    group_metadata_value,
    offset_commit_key,
    offset_commit_value,
)
from odradek.protocol import error_codes as E
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.describe_groups import DescribeGroupsRequest
from odradek.protocol.messages.heartbeat import HeartbeatRequest
from odradek.protocol.messages.join_group import JoinGroupRequest, JoinGroupRequestProtocol
from odradek.protocol.messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestTopic
from odradek.protocol.messages.sync_group import SyncGroupRequest, SyncGroupRequestAssignment

from .conftest import FAST_GROUPS, RawClient

# --- the record formats ---


def test_offset_commit_record_bytes_are_kafkas():
    key = offset_commit_key("g", "t", 3)
    # int16 key version 1, then group, topic (int16-length strings) and the partition
    assert key == struct.pack(">hh1sh1si", 1, 1, b"g", 1, b"t", 3)
    value = offset_commit_value(CommittedOffset(42, 5, "m", 1000))
    # value version 3: offset, leader epoch, metadata, commit timestamp
    assert value == struct.pack(">hqih1sq", 3, 42, 5, 1, b"m", 1000)
    with_expiry = offset_commit_value(CommittedOffset(42, -1, "", 1000, 2000))
    assert with_expiry == struct.pack(">hqhqq", 1, 42, 0, 1000, 2000)  # version 1 carries the expiry


def test_records_round_trip():
    committed = CommittedOffset(7, 2, "meta", 123, None)
    assert decode_record(offset_commit_key("g", "t", 1), offset_commit_value(committed)) == ("offset", "g", "t", 1, committed)
    assert decode_record(offset_commit_key("g", "t", 1), None) == ("offset", "g", "t", 1, None)
    stored = StoredGroup("consumer", 4, "range", "m-1", 99, (
        StoredMember("m-1", "pod-1", "client", "/127.0.0.1", 30000, 10000, b"sub", b"assign"),
        StoredMember("m-2", None, "client", "/127.0.0.2", 30000, 10000, b"", b"")))
    assert decode_record(group_metadata_key("g"), group_metadata_value(stored)) == ("group", "g", stored)
    assert decode_record(group_metadata_key("g"), None) == ("group", "g", None)
    # Share-group records (key versions 9+) are not ours: skipped, not an error (KIP-848
    # consumer-group records, key versions 3-8, are: tests/groups/test_consumer_protocol.py)
    assert decode_record(struct.pack(">hh1s", 11, 1, b"g"), b"\x00\x00") is None


@given(st.binary(max_size=64), st.one_of(st.none(), st.binary(max_size=64)))
def test_any_bytes_decode_or_raise_a_protocol_error(key, value):
    try:
        decode_record(key, value)
    except ProtocolError:
        pass


@given(st.text(max_size=20), st.text(max_size=20), st.integers(0, 2**31 - 1), st.integers(-1, 2**63 - 1),
       st.integers(-1, 2**31 - 1), st.text(max_size=30), st.integers(0, 2**62), st.one_of(st.none(), st.integers(0, 2**62)))
def test_offset_records_round_trip_for_any_values(group, topic, partition, offset, epoch, metadata, timestamp, expiry):
    committed = CommittedOffset(offset, epoch if expiry is None else -1, metadata, timestamp, expiry)
    assert decode_record(offset_commit_key(group, topic, partition), offset_commit_value(committed)) == (
        "offset", group, topic, partition, committed)


# --- replay after a restart ---


def _commit(client, group, topic, offsets, generation=-1, member=""):
    answer = client.request(OffsetCommitRequest(group_id=group, generation_id_or_member_epoch=generation, member_id=member,
                                                topics=[OffsetCommitRequestTopic(name=topic, partitions=[
                                                    OffsetCommitRequestPartition(partition_index=p, committed_offset=o,
                                                                                 committed_metadata=f"m{o}")
                                                    for p, o in offsets.items()])]), 8)
    assert all(p.error_code == E.NONE for p in answer.topics[0].partitions)


def _fetch(client, group, topic, partitions):
    answer = client.request(OffsetFetchRequest(group_id=group, topics=[
        OffsetFetchRequestTopic(name=topic, partition_indexes=partitions)]), 7)
    return {p.partition_index: (p.committed_offset, p.metadata) for p in answer.topics[0].partitions}


def _stable_member(client, group):
    """One member through JoinGroup (v3) and SyncGroup: (member id, generation)."""
    joined = client.request(JoinGroupRequest(group_id=group, session_timeout_ms=30000, rebalance_timeout_ms=30000,
                                             protocol_type="consumer", protocols=[
                                                 JoinGroupRequestProtocol(name="range", metadata=b"sub")]), 3)
    assert joined.error_code == E.NONE
    synced = client.request(SyncGroupRequest(group_id=group, generation_id=joined.generation_id,
                                             member_id=joined.member_id, assignments=[SyncGroupRequestAssignment(
                                                 member_id=joined.member_id, assignment=b"assigned")]), 3)
    assert synced.error_code == E.NONE
    return joined.member_id, joined.generation_id


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_groups_and_offsets_come_back_after_a_restart(broker_process, tmp_path, stop):
    data = tmp_path / "data"
    first = broker_process(data, *FAST_GROUPS)
    client = RawClient(first.host, first.port)
    create_topic(client, "kept", partitions=3)
    _commit(client, "simple", "kept", {0: 5, 1: 6})
    _commit(client, "simple", "kept", {1: 16})  # the later commit wins
    member_id, generation = _stable_member(client, "managed")
    _commit(client, "managed", "kept", {2: 9}, generation=generation, member=member_id)
    client.close()
    if stop == "sigterm":
        assert first.stop() == 0
    else:
        first.kill()

    second = broker_process(data, *FAST_GROUPS)
    client = RawClient(second.host, second.port)
    try:
        assert _fetch(client, "simple", "kept", [0, 1, 2]) == {0: (5, "m5"), 1: (16, "m16"), 2: (-1, "")}
        assert _fetch(client, "managed", "kept", [2]) == {2: (9, "m9")}
        described = client.request(DescribeGroupsRequest(groups=["managed", "simple"]), 5).groups
        managed, simple = described
        assert managed.group_state == "Stable" and managed.protocol_data == "range"
        assert [(m.member_id, bytes(m.member_metadata), bytes(m.member_assignment)) for m in managed.members] == [
            (member_id, b"sub", b"assigned")]
        assert simple.group_state == "Empty"
        # The member carries on in its generation, as if the broker had never gone away.
        beat = client.request(HeartbeatRequest(group_id="managed", generation_id=generation, member_id=member_id), 3)
        assert beat.error_code == E.NONE
    finally:
        client.close()
