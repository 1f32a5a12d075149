"""The split flush (prepare_flush / FlushTicket.sync in a thread / complete_flush): appends
go on while the fsyncs run, a truncation in between wins, the memory backend's crash model
counts data as durable only once the flush completed, and an fsync error is a storage error
that leaves the log usable."""

import errno
import threading

import pytest

from odradek.storage.config import LogConfig
from odradek.storage.errors import KafkaStorageError
from odradek.storage.fs import MemoryFileSystem, OsFile, OsFileSystem, OsSyncTarget
from odradek.storage.partition_log import PartitionLog

from storage_batches import make_batch

T0 = 1_700_000_000_000


def clock():
    return T0 + 500


class Gate:
    """Holds every fsync of a sync target until released; counts them; may fail them."""

    def __init__(self):
        self.entered = threading.Event()
        self.released = threading.Event()
        self.fsyncs = 0
        self.error: OSError | None = None

    def hold(self):
        self.entered.clear()
        self.released.clear()

    def open_wide(self):
        self.released.set()


class GatedTarget:
    def __init__(self, target: OsSyncTarget, gate: Gate):
        self.target, self.gate = target, gate

    def fsync(self):
        self.gate.entered.set()
        assert self.gate.released.wait(10), "fsync never released"
        if self.gate.error is not None:
            raise self.gate.error
        self.target.fsync()
        self.gate.fsyncs += 1

    def close(self):
        self.target.close()

    def settle(self):
        self.target.settle()


class GatedFile(OsFile):
    __slots__ = ("gate",)

    def sync_target(self, data_only=False):
        return GatedTarget(super().sync_target(data_only), self.gate)


class GatedFileSystem(OsFileSystem):
    """Real files whose split-flush fsyncs wait for the test (the synchronous flush does not)."""

    def __init__(self):
        super().__init__()
        self.gate = Gate()
        self.gate.open_wide()

    def open(self, path):
        handle = GatedFile(path, self.budget)
        self.budget._track(handle)
        handle.gate = self.gate
        return handle

    def dir_sync_target(self, path):
        return GatedTarget(super().dir_sync_target(path), self.gate)


def start_sync(ticket, gate) -> threading.Thread:
    thread = threading.Thread(target=ticket.sync)
    thread.start()
    assert gate.entered.wait(10), "the flush thread never reached fsync"
    return thread


@pytest.fixture
def gated(tmp_path):
    fs = GatedFileSystem()
    return fs, PartitionLog.open(fs, f"{tmp_path}/t-0", LogConfig(), clock=clock)


def test_appends_during_an_inflight_flush_are_accepted_and_covered_by_the_next_one(gated):
    fs, log = gated
    log.append(make_batch([b"a"]))
    log.append(make_batch([b"b"]))
    fs.gate.hold()
    ticket = log.prepare_flush()
    assert ticket.end_offset == 2
    thread = start_sync(ticket, fs.gate)
    # The fsync is blocked in its thread: the log keeps taking appends, none durable yet.
    assert log.append(make_batch([b"c"])).first_offset == 2
    assert log.append(make_batch([b"d", b"e"])).end_offset == 5
    assert log.recovery_point == 0
    assert thread.is_alive()
    fs.gate.open_wide()
    thread.join(10)
    assert log.complete_flush(ticket) == 2 and log.recovery_point == 2
    assert any(s.has_unflushed_data for s in log.segments)  # c, d, e: not covered
    fsyncs_before = fs.gate.fsyncs
    second = log.prepare_flush()
    assert second.end_offset == 5
    second.sync()
    assert log.complete_flush(second) == 5
    assert not any(s.has_unflushed_data for s in log.segments)
    assert fs.gate.fsyncs - fsyncs_before == len(second.targets)  # one flush for all three appends
    assert log.prepare_flush() is None  # nothing left


