"""The classic group: its members, its state and the rules of its state machine.

State machine (Kafka's ``ClassicGroupState``)::

    Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
      ▲                  ▲      │                                     │
      │                  │      └──(no member left)──▶ Empty          │ leader's SyncGroup
      │                  └────────── member joins / leaves / expires ─┤
      │                                                               ▼
      └─────────── DeleteGroups: any state ──▶ Dead            Stable

A member joins (JoinGroup), the group rebalances: it waits in PreparingRebalance until every
known member has sent a JoinGroup (or the rebalance timeout passes), then bumps the generation,
selects the protocol every member supports with the most first-choice votes, answers every
parked JoinGroup (the leader gets the members' metadata) and moves to CompletingRebalance. The
leader's SyncGroup carries the assignment, which is handed to every member's (parked) SyncGroup,
and the group is Stable.

This module holds data and the invariants that do not involve time; the transitions that
involve timers and responses are in :mod:`odradek.broker.groups.coordinator`.

Ownership: a group belongs to the :class:`~odradek.broker.groups.coordinator.GroupCoordinator`
that created it; everything runs on the broker's event loop.
"""

from __future__ import annotations

import enum
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from odradek.protocol import error_codes
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.records.consumer_protocol_subscription import ConsumerProtocolSubscription

CONSUMER_PROTOCOL_TYPE = "consumer"


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


# target state -> states it may be entered from (Kafka's ClassicGroupState.validPreviousStates)
VALID_PREVIOUS_STATES = {
    GroupState.PREPARING_REBALANCE: {GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY},
    GroupState.COMPLETING_REBALANCE: {GroupState.PREPARING_REBALANCE},
    GroupState.STABLE: {GroupState.COMPLETING_REBALANCE},
    GroupState.DEAD: set(GroupState),
    GroupState.EMPTY: {GroupState.PREPARING_REBALANCE},
}


class GroupError(Exception):
    """A request the group refuses, with the Kafka error code to answer."""

    def __init__(self, error_code: int, message: str = ""):
        super().__init__(message or f"error code {error_code}")
        self.error_code = error_code


