"""Random damage to a cleanly closed data directory (any file, any position: cut there, bytes
overwritten with random ones, or zeroed), with or without the clean-shutdown marker, then the
directory opened again: it opens, every batch that was intact before the damaged position of its
file is still read back, byte for byte, once and in order, and new appends work and survive a
clean restart."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odradek.protocol.errors import ProtocolError
from odradek.protocol.records.header import read_batch_header
from odradek.storage.checkpoints import CorruptCheckpoint, read_offset_checkpoint
from odradek.storage.config import LogConfig
from odradek.storage.fs import OsFileSystem
from odradek.storage.log_directory import CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_CHECKPOINT, LogDirectory

from storage_batches import make_batch

T0 = 1_700_000_000_000
CONFIG = LogConfig(segment_bytes=1500, index_interval_bytes=150, segment_index_bytes=4096)
PARTITIONS = (("t", 0), ("t", 1), ("u", 0))
# meta.properties is left out: a directory whose identity file is damaged refuses to start, as
# Kafka's does (tests/storage/test_storage_log_directory.py); .lock carries no data.
UNDAMAGED = {"meta.properties", ".lock"}


def clock() -> int:
    return T0 + 60_000


def open_directory(path: str) -> LogDirectory:
    return LogDirectory.open(path, node_id=1, cluster_id="damage-cluster", default_config=CONFIG,
                             topic_configs={"t": CONFIG, "u": CONFIG}, clock=clock)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A cleanly closed directory: three partitions over several segments, idempotent batches
    (producer snapshots), an empty-after-roll active segment here and there."""
    path = str(tmp_path_factory.mktemp("pristine") / "data")
    directory = open_directory(path)
    for topic, index in PARTITIONS:
        log = directory.create_log(topic, index, topic_id=uuid.UUID(int=len(topic) * 100 + index + 1))
        sequence = 0
        for i in range(25 if topic == "t" else 8):
            values = [b"%s-%d-%d-%d" % (topic.encode(), index, i, j) * (1 + (i * 7 + j) % 9) for j in range(1 + i % 4)]
            idempotent = i % 2 == 1
            log.append(make_batch(values, timestamps=[T0 + 10 * i + j for j in range(len(values))],
                                  producer_id=1000 + index if idempotent else -1, producer_epoch=0 if idempotent else -1,
                                  base_sequence=sequence if idempotent else -1))
            sequence += len(values) if idempotent else 0
        log.update_high_watermark(log.log_end_offset)
    directory.close()
    assert all(len([n for n in os.listdir(f"{path}/{t}-{i}") if n.endswith(".log")]) > 2 for t, i in PARTITIONS[:2])
    return path


def files_of(root: str) -> list[str]:
    found = []
    for parent, _, names in os.walk(root):
        for name in names:
            relative = os.path.relpath(os.path.join(parent, name), root)
            if name not in UNDAMAGED:
                found.append(relative)
    return sorted(found)


def batches_of(log_path: str) -> list[tuple[int, int, bytes]]:
    """(position, base offset, bytes) of every batch of a .log file."""
    data = open(log_path, "rb").read()
    position, found = 0, []
    while position < len(data):
        header = read_batch_header(data, position)
        found.append((position, header.base_offset, data[position:position + header.size_in_bytes]))
        position += header.size_in_bytes
    return found


def read_everything(log) -> list[tuple[int, bytes]]:
    """(base offset, bytes) of every batch the log serves from its start to its end; a read
    that meets a damaged batch goes on at the next segment (as a consumer cannot, but the test
    wants to see what is still there)."""
    served = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        try:
            result = log.read(offset, 1 << 20, max_offset=log.log_end_offset)
        except ProtocolError:
            resume = log.next_segment_base_offset(offset)
            if resume is None:
                break
            offset = resume
            continue
        data = result.read_bytes()
        if not data:
            resume = log.next_segment_base_offset(offset)
            if resume is None:
                break
            offset = resume
            continue
        position = 0
        while position + 61 <= len(data):
            try:
                header = read_batch_header(data, position)
            except ProtocolError:
                break
            if position + header.size_in_bytes > len(data):
                break
            served.append((header.base_offset, data[position:position + header.size_in_bytes]))
            offset = max(offset, header.last_offset + 1)
            position += header.size_in_bytes
        if position == 0:
            resume = log.next_segment_base_offset(offset)
            if resume is None:
                break
            offset = resume
    return served


def batch_at(log, offset: int) -> tuple[int, bytes]:
    """(base offset, bytes) of the batch a read at ``offset`` returns first."""
    data = log.read(offset, 1, max_offset=log.log_end_offset).read_bytes()
    header = read_batch_header(data, 0)
    assert header.base_offset == offset and header.size_in_bytes == len(data)
    return offset, data


damage_strategy = st.fixed_dictionaries({
    "file_choice": st.integers(0, 10_000),
    "position_fraction": st.floats(0, 1),
    "kind": st.sampled_from(["truncate", "overwrite", "zero"]),
    "data": st.binary(min_size=1, max_size=120),
    "clean": st.booleans(),
})


