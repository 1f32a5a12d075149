"""KRaft snapshot files (storage/metadata_snapshots.py) and the ``quorum-state`` file
(storage/checkpoints.py): names, round trips, damage and power loss. That Kafka's tools read
them, and that these read Kafka's, is tests/storage/test_dump_metadata_log.py."""

import json
import random
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odradek.protocol.messages.records.config_record import ConfigRecord
from odradek.protocol.messages.records.feature_level_record import FeatureLevelRecord
from odradek.protocol.messages.records.partition_record import PartitionRecord
from odradek.protocol.messages.records.topic_record import TopicRecord
from odradek.protocol.messages.records.voters_record import Endpoint, KRaftVersionFeature, Voter, VotersRecord
from odradek.protocol.metadata import MetadataRecord
from odradek.storage.checkpoints import (
    QUORUM_STATE_FILE,
    CorruptCheckpoint,
    QuorumState,
    read_quorum_state,
    write_quorum_state,
)
from odradek.storage.fs import MemoryFileSystem, OsFileSystem
from odradek.storage.metadata_snapshots import (
    DamagedSnapshot,
    SnapshotFile,
    SnapshotId,
    decode_snapshot,
    encode_snapshot,
    parse_snapshot_file_name,
    read_snapshot,
    snapshot_file_name,
    snapshot_files,
    write_snapshot,
)

DIRECTORY = "/data/__cluster_metadata-0"
TOPIC_ID = uuid.UUID("0f0e0d0c-0b0a-0908-0706-050403020100")
DIRECTORY_ID = uuid.UUID("2b5823a4-052c-47a5-9b4c-138fc1f44881")


def some_records(topics: int = 3) -> list[MetadataRecord]:
    records = [MetadataRecord(FeatureLevelRecord(name="metadata.version", feature_level=33), 0)]
    for index in range(topics):
        topic_id = uuid.UUID(int=TOPIC_ID.int + index)
        records.append(MetadataRecord(TopicRecord(name=f"topic-{index}", topic_id=topic_id), 0))
        records.append(MetadataRecord(PartitionRecord(partition_id=0, topic_id=topic_id, replicas=[1], isr=[1],
                                                      leader=1, leader_epoch=0, partition_epoch=0,
                                                      directories=[DIRECTORY_ID]), 2))
        records.append(MetadataRecord(ConfigRecord(resource_type=2, resource_name=f"topic-{index}",
                                                   name="cleanup.policy", value="compact"), 0))
    return records


def voters() -> VotersRecord:
    return VotersRecord(version=0, voters=[Voter(
        voter_id=1, voter_directory_id=DIRECTORY_ID, endpoints=[Endpoint(name="CONTROLLER", host="127.0.0.1", port=9093)],
        k_raft_version_feature=KRaftVersionFeature(min_supported_version=0, max_supported_version=1))])


def test_file_names_are_kafkas():
    assert snapshot_file_name(SnapshotId(0, 0)) == "00000000000000000000-0000000000.checkpoint"
    assert snapshot_file_name(SnapshotId(12345, 7)) == "00000000000000012345-0000000007.checkpoint"
    assert parse_snapshot_file_name("00000000000000012345-0000000007.checkpoint") == SnapshotFile(
        SnapshotId(12345, 7), "complete", "00000000000000012345-0000000007.checkpoint")
    # Kafka's writer names its temporary file <id>-<random>.checkpoint.part
    assert parse_snapshot_file_name("00000000000000012345-0000000007-4242.checkpoint.part").state == "partial"
    assert parse_snapshot_file_name("00000000000000012345-0000000007.checkpoint.deleted").state == "deleted"
    for other in ("00000000000000000000.log", "leader-epoch-checkpoint", "quorum-state",
                  "0000000000000001234-0000000007.checkpoint", "00000000000000012345-000000007x.checkpoint",
                  "00000000000000012345-0000000007-x.checkpoint"):
        assert parse_snapshot_file_name(other) is None, other
    with pytest.raises(ValueError):
        snapshot_file_name(SnapshotId(-1, 0))


@pytest.mark.parametrize("fs_kind", ["memory", "os"])
def test_a_snapshot_reads_back_whole(fs_kind, tmp_path):
    fs = MemoryFileSystem() if fs_kind == "memory" else OsFileSystem()
    directory = DIRECTORY if fs_kind == "memory" else str(tmp_path / "__cluster_metadata-0")
    fs.makedirs(directory)
    records = some_records()
    path = write_snapshot(fs, directory, SnapshotId(40, 3), records, last_contained_timestamp=1234,
                          now_ms=5678, kraft_version=1, voters=voters())
    assert path.endswith("00000000000000000040-0000000003.checkpoint")
    assert [found.state for found in snapshot_files(fs, directory)] == ["complete"]
    snapshot = read_snapshot(fs, directory, SnapshotId(40, 3))
    assert snapshot.snapshot_id == SnapshotId(40, 3)
    assert snapshot.last_contained_timestamp == 1234
    assert snapshot.kraft_version == 1
    assert snapshot.voters == voters()
    assert snapshot.records == records


