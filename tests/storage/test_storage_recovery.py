"""Recovery: torn tails, bit flips in .log/.index/.timeindex, lost unflushed data, missing
indexes. After every reopen the log holds a prefix of what was written, whole batches only,
and its indexes agree with it."""

import os
import random
import struct

import pytest

from odradek.protocol.records.header import read_batch_header
from odradek.storage.config import LogConfig
from odradek.storage.fs import MemoryFileSystem, OsFileSystem
from odradek.storage.partition_log import PartitionLog

from storage_batches import make_batch

T0 = 1_700_000_000_000
CONFIG = LogConfig(segment_bytes=4000, index_interval_bytes=200, segment_index_bytes=4096)


def clock():
    return T0 + 10_000


def write_log(fs, directory, count=60, seed=0):
    """Append ``count`` batches of varied sizes; return [(base_offset, last_offset, bytes)]."""
    rng = random.Random(seed)
    log = PartitionLog.open(fs, directory, CONFIG, clock=clock)
    written = []
    for i in range(count):
        n = rng.randint(1, 4)
        batch = make_batch([bytes([i % 256]) * rng.randint(1, 120) for _ in range(n)],
                           timestamps=[T0 + 10 * i + j for j in range(n)])
        result = log.append(batch)
        written.append((result.first_offset, result.last_offset))
    return log, written


