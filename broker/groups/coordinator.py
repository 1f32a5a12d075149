"""The group coordinator: classic groups (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), their
timers, and committed offsets.

Kafka's semantics (``GroupMetadataManager`` / ``ClassicGroup`` of Kafka's group-coordinator
module), in brief:

* **Join** (KIP-394): from JoinGroup v4 a member without an id is answered MEMBER_ID_REQUIRED
  with a fresh id and must join again with it (so a retried JoinGroup cannot leave orphan members
  behind); the pending id expires after the session timeout. A join starts (or joins) a
  rebalance: the JoinGroup is parked until every member has rejoined or the group's rebalance
  timeout (the largest any member asked for) passes; members that did not rejoin are removed.
  The first rebalance of an empty group waits ``group.initial.rebalance.delay.ms``, extended by
  that much (up to the rebalance timeout) each time another member arrives meanwhile, so a
  fleet starting together forms one generation instead of many.
* **Sync**: followers' SyncGroups are parked until the leader's SyncGroup brings the
  assignment; members without one get empty bytes. Members that do not sync within the
  rebalance timeout are removed and the group rebalances.
* **Heartbeat** pushes back the member's session expiry and answers REBALANCE_IN_PROGRESS
  while the group prepares a rebalance; a member whose session expires is removed.
* **Static members** (KIP-345, ``group.instance.id``): a restarted static member takes its
  place back under a new member id without a rebalance when the group is stable and the
  selected protocol does not change; the old id is fenced (FENCED_INSTANCE_ID).
* **Offsets**: commits are validated against the group (generation, member, state); a commit
  with generation -1 outside any group creates a "simple" Empty group that only holds offsets.
* **Transactional offsets** (TxnOffsetCommit, :meth:`GroupCoordinator.commit_transactional_offsets`):
  validated as a commit but without the state checks (a rebalancing group takes them), written
  as a transactional batch of the producer and held pending
  (:mod:`~odradek.broker.groups.transactional_offsets`) until the producer's marker reaches the
  group's ``__consumer_offsets`` partition (:meth:`GroupCoordinator.complete_transaction`): a
  COMMIT makes them the committed offsets unless a later plain commit of the same partition
  reached the log after them, an ABORT drops them. A partition with a pending offset answers
  UNSTABLE_OFFSET_COMMIT to an OffsetFetch that requires stable offsets, does not expire, and
  keeps its simple group; OffsetDelete and DeleteGroups delete the pending offsets too.
* **KIP-848 consumer groups** live in :mod:`odradek.broker.groups.consumer_groups` (``self.consumer``);
  a group id names either kind, and the offsets of both are kept here.

Responses leave through callbacks (``respond(result)``) so that this module knows nothing about
asyncio futures or wire versions: the handlers in ``odradek.broker.handlers`` wrap a future
around the callback and encode the result.

Ownership: one coordinator per broker (``broker.group_coordinator``) owns every group, offset
and timer; all of it runs on the broker's event loop. ``__consumer_offsets`` itself (its load,
the appends, which partitions are served) is its :class:`~odradek.broker.coordinators.runtime.CoordinatorRuntime`'s
(``self.runtime``), of which this coordinator is the shard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from odradek.protocol import error_codes

from .classic import (CONSUMER_PROTOCOL_TYPE, ClassicGroup, GroupError, GroupState, JoinResult, Member, Respond,
                      SyncResult)
from ..config import BROKER_CONFIGS
from .assignors import assignor_names
from .consumer_groups import ConsumerGroups
from .group_configs import CONSUMER_HEARTBEAT_INTERVAL, CONSUMER_SESSION_TIMEOUT
from ..coordinators.runtime import CoordinatorResult, CoordinatorRuntime, coordinator_partition
from .transactional_offsets import PendingTransactionalOffsets

log = structlog.get_logger("odradek.groups")

EMPTY, PREPARING, COMPLETING, STABLE, DEAD = (GroupState.EMPTY, GroupState.PREPARING_REBALANCE,
                                              GroupState.COMPLETING_REBALANCE, GroupState.STABLE, GroupState.DEAD)

# Kafka answers a new member's first parked JoinGroup within this long at most (it cannot
# heartbeat yet, and a client that gave up and retried would otherwise leave a defunct member).
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000
FIRST_JOIN_VERSION_REQUIRING_MEMBER_ID = 4  # KIP-394
FIRST_JOIN_VERSION_SKIPPING_ASSIGNMENT = 9  # KIP-814


# Where each GroupConfig field comes from: a broker key and how its value converts (None: as is).
# The fields' defaults are the broker keys' defaults converted the same way, so neither is
# written twice (broker/config.py defines every default once).
GROUP_CONFIG_SOURCES = {
    "initial_rebalance_delay_ms": ("group.initial.rebalance.delay.ms", None),
    "min_session_timeout_ms": ("group.min.session.timeout.ms", None),
    "max_session_timeout_ms": ("group.max.session.timeout.ms", None),
    "max_size": ("group.max.size", None),
    "offset_metadata_max_bytes": ("offset.metadata.max.bytes", None),
    "offsets_retention_ms": ("offsets.retention.minutes", lambda minutes: minutes * 60 * 1000),
    "offsets_retention_check_interval_ms": ("offsets.retention.check.interval.ms", None),
    "consumer_session_timeout_ms": ("group.consumer.session.timeout.ms", None),  # KIP-848 consumer groups
    "consumer_heartbeat_interval_ms": ("group.consumer.heartbeat.interval.ms", None),
    "consumer_max_size": ("group.consumer.max.size", None),
    "consumer_assignors": ("group.consumer.assignors", assignor_names),  # the first is the default
    "migration_policy": ("group.consumer.migration.policy", str.lower),
}


def _from_broker(field_name: str, broker_value):
    convert = GROUP_CONFIG_SOURCES[field_name][1]
    return broker_value if convert is None else convert(broker_value)


def _default(field_name: str):
    return _from_broker(field_name, BROKER_CONFIGS[GROUP_CONFIG_SOURCES[field_name][0]].default)


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """The coordinator's settings, taken from the broker's configuration; a field's default is
    its broker key's default (tests build one with a few fields changed)."""

    initial_rebalance_delay_ms: int = _default("initial_rebalance_delay_ms")
    min_session_timeout_ms: int = _default("min_session_timeout_ms")
    max_session_timeout_ms: int = _default("max_session_timeout_ms")
    max_size: int = _default("max_size")
    offset_metadata_max_bytes: int = _default("offset_metadata_max_bytes")
    offsets_retention_ms: int = _default("offsets_retention_ms")
    offsets_retention_check_interval_ms: int = _default("offsets_retention_check_interval_ms")
    consumer_session_timeout_ms: int = _default("consumer_session_timeout_ms")
    consumer_heartbeat_interval_ms: int = _default("consumer_heartbeat_interval_ms")
    consumer_max_size: int = _default("consumer_max_size")
    consumer_assignors: tuple[str, ...] = _default("consumer_assignors")
    migration_policy: str = _default("migration_policy")

    @property
    def classic_max_size(self) -> int:
        return self.max_size

    @classmethod
    def from_broker_config(cls, config) -> "GroupConfig":
        return cls(**{name: _from_broker(name, config[key]) for name, (key, _) in GROUP_CONFIG_SOURCES.items()})


