"""Log compaction (``cleanup.policy=compact``): keep the last record of every key.

A compacted log has a *clean* head (already compacted: every key at most once), a *dirty*
part after it (``first_dirty_offset``, the ``cleaner-offset-checkpoint`` entry, up to the
first uncleanable offset) and an uncleanable tail. :func:`cleanable_offsets` finds them as
Kafka's ``LogCleanerManager.cleanableOffsets`` does; the first uncleanable offset is the
lowest of: the active segment's base offset, the last stable offset (the high watermark, or
the first offset of an open transaction), and the first dirty segment whose newest record is
younger than ``min.compaction.lag.ms``. Cleaning stops at segment boundaries.

A clean (:class:`LogClean`, Kafka's ``Cleaner.doClean``):

1. builds the offset map, key -> offset of its last record, over the dirty part only (the
   clean part holds no duplicates among itself, so what the dirty part supersedes is all
   there is to remove);
2. groups the segments from the log start to the first uncleanable offset into runs whose
   sizes add up to at most ``segment.bytes`` (and whose indexes fit ``segment.index.bytes``),
   as Kafka's ``groupSegmentsBySize``, so segments that compaction shrank merge over time;
3. rewrites each group into one segment: a record stays if it is the last of its key, or
   if its key is not in the map (written before the dirty part and not superseded). A
   tombstone (null value) that stays gets a *delete horizon* (KIP-534: the batch's
   delete-horizon bit, base timestamp = now + ``delete.retention.ms``, record timestamps kept)
   the first time it is cleaned, and goes in the first clean after that horizon. Offsets never
   move: a batch keeps its base offset, last offset delta, producer id, epoch and base
   sequence; only records leave it, and a batch left empty goes, except
   - the batch holding a producer's last sequence (producer state must rebuild from the log,
     Kafka's ``RETAIN_EMPTY`` for active producers),
   - the last batch of each group (so a segment's next offset, and the log's offsets, stay
     what they were; Kafka keeps the last batch of the cleaning round for the same reason).

Transactions, as Kafka's ``CleanedTransactionMetadata``: the aborted transactions of the
``.txnindex`` files tell which transactional batches were aborted. Those are not mapped and
go (their records at least: the batch with a producer's last sequence stays, empty); batches
of committed transactions are compacted like any other. A marker stays while its
transaction still has a batch in the log (an ABORT keeps its ``.txnindex`` entry so far);
after that it gets a delete horizon like a tombstone and goes in the first clean past it,
unless it is its producer's last entry (it carries the producer's epoch). Records without a
key go, as in Kafka's cleaner (a compacted topic refuses them at produce time; they can only
come from the time the topic had ``cleanup.policy=delete``).

Crash safety, as Kafka's ``replaceSegments``: a group is written as ``<base>.log.cleaned``
(+ ``.index``/``.timeindex``/``.txnindex`` ``.cleaned``), fsynced; renamed to ``*.swap``
(indexes first, the log last); the old segments are deleted (``.deleted`` step); the
``.swap`` files are renamed into place (indexes first, the log last). On open,
:func:`complete_interrupted_swaps` deletes ``.cleaned`` files (an unfinished clean: the old
segments are intact) and finishes a swap whose ``<base>.log.swap`` exists (the old segments
it covers, found from its offset range, are deleted first). Either way the log is the
original or the cleaned one.

The work is a generator (:meth:`LogClean.steps`) that yields about every
:data:`STEP_BYTES` read (fsyncing its output every :data:`SYNC_BYTES`), so the broker's event loop can interleave a clean with serving; each
step checks the log was not closed and its segments not deleted meanwhile
(:class:`CleaningAborted`, the ``.cleaned`` files are removed).

The offset map's memory is bounded (``max_map_bytes``: the broker's
``log.cleaner.dedupe.buffer.size`` × ``log.cleaner.io.buffer.load.factor``, each key counted
as its length plus :data:`MAP_ENTRY_OVERHEAD`): when it fills, the clean covers the log up to
the last batch mapped, and the next clean starts there (Kafka's partially mapped segment).

Not yet: I/O throttling (``log.cleaner.io.max.bytes.per.second``).

Thread safety: runs on the log owner's thread (the broker's event loop), like any log mutation.
"""

