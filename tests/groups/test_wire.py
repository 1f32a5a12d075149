"""The group APIs over a socket against a real broker, at every version they serve."""

from __future__ import annotations

import uuid

import pytest

from broker.test_server import create_topic  # tests/broker's helper
from odradek.protocol import error_codes as E
from odradek.protocol.messages.delete_groups import DeleteGroupsRequest
from odradek.protocol.messages.describe_groups import DescribeGroupsRequest
from odradek.protocol.messages.find_coordinator import FindCoordinatorRequest
from odradek.protocol.messages.heartbeat import HeartbeatRequest
from odradek.protocol.messages.join_group import JoinGroupRequest, JoinGroupRequestProtocol
from odradek.protocol.messages.leave_group import LeaveGroupRequest, MemberIdentity
from odradek.protocol.messages.list_groups import ListGroupsRequest
from odradek.protocol.messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics
from odradek.protocol.messages.sync_group import SyncGroupRequest, SyncGroupRequestAssignment


@pytest.mark.parametrize("version", range(0, 4))
def test_find_coordinator_single_key(group_client, group_broker, version):
    client = group_client()
    answer = client.request(FindCoordinatorRequest(key="some-group", key_type=0), version)
    assert answer.error_code == E.NONE
    assert (answer.host, answer.port) == (group_broker.host, group_broker.port) and answer.node_id >= 0
    if version >= 1:
        transaction = client.request(FindCoordinatorRequest(key="tx", key_type=1), version)
        assert transaction.error_code == E.NONE and transaction.port == group_broker.port
        unknown = client.request(FindCoordinatorRequest(key="x", key_type=7), version)
        assert unknown.error_code == E.INVALID_REQUEST and unknown.node_id == -1


@pytest.mark.parametrize("version", range(4, 7))
def test_find_coordinator_batched_keys(group_client, group_broker, version):
    client = group_client()
    answer = client.request(FindCoordinatorRequest(coordinator_keys=["a", "b", "c"], key_type=0), version)
    assert [entry.key for entry in answer.coordinators] == ["a", "b", "c"]
    assert all(entry.error_code == E.NONE and entry.port == group_broker.port for entry in answer.coordinators)
    share = client.request(FindCoordinatorRequest(coordinator_keys=["s"], key_type=2), version)
    assert share.coordinators[0].error_code == E.INVALID_REQUEST


def _join(client, version, group, member_id="", instance=None, metadata=b"meta"):
    request = JoinGroupRequest(group_id=group, session_timeout_ms=6000, rebalance_timeout_ms=10000,
                               member_id=member_id, group_instance_id=instance if version >= 5 else None,
                               protocol_type="consumer",
                               protocols=[JoinGroupRequestProtocol(name="range", metadata=metadata)])
    return client.request(request, version)


@pytest.mark.parametrize("version", range(0, 10))
def test_one_member_lifecycle_at_every_join_version(group_client, version):
    client = group_client()
    group = f"lifecycle-{version}"
    answer = _join(client, version, group)
    if version >= 4:
        assert answer.error_code == E.MEMBER_ID_REQUIRED and answer.member_id
        answer = _join(client, version, group, member_id=answer.member_id)
    assert answer.error_code == E.NONE and answer.generation_id == 1
    member_id = answer.member_id
    assert answer.leader == member_id and answer.protocol_name == "range"
    assert [(m.member_id, bytes(m.metadata)) for m in answer.members] == [(member_id, b"meta")]
    if version >= 7:
        assert answer.protocol_type == "consumer"
    sync_version, heartbeat_version, leave_version = min(version, 5), min(version, 4), min(version, 5)
    synced = client.request(SyncGroupRequest(group_id=group, generation_id=1, member_id=member_id, assignments=[
        SyncGroupRequestAssignment(member_id=member_id, assignment=b"assigned")]), sync_version)
    assert synced.error_code == E.NONE and bytes(synced.assignment) == b"assigned"
    beat = client.request(HeartbeatRequest(group_id=group, generation_id=1, member_id=member_id), heartbeat_version)
    assert beat.error_code == E.NONE
    stale = client.request(HeartbeatRequest(group_id=group, generation_id=0, member_id=member_id), heartbeat_version)
    assert stale.error_code == E.ILLEGAL_GENERATION
    described = client.request(DescribeGroupsRequest(groups=[group]), min(version, 6)).groups[0]
    assert described.group_state == "Stable" and described.protocol_data == "range"
    assert [(m.member_id, bytes(m.member_assignment)) for m in described.members] == [(member_id, b"assigned")]
    if leave_version >= 3:
        left = client.request(LeaveGroupRequest(group_id=group, members=[MemberIdentity(member_id=member_id)]),
                              leave_version)
        assert left.error_code == E.NONE and [m.error_code for m in left.members] == [E.NONE]
    else:
        left = client.request(LeaveGroupRequest(group_id=group, member_id=member_id), leave_version)
        assert left.error_code == E.NONE
    again = client.request(LeaveGroupRequest(group_id=group, member_id=member_id), 0)
    assert again.error_code == E.UNKNOWN_MEMBER_ID


