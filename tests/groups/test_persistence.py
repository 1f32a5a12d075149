"""Groups and offsets in __consumer_offsets: Kafka's record formats, replay after a restart
(clean and kill -9)."""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import given, strategies as st
from kafka import KafkaConsumer, TopicPartition

from broker.test_server import create_topic
from odradek.broker.groups import CommittedOffset, GroupState
from odradek.broker.groups.coordinator import coordinator_partition
from odradek.broker.groups.persistence import (
    StoredGroup,
    StoredMember,
    decode_record,
    group_metadata_key,
    group_metadata_value,
    offset_commit_key,
    offset_commit_value,
    replay,
)
from odradek.protocol import error_codes as E
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.describe_groups import DescribeGroupsRequest
from odradek.protocol.messages.heartbeat import HeartbeatRequest
from odradek.protocol.messages.join_group import JoinGroupRequest, JoinGroupRequestProtocol
from odradek.protocol.messages.list_groups import ListGroupsRequest
from odradek.protocol.messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from odradek.protocol.messages.offset_fetch import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopic,
    OffsetFetchRequestTopics,
)
from odradek.protocol.messages.sync_group import SyncGroupRequest, SyncGroupRequestAssignment

from .conftest import FAST_GROUPS, RawClient, wait_until_loaded
from .test_coordinator import Answer, join_request, make, new_member, sync

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
        wait_until_loaded(client)
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


# --- the load after a start: COORDINATOR_LOAD_IN_PROGRESS until replayed ---

BULK_GROUPS = 400
BULK_PARTITIONS = 100
BULK_COMMITS_PER_GROUP = 3  # 120,000 offset records to replay


def _commit_request(group, topic, offsets):
    return OffsetCommitRequest(group_id=group, generation_id_or_member_epoch=-1, member_id="", topics=[
        OffsetCommitRequestTopic(name=topic, partitions=[
            OffsetCommitRequestPartition(partition_index=p, committed_offset=o, committed_metadata=f"m{o}")
            for p, o in offsets.items()])])


def _write_bulk_commits(client, topic):
    """Many commits, pipelined (the broker answers in order): BULK_GROUPS groups, each
    committing BULK_PARTITIONS partitions BULK_COMMITS_PER_GROUP times."""
    for round_ in range(BULK_COMMITS_PER_GROUP):
        sent = []
        for index in range(BULK_GROUPS):
            offsets = {p: round_ * 1000 + p for p in range(BULK_PARTITIONS)}
            sent.append(client.send(_commit_request(f"bulk-{index}", topic, offsets), 8))
        for correlation_id in sent:
            received_id, answer = client.receive()
            assert received_id == correlation_id
            assert all(p.error_code == E.NONE for t in answer.topics for p in t.partitions)


def _fetch_checked(client, version):
    """(version, group error, offsets without a partition error) of group "checked"."""
    if version < 8:
        fetched = client.request(OffsetFetchRequest(group_id="checked", topics=[
            OffsetFetchRequestTopic(name="bulk", partition_indexes=[0, 1])]), version)
        error = fetched.error_code if version >= 2 else fetched.topics[0].partitions[0].error_code
        topics = fetched.topics
    else:
        fetched = client.request(OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id="checked", topics=[
            OffsetFetchRequestTopics(name="bulk", partition_indexes=[0, 1])])]), version).groups[0]
        error, topics = fetched.error_code, fetched.topics
    offsets = {p.partition_index: (p.committed_offset, p.metadata)
               for t in topics for p in t.partitions if p.error_code == E.NONE}
    return version, error, offsets