@dataclass(slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int
    expire_timestamp_ms: int | None = None  # from OffsetCommit v2-4's retention time
    # Where the commit reached __consumer_offsets relative to the group's other commits (a
    # counter that follows the log's order: an append and its application are one step, the
    # load replays in offset order). Kafka's recordOffset: a transaction's offset becomes the
    # committed one at its COMMIT only if no plain commit of the partition came after it.
    log_order: int = field(default=0, compare=False, repr=False)


@dataclass(slots=True)
class JoinRequest:
    group_id: str
    member_id: str
    group_instance_id: str | None
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    client_id: str = ""
    client_host: str = ""
    api_version: int = 9
    reason: str | None = None


def _classic_expiration(group: ClassicGroup):
    """ClassicGroup.offsetExpirationCondition and isSubscribedToTopic of Kafka: (the timestamp an
    offset's retention counts from, the topics whose offsets stay), or None when no offset of
    the group may expire now.

    * a simple group (no protocol type: offsets only) counts from each commit;
    * an Empty group from the time it became empty (its state timestamp; from the commit when
      the group record, older than GroupMetadataValue v2, had none), whatever the commit time;
    * a Stable "consumer" group whose members' subscriptions parse counts from the commit, for
      the topics none of its members subscribes to;
    * any other group (rebalancing, or another protocol type with members) keeps everything."""
    def commit_timestamp(committed: CommittedOffset) -> int:
        return committed.commit_timestamp_ms

    if group.protocol_type is None:
        return commit_timestamp, set()
    if group.is_in(EMPTY):
        if group.state_timestamp_ms is None:
            return commit_timestamp, set()
        return (lambda committed: group.state_timestamp_ms), set()
    if group.is_in(STABLE) and group.protocol_type == CONSUMER_PROTOCOL_TYPE:
        subscribed = group.subscribed_topics()
        if subscribed is not None:
            return commit_timestamp, subscribed
    return None


class GroupCoordinator:
    def __init__(self, config: GroupConfig | None = None, timer=None):
        self.config = config or GroupConfig()
        # The coordinator runtime (broker/coordinators/runtime.py) owns __consumer_offsets: its
        # load, writes and partition ownership; this coordinator is its shard.
        from .persistence import CONSUMER_OFFSETS
        self.runtime = CoordinatorRuntime(CONSUMER_OFFSETS, lambda runtime: self, timer)
        self.timer = self.runtime.timer
        self.groups: dict[str, ClassicGroup] = {}
        # KIP-848 consumer groups (a group id names a classic group or a consumer group).
        self.consumer = ConsumerGroups(self)
        self.offsets: dict[str, dict[tuple[str, int], CommittedOffset]] = {}
        # Offsets of transactions not ended yet, per producer (TxnOffsetCommit).
        self.transactional_offsets = PendingTransactionalOffsets()
        self._log_order = 0
        self._cleanup_armed = False
        # Per-group config overrides (group_configs.py), group id -> name -> value; the broker
        # hands in its topic table's dict, which the config handlers change.
        self.group_configs: dict[str, dict[str, str]] = {}

    # --- persistence ---

    @property
    def store(self):
        """Where groups and offsets are persisted (the runtime's log, a ``CoordinatorLog`` of
        ``__consumer_offsets``); None keeps everything in memory (unit tests)."""
        return self.runtime.log

    @store.setter
    def store(self, store) -> None:
        self.runtime.log = store

    def attach_store(self, store) -> None:
        """Persist to ``store`` from now on; the runtime replays what it holds in the background
        (``CoordinatorRuntime.load``): until its partition is replayed a group answers
        COORDINATOR_LOAD_IN_PROGRESS, a partition whose replay fails NOT_COORDINATOR."""
        self.runtime.load(store)

    # The shard's side of the runtime (CoordinatorShard).

    def replay(self, decoded) -> None:
        """Apply one decoded ``__consumer_offsets`` record (``persistence.decode_record``)."""
        from .persistence import replay
        replay(self, decoded)

    def replay_transactional(self, decoded, producer_id: int, producer_epoch: int) -> None:
        """Apply one record of a transactional batch of ``producer_id``'s: an offset commit is
        held pending until the producer's marker in this partition (Kafka's
        OffsetMetadataManager.replay with a producer id); anything else applies as usual. A
        live commit (its partition loaded) creates the simple group it may need, as Kafka's
        replay does; at load :meth:`finish_restore` does."""
        if decoded is None or decoded[0] != "offset" or decoded[4] is None:
            self.replay(decoded)
            return
        _, group_id, topic, partition, committed = decoded
        committed.log_order = self._next_log_order()
        self.transactional_offsets.add(coordinator_partition(group_id, self.partition_count), producer_id,
                                       group_id, (topic, partition), committed)
        if self.is_loaded(group_id) and group_id not in self.groups and group_id not in self.consumer.groups:
            self._get_or_create(group_id)

    def replay_end_transaction(self, partition: int, producer_id: int, producer_epoch: int, committed: bool) -> None:
        """``producer_id``'s marker in ``partition`` (Kafka's replayEndTransactionMarker): on
        COMMIT its pending offsets there become committed, each unless the partition's committed
        offset reached the log after it; on ABORT they are dropped. A marker with nothing
        pending changes nothing."""
        ended = self.transactional_offsets.end(partition, producer_id)
        if not committed:
            return
        for group_id, offsets in ended.items():
            stored = self.offsets.setdefault(group_id, {})
            for key, offset in offsets.items():
                existing = stored.get(key)
                if existing is None or offset.log_order > existing.log_order:
                    stored[key] = offset
                else:
                    log.info("a transaction's offset is older than the committed one; kept the committed",
                             group=group_id, topic=key[0], partition=key[1], producer_id=producer_id)

    def _next_log_order(self) -> int:
        self._log_order += 1
        return self._log_order

    def on_loaded(self, partition: int) -> None:
        self.finish_restore(partition)

    def on_unloaded(self, partition: int) -> None:
        """Never called for groups: the runtime unloads a partition only when a write's fsync
        fails, which the group coordinator's writes (``runtime.append``) do not wait for, and
        odradek, a single node, owns every partition of ``__consumer_offsets``."""
        raise NotImplementedError("the group coordinator does not give a partition up")

    @property
    def active(self) -> bool:
        return self.runtime.active

    @property
    def partition_count(self) -> int:
        return self.runtime.partition_count

    def availability(self, group_id: str | None = None) -> int:
        """Whether the coordinator serves ``group_id`` now (None: every group, as ListGroups
        needs): COORDINATOR_NOT_AVAILABLE while shutting down, COORDINATOR_LOAD_IN_PROGRESS
        while the group's __consumer_offsets partition (any, for None) is being replayed,
        NOT_COORDINATOR if its replay failed, else NONE. An empty group id is the caller's to
        refuse (INVALID_GROUP_ID), as Kafka checks it before looking for the partition."""
        return self.runtime.availability(group_id)

    def is_loaded(self, group_id: str) -> bool:
        """The group's partition has been replayed: its timers and its cleanup may run."""
        return self.runtime.is_loaded(group_id)

    def _group_record(self, group: ClassicGroup) -> tuple[bytes, bytes]:
        from . import persistence
        members = tuple(persistence.StoredMember(
            m.member_id, m.group_instance_id, m.client_id, m.client_host, m.rebalance_timeout_ms,
            m.session_timeout_ms, m.metadata_for(group.protocol_name) if group.protocol_name else b"", m.assignment)
            for m in group.members.values())
        stored = persistence.StoredGroup(group.protocol_type or "", group.generation_id, group.protocol_name,
                                         group.leader_id,
                                         -1 if group.state_timestamp_ms is None else group.state_timestamp_ms, members)
        return persistence.group_metadata_key(group.group_id), persistence.group_metadata_value(stored)

    def _offset_tombstones(self, group_id: str, keys) -> list[tuple[bytes, None]]:
        from . import persistence
        return [(persistence.offset_commit_key(group_id, topic, partition), None) for topic, partition in keys]

    def restore_offset(self, group_id: str, topic: str, partition: int, committed: CommittedOffset | None) -> None:
        """Replay one offset record (None: a tombstone, which deletes the pending transactional
        offsets of the partition too, as Kafka's replay)."""
        stored = self.offsets.setdefault(group_id, {})
        if committed is None:
            stored.pop((topic, partition), None)
            self.transactional_offsets.drop(group_id, [(topic, partition)])
        else:
            committed.log_order = self._next_log_order()
            stored[(topic, partition)] = committed

    def restore_group(self, group_id: str, stored) -> None:
        """Replay one group metadata record (None: a tombstone): the group comes back Stable
        with its generation, leader and assignments, or Empty."""
        self.groups.pop(group_id, None)
        if stored is None:
            return
        group = ClassicGroup(group_id, self.now_ms())
        group.generation_id = stored.generation_id
        group.protocol_type = stored.protocol_type or None
        for item in stored.members:
            member = Member(item.member_id, item.group_instance_id, item.client_id, item.client_host,
                            item.rebalance_timeout_ms, item.session_timeout_ms, stored.protocol_type,
                            [(stored.protocol_name or "", item.subscription)], assignment=item.assignment, is_new=False)
            group.add(member)
        if group.members:
            group.protocol_name = stored.protocol_name
            if stored.leader_id in group.members:
                group.leader_id = stored.leader_id
            group.state = STABLE  # what the record describes; no transition happened here
        # Offsets of an Empty group expire counting from it; a record older than
        # GroupMetadataValue v2 has none (-1): then they count from their commit, as in Kafka.
        group.state_timestamp_ms = stored.state_timestamp_ms if stored.state_timestamp_ms >= 0 else None
        self.groups[group_id] = group

    def finish_restore(self, partition: int | None = None) -> None:
        """After the replay of ``partition`` (None: of everything): offsets without a group
        record belong to an Empty (simple) group; restored members get a session to keep alive,
        as Kafka arms their timers on load."""
        def replayed(group_id: str) -> bool:
            return partition is None or coordinator_partition(group_id, self.partition_count) == partition

        for group_id, stored in list(self.offsets.items()):
            if not replayed(group_id):
                continue
            if not stored:
                del self.offsets[group_id]
            elif group_id not in self.groups and group_id not in self.consumer.groups:
                self.groups[group_id] = ClassicGroup(group_id, self.now_ms())
        for group_id in self.transactional_offsets.groups():  # pending offsets only: a simple group too
            if replayed(group_id) and group_id not in self.groups and group_id not in self.consumer.groups:
                self.groups[group_id] = ClassicGroup(group_id, self.now_ms())
        for group in self.groups.values():
            if replayed(group.group_id):
                for member in group.members.values():
                    self._reschedule_heartbeat(group, member)
        self.consumer.finish_restore(replayed)
        if self.groups or self.consumer.groups:
            self._arm_cleanup()

    def consumer_session_timeout_ms(self, group_id: str) -> int:
        """A consumer-protocol member's session: the group's ``consumer.session.timeout.ms``,
        else ``group.consumer.session.timeout.ms``."""
        value = self.group_configs.get(group_id, {}).get(CONSUMER_SESSION_TIMEOUT)
        return self.config.consumer_session_timeout_ms if value is None else int(value)

    def consumer_heartbeat_interval_ms(self, group_id: str) -> int:
        """The interval a consumer-protocol member is told: the group's
        ``consumer.heartbeat.interval.ms``, else ``group.consumer.heartbeat.interval.ms``."""
        value = self.group_configs.get(group_id, {}).get(CONSUMER_HEARTBEAT_INTERVAL)
        return self.config.consumer_heartbeat_interval_ms if value is None else int(value)

    def now_ms(self) -> int:
        return self.timer.now_ms()

    # --- lifecycle ---

    def shutdown(self) -> None:
        """Stop serving: answer every parked request (COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR
        as Kafka does when a coordinator unloads) so connections can drain, stop every timer."""
        self.runtime.shutdown()
        for group in self.groups.values():
            for member in group.members.values():
                member.complete_join(JoinResult(error_codes.NOT_COORDINATOR, member_id=member.member_id))
                member.complete_sync(SyncResult(error_codes.NOT_COORDINATOR))

    # --- timers ---

    def _heartbeat_key(self, group: ClassicGroup, member_id: str):
        return ("heartbeat", group.group_id, member_id)

    def _join_key(self, group: ClassicGroup):
        return ("join", group.group_id)

    def _sync_key(self, group: ClassicGroup):
        return ("sync", group.group_id)

    def _reschedule_heartbeat(self, group: ClassicGroup, member: Member, timeout_ms: int | None = None) -> None:
        group_id, member_id = group.group_id, member.member_id
        self.timer.schedule(self._heartbeat_key(group, member_id),
                            member.session_timeout_ms if timeout_ms is None else timeout_ms,
                            lambda: self._expire_heartbeat(group_id, member_id))

    def _arm_cleanup(self) -> None:
        if not self._cleanup_armed:
            self._cleanup_armed = True
            self.timer.schedule(("cleanup",), self.config.offsets_retention_check_interval_ms, self._run_cleanup)

    def _run_cleanup(self) -> None:
        self._cleanup_armed = False
        self.cleanup()
        if self.groups or self.consumer.groups:
            self._arm_cleanup()

    def cleanup(self) -> None:
        """Kafka's periodic offset expiration (OffsetMetadataManager.cleanupExpiredOffsets with
        ClassicGroup's expiration condition): see :meth:`expired_offsets` for which offsets go;
        an Empty group whose offsets all went is forgotten."""
        now = self.now_ms()
        for group_id in list(self.groups):
            if not self.is_loaded(group_id):
                continue
            group = self.groups[group_id]
            condition = _classic_expiration(group)
            if condition is None:
                continue  # a rebalancing group, or a non-consumer one with members: nothing expires
            base_timestamp, subscribed = condition
            expired, all_expired = self.expired_offsets(group_id, now, base_timestamp, subscribed)
            forget = all_expired and group.is_in(EMPTY) and not group.pending_join_members
            records = self._offset_tombstones(group_id, expired)
            if forget and self.store is not None:
                from .persistence import group_metadata_key
                records.append((group_metadata_key(group_id), None))
            if self.runtime.append(group_id, records) != error_codes.NONE:
                continue  # try again at the next interval
            stored = self.offsets.get(group_id, {})
            for key in expired:
                del stored[key]
            if forget:
                self.offsets.pop(group_id, None)
                group.transition_to(DEAD, now)
                del self.groups[group_id]
        self.consumer.cleanup(now)

    def expired_offsets(self, group_id: str, now_ms: int, base_timestamp, subscribed: set[str]
                        ) -> tuple[list[tuple[str, int]], bool]:
        """(the group's expired offsets, whether every offset it has expired): Kafka's
        OffsetExpirationConditionImpl. Offsets of ``subscribed`` topics never expire; an offset
        committed with a retention time (OffsetCommit v2-4) expires at its expire timestamp;
        any other once ``offsets.retention.minutes`` has passed since ``base_timestamp(offset)``.
        An offset with a pending transactional offset does not expire, and a group with an open
        transaction has not had every offset expire (Kafka keeps both until the transaction ends)."""
        retention = self.config.offsets_retention_ms
        expired = []
        stored = self.offsets.get(group_id, {})
        pending = self.transactional_offsets
        for key, committed in stored.items():
            if key[0] in subscribed or pending.has_pending(group_id, key):
                continue
            if committed.expire_timestamp_ms is not None:
                due = now_ms >= committed.expire_timestamp_ms
            else:
                due = now_ms - base_timestamp(committed) >= retention
            if due:
                expired.append(key)
        return expired, len(expired) == len(stored) and not pending.has_open_transactions(group_id)

    # --- lookups ---

    def group(self, group_id: str) -> ClassicGroup | None:
        return self.groups.get(group_id)

    def forget_empty_classic_group(self, group_id: str) -> bool:
        """Drop an Empty classic group (its offsets stay) so that a consumer group can take
        its id, as Kafka does when a consumer-protocol member joins; False if it is not empty."""
        group = self.groups.get(group_id)
        if group is None or not group.is_in(EMPTY) or group.pending_join_members:
            return False
        from .persistence import group_metadata_key
        if self.store is not None and self.runtime.append(group_id, [(group_metadata_key(group_id), None)]) != error_codes.NONE:
            return False
        group.transition_to(DEAD, self.now_ms())
        del self.groups[group_id]
        return True

    def adopt_downgraded_group(self, group_id: str, generation: int, members, records: list) -> None:
        """A consumer group left with classic members only becomes a classic group again
        (``ConsumerGroups._downgrade``): Stable in the consumer group's epoch, each member with
        its protocols and its target assignment, then a rebalance, as Kafka's online downgrade.
        ``members``: (ConsumerMember, protocols, {protocol name: assignment bytes})."""
        group = ClassicGroup(group_id, self.now_ms())
        group.generation_id = generation
        for member, protocols, _assignments in members:
            group.add(Member(member.member_id, member.instance_id, member.client_id, member.client_host,
                             member.rebalance_timeout_ms, member.classic.session_timeout_ms, "consumer", protocols,
                             is_new=False))
        group.protocol_name = group.select_protocol()
        for member, _, assignments in members:
            group.members[member.member_id].assignment = assignments.get(group.protocol_name, b"")
        group.state = STABLE  # what the consumer group was; the rebalance below moves it on
        self.groups[group_id] = group
        self.runtime.append(group_id, records + [self._group_record(group)])
        for member in group.members.values():
            self._reschedule_heartbeat(group, member)
        self._prepare_rebalance(group, "downgraded from a consumer group")

    def retire_classic_group(self, group: ClassicGroup, records: list) -> None:
        """A classic group becomes a consumer group (``ConsumerGroups.upgrade``): its parked
        requests learn of the rebalance, its timers stop, its record is deleted (in the same
        write as the consumer group's ``records``)."""
        from .persistence import group_metadata_key
        for member in group.members.values():
            member.complete_join(JoinResult(error_codes.REBALANCE_IN_PROGRESS, member_id=member.member_id))
            member.complete_sync(SyncResult(error_codes.REBALANCE_IN_PROGRESS))
            self.timer.cancel(self._heartbeat_key(group, member.member_id))
        for member_id in group.pending_join_members:
            self.timer.cancel(self._heartbeat_key(group, member_id))
        self.timer.cancel(self._join_key(group))
        self.timer.cancel(self._sync_key(group))
        self.runtime.append(group.group_id, [(group_metadata_key(group.group_id), None)] + records)
        group.transition_to(DEAD, self.now_ms())
        del self.groups[group.group_id]

    def _get_or_create(self, group_id: str) -> ClassicGroup:
        group = self.groups.get(group_id)
        if group is None:
            group = ClassicGroup(group_id, self.now_ms())
            self.groups[group_id] = group
            self._arm_cleanup()
        return group

    # --- JoinGroup ---

    def join_group(self, request: JoinRequest, respond: Respond) -> None:
        """Handle a JoinGroup; ``respond(JoinResult)`` is called now or when the join phase ends."""
        if (error := self.availability(request.group_id)) != error_codes.NONE:
            respond(JoinResult(error, member_id=request.member_id))
            return
        if not request.group_id:
            respond(JoinResult(error_codes.INVALID_GROUP_ID, member_id=request.member_id))
            return
        if not (self.config.min_session_timeout_ms <= request.session_timeout_ms <= self.config.max_session_timeout_ms):
            respond(JoinResult(error_codes.INVALID_SESSION_TIMEOUT, member_id=request.member_id))
            return
        consumer_group = self.consumer.group(request.group_id)
        if consumer_group is not None:
            # A classic member joins a consumer group as one of its members; an empty consumer
            # group gives its id up to a classic group instead, as in Kafka.
            if not consumer_group.is_empty():
                self.consumer.classic_join(consumer_group, request, respond)
                return
            if self.consumer.delete(request.group_id, keep_offsets=True) != error_codes.NONE:
                respond(JoinResult(error_codes.COORDINATOR_NOT_AVAILABLE, member_id=request.member_id))
                return
        is_unknown_member = request.member_id == ""
        group = self.groups.get(request.group_id)
        if group is None:
            if not is_unknown_member:
                respond(JoinResult(error_codes.UNKNOWN_MEMBER_ID, member_id=request.member_id))
                return
            group = self._get_or_create(request.group_id)
        if not self._accept_joining_member(group, request.member_id):
            removed = group.remove(request.member_id)
            if removed is not None:
                self.timer.cancel(self._heartbeat_key(group, removed.member_id))
                self._answer_removed(removed)
            respond(JoinResult(error_codes.GROUP_MAX_SIZE_REACHED))
            return
        if is_unknown_member:
            self._join_new_member(group, request, respond)
        else:
            self._join_existing_member(group, request, respond)

    def _accept_joining_member(self, group: ClassicGroup, member_id: str) -> bool:
        limit = self.config.max_size
        if group.is_in(EMPTY, DEAD):
            return True
        if group.is_in(PREPARING):
            # Counting members already parked (not the member count, which may exceed a lowered
            # limit) admits rejoining members first and turns away the last ones.
            member = group.members.get(member_id)
            return (member is not None and member.awaiting_join) or group.num_awaiting_join() < limit
        return member_id in group.members or len(group.members) < limit

    def _join_new_member(self, group: ClassicGroup, request: JoinRequest, respond: Respond) -> None:
        if group.is_in(DEAD):
            respond(JoinResult(error_codes.COORDINATOR_NOT_AVAILABLE))
            return
        if not group.supports_protocols(request.protocol_type, [name for name, _ in request.protocols]):
            respond(JoinResult(error_codes.INCONSISTENT_GROUP_PROTOCOL))
            return
        new_member_id = group.generate_member_id(request.client_id, request.group_instance_id)
        if request.group_instance_id is not None:
            existing = group.static_member_id(request.group_instance_id)
            if existing is not None:
                self._replace_static_member(group, request, existing, new_member_id, respond)
            else:
                self._add_member_and_rebalance(group, request, new_member_id, respond)
        elif request.api_version >= FIRST_JOIN_VERSION_REQUIRING_MEMBER_ID:
            group.pending_join_members.add(new_member_id)
            group_id = group.group_id
            self.timer.schedule(self._heartbeat_key(group, new_member_id), request.session_timeout_ms,
                                lambda: self._expire_heartbeat(group_id, new_member_id))
            respond(JoinResult(error_codes.MEMBER_ID_REQUIRED, member_id=new_member_id))
        else:
            self._add_member_and_rebalance(group, request, new_member_id, respond)

    def _join_existing_member(self, group: ClassicGroup, request: JoinRequest, respond: Respond) -> None:
        member_id = request.member_id
        if group.is_in(DEAD):
            respond(JoinResult(error_codes.COORDINATOR_NOT_AVAILABLE, member_id=member_id))
            return
        if not group.supports_protocols(request.protocol_type, [name for name, _ in request.protocols]):
            respond(JoinResult(error_codes.INCONSISTENT_GROUP_PROTOCOL, member_id=member_id))
            return
        if group.is_pending_member(member_id):
            if request.group_instance_id is not None:
                # A pending id was handed to a dynamic member; a static one never gets one.
                respond(JoinResult(error_codes.UNKNOWN_MEMBER_ID, member_id=member_id))
                return
            self._add_member_and_rebalance(group, request, member_id, respond)
            return
        try:
            group.validate_member(member_id, request.group_instance_id)
        except GroupError as error:
            respond(JoinResult(error.error_code, member_id=member_id))
            return
        member = group.members[member_id]
        same_metadata = member.protocols == request.protocols
        if group.is_in(PREPARING):
            self._update_member_and_rebalance(group, member, request, respond)
        elif group.is_in(COMPLETING):
            if same_metadata:
                # It lost the answer to its JoinGroup: answer again for the current generation.
                respond(self._join_answer(group, member, members=group.is_leader(member_id)))
            else:
                self._update_member_and_rebalance(group, member, request, respond)
        elif group.is_in(STABLE):
            if group.is_leader(member_id) or not same_metadata:
                # A leader rejoining asks for a rebalance (e.g. the topics' partitions changed,
                # which the metadata does not show).
                self._update_member_and_rebalance(group, member, request, respond)
            else:
                respond(self._join_answer(group, member, members=False))
        else:
            respond(JoinResult(error_codes.UNKNOWN_MEMBER_ID, member_id=member_id))

    def _join_answer(self, group: ClassicGroup, member: Member, *, members: bool,
                     leader: str | None = None, skip_assignment: bool = False) -> JoinResult:
        return JoinResult(
            error_codes.NONE, member_id=member.member_id, generation_id=group.generation_id,
            protocol_type=group.protocol_type, protocol_name=group.protocol_name,
            leader=(group.leader_id or "") if leader is None else leader,
            skip_assignment=skip_assignment,
            members=group.members_metadata() if members else [])

    def _set_join_waiter(self, member: Member, respond: Respond) -> None:
        if member.join_waiter is not None and member.join_waiter is not respond:
            # A second JoinGroup while the first is parked: the first one is superseded.
            member.complete_join(JoinResult(error_codes.REBALANCE_IN_PROGRESS, member_id=member.member_id))
        member.join_waiter = respond

    def _add_member_and_rebalance(self, group: ClassicGroup, request: JoinRequest, member_id: str,
                                  respond: Respond) -> None:
        member = Member(member_id, request.group_instance_id, request.client_id, request.client_host,
                        request.rebalance_timeout_ms, request.session_timeout_ms, request.protocol_type,
                        list(request.protocols))
        if group.is_in(PREPARING) and group.previous_state is EMPTY:
            group.new_member_added = True  # extends the initial rebalance delay
        group.add(member)
        member.join_waiter = respond
        # The member cannot heartbeat before its JoinGroup is answered; bound the wait instead.
        self._reschedule_heartbeat(group, member, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance_or_complete_join(group, f"adding member {member_id}")

    def _update_member_and_rebalance(self, group: ClassicGroup, member: Member, request: JoinRequest,
                                     respond: Respond) -> None:
        group.update_protocols(member, list(request.protocols))
        member.rebalance_timeout_ms = request.rebalance_timeout_ms
        member.session_timeout_ms = request.session_timeout_ms
        member.client_id = request.client_id
        member.client_host = request.client_host
        self._set_join_waiter(member, respond)
        self._maybe_prepare_rebalance_or_complete_join(group, f"member {member.member_id} rejoins")

    def _replace_static_member(self, group: ClassicGroup, request: JoinRequest, old_member_id: str,
                               new_member_id: str, respond: Respond) -> None:
        previous_leader = group.leader_id or ""
        self.timer.cancel(self._heartbeat_key(group, old_member_id))
        member = group.replace_static_member(request.group_instance_id, old_member_id, new_member_id)
        group.update_protocols(member, list(request.protocols))
        member.rebalance_timeout_ms = request.rebalance_timeout_ms
        member.session_timeout_ms = request.session_timeout_ms
        member.client_id = request.client_id
        member.client_host = request.client_host
        self._reschedule_heartbeat(group, member)
        if group.is_in(STABLE):
            if group.select_protocol() == group.protocol_name:
                # Nothing the assignment depends on changed: hand the member its old place.
                self.runtime.append(group.group_id, [self._group_record(group)])
                if request.api_version >= FIRST_JOIN_VERSION_SKIPPING_ASSIGNMENT:
                    is_leader = group.is_leader(new_member_id)
                    respond(self._join_answer(group, member, members=is_leader, skip_assignment=is_leader))
                else:
                    # Older clients would run the assignment if told they lead, and a Stable
                    # group would not broadcast it: name the previous leader id instead.
                    respond(self._join_answer(group, member, members=False, leader=previous_leader))
                return
            self._set_join_waiter(member, respond)
            self._maybe_prepare_rebalance_or_complete_join(group, f"static member {new_member_id} changes the protocol")
        elif group.is_in(COMPLETING):
            # The leader may already be assigning to the old id: rebalance so the new id gets one.
            self._set_join_waiter(member, respond)
            self._prepare_rebalance(group, f"static member {new_member_id} replaced during the sync phase")
        else:
            self._set_join_waiter(member, respond)
            self._maybe_complete_join_phase(group)

    def _maybe_prepare_rebalance_or_complete_join(self, group: ClassicGroup, reason: str) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, reason)
        else:
            self._maybe_complete_join_phase(group)

    def _maybe_complete_join_phase(self, group: ClassicGroup) -> None:
        # The initial rebalance only ends on its (extended) delay, never early.
        if group.is_in(PREPARING) and group.previous_state is not EMPTY and group.has_all_members_joined():
            self._complete_join(group)

    def _prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        if group.is_in(COMPLETING):
            # Members parked in SyncGroup must rejoin: their generation is over.
            for member in group.members.values():
                member.assignment = b""
            self._propagate_assignment(group, error_codes.REBALANCE_IN_PROGRESS)
        group.pending_sync_members.clear()
        self.timer.cancel(self._sync_key(group))
        initial = group.is_in(EMPTY)
        if initial:
            delay = self.config.initial_rebalance_delay_ms
            remaining = max(group.rebalance_timeout_ms() - delay, 0)
            group_id = group.group_id
            self.timer.schedule(self._join_key(group), delay,
                                lambda: self._try_complete_initial_rebalance(group_id, delay, remaining))
        group.transition_to(PREPARING, self.now_ms())
        log.info("preparing to rebalance group", group=group.group_id, generation=group.generation_id, reason=reason)
        if not initial:
            if group.has_all_members_joined():
                self._complete_join(group)
            else:
                group_id = group.group_id
                self.timer.schedule(self._join_key(group), group.rebalance_timeout_ms(),
                                    lambda: self._complete_join_by_id(group_id))

    def _try_complete_initial_rebalance(self, group_id: str, delay_ms: int, remaining_ms: int) -> None:
        group = self.groups.get(group_id)
        if group is None:
            return
        if group.new_member_added and remaining_ms != 0:
            group.new_member_added = False
            next_delay = min(self.config.initial_rebalance_delay_ms, remaining_ms)
            next_remaining = max(remaining_ms - delay_ms, 0)
            self.timer.schedule(self._join_key(group), next_delay,
                                lambda: self._try_complete_initial_rebalance(group_id, next_delay, next_remaining))
        else:
            self._complete_join(group)

    def _complete_join_by_id(self, group_id: str) -> None:
        group = self.groups.get(group_id)
        if group is not None:
            self._complete_join(group)

    def _complete_join(self, group: ClassicGroup) -> None:
        """End the join phase: drop dynamic members that did not rejoin, start the next
        generation and answer every parked JoinGroup."""
        self.timer.cancel(self._join_key(group))
        for member in group.not_yet_rejoined():
            if not member.is_static:
                group.remove(member.member_id)
                self.timer.cancel(self._heartbeat_key(group, member.member_id))
                self._answer_removed(member)
        if group.is_in(DEAD):
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Nobody rejoined (only static members are left): wait another rebalance timeout
            # for them, or for their sessions to expire.
            group_id = group.group_id
            self.timer.schedule(self._join_key(group), group.rebalance_timeout_ms(),
                                lambda: self._complete_join_by_id(group_id))
            return
        group.init_next_generation(self.now_ms())
        if group.is_in(EMPTY):
            log.info("group is empty", group=group.group_id, generation=group.generation_id)
            self.runtime.append(group.group_id, [self._group_record(group)])
            return
        log.info("group rebalanced", group=group.group_id, generation=group.generation_id,
                 protocol=group.protocol_name, members=len(group.members))
        for member in list(group.members.values()):
            member.complete_join(self._join_answer(group, member, members=group.is_leader(member.member_id)))
            self._reschedule_heartbeat(group, member)
            member.is_new = False
            group.pending_sync_members.add(member.member_id)
        group_id, generation = group.group_id, group.generation_id
        self.timer.schedule(self._sync_key(group), group.rebalance_timeout_ms(),
                            lambda: self._expire_pending_sync(group_id, generation))

    def _expire_pending_sync(self, group_id: str, generation_id: int) -> None:
        group = self.groups.get(group_id)
        if group is None or group.generation_id != generation_id or not group.is_in(COMPLETING, STABLE):
            return
        if group.pending_sync_members:
            missing = sorted(group.pending_sync_members)
            for member_id in missing:
                member = group.remove(member_id)
                self.timer.cancel(self._heartbeat_key(group, member_id))
                if member is not None:
                    self._answer_removed(member)
            self._prepare_rebalance(group, f"members {missing} did not sync in time")

    def _expire_heartbeat(self, group_id: str, member_id: str) -> None:
        group = self.groups.get(group_id)
        if group is None or group.is_in(DEAD):
            return
        if group.is_pending_member(member_id):
            group.remove(member_id)
            self._maybe_complete_join_after_removal(group)
            return
        member = group.members.get(member_id)
        if member is None or member.has_satisfied_heartbeat():
            return
        log.info("member session expired", group=group_id, member=member_id)
        self._remove_member_and_update_group(group, member)

    def _answer_removed(self, member: Member) -> None:
        """A removed member's parked requests learn it is gone (it should rejoin)."""
        member.complete_join(JoinResult(error_codes.UNKNOWN_MEMBER_ID))
        member.complete_sync(SyncResult(error_codes.UNKNOWN_MEMBER_ID))

    def _remove_member_and_update_group(self, group: ClassicGroup, member: Member) -> None:
        self._answer_removed(member)
        group.remove(member.member_id)
        self.timer.cancel(self._heartbeat_key(group, member.member_id))
        if group.is_in(STABLE, COMPLETING):
            self._maybe_prepare_rebalance_or_complete_join(group, f"member {member.member_id} removed")
        else:
            self._maybe_complete_join_after_removal(group)

    def _maybe_complete_join_after_removal(self, group: ClassicGroup) -> None:
        if group.is_in(PREPARING) and group.has_all_members_joined():
            self._complete_join(group)

    # --- SyncGroup ---

    def sync_group(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                   protocol_type: str | None, protocol_name: str | None,
                   assignments: dict[str, bytes], respond: Respond) -> None:
        if (error := self.availability(group_id)) != error_codes.NONE:
            respond(SyncResult(error))
            return
        if not group_id:
            respond(SyncResult(error_codes.INVALID_GROUP_ID))
            return
        consumer_group = self.consumer.group(group_id)
        if consumer_group is not None:
            respond(self.consumer.classic_sync(consumer_group, generation_id, member_id, group_instance_id,
                                               protocol_type, protocol_name))
            return
        group = self.groups.get(group_id)
        if group is None or group.is_in(EMPTY):
            respond(SyncResult(error_codes.UNKNOWN_MEMBER_ID))
            return
        if group.is_in(DEAD):
            respond(SyncResult(error_codes.COORDINATOR_NOT_AVAILABLE))
            return
        try:
            group.validate_member(member_id, group_instance_id)
        except GroupError as error:
            respond(SyncResult(error.error_code))
            return
        if generation_id != group.generation_id:
            respond(SyncResult(error_codes.ILLEGAL_GENERATION))
            return
        if _inconsistent(protocol_type, group.protocol_type) or _inconsistent(protocol_name, group.protocol_name):
            respond(SyncResult(error_codes.INCONSISTENT_GROUP_PROTOCOL))
            return
        if group.is_in(PREPARING):
            respond(SyncResult(error_codes.REBALANCE_IN_PROGRESS))
            return
        member = group.members[member_id]
        self._sync_received(group, member_id)
        if group.is_in(COMPLETING):
            if member.sync_waiter is not None:
                member.complete_sync(SyncResult(error_codes.REBALANCE_IN_PROGRESS))
            member.sync_waiter = respond
            if group.is_leader(member_id):
                for each in group.members.values():
                    each.assignment = assignments.get(each.member_id, b"")
                error = self.runtime.append(group.group_id, [self._group_record(group)])
                if error != error_codes.NONE:
                    # Not stored, not handed out: everyone learns the error and rejoins.
                    for each in group.members.values():
                        each.assignment = b""
                    self._propagate_assignment(group, error)
                    self._maybe_prepare_rebalance_or_complete_join(group, "the assignment could not be stored")
                    return
                group.transition_to(STABLE, self.now_ms())
                self._propagate_assignment(group, error_codes.NONE)
                log.info("group stable", group=group.group_id, generation=group.generation_id)
        else:  # Stable: the assignment is known, answer at once
            respond(SyncResult(error_codes.NONE, group.protocol_type, group.protocol_name, member.assignment))

    def _sync_received(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if not group.pending_sync_members:
            self.timer.cancel(self._sync_key(group))

    def _propagate_assignment(self, group: ClassicGroup, error_code: int) -> None:
        ok = error_code == error_codes.NONE
        for member in group.members.values():
            answered = member.complete_sync(SyncResult(
                error_code, group.protocol_type if ok else None, group.protocol_name if ok else None,
                member.assignment))
            if answered:
                self._reschedule_heartbeat(group, member)

    # --- Heartbeat ---

    def heartbeat(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None) -> int:
        if (error := self.availability(group_id)) != error_codes.NONE:
            # A group still loading is answered NONE blindly, as Kafka does: its members keep
            # going (their sessions start when the group is loaded).
            return error_codes.NONE if error == error_codes.COORDINATOR_LOAD_IN_PROGRESS else error
        if not group_id:
            return error_codes.INVALID_GROUP_ID
        consumer_group = self.consumer.group(group_id)
        if consumer_group is not None:
            return self.consumer.classic_heartbeat(consumer_group, generation_id, member_id, group_instance_id)
        group = self.groups.get(group_id)
        if group is None:
            return error_codes.UNKNOWN_MEMBER_ID
        if group.is_in(DEAD):
            return error_codes.COORDINATOR_NOT_AVAILABLE
        try:
            group.validate_member(member_id, group_instance_id)
        except GroupError as error:
            return error.error_code
        if generation_id != group.generation_id:
            return error_codes.ILLEGAL_GENERATION
        if group.is_in(EMPTY):
            return error_codes.UNKNOWN_MEMBER_ID
        self._reschedule_heartbeat(group, group.members[member_id])
        if group.is_in(PREPARING):
            return error_codes.REBALANCE_IN_PROGRESS
        return error_codes.NONE

    # --- LeaveGroup ---

    def leave_group(self, group_id: str, members: list[tuple[str, str | None]]) -> tuple[int, list[int]]:
        """Remove members given as (member id, group instance id; "" member id = by instance id
        only). Returns (top-level error, per-member errors)."""
        if (error := self.availability(group_id)) != error_codes.NONE:
            return error, []
        if not group_id:
            return error_codes.INVALID_GROUP_ID, []
        consumer_group = self.consumer.group(group_id)
        if consumer_group is not None:
            return self.consumer.classic_leave(consumer_group, members)
        group = self.groups.get(group_id)
        if group is None:
            return error_codes.UNKNOWN_MEMBER_ID, []
        if group.is_in(DEAD):
            return error_codes.COORDINATOR_NOT_AVAILABLE, []
        results = []
        removed_any = False
        for member_id, instance_id in members:
            if member_id == "":
                existing = group.static_member_id(instance_id)
                if existing is None:
                    results.append(error_codes.UNKNOWN_MEMBER_ID)
                    continue
                self._remove_current_member(group, existing)
            elif group.is_pending_member(member_id):
                group.remove(member_id)
                self.timer.cancel(self._heartbeat_key(group, member_id))
            else:
                try:
                    group.validate_member(member_id, instance_id)
                except GroupError as error:
                    results.append(error.error_code)
                    continue
                self._remove_current_member(group, member_id)
            results.append(error_codes.NONE)
            removed_any = True
        if removed_any:
            if group.is_in(STABLE, COMPLETING):
                self._maybe_prepare_rebalance_or_complete_join(group, "members left")
            elif group.is_in(PREPARING):
                self._maybe_complete_join_phase(group)
        return error_codes.NONE, results

    def _remove_current_member(self, group: ClassicGroup, member_id: str) -> None:
        member = group.members[member_id]
        self.timer.cancel(self._heartbeat_key(group, member_id))
        self._answer_removed(member)
        group.remove(member_id)
        log.info("member left", group=group.group_id, member=member_id)

    # --- offsets ---

    def validate_offset_commit(self, group_id: str, generation_id: int, member_id: str,
                               group_instance_id: str | None, api_version: int) -> tuple[int, ClassicGroup | None]:
        """(error code, group): whether an OffsetCommit may store offsets for this group. A
        commit with a negative generation for a group that does not exist creates a simple
        (Empty) group that only holds offsets."""
        if (error := self.availability(group_id)) != error_codes.NONE:
            return error, None
        consumer_group = self.consumer.group(group_id)
        if consumer_group is not None:
            return self.consumer.validate_offset_commit(consumer_group, member_id, generation_id, api_version), None
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return (error_codes.GROUP_ID_NOT_FOUND if api_version >= 9 else error_codes.ILLEGAL_GENERATION), None
            return error_codes.NONE, None  # created when something is actually stored
        if group.is_in(DEAD):
            return error_codes.COORDINATOR_NOT_AVAILABLE, group
        if generation_id < 0 and group.is_in(EMPTY):
            return error_codes.NONE, group
        if generation_id >= 0 or member_id or group_instance_id is not None:
            try:
                group.validate_member(member_id, group_instance_id)
            except GroupError as error:
                return error.error_code, group
            if generation_id != group.generation_id:
                return error_codes.ILLEGAL_GENERATION, group
        elif not group.is_in(EMPTY):
            # No member id and no generation (v0): only an empty group takes such commits.
            return error_codes.UNKNOWN_MEMBER_ID, group
        if group.is_in(COMPLETING):
            # The member has its new generation but not its assignment yet.
            return error_codes.REBALANCE_IN_PROGRESS, group
        return error_codes.NONE, group

    def metadata_too_large(self, metadata: str | None) -> bool:
        return metadata is not None and len(metadata) > self.config.offset_metadata_max_bytes

    def store_offsets(self, group_id: str, entries: list[tuple[str, int, int, int, str | None]],
                      retention_ms: int = -1) -> int:
        """Store validated commits: (topic, partition, offset, leader epoch, metadata). Written
        to the log first; returns the error code for all of them when that fails."""
        now = self.now_ms()
        expire = now + retention_ms if retention_ms is not None and retention_ms >= 0 else None
        commits = {(topic, partition): CommittedOffset(offset, leader_epoch, metadata or "", now, expire)
                   for topic, partition, offset, leader_epoch, metadata in entries}
        for committed in commits.values():
            committed.log_order = self._next_log_order()
        if self.store is not None:
            from .persistence import offset_commit_key, offset_commit_value
            error = self.runtime.append(group_id, [(offset_commit_key(group_id, topic, partition), offset_commit_value(value))
                                           for (topic, partition), value in commits.items()])
            if error != error_codes.NONE:
                return error
        if group_id not in self.consumer.groups:
            self._get_or_create(group_id)
        self.offsets.setdefault(group_id, {}).update(commits)
        return error_codes.NONE

    def fetch_offsets(self, group_id: str, partitions: list[tuple[str, int]] | None
                      ) -> tuple[int, dict[tuple[str, int], CommittedOffset]]:
        """(group error, committed offsets): the requested partitions' offsets (absent ones
        left out), or every stored offset when ``partitions`` is None."""
        if (error := self.availability(group_id)) != error_codes.NONE:
            return error, {}
        stored = self.offsets.get(group_id, {})
        if partitions is None:
            return error_codes.NONE, dict(stored)
        return error_codes.NONE, {key: stored[key] for key in partitions if key in stored}

    def delete_offsets(self, group_id: str, partitions: list[tuple[str, int]]) -> tuple[int, dict[tuple[str, int], int]]:
        """OffsetDelete: (group error, per-partition error). Offsets of topics the group's
        members subscribe to stay (GROUP_SUBSCRIBED_TO_TOPIC); a non-empty group that is not
        a consumer group cannot tell, so it refuses them all (NON_EMPTY_GROUP), as Kafka."""
        if (error := self.availability(group_id)) != error_codes.NONE:
            return error, {}
        consumer_group = self.consumer.group(group_id)
        group = self.groups.get(group_id)
        subscribed: set[str] | None = set()
        if consumer_group is not None:
            subscribed = consumer_group.subscribed_topic_names()
        elif group is None or group.is_in(DEAD):
            return error_codes.GROUP_ID_NOT_FOUND, {}
        elif not group.is_in(EMPTY):
            if group.protocol_type != "consumer":
                return error_codes.NON_EMPTY_GROUP, {}
            subscribed = group.subscribed_topics()
        stored = self.offsets.get(group_id, {})
        results = {}
        deleted = []
        for key in partitions:
            if subscribed is None or key[0] in subscribed:
                results[key] = error_codes.GROUP_SUBSCRIBED_TO_TOPIC
            else:
                results[key] = error_codes.NONE
                # a pending transactional offset is deleted too (Kafka writes the tombstone)
                if key in stored or self.transactional_offsets.has_pending(group_id, key):
                    deleted.append(key)
        error = self.runtime.append(group_id, self._offset_tombstones(group_id, deleted))
        if error != error_codes.NONE:
            return error, {}
        self.forget_offsets(group_id, deleted)
        return error_codes.NONE, results

    def delete_topic_offsets(self, topic: str) -> None:
        """Offsets of a deleted topic go with it, pending transactional ones too (Kafka's
        onPartitionsDeleted)."""
        for group_id in set(self.offsets) | set(self.transactional_offsets.groups()):
            gone = [key for key in self.all_offset_keys(group_id) if key[0] == topic]
            if gone:
                self.runtime.append(group_id, self._offset_tombstones(group_id, gone))
                self.forget_offsets(group_id, gone)

    def all_offset_keys(self, group_id: str) -> list[tuple[str, int]]:
        """The group's partitions with a committed or a pending transactional offset: what
        deleting all its offsets writes a tombstone for (Kafka's deleteAllOffsets)."""
        keys = list(self.offsets.get(group_id, {}))
        known = set(keys)
        keys.extend(key for key in self.transactional_offsets.keys_of(group_id) if key not in known)
        return keys

    def forget_offsets(self, group_id: str, keys) -> None:
        """The tombstones of ``keys`` were written: their committed and pending offsets go."""
        stored = self.offsets.get(group_id, {})
        for key in keys:
            stored.pop(key, None)
        self.transactional_offsets.drop(group_id, keys)

    def has_pending_transactional_offsets(self, group_id: str, topic: str, partition: int) -> bool:
        """A transaction not ended yet committed an offset of this partition for the group."""
        return self.transactional_offsets.has_pending(group_id, (topic, partition))

    # --- transactional offsets (TxnOffsetCommit) ---

    def validate_transactional_offset_commit(self, group_id: str, generation_id: int, member_id: str,
                                             group_instance_id: str | None) -> int:
        """Kafka's validateTransactionalOffsetCommit: a group that does not exist takes the commit
        with a negative generation (a simple group is created), else ILLEGAL_GENERATION; a
        classic group checks member (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) and generation
        (ILLEGAL_GENERATION) when a generation or member is given, but not its state; a
        consumer group its member's epoch (ILLEGAL_GENERATION, Kafka's answer below TxnOffsetCommit
        v6 for a stale one)."""
        consumer_group = self.consumer.group(group_id)
        if consumer_group is not None:
            return self.consumer.validate_transactional_offset_commit(consumer_group, member_id, generation_id)
        group = self.groups.get(group_id)
        if group is None:
            return error_codes.NONE if generation_id < 0 else error_codes.ILLEGAL_GENERATION
        if group.is_in(DEAD):
            return error_codes.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and group.is_in(EMPTY):
            return error_codes.NONE
        if generation_id >= 0 or member_id or group_instance_id is not None:
            try:
                group.validate_member(member_id, group_instance_id)
            except GroupError as error:
                return error.error_code
            if generation_id != group.generation_id:
                return error_codes.ILLEGAL_GENERATION
        return error_codes.NONE

    async def commit_transactional_offsets(self, group_id: str, producer_id: int, producer_epoch: int,
                                           generation_id: int, member_id: str, group_instance_id: str | None,
                                           entries: list[tuple[str, int, int, int, str | None]]) -> int:
        """TxnOffsetCommit (Kafka's commitTransactionalOffset through the runtime's transactional
        write): validate, write ``entries`` (topic, partition, offset, leader epoch, metadata;
        already checked for size) as one transactional batch of the producer's, hold them
        pending. Returns the error for all of them: the group's verdict, the partition's
        availability, INVALID_PRODUCER_EPOCH for an epoch older than the partition's, NONE once
        the batch is fsynced. With no entries only the validation runs."""
        from .persistence import offset_commit_key, offset_commit_value

        def operation() -> CoordinatorResult:
            error = self.validate_transactional_offset_commit(group_id, generation_id, member_id, group_instance_id)
            if error != error_codes.NONE:
                return CoordinatorResult([], error)
            now = self.now_ms()
            records = [(offset_commit_key(group_id, topic, partition),
                        offset_commit_value(CommittedOffset(offset, leader_epoch, metadata or "", now)))
                       for topic, partition, offset, leader_epoch, metadata in entries]
            if not records and group_id not in self.groups and group_id not in self.consumer.groups:
                self._get_or_create(group_id)  # Kafka creates the simple group at validation
            return CoordinatorResult(records, error_codes.NONE)

        error, verdict = await self.runtime.write_transactional(group_id, producer_id, producer_epoch, operation)
        return error if error != error_codes.NONE else verdict

    async def complete_transaction(self, partition: int, producer_id: int, producer_epoch: int,
                                   coordinator_epoch: int, committed: bool) -> int:
        """End ``producer_id``'s transaction in ``__consumer_offsets`` partition ``partition``
        (Kafka's GroupCoordinatorService.completeTransaction): append its COMMIT
        (``committed``) or ABORT marker through the runtime, wait until it is fsynced, and make
        the producer's pending offsets of that partition committed or drop them. Returns a
        Kafka error code, NONE on success; see ``CoordinatorRuntime.complete_transaction`` for
        the others (WriteTxnMarkers answers COORDINATOR_NOT_AVAILABLE,
        COORDINATOR_LOAD_IN_PROGRESS and NOT_COORDINATOR as NOT_LEADER_OR_FOLLOWER, as Kafka's
        KafkaApis does)."""
        return await self.runtime.complete_transaction(partition, producer_id, producer_epoch, coordinator_epoch,
                                                       committed)

    # --- administration ---

    def list_groups(self) -> list[ClassicGroup]:
        """The classic groups ListGroups names: not Dead, and not of a partition whose load
        failed (Kafka skips a partition it is not the coordinator of)."""
        return [group for group in self.groups.values() if not group.is_in(DEAD) and self.is_loaded(group.group_id)]

    def delete_group(self, group_id: str) -> int:
        if (error := self.availability(group_id)) != error_codes.NONE:
            return error
        if group_id in self.consumer.groups:
            return self.consumer.delete(group_id)
        group = self.groups.get(group_id)
        if group is None or group.is_in(DEAD):
            return error_codes.GROUP_ID_NOT_FOUND
        if not group.is_in(EMPTY):
            return error_codes.NON_EMPTY_GROUP
        offset_keys = self.all_offset_keys(group_id)
        if self.store is not None:
            from .persistence import group_metadata_key
            records = self._offset_tombstones(group_id, offset_keys)
            records.append((group_metadata_key(group_id), None))
            error = self.runtime.append(group_id, records)
            if error != error_codes.NONE:
                return error
        self.forget_offsets(group_id, offset_keys)
        for member_id in list(group.pending_join_members):
            self.timer.cancel(self._heartbeat_key(group, member_id))
        group.transition_to(DEAD, self.now_ms())
        del self.groups[group_id]
        self.offsets.pop(group_id, None)
        log.info("group deleted", group=group_id)
        return error_codes.NONE


def _inconsistent(requested: str | None, current: str | None) -> bool:
    return requested is not None and current is not None and requested != current
