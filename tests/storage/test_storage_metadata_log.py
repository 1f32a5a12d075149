"""The one-voter KRaft metadata log (storage/metadata_log.py): the election at every open, appends
that are durable when they return, replay through snapshots, multi-batch changes as metadata
transactions, power losses and damage."""

import os
import random
import uuid

import pytest

from odradek.protocol.messages.records.config_record import ConfigRecord
from odradek.protocol.messages.records.leader_change_message import LeaderChangeMessage
from odradek.protocol.messages.records.topic_record import TopicRecord
from odradek.protocol.metadata import MetadataRecord, build_data_batch, iter_entries
from odradek.protocol.records.batch import CONTROL_LEADER_CHANGE
from odradek.storage.checkpoints import QUORUM_STATE_FILE, read_quorum_state
from odradek.storage.errors import KafkaStorageError
from odradek.storage.fs import MemoryFileSystem
from odradek.storage.metadata_log import METADATA_PARTITION_DIR, DamagedMetadataLog, MetadataLog
from odradek.storage.metadata_snapshots import read_snapshot, snapshot_files
import odradek.storage.metadata_log as metadata_log_module

DATA = "/data"
LOG_DIR = f"{DATA}/{METADATA_PARTITION_DIR}"
DIRECTORY_ID = uuid.UUID("2b5823a4-052c-47a5-9b4c-138fc1f44881")


class Clock:
    def __init__(self):
        self.now = 1_700_000_000_000

    def __call__(self):
        self.now += 1
        return self.now


def fresh_fs() -> MemoryFileSystem:
    fs = MemoryFileSystem(names_need_dir_fsync=True)
    fs.makedirs(DATA)
    fs.fsync_dir("/")
    fs.fsync_dir(DATA)
    return fs


def open_log(fs, clock=None) -> MetadataLog:
    return MetadataLog.open(fs, DATA, node_id=1, directory_id=DIRECTORY_ID, clock=clock or Clock())


def topic(name: str) -> MetadataRecord:
    return MetadataRecord(TopicRecord(name=name, topic_id=uuid.uuid5(uuid.NAMESPACE_DNS, name)), 0)


def names(metadata_log: MetadataLog) -> list[str]:
    return [record.message.name for record in metadata_log.replay()]


def log_entries(fs) -> list:
    data = b"".join(fs.read_file(f"{LOG_DIR}/{name}") for name in sorted(fs.listdir(LOG_DIR)) if name.endswith(".log"))
    return list(iter_entries(data))


def test_every_open_is_a_new_epoch_led_by_this_node():
    fs = fresh_fs()
    for epoch in (1, 2, 3):
        metadata_log = open_log(fs)
        assert metadata_log.epoch == epoch
        state = read_quorum_state(fs, f"{LOG_DIR}/{QUORUM_STATE_FILE}")
        assert (state.leader_id, state.leader_epoch, state.voted_id, state.voted_directory_id) == (
            1, epoch, 1, DIRECTORY_ID)
        metadata_log.append([topic(f"t{epoch}")])
        metadata_log.close()
    entries = log_entries(fs)
    changes = [entry for entry in entries if entry.control_type == CONTROL_LEADER_CHANGE]
    assert [(entry.epoch, entry.message.leader_id, [voter.voter_id for voter in entry.message.voters],
             [voter.voter_id for voter in entry.message.granting_voters]) for entry in changes] == [
        (epoch, 1, [1], [1]) for epoch in (1, 2, 3)]
    assert all(isinstance(entry.message, LeaderChangeMessage) for entry in changes)
    assert [entry.epoch for entry in entries if entry.control_type is None] == [1, 2, 3]
    assert names(open_log(fs)) == ["t1", "t2", "t3"]


