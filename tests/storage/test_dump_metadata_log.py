"""Kafka's own tools and odradek agree on the KRaft metadata log's files (storage/metadata_snapshots.py,
protocol/metadata.py), in both directions:

* ``kafka-storage format`` (Kafka's StorageTool) writes the bootstrap snapshot of a new node,
  with static voters (kraft.version 0) and ``--standalone`` (kraft.version 1, a voter set):
  odradek reads every record of it, and each equals what Kafka's DumpLogSegments prints for the
  same file;
* odradek writes a snapshot and a metadata log segment holding every metadata record type and
  raft's control records: DumpLogSegments (``--cluster-metadata-decoder``) finds every batch
  valid and prints each record as odradek wrote it.

The comparison goes through the JSON DumpLogSegments prints (Kafka's generated JSON converters):
each field Kafka prints must equal the field odradek decoded or wrote.

Java and Maven are required (the session fixture raises without them).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path

import pytest

from odradek.protocol.messages._runtime import Message, Struct
from odradek.protocol.messages.records import METADATA_RECORD_TYPES
from odradek.protocol.messages.records.config_record import ConfigRecord
from odradek.protocol.messages.records.feature_level_record import FeatureLevelRecord
from odradek.protocol.messages.records.leader_change_message import LeaderChangeMessage
from odradek.protocol.messages.records.leader_change_message import Voter as LeaderChangeVoter
from odradek.protocol.messages.records.partition_change_record import PartitionChangeRecord
from odradek.protocol.messages.records.partition_record import PartitionRecord
from odradek.protocol.messages.records.register_broker_record import (
    BrokerEndpoint,
    BrokerFeature,
    RegisterBrokerRecord,
)
from odradek.protocol.messages.records.remove_topic_record import RemoveTopicRecord
from odradek.protocol.messages.records.topic_record import TopicRecord
from odradek.protocol.messages.records.voters_record import Endpoint, KRaftVersionFeature, Voter, VotersRecord
from odradek.protocol.metadata import (
    CONTROL_RECORDS,
    MetadataRecord,
    build_control_batch,
    build_data_batch,
    encode_metadata_record,
    iter_entries,
    record_class,
)
from odradek.storage.checkpoints import read_meta_properties, uuid_from_kafka, uuid_to_kafka
from odradek.storage.fs import OsFileSystem
from odradek.storage.metadata_snapshots import SnapshotId, read_snapshot, snapshot_files, write_snapshot

CLUSTER_ID = "y2lLYd6mQ7-hbfFX-EGEOQ"
DIRECTORY_ID = uuid.UUID("2b5823a4-052c-47a5-9b4c-138fc1f44881")
_CONTROL_NAMES = {name: control_type for control_type, (_, name) in CONTROL_RECORDS.items()}


def kafka_json(value):
    """``value`` (a decoded message, or a field of one) as Kafka's JSON converters print it."""
    if isinstance(value, uuid.UUID):
        return uuid_to_kafka(value)
    if isinstance(value, (Message, Struct)):
        return {_camel(name): kafka_json(getattr(value, name)) for name in value.__slots__
                if name != "unknown_tagged_fields"}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, list):
        return [kafka_json(item) for item in value]
    return value


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def type_name(record_class) -> str:
    """Kafka's ``MetadataRecordType`` name of a record class, as DumpLogSegments prints it:
    TopicRecord -> TOPIC_RECORD (checked against the tool's output for every type below)."""
    name = record_class.__name__
    return "".join("_" + letter if letter.isupper() and not previous.isupper() else letter
                   for previous, letter in zip(" " + name, name)).lstrip("_").upper()


def assert_printed_as(printed: dict, message) -> None:
    """Every field Kafka printed equals odradek's, in nested structs too (Kafka prints only the
    fields of the version read, and leaves out tagged fields at their default)."""
    _assert_same(printed, kafka_json(message), type(message).__name__)


