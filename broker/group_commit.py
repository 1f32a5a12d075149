"""Group commit: the fsyncs that make acks=all produces durable, shared across partitions.

With ``odradek.flush.on.acks.all`` (default true) a produce with acks=all is answered once its
records are on disk. One :class:`GroupCommit` serves one data directory (one disk, as a rule):

* a waiter registers the partition log, the offset its records end at and a callback
  (:meth:`GroupCommit.when_durable`; :meth:`GroupCommit.wait` gives a future instead). The
  callback runs in the round that makes the records durable, so an acks=all response is
  written before the next round starts, not a few passes of the loop later;
* one sync round is in flight at a time. A round takes every partition with a waiter and asks
  each log for a data sync (:meth:`~odradek.storage.partition_log.PartitionLog.prepare_sync`:
  fdatasync of the ``.log`` file, the directory only when a segment is new; indexes are left
  to recovery, as in Kafka);
* where Linux's AIO is there (storage/kernel_aio.py) the round's syncs go to the kernel, all
  at once, and the loop learns their end from an eventfd it polls: the loop keeps reading and
  appending during the sync, and no Python thread has to win the GIL back to report it (one
  producer's acks=all rate +7 %, 100 KiB records +16 %, 16 partitions +19 %, measured with
  benchmarks/broker_throughput.py against the syncs on the loop and in threads). Letting the
  next round start while one is in flight (overlapping fdatasyncs of one file) was measured
  too: a tenth slower, so one round at a time holds here as well;
* elsewhere (another system, the in-memory file system of the tests, or a kernel that refuses
  AIO fsync) a round of one partition's sync runs on the loop itself while syncs are quick
  (recent ones under ``INLINE_SYNC_S``): the hand-off to a thread and back costs about as much
  as such a sync. Once the disk is slow the syncs move to the directory's threads (up to
  ``SYNC_THREADS`` at once: a file system serves concurrent fdatasyncs of different files
  with one journal commit), so a stalled disk holds the loop for one sync at most, and they
  come back when the disk is quick again;
* whatever arrives during a round waits for the next, which starts as soon as this one ends
  and covers all of it. A producer's five requests in flight, and every producer writing to
  the directory, share a round instead of queueing one sync each.

The first round starts on the loop's next pass, so the appends of the current pass (every
request read from the sockets in one go) share it. The log's state is touched on the loop only;
a thread only syncs the duplicated descriptors of the tickets (storage/partition_log.py), and
the kernel holds its own references to the files it syncs.

Owner: the broker's event loop; :meth:`close` from the loop when the broker stops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import os
import time
from typing import Callable

import structlog

from odradek.storage.errors import KafkaStorageError
from odradek.storage.kernel_aio import KernelAio

logger = structlog.get_logger("odradek.group_commit")


# Sync threads per data directory: the most fdatasyncs one round runs at once.
SYNC_THREADS = 4
# The most syncs one round gives the kernel's AIO (a larger round goes to the threads); each
# directory's AIO context takes this many of the system's fs.aio-max-nr (65536 by default).
KERNEL_SYNCS = 256
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

    def __init__(self, name: str, *, kernel_aio: bool = True):
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=SYNC_THREADS,
                                                               thread_name_prefix=f"odradek-sync-{name}")
        # Syncs of files on disk go to the kernel's AIO where there is one; its context is
        # made at the first sync (a broker that never syncs holds none of the system's)
        self._kernel_aio = kernel_aio
        self._aio: KernelAio | None = None
        self._aio_loop = None  # the loop polling its eventfd
        self._aio_round: _AioRound | None = None  # the round the kernel is syncing
        self._aio_proven = False  # one AIO sync was accepted: an EINVAL later is the file's, not the kernel's
        # log -> [(end offset, on_durable)], in the order the logs first waited
        self._waiting: dict = {}
        self._round_scheduled = False  # _start_round is due on the loop's next pass
        self._in_flight = 0  # rounds started and not ended
        self._closed = False
        self.rounds = 0  # completed rounds (for tests and benchmarks)
        self.expected_sync_s = 0.0  # running estimate of one partition's sync, from the recent ones

    def when_durable(self, log, end_offset: int, on_durable: Callable[[BaseException | None], None]) -> None:
        """Call ``on_durable(None)`` once every record of ``log`` below ``end_offset`` is
        durable, or ``on_durable(error)`` with the storage error if a sync fails or the
        records were truncated first. It is called on the loop, in the round that settles
        it: an acks=all response goes out before the next round's sync starts."""
        waiters = self._waiting.get(log)
        if waiters is None:
            self._waiting[log] = [(end_offset, on_durable)]
        else:
            waiters.append((end_offset, on_durable))
        # On the loop's next pass: the appends of this one (every request read from the
        # sockets in one go) share the round.
        self._schedule_round()

    def wait(self, log, end_offset: int) -> asyncio.Future:
        """:meth:`when_durable` as a future (it fails with the storage error)."""
        future = asyncio.get_running_loop().create_future()

        def settle(error: BaseException | None) -> None:
            if future.done():  # cancelled: its waiter gave up
                return
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
        self.when_durable(log, end_offset, settle)
        return future

    def fail(self, log, error: BaseException) -> None:
        """``log`` goes away (its partition deleted): fail its waiters with ``error``."""
        _fail(self._waiting.pop(log, ()), error)

    def _schedule_round(self) -> None:
        if self._round_scheduled or self._closed or not self._waiting:
            return
        if self._in_flight == 0:  # one round at a time (the module doc says why)
            self._round_scheduled = True
            asyncio.get_running_loop().call_soon(self._start_round)

    def _start_round(self) -> None:
        self._round_scheduled = False
        if not self._waiting:
            return
        self._in_flight += 1
        waiting, self._waiting = self._waiting, {}
        prepared = []
        for log, waiters in waiting.items():
            try:
                prepared.append((log, log.prepare_sync(), waiters))
            except Exception as error:  # a closed log, or the descriptors ran out
                _fail(waiters, error)
        tickets = [ticket for _, ticket, _ in prepared if ticket is not None]
        if tickets and self._kernel_aio and self._submit_to_kernel(tickets, prepared):
            return
        if len(tickets) == 1 and self.expected_sync_s < INLINE_SYNC_S:
            self._estimate(_sync_all(tickets))
        elif tickets:
            self._sync_in_threads(tickets, prepared)
            return
        self._end_round(prepared)

    def _sync_in_threads(self, tickets: list, prepared: list) -> None:
        """Sync ``tickets`` in the threads, one hand-off per thread used (each syncing every
        n-th ticket); the round ends on the loop once the last share is done."""
        loop = asyncio.get_running_loop()
        shares = min(len(tickets), SYNC_THREADS)
        remaining = [shares]

        def share_done(took: float) -> None:  # on the loop
            remaining[0] -= 1
            if len(tickets) == 1:
                self._estimate(took)
            if remaining[0] == 0:
                self._end_round(prepared)

        def report(done: concurrent.futures.Future) -> None:  # in the sync thread
            try:
                loop.call_soon_threadsafe(share_done, 0.0 if done.exception() else done.result())
            except RuntimeError:  # the loop closed under a sync in flight: nobody waits any more
                pass
        try:
            submitted = [self._executor.submit(_sync_all, tickets[first::shares]) for first in range(shares)]
        except RuntimeError:  # shut down (by close(), on the loop: so before the first share)
            for ticket in tickets:
                ticket.release()
            stopping = KafkaStorageError("the broker is stopping")
            for _, _, waiters in prepared:
                _fail(waiters, stopping)
            self._in_flight -= 1
            return
        for share in submitted:
            share.add_done_callback(report)

    def _submit_to_kernel(self, tickets: list, prepared: list) -> bool:
        """Start the round's syncs as kernel AIO; False (nothing started) where they cannot go
        there: a file that is not on disk (the in-memory file system), more syncs than the
        context holds, or a kernel without AIO fsync."""
        targets = [(ticket, target) for ticket in tickets for target in ticket.targets]
        if len(targets) > KERNEL_SYNCS or not all(hasattr(target, "descriptor") for _, target in targets):
            return False
        aio = self._aio
        if aio is None:
            aio = self._aio = KernelAio.open(KERNEL_SYNCS)
            if aio is None:
                self._kernel_aio = False
                return False
        loop = asyncio.get_running_loop()
        if self._aio_loop is not loop:
            if self._aio_loop is not None and not self._aio_loop.is_closed():
                self._aio_loop.remove_reader(aio.eventfd)
            loop.add_reader(aio.eventfd, self._kernel_syncs_ended)
            self._aio_loop = loop
        ongoing = _AioRound(prepared)
        for ticket, target in targets:
            try:
                opened = target.descriptor()
            except OSError as error:
                ticket.error = error
                continue
            if opened is None:  # the file is gone: nothing of it to make durable
                continue
            fd, owned = opened
            try:
                aio.submit(fd, target.data_only, ticket)
            except OSError as error:
                if not self._aio_proven and error.errno in (errno.EINVAL, errno.ENOSYS):
                    # No AIO fsync in this kernel (before Linux 4.18): the threads from now on
                    logger.info("kernel AIO fsync refused; syncing in threads", error=str(error))
                    self._close_aio()
                    return False
                ticket.error = error
                continue
            finally:
                if owned:
                    os.close(fd)
            self._aio_proven = True
            ongoing.remaining += 1
        for ticket in tickets:
            ticket.release()  # the kernel holds its own references to the files
        if ongoing.remaining == 0:
            self._end_round(prepared)
        else:
            self._aio_round = ongoing
        return True

    def _kernel_syncs_ended(self, wait: bool = False) -> None:
        """The eventfd is readable: settle the syncs that ended; the round ends with its last."""
        ongoing = self._aio_round
        try:
            ended = self._aio.completions(wait)
        except OSError as error:  # the context itself failed: what it synced is unknown
            logger.error("kernel AIO failed; syncing in threads", error=str(error))
            self._aio_round = None
            self._close_aio()  # once the syncs in flight ended
            if ongoing is not None:
                for _, ticket, _ in ongoing.prepared:
                    if ticket is not None and ticket.error is None:
                        ticket.error = error
                self._end_round(ongoing.prepared)
            return
        for ticket, code in ended:
            if code and ticket.error is None:
                ticket.error = OSError(code, os.strerror(code))
            ongoing.remaining -= 1
        if ongoing is not None and ongoing.remaining == 0:
            self._aio_round = None
            self._end_round(ongoing.prepared)

    def _close_aio(self) -> None:
        self._kernel_aio = False
        if self._aio is None:
            return
        if self._aio_loop is not None and not self._aio_loop.is_closed():
            self._aio_loop.remove_reader(self._aio.eventfd)
        self._aio.close()
        self._aio, self._aio_loop = None, None

    def _end_round(self, prepared: list) -> None:
        self.rounds += 1
        self._in_flight -= 1
        for log, ticket, waiters in prepared:
            self._settle(log, ticket, waiters)
        self._schedule_round()  # what arrived meanwhile: the next round covers it all

    def _estimate(self, seconds: float) -> None:
        self.expected_sync_s += _LATEST_SYNC_WEIGHT * (seconds - self.expected_sync_s)

    def _settle(self, log, ticket, waiters) -> None:
        """Complete ``log``'s sync and tell the waiters it covers; the others wait again."""
        if ticket is not None:
            try:
                log.complete_sync(ticket)
            except Exception as error:  # the disk failed: every waiter of this log learns it
                _fail(waiters, error)
                return
        durable = log.durable_offset
        again = []
        for end_offset, on_durable in waiters:
            if durable >= end_offset:
                _tell(on_durable, None)
            elif ticket is None:  # nothing left to sync below it: truncated away
                _tell(on_durable, KafkaStorageError(f"records below {end_offset} were truncated before they were synced"))
            else:  # truncated meanwhile (a close, a new leader): the next round tells
                again.append((end_offset, on_durable))
        if again:
            self._waiting.setdefault(log, []).extend(again)

    def close(self) -> None:
        """Stop the sync threads after the syncs in flight; a waiter left fails."""
        self._closed = True
        self._executor.shutdown(wait=True)
        if self._aio_round is not None:  # the kernel's syncs in flight: wait for them and settle
            self._kernel_syncs_ended(wait=True)
        self._close_aio()
        waiting, self._waiting = self._waiting, {}
        for waiters in waiting.values():
            _fail(waiters, KafkaStorageError("the broker is stopping"))


class _AioRound:
    """A round whose syncs the kernel runs: the waiters, and how many syncs are still out."""

    __slots__ = ("prepared", "remaining")

    def __init__(self, prepared: list):
        self.prepared = prepared
        self.remaining = 0


def _tell(on_durable, error: BaseException | None) -> None:
    """One waiter's callback; its failure (a bug) is logged and the round goes on to the others."""
    try:
        on_durable(error)
    except Exception:
        logger.exception("a durable-write callback failed")


def _fail(waiters, error: BaseException) -> None:
    for _, on_durable in waiters:
        _tell(on_durable, error)