from __future__ import annotations

import time

from odradek.protocol.records.batch import (
    CREATE_TIME, LOG_APPEND_TIME, Record, build_batch, decode_batch, parse_control_record)
from odradek.protocol.records.header import BATCH_HEADER_SIZE, read_batch_header

from .indexes import NO_TIMESTAMP
from .segment import INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX, LogSegment, segment_file_name

CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
# The files of a segment in the order a swap renames them: the log last, so that a
# ``.log.swap`` on disk means every index of the cleaned segment is there too.
SEGMENT_SUFFIXES = (INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX, LOG_SUFFIX)
MAX_DECOMPRESSED_BATCH_BYTES = 64 * 1024 * 1024
READ_CHUNK_BYTES = 1024 * 1024
STEP_BYTES = 1024 * 1024  # a step reads (and writes) about this much before yielding: ~10-20 ms
SYNC_BYTES = 8 * 1024 * 1024  # a clean fsyncs its output every this much written
INT32_MAX = 2**31 - 1
# What a key costs in the offset map besides its bytes: the bytes object, the int offset and
# the dict slot (CPython, 64-bit), for the ``log.cleaner.dedupe.buffer.size`` budget.
MAP_ENTRY_OVERHEAD = 100
# Kafka's offset and time index entries: 8 and 12 bytes.
OFFSET_INDEX_ENTRY = 8
TIME_INDEX_ENTRY = 12


class CleaningAborted(Exception):
    """The log changed under a clean (closed, or its segments deleted); nothing was swapped."""


class CleanerStats:
    """What one clean did (Kafka's CleanerStats)."""

    __slots__ = ("first_dirty_offset", "next_dirty_offset", "bytes_read", "bytes_written", "map_bytes_read",
                 "records_read", "records_removed", "segments_cleaned", "started", "elapsed_seconds")

    def __init__(self, first_dirty_offset: int = 0):
        self.first_dirty_offset = first_dirty_offset
        self.next_dirty_offset = first_dirty_offset
        self.bytes_read = 0  # bytes of segments read while rewriting them
        self.bytes_written = 0
        self.map_bytes_read = 0  # bytes of the dirty part read to build the offset map
        self.records_read = 0
        self.records_removed = 0
        self.segments_cleaned = 0  # old segments replaced by cleaned ones
        self.started = time.monotonic()
        self.elapsed_seconds = 0.0

    def __repr__(self) -> str:
        return "CleanerStats(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__
                                           if name != "started") + ")"


class LogToClean:
    """The offsets and sizes the cleaner decides with (Kafka's ``LogToClean``)."""

    __slots__ = ("log", "first_dirty_offset", "first_uncleanable_offset", "clean_bytes", "cleanable_bytes",
                 "max_compaction_delay_ms")

    def __init__(self, log, first_dirty_offset, first_uncleanable_offset, clean_bytes, cleanable_bytes,
                 max_compaction_delay_ms):
        self.log = log
        self.first_dirty_offset = first_dirty_offset
        self.first_uncleanable_offset = first_uncleanable_offset
        self.clean_bytes = clean_bytes
        self.cleanable_bytes = cleanable_bytes
        self.max_compaction_delay_ms = max_compaction_delay_ms

    @property
    def total_bytes(self) -> int:
        return self.clean_bytes + self.cleanable_bytes

    @property
    def cleanable_ratio(self) -> float:
        return self.cleanable_bytes / self.total_bytes if self.total_bytes else 0.0

    @property
    def needs_cleaning(self) -> bool:
        """Kafka's test: some bytes to clean, and either the dirty ratio above
        ``min.cleanable.dirty.ratio`` or a record older than ``max.compaction.lag.ms``."""
        if self.cleanable_bytes == 0:
            return False
        return self.max_compaction_delay_ms > 0 or self.cleanable_ratio > self.log.config.min_cleanable_dirty_ratio

    def __repr__(self) -> str:
        return (f"LogToClean({self.log.topic}-{self.log.partition}, dirty=[{self.first_dirty_offset}, "
                f"{self.first_uncleanable_offset}), ratio={self.cleanable_ratio:.3f}, "
                f"delay={self.max_compaction_delay_ms})")


