"""A data directory of many logs: a clean close costs what was written since the last one (and
its fsyncs run on several threads), a start after an unclean shutdown flushes and snapshots
what it recovered before it serves, and a new partition's empty leader-epoch-checkpoint is
written without an fsync yet survives a crash in a usable state (issue 8)."""

from __future__ import annotations

import errno
import os
import random

import pytest

from odradek.storage.producer_state import OutOfOrderSequence
from odradek.storage.config import LogConfig
from odradek.storage.fs import MemoryFileSystem, OsFileSystem
from odradek.storage.log_directory import CLEAN_SHUTDOWN_FILE, LogDirectory

from odradek.protocol.records.batch import iter_batches
from storage_batches import make_batch

PARTITIONS = 12
PRODUCER_ID = 4000


class CountingFileSystem(OsFileSystem):
    """Real files; records the files written whole (checkpoints, snapshots)."""

    def __init__(self):
        super().__init__()
        self.atomic_writes: list[str] = []

    def write_file_atomic(self, path: str, data: bytes) -> None:
        self.atomic_writes.append(path)
        super().write_file_atomic(path, data)

    def write_file(self, path: str, data: bytes, **how) -> None:
        self.atomic_writes.append(path)  # a producer snapshot: in place, fsynced
        super().write_file(path, data, **how)


def open_directory(path: str, fs=None, threads: int = 4) -> LogDirectory:
    return LogDirectory.open(path, node_id=1, cluster_id="many-logs", fs=fs, recovery_threads=threads)


def idempotent(value: bytes, sequence: int) -> bytes:
    return make_batch([value], producer_id=PRODUCER_ID, producer_epoch=0, base_sequence=sequence)


def fill(directory: LogDirectory, sequence: int) -> None:
    for partition in range(PARTITIONS):
        log = directory.get_log("t", partition) or directory.create_log("t", partition)
        log.append(idempotent(b"p%d-s%d" % (partition, sequence), sequence))


def values(log) -> list[bytes]:
    raw = log.read(log.log_start_offset, 1 << 20, max_offset=log.log_end_offset).read_bytes()
    return [record.value for batch in iter_batches(raw) for record in batch.records]


def snapshot_names(path: str) -> dict[int, list[str]]:
    return {partition: sorted(name for name in os.listdir(f"{path}/t-{partition}") if name.endswith(".snapshot"))
            for partition in range(PARTITIONS)}


@pytest.mark.parametrize("threads", [1, 4])
def test_a_log_written_just_before_a_clean_close_keeps_its_data_and_producer_state(tmp_path, threads):
    path = str(tmp_path / "data")
    directory = open_directory(path, threads=threads)
    fill(directory, 0)
    directory.close(threads=threads)
    directory = open_directory(path, threads=threads)
    fill(directory, 1)  # written just before the close
    directory.close(threads=threads)

    directory = open_directory(path, threads=threads)
    try:
        assert directory.had_clean_shutdown
        for partition in range(PARTITIONS):
            log = directory.get_log("t", partition)
            assert values(log) == [b"p%d-s0" % partition, b"p%d-s1" % partition]
            assert log.recovery_point == log.log_end_offset == 2
            # The producer state came back from the snapshot the close wrote: a retry of the
            # last batch is a duplicate (its original offset), a gap in sequence is refused.
            assert log.producer_state.producers[PRODUCER_ID].last_sequence == 1
            retry = log.append(idempotent(b"p%d-s1" % partition, 1))
            assert (retry.first_offset, retry.record_count) == (1, 0)
            with pytest.raises(OutOfOrderSequence):
                log.append(idempotent(b"gap", 3))
            assert log.append(idempotent(b"p%d-s2" % partition, 2)).first_offset == 2
    finally:
        directory.close()


