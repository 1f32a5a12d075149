"""The two sparse indexes of a segment: ``.index`` (offset -> position) and ``.timeindex``
(timestamp -> offset), in Kafka's byte layout.

``<base>.index`` — entries of 8 bytes, big-endian::

    relative_offset  int32   offset - segment base offset
    position         int32   byte position in the .log of the batch holding that offset

Each entry names the *last* offset of a batch and the position where the batch starts. Entries
are written every ``index.interval.bytes`` of log (never for the segment's first batch, whose
position 0 is implied), so offsets and positions strictly increase.

``<base>.timeindex`` — entries of 12 bytes, big-endian::

    timestamp        int64   max timestamp of the segment so far
    relative_offset  int32   offset of the batch (its last offset) that holds that timestamp

An entry is added with each offset-index entry when the segment's max timestamp grew, and once
more when the segment stops being active, so the last entry holds the segment's max timestamp
(what time-based retention reads). Timestamps and offsets strictly increase.

Both files are preallocated (sparse, zero-filled) to ``segment.index.bytes`` while their segment
is the active one and trimmed to their entries when it rolls or the log closes, as Kafka does.
An index opened after a crash may therefore end in zero entries: they are dropped on load
(a zero entry can never be a real one after a non-zero entry, and the offset index never holds
a position-0 entry). Indexes are a cache of the log: any doubt (:meth:`check` fails) and the
segment rebuilds them from the .log.

Entries live in a bytearray in memory (loaded on first use for inactive segments) and are
written through to the file with ``pwrite``; we do not mmap (simpler, and a crash loses at
most what recovery rebuilds anyway).

Thread safety: single-threaded, owned by the segment that owns the file.
"""

from __future__ import annotations

import struct

NO_TIMESTAMP = -1

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")


class CorruptIndex(Exception):
    """An index whose entries cannot be right (not increasing, past the log); rebuild it."""


