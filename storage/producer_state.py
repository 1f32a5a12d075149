"""Producer state of a partition: what idempotent and transactional producers wrote.

For every producer id the partition remembers the producer's epoch and the metadata of its
last five batches (first/last sequence, last offset, timestamp), as Kafka's
``ProducerStateManager`` does. With it the log refuses a batch whose sequence does not follow
the previous one (OUT_OF_ORDER_SEQUENCE_NUMBER), a batch from an older epoch
(INVALID_PRODUCER_EPOCH), and recognises a retried batch it already has (the append returns the
original offsets and writes nothing): exactly-once appends per partition.

Transactions (Kafka's ``ProducerAppendInfo``): a producer's first transactional batch opens its
transaction at that batch's first offset (``current_txn_first_offset``); a non-transactional
batch while one is open is refused (INVALID_TXN_STATE); a COMMIT or ABORT marker (a control
batch the coordinator appends) completes it, a ``CompletedTxn`` running from its first offset to
the marker. A marker from an older producer epoch is refused (INVALID_PRODUCER_EPOCH), one from an
older coordinator epoch than the producer's last marker too (TRANSACTION_COORDINATOR_FENCED); a
marker of a producer with no open transaction is accepted and completes nothing. Replicated
batches are taken as the leader wrote them. The open transactions, and the completed ones whose
marker the high watermark has not passed yet, make the partition's first unstable offset
(:meth:`ProducerStateManager.first_unstable_offset`), which bounds the last stable offset. An
ABORT comes back from :meth:`ProducerStateManager.apply` / :meth:`~ProducerStateManager.replay`
as the :class:`~odradek.storage.txn_index.AbortedTxn` its segment's ``.txnindex`` records, with
the last stable offset at that point: the first offset of the oldest other open transaction, or
the marker's offset + 1.

Validate, then commit: :meth:`ProducerStateManager.prepare` checks an append against the state
and returns a plan without changing anything; :meth:`ProducerStateManager.apply` records it
once the bytes are written.

Snapshot files ``<offset, 20 digits>.snapshot`` in the partition directory hold the state as of
that offset, in Kafka's format (big-endian)::

    version          int16   1
    crc              uint32  CRC-32C of everything after this field
    entry_count      int32
    entries, 46 bytes each:
        producer_id int64, epoch int16, last_sequence int32, last_offset int64,
        offset_delta int32 (last - first sequence of the last batch), timestamp int64,
        coordinator_epoch int32, current_txn_first_offset int64 (-1: no open transaction)

Like Kafka's, a snapshot keeps only each producer's last batch. Snapshots are written when a
segment rolls and at clean shutdown; on open the newest snapshot at or below the log end is
loaded and the batches after it are replayed from their headers (no record is decoded). A
snapshot that fails its CRC is ignored (an older one, or the log itself, takes its place).

Thread safety: single-threaded, owned by its PartitionLog.
"""

from __future__ import annotations

import struct
from collections import deque

import crc32c
import structlog

from odradek.protocol.records.batch import decode_batch, parse_control_record

from .errors import StorageError
from .txn_index import AbortedTxn
from .validation import ORIGIN_CLIENT, ORIGIN_REPLICATION

SNAPSHOT_SUFFIX = ".snapshot"
SNAPSHOT_VERSION = 1
RETAINED_BATCHES = 5
NO_SEQUENCE = -1
INT32_MAX = 0x7FFFFFFF

OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
TRANSACTION_COORDINATOR_FENCED = 52
# A control batch holds one small marker record; decoding it never needs more.
MAX_MARKER_BATCH_BYTES = 1 << 20

log = structlog.get_logger("odradek.storage")

_SNAPSHOT_HEADER = struct.Struct(">hIi")
_ENTRY = struct.Struct(">qhiqiqiq")


class OutOfOrderSequence(StorageError):
    error_code = OUT_OF_ORDER_SEQUENCE_NUMBER


class InvalidProducerEpoch(StorageError):
    error_code = INVALID_PRODUCER_EPOCH


class InvalidTxnState(StorageError):
    error_code = INVALID_TXN_STATE


class TransactionCoordinatorFenced(StorageError):
    error_code = TRANSACTION_COORDINATOR_FENCED


class CorruptSnapshot(Exception):
    pass


class BatchMetadata:
    __slots__ = ("first_sequence", "last_sequence", "last_offset", "offset_delta", "timestamp")

    def __init__(self, first_sequence, last_sequence, last_offset, offset_delta, timestamp):
        self.first_sequence = first_sequence
        self.last_sequence = last_sequence
        self.last_offset = last_offset
        self.offset_delta = offset_delta
        self.timestamp = timestamp

    @property
    def first_offset(self) -> int:
        return self.last_offset - self.offset_delta


