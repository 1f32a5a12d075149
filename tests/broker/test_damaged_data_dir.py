"""A stopped broker's data directory damaged, then ``odradek serve`` started on it: the broker
comes up, every record that was intact is served to a real client (kafka-python) once and in
order, new writes work, and the broker's log names what could not be read.

One pristine directory is written per module (a clean SIGTERM stop) and copied for each case:
topic ``damaged`` spans several small segments with a few index entries each, ``victim`` is a
second topic, and group ``damage-group`` committed three offsets to ``__consumer_offsets``.
"""

from __future__ import annotations

import os
import random
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odradek.protocol import error_codes
from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.messages.describe_log_dirs import DescribeLogDirsRequest
from odradek.protocol.messages.list_offsets import ListOffsetsRequest
from odradek.protocol.messages.metadata import MetadataRequest
from odradek.protocol.records.header import read_batch_header

from .conftest import BrokerProcess, RawClient
from .test_server import batch_of, create_topic, fetch_request, produce

TOPIC = "damaged"
VICTIM = "victim"
GROUP = "damage-group"
BATCHES = 40
PER_BATCH = 5
COMMITS = (50, 100, 150)
# One __consumer_offsets partition, so the group's commits are in a known place.
OVERRIDES = ("offsets.topic.num.partitions=1",)
TOPIC_CONFIGS = {"segment.bytes": "4096", "index.interval.bytes": "256"}
CLIENT_TIMEOUT_MS = 15_000  # a client call that waits longer fails the test rather than hanging it


def value_of(offset: int) -> bytes:
    return b"record-%04d" % offset


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A cleanly stopped data directory: ``damaged`` (200 records in batches of 5 over several
    segments), ``victim`` (10 records), and the group's commits."""
    directory = tmp_path_factory.mktemp("pristine")
    data_dir = directory / "data"
    broker = BrokerProcess(data_dir, OVERRIDES, directory / "broker.log")
    try:
        client = RawClient(broker.host, broker.port)
        configs = [CreateTopicsRequest.CreatableTopic.CreatableTopicConfig(name=name, value=value)
                   for name, value in TOPIC_CONFIGS.items()]
        assert create_topic(client, TOPIC, configs=configs).error_code == 0
        assert create_topic(client, VICTIM).error_code == 0
        for batch in range(BATCHES):
            offsets = range(batch * PER_BATCH, (batch + 1) * PER_BATCH)
            assert produce(client, TOPIC, 0, batch_of(*[value_of(o) for o in offsets])).error_code == 0
        assert produce(client, VICTIM, 0, batch_of(*[b"victim-%d" % i for i in range(10)])).error_code == 0
        client.close()
        for offset in COMMITS:
            commit(broker, offset)
    finally:
        assert broker.stop() == 0, broker.log()
    return data_dir


def commit(broker, offset: int) -> None:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=GROUP, enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition(TOPIC, 0): OffsetAndMetadata(offset, "", -1)}, timeout_ms=CLIENT_TIMEOUT_MS)
    finally:
        consumer.close()


def committed(broker) -> int | None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=GROUP, enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(TOPIC, 0), timeout_ms=CLIENT_TIMEOUT_MS)
    finally:
        consumer.close()


def consume_all(broker, topic: str = TOPIC) -> list[tuple[int, bytes]]:
    """(offset, value) of every record from the log start to the log end, as kafka-python's
    consumer receives them."""
    from kafka import KafkaConsumer, TopicPartition

    partition = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=CLIENT_TIMEOUT_MS)
    try:
        consumer.assign([partition])
        end = consumer.end_offsets([partition], timeout_ms=CLIENT_TIMEOUT_MS)[partition]
        received = []
        if consumer.position(partition) >= end:
            return received
        for record in consumer:
            received.append((record.offset, record.value))
            if record.offset >= end - 1:
                break
        return received
    finally:
        consumer.close()


def batches_in(path) -> list:
    """The batch headers of a .log file, with their positions."""
    data = open(path, "rb").read()
    position, found = 0, []
    while position < len(data):
        header = read_batch_header(data, position)
        found.append((position, header))
        position += header.size_in_bytes
    return found


def segment_logs(data_dir, partition_dir: str) -> list[str]:
    directory = os.path.join(data_dir, partition_dir)
    return [os.path.join(directory, name) for name in sorted(os.listdir(directory)) if name.endswith(".log")]


