"""The classic group state machine with a manual clock: no sleeps, no event loop, no sockets."""

from __future__ import annotations

import pytest

from odradek.broker.groups import GroupConfig, GroupCoordinator, GroupState, JoinRequest, ManualTimer, coordinator_partition
from odradek.protocol import error_codes as E

SESSION = 10_000
REBALANCE = 30_000
DELAY = 3_000


class Answer:
    """A respond callback that records what it was called with."""

    def __init__(self):
        self.results = []

    def __call__(self, result):
        self.results.append(result)

    @property
    def done(self) -> bool:
        return bool(self.results)

    @property
    def value(self):
        assert len(self.results) == 1, self.results
        return self.results[0]


def make(**overrides) -> tuple[GroupCoordinator, ManualTimer]:
    timer = ManualTimer()
    settings = dict(initial_rebalance_delay_ms=DELAY, min_session_timeout_ms=1000, max_session_timeout_ms=60_000)
    settings.update(overrides)
    return GroupCoordinator(GroupConfig(**settings), timer), timer


def join_request(member_id="", group="g", protocols=(("range", b"r-meta"),), instance=None, version=9,
                 session=SESSION, rebalance=REBALANCE, protocol_type="consumer", client="client"):
    return JoinRequest(group_id=group, member_id=member_id, group_instance_id=instance, protocol_type=protocol_type,
                       protocols=list(protocols), session_timeout_ms=session, rebalance_timeout_ms=rebalance,
                       client_id=client, client_host="/127.0.0.1", api_version=version)


def join(coordinator, **kwargs) -> Answer:
    answer = Answer()
    coordinator.join_group(join_request(**kwargs), answer)
    return answer


def new_member(coordinator, **kwargs) -> tuple[str, Answer]:
    """KIP-394: the first JoinGroup gets an id, the second one is parked in the rebalance."""
    first = join(coordinator, **kwargs)
    assert first.value.error_code == E.MEMBER_ID_REQUIRED
    return first.value.member_id, join(coordinator, member_id=first.value.member_id, **kwargs)


def sync(coordinator, member_id, generation, assignments=None, group="g", instance=None) -> Answer:
    answer = Answer()
    coordinator.sync_group(group, generation, member_id, instance, None, None, assignments or {}, answer)
    return answer


def stable_group_of_two(coordinator, timer):
    a, a_join = new_member(coordinator, client="a")
    b, b_join = new_member(coordinator, client="b")
    timer.advance(2 * DELAY)  # the second member extended the initial delay once
    assert a_join.value.error_code == b_join.value.error_code == E.NONE
    generation = a_join.value.generation_id
    leader = a_join.value.leader
    follower = b if leader == a else a
    follower_sync = sync(coordinator, follower, generation)
    assert not follower_sync.done
    leader_sync = sync(coordinator, leader, generation, {a: b"for-a", b: b"for-b"})
    assert leader_sync.value.error_code == follower_sync.value.error_code == E.NONE
    return a, b, generation


def test_first_join_without_member_id_is_told_to_rejoin_with_a_generated_one():
    coordinator, timer = make()
    answer = join(coordinator, client="my-client")
    assert answer.value.error_code == E.MEMBER_ID_REQUIRED
    assert answer.value.member_id.startswith("my-client-")
    group = coordinator.group("g")
    assert group.state is GroupState.EMPTY and answer.value.member_id in group.pending_join_members
    # A pending id that never joins expires with its session.
    timer.advance(SESSION)
    assert not group.pending_join_members


def test_versions_before_4_join_at_once_without_member_id():
    coordinator, timer = make()
    answer = join(coordinator, version=3)
    assert not answer.done
    timer.advance(DELAY)
    assert answer.value.error_code == E.NONE and answer.value.generation_id == 1
    assert answer.value.leader == answer.value.member_id


def test_single_member_rebalance_after_initial_delay():
    coordinator, timer = make()
    member_id, answer = new_member(coordinator)
    group = coordinator.group("g")
    assert group.state is GroupState.PREPARING_REBALANCE and not answer.done
    timer.advance(DELAY - 1)
    assert not answer.done
    timer.advance(1)
    result = answer.value
    assert result.error_code == E.NONE and result.generation_id == 1
    assert result.leader == member_id and result.protocol_name == "range" and result.protocol_type == "consumer"
    assert result.members == [(member_id, None, b"r-meta")]
    assert group.state is GroupState.COMPLETING_REBALANCE


