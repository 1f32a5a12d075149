"""The coordinator runtime: what every coordinator needs around its own state machine, shaped
like Kafka's ``CoordinatorRuntime`` / ``CoordinatorShard`` (coordinator-common module).

A coordinator (groups today; transactions and share groups next) is a *shard*: a state machine
fed by records. ``shard.replay(record)`` applies one decoded record; an operation computes the
records to write and the response to give (:class:`CoordinatorResult`). The runtime owns the
rest, the same for every coordinator:

* **the log**: an internal compacted topic (:class:`CoordinatorTopic`: its name, the broker keys
  of its partition count, segment size and load buffer, its fixed topic configs, its record
  serde), created on the first write as Kafka creates it on the first coordinator lookup
  (:class:`CoordinatorLog`); which partition owns a key is Kafka's hash
  (:func:`coordinator_partition`);
* **load**: every partition is replayed in the background, one bounded slice per turn of the
  event loop, while the broker already listens; a key of a partition not yet replayed answers
  COORDINATOR_LOAD_IN_PROGRESS, one whose replay failed or that was unloaded NOT_COORDINATOR,
  every key COORDINATOR_NOT_AVAILABLE once the runtime shuts down (:meth:`availability`);
* **writes**: :meth:`CoordinatorRuntime.write` runs an operation, appends its records to the
  key's partition as one batch, replays them into the shard and answers once they are fsynced.
  A refused append leaves the shard as it was (the records were never replayed: Kafka reverts
  its state to the last committed offset); an append whose fsync fails unloads the partition,
  dropping what it replayed, as the partition can no longer be trusted. Operations need no
  lock: an operation, its append and its replay run in one step of the event loop, so no other
  operation sees half of it. :meth:`append` is the lower step the group coordinator uses: it
  changes its state itself (classic groups and offsets once the append succeeded; KIP-848
  consumer groups before it, not rolled back) and answers at once, without an fsync;
* **transactional writes** (Kafka's ``scheduleTransactionalWriteOperation`` /
  ``scheduleTransactionCompletion``): :meth:`write_transactional` appends an operation's records
  as one *transactional* batch of a producer (its id and epoch, the transactional flag; the
  storage layer refuses an older epoch, INVALID_PRODUCER_EPOCH), replays them with
  ``shard.replay_transactional``, and answers once they are fsynced;
  :meth:`complete_transaction` appends the producer's COMMIT or ABORT marker (a control batch)
  to one partition, replays it with ``shard.replay_end_transaction`` and answers once it is
  fsynced. The load replays the same from the log: a record of a transactional batch goes to
  ``replay_transactional`` with the batch's producer, a marker to ``replay_end_transaction``;
  a shard without those methods (one that never writes transactionally) gets its records
  through ``replay`` and never sees a marker, as before;
* **timers**: :meth:`schedule` arms a write operation to run after a delay, bound to the
  partition of its key: unloading the partition cancels it (Kafka's ``CoordinatorTimer``);
* **load and unload**: :meth:`load_partition` / :meth:`unload_partition` move one partition's
  ownership in or out, telling the shard (``on_loaded`` / ``on_unloaded``).

Where odradek departs from Kafka: one shard object holds the state of every partition of the
topic (a single node owns them all), instead of one shard per partition; the shard is told
which partition was loaded or unloaded.

Ownership: a runtime, its log and its timer belong to one coordinator and are used on the
broker's event loop only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Protocol

import structlog

from odradek.protocol import error_codes
from odradek.protocol.errors import ProtocolError
from odradek.protocol.records.batch import (Record, build_batch, build_end_txn_marker_batch, iter_batches,
                                            parse_control_record)
from odradek.protocol.records.header import NO_PRODUCER_EPOCH, NO_PRODUCER_ID
from odradek.storage.errors import KafkaStorageError
from odradek.storage.validation import ORIGIN_COORDINATOR

from .timer import LoopTimer

log = structlog.get_logger("odradek.coordinators")

# Records replayed per slice of the load: the event loop serves requests between slices, so a
# slice must stay short (a few milliseconds of decoding), whatever the log's size.
LOAD_SLICE_RECORDS = 1000

RecordPair = tuple[bytes, bytes | None]  # (key, value); a None value is a tombstone

# Kafka's coordinator writes its transactional batches with base sequence 0 (the storage layer
# checks no sequence for the broker's own appends, only the producer epoch).
COORDINATOR_BASE_SEQUENCE = 0

# The storage layer's refusals of a producer's batch or marker, which a transactional write
# answers as they are (Kafka's CoordinatorOperationExceptionHelper passes them through).
PRODUCER_ERRORS = frozenset({error_codes.INVALID_PRODUCER_EPOCH, error_codes.PRODUCER_FENCED,
                             error_codes.INVALID_TXN_STATE, error_codes.TRANSACTION_COORDINATOR_FENCED,
                             error_codes.OUT_OF_ORDER_SEQUENCE_NUMBER, error_codes.INVALID_PRODUCER_ID_MAPPING})


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One thing a coordinator partition's log says, as the load reads it: a record (``key``,
    ``value``) of a batch written by ``producer_id`` (-1: not a producer's) and whether that
    batch is transactional; or, with ``marker`` set, a producer's COMMIT/ABORT marker (the
    ``ControlRecord``; ``key`` and ``value`` None)."""

    key: bytes | None
    value: bytes | None
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    transactional: bool = False
    marker: Any = None