@pytest.mark.parametrize("version", range(0, 11))
def test_offset_commit_and_fetch_round_trip_at_every_version(group_client, version):
    client = group_client()
    topic = f"offsets-v{version}"
    created = create_topic(client, topic, partitions=2)
    topic_id = created.topic_id
    group = f"simple-{version}"
    metadata = "checkpoint" if version else "v0"
    commit_topic = (OffsetCommitRequestTopic(topic_id=topic_id, partitions=[]) if version >= 10
                    else OffsetCommitRequestTopic(name=topic, partitions=[]))
    commit_topic.partitions = [OffsetCommitRequestPartition(partition_index=0, committed_offset=42,
                                                            committed_metadata=metadata,
                                                            committed_leader_epoch=0 if version >= 6 else -1),
                               OffsetCommitRequestPartition(partition_index=9, committed_offset=1)]
    committed = client.request(OffsetCommitRequest(group_id=group, topics=[commit_topic]), version)
    assert [p.error_code for p in committed.topics[0].partitions] == [E.NONE, E.UNKNOWN_TOPIC_OR_PARTITION]
    fetch_version = min(version, 10)
    if fetch_version >= 8:
        wanted = (OffsetFetchRequestTopics(topic_id=topic_id, partition_indexes=[0, 1]) if fetch_version >= 10
                  else OffsetFetchRequestTopics(name=topic, partition_indexes=[0, 1]))
        answer = client.request(OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id=group, topics=[wanted])]),
                                fetch_version)
        partitions = answer.groups[0].topics[0].partitions
        assert answer.groups[0].error_code == E.NONE
    else:
        answer = client.request(OffsetFetchRequest(group_id=group, topics=[
            OffsetFetchRequestTopic(name=topic, partition_indexes=[0, 1])]), fetch_version)
        partitions = answer.topics[0].partitions
    assert [(p.partition_index, p.committed_offset, p.metadata, p.error_code) for p in partitions] == [
        (0, 42, metadata, E.NONE), (1, -1, "", E.NONE)]
    if fetch_version >= 5:
        assert partitions[0].committed_leader_epoch == (0 if version >= 6 else -1)


def test_offset_fetch_all_topics_and_several_groups(group_client):
    client = group_client()
    create_topic(client, "fetch-all", partitions=3)
    for group, offset in (("all-1", 5), ("all-2", 6)):
        client.request(OffsetCommitRequest(group_id=group, topics=[OffsetCommitRequestTopic(name="fetch-all", partitions=[
            OffsetCommitRequestPartition(partition_index=index, committed_offset=offset + index) for index in (0, 2)])]), 8)
    everything = client.request(OffsetFetchRequest(group_id="all-1", topics=None), 7)
    assert [(t.name, [(p.partition_index, p.committed_offset) for p in t.partitions]) for t in everything.topics] == [
        ("fetch-all", [(0, 5), (2, 7)])]
    batched = client.request(OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id="all-1", topics=None),
                                                        OffsetFetchRequestGroup(group_id="all-2", topics=None),
                                                        OffsetFetchRequestGroup(group_id="none", topics=None)]), 9)
    assert [(g.group_id, [p.committed_offset for t in g.topics for p in t.partitions]) for g in batched.groups] == [
        ("all-1", [5, 7]), ("all-2", [6, 8]), ("none", [])]
    by_id = client.request(OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id="all-1", topics=[
        OffsetFetchRequestTopics(topic_id=uuid.uuid4(), partition_indexes=[0])])]), 10)
    assert by_id.groups[0].topics[0].partitions[0].error_code == E.UNKNOWN_TOPIC_ID


