"""KIP-848 over a socket against a real broker: ConsumerGroupHeartbeat at v0 and v1,
ConsumerGroupDescribe, and what the other group APIs answer for a consumer group (ListGroups
types, DescribeGroups, OffsetCommit/OffsetFetch by member epoch, JoinGroup, DeleteGroups);
consumer groups come back after SIGTERM and SIGKILL restarts."""

from __future__ import annotations

import pytest

from broker.test_server import create_topic
from odradek.protocol import error_codes as E
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.consumer_group_describe import ConsumerGroupDescribeRequest
from odradek.protocol.messages.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatRequestTopicPartitions,
)
from odradek.protocol.messages.delete_groups import DeleteGroupsRequest
from odradek.protocol.messages.describe_groups import DescribeGroupsRequest
from odradek.protocol.messages.join_group import JoinGroupRequest, JoinGroupRequestProtocol
from odradek.protocol.messages.leave_group import LeaveGroupRequest, MemberIdentity
from odradek.protocol.messages.list_groups import ListGroupsRequest
from odradek.protocol.messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics
from odradek.protocol.messages.records.consumer_protocol_subscription import ConsumerProtocolSubscription

from .conftest import FAST_GROUPS, RawClient, assert_no_traceback, wait_until_loaded


def _join(client, group, member_id, topics=("cg-t",), version=1, **fields):
    fields.setdefault("rebalance_timeout_ms", 30000)
    return client.request(ConsumerGroupHeartbeatRequest(group_id=group, member_id=member_id, member_epoch=0,
                                                        subscribed_topic_names=list(topics), topic_partitions=[],
                                                        **fields), version)


def _owned(answer):
    return [ConsumerGroupHeartbeatRequestTopicPartitions(topic_id=tp.topic_id, partitions=list(tp.partitions))
            for tp in answer.assignment.topic_partitions]


def _beat(client, group, member_id, epoch, owned, version=1):
    return client.request(ConsumerGroupHeartbeatRequest(group_id=group, member_id=member_id, member_epoch=epoch,
                                                        topic_partitions=owned), version)


@pytest.fixture(scope="module")
def topic_id(group_broker):
    client = RawClient(group_broker.host, group_broker.port)
    created = create_topic(client, "cg-t", partitions=4)
    client.close()
    assert created.error_code == E.NONE
    return created.topic_id


def test_the_apis_are_advertised(group_client):
    versions = {api.api_key: (api.min_version, api.max_version)
                for api in group_client().request(ApiVersionsRequest(client_software_name="odradek-test",
                                                                 client_software_version="1"), 3).api_keys}
    assert versions[68] == (0, 1) and versions[69] == (0, 1)
    assert versions[42] == (0, 2)  # DeleteGroups v3's error messages are not served yet


def test_heartbeat_v0_generates_the_member_id(group_client, topic_id):
    client = group_client()
    answer = _join(client, "cg-v0", "", version=0)
    assert answer.error_code == E.NONE and len(answer.member_id) == 22 and answer.member_epoch == 1
    assert answer.heartbeat_interval_ms == 5000
    assert [(tp.topic_id, sorted(tp.partitions)) for tp in answer.assignment.topic_partitions] == [(topic_id, [0, 1, 2, 3])]
    beat = _beat(client, "cg-v0", answer.member_id, 1, _owned(answer), version=0)
    assert beat.error_code == E.NONE and beat.assignment is None
    left = client.request(ConsumerGroupHeartbeatRequest(group_id="cg-v0", member_id=answer.member_id,
                                                        member_epoch=-1), 0)
    assert (left.error_code, left.member_epoch) == (E.NONE, -1)


