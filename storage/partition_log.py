"""The log of one partition: a directory ``<topic>-<partition>`` of segments.

Directory contents (Kafka's names): segments ``<base>.log``/``.index``/``.timeindex`` (see
:mod:`odradek.storage.segment`), ``partition.metadata`` (topic id) and
``leader-epoch-checkpoint`` (see :mod:`odradek.storage.checkpoints`). Files ending in
``.deleted`` are leftovers of an interrupted deletion and are removed on open.

Offsets this object owns (all on one node today; replication will move some of them):

* ``log_start_offset`` — the first offset a consumer may read (raised by retention and
  DeleteRecords; may sit inside the first segment);
* ``log_end_offset`` (LEO) — the offset the next appended record gets;
* ``high_watermark`` — stored here, advanced by the caller (:meth:`update_high_watermark`);
  on one node the broker sets it to the LEO once an append is durable enough; reads are
  bounded by it by default;
* ``recovery_point`` — every offset below it is fsynced with its indexes; after an unclean
  shutdown only segments from the one holding it onwards are rescanned (their indexes rebuilt);
* ``durable_offset`` — every record below it is fsynced (at or above the recovery point): a
  :meth:`prepare_sync` makes only the ``.log`` files durable, the one thing recovery cannot
  rebuild; what lies between the two is found again by the rescan from the recovery point;
* ``last_stable_offset`` (LSO) — the high watermark, or below it the first offset of the oldest
  transaction not yet complete below the high watermark (:meth:`ProducerStateManager.first_unstable_offset`):
  read_committed reads stop there, and their aborted transactions come from the ``.txnindex``
  files (:meth:`aborted_transactions`, or ``read(..., with_aborted_transactions=True)``).

Appending is validate-then-commit: :func:`~odradek.storage.validation.validate_batches`
checks the payload without touching anything, then :meth:`_commit` alone patches offsets
(and LogAppendTime) into the payload's bytes and writes them. An I/O error while writing
leaves the log as it was and raises :class:`~odradek.storage.errors.KafkaStorageError`.

Durability is the caller's choice: :meth:`append` returns once the bytes are in the OS;
:meth:`flush` fsyncs everything appended so far, so a broker can append a burst of produce
requests and cover them all with one flush before acknowledging (group commit).
``flush.messages`` / ``flush.ms`` trigger flushes on their own (``flush.ms`` when the caller
calls :meth:`flush_if_due` from a timer).
A flush can also be split so that its fsyncs run in another thread while the owner keeps
appending: :meth:`prepare_flush` (on the owner: writes pending index entries, returns a
:class:`FlushTicket` of duplicated descriptors), :meth:`FlushTicket.sync` (any thread: the
fsyncs, touching no log state), :meth:`complete_flush` (on the owner: advances the recovery
point to the LEO of the prepare, unless a truncation came in between: truncation wins).
:meth:`prepare_sync` / :meth:`complete_sync` are the same for the records alone: fdatasync of
the ``.log`` files (and of the directory when a segment's file names are new), advancing
:attr:`durable_offset`; a produce with acks=all waits for that (Kafka's recovery point, too,
advances only when segments roll or the log is flushed, and its indexes are rebuilt by recovery).

The in-memory backend is this same class over a
:class:`~odradek.storage.fs.MemoryFileSystem`.

Thread safety: single-threaded, owned by the broker's event loop (the partition layer); only
:meth:`FlushTicket.sync` may run in another thread (it touches no log state). Read
results are file regions; a region's bytes stay valid while its file lives (segment deletion
unlinks files, open file objects keep them readable), but a truncation may shorten them.
"""

from __future__ import annotations

import bisect
import os
import random
import functools
import time
import uuid

import structlog

from odradek.protocol.errors import ProtocolError
from odradek.protocol.records.header import (
    TIMESTAMP_TYPE_MASK,
    patch_base_offset,
    patch_max_timestamp,
    patch_partition_leader_epoch,
)

from .checkpoints import CorruptCheckpoint, read_partition_metadata, write_partition_metadata
from .cleaner import CLEANED_SUFFIX, SWAP_SUFFIX, complete_interrupted_swaps, rename_all
from .config import LogConfig
from .deletions import PendingDeletions
from .errors import KafkaStorageError, OffsetOutOfRange
from .indexes import NO_TIMESTAMP, CorruptIndex
from .leader_epochs import LEADER_EPOCH_CHECKPOINT, LeaderEpochCache
from .producer_state import ProducerStateManager, read_end_txn_marker
from .segment import DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX, LogSegment
from .validation import ORIGIN_CLIENT, ORIGIN_REPLICATION, check_replicated_offsets, validate_batches

PARTITION_METADATA = "partition.metadata"
# Zeros written ahead of the appends of a log synced often (LogSegment.prepare_space): once
# the active segment has had SYNCS_BEFORE_PREPARING syncs, enough space for about
# SYNCS_PREPARED_AHEAD more at its bytes per sync so far, at most MAX_PREPARED_BYTES. A log
# synced now and then gets none; one with small appends a little (10,000 partitions with
# 100 B per sync: 6.4 KiB each).
SYNCS_BEFORE_PREPARING = 16
SYNCS_PREPARED_AHEAD = 64
MAX_PREPARED_BYTES = 1 << 20
_PAGE = 4096

_log = structlog.get_logger("odradek.storage")


def _io_errors_as_storage_errors(method):
    """An OSError from the disk is answered as KAFKA_STORAGE_ERROR, never leaks as itself."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except OSError as error:
            raise KafkaStorageError(f"{self.directory}: {error}") from error

    return wrapper


def _system_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_partition_dir_name(name: str) -> tuple[str, int] | None:
    """``"my-topic-3"`` -> ("my-topic", 3); None for names that are not partition dirs."""
    topic, sep, partition = name.rpartition("-")
    if not sep or not topic or not partition.isdigit():
        return None
    return topic, int(partition)


class AppendResult:
    """What an append did: offsets assigned, the LogAppendTime stamped (-1 for CreateTime),
    and the log start offset at the time (the produce response carries it)."""

    __slots__ = ("first_offset", "last_offset", "log_append_time", "log_start_offset", "record_count", "size")

    def __init__(self, first_offset, last_offset, log_append_time, log_start_offset, record_count, size):
        self.first_offset = first_offset
        self.last_offset = last_offset
        self.log_append_time = log_append_time
        self.log_start_offset = log_start_offset
        self.record_count = record_count
        self.size = size

    @property
    def end_offset(self) -> int:
        """The log end offset right after this append: flush up to it to make it durable."""
        return self.last_offset + 1

    def __repr__(self) -> str:
        return (f"AppendResult(first_offset={self.first_offset}, last_offset={self.last_offset}, "
                f"log_append_time={self.log_append_time}, log_start_offset={self.log_start_offset})")


class ReadResult:
    """A read: ``regions`` (file ranges of whole batches, in order; empty when nothing is
    readable yet) and the partition's offsets at read time, for the fetch response."""

    __slots__ = ("regions", "high_watermark", "log_start_offset", "log_end_offset", "aborted_transactions")

    def __init__(self, regions, high_watermark, log_start_offset, log_end_offset, aborted_transactions=None):
        self.regions = regions
        self.high_watermark = high_watermark
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset
        # The aborted transactions overlapping the regions (AbortedTxn list) when asked for.
        self.aborted_transactions = aborted_transactions

    @property
    def size(self) -> int:
        return sum(region.length for region in self.regions)

    def read_bytes(self) -> bytes:
        return b"".join(region.read() for region in self.regions)


