"""The leader epoch cache of a partition: which leader epoch started at which offset.

Persisted as ``leader-epoch-checkpoint`` in the partition directory (format in
:mod:`odradek.storage.checkpoints`). Entries are (epoch, start_offset), both strictly
increasing. Replication will use it to answer OffsetsForLeaderEpoch and to find where a
follower diverges; today the log records an entry whenever a batch arrives with a higher
epoch than the last one.

Thread safety: single-threaded, owned by its PartitionLog.
"""

from __future__ import annotations

import structlog

from .checkpoints import CorruptCheckpoint, read_leader_epochs, write_leader_epochs

LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"

log = structlog.get_logger("odradek.storage")


class LeaderEpochCache:
    def __init__(self, fs, path: str):
        self.fs = fs
        self.path = path
        # The file did not parse: its owner rebuilds the entries from the batches' headers.
        self.damaged = False
        try:
            self.entries: list[tuple[int, int]] = read_leader_epochs(fs, path)
        except (CorruptCheckpoint, ValueError) as error:
            log.warning("rebuilding a leader-epoch-checkpoint that does not parse from the log", file=path,
                        reason=str(error))
            self.entries = []
            self.damaged = True
            self._write()
        if not fs.exists(path):
            # Kafka creates the file with the partition, empty, without an fsync: nothing is lost
            # with it (a crash that tears or drops it leaves a file rebuilt from the batches, or
            # none, written again here). An fsynced write per new partition made creating many
            # partitions cost two fsyncs and a rename each.
            write_leader_epochs(fs, path, self.entries, durable=False)

    def rebuild(self, epochs_and_offsets) -> None:
        """Replace the entries by what ``(partition_leader_epoch, base_offset)`` of every batch,
        given in offset order, say (what Kafka's recovery assigns batch by batch)."""
        self.entries = []
        for epoch, offset in epochs_and_offsets:
            if epoch >= 0 and epoch > self.latest_epoch:
                self.entries.append((epoch, offset))
        self._write()
        self.damaged = False

    @property
    def latest_epoch(self) -> int:
        return self.entries[-1][0] if self.entries else -1

    def assign(self, epoch: int, start_offset: int) -> None:
        """Record that ``epoch`` starts at ``start_offset`` if it is newer than the latest."""
        if epoch < 0 or epoch <= self.latest_epoch:
            return
        # An entry whose start offset is not below the new one never held data: replace it.
        while self.entries and self.entries[-1][1] >= start_offset:
            self.entries.pop()
        self.entries.append((epoch, start_offset))
        self._write()

    def truncate_from_end(self, end_offset: int) -> None:
        """Forget epochs that start at or after ``end_offset`` (the log was truncated)."""
        kept = [entry for entry in self.entries if entry[1] < end_offset]
        if kept != self.entries:
            self.entries = kept
            self._write()

    def truncate_from_start(self, start_offset: int) -> None:
        """Log start moved to ``start_offset``: the epoch covering it now starts there."""
        kept = [entry for entry in self.entries if entry[1] >= start_offset]
        covering = [entry for entry in self.entries if entry[1] < start_offset]
        if covering and (not kept or kept[0][1] > start_offset):
            kept.insert(0, (covering[-1][0], start_offset))
        if kept != self.entries:
            self.entries = kept
            self._write()

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(largest epoch <= ``epoch``, the offset where the next epoch starts, or the LEO)
        — the OffsetsForLeaderEpoch answer. (-1, -1) when unknown."""
        for index in range(len(self.entries) - 1, -1, -1):
            entry_epoch, _ = self.entries[index]
            if entry_epoch <= epoch:
                end = self.entries[index + 1][1] if index + 1 < len(self.entries) else log_end_offset
                return entry_epoch, end
        return -1, -1

    def _write(self) -> None:
        write_leader_epochs(self.fs, self.path, self.entries)