def test_offset_fetch_while_loading_answers_load_in_progress_or_the_committed_offsets(broker_process, tmp_path):
    data = tmp_path / "data"
    overrides = (*FAST_GROUPS, "offsets.topic.num.partitions=1", "log.cleaner.enable=false")
    first = broker_process(data, *overrides)
    client = RawClient(first.host, first.port)
    create_topic(client, "bulk", partitions=BULK_PARTITIONS)
    _write_bulk_commits(client, "bulk")
    # The group asked for below commits last: its offsets are the last records replayed.
    _commit(client, "checked", "bulk", {0: 11, 1: 12})
    client.close()
    assert first.stop() == 0

    second = broker_process(data, *overrides)
    client = RawClient(second.host, second.port, timeout=30)
    try:
        answers = [_fetch_checked(client, 7)]
        # A real client during the load: kafka-python retries COORDINATOR_LOAD_IN_PROGRESS.
        consumer = KafkaConsumer(bootstrap_servers=f"{second.host}:{second.port}", group_id="checked",
                                 enable_auto_commit=False, request_timeout_ms=30000)
        try:
            committed = {p: consumer.committed(TopicPartition("bulk", p)) for p in (0, 1)}
        finally:
            consumer.close()
        assert committed == {0: 11, 1: 12}
        deadline = time.monotonic() + 60
        while not all(error == E.NONE for _, error, _ in answers[-3:]):
            assert time.monotonic() < deadline, "the coordinator never finished loading"
            answers.extend(_fetch_checked(client, version) for version in (1, 7, 8))
        # Never an empty or partial answer: the load error (without offsets), or the right offsets.
        for version, error, offsets in answers:
            assert (error, offsets) in ((E.COORDINATOR_LOAD_IN_PROGRESS, {}),
                                        (E.NONE, {0: (11, "m11"), 1: (12, "m12")})), (version, error, offsets)
        assert answers[0][1] == E.COORDINATOR_LOAD_IN_PROGRESS, "the load ended before the first request"
        wait_until_loaded(client)
        assert _fetch(client, "bulk-7", "bulk", [0, 99]) == {
            0: ((BULK_COMMITS_PER_GROUP - 1) * 1000, f"m{(BULK_COMMITS_PER_GROUP - 1) * 1000}"),
            99: ((BULK_COMMITS_PER_GROUP - 1) * 1000 + 99, f"m{(BULK_COMMITS_PER_GROUP - 1) * 1000 + 99}")}
        listed = client.request(ListGroupsRequest(), 4).groups
        assert len({g.group_id for g in listed}) == BULK_GROUPS + 1
    finally:
        client.close()


class PartitionedStore:
    """The coordinator's store interface over lists of records per partition, each record a
    slice of its own (CoordinatorLog is the real one, tested over a socket above); a
    partition named in ``broken`` fails its read after its first record."""

    def __init__(self, partition_count, broken=()):
        self.records = {index: [] for index in range(partition_count)}
        self.broken = set(broken)

    def partition_count(self):
        return len(self.records)

    def append(self, group_id, records, now_ms):
        self.records[coordinator_partition(group_id, len(self.records))].extend(records)

    def replay_slices(self, coordinator, index):
        for number, (key, value) in enumerate(self.records[index]):
            if number == 1 and index in self.broken:
                raise OSError("the disk refused")
            replay(coordinator, decode_record(key, value))
            yield


def _groups_in_distinct_partitions(count, partitions):
    """``count`` group ids, each in its own coordinator partition, in partition order."""
    by_partition = {}
    for number in range(1000):
        by_partition.setdefault(coordinator_partition(f"g{number}", partitions), f"g{number}")
    return [by_partition[index] for index in sorted(by_partition)][:count]