def _close_sync_targets(targets) -> None:
    for target in targets:
        try:
            target.close()
        except OSError:
            pass


class FlushTicket:
    """A flush prepared by :meth:`PartitionLog.prepare_flush` (or a data sync, by
    :meth:`PartitionLog.prepare_sync`): covers every offset below
    ``end_offset``. :meth:`sync` only fsyncs and closes its own duplicated descriptors, so it
    may run in a thread while the log's owner appends, rolls or truncates."""

    __slots__ = ("end_offset", "truncations", "messages", "segment_sizes", "txn_indexes", "targets", "error",
                 "named_segments")

    def __init__(self, end_offset, truncations, messages, segment_sizes, txn_indexes, targets, named_segments=()):
        self.end_offset = end_offset
        self.truncations = truncations  # the log's truncation count at the prepare
        self.messages = messages  # unflushed_messages at the prepare
        self.segment_sizes = segment_sizes  # [(segment, its size at the prepare)]
        self.txn_indexes = txn_indexes  # transaction indexes this flush marked flushed
        self.targets = targets
        self.named_segments = named_segments  # segments whose file names the directory fsync makes durable
        self.error: OSError | None = None

    def sync(self) -> None:
        """fsync every target, then close them all; an OSError is kept for :meth:`PartitionLog.complete_flush`."""
        try:
            for target in self.targets:
                target.fsync()
        except OSError as error:
            self.error = error
        finally:
            self.release()

    def release(self) -> None:
        """Close the duplicated descriptors (a prepared flush that will not run)."""
        _close_sync_targets(self.targets)

    def __repr__(self) -> str:
        return f"FlushTicket(end_offset={self.end_offset}, targets={len(self.targets)}, error={self.error!r})"


