"""KIP-848 consumer groups (``group.protocol=consumer``): a group's state and the reconciliation
of each member towards its target assignment, without time or I/O (the ConsumerGroupHeartbeat
state machine that drives them is :mod:`odradek.broker.groups.consumer_groups`).

Kafka's semantics (``ConsumerGroup``, ``ConsumerGroupMember`` and ``CurrentAssignmentBuilder`` of
Kafka's group-coordinator module), in brief:

* **Epochs.** The *group epoch* goes up whenever what the assignment depends on changes: a
  member joins or leaves, a subscription (topic names, regex, server assignor) changes, or a
  subscribed topic appears, disappears or gains partitions. The *assignment epoch* is the group
  epoch for which the target assignment was last computed (here at once, in the heartbeat that
  bumped the group epoch, so the group is never seen ``Assigning``). Each member has a *member
  epoch*: the assignment epoch it has reconciled to.
* **Reconciliation is incremental** (:func:`reconcile`). A member keeps the partitions of its
  target it already has; partitions it must give up are *revoked first* (the member stays at
  its epoch until a heartbeat no longer lists them as owned); a partition of its target that
  another member still owns (or has not confirmed revoking) is *unreleased* and handed over on
  a later heartbeat, once free. :class:`ConsumerGroup` keeps, per partition, the epoch of the
  member owning it, and refuses to give a partition to two members. So members move to a new
  epoch one by one, without a stop-the-world.

Regex subscriptions (``SubscribedTopicRegex``) are resolved against every topic name, with
Python's ``re.fullmatch``, whenever the topics or the group's patterns change. Kafka uses RE2/J,
which has no backreferences or lookaround: such patterns are refused here too
(INVALID_REGULAR_EXPRESSION). RE2/J matches in linear time; Python's engine backtracks, so
patterns that can backtrack catastrophically (a repeated group that itself repeats or
alternates, or more than three unbounded repeats) are refused as well, where Kafka takes them.
Syntax only one of the two engines knows (RE2's ``\\p{Greek}``, Python's ``(?P=name)``) is read
by each its own way.

Ownership: groups belong to the :class:`~odradek.broker.groups.consumer_groups.ConsumerGroups`
that created them; everything runs on the broker's event loop.
"""

from __future__ import annotations

import enum
import re
import uuid

try:  # Python 3.11+: the regex parser, to judge how a pattern would backtrack
    from re import _constants, _parser as _regex_parser
except ImportError:  # pragma: no cover - Python < 3.11 is not supported
    import sre_constants as _constants
    import sre_parse as _regex_parser
from dataclasses import dataclass, field, replace

from .assignors import Assignment
from .classic import CONSUMER_PROTOCOL_TYPE

JOIN_GROUP_MEMBER_EPOCH = 0
LEAVE_GROUP_MEMBER_EPOCH = -1
LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2

# RE2/J (Kafka's regex engine for subscriptions) has neither backreferences nor lookaround.
_UNSUPPORTED_REGEX_SYNTAX = re.compile(r"\\[1-9]|\(\?<?[=!]|\(\?P=")
MAX_UNBOUNDED_REPEATS = 3


class MemberState(enum.IntEnum):
    """Kafka's ``MemberState``; the values are those of the persisted records."""

    STABLE = 0
    UNREVOKED_PARTITIONS = 1
    UNRELEASED_PARTITIONS = 2
    UNKNOWN = 127


class ConsumerGroupState(enum.Enum):
    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


def _copy(assignment: Assignment) -> Assignment:
    return {topic_id: set(partitions) for topic_id, partitions in assignment.items() if partitions}


@dataclass(frozen=True, slots=True)
class ClassicMemberInfo:
    """What a member that speaks the classic protocol (JoinGroup/SyncGroup/Heartbeat) inside a
    consumer group adds: its session timeout and its protocols (assignor names and subscription
    metadata), as in Kafka's ``ClassicMemberMetadata``."""

    session_timeout_ms: int
    protocols: tuple[tuple[str, bytes], ...]


@dataclass(slots=True)
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: tuple[str, ...] = ()
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: Assignment = field(default_factory=dict)
    pending_revocation: Assignment = field(default_factory=dict)
    classic: ClassicMemberInfo | None = None  # set for a member using the classic protocol

    def is_reconciled_to(self, epoch: int) -> bool:
        return self.state is MemberState.STABLE and self.member_epoch == epoch

    def with_epoch(self, epoch: int, **changes) -> "ConsumerMember":
        """A copy at ``epoch``, remembering the epoch it leaves (Kafka's updateMemberEpoch)."""
        return replace(self, previous_member_epoch=self.member_epoch, member_epoch=epoch, **changes)

    def owned(self) -> Assignment:
        """Partitions the member may still be consuming: assigned and pending revocation."""
        owned = _copy(self.assigned)
        for topic_id, partitions in self.pending_revocation.items():
            owned.setdefault(topic_id, set()).update(partitions)
        return owned


