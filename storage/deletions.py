"""Files waiting out ``file.delete.delay.ms`` before they are unlinked.

Kafka deletes a segment in two steps: its files are renamed to ``*.deleted`` at once (the
segment is gone for every reader and for the next start, which removes any ``*.deleted`` file it
finds), and unlinked ``file.delete.delay.ms`` later (the topic's config; the broker's
``log.segment.delete.delay.ms``), so that a read already under way over the old file is not cut
short. :class:`PendingDeletions` holds the second step: the renamed paths and when each may go.
A deleted partition's directory, renamed to ``<topic>-<partition>.<uuid>-delete``, waits the
same way for the broker's ``log.segment.delete.delay.ms`` (Kafka's LogManager).

Owner: the :class:`~odradek.storage.log_directory.LogDirectory` (one list per data directory,
shared by its partition logs), used on the broker's event loop; the broker's periodic task calls
:meth:`delete_due`. Pending files are not deleted at close: the next start removes them.
"""

from __future__ import annotations

import heapq


class PendingDeletions:
    def __init__(self, fs):
        self.fs = fs
        self._due: list[tuple[int, int, tuple[str, ...]]] = []  # heap of (due ms, sequence, paths)
        self._sequence = 0

    def schedule(self, paths, due_ms: int) -> None:
        """Remove ``paths`` (files renamed to ``*.deleted``, or a deleted partition's renamed
        directory) once ``due_ms`` has come."""
        paths = tuple(paths)
        if paths:
            self._sequence += 1
            heapq.heappush(self._due, (due_ms, self._sequence, paths))

    def delete_due(self, now_ms: int) -> int:
        """Remove every path whose time has come; returns how many."""
        deleted = 0
        while self._due and self._due[0][0] <= now_ms:
            _, _, paths = heapq.heappop(self._due)
            for path in paths:
                if self.fs.is_dir(path):
                    self.fs.rmtree(path)  # a deleted partition's <topic>-<partition>.<uuid>-delete
                else:
                    self.fs.unlink(path)
                deleted += 1
        return deleted

    def __len__(self) -> int:
        """The number of paths waiting."""
        return sum(len(paths) for _, _, paths in self._due)
