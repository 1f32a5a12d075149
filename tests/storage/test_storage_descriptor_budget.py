"""The descriptor budget of the OS file system (storage/fs.py): files hold a descriptor only
within it, least recently used first closed, reopened by their current path on next use; on
real files in a temporary directory."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from odradek.protocol.records.batch import iter_batches
from odradek.storage.config import LogConfig
from odradek.storage.fs import OsFileSystem, default_descriptor_budget, is_out_of_descriptors
from odradek.storage.errors import KafkaStorageError
from odradek.storage.partition_log import PartitionLog

from storage_batches import make_batch


def clock():
    return 1_700_000_000_000


def values_of(result) -> list[bytes]:
    return [record.value for region in result.regions for batch in iter_batches(region.read())
            for record in batch.records]


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_the_budget_is_sized_below_the_limit():
    assert default_descriptor_budget(256) == 192
    assert default_descriptor_budget(1024) == 768
    assert default_descriptor_budget(4096) == 3072
    assert default_descriptor_budget(20000) == 15000
    assert default_descriptor_budget(32) == 16  # never below the minimum


def test_many_logs_under_a_small_budget_keep_their_data_and_stay_within_it(tmp_path):
    fs = OsFileSystem(max_open_files=8)
    before = open_descriptors()
    config = LogConfig(segment_bytes=300)  # a few batches per segment: rolls and inactive segments
    logs = [PartitionLog.open(fs, f"{tmp_path}/t-{i}", config, clock=clock) for i in range(20)]
    for round_ in range(6):
        for i, log in enumerate(logs):
            log.append(make_batch([b"%d-%d" % (i, round_)]))
            assert fs.budget.open_count <= 8
    assert open_descriptors() - before <= 8 + 2
    for i, log in enumerate(logs):
        assert values_of(log.read(0, 1 << 20, max_offset=log.log_end_offset)) == [b"%d-%d" % (i, r) for r in range(6)]
        assert fs.budget.open_count <= 8
    assert fs.budget.reopened > 0 and fs.budget.evicted > 0
    for log in logs:
        log.close()
    assert fs.budget.open_count == 0
    reopened = [PartitionLog.open(fs, f"{tmp_path}/t-{i}", config, clock=clock) for i in range(20)]
    for i, log in enumerate(reopened):
        assert values_of(log.read(0, 1 << 20, max_offset=log.log_end_offset)) == [b"%d-%d" % (i, r) for r in range(6)]
        log.close()


def test_a_region_reads_after_its_descriptor_was_evicted(tmp_path):
    fs = OsFileSystem(max_open_files=3)
    log = PartitionLog.open(fs, f"{tmp_path}/a-0", LogConfig(), clock=clock)
    log.append(make_batch([b"kept"]))
    (region,) = log.read(0, 1 << 20, max_offset=log.log_end_offset).regions
    first_fd = region.file.fileno()
    others = [PartitionLog.open(fs, f"{tmp_path}/b-{i}", LogConfig(), clock=clock) for i in range(3)]
    assert not region.file.has_descriptor  # evicted by the other logs' files
    data = os.pread(region.file.fileno(), region.length, region.position)  # what the server does
    assert [r.value for b in iter_batches(data) for r in b.records] == [b"kept"]
    assert region.file.has_descriptor and fs.budget.open_count <= 3
    del first_fd
    for other in others:
        other.close()
    log.close()


def test_a_renamed_directory_is_followed_and_a_deleted_segment_keeps_its_descriptor(tmp_path):
    fs = OsFileSystem(max_open_files=4)
    log = PartitionLog.open(fs, f"{tmp_path}/gone-0", LogConfig(file_delete_delay_ms=0), clock=clock)
    log.append(make_batch([b"one"]))
    (region,) = log.read(0, 1 << 20, max_offset=log.log_end_offset).regions
    # As a deletion does, the directory is renamed; an evicted file reopens under the new name.
    fs.rename(f"{tmp_path}/gone-0", f"{tmp_path}/gone-0.x-delete")
    others = [PartitionLog.open(fs, f"{tmp_path}/o-{i}", LogConfig(), clock=clock) for i in range(4)]
    assert not region.file.has_descriptor
    assert region.file.path.startswith(f"{tmp_path}/gone-0.x-delete/")
    assert [r.value for b in iter_batches(region.read()) for r in b.records] == [b"one"]
    # Removed while open: it keeps its descriptor (outside the LRU order) until dropped.
    fs.rmtree(f"{tmp_path}/gone-0.x-delete")
    assert not os.path.exists(region.file.path)
    for other in others:  # pressure: a removed file is never evicted
        other.append(make_batch([b"x"]))
    assert [r.value for b in iter_batches(region.read()) for r in b.records] == [b"one"]
    pinned = fs.budget.open_count
    del region, log
    assert fs.budget.open_count == pinned - 1  # dropped: its descriptor closed
    for other in others:
        other.close()


def test_a_flush_opens_its_own_descriptor_and_a_deleted_file_has_nothing_to_sync(tmp_path):
    fs = OsFileSystem(max_open_files=3)
    log = PartitionLog.open(fs, f"{tmp_path}/f-0", LogConfig(), clock=clock)
    log.append(make_batch([b"a"]))
    ticket = log.prepare_flush()
    others = [PartitionLog.open(fs, f"{tmp_path}/g-{i}", LogConfig(), clock=clock) for i in range(3)]
    ticket.sync()  # the log's files were evicted meanwhile: opened by path
    assert ticket.error is None and log.complete_flush(ticket) == 1
    log.append(make_batch([b"b"]))
    ticket = log.prepare_flush()
    fs.rename(f"{tmp_path}/f-0", f"{tmp_path}/f-0.moved")
    fs.budget._evict(0)
    ticket.sync()  # opens the files where they are now
    assert ticket.error is None and log.complete_flush(ticket) == 2
    fs.rename(f"{tmp_path}/f-0.moved", f"{tmp_path}/f-0")
    log.append(make_batch([b"c"]))
    ticket = log.prepare_flush()
    log.delete()  # the topic deleted before the queued flush ran: nothing left to sync
    ticket.sync()
    assert ticket.error is None
    for other in others:
        other.close()


def take_every_descriptor(hogs: list[int]) -> None:
    while True:
        try:
            hogs.append(os.open(os.devnull, os.O_RDONLY))
        except OSError as error:
            assert is_out_of_descriptors(error)
            return


def test_running_out_of_descriptors_sheds_idle_files_then_is_a_storage_error(tmp_path):
    fs = OsFileSystem(max_open_files=4)
    logs = [PartitionLog.open(fs, f"{tmp_path}/h-{i}", LogConfig(), clock=clock) for i in range(8)]
    for log in logs:
        log.append(make_batch([b"v"]))
    assert not logs[0].segments[-1].log.has_descriptor
    hogs: list[int] = []
    try:
        take_every_descriptor(hogs)
        # Idle files of other logs hold descriptors: the budget closes half of them, the read works.
        assert values_of(logs[0].read(0, 1 << 20, max_offset=logs[0].log_end_offset)) == [b"v"]
        # Nothing idle left to close and every descriptor taken: a storage error, not a crash.
        fs.budget._evict(0)
        take_every_descriptor(hogs)
        try:
            logs[1].read(0, 1 << 20, max_offset=logs[1].log_end_offset)
            raise AssertionError("the read needed a descriptor")
        except KafkaStorageError as error:
            assert is_out_of_descriptors(error) and error.error_code == 56
    finally:
        for fd in hogs:
            os.close(fd)
    assert values_of(logs[1].read(0, 1 << 20, max_offset=logs[1].log_end_offset)) == [b"v"]  # descriptors free: works again
    for log in logs:
        log.close()


@settings(max_examples=40)
@given(operations=st.lists(st.tuples(st.sampled_from(["append", "read", "roll", "flush"]),
                                     st.integers(0, 5)), max_size=60),
       budget=st.integers(1, 6))
def test_any_sequence_of_operations_keeps_the_data_and_the_budget(tmp_path_factory, operations, budget):
    directory = tmp_path_factory.mktemp("budget")
    fs = OsFileSystem(max_open_files=budget)
    logs = [PartitionLog.open(fs, f"{directory}/p-{i}", LogConfig(), clock=clock) for i in range(6)]
    written: list[list[bytes]] = [[] for _ in logs]
    for number, (operation, index) in enumerate(operations):
        log = logs[index]
        if operation == "append":
            value = b"%d" % number
            log.append(make_batch([value]))
            written[index].append(value)
        elif operation == "read" and written[index]:
            assert values_of(log.read(0, 1 << 20, max_offset=log.log_end_offset)) == written[index]
        elif operation == "roll":
            log.roll()
        elif operation == "flush":
            log.flush()
        assert fs.budget.open_count <= budget
    for log in logs:
        log.close()
    for i, values in enumerate(written):
        reopened = PartitionLog.open(fs, f"{directory}/p-{i}", LogConfig(), clock=clock)
        assert (values_of(reopened.read(0, 1 << 20, max_offset=reopened.log_end_offset)) if values else []) == values
        reopened.close()