def test_a_clean_close_writes_and_fsyncs_only_the_logs_written_since_the_last_one(tmp_path):
    path = str(tmp_path / "data")
    directory = open_directory(path)
    fill(directory, 0)
    directory.close(threads=4)
    before = snapshot_names(path)

    fs = CountingFileSystem()
    directory = open_directory(path, fs)
    directory.get_log("t", 5).append(idempotent(b"p5-s1", 1))
    log_files = {partition: directory.get_log("t", partition).active_segment.log_path
                 for partition in range(PARTITIONS)}
    synced: list[str] = []
    for partition in range(PARTITIONS):
        segment = directory.get_log("t", partition).active_segment
        original = segment.sync_targets

        def counted(original=original, path=segment.log_path):
            synced.append(path)
            return original()

        segment.sync_targets = counted
    fs.atomic_writes.clear()
    directory.close(threads=4)

    assert synced == [log_files[5]]  # one flush: the only log written
    snapshots = [name for name in fs.atomic_writes if name.endswith(".snapshot")]
    assert snapshots == [f"{path}/t-5/{2:020d}.snapshot"]
    after = snapshot_names(path)
    assert {partition for partition in range(PARTITIONS) if after[partition] != before[partition]} == {5}
    # The data directory's checkpoints are written once each, whatever the number of logs.
    checkpoints = [name for name in fs.atomic_writes if not name.endswith(".snapshot")]
    assert sorted(os.path.basename(name) for name in checkpoints) == sorted(
        ["recovery-point-offset-checkpoint", "log-start-offset-checkpoint", "replication-offset-checkpoint",
         "cleaner-offset-checkpoint", CLEAN_SHUTDOWN_FILE])


def test_a_start_after_an_unclean_shutdown_flushes_and_snapshots_what_it_recovered(tmp_path):
    path = str(tmp_path / "data")
    directory = open_directory(path)
    fill(directory, 0)
    directory.close(threads=4)
    directory = open_directory(path)
    fill(directory, 1)
    fill(directory, 2)
    directory._release_lock()  # the process died: no flush, no snapshot, no marker

    directory = open_directory(path, threads=4)
    try:
        assert not directory.had_clean_shutdown
        for partition in range(PARTITIONS):
            log = directory.get_log("t", partition)
            assert values(log) == [b"p%d-s%d" % (partition, s) for s in range(3)]
            # Flushed before the directory serves: the recovery point is the log end...
            assert log.recovery_point == log.log_end_offset == 3
            assert not any(segment.has_unflushed_data for segment in log.segments)
            # ... and the producer state at the end is snapshotted (as Kafka's recovery ends);
            # the snapshot the clean close wrote below it is kept.
            assert snapshot_names(path)[partition] == [f"{1:020d}.snapshot", f"{3:020d}.snapshot"]
            assert log.producer_state.producers[PRODUCER_ID].last_sequence == 2
            assert log.append(idempotent(b"retry", 2)).record_count == 0
    finally:
        directory.close(threads=4)
    # The close after it has nothing left to snapshot but what the test appended: none.
    assert snapshot_names(path)[0] == [f"{1:020d}.snapshot", f"{3:020d}.snapshot"]


def test_what_a_start_recovered_survives_a_power_loss_right_after_it():
    fs = MemoryFileSystem(names_need_dir_fsync=True)
    directory = open_directory("/data", fs, threads=1)
    fill(directory, 0)
    for log in directory.logs.values():
        log.flush()
    directory.checkpoint()
    fill(directory, 1)
    fill(directory, 2)
    fs.crash(random.Random(7))  # some of the unflushed appends reached the disk, some not

    directory = open_directory("/data", fs, threads=1)
    served = {partition: values(directory.get_log("t", partition)) for partition in range(PARTITIONS)}
    assert any(len(kept) > 1 for kept in served.values()), "the crash kept no unflushed append: nothing tested"
    directory._release_lock()
    fs.crash()  # power lost again, before anything else ran: only what was fsynced is left

    directory = open_directory("/data", fs, threads=1)
    try:
        for partition in range(PARTITIONS):
            log = directory.get_log("t", partition)
            assert values(log) == served[partition]
            assert log.producer_state.producers[PRODUCER_ID].last_sequence == len(served[partition]) - 1
    finally:
        directory.close()


