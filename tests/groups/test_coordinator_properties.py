"""Random sequences of group operations against the state machine (manual clock): invariants
hold after every step, every request is answered at most once, and once the clients fall silent
every parked request gets its answer and the group empties."""

from __future__ import annotations

from hypothesis import event, given, strategies as st

from odradek.broker.groups import GroupConfig, GroupCoordinator, GroupState, JoinRequest, ManualTimer
from odradek.broker.groups.coordinator import NEW_MEMBER_JOIN_TIMEOUT_MS
from odradek.protocol import error_codes as E

CLIENTS = 4
PROTOCOL_CHOICES = [(("range", b"r"),), (("roundrobin", b"rr"), ("range", b"r")), (("roundrobin", b"rr"),)]

operation = st.one_of(
    st.tuples(st.just("join"), st.integers(0, CLIENTS - 1), st.integers(0, len(PROTOCOL_CHOICES) - 1), st.booleans()),
    st.tuples(st.just("sync"), st.integers(0, CLIENTS - 1)),
    st.tuples(st.just("sync"), st.just(None)),  # whichever client leads: the step that reaches Stable
    st.tuples(st.just("heartbeat"), st.integers(0, CLIENTS - 1)),
    st.tuples(st.just("leave"), st.integers(0, CLIENTS - 1)),
    st.tuples(st.just("advance"), st.sampled_from([0, 1, 500, 1_000, 2_000, 3_000, 7_000])),
)


class Client:
    def __init__(self, index: int):
        self.index = index
        self.member_id = ""
        self.generation = -1
        self.static = index % 2 == 1  # odd clients use group.instance.id


def check_invariants(coordinator: GroupCoordinator, last_generation: list[int]) -> None:
    group = coordinator.group("g")
    if group is None:
        return
    assert group.generation_id >= last_generation[0]
    last_generation[0] = group.generation_id
    if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
        assert group.members and group.leader_id in group.members
        assert group.protocol_name in group.candidate_protocols()
    if group.state is GroupState.STABLE:
        event("reached Stable")
        assert not any(member.awaiting_join or member.awaiting_sync for member in group.members.values())
    if group.state is GroupState.EMPTY:
        assert not group.members
    for instance_id, member_id in group.static_members.items():
        assert group.members[member_id].group_instance_id == instance_id
    assert (group.leader_id is None) == (not group.members)


@given(st.lists(operation, min_size=10, max_size=80))
def test_random_operations_keep_the_group_consistent_and_answer_everything(operations):
    timer = ManualTimer()
    coordinator = GroupCoordinator(GroupConfig(initial_rebalance_delay_ms=3000, min_session_timeout_ms=1000), timer)
    clients = [Client(index) for index in range(CLIENTS)]
    answers: list[list] = []  # one list per request: what it was answered with
    last_generation = [0]

    def recorder(client: Client | None, kind: str):
        received: list = []
        answers.append(received)

        def respond(result):
            received.append(result)
            if client is None:
                return
            if kind == "join" and result.error_code in (E.NONE, E.MEMBER_ID_REQUIRED):
                client.member_id = result.member_id
                if result.error_code == E.NONE:
                    client.generation = result.generation_id
            elif result.error_code in (E.UNKNOWN_MEMBER_ID, E.FENCED_INSTANCE_ID):
                client.member_id, client.generation = "", -1
        return respond

    for step in operations:
        kind = step[0]
        if kind == "join":
            client, protocols = clients[step[1]], PROTOCOL_CHOICES[step[2]]
            instance = f"pod-{client.index}" if client.static else None
            member_id = "" if step[3] and client.static else client.member_id  # a static restart
            coordinator.join_group(JoinRequest("g", member_id, instance, "consumer", list(protocols), 6_000, 10_000,
                                               f"c{client.index}", "/127.0.0.1", 9), recorder(client, "join"))
        elif kind == "sync":
            group = coordinator.group("g")
            leader = group.leader_id if group is not None else None
            if step[1] is None:
                client = next((c for c in clients if c.member_id and c.member_id == leader), clients[0])
            else:
                client = clients[step[1]]
            assignment = {c.member_id: b"a" for c in clients if c.member_id}
            coordinator.sync_group("g", client.generation, client.member_id,
                                   f"pod-{client.index}" if client.static else None, None, None, assignment,
                                   recorder(client, "sync"))
        elif kind == "heartbeat":
            client = clients[step[1]]
            coordinator.heartbeat("g", client.generation, client.member_id,
                                  f"pod-{client.index}" if client.static else None)
        elif kind == "leave":
            client = clients[step[1]]
            coordinator.leave_group("g", [(client.member_id, f"pod-{client.index}" if client.static else None)])
        else:
            timer.advance(step[1])
        check_invariants(coordinator, last_generation)
        assert all(len(received) <= 1 for received in answers)

    # Everyone falls silent: sessions, rebalances and new-member timeouts all run out.
    for _ in range(4):
        timer.advance(NEW_MEMBER_JOIN_TIMEOUT_MS)
        check_invariants(coordinator, last_generation)
    assert all(len(received) == 1 for received in answers), answers
    group = coordinator.group("g")
    assert group is None or (group.state is GroupState.EMPTY and not group.members)