@dataclass(slots=True)
class JoinResult:
    """What a JoinGroup is answered with (version-independent; the handler encodes it)."""

    error_code: int
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    skip_assignment: bool = False
    # (member id, group instance id, metadata) of every member, for the leader only
    members: list[tuple[str, str | None, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class SyncResult:
    error_code: int
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


Respond = Callable[[object], None]


@dataclass(eq=False, slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]  # in the member's order of preference
    assignment: bytes = b""
    join_waiter: Respond | None = None  # a parked JoinGroup
    sync_waiter: Respond | None = None  # a parked SyncGroup
    # A member that has not had its first JoinGroup answered: its session may expire even while
    # it waits (it cannot heartbeat without knowing its id).
    is_new: bool = True

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    @property
    def awaiting_join(self) -> bool:
        return self.join_waiter is not None

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_waiter is not None

    def has_satisfied_heartbeat(self) -> bool:
        """Whether an expired session timer should spare this member: a member parked in a
        rebalance cannot heartbeat, the rebalance timeout governs it instead."""
        if self.is_new:
            return False
        return self.awaiting_join or self.awaiting_sync

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def metadata_for(self, protocol_name: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol_name:
                return metadata
        raise KeyError(protocol_name)

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among those every member supports."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError(f"member {self.member_id} supports none of {sorted(candidates)}")

    def complete_join(self, result: JoinResult) -> bool:
        waiter, self.join_waiter = self.join_waiter, None
        if waiter is None:
            return False
        waiter(result)
        return True

    def complete_sync(self, result: SyncResult) -> bool:
        waiter, self.sync_waiter = self.sync_waiter, None
        if waiter is None:
            return False
        waiter(result)
        return True


class ClassicGroup:
    """One classic group's membership, generation and selected protocol."""

    def __init__(self, group_id: str, now_ms: int):
        self.group_id = group_id
        self.state = GroupState.EMPTY
        self.previous_state: GroupState | None = None
        # When the group entered its state (None: restored from a record without one).
        self.state_timestamp_ms: int | None = now_ms
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.static_members: dict[str, str] = {}  # group instance id -> member id
        self.pending_join_members: set[str] = set()  # got MEMBER_ID_REQUIRED, not joined yet
        self.pending_sync_members: set[str] = set()  # got their JoinGroup answer, no SyncGroup yet
        self._supported_protocols: Counter[str] = Counter()  # protocol name -> members supporting it
        # Set when a member joins during the initial (delayed) rebalance: the delay is extended.
        self.new_member_added = False

    def __repr__(self) -> str:
        return f"ClassicGroup({self.group_id!r}, {self.state.value}, generation={self.generation_id}, members={len(self.members)})"

    # --- state ---

    def is_in(self, *states: GroupState) -> bool:
        return self.state in states

    def can_rebalance(self) -> bool:
        return self.state in VALID_PREVIOUS_STATES[GroupState.PREPARING_REBALANCE]

    def transition_to(self, target: GroupState, now_ms: int) -> None:
        if self.state not in VALID_PREVIOUS_STATES[target]:
            raise AssertionError(f"group {self.group_id}: invalid transition {self.state.value} -> {target.value}")
        self.previous_state = self.state
        self.state = target
        self.state_timestamp_ms = now_ms

    # --- members ---

    def has_member(self, member_id: str) -> bool:
        return member_id in self.members

    def is_pending_member(self, member_id: str) -> bool:
        return member_id in self.pending_join_members

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def static_member_id(self, group_instance_id: str | None) -> str | None:
        if group_instance_id is None:
            return None
        return self.static_members.get(group_instance_id)

    def generate_member_id(self, client_id: str, group_instance_id: str | None) -> str:
        # Kafka's form: "<client id or instance id>-<uuid>", so operators can tell whose it is.
        prefix = group_instance_id if group_instance_id is not None else client_id
        return f"{prefix}-{uuid.uuid4()}"

    def num_awaiting_join(self) -> int:
        return sum(1 for member in self.members.values() if member.awaiting_join)

    def has_all_members_joined(self) -> bool:
        return self.num_awaiting_join() == len(self.members) and not self.pending_join_members

    def not_yet_rejoined(self) -> list[Member]:
        return [member for member in self.members.values() if not member.awaiting_join]

    def rebalance_timeout_ms(self) -> int:
        """The longest rebalance timeout any member asked for: the join phase waits that long."""
        return max((member.rebalance_timeout_ms for member in self.members.values()), default=0)

    def add(self, member: Member) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        self.pending_join_members.discard(member.member_id)
        self.members[member.member_id] = member
        self._supported_protocols.update(set(member.protocol_names()))
        if member.is_static:
            self.static_members[member.group_instance_id] = member.member_id
        if self.leader_id is None:
            self.leader_id = member.member_id

    def remove(self, member_id: str) -> Member | None:
        """Drop a member (or a pending member id). The caller answers its parked requests."""
        if member_id in self.pending_join_members:
            self.pending_join_members.discard(member_id)
            return None
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        self._supported_protocols.subtract(set(member.protocol_names()))
        self._supported_protocols += Counter()  # drop zero counts
        if member.is_static and self.static_members.get(member.group_instance_id) == member_id:
            del self.static_members[member.group_instance_id]
        self.pending_sync_members.discard(member_id)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        return member

    def update_protocols(self, member: Member, protocols: list[tuple[str, bytes]]) -> None:
        self._supported_protocols.subtract(set(member.protocol_names()))
        member.protocols = protocols
        self._supported_protocols.update(set(member.protocol_names()))
        self._supported_protocols += Counter()

    def replace_static_member(self, group_instance_id: str, old_member_id: str, new_member_id: str) -> Member:
        """A static member restarted: it keeps its place (and assignment) under a new member id.
        The old id's parked requests are answered FENCED_INSTANCE_ID."""
        member = self.members.pop(old_member_id)
        member.complete_join(JoinResult(error_codes.FENCED_INSTANCE_ID, member_id=old_member_id))
        member.complete_sync(SyncResult(error_codes.FENCED_INSTANCE_ID))
        member.member_id = new_member_id
        self.members[new_member_id] = member
        if self.leader_id == old_member_id:
            self.leader_id = new_member_id
        self.static_members[group_instance_id] = new_member_id
        if old_member_id in self.pending_sync_members:
            self.pending_sync_members.discard(old_member_id)
            self.pending_sync_members.add(new_member_id)
        return member

    def validate_member(self, member_id: str, group_instance_id: str | None) -> None:
        """Raise GroupError unless ``member_id`` (and its instance id, when given) is a member."""
        if group_instance_id is not None:
            existing = self.static_members.get(group_instance_id)
            if existing is None:
                raise GroupError(error_codes.UNKNOWN_MEMBER_ID)
            if existing != member_id:
                raise GroupError(error_codes.FENCED_INSTANCE_ID)
        if member_id not in self.members:
            raise GroupError(error_codes.UNKNOWN_MEMBER_ID)

    # --- protocols ---

    def supports_protocols(self, protocol_type: str, protocol_names: list[str]) -> bool:
        """Whether a member with these protocols may join: an empty group takes any non-empty
        protocol type and list; otherwise the type must match and at least one protocol must
        be one every current member supports."""
        if self.state is GroupState.EMPTY:
            return bool(protocol_type) and bool(protocol_names)
        member_count = len(self.members)
        return (self.protocol_type == protocol_type
                and any(self._supported_protocols.get(name, 0) == member_count for name in protocol_names))

    def candidate_protocols(self) -> set[str]:
        member_count = len(self.members)
        return {name for name, count in self._supported_protocols.items() if count == member_count}

    def select_protocol(self) -> str:
        """Each member votes for its most preferred protocol among those all support; the
        protocol with the most votes wins (ties: the one voted first, in join order)."""
        if not self.members:
            raise AssertionError("cannot select a protocol for an empty group")
        candidates = self.candidate_protocols()
        votes: Counter[str] = Counter()
        for member in self.members.values():
            votes[member.vote(candidates)] += 1
        return max(votes, key=lambda name: votes[name])  # max keeps the first of equal counts

    def members_metadata(self) -> list[tuple[str, str | None, bytes]]:
        """What the leader receives: every member's metadata for the selected protocol."""
        return [(member.member_id, member.group_instance_id, member.metadata_for(self.protocol_name))
                for member in self.members.values()]

    def subscribed_topics(self) -> set[str] | None:
        """The topics the members of a "consumer" group subscribe to (from their
        ConsumerProtocolSubscription for the selected protocol); None when unknown (another
        protocol type, or metadata that does not parse)."""
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE or not self.protocol_name:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            try:
                metadata = member.metadata_for(self.protocol_name)
                if len(metadata) < 2:
                    return None
                version = int.from_bytes(metadata[:2], "big", signed=True)
                # Newer subscription versions only add fields: read them as the newest we know.
                known = min(max(version, 0), ConsumerProtocolSubscription.MAX_VERSION)
                topics.update(ConsumerProtocolSubscription.decode(memoryview(metadata)[2:], known).topics)
            except (KeyError, ProtocolError):
                return None
        return topics

    def init_next_generation(self, now_ms: int) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.transition_to(GroupState.EMPTY, now_ms)
        self.pending_sync_members.clear()

    def maybe_elect_new_joined_leader(self) -> bool:
        """Before completing a join phase: keep the leader if it rejoined, else hand leadership
        to a member that did. False when nobody rejoined (the phase cannot complete)."""
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].awaiting_join:
            return True
        for member in self.members.values():
            if member.awaiting_join:
                self.leader_id = member.member_id
                return True
        return False
