"""Zeros written ahead of the appends of a log synced often (LogSegment.prepare_space): the
appends land in them, reads and offsets never see them, a roll and a clean close cut them
(durably), and recovery after a power loss cuts them without counting them as lost bytes.
On the memory backend with directory entries that need a directory fsync, as on a real disk.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from odradek.storage.config import LogConfig
from odradek.storage.fs import MemoryFileSystem
from odradek.storage.log_directory import LogDirectory
from odradek.storage.partition_log import MAX_PREPARED_BYTES, SYNCS_BEFORE_PREPARING

from storage_batches import make_batch
from sync_steps import apply_steps, values_of

CONFIG = LogConfig(segment_bytes=64 * 1024, index_interval_bytes=1024)
VALUE = b"v" * 200


def _open(fs):
    return LogDirectory.open("/data", node_id=1, cluster_id="prepared", fs=fs, default_config=CONFIG)


def _value(index: int) -> bytes:
    return b"value-%06d" % index + VALUE


def _append_and_sync(log, index: int) -> None:
    log.append(make_batch([_value(index)]))
    ticket = log.prepare_sync()
    ticket.sync()
    log.complete_sync(ticket)


def _hot_log(fs, syncs: int = SYNCS_BEFORE_PREPARING + 4):
    directory = _open(fs)
    directory.checkpoint()
    log = directory.create_log("t", 0)
    for index in range(syncs):
        _append_and_sync(log, index)
    return directory, log


def test_a_log_synced_often_appends_into_zeros_and_a_clean_close_cuts_them():
    fs = MemoryFileSystem(names_need_dir_fsync=True)
    directory = _open(fs)
    log = directory.create_log("t", 0)
    for index in range(SYNCS_BEFORE_PREPARING):
        _append_and_sync(log, index)
        # synced now and then: no zeros
        assert log.active_segment.log.size() == log.active_segment.size
    _append_and_sync(log, SYNCS_BEFORE_PREPARING)
    segment = log.active_segment
    assert segment.log.size() == segment.file_end > segment.size
    assert segment.file_end - segment.size <= MAX_PREPARED_BYTES
    ahead = segment.file_end
    _append_and_sync(log, SYNCS_BEFORE_PREPARING + 1)
    assert segment.file_end == ahead  # the append went into the zeros: the file did not grow
    records = SYNCS_BEFORE_PREPARING + 2
    assert values_of(log) == [b"value-%06d" % i for i in range(records)]
    log.update_high_watermark(log.log_end_offset)
    read = log.read(0, 10 * 1024 * 1024)
    assert read.size == segment.size  # reads stop at the last batch, not the zeros
    directory.close()

    path = segment.log_path
    assert fs.file_size(path) == segment.size
    directory = _open(fs)
    try:
        reopened = directory.get_log("t", 0)
        assert reopened.recovered_bytes_truncated == 0
        assert reopened.log_end_offset == records
        reopened.append(make_batch([_value(records)]))  # right after the last batch
        assert values_of(reopened) == [b"value-%06d" % i for i in range(records + 1)]
    finally:
        directory.close()


def test_a_roll_cuts_the_zeros_of_the_segment_it_leaves():
    fs = MemoryFileSystem(names_need_dir_fsync=True)
    directory, log = _hot_log(fs)
    left = log.active_segment
    assert left.file_end > left.size
    log.roll()
    assert fs.file_size(left.log_path) == left.size == left.file_end
    assert log.syncs_of_active_segment == 0  # the new segment starts cold
    _append_and_sync(log, 1000)
    assert log.active_segment.file_end == log.active_segment.size
    directory.close()


def test_zeros_never_go_past_where_the_segment_rolls():
    fs = MemoryFileSystem(names_need_dir_fsync=True)
    directory, log = _hot_log(fs, syncs=500)  # 500 x ~280 bytes: several 64 KiB segments
    assert len(log.segments) > 1
    for segment in log.segments:
        assert segment.file_end <= CONFIG.segment_bytes
    for segment in log.segments[:-1]:
        assert fs.file_size(segment.log_path) == segment.size
    directory.close()


def test_a_full_disk_leaves_the_appends_to_grow_the_file():
    fs = MemoryFileSystem(names_need_dir_fsync=True)
    directory, log = _hot_log(fs)
    segment = log.active_segment
    zeros_end = segment.file_end
    # Room for a few more records past the zeros, not for more zeros.
    fs.space_limit = sum(handle.written for handle in fs.files.values()) + 2048
    index = log.log_end_offset
    while segment.size <= zeros_end + 1024:
        _append_and_sync(log, index)
        index += 1
        assert segment.log.size() == segment.file_end >= segment.size
    assert segment.file_end == segment.size > zeros_end  # grown by the appends alone
    assert values_of(log) == [b"value-%06d" % i for i in range(index)]
    directory.close()


def test_zeros_left_behind_a_clean_shutdown_marker_are_cut_at_the_next_start():
    """The cut of a clean close did not reach the disk (or a copy was taken of a running
    broker's directory): the check of the active segment's tail finds the zeros."""
    fs = MemoryFileSystem(names_need_dir_fsync=True)
    directory, log = _hot_log(fs)
    records = log.log_end_offset
    directory.close()
    segment_path = log.active_segment.log_path
    handle = fs.open(segment_path)
    handle.pwrite(bytes(8192), handle.size())
    handle.close()
    directory = _open(fs)
    try:
        reopened = directory.get_log("t", 0)
        assert reopened.recovered_bytes_truncated == 0
        assert reopened.log_end_offset == records
        assert fs.file_size(segment_path) == reopened.active_segment.size
    finally:
        directory.close()


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.sampled_from(["append", "append", "append", "sync", "sync", "roll", "flush"]),
                      min_size=1, max_size=60),
       seed=st.integers(0, 2**32 - 1), torn=st.booleans())
def test_records_below_the_durable_offset_survive_a_power_loss_with_zeros_ahead(steps, seed, torn):
    fs = MemoryFileSystem(names_need_dir_fsync=True)
    directory, log = _hot_log(fs)
    appended, synced = apply_steps(log, steps, _value, log.log_end_offset)
    fs.crash(random.Random(seed) if torn else None)

    directory = _open(fs)
    try:
        recovered = directory.get_log("t", 0)
        kept = values_of(recovered)
        assert kept[:synced] == [b"value-%06d" % index for index in range(synced)], "a synced record was lost"
        assert kept == [b"value-%06d" % index for index in range(len(kept))] and len(kept) <= appended
        if not torn:  # only synced content: zeros past the last batch at most, never a torn batch
            assert recovered.recovered_bytes_truncated == 0
        active = recovered.active_segment
        assert fs.file_size(active.log_path) == active.size  # the zeros are gone
        recovered.append(make_batch([_value(len(kept))]))
        assert values_of(recovered) == [b"value-%06d" % index for index in range(len(kept) + 1)]
        for segment in recovered.segments:
            segment.check_indexes()
    finally:
        directory.close()