class ProducerEntry:
    __slots__ = ("producer_id", "epoch", "batches", "coordinator_epoch", "current_txn_first_offset", "last_timestamp")

    def __init__(self, producer_id: int, epoch: int = -1):
        self.producer_id = producer_id
        self.epoch = epoch
        self.batches: deque[BatchMetadata] = deque(maxlen=RETAINED_BATCHES)
        self.coordinator_epoch = -1
        self.current_txn_first_offset = -1
        self.last_timestamp = -1

    @property
    def last_sequence(self) -> int:
        return self.batches[-1].last_sequence if self.batches else NO_SEQUENCE

    def find_duplicate(self, epoch: int, first_sequence: int, last_sequence: int) -> BatchMetadata | None:
        if epoch != self.epoch:
            return None
        for batch in self.batches:
            if batch.first_sequence == first_sequence and batch.last_sequence == last_sequence:
                return batch
        return None


def read_end_txn_marker(buf, position: int):
    """The COMMIT/ABORT marker (a ControlRecord) of the control batch at ``position``; None for
    a control batch the cleaner emptied. Raises CorruptRecord for a control record that is not a
    marker: a producer's control batch must end a transaction."""
    batch = decode_batch(buf, position, max_decompressed_size=MAX_MARKER_BATCH_BYTES)
    if not batch.records:
        return None
    marker = parse_control_record(batch.records[0])
    if marker.coordinator_epoch is None:
        from odradek.protocol.errors import CorruptRecord

        raise CorruptRecord(f"control record type {marker.control_type} is not a transaction marker")
    return marker


def _last_sequence(base_sequence: int, last_offset_delta: int) -> int:
    # Sequences wrap from INT32_MAX to 0.
    return (base_sequence + last_offset_delta) % (INT32_MAX + 1) if base_sequence >= 0 else NO_SEQUENCE


def _in_sequence(last_sequence: int, next_sequence: int) -> bool:
    return next_sequence == last_sequence + 1 or (next_sequence == 0 and last_sequence == INT32_MAX)


class AppendPlan:
    """What :meth:`ProducerStateManager.prepare` decided. ``duplicate`` is the metadata of the
    batch already in the log when the append is a retry; else ``updates`` lists, per batch
    index, (index, producer_id, epoch, first_sequence, last_sequence, offset_delta, timestamp,
    transactional, control, marker) for the batches that carry a producer id."""

    __slots__ = ("duplicate", "updates")

    def __init__(self, duplicate=None, updates=()):
        self.duplicate = duplicate
        self.updates = updates


def write_snapshot(fs, path: str, data: bytes, *, other_thread: bool = False) -> None:
    """Write a producer snapshot as Kafka's ProducerStateManager does: in place, fsynced, with
    no temporary file or directory fsync. A snapshot a crash tore fails its CRC and is deleted
    at load, one it lost is not found: either way the next older snapshot and the batches
    after it rebuild the state (:meth:`ProducerStateManager.load_latest_snapshot`).
    ``other_thread``: see ``write_file``."""
    fs.write_file(path, data, sync=True, other_thread=other_thread)