def test_heartbeat_v1_two_members_reconcile(group_client, topic_id):
    client = group_client()
    first = _join(client, "cg-two", "member-a")
    assert first.member_id == "member-a" and first.member_epoch == 1
    second = _join(client, "cg-two", "member-b")
    assert second.member_epoch == 2 and second.assignment.topic_partitions == []
    revoke = _beat(client, "cg-two", "member-a", 1, _owned(first))
    assert revoke.member_epoch == 1 and sum(len(tp.partitions) for tp in revoke.assignment.topic_partitions) == 2
    acked = _beat(client, "cg-two", "member-a", 1, _owned(revoke))
    assert acked.member_epoch == 2
    got = _beat(client, "cg-two", "member-b", 2, [])
    assert sum(len(tp.partitions) for tp in got.assignment.topic_partitions) == 2

    described = client.request(ConsumerGroupDescribeRequest(group_ids=["cg-two", "nobody", ""]), 0).groups
    group, unknown, empty = described
    assert (group.error_code, group.group_state, group.group_epoch, group.assignment_epoch) == (E.NONE, "Stable", 2, 2)
    assert group.assignor_name == "uniform"
    assert {m.member_id: m.member_epoch for m in group.members} == {"member-a": 2, "member-b": 2}
    for member in group.members:
        assert member.client_host.startswith("/127.0.0.1") and member.subscribed_topic_names == ["cg-t"]
        assert [tp.topic_name for tp in member.assignment.topic_partitions] == ["cg-t"]
    assert unknown.error_code == E.GROUP_ID_NOT_FOUND and empty.error_code == E.INVALID_GROUP_ID

    fenced = _beat(client, "cg-two", "member-b", 7, [])
    assert fenced.error_code == E.FENCED_MEMBER_EPOCH and fenced.error_message


def test_describe_v1_tells_classic_and_consumer_members_apart(group_client, topic_id):
    client = group_client()
    assert _join(client, "cg-types", "consumer-m").error_code == E.NONE
    subscription = (1).to_bytes(2, "big") + ConsumerProtocolSubscription(topics=["cg-t"]).encode(1)

    def classic_join(member_id):
        return client.request(JoinGroupRequest(
            group_id="cg-types", session_timeout_ms=10000, rebalance_timeout_ms=10000, member_id=member_id,
            protocol_type="consumer", protocols=[JoinGroupRequestProtocol(name="range", metadata=subscription)]), 5)

    required = classic_join("")
    assert required.error_code == E.MEMBER_ID_REQUIRED
    assert classic_join(required.member_id).error_code == E.NONE
    v1 = client.request(ConsumerGroupDescribeRequest(group_ids=["cg-types"]), 1).groups[0]
    assert {m.member_id: m.member_type for m in v1.members} == {"consumer-m": 1, required.member_id: 0}
    v0 = client.request(ConsumerGroupDescribeRequest(group_ids=["cg-types"]), 0).groups[0]
    assert {m.member_type for m in v0.members} == {-1}  # v0 does not carry it
    left = client.request(LeaveGroupRequest(group_id="cg-types", members=[MemberIdentity(member_id=required.member_id)]), 3)
    assert left.error_code == E.NONE
    client.request(ConsumerGroupHeartbeatRequest(group_id="cg-types", member_id="consumer-m", member_epoch=-1), 1)


def test_errors_carry_a_message(group_client, topic_id):
    client = group_client()
    missing = client.request(ConsumerGroupHeartbeatRequest(group_id="cg-errors", member_id="", member_epoch=0,
                                                           rebalance_timeout_ms=1000, subscribed_topic_names=["cg-t"],
                                                           topic_partitions=[]), 1)
    assert (missing.error_code, missing.error_message) == (E.INVALID_REQUEST, "MemberId can't be empty.")
    assignor = _join(client, "cg-errors", "m", server_assignor="cooperative-sticky")
    assert assignor.error_code == E.UNSUPPORTED_ASSIGNOR and "uniform, range" in assignor.error_message
    regex = client.request(ConsumerGroupHeartbeatRequest(group_id="cg-errors", member_id="m", member_epoch=0,
                                                         rebalance_timeout_ms=1000, subscribed_topic_regex="(a",
                                                         topic_partitions=[]), 1)
    assert regex.error_code == E.INVALID_REGULAR_EXPRESSION
    unknown = _beat(client, "cg-errors-none", "m", 3, [])
    assert unknown.error_code == E.GROUP_ID_NOT_FOUND