def last_non_empty_log(data_dir, partition_dir: str) -> str:
    return [path for path in segment_logs(data_dir, partition_dir) if os.path.getsize(path)][-1]


def every_offset() -> list[int]:
    return list(range(BATCHES * PER_BATCH))


# --- the damage, one function per case: returns (the offsets still intact, the file the log must name)

def torn_tail_after_clean_shutdown(data_dir):
    path = last_non_empty_log(data_dir, f"{TOPIC}-0")
    position, header = batches_in(path)[-1]
    with open(path, "r+b") as handle:
        handle.truncate(position + header.size_in_bytes // 2)
    return list(range(header.base_offset)), path


def truncated_index(data_dir):
    path = segment_logs(data_dir, f"{TOPIC}-0")[0][: -len(".log")] + ".index"
    assert os.path.getsize(path) >= 16, "the first segment should have index entries"
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) - 3)
    return every_offset(), path


def garbage_time_index(data_dir):
    path = last_non_empty_log(data_dir, f"{TOPIC}-0")[: -len(".log")] + ".timeindex"
    size = max(os.path.getsize(path), 48)
    with open(path, "wb") as handle:
        handle.write(random.Random(8).randbytes(size))
    return every_offset(), path


def zero_filled_log_tail(data_dir):
    path = last_non_empty_log(data_dir, f"{TOPIC}-0")
    size = os.path.getsize(path)
    zeroed_from = size - 100
    with open(path, "r+b") as handle:
        handle.seek(zeroed_from)
        handle.write(bytes(100))
    intact_end = next(header.base_offset for position, header in batches_in_prefix(path, zeroed_from)
                      if position + header.size_in_bytes > zeroed_from)
    return list(range(intact_end)), path


def batches_in_prefix(path, end):
    """The batch headers of a .log file whose header lies before ``end`` (read before damage)."""
    data = open(path, "rb").read()
    position = 0
    while position < end:
        header = read_batch_header(data, position)
        yield position, header
        position += header.size_in_bytes


def missing_partition_metadata(data_dir):
    path = os.path.join(data_dir, f"{TOPIC}-0", "partition.metadata")
    os.unlink(path)
    return every_offset(), path


def corrupt_recovery_point_checkpoint(data_dir):
    path = os.path.join(data_dir, "recovery-point-offset-checkpoint")
    with open(path, "wb") as handle:
        handle.write(b"0\n3\n\x00\xffgarbage 12\n")
    return every_offset(), path