def test_a_roll_during_the_flush_does_not_close_its_descriptors(gated):
    fs, log = gated
    log.append(make_batch([b"a"]))
    fs.gate.hold()
    ticket = log.prepare_flush()
    thread = start_sync(ticket, fs.gate)
    log.roll()  # the old active segment is fsynced (synchronously) and trimmed meanwhile
    log.append(make_batch([b"b"]))
    old = log.segments[0]
    old.close()  # closes its descriptors: the ticket's duplicates stay open
    fs.gate.open_wide()
    thread.join(10)
    assert ticket.error is None
    assert log.complete_flush(ticket) == 1


def test_truncation_during_an_inflight_flush_wins(gated):
    fs, log = gated
    for value in (b"a", b"b", b"c"):
        log.append(make_batch([value]))
    fs.gate.hold()
    ticket = log.prepare_flush()
    assert ticket.end_offset == 3
    thread = start_sync(ticket, fs.gate)
    assert log.truncate_to(1) == 1
    log.append(make_batch([b"x"]))  # offset 1 again, other data
    fs.gate.open_wide()
    thread.join(10)
    assert log.complete_flush(ticket) <= 1  # never 3: offsets 1 and 2 are not the flushed ones
    assert log.recovery_point <= log.log_end_offset == 2
    assert log.segments[-1].has_unflushed_data or log.recovery_point == 2
    assert log.flush() == 2


def test_an_fsync_error_is_a_storage_error_and_the_next_flush_retries(gated):
    fs, log = gated
    log.append(make_batch([b"a"]))
    fs.gate.error = OSError(errno.EIO, "input/output error")
    ticket = log.prepare_flush()
    ticket.sync()
    with pytest.raises(KafkaStorageError) as raised:
        log.complete_flush(ticket)
    assert raised.value.error_code == 56
    assert log.recovery_point == 0 and log.segments[-1].has_unflushed_data
    fs.gate.error = None
    log.append(make_batch([b"b"]))
    retry = log.prepare_flush()
    retry.sync()
    assert log.complete_flush(retry) == 2


def test_memory_backend_data_is_durable_only_once_the_flush_completed():
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, "d/t-0", LogConfig(), clock=clock)
    log.append(make_batch([b"a"]))
    ticket = log.prepare_flush()
    ticket.sync()
    fs.crash()  # fsynced in the thread, but the flush never completed: lost
    assert PartitionLog.open(fs, "d/t-0", LogConfig(), clock=clock).log_end_offset == 0

    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, "d/t-0", LogConfig(), clock=clock)
    log.append(make_batch([b"a"]))
    ticket = log.prepare_flush()
    ticket.sync()
    log.complete_flush(ticket)
    log.append(make_batch([b"b"]))  # after the flush: may be lost
    fs.crash()
    assert PartitionLog.open(fs, "d/t-0", LogConfig(), clock=clock).log_end_offset == 1


def test_memory_backend_truncation_during_the_flush_does_not_come_back():
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, "d/t-0", LogConfig(), clock=clock)
    for value in (b"a", b"b", b"c"):
        log.append(make_batch([value]))
    ticket = log.prepare_flush()
    ticket.sync()
    log.truncate_to(1)
    log.complete_flush(ticket)
    assert log.recovery_point <= 1
    fs.crash()
    reopened = PartitionLog.open(fs, "d/t-0", LogConfig(), clock=clock)
    assert reopened.log_end_offset == 1