def test_initial_delay_is_extended_while_members_keep_arriving():
    coordinator, timer = make()
    _, first = new_member(coordinator)
    timer.advance(2_000)
    _, second = new_member(coordinator)
    timer.advance(1_000)  # the first delay is over, but a member arrived during it: wait another
    assert not first.done and not second.done
    timer.advance(DELAY - 1)
    assert not first.done
    timer.advance(1)
    assert first.value.generation_id == second.value.generation_id == 1


def test_initial_delay_never_exceeds_the_rebalance_timeout():
    coordinator, timer = make()
    answers = []
    _, answer = new_member(coordinator, rebalance=5_000)
    answers.append(answer)
    for _ in range(10):  # a member every second, forever
        timer.advance(1_000)
        if answers[0].done:
            break
        answers.append(new_member(coordinator, rebalance=5_000)[1])
    assert answers[0].done and timer.now_ms() <= 5_000 + DELAY


def test_followers_sync_waits_for_the_leader_and_gets_its_assignment():
    coordinator, timer = make()
    a, b, generation = stable_group_of_two(coordinator, timer)
    group = coordinator.group("g")
    assert group.state is GroupState.STABLE
    assert group.members[a].assignment == b"for-a" and group.members[b].assignment == b"for-b"
    # A Stable group answers a SyncGroup at once with the current assignment.
    again = sync(coordinator, b, generation)
    assert again.value.assignment == b"for-b" and again.value.protocol_name == "range"


def test_member_missing_from_the_leaders_assignment_gets_empty_bytes():
    coordinator, timer = make()
    a, a_join = new_member(coordinator)
    b, b_join = new_member(coordinator)
    timer.advance(2 * DELAY)  # the second member extended the initial delay once
    leader = a_join.value.leader
    follower = b if leader == a else a
    follower_sync = sync(coordinator, follower, 1)
    sync(coordinator, leader, 1, {leader: b"only-leader"})
    assert follower_sync.value.error_code == E.NONE and follower_sync.value.assignment == b""


def test_heartbeat_errors_and_rebalance_in_progress():
    coordinator, timer = make()
    a, b, generation = stable_group_of_two(coordinator, timer)
    assert coordinator.heartbeat("g", generation, a, None) == E.NONE
    assert coordinator.heartbeat("g", generation + 1, a, None) == E.ILLEGAL_GENERATION
    assert coordinator.heartbeat("g", generation, "nobody", None) == E.UNKNOWN_MEMBER_ID
    assert coordinator.heartbeat("other", generation, a, None) == E.UNKNOWN_MEMBER_ID
    assert coordinator.heartbeat("", generation, a, None) == E.INVALID_GROUP_ID
    _, c_join = new_member(coordinator)  # a third member: the group prepares a rebalance
    assert coordinator.heartbeat("g", generation, a, None) == E.REBALANCE_IN_PROGRESS
    a_rejoin = join(coordinator, member_id=a)
    b_rejoin = join(coordinator, member_id=b)
    # Everyone rejoined: the join phase ends without waiting for the timeout.
    assert a_rejoin.value.generation_id == b_rejoin.value.generation_id == c_join.value.generation_id == generation + 1