def test_kraft_version_zero_has_no_voter_records():
    data = encode_snapshot(some_records(1), epoch=0, last_contained_timestamp=1, now_ms=2)
    snapshot = decode_snapshot(SnapshotId(0, 0), data)
    assert (snapshot.kraft_version, snapshot.voters) == (None, None)
    with pytest.raises(ValueError, match="kraft.version 1"):
        encode_snapshot([], epoch=0, last_contained_timestamp=1, now_ms=2, voters=voters())


def test_records_are_cut_into_batches_of_the_size_given():
    records = some_records(50)
    data = encode_snapshot(records, epoch=2, last_contained_timestamp=1, now_ms=2, max_batch_bytes=512)
    assert decode_snapshot(SnapshotId(0, 2), data).records == records
    batches = 0
    position = 0
    while position < len(data):
        batches += 1
        position += 12 + int.from_bytes(data[position + 8:position + 12], "big")
    assert batches > 10  # header, many data batches, footer


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=0), flip=st.integers(min_value=0), bit=st.integers(0, 7))
def test_a_torn_or_flipped_snapshot_is_damaged_never_misread(cut, flip, bit):
    data = encode_snapshot(some_records(2), epoch=1, last_contained_timestamp=1, now_ms=2)
    torn = data[:cut % len(data)]
    with pytest.raises(DamagedSnapshot):
        decode_snapshot(SnapshotId(0, 1), torn)
    # A flipped bit past the first batch's offset and length fields is under a CRC or breaks
    # the framing; the base offset of a batch is not (Kafka ignores it in a snapshot too).
    position = flip % len(data)
    flipped = bytearray(data)
    flipped[position] ^= 1 << bit
    try:
        snapshot = decode_snapshot(SnapshotId(0, 1), bytes(flipped))
    except DamagedSnapshot:
        return
    assert snapshot.records == some_records(2)


def test_a_snapshot_without_header_or_footer_is_damaged():
    data = encode_snapshot(some_records(1), epoch=1, last_contained_timestamp=1, now_ms=2)
    footer_length = 12 + int.from_bytes(data[-(75 - 8):-(75 - 12)], "big")  # a footer batch is 75 bytes
    assert footer_length == 75
    with pytest.raises(DamagedSnapshot, match="SnapshotFooter"):
        decode_snapshot(SnapshotId(0, 1), data[:-75])
    header_length = 12 + int.from_bytes(data[8:12], "big")
    with pytest.raises(DamagedSnapshot, match="SnapshotHeader"):
        decode_snapshot(SnapshotId(0, 1), data[header_length:])
    with pytest.raises(DamagedSnapshot, match="SnapshotHeader"):
        decode_snapshot(SnapshotId(0, 1), b"")


@pytest.mark.parametrize("seed", range(30))
def test_a_power_loss_while_writing_leaves_the_snapshot_whole_or_absent(seed):
    rng = random.Random(seed)
    fs = MemoryFileSystem(names_need_dir_fsync=True)
    fs.makedirs(DIRECTORY)
    fs.fsync_dir("/")
    fs.fsync_dir("/data")
    records = some_records(rng.randint(0, 5))
    # Stop the write after a random number of file system calls, then lose the power.
    calls = rng.randint(0, 6)
    original = {name: getattr(fs, name) for name in ("write_file", "rename", "fsync_dir")}

    class PowerLoss(Exception):
        pass

    def counted(name):
        def call(*args, **kwargs):
            nonlocal calls
            if calls == 0:
                raise PowerLoss
            calls -= 1
            return original[name](*args, **kwargs)
        return call
    for name in original:
        setattr(fs, name, counted(name))
    try:
        write_snapshot(fs, DIRECTORY, SnapshotId(9, 1), records, last_contained_timestamp=1, now_ms=2)
        finished = True
    except PowerLoss:
        finished = False
    for name, function in original.items():
        setattr(fs, name, function)
    fs.crash(rng)
    complete = [found for found in snapshot_files(fs, DIRECTORY) if found.state == "complete"]
    if finished:
        assert complete, "a snapshot write that returned is durable"
    for found in complete:
        assert read_snapshot(fs, DIRECTORY, found.snapshot_id).records == records


# --- quorum-state ---------------------------------------------------------------------------------

