"""Apache Kafka's own tools on odradek's groups: kafka-consumer-groups (--list, --describe with
lag and --state, --reset-offsets to-earliest / shift-by / to-datetime in dry-run and execute,
--delete-offsets, --delete) and DumpLogSegments' offsets decoder reading odradek's
__consumer_offsets segments. Slow (a JVM per tool); skipped without Java or Kafka's jars."""

from __future__ import annotations

import datetime
import pathlib
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from broker.test_java_tools import tool  # tests/broker's runner of Kafka's main classes
from broker.test_server import create_topic
from odradek.broker.groups import coordinator_partition
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestTopic

from .conftest import RawClient
from .test_clients import PythonMember, wait_until

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
    # Record i goes to partition i % 2 with timestamp first + i s: partition 0 holds 0, 2, 4, 6, 8
    # (offsets 0-4), partition 1 holds 1, 3, 5, 7, 9. Recent, so retention keeps them.
    first = (int(time.time()) - 3600) * 1000
    producer = KafkaProducer(bootstrap_servers=group_broker.bootstrap)
    for index in range(10):
        producer.send(topic, value=b"x", partition=index % 2, timestamp_ms=first + index * 1000)
    producer.flush()
    producer.close()
    _consume_some(group_broker.bootstrap, topic, group, 6)
    server = ["--bootstrap-server", group_broker.bootstrap]

    def committed():
        fetched = client.request(OffsetFetchRequest(group_id=group, topics=[
            OffsetFetchRequestTopic(name=topic, partition_indexes=[0, 1])]), 7)
        return [p.committed_offset for p in fetched.topics[0].partitions]

    def reset(*how):
        """--reset-offsets; the planned new offset of partitions 0 and 1, from the tool's table."""
        shown = tool(GROUPS_TOOL, *server, "--reset-offsets", "--group", group, "--topic", topic, *how)
        rows = sorted(line.split() for line in shown.splitlines() if line.startswith(group))
        assert [row[2] for row in rows] == ["0", "1"], shown  # GROUP TOPIC PARTITION NEW-OFFSET
        return [int(row[3]) for row in rows]

    try:
        assert group in tool(GROUPS_TOOL, *server, "--list").split()
        described = tool(GROUPS_TOOL, *server, "--describe", "--group", group)
        rows = [line.split() for line in described.splitlines() if line.startswith(group)]
        # partition, current offset, log end offset, lag: 6 of 10 consumed
        assert sum(int(row[3]) for row in rows) == 6 and sum(int(row[5]) for row in rows) == 4, described
        state = tool(GROUPS_TOOL, *server, "--describe", "--group", group, "--state")
        assert "Empty" in state
        before = committed()
        assert sum(before) == 6
        # A dry run (explicit, and the default without --execute) shows the plan, commits nothing.
        assert reset("--to-earliest", "--dry-run") == [0, 0]
        assert reset("--to-earliest") == [0, 0]
        assert committed() == before
        assert reset("--to-earliest", "--execute") == [0, 0]
        assert committed() == [0, 0]
        assert reset("--shift-by", "2", "--execute") == [2, 2]
        assert committed() == [2, 2]
        assert reset("--shift-by", "-5", "--dry-run") == [0, 0]  # clamped to the log start
        assert reset("--shift-by", "100", "--execute") == [5, 5]  # clamped to the log end
        assert committed() == [5, 5]
        # The first record at or after first + 4.5 s: value 6 (partition 0, offset 3) and value 5
        # (partition 1, offset 2): ListOffsets by timestamp.
        moment = datetime.datetime.fromtimestamp((first + 4500) / 1000, datetime.timezone.utc)
        when = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        assert reset("--to-datetime", when, "--dry-run") == [3, 2]
        assert committed() == [5, 5]
        assert reset("--to-datetime", when, "--execute") == [3, 2]
        assert committed() == [3, 2]
        assert reset("--to-earliest", "--execute") == [0, 0]

        # Kafka's decoder of __consumer_offsets records reads ours.
        segment = (pathlib.Path(group_broker.data_dir) / f"__consumer_offsets-{coordinator_partition(group, 50)}"
                   / "00000000000000000000.log")
        dumped = tool("org.apache.kafka.tools.DumpLogSegments", "--offsets-decoder", "--deep-iteration",
                      "--files", str(segment))
        assert '"group":"tools-group","topic":"tools","partition":0' in dumped
        assert '"offset":0,"leaderEpoch"' in dumped  # the reset, as an offset commit value
        assert '"protocolType":"consumer"' in dumped  # a group metadata record

        # With a live member, --describe shows who holds what (DescribeGroups' member
        # assignments decoded by Kafka's Admin) next to the lag.
        member = PythonMember(group_broker.bootstrap, topic, group, "tools-member")
        member.start()
        try:
            wait_until(lambda: member.assignment == {0, 1}, what="the member's assignment")
            wait_until(lambda: len(member.records) == 10, what="the member's records")
            wait_until(lambda: committed() == [5, 5], what="the member's commit")
            members = tool(GROUPS_TOOL, *server, "--describe", "--group", group, "--members", "--verbose")
            row = next(line.split() for line in members.splitlines() if line.startswith(group))
            # GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS CURRENT-EPOCH CURRENT-ASSIGNMENT ... (Kafka 4.x)
            assert row[3] == "tools-member" and row[4] == "2" and row[6] == f"{topic}:0,1", members
            assert "Stable" in tool(GROUPS_TOOL, *server, "--describe", "--group", group, "--state")
            # A live group refuses both: the tool checks the state, the broker NON_EMPTY_GROUP.
            refused = tool(GROUPS_TOOL, *server, "--reset-offsets", "--group", group, "--topic", topic,
                           "--to-earliest", "--execute")
            assert "can only be reset if the group 'tools-group' is inactive" in refused, refused
            assert "GroupNotEmptyException" in tool(GROUPS_TOOL, *server, "--delete", "--group", group)
            assert committed() == [5, 5]
        finally:
            member.stop()  # leaves the group (LeaveGroup), having committed 5 and 5
        assert committed() == [5, 5]
        assert reset("--to-earliest", "--execute") == [0, 0]

        tool(GROUPS_TOOL, *server, "--delete-offsets", "--group", group, "--topic", f"{topic}:1")
        assert committed() == [0, -1]

        deleted = tool(GROUPS_TOOL, *server, "--delete", "--group", group)
        assert "successful" in deleted
        assert group not in tool(GROUPS_TOOL, *server, "--list").split()
    finally:
        client.close()
