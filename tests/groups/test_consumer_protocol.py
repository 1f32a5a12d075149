"""KIP-848 consumer groups without a socket: the assignors, the heartbeat state machine with a
manual clock (epochs, incremental reconciliation, fencing, static members, timeouts, errors),
the offset rules for consumer groups, the records in __consumer_offsets and their replay, and a
property test over random joins, leaves, subscription changes and partition growth."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odradek.broker.groups import GroupCoordinator, GroupState, JoinRequest, ManualTimer
from odradek.broker.groups.assignors import AssignmentSpec, MemberSpec, RangeAssignor, UniformAssignor
from odradek.broker.groups.consumer import ConsumerGroupState, MemberState
from odradek.broker.groups.consumer_groups import HeartbeatRequest
from odradek.broker.groups.persistence import decode_record, replay
from odradek.broker.topics import Topic
from odradek.protocol import error_codes as E
from odradek.protocol.messages.records.consumer_protocol_assignment import (
    ConsumerProtocolAssignment,
    TopicPartition as AssignedTopicPartition,
)
from odradek.protocol.messages.records.consumer_protocol_subscription import (
    ConsumerProtocolSubscription,
    TopicPartition as SubscribedTopicPartition,
)

A, B, C = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)


# --- assignors ---

def _spec(members: dict[str, set], counts: dict, current=None) -> AssignmentSpec:
    return AssignmentSpec({m: MemberSpec(frozenset(topics)) for m, topics in members.items()}, counts, current or {})


def _check_valid(spec: AssignmentSpec, result) -> None:
    owners = {}
    for member_id, assignment in result.items():
        for topic_id, partitions in assignment.items():
            assert topic_id in spec.members[member_id].subscribed_topic_ids
            for partition in partitions:
                assert 0 <= partition < spec.partition_counts[topic_id]
                assert (topic_id, partition) not in owners, "a partition assigned twice"
                owners[(topic_id, partition)] = member_id
    for topic_id, count in spec.partition_counts.items():
        if any(topic_id in m.subscribed_topic_ids for m in spec.members.values()):
            assert all((topic_id, p) in owners for p in range(count)), "a subscribed partition left out"


def _sizes(result) -> list[int]:
    return sorted(sum(len(p) for p in assignment.values()) for assignment in result.values())


def test_uniform_balances_and_sticks():
    spec = _spec({"m1": {A, B}, "m2": {A, B}}, {A: 4, B: 2})
    first = UniformAssignor().assign(spec)
    _check_valid(spec, first)
    assert _sizes(first) == [3, 3]
    spec = _spec({"m1": {A, B}, "m2": {A, B}, "m3": {A, B}}, {A: 4, B: 2}, current=first)
    second = UniformAssignor().assign(spec)
    _check_valid(spec, second)
    assert _sizes(second) == [2, 2, 2]
    kept = sum(len(second[m].get(t, set()) & first[m].get(t, set())) for m in ("m1", "m2") for t in (A, B))
    assert kept == 4  # only the two partitions the newcomer needs moved


def test_uniform_heterogeneous_subscriptions():
    spec = _spec({"m1": {A}, "m2": {A, B}, "m3": {B}}, {A: 3, B: 3})
    result = UniformAssignor().assign(spec)
    _check_valid(spec, result)
    assert _sizes(result) == [2, 2, 2]


def test_range_co_partitions():
    spec = _spec({"m1": {A, B}, "m2": {A, B}}, {A: 3, B: 3})
    result = RangeAssignor().assign(spec)
    _check_valid(spec, result)
    assert result["m1"] == {A: {0, 1}, B: {0, 1}} and result["m2"] == {A: {2}, B: {2}}


@given(st.dictionaries(st.sampled_from(["m1", "m2", "m3", "m4", "m5"]),
                       st.sets(st.sampled_from([A, B, C]), min_size=1), min_size=1),
       st.fixed_dictionaries({A: st.integers(1, 8), B: st.integers(1, 8), C: st.integers(1, 8)}),
       st.sampled_from([UniformAssignor(), RangeAssignor()]))
def test_assignors_give_every_subscribed_partition_to_one_subscriber(members, counts, assignor):
    spec = _spec(members, counts)
    result = assignor.assign(spec)
    _check_valid(spec, result)
    if isinstance(assignor, UniformAssignor) and len({frozenset(t) for t in members.values()}) == 1:
        sizes = _sizes(result)
        assert sizes[-1] - sizes[0] <= 1
        # sticky: recomputing from its own result moves nothing
        assert UniformAssignor().assign(_spec(members, counts, current=result)) == result


# --- the heartbeat state machine ---

class Cluster:
    """A coordinator with a manual clock and a topic table the test changes."""

    def __init__(self, **topics):
        self.coordinator = GroupCoordinator(timer=ManualTimer())
        self.groups = self.coordinator.consumer
        self.topics = {name: Topic(name, uuid.uuid5(uuid.NAMESPACE_DNS, name), count) for name, count in topics.items()}
        self.groups.topics = self.topics

    def beat(self, member_id, epoch, group="g", **fields):
        request = HeartbeatRequest(group, member_id, epoch, **fields)
        return self.groups.heartbeat(request, self.topics)

    def join(self, member_id, topics=("t",), group="g", **fields):
        fields.setdefault("rebalance_timeout_ms", 30000)
        return self.beat(member_id, 0, group=group, subscribed_topic_names=list(topics), owned=[], **fields)

    def tid(self, name):
        return self.topics[name].topic_id


def _owned(assignment) -> list:
    return [(topic_id, sorted(partitions)) for topic_id, partitions in (assignment or {}).items()]


def _count(assignment) -> int:
    return sum(len(p) for p in (assignment or {}).values())


def test_join_gets_every_partition_and_the_interval():
    cluster = Cluster(t=4)
    answer = cluster.join("m1")
    assert answer.error_code == E.NONE and answer.member_epoch == 1 and answer.heartbeat_interval_ms == 5000
    assert answer.assignment == {cluster.tid("t"): {0, 1, 2, 3}}
    group = cluster.groups.group("g")
    assert group.state is ConsumerGroupState.STABLE and group.group_epoch == group.assignment_epoch == 1
    again = cluster.beat("m1", 1, owned=_owned(answer.assignment))
    assert again.error_code == E.NONE and again.member_epoch == 1 and again.assignment is None  # unchanged


def test_member_id_from_the_broker_at_v0_and_from_the_client_at_v1():
    cluster = Cluster(t=1)
    generated = cluster.beat("", 0, subscribed_topic_names=["t"], rebalance_timeout_ms=1000, owned=[], api_version=0)
    assert generated.error_code == E.NONE and len(generated.member_id) == 22  # Kafka's Uuid.toString()
    refused = cluster.beat("", 0, subscribed_topic_names=["t"], rebalance_timeout_ms=1000, owned=[], api_version=1)
    assert refused.error_code == E.INVALID_REQUEST and refused.error_message == "MemberId can't be empty."


def test_incremental_reconciliation_revokes_before_assigning():
    cluster = Cluster(t=4)
    first = cluster.join("m1")
    second = cluster.join("m2")
    # m2 is at the new epoch but gets nothing while m1 still owns what it will get.
    assert second.member_epoch == 2 and _count(second.assignment) == 0
    group = cluster.groups.group("g")
    assert group.state is ConsumerGroupState.RECONCILING
    assert group.members["m2"].state is MemberState.UNRELEASED_PARTITIONS
    # m1 is asked to give two up: it stays at epoch 1 until it confirms.
    revoke = cluster.beat("m1", 1, owned=_owned(first.assignment))
    assert revoke.member_epoch == 1 and _count(revoke.assignment) == 2
    assert group.members["m1"].state is MemberState.UNREVOKED_PARTITIONS
    still = cluster.beat("m2", 2, owned=[])
    assert _count(still.assignment) == 0  # not released yet
    done = cluster.beat("m1", 1, owned=_owned(revoke.assignment))
    assert done.member_epoch == 2 and done.assignment is None
    got = cluster.beat("m2", 2, owned=[])
    assert _count(got.assignment) == 2 and not (got.assignment[cluster.tid("t")] & revoke.assignment[cluster.tid("t")])
    assert group.state is ConsumerGroupState.STABLE


def test_epoch_fencing_and_the_lost_response_tolerance():
    cluster = Cluster(t=2)
    first = cluster.join("m1")
    assert cluster.beat("m1", 5, owned=[]).error_code == E.FENCED_MEMBER_EPOCH  # ahead
    cluster.join("m2")  # epoch 2 for the group
    revoke = cluster.beat("m1", 1, owned=_owned(first.assignment))
    moved = cluster.beat("m1", 1, owned=_owned(revoke.assignment))
    assert moved.member_epoch == 2
    # The answer with epoch 2 was lost: the previous epoch with a subset of the assignment is fine...
    assert cluster.beat("m1", 1, owned=_owned(revoke.assignment)).error_code == E.NONE
    # ...owning more than it has is not, nor an older epoch.
    assert cluster.beat("m1", 1, owned=_owned(first.assignment)).error_code == E.FENCED_MEMBER_EPOCH
    assert cluster.beat("m1", -3, owned=[]).error_code == E.INVALID_REQUEST  # -3: no such epoch
    # A fenced member rejoins with epoch 0 under its id and starts afresh.
    rejoined = cluster.join("m1")
    assert rejoined.error_code == E.NONE and rejoined.member_epoch == 2


def test_unknown_member_and_unknown_group():
    cluster = Cluster(t=1)
    assert cluster.beat("m1", 1, group="nope", owned=[]).error_code == E.GROUP_ID_NOT_FOUND
    cluster.join("m1")
    assert cluster.beat("ghost", 1, owned=[]).error_code == E.UNKNOWN_MEMBER_ID
    assert cluster.beat("ghost", -1).error_code == E.UNKNOWN_MEMBER_ID


@pytest.mark.parametrize("fields, message", [
    (dict(group="", member_id="m", epoch=0), "GroupId can't be empty."),
    (dict(member_id="m", epoch=0, instance_id=""), "InstanceId can't be empty."),
    (dict(member_id="m", epoch=0, rack_id=""), "RackId can't be empty."),
    (dict(member_id="m", epoch=0, rebalance_timeout_ms=-1), "RebalanceTimeoutMs must be provided in first request."),
    (dict(member_id="m", epoch=0, owned=[(A, [0])]), "TopicPartitions must be empty when (re-)joining."),
    (dict(member_id="m", epoch=0, subscribed_topic_names=None),
     "SubscribedTopicNames or SubscribedTopicRegex must be set in first request."),
    (dict(member_id="m", epoch=-2), "InstanceId can't be null."),
    (dict(member_id="m", epoch=-7), "MemberEpoch is invalid."),
])
def test_invalid_requests(fields, message):
    cluster = Cluster(t=1)
    request = dict(rebalance_timeout_ms=1000, subscribed_topic_names=["t"], owned=[])
    request.update({k: v for k, v in fields.items() if k not in ("group", "member_id", "epoch")})
    answer = cluster.beat(fields["member_id"], fields["epoch"], group=fields.get("group", "g"), **request)
    assert (answer.error_code, answer.error_message) == (E.INVALID_REQUEST, message)


def test_assignor_regex_and_size_errors():
    cluster = Cluster(t=1)
    assert cluster.join("m1", server_assignor="sticky").error_code == E.UNSUPPORTED_ASSIGNOR
    assert cluster.beat("m1", 0, subscribed_topic_regex="(?=t)", rebalance_timeout_ms=1, owned=[]).error_code \
        == E.INVALID_REGULAR_EXPRESSION
    assert cluster.beat("m1", 0, subscribed_topic_regex="t[", rebalance_timeout_ms=1, owned=[]).error_code \
        == E.INVALID_REGULAR_EXPRESSION
    cluster.coordinator.config = type(cluster.coordinator.config)(consumer_max_size=1)
    assert cluster.join("m1").error_code == E.NONE
    assert cluster.join("m2").error_code == E.GROUP_MAX_SIZE_REACHED
    assert cluster.join("m1").error_code == E.NONE  # a member already in is not turned away


def test_range_assignor_chosen_by_the_members():
    cluster = Cluster(t=3, u=3)
    cluster.join("a", topics=("t", "u"), server_assignor="range")
    cluster.join("b", topics=("t", "u"), server_assignor="range")
    group = cluster.groups.group("g")
    assert group.preferred_assignor("uniform") == "range"
    assert group.target["a"] == {cluster.tid("t"): {0, 1}, cluster.tid("u"): {0, 1}}


def test_leave_bumps_the_epoch_and_frees_partitions():
    cluster = Cluster(t=2)
    first = cluster.join("m1")
    cluster.join("m2")
    left = cluster.beat("m2", -1)
    assert (left.error_code, left.member_epoch) == (E.NONE, -1)
    group = cluster.groups.group("g")
    assert set(group.members) == {"m1"} and group.group_epoch == 3
    back = cluster.beat("m1", 1, owned=_owned(first.assignment))
    assert back.member_epoch == 3 and group.state is ConsumerGroupState.STABLE
    assert cluster.beat("m1", -1).error_code == E.NONE and group.state is ConsumerGroupState.EMPTY


def test_static_member_leaves_temporarily_and_comes_back_without_a_rebalance():
    cluster = Cluster(t=4)
    first = cluster.join("s1", instance_id="pod-1")
    other = cluster.join("o1", instance_id="pod-2")
    revoke = cluster.beat("s1", 1, owned=_owned(first.assignment))
    cluster.beat("s1", 1, owned=_owned(revoke.assignment))
    other = cluster.beat("o1", 2, owned=[])
    group = cluster.groups.group("g")
    kept = group.members["s1"].assigned
    epoch = group.group_epoch
    # Another instance cannot take pod-1 while s1 holds it.
    assert cluster.join("s2", instance_id="pod-1").error_code == E.UNRELEASED_INSTANCE_ID
    assert cluster.beat("s2", 2, instance_id="pod-1", owned=[]).error_code == E.FENCED_INSTANCE_ID
    away = cluster.beat("s1", -2, instance_id="pod-1")
    assert (away.error_code, away.member_epoch) == (E.NONE, -2)
    # Its partitions wait: the other member gets none of them.
    assert cluster.beat("o1", 2, owned=_owned(other.assignment)).assignment is None
    back = cluster.join("s2", instance_id="pod-1")
    assert back.error_code == E.NONE and back.assignment == kept and back.member_epoch == epoch
    assert group.group_epoch == epoch and "s1" not in group.members and group.static_members["pod-1"] == "s2"


def test_session_timeout_fences_a_silent_member():
    cluster = Cluster(t=2)
    cluster.join("m1")
    cluster.join("m2")
    timer = cluster.coordinator.timer
    for _ in range(10):  # m1 heartbeats; m2 is silent
        timer.advance(5000)
        member = cluster.groups.group("g").members["m1"]
        cluster.beat("m1", member.member_epoch, owned=_owned(member.assigned))
    group = cluster.groups.group("g")
    assert set(group.members) == {"m1"}
    member = group.members["m1"]
    answer = cluster.beat("m1", member.member_epoch, owned=_owned(member.assigned))
    assert _count(group.members["m1"].assigned) == 2 and answer.error_code == E.NONE


def test_rebalance_timeout_fences_a_member_that_does_not_revoke():
    cluster = Cluster(t=2)
    first = cluster.join("m1", rebalance_timeout_ms=10000)
    cluster.join("m2")
    cluster.beat("m1", 1, owned=_owned(first.assignment))  # asked to revoke one
    timer = cluster.coordinator.timer
    timer.advance(5000)
    cluster.beat("m1", 1, owned=_owned(first.assignment))  # alive, but still owns it
    timer.advance(5001)
    assert "m1" not in cluster.groups.group("g").members
    assert cluster.beat("m1", 1, owned=[]).error_code == E.UNKNOWN_MEMBER_ID


def test_new_partitions_and_topics_bump_the_epoch():
    cluster = Cluster(t=1)
    first = cluster.join("m1", topics=("t", "later"))
    assert first.member_epoch == 1
    cluster.topics["t"].partition_count = 3
    grown = cluster.beat("m1", 1, owned=_owned(first.assignment))
    assert grown.member_epoch == 2 and grown.assignment == {cluster.tid("t"): {0, 1, 2}}
    cluster.topics["later"] = Topic("later", uuid.uuid4(), 1)
    created = cluster.beat("m1", 2, owned=_owned(grown.assignment))
    assert created.member_epoch == 3 and _count(created.assignment) == 4


def test_regex_subscription_follows_the_topics():
    cluster = Cluster(**{"orders-eu": 1, "orders-us": 1, "payments": 1})
    answer = cluster.beat("m1", 0, subscribed_topic_regex="orders-.*", rebalance_timeout_ms=1000, owned=[])
    assert set(answer.assignment) == {cluster.tid("orders-eu"), cluster.tid("orders-us")}
    cluster.topics["orders-asia"] = Topic("orders-asia", uuid.uuid4(), 1)
    more = cluster.beat("m1", 1, owned=_owned(answer.assignment))
    assert cluster.tid("orders-asia") in more.assignment
    switched = cluster.beat("m1", more.member_epoch, subscribed_topic_regex="", subscribed_topic_names=["payments"],
                            owned=_owned(more.assignment))
    assert switched.assignment == {}  # revoke everything first
    final = cluster.beat("m1", switched.member_epoch, owned=[])
    assert final.assignment == {cluster.tid("payments"): {0}}


# --- classic and consumer groups share the group ids ---

def _subscription(topics, owned=(), version=1) -> bytes:
    message = ConsumerProtocolSubscription(topics=list(topics), user_data=None, owned_partitions=[
        SubscribedTopicPartition(topic=topic, partitions=list(partitions)) for topic, partitions in owned])
    return version.to_bytes(2, "big") + message.encode(version)


def _assignment_bytes(assigned: dict[str, list[int]]) -> bytes:
    message = ConsumerProtocolAssignment(assigned_partitions=[
        AssignedTopicPartition(topic=topic, partitions=partitions) for topic, partitions in assigned.items()],
        user_data=None)
    return (1).to_bytes(2, "big") + message.encode(1)


def _decoded(assignment: bytes) -> dict[str, set[int]]:
    decoded = ConsumerProtocolAssignment.decode(memoryview(assignment)[2:], 1)
    return {item.topic: set(item.partitions) for item in decoded.assigned_partitions}


def _classic_join(cluster, group, member_id="", topics=("t",), owned=(), protocol_type="consumer", version=5,
                  instance_id=None):
    answers = []
    cluster.coordinator.join_group(JoinRequest(group, member_id, instance_id, protocol_type,
                                               [("range", _subscription(topics, owned))], 10000, 20000,
                                               api_version=version), answers.append)
    return answers


def _classic_member(cluster, group, topics=("t",)):
    """A classic member through MEMBER_ID_REQUIRED, JoinGroup and SyncGroup: (id, generation, assignment)."""
    required = _classic_join(cluster, group, topics=topics)[0]
    assert required.error_code == E.MEMBER_ID_REQUIRED
    joined = _classic_join(cluster, group, required.member_id, topics=topics)[0]
    assert joined.error_code == E.NONE and joined.leader == "" and not joined.members
    synced = []
    cluster.coordinator.sync_group(group, joined.generation_id, joined.member_id, None, "consumer", "range", {},
                                   synced.append)
    assert synced[0].error_code == E.NONE and synced[0].protocol_name == "range"
    return joined.member_id, joined.generation_id, _decoded(synced[0].assignment)


def test_classic_and_consumer_groups_share_ids():
    cluster = Cluster(t=1)
    cluster.coordinator.config = type(cluster.coordinator.config)(initial_rebalance_delay_ms=0)
    cluster.join("m1", group="modern")
    # A classic member of another protocol type cannot join a consumer group.
    assert _classic_join(cluster, "modern", protocol_type="connect")[0].error_code == E.INCONSISTENT_GROUP_PROTOCOL
    # A classic group of another protocol type cannot become one.
    cluster.coordinator.join_group(JoinRequest("connect-group", "", None, "connect", [("v1", b"x")], 10000, 10000,
                                               api_version=3), lambda result: None)
    cluster.coordinator.timer.advance(0)
    assert cluster.join("m1", group="connect-group").error_code == E.GROUP_ID_NOT_FOUND
    # An empty consumer group gives its id up to a classic member, and vice versa.
    assert cluster.beat("m1", -1, group="modern").error_code == E.NONE
    assert _classic_join(cluster, "modern", version=3) == [] and cluster.groups.group("modern") is None
    assert cluster.coordinator.store_offsets("simple", [("t", 0, 5, -1, None)]) == E.NONE
    assert cluster.join("m9", group="simple").error_code == E.NONE
    assert cluster.coordinator.group("simple") is None and cluster.coordinator.offsets["simple"]


def test_classic_members_inside_a_consumer_group():
    cluster = Cluster(t=4)
    first = cluster.join("modern")
    classic_id, generation, assigned = _classic_member(cluster, "g")
    assert generation == 2 and assigned == {}  # nothing until "modern" lets go
    coordinator = cluster.coordinator
    revoke = cluster.beat("modern", 1, owned=_owned(first.assignment))
    cluster.beat("modern", 1, owned=_owned(revoke.assignment))
    # Its heartbeat tells it to rejoin to get the freed partitions.
    assert coordinator.heartbeat("g", generation, classic_id, None) == E.REBALANCE_IN_PROGRESS
    rejoined = _classic_join(cluster, "g", classic_id)[0]
    synced = []
    coordinator.sync_group("g", rejoined.generation_id, classic_id, None, "consumer", "range", {}, synced.append)
    assert len(_decoded(synced[0].assignment)["t"]) == 2
    assert coordinator.heartbeat("g", rejoined.generation_id, classic_id, None) == E.NONE
    assert coordinator.heartbeat("g", rejoined.generation_id + 1, classic_id, None) == E.ILLEGAL_GENERATION
    assert coordinator.heartbeat("g", rejoined.generation_id, "stranger", None) == E.UNKNOWN_MEMBER_ID
    # Offsets: its generation is its member epoch.
    assert coordinator.validate_offset_commit("g", rejoined.generation_id, classic_id, None, 7)[0] == E.NONE
    assert coordinator.validate_offset_commit("g", 1, classic_id, None, 7)[0] == E.ILLEGAL_GENERATION
    described = cluster.groups.group("g")
    assert described.state is ConsumerGroupState.STABLE and described.members[classic_id].classic is not None
    # It leaves with LeaveGroup: the group epoch goes up, "modern" gets everything back.
    assert coordinator.leave_group("g", [(classic_id, None)]) == (E.NONE, [E.NONE])
    back = cluster.beat("modern", 2, owned=_owned(cluster.groups.group("g").members["modern"].assigned))
    assert _count(back.assignment) == 4
    # A classic member that never syncs is removed after its rebalance timeout.
    lazy = _classic_join(cluster, "g")[0]
    lazy = _classic_join(cluster, "g", lazy.member_id)[0]
    assert lazy.member_id in cluster.groups.group("g").members
    coordinator.timer.advance(20001)
    assert lazy.member_id not in cluster.groups.group("g").members


def test_a_classic_group_upgrades_when_a_consumer_protocol_member_joins():
    cluster = Cluster(t=4)
    coordinator = cluster.coordinator
    coordinator.config = type(coordinator.config)(initial_rebalance_delay_ms=0)
    joins = []
    for name in ("a", "b"):
        coordinator.join_group(JoinRequest("up", "", None, "consumer", [("range", _subscription(["t"]))], 10000,
                                           20000, api_version=3, client_id=name), joins.append)
    coordinator.timer.advance(0)
    leader = next(j for j in joins if j.members)
    follower = next(j for j in joins if not j.members)
    plan = {leader.member_id: {"t": [0, 1]}, follower.member_id: {"t": [2, 3]}}
    syncs = []
    coordinator.sync_group("up", leader.generation_id, follower.member_id, None, None, None, {}, syncs.append)
    coordinator.sync_group("up", leader.generation_id, leader.member_id, None, None, None,
                           {m: _assignment_bytes(a) for m, a in plan.items()}, syncs.append)
    assert coordinator.group("up").is_in(GroupState.STABLE)
    generation = leader.generation_id

    modern = cluster.join("modern", group="up")
    assert modern.error_code == E.NONE and coordinator.group("up") is None
    group = cluster.groups.group("up")
    assert group.group_epoch == generation + 1 and set(group.members) == {leader.member_id, follower.member_id, "modern"}
    assert group.members[leader.member_id].assigned == {cluster.tid("t"): {0, 1}}  # carried over
    # The classic members learn of the rebalance and rejoin; everyone ends with disjoint shares.
    owners = {}
    for _ in range(3):
        for member_id in (leader.member_id, follower.member_id):
            member = group.members[member_id]
            if coordinator.heartbeat("up", member.member_epoch, member_id, None) == E.REBALANCE_IN_PROGRESS:
                owned = [("t", sorted(member.assigned.get(cluster.tid("t"), ())))]
                rejoined = _classic_join(cluster, "up", member_id, owned=owned)[0]
                synced = []
                coordinator.sync_group("up", rejoined.generation_id, member_id, None, "consumer", "range", {},
                                       synced.append)
                owners[member_id] = _decoded(synced[0].assignment).get("t", set())
        answer = cluster.beat("modern", group.members["modern"].member_epoch, group="up",
                              owned=_owned(group.members["modern"].assigned))
        assert answer.error_code == E.NONE
    owners["modern"] = group.members["modern"].assigned.get(cluster.tid("t"), set())
    assert sorted(len(p) for p in owners.values()) == [1, 1, 2]
    assert set().union(*owners.values()) == {0, 1, 2, 3} and sum(map(len, owners.values())) == 4
    assert group.state is ConsumerGroupState.STABLE


def test_offset_commit_and_fetch_use_the_member_epoch():
    cluster = Cluster(t=1)
    cluster.join("m1")
    coordinator = cluster.coordinator
    assert coordinator.validate_offset_commit("g", 1, "m1", None, 9)[0] == E.NONE
    assert coordinator.validate_offset_commit("g", 0, "m1", None, 9)[0] == E.STALE_MEMBER_EPOCH
    assert coordinator.validate_offset_commit("g", 1, "nobody", None, 9)[0] == E.UNKNOWN_MEMBER_ID
    assert coordinator.validate_offset_commit("g", 1, "m1", None, 8)[0] == E.UNSUPPORTED_VERSION
    assert coordinator.validate_offset_commit("g", -1, "", None, 9)[0] == E.UNKNOWN_MEMBER_ID  # not empty
    assert cluster.groups.validate_offset_fetch("g", "m1", 1) == E.NONE
    assert cluster.groups.validate_offset_fetch("g", "m1", 7) == E.STALE_MEMBER_EPOCH
    assert cluster.groups.validate_offset_fetch("g", None, -1) == E.NONE
    assert coordinator.store_offsets("g", [("t", 0, 3, -1, "")]) == E.NONE
    assert coordinator.group("g") is None  # no classic twin was created
    assert coordinator.delete_offsets("g", [("t", 0)])[1] == {("t", 0): E.GROUP_SUBSCRIBED_TO_TOPIC}
    assert coordinator.delete_group("g") == E.NON_EMPTY_GROUP
    cluster.beat("m1", -1)
    assert coordinator.validate_offset_commit("g", -1, "", None, 9)[0] == E.NONE  # empty: admin commits
    assert coordinator.delete_group("g") == E.NONE and cluster.groups.group("g") is None


# --- records and replay ---

class RecordingStore:
    """The coordinator's store interface kept in a list (the on-disk path is tested over a
    socket in test_consumer_protocol_wire.py)."""

    def __init__(self):
        self.records = []

    def append(self, group_id, records, now_ms):
        self.records.extend(records)

    def partition_count(self):
        return 1

    def replay_slices(self, coordinator, index):
        for key, value in self.records:
            replay(coordinator, decode_record(key, value))
            yield


def _state(groups):
    return {group_id: (group.group_epoch, group.assignment_epoch, group.subscription_metadata, group.target,
                       group.partition_epochs, group.static_members,
                       {m.member_id: m for m in group.members.values()})
            for group_id, group in groups.groups.items()}


def test_records_replay_to_the_same_groups():
    cluster = Cluster(t=4, u=2)
    store = RecordingStore()
    cluster.coordinator.store = store
    first = cluster.join("m1", topics=("t", "u"), instance_id="pod-1", rack_id="r1")
    cluster.join("m2", topics=("t",), server_assignor="range")
    cluster.beat("m1", 1, owned=_owned(first.assignment))  # m1 revoking: a mid-reconciliation state
    cluster.join("gone", group="other")
    cluster.beat("gone", -1, group="other")
    cluster.join("dead", group="deleted")
    cluster.beat("dead", -1, group="deleted")
    assert cluster.coordinator.delete_group("deleted") == E.NONE
    replayed = GroupCoordinator(timer=ManualTimer())
    replayed.attach_store(store)
    replayed.timer.advance(0)  # the replay runs on the timer, a slice a turn
    assert _state(replayed.consumer) == _state(cluster.groups)
    assert "deleted" not in replayed.consumer.groups and replayed.consumer.groups["other"].is_empty()
    # Restored members carry on with their epochs.
    member = replayed.consumer.group("g").members["m2"]
    answer = replayed.consumer.heartbeat(HeartbeatRequest("g", "m2", member.member_epoch, owned=[]), cluster.topics)
    assert answer.error_code == E.NONE


def test_record_values_decode_as_kafka_writes_them():
    cluster = Cluster(t=2)
    store = RecordingStore()
    cluster.coordinator.store = store
    cluster.join("m1", rack_id="rack-a")
    kinds = [decode_record(key, value)[1] for key, value in store.records]
    assert kinds == ["member", "partition_metadata", "epoch", "target", "assignment_epoch", "current"]
    # The key versions are Kafka's (3..8) and every value is version 0.
    assert sorted({int.from_bytes(key[:2], "big") for key, _ in store.records}) == [3, 4, 5, 6, 7, 8]
    assert {value[:2] for _, value in store.records} == {b"\x00\x00"}
    current = decode_record(*store.records[-1])[4]
    assert (current.member_epoch, current.state, current.assigned) == (1, MemberState.STABLE,
                                                                       {cluster.tid("t"): {0, 1}})


# --- the property: no partition is ever owned twice, and the group settles ---

class SimulatedClient:
    def __init__(self, member_id):
        self.member_id = member_id
        self.epoch = 0
        self.owned: dict = {}
        # Partitions taken away but still being given up (callbacks, final commits): the
        # client still owns them until a heartbeat reports it does not.
        self.releasing: set = set()
        self.joined = False


operations = st.lists(st.tuples(
    st.sampled_from(["join", "beat", "beat", "beat", "leave", "resubscribe", "grow", "lazy_beat"]),
    st.integers(0, 3),
    st.sampled_from([("t",), ("u",), ("t", "u")]),
    st.sampled_from(["uniform", "range"])), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_random_membership_never_double_owns_and_settles(ops):
    cluster = Cluster(t=3, u=2)
    clients = [SimulatedClient(f"c{index}") for index in range(4)]

    def send(client, request_epoch=None, **fields):
        if fields.get("owned") is not None:
            client.releasing = set()  # this heartbeat reports them gone
        answer = cluster.beat(client.member_id, client.epoch if request_epoch is None else request_epoch, **fields)
        if answer.error_code in (E.FENCED_MEMBER_EPOCH, E.UNKNOWN_MEMBER_ID):
            client.owned, client.releasing, client.joined, client.epoch = {}, set(), False, 0
            return
        assert answer.error_code == E.NONE, answer
        client.epoch = answer.member_epoch
        if answer.assignment is not None:
            new = {t: set(p) for t, p in answer.assignment.items()}
            client.releasing |= {(t, p) for t, ps in client.owned.items() for p in ps if p not in new.get(t, ())}
            client.owned = new
        check()

    def check():
        seen = {}
        for client in clients:
            held = {(t, p) for t, ps in client.owned.items() for p in ps} | client.releasing
            for key in held:
                assert key not in seen, f"{key} owned by {seen[key]} and {client.member_id}"
                seen[key] = client.member_id

    for action, index, topics, assignor in ops:
        client = clients[index]
        if action == "join" and not client.joined:
            client.joined = True
            client.owned = {}
            send(client, 0, subscribed_topic_names=list(topics), rebalance_timeout_ms=60000, owned=[],
                 server_assignor=assignor)
        elif action in ("beat", "lazy_beat") and client.joined:
            send(client, owned=None if action == "lazy_beat" else _owned(client.owned))
        elif action == "leave" and client.joined:
            client.owned, client.releasing = {}, set()  # a leaving client gives everything up first
            send(client, -1)
            client.joined, client.epoch = False, 0
        elif action == "resubscribe" and client.joined:
            send(client, subscribed_topic_names=list(topics), owned=_owned(client.owned))
        elif action == "grow":
            cluster.topics[topics[0]].partition_count += 1
        cluster.coordinator.timer.advance(100)
    live = [client for client in clients if client.joined]
    for _ in range(6):  # everyone heartbeats a few times: the group settles
        for client in live:
            if client.joined:
                send(client, owned=_owned(client.owned))
    group = cluster.groups.group("g")
    if group is None or not live:
        return
    assert group.state is ConsumerGroupState.STABLE
    subscribed = group.subscribed_topic_names()
    expected = {(cluster.tid(name), p) for name in subscribed for p in range(cluster.topics[name].partition_count)}
    owned = {(t, p) for client in clients for t, ps in client.owned.items() for p in ps}
    assert owned == expected


@pytest.mark.parametrize("pattern, ok", [
    ("orders-.*", True), ("^[a-z]+_(eu|us)$", True), ("a{2,5}x", True), (r"\d+\.events", True),
    ("(a+)+$", False), ("(a|aa)*b", False), (".*a.*b.*c.*d", False), ("(x*){2}", False),  # could backtrack for ever
    ("t[", False), ("(?=x)y", False), ("(?<!x)y", False), (r"(a)\1", False),  # not RE2 / not a regex
])
def test_which_subscription_regexes_are_taken(pattern, ok):
    cluster = Cluster(t=1)
    answer = cluster.beat("m", 0, subscribed_topic_regex=pattern, rebalance_timeout_ms=1000, owned=[])
    assert answer.error_code == (E.NONE if ok else E.INVALID_REGULAR_EXPRESSION), answer.error_message


KNOWN_ANSWERS = {E.NONE, E.INVALID_REQUEST, E.FENCED_MEMBER_EPOCH, E.UNKNOWN_MEMBER_ID, E.UNRELEASED_INSTANCE_ID,
                 E.FENCED_INSTANCE_ID, E.UNSUPPORTED_ASSIGNOR, E.INVALID_REGULAR_EXPRESSION, E.GROUP_ID_NOT_FOUND}

random_requests = st.builds(
    HeartbeatRequest,
    group_id=st.sampled_from(["g", "h", ""]),
    member_id=st.sampled_from(["", "m1", "m2", "m3"]),
    member_epoch=st.integers(-3, 6),
    instance_id=st.sampled_from([None, None, "", "pod-1", "pod-2"]),
    rack_id=st.sampled_from([None, "", "r"]),
    rebalance_timeout_ms=st.sampled_from([-1, 0, 1000]),
    subscribed_topic_names=st.one_of(st.none(), st.lists(st.sampled_from(["t", "u", "missing", ""]), max_size=3)),
    subscribed_topic_regex=st.sampled_from([None, "", "t|u", "(a+)+", "["]),
    server_assignor=st.sampled_from([None, "uniform", "range", "other"]),
    owned=st.one_of(st.none(), st.lists(st.tuples(st.sampled_from([A, uuid.uuid5(uuid.NAMESPACE_DNS, "t")]),
                                                  st.lists(st.integers(-2, 5), max_size=3)), max_size=2)),
    api_version=st.integers(0, 1))


@settings(max_examples=200, deadline=None)
@given(st.lists(random_requests, max_size=25), st.lists(st.integers(0, 60000), max_size=25))
def test_any_heartbeat_sequence_gets_a_kafka_answer(requests, pauses):
    cluster = Cluster(t=3, u=1)
    for index, request in enumerate(requests):
        answer = cluster.groups.heartbeat(request, cluster.topics)
        assert answer.error_code in KNOWN_ANSWERS, answer
        if answer.error_code != E.NONE:
            assert answer.error_message
        if index < len(pauses):
            cluster.coordinator.timer.advance(pauses[index])
    for group in cluster.groups.groups.values():  # ownership stays consistent with the members
        owned = {(t, p): m.member_epoch for m in group.members.values() for t, ps in m.owned().items() for p in ps}
        assert owned == group.partition_epochs


def test_an_empty_consumer_group_and_its_offsets_expire():
    cluster = Cluster(t=1)
    coordinator = cluster.coordinator
    coordinator.config = type(coordinator.config)(offsets_retention_ms=60000, offsets_retention_check_interval_ms=10000)
    cluster.join("m1")
    assert coordinator.store_offsets("g", [("t", 0, 3, -1, "")]) == E.NONE
    cluster.beat("m1", -1)  # empty from now on; its offset was committed at time 0
    coordinator.timer.advance(50000)
    assert cluster.groups.group("g") is not None and coordinator.offsets["g"]
    coordinator.timer.advance(20000)  # 60 s after the commit, at the next check
    assert cluster.groups.group("g") is None and "g" not in coordinator.offsets
    # A group with members keeps the offsets of the topics they subscribe to however old they
    # are; those of a topic nobody subscribes to expire after their commit, as in Kafka.
    cluster.join("m2", group="busy")
    coordinator.store_offsets("busy", [("t", 0, 1, -1, ""), ("unsubscribed", 0, 2, -1, "")])
    for _ in range(20):
        coordinator.timer.advance(10000)
        member = cluster.groups.group("busy").members["m2"]
        cluster.beat("m2", member.member_epoch, group="busy", owned=_owned(member.assigned))
    assert set(coordinator.offsets["busy"]) == {("t", 0)}


def test_a_consumer_group_left_with_classic_members_downgrades():
    cluster = Cluster(t=4)
    coordinator = cluster.coordinator
    cluster.join("modern")
    classic_a, _, _ = _classic_member(cluster, "g")
    classic_b, _, _ = _classic_member(cluster, "g")
    epoch = cluster.groups.group("g").group_epoch
    assert coordinator.store_offsets("g", [("t", 0, 7, -1, "")]) == E.NONE
    assert cluster.beat("modern", -1).error_code == E.NONE
    # Only classic members are left: it is a classic group again, in the consumer group's epoch,
    # rebalancing; its offsets stay.
    assert cluster.groups.group("g") is None
    classic = coordinator.group("g")
    assert classic.is_in(GroupState.PREPARING_REBALANCE) and set(classic.members) == {classic_a, classic_b}
    assert classic.generation_id == epoch and classic.protocol_name == "range"
    assert coordinator.offsets["g"][("t", 0)].offset == 7
    answers = []
    for member_id in (classic_a, classic_b):
        coordinator.join_group(JoinRequest("g", member_id, None, "consumer", [("range", _subscription(["t"]))],
                                           10000, 20000, api_version=5), answers.append)
    assert [a.error_code for a in answers] == [E.NONE, E.NONE] and answers[0].generation_id == epoch + 1
    assert sum(1 for a in answers if a.members) == 1  # a leader again, with everyone's subscription


def test_migrations_replay_from_the_records():
    cluster = Cluster(t=4)
    store = RecordingStore()
    cluster.coordinator.store = store
    cluster.coordinator.config = type(cluster.coordinator.config)(initial_rebalance_delay_ms=0)
    cluster.join("modern")
    classic_id, _, _ = _classic_member(cluster, "g")
    replayed = GroupCoordinator(timer=ManualTimer())
    replayed.attach_store(store)
    replayed.timer.advance(0)  # the replay runs on the timer, a slice a turn
    assert _state(replayed.consumer) == _state(cluster.groups)
    assert replayed.consumer.group("g").members[classic_id].classic.protocols[0][0] == "range"
    cluster.beat("modern", -1)  # downgrade
    replayed = GroupCoordinator(timer=ManualTimer())
    replayed.attach_store(store)
    replayed.timer.advance(0)  # the replay runs on the timer, a slice a turn
    assert replayed.consumer.group("g") is None
    assert set(replayed.group("g").members) == {classic_id}
    assert replayed.group("g").generation_id == cluster.coordinator.group("g").generation_id


class ClassicClient:
    """A classic consumer inside the consumer group: eager (gives everything up before it
    rejoins) or cooperative (keeps what it has, reports it in its subscription, and gives up
    what a SyncGroup no longer lists right after it)."""

    def __init__(self, cluster, name, cooperative):
        self.cluster, self.name, self.cooperative = cluster, name, cooperative
        self.member_id = ""
        self.generation = -1
        self.owned: set[int] = set()
        self.joined = False

    def join(self, topics=("t",)):
        coordinator = self.cluster.coordinator
        if not self.member_id:
            required = _classic_join(self.cluster, "g", topics=topics)[0]
            if required.error_code != E.MEMBER_ID_REQUIRED:
                return
            self.member_id = required.member_id
        if not self.cooperative:
            self.owned = set()  # eager: revoke everything first
        owned = [("t", sorted(self.owned))] if self.owned else []
        joined = _classic_join(self.cluster, "g", self.member_id, topics=topics, owned=owned)[0]
        if joined.error_code != E.NONE:
            self.forget()
            return
        self.joined, self.generation = True, joined.generation_id
        synced = []
        coordinator.sync_group("g", self.generation, self.member_id, None, "consumer", "range", {}, synced.append)
        if synced[0].error_code == E.NONE:
            self.owned = _decoded(synced[0].assignment).get("t", set())

    def heartbeat(self):
        error = self.cluster.coordinator.heartbeat("g", self.generation, self.member_id, None)
        if error == E.REBALANCE_IN_PROGRESS:
            self.join()
        elif error != E.NONE:
            self.forget()

    def leave(self):
        self.owned = set()
        self.cluster.coordinator.leave_group("g", [(self.member_id, None)])
        self.forget()

    def forget(self):
        self.member_id, self.generation, self.owned, self.joined = "", -1, set(), False


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["beat", "beat", "classic_join", "classic_beat", "classic_leave",
                                           "modern_join", "modern_leave", "grow"]),
                          st.integers(0, 2)), max_size=40),
       st.booleans())
def test_classic_and_consumer_members_never_double_own(ops, cooperative):
    cluster = Cluster(t=4)
    anchor = SimulatedClient("anchor")  # a consumer-protocol member that stays: the group stays a consumer group
    modern = [SimulatedClient(f"modern-{index}") for index in range(3)]
    classic = [ClassicClient(cluster, f"classic-{index}", cooperative) for index in range(3)]
    t = cluster.tid("t")

    def beat(client, **fields):
        if fields.get("owned") is not None:
            client.releasing = set()
        answer = cluster.beat(client.member_id, client.epoch, **fields)
        if answer.error_code in (E.FENCED_MEMBER_EPOCH, E.UNKNOWN_MEMBER_ID):
            client.owned, client.releasing, client.joined, client.epoch = {}, set(), False, 0
            return
        assert answer.error_code == E.NONE, answer
        client.epoch = answer.member_epoch
        if answer.assignment is not None:
            new = {k: set(v) for k, v in answer.assignment.items()}
            client.releasing |= {p for p in client.owned.get(t, ()) if p not in new.get(t, ())}
            client.owned = new

    def check():
        seen = {}
        for client in [anchor] + modern:
            for p in client.owned.get(t, set()) | client.releasing:
                assert p not in seen, (p, seen[p], client.member_id)
                seen[p] = client.member_id
        for client in classic:
            for p in client.owned:
                assert p not in seen, (p, seen[p], client.member_id)
                seen[p] = client.member_id

    anchor.joined = True
    beat(anchor, subscribed_topic_names=["t"], rebalance_timeout_ms=600000, owned=[])
    for action, index in ops:
        if action == "beat":
            for client in [anchor] + [m for m in modern if m.joined]:
                beat(client, owned=_owned(client.owned))
        elif action == "classic_join" and not classic[index].joined:
            classic[index].join()
        elif action == "classic_beat" and classic[index].joined:
            classic[index].heartbeat()
        elif action == "classic_leave" and classic[index].joined:
            classic[index].leave()
        elif action == "modern_join" and not modern[index].joined:
            modern[index].joined, modern[index].epoch, modern[index].owned = True, 0, {}
            beat(modern[index], subscribed_topic_names=["t"], rebalance_timeout_ms=600000, owned=[])
        elif action == "modern_leave" and modern[index].joined:
            modern[index].owned, modern[index].releasing = {}, set()
            cluster.beat(modern[index].member_id, -1)
            modern[index].joined = False
        elif action == "grow":
            cluster.topics["t"].partition_count += 1
        check()
        cluster.coordinator.timer.advance(100)
    for _ in range(8):  # everyone heartbeats: the group settles with every partition owned once
        for client in [anchor] + [m for m in modern if m.joined]:
            beat(client, owned=_owned(client.owned))
        for client in classic:
            if client.joined:
                client.heartbeat()
        check()
    group = cluster.groups.group("g")
    assert group.state is ConsumerGroupState.STABLE
    owned = [p for c in [anchor] + modern for p in c.owned.get(t, ())] + [p for c in classic for p in c.owned]
    assert sorted(owned) == list(range(cluster.topics["t"].partition_count))


def test_assignors_setting():
    cluster = Cluster(t=2)
    cluster.coordinator.config = type(cluster.coordinator.config)(consumer_assignors=("range",))
    assert cluster.join("m1", server_assignor="uniform").error_code == E.UNSUPPORTED_ASSIGNOR
    assert cluster.join("m1").error_code == E.NONE
    assert cluster.groups.group("g").preferred_assignor(cluster.coordinator.config.consumer_assignors[0]) == "range"


@pytest.mark.parametrize("policy, upgrades, downgrades", [
    ("bidirectional", True, True), ("upgrade", True, False), ("downgrade", False, True), ("disabled", False, False)])
def test_migration_policy(policy, upgrades, downgrades):
    cluster = Cluster(t=2)
    coordinator = cluster.coordinator
    coordinator.config = type(coordinator.config)(initial_rebalance_delay_ms=0, migration_policy=policy)
    joins = []
    coordinator.join_group(JoinRequest("old", "", None, "consumer", [("range", _subscription(["t"]))], 10000, 20000,
                                       api_version=3), joins.append)
    coordinator.timer.advance(0)
    answer = cluster.join("modern", group="old")
    assert answer.error_code == (E.NONE if upgrades else E.GROUP_ID_NOT_FOUND)
    # A classic member may join a consumer group whatever the policy (as in Kafka).
    cluster.join("modern", group="g")
    classic_id, _, _ = _classic_member(cluster, "g")
    cluster.beat("modern", -1)
    assert (coordinator.group("g") is not None) == downgrades
    assert (cluster.groups.group("g") is not None) == (not downgrades)


@pytest.mark.parametrize("settings, key", [
    ({"group.consumer.heartbeat.interval.ms": "100"}, "group.consumer.heartbeat.interval.ms"),  # below the minimum
    ({"group.consumer.session.timeout.ms": "90000"}, "group.consumer.session.timeout.ms"),  # above the maximum
    ({"group.consumer.min.heartbeat.interval.ms": "1", "group.consumer.heartbeat.interval.ms": "50000",
      "group.consumer.max.heartbeat.interval.ms": "60000"}, "group.consumer.heartbeat.interval.ms"),  # >= session
    ({"group.consumer.migration.policy": "sideways"}, "group.consumer.migration.policy"),
    ({"group.consumer.assignors": "sticky"}, "group.consumer.assignors"),
])
def test_consumer_protocol_settings_are_checked_as_kafka_does(settings, key):
    from odradek.broker.config import BrokerConfig, ConfigError

    with pytest.raises(ConfigError) as info:
        BrokerConfig.from_sources(settings)
    assert info.value.key == key
    config = BrokerConfig.from_sources({"group.consumer.migration.policy": "UPGRADE",
                                        "group.consumer.assignors": "org.apache.kafka.coordinator.group.assignor.RangeAssignor,uniform"})
    group_config = type(GroupCoordinator().config).from_broker_config(config)
    assert (group_config.migration_policy, group_config.consumer_assignors) == ("upgrade", ("range", "uniform"))


def test_a_deleted_topic_is_taken_away():
    cluster = Cluster(t=2, u=2)
    first = cluster.join("m1", topics=("t", "u"))
    assert _count(first.assignment) == 4
    del cluster.topics["u"]
    revoke = cluster.beat("m1", 1, owned=_owned(first.assignment))
    assert revoke.member_epoch == 1 and revoke.assignment == {cluster.tid("t"): {0, 1}}
    done = cluster.beat("m1", 1, owned=_owned(revoke.assignment))
    assert done.member_epoch == 2 and cluster.groups.group("g").state is ConsumerGroupState.STABLE