def coordinator_partition(key: str, partition_count: int) -> int:
    """The partition of a coordinator topic (``__consumer_offsets``, ``__transaction_state``)
    that owns ``key``: Kafka's ``Utils.abs(key.hashCode()) % partitionCount``, Java's String
    hash over UTF-16."""
    hash_value = 0
    encoded = key.encode("utf-16-be")
    for index in range(0, len(encoded), 2):
        hash_value = (31 * hash_value + int.from_bytes(encoded[index:index + 2], "big")) & 0xFFFFFFFF
    if hash_value >= 2**31:
        hash_value -= 2**32
    absolute = 0 if hash_value == -2**31 else abs(hash_value)
    return absolute % partition_count


@dataclass(frozen=True, slots=True)
class CoordinatorTopic:
    """A coordinator's internal topic: its name, the broker keys that size it, its record serde.

    ``decode(key, value)`` turns a record into what the shard's ``replay`` takes (None: a kind
    of record this coordinator does not keep); it raises a ProtocolError for bytes that are not
    such a record (skipped at load with a warning)."""

    name: str
    partitions_key: str        # e.g. offsets.topic.num.partitions
    segment_bytes_key: str     # e.g. offsets.topic.segment.bytes
    load_buffer_key: str       # e.g. offsets.load.buffer.size
    decode: Callable[[bytes, bytes | None], Any]
    fixed_configs: tuple[tuple[str, str], ...] = (("cleanup.policy", "compact"),)
    # Topic configs taken from broker keys at creation, (topic key, broker key), beside segment.bytes.
    broker_configs: tuple[tuple[str, str], ...] = ()

    def topic_configs(self, config) -> dict[str, str]:
        """The topic config overrides the topic is created with (Kafka's)."""
        return {**dict(self.fixed_configs), "segment.bytes": str(config[self.segment_bytes_key]),
                **{topic_key: str(config[broker_key]) for topic_key, broker_key in self.broker_configs}}


class CoordinatorShard(Protocol):
    """What the runtime needs of a coordinator's state machine."""

    def replay(self, record: Any) -> None:
        """Apply one decoded record (``CoordinatorTopic.decode``'s result, None included)."""

    def on_loaded(self, partition: int) -> None:
        """Every record of ``partition`` has been replayed: arm its timers, serve its keys."""

    def on_unloaded(self, partition: int) -> None:
        """``partition`` is no longer owned: drop its state, answer its parked requests."""

    # Optional, for a coordinator that writes transactionally (the group coordinator's
    # TxnOffsetCommit): without them transactional records go to ``replay`` and markers are
    # not seen.
    #
    # def replay_transactional(self, record, producer_id: int, producer_epoch: int) -> None:
    #     """Apply one record of ``producer_id``'s open transaction (pending until its marker)."""
    #
    # def replay_end_transaction(self, partition: int, producer_id: int, producer_epoch: int,
    #                            committed: bool) -> None:
    #     """``producer_id``'s COMMIT (``committed``) or ABORT marker in ``partition``."""