def corrupt_consumer_offsets_segment(data_dir):
    path = last_non_empty_log(data_dir, "__consumer_offsets-0")
    position, header = batches_in(path)[-1]  # the last commit's batch
    with open(path, "r+b") as handle:
        handle.seek(position + header.size_in_bytes // 2)
        handle.write(b"\xff" * 8)
    return every_offset(), path


def damaged_metadata_log(data_dir):
    """The metadata log (where the topics are) damaged in its first change: recovery cuts it
    there, and the topics it lost are restored from their partition directories (not taken
    for deleted ones' and removed)."""
    path = os.path.join(data_dir, "__cluster_metadata-0", "00000000000000000000.log")
    [(_, leader_change), (position, first_change), *_] = batches_in(path)
    with open(path, "r+b") as handle:
        handle.seek(position + first_change.size_in_bytes // 2)
        handle.write(b"\xff" * 8)
    return every_offset(), path


def unreadable_metadata_log(data_dir):
    """The metadata log's segment cannot be opened (a directory in its place, as an I/O error
    would): the log is kept aside, a new one started, the topics restored from their partition
    directories."""
    directory = os.path.join(data_dir, "__cluster_metadata-0")
    os.unlink(os.path.join(directory, "00000000000000000000.log"))
    os.mkdir(os.path.join(directory, "00000000000000000000.log"))
    return every_offset(), directory


CASES = [torn_tail_after_clean_shutdown, truncated_index, garbage_time_index, zero_filled_log_tail,
         missing_partition_metadata, corrupt_recovery_point_checkpoint, corrupt_consumer_offsets_segment,
         damaged_metadata_log, unreadable_metadata_log]


@pytest.mark.parametrize("damage", CASES, ids=[case.__name__ for case in CASES])
def test_broker_starts_on_a_damaged_data_dir_and_serves_what_was_intact(pristine, broker_process, tmp_path, damage):
    data_dir = tmp_path / "data"
    shutil.copytree(pristine, data_dir)
    intact, damaged_file = damage(str(data_dir))
    broker = broker_process(data_dir, *OVERRIDES)

    received = consume_all(broker)
    assert received == [(offset, value_of(offset)) for offset in intact]
    assert [value for _, value in consume_all(broker, VICTIM)] == [b"victim-%d" % i for i in range(10)]
    # New writes go on after what was kept.
    client = RawClient(broker.host, broker.port)
    answer = produce(client, TOPIC, 0, batch_of(b"after-damage"))
    client.close()
    assert answer.error_code == 0 and answer.base_offset == (intact[-1] + 1 if intact else 0)
    assert consume_all(broker)[-1] == (answer.base_offset, b"after-damage")

    if damage is corrupt_consumer_offsets_segment:
        assert committed(broker) == COMMITS[-2]  # the last commit was in the damaged batch
        commit(broker, 160)
        assert committed(broker) == 160
    else:
        assert committed(broker) == COMMITS[-1]
    if damage is missing_partition_metadata:
        assert os.path.exists(damaged_file)  # written again from the topic id
    log = broker.full_log()
    assert damaged_file in log, log
    assert "Traceback" not in log, log
    assert broker.stop() == 0, broker.log()
    # What the recovered broker wrote is itself a sound directory: the next start serves it all.
    again = broker_process(data_dir, *OVERRIDES)
    assert consume_all(again) == [(offset, value_of(offset)) for offset in intact] + [
        (answer.base_offset, b"after-damage")]
    assert "warning" not in again.full_log(), again.log()


def test_a_partition_that_cannot_be_opened_goes_offline_alone(pristine, broker_process, tmp_path):
    """victim-0's first segment file is replaced by a directory (open fails as on an I/O error):
    that partition answers KAFKA_STORAGE_ERROR and is reported offline; every other one serves."""
    data_dir = tmp_path / "data"
    shutil.copytree(pristine, data_dir)
    victim_log = segment_logs(data_dir, f"{VICTIM}-0")[0]
    os.unlink(victim_log)
    os.mkdir(victim_log)
    broker = broker_process(data_dir, *OVERRIDES)

    assert consume_all(broker) == [(offset, value_of(offset)) for offset in every_offset()]
    assert committed(broker) == COMMITS[-1]
    client = RawClient(broker.host, broker.port)
    try:
        assert produce(client, VICTIM, 0, batch_of(b"refused")).error_code == error_codes.KAFKA_STORAGE_ERROR
        fetched = client.request(fetch_request(VICTIM, 0, 0), 12).responses[0].partitions[0]
        assert fetched.error_code == error_codes.KAFKA_STORAGE_ERROR
        listed = client.request(ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsRequest.ListOffsetsTopic(
            name=VICTIM, partitions=[ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
                partition_index=0, timestamp=-1)])]), 5).topics[0].partitions[0]
        assert listed.error_code == error_codes.KAFKA_STORAGE_ERROR
        metadata = client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=VICTIM)],
                                                  allow_auto_topic_creation=False), 12)
        partition = metadata.topics[0].partitions[0]
        assert (partition.error_code, partition.leader_id, partition.offline_replicas) == (
            error_codes.LEADER_NOT_AVAILABLE, -1, [metadata.brokers[0].node_id])
        log_dirs = client.request(DescribeLogDirsRequest(topics=None), 4).results
        failed = [result for result in log_dirs if result.error_code == error_codes.KAFKA_STORAGE_ERROR]
        assert [result.log_dir for result in failed] == [os.path.dirname(victim_log)]
        healthy = [result for result in log_dirs if result.error_code == error_codes.NONE]
        assert {topic.name for result in healthy for topic in result.topics} >= {TOPIC, "__consumer_offsets"}
        assert VICTIM not in {topic.name for result in healthy for topic in result.topics}
        # The healthy topic still takes writes.
        assert produce(client, TOPIC, 0, batch_of(b"after")).base_offset == BATCHES * PER_BATCH
    finally:
        client.close()
    log = broker.full_log()
    assert "partition offline" in log and f"{VICTIM}-0" in log, log
    assert broker.stop() == 0, broker.log()
    # A restart keeps it offline (nothing was rewritten over it) and still serves the rest.
    again = broker_process(data_dir, *OVERRIDES)
    assert consume_all(again)[-1] == (BATCHES * PER_BATCH, b"after")
    # The operator's way out: deleting the topic removes the offline partition's directory too.
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=again.bootstrap)
    try:
        admin.delete_topics([VICTIM], timeout_ms=CLIENT_TIMEOUT_MS)
    finally:
        admin.close()
    assert not os.path.exists(os.path.dirname(victim_log))
    assert "Traceback" not in again.full_log()


