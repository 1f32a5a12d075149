"""One segment of a partition log: ``<base>.log`` plus its ``.index`` and ``.timeindex``.

File names are the segment's base offset, zero-padded to 20 digits, as Kafka names them
(``00000000000000001234.log``). The base offset is <= every offset in the segment and > every
offset of the segments before it.

``.log`` format: record batches (magic 2, see :mod:`odradek.protocol.records.header`) one
after the other, exactly as producers sent them except for the fields the broker patches
(base offset, partition leader epoch, and for LogAppendTime the max timestamp, attributes and
CRC). No header, no footer, no padding: the file is the concatenation of the batches, so a
range of it can go to a consumer's socket as is. See :mod:`odradek.storage.indexes` for the
two index files.

The one exception is the active segment of a log synced often (acks=all): its file may run
past the batches in zeros written ahead of the appends (:meth:`LogSegment.prepare_space`, as
Kafka's ``preallocate`` but written, not sparse). An fdatasync after an append into space the
file already has is a data write and a cache flush; after an append that grows the file it is
also a journal commit for the new size, about twice as long (``benchmarks/sync_cost.py``). The
zeros are cut when the segment rolls and before the flush of a clean shutdown; recovery cuts
them after a crash (a zero header is no batch) without counting them as lost bytes.

The segment tracks its size and the data not yet fsynced; it never interprets record contents
(only the 61-byte batch headers, and whole batches' CRCs during recovery).

Thread safety: single-threaded, owned by its :class:`~odradek.storage.partition_log.PartitionLog`.
"""

from __future__ import annotations

import functools

import structlog

from odradek.protocol.errors import CorruptRecord, ProtocolError
from odradek.protocol.primitives import read_varint, read_varlong
from odradek.protocol.records.header import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    batch_crc_matches,
    read_batch_header,
)

from .deletions import PendingDeletions
from .indexes import NO_TIMESTAMP, CorruptIndex, OffsetIndex, TimeIndex
from .txn_index import TransactionIndex

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
TXN_INDEX_SUFFIX = ".txnindex"
DELETED_SUFFIX = ".deleted"
# The smallest possible batch (a header with no records) and an upper bound used to reject
# absurd lengths in recovery before allocating anything.
MIN_BATCH_SIZE = BATCH_HEADER_SIZE
MAX_BATCH_SIZE = 0x7FFFFFFF
# Bound on decompressing one batch to find a record by timestamp (ListOffsets).
MAX_DECOMPRESSED_BATCH_BYTES = 64 * 1024 * 1024
# What prepare_space writes (and the recovery's zero check reads) at a time.
ZEROS_CHUNK = 1 << 20

log = structlog.get_logger("odradek.storage")


def segment_file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


class FileRegion:
    """A byte range of a segment file: what a read returns instead of bytes.

    ``file`` is the segment's :class:`~odradek.storage.fs.OsFile` on the OS backend: the server
    reads the region from its ``fileno()`` with ``os.preadv`` in chunks (``RegionReader`` in
    broker/records_source.py, see ``SEND_CHUNK_SIZE`` in broker/server.py), asking for the
    descriptor again for each chunk (the descriptor budget may have closed it in between; it
    is reopened); on the memory backend it has no fileno and the server uses :meth:`read`. The
    region keeps the file object alive, and a removed file keeps its descriptor, so a segment
    deleted meanwhile (unlinked, not truncated) still reads correctly.
    """

    __slots__ = ("file", "position", "length", "_handle")

    def __init__(self, handle, position: int, length: int):
        self._handle = handle
        self.file = handle.file
        self.position = position
        self.length = length

    def read(self) -> bytes:
        """The region's bytes (a copy: tests and files without a fileno only)."""
        return self._handle.pread(self.length, self.position)

    def __repr__(self) -> str:
        return f"FileRegion({getattr(self._handle, 'path', '?')}, position={self.position}, length={self.length})"


