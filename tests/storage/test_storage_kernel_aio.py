"""storage/kernel_aio.py: fsync and fdatasync through Linux's AIO, and the group commit
(broker/group_commit.py) running its rounds on it: real files, the real kernel, the real event
loop. Where the kernel has no AIO (another system, another machine) there is nothing to test."""

import asyncio
import errno
import os
import select

import pytest

from odradek.storage.config import LogConfig
from odradek.storage.errors import KafkaStorageError
from odradek.storage.fs import OsFileSystem, OsSyncTarget
from odradek.storage.kernel_aio import KernelAio
from odradek.storage.partition_log import PartitionLog

from storage_batches import make_batch

pytestmark = pytest.mark.skipif(KernelAio.open(4) is None, reason="no kernel AIO here (Linux on x86_64 or aarch64)")


def clock():
    return 1_700_000_000_500


def _readable(fd: int, timeout: float = 5.0) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def _written(path, size: int) -> int:
    """A descriptor of a new file with ``size`` bytes written and not synced."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    os.write(fd, b"x" * size)
    return fd


def test_fdatasync_and_fsync_end_on_the_eventfd_with_their_tokens(tmp_path):
    aio = KernelAio.open(4)
    try:
        fd = _written(tmp_path / "data", 100_000)
        aio.submit(fd, True, "data sync")
        aio.submit(fd, False, "full sync")
        assert aio.in_flight == 2
        ended = []
        while len(ended) < 2:
            assert _readable(aio.eventfd)
            ended += aio.completions()
        assert sorted(ended) == [("data sync", 0), ("full sync", 0)]
        assert aio.in_flight == 0 and aio.completions() == []
        os.close(fd)
    finally:
        aio.close()


def test_a_descriptor_closed_after_the_submission_is_still_synced(tmp_path):
    """The kernel holds its own reference: the descriptor budget may close a file at once."""
    aio = KernelAio.open(4)
    try:
        fd = _written(tmp_path / "data", 50_000)
        aio.submit(fd, True, "closed")
        os.close(fd)
        assert aio.completions(wait=True) == [("closed", 0)]
    finally:
        aio.close()


def test_the_kernel_refuses_a_bad_descriptor_and_a_file_without_fsync_at_the_submission(tmp_path):
    aio = KernelAio.open(4)
    read_end, write_end = os.pipe()
    try:
        fd = os.open(tmp_path / "gone", os.O_RDWR | os.O_CREAT)
        os.close(fd)
        with pytest.raises(OSError) as bad:
            aio.submit(fd, True, "closed before")
        assert bad.value.errno == errno.EBADF
        with pytest.raises(OSError) as no_fsync:
            aio.submit(read_end, True, "a pipe")
        assert no_fsync.value.errno == errno.EINVAL
        assert aio.in_flight == 0
    finally:
        os.close(read_end)
        os.close(write_end)
        aio.close()


def test_close_with_a_sync_in_flight_frees_the_context_once(tmp_path):
    aio = KernelAio.open(4)
    fd = _written(tmp_path / "data", 1_000_000)
    try:
        aio.submit(fd, False, "in flight")
        eventfd = aio.eventfd
        aio.close()  # io_destroy returns once the sync ended
        with pytest.raises(OSError) as closed:
            os.fstat(eventfd)
        assert closed.value.errno == errno.EBADF
        aio.close()  # a second close does nothing
    finally:
        os.close(fd)


def _partition(tmp_path, group_commit, fs=None):
    from odradek.broker.partition import Partition

    log = PartitionLog.open(fs or OsFileSystem(), f"{tmp_path}/t-0", LogConfig(), clock=clock)
    return log, Partition("t", None, 0, log, node_id=1, group_commit=group_commit)


def test_the_group_commit_gives_its_rounds_to_the_kernel(tmp_path):
    from odradek.broker.group_commit import GroupCommit

    group_commit = GroupCommit("test")
    log, partition = _partition(tmp_path, group_commit)

    async def scenario():
        futures = []
        for value in range(20):
            futures.append(partition.wait_durable(partition.append(make_batch([b"v%d" % value])).end_offset))
            if value % 5 == 4:
                await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(*futures), 10)

    try:
        asyncio.run(scenario())
        assert log.durable_offset == 20 == log.log_end_offset
        assert group_commit._aio is not None and 1 <= group_commit.rounds <= 4
        assert not group_commit._executor._threads  # no sync went to a thread ...
        assert group_commit.expected_sync_s == 0.0  # ... nor ran on the loop (it would have been timed)
    finally:
        group_commit.close()
        log.close()


class _PipeTarget(OsSyncTarget):
    """A sync target whose descriptor the kernel cannot sync (a pipe: EINVAL)."""

    __slots__ = ("pipe",)

    def descriptor(self):
        return self.pipe, False

    def fsync(self):
        os.fsync(self.pipe)


def test_a_refused_kernel_sync_fails_the_waiters_with_a_storage_error_and_the_next_round_syncs(tmp_path):
    from odradek.broker.group_commit import GroupCommit

    group_commit = GroupCommit("test")
    log, partition = _partition(tmp_path, group_commit)
    read_end, write_end = os.pipe()
    prepare = log.prepare_sync

    def prepare_with_a_pipe():
        ticket = prepare()
        target = _PipeTarget(fd=-1, data_only=True)
        target.pipe = read_end
        ticket.targets.append(target)
        return ticket

    async def scenario():
        await partition.wait_durable(partition.append(make_batch([b"first"])).end_offset)  # AIO proven
        log.prepare_sync = prepare_with_a_pipe
        with pytest.raises(KafkaStorageError):
            await partition.wait_durable(partition.append(make_batch([b"second"])).end_offset)
        assert log.durable_offset == 1
        log.prepare_sync = prepare
        await asyncio.wait_for(partition.wait_durable(2), 10)  # the next round retries it

    try:
        asyncio.run(scenario())
        assert log.durable_offset == 2
        assert group_commit._aio is not None  # still on AIO: the refusal was the file's
    finally:
        group_commit.close()
        log.close()
        os.close(read_end)
        os.close(write_end)


def test_a_kernel_that_refuses_the_first_sync_sends_the_rounds_elsewhere(tmp_path):
    """Before Linux 4.18 io_submit refuses IOCB_CMD_FDSYNC with EINVAL: from the first refusal
    on, the rounds run on the loop or in the threads, and the waiters are still answered."""
    from odradek.broker.group_commit import GroupCommit

    group_commit = GroupCommit("test")
    log, partition = _partition(tmp_path, group_commit)
    read_end, write_end = os.pipe()
    prepare = log.prepare_sync
    fallbacks = []

    def prepare_refused_first():
        ticket = prepare()
        if not fallbacks:
            target = _PipeTarget(fd=-1, data_only=True)
            target.pipe = read_end
            ticket.targets.insert(0, target)
            fallbacks.append(ticket)
        return ticket

    log.prepare_sync = prepare_refused_first

    async def scenario():
        for value in (b"a", b"b"):
            await asyncio.wait_for(partition.wait_durable(partition.append(make_batch([value])).end_offset), 10)

    try:
        with pytest.raises(KafkaStorageError):  # the refused pipe's own fsync fails on the loop
            asyncio.run(scenario())
        asyncio.run(scenario())
        assert log.durable_offset == 3 and group_commit._aio is None
    finally:
        group_commit.close()
        log.close()
        os.close(read_end)
        os.close(write_end)


def test_a_failed_completion_read_fails_the_round_with_a_storage_error_and_the_syncs_move_to_the_threads(tmp_path):
    """io_getevents failing (injected here; the kernel's own failure cannot be provoked) leaves
    the round's outcome unknown: its waiters get a storage error, never a hang, and the next
    syncs run without AIO."""
    from odradek.broker.group_commit import GroupCommit

    group_commit = GroupCommit("test")
    log, partition = _partition(tmp_path, group_commit)

    async def scenario():
        await partition.wait_durable(partition.append(make_batch([b"first"])).end_offset)
        aio = group_commit._aio

        def failing(wait=False):
            raise OSError(errno.EFAULT, "injected io_getevents failure")
        aio.completions = failing
        with pytest.raises(KafkaStorageError):
            await asyncio.wait_for(partition.wait_durable(partition.append(make_batch([b"second"])).end_offset), 10)
        assert group_commit._aio is None and log.durable_offset == 1
        await asyncio.wait_for(partition.wait_durable(2), 10)  # synced on the loop now

    try:
        asyncio.run(scenario())
        assert log.durable_offset == 2
    finally:
        group_commit.close()
        log.close()
