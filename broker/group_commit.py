"""Group commit: the fsyncs that make acks=all produces durable, shared across partitions.

With ``odradek.flush.on.acks.all`` (default true) a produce with acks=all is answered once its
records are on disk. One :class:`GroupCommit` serves one data directory (one disk, as a rule):

* a waiter registers the partition log and the offset its records end at
  (:meth:`GroupCommit.wait`) and gets a future;
* one sync round is in flight at a time. A round takes every partition with a waiter, asks each
  log for a data sync (:meth:`~odradek.storage.partition_log.PartitionLog.prepare_sync`:
  fdatasync of the ``.log`` file, the directory only when a segment is new; indexes are left
  to recovery, as in Kafka), runs them in the directory's sync threads (up to
  ``SYNC_THREADS`` at once: a file system serves concurrent fdatasyncs of different files with
  one journal commit, so a round over many partitions costs little more than one over a
  single partition), then completes them on the loop and wakes the waiters whose records are
  covered. A round of one partition's sync runs on the loop itself while syncs are quick
  (recent ones under ``INLINE_SYNC_S``, a fraction of a millisecond on an idle SSD): the hand-off
  to a thread and back costs about as much as such a sync (one producer's acks=all rate was 9 %
  higher, with a tenth less broker CPU, measured with benchmarks/broker_throughput.py); once
  the disk is slow the syncs move to the threads, so a stalled disk holds the loop for one sync
  at most, and they come back when the disk is quick again;
* meanwhile the loop keeps reading and appending: whatever arrives during a round waits for
  the next, which starts as soon as this one ends and covers all of it. A producer's five
  requests in flight, and every producer writing to the directory, share a round instead of
  queueing one sync each.

The first round starts on the loop's next pass, so the appends of the current pass (every
request read from the sockets in one go) share it. The log's state is touched on the loop only;
the thread only syncs the duplicated descriptors of the tickets (storage/partition_log.py).

Owner: the broker's event loop; :meth:`close` from the loop when the broker stops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

from odradek.storage.errors import KafkaStorageError


# Sync threads per data directory: the most fdatasyncs one round runs at once.
SYNC_THREADS = 4
# A sync of one partition runs on the loop while the recent ones took less than this (seconds).
INLINE_SYNC_S = 0.001
# The weight of the latest sync in the running estimate of how long one takes.
_LATEST_SYNC_WEIGHT = 0.2


def _sync_all(tickets) -> float:
    """Each ticket's syncs (a failure is kept in its ticket); returns the seconds they took."""
    started = time.perf_counter()
    for ticket in tickets:
        ticket.sync()
    return time.perf_counter() - started


class GroupCommit:
    """The sync rounds of one data directory (see the module doc)."""

    def __init__(self, name: str):
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=SYNC_THREADS,
                                                               thread_name_prefix=f"odradek-sync-{name}")
        # log -> [(end offset, future)], in the order the logs first waited
        self._waiting: dict = {}
        self._rounds: asyncio.Task | None = None
        self.rounds = 0  # completed rounds (for tests and benchmarks)
        self.expected_sync_s = 0.0  # running estimate of one partition's sync, from the recent ones

    def wait(self, log, end_offset: int) -> asyncio.Future:
        """A future set once every record of ``log`` below ``end_offset`` is durable; it fails
        with the storage error if a sync fails, or if the records were truncated first."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        waiters = self._waiting.get(log)
        if waiters is None:
            self._waiting[log] = [(end_offset, future)]
        else:
            waiters.append((end_offset, future))
        if self._rounds is None:
            self._rounds = loop.create_task(self._run_rounds())
        return future

    def fail(self, log, error: BaseException) -> None:
        """``log`` goes away (its partition deleted): fail its waiters with ``error``."""
        for _, future in self._waiting.pop(log, ()):
            if not future.done():
                future.set_exception(error)

    async def _run_rounds(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                waiting, self._waiting = self._waiting, {}
                prepared = []
                for log, waiters in waiting.items():
                    try:
                        prepared.append((log, log.prepare_sync(), waiters))
                    except Exception as error:  # a closed log, or the descriptors ran out
                        _fail(waiters, error)
                tickets = [ticket for _, ticket, _ in prepared if ticket is not None]
                if len(tickets) == 1 and self.expected_sync_s < INLINE_SYNC_S:
                    self._estimate(_sync_all(tickets))
                elif tickets:
                    # One hand-off per thread used, each syncing every n-th ticket.
                    shares = min(len(tickets), SYNC_THREADS)
                    try:
                        synced = [loop.run_in_executor(self._executor, _sync_all, tickets[first::shares])
                                  for first in range(shares)]
                    except RuntimeError:  # shut down (on this thread, so before any share): the broker is closing
                        for ticket in tickets:
                            ticket.release()
                        for _, _, waiters in prepared:
                            _fail(waiters, KafkaStorageError("the broker is stopping"))
                        raise
                    took = await asyncio.gather(*synced)
                    if len(tickets) == 1:
                        self._estimate(took[0])
                self.rounds += 1
                for log, ticket, waiters in prepared:
                    self._settle(log, ticket, waiters)
        finally:
            self._rounds = None

    def _estimate(self, seconds: float) -> None:
        self.expected_sync_s += _LATEST_SYNC_WEIGHT * (seconds - self.expected_sync_s)

    def _settle(self, log, ticket, waiters) -> None:
        """Complete ``log``'s sync and wake the waiters it covers; the others wait again."""
        if ticket is not None:
            try:
                log.complete_sync(ticket)
            except Exception as error:  # the disk failed: every waiter of this log learns it
                _fail(waiters, error)
                return
        durable = log.durable_offset
        again = []
        for end_offset, future in waiters:
            if future.done():
                continue
            if durable >= end_offset:
                future.set_result(None)
            elif ticket is None:  # nothing left to sync below it: truncated away
                future.set_exception(KafkaStorageError(
                    f"records below {end_offset} were truncated before they were synced"))
            else:  # truncated meanwhile (a close, a new leader): the next round tells
                again.append((end_offset, future))
        if again:
            self._waiting.setdefault(log, []).extend(again)

    def close(self) -> None:
        """Stop the sync threads after the syncs in flight; a waiter left fails."""
        self._executor.shutdown(wait=True)
        waiting, self._waiting = self._waiting, {}
        for waiters in waiting.values():
            _fail(waiters, KafkaStorageError("the broker is stopping"))


def _fail(waiters, error: BaseException) -> None:
    for _, future in waiters:
        if not future.done():
            future.set_exception(error)