class BatchInfo:
    """Where a batch sits in a segment, and the header fields the log needs."""

    __slots__ = ("position", "size", "base_offset", "last_offset", "max_timestamp", "header")

    def __init__(self, position: int, header):
        self.position = position
        self.header = header
        self.size = header.size_in_bytes
        self.base_offset = header.base_offset
        self.last_offset = header.last_offset
        self.max_timestamp = header.max_timestamp


class LogSegment:
    """A segment: append batches, find the batch holding an offset, recover, truncate.

    State owned here: the log file's valid size, the bytes since the last index entry, the
    max timestamp so far (and the offset of the batch that holds it), the timestamp that
    ``segment.ms`` rolling counts from, and the position up to which the file is fsynced.
    """

    def __init__(self, fs, directory: str, base_offset: int, *, index_interval_bytes: int,
                 max_index_size: int, now_ms: int, suffix: str = ""):
        self.fs = fs
        self.directory = directory
        self.base_offset = base_offset
        self.index_interval_bytes = index_interval_bytes
        self.log_path = f"{directory}/{segment_file_name(base_offset, LOG_SUFFIX)}{suffix}"
        self.log = fs.open(self.log_path)
        self.size = self.log.size()
        # The file's own size: above ``size`` while zeros written ahead follow the batches.
        self.file_end = self.size
        self._trim_unsynced = False  # zeros cut since the last flush: the new size must be synced
        self.flushed_size = self.size
        self.offset_index = OffsetIndex(
            fs, f"{directory}/{segment_file_name(base_offset, INDEX_SUFFIX)}{suffix}", base_offset, max_index_size)
        self.time_index = TimeIndex(
            fs, f"{directory}/{segment_file_name(base_offset, TIME_INDEX_SUFFIX)}{suffix}", base_offset, max_index_size)
        self.txn_index = TransactionIndex(
            fs, f"{directory}/{segment_file_name(base_offset, TXN_INDEX_SUFFIX)}{suffix}")
        self.bytes_since_last_index_entry = 0
        self._max_timestamp: tuple[int, int] | None = None  # (timestamp, offset), lazily from the time index
        self._rolling_timestamp: int | None = None
        self.created_ms = now_ms
        self._next_offset: int | None = None
        self._indexes_verified = False
        self.roll_jitter_ms = 0  # set by the log from segment.jitter.ms
        # Whether the directory entries of this segment's files are known durable (an fsync of
        # the partition directory since they were created); the log keeps it.
        self.names_durable = False

    # -- reading headers ---------------------------------------------------------------------
    def _header_at(self, position: int):
        raw = self.log.pread(BATCH_HEADER_SIZE, position)
        return read_batch_header(raw, 0)

    def batches(self, start_position: int = 0, end_position: int | None = None):
        """Yield :class:`BatchInfo` for each batch from ``start_position``. Trusts the log
        (used below the recovery point and after recovery); stops at a torn tail. A header
        that does not parse, or whose offsets cannot be in this segment after the previous
        batch (the base offset is outside the CRC), raises CorruptRecord: a damaged segment."""
        end = self.size if end_position is None else end_position
        position = start_position
        previous_last = self.base_offset - 1
        while position + BATCH_HEADER_SIZE <= end:
            header = self._header_at(position)
            if header.base_offset <= previous_last or header.last_offset_delta < 0 \
                    or not self.offset_index.can_hold(header.last_offset):
                raise CorruptRecord(f"{self.log_path}: the batch at byte {position} has offsets "
                                    f"{header.base_offset}-{header.last_offset}, out of place")
            if position + header.size_in_bytes > end:
                return
            yield BatchInfo(position, header)
            previous_last = header.last_offset
            position += header.size_in_bytes

    def _indexed_position(self, offset: int) -> int:
        """Position to start scanning from for ``offset``, per the offset index. The batch
        found there must start at or below the indexed offset and inside the segment, else
        the index is corrupt (a bit flip can make an entry plausible but wrong)."""
        self.verify_indexes()
        indexed_offset, position = self.offset_index.lookup(offset)
        if position == 0:
            return 0
        try:
            header = self._header_at(position)
        except ProtocolError:
            header = None
        if header is None or not (self.base_offset <= header.base_offset <= indexed_offset):
            raise CorruptIndex(f"{self.offset_index.path}: entry ({indexed_offset}, {position}) is not a batch")
        return position

    def find_batch(self, offset: int, start_position: int = 0) -> BatchInfo | None:
        """The first batch whose last offset is >= ``offset`` (index lookup, then scan)."""
        for batch in self.batches(max(self._indexed_position(offset), start_position)):
            if batch.last_offset >= offset:
                return batch
        return None

    def verify_indexes(self) -> None:
        """Check the indexes once (lazily: an inactive segment's indexes are read on first
        use); rebuild them from the log if they cannot be right."""
        if self._indexes_verified:
            return
        self._indexes_verified = True  # set first: the check itself looks batches up
        try:
            self.check_indexes()
        except (CorruptIndex, ProtocolError) as error:
            log.warning("rebuilding the indexes of a segment from its log", index=self.offset_index.path,
                        time_index=self.time_index.path, reason=str(error))
            self.rebuild_indexes()
        except OSError:
            self._indexes_verified = False  # not checked after all: try again next time
            raise

    # -- state -----------------------------------------------------------------------------
    @property
    def max_timestamp_and_offset(self) -> tuple[int, int]:
        if self._max_timestamp is None:
            self._max_timestamp = self._read_largest_timestamp()
        return self._max_timestamp

    def _read_largest_timestamp(self) -> tuple[int, int]:
        timestamp, offset = self.time_index.last_entry()
        try:
            for batch in self.batches(self._indexed_position(offset)):
                if batch.max_timestamp > timestamp and batch.header.records_count:  # see _scan_and_index
                    timestamp, offset = batch.max_timestamp, batch.last_offset
        except CorruptIndex:
            self.rebuild_indexes()  # finds the largest timestamp on the way
            return self._max_timestamp
        except ProtocolError:
            pass  # a damaged batch (a trusted segment's): the largest timestamp before it
        return timestamp, offset

    def largest_timestamp(self) -> int:
        """What time-based retention compares: the max record timestamp, or the file's mtime
        when no record carries a timestamp."""
        timestamp = self.max_timestamp_and_offset[0]
        return timestamp if timestamp >= 0 else self.fs.mtime_ms(self.log_path)

    def next_offset(self) -> int:
        """The offset after the last batch (the base offset when empty)."""
        if self._next_offset is None:
            last = None
            for last in self.batches(self._indexed_position(self.offset_index.last_offset())):  # noqa: B007 - keeps the last
                pass
            self._next_offset = last.last_offset + 1 if last else self.base_offset
        return self._next_offset

    def first_batch_timestamp(self) -> int:
        if self._rolling_timestamp is None and self.size > 0:
            self._rolling_timestamp = self._header_at(0).max_timestamp
        return self._rolling_timestamp if self._rolling_timestamp is not None else NO_TIMESTAMP

    def time_waited_for_roll(self, now_ms: int, max_timestamp_in_append: int) -> int:
        first = self.first_batch_timestamp()
        if first >= 0:
            return max_timestamp_in_append - first
        return now_ms - self.created_ms

    def should_roll(self, *, append_size: int, max_timestamp: int, last_offset: int, now_ms: int,
                    segment_bytes: int, segment_ms: int, jitter_ms: int = 0) -> bool:
        reached_roll_ms = self.time_waited_for_roll(now_ms, max_timestamp) > segment_ms - jitter_ms
        return (
            self.size > segment_bytes - append_size
            or (self.size > 0 and reached_roll_ms)
            or self.offset_index.is_full
            or self.time_index.is_full
            or not self.offset_index.can_hold(last_offset)
        )

    # -- writing ---------------------------------------------------------------------------
    def append(self, data, *, last_offset: int, max_timestamp: int, offset_of_max_timestamp: int) -> None:
        """Write ``data`` (whole batches, offsets assigned) at the end; add index entries.

        On an I/O error the file is cut back to where it was and the error propagates: the
        segment is unchanged."""
        position = self.size
        try:
            self.log.pwrite(data, position)
        except OSError:
            try:
                self.log.truncate(position)
                self.file_end = position
            except OSError:
                pass
            raise
        if position == 0:
            self._rolling_timestamp = max_timestamp
        self.size = position + len(data)
        self.file_end = max(self.file_end, self.size)
        self._next_offset = last_offset + 1
        current_max = self.max_timestamp_and_offset
        if max_timestamp > current_max[0]:
            self._max_timestamp = (max_timestamp, offset_of_max_timestamp)
        if self.bytes_since_last_index_entry > self.index_interval_bytes:
            self.offset_index.append(last_offset, position)
            self.time_index.maybe_append(*self._max_timestamp)
            self.bytes_since_last_index_entry = 0
        self.bytes_since_last_index_entry += len(data)

    def prepare_space(self, end: int) -> None:
        """Write zeros from the file's end up to ``end``, so that the appends up to there
        land in space the file has (see the module doc). Best effort: a failed write (a full
        disk) cuts the file back and leaves the appends to grow it."""
        start = self.file_end
        if end <= start:
            return
        try:
            zeros = _zeros()
            while start < end:
                length = min(end - start, ZEROS_CHUNK)
                self.log.pwrite(zeros[:length], start)
                start += length
        except OSError as error:
            log.warning("could not write zeros ahead of a segment's appends", file=self.log_path, reason=str(error))
            try:
                self.log.truncate(self.file_end)
            except OSError:
                self.file_end = max(self.file_end, start)  # the zeros that were written stay
            return
        self.file_end = end

    def trim(self) -> None:
        """Cut the zeros written ahead of the appends; the next :meth:`flush` syncs the cut."""
        if self.file_end > self.size:
            self.log.truncate(self.size)
            self.file_end = self.size
            self._trim_unsynced = True

    def flush(self) -> None:
        self.log.fsync()
        self.offset_index.flush()
        self.time_index.flush()
        self.txn_index.flush()
        self.flushed_size = self.size
        self._trim_unsynced = False

    def sync_targets(self) -> list:
        """:meth:`flush` split for another thread: the index entries are written now; the
        returned targets fsync the log and its indexes. The caller sets ``flushed_size`` to
        the size of now once they succeeded."""
        targets = [self.log.sync_target()]
        try:
            for index in (self.offset_index, self.time_index, self.txn_index):
                target = index.sync_target()
                if target is not None:
                    targets.append(target)
        except BaseException:
            for target in targets:
                target.close()
            raise
        return targets

    @property
    def has_unflushed_data(self) -> bool:
        return self.flushed_size < self.size or self._trim_unsynced

    def on_become_active(self) -> None:
        self.offset_index.preallocate()
        self.time_index.preallocate()

    def on_become_inactive(self) -> None:
        """Rolled away from: cut the zeros written ahead, write the final time index entry
        (the segment's max timestamp) and trim both indexes to their entries."""
        self.trim()
        timestamp, offset = self.max_timestamp_and_offset
        if timestamp >= 0:
            self.time_index.maybe_append(timestamp, offset, final=True)
        self.offset_index.trim()
        self.time_index.trim()

    def close(self) -> None:
        # Segments whose indexes were never loaded were finalised when they rolled: closing
        # them must not read every index of the log.
        if not self.log.closed and (self.offset_index.loaded or self.time_index.loaded):
            try:
                self.on_become_inactive()
            except (CorruptIndex, ProtocolError) as error:
                # Indexes left untrimmed are checked (and rebuilt if need be) at the next open.
                log.warning("could not finalise the indexes of a segment", file=self.log_path, reason=str(error))
        self.offset_index.close()
        self.time_index.close()
        self.log.close()

    # -- recovery and truncation -----------------------------------------------------------
    def check_indexes(self) -> None:
        """Raise CorruptIndex unless both indexes are plausible for this log."""
        self.offset_index.check(self.size)
        if self.offset_index.entries:
            indexed_offset, position = self.offset_index.lookup(self.offset_index.last_offset())
            header = self._header_at(position)
            if not (self.base_offset <= header.base_offset <= indexed_offset):
                raise CorruptIndex(f"{self.offset_index.path}: last entry does not point at a batch")
        self.time_index.check(self.next_offset())

    def tail_is_valid(self) -> bool:
        """Whether the log ends in whole batches that pass their CRC, from the last offset-index
        entry to the last byte (what a clean shutdown promises of the active segment; costs
        about ``index.interval.bytes`` of reading). The indexes are checked first, and the
        first batch's header (appends read its timestamp for ``segment.ms``)."""
        try:
            if self.log.size():
                next(self.batches(0), None)
            position = self._indexed_position(self.offset_index.last_offset())
        except (CorruptIndex, ProtocolError):
            return False
        file_size = self.log.size()
        next_offset = self.base_offset
        while position < file_size:
            if position + BATCH_HEADER_SIZE > file_size:
                return False
            try:
                header = read_batch_header(self.log.pread(BATCH_HEADER_SIZE, position), 0)
            except ProtocolError:
                return False
            end = position + header.size_in_bytes
            if end > file_size or header.base_offset < next_offset or header.last_offset_delta < 0 \
                    or not self.offset_index.can_hold(header.last_offset) \
                    or not batch_crc_matches(self.log.pread(header.size_in_bytes, position), 0, header):
                return False
            next_offset = header.last_offset + 1
            position = end
        return True

    def recover(self, expected_base: int | None = None) -> int:
        """Re-read the whole log batch by batch (header, length, CRC, offsets increasing and
        representable), rebuild both indexes, cut the log at the first invalid byte. Returns
        the number of bytes cut. ``expected_base``: offsets must be at least this (the end of
        the previous segment)."""
        return self._scan_and_index(expected_base, verify_crc=True, cut_invalid_tail=True)

    def rebuild_indexes(self) -> None:
        """Rebuild both indexes from the batch headers, changing nothing in the log (a corrupt
        index of a segment below the recovery point)."""
        self._scan_and_index(None, verify_crc=False, cut_invalid_tail=False)

    def _scan_and_index(self, expected_base: int | None, verify_crc: bool, cut_invalid_tail: bool) -> int:
        self._indexes_verified = True
        self.offset_index.reset()
        self.time_index.reset()
        self._max_timestamp = (NO_TIMESTAMP, self.base_offset)
        file_size = self.log.size()
        valid = 0
        last_index_position = 0
        next_offset = max(self.base_offset, expected_base or 0)
        while valid + LOG_OVERHEAD <= file_size:
            raw_prefix = self.log.pread(BATCH_HEADER_SIZE, valid)
            try:
                header = read_batch_header(raw_prefix, 0)
            except ProtocolError:
                break
            size = header.size_in_bytes
            if valid + size > file_size or header.base_offset < next_offset or header.last_offset_delta < 0 \
                    or not self.offset_index.can_hold(header.last_offset):
                break
            if verify_crc and not batch_crc_matches(self.log.pread(size, valid), 0, header):
                break
            # A batch the log cleaner emptied keeps its max timestamp (producer state needs it)
            # but has no record to index: the time index points at records (Kafka's
            # DumpLogSegments checks each entry against the records' timestamps).
            if header.max_timestamp > self._max_timestamp[0] and header.records_count:
                self._max_timestamp = (header.max_timestamp, header.last_offset)
            if valid - last_index_position > self.index_interval_bytes:
                self.offset_index.append(header.last_offset, valid)
                self.time_index.maybe_append(*self._max_timestamp)
                last_index_position = valid
            valid += size
            next_offset = header.last_offset + 1
        truncated = file_size - valid
        if cut_invalid_tail:
            self.txn_index.truncate_to(next_offset if valid else self.base_offset)
        if truncated and cut_invalid_tail:
            if self._only_zeros(valid, file_size):
                truncated = 0  # zeros written ahead of the appends (prepare_space): no batch lost
            self.log.truncate(valid)
            self.size = self.file_end = valid
            self.flushed_size = min(self.flushed_size, valid)
        if self._max_timestamp[0] >= 0:
            self.time_index.maybe_append(*self._max_timestamp, final=True)
        self._next_offset = next_offset if valid else self.base_offset
        self.bytes_since_last_index_entry = valid - last_index_position if valid else 0
        self._rolling_timestamp = None
        return truncated

    def _only_zeros(self, start: int, end: int) -> bool:
        while start < end:
            chunk = self.log.pread(min(end - start, ZEROS_CHUNK), start)
            if not chunk or chunk.count(0) != len(chunk):
                return False
            start += len(chunk)
        return True

    def truncate_to(self, offset: int) -> int:
        """Remove every batch whose last offset is >= ``offset`` (whole batches, as Kafka).
        Returns the bytes removed."""
        batch = self.find_batch(offset)
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        self.txn_index.truncate_to(batch.base_offset if batch is not None else offset)
        if batch is None:
            return 0
        removed = self.size - batch.position
        self.log.truncate(batch.position)
        self.size = self.file_end = batch.position
        self.flushed_size = min(self.flushed_size, self.size)
        self._next_offset = None
        self._max_timestamp = None
        self.bytes_since_last_index_entry = 0
        if self.size == 0:
            self._rolling_timestamp = None
        return removed

    # -- reads -----------------------------------------------------------------------------
    def read(self, start_offset: int, max_bytes: int, max_offset: int, min_one_batch: bool):
        """``(region, first_batch)`` from the batch holding ``start_offset`` up to ``max_bytes``
        of whole batches, none of which reaches ``max_offset`` (exclusive upper bound: the
        high watermark or last stable offset). With ``min_one_batch`` the first batch comes
        whole even when larger than ``max_bytes`` (Kafka's minOneMessage). None if no batch
        qualifies.

        Cost: two index lookups and short header scans (at most about index.interval.bytes
        each), not a scan of the whole range: the end is found through the index by position.
        """
        first = self.find_batch(start_offset)
        if first is None or first.last_offset >= max_offset:
            return None
        end_position = self.size
        if max_offset < self.next_offset():
            bound = self.find_batch(max_offset, first.position)
            if bound is not None:
                end_position = bound.position
        first_end = first.position + first.size
        limit = min(end_position, first.position + max_bytes)
        if first_end > limit:
            if not (min_one_batch and first_end <= end_position):
                return None
            return FileRegion(self.log, first.position, first.size), first
        end = first_end
        try:
            end = max(first_end, self._indexed_boundary(limit))
            for batch in self.batches(end, limit):
                end = batch.position + batch.size
        except ProtocolError:
            pass  # a damaged batch further on (a trusted segment's): the whole batches before it
        return FileRegion(self.log, first.position, end - first.position), first

    def _indexed_boundary(self, limit: int) -> int:
        """A batch boundary at or below byte ``limit``, from the offset index (0 if none)."""
        indexed_offset, position = self.offset_index.lookup_position(limit)
        if position == 0:
            return 0
        try:
            header = self._header_at(position)
        except ProtocolError:
            header = None
        if header is None or not (self.base_offset <= header.base_offset <= indexed_offset):
            raise CorruptIndex(f"{self.offset_index.path}: entry ({indexed_offset}, {position}) is not a batch")
        return position

    def find_offset_by_timestamp(self, timestamp: int, starting_offset: int):
        """(timestamp, offset) of the first record with timestamp >= ``timestamp`` and offset
        >= ``starting_offset``, or None: the time index narrows the scan, batch headers find
        the batch, its records the record (see ``_first_record_at``)."""
        self.verify_indexes()
        indexed_timestamp, indexed_offset = self.time_index.lookup(timestamp)
        if indexed_timestamp != NO_TIMESTAMP:
            # An entry says: the batch ending at this offset has this max timestamp. If it does
            # not, the entry is corrupt and trusting it could skip the batch we look for.
            holder = self.find_batch(indexed_offset)
            if holder is None or holder.last_offset != indexed_offset or holder.max_timestamp != indexed_timestamp:
                self.rebuild_indexes()
                indexed_timestamp, indexed_offset = self.time_index.lookup(timestamp)
        position = self._indexed_position(max(indexed_offset, starting_offset))
        for batch in self.batches(position):
            if batch.max_timestamp >= timestamp and batch.last_offset >= starting_offset:
                return _first_record_at(self.log.pread(batch.size, batch.position), batch.header,
                                        timestamp, starting_offset)
        return None

    # -- deletion --------------------------------------------------------------------------
    def paths(self) -> list[str]:
        return [self.log_path, self.offset_index.path, self.time_index.path, self.txn_index.path]

    def delete(self, pending: PendingDeletions | None = None, due_ms: int = 0) -> None:
        """Kafka's two steps: rename every file to ``*.deleted`` (so a crash in between leaves
        files the next start recognises and removes), then unlink them: at once, or with
        ``pending`` once ``due_ms`` has come (``file.delete.delay.ms``). Open file objects
        (regions being sent) stay readable until dropped."""
        self.offset_index.close()
        self.time_index.close()
        renamed = []
        for path in self.paths():
            if self.fs.exists(path):
                self.fs.rename(path, path + DELETED_SUFFIX)
                renamed.append(path + DELETED_SUFFIX)
        if pending is not None:
            pending.schedule(renamed, due_ms)
            return
        for path in renamed:
            self.fs.unlink(path)