def test_offset_commit_errors(group_client):
    client = group_client()
    create_topic(client, "commit-errors")
    too_long = client.request(OffsetCommitRequest(group_id="errors", topics=[OffsetCommitRequestTopic(
        name="commit-errors", partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=1,
                                                                       committed_metadata="x" * 5000)])]), 8)
    assert too_long.topics[0].partitions[0].error_code == E.OFFSET_METADATA_TOO_LARGE

    def commit_with(generation, member, version):
        return client.request(OffsetCommitRequest(group_id="no-such-group", generation_id_or_member_epoch=generation,
                                                  member_id=member, topics=[OffsetCommitRequestTopic(
                                                      name="commit-errors", partitions=[OffsetCommitRequestPartition(
                                                          partition_index=0, committed_offset=1)])]),
                              version).topics[0].partitions[0].error_code

    assert commit_with(3, "member", 8) == E.ILLEGAL_GENERATION
    assert commit_with(3, "member", 9) == E.GROUP_ID_NOT_FOUND
    unknown_id = client.request(OffsetCommitRequest(group_id="errors", topics=[OffsetCommitRequestTopic(
        topic_id=uuid.uuid4(), partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=1)])]), 10)
    assert unknown_id.topics[0].partitions[0].error_code == E.UNKNOWN_TOPIC_ID


def test_list_describe_and_delete_groups(group_client):
    client = group_client()
    create_topic(client, "admin-groups")
    client.request(OffsetCommitRequest(group_id="admin-empty", topics=[OffsetCommitRequestTopic(
        name="admin-groups", partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=3)])]), 8)
    member = _join(client, 3, "admin-busy")
    assert member.error_code == E.NONE

    def listed(version, **filters):
        answer = client.request(ListGroupsRequest(**filters), version)
        return {g.group_id: g for g in answer.groups if g.group_id.startswith("admin-")}

    assert set(listed(0)) == {"admin-empty", "admin-busy"}
    states = listed(4, states_filter=["completingrebalance"])
    assert list(states) == ["admin-busy"] and states["admin-busy"].group_state == "CompletingRebalance"
    assert listed(5, types_filter=["consumer"]) == {}
    assert listed(5, types_filter=["classic"])["admin-empty"].group_type == "classic"

    described = {g.group_id: g for g in client.request(DescribeGroupsRequest(
        groups=["admin-empty", "admin-busy", "admin-missing"], include_authorized_operations=True), 5).groups}
    assert described["admin-empty"].group_state == "Empty" and described["admin-missing"].group_state == "Dead"
    busy = described["admin-busy"]
    assert busy.group_state == "CompletingRebalance" and busy.protocol_type == "consumer"
    assert busy.members[0].client_host == "/127.0.0.1" and bytes(busy.members[0].member_metadata) == b""
    assert busy.authorized_operations > 0
    missing_v6 = client.request(DescribeGroupsRequest(groups=["admin-missing"]), 6).groups[0]
    assert missing_v6.error_code == E.GROUP_ID_NOT_FOUND

    deleted = client.request(DeleteGroupsRequest(groups_names=["admin-empty", "admin-busy", "admin-missing"]), 2)
    assert [(r.group_id, r.error_code) for r in deleted.results] == [
        ("admin-empty", E.NONE), ("admin-busy", E.NON_EMPTY_GROUP), ("admin-missing", E.GROUP_ID_NOT_FOUND)]
    fetched = client.request(OffsetFetchRequest(group_id="admin-empty", topics=[
        OffsetFetchRequestTopic(name="admin-groups", partition_indexes=[0])]), 7)
    assert fetched.topics[0].partitions[0].committed_offset == -1


def test_offset_delete(group_client):
    from odradek.protocol.messages.offset_delete import (
        OffsetDeleteRequest,
        OffsetDeleteRequestPartition,
        OffsetDeleteRequestTopic,
    )

    client = group_client()
    create_topic(client, "delete-offsets", partitions=2)
    client.request(OffsetCommitRequest(group_id="deleting", topics=[OffsetCommitRequestTopic(name="delete-offsets", partitions=[
        OffsetCommitRequestPartition(partition_index=index, committed_offset=4) for index in (0, 1)])]), 8)
    answer = client.request(OffsetDeleteRequest(group_id="deleting", topics=[OffsetDeleteRequestTopic(
        name="delete-offsets", partitions=[OffsetDeleteRequestPartition(partition_index=index) for index in (0, 7)])]), 0)
    assert answer.error_code == E.NONE
    assert [(p.partition_index, p.error_code) for p in answer.topics[0].partitions] == [
        (0, E.NONE), (7, E.UNKNOWN_TOPIC_OR_PARTITION)]
    fetched = client.request(OffsetFetchRequest(group_id="deleting", topics=[
        OffsetFetchRequestTopic(name="delete-offsets", partition_indexes=[0, 1])]), 7)
    assert [p.committed_offset for p in fetched.topics[0].partitions] == [-1, 4]
    missing = client.request(OffsetDeleteRequest(group_id="no-such", topics=[]), 0)
    assert missing.error_code == E.GROUP_ID_NOT_FOUND
