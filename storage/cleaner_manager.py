"""Which compacted log to clean next, and how far each got: Kafka's ``LogCleanerManager``.

The manager looks at every log whose ``cleanup.policy`` includes ``compact`` in the data
directories it is given, computes each one's dirty part from its first dirty offset (kept in
the directory's ``cleaner-offset-checkpoint``, see
:class:`~odradek.storage.log_directory.LogDirectory`) and picks the *filthiest*: the highest
dirty ratio among the logs that need cleaning (ratio above ``min.cleanable.dirty.ratio``, or
a dirty record older than ``max.compaction.lag.ms``; see
:class:`~odradek.storage.cleaner.LogToClean`). After a clean the log's first dirty offset
moves to where the clean stopped and the checkpoint file is rewritten, as Kafka's
``doneCleaning`` does (a truncation below it lowers it at once: see
:class:`~odradek.storage.log_directory.LogDirectory`); a log whose clean failed with an I/O or format error is marked
uncleanable (skipped until restart) so one bad partition does not stop the others.

:meth:`LogCleanerManager.clean_filthiest` is a generator of steps (see
:meth:`odradek.storage.cleaner.LogClean.steps`): the broker drives it from its event loop
and yields to other work between steps. :meth:`clean_filthiest_now` runs it to the end.

Thread safety: single-threaded, on the owner of the logs (the broker's event loop).
"""

from __future__ import annotations

import structlog

from odradek.protocol.errors import ProtocolError

from .cleaner import CleanerStats, CleaningAborted, LogClean, LogToClean, cleanable_offsets
from .errors import KafkaStorageError

log = structlog.get_logger("odradek.storage.cleaner")


class LogCleanerManager:
    def __init__(self, directories, clock, max_map_bytes: int | None = None):
        """``directories``: the LogDirectory objects whose logs to clean; ``clock``: wall-clock
        ms; ``max_map_bytes``: the offset map's budget (see :class:`~odradek.storage.cleaner.LogClean`)."""
        self.directories = list(directories)
        self.clock = clock
        self.max_map_bytes = max_map_bytes
        self.uncleanable: set[tuple[str, int]] = set()
        self.last_stats: CleanerStats | None = None

    def logs_to_clean(self, now_ms: int) -> list[tuple[object, tuple[str, int], LogToClean]]:
        """(directory, key, LogToClean) of every compacted log that needs cleaning now."""
        found = []
        for directory in self.directories:
            for key, partition_log in directory.logs.items():
                if not partition_log.config.compacts or partition_log.closed or key in self.uncleanable:
                    continue
                to_clean = cleanable_offsets(partition_log, directory.cleaner_offsets.get(key), now_ms)
                if to_clean.first_dirty_offset != directory.cleaner_offsets.get(key, to_clean.first_dirty_offset):
                    # An invalid checkpointed offset (below the log start after retention, or past
                    # the end after a truncation) is reset, as Kafka's forceUpdateCheckpoint.
                    directory.cleaner_offsets[key] = to_clean.first_dirty_offset
                if to_clean.needs_cleaning:
                    found.append((directory, key, to_clean))
        return found

    def clean_filthiest(self):
        """Clean the filthiest log, in steps (a generator); nothing if no log needs it. Sets
        :attr:`last_stats` when a clean finishes."""
        now_ms = self.clock()
        candidates = self.logs_to_clean(now_ms)
        if not candidates:
            return
        directory, key, to_clean = max(candidates, key=lambda candidate: candidate[2].cleanable_ratio)
        clean = LogClean(to_clean.log, to_clean, now_ms, self.max_map_bytes)
        try:
            yield from clean.steps()
        except CleaningAborted:
            return  # the log went away or changed (deleted, truncated): the next round starts over
        except (OSError, KafkaStorageError, ProtocolError, ValueError) as error:
            self.uncleanable.add(key)
            log.error("log cleaning failed; the partition is marked uncleanable", partition=f"{key[0]}-{key[1]}",
                      error=repr(error))
            return
        directory.cleaner_offsets[key] = clean.stats.next_dirty_offset
        directory.write_cleaner_checkpoint()
        self.last_stats = clean.stats
        log.info("cleaned log", partition=f"{key[0]}-{key[1]}", dirty_section=[clean.stats.first_dirty_offset,
                 clean.stats.next_dirty_offset], bytes_read=clean.stats.bytes_read,
                 bytes_written=clean.stats.bytes_written, records_removed=clean.stats.records_removed,
                 seconds=round(clean.stats.elapsed_seconds, 3))

    def clean_filthiest_now(self) -> CleanerStats | None:
        """Run :meth:`clean_filthiest` to the end; the stats of the clean, None if none ran."""
        self.last_stats = None
        for _ in self.clean_filthiest():
            pass
        return self.last_stats
