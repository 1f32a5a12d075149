"""The topic table over the metadata log (broker/topics.py): whatever sequence of changes is saved
(topics, partitions, topic and group configs, producer id blocks), with snapshots taken along the
way and power lost at any point, a reopened table holds what was saved last."""

import random
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import odradek.storage.metadata_log as metadata_log_module
from odradek.broker.topics import DamagedTopicTable, Topic, TopicTable
from odradek.protocol.metadata import build_data_batch
from odradek.storage.fs import MemoryFileSystem
from odradek.storage.partition_log import parse_partition_dir_name

DATA = "/data"
DIRECTORY_ID = uuid.UUID(int=42)


def clock():
    return 1_700_000_000_000


def opened(fs) -> TopicTable:
    table = TopicTable(DATA, fs)
    table.load(directory_id=DIRECTORY_ID, clock=clock)
    return table


def state(table: TopicTable):
    return ({topic.topic_id: (topic.name, topic.partition_count, dict(topic.configs)) for topic in table},
            {group: dict(configs) for group, configs in table.group_configs.items()}, table.next_producer_id_block)


NAMES = [f"topic-{index}" for index in range(5)]
CONFIGS = ["retention.ms", "cleanup.policy", "segment.bytes"]
operations = st.lists(st.one_of(
    st.tuples(st.just("create"), st.sampled_from(NAMES), st.integers(1, 4)),
    st.tuples(st.just("delete"), st.sampled_from(NAMES)),
    st.tuples(st.just("partitions"), st.sampled_from(NAMES), st.integers(1, 3)),
    st.tuples(st.just("config"), st.sampled_from(NAMES), st.sampled_from(CONFIGS), st.none() | st.sampled_from(["1", "2"])),
    st.tuples(st.just("group"), st.sampled_from(["g1", "g2"]), st.none() | st.sampled_from(["45000", "50000"])),
    st.tuples(st.just("producer ids"), st.integers(1, 3)),
    st.tuples(st.just("restart")),
), max_size=40)


def apply(table: TopicTable, operation) -> None:
    kind, *args = operation
    if kind == "create" and args[0] not in table.by_name:
        table.add(Topic(args[0], uuid.uuid4(), args[1]))
    elif kind == "delete" and args[0] in table.by_name:
        table.remove(table.by_name[args[0]])
    elif kind == "partitions" and args[0] in table.by_name:
        table.by_name[args[0]].partition_count += args[1]
        table.save()
    elif kind == "config" and args[0] in table.by_name:
        configs = dict(table.by_name[args[0]].configs)
        if args[2] is None:
            configs.pop(args[1], None)
        else:
            configs[args[1]] = args[2]
        table.by_name[args[0]].configs = configs
        table.save()
    elif kind == "producer ids":
        table.reserve_producer_ids(table.next_producer_id_block + args[0] * 1000)
    elif kind == "group":
        if args[1] is None:
            table.group_configs.pop(args[0], None)
        else:
            table.group_configs[args[0]] = {"consumer.session.timeout.ms": args[1]}
        table.save()


@settings(max_examples=150, deadline=None)
@given(steps=operations, snapshot_bytes=st.sampled_from([300, 2000, 1 << 30]), seed=st.integers(0, 1 << 16))
def test_a_reopened_table_holds_what_was_saved(steps, snapshot_bytes, seed):
    original = metadata_log_module.SNAPSHOT_AFTER_BYTES
    metadata_log_module.SNAPSHOT_AFTER_BYTES = snapshot_bytes
    try:
        fs = MemoryFileSystem(names_need_dir_fsync=True)
        fs.makedirs(DATA)
        fs.fsync_dir("/")
        fs.fsync_dir(DATA)
        table = opened(fs)
        for step in steps:
            if step[0] == "restart":
                table.close()
                table = opened(fs)
            else:
                apply(table, step)
        expected = state(table)
        # Every save was fsynced: a power loss now (with torn unsynced writes) loses none of it.
        copy = fs.power_loss_copy(random.Random(seed))
        assert state(opened(copy)) == expected
        table.close()
        assert state(opened(fs)) == expected
    finally:
        metadata_log_module.SNAPSHOT_AFTER_BYTES = original


def test_snapshots_keep_the_log_short():
    original = metadata_log_module.SNAPSHOT_AFTER_BYTES
    metadata_log_module.SNAPSHOT_AFTER_BYTES = 4096
    try:
        fs = MemoryFileSystem()
        fs.makedirs(DATA)
        table = opened(fs)
        for round_ in range(50):
            topic = Topic(f"churn-{round_}", uuid.uuid4(), 3, {"retention.ms": str(round_)})
            table.add(topic)
            table.remove(topic)
        table.add(Topic("kept", uuid.uuid4(), 2))
        log = table.metadata_log
        assert log.snapshot_id is not None and log.log.log_start_offset == log.snapshot_id.end_offset
        assert log.log.size_in_bytes < 4096 + 1024
        table.close()
        assert [(topic.name, topic.partition_count) for topic in opened(fs)] == [("kept", 2)]
    finally:
        metadata_log_module.SNAPSHOT_AFTER_BYTES = original


def test_a_metadata_log_that_does_not_replay_is_kept_aside_and_a_new_one_started():
    fs = MemoryFileSystem()
    fs.makedirs(DATA)
    table = opened(fs)
    table.add(Topic("orders", uuid.uuid4(), 2))
    metadata_log = table.metadata_log
    # A sound batch holding a record of a type this version does not know.
    metadata_log._append([build_data_batch([bytes([1, 99, 0])], base_offset=metadata_log.end_offset,
                                           epoch=metadata_log.epoch, timestamp=1)])
    table.close()
    again = TopicTable(DATA, fs)
    with pytest.raises(DamagedTopicTable, match="unknown metadata record type 99"):
        again.load(directory_id=DIRECTORY_ID, clock=clock)
    assert len(again) == 0
    kept = again.set_aside()
    name = kept.rsplit("/", 1)[1]
    assert name.startswith("__cluster_metadata-0.") and name.endswith(".damaged")
    assert parse_partition_dir_name(name) is None  # never opened as a partition by a data directory
    assert fs.exists(f"{kept}/00000000000000000000.log")
    again.add(Topic("rebuilt", uuid.uuid4(), 1))
    again.close()
    assert [topic.name for topic in opened(fs)] == ["rebuilt"]


def test_a_damaged_log_is_kept_aside_even_with_an_older_table_file_beside_it():
    fs = MemoryFileSystem()
    fs.makedirs(DATA)
    table = opened(fs)
    table.metadata_log._append([build_data_batch([bytes([1, 99, 0])], base_offset=table.metadata_log.end_offset,
                                                 epoch=table.metadata_log.epoch, timestamp=1)])
    table.close()
    fs.write_file(f"{DATA}/odradek-topics.json", b'{"version": 1, "topics": {}}')
    again = TopicTable(DATA, fs)
    with pytest.raises(DamagedTopicTable, match="__cluster_metadata-0"):
        again.load(directory_id=DIRECTORY_ID, clock=clock)
    kept = again.set_aside()
    assert kept.endswith(".damaged") and "__cluster_metadata-0." in kept
    assert fs.exists(f"{DATA}/odradek-topics.json")  # not what was damaged: left for the next start
