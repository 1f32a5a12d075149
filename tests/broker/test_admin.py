"""Admin operations through real admin clients: create/describe/delete topics, DescribeConfigs
with sources and synonyms, DescribeCluster; retention deleting old segments."""

from __future__ import annotations

import time
import uuid

import pytest

from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.messages.describe_configs import DescribeConfigsRequest
from odradek.protocol.messages.list_offsets import ListOffsetsRequest
from odradek.protocol.records.batch import Record, build_batch

from .conftest import RawClient
from .test_server import create_topic, produce

TOPIC, BROKER = 2, 4
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5


def describe(client, resource_type, name, keys=None, version=4):
    request = DescribeConfigsRequest(resources=[DescribeConfigsRequest.DescribeConfigsResource(
        resource_type=resource_type, resource_name=name, configuration_keys=keys)],
        include_synonyms=version >= 1, include_documentation=version >= 3)
    return client.request(request, version).results[0]


@pytest.fixture
def configured_broker(broker_process):
    return broker_process(None, "log.retention.hours=1", "num.partitions=3", "log.retention.check.interval.ms=200")


def test_describe_configs_sources_and_synonyms(configured_broker):
    client = RawClient(configured_broker.host, configured_broker.port)
    try:
        create_topic(client, "described", configs=[
            CreateTopicsRequest.CreatableTopic.CreatableTopicConfig(name="cleanup.policy", value="compact")])
        result = describe(client, TOPIC, "described")
        assert result.error_code == 0
        entries = {entry.name: entry for entry in result.configs}
        assert (entries["cleanup.policy"].value, entries["cleanup.policy"].config_source) == ("compact", DYNAMIC_TOPIC_CONFIG)
        retention = entries["retention.ms"]
        assert (retention.value, retention.config_source) == ("3600000", STATIC_BROKER_CONFIG)
        assert [(s.name, s.value, s.source) for s in retention.synonyms] == [
            ("log.retention.hours", "1", STATIC_BROKER_CONFIG), ("log.retention.hours", "168", DEFAULT_CONFIG)]
        assert (entries["segment.bytes"].value, entries["segment.bytes"].config_source) == ("1073741824", DEFAULT_CONFIG)
        assert entries["segment.bytes"].config_type == 3 and entries["segment.bytes"].documentation
        only = describe(client, TOPIC, "described", keys=["retention.ms"], version=0)
        assert [(e.name, e.is_default) for e in only.configs] == [("retention.ms", False)]
        assert describe(client, TOPIC, "missing").error_code == 3
        broker_result = describe(client, BROKER, "1", keys=["num.partitions", "log.dirs", "log.retention.ms"])
        values = {e.name: (e.value, e.config_source, e.read_only) for e in broker_result.configs}
        assert values["num.partitions"] == ("3", STATIC_BROKER_CONFIG, True)
        assert values["log.retention.ms"] == (None, DEFAULT_CONFIG, True)
        assert describe(client, BROKER, "7").error_code == 42
    finally:
        client.close()


def test_retention_deletes_old_segments(configured_broker):
    client = RawClient(configured_broker.host, configured_broker.port)
    try:
        Config = CreateTopicsRequest.CreatableTopic.CreatableTopicConfig
        create_topic(client, "short-lived", configs=[Config(name="segment.bytes", value="1024"),
                                                     Config(name="retention.ms", value="60000")])
        old = int(time.time() * 1000) - 3_600_000
        for _i in range(5):
            batch = build_batch([Record(0, 0, None, b"x" * 700)], base_timestamp=old)
            assert produce(client, "short-lived", 0, batch).error_code == 0

        def earliest():
            request = ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsRequest.ListOffsetsTopic(
                name="short-lived", partitions=[ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
                    partition_index=0, timestamp=-2)])])
            return client.request(request, 7).topics[0].partitions[0].offset

        deadline = time.monotonic() + 10
        while earliest() != 5 and time.monotonic() < deadline:  # the task may run mid-way too
            time.sleep(0.1)
        assert earliest() == 5  # every segment went (the active one too, after a roll, as in Kafka)
    finally:
        client.close()


