"""Byte layouts of every file the storage engine writes, checked against Kafka's formats."""

import struct
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odradek.storage import checkpoints
from odradek.storage.config import LogConfig
from odradek.storage.fs import MemoryFileSystem, OsFileSystem
from odradek.storage.indexes import CorruptIndex, OffsetIndex, TimeIndex
from odradek.storage.log_directory import LogDirectory
from odradek.storage.partition_log import PartitionLog
from odradek.storage.segment import segment_file_name

from storage_batches import make_batch

NOW = 1_700_000_000_500


@pytest.fixture(params=["memory", "os"])
def fs_root(request, tmp_path):
    if request.param == "memory":
        return MemoryFileSystem(), "data"
    return OsFileSystem(), str(tmp_path)


def test_segment_file_names_are_twenty_digit_base_offsets():
    assert segment_file_name(0, ".log") == "00000000000000000000.log"
    assert segment_file_name(1234, ".index") == "00000000000000001234.index"
    assert segment_file_name(2**63 - 1, ".timeindex") == "09223372036854775807.timeindex"


def test_offset_index_layout_preallocation_and_trim(fs_root):
    fs, root = fs_root
    fs.makedirs(root)
    path = f"{root}/00000000000000000100.index"
    index = OffsetIndex(fs, path, 100, max_index_size=80)
    index.preallocate()
    assert fs.file_size(path) == 80  # preallocated to segment.index.bytes
    index.append(105, 4200)
    index.append(110, 9000)
    assert fs.read_file(path) == bytes(80)  # entries reach the file at flush, trim or close
    index.flush()
    raw = fs.read_file(path)
    assert raw[:16] == struct.pack(">ii", 5, 4200) + struct.pack(">ii", 10, 9000)
    assert raw[16:] == bytes(64)
    assert index.lookup(104) == (100, 0)
    assert index.lookup(105) == (105, 4200)
    assert index.lookup(109) == (105, 4200)
    assert index.lookup(10**6) == (110, 9000)
    index.trim()
    assert fs.file_size(path) == 16
    index.close()
    # Reopened (even untrimmed, as after a crash) it finds the same entries.
    reopened = OffsetIndex(fs, path, 100, max_index_size=80)
    assert reopened.entries == 2 and reopened.last_offset() == 110
    with pytest.raises(CorruptIndex):
        reopened.append(110, 9999)  # offsets must increase


def test_offset_index_drops_zero_tail_of_preallocated_file(fs_root):
    fs, root = fs_root
    fs.makedirs(root)
    path = f"{root}/x.index"
    handle = fs.open(path)
    handle.pwrite(struct.pack(">ii", 3, 500) + bytes(800), 0)
    handle.close()
    index = OffsetIndex(fs, path, 0, max_index_size=1024)
    assert index.entries == 1
    index.check(log_size=1000)
    with pytest.raises(CorruptIndex):
        index.check(log_size=400)  # position past the log


def test_time_index_layout_and_lookup(fs_root):
    fs, root = fs_root
    fs.makedirs(root)
    path = f"{root}/00000000000000000050.timeindex"
    index = TimeIndex(fs, path, 50, max_index_size=36)
    index.preallocate()
    index.maybe_append(1000, 55)
    index.maybe_append(1000, 60)  # not above the last timestamp: ignored
    index.maybe_append(2000, 70)
    index.write_pending()
    raw = fs.read_file(path)
    assert raw[:24] == struct.pack(">qi", 1000, 5) + struct.pack(">qi", 2000, 20)
    assert index.is_full  # 3 slots, one reserved for the final entry
    with pytest.raises(CorruptIndex):
        index.maybe_append(3000, 80)
    index.maybe_append(3000, 80, final=True)
    assert index.lookup(999) == (-1, 50)
    assert index.lookup(1500) == (1000, 55)
    assert index.last_entry() == (3000, 80)
    index.truncate_to(70)
    assert index.last_entry() == (1000, 55)


@given(st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=60, unique=True))
def test_offset_index_lookup_is_greatest_lower_bound(relative_offsets):
    fs = MemoryFileSystem()
    index = OffsetIndex(fs, "i.index", 1000, max_index_size=8 * 100)
    entries = sorted(relative_offsets)
    for position, relative in enumerate(entries, start=1):
        index.append(1000 + relative, position * 10)
    for probe in range(0, 5002, 97):
        below = [i for i, r in enumerate(entries) if r <= probe]
        expected = (1000 + entries[below[-1]], (below[-1] + 1) * 10) if below else (1000, 0)
        assert index.lookup(1000 + probe) == expected


def test_log_file_is_the_batches_with_patched_offsets(fs_root):
    fs, root = fs_root
    log = PartitionLog.open(fs, f"{root}/topic-0", LogConfig(), clock=lambda: NOW)
    first = make_batch([b"a", b"b"], base_offset=777)
    second = make_batch([b"c"], base_offset=0)
    log.append(first)
    log.append(second, leader_epoch=3)
    raw = fs.read_file(f"{root}/topic-0/00000000000000000000.log")
    assert raw == struct.pack(">q", 0) + first[8:] + struct.pack(">q", 2) + second[8:12] + struct.pack(">i", 3) + second[16:]
    assert fs.read_file(f"{root}/topic-0/leader-epoch-checkpoint") == b"0\n1\n3 2\n"