def test_a_new_partitions_leader_epoch_checkpoint_is_usable_after_a_crash():
    fs = MemoryFileSystem(names_need_dir_fsync=True)
    directory = open_directory("/data", fs, threads=1)
    directory.create_log("t", 0)  # nothing appended: its checkpoint was written without fsync
    epoched = directory.create_log("t", 1)
    epoched.append(make_batch([b"x"]), leader_epoch=3)  # an assigned epoch is fsynced
    epoched.flush()
    fs.crash()

    directory = open_directory("/data", fs, threads=1)
    try:
        assert directory.get_log("t", 0).leader_epochs.entries == []
        assert directory.get_log("t", 1).leader_epochs.entries == [(3, 0)]
        directory.get_log("t", 0).append(make_batch([b"y"]), leader_epoch=4)
        assert directory.get_log("t", 0).leader_epochs.entries == [(4, 0)]
    finally:
        directory.close()


def test_index_entries_a_flush_covered_survive_a_power_loss():
    """A flush skips the fsync of an index with no new entry, never of one with new entries:
    after a crash, the segments below the recovery point (not rescanned) keep every entry."""
    config = LogConfig(segment_bytes=1500, index_interval_bytes=150, segment_index_bytes=4096)
    fs = MemoryFileSystem(names_need_dir_fsync=True)
    directory = LogDirectory.open("/data", node_id=1, cluster_id="many-logs", fs=fs, default_config=config)
    log = directory.create_log("t", 0)
    for index in range(40):
        log.append(make_batch([b"v%03d" % index + b"." * 60]))
        if index % 7 == 0:
            log.flush()  # some flushes with new index entries, some without
    log.flush()
    directory.checkpoint()
    rolled = log.segments[:-1]
    assert len(rolled) >= 2
    entries = {segment.base_offset: (bytes(segment.offset_index._load()), bytes(segment.time_index._load()))
               for segment in rolled}
    assert all(offsets and times for offsets, times in entries.values())
    fs.crash()

    directory = LogDirectory.open("/data", node_id=1, cluster_id="many-logs", fs=fs, default_config=config)
    try:
        log = directory.get_log("t", 0)
        for segment in log.segments[:-1]:
            if segment.base_offset in entries:
                assert (bytes(segment.offset_index._load()), bytes(segment.time_index._load())) == \
                    entries[segment.base_offset]
        assert values(log) == [b"v%03d" % index + b"." * 60 for index in range(40)]
    finally:
        directory.close()


class DescriptorsRunOutOffThread(OsFileSystem):
    """Real files; every write made off the owner's thread fails as out of descriptors (EMFILE),
    which another process or the client sockets may cause at any time."""

    def __init__(self):
        super().__init__()
        self.refused = 0

    def write_file(self, path: str, data: bytes, **how) -> None:
        if how.get("other_thread"):
            self.refused += 1
            raise OSError(errno.EMFILE, "Too many open files (injected)", path)
        super().write_file(path, data, **how)


def test_a_snapshot_the_close_threads_could_not_write_is_written_by_the_owner(tmp_path):
    path = str(tmp_path / "data")
    fs = DescriptorsRunOutOffThread()
    directory = open_directory(path, fs, threads=4)
    fill(directory, 0)
    directory.close(threads=4)
    assert fs.refused == PARTITIONS  # each snapshot was tried on a close thread first
    assert all(names == [f"{1:020d}.snapshot"] for names in snapshot_names(path).values())
    directory = open_directory(path)
    try:
        assert directory.had_clean_shutdown
        assert all(log.producer_state.producers[PRODUCER_ID].last_sequence == 0 for log in directory.logs.values())
    finally:
        directory.close()