@functools.cache
def _zeros() -> memoryview:
    """ZEROS_CHUNK zero bytes, made at the first use: a broker that never syncs a log often
    does not carry them."""
    return memoryview(bytes(ZEROS_CHUNK))


def _first_record_at(batch: bytes, header, timestamp: int, starting_offset: int) -> tuple[int, int]:
    """(timestamp, offset) of the first record of ``batch`` with timestamp >= ``timestamp`` and
    offset >= ``starting_offset``, as Kafka's ``searchForTimestamp`` answers ListOffsets.

    Uncompressed records are walked in place (their varint headers only); a compressed batch
    is decompressed (bounded). A LogAppendTime batch stamps every record with its max
    timestamp. A batch that cannot be decoded answers with its max timestamp and base offset.
    """
    fallback = header.max_timestamp, max(header.base_offset, starting_offset)
    if header.is_log_append_time:
        return fallback
    if header.compression != 0:
        from odradek.protocol.records.batch import decode_batch

        try:
            decoded = decode_batch(batch, 0, max_decompressed_size=MAX_DECOMPRESSED_BATCH_BYTES)
        except ProtocolError:
            return fallback
        for record in decoded.records:
            offset = decoded.offset_of(record)
            record_timestamp = decoded.timestamp_of(record)
            if record_timestamp >= timestamp and offset >= starting_offset:
                return record_timestamp, offset
        return fallback
    position = BATCH_HEADER_SIZE
    try:
        for _ in range(header.records_count):
            length, position = read_varint(batch, position)
            record_end = position + length
            position += 1  # attributes
            timestamp_delta, position = read_varlong(batch, position)
            offset_delta, position = read_varint(batch, position)
            offset = header.base_offset + offset_delta
            record_timestamp = header.base_timestamp + timestamp_delta
            if record_timestamp >= timestamp and offset >= starting_offset:
                return record_timestamp, offset
            position = record_end
    except ProtocolError:
        pass
    return fallback