def cleanable_offsets(log, checkpointed_dirty_offset: int | None, now_ms: int) -> LogToClean:
    """Where the dirty part of ``log`` starts and ends (segment boundaries), its size and the
    clean part's, and how long past ``max.compaction.lag.ms`` its oldest record is."""
    first_dirty = checkpointed_dirty_offset
    if first_dirty is None or first_dirty < log.log_start_offset or first_dirty > log.log_end_offset:
        first_dirty = log.log_start_offset  # no, or an invalid, checkpoint: all of it is dirty
    segments = log.segments
    limit = min(log.high_watermark, log.active_segment.base_offset)
    unstable = log.first_unstable_offset
    if unstable is not None:
        limit = min(limit, unstable)
    lag = max(log.config.min_compaction_lag_ms, 0)
    # The first uncleanable segment: the one holding ``limit``, or the first dirty segment
    # still within min.compaction.lag.ms; everything before it is cleanable.
    first_uncleanable = len(segments) - 1
    for index, segment in enumerate(segments[:-1]):
        next_base = segments[index + 1].base_offset
        if next_base > limit:
            first_uncleanable = index
            break
        if lag > 0 and next_base > first_dirty and segment.size and segment.largest_timestamp() > now_ms - lag:
            first_uncleanable = index
            break
    uncleanable_offset = max(segments[first_uncleanable].base_offset, first_dirty)
    clean_bytes = cleanable_bytes = 0
    delay = 0
    max_lag = max(log.config.max_compaction_lag_ms, 0)
    for index, segment in enumerate(segments):
        next_base = segments[index + 1].base_offset if index + 1 < len(segments) else log.log_end_offset
        if next_base <= first_dirty:
            clean_bytes += segment.size
        elif index < first_uncleanable:
            cleanable_bytes += segment.size
        if next_base > first_dirty and index < len(segments) - 1 and segment.size:
            first_timestamp = segment.first_batch_timestamp()
            if 0 < first_timestamp < now_ms - max_lag:
                delay = max(delay, now_ms - max_lag - first_timestamp)
    return LogToClean(log, first_dirty, uncleanable_offset, clean_bytes, cleanable_bytes, delay)


def group_segments_by_size(segments, max_size: int, max_index_size: int) -> list[list[LogSegment]]:
    """Runs of consecutive segments totalling at most ``max_size`` bytes of log and
    ``max_index_size`` bytes of each index, with offsets a 4-byte relative offset can address
    (Kafka's ``groupSegmentsBySize``)."""
    groups = []
    index = 0
    while index < len(segments):
        group = [segments[index]]
        log_size = segments[index].size
        offset_index_size = _offset_index_size(segments[index])
        time_index_size = _time_index_size(segments[index])
        index += 1
        while index < len(segments):
            candidate = segments[index]
            if (log_size + candidate.size > max_size
                    or offset_index_size + _offset_index_size(candidate) > max_index_size
                    or time_index_size + _time_index_size(candidate) > max_index_size
                    or (candidate.size and candidate.next_offset() - 1 - group[0].base_offset > INT32_MAX)):
                break
            group.append(candidate)
            log_size += candidate.size
            offset_index_size += _offset_index_size(candidate)
            time_index_size += _time_index_size(candidate)
            index += 1
        groups.append(group)
    return groups


def _offset_index_size(segment) -> int:
    return segment.offset_index.entries * OFFSET_INDEX_ENTRY


def _time_index_size(segment) -> int:
    return segment.time_index.entries * TIME_INDEX_ENTRY


def _raw_batches(segment: LogSegment, start_position: int = 0):
    """(position, header, bytes) of each batch of ``segment`` from ``start_position``, read in
    chunks of about READ_CHUNK_BYTES (one pread per chunk, not per batch)."""
    position = start_position
    end = segment.size
    while position < end:
        chunk = segment.log.pread(min(max(READ_CHUNK_BYTES, BATCH_HEADER_SIZE), end - position), position)
        offset = 0
        while offset + BATCH_HEADER_SIZE <= len(chunk):
            header = read_batch_header(chunk, offset)
            size = header.size_in_bytes
            if offset + size > len(chunk):
                break
            yield position + offset, header, chunk[offset:offset + size]
            offset += size
        if offset == 0:
            # A batch larger than the chunk: read it whole.
            header = read_batch_header(chunk, 0)
            if position + header.size_in_bytes > end:
                return  # a torn tail (recovery cuts it); nothing more to clean here
            yield position, header, segment.log.pread(header.size_in_bytes, position)
            offset = header.size_in_bytes
        position += offset