def _owns_any(reported: list[tuple[uuid.UUID, list[int]]] | None, partitions: Assignment) -> bool:
    """Whether the partitions a heartbeat reports as owned include any of ``partitions``; a
    heartbeat that does not report them (None) is taken as still owning them."""
    if reported is None:
        return True
    return any(partition in partitions.get(topic_id, ()) for topic_id, owned in reported for partition in owned)


def _is_subset(reported: list[tuple[uuid.UUID, list[int]]] | None, assignment: Assignment) -> bool:
    if reported is None:
        return False
    return all(partition in assignment.get(topic_id, ()) for topic_id, owned in reported for partition in owned)


def reconcile(member: ConsumerMember, target_epoch: int, target: Assignment, partition_epoch,
              reported_owned: list[tuple[uuid.UUID, list[int]]] | None) -> ConsumerMember:
    """The member's next state on its way to ``target`` (Kafka's CurrentAssignmentBuilder).

    ``partition_epoch(topic_id, partition)`` is the epoch of the member owning a partition, -1
    when free; ``reported_owned`` is what the heartbeat says the member owns (None: not said)."""
    if member.state is MemberState.STABLE:
        if member.member_epoch == target_epoch:
            return member
        return _next_assignment(member, member.member_epoch, target_epoch, target, partition_epoch, reported_owned)
    if member.state is MemberState.UNREVOKED_PARTITIONS:
        if _owns_any(reported_owned, member.pending_revocation):
            return member  # still waiting for the revocation to be acknowledged
        return _next_assignment(member, member.member_epoch + 1, target_epoch, target, partition_epoch, reported_owned)
    if member.state is MemberState.UNRELEASED_PARTITIONS:
        return _next_assignment(member, member.member_epoch, target_epoch, target, partition_epoch, reported_owned)
    return _next_assignment(member, target_epoch, target_epoch, target, partition_epoch, reported_owned)


def _next_assignment(member: ConsumerMember, member_epoch: int, target_epoch: int, target: Assignment,
                     partition_epoch, reported_owned) -> ConsumerMember:
    kept: Assignment = {}
    revoking: Assignment = {}
    pending: Assignment = {}
    unreleased = False
    for topic_id in set(target) | set(member.assigned):
        wanted = target.get(topic_id, set())
        current = member.assigned.get(topic_id, set())
        keep = current & wanted
        revoke = current - keep
        add = set()
        for partition in wanted - keep:
            if partition_epoch(topic_id, partition) == -1:
                add.add(partition)
            else:
                unreleased = True
        if keep:
            kept[topic_id] = keep
        if revoke:
            revoking[topic_id] = revoke
        if add:
            pending[topic_id] = add
    if revoking and _owns_any(reported_owned, revoking):
        # Give up first: the member stays in its epoch until it confirms the revocation.
        return member.with_epoch(member_epoch, state=MemberState.UNREVOKED_PARTITIONS, assigned=kept,
                                 pending_revocation=revoking)
    for topic_id, partitions in pending.items():
        kept.setdefault(topic_id, set()).update(partitions)
    state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
    return member.with_epoch(target_epoch, state=state, assigned=kept, pending_revocation={})