# --- random damage through a real process (a few examples; tests/storage/test_storage_damage.py
# runs many in-process)

def intact_for_a_consumer(data_dir, damaged: str, position: int) -> list[int]:
    """The offsets of ``damaged-0`` a consumer reading from the start must still get: every
    batch before the damaged position, in file order (a consumer stops at a damaged batch)."""
    relative = os.path.relpath(damaged, data_dir)
    if not (relative.startswith(f"{TOPIC}-0{os.sep}") and relative.endswith(".log")):
        return every_offset()
    offsets = []
    for path in segment_logs(data_dir, f"{TOPIC}-0"):
        if path == damaged:
            for _, header in batches_in_prefix(path, position):
                if _ + header.size_in_bytes <= position:
                    offsets += range(header.base_offset, header.last_offset + 1)
            return offsets
        offsets += [offset for _, header in batches_in(path) for offset in range(header.base_offset, header.last_offset + 1)]
    return offsets


def consume_prefix(broker, count: int) -> list[tuple[int, bytes]]:
    """Up to ``count`` records of ``damaged-0`` from the start, stopping early at an error."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=5_000)
    received = []
    try:
        consumer.assign([TopicPartition(TOPIC, 0)])
        for record in consumer:
            received.append((record.offset, record.value))
            if len(received) >= count:
                break
    except Exception:  # noqa: BLE001 - a damaged batch further on: what came before is what counts
        pass
    finally:
        consumer.close()
    return received


@settings(max_examples=4, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file_choice=st.integers(0, 10_000), position_fraction=st.floats(0, 1),
       kind=st.sampled_from(["truncate", "overwrite", "zero"]), data=st.binary(min_size=1, max_size=64))
def test_random_damage_through_a_real_broker(pristine, tmp_path_factory, file_choice, position_fraction, kind, data):
    root = tmp_path_factory.mktemp("random-damage")
    data_dir = str(root / "data")
    shutil.copytree(pristine, data_dir)
    candidates = sorted(os.path.join(parent, name) for parent, _, names in os.walk(data_dir) for name in names
                        if name not in ("meta.properties", ".lock"))
    damaged = candidates[file_choice % len(candidates)]
    size = os.path.getsize(damaged)
    position = min(size, int(size * position_fraction))
    intact = intact_for_a_consumer(data_dir, damaged, position)
    with open(damaged, "r+b") as handle:
        if kind == "truncate":
            handle.truncate(position)
        else:
            handle.seek(position)
            handle.write(data if kind == "overwrite" else bytes(len(data)))
    if damaged.endswith("log-start-offset-checkpoint"):
        return  # a log start that still parses is trusted (as by Kafka): the in-process test covers it
    broker = BrokerProcess(data_dir, OVERRIDES, root / "broker.log")
    try:
        received = consume_prefix(broker, len(intact))
        assert received[: len(intact)] == [(offset, value_of(offset)) for offset in intact], (damaged, position)
        client = RawClient(broker.host, broker.port)
        answer = produce(client, TOPIC, 0, batch_of(b"after-damage"))
        client.close()
        assert answer.error_code == 0, (damaged, answer)
        assert "Traceback" not in broker.full_log()
    finally:
        assert broker.stop() == 0, broker.log()


def test_a_damaged_meta_properties_refuses_the_start_naming_the_file(pristine, tmp_path):
    """meta.properties is the directory's identity (node and cluster), not a cache: Kafka refuses
    to start on one it cannot read, and so does odradek, with a message and no traceback."""
    import subprocess
    import sys

    from .conftest import subprocess_env

    data_dir = tmp_path / "data"
    shutil.copytree(pristine, data_dir)
    (data_dir / "meta.properties").write_bytes(b"\x00\xffgarbage\n")
    finished = subprocess.run(
        [sys.executable, "-m", "odradek.broker.cli", "serve", "--override", "listeners=PLAINTEXT://127.0.0.1:0",
         "--override", f"log.dirs={data_dir}"], capture_output=True, timeout=30, env=subprocess_env())
    assert finished.returncode == 1
    assert f"{data_dir}/meta.properties" in finished.stderr.decode()
    assert b"Traceback" not in finished.stderr