def _decode(raw: bytes):
    return decode_batch(raw, 0, max_decompressed_size=MAX_DECOMPRESSED_BATCH_BYTES)


class LogClean:
    """One clean of one log: :meth:`steps` does the work in slices, :meth:`run` all at once."""

    def __init__(self, log, to_clean: LogToClean, now_ms: int, max_map_bytes: int | None = None):
        """``max_map_bytes``: the offset map's memory budget (estimated; None: unbounded)."""
        self.log = log
        self.to_clean = to_clean
        self.now_ms = now_ms
        self.max_map_bytes = max_map_bytes
        self.map_end = to_clean.first_uncleanable_offset
        self.stats = CleanerStats(to_clean.first_dirty_offset)
        self._read_since_yield = 0

    def run(self) -> CleanerStats:
        for _ in self.steps():
            pass
        return self.stats

    def _account(self, size: int) -> bool:
        self._read_since_yield += size
        if self._read_since_yield >= STEP_BYTES:
            self._read_since_yield = 0
            return True
        return False

    def _check_still_valid(self, segments) -> None:
        log = self.log
        if log.closed or any(segment not in log.segments for segment in segments):
            raise CleaningAborted(f"{log.directory} changed during a clean")

    def steps(self):
        log, to_clean, stats = self.log, self.to_clean, self.stats
        end = to_clean.first_uncleanable_offset
        if end <= to_clean.first_dirty_offset:
            stats.next_dirty_offset = to_clean.first_dirty_offset
            return
        involved = [segment for index, segment in enumerate(log.segments[:-1])
                    if log.segments[index + 1].base_offset <= end]
        dirty = [segment for index, segment in enumerate(involved)
                 if log.segments[index + 1].base_offset > to_clean.first_dirty_offset]

        # 1. The offset map over the dirty part, until it is full (Kafka's buildOffsetMap): the
        #    clean then ends after the last batch mapped, and the next one goes on from there.
        latest: dict[bytes, int] = {}
        map_bytes = 0
        transactions = CleanedTransactionMetadata(log.aborted_transactions(to_clean.first_dirty_offset, end))
        for segment in dirty:
            for _, header, raw in _raw_batches(segment):
                stats.map_bytes_read += len(raw)
                if header.is_control:
                    batch = _decode(raw)
                    transactions.on_control_batch_read(
                        header, parse_control_record(batch.records[0]) if batch.records else None)
                elif not transactions.on_batch_read(header) and header.last_offset >= to_clean.first_dirty_offset:
                    batch = _decode(raw)
                    base = batch.base_offset
                    for record in batch.records:
                        key = record.key
                        if key is not None:
                            if key not in latest:
                                map_bytes += len(key) + MAP_ENTRY_OVERHEAD
                            latest[key] = base + record.offset_delta
                if self.max_map_bytes is not None and map_bytes >= self.max_map_bytes and header.next_offset < end:
                    end = header.next_offset
                    break
                if self._account(len(raw)):
                    yield
                    self._check_still_valid(involved)
            if end != to_clean.first_uncleanable_offset:
                break  # the map is full
        self.map_end = end
        involved = [segment for segment in involved if segment.base_offset < end]

        # 2. Rewrite every group of the cleanable part.
        last_offset_of_producer = {pid: entry.batches[-1].last_offset
                                   for pid, entry in log.producer_state.producers.items() if entry.batches}
        transactions = CleanedTransactionMetadata(log.aborted_transactions(log.segments[0].base_offset, end))
        for group in group_segments_by_size(involved, log.config.segment_bytes, log.config.segment_index_bytes):
            yield from self._clean_group(group, latest, last_offset_of_producer, transactions)
        stats.next_dirty_offset = end
        stats.elapsed_seconds = time.monotonic() - stats.started

    def _clean_group(self, group, latest, last_offset_of_producer, transactions):
        log, stats = self.log, self.stats
        directory, base = log.directory, group[0].base_offset
        group_last_offset = group[-1].next_offset() - 1
        delete_horizon = self.now_ms + log.config.delete_retention_ms
        remove_cleaned_files(log.fs, directory, base)
        cleaned = LogSegment(log.fs, directory, base, index_interval_bytes=log.config.index_interval_bytes,
                             max_index_size=log.config.segment_index_bytes, now_ms=self.now_ms, suffix=CLEANED_SUFFIX)
        changed = len(group) > 1
        swapped = closed = False
        synced = 0
        try:
            for segment in group:
                for _, header, raw in _raw_batches(segment):
                    stats.bytes_read += len(raw)
                    producer_offset = last_offset_of_producer.get(header.producer_id, -1)
                    kept, indexed_timestamp = self._filter_batch(
                        header, raw, latest, delete_horizon, keep_empty=header.last_offset == group_last_offset,
                        # The batch with the producer's last sequence, or a marker after it
                        # (the producer's last entry: its epoch), stays for producer state.
                        producer_last=header.has_producer_id and (
                            producer_offset == header.last_offset
                            or (header.is_control and producer_offset < header.base_offset)),
                        transactions=transactions)
                    if kept is not raw:
                        changed = True
                    if kept:
                        cleaned.append(kept, last_offset=header.last_offset, max_timestamp=indexed_timestamp,
                                       offset_of_max_timestamp=header.last_offset)
                    if self._account(len(raw)):
                        if cleaned.size - synced >= SYNC_BYTES:
                            # fsync as we go: the flush before the swap then has little left to
                            # write and does not hold the event loop for a whole segment's worth.
                            cleaned.log.fsync()
                            synced = cleaned.size
                        yield
                        self._check_still_valid(group)
            kept_aborted, transactions.cleaned_index = transactions.cleaned_index, []
            if not changed and kept_aborted == group[0].txn_index.entries():
                return
            self._check_still_valid(group)
            for entry in kept_aborted:
                cleaned.txn_index.append(entry)
            cleaned.on_become_inactive()
            cleaned.flush()
            stats.bytes_written += cleaned.size
            cleaned.close()
            closed = True
            log.replace_segments(group, base)
            swapped = True
            stats.segments_cleaned += len(group)
        finally:
            if not swapped:
                if not closed:
                    cleaned.close()
                remove_cleaned_files(log.fs, directory, base)

    def _filter_batch(self, header, raw, latest, delete_horizon, keep_empty, producer_last, transactions):
        """The bytes of the batch once compacted (``raw`` itself when nothing changes, b"" when
        it goes, else a rebuilt batch: same offsets and producer fields, fewer records) and the
        timestamp the time index may give it (the largest of the records left, as Kafka's
        DumpLogSegments checks; none for an emptied batch)."""
        stats = self.stats
        if header.is_control:
            return self._filter_marker(header, raw, delete_horizon, keep_empty or producer_last, transactions)
        if transactions.on_batch_read(header):
            # Data of an aborted transaction: no reader may see it; it goes, records first.
            stats.records_removed += header.records_count
            stats.records_read += header.records_count
            if not (keep_empty or producer_last):
                return b"", NO_TIMESTAMP
            return _rebuild(_decode(raw), header, [], None, header.max_timestamp), NO_TIMESTAMP
        if header.base_offset >= self.map_end:
            return raw, header.max_timestamp  # past the map's end: the next clean's dirty part
        batch = _decode(raw)
        records = batch.records
        stats.records_read += len(records)
        horizon = batch.delete_horizon
        tombstones_expired = horizon is not None and self.now_ms >= horizon
        base = batch.base_offset
        kept = []
        for record in records:
            if record.key is None:
                continue  # Kafka's cleaner counts it as an invalid message and drops it
            offset = base + record.offset_delta
            if latest.get(record.key, offset) > offset:
                continue  # superseded
            if record.value is None and tombstones_expired:
                continue
            kept.append(record)
        has_tombstone = any(record.value is None and record.key is not None for record in kept)
        new_horizon = (horizon if horizon is not None else delete_horizon) if has_tombstone else None
        if len(kept) == len(records) and new_horizon == horizon:
            return raw, header.max_timestamp
        stats.records_removed += len(records) - len(kept)
        if not kept and not (keep_empty or producer_last):
            return b"", NO_TIMESTAMP
        if header.is_log_append_time or not kept:
            # An emptied batch keeps its header's, as Kafka's writeEmptyHeader (producer state
            # rebuilt from it keeps the producer's last timestamp), but is not indexed by it.
            max_timestamp = batch.max_timestamp
        else:
            max_timestamp = max(batch.base_timestamp + record.timestamp_delta for record in kept)
        return _rebuild(batch, header, kept, new_horizon, max_timestamp), max_timestamp if kept else NO_TIMESTAMP

    def _filter_marker(self, header, raw, delete_horizon, keep, transactions):
        """A transaction marker stays until its transaction's data is all gone (Kafka's
        CleanedTransactionMetadata); it then gets a delete horizon, and goes at the first clean
        after it, unless ``keep`` (its producer's last entry, which carries the producer's
        epoch, or the last batch of the group)."""
        batch = _decode(raw)
        control = parse_control_record(batch.records[0]) if batch.records else None
        if not transactions.on_control_batch_read(header, control) or keep:
            return raw, header.max_timestamp
        horizon = batch.delete_horizon
        if horizon is None:
            return _rebuild(batch, header, batch.records, delete_horizon, batch.max_timestamp), header.max_timestamp
        if self.now_ms >= horizon:
            self.stats.records_removed += len(batch.records)
            return b"", NO_TIMESTAMP
        return raw, header.max_timestamp