def test_the_epoch_goes_past_every_epoch_it_knows():
    fs = fresh_fs()
    open_log(fs).close()
    # A quorum-state that does not read: the log's own epochs still count.
    fs.write_file(f"{LOG_DIR}/{QUORUM_STATE_FILE}", b"{not json")
    assert open_log(fs).epoch == 2
    # A quorum-state ahead of the log (it is written before the LeaderChange) counts too.
    fs.write_file(f"{LOG_DIR}/{QUORUM_STATE_FILE}",
                  b'{"leaderId":1,"leaderEpoch":9,"votedId":1,"votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA","data_version":1}')
    assert open_log(fs).epoch == 10


def test_an_acknowledged_change_survives_any_power_loss():
    for seed in range(40):
        rng = random.Random(seed)
        fs = fresh_fs()
        metadata_log = open_log(fs)
        acknowledged = []
        for index in range(rng.randint(1, 6)):
            metadata_log.append([topic(f"s{seed}-{index}")])
            acknowledged.append(f"s{seed}-{index}")
        # Unacknowledged: written, not flushed (the append's fsync did not run).
        metadata_log.log.append(build_data_batch([b"\x01\x02\x00\x02x" + bytes(17)], base_offset=metadata_log.end_offset,
                                                 epoch=metadata_log.epoch, timestamp=1),
                                leader_epoch=metadata_log.epoch, origin="coordinator")
        copy = fs.power_loss_copy(rng)
        recovered = names(open_log(copy))
        assert recovered[:len(acknowledged)] == acknowledged, seed
        assert recovered in (acknowledged, acknowledged + ["x"]), seed


def test_a_change_of_many_batches_is_a_transaction_and_a_torn_one_is_dropped(monkeypatch):
    monkeypatch.setattr(metadata_log_module, "MAX_BATCH_BYTES", 4096)
    fs = fresh_fs()
    metadata_log = open_log(fs)
    metadata_log.append([topic("before")])
    big = [topic(f"big-{index:04d}") for index in range(400)]
    metadata_log.append(big)
    kinds = [type(entry.message).__name__ for entry in log_entries(fs) if entry.control_type is None]
    assert kinds[1] == "BeginTransactionRecord" and kinds[-1] == "EndTransactionRecord"
    assert names(metadata_log) == ["before"] + [f"big-{index:04d}" for index in range(400)]
    metadata_log.close()
    # Cut the log inside the transaction (the power went out between two of its batches):
    # the replay has none of it.
    path = f"{LOG_DIR}/00000000000000000000.log"
    data = fs.read_file(path)
    handle = fs.open(path)
    handle.truncate(len(data) - 3000)
    handle.fsync()
    assert names(open_log(fs)) == ["before"]


def snapshotted(fs, topics: int):
    """A log of ``topics`` topics, one change each, and a snapshot at its end."""
    metadata_log = open_log(fs)
    for index in range(topics):
        metadata_log.append([topic(f"t{index}")])
    return metadata_log, metadata_log.write_snapshot(list(metadata_log.replay()))


def test_a_snapshot_replaces_the_log_below_it():
    fs = fresh_fs()
    metadata_log, snapshot_id = snapshotted(fs, 5)
    assert snapshot_id == (metadata_log.end_offset, 1)
    metadata_log.append([topic("after")])
    metadata_log.close()
    assert [found.snapshot_id for found in snapshot_files(fs, LOG_DIR)] == [snapshot_id]
    assert min(name for name in fs.listdir(LOG_DIR) if name.endswith(".log")) == f"{snapshot_id.end_offset:020d}.log"
    reopened = open_log(fs)
    assert reopened.log.log_start_offset == snapshot_id.end_offset
    assert names(reopened) == [f"t{index}" for index in range(5)] + ["after"]
    # A newer snapshot removes the older one.
    newer = reopened.write_snapshot(list(reopened.replay()))
    assert [found.snapshot_id for found in snapshot_files(fs, LOG_DIR)] == [newer]


def test_snapshots_follow_the_bytes_appended(monkeypatch):
    monkeypatch.setattr(metadata_log_module, "SNAPSHOT_AFTER_BYTES", 2000)
    metadata_log = open_log(fresh_fs())
    assert not metadata_log.snapshot_due
    for index in range(40):
        metadata_log.append([topic(f"t{index}")])
    assert metadata_log.snapshot_due
    metadata_log.write_snapshot(list(metadata_log.replay()))
    assert not metadata_log.snapshot_due


