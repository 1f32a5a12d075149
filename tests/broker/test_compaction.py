"""The broker's log cleaner on a real ``odradek serve``: a compacted topic written by
kafka-python keeps the last value of each key (and tombstones while delete.retention.ms lasts)
at unchanged offsets; ``__consumer_offsets`` shrinks under repeated commits and the group's
offsets survive a restart."""

from __future__ import annotations

import os
import time

import pytest

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

from odradek.storage.checkpoints import read_offset_checkpoint
from odradek.storage.fs import OsFileSystem

CLEANER_OVERRIDES = ("log.cleaner.backoff.ms=100",)


def cleaner_offsets(data_dir) -> dict:
    path = os.path.join(data_dir, "cleaner-offset-checkpoint")
    return read_offset_checkpoint(OsFileSystem(), path) if os.path.exists(path) else {}


def wait_for_clean(data_dir, key, at_least, timeout=30.0, settle=1.0) -> int:
    """The partition's first dirty offset once the cleaner has got to ``at_least`` and then
    stopped (nothing new written: no more cleans once it reaches the active segment)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        offset = cleaner_offsets(data_dir).get(key, -1)
        if offset != last:
            last, since = offset, time.monotonic()
        elif offset >= at_least and time.monotonic() - since >= settle:
            return offset
        time.sleep(0.1)
    raise AssertionError(f"the cleaner did not reach {at_least} on {key}: {cleaner_offsets(data_dir)}")


def read_all(bootstrap, topic) -> list[tuple[int, bytes, bytes | None]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=10_000)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    end = consumer.end_offsets([partition])[partition]
    found = []
    for message in consumer:
        found.append((message.offset, message.key, message.value))
        if message.offset + 1 >= end:
            break
    consumer.close()
    return found


def read_all_librdkafka(bootstrap, topic) -> list[tuple[int, bytes, bytes | None]]:
    """The same read with confluent-kafka (librdkafka), which must step over the gaps and the
    emptied batches compaction leaves."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition as Partition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-reader", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([Partition(topic, 0, OFFSET_BEGINNING)])
    found, deadline = [], time.monotonic() + 30
    while time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            if message.error().code() == message.error()._PARTITION_EOF:
                break
            raise AssertionError(message.error())
        found.append((message.offset(), message.key(), message.value()))
    consumer.close()
    return found


def produce(bootstrap, topic, pairs) -> list[tuple[int, bytes, bytes | None]]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0)
    written = []
    for key, value in pairs:
        metadata = producer.send(topic, key=key, value=value).get(timeout=30)
        written.append((metadata.offset, key, value))
    producer.close()
    return written


def check_compacted(found, written, dirty_from):
    """Below ``dirty_from`` only the last record of each key is left; above, everything."""
    by_offset = {offset: (key, value) for offset, key, value in written}
    for offset, key, value in found:
        assert by_offset[offset] == (key, value), f"offset {offset} changed"
    last_below = {}
    for offset, key, _ in written:
        if offset < dirty_from:
            last_below[key] = offset
    cleaned = [offset for offset, _, _ in found if offset < dirty_from]
    assert cleaned == sorted(set(last_below.values()) & set(cleaned))
    assert [o for o, _, _ in found if o >= dirty_from] == [o for o, _, _ in written if o >= dirty_from]
    return {by_offset[offset][0]: by_offset[offset][1] for offset in cleaned}


def test_a_compacted_topic_keeps_the_last_value_of_each_key(broker_process):
    broker = broker_process(None, *CLEANER_OVERRIDES)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("compacted", 1, 1, topic_configs={
        "cleanup.policy": "compact", "segment.bytes": "2048", "min.cleanable.dirty.ratio": "0.01"})])
    admin.close()
    keys = [b"key-%d" % i for i in range(8)]
    pairs = [(b"doomed", b"first"), (b"doomed", b"second")]
    pairs += [(keys[i % len(keys)], b"value-%d-" % i + b"x" * 60) for i in range(300)]
    pairs += [(b"doomed", None)]  # a tombstone
    pairs += [(keys[i % len(keys)], b"later-%d-" % i + b"y" * 60) for i in range(100)]
    written = produce(broker.bootstrap, "compacted", pairs)
    dirty_from = wait_for_clean(broker.data_dir, ("compacted", 0), at_least=written[-40][0])
    found = read_all(broker.bootstrap, "compacted")
    latest = check_compacted(found, written, dirty_from)
    assert len(found) < len(written) / 4
    # Every key's last value below the cleaned point is there, the tombstone too (within
    # delete.retention.ms, one day by default), and none of the values it deleted.
    assert set(latest) == set(keys) | {b"doomed"} and latest[b"doomed"] is None
    assert [value for _, key, value in found if key == b"doomed"] == [None]
    assert read_all_librdkafka(broker.bootstrap, "compacted") == found