@dataclass(slots=True)
class CoordinatorResult:
    """What an operation returns: the records to write (in one batch) and the response to give
    once they are durable."""

    records: list[RecordPair] = field(default_factory=list)
    response: Any = None


class CoordinatorLog:
    """A coordinator topic's partitions in the broker's storage: created on the first append,
    appended to as the leader, fsynced on demand, read back at load."""

    def __init__(self, broker, topic: CoordinatorTopic):
        self.broker = broker
        self.topic = topic

    def partition_count(self) -> int:
        """How many partitions the coordinator's keys are spread over (the topic's count once it
        exists, the ``partitions_key`` setting until then)."""
        existing = self.broker.topics.get(self.topic.name)
        if existing is not None:
            return existing.partition_count
        return self.broker.config[self.topic.partitions_key]

    def _ensure_topic(self):
        existing = self.broker.topics.get(self.topic.name)
        if existing is None:
            existing = self.broker.create_topic(self.topic.name, self.broker.config[self.topic.partitions_key], 1,
                                                configs=self.topic.topic_configs(self.broker.config))
        return existing

    def append(self, key: str, records: list[RecordPair], now_ms: int,
               producer: tuple[int, int] | None = None) -> int | None:
        """Append one batch of records to ``key``'s partition; the offset after it (what
        :meth:`wait_durable` takes). ``producer`` (id, epoch) makes it a transactional batch of
        that producer's. Raises the storage layer's error when the disk refuses, or when the
        producer's epoch is older than the partition knows (INVALID_PRODUCER_EPOCH)."""
        if not records:
            return None
        existing = self._ensure_topic()
        producer_id, producer_epoch = producer if producer is not None else (NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
        batch = build_batch([Record(offset_delta=index, timestamp_delta=0, key=record_key, value=value)
                             for index, (record_key, value) in enumerate(records)], base_timestamp=now_ms,
                            producer_id=producer_id, producer_epoch=producer_epoch,
                            base_sequence=COORDINATOR_BASE_SEQUENCE if producer is not None else -1,
                            transactional=producer is not None)
        return self._append_to(coordinator_partition(key, existing.partition_count), batch)

    def append_end_transaction_marker(self, index: int, producer_id: int, producer_epoch: int,
                                      coordinator_epoch: int, committed: bool, now_ms: int) -> int:
        """Append ``producer_id``'s COMMIT or ABORT marker to partition ``index``; the offset
        after it. Raises the storage layer's error: an older producer epoch
        (INVALID_PRODUCER_EPOCH), an older coordinator epoch than the partition's last marker of
        the producer (TRANSACTION_COORDINATOR_FENCED), a disk fault."""
        batch = build_end_txn_marker_batch(committed, producer_id=producer_id, producer_epoch=producer_epoch,
                                           coordinator_epoch=coordinator_epoch, timestamp=now_ms)
        return self._append_to(index, batch)

    def has_partition(self, index: int) -> bool:
        """The topic exists and has partition ``index`` (a marker is never what creates it)."""
        return self.broker.topics.get(self.topic.name) is not None and \
            self.broker.partition(self.topic.name, index) is not None

    def _append_to(self, index: int, batch: bytes) -> int:
        partition = self.broker.partition(self.topic.name, index)
        if partition is None:
            raise KafkaStorageError(f"{self.topic.name}-{index} does not exist")
        return partition.append(batch, origin=ORIGIN_COORDINATOR).last_offset + 1

    async def wait_durable(self, key: str, end_offset: int) -> None:
        """Return once every record of ``key``'s partition below ``end_offset`` is fsynced (the
        partition's grouped flushes, as an acks=all produce); raises when the fsync fails."""
        await self.wait_durable_at(coordinator_partition(key, self.partition_count()), end_offset)

    async def wait_durable_at(self, index: int, end_offset: int) -> None:
        """:meth:`wait_durable` for partition ``index``."""
        synced = self.broker.partition(self.topic.name, index).wait_durable(end_offset)
        if synced is not None:
            await synced

    def replay_slices(self, shard: CoordinatorShard, index: int):
        """Replay partition ``index`` into ``shard``, as a generator that yields after each
        slice of LOAD_SLICE_RECORDS records; the log is read ``load_buffer_key`` bytes at a
        time (Kafka's load batch). Nothing to replay if the partition (or the topic) does not
        exist. A read error propagates from ``next()``."""
        if self.broker.topics.get(self.topic.name) is None:
            return
        partition = self.broker.partition(self.topic.name, index)
        if partition is None:
            return
        if partition.offline:  # its log could not be opened: the partition fails to load (NOT_COORDINATOR)
            raise KafkaStorageError(f"{self.topic.name}-{index} is offline")
        in_slice = 0
        replay_transactional = getattr(shard, "replay_transactional", None)
        replay_end_transaction = getattr(shard, "replay_end_transaction", None)
        for entry in _records_of(partition.log, self.broker.config[self.topic.load_buffer_key]):
            if entry.marker is not None:
                if replay_end_transaction is not None:
                    replay_end_transaction(index, entry.producer_id, entry.producer_epoch, entry.marker.is_commit)
                continue
            try:
                decoded = self.topic.decode(entry.key, entry.value)
            except ProtocolError as error:
                log.warning("skipping an unreadable coordinator record", topic=self.topic.name, partition=index,
                            error=str(error))
                continue
            if entry.transactional and entry.producer_id >= 0 and replay_transactional is not None:
                replay_transactional(decoded, entry.producer_id, entry.producer_epoch)
            else:
                shard.replay(decoded)
            in_slice += 1
            if in_slice >= LOAD_SLICE_RECORDS:
                in_slice = 0
                yield


def _records_of(partition_log, read_bytes: int):
    """A :class:`LogEntry` for every record and every transaction marker of a partition log, in
    offset order, read ``read_bytes`` at a time (at least one batch); the end is the log end
    offset when each read starts. A control batch that is not a producer's COMMIT/ABORT marker
    (emptied by the cleaner, another control type, an unreadable one) carries nothing for a
    coordinator. A batch that does not parse (a damaged segment) is skipped with the rest of
    its segment, named in a warning: the coordinator loads what it can, as the records after it
    may be intact."""
    offset = partition_log.log_start_offset
    while offset < (end := partition_log.log_end_offset):
        next_offset = offset
        try:
            result = partition_log.read(offset, read_bytes, max_offset=end, min_one_batch=True)
            if not result.regions:
                return
            data = b"".join(region.read() for region in result.regions)
            for batch in iter_batches(data, allow_incomplete=False):
                next_offset = batch.next_offset
                if batch.is_control:
                    if batch.base_offset >= offset and (marker := _end_transaction_marker(batch)) is not None:
                        yield LogEntry(None, None, batch.producer_id, batch.producer_epoch, True, marker)
                    continue
                for record in batch.records:
                    if batch.offset_of(record) >= offset and record.key is not None:
                        yield LogEntry(bytes(record.key), bytes(record.value) if record.value is not None else None,
                                       batch.producer_id, batch.producer_epoch, batch.is_transactional)
        except ProtocolError as error:
            if isinstance(error, KafkaStorageError):
                raise
            resume = partition_log.next_segment_base_offset(max(next_offset, offset))
            log.warning("skipping an unreadable part of a coordinator topic", partition=partition_log.partition,
                        offset=max(next_offset, offset), resumes_at=resume, error=str(error))
            if resume is None:
                return
            offset = resume
            continue
        if next_offset <= offset:
            return
        offset = next_offset


def _end_transaction_marker(batch):
    """The COMMIT/ABORT marker of a control batch, or None (no producer, no record, another
    control type, or a marker that does not parse, which is logged)."""
    if batch.producer_id < 0 or not batch.records:
        return None
    try:
        marker = parse_control_record(batch.records[0])
    except ProtocolError as error:
        log.warning("skipping an unreadable transaction marker", offset=batch.base_offset, error=str(error))
        return None
    return marker if marker.coordinator_epoch is not None else None


def append_error_code(error: Exception) -> int:
    """Kafka's mapping of a coordinator's append errors: storage trouble -> NOT_COORDINATOR,
    anything else -> COORDINATOR_NOT_AVAILABLE."""
    if getattr(error, "error_code", None) == error_codes.KAFKA_STORAGE_ERROR:
        return error_codes.NOT_COORDINATOR
    return error_codes.COORDINATOR_NOT_AVAILABLE


def _error_code_of(error: Exception) -> int:
    """The Kafka error code an exception stands for, untranslated (Kafka's Errors.forException):
    what it carries, KAFKA_STORAGE_ERROR for an OSError, else UNKNOWN_SERVER_ERROR."""
    code = getattr(error, "error_code", None)
    if code is not None:
        return code
    return error_codes.KAFKA_STORAGE_ERROR if isinstance(error, OSError) else error_codes.UNKNOWN_SERVER_ERROR


def transactional_append_error_code(error: Exception) -> int:
    """A transactional write's or a marker's append error: the producer's refusals as they are
    (an older producer epoch is INVALID_PRODUCER_EPOCH, as Kafka answers it), anything else as
    :func:`append_error_code`."""
    code = getattr(error, "error_code", None)
    return code if code in PRODUCER_ERRORS else append_error_code(error)


class CoordinatorRuntime:
    """One coordinator's log, load, writes, timers and partition ownership (module doc).

    ``build_shard(runtime)`` makes the shard; the log is attached by :meth:`load` (None until
    then: nothing is persisted, as in unit tests). A log is anything with ``partition_count()``,
    ``append(key, records, now_ms)``, ``replay_slices(shard, index)`` and, for :meth:`write`,
    ``wait_durable(key, end_offset)``; for the transactional writes also
    ``append(key, records, now_ms, (producer_id, producer_epoch))``, ``has_partition(partition)``,
    ``append_end_transaction_marker(...)`` and ``wait_durable_at(partition, end_offset)``:
    :class:`CoordinatorLog` on the broker."""

    def __init__(self, topic: CoordinatorTopic, build_shard: Callable[["CoordinatorRuntime"], CoordinatorShard],
                 timer=None):
        self.topic = topic
        self.timer = timer or LoopTimer()
        self.log = None
        self.active = True
        # Partitions the keys are spread over, those still being replayed, those whose replay
        # failed and those not owned (unloaded): the last three answer for their keys.
        self.partition_count = 1
        self.loading: set[int] = set()
        self.failed_partitions: set[int] = set()
        self.unloaded: set[int] = set()
        self._timer_keys: dict[int, set[Hashable]] = {}  # partition -> keys armed by schedule()
        self.shard = build_shard(self)

    def now_ms(self) -> int:
        return self.timer.now_ms()

    def partition_of(self, key: str) -> int:
        return coordinator_partition(key, self.partition_count)

    # --- load and unload ---

    def load(self, coordinator_log) -> None:
        """Persist to ``coordinator_log`` from now on and replay what it holds in the background,
        one slice per timer turn, as Kafka's runtime loads each partition asynchronously; until
        its partition is replayed a key answers COORDINATOR_LOAD_IN_PROGRESS, and a partition
        whose replay fails answers NOT_COORDINATOR, as a coordinator that failed to load."""
        self.log = coordinator_log
        self.partition_count = coordinator_log.partition_count()
        partitions = range(self.partition_count)
        self.loading = set(partitions)
        self._next_slice(("load",), self._replay(coordinator_log, partitions))

    def load_partition(self, partition: int) -> None:
        """Take ``partition`` (back) over: replay it in the background, as at start."""
        self.unloaded.discard(partition)
        self.failed_partitions.discard(partition)
        self.loading.add(partition)
        self._next_slice(("load", partition), self._replay(self.log, [partition]))

    def unload_partition(self, partition: int) -> None:
        """Give ``partition`` up: its keys answer NOT_COORDINATOR, its timers stop, the shard
        drops its state (Kafka's scheduleUnloadOperation)."""
        self.unloaded.add(partition)
        self.loading.discard(partition)
        for key in self._timer_keys.pop(partition, ()):
            self.timer.cancel(key)
        self.shard.on_unloaded(partition)

    def _replay(self, coordinator_log, partitions: Iterable[int] | None = None):
        """Replay each partition (None: every one) in turn, yielding between slices."""
        partitions = range(self.partition_count) if partitions is None else partitions
        started = self.now_ms()
        for partition in partitions:
            slices = 0
            try:
                if coordinator_log is not None:
                    for _ in coordinator_log.replay_slices(self.shard, partition):
                        slices += 1
                        yield
                        if partition not in self.loading:
                            break  # unloaded (or shut down) meanwhile
            except Exception as error:  # noqa: BLE001 - one unreadable partition must not stop the rest
                log.error("could not load a coordinator partition", topic=self.topic.name, partition=partition,
                          error=repr(error))
                self.failed_partitions.add(partition)
                self.loading.discard(partition)
                continue
            if partition not in self.loading:
                continue
            self.loading.discard(partition)
            self.shard.on_loaded(partition)
            if slices:
                yield  # the partition's keys are served before the next partition's first slice
        log.info("coordinator partitions loaded", topic=self.topic.name, elapsed_ms=self.now_ms() - started)

    def _next_slice(self, timer_key, slices) -> None:
        # A zero-delay timer: the event loop serves what is waiting before the next slice.
        self.timer.schedule(timer_key, 0, lambda: self._replay_slice(timer_key, slices))

    def _replay_slice(self, timer_key, slices) -> None:
        if next(slices, StopIteration) is not StopIteration:
            self._next_slice(timer_key, slices)

    def availability(self, key: str | None = None) -> int:
        """Whether the runtime serves ``key`` now (None: every key, as a listing needs):
        COORDINATOR_NOT_AVAILABLE while shutting down, COORDINATOR_LOAD_IN_PROGRESS while the
        key's partition (any, for None) is being replayed, NOT_COORDINATOR if its replay failed
        or it is not owned, else NONE. An empty key is the caller's to refuse (Kafka checks it
        before looking for the partition)."""
        if not self.active:
            return error_codes.COORDINATOR_NOT_AVAILABLE
        if key is None:
            return error_codes.COORDINATOR_LOAD_IN_PROGRESS if self.loading else error_codes.NONE
        if not key or not (self.loading or self.failed_partitions or self.unloaded):
            return error_codes.NONE
        return self.partition_availability(self.partition_of(key))

    def partition_availability(self, partition: int) -> int:
        """:meth:`availability` of partition ``partition`` itself; one the topic does not have
        is NOT_COORDINATOR (Kafka: a partition this coordinator does not host)."""
        if not self.active:
            return error_codes.COORDINATOR_NOT_AVAILABLE
        if not 0 <= partition < self.partition_count:
            return error_codes.NOT_COORDINATOR
        if partition in self.loading:
            return error_codes.COORDINATOR_LOAD_IN_PROGRESS
        if partition in self.failed_partitions or partition in self.unloaded:
            return error_codes.NOT_COORDINATOR
        return error_codes.NONE

    def is_loaded(self, key: str) -> bool:
        """The key's partition has been replayed and is owned: its timers and cleanup may run."""
        if not (self.loading or self.failed_partitions or self.unloaded):
            return True
        partition = self.partition_of(key)
        return partition not in self.loading and partition not in self.failed_partitions \
            and partition not in self.unloaded

    # --- writes ---

    def append(self, key: str, records: list[RecordPair]) -> int:
        """Append records for ``key`` as one batch of its partition; the Kafka error code to
        answer when the log refuses (:func:`append_error_code`). Nothing to do without a log."""
        return self._append(key, records)[0]

    def _append(self, key: str, records: list[RecordPair],
                producer: tuple[int, int] | None = None) -> tuple[int, int | None]:
        """(error code, the end offset to wait for; None when nothing was appended)."""
        if self.log is None or not records:
            return error_codes.NONE, None
        try:
            if producer is None:
                return error_codes.NONE, self.log.append(key, records, self.now_ms())
            return error_codes.NONE, self.log.append(key, records, self.now_ms(), producer)
        except Exception as error:
            log.error("could not write to a coordinator topic", topic=self.topic.name, key=key, error=repr(error))
            return (append_error_code(error) if producer is None else transactional_append_error_code(error)), None

    async def write(self, key: str, operation: Callable[[], CoordinatorResult]) -> tuple[int, Any]:
        """Run a write operation for ``key`` (Kafka's scheduleWriteOperation): (error code,
        response). The records are appended, replayed into the shard (later operations see
        them at once), and the response is given once they are fsynced. A refused append
        answers its error with the shard untouched; a failed fsync unloads the partition."""
        error, end_offset, response = self._run(key, operation)
        if error == error_codes.NONE and end_offset is not None:
            error = await self._durable(key, end_offset)
        return error, (response if error == error_codes.NONE else None)

    async def write_transactional(self, key: str, producer_id: int, producer_epoch: int,
                                  operation: Callable[[], CoordinatorResult]) -> tuple[int, Any]:
        """Run a write operation for ``key`` inside ``producer_id``'s transaction (Kafka's
        scheduleTransactionalWriteOperation): (error code, response). The records are appended
        as one transactional batch of the producer (id, epoch), replayed with the shard's
        ``replay_transactional`` (pending until the producer's marker, see
        :meth:`complete_transaction`), and the response is given once they are fsynced. A
        producer epoch older than the partition knows is INVALID_PRODUCER_EPOCH, with the shard
        untouched. A failed fsync answers its error but does not unload: the shard keeps the
        records, as it keeps those of the group coordinator's appends, which do not wait for an
        fsync at all (the client retries or aborts the transaction; either is safe)."""
        error, end_offset, response = self._run(key, operation, (producer_id, producer_epoch))
        if error == error_codes.NONE and end_offset is not None:
            error = await self._flushed(self.partition_of(key), end_offset, append_error_code)
        return error, (response if error == error_codes.NONE else None)

    async def complete_transaction(self, partition: int, producer_id: int, producer_epoch: int,
                                   coordinator_epoch: int, committed: bool) -> int:
        """Write ``producer_id``'s end-transaction marker, COMMIT (``committed``) or ABORT, to
        ``partition`` of the topic and apply it (Kafka's scheduleTransactionCompletion): the
        shard's ``replay_end_transaction`` makes what the transaction wrote there visible or
        drops it. Returns once the marker is fsynced: NONE, or the error as Kafka's runtime
        gives it (not translated: UNKNOWN_TOPIC_OR_PARTITION for a partition the topic does not
        have, the topic not created yet included, as Kafka's WriteTxnMarkers answers before it
        asks the coordinator: nothing can be pending there; COORDINATOR_LOAD_IN_PROGRESS,
        NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE while the partition is not served; the storage layer's
        refusal of the marker, INVALID_PRODUCER_EPOCH for an older producer epoch,
        TRANSACTION_COORDINATOR_FENCED for an older coordinator epoch than the partition's last
        marker of the producer; KAFKA_STORAGE_ERROR when the disk fails). A marker for a
        producer with nothing pending is written and changes nothing, as in Kafka."""
        if self.log is not None and not self.log.has_partition(partition):
            return error_codes.UNKNOWN_TOPIC_OR_PARTITION
        if (error := self.partition_availability(partition)) != error_codes.NONE:
            return error
        end_offset = None
        if self.log is not None:
            try:
                end_offset = self.log.append_end_transaction_marker(partition, producer_id, producer_epoch,
                                                                    coordinator_epoch, committed, self.now_ms())
            except Exception as failure:  # noqa: BLE001 - the storage layer's refusal is the answer
                log.warning("could not write a transaction marker", topic=self.topic.name, partition=partition,
                            producer_id=producer_id, error=repr(failure))
                return _error_code_of(failure)
        replay_end_transaction = getattr(self.shard, "replay_end_transaction", None)
        if replay_end_transaction is not None:
            replay_end_transaction(partition, producer_id, producer_epoch, committed)
        if end_offset is None:
            return error_codes.NONE
        return await self._flushed(partition, end_offset, _error_code_of)

    async def _flushed(self, partition: int, end_offset: int, error_code_of) -> int:
        """Wait until the records of ``partition`` below ``end_offset`` are fsynced; NONE, or
        ``error_code_of(the failure)``. Nothing is unloaded (see :meth:`write_transactional`)."""
        try:
            await self.log.wait_durable_at(partition, end_offset)
        except Exception as failure:  # noqa: BLE001 - whatever the flush raised, the records are not durable
            log.error("a coordinator write did not become durable", topic=self.topic.name, partition=partition,
                      error=repr(failure))
            return error_code_of(failure)
        return error_codes.NONE

    def _run(self, key: str, operation: Callable[[], CoordinatorResult],
             producer: tuple[int, int] | None = None) -> tuple[int, int | None, Any]:
        """The synchronous half of a write: (error code, end offset to wait for, response).
        ``producer`` (id, epoch): a transactional write of that producer's."""
        if (error := self.availability(key)) != error_codes.NONE:
            return error, None, None
        result = operation()
        error, end_offset = self._append(key, result.records, producer)
        if error != error_codes.NONE:
            return error, None, None
        replay_transactional = getattr(self.shard, "replay_transactional", None) if producer is not None else None
        for record_key, value in result.records:
            decoded = self.topic.decode(record_key, value)
            if replay_transactional is not None:
                replay_transactional(decoded, *producer)
            else:
                self.shard.replay(decoded)
        return error_codes.NONE, end_offset, result.response

    async def _durable(self, key: str, end_offset: int) -> int:
        """Wait until the records below ``end_offset`` are fsynced; on failure the partition is
        unloaded (the shard drops the records it replayed, which the log may not hold after a
        crash) and the append error code is returned."""
        try:
            await self.log.wait_durable(key, end_offset)
        except Exception as failure:  # noqa: BLE001 - whatever the flush raised, the records are not durable
            log.error("a coordinator write did not become durable", topic=self.topic.name, key=key,
                      error=repr(failure))
            if self.partition_of(key) not in self.unloaded:
                self.unload_partition(self.partition_of(key))
            return append_error_code(failure)
        return error_codes.NONE

    # --- timers ---

    def schedule(self, key: str, timer_key: Hashable, delay_ms: int,
                 operation: Callable[[], CoordinatorResult]) -> None:
        """Run the write operation ``operation`` for ``key`` in ``delay_ms`` (replacing any timer
        of the same ``timer_key``), unless ``key``'s partition is unloaded first (Kafka's
        CoordinatorTimer). A write that fails is logged; the operation may arm itself again."""
        partition = self.partition_of(key)
        self._timer_keys.setdefault(partition, set()).add(timer_key)

        def fire() -> None:
            self._timer_keys.get(partition, set()).discard(timer_key)
            if not self.is_loaded(key) or not self.active:
                return
            error, end_offset, _ = self._run(key, operation)
            if error != error_codes.NONE:
                log.warning("a coordinator timer's write failed", topic=self.topic.name, key=key,
                            timer=repr(timer_key), error=error)
            elif end_offset is not None:
                asyncio.ensure_future(self._durable(key, end_offset))

        self.timer.schedule(timer_key, delay_ms, fire)

    def cancel(self, timer_key: Hashable) -> None:
        self.timer.cancel(timer_key)
        for keys in self._timer_keys.values():
            keys.discard(timer_key)

    # --- lifecycle ---

    def shutdown(self) -> None:
        """Stop serving (every key answers COORDINATOR_NOT_AVAILABLE) and stop every timer."""
        self.active = False
        self.timer.cancel_all()
        self._timer_keys.clear()