def test_the_group_commit_runs_one_round_at_a_time_and_the_next_covers_all_waiters(tmp_path):
    """odradek.broker.group_commit over the data sync, in its real thread: produces arriving
    while a round is in flight are appended at once and all answered by the next round, and
    the partitions waiting together share a round."""
    import asyncio

    from odradek.broker.group_commit import GroupCommit
    from odradek.broker.partition import Partition

    fs = GatedFileSystem()
    logs = [PartitionLog.open(fs, f"{tmp_path}/t-{index}", LogConfig(), clock=clock) for index in range(2)]
    group_commit = GroupCommit("test", kernel_aio=False)
    group_commit.expected_sync_s = 3600.0  # a slow disk: its syncs go to the (held) sync thread
    first_partition, second_partition = (Partition("t", None, index, log, node_id=1, group_commit=group_commit)
                                         for index, log in enumerate(logs))
    prepared = []
    for log in logs:
        def counting_prepare(prepare=log.prepare_sync):
            ticket = prepare()
            prepared.append(ticket.end_offset)
            return ticket
        log.prepare_sync = counting_prepare

    def produce(partition, value):
        return partition.wait_durable(partition.append(make_batch([value])).end_offset)

    async def scenario():
        fs.gate.hold()
        first = produce(first_partition, b"a")
        while not fs.gate.entered.is_set():  # the sync thread reached its (blocked) fdatasync
            await asyncio.sleep(0.001)
        later = [produce(first_partition, value) for value in (b"b", b"c", b"d")]
        later.append(produce(second_partition, b"x"))
        await asyncio.sleep(0.05)
        assert first_partition.log_end_offset == 4 and logs[0].durable_offset == 0
        assert not first.done() and not any(future.done() for future in later)
        fs.gate.open_wide()
        await asyncio.wait_for(asyncio.gather(first, *later), 10)
        assert [log.durable_offset for log in logs] == [4, 1]
        assert [log.recovery_point for log in logs] == [0, 0]  # the indexes were left to recovery
        assert first_partition.wait_durable(4) is None  # durable already: nothing to wait for

    try:
        asyncio.run(scenario())
    finally:
        group_commit.close()
    # two rounds for five produces: the first partition's first append, then its three later
    # ones together with the second partition's
    assert prepared == [1, 4, 1] and group_commit.rounds == 2


def test_the_group_commit_syncs_one_partition_on_the_loop_while_syncs_are_quick_and_in_its_thread_once_slow(tmp_path):
    """A quick sync of one partition runs on the event loop (no hand-off); once syncs take
    longer than INLINE_SYNC_S they run in the sync thread, so a slow disk stops holding the
    loop; when it is quick again they come back."""
    import asyncio
    import time

    from odradek.broker import group_commit as group_commit_module
    from odradek.broker.group_commit import GroupCommit
    from odradek.broker.partition import Partition

    class TimedFile(OsFile):
        __slots__ = ()
        delay = 0.0
        threads: list[str] = []

        def sync_target(self, data_only=False):
            target = super().sync_target(data_only)

            class Timed:
                def fsync(self_inner):
                    TimedFile.threads.append(threading.current_thread().name)
                    time.sleep(TimedFile.delay)
                    target.fsync()

                def close(self_inner):
                    target.close()

                def settle(self_inner):
                    target.settle()
            return Timed()

    class TimedFileSystem(OsFileSystem):
        def open(self, path):
            handle = TimedFile(path, self.budget)
            self.budget._track(handle)
            return handle

    log = PartitionLog.open(TimedFileSystem(), f"{tmp_path}/t-0", LogConfig(), clock=clock)
    group_commit = GroupCommit("test", kernel_aio=False)
    partition = Partition("t", None, 0, log, node_id=1, group_commit=group_commit)

    async def produce_and_wait(count):
        for _ in range(count):
            await partition.wait_durable(partition.append(make_batch([b"v"])).end_offset)

    try:
        asyncio.run(produce_and_wait(3))
        on_loop = threading.main_thread().name
        assert TimedFile.threads and set(TimedFile.threads) == {on_loop}
        assert group_commit.expected_sync_s < group_commit_module.INLINE_SYNC_S
        TimedFile.delay, TimedFile.threads = 0.02, []  # a slow disk: 20 ms a sync
        asyncio.run(produce_and_wait(4))
        assert TimedFile.threads[0] == on_loop  # the first slow sync was not foreseen
        assert TimedFile.threads[-1] != on_loop  # the next ones run in the sync thread
        TimedFile.delay, TimedFile.threads = 0.0, []
        asyncio.run(produce_and_wait(60))
        assert TimedFile.threads[-1] == on_loop  # quick again: back on the loop
    finally:
        group_commit.close()