def test_regex_subscription_over_the_wire(group_client, topic_id):
    client = group_client()
    answer = client.request(ConsumerGroupHeartbeatRequest(group_id="cg-regex", member_id="r", member_epoch=0,
                                                          rebalance_timeout_ms=1000, subscribed_topic_regex="cg-.*",
                                                          topic_partitions=[]), 1)
    assert answer.error_code == E.NONE
    assert [tp.topic_id for tp in answer.assignment.topic_partitions] == [topic_id]
    described = client.request(ConsumerGroupDescribeRequest(group_ids=["cg-regex"]), 0).groups[0]
    assert described.members[0].subscribed_topic_regex == "cg-.*" and described.members[0].subscribed_topic_names == []


def _commit(client, group, epoch, member_id, version=9):
    return client.request(OffsetCommitRequest(group_id=group, generation_id_or_member_epoch=epoch, member_id=member_id,
                                              topics=[OffsetCommitRequestTopic(name="cg-t", partitions=[
                                                  OffsetCommitRequestPartition(partition_index=0, committed_offset=4,
                                                                               committed_metadata="")])]),
                          version).topics[0].partitions[0].error_code


def test_other_group_apis_on_a_consumer_group(group_client, topic_id):
    client = group_client()
    joined = _join(client, "cg-admin", "admin-m")
    assert joined.error_code == E.NONE
    assert _commit(client, "cg-admin", 1, "admin-m") == E.NONE
    assert _commit(client, "cg-admin", 0, "admin-m") == E.STALE_MEMBER_EPOCH
    assert _commit(client, "cg-admin", 1, "other") == E.UNKNOWN_MEMBER_ID
    assert _commit(client, "cg-admin", 1, "admin-m", version=8) == E.UNSUPPORTED_VERSION
    fetched = client.request(OffsetFetchRequest(groups=[
        OffsetFetchRequestGroup(group_id="cg-admin", member_id="admin-m", member_epoch=1,
                                topics=[OffsetFetchRequestTopics(name="cg-t", partition_indexes=[0])]),
        OffsetFetchRequestGroup(group_id="cg-admin", member_id="admin-m", member_epoch=5, topics=None)]), 9).groups
    assert fetched[0].error_code == E.NONE and fetched[0].topics[0].partitions[0].committed_offset == 4
    assert fetched[1].error_code == E.STALE_MEMBER_EPOCH

    listed = client.request(ListGroupsRequest(types_filter=["consumer"]), 5).groups
    assert ("cg-admin", "consumer", "consumer", "Stable") in {
        (g.group_id, g.group_type, g.protocol_type, g.group_state) for g in listed}
    assert "cg-admin" not in {g.group_id for g in client.request(ListGroupsRequest(types_filter=["classic"]), 5).groups}
    assert "cg-admin" in {g.group_id for g in client.request(ListGroupsRequest(states_filter=["stable"]), 4).groups}
    old = client.request(DescribeGroupsRequest(groups=["cg-admin"]), 5).groups[0]
    assert (old.error_code, old.group_state) == (E.NONE, "Dead")
    new = client.request(DescribeGroupsRequest(groups=["cg-admin"]), 6).groups[0]
    assert new.error_code == E.GROUP_ID_NOT_FOUND and new.error_message == "Group cg-admin is not a classic group."
    classic = client.request(JoinGroupRequest(group_id="cg-admin", session_timeout_ms=10000, rebalance_timeout_ms=10000,
                                              member_id="", protocol_type="connect", protocols=[
                                                  JoinGroupRequestProtocol(name="v1", metadata=b"")]), 5)
    assert classic.error_code == E.INCONSISTENT_GROUP_PROTOCOL  # only "consumer" members may join it
    assert client.request(DeleteGroupsRequest(groups_names=["cg-admin"]), 2).results[0].error_code == E.NON_EMPTY_GROUP
    client.request(ConsumerGroupHeartbeatRequest(group_id="cg-admin", member_id="admin-m", member_epoch=-1), 1)
    assert client.request(DeleteGroupsRequest(groups_names=["cg-admin"]), 2).results[0].error_code == E.NONE
    gone = client.request(ConsumerGroupDescribeRequest(group_ids=["cg-admin"]), 0).groups[0]
    assert gone.error_code == E.GROUP_ID_NOT_FOUND


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_consumer_groups_come_back_after_a_restart(broker_process, tmp_path, stop):
    data = tmp_path / "data"
    first = broker_process(data, *FAST_GROUPS)
    client = RawClient(first.host, first.port)
    create_topic(client, "cg-kept", partitions=4)
    a = _join(client, "cg-restart", "a", topics=("cg-kept",))
    _join(client, "cg-restart", "b", topics=("cg-kept",), instance_id="pod-b", server_assignor="range")
    revoking = _beat(client, "cg-restart", "a", 1, _owned(a))  # "a" is asked to revoke two
    assert _commit_kept(client, "cg-restart", 1, "a") == E.NONE
    before = client.request(ConsumerGroupDescribeRequest(group_ids=["cg-restart"]), 0).groups[0]
    client.close()
    if stop == "sigterm":
        assert first.stop() == 0
    else:
        first.kill()

    second = broker_process(data, *FAST_GROUPS)
    client = RawClient(second.host, second.port)
    try:
        wait_until_loaded(client)  # __consumer_offsets is replayed after the broker listens
        after = client.request(ConsumerGroupDescribeRequest(group_ids=["cg-restart"]), 0).groups[0]
        assert after == before and after.group_state == "Reconciling"
        # The members carry on where they were: "a" confirms its revocation, "b" gets its share.
        acked = _beat(client, "cg-restart", "a", 1, _owned(revoking))
        assert (acked.error_code, acked.member_epoch) == (E.NONE, 2)
        got = client.request(ConsumerGroupHeartbeatRequest(group_id="cg-restart", member_id="b", member_epoch=2,
                                                           instance_id="pod-b", topic_partitions=[]), 1)
        assert got.error_code == E.NONE and sum(len(tp.partitions) for tp in got.assignment.topic_partitions) == 2
        fetched = client.request(OffsetFetchRequest(groups=[OffsetFetchRequestGroup(
            group_id="cg-restart", topics=[OffsetFetchRequestTopics(name="cg-kept", partition_indexes=[0])])]), 9)
        assert fetched.groups[0].topics[0].partitions[0].committed_offset == 4
    finally:
        client.close()
    assert_no_traceback(second)


def _commit_kept(client, group, epoch, member_id):
    return client.request(OffsetCommitRequest(group_id=group, generation_id_or_member_epoch=epoch, member_id=member_id,
                                              topics=[OffsetCommitRequestTopic(name="cg-kept", partitions=[
                                                  OffsetCommitRequestPartition(partition_index=0, committed_offset=4,
                                                                               committed_metadata="")])]),
                          9).topics[0].partitions[0].error_code


def test_consumer_protocol_can_be_switched_off(broker_process):
    broker = broker_process(None, "group.coordinator.rebalance.protocols=classic")
    client = RawClient(broker.host, broker.port)
    try:
        assert _join(client, "off", "m").error_code == E.UNSUPPORTED_VERSION
        described = client.request(ConsumerGroupDescribeRequest(group_ids=["off"]), 0).groups[0]
        assert described.error_code == E.UNSUPPORTED_VERSION
    finally:
        client.close()