def test_kafka_python_admin_round_trip(shared_broker):
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

    name = f"adm-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=shared_broker.bootstrap)
    try:
        admin.create_topics([NewTopic(name, 4, 1, topic_configs={"retention.ms": "1234"})])
        assert name in admin.list_topics()
        described = admin.describe_topics([name])[0]
        assert len(described["partitions"]) == 4
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        assert "1234" in repr(configs)
        cluster = admin.describe_cluster()
        assert cluster["controller_id"] == 1
        admin.delete_topics([name])
        assert name not in admin.list_topics()
    finally:
        admin.close()


def test_confluent_admin_round_trip(shared_broker):
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    name = f"cadm-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": shared_broker.bootstrap})
    for future in admin.create_topics([NewTopic(name, 2, 1, config={"cleanup.policy": "compact"})]).values():
        future.result(10)
    resource = ConfigResource("topic", name)
    configs = admin.describe_configs([resource])[resource].result(10)
    assert configs["cleanup.policy"].value == "compact"
    assert configs["cleanup.policy"].source == DYNAMIC_TOPIC_CONFIG
    assert configs["retention.ms"].value == "604800000"
    cluster = admin.describe_cluster().result(10)
    assert cluster.controller.id == 1 and len(cluster.nodes) == 1
    for future in admin.delete_topics([name]).values():
        future.result(10)
    assert name not in admin.list_topics(timeout=10).topics


def test_create_partitions_delete_records_and_epochs(shared_broker):
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
    from confluent_kafka import TopicPartition

    from odradek.protocol.messages.offset_for_leader_epoch import OffsetForLeaderEpochRequest

    name = f"grow-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": shared_broker.bootstrap})
    for future in admin.create_topics([NewTopic(name, 1, 1)]).values():
        future.result(10)
    for future in admin.create_partitions([NewPartitions(name, 3)]).values():
        future.result(10)
    assert len(admin.list_topics(name, timeout=10).topics[name].partitions) == 3
    with pytest.raises(Exception) as refused:
        for future in admin.create_partitions([NewPartitions(name, 2)]).values():
            future.result(10)
    assert "INVALID_PARTITIONS" in repr(refused.value) or "higher" in repr(refused.value)

    client = RawClient(shared_broker.host, shared_broker.port)
    try:
        for i in range(4):
            produce(client, name, 2, build_batch([Record(0, 0, None, b"%d" % i)]))
        deleted = admin.delete_records([TopicPartition(name, 2, 3)])
        for future in deleted.values():
            assert future.result(10).low_watermark == 3
        request = ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsRequest.ListOffsetsTopic(
            name=name, partitions=[ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
                partition_index=2, timestamp=-2)])])
        assert client.request(request, 7).topics[0].partitions[0].offset == 3

        epochs = OffsetForLeaderEpochRequest(replica_id=-1, topics=[OffsetForLeaderEpochRequest.OffsetForLeaderTopic(
            topic=name, partitions=[OffsetForLeaderEpochRequest.OffsetForLeaderTopic.OffsetForLeaderPartition(
                partition=p, current_leader_epoch=0, leader_epoch=0) for p in (0, 2, 9)])])
        answers = client.request(epochs, 4).topics[0].partitions
        assert [(a.error_code, a.leader_epoch, a.end_offset) for a in answers] == [
            (0, -1, -1),  # nothing appended yet: no epoch known
            (0, 0, 4),
            (3, -1, -1),
        ]
    finally:
        client.close()