def test_leftovers_of_snapshot_writes_are_removed_and_a_damaged_snapshot_is_reported():
    fs = fresh_fs()
    metadata_log = open_log(fs)
    metadata_log.append([topic("t")])
    snapshot_id = metadata_log.write_snapshot(list(metadata_log.replay()))
    metadata_log.close()
    fs.write_file(f"{LOG_DIR}/{snapshot_id.end_offset + 5:020d}-0000000001-77.checkpoint.part", b"half")
    reopened = open_log(fs)
    assert [found.state for found in snapshot_files(fs, LOG_DIR)] == ["complete"]
    reopened.close()
    name = f"{snapshot_id.end_offset:020d}-{snapshot_id.epoch:010d}.checkpoint"
    fs.write_file(f"{LOG_DIR}/{name}", fs.read_file(f"{LOG_DIR}/{name}")[:-10])
    with pytest.raises(DamagedMetadataLog, match="snapshot"):
        list(open_log(fs).replay())


def test_a_record_that_does_not_decode_in_a_sound_batch_is_damage():
    fs = fresh_fs()
    metadata_log = open_log(fs)
    metadata_log.append([topic("t")])
    # A CRC-valid batch whose record is of a type this version does not know.
    metadata_log._append([build_data_batch([bytes([1, 99, 0])], base_offset=metadata_log.end_offset,
                                           epoch=metadata_log.epoch, timestamp=1)])
    with pytest.raises(DamagedMetadataLog, match="unknown metadata record type 99"):
        list(metadata_log.replay())


def test_a_failed_append_is_cut_from_the_log():
    fs = fresh_fs()
    metadata_log = open_log(fs)
    metadata_log.append([topic("kept")])
    end = metadata_log.end_offset
    original_flush = metadata_log.log.flush

    def failing_flush():
        raise KafkaStorageError("the disk failed")
    metadata_log.log.flush = failing_flush
    with pytest.raises(KafkaStorageError):
        metadata_log.append([topic("refused")])
    assert metadata_log.end_offset == end
    metadata_log.log.flush = original_flush
    metadata_log.append([MetadataRecord(ConfigRecord(resource_type=2, resource_name="kept", name="retention.ms",
                                                     value="1"), 0)])
    assert [type(record.message).__name__ for record in metadata_log.replay()] == ["TopicRecord", "ConfigRecord"]
    assert os.path.basename(metadata_log.directory) == METADATA_PARTITION_DIR


def test_a_log_that_ends_before_the_latest_snapshot_starts_again_at_its_end():
    fs = fresh_fs()
    metadata_log, snapshot_id = snapshotted(fs, 3)
    metadata_log.close()
    for name in fs.listdir(LOG_DIR):  # the log's segments lost, the snapshot kept
        if name.endswith((".log", ".index", ".timeindex")):
            fs.unlink(f"{LOG_DIR}/{name}")
    reopened = open_log(fs)
    assert reopened.log.log_start_offset == snapshot_id.end_offset
    assert reopened.epoch == snapshot_id.epoch + 1
    assert names(reopened) == ["t0", "t1", "t2"]
    reopened.append([topic("after")])
    reopened.close()
    assert names(open_log(fs)) == ["t0", "t1", "t2", "after"]


def test_a_snapshot_header_carries_the_time_of_the_last_record_it_contains():
    fs = fresh_fs()
    clock = Clock()
    metadata_log = open_log(fs, clock)
    metadata_log.append([topic("t")])
    appended_at = log_entries(fs)[-1].timestamp
    clock.now += 60_000
    snapshot_id = metadata_log.write_snapshot(list(metadata_log.replay()))
    assert read_snapshot(fs, LOG_DIR, snapshot_id).last_contained_timestamp == appended_at