class ProducerStateManager:
    def __init__(self, fs, directory: str):
        self.fs = fs
        self.directory = directory
        self.producers: dict[int, ProducerEntry] = {}
        self.map_end_offset = 0  # the state reflects the log below this offset
        # Open transactions, first offset -> producer id, in offset order (Kafka's ongoingTxns):
        # offsets only grow as batches are applied, and a snapshot's are sorted when loaded.
        self.ongoing_txns: dict[int, int] = {}
        # Completed transactions whose marker is not below the high watermark yet, first offset
        # -> marker offset (Kafka's unreplicatedTxns): still unstable for read_committed.
        self.unreplicated_txns: dict[int, int] = {}

    # ------------------------------------------------------------------ validate, commit
    def prepare(self, headers, origin: str = ORIGIN_CLIENT, markers=None) -> AppendPlan:
        """Check the batches (RecordBatchHeader list) of an append; pure. ``markers[i]`` is
        batch i's end-transaction marker (:func:`read_end_txn_marker`) when it is a control
        batch. Client appends are checked in full (sequence, epoch, transaction state),
        coordinator appends without sequences; replicated batches are taken as the leader
        wrote them. Raises OutOfOrderSequence / InvalidProducerEpoch / InvalidTxnState /
        TransactionCoordinatorFenced."""
        updates = []
        # Working view of the producers touched by this append (several batches may follow
        # each other); the real entries are not changed here.
        pending: dict[int, tuple[int, int, int, bool]] = {}  # id -> (epoch, last seq, coordinator epoch, txn open)
        for index, header in enumerate(headers):
            if header.producer_id < 0:
                continue
            producer_id = header.producer_id
            entry = self.producers.get(producer_id)
            control = header.is_control
            marker = markers[index] if control and markers is not None else None
            last_sequence = _last_sequence(header.base_sequence, header.last_offset_delta)
            if origin == ORIGIN_CLIENT and not control and entry is not None and producer_id not in pending:
                duplicate = entry.find_duplicate(header.producer_epoch, header.base_sequence, last_sequence)
                if duplicate is not None:
                    return AppendPlan(duplicate=duplicate)
            current = pending.get(producer_id) or (
                (entry.epoch, entry.last_sequence, entry.coordinator_epoch, entry.current_txn_first_offset >= 0)
                if entry is not None else (-1, NO_SEQUENCE, -1, False))
            epoch, current_last, coordinator_epoch, txn_open = current
            if control and marker is None:
                pass  # emptied by the cleaner: nothing to check or change (Kafka's append)
            elif control:
                if origin != ORIGIN_REPLICATION:
                    self._check_marker(producer_id, header, marker, epoch, coordinator_epoch)
                pending[producer_id] = (header.producer_epoch, current_last if header.producer_epoch == epoch
                                        else NO_SEQUENCE, marker.coordinator_epoch, False)
            else:
                if origin != ORIGIN_REPLICATION:
                    self._check_epoch(producer_id, header, epoch)
                    if origin == ORIGIN_CLIENT:
                        self._check_sequence(producer_id, header, epoch, current_last)
                    if txn_open and not header.is_transactional:
                        raise InvalidTxnState(
                            f"producer {producer_id}: a non-transactional batch while its transaction is open")
                pending[producer_id] = (header.producer_epoch, last_sequence, coordinator_epoch,
                                        txn_open or header.is_transactional)
            updates.append((index, producer_id, header.producer_epoch, header.base_sequence, last_sequence,
                            header.last_offset_delta, header.max_timestamp, header.is_transactional,
                            control, marker))
        return AppendPlan(updates=updates)

    @staticmethod
    def _check_epoch(producer_id: int, header, current_epoch: int) -> None:
        if header.producer_epoch < current_epoch:
            raise InvalidProducerEpoch(
                f"producer {producer_id}: epoch {header.producer_epoch} is older than the current {current_epoch}")

    @staticmethod
    def _check_sequence(producer_id: int, header, current_epoch: int, current_last: int) -> None:
        if header.producer_epoch != current_epoch:
            if header.base_sequence != 0 and current_epoch != -1:
                raise OutOfOrderSequence(f"producer {producer_id}: a new epoch {header.producer_epoch} must start "
                                         f"at sequence 0, not {header.base_sequence}")
        # A known epoch with no batch yet (its first batches were removed, or a marker bumped
        # the epoch: transaction version 2) takes sequence 0 only, as Kafka's checkSequence.
        elif current_epoch != -1 and not _in_sequence(current_last, header.base_sequence):
            raise OutOfOrderSequence(
                f"producer {producer_id}: sequence {header.base_sequence} does not follow {current_last}")

    @classmethod
    def _check_marker(cls, producer_id: int, header, marker, current_epoch: int, coordinator_epoch: int) -> None:
        cls._check_epoch(producer_id, header, current_epoch)
        if marker.coordinator_epoch < coordinator_epoch:
            raise TransactionCoordinatorFenced(
                f"producer {producer_id}: marker from coordinator epoch {marker.coordinator_epoch}, older than "
                f"the current {coordinator_epoch}")

    def apply(self, plan: AppendPlan, batch_last_offsets: list[int], end_offset: int) -> list[AbortedTxn]:
        """Record an append that was written; ``batch_last_offsets[i]`` is batch i's last
        offset. Returns the transactions its ABORT markers completed, for the ``.txnindex``."""
        aborted = []
        for (index, producer_id, epoch, first_sequence, last_sequence, offset_delta, timestamp,
             transactional, control, marker) in plan.updates:
            completed = self._update(producer_id, epoch, first_sequence, last_sequence, offset_delta, timestamp,
                                     transactional, control, marker, batch_last_offsets[index])
            if completed is not None:
                aborted.append(completed)
        self.map_end_offset = end_offset
        return aborted

    def _update(self, producer_id, epoch, first_sequence, last_sequence, offset_delta, timestamp,
                transactional, control, marker, last_offset) -> AbortedTxn | None:
        if control and marker is None:
            return None  # an emptied control batch changes nothing (Kafka's ProducerAppendInfo)
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = self.producers[producer_id] = ProducerEntry(producer_id, epoch)
        if epoch != entry.epoch:
            entry.epoch = epoch
            entry.batches.clear()
        entry.last_timestamp = timestamp
        if control:
            entry.coordinator_epoch = marker.coordinator_epoch
            return self._complete(entry, marker_offset=last_offset - offset_delta, aborted=marker.is_abort)
        if first_sequence >= 0:
            entry.batches.append(BatchMetadata(first_sequence, last_sequence, last_offset, offset_delta, timestamp))
        if transactional and entry.current_txn_first_offset < 0:
            entry.current_txn_first_offset = last_offset - offset_delta
            self.ongoing_txns[entry.current_txn_first_offset] = producer_id
        return None

    def _complete(self, entry: ProducerEntry, marker_offset: int, aborted: bool) -> AbortedTxn | None:
        """The marker at ``marker_offset`` ends ``entry``'s open transaction, if any (Kafka's
        CompletedTxn, completeTxn); an aborted one is returned with the last stable offset."""
        first_offset = entry.current_txn_first_offset
        entry.current_txn_first_offset = -1
        if first_offset < 0:
            return None  # no data in this transaction: nothing unstable, nothing to index
        # Kafka's lastStableOffset(completedTxn): the oldest open transaction of another
        # producer, else just past the marker.
        last_stable_offset = next((offset for offset, owner in self.ongoing_txns.items() if owner != entry.producer_id),
                                  marker_offset + 1)
        self.ongoing_txns.pop(first_offset, None)
        self.unreplicated_txns[first_offset] = marker_offset
        if not aborted:
            return None
        return AbortedTxn(entry.producer_id, first_offset, marker_offset, last_stable_offset)

    def replay(self, header, marker=None) -> AbortedTxn | None:
        """Rebuild state from a batch header read back from the log (recovery); ``marker`` as
        for :meth:`prepare`. Returns the transaction an ABORT marker completed, if any."""
        aborted = None
        if header.producer_id >= 0:
            aborted = self._update(header.producer_id, header.producer_epoch, header.base_sequence,
                                   _last_sequence(header.base_sequence, header.last_offset_delta),
                                   header.last_offset_delta, header.max_timestamp, header.is_transactional,
                                   header.is_control, marker, header.last_offset)
        self.map_end_offset = header.last_offset + 1
        return aborted

    def first_unstable_offset(self) -> int | None:
        """The first offset of the oldest transaction that is open, or completed by a marker
        the high watermark has not passed (Kafka's firstUnstableOffset); None if none."""
        oldest_open = next(iter(self.ongoing_txns), None)
        if not self.unreplicated_txns:
            return oldest_open
        oldest_unreplicated = min(self.unreplicated_txns)
        return oldest_unreplicated if oldest_open is None else min(oldest_open, oldest_unreplicated)

    def on_high_watermark_updated(self, high_watermark: int) -> None:
        """Completed transactions whose marker is below ``high_watermark`` are stable."""
        if self.unreplicated_txns:
            self.unreplicated_txns = {first: marker for first, marker in self.unreplicated_txns.items()
                                      if marker >= high_watermark}

    def clear(self, map_end_offset: int) -> None:
        """Forget every producer (the log restarts empty at ``map_end_offset``)."""
        self._set_producers({})
        self.map_end_offset = map_end_offset

    def _set_producers(self, producers: dict[int, ProducerEntry]) -> None:
        self.producers = producers
        self.ongoing_txns = {entry.current_txn_first_offset: entry.producer_id
                             for entry in sorted(producers.values(), key=lambda e: e.current_txn_first_offset)
                             if entry.current_txn_first_offset >= 0}
        self.unreplicated_txns = {}

    def expire(self, now_ms: int, expiration_ms: int) -> int:
        """Forget producers idle for ``expiration_ms`` (by their last batch's timestamp) with no
        open transaction, as Kafka's ``producer.id.expiration.ms``. Returns how many."""
        expired = [pid for pid, entry in self.producers.items()
                   if entry.current_txn_first_offset < 0 and now_ms - entry.last_timestamp >= expiration_ms]
        for pid in expired:
            del self.producers[pid]
        return len(expired)

    # -------------------------------------------------------------------------- snapshots
    def snapshot_path(self, offset: int) -> str:
        return f"{self.directory}/{offset:020d}{SNAPSHOT_SUFFIX}"

    def snapshot_offsets(self) -> list[int]:
        offsets = []
        for name in self.fs.listdir(self.directory):
            stem = name[: -len(SNAPSHOT_SUFFIX)]
            if name.endswith(SNAPSHOT_SUFFIX) and stem.isdigit():
                offsets.append(int(stem))
        return sorted(offsets)

    def encode(self) -> bytes:
        body = bytearray(struct.pack(">i", len(self.producers)))
        for producer_id in sorted(self.producers):
            entry = self.producers[producer_id]
            last = entry.batches[-1] if entry.batches else None
            body += _ENTRY.pack(
                producer_id, entry.epoch,
                last.last_sequence if last else NO_SEQUENCE,
                last.last_offset if last else -1,
                last.offset_delta if last else 0,
                entry.last_timestamp,
                entry.coordinator_epoch,
                entry.current_txn_first_offset)
        return struct.pack(">hI", SNAPSHOT_VERSION, crc32c.crc32c(body)) + bytes(body)

    def decode(self, data: bytes) -> dict[int, ProducerEntry]:
        if len(data) < _SNAPSHOT_HEADER.size:
            raise CorruptSnapshot("snapshot shorter than its header")
        version, crc, count = _SNAPSHOT_HEADER.unpack_from(data, 0)
        if version != SNAPSHOT_VERSION:
            raise CorruptSnapshot(f"snapshot version {version}")
        if crc32c.crc32c(data[6:]) != crc:
            raise CorruptSnapshot("snapshot CRC mismatch")
        if count < 0 or len(data) != _SNAPSHOT_HEADER.size + count * _ENTRY.size:
            raise CorruptSnapshot("snapshot size does not match its entry count")
        producers = {}
        for i in range(count):
            (producer_id, epoch, last_sequence, last_offset, offset_delta, timestamp, coordinator_epoch,
             txn_first_offset) = _ENTRY.unpack_from(data, _SNAPSHOT_HEADER.size + i * _ENTRY.size)
            entry = ProducerEntry(producer_id, epoch)
            if last_offset >= 0:
                first_sequence = (last_sequence - offset_delta) % (INT32_MAX + 1) if last_sequence >= 0 else NO_SEQUENCE
                entry.batches.append(BatchMetadata(first_sequence, last_sequence, last_offset, offset_delta, timestamp))
            entry.last_timestamp = timestamp
            entry.coordinator_epoch = coordinator_epoch
            entry.current_txn_first_offset = txn_first_offset
            producers[producer_id] = entry
        return producers

    def take_snapshot(self) -> None:
        """Write the state as of ``map_end_offset`` (no-op if that snapshot exists)."""
        due = self.snapshot_due()
        if due is not None:
            write_snapshot(self.fs, *due)

    def snapshot_due(self) -> tuple[str, bytes] | None:
        """(path, contents) of the snapshot :meth:`take_snapshot` would write, None if it exists
        (no append since the last one: Kafka's takeSnapshot too skips an offset already
        snapshotted; nor at offset 0: a log that never held a batch has no state to keep).
        Writing it (:func:`write_snapshot`) may run on another thread."""
        if self.map_end_offset == 0:
            return None
        path = self.snapshot_path(self.map_end_offset)
        return None if self.fs.exists(path) else (path, self.encode())

    def load_latest_snapshot(self, at_most: int, at_least: int = 0, keep_up_to: int | None = None) -> int:
        """Replace the state by the newest valid snapshot with offset in [at_least, at_most];
        corrupt snapshots, and those above ``at_most`` (above ``keep_up_to`` when given: a
        recovery replays from an older snapshot, but those up to the log end still hold), are
        deleted. Returns the offset the state now reflects (``at_least`` with an empty state if
        none qualifies)."""
        for offset in reversed(self.snapshot_offsets()):
            path = self.snapshot_path(offset)
            if offset > at_most:
                if offset > max(at_most, keep_up_to if keep_up_to is not None else at_most):
                    self.fs.unlink(path)
                continue
            if offset < at_least:
                break
            try:
                self._set_producers(self.decode(self.fs.read_file(path)))
            except CorruptSnapshot as error:
                # Kafka's ProducerStateManager too drops a snapshot it cannot read: an older one,
                # or the log itself, takes its place.
                log.warning("deleting a producer snapshot that does not parse", file=path, reason=str(error))
                self.fs.unlink(path)
                continue
            self.map_end_offset = offset
            return offset
        self.clear(at_least)
        return at_least

    def delete_snapshots_before(self, offset: int) -> None:
        for snapshot in self.snapshot_offsets():
            if snapshot < offset:
                self.fs.unlink(self.snapshot_path(snapshot))