def test_quorum_state_is_written_as_kafka_writes_it(tmp_path):
    fs = OsFileSystem()
    path = str(tmp_path / QUORUM_STATE_FILE)
    write_quorum_state(fs, path, QuorumState(leader_id=1, leader_epoch=2, voted_id=1, voted_directory_id=DIRECTORY_ID))
    assert (tmp_path / QUORUM_STATE_FILE).read_text() == (
        '{"leaderId":1,"leaderEpoch":2,"votedId":1,"votedDirectoryId":"K1gjpAUsR6WbTBOPwfRIgQ","data_version":1}')
    assert read_quorum_state(fs, path) == QuorumState(1, 2, 1, DIRECTORY_ID)
    version_0 = QuorumState(leader_id=1, leader_epoch=2, data_version=0, cluster_id="abc", applied_offset=7,
                            current_voters=[1, 2, 3])
    write_quorum_state(fs, path, version_0)
    assert json.loads((tmp_path / QUORUM_STATE_FILE).read_text()) == {
        "clusterId": "abc", "leaderId": 1, "leaderEpoch": 2, "votedId": -1, "appliedOffset": 7,
        "currentVoters": [{"voterId": 1}, {"voterId": 2}, {"voterId": 3}], "data_version": 0}
    assert read_quorum_state(fs, path) == version_0
    assert read_quorum_state(fs, str(tmp_path / "absent")) is None


def test_kafkas_documented_examples_read(tmp_path):
    # The two examples of FileQuorumStateStore's documentation, as a Kafka node writes them.
    fs = OsFileSystem()
    path = tmp_path / QUORUM_STATE_FILE
    path.write_text('{"clusterId":"","leaderId":1,"leaderEpoch":2,"votedId":-1,"appliedOffset":0,'
                    '"currentVoters":[],"data_version":0}')
    assert read_quorum_state(fs, str(path)) == QuorumState(1, 2, -1, data_version=0, current_voters=[])
    path.write_text('{"leaderId":-1,"leaderEpoch":2,"votedId":1,"votedDirectoryId":"J8aAPcfLQt2bqs1JT_rMgQ",'
                    '"data_version":1}')
    state = read_quorum_state(fs, str(path))
    assert (state.leader_id, state.leader_epoch, state.voted_id) == (-1, 2, 1)
    assert state.voted_directory_id.bytes.hex() == "27c6803dc7cb42dd9baacd494ffacc81"


@pytest.mark.parametrize("content, refusal", [
    (b"", "not JSON"),
    (b"\xff", "not JSON"),
    (b"[]", "not a JSON object"),
    (b'{"leaderId":1,"leaderEpoch":2,"votedId":-1}', "no data_version"),
    (b'{"leaderId":1,"leaderEpoch":2,"votedId":-1,"data_version":2}', "not within"),
    (b'{"leaderId":"1","leaderEpoch":2,"votedId":-1,"votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA","data_version":1}',
     "leaderId"),
    (b'{"leaderId":1,"leaderEpoch":2147483648,"votedId":-1,"votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA",'
     b'"data_version":1}', "leaderEpoch"),
    (b'{"leaderId":1,"leaderEpoch":2,"votedId":-1,"data_version":1}', "votedDirectoryId"),
    (b'{"leaderId":1,"leaderEpoch":2,"votedId":-1,"votedDirectoryId":"short","data_version":1}', "uuid"),
    (b'{"clusterId":"","leaderId":1,"leaderEpoch":2,"votedId":-1,"appliedOffset":0,"data_version":0}',
     "currentVoters"),
    (b'{"clusterId":"","leaderId":1,"leaderEpoch":2,"votedId":-1,"appliedOffset":0,"currentVoters":[{}],'
     b'"data_version":0}', "voterId"),
])
def test_a_damaged_quorum_state_is_refused(tmp_path, content, refusal):
    path = tmp_path / QUORUM_STATE_FILE
    path.write_bytes(content)
    with pytest.raises(CorruptCheckpoint, match=refusal):
        read_quorum_state(OsFileSystem(), str(path))


@settings(max_examples=300)
@given(content=st.binary(max_size=120) | st.from_regex(r'\A\{("[a-zA-Z_]+":(-?[0-9]{1,12}|"[A-Za-z0-9_-]{0,24}"|null|\[\]),?){0,7}\}\Z'))
def test_any_quorum_state_content_reads_or_is_refused(content):
    fs = MemoryFileSystem()
    fs.makedirs(DIRECTORY)
    fs.write_file(f"{DIRECTORY}/{QUORUM_STATE_FILE}", content if isinstance(content, bytes) else content.encode())
    try:
        state = read_quorum_state(fs, f"{DIRECTORY}/{QUORUM_STATE_FILE}")
    except CorruptCheckpoint:
        return
    write_quorum_state(fs, f"{DIRECTORY}/again", state)
    assert read_quorum_state(fs, f"{DIRECTORY}/again") == state