def test_tombstones_go_after_delete_retention_ms(broker_process):
    broker = broker_process(None, *CLEANER_OVERRIDES)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("short-tombstones", 1, 1, topic_configs={
        "cleanup.policy": "compact", "segment.bytes": "2048", "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "500"})])
    admin.close()
    written = produce(broker.bootstrap, "short-tombstones",
                      [(b"doomed", b"v" * 50), (b"doomed", None)] + [(b"k%d" % (i % 4), b"z" * 80) for i in range(60)])
    first = wait_for_clean(broker.data_dir, ("short-tombstones", 0), at_least=2)
    assert (b"doomed", None) in [(k, v) for _, k, v in read_all(broker.bootstrap, "short-tombstones")]
    time.sleep(0.6)  # past the tombstone's delete horizon; more writes make the log dirty again
    written += produce(broker.bootstrap, "short-tombstones", [(b"k%d" % (i % 4), b"w" * 80) for i in range(60)])
    dirty_from = wait_for_clean(broker.data_dir, ("short-tombstones", 0), at_least=first + 1)
    found = read_all(broker.bootstrap, "short-tombstones")
    check_compacted(found, written, dirty_from)
    assert b"doomed" not in [key for _, key, _ in found]


def test_consumer_offsets_is_compacted_and_offsets_survive_a_restart(broker_process):
    overrides = CLEANER_OVERRIDES + ("offsets.topic.num.partitions=1", "offsets.topic.segment.bytes=4096")
    broker = broker_process(None, *overrides)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("offsets-source", 1, 1)])
    admin.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="committer", enable_auto_commit=False)
    partition = TopicPartition("offsets-source", 0)
    commits = 400
    for offset in range(commits):
        consumer.commit({partition: OffsetAndMetadata(offset, "", -1)})
    consumer.close()
    directory = os.path.join(broker.data_dir, "__consumer_offsets-0")
    cleaned = wait_for_clean(broker.data_dir, ("__consumer_offsets", 0), at_least=commits // 2)
    log_bytes = sum(os.path.getsize(os.path.join(directory, name)) for name in os.listdir(directory)
                    if name.endswith(".log"))
    # 400 commit records of ~100 bytes each were written; the cleaned part keeps one.
    assert cleaned >= commits // 2 and log_bytes < 60 * (commits - cleaned) + 8192, log_bytes
    assert broker.stop() == 0
    restarted = broker_process(broker.data_dir, *overrides)
    consumer = KafkaConsumer(bootstrap_servers=restarted.bootstrap, group_id="committer", enable_auto_commit=False)
    assert consumer.committed(partition) == commits - 1
    consumer.close()


def test_log_cleaner_enable_false_leaves_compacted_topics_alone(broker_process):
    broker = broker_process(None, "log.cleaner.enable=false", *CLEANER_OVERRIDES)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("uncleaned", 1, 1, topic_configs={
        "cleanup.policy": "compact", "segment.bytes": "2048", "min.cleanable.dirty.ratio": "0.01"})])
    admin.close()
    written = produce(broker.bootstrap, "uncleaned", [(b"same", b"v%d" % i + b"x" * 80) for i in range(60)])
    time.sleep(1.5)  # fifteen backoffs: an enabled cleaner would have cleaned by now (see above)
    assert ("uncleaned", 0) not in cleaner_offsets(broker.data_dir)
    assert read_all(broker.bootstrap, "uncleaned") == written


@pytest.mark.slow
def test_kafkas_console_consumer_reads_a_compacted_topic(broker_process):
    from .test_java_tools import tool

    broker = broker_process(None, *CLEANER_OVERRIDES)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("java-reads", 1, 1, topic_configs={
        "cleanup.policy": "compact", "segment.bytes": "2048", "min.cleanable.dirty.ratio": "0.01"})])
    admin.close()
    pairs = [(b"k%d" % (i % 5), b"v%d" % i + b"-" * 60) for i in range(200)] + [(b"k2", None)]
    pairs += [(b"k%d" % (i % 5), b"w%d" % i + b"-" * 60) for i in range(40) if i % 5 != 2]
    written = produce(broker.bootstrap, "java-reads", pairs)
    dirty_from = wait_for_clean(broker.data_dir, ("java-reads", 0), at_least=written[-30][0])
    found = read_all(broker.bootstrap, "java-reads")
    check_compacted(found, written, dirty_from)
    output = tool("org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", broker.bootstrap,
                  "--topic", "java-reads", "--partition", "0", "--offset", "earliest", "--max-messages",
                  str(len(found)), "--timeout-ms", "20000", "--formatter-property", "print.key=true",
                  "--formatter-property", "print.offset=true")
    expected = [f"Offset:{offset}\t{key.decode()}\t{'null' if value is None else value.decode()}"
                for offset, key, value in found]
    assert output.splitlines()[:len(found)] == expected