def _rebuild(batch, header, kept, horizon, max_timestamp) -> bytes:
    """``batch`` holding only ``kept`` (same offsets, producer fields and attributes), with the
    delete horizon ``horizon`` (None: none). Absolute record timestamps are kept; with a delete
    horizon they are relative to it."""
    new_base = horizon if horizon is not None else (
        base_timestamp_of(batch, kept) if batch.delete_horizon is not None else batch.base_timestamp)
    shift = batch.base_timestamp - new_base
    if shift:
        kept = [Record(r.offset_delta, r.timestamp_delta + shift, r.key, r.value, r.headers, r.attributes)
                for r in kept]
    return build_batch(
        kept, base_offset=batch.base_offset, base_timestamp=new_base, max_timestamp=max_timestamp,
        compression=batch.compression, timestamp_type=LOG_APPEND_TIME if header.is_log_append_time else CREATE_TIME,
        producer_id=batch.producer_id, producer_epoch=batch.producer_epoch, base_sequence=batch.base_sequence,
        transactional=header.is_transactional, control=header.is_control,
        partition_leader_epoch=batch.partition_leader_epoch, delete_horizon=horizon,
        last_offset_delta=batch.last_offset_delta)


class CleanedTransactionMetadata:
    """What a clean knows of the transactions in the range it reads, in offset order (Kafka's
    ``CleanedTransactionMetadata``): from the aborted transactions of the transaction indexes,
    whether a transactional batch was aborted, and whether a marker may go (an ABORT once no
    batch of its transaction is left, a COMMIT once its transaction has no batch left).
    ``cleaned_index`` collects the aborted transactions the segment being written still needs
    in its ``.txnindex``."""

    def __init__(self, aborted):
        self._pending = sorted(aborted, key=lambda entry: entry.first_offset)
        self._ongoing_aborted: dict[int, list] = {}  # producer id -> [AbortedTxn, batch seen]
        self._ongoing_committed: set[int] = set()
        self.cleaned_index: list = []

    def _start_aborted_up_to(self, offset: int) -> None:
        while self._pending and self._pending[0].first_offset <= offset:
            entry = self._pending.pop(0)
            self._ongoing_aborted[entry.producer_id] = [entry, False]

    def on_batch_read(self, header) -> bool:
        """Whether this data batch belongs to an aborted transaction."""
        self._start_aborted_up_to(header.last_offset)
        if not header.is_transactional:
            return False
        ongoing = self._ongoing_aborted.get(header.producer_id)
        if ongoing is not None:
            ongoing[1] = True
            return True
        self._ongoing_committed.add(header.producer_id)
        return False

    def on_control_batch_read(self, header, control) -> bool:
        """Whether this control batch may be removed (its transaction has no data left)."""
        self._start_aborted_up_to(header.last_offset)
        if control is None:
            return False
        if control.is_abort:
            ongoing = self._ongoing_aborted.pop(header.producer_id, None)
            if ongoing is not None and ongoing[1]:
                self.cleaned_index.append(ongoing[0])  # its data is still in the log: keep both
                return False
            return True
        if control.is_commit:
            if header.producer_id in self._ongoing_committed:
                self._ongoing_committed.discard(header.producer_id)
                return False
            return True
        return False