def _assert_same(printed, ours, where: str) -> None:
    if isinstance(printed, dict):
        assert isinstance(ours, dict), f"{where}: Kafka {printed!r}, odradek {ours!r}"
        for name, value in printed.items():
            assert name in ours, f"{where}: Kafka printed {name}, which odradek does not have"
            _assert_same(value, ours[name], f"{where}.{name}")
    elif isinstance(printed, list):
        assert isinstance(ours, list) and len(ours) == len(printed), f"{where}: Kafka {printed!r}, odradek {ours!r}"
        for index, (theirs, mine) in enumerate(zip(printed, ours)):
            _assert_same(theirs, mine, f"{where}[{index}]")
    else:
        assert printed == ours, f"{where}: Kafka {printed!r}, odradek {ours!r}"


def dumped_records(kafka_jars, path: Path) -> tuple[str, dict[int, tuple[str, dict]]]:
    """DumpLogSegments' output for ``path`` and its records: offset -> (type, printed JSON)."""
    result = kafka_jars.run_java(kafka_jars.DUMP_LOG_SEGMENTS, ["--cluster-metadata-decoder", "--files", str(path)],
                                 timeout=120)
    output = result.stdout
    assert "Exception" not in output + result.stderr, output + result.stderr
    assert "isvalid: true" in output and "isvalid: false" not in output, output
    records = {}
    for line in output.splitlines():
        found = re.match(r"\| offset: (\d+) .*? (?:payload: (\{.*\})|(\w+):? (\{.*\}))$", line)
        if not found:
            continue
        offset = int(found.group(1))
        if found.group(2):
            payload = json.loads(found.group(2))
            records[offset] = (payload["type"], {"version": payload["version"], **payload["data"]})
        else:
            records[offset] = (found.group(3), json.loads(found.group(4)))
    return output, records


def assert_same_entries(records: dict, entries) -> None:
    assert sorted(records) == [entry.offset for entry in entries]
    for entry in entries:
        kind, printed = records[entry.offset]
        if entry.control_type is None:
            assert kind == type_name(type(entry.message)), (entry.offset, kind)
            assert printed.pop("version") == entry.version
        else:
            assert _CONTROL_NAMES[kind] == entry.control_type, (entry.offset, kind)
        assert_printed_as(printed, entry.message)


def format_properties(work: Path, standalone: bool) -> Path:
    quorum = "controller.quorum.bootstrap.servers=127.0.0.1:19093" if standalone \
        else "controller.quorum.voters=1@127.0.0.1:19093"
    properties = work / "server.properties"
    properties.write_text("\n".join([
        "process.roles=broker,controller", "node.id=1", quorum,
        "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093",
        "controller.listener.names=CONTROLLER", "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={work / 'data'}", f"metadata.log.dir={work / 'metadata'}", ""]))
    return properties


@pytest.mark.parametrize("standalone", [False, True], ids=["static-voters", "standalone"])
def test_odradek_reads_the_bootstrap_snapshot_kafka_storage_format_writes(kafka_jars, tmp_path, standalone):
    properties = format_properties(tmp_path, standalone)
    kafka_jars.run_java(kafka_jars.STORAGE_TOOL, ["format", "-t", CLUSTER_ID, "-c", str(properties)]
                        + (["--standalone"] if standalone else []), timeout=120)
    fs = OsFileSystem()
    directory = tmp_path / "metadata" / "__cluster_metadata-0"
    found = snapshot_files(fs, str(directory))
    assert [(item.snapshot_id, item.state) for item in found] == [(SnapshotId(0, 0), "complete")]
    snapshot = read_snapshot(fs, str(directory), SnapshotId(0, 0))
    levels = {record.message.name: record.message.feature_level for record in snapshot.records}
    assert levels["metadata.version"] > 0
    if standalone:
        meta = read_meta_properties(fs, str(tmp_path / "metadata" / "meta.properties"))
        assert snapshot.kraft_version == 1
        [voter] = snapshot.voters.voters
        assert (voter.voter_id, voter.voter_directory_id) == (1, uuid_from_kafka(meta["directory.id"]))
        assert [(endpoint.name, endpoint.host, endpoint.port) for endpoint in voter.endpoints] == [
            ("CONTROLLER", "127.0.0.1", 19093)]
    else:
        assert (snapshot.kraft_version, snapshot.voters) == (None, None)
    _, records = dumped_records(kafka_jars, directory / found[0].name)
    assert_same_entries(records, list(iter_entries((directory / found[0].name).read_bytes())))