class ConsumerGroup:
    """One consumer group: its members, epochs, target assignment and partition ownership."""

    def __init__(self, group_id: str):
        self.group_id = group_id
        self.group_epoch = 0
        self.assignment_epoch = 0
        self.members: dict[str, ConsumerMember] = {}
        self.static_members: dict[str, str] = {}  # instance id -> member id
        self.target: dict[str, Assignment] = {}  # member id -> target assignment
        # (topic id, partition) -> epoch of the member that owns it (assigned or revoking)
        self.partition_epochs: dict[tuple[uuid.UUID, int], int] = {}
        # subscribed topic name -> (topic id, partition count), as of the last group epoch bump
        self.subscription_metadata: dict[str, tuple[uuid.UUID, int]] = {}
        self.resolved_regexes: dict[str, frozenset[str]] = {}
        self.regexes_resolved_against: frozenset[str] | None = None  # the topic names they were matched to

    def __repr__(self) -> str:
        return f"ConsumerGroup({self.group_id!r}, {self.state.value}, epoch={self.group_epoch}, members={len(self.members)})"

    @property
    def protocol_type(self) -> str:
        return CONSUMER_PROTOCOL_TYPE

    @property
    def state(self) -> ConsumerGroupState:
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        for member in self.members.values():
            if not member.is_reconciled_to(self.assignment_epoch):
                return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def is_empty(self) -> bool:
        return not self.members

    def partition_epoch(self, topic_id: uuid.UUID, partition: int) -> int:
        return self.partition_epochs.get((topic_id, partition), -1)

    def static_member(self, instance_id: str | None) -> ConsumerMember | None:
        member_id = self.static_members.get(instance_id) if instance_id is not None else None
        return self.members.get(member_id) if member_id is not None else None

    def _release(self, member: ConsumerMember) -> None:
        for topic_id, partitions in member.owned().items():
            for partition in partitions:
                if self.partition_epochs.get((topic_id, partition)) is not None:
                    del self.partition_epochs[(topic_id, partition)]

    def put_member(self, member: ConsumerMember, replaying: bool = False) -> None:
        """Add or replace a member (by member id), moving its partitions' ownership. Taking a
        partition another member owns is a bug, except in a replay of records that a crash left
        inconsistent (the last record wins there)."""
        previous = self.members.get(member.member_id)
        if previous is not None:
            self._release(previous)
        for topic_id, partitions in member.owned().items():
            for partition in partitions:
                key = (topic_id, partition)
                if key in self.partition_epochs and not replaying:
                    raise AssertionError(f"{self.group_id}: partition {key} is still owned at epoch "
                                         f"{self.partition_epochs[key]}")
                self.partition_epochs[key] = member.member_epoch
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id

    def remove_member(self, member_id: str) -> ConsumerMember | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        self._release(member)
        self.target.pop(member_id, None)
        if member.instance_id is not None and self.static_members.get(member.instance_id) == member_id:
            del self.static_members[member.instance_id]
        return member

    def subscribed_topic_names(self, members=None) -> set[str]:
        names: set[str] = set()
        for member in (self.members.values() if members is None else members):
            names.update(member.subscribed_topic_names)
            if member.subscribed_topic_regex:
                names.update(self.resolved_regexes.get(member.subscribed_topic_regex, ()))
        return names

    def member_topic_names(self, member: ConsumerMember) -> set[str]:
        names = set(member.subscribed_topic_names)
        if member.subscribed_topic_regex:
            names.update(self.resolved_regexes.get(member.subscribed_topic_regex, ()))
        return names

    def preferred_assignor(self, default: str) -> str:
        """The server assignor most members name (Kafka's computePreferredServerAssignor), or
        ``default`` (the first of ``group.consumer.assignors``)."""
        counts: dict[str, int] = {}
        for member in self.members.values():
            if member.server_assignor is not None:
                counts[member.server_assignor] = counts.get(member.server_assignor, 0) + 1
        if not counts:
            return default
        return max(counts, key=lambda name: counts[name])


def resolve_regex(pattern: str, topic_names) -> frozenset[str]:
    compiled = re.compile(pattern)
    return frozenset(name for name in topic_names if compiled.fullmatch(name))


def regex_error(pattern: str) -> str | None:
    """Why ``pattern`` is not a subscription regex this broker takes, or None."""
    if _UNSUPPORTED_REGEX_SYNTAX.search(pattern):
        return f"SubscribedTopicRegex `{pattern}` is not a valid regular expression: RE2 has no backreferences or lookaround."
    try:
        parsed = _regex_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError) as error:
        return f"SubscribedTopicRegex `{pattern}` is not a valid regular expression: {error}."
    unbounded = [0]
    if _backtracks_badly(parsed, unbounded, inside_repeat=False) or unbounded[0] > MAX_UNBOUNDED_REPEATS:
        return (f"SubscribedTopicRegex `{pattern}` is refused: it could backtrack catastrophically (nested or more "
                f"than {MAX_UNBOUNDED_REPEATS} unbounded repeats).")
    return None


def _backtracks_badly(parsed, unbounded: list[int], inside_repeat: bool) -> bool:
    """Whether the parsed pattern repeats something that itself repeats or alternates (the
    shapes that make a backtracking engine exponential); counts unbounded repeats."""
    for op, argument in parsed:
        if op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT, _constants.POSSESSIVE_REPEAT):
            low, high, body = argument
            repeats = high is _constants.MAXREPEAT or high > 1
            if high is _constants.MAXREPEAT:
                unbounded[0] += 1
            if repeats and inside_repeat:
                return True
            if _backtracks_badly(body, unbounded, inside_repeat or repeats):
                return True
        elif op is _constants.BRANCH:
            if inside_repeat:
                return True
            if any(_backtracks_badly(branch, unbounded, inside_repeat) for branch in argument[1]):
                return True
        elif op is _constants.SUBPATTERN:
            if _backtracks_badly(argument[-1], unbounded, inside_repeat):
                return True
        elif op in (_constants.ATOMIC_GROUP,):
            if _backtracks_badly(argument, unbounded, inside_repeat):
                return True
    return False
