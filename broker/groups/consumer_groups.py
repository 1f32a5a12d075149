"""The ConsumerGroupHeartbeat state machine of KIP-848 consumer groups (the groups themselves
and their reconciliation are in :mod:`odradek.broker.groups.consumer`), classic members inside
consumer groups, and the online migration between the two protocols.

Kafka's semantics (``GroupMetadataManager.consumerGroupHeartbeat`` and its classic-member and
migration paths), in brief:

* **Membership.** Epoch 0 joins (the member id comes from the broker in v0, from the client in
  v1, KIP-1082); -1 leaves; a static member (``group.instance.id``) leaving with -2 keeps its
  partitions until it returns under a new member id (getting them back with no rebalance) or its
  session expires. Members heartbeat every ``group.consumer.heartbeat.interval.ms`` and are
  fenced (removed) after ``group.consumer.session.timeout.ms`` without one, or when they do not
  revoke partitions within their rebalance timeout.
* **Errors** as Kafka answers them: FENCED_MEMBER_EPOCH for a stale or future epoch (the member
  drops its partitions and rejoins), UNKNOWN_MEMBER_ID, UNRELEASED_INSTANCE_ID (an instance id
  still in use), FENCED_INSTANCE_ID, GROUP_MAX_SIZE_REACHED, UNSUPPORTED_ASSIGNOR,
  INVALID_REGULAR_EXPRESSION, INVALID_REQUEST for missing or contradictory fields,
  GROUP_ID_NOT_FOUND for a group that does not exist or that a classic group holds.
* **Classic members** (JoinGroup/SyncGroup/Heartbeat) may be members of a consumer group; a
  classic group of the consumer protocol type is upgraded when a consumer-protocol member joins,
  and a consumer group left with classic members only is downgraded (Kafka's online migration,
  as ``group.consumer.migration.policy`` allows; see "classic members" below).

Where odradek departs from Kafka: a known member id rejoining with epoch 0 (the Java client
keeps its id after being fenced) is taken as that member starting afresh, with no partitions.
State changes are applied, then written to ``__consumer_offsets``; a failed write is answered
with the coordinator error but not rolled back.

Ownership: the :class:`ConsumerGroups` of the broker's
:class:`~odradek.broker.groups.coordinator.GroupCoordinator` owns every consumer group and
their timers; it runs on the broker's event loop.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, replace

import structlog

from odradek.protocol import error_codes
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.records.consumer_protocol_assignment import (
    ConsumerProtocolAssignment,
    TopicPartition as AssignedTopicPartition,
)
from odradek.protocol.messages.records.consumer_protocol_subscription import ConsumerProtocolSubscription

from ..consumer_protocol import decode_versioned, encode_versioned
from .assignors import ASSIGNORS, Assignment, AssignmentSpec, MemberSpec
from .classic import CONSUMER_PROTOCOL_TYPE, GroupState, JoinResult, SyncResult
from .consumer import (
    JOIN_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
    ClassicMemberInfo,
    ConsumerGroup,
    ConsumerMember,
    MemberState,
    _copy,
    _is_subset,
    reconcile,
    regex_error,
    resolve_regex,
)

log = structlog.get_logger("odradek.groups")

CLIENT_GENERATED_MEMBER_ID_VERSION = 1  # KIP-1082: from v1 the client names itself
FIRST_MEMBER_EPOCH_OFFSET_COMMIT_VERSION = 9  # members of consumer groups commit with their epoch


def _decode_subscription(metadata: bytes) -> ConsumerProtocolSubscription:
    """A classic member's subscription (its JoinGroup protocol metadata). Raises a
    ProtocolError if unreadable."""
    return decode_versioned(ConsumerProtocolSubscription, metadata)


def generate_member_id() -> str:
    """Kafka's ``Uuid.randomUuid().toString()``: 16 random bytes, URL-safe base64, no padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")


@dataclass(slots=True)
class HeartbeatRequest:
    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: list[str] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    owned: list[tuple[uuid.UUID, list[int]]] | None = None
    client_id: str = ""
    client_host: str = ""
    api_version: int = 1


@dataclass(slots=True)
class HeartbeatResult:
    error_code: int = error_codes.NONE
    error_message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: Assignment | None = None  # None: unchanged, not sent


class HeartbeatError(Exception):
    def __init__(self, error_code: int, message: str | None = None):
        super().__init__(message or f"error code {error_code}")
        self.error_code = error_code
        self.message = message


def _invalid(message: str) -> HeartbeatError:
    return HeartbeatError(error_codes.INVALID_REQUEST, message)