def test_session_expiry_removes_the_member_and_the_other_takes_over():
    coordinator, timer = make()
    a, b, generation = stable_group_of_two(coordinator, timer)
    for _ in range(5):  # a keeps heartbeating, b does not
        timer.advance(SESSION // 3)
        assert coordinator.heartbeat("g", generation, a, None) in (E.NONE, E.REBALANCE_IN_PROGRESS)
    group = coordinator.group("g")
    assert b not in group.members and group.state is GroupState.PREPARING_REBALANCE
    rejoin = join(coordinator, member_id=a)
    assert rejoin.value.generation_id == generation + 1 and rejoin.value.leader == a
    assert [member for member, _, _ in rejoin.value.members] == [a]


def test_member_that_does_not_rejoin_within_the_rebalance_timeout_is_removed():
    coordinator, timer = make()
    a, b, generation = stable_group_of_two(coordinator, timer)
    rejoin = join(coordinator, member_id=a, protocols=(("range", b"new-meta"),))  # metadata changed
    assert not rejoin.done
    for _ in range(REBALANCE // 3000):  # b heartbeats (told to rejoin) but never rejoins
        timer.advance(3000)
        coordinator.heartbeat("g", generation, b, None)
    assert rejoin.value.error_code == E.NONE and rejoin.value.generation_id == generation + 1
    assert list(coordinator.group("g").members) == [a]


def test_member_that_does_not_sync_in_time_is_removed():
    coordinator, timer = make()
    a, a_join = new_member(coordinator)
    b, b_join = new_member(coordinator)
    timer.advance(2 * DELAY)  # the second member extended the initial delay once
    leader = a_join.value.leader
    follower = b if leader == a else a
    sync(coordinator, leader, 1, {a: b"x", b: b"y"})
    assert coordinator.group("g").state is GroupState.STABLE
    for _ in range(REBALANCE // 3000):  # the follower never sends its SyncGroup; the leader heartbeats
        timer.advance(3000)
        coordinator.heartbeat("g", 1, leader, None)
    group = coordinator.group("g")
    assert follower not in group.members and group.state is GroupState.PREPARING_REBALANCE


def test_protocol_selection_takes_the_most_voted_protocol_all_members_support():
    coordinator, timer = make()
    _, a = new_member(coordinator, protocols=(("range", b"a1"), ("roundrobin", b"a2"), ("sticky", b"a3")))
    _, b = new_member(coordinator, protocols=(("roundrobin", b"b2"), ("range", b"b1")))
    _, c = new_member(coordinator, protocols=(("roundrobin", b"c2"), ("range", b"c1")))
    timer.advance(2 * DELAY)  # the second member extended the initial delay once
    assert a.value.protocol_name == b.value.protocol_name == "roundrobin"
    leader_answer = next(answer for answer in (a, b, c) if answer.value.members)
    assert sorted(metadata for _, _, metadata in leader_answer.value.members) == [b"a2", b"b2", b"c2"]


def test_inconsistent_protocols_are_refused():
    coordinator, timer = make()
    new_member(coordinator, protocols=(("range", b""),))
    assert join(coordinator, protocols=(("cooperative-sticky", b""),)).value.error_code == E.INCONSISTENT_GROUP_PROTOCOL
    assert join(coordinator, protocol_type="connect").value.error_code == E.INCONSISTENT_GROUP_PROTOCOL
    assert join(coordinator, group="fresh", protocols=()).value.error_code == E.INCONSISTENT_GROUP_PROTOCOL


def test_join_validation_errors():
    coordinator, _ = make()
    assert join(coordinator, group="").value.error_code == E.INVALID_GROUP_ID
    assert join(coordinator, session=10).value.error_code == E.INVALID_SESSION_TIMEOUT
    assert join(coordinator, session=10**9).value.error_code == E.INVALID_SESSION_TIMEOUT
    assert join(coordinator, member_id="ghost").value.error_code == E.UNKNOWN_MEMBER_ID


def test_group_max_size():
    coordinator, timer = make(max_size=1)
    new_member(coordinator)
    # During the rebalance the parked members count: the newcomer is turned away at once.
    assert join(coordinator).value.error_code == E.GROUP_MAX_SIZE_REACHED
    timer.advance(DELAY)
    assert coordinator.group("g").state is GroupState.COMPLETING_REBALANCE
    assert join(coordinator).value.error_code == E.GROUP_MAX_SIZE_REACHED


def test_leave_group_batched_and_rebalance():
    coordinator, timer = make()
    a, b, generation = stable_group_of_two(coordinator, timer)
    error, results = coordinator.leave_group("g", [(b, None), ("ghost", None)])
    assert error == E.NONE and results == [E.NONE, E.UNKNOWN_MEMBER_ID]
    group = coordinator.group("g")
    assert group.state is GroupState.PREPARING_REBALANCE
    rejoin = join(coordinator, member_id=a)
    assert rejoin.value.generation_id == generation + 1
    error, results = coordinator.leave_group("g", [(a, None)])
    assert results == [E.NONE] and group.state is GroupState.PREPARING_REBALANCE or group.state is GroupState.EMPTY
    timer.advance(REBALANCE)
    assert group.state is GroupState.EMPTY and group.generation_id == generation + 2
    assert coordinator.leave_group("nope", [(a, None)]) == (E.UNKNOWN_MEMBER_ID, [])


def test_leaving_while_parked_in_join_answers_unknown_member():
    coordinator, timer = make()
    a, b, generation = stable_group_of_two(coordinator, timer)
    rejoin = join(coordinator, member_id=a)
    coordinator.leave_group("g", [(a, None)])
    assert rejoin.value.error_code == E.UNKNOWN_MEMBER_ID


def test_rebalance_during_sync_tells_parked_followers_to_rejoin():
    coordinator, timer = make()
    a, a_join = new_member(coordinator)
    b, b_join = new_member(coordinator)
    timer.advance(2 * DELAY)  # the second member extended the initial delay once
    follower = b if a_join.value.leader == a else a
    parked = sync(coordinator, follower, 1)
    new_member(coordinator)  # a newcomer before the leader synced
    assert parked.value.error_code == E.REBALANCE_IN_PROGRESS


def test_static_member_restart_keeps_its_assignment_without_rebalance():
    coordinator, timer = make()
    first = join(coordinator, instance="pod-1")
    assert not first.done  # static members never get MEMBER_ID_REQUIRED
    timer.advance(DELAY)
    old_id = first.value.member_id
    assert old_id.startswith("pod-1-")
    sync(coordinator, old_id, 1, {old_id: b"mine"}, instance="pod-1")
    restarted = join(coordinator, instance="pod-1")  # same instance, no member id: a restart
    result = restarted.value
    assert result.error_code == E.NONE and result.generation_id == 1 and result.member_id != old_id
    assert result.skip_assignment  # it leads, but the assignment stands (KIP-814)
    group = coordinator.group("g")
    assert group.state is GroupState.STABLE and group.generation_id == 1
    assert sync(coordinator, result.member_id, 1, instance="pod-1").value.assignment == b"mine"
    assert coordinator.heartbeat("g", 1, old_id, "pod-1") == E.FENCED_INSTANCE_ID
    assert coordinator.heartbeat("g", 1, result.member_id, "pod-1") == E.NONE


def test_static_member_leave_by_instance_id():
    coordinator, timer = make()
    first = join(coordinator, instance="pod-1")
    timer.advance(DELAY)
    error, results = coordinator.leave_group("g", [("", "pod-1")])
    assert results == [E.NONE] and not coordinator.group("g").members
    assert coordinator.leave_group("g", [("", "pod-9")])[1] == [E.UNKNOWN_MEMBER_ID]
    assert first.value.error_code == E.NONE


def test_offset_commit_validation():
    coordinator, timer = make()
    # Outside any group: generation -1 is a simple commit; a generation needs the group.
    assert coordinator.validate_offset_commit("simple", -1, "", None, 8)[0] == E.NONE
    assert coordinator.validate_offset_commit("missing", 1, "m", None, 8)[0] == E.ILLEGAL_GENERATION
    assert coordinator.validate_offset_commit("missing", 1, "m", None, 9)[0] == E.GROUP_ID_NOT_FOUND
    a, a_join = new_member(coordinator)
    timer.advance(DELAY)
    # Joined, not synced yet: the member has its generation but no assignment.
    assert coordinator.validate_offset_commit("g", 1, a, None, 8)[0] == E.REBALANCE_IN_PROGRESS
    sync(coordinator, a, 1, {a: b""})
    assert coordinator.validate_offset_commit("g", 1, a, None, 8)[0] == E.NONE
    assert coordinator.validate_offset_commit("g", 0, a, None, 8)[0] == E.ILLEGAL_GENERATION
    assert coordinator.validate_offset_commit("g", 1, "ghost", None, 8)[0] == E.UNKNOWN_MEMBER_ID
    assert coordinator.validate_offset_commit("g", -1, "", None, 0)[0] == E.UNKNOWN_MEMBER_ID  # group not empty
    assert coordinator.validate_offset_commit("g", 1, a, "pod", 8)[0] == E.UNKNOWN_MEMBER_ID


def test_offsets_stored_fetched_and_deleted_with_the_group():
    coordinator, timer = make()
    coordinator.store_offsets("simple", [("t", 0, 42, 3, "meta"), ("t", 1, 7, -1, None)])
    assert coordinator.group("simple").state is GroupState.EMPTY
    error, found = coordinator.fetch_offsets("simple", [("t", 0), ("t", 5)])
    assert error == E.NONE and list(found) == [("t", 0)] and found[("t", 0)].offset == 42
    assert found[("t", 0)].metadata == "meta" and found[("t", 0)].leader_epoch == 3
    assert coordinator.fetch_offsets("simple", None)[1][("t", 1)].metadata == ""
    assert coordinator.delete_group("simple") == E.NONE
    assert coordinator.fetch_offsets("simple", None)[1] == {}
    assert coordinator.delete_group("simple") == E.GROUP_ID_NOT_FOUND
    new_member(coordinator)
    assert coordinator.delete_group("g") == E.NON_EMPTY_GROUP


def test_empty_groups_without_offsets_are_forgotten_at_the_cleanup_interval():
    coordinator, timer = make(offsets_retention_check_interval_ms=60_000, offsets_retention_ms=600_000)
    member_id, answer = new_member(coordinator)
    timer.advance(DELAY)
    coordinator.leave_group("g", [(member_id, None)])
    coordinator.store_offsets("kept", [("t", 0, 1, -1, "")])
    timer.advance(60_000)
    assert coordinator.group("g") is None and coordinator.group("kept") is not None
    timer.advance(600_000)  # the kept group's offsets expire with the retention
    assert coordinator.group("kept") is None


def test_shutdown_answers_parked_requests():
    coordinator, timer = make()
    _, answer = new_member(coordinator)
    coordinator.shutdown()
    assert answer.value.error_code == E.NOT_COORDINATOR
    assert join(coordinator).value.error_code == E.COORDINATOR_NOT_AVAILABLE


@pytest.mark.parametrize("key, expected_hash", [("", 0), ("a", 97), ("hello", 99162322),
                                                ("polygenelubricants", -(2**31))])
def test_coordinator_partition_follows_java_string_hash(key, expected_hash):
    absolute = 0 if expected_hash == -(2**31) else abs(expected_hash)
    assert coordinator_partition(key, 50) == absolute % 50


def _subscription(*topics: str) -> bytes:
    from odradek.protocol.messages.records.consumer_protocol_subscription import ConsumerProtocolSubscription
    return (1).to_bytes(2, "big") + ConsumerProtocolSubscription(topics=list(topics)).encode(1)


def test_offset_delete_spares_topics_the_members_subscribe_to():
    coordinator, timer = make()
    member_id, answer = new_member(coordinator, protocols=(("range", _subscription("subscribed")),))
    timer.advance(DELAY)
    sync(coordinator, member_id, 1, {member_id: b""})
    coordinator.store_offsets("g", [("subscribed", 0, 5, -1, ""), ("other", 0, 7, -1, "")])
    error, results = coordinator.delete_offsets("g", [("subscribed", 0), ("other", 0)])
    assert error == E.NONE and results == {("subscribed", 0): E.GROUP_SUBSCRIBED_TO_TOPIC, ("other", 0): E.NONE}
    assert set(coordinator.fetch_offsets("g", None)[1]) == {("subscribed", 0)}
    assert coordinator.delete_offsets("missing", [("other", 0)]) == (E.GROUP_ID_NOT_FOUND, {})


def test_offset_delete_in_a_non_consumer_group_needs_it_empty():
    coordinator, timer = make()
    member_id, answer = new_member(coordinator, group="connect", protocol_type="connect")
    coordinator.store_offsets("connect", [("t", 0, 1, -1, "")])
    assert coordinator.delete_offsets("connect", [("t", 0)]) == (E.NON_EMPTY_GROUP, {})
    timer.advance(DELAY)
    coordinator.leave_group("connect", [(member_id, None)])
    assert coordinator.delete_offsets("connect", [("t", 0)]) == (E.NONE, {("t", 0): E.NONE})