def damage_directory(root: str, damage: dict) -> tuple[str, int]:
    """Apply ``damage`` to one file of ``root``; returns (its path relative to root, the
    damaged position)."""
    candidates = files_of(root)
    relative = candidates[damage["file_choice"] % len(candidates)]
    path = os.path.join(root, relative)
    size = os.path.getsize(path)
    position = min(size, int(size * damage["position_fraction"]))
    with open(path, "r+b") as handle:
        if damage["kind"] == "truncate":
            handle.truncate(position)
        else:
            data = damage["data"] if damage["kind"] == "overwrite" else bytes(len(damage["data"]))
            handle.seek(position)
            handle.write(data)
    if not damage["clean"] and os.path.exists(os.path.join(root, CLEAN_SHUTDOWN_FILE)):
        os.unlink(os.path.join(root, CLEAN_SHUTDOWN_FILE))
    return relative, position


def required_batches(pristine: str, damaged: str, position: int, log_start_offsets: dict) -> dict:
    """Per partition, the (base offset, bytes) of every batch that must still be served: all of
    them, except those of the damaged .log at or after the damaged position, and those wholly
    below a log start offset the damage itself set (a log-start checkpoint that still parses
    is trusted, as Kafka trusts it)."""
    required = {}
    for topic, index in PARTITIONS:
        partition_dir = f"{topic}-{index}"
        batches = []
        for name in sorted(os.listdir(os.path.join(pristine, partition_dir))):
            if not name.endswith(".log"):
                continue
            relative = os.path.join(partition_dir, name)
            for batch_position, base_offset, data in batches_of(os.path.join(pristine, relative)):
                if relative == damaged and batch_position + len(data) > position:
                    continue
                last_offset = read_batch_header(data, 0).last_offset
                if last_offset < log_start_offsets.get((topic, index), 0):
                    continue
                batches.append((base_offset, data))
        required[(topic, index)] = batches
    return required


def check_served(directory: LogDirectory, required: dict, pristine_batches: dict, damaged: str) -> None:
    """Every required batch is served, and the intact batches served come once each, in
    offset order. A damaged batch of a segment the log trusts (below the recovery point) may
    be served as it is, as Kafka serves it (consumers detect it by its CRC): only when the
    damage was in a .log file."""
    for key, batches in required.items():
        log = directory.get_log(*key)
        served = read_everything(log)
        intact = [(base, data) for base, data in served if (base, data) in pristine_batches[key]]
        if len(intact) != len(served):
            assert damaged.endswith(".log"), f"{key}: a batch served that was never written"
        base_offsets = [base for base, _ in intact]
        assert base_offsets == sorted(set(base_offsets)), f"{key}: a batch served twice or out of order"
        served_set = set(intact)
        missing = [base for base, data in batches if (base, data) not in served_set]
        assert not missing, f"{key}: intact batches at {missing} are not served"


@given(damage=damage_strategy)
def test_random_damage_keeps_every_batch_before_it(pristine, damage):
    root = tempfile.mkdtemp(prefix="odradek-damage-")
    try:
        data_dir = os.path.join(root, "data")
        shutil.copytree(pristine, data_dir)
        damaged, position = damage_directory(data_dir, damage)
        log_starts = {}
        if damaged == LOG_START_OFFSET_CHECKPOINT:
            try:
                log_starts = read_offset_checkpoint(OsFileSystem(), os.path.join(data_dir, damaged))
            except (CorruptCheckpoint, OSError):
                log_starts = {}
        required = required_batches(pristine, damaged, position, log_starts)
        every_batch = {key: set(batches) for key, batches in required_batches(pristine, "", 0, {}).items()}

        directory = open_directory(data_dir)
        try:
            check_served(directory, required, every_batch, damaged)
            appended = {}
            for key in PARTITIONS:
                log = directory.get_log(*key)
                result = log.append(make_batch([b"after-damage"], timestamps=[T0 + 50_000]))
                log.update_high_watermark(log.log_end_offset)
                written = batch_at(log, result.first_offset)
                appended[key] = written
                every_batch[key].add(written)
        finally:
            directory.close()
        # The recovered directory is sound: a clean restart serves the same, and the appends.
        directory = open_directory(data_dir)
        try:
            check_served(directory, required, every_batch, damaged)
            for key, written in appended.items():
                assert batch_at(directory.get_log(*key), written[0]) == written
        finally:
            directory.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("damage", [b"", b"0\n2\n3 0\n", b"\x00" * 16, b"garbage\xff"])
def test_a_damaged_leader_epoch_checkpoint_is_rebuilt_from_the_batches(tmp_path, damage):
    path = str(tmp_path / "data")
    directory = open_directory(path)
    log = directory.create_log("t", 0)
    for epoch in (2, 2, 5, 7):
        log.append(make_batch([b"epoch %d" % epoch]), leader_epoch=epoch)
    written = list(log.leader_epochs.entries)
    assert written == [(2, 0), (5, 2), (7, 3)]
    directory.close()
    with open(os.path.join(path, "t-0", "leader-epoch-checkpoint"), "wb") as handle:
        handle.write(damage)
    directory = open_directory(path)
    try:
        assert directory.get_log("t", 0).leader_epochs.entries == written
    finally:
        directory.close()