class PartitionLog:
    """The log of one partition; see the module docstring for its files and offsets."""

    offline = False  # True only for the OfflineLog standing in for a log that could not be opened

    def __init__(self, fs, directory: str, topic: str, partition: int, config: LogConfig, clock):
        self.fs = fs
        self.directory = directory
        self.topic = topic
        self.partition = partition
        self._name = f"{topic}-{partition}"  # as Kafka names a partition in record errors
        self.config = config
        self.clock = clock
        self.segments: list[LogSegment] = []
        self._base_offsets: list[int] = []
        self.log_start_offset = 0
        self.log_end_offset = 0
        self.high_watermark = 0
        self.recovery_point = 0
        self.durable_offset = 0
        self.unflushed_messages = 0
        self.truncations = 0  # bumped by every truncation: a split flush prepared before one must not advance
        self.syncs_of_active_segment = 0  # complete_sync calls since the last roll (prepare_space)
        self.last_flush_ms = clock()
        self.leader_epochs: LeaderEpochCache | None = None
        self.producer_state = ProducerStateManager(fs, directory)
        self.topic_id: uuid.UUID | None = None
        self.recovered_bytes_truncated = 0
        # Called with the offset of every truncation, before it happens: the owner of the
        # cleaner checkpoint lowers it there (Kafka's maybeTruncateCheckpoint), so the log
        # cleaner never takes what is appended after a cut for already compacted.
        self.truncation_listener = None
        self.pending_deletions: PendingDeletions | None = None
        self.closed = False

    # ------------------------------------------------------------------------------- opening
    @classmethod
    def open(cls, fs, directory: str, config: LogConfig | None = None, *, topic: str | None = None,
             partition: int | None = None, topic_id: uuid.UUID | None = None, recovery_point: int = 0,
             log_start_offset: int = 0, high_watermark: int = 0, clean_shutdown: bool = True,
             clock=_system_clock_ms, pending_deletions: PendingDeletions | None = None,
             flush_recovered: bool = True) -> "PartitionLog":
        """Open (or create) the partition directory.

        ``pending_deletions`` (the data directory's list) holds deleted segments' ``*.deleted``
        files for ``file.delete.delay.ms``; without it (a log opened alone) they go at once.

        ``recovery_point``, ``log_start_offset``, ``high_watermark`` come from the data
        directory's checkpoints. With ``clean_shutdown`` False every segment from the one
        holding the recovery point onwards is rescanned (CRC of every batch), its indexes
        rebuilt, and the log cut at the first invalid byte; later segments are dropped. With it
        True the active segment's first batch and the batches after its last index entry are
        checked, and that segment recovered the same way if one fails.

        What a recovery kept is fsynced before this returns (the recovery point is then the log
        end); with ``flush_recovered`` False the rescanned segments are left marked unflushed
        and the recovery point where the checkpoint had it (Kafka's LogLoader), for the caller
        to flush (:meth:`prepare_flush`; a data directory flushes its logs together)."""
        config = config or LogConfig()
        if topic is None or partition is None:
            parsed = parse_partition_dir_name(directory.rstrip("/").rsplit("/", 1)[-1])
            if parsed is None:
                raise ValueError(f"{directory} is not named <topic>-<partition>")
            topic, partition = parsed
        log = cls(fs, directory, topic, partition, config, clock)
        log.pending_deletions = pending_deletions
        if not fs.exists(directory):
            fs.makedirs(directory)
            # The new directory's name is an entry of the data directory: durable only once
            # that is fsynced (else a crash could lose the partition with its flushed data).
            fs.fsync_dir(os.path.dirname(directory.rstrip("/")) or ".")
        log._load(recovery_point, log_start_offset, high_watermark, clean_shutdown, flush_recovered)
        metadata_path = f"{directory}/{PARTITION_METADATA}"
        try:
            log.topic_id = read_partition_metadata(fs, metadata_path)
        except (CorruptCheckpoint, UnicodeDecodeError) as error:
            # Kafka's partition.metadata only repeats the topic id of the metadata log: the
            # broker's topic table writes it again (set_topic_id).
            _log.warning("ignoring a partition.metadata that does not parse", file=metadata_path, reason=str(error))
        if topic_id is not None:
            log.set_topic_id(topic_id)
        return log

    def set_topic_id(self, topic_id: uuid.UUID) -> None:
        """Record the topic id in ``partition.metadata`` (written when it is missing or differs)."""
        if self.topic_id != topic_id:
            write_partition_metadata(self.fs, f"{self.directory}/{PARTITION_METADATA}", topic_id)
            self.topic_id = topic_id

    def _delete_segment(self, segment: LogSegment) -> None:
        """Kafka's asynchronous segment deletion: renamed to ``*.deleted`` now, unlinked
        ``file.delete.delay.ms`` later by whoever runs the pending list."""
        delay = self.config.file_delete_delay_ms
        if self.pending_deletions is None or delay <= 0:
            segment.delete()
        else:
            segment.delete(self.pending_deletions, self.clock() + delay)

    def _new_segment(self, base_offset: int) -> LogSegment:
        segment = LogSegment(self.fs, self.directory, base_offset,
                             index_interval_bytes=self.config.index_interval_bytes,
                             max_index_size=self.config.segment_index_bytes, now_ms=self.clock())
        # segment.jitter.ms: each segment rolls up to that much early, so partitions created
        # together do not all roll (and fsync) at the same moment.
        jitter = min(self.config.segment_jitter_ms, self.config.segment_ms)
        segment.roll_jitter_ms = random.randrange(jitter) if jitter > 0 else 0
        return segment

    def _load(self, recovery_point: int, log_start_offset: int, high_watermark: int, clean: bool,
              flush_recovered: bool = True) -> None:
        fs = self.fs
        base_offsets = []
        complete_interrupted_swaps(fs, self.directory)
        names = fs.listdir(self.directory)
        present = set(names)
        missing_indexes = []
        for name in names:
            path = f"{self.directory}/{name}"
            if name.endswith(DELETED_SUFFIX) or name.endswith(".tmp"):
                fs.unlink(path)  # an interrupted deletion or checkpoint write
            elif name.endswith(LOG_SUFFIX) and name[: -len(LOG_SUFFIX)].isdigit():
                base_offsets.append(int(name[: -len(LOG_SUFFIX)]))
                stem = name[: -len(LOG_SUFFIX)]
                if stem + INDEX_SUFFIX not in present or stem + TIME_INDEX_SUFFIX not in present:
                    missing_indexes.append(int(stem))
            elif name.endswith((INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX)):
                stem = name.rsplit(".", 1)[0]
                if stem + LOG_SUFFIX not in present:
                    fs.unlink(path)  # an index without its log cannot be trusted or used
        for base in sorted(base_offsets):
            segment = self._new_segment(base)
            # After a clean shutdown the directory was fsynced with its files; after a crash
            # the names may have been in the page cache only: the first sync fsyncs it again.
            segment.names_durable = clean
            self.segments.append(segment)
        self._base_offsets = [segment.base_offset for segment in self.segments]
        self.leader_epochs = LeaderEpochCache(fs, f"{self.directory}/{LEADER_EPOCH_CHECKPOINT}")

        if not self.segments:
            self._add_segment(self._new_segment(log_start_offset))
        if self.leader_epochs.damaged:
            self.leader_epochs.rebuild(self._batch_epochs())
        for segment in self.segments:
            if segment.base_offset in missing_indexes and segment.size:
                # Kafka's LogLoader recovers a segment whose offset index is missing; below the
                # recovery point the log is trusted, so only the indexes are rebuilt here.
                _log.warning("rebuilding the missing indexes of a segment", file=segment.log_path)
                segment.rebuild_indexes()
        recovered_from = None
        if not clean:
            recovered_from = self._recover(recovery_point, flush_recovered)
        else:
            # Indexes of a cleanly closed log are trusted but checked on first use (rebuilt
            # from the log if they cannot be right); the active one now, with the batches
            # after its last index entry: a clean shutdown vouches for them, but a copy taken
            # while the broker ran, or a disk that lost a write, can still end in a torn batch.
            active = self.segments[-1]
            if not active.tail_is_valid():
                cut = active.recover()
                active.flush()
                self.recovered_bytes_truncated += cut
                recovered_from = active.base_offset
                if cut:  # else zeros written ahead of the appends, whose cut was not durable
                    _log.warning("the active segment did not end in whole, valid batches despite the "
                                 "clean-shutdown marker: recovered, cut at the last valid batch",
                                 file=active.log_path, bytes_cut=cut, next_offset=active.next_offset())
        if clean and self.segments[-1].next_offset() < log_start_offset:
            # A clean shutdown lost nothing: a log start above the log end can only come from a
            # damaged checkpoint, which must not delete the log.
            _log.warning("ignoring a checkpointed log start offset above the log end", partition=self.directory,
                         log_start_offset=log_start_offset, log_end_offset=self.segments[-1].next_offset())
            log_start_offset = self.segments[0].base_offset
        if self.segments[-1].next_offset() < log_start_offset:
            # Unflushed data lost in a crash ended the log below its checkpointed start: offsets
            # below the log start were handed out and deleted, so restart empty there rather
            # than hand them out again.
            for segment in self.segments:
                self._delete_segment(segment)
            self.segments.clear()
            self._base_offsets.clear()
            self._add_segment(self._new_segment(log_start_offset))
        active = self.segments[-1]
        active.on_become_active()
        self.log_end_offset = active.next_offset()
        self.log_start_offset = min(max(log_start_offset, self.segments[0].base_offset), self.log_end_offset)
        self.recovery_point = min(max(recovery_point, self.log_start_offset), self.log_end_offset)
        if not clean and flush_recovered:
            self.recovery_point = self.log_end_offset
        self.durable_offset = self.recovery_point
        self.high_watermark = min(max(high_watermark, self.log_start_offset), self.log_end_offset)
        self.leader_epochs.truncate_from_end(self.log_end_offset)
        self._rebuild_producer_state(txn_index_from=recovered_from)

    def _batch_epochs(self):
        """(partition leader epoch, base offset) of every readable batch, in offset order (a
        damaged segment contributes the batches before its damage)."""
        for segment in self.segments:
            try:
                for batch in segment.batches():
                    yield batch.header.partition_leader_epoch, batch.base_offset
            except ProtocolError:
                continue

    def _rebuild_producer_state(self, txn_index_from: int | None = None) -> None:
        """Newest usable snapshot, then the batch headers after it up to the LEO (the marker
        of a control batch read too). With ``txn_index_from`` (recovery: the base offset of the
        first rescanned segment) the ``.txnindex`` of every segment from there is rewritten
        from the ABORT markers replayed, as Kafka's ``LogSegment.recover`` does, so the
        snapshot used is one at or below that offset."""
        state = self.producer_state
        at_most = self.log_end_offset if txn_index_from is None else min(self.log_end_offset, txn_index_from)
        start = max(state.load_latest_snapshot(at_most=at_most, keep_up_to=self.log_end_offset),
                    self.segments[0].base_offset)
        for segment in self.segments[self._segment_index_for(start):]:
            rebuilds_txn_index = txn_index_from is not None and segment.base_offset >= txn_index_from
            if rebuilds_txn_index:
                segment.txn_index.reset()
            try:
                position = 0
                if segment.base_offset < start:
                    first = segment.find_batch(start)
                    if first is None:
                        continue
                    position = first.position
                for batch in segment.batches(position):
                    if batch.last_offset < start:
                        continue
                    header = batch.header
                    aborted = state.replay(header, self._marker_of(segment, batch) if header.is_control else None)
                    if aborted is not None and rebuilds_txn_index:
                        segment.txn_index.append(aborted)
            except (ProtocolError, CorruptIndex) as error:
                # A damaged batch below the recovery point (trusted, so not cut): the producers'
                # state misses what follows it in this segment; reads there answer CORRUPT_MESSAGE.
                _log.warning("producer state: a batch does not parse, the rest of the segment is skipped",
                             file=segment.log_path, reason=str(error))
            if rebuilds_txn_index:
                segment.txn_index.flush()
        state.map_end_offset = self.log_end_offset
        state.on_high_watermark_updated(self.high_watermark)

    @staticmethod
    def _marker_of(segment: LogSegment, batch):
        """The end-transaction marker of a producer's control batch in ``segment`` (None for
        others, or one the cleaner emptied). A marker that no longer decodes is taken as
        emptied: the log stays readable, as with any batch trusted below the recovery point."""
        if batch.header.producer_id < 0 or not batch.header.records_count:
            return None
        try:
            return read_end_txn_marker(segment.log.pread(batch.size, batch.position), 0)
        except ProtocolError:
            return None

    def _recover(self, recovery_point: int, flush: bool = True) -> int:
        """Rescan from the segment holding the recovery point; cut the first invalid byte and
        drop every segment after it (their offsets could not follow a hole); fsync what was
        rescanned, or with ``flush`` False mark it unflushed for the next flush. Returns the
        base offset of the first segment rescanned."""
        first = max(0, bisect.bisect_right(self._base_offsets, recovery_point) - 1)
        try:
            expected = self.segments[first - 1].next_offset() if first > 0 else 0
        except (ProtocolError, CorruptIndex):
            expected = 0  # the segment before is damaged; the rescanned one's own base bounds it
        index = first
        while index < len(self.segments):
            segment = self.segments[index]
            truncated = segment.recover(expected_base=expected)
            self.recovered_bytes_truncated += truncated
            if truncated:
                _log.warning("recovery cut a segment at its first invalid batch", file=segment.log_path,
                             bytes_cut=truncated, next_offset=segment.next_offset(),
                             later_segments_dropped=len(self.segments) - index - 1)
            expected = segment.next_offset()
            # A cut tail, or an empty segment before another (a roll never leaves one), means
            # what follows cannot continue this segment's offsets: drop it.
            if (truncated or segment.size == 0) and index + 1 < len(self.segments):
                for later in self.segments[index + 1:]:
                    self.recovered_bytes_truncated += later.size
                    self._delete_segment(later)
                del self.segments[index + 1:]
                break
            index += 1
        self._base_offsets = [segment.base_offset for segment in self.segments]
        for segment in self.segments[first:]:
            if flush:
                segment.flush()  # what recovery kept is now on disk, whatever kind of crash it was
            else:
                segment.flushed_size = 0  # the next flush fsyncs it: its bytes may be in the page cache only
        return self.segments[first].base_offset

    def _add_segment(self, segment: LogSegment) -> None:
        self.segments.append(segment)
        self._base_offsets.append(segment.base_offset)

    # ------------------------------------------------------------------------------ appending
    @property
    def active_segment(self) -> LogSegment:
        return self.segments[-1]

    def append(self, records, *, leader_epoch: int = -1, origin: str = ORIGIN_CLIENT) -> AppendResult:
        """Validate ``records`` (a produce payload: one or more magic-2 batches) and append it.

        ``records`` is patched in place when it is a writable buffer (bytearray, writable
        memoryview), otherwise copied once. Client and coordinator appends get offsets from
        the LEO; replication appends keep theirs. Raises a ProtocolError subclass (the Kafka
        error code to answer with) and leaves the log unchanged on any refusal or I/O error."""
        self._check_open()
        now = self.clock()
        validated = validate_batches(records, self.config, now, origin, self._name)
        if origin == ORIGIN_REPLICATION:
            check_replicated_offsets(validated, self.log_end_offset)
        buffer = records if validated.converted_payload is None else validated.converted_payload
        # Only the coordinators and replication append control batches (validation refuses
        # them from clients); a producer's one is a COMMIT/ABORT marker.
        markers = None if origin == ORIGIN_CLIENT else [
            read_end_txn_marker(buffer, position) if header.is_control and header.producer_id >= 0 else None
            for position, header in validated.batches]
        plan = self.producer_state.prepare([header for _, header in validated.batches], origin, markers)
        if plan.duplicate is not None:
            # A producer's retry of a batch we have: answer with the original offsets.
            return AppendResult(plan.duplicate.first_offset, plan.duplicate.last_offset, NO_TIMESTAMP,
                                self.log_start_offset, 0, 0)
        if not isinstance(buffer, bytearray) and not (isinstance(buffer, memoryview) and not buffer.readonly):
            buffer = bytearray(buffer)
        return self._commit(buffer, validated, plan, leader_epoch, origin, now)

    def _commit(self, buffer, validated, plan, leader_epoch: int, origin: str, now: int) -> AppendResult:
        """The one place that mutates the log for an append."""
        log_append_time = NO_TIMESTAMP
        max_timestamp = validated.max_timestamp
        if origin == ORIGIN_REPLICATION:
            batch_last_offsets = [header.last_offset for _, header in validated.batches]
        else:
            batch_last_offsets = []
            next_offset = self.log_end_offset
            for position, header in validated.batches:
                patch_base_offset(buffer, position, next_offset)
                if leader_epoch >= 0:
                    patch_partition_leader_epoch(buffer, position, leader_epoch)
                if self.config.is_log_append_time:
                    patch_max_timestamp(buffer, position, header.size_in_bytes, now,
                                        header.attributes | TIMESTAMP_TYPE_MASK)
                next_offset += header.last_offset_delta + 1
                batch_last_offsets.append(next_offset - 1)
            if self.config.is_log_append_time:
                log_append_time = max_timestamp = now
        first_offset = batch_last_offsets[0] - validated.batches[0][1].last_offset_delta
        last_offset = batch_last_offsets[-1]
        # The time index points at the batch holding the max timestamp (its last offset);
        # with LogAppendTime every batch has it, so the first one does.
        offset_of_max_timestamp = batch_last_offsets[
            0 if log_append_time != NO_TIMESTAMP else validated.max_timestamp_batch]

        try:
            segment = self._maybe_roll(validated.size, max_timestamp, first_offset, last_offset, now)
            segment.append(buffer, last_offset=last_offset, max_timestamp=max_timestamp,
                           offset_of_max_timestamp=offset_of_max_timestamp)
        except OSError as error:
            raise KafkaStorageError(f"append to {self.directory} failed: {error}") from error
        if self.syncs_of_active_segment >= SYNCS_BEFORE_PREPARING:
            self._prepare_space(segment)

        self.log_end_offset = last_offset + 1
        aborted_txns = self.producer_state.apply(plan, batch_last_offsets, self.log_end_offset)
        if aborted_txns:
            # Kafka's updateTxnIndex: the entry goes with its ABORT marker. Should this write fail,
            # the marker is in the log but not its entry; the next recovery rewrites the index.
            try:
                for aborted in aborted_txns:
                    segment.txn_index.append(aborted)
            except OSError as error:
                raise KafkaStorageError(f"transaction index of {self.directory}: {error}") from error
        epoch = leader_epoch if origin != ORIGIN_REPLICATION else validated.batches[0][1].partition_leader_epoch
        if epoch >= 0 and epoch > self.leader_epochs.latest_epoch:
            self.leader_epochs.assign(epoch, first_offset)
        self.unflushed_messages += last_offset - first_offset + 1
        if self.unflushed_messages >= self.config.flush_messages:
            self.flush()
        return AppendResult(first_offset, last_offset, log_append_time, self.log_start_offset,
                            validated.offset_count, validated.size)

    def _prepare_space(self, segment: LogSegment) -> None:
        """Keep zeros ahead of the active segment's appends (SYNCS_PREPARED_AHEAD), topped up
        once half of them are used, never past where the segment rolls."""
        ahead = min(MAX_PREPARED_BYTES, SYNCS_PREPARED_AHEAD * segment.size // self.syncs_of_active_segment)
        if segment.file_end - segment.size >= ahead // 2:
            return
        end = min(-(-(segment.size + ahead) // _PAGE) * _PAGE, self.config.segment_bytes)
        segment.prepare_space(end)

    def _maybe_roll(self, size: int, max_timestamp: int, first_offset: int, last_offset: int, now: int) -> LogSegment:
        segment = self.active_segment
        if segment.should_roll(append_size=size, max_timestamp=max_timestamp, last_offset=last_offset, now_ms=now,
                               segment_bytes=self.config.segment_bytes, segment_ms=self.config.segment_ms,
                               jitter_ms=segment.roll_jitter_ms):
            segment = self.roll(first_offset)
        return segment

    @_io_errors_as_storage_errors
    def roll(self, base_offset: int | None = None) -> LogSegment:
        """Start a new active segment at ``base_offset`` (default: the LEO). Returns it."""
        base_offset = self.log_end_offset if base_offset is None else base_offset
        if base_offset < self.log_end_offset:
            raise ValueError(f"cannot roll to {base_offset}, below the log end offset {self.log_end_offset}")
        current = self.active_segment
        if current.size == 0 and current.base_offset == base_offset:
            return current
        if current.size == 0:
            # An empty active segment at a different base: replace it (truncation/replication).
            self._delete_segment(current)
            self.segments.pop()
            self._base_offsets.pop()
        else:
            # fsync the outgoing segment now (one fsync per segment.bytes): the next segment's
            # data can then never be on disk while this one's tail is not, so recovery never
            # finds a hole between segments.
            current.on_become_inactive()
            try:
                current.flush()
                if current.base_offset >= self.recovery_point:
                    self.fs.fsync_dir(self.directory)  # its file names, new since the recovery point
            except OSError as error:
                raise KafkaStorageError(f"flush of {current.log_path} failed: {error}") from error
            if all(not s.has_unflushed_data for s in self.segments):
                self.recovery_point = max(self.recovery_point, current.next_offset())
                self.durable_offset = max(self.durable_offset, self.recovery_point)
        segment = self._new_segment(base_offset)
        segment.on_become_active()
        self._add_segment(segment)
        self.syncs_of_active_segment = 0
        # Kafka snapshots producer state at every roll: recovery replays at most one segment.
        self.producer_state.take_snapshot()
        return segment

    # -------------------------------------------------------------------------------- flushing
    def _segments_to_flush(self) -> tuple[list[LogSegment], bool] | None:
        """The segments a flush fsyncs and whether the directory needs one too; None if
        everything is flushed already."""
        if self.log_end_offset <= self.recovery_point and not any(s.has_unflushed_data for s in self.segments):
            return None
        candidates = self.segments[max(0, bisect.bisect_right(self._base_offsets, self.recovery_point) - 1):]
        segments = [segment for segment in candidates
                    if segment.has_unflushed_data or segment is self.active_segment]
        # As Kafka's LocalLog.flush: a segment created since the recovery point has file
        # names the partition directory must make durable (fsync of the directory).
        return segments, any(segment.base_offset >= self.recovery_point for segment in candidates)

    def flush(self) -> int:
        """fsync every segment holding unflushed data; returns the new flushed offset (the LEO
        at the time of the call). One flush covers every append made before it."""
        self._check_open()
        end = self.log_end_offset
        selected = self._segments_to_flush()
        if selected is None:
            return self.recovery_point
        segments, with_directory = selected
        try:
            for segment in segments:
                segment.flush()
            if with_directory:
                self.fs.fsync_dir(self.directory)
        except OSError as error:
            raise KafkaStorageError(f"flush of {self.directory} failed: {error}") from error
        if with_directory:
            for segment in segments:
                segment.names_durable = True
        self.recovery_point = end
        self.durable_offset = max(self.durable_offset, end)
        self.unflushed_messages = 0
        self.last_flush_ms = self.clock()
        return end

    def prepare_flush(self) -> FlushTicket | None:
        """:meth:`flush` split, first part (see the module doc): None if nothing is unflushed."""
        self._check_open()
        selected = self._segments_to_flush()
        if selected is None:
            return None
        segments, with_directory = selected
        targets: list = []
        txn_indexes = [segment.txn_index for segment in segments if segment.txn_index.unflushed]
        try:
            for segment in segments:
                targets.extend(segment.sync_targets())
            if with_directory:
                targets.append(self.fs.dir_sync_target(self.directory))
        except OSError as error:
            for txn_index in txn_indexes:
                txn_index.mark_unflushed()
            for segment in segments:
                segment.offset_index.mark_unsynced()
                segment.time_index.mark_unsynced()
            _close_sync_targets(targets)
            raise KafkaStorageError(f"flush of {self.directory} failed: {error}") from error
        return FlushTicket(self.log_end_offset, self.truncations, self.unflushed_messages,
                           [(segment, segment.size) for segment in segments], txn_indexes, targets,
                           segments if with_directory else ())

    def complete_flush(self, ticket: FlushTicket) -> int:
        """:meth:`flush` split, last part, after ``ticket.sync()``: returns the flushed offset.
        Raises KAFKA_STORAGE_ERROR if an fsync failed (the data stays unflushed: the next
        flush retries it). A truncation since the prepare leaves the recovery point where the
        truncation put it; so does a close (its own flush covered everything)."""
        if ticket.error is not None:
            for txn_index in ticket.txn_indexes:
                txn_index.mark_unflushed()
            for segment, _ in ticket.segment_sizes:
                segment.offset_index.mark_unsynced()
                segment.time_index.mark_unsynced()
            raise KafkaStorageError(f"flush of {self.directory} failed: {ticket.error}") from ticket.error
        if not self._settle(ticket):
            return self.recovery_point
        for segment, size in ticket.segment_sizes:
            segment.flushed_size = max(segment.flushed_size, size)
        if ticket.end_offset > self.recovery_point:
            self.recovery_point = ticket.end_offset
            self.unflushed_messages = max(0, self.unflushed_messages - ticket.messages)
            self.last_flush_ms = self.clock()
        return self.recovery_point

    def prepare_sync(self) -> FlushTicket | None:
        """Make the records appended so far durable, without their indexes, first part: a
        ticket of fdatasync targets for the ``.log`` of every segment holding offsets at or
        above :attr:`durable_offset` (in practice the active one: a roll flushes the segment
        it leaves), and of the partition directory if one of those segments' file names may
        not be durable yet. None if every record is durable already. Then
        :meth:`FlushTicket.sync` (any thread) and :meth:`complete_sync`."""
        self._check_open()
        if self.log_end_offset <= self.durable_offset:
            return None
        segments = self.segments[max(0, bisect.bisect_right(self._base_offsets, self.durable_offset) - 1):]
        named = [segment for segment in segments if not segment.names_durable]
        targets: list = []
        try:
            for segment in segments:
                targets.append(segment.log.sync_target(data_only=True))
            if named:
                targets.append(self.fs.dir_sync_target(self.directory))
        except OSError as error:
            _close_sync_targets(targets)
            raise KafkaStorageError(f"sync of {self.directory} failed: {error}") from error
        return FlushTicket(self.log_end_offset, self.truncations, 0, (), (), targets, named)

    def complete_sync(self, ticket: FlushTicket) -> int:
        """:meth:`prepare_sync`'s last part, after ``ticket.sync()``, on the owner: returns the
        durable offset. Raises KAFKA_STORAGE_ERROR if a sync failed (the next one retries it);
        a truncation or a close since the prepare leaves the durable offset alone."""
        if ticket.error is not None:
            raise KafkaStorageError(f"sync of {self.directory} failed: {ticket.error}") from ticket.error
        if self._settle(ticket):
            self.syncs_of_active_segment += 1
        return self.durable_offset

    def _settle(self, ticket: FlushTicket) -> bool:
        """What completing a flush and a data sync share, once the ticket's error is handled:
        False if a close or a truncation since the prepare voids the ticket; else its file
        names and the records below its end are durable now."""
        if self.closed:
            return False
        for target in ticket.targets:
            target.settle()
        if ticket.truncations != self.truncations:
            return False
        for segment in ticket.named_segments:
            segment.names_durable = True
        self.durable_offset = max(self.durable_offset, ticket.end_offset)
        return True

    def flush_up_to(self, offset: int) -> int:
        """Make every offset below ``offset`` durable (no-op if already)."""
        if offset <= self.recovery_point:
            return self.recovery_point
        return self.flush()

    def flush_if_due(self) -> bool:
        """Apply ``flush.ms``: flush if unflushed data is older than it. Call from a timer."""
        if self.unflushed_messages and self.clock() - self.last_flush_ms >= self.config.flush_ms:
            self.flush()
            return True
        return False

    # -------------------------------------------------------------------------------- offsets
    def update_high_watermark(self, offset: int) -> int:
        """Set the high watermark (clamped to [log start, LEO]); returns the value kept."""
        self.high_watermark = min(max(offset, self.log_start_offset), self.log_end_offset)
        self.producer_state.on_high_watermark_updated(self.high_watermark)
        return self.high_watermark

    @property
    def first_unstable_offset(self) -> int | None:
        """The first offset of the oldest transaction still open, or whose marker is not below
        the high watermark yet (never below the log start offset); None if there is none."""
        unstable = self.producer_state.first_unstable_offset()
        return None if unstable is None else max(unstable, self.log_start_offset)

    @property
    def last_stable_offset(self) -> int:
        """Where read_committed reads stop: the first unstable offset if it is below the high
        watermark, else the high watermark (Kafka's UnifiedLog.lastStableOffset)."""
        unstable = self.first_unstable_offset
        return self.high_watermark if unstable is None else min(unstable, self.high_watermark)

    @property
    def size_in_bytes(self) -> int:
        return sum(segment.size for segment in self.segments)

    def _segment_index_for(self, offset: int) -> int:
        return max(0, bisect.bisect_right(self._base_offsets, offset) - 1)

    def next_segment_base_offset(self, offset: int) -> int | None:
        """The base offset of the segment after the one holding ``offset`` (None if that is
        the active one): where a reader that met a damaged batch can go on."""
        index = self._segment_index_for(offset) + 1
        return self._base_offsets[index] if index < len(self._base_offsets) else None

    # ---------------------------------------------------------------------------------- reads
    @_io_errors_as_storage_errors
    def read(self, offset: int, max_bytes: int, *, max_offset: int | None = None,
             min_one_batch: bool = True, with_aborted_transactions: bool = False) -> ReadResult:
        """Whole batches from the one holding ``offset``, at most ``max_bytes`` (but at least
        one batch when ``min_one_batch``), none reaching ``max_offset`` (default: the high
        watermark; pass the LEO for a follower, the LSO for read_committed). With
        ``with_aborted_transactions`` the result lists the aborted transactions overlapping
        what it returns (a read_committed fetch). Raises OffsetOutOfRange outside [log start
        offset, LEO]."""
        self._check_open()
        if offset < self.log_start_offset or offset > self.log_end_offset:
            raise OffsetOutOfRange(
                f"offset {offset} is outside [{self.log_start_offset}, {self.log_end_offset}] of {self.topic}-{self.partition}")
        upper = self.high_watermark if max_offset is None else min(max_offset, self.log_end_offset)
        regions = []
        remaining = max_bytes
        index = self._segment_index_for(offset)
        position_offset = offset
        last_read = None  # (segment, region) of the last region
        while index < len(self.segments) and position_offset < upper:
            segment = self.segments[index]
            try:
                found = self._read_segment(segment, position_offset, remaining, upper, min_one_batch and not regions)
                if found is None and segment.find_batch(position_offset) is not None:
                    break  # the next batch is here but did not fit: the read ends, as Kafka's
            except ProtocolError:
                if regions:
                    break  # a damaged batch further on: the batches before it are served first
                raise
            if found is not None:
                region, _ = found
                regions.append(region)
                last_read = segment, region
                remaining -= region.length
                if remaining <= 0 or region.position + region.length < segment.size:
                    break  # out of room (or at the upper bound): later segments must not be skipped to
            index += 1
            if index < len(self.segments):
                position_offset = self.segments[index].base_offset
        aborted = None
        if with_aborted_transactions:
            aborted = self.aborted_transactions(offset, self._offset_after(*last_read)) if last_read else []
        return ReadResult(regions, self.high_watermark, self.log_start_offset, self.log_end_offset, aborted)

    @staticmethod
    def _offset_after(segment: LogSegment, region) -> int:
        """The first offset past ``region`` of ``segment`` (the bound of its aborted transactions,
        as Kafka's fetchUpperBoundOffset, but exact)."""
        end = region.position + region.length
        following = next(segment.batches(end), None) if end < segment.size else None
        return following.base_offset if following is not None else segment.next_offset()

    def _read_segment(self, segment, offset, max_bytes, upper, min_one_batch):
        try:
            return segment.read(offset, max_bytes, upper, min_one_batch)
        except CorruptIndex:
            # An index entry that does not point at a batch: rebuild from the log, retry once.
            segment.rebuild_indexes()
            return segment.read(offset, max_bytes, upper, min_one_batch)

    @_io_errors_as_storage_errors
    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """(timestamp, offset) of the first record with a timestamp >= ``timestamp`` at or
        after the log start offset (ListOffsets by time); None if every record is older."""
        self._check_open()
        for segment in self.segments:
            if segment.size == 0 or segment.max_timestamp_and_offset[0] < timestamp:
                continue
            found = segment.find_offset_by_timestamp(timestamp, self.log_start_offset)
            if found is not None:
                return found
        return None

    @_io_errors_as_storage_errors
    def aborted_transactions(self, fetch_offset: int, upper_bound_offset: int) -> list:
        """Aborted transactions (from the ``.txnindex`` files) overlapping
        [fetch_offset, upper_bound_offset): what a read_committed fetch response lists. As
        Kafka's ``collectAbortedTransactions`` the search goes on past the upper bound until an
        entry's LSO reaches it: an entry lives in the segment of its ABORT marker, which may
        come after the transaction's data."""
        found = []
        for segment in self.segments[self._segment_index_for(fetch_offset):]:
            overlapping, complete = segment.txn_index.aborted_overlapping(fetch_offset, upper_bound_offset)
            found.extend(overlapping)
            if complete:
                break
        return found

    def max_timestamp_offset(self) -> tuple[int, int]:
        """(max timestamp, offset of the record carrying it) over the whole log; (-1, -1) when
        the log is empty (ListOffsets MAX_TIMESTAMP)."""
        best = (NO_TIMESTAMP, -1)
        best_segment = None
        for segment in self.segments:
            if segment.size and segment.max_timestamp_and_offset[0] > best[0]:
                best = segment.max_timestamp_and_offset
                best_segment = segment
        if best_segment is None:
            return NO_TIMESTAMP, -1
        found = best_segment.find_offset_by_timestamp(best[0], self.log_start_offset)
        return found if found is not None else best

    # ------------------------------------------------------------------------ retention & co
    def _deletable_prefix(self, predicate) -> int:
        """How many leading segments may go: those the predicate accepts, in order, each
        wholly below the high watermark."""
        count = 0
        for index, segment in enumerate(self.segments):
            next_base = self.segments[index + 1].base_offset if index + 1 < len(self.segments) else self.log_end_offset
            if next_base > self.high_watermark or segment.size == 0 or not predicate(index, segment, next_base):
                break
            count += 1
        return count

    @_io_errors_as_storage_errors
    def delete_old_segments(self) -> int:
        """Apply retention (``retention.ms``, ``retention.bytes``, the log start offset) and
        delete the segments it condemns. Returns how many were deleted."""
        self._check_open()
        deleted = self._delete_prefix(lambda _i, _s, next_base: next_base <= self.log_start_offset)
        if not self.config.deletes_old_segments:
            return deleted
        now = self.clock()
        if self.config.retention_ms >= 0:
            deleted += self._delete_prefix(lambda _i, s, _n: now - s.largest_timestamp() > self.config.retention_ms)
        if self.config.retention_bytes >= 0:
            excess = [self.size_in_bytes - self.config.retention_bytes]

            def over_size(_i, segment, _n):
                if excess[0] - segment.size < 0:
                    return False
                excess[0] -= segment.size
                return True

            deleted += self._delete_prefix(over_size)
        return deleted

    def _delete_prefix(self, predicate) -> int:
        count = self._deletable_prefix(predicate)
        if count == 0:
            return 0
        if count == len(self.segments):
            # Everything goes: roll first so an (empty) active segment remains at the LEO.
            self.roll()
        doomed = self.segments[:count]
        del self.segments[:count]
        del self._base_offsets[:count]
        for segment in doomed:
            self._delete_segment(segment)
        self.log_start_offset = max(self.log_start_offset, self.segments[0].base_offset)
        self.recovery_point = max(self.recovery_point, self.log_start_offset)
        self.durable_offset = max(self.durable_offset, self.recovery_point)
        self.leader_epochs.truncate_from_start(self.log_start_offset)
        self.producer_state.delete_snapshots_before(self.segments[0].base_offset)
        return count

    @_io_errors_as_storage_errors
    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: raise the log start offset to ``offset`` (at most the high
        watermark) and delete the segments wholly below it. Returns the new log start
        offset (the response's low watermark)."""
        self._check_open()
        if offset > self.high_watermark or offset < 0:
            raise OffsetOutOfRange(f"cannot delete records before {offset}: high watermark is {self.high_watermark}")
        if offset > self.log_start_offset:
            self.log_start_offset = offset
            self.leader_epochs.truncate_from_start(offset)
            self._delete_prefix(lambda _i, _s, next_base: next_base <= self.log_start_offset)
        return self.log_start_offset

    def truncate_to(self, offset: int) -> int:
        """Remove every batch holding an offset >= ``offset`` (whole batches). Returns the new
        LEO. Below the first segment, the log restarts empty at ``offset``."""
        self._check_open()
        if offset >= self.log_end_offset:
            return self.log_end_offset
        self._note_truncation(offset)
        if offset < self.segments[0].base_offset:
            return self.truncate_fully_and_start_at(offset)
        try:
            keep = self._segment_index_for(offset)
            for segment in self.segments[keep + 1:]:
                self._delete_segment(segment)
            del self.segments[keep + 1:]
            del self._base_offsets[keep + 1:]
            segment = self.active_segment
            first_removed = segment.find_batch(offset)
            new_end = min(offset, first_removed.base_offset) if first_removed is not None else offset
            segment.truncate_to(offset)
            segment.on_become_active()
            # Make the cut durable now: a crash must not bring truncated (divergent) data back.
            segment.flush()
            self.log_end_offset = segment.next_offset()
            if self.log_end_offset < new_end:
                # Compaction emptied the offsets before the cut: the log still ends at the cut,
                # which an (empty) active segment based there records.
                segment = self.roll(new_end)
                self.log_end_offset = new_end
                self.log_start_offset = max(self.log_start_offset, self.segments[0].base_offset)
        except OSError as error:
            raise KafkaStorageError(f"truncation of {self.directory} failed: {error}") from error
        self._clamp_offsets()
        self._rebuild_producer_state()
        return self.log_end_offset

    @_io_errors_as_storage_errors
    def truncate_fully_and_start_at(self, offset: int) -> int:
        """Drop everything; the log restarts empty at ``offset`` (log start = LEO = offset)."""
        self._check_open()
        self._note_truncation(offset)
        for segment in self.segments:
            self._delete_segment(segment)
        self.segments.clear()
        self._base_offsets.clear()
        segment = self._new_segment(offset)
        segment.on_become_active()
        self._add_segment(segment)
        self.log_start_offset = self.log_end_offset = self.high_watermark = self.recovery_point = offset
        self.durable_offset = offset
        self.leader_epochs.truncate_from_end(offset)
        self.leader_epochs.truncate_from_start(offset)
        self.producer_state.delete_snapshots_before(offset + 1)  # all of them: the log restarts
        self.producer_state.clear(offset)
        return offset

    def _note_truncation(self, offset: int) -> None:
        self.truncations += 1
        if self.truncation_listener is not None:
            self.truncation_listener(offset)

    def _clamp_offsets(self) -> None:
        self.log_start_offset = min(self.log_start_offset, self.log_end_offset)
        self.high_watermark = min(self.high_watermark, self.log_end_offset)
        self.recovery_point = min(self.recovery_point, self.log_end_offset)
        self.durable_offset = min(self.durable_offset, self.log_end_offset)
        self.leader_epochs.truncate_from_end(self.log_end_offset)

    @_io_errors_as_storage_errors
    def compact(self, first_dirty_offset: int | None = None, now_ms: int | None = None):
        """Run the log cleaner once, whatever the dirty ratio (cleanup.policy must include
        compact); see :mod:`odradek.storage.cleaner`. Returns its CleanerStats."""
        from .cleaner import clean

        self._check_open()
        return clean(self, first_dirty_offset, now_ms)

    @_io_errors_as_storage_errors
    def replace_segments(self, old_segments: list[LogSegment], base_offset: int) -> None:
        """Swap the cleaned segment ``<base_offset>.log.cleaned`` (and its indexes, complete
        and fsynced) in for ``old_segments`` (consecutive, not the active one, the first at
        ``base_offset``): ``.cleaned`` -> ``.swap``, delete the old segments, ``.swap`` ->
        final names. A crash at any point leaves the old or the new segment (see
        :func:`~odradek.storage.cleaner.complete_interrupted_swaps`). An I/O error part way
        raises KAFKA_STORAGE_ERROR with the old segments still serving reads from their open
        files; the next open completes or undoes the swap from what is on disk."""
        first = self.segments.index(old_segments[0])
        count = len(old_segments)
        if self.segments[first:first + count] != old_segments or first + count >= len(self.segments):
            raise ValueError("only consecutive inactive segments are replaced")
        fs, directory = self.fs, self.directory
        rename_all(fs, directory, base_offset, CLEANED_SUFFIX, SWAP_SUFFIX)
        for segment in old_segments:
            self._delete_segment(segment)
        rename_all(fs, directory, base_offset, SWAP_SUFFIX, "")
        self.segments[first:first + count] = [self._new_segment(base_offset)]
        self._base_offsets[first:first + count] = [base_offset]

    def expire_producers(self, expiration_ms: int = 86_400_000) -> int:
        """Apply the broker's ``producer.id.expiration.ms``; call from a timer. Returns how
        many producer ids were forgotten."""
        return self.producer_state.expire(self.clock(), expiration_ms)

    # ------------------------------------------------------------------------------ lifecycle
    def _check_open(self) -> None:
        if self.closed:
            raise KafkaStorageError(f"log {self.directory} is closed")

    @_io_errors_as_storage_errors
    def close(self) -> None:
        """Flush and close every segment (indexes trimmed): what a clean shutdown does."""
        if self.closed:
            return
        try:
            self.active_segment.trim()  # before the flush, which makes the cut durable
        except OSError as error:  # the zeros stay: the next start's check of the tail cuts them
            _log.warning("could not cut the zeros ahead of the active segment", directory=self.directory,
                         reason=str(error))
        self.flush()
        self.producer_state.take_snapshot()
        for segment in self.segments:
            segment.close()
        self.closed = True

    def abandon(self) -> None:
        """Close every file without making anything durable: the directory is about to be
        removed whole (a broker reset), so flushing and snapshotting would be wasted work."""
        for segment in self.segments:
            segment.offset_index.close()
            segment.time_index.close()
            segment.log.close()
        self.closed = True

    @_io_errors_as_storage_errors
    def delete(self, pending: PendingDeletions | None = None, due_ms: int = 0) -> None:
        """Delete the whole partition: Kafka renames the directory to
        ``<topic>-<partition>.<uuid>-delete`` first, so a crash mid-way leaves a name the next
        start recognises; then the files go: at once, or with ``pending`` once ``due_ms`` has
        come (Kafka's LogManager waits the broker's ``log.segment.delete.delay.ms``)."""
        for segment in self.segments:
            segment.offset_index.close()
            segment.time_index.close()
        self.closed = True
        self.delete_directory(self.fs, self.directory, pending, due_ms)

    @staticmethod
    def delete_directory(fs, directory: str, pending: PendingDeletions | None, due_ms: int) -> None:
        """Rename a partition directory to ``<name>.<uuid>-delete``, then remove it (at once,
        or through ``pending``): :meth:`delete`'s file work, also for a log that never opened."""
        parent, _, name = directory.rstrip("/").rpartition("/")
        doomed = f"{parent}/{name}.{uuid.uuid4().hex}-delete"
        fs.rename(directory, doomed)
        if pending is not None:
            pending.schedule([doomed], due_ms)
        else:
            fs.rmtree(doomed)
