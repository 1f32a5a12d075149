"""Apache Kafka's own tools on odradek's groups: kafka-consumer-groups (list, describe with lag,
reset offsets, delete) and DumpLogSegments' offsets decoder reading odradek's
__consumer_offsets segments. Slow (a JVM per tool); skipped without Java or Kafka's jars."""

from __future__ import annotations

import pathlib

import pytest
from kafka import KafkaConsumer, KafkaProducer

from broker.test_java_tools import tool  # tests/broker's runner of Kafka's main classes
from broker.test_server import create_topic
from odradek.broker.groups import coordinator_partition
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestTopic

from .conftest import RawClient

pytestmark = pytest.mark.slow

GROUPS_TOOL = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def _consume_some(bootstrap, topic, group, count):
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    consumed = 0
    for _ in consumer:
        consumed += 1
        if consumed == count:
            break
    consumer.commit()
    consumer.close()


def test_kafka_consumer_groups_tool_and_offsets_decoder(group_broker):
    topic, group = "tools", "tools-group"
    client = RawClient(group_broker.host, group_broker.port)
    create_topic(client, topic, partitions=2)
    producer = KafkaProducer(bootstrap_servers=group_broker.bootstrap)
    for index in range(10):
        producer.send(topic, value=b"x", partition=index % 2)
    producer.flush()
    producer.close()
    _consume_some(group_broker.bootstrap, topic, group, 6)
    server = ["--bootstrap-server", group_broker.bootstrap]
    try:
        assert group in tool(GROUPS_TOOL, *server, "--list").split()
        described = tool(GROUPS_TOOL, *server, "--describe", "--group", group)
        rows = [line.split() for line in described.splitlines() if line.startswith(group)]
        # partition, current offset, log end offset, lag: 6 of 10 consumed
        assert sum(int(row[3]) for row in rows) == 6 and sum(int(row[5]) for row in rows) == 4, described
        state = tool(GROUPS_TOOL, *server, "--describe", "--group", group, "--state")
        assert "Empty" in state
        tool(GROUPS_TOOL, *server, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")
        fetched = client.request(OffsetFetchRequest(group_id=group, topics=[
            OffsetFetchRequestTopic(name=topic, partition_indexes=[0, 1])]), 7)
        assert [p.committed_offset for p in fetched.topics[0].partitions] == [0, 0]

        # Kafka's decoder of __consumer_offsets records reads ours.
        segment = (pathlib.Path(group_broker.data_dir) / f"__consumer_offsets-{coordinator_partition(group, 50)}"
                   / "00000000000000000000.log")
        dumped = tool("org.apache.kafka.tools.DumpLogSegments", "--offsets-decoder", "--deep-iteration",
                      "--files", str(segment))
        assert '"group":"tools-group","topic":"tools","partition":0' in dumped
        assert '"offset":0,"leaderEpoch"' in dumped  # the reset, as an offset commit value
        assert '"protocolType":"consumer"' in dumped  # a group metadata record

        tool(GROUPS_TOOL, *server, "--delete-offsets", "--group", group, "--topic", f"{topic}:1")
        fetched = client.request(OffsetFetchRequest(group_id=group, topics=[
            OffsetFetchRequestTopic(name=topic, partition_indexes=[0, 1])]), 7)
        assert [p.committed_offset for p in fetched.topics[0].partitions] == [0, -1]

        deleted = tool(GROUPS_TOOL, *server, "--delete", "--group", group)
        assert "successful" in deleted
        assert group not in tool(GROUPS_TOOL, *server, "--list").split()
    finally:
        client.close()
