"""The transaction index of a segment, ``<base>.txnindex``: the transactions that were aborted.

Format (Kafka's ``TransactionIndex``/``AbortedTxn``): entries of 34 bytes, big-endian::

    version              int16   0
    producer_id          int64
    first_offset         int64   first offset of the aborted transaction
    last_offset          int64   offset of its ABORT marker
    last_stable_offset   int64   the partition's LSO when the marker was written

A read_committed fetch needs, for the range it returns, the aborted transactions overlapping
it (:meth:`TransactionIndex.aborted_overlapping`), to drop their records on the client side.

Entries are written when an ABORT marker of a transaction with data is appended (the entry
goes to the segment holding the marker, Kafka's ``LogSegment.updateTxnIndex``); recovery after
an unclean shutdown rebuilds the file of every rescanned segment from the markers it replays
(Kafka's ``LogSegment.recover``); deletion and truncation keep it right. Like the offset
indexes the file is fsynced with its segment.

Thread safety: single-threaded, owned by its segment.
"""

from __future__ import annotations

import struct

TXN_INDEX_VERSION = 0
_ENTRY = struct.Struct(">hqqqq")
ENTRY_SIZE = _ENTRY.size  # 34


class AbortedTxn:
    __slots__ = ("producer_id", "first_offset", "last_offset", "last_stable_offset")

    def __init__(self, producer_id: int, first_offset: int, last_offset: int, last_stable_offset: int):
        self.producer_id = producer_id
        self.first_offset = first_offset
        self.last_offset = last_offset
        self.last_stable_offset = last_stable_offset

    def __eq__(self, other):
        return isinstance(other, AbortedTxn) and all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __repr__(self) -> str:
        return (f"AbortedTxn(producer_id={self.producer_id}, first_offset={self.first_offset}, "
                f"last_offset={self.last_offset}, last_stable_offset={self.last_stable_offset})")


class TransactionIndex:
    def __init__(self, fs, path: str):
        self.fs = fs
        self.path = path
        self._unflushed = False

    def entries(self) -> list[AbortedTxn]:
        """Every whole, version-0 entry (a torn or unknown tail is ignored)."""
        if not self.fs.exists(self.path):
            return []
        raw = self.fs.read_file(self.path)
        found = []
        for position in range(0, len(raw) - ENTRY_SIZE + 1, ENTRY_SIZE):
            version, producer_id, first, last, lso = _ENTRY.unpack_from(raw, position)
            if version != TXN_INDEX_VERSION:
                break
            found.append(AbortedTxn(producer_id, first, last, lso))
        return found

    def append(self, aborted: AbortedTxn) -> None:
        handle = self.fs.open(self.path)
        try:
            size = handle.size()
            handle.pwrite(_ENTRY.pack(TXN_INDEX_VERSION, aborted.producer_id, aborted.first_offset,
                                      aborted.last_offset, aborted.last_stable_offset), size - size % ENTRY_SIZE)
        finally:
            handle.close()
        self._unflushed = True

    def flush(self) -> None:
        """fsync what :meth:`append` wrote since the last flush (no-op if nothing)."""
        if not self._unflushed:
            return
        handle = self.fs.open(self.path)
        try:
            handle.fsync()
        finally:
            handle.close()
        self._unflushed = False

    def sync_target(self):
        """:meth:`flush` split: the file's sync target, or None if nothing is unflushed. The
        index counts as flushed from now on: a failed fsync calls :meth:`mark_unflushed`."""
        if not self._unflushed:
            return None
        handle = self.fs.open(self.path)
        try:
            target = handle.sync_target()
        finally:
            handle.close()
        self._unflushed = False
        return target

    @property
    def unflushed(self) -> bool:
        return self._unflushed

    def mark_unflushed(self) -> None:
        self._unflushed = True

    def reset(self) -> None:
        """Empty the file (recovery rewrites it from the segment's markers)."""
        if not self.fs.exists(self.path):
            return
        handle = self.fs.open(self.path)
        try:
            handle.truncate(0)
        finally:
            handle.close()
        self._unflushed = True

    def aborted_overlapping(self, fetch_offset: int, upper_bound_offset: int) -> tuple[list[AbortedTxn], bool]:
        """Aborted transactions that end at or after ``fetch_offset`` and start before
        ``upper_bound_offset``; and whether the search is complete (an entry's LSO reached
        the upper bound, so later segments cannot hold more), as Kafka's
        ``collectAbortedTxns``."""
        overlapping = []
        for entry in self.entries():
            if entry.last_offset >= fetch_offset and entry.first_offset < upper_bound_offset:
                overlapping.append(entry)
            if entry.last_stable_offset >= upper_bound_offset:
                return overlapping, True
        return overlapping, False

    def truncate_to(self, offset: int) -> None:
        """Drop the entries whose ABORT marker is at or after ``offset``."""
        if not self.fs.exists(self.path):
            return
        kept = [entry for entry in self.entries() if entry.last_offset < offset]
        handle = self.fs.open(self.path)
        try:
            handle.truncate(len(kept) * ENTRY_SIZE)
            handle.fsync()
        finally:
            handle.close()