def test_offset_checkpoint_format():
    fs = MemoryFileSystem()
    checkpoints.write_offset_checkpoint(fs, "rp", {("b", 1): 5, ("a", 0): 10})
    assert fs.read_file("rp") == b"0\n2\na 0 10\nb 1 5\n"
    assert checkpoints.read_offset_checkpoint(fs, "rp") == {("a", 0): 10, ("b", 1): 5}
    assert not fs.exists("rp.tmp")
    for bad in (b"1\n0\n", b"0\n2\na 0 1\n", b"0\nx\n", b"0\n1\na 0\n", b"", b"\xff"):
        fs.write_file_atomic("bad", bad)
        with pytest.raises(checkpoints.CorruptCheckpoint):
            checkpoints.read_offset_checkpoint(fs, "bad")


@given(st.dictionaries(st.tuples(st.from_regex(r"[a-zA-Z0-9._-]{1,20}", fullmatch=True),
                                 st.integers(0, 1000)), st.integers(0, 2**62), max_size=10))
def test_offset_checkpoint_round_trip(offsets):
    fs = MemoryFileSystem()
    checkpoints.write_offset_checkpoint(fs, "c", offsets)
    assert checkpoints.read_offset_checkpoint(fs, "c") == offsets


@given(st.binary(max_size=60))
def test_checkpoint_parser_refuses_garbage_with_its_error(data):
    fs = MemoryFileSystem()
    fs.write_file_atomic("c", data)
    try:
        checkpoints.read_offset_checkpoint(fs, "c")
        checkpoints.read_leader_epochs(fs, "c")
    except checkpoints.CorruptCheckpoint:
        pass


def test_partition_metadata_and_uuid_format():
    fs = MemoryFileSystem()
    topic_id = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    checkpoints.write_partition_metadata(fs, "pm", topic_id)
    text = fs.read_file("pm").decode()
    assert text == "version: 0\ntopic_id: Dx4tPEtaaXiHlqW0w9Lh8A"
    assert checkpoints.read_partition_metadata(fs, "pm") == topic_id


def test_data_directory_files(tmp_path):
    directory = LogDirectory.open(str(tmp_path), node_id=7, cluster_id="MkU3OEVBNTcwNTJENDM2Qk", clock=lambda: NOW)
    log = directory.create_log("orders", 2, topic_id=uuid.uuid4())
    log.append(make_batch([b"x", b"y"]))
    log.update_high_watermark(2)
    directory.close(broker_epoch=42)
    meta = checkpoints.read_meta_properties(OsFileSystem(), str(tmp_path / "meta.properties"))
    assert meta["version"] == "1" and meta["node.id"] == "7" and meta["cluster.id"] == "MkU3OEVBNTcwNTJENDM2Qk"
    assert len(meta["directory.id"]) == 22
    assert (tmp_path / ".kafka_cleanshutdown").read_text() == '{"version":0,"brokerEpoch":42}'
    for name in ("recovery-point-offset-checkpoint", "replication-offset-checkpoint"):
        assert (tmp_path / name).read_text() == "0\n1\norders 2 2\n"
    assert (tmp_path / "log-start-offset-checkpoint").read_text() == "0\n1\norders 2 0\n"
    assert (tmp_path / "cleaner-offset-checkpoint").read_text() == "0\n0\n"
    partition_dir = tmp_path / "orders-2"
    assert sorted(p.name for p in partition_dir.iterdir()) == [
        "00000000000000000000.index", "00000000000000000000.log", "00000000000000000000.timeindex",
        "00000000000000000002.snapshot", "leader-epoch-checkpoint", "partition.metadata"]
    # Producer state snapshot at the log end: version 1, CRC-32C of the rest, no producers.
    assert (partition_dir / "00000000000000000002.snapshot").read_bytes() == (
        struct.pack(">hI", 1, __import__("crc32c").crc32c(b"\0\0\0\0")) + b"\0\0\0\0")
    # Trimmed on close: the time index holds the final (max timestamp) entry only.
    assert (partition_dir / "00000000000000000000.index").stat().st_size == 0
    assert (partition_dir / "00000000000000000000.timeindex").read_bytes() == struct.pack(">qi", 1_700_000_000_001, 1)


def test_memory_backend_preallocates_without_allocating():
    fs = MemoryFileSystem()
    logs = [PartitionLog.open(fs, f"data/t-{i}", LogConfig(), clock=lambda: NOW) for i in range(200)]
    index = fs.files["data/t-7/00000000000000000000.index"]
    assert index.size() == 10 * 1024 * 1024 and len(index.data) == 0
    logs[7].append(make_batch([b"x"]))
    assert sum(len(f.data) for f in fs.files.values()) < 100_000
    assert fs.read_file("data/t-7/00000000000000000000.index") == bytes(10 * 1024 * 1024)


def test_transaction_index_format_truncation_and_deletion():
    from odradek.storage.txn_index import AbortedTxn

    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, "d/t-0", LogConfig(), clock=lambda: NOW)
    for i in range(10):
        log.append(make_batch([b"v%d" % i]))
    segment = log.active_segment
    segment.txn_index.append(AbortedTxn(5, 1, 3, 1))
    segment.txn_index.append(AbortedTxn(6, 2, 7, 4))
    raw = fs.read_file("d/t-0/00000000000000000000.txnindex")
    assert raw == struct.pack(">hqqqq", 0, 5, 1, 3, 1) + struct.pack(">hqqqq", 0, 6, 2, 7, 4)
    assert log.aborted_transactions(4, 10) == [AbortedTxn(6, 2, 7, 4)]
    assert log.aborted_transactions(0, 2) == [AbortedTxn(5, 1, 3, 1)]  # the second starts at the bound
    log.truncate_to(7)
    assert log.aborted_transactions(0, 10) == [AbortedTxn(5, 1, 3, 1)]
    log.truncate_fully_and_start_at(20)
    assert not fs.exists("d/t-0/00000000000000000000.txnindex")