class ConsumerGroups:
    """Every consumer group of one coordinator, and the ConsumerGroupHeartbeat state machine.

    ``coordinator`` (the :class:`~odradek.broker.groups.coordinator.GroupCoordinator`) lends its
    configuration, timer, record writer and classic groups (a group id is either kind)."""

    def __init__(self, coordinator):
        self.coordinator = coordinator
        self.groups: dict[str, ConsumerGroup] = {}
        # Topic name -> topic (``topic_id``, ``partition_count``): the broker's topic table, for
        # the requests that do not bring it along (classic members' JoinGroup, upgrades).
        self.topics: dict = {}

    @property
    def config(self):
        return self.coordinator.config

    @property
    def timer(self):
        return self.coordinator.timer

    def group(self, group_id: str) -> ConsumerGroup | None:
        return self.groups.get(group_id)

    # --- ConsumerGroupHeartbeat ---

    def heartbeat(self, request: HeartbeatRequest, topics) -> HeartbeatResult:
        """Handle one heartbeat; ``topics`` maps every topic name to an object with ``topic_id``
        and ``partition_count`` (the broker's topic table)."""
        if (error := self.coordinator.availability(request.group_id)) != error_codes.NONE:
            return HeartbeatResult(error)
        try:
            self._validate(request)
            if request.member_epoch in (LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH):
                return self._leave(request)
            return self._heartbeat(request, topics)
        except HeartbeatError as error:
            return HeartbeatResult(error.error_code, error.message)

    def _validate(self, request: HeartbeatRequest) -> None:
        if request.group_id == "":
            raise _invalid("GroupId can't be empty.")
        if request.instance_id == "":
            raise _invalid("InstanceId can't be empty.")
        if request.rack_id == "":
            raise _invalid("RackId can't be empty.")
        epoch = request.member_epoch
        if request.api_version >= CLIENT_GENERATED_MEMBER_ID_VERSION and request.member_id == "":
            raise _invalid("MemberId can't be empty.")
        if epoch > 0 or epoch == LEAVE_GROUP_MEMBER_EPOCH:
            if request.member_id == "":
                raise _invalid("MemberId can't be empty.")
        elif epoch == JOIN_GROUP_MEMBER_EPOCH:
            if request.rebalance_timeout_ms == -1:
                raise _invalid("RebalanceTimeoutMs must be provided in first request.")
            if request.owned:
                raise _invalid("TopicPartitions must be empty when (re-)joining.")
            if request.subscribed_topic_names is None and request.subscribed_topic_regex is None:
                raise _invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
        elif epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            if request.member_id == "":
                raise _invalid("MemberId can't be empty.")
            if request.instance_id is None:
                raise _invalid("InstanceId can't be null.")
        else:
            raise _invalid("MemberEpoch is invalid.")
        enabled = self.config.consumer_assignors
        if request.server_assignor is not None and request.server_assignor not in enabled:
            raise HeartbeatError(error_codes.UNSUPPORTED_ASSIGNOR,
                                 f"ServerAssignor {request.server_assignor} is not supported. "
                                 f"Supported assignors: {', '.join(enabled)}.")
        if request.subscribed_topic_regex:
            problem = regex_error(request.subscribed_topic_regex)
            if problem is not None:
                raise HeartbeatError(error_codes.INVALID_REGULAR_EXPRESSION, problem)

    def _get_or_create_group(self, group_id: str, create: bool) -> ConsumerGroup:
        group = self.groups.get(group_id)
        if group is not None:
            return group
        classic = self.coordinator.groups.get(group_id)
        if classic is not None:
            if create and not self.coordinator.forget_empty_classic_group(group_id) and self._may_migrate("upgrade"):
                upgraded = self.upgrade(classic)
                if upgraded is not None:
                    return upgraded
            if not create or group_id in self.coordinator.groups:
                raise HeartbeatError(error_codes.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a consumer group.")
        elif not create:
            raise HeartbeatError(error_codes.GROUP_ID_NOT_FOUND, f"Consumer group {group_id} not found.")
        group = ConsumerGroup(group_id)
        self.groups[group_id] = group
        self.coordinator._arm_cleanup()
        return group

    @staticmethod
    def _check_epoch(member: ConsumerMember, received: int, owned) -> None:
        if received > member.member_epoch:
            raise HeartbeatError(error_codes.FENCED_MEMBER_EPOCH,
                                 f"The consumer group member has a greater member epoch ({received}) than the one "
                                 f"known by the group coordinator ({member.member_epoch}). The member must abandon "
                                 "all its partitions and rejoin.")
        if received < member.member_epoch:
            # The answer that moved it to the current epoch may have been lost: the previous
            # epoch is fine while it owns nothing beyond its current assignment.
            if received != member.previous_member_epoch or not _is_subset(owned, member.assigned):
                raise HeartbeatError(error_codes.FENCED_MEMBER_EPOCH,
                                     f"The consumer group member has a smaller member epoch ({received}) than the one "
                                     f"known by the group coordinator ({member.member_epoch}). The member must "
                                     "abandon all its partitions and rejoin.")

    def _member_for(self, group: ConsumerGroup, request: HeartbeatRequest, member_id: str,
                    records: list) -> tuple[ConsumerMember, bool, bool]:
        """(the member as it stands, whether it is new to the group, whether its metadata
        record must be written under its member id)."""
        joining = request.member_epoch == JOIN_GROUP_MEMBER_EPOCH
        if request.instance_id is None:
            member = group.members.get(member_id)
            if member is None:
                if not joining:
                    raise HeartbeatError(error_codes.UNKNOWN_MEMBER_ID,
                                         f"Member {member_id} is not a member of group {group.group_id}.")
                return ConsumerMember(member_id), True, True
            if joining:
                return self._restart(group, member), False, False
            self._check_epoch(member, request.member_epoch, request.owned)
            return member, False, False
        existing = group.static_member(request.instance_id)
        if joining:
            if existing is None:
                member = group.members.get(member_id)
                if member is None:
                    return ConsumerMember(member_id), True, True
                return self._restart(group, member), False, False
            if existing.member_id == member_id:
                return self._restart(group, existing), False, False
            if existing.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH:
                raise HeartbeatError(error_codes.UNRELEASED_INSTANCE_ID,
                                     f"Static member {member_id} with instance id {request.instance_id} cannot join "
                                     f"the group because the instance id is owned by {existing.member_id} member.")
            # The static member is back under a new member id: it takes over the old one's
            # place, target and partitions, so nothing rebalances.
            replacement = replace(existing, member_id=member_id, member_epoch=0, previous_member_epoch=0,
                                  pending_revocation={})
            target = group.target.get(existing.member_id, {})
            self._remove(group, existing, records, bump=False)
            group.target[member_id] = target
            records.append(self._record_target(group.group_id, member_id, target))
            log.info("static member rejoined", group=group.group_id, instance=request.instance_id,
                     member=member_id, replaced=existing.member_id)
            return replacement, False, True
        if existing is None:
            raise HeartbeatError(error_codes.UNKNOWN_MEMBER_ID, f"Instance id {request.instance_id} is unknown.")
        if existing.member_id != member_id:
            raise HeartbeatError(error_codes.FENCED_INSTANCE_ID,
                                 f"Static member {member_id} with instance id {request.instance_id} was fenced by "
                                 f"member {existing.member_id}.")
        self._check_epoch(existing, request.member_epoch, request.owned)
        return existing, False, False

    def _restart(self, group: ConsumerGroup, member: ConsumerMember) -> ConsumerMember:
        """A known member joining again with epoch 0 has dropped everything it owned."""
        fresh = replace(member, member_epoch=0, previous_member_epoch=0, state=MemberState.STABLE,
                        assigned={}, pending_revocation={})
        group.put_member(fresh)
        self.timer.cancel(self._revocation_key(group.group_id, member.member_id))
        return fresh

    def _heartbeat(self, request: HeartbeatRequest, topics) -> HeartbeatResult:
        joining = request.member_epoch == JOIN_GROUP_MEMBER_EPOCH
        group = self._get_or_create_group(request.group_id, joining)
        member_id = request.member_id or generate_member_id()
        if (len(group.members) >= self.config.consumer_max_size and member_id not in group.members
                and group.static_member(request.instance_id) is None):
            raise HeartbeatError(error_codes.GROUP_MAX_SIZE_REACHED,
                                 f"The consumer group has reached its maximum capacity of "
                                 f"{self.config.consumer_max_size} members.")
        records: list = []
        member, is_new, write_metadata = self._member_for(group, request, member_id, records)

        updated = replace(
            member,
            instance_id=request.instance_id if request.instance_id is not None else member.instance_id,
            rack_id=request.rack_id if request.rack_id is not None else member.rack_id,
            rebalance_timeout_ms=(request.rebalance_timeout_ms if request.rebalance_timeout_ms != -1
                                  else member.rebalance_timeout_ms),
            server_assignor=request.server_assignor if request.server_assignor is not None else member.server_assignor,
            subscribed_topic_names=(tuple(request.subscribed_topic_names)
                                    if request.subscribed_topic_names is not None else member.subscribed_topic_names),
            subscribed_topic_regex=((request.subscribed_topic_regex or None)
                                    if request.subscribed_topic_regex is not None else member.subscribed_topic_regex),
            client_id=request.client_id, client_host=request.client_host)
        current = self._update_and_reconcile(group, member, updated, is_new, write_metadata, request.owned,
                                             topics, records)
        self._schedule_session_timeout(group.group_id, member_id)

        error = self.coordinator.runtime.append(group.group_id, records)
        if error != error_codes.NONE:
            return HeartbeatResult(error)
        result = HeartbeatResult(member_id=member_id, member_epoch=current.member_epoch,
                                 heartbeat_interval_ms=self.coordinator.consumer_heartbeat_interval_ms(group.group_id))
        full_request = joining or (request.rebalance_timeout_ms != -1 and request.owned is not None
                                   and (request.subscribed_topic_names is not None
                                        or request.subscribed_topic_regex is not None))
        if full_request or current.assigned != member.assigned:
            result.assignment = _copy(current.assigned)
        return result

    def _update_and_reconcile(self, group: ConsumerGroup, member: ConsumerMember, updated: ConsumerMember,
                              is_new: bool, write_metadata: bool, owned, topics, records: list) -> ConsumerMember:
        """Steps 1-3 of every heartbeat (and of a classic member's JoinGroup): store the member's
        changes, bump the group epoch if the assignment depends on them, compute the target if
        the epoch moved, and reconcile the member towards its target."""
        subscription_changed = is_new or (
            (updated.subscribed_topic_names, updated.subscribed_topic_regex, updated.server_assignor)
            != (member.subscribed_topic_names, member.subscribed_topic_regex, member.server_assignor))
        if write_metadata or _metadata_differs(member, updated):
            records.append(self._record_member_metadata(group.group_id, updated))
        group.put_member(updated)

        bump = subscription_changed
        if self._refresh_subscription_metadata(group, topics, records):
            bump = True
        if bump:
            group.group_epoch += 1
            records.append(self._record_group_epoch(group))
            log.info("consumer group epoch bumped", group=group.group_id, epoch=group.group_epoch)
        if group.group_epoch > group.assignment_epoch:
            self._compute_target_assignment(group, records)

        member_id = updated.member_id
        current = group.members[member_id]
        if not current.is_reconciled_to(group.assignment_epoch):
            reconciled = reconcile(current, group.assignment_epoch, group.target.get(member_id, {}),
                                   group.partition_epoch, owned)
            if reconciled != current:
                group.put_member(reconciled)
                records.append(self._record_current_assignment(group.group_id, reconciled))
                # Classic members have their join and sync timeouts instead.
                if reconciled.state is MemberState.UNREVOKED_PARTITIONS and reconciled.classic is None:
                    self._schedule_revocation_timeout(group.group_id, reconciled)
                else:
                    self.timer.cancel(self._revocation_key(group.group_id, member_id))
            current = reconciled
        return current

    def _refresh_subscription_metadata(self, group: ConsumerGroup, topics, records: list) -> bool:
        """Resolve the members' regexes and look up every subscribed topic; True (and a record)
        when that changed what the assignment depends on."""
        regexes = {member.subscribed_topic_regex for member in group.members.values() if member.subscribed_topic_regex}
        if regexes:
            names = frozenset(topics)
            if names != group.regexes_resolved_against or regexes != set(group.resolved_regexes):
                previous = group.resolved_regexes if names == group.regexes_resolved_against else {}
                group.resolved_regexes = {pattern: previous.get(pattern) or resolve_regex(pattern, names)
                                          for pattern in regexes}
                group.regexes_resolved_against = names
        else:
            group.resolved_regexes, group.regexes_resolved_against = {}, None
        metadata = {}
        for name in group.subscribed_topic_names():
            topic = topics.get(name)
            if topic is not None:
                metadata[name] = (topic.topic_id, topic.partition_count)
        if metadata == group.subscription_metadata:
            return False
        group.subscription_metadata = metadata
        records.append(self._record_partition_metadata(group))
        return True

    def _compute_target_assignment(self, group: ConsumerGroup, records: list) -> None:
        metadata = group.subscription_metadata
        spec = AssignmentSpec(
            members={member_id: MemberSpec(frozenset(metadata[name][0] for name in group.member_topic_names(member)
                                                     if name in metadata),
                                           member.instance_id, member.rack_id)
                     for member_id, member in group.members.items()},
            partition_counts={topic_id: count for topic_id, count in metadata.values()},
            current=group.target)
        assignor = group.preferred_assignor(self.config.consumer_assignors[0])
        target = ASSIGNORS[assignor].assign(spec)
        for member_id, assignment in target.items():
            if group.target.get(member_id) != assignment:
                records.append(self._record_target(group.group_id, member_id, assignment))
        group.target = target
        group.assignment_epoch = group.group_epoch
        records.append(self._record_assignment_epoch(group))
        log.info("consumer group target assignment computed", group=group.group_id, epoch=group.group_epoch,
                 assignor=assignor, members=len(target))

    # --- leaving and fencing ---

    def _leave(self, request: HeartbeatRequest) -> HeartbeatResult:
        group = self.groups.get(request.group_id)
        if group is None:
            raise HeartbeatError(error_codes.GROUP_ID_NOT_FOUND, f"Consumer group {request.group_id} not found.")
        records: list = []
        if request.instance_id is None:
            member = group.members.get(request.member_id)
            if member is None:
                raise HeartbeatError(error_codes.UNKNOWN_MEMBER_ID,
                                     f"Member {request.member_id} is not a member of group {group.group_id}.")
            log.info("member left the consumer group", group=group.group_id, member=member.member_id)
            self._fence_member(group, member, records)
        else:
            member = group.static_member(request.instance_id)
            if member is None:
                raise HeartbeatError(error_codes.UNKNOWN_MEMBER_ID, f"Instance id {request.instance_id} is unknown.")
            if member.member_id != request.member_id:
                raise HeartbeatError(error_codes.FENCED_INSTANCE_ID,
                                     f"Static member {request.member_id} with instance id {request.instance_id} was "
                                     f"fenced by member {member.member_id}.")
            if request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
                # Gone for now: its partitions wait for it (or for its session to expire).
                away = replace(member, member_epoch=LEAVE_GROUP_STATIC_MEMBER_EPOCH, pending_revocation={})
                group.put_member(away)
                self.timer.cancel(self._revocation_key(group.group_id, member.member_id))
                records.append(self._record_current_assignment(group.group_id, away))
                log.info("static member temporarily left the consumer group", group=group.group_id,
                         member=member.member_id, instance=request.instance_id)
            else:
                log.info("static member left the consumer group", group=group.group_id, member=member.member_id)
                self._fence_member(group, member, records)
        error = self.coordinator.runtime.append(group.group_id, records)
        if error != error_codes.NONE:
            return HeartbeatResult(error)
        return HeartbeatResult(member_id=request.member_id, member_epoch=request.member_epoch)

    def _remove(self, group: ConsumerGroup, member: ConsumerMember, records: list, bump: bool = True) -> None:
        group.remove_member(member.member_id)
        for key in (self._session_key, self._revocation_key, self._join_key, self._sync_key):
            self.timer.cancel(key(group.group_id, member.member_id))
        records.extend(self._member_tombstones(group.group_id, member.member_id))
        if bump:
            # The topics it alone subscribed to leave the metadata at the next heartbeat's
            # refresh; the epoch bump already makes the next heartbeat recompute the target.
            group.group_epoch += 1
            records.append(self._record_group_epoch(group))

    def fence(self, group_id: str, member_id: str, reason: str) -> None:
        group = self.groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if member is None:
            return
        log.info("consumer group member fenced", group=group_id, member=member_id, reason=reason)
        records: list = []
        self._fence_member(group, member, records)
        self.coordinator.runtime.append(group_id, records)

    def _fence_member(self, group: ConsumerGroup, member: ConsumerMember, records: list) -> None:
        """Remove a member that left or was fenced; when only classic members remain, the group
        goes back to being a classic group (Kafka's online downgrade), which then rebalances."""
        rest = [m for m in group.members.values() if m.member_id != member.member_id]
        if (rest and all(m.classic is not None for m in rest) and len(rest) <= self.config.classic_max_size
                and self._may_migrate("downgrade")):
            self._downgrade(group, rest, records)
        else:
            self._remove(group, member, records)

    def _downgrade(self, group: ConsumerGroup, rest: list[ConsumerMember], records: list) -> None:
        for member in group.members.values():
            for key in (self._session_key, self._revocation_key, self._join_key, self._sync_key):
                self.timer.cancel(key(group.group_id, member.member_id))
            records.extend(self._member_tombstones(group.group_id, member.member_id))
        records.extend(self._group_tombstones(group.group_id))
        del self.groups[group.group_id]
        members = []
        for member in rest:
            protocols = list(member.classic.protocols)
            target = group.target.get(member.member_id, member.assigned)
            members.append((member, protocols, {name: self._encode_assignment(target, metadata)
                                                for name, metadata in protocols}))
        log.info("consumer group downgraded to a classic group", group=group.group_id, epoch=group.group_epoch,
                 members=len(rest))
        self.coordinator.adopt_downgraded_group(group.group_id, group.group_epoch, members, records)

    # --- timers ---

    @staticmethod
    def _session_key(group_id: str, member_id: str):
        return ("consumer-session", group_id, member_id)

    @staticmethod
    def _revocation_key(group_id: str, member_id: str):
        return ("consumer-revocation", group_id, member_id)

    def _schedule_session_timeout(self, group_id: str, member_id: str) -> None:
        group = self.groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        timeout = (member.classic.session_timeout_ms if member is not None and member.classic is not None
                   else self.coordinator.consumer_session_timeout_ms(group_id))
        self.timer.schedule(self._session_key(group_id, member_id), timeout,
                            lambda: self.fence(group_id, member_id, "the member session expired"))

    @staticmethod
    def _join_key(group_id: str, member_id: str):
        return ("consumer-classic-join", group_id, member_id)

    @staticmethod
    def _sync_key(group_id: str, member_id: str):
        return ("consumer-classic-sync", group_id, member_id)

    def _schedule_revocation_timeout(self, group_id: str, member: ConsumerMember) -> None:
        member_id, epoch = member.member_id, member.member_epoch

        def expire() -> None:
            group = self.groups.get(group_id)
            current = group.members.get(member_id) if group is not None else None
            if current is not None and current.member_epoch == epoch:
                self.fence(group_id, member_id, f"it did not revoke partitions within {member.rebalance_timeout_ms} ms")

        self.timer.schedule(self._revocation_key(group_id, member_id), max(member.rebalance_timeout_ms, 0), expire)

    # --- ConsumerGroupDescribe, offsets, administration ---

    def validate_offset_commit(self, group: ConsumerGroup, member_id: str, member_epoch: int, api_version: int) -> int:
        """Kafka's ConsumerGroup.validateOffsetCommit: the committer's member epoch must be its
        current one (STALE_MEMBER_EPOCH); -1 from outside the group only while it is empty."""
        if member_epoch < 0 and group.is_empty():
            return error_codes.NONE
        member = group.members.get(member_id)
        if member is None:
            return error_codes.UNKNOWN_MEMBER_ID
        if member.classic is not None:  # its generation is its member epoch
            return error_codes.NONE if member_epoch == member.member_epoch else error_codes.ILLEGAL_GENERATION
        if api_version < FIRST_MEMBER_EPOCH_OFFSET_COMMIT_VERSION:
            return error_codes.UNSUPPORTED_VERSION
        if member_epoch != member.member_epoch:
            return error_codes.STALE_MEMBER_EPOCH
        return error_codes.NONE

    def validate_transactional_offset_commit(self, group: ConsumerGroup, member_id: str, member_epoch: int) -> int:
        """Kafka's ConsumerGroup.validateOffsetCommit for a TxnOffsetCommit: as a commit, but any
        version is accepted, and a stale member epoch is ILLEGAL_GENERATION (Kafka maps
        STALE_MEMBER_EPOCH so below TxnOffsetCommit v6)."""
        if member_epoch < 0 and group.is_empty():
            return error_codes.NONE
        member = group.members.get(member_id)
        if member is None:
            return error_codes.UNKNOWN_MEMBER_ID
        return error_codes.NONE if member_epoch == member.member_epoch else error_codes.ILLEGAL_GENERATION

    def validate_offset_fetch(self, group_id: str, member_id: str | None, member_epoch: int) -> int:
        """OffsetFetch v9+ from a member checks its epoch (admin fetches carry none)."""
        if (error := self.coordinator.availability(group_id)) != error_codes.NONE:
            return error
        group = self.groups.get(group_id)
        if group is None or (member_id is None and member_epoch < 0):
            return error_codes.NONE
        member = group.members.get(member_id)
        if member is None:
            return error_codes.UNKNOWN_MEMBER_ID
        if member_epoch != member.member_epoch:
            return error_codes.ILLEGAL_GENERATION if member.classic is not None else error_codes.STALE_MEMBER_EPOCH
        return error_codes.NONE

    # --- classic members in a consumer group, and the online upgrade (KIP-848 migration) ---
    #
    # A consumer group also takes members speaking the classic protocol, as Kafka does so that
    # an application can move from one protocol to the other member by member. For such a
    # member JoinGroup is a heartbeat with its (decoded) subscription: it is answered at once,
    # the generation being its member epoch, never as a leader; SyncGroup hands it its current
    # assignment as ConsumerProtocolAssignment bytes; Heartbeat answers REBALANCE_IN_PROGRESS
    # when it has to rejoin to move on (a new group epoch, partitions to revoke, or partitions
    # freed for it). A classic group of the "consumer" protocol type becomes a consumer group
    # when a consumer-protocol member joins it (members, generation and assignments carried
    # over); a consumer group whose last consumer-protocol member leaves or is fenced, with
    # classic members left, becomes a classic group again (``_downgrade``) and rebalances.

    def _may_migrate(self, direction: str) -> bool:
        """Whether ``group.consumer.migration.policy`` allows an online upgrade or downgrade."""
        return self.config.migration_policy in (direction, "bidirectional")

    def supports_classic_protocols(self, group: ConsumerGroup, protocol_type: str, names: list[str]) -> bool:
        if group.is_empty():
            return bool(protocol_type) and bool(names)
        classic = [dict(m.classic.protocols) for m in group.members.values() if m.classic is not None]
        return protocol_type == CONSUMER_PROTOCOL_TYPE and any(all(name in p for p in classic) for name in names)

    def _decode_owned(self, topic_partitions) -> list[tuple[uuid.UUID, list[int]]]:
        owned = []
        for item in topic_partitions or ():
            topic = self.topics.get(item.topic)
            if topic is not None:
                owned.append((topic.topic_id, list(item.partitions)))
        return owned

    def classic_join(self, group: ConsumerGroup, request, respond) -> None:
        """A JoinGroup (``coordinator.JoinRequest``) to a non-empty consumer group."""
        member_id = request.member_id
        unknown = member_id == ""
        if unknown:
            member_id = generate_member_id()
        if len(group.members) >= self.config.consumer_max_size and member_id not in group.members:
            respond(JoinResult(error_codes.GROUP_MAX_SIZE_REACHED, member_id=request.member_id))
            return
        names = [name for name, _ in request.protocols]
        if not self.supports_classic_protocols(group, request.protocol_type, names):
            respond(JoinResult(error_codes.INCONSISTENT_GROUP_PROTOCOL, member_id=request.member_id))
            return
        if unknown and request.group_instance_id is None and request.api_version >= 4:
            respond(JoinResult(error_codes.MEMBER_ID_REQUIRED, member_id=member_id))  # KIP-394, as for classic groups
            return
        try:
            subscription = _decode_subscription(request.protocols[0][1])
        except ProtocolError:
            respond(JoinResult(error_codes.INCONSISTENT_GROUP_PROTOCOL, member_id=request.member_id))
            return
        records: list = []
        instance_id = request.group_instance_id
        write_metadata = False
        existing = group.static_member(instance_id)
        if existing is not None and existing.member_id != member_id:
            if not unknown:
                respond(JoinResult(error_codes.FENCED_INSTANCE_ID, member_id=request.member_id))
                return
            # A restarted static member takes its old place, target and partitions.
            member = replace(existing, member_id=member_id, member_epoch=0, previous_member_epoch=0,
                             pending_revocation={})
            target = group.target.get(existing.member_id, {})
            self._remove(group, existing, records, bump=False)
            group.target[member_id] = target
            records.append(self._record_target(group.group_id, member_id, target))
            is_new, write_metadata = False, True
        else:
            member = group.members.get(member_id)
            is_new = member is None
            if is_new:
                member = ConsumerMember(member_id)
        updated = replace(
            member, instance_id=instance_id if instance_id is not None else member.instance_id,
            rack_id=subscription.rack_id if subscription.rack_id is not None else member.rack_id,
            rebalance_timeout_ms=request.rebalance_timeout_ms, subscribed_topic_names=tuple(subscription.topics),
            client_id=request.client_id, client_host=request.client_host,
            classic=ClassicMemberInfo(request.session_timeout_ms, tuple(request.protocols)))
        owned = self._decode_owned(subscription.owned_partitions)
        current = self._update_and_reconcile(group, member, updated, is_new, write_metadata or is_new, owned,
                                             self.topics, records)
        group_id = group.group_id
        self.timer.cancel(self._join_key(group_id, member_id))
        self._schedule_session_timeout(group_id, member_id)
        self.timer.schedule(self._sync_key(group_id, member_id), max(request.rebalance_timeout_ms, 0),
                            lambda: self.fence(group_id, member_id, "the classic member did not sync in time"))
        error = self.coordinator.runtime.append(group_id, records)
        if error != error_codes.NONE:
            respond(JoinResult(error, member_id=member_id))
            return
        respond(JoinResult(error_codes.NONE, member_id=member_id, generation_id=current.member_epoch,
                           protocol_type=CONSUMER_PROTOCOL_TYPE, protocol_name=names[0], leader=""))

    def _classic_member(self, group: ConsumerGroup, member_id: str, instance_id: str | None):
        """(member, error code) of a classic request's sender."""
        if instance_id is None:
            member = group.members.get(member_id)
        else:
            member = group.static_member(instance_id)
            if member is not None and member.member_id != member_id:
                return None, error_codes.FENCED_INSTANCE_ID
        if member is None or member.classic is None:
            return None, error_codes.UNKNOWN_MEMBER_ID
        return member, error_codes.NONE

    def _must_rejoin(self, group: ConsumerGroup, member: ConsumerMember) -> bool:
        """Whether a classic member has to rejoin to move on (Kafka's conditions)."""
        if member.member_epoch < group.group_epoch or member.state is MemberState.UNREVOKED_PARTITIONS:
            return True
        return member.state is MemberState.UNRELEASED_PARTITIONS and not self._waiting_on_unreleased(group, member)

    @staticmethod
    def _waiting_on_unreleased(group: ConsumerGroup, member: ConsumerMember) -> bool:
        for topic_id, partitions in group.target.get(member.member_id, {}).items():
            held = member.assigned.get(topic_id, set())
            if any(p not in held and group.partition_epoch(topic_id, p) != -1 for p in partitions):
                return True
        return False

    def _ask_to_rejoin(self, group: ConsumerGroup, member: ConsumerMember) -> None:
        key = self._join_key(group.group_id, member.member_id)
        if not self.timer.is_scheduled(key):
            group_id, member_id = group.group_id, member.member_id
            self.timer.schedule(key, max(member.rebalance_timeout_ms, 0),
                                lambda: self.fence(group_id, member_id, "the classic member did not rejoin in time"))

    def classic_sync(self, group: ConsumerGroup, generation_id: int, member_id: str, instance_id: str | None,
                     protocol_type: str | None, protocol_name: str | None) -> SyncResult:
        member, error = self._classic_member(group, member_id, instance_id)
        if error != error_codes.NONE:
            return SyncResult(error)
        if generation_id != member.member_epoch:
            return SyncResult(error_codes.ILLEGAL_GENERATION)
        protocols = dict(member.classic.protocols)
        if (protocol_type is not None and protocol_type != CONSUMER_PROTOCOL_TYPE) or (
                protocol_name is not None and protocol_name not in protocols):
            return SyncResult(error_codes.INCONSISTENT_GROUP_PROTOCOL)
        if group.group_epoch > member.member_epoch and member.state is not MemberState.UNREVOKED_PARTITIONS:
            self._ask_to_rejoin(group, member)
            return SyncResult(error_codes.REBALANCE_IN_PROGRESS)
        self.timer.cancel(self._sync_key(group.group_id, member.member_id))
        self._schedule_session_timeout(group.group_id, member.member_id)
        name = protocol_name or member.classic.protocols[0][0]
        return SyncResult(error_codes.NONE, CONSUMER_PROTOCOL_TYPE, name,
                          self._encode_assignment(member.assigned, protocols.get(name, b"")))

    def _encode_assignment(self, assigned: Assignment, subscription_metadata: bytes) -> bytes:
        """The member's partitions as ConsumerProtocolAssignment, at its subscription's version."""
        version = int.from_bytes(subscription_metadata[:2], "big", signed=True) if len(subscription_metadata) >= 2 else 0
        by_id = {topic.topic_id: topic.name for topic in self.topics.values()}
        topics = [AssignedTopicPartition(topic=by_id[topic_id], partitions=sorted(partitions))
                  for topic_id, partitions in assigned.items() if topic_id in by_id and partitions]
        message = ConsumerProtocolAssignment(assigned_partitions=sorted(topics, key=lambda t: t.topic), user_data=None)
        return encode_versioned(message, version)

    def classic_heartbeat(self, group: ConsumerGroup, generation_id: int, member_id: str,
                          instance_id: str | None) -> int:
        member, error = self._classic_member(group, member_id, instance_id)
        if error != error_codes.NONE:
            return error
        if generation_id != member.member_epoch:
            return error_codes.ILLEGAL_GENERATION
        self._schedule_session_timeout(group.group_id, member.member_id)
        if self._must_rejoin(group, member):
            self._ask_to_rejoin(group, member)
            return error_codes.REBALANCE_IN_PROGRESS
        return error_codes.NONE

    def classic_leave(self, group: ConsumerGroup, leaving: list[tuple[str, str | None]]) -> tuple[int, list[int]]:
        records: list = []
        results = []
        for member_id, instance_id in leaving:
            if instance_id is None:
                member = group.members.get(member_id)
                error = error_codes.NONE if member is not None and member.classic is not None else error_codes.UNKNOWN_MEMBER_ID
            else:
                member = group.static_member(instance_id)
                if member is None:
                    error = error_codes.UNKNOWN_MEMBER_ID
                elif member_id and member.member_id != member_id:
                    error = error_codes.FENCED_INSTANCE_ID
                else:
                    error = error_codes.NONE if member.classic is not None else error_codes.UNKNOWN_MEMBER_ID
            results.append(error)
            if error == error_codes.NONE:
                log.info("classic member left the consumer group", group=group.group_id, member=member.member_id)
                self._remove(group, member, records, bump=False)
        if records:
            group.group_epoch += 1
            records.append(self._record_group_epoch(group))
        error = self.coordinator.runtime.append(group.group_id, records)
        return error, results

    def upgrade(self, classic_group) -> ConsumerGroup | None:
        """Turn a classic group of the consumer protocol type into a consumer group (Kafka's
        online upgrade): its members, generation (the group and member epochs) and assignments
        are carried over; parked JoinGroup/SyncGroup requests learn of the rebalance. None when
        it cannot be (another protocol type, too many members, unreadable metadata)."""
        if classic_group.protocol_type != CONSUMER_PROTOCOL_TYPE or len(classic_group.members) > self.config.consumer_max_size:
            return None
        if classic_group.state not in (GroupState.STABLE, GroupState.PREPARING_REBALANCE,
                                       GroupState.COMPLETING_REBALANCE):
            return None
        group = ConsumerGroup(classic_group.group_id)
        epoch = classic_group.generation_id
        group.group_epoch = group.assignment_epoch = epoch
        try:
            for old in classic_group.members.values():
                name = classic_group.protocol_name or old.protocols[0][0]
                subscription = _decode_subscription(old.metadata_for(name))
                assigned = self._decode_assignment(old.assignment) if classic_group.state is GroupState.STABLE else {}
                member = ConsumerMember(
                    old.member_id, instance_id=old.group_instance_id, rack_id=subscription.rack_id,
                    client_id=old.client_id, client_host=old.client_host, rebalance_timeout_ms=old.rebalance_timeout_ms,
                    subscribed_topic_names=tuple(subscription.topics), member_epoch=epoch, previous_member_epoch=epoch,
                    assigned=assigned, classic=ClassicMemberInfo(old.session_timeout_ms, tuple(old.protocols)))
                group.put_member(member, replaying=True)  # a leader's assignment may overlap: last one wins
                group.target[member.member_id] = _copy(group.members[member.member_id].assigned)
        except (ProtocolError, KeyError, IndexError):
            return None
        records: list = []
        for member in group.members.values():
            records.append(self._record_member_metadata(group.group_id, member))
            records.append(self._record_target(group.group_id, member.member_id, group.target[member.member_id]))
            records.append(self._record_current_assignment(group.group_id, member))
        self._refresh_subscription_metadata(group, self.topics, records)
        records.append(self._record_group_epoch(group))
        records.append(self._record_assignment_epoch(group))
        self.coordinator.retire_classic_group(classic_group, records)
        self.groups[group.group_id] = group
        for member in group.members.values():
            self._schedule_session_timeout(group.group_id, member.member_id)
        log.info("classic group upgraded to a consumer group", group=group.group_id, epoch=epoch,
                 members=len(group.members))
        return group

    def _decode_assignment(self, data: bytes) -> Assignment:
        if len(data) < 2:
            return {}
        decoded = decode_versioned(ConsumerProtocolAssignment, data)
        assignment: Assignment = {}
        for item in decoded.assigned_partitions:
            topic = self.topics.get(item.topic)
            if topic is not None:
                assignment.setdefault(topic.topic_id, set()).update(p for p in item.partitions
                                                                     if 0 <= p < topic.partition_count)
        return _copy(assignment)

    def delete(self, group_id: str, keep_offsets: bool = False) -> int:
        """DeleteGroups of an empty consumer group (its offsets go too, unless a classic group
        takes the id over)."""
        group = self.groups.get(group_id)
        if group is None:
            return error_codes.GROUP_ID_NOT_FOUND
        if not group.is_empty():
            return error_codes.NON_EMPTY_GROUP
        offset_keys = [] if keep_offsets else self.coordinator.all_offset_keys(group_id)  # pending ones too
        records = self.coordinator._offset_tombstones(group_id, offset_keys)
        records.extend(self._group_tombstones(group_id))
        error = self.coordinator.runtime.append(group_id, records)
        if error != error_codes.NONE:
            return error
        del self.groups[group_id]
        if not keep_offsets:
            self.coordinator.forget_offsets(group_id, offset_keys)
            self.coordinator.offsets.pop(group_id, None)
        log.info("consumer group deleted", group=group_id)
        return error_codes.NONE

    def cleanup(self, now_ms: int) -> None:
        """Offsets of a consumer group expire ``offsets.retention.minutes`` after their commit
        (Kafka's ConsumerGroup condition: the group state's time does not count), unless one of
        its members subscribes to their topic (by name or by a regex that resolved to it); an
        empty group whose offsets all went is then deleted."""
        coordinator = self.coordinator
        for group_id in list(self.groups):
            group = self.groups[group_id]
            if not coordinator.is_loaded(group_id):
                continue
            expired, all_expired = coordinator.expired_offsets(
                group_id, now_ms, lambda committed: committed.commit_timestamp_ms, group.subscribed_topic_names())
            forget = all_expired and group.is_empty()
            records = coordinator._offset_tombstones(group_id, expired)
            if forget:
                records.extend(self._group_tombstones(group_id))
            if coordinator.runtime.append(group_id, records) != error_codes.NONE:
                continue
            stored = coordinator.offsets.get(group_id, {})
            for key in expired:
                del stored[key]
            if forget:
                coordinator.offsets.pop(group_id, None)
                del self.groups[group_id]

    # --- records (written to __consumer_offsets; formats in persistence) ---

    def _record_group_epoch(self, group: ConsumerGroup):
        from . import persistence
        return persistence.consumer_group_epoch_record(group.group_id, group.group_epoch)

    def _record_partition_metadata(self, group: ConsumerGroup):
        from . import persistence
        return persistence.consumer_group_partition_metadata_record(group.group_id, group.subscription_metadata)

    def _record_member_metadata(self, group_id: str, member: ConsumerMember):
        from . import persistence
        return persistence.consumer_group_member_record(group_id, member)

    def _record_target(self, group_id: str, member_id: str, assignment: Assignment):
        from . import persistence
        return persistence.consumer_group_target_record(group_id, member_id, assignment)

    def _record_assignment_epoch(self, group: ConsumerGroup):
        from . import persistence
        return persistence.consumer_group_assignment_epoch_record(group.group_id, group.assignment_epoch)

    def _record_current_assignment(self, group_id: str, member: ConsumerMember):
        from . import persistence
        return persistence.consumer_group_current_assignment_record(group_id, member)

    def _member_tombstones(self, group_id: str, member_id: str):
        from . import persistence
        return persistence.consumer_group_member_tombstones(group_id, member_id)

    def _group_tombstones(self, group_id: str):
        from . import persistence
        return persistence.consumer_group_tombstones(group_id)

    # --- replay ---

    def restore(self, kind: str, group_id: str, member_id: str | None, value) -> None:
        """Replay one consumer group record (``value`` None: a tombstone); see
        ``persistence.decode_record`` for the kinds."""
        group = self.groups.get(group_id)
        if group is None:
            if value is None:
                return
            group = self.groups[group_id] = ConsumerGroup(group_id)
        if kind == "epoch":
            if value is None:
                del self.groups[group_id]  # the group was deleted (its last tombstone)
            else:
                group.group_epoch = value
        elif kind == "partition_metadata":
            group.subscription_metadata = value or {}
        elif kind == "member":
            if value is None:
                group.remove_member(member_id)
            else:
                existing = group.members.get(member_id)
                merged = value if existing is None else replace(
                    existing, **{name: getattr(value, name) for name in _METADATA_FIELDS})
                group.put_member(merged, replaying=True)
        elif kind == "target":
            if value is None:
                group.target.pop(member_id, None)
            else:
                group.target[member_id] = value
        elif kind == "assignment_epoch":
            group.assignment_epoch = value if value is not None else 0
        elif kind == "current":
            if value is None:
                return  # the member's metadata tombstone, which follows, removes it
            existing = group.members.get(member_id) or ConsumerMember(member_id)
            group.put_member(replace(existing, member_epoch=value.member_epoch,
                                     previous_member_epoch=value.previous_member_epoch, state=value.state,
                                     assigned=value.assigned, pending_revocation=value.pending_revocation),
                             replaying=True)

    def finish_restore(self, replayed=lambda group_id: True) -> None:
        """Restored members of the groups ``replayed`` says are loaded get a session to keep
        alive, and revoking ones their deadline."""
        for group in self.groups.values():
            if not replayed(group.group_id):
                continue
            for member in group.members.values():
                self._schedule_session_timeout(group.group_id, member.member_id)
                if member.state is MemberState.UNREVOKED_PARTITIONS:
                    self._schedule_revocation_timeout(group.group_id, member)


_METADATA_FIELDS = ("instance_id", "rack_id", "client_id", "client_host", "rebalance_timeout_ms",
                    "subscribed_topic_names", "subscribed_topic_regex", "server_assignor", "classic")


def _metadata_differs(before: ConsumerMember, after: ConsumerMember) -> bool:
    return any(getattr(before, name) != getattr(after, name) for name in _METADATA_FIELDS)