def test_groups_answer_load_in_progress_until_their_partition_is_replayed():
    writer, _ = make()
    store = PartitionedStore(3)
    writer.store = store
    first, second, third = _groups_in_distinct_partitions(3, 3)
    for group in (first, second, third):
        writer.store_offsets(group, [("t", 0, 10, -1, "a"), ("t", 1, 11, -1, "b")])

    coordinator, timer = make()
    coordinator.attach_store(store)
    member_id = "member-1"
    # Nothing replayed yet: every group waits, FindCoordinator's lookup aside.
    assert coordinator.availability() == E.COORDINATOR_LOAD_IN_PROGRESS
    for group in (first, second, third):
        assert coordinator.fetch_offsets(group, [("t", 0)]) == (E.COORDINATOR_LOAD_IN_PROGRESS, {})
        assert coordinator.validate_offset_commit(group, -1, "", None, 8)[0] == E.COORDINATOR_LOAD_IN_PROGRESS
        assert coordinator.delete_offsets(group, [("t", 0)])[0] == E.COORDINATOR_LOAD_IN_PROGRESS
        assert coordinator.delete_group(group) == E.COORDINATOR_LOAD_IN_PROGRESS
        assert coordinator.leave_group(group, [(member_id, None)])[0] == E.COORDINATOR_LOAD_IN_PROGRESS
        assert coordinator.consumer.validate_offset_fetch(group, member_id, 3) == E.COORDINATOR_LOAD_IN_PROGRESS
        # A classic member's heartbeat is answered NONE blindly, as Kafka does.
        assert coordinator.heartbeat(group, 1, member_id, None) == E.NONE
    answer = Answer()
    coordinator.join_group(join_request(group=first), answer)
    assert answer.value.error_code == E.COORDINATOR_LOAD_IN_PROGRESS
    answer = Answer()
    coordinator.sync_group(first, 1, member_id, None, None, None, {}, answer)
    assert answer.value.error_code == E.COORDINATOR_LOAD_IN_PROGRESS
    assert coordinator.availability("") == E.NONE  # an empty id is INVALID_GROUP_ID, not a partition's

    # One slice per timer turn: the first partition is served once its two records are in,
    # while the later ones still wait (half a partition is never served).
    coordinator.timer.cancel(("load",))  # drive the slices by hand: the next test runs them on the timer
    slices = coordinator.runtime._replay(store)
    next(slices)
    assert coordinator.fetch_offsets(first, None)[0] == E.COORDINATOR_LOAD_IN_PROGRESS
    next(slices)  # the partition's second record
    next(slices)  # and its end
    assert coordinator.fetch_offsets(first, None) == (E.NONE, {
        ("t", 0): writer.offsets[first][("t", 0)], ("t", 1): writer.offsets[first][("t", 1)]})
    assert coordinator.fetch_offsets(second, None)[0] == E.COORDINATOR_LOAD_IN_PROGRESS
    assert coordinator.availability() == E.COORDINATOR_LOAD_IN_PROGRESS
    for _ in slices:
        pass
    assert coordinator.availability() == E.NONE
    for group in (first, second, third):
        error, offsets = coordinator.fetch_offsets(group, None)
        assert error == E.NONE and {key: value.offset for key, value in offsets.items()} == {("t", 0): 10, ("t", 1): 11}
        assert coordinator.group(group).is_in(GroupState.EMPTY)


def test_the_timer_runs_the_load_one_slice_a_turn_and_a_failed_partition_answers_not_coordinator():
    writer, writer_timer = make(initial_rebalance_delay_ms=0)
    first, second = _groups_in_distinct_partitions(2, 2)
    store = PartitionedStore(2, broken={coordinator_partition(first, 2)})
    writer.store = store
    # The broken partition's first record is the group's metadata: the group is half replayed.
    member_id, joined = new_member(writer, group=first)
    writer_timer.advance(0)
    assert sync(writer, member_id, joined.value.generation_id, {member_id: b""}, group=first).value.error_code == E.NONE
    for group in (first, second):
        writer.store_offsets(group, [("t", 0, 1, -1, "")])
        writer.store_offsets(group, [("t", 1, 2, -1, "")])
    coordinator, timer = make()
    coordinator.attach_store(store)
    assert timer.is_scheduled(("load",))  # nothing replayed inside attach_store: the broker listens first
    assert coordinator.availability(second) == E.COORDINATOR_LOAD_IN_PROGRESS
    timer.advance(0)  # every slice, each armed by the one before
    assert not timer.is_scheduled(("load",)) and coordinator.availability() == E.NONE
    assert coordinator.availability(first) == E.NOT_COORDINATOR
    assert coordinator.fetch_offsets(first, None)[0] == E.NOT_COORDINATOR
    assert first in coordinator.groups  # half replayed, and not listed: ListGroups skips the partition
    assert [group.group_id for group in coordinator.list_groups()] == [second]
    assert {key: value.offset for key, value in coordinator.fetch_offsets(second, None)[1].items()} == {
        ("t", 0): 1, ("t", 1): 2}