def every_record() -> list[MetadataRecord]:
    """Realistic records of the kinds a one-node cluster writes, then every metadata record type
    at its newest version with its schema's defaults."""
    topic_id = uuid.UUID("0f0e0d0c-0b0a-0908-0706-050403020100")
    records = [
        MetadataRecord(FeatureLevelRecord(name="metadata.version", feature_level=33), 0),
        MetadataRecord(RegisterBrokerRecord(
            broker_id=1, is_migrating_zk_broker=False, incarnation_id=uuid.UUID(int=7), broker_epoch=12,
            end_points=[BrokerEndpoint(name="PLAINTEXT", host="localhost", port=9092, security_protocol=0)],
            features=[BrokerFeature(name="metadata.version", min_supported_version=7, max_supported_version=33)],
            rack=None, fenced=False, in_controlled_shutdown=False, log_dirs=[DIRECTORY_ID]), 3),
        MetadataRecord(TopicRecord(name="orders", topic_id=topic_id), 0),
        MetadataRecord(PartitionRecord(partition_id=0, topic_id=topic_id, replicas=[1], isr=[1], leader=1,
                                       leader_epoch=0, partition_epoch=0, directories=[DIRECTORY_ID]), 2),
        MetadataRecord(ConfigRecord(resource_type=2, resource_name="orders", name="cleanup.policy",
                                    value="compact"), 0),
        MetadataRecord(ConfigRecord(resource_type=2, resource_name="orders", name="retention.ms", value=None), 0),
        MetadataRecord(PartitionChangeRecord(partition_id=0, topic_id=topic_id, leader=1, isr=[1]), 2),
        MetadataRecord(RemoveTopicRecord(topic_id=topic_id), 0),
    ]
    for record_type in sorted(METADATA_RECORD_TYPES):
        cls = record_class(record_type)
        records.append(MetadataRecord(cls(), cls.MAX_VERSION))
    return records


def test_kafka_reads_the_snapshot_and_the_log_odradek_writes(kafka_jars, tmp_path):
    fs = OsFileSystem()
    directory = tmp_path / "__cluster_metadata-0"
    directory.mkdir()
    records = every_record()
    voters = VotersRecord(version=0, voters=[Voter(
        voter_id=1, voter_directory_id=DIRECTORY_ID,
        endpoints=[Endpoint(name="CONTROLLER", host="127.0.0.1", port=9093)],
        k_raft_version_feature=KRaftVersionFeature(min_supported_version=0, max_supported_version=1))])
    path = write_snapshot(fs, str(directory), SnapshotId(len(records) + 1, 3), records,
                          last_contained_timestamp=1_700_000_000_000, now_ms=1_700_000_000_500,
                          kraft_version=1, voters=voters)
    output, printed = dumped_records(kafka_jars, Path(path))
    assert f"Snapshot end offset: {len(records) + 1}, epoch: 3" in output
    assert_same_entries(printed, list(iter_entries(Path(path).read_bytes())))
    assert len(printed) == len(records) + 4  # header, kraft version, voters, footer

    # The log: an epoch's LeaderChange, then the records in batches of three, as a leader
    # appends them.
    leader_change = LeaderChangeMessage(version=0, leader_id=1, voters=[LeaderChangeVoter(voter_id=1)],
                                        granting_voters=[LeaderChangeVoter(voter_id=1)])
    batches = [build_control_batch([leader_change], base_offset=0, epoch=3, timestamp=1_700_000_000_000)]
    for first in range(0, len(records), 3):
        batches.append(build_data_batch([encode_metadata_record(record) for record in records[first:first + 3]],
                                        base_offset=1 + first, epoch=3, timestamp=1_700_000_000_100 + first))
    segment = directory / "00000000000000000000.log"
    segment.write_bytes(b"".join(batches))
    output, printed = dumped_records(kafka_jars, segment)
    assert output.count("partitionLeaderEpoch: 3") == len(batches)
    entries = list(iter_entries(segment.read_bytes()))
    assert len(entries) == len(records) + 1
    assert_same_entries(printed, entries)