def assert_consistent(log, written):
    """The log holds exactly a prefix of ``written``; index lookups land on the right batch;
    time lookups agree with a linear scan."""
    end = log.log_end_offset
    kept = [w for w in written if w[1] < end]
    assert end == (kept[-1][1] + 1 if kept else log.log_start_offset)
    log.update_high_watermark(end)
    data = log.read(log.log_start_offset, 10**9).read_bytes()
    position, seen = 0, []
    while position < len(data):
        header = read_batch_header(data, position)
        seen.append((header.base_offset, header.last_offset))
        position += header.size_in_bytes
    assert seen == kept
    for base, last in kept:
        for offset in (base, last):
            header = read_batch_header(log.read(offset, 1).read_bytes())
            assert header.base_offset == base
    for segment in log.segments:
        segment.check_indexes()
    for base, last in kept[:: max(1, len(kept) // 10)]:
        found = log.offset_for_timestamp(T0 + 10 * kept.index((base, last)))
        assert found is not None and found[1] == base


@pytest.fixture(params=["memory", "os"])
def backend(request, tmp_path):
    if request.param == "memory":
        return MemoryFileSystem(), "data/t-0"
    return OsFileSystem(), str(tmp_path / "t-0")


def reopen(fs, directory, clean=False, recovery_point=0):
    return PartitionLog.open(fs, directory, CONFIG, clock=clock, clean_shutdown=clean, recovery_point=recovery_point)


def last_log_file(fs, directory):
    return f"{directory}/" + [n for n in fs.listdir(directory) if n.endswith(".log")][-1]


@pytest.mark.parametrize("cut", [1, 7, 60, 61, 100])
def test_torn_tail_is_cut_to_the_last_whole_batch(backend, cut):
    fs, directory = backend
    log, written = write_log(fs, directory)
    log.flush()
    path = last_log_file(fs, directory)
    handle = fs.open(path)
    handle.truncate(max(0, handle.size() - cut))
    log = reopen(fs, directory)
    assert log.log_end_offset < written[-1][1] + 1 and log.recovered_bytes_truncated > 0
    assert_consistent(log, written)
    assert log.append(make_batch([b"after"])).first_offset == log.log_end_offset - 1


def test_zero_tail_after_crash_is_cut(backend):
    fs, directory = backend
    log, written = write_log(fs, directory)
    path = last_log_file(fs, directory)
    handle = fs.open(path)
    handle.pwrite(bytes(5000), handle.size())
    log = reopen(fs, directory)
    assert log.log_end_offset == written[-1][1] + 1
    assert_consistent(log, written)


@pytest.mark.parametrize("seed", range(5))
def test_bit_flip_in_log_cuts_from_the_damaged_batch(backend, seed):
    fs, directory = backend
    log, written = write_log(fs, directory, seed=seed)
    rng = random.Random(seed)
    names = [n for n in fs.listdir(directory) if n.endswith(".log")]
    path = f"{directory}/{rng.choice(names)}"
    handle = fs.open(path)
    position = rng.randrange(handle.size())
    byte = handle.pread(1, position)[0]
    handle.pwrite(bytes([byte ^ (1 << rng.randrange(8))]), position)
    log = reopen(fs, directory)
    assert log.log_end_offset <= written[-1][1]
    assert_consistent(log, written)


@pytest.mark.parametrize("suffix", [".index", ".timeindex"])
@pytest.mark.parametrize("seed", range(3))
def test_bit_flips_in_indexes_never_give_wrong_answers(backend, suffix, seed):
    fs, directory = backend
    log, written = write_log(fs, directory, count=120, seed=seed)
    log.close()
    rng = random.Random(seed)
    for name in [n for n in fs.listdir(directory) if n.endswith(suffix)]:
        handle = fs.open(f"{directory}/{name}")
        if handle.size() == 0:
            continue
        for _ in range(3):
            position = rng.randrange(handle.size())
            byte = handle.pread(1, position)[0]
            handle.pwrite(bytes([byte ^ (1 << rng.randrange(8))]), position)
    log = reopen(fs, directory, clean=True, recovery_point=written[-1][1] + 1)
    assert log.log_end_offset == written[-1][1] + 1
    assert_consistent(log, written)


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage"])
def test_missing_or_torn_indexes_are_rebuilt(backend, damage):
    fs, directory = backend
    log, written = write_log(fs, directory, count=120)
    log.close()
    for name in [n for n in fs.listdir(directory) if n.endswith((".index", ".timeindex"))]:
        path = f"{directory}/{name}"
        if damage == "delete":
            fs.unlink(path)
        elif damage == "truncate":
            handle = fs.open(path)
            handle.truncate(max(0, handle.size() - 5))
        else:
            handle = fs.open(path)
            handle.pwrite(struct.pack(">ii", 0x7FFFFFFF, 0x7FFFFFFF) * 3, handle.size())
    for clean in (True, False):
        log = reopen(fs, directory, clean=clean, recovery_point=written[-1][1] + 1 if clean else 0)
        assert log.log_end_offset == written[-1][1] + 1
        assert_consistent(log, written)
        log.close()


def durable_data_dir(names_need_dir_fsync):
    """A memory file system holding an (already durable) empty data directory ``d``."""
    fs = MemoryFileSystem(names_need_dir_fsync=names_need_dir_fsync)
    fs.makedirs("d")
    fs.fsync_dir("")
    return fs


def test_memory_crash_loses_names_not_made_durable_by_a_directory_fsync():
    fs = durable_data_dir(True)
    kept = fs.open("d/kept")
    kept.pwrite(b"data", 0)
    kept.fsync()
    fs.fsync_dir("d")
    fs.rename("d/kept", "d/renamed")
    lost = fs.open("d/lost")
    lost.pwrite(b"more", 0)
    lost.fsync()  # its contents, not its name
    fs.makedirs("d/sub")
    fs.crash()
    assert fs.listdir("d") == ["kept"]
    assert fs.read_file("d/kept") == b"data"


@pytest.mark.parametrize("names_need_dir_fsync", [False, True])
@pytest.mark.parametrize("seed", range(10))
def test_simulated_power_loss_keeps_every_flushed_batch(seed, names_need_dir_fsync):
    """MemoryFileSystem.crash drops what was not fsynced (keeping a random torn part of it) and,
    with ``names_need_dir_fsync``, every file name whose directory was not fsynced since: a
    flush fsyncs the partition directory when it covers segments created since the recovery
    point (Kafka's LocalLog.flush), a roll when the segment it closes is one of them, and a new
    partition directory's parent is fsynced."""
    rng = random.Random(seed)
    fs = durable_data_dir(names_need_dir_fsync)
    log = PartitionLog.open(fs, "d/t-0", CONFIG, clock=clock)
    written, flushed_end = [], 0
    for i in range(rng.randint(5, 150)):
        n = rng.randint(1, 3)
        result = log.append(make_batch([b"%d" % i * rng.randint(1, 80)] * n, timestamps=[T0 + 10 * i] * n))
        written.append((result.first_offset, result.last_offset))
        if rng.random() < 0.2:
            flushed_end = log.flush()
    fs.crash(rng)
    log = reopen(fs, "d/t-0", recovery_point=flushed_end)
    assert log.log_end_offset >= flushed_end
    end = log.log_end_offset
    kept = [w for w in written if w[1] < end]
    log.update_high_watermark(end)
    data = log.read(0, 10**9).read_bytes() if end else b""
    position, seen = 0, []
    while position < len(data):
        header = read_batch_header(data, position)
        seen.append((header.base_offset, header.last_offset))
        position += header.size_in_bytes
    assert seen == kept
    for segment in log.segments:
        segment.check_indexes()


def test_deleted_suffix_leftovers_are_removed(tmp_path):
    fs = OsFileSystem()
    directory = str(tmp_path / "t-0")
    log, _ = write_log(fs, directory)
    log.close()
    (tmp_path / "t-0" / "00000000000000009999.log.deleted").write_bytes(b"junk")
    (tmp_path / "t-0" / "00000000000000009999.index").write_bytes(b"orphan")
    reopen(fs, directory, clean=True, recovery_point=10**6)
    assert sorted(os.listdir(directory))[-1] != "00000000000000009999.log.deleted"
    assert not (tmp_path / "t-0" / "00000000000000009999.index").exists()


@pytest.mark.parametrize("damage", ["offset-index", "time-index"])
def test_plausible_but_wrong_index_entries_are_detected(damage):
    """Entries that pass the ordering checks but point at the wrong batch: an offset index
    entry moved to a later batch start, or a time index timestamp lowered."""
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, "d/t-0", LogConfig(index_interval_bytes=150), clock=clock)
    written = []
    for i in range(30):
        result = log.append(make_batch([b"x" * 60], timestamps=[T0 + 100 * i]))
        written.append((result.first_offset, result.last_offset))
    log.close()
    if damage == "offset-index":
        path = "d/t-0/00000000000000000000.index"
        raw = bytearray(fs.read_file(path))
        relative, position = struct.unpack_from(">ii", raw, 8)
        struct.pack_into(">ii", raw, 8, relative, position + len(make_batch([b"x" * 60])))  # a later batch
    else:
        path = "d/t-0/00000000000000000000.timeindex"
        raw = bytearray(fs.read_file(path))
        timestamp, relative = struct.unpack_from(">qi", raw, 12)
        struct.pack_into(">qi", raw, 12, timestamp - 150, relative)  # still above the entry before
    fs.files[path].data[:] = raw
    log = reopen(fs, "d/t-0", clean=True, recovery_point=30)
    log.update_high_watermark(30)
    for base, _ in written:
        assert read_batch_header(log.read(base, 1).read_bytes()).base_offset == base
    for i in range(30):
        assert log.offset_for_timestamp(T0 + 100 * i - 20) == (T0 + 100 * i, i)


def test_a_flush_makes_a_new_segment_name_durable():
    """A log restarted at offset 100 writes no checkpoint or snapshot that would fsync the
    partition directory by the way: only the flush's directory fsync keeps the new segment."""
    fs = durable_data_dir(True)
    log = PartitionLog.open(fs, "d/t-0", CONFIG, clock=clock)
    log.append(make_batch([b"old"] * 3, timestamps=[T0] * 3))
    log.flush()
    log.truncate_fully_and_start_at(100)
    log.append(make_batch([b"new"] * 5, timestamps=[T0] * 5))
    flushed_end = log.flush()
    assert flushed_end == 105
    fs.crash()
    log = reopen(fs, "d/t-0", recovery_point=flushed_end)
    assert [segment.base_offset for segment in log.segments] == [100]
    assert log.log_end_offset == 105