def base_timestamp_of(batch, records) -> int:
    """The base timestamp a batch without a delete horizon gets: its first record's."""
    if not records:
        return batch.max_timestamp
    return min(batch.base_timestamp + record.timestamp_delta for record in records)


def clean(log, first_dirty_offset: int | None = None, now_ms: int | None = None) -> CleanerStats:
    """Compact ``log`` now, whatever its dirty ratio (``first_dirty_offset`` defaults to the
    log start: all of it is dirty). Returns what it did, ``next_dirty_offset`` included."""
    now_ms = log.clock() if now_ms is None else now_ms
    if not log.config.compacts:
        return CleanerStats(log.log_start_offset)
    return LogClean(log, cleanable_offsets(log, first_dirty_offset, now_ms), now_ms).run()


# ------------------------------------------------------------------------------ swapping
def _path(directory: str, base_offset: int, suffix: str) -> str:
    return f"{directory}/{segment_file_name(base_offset, suffix)}"


def remove_cleaned_files(fs, directory: str, base_offset: int) -> None:
    for suffix in SEGMENT_SUFFIXES:
        path = _path(directory, base_offset, suffix) + CLEANED_SUFFIX
        if fs.exists(path):
            fs.unlink(path)


def rename_all(fs, directory: str, base_offset: int, from_suffix: str, to_suffix: str) -> None:
    """Rename the files of segment ``base_offset`` (indexes first, the log last)."""
    for suffix in SEGMENT_SUFFIXES:
        path = _path(directory, base_offset, suffix)
        if fs.exists(path + from_suffix):
            fs.rename(path + from_suffix, path + to_suffix)
    fs.fsync_dir(directory)