def test_alter_configs_and_incremental_alter_configs(shared_broker):
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic)

    name = f"alter-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": shared_broker.bootstrap})
    for future in admin.create_topics([NewTopic(name, 1, 1, config={"retention.ms": "1000"})]).values():
        future.result(10)

    def current():
        resource = ConfigResource("topic", name)
        return {key: (entry.value, entry.source) for key, entry in admin.describe_configs([resource])[resource].result(10).items()}

    incremental = ConfigResource("topic", name, incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("segment.bytes", "1048576", incremental_operation=AlterConfigOpType.SET),
    ])
    for future in admin.incremental_alter_configs([incremental]).values():
        future.result(10)
    configs = current()
    assert configs["cleanup.policy"] == ("delete,compact", DYNAMIC_TOPIC_CONFIG)
    assert configs["retention.ms"] == ("604800000", DEFAULT_CONFIG)
    assert configs["segment.bytes"] == ("1048576", DYNAMIC_TOPIC_CONFIG)

    bad = ConfigResource("topic", name, incremental_configs=[
        ConfigEntry("segment.bytes", "2", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as refused:
        for future in admin.incremental_alter_configs([bad]).values():
            future.result(10)
    assert refused.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert current()["segment.bytes"] == ("1048576", DYNAMIC_TOPIC_CONFIG)  # unchanged

    # Legacy AlterConfigs replaces the whole set: what is not given returns to its default.
    for future in admin.alter_configs([ConfigResource("topic", name, set_config={"retention.ms": "5000"})]).values():
        future.result(10)
    configs = current()
    assert configs["retention.ms"] == ("5000", DYNAMIC_TOPIC_CONFIG)
    assert configs["segment.bytes"] == ("1073741824", DEFAULT_CONFIG)
    assert configs["cleanup.policy"] == ("delete", DEFAULT_CONFIG)


def test_describe_log_dirs(shared_broker):
    from odradek.protocol.messages.describe_log_dirs import DescribeLogDirsRequest

    client = RawClient(shared_broker.host, shared_broker.port)
    try:
        create_topic(client, "sized", partitions=2)
        produce(client, "sized", 1, build_batch([Record(0, 0, None, b"x" * 100)]))
        everything = client.request(DescribeLogDirsRequest(topics=None), 4)
        (result,) = everything.results
        assert result.error_code == 0 and result.log_dir == shared_broker.data_dir
        assert result.total_bytes > 0 and result.usable_bytes > 0
        sized = {t.name: {p.partition_index: p.partition_size for p in t.partitions} for t in result.topics}["sized"]
        assert sized[0] == 0 and sized[1] > 100
        some = client.request(DescribeLogDirsRequest(topics=[DescribeLogDirsRequest.DescribableLogDirTopic(
            topic="sized", partitions=[1, 7])]), 1)
        assert [(t.name, [p.partition_index for p in t.partitions]) for t in some.results[0].topics] == [("sized", [1])]
    finally:
        client.close()


def test_describe_topic_partitions_pages_with_a_cursor(shared_broker):
    from odradek.protocol.messages.describe_topic_partitions import DescribeTopicPartitionsRequest as Request

    client = RawClient(shared_broker.host, shared_broker.port)
    try:
        create_topic(client, "paged-a", partitions=3)
        create_topic(client, "paged-b", partitions=2)
        topics = [Request.TopicRequest(name=name) for name in ("paged-b", "paged-a", "paged-missing")]
        seen = []
        cursor = None
        for _ in range(10):
            response = client.request(Request(topics=topics, response_partition_limit=2, cursor=cursor), 0)
            for topic in response.topics:
                seen += [(topic.name, topic.error_code, p.partition_index, p.leader_id) for p in topic.partitions]
                if topic.error_code:
                    seen.append((topic.name, topic.error_code))
            cursor = response.next_cursor
            if cursor is None:
                break
        assert seen == [("paged-a", 0, 0, 1), ("paged-a", 0, 1, 1), ("paged-a", 0, 2, 1), ("paged-b", 0, 0, 1),
                        ("paged-b", 0, 1, 1), ("paged-missing", 3)]
    finally:
        client.close()
