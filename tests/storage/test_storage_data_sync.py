"""The data sync acks=all waits for (PartitionLog.prepare_sync / complete_sync): only the
``.log`` files and, for new segments, the partition directory are synced; a power loss keeps
every record below the durable offset, and recovery, starting from the older recovery point,
rebuilds the indexes it left unsynced. On the memory backend with directory entries that need
a directory fsync, as on a real file system."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from odradek.storage.config import LogConfig
from odradek.storage.fs import MemoryFileSystem
from odradek.storage.log_directory import LogDirectory

from storage_batches import make_batch
from sync_steps import apply_steps, values_of

# Small segments and indexes: a few appends roll, so syncs cross segment boundaries.
CONFIG = LogConfig(segment_bytes=900, index_interval_bytes=120, segment_index_bytes=4096)


def _value(index: int) -> bytes:
    return b"value-%06d" % index


def _open(fs):
    return LogDirectory.open("/data", node_id=1, cluster_id="data-sync", fs=fs, default_config=CONFIG)


def _log_of(records: int):
    """A data directory on a fresh file system and its partition t-0 with ``records`` records."""
    directory = _open(MemoryFileSystem(names_need_dir_fsync=True))
    log = directory.create_log("t", 0)
    for index in range(records):
        log.append(make_batch([_value(index)]))
    return directory, log


def test_a_sync_writes_the_log_only_and_advances_the_durable_offset_not_the_recovery_point():
    directory, log = _log_of(3)
    ticket = log.prepare_sync()
    # the active segment's .log, and the partition directory: its files are new
    assert len(ticket.targets) == 2
    ticket.sync()
    assert log.complete_sync(ticket) == 3
    assert (log.durable_offset, log.recovery_point) == (3, 0)
    assert log.prepare_sync() is None  # nothing new: no sync at all
    log.append(make_batch([_value(3)]))
    second = log.prepare_sync()
    assert len(second.targets) == 1  # the names are durable now: the .log alone
    second.sync()
    log.complete_sync(second)
    assert log.flush() == 4 and (log.durable_offset, log.recovery_point) == (4, 4)
    directory.close()


def test_a_truncation_during_a_sync_keeps_the_durable_offset_at_the_cut():
    directory, log = _log_of(4)
    ticket = log.prepare_sync()
    ticket.sync()
    log.truncate_to(2)
    assert log.complete_sync(ticket) == log.durable_offset <= 2
    directory.close()


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.sampled_from(["append", "append", "append", "sync", "roll", "flush"]), min_size=1,
                      max_size=40),
       seed=st.integers(0, 2**32 - 1), torn=st.booleans())
def test_records_below_the_durable_offset_survive_a_power_loss(steps, seed, torn):
    fs = MemoryFileSystem(names_need_dir_fsync=True)
    directory = _open(fs)
    directory.checkpoint()
    log = directory.create_log("t", 0)
    appended, synced = apply_steps(log, steps, _value, 0)
    # The checkpoint a restart reads holds whatever recovery point was last written (here: the
    # one at the start, 0, or none at all: recovery then starts from the first segment).
    fs.crash(random.Random(seed) if torn else None)

    directory = _open(fs)
    try:
        recovered = directory.get_log("t", 0)
        kept = values_of(recovered) if recovered is not None else []
        assert kept[:synced] == [_value(index) for index in range(synced)], "a synced record was lost"
        assert kept == [_value(index) for index in range(len(kept))] and len(kept) <= appended
        if recovered is not None:
            for segment in recovered.segments:
                segment.check_indexes()
    finally:
        directory.close()