class _SparseIndex:
    entry = _OFFSET_ENTRY

    def __init__(self, fs, path: str, base_offset: int, max_index_size: int):
        self.fs = fs
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max(1, max_index_size // self.entry.size)
        self._handle = None
        self._entries: bytearray | None = None  # loaded lazily
        self._written = 0  # bytes of _entries already in the file
        self._preallocated = False
        self._torn = False  # the file held a partial entry (Kafka's sanityCheck: corrupt)
        # Entries written or removed since the last fsync. Only they need one: a size change
        # alone (preallocate, trim) leaves a zero tail or none, which loading ignores, so the
        # fsync of an index with no new entry (a flush after small appends) is skipped.
        self._unsynced = False

    # -- loading ---------------------------------------------------------------------------
    def _load(self) -> bytearray:
        if self._entries is None:
            self._handle = self.fs.open(self.path)
            raw = self._handle.pread(self._handle.size(), 0)
            size = self.entry.size
            # Drop the zero tail a preallocated, never-trimmed file carries after a crash: keep
            # every entry that has a non-zero byte (rounding up), and never a partial entry.
            meaningful = len(raw.rstrip(b"\0"))
            count = min(-(-meaningful // size), len(raw) // size)
            self._torn = meaningful > count * size
            self._entries = bytearray(raw[: count * size])
            self._written = len(self._entries)
        return self._entries

    @property
    def loaded(self) -> bool:
        return self._entries is not None

    @property
    def entries(self) -> int:
        return len(self._load()) // self.entry.size

    @property
    def is_full(self) -> bool:
        return self.entries >= self.max_entries

    def entry_at(self, index: int) -> tuple[int, int]:
        return self.entry.unpack_from(self._load(), index * self.entry.size)

    def write_pending(self) -> None:
        # Appended entries stay in memory until the next flush/trim/close (here): an index entry
        # per append would otherwise cost a syscall per append. Entries not yet written can only
        # be lost with unflushed log data, which recovery rescans and re-indexes anyway.
        if self._entries is not None and self._written < len(self._entries):
            self._handle.pwrite(memoryview(self._entries)[self._written:], self._written)
            self._written = len(self._entries)
            self._unsynced = True

    def _bisect(self, key_field: int, target: int) -> int:
        """Index of the last entry whose ``key_field`` is <= target, or -1."""
        entries = self._load()
        unpack = self.entry.unpack_from
        size = self.entry.size
        low, high = 0, len(entries) // size - 1
        found = -1
        while low <= high:
            middle = (low + high) // 2
            if unpack(entries, middle * size)[key_field] <= target:
                found = middle
                low = middle + 1
            else:
                high = middle - 1
        return found

    # -- lifecycle -------------------------------------------------------------------------
    def preallocate(self) -> None:
        """Grow the file (sparse) to the maximum size: this index belongs to the active segment."""
        self._load()
        self.write_pending()
        self._handle.truncate(self.max_entries * self.entry.size)
        self._preallocated = True

    def trim(self) -> None:
        """Shrink the file to its entries (segment rolled or log closing)."""
        entries = self._load()
        self.write_pending()
        self._handle.truncate(len(entries))
        self._preallocated = False

    def reset(self) -> None:
        if self._entries is None:
            # Not loaded: no need to read a (maybe preallocated, 10 MiB) file we empty anyway.
            self._handle = self.fs.open(self.path)
            self._entries = bytearray()
        entries = self._entries
        del entries[:]
        self._written = 0
        self._torn = False
        self._unsynced = True
        self._handle.truncate(0)
        if self._preallocated:
            self._handle.truncate(self.max_entries * self.entry.size)

    def _truncate_entries(self, count: int) -> None:
        entries = self._load()
        size = self.entry.size
        del entries[count * size :]
        self.write_pending()
        self._written = len(entries)
        self._unsynced = True
        # Zero the dropped entries on disk too (they are inside the preallocated area).
        self._handle.truncate(count * size)
        if self._preallocated:
            self._handle.truncate(self.max_entries * size)

    def flush(self) -> None:
        if self._handle is not None:
            self.write_pending()
            if self._unsynced:
                self._handle.fsync()
                self._unsynced = False

    def sync_target(self):
        """:meth:`flush` split: write the pending entries now, return the file's sync target
        (None if the index is not open or has no entry to make durable). The entries count as
        synced from now on: a failed fsync calls :meth:`mark_unsynced`."""
        if self._handle is None:
            return None
        self.write_pending()
        if not self._unsynced:
            return None
        target = self._handle.sync_target()
        self._unsynced = False
        return target

    def mark_unsynced(self) -> None:
        self._unsynced = True

    def close(self) -> None:
        if self._handle is not None:
            self.write_pending()
            self._handle.close()
            self._handle = None
        self._entries = None

    def rename(self, new_path: str) -> None:
        self.fs.rename(self.path, new_path)
        self.path = new_path


class OffsetIndex(_SparseIndex):
    """``.index``: sparse map from offset to byte position in the segment's log."""

    entry = _OFFSET_ENTRY

    def last_offset(self) -> int:
        count = self.entries
        if count == 0:
            return self.base_offset
        return self.base_offset + self.entry_at(count - 1)[0]

    def append(self, offset: int, position: int) -> None:
        relative = offset - self.base_offset
        entries = self._load()  # once: an entry is added on every append of index.interval.bytes
        count = len(entries) // _OFFSET_ENTRY.size
        if count >= self.max_entries:
            raise CorruptIndex(f"offset index {self.path} is full")
        if count and relative <= _OFFSET_ENTRY.unpack_from(entries, (count - 1) * _OFFSET_ENTRY.size)[0]:
            raise CorruptIndex(f"offset {offset} is not above the last indexed offset in {self.path}")
        entries.extend(_OFFSET_ENTRY.pack(relative, position))

    def lookup(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the last entry at or below ``offset``; (base, 0) if none."""
        found = self._bisect(0, offset - self.base_offset)
        if found < 0:
            return self.base_offset, 0
        relative, position = self.entry_at(found)
        return self.base_offset + relative, position

    def lookup_position(self, position: int) -> tuple[int, int]:
        """(offset, position) of the last entry at or below byte ``position``; (base, 0) if none."""
        found = self._bisect(1, position)
        if found < 0:
            return self.base_offset, 0
        relative, entry_position = self.entry_at(found)
        return self.base_offset + relative, entry_position

    def truncate_to(self, offset: int) -> None:
        """Drop the entries for offsets >= ``offset``."""
        self._truncate_entries(self._bisect(0, offset - self.base_offset - 1) + 1)

    def can_hold(self, offset: int) -> bool:
        relative = offset - self.base_offset
        return 0 <= relative <= 0x7FFFFFFF

    def check(self, log_size: int) -> None:
        self._load()
        if self._torn:
            raise CorruptIndex(f"{self.path}: its size is not a whole number of {self.entry.size}-byte entries")
        previous_offset, previous_position = -1, 0
        for i in range(self.entries):
            relative, position = self.entry_at(i)
            if relative <= previous_offset or position <= previous_position or position >= log_size:
                raise CorruptIndex(f"{self.path}: entry {i} ({relative}, {position}) out of order or past the log")
            previous_offset, previous_position = relative, position


class TimeIndex(_SparseIndex):
    """``.timeindex``: sparse map from max-timestamp-so-far to offset."""

    entry = _TIME_ENTRY

    @property
    def is_full(self) -> bool:
        # One slot stays free for the final entry written when the segment becomes inactive.
        return self.entries >= self.max_entries - 1

    def last_entry(self) -> tuple[int, int]:
        count = self.entries
        if count == 0:
            return NO_TIMESTAMP, self.base_offset
        timestamp, relative = self.entry_at(count - 1)
        return timestamp, self.base_offset + relative

    def maybe_append(self, timestamp: int, offset: int, final: bool = False) -> None:
        """Add (timestamp, offset) if ``timestamp`` is above the last entry's. ``final`` is the
        entry written when the segment becomes inactive: it may use the reserved last slot."""
        entries = self._load()  # once: this runs on every append of index.interval.bytes
        count = len(entries) // _TIME_ENTRY.size
        if count:
            last_timestamp, last_relative = _TIME_ENTRY.unpack_from(entries, (count - 1) * _TIME_ENTRY.size)
            if timestamp <= last_timestamp:
                return
        elif timestamp <= NO_TIMESTAMP:
            return
        if count >= (self.max_entries if final else self.max_entries - 1):  # is_full keeps the last slot
            raise CorruptIndex(f"time index {self.path} is full")
        if count and offset < self.base_offset + last_relative:
            raise CorruptIndex(f"time index offset {offset} below the last entry's {self.base_offset + last_relative}")
        entries.extend(_TIME_ENTRY.pack(timestamp, offset - self.base_offset))

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """(timestamp, offset) of the last entry with timestamp <= ``timestamp``;
        (NO_TIMESTAMP, base) if none."""
        found = self._bisect(0, timestamp)
        if found < 0:
            return NO_TIMESTAMP, self.base_offset
        entry_timestamp, relative = self.entry_at(found)
        return entry_timestamp, self.base_offset + relative

    def truncate_to(self, offset: int) -> None:
        """Drop the entries whose offset is >= ``offset``."""
        count = self.entries
        while count > 0 and self.base_offset + self.entry_at(count - 1)[1] >= offset:
            count -= 1
        self._truncate_entries(count)

    def check(self, next_offset: int) -> None:
        self._load()
        if self._torn:
            raise CorruptIndex(f"{self.path}: its size is not a whole number of {self.entry.size}-byte entries")
        previous_timestamp, previous_relative = NO_TIMESTAMP, -1
        for i in range(self.entries):
            timestamp, relative = self.entry_at(i)
            if timestamp <= previous_timestamp or relative < previous_relative or relative < 0 or (
                self.base_offset + relative >= next_offset
            ):
                raise CorruptIndex(f"{self.path}: entry {i} ({timestamp}, {relative}) out of order or past the log")
            previous_timestamp, previous_relative = timestamp, relative