def _next_offset_of_log_file(fs, path: str) -> int | None:
    """The offset after the last whole batch of the log file at ``path`` (None if empty)."""
    handle = fs.open(path)
    try:
        size, position, next_offset = handle.size(), 0, None
        while position + BATCH_HEADER_SIZE <= size:
            header = read_batch_header(handle.pread(BATCH_HEADER_SIZE, position), 0)
            if position + header.size_in_bytes > size:
                break
            next_offset = header.last_offset + 1
            position += header.size_in_bytes
        return next_offset
    finally:
        handle.close()


def complete_interrupted_swaps(fs, directory: str) -> None:
    """At open: drop unfinished cleans (``*.cleaned``, and index ``.swap`` files without their
    log's); finish interrupted swaps (a ``<base>.log.swap`` replaces the segments its offsets
    cover)."""
    names = fs.listdir(directory)
    for name in names:
        if name.endswith(CLEANED_SUFFIX):
            fs.unlink(f"{directory}/{name}")
    swapped_logs = sorted(int(name.split(".", 1)[0]) for name in names
                          if name.endswith(LOG_SUFFIX + SWAP_SUFFIX) and name.split(".", 1)[0].isdigit())
    for base in swapped_logs:
        end = _next_offset_of_log_file(fs, _path(directory, base, LOG_SUFFIX) + SWAP_SUFFIX)
        end = base + 1 if end is None else end
        for name in fs.listdir(directory):
            stem, _, suffix = name.partition(".")
            if not stem.isdigit() or "." + suffix not in SEGMENT_SUFFIXES:
                continue
            old_base = int(stem)
            if old_base == base:
                # An index already renamed into place belongs to the cleaned segment (the old
                # one was deleted before any rename into place): only the ones with a .swap go.
                if fs.exists(f"{directory}/{name}{SWAP_SUFFIX}"):
                    fs.unlink(f"{directory}/{name}")
            elif base < old_base < end:
                fs.unlink(f"{directory}/{name}")
        rename_all(fs, directory, base, SWAP_SUFFIX, "")
    for name in fs.listdir(directory):
        if name.endswith(SWAP_SUFFIX):  # index swaps without their log: the clean did not finish
            fs.unlink(f"{directory}/{name}")
