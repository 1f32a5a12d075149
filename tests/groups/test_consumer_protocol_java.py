"""Kafka's Java consumer with ``group.protocol=consumer`` (KIP-848) against a real ``odradek
serve``: compat/GroupConsumer.java (compiled once per module with javac when there is one, run
with Kafka's jars from compat/kafka_jars.py) subscribes, prints its assignments and records and
commits synchronously after each poll.

The fast test (CI) has two members split six partitions and consume every record once; the
slow ones add a third member joining and leaving, a SIGKILLed member whose partitions move after
its session, a static member restarted with its partitions back, a broker-side regex
subscription, members carrying on across a broker restart (SIGTERM, SIGKILL) without a
rebalance, and Kafka's tools on the group (kafka-consumer-groups --describe, DumpLogSegments'
offsets decoder reading every consumer-group record odradek writes). The
broker runs with short consumer heartbeats (500 ms) so that reconciliation takes seconds.
Without java the module is skipped (CI installs it with compat/install_tools.sh).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from broker.test_server import create_topic
from compat_scripts import load_compat_script
from odradek.protocol.messages.consumer_group_describe import ConsumerGroupDescribeRequest
from odradek.protocol.messages.list_groups import ListGroupsRequest
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics

from .conftest import BrokerProcess, RawClient, assert_no_traceback

REPO = Path(__file__).resolve().parents[2]
PROGRAM = REPO / "compat" / "GroupConsumer.java"
CONSUMER_PROTOCOL_BROKER = ("group.consumer.heartbeat.interval.ms=500", "group.consumer.min.heartbeat.interval.ms=500",
                            "group.consumer.session.timeout.ms=10000", "group.consumer.min.session.timeout.ms=6000",
                            "num.partitions=6")
WAIT = 60.0


@pytest.fixture(scope="module")
def java_classpath(tmp_path_factory):
    """(classpath, main): Kafka's jars and GroupConsumer compiled once with javac, or without a
    JDK's javac the source file itself (java compiles it at each start, a second slower)."""
    if shutil.which("java") is None:
        pytest.skip("java is not installed (compat/install_tools.sh requires it)")
    jars = load_compat_script("kafka_jars").classpath()
    if shutil.which("javac") is None:
        return jars, str(PROGRAM)
    classes = tmp_path_factory.mktemp("group-consumer-classes")
    subprocess.run(["javac", "-d", str(classes), "-cp", jars, str(PROGRAM)], check=True, capture_output=True,
                   timeout=120)
    return f"{classes}:{jars}", "GroupConsumer"


@pytest.fixture(scope="module")
def kip848_broker(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kip848-broker")
    process = BrokerProcess(directory / "data", CONSUMER_PROTOCOL_BROKER, directory / "broker.log")
    yield process
    assert_no_traceback(process)
    code = process.stop()
    assert code == 0, f"broker exited {code}: {process.log()}"


class JavaConsumer:
    """One GroupConsumer JVM; its stdout lines are collected by a thread."""

    def __init__(self, program: tuple[str, str], bootstrap: str, group: str, topic: str, *configs: str):
        classpath, main = program
        log_config = load_compat_script("kafka_jars").home() / "log4j2.properties"
        command = ["java", "-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                   f"-Dlog4j2.configurationFile={log_config}", "-cp", classpath, main,
                   bootstrap, group, topic, "group.protocol=consumer", *configs]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True).start()

    def _read(self, stream, into) -> None:
        for line in stream:
            with self._lock:
                into.append(line.rstrip("\n"))

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def assignment(self) -> set[int] | None:
        """The partitions of the last ASSIGNED line (None before the first)."""
        for line in reversed(self.snapshot()):
            if line.startswith("ASSIGNED"):
                names = line[len("ASSIGNED"):].strip()
                return {int(name.rsplit(":", 1)[1]) for name in names.split(",") if name}
        return None

    def records(self) -> list[tuple[int, int, str]]:
        found = []
        for line in self.snapshot():
            if line.startswith("RECORD "):
                _, _, partition, offset, value = line.split(" ", 4)
                found.append((int(partition), int(offset), value))
        return found

    def stop(self, timeout: float = 30.0) -> None:
        """A clean close: the member leaves the group (epoch -1)."""
        if self.process.poll() is None:
            try:
                self.process.stdin.write("stop\n")
                self.process.stdin.flush()
            except BrokenPipeError:
                pass
            self.process.wait(timeout)
        assert "CLOSED" in self.snapshot(), self.describe()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def describe(self) -> str:
        return "\n".join(self.snapshot()[-20:] + ["--- stderr:"] + self.errors[-30:])


@pytest.fixture
def java_consumer(java_classpath, kip848_broker):
    started: list[JavaConsumer] = []

    def start(group: str, topic: str, *configs: str) -> JavaConsumer:
        consumer = JavaConsumer(java_classpath, kip848_broker.bootstrap, group, topic, *configs)
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        if consumer.process.poll() is None:
            consumer.kill()


def wait_until(condition, what: str, consumers=(), timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    details = "\n\n".join(consumer.describe() for consumer in consumers)
    raise AssertionError(f"timed out waiting for {what}\n{details}")


def produce(bootstrap: str, topic: str, values: list[str], partitions: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for index, value in enumerate(values):
        producer.send(topic, value=value.encode(), partition=index % partitions)
    producer.flush()
    producer.close()


def split_evenly(consumers, partitions: int) -> bool:
    assignments = [consumer.assignment() for consumer in consumers]
    if any(assignment is None for assignment in assignments):
        return False
    union = set().union(*assignments)
    sizes = sorted(len(assignment) for assignment in assignments)
    return (union == set(range(partitions)) and sum(sizes) == partitions  # disjoint and complete
            and sizes[-1] - sizes[0] <= 1)


def consumed_once(consumers, values: list[str]) -> bool:
    seen = [value for consumer in consumers for _, _, value in consumer.records()]
    return sorted(seen) == sorted(values)


def describe_group(broker, group: str):
    client = RawClient(broker.host, broker.port)
    try:
        return client.request(ConsumerGroupDescribeRequest(group_ids=[group]), 0).groups[0]
    finally:
        client.close()


def committed(broker, group: str, topic_id, partitions: int) -> list[int]:
    client = RawClient(broker.host, broker.port)
    try:
        answer = client.request(OffsetFetchRequest(groups=[OffsetFetchRequestGroup(
            group_id=group, topics=[OffsetFetchRequestTopics(topic_id=topic_id, partition_indexes=list(range(partitions)))])]),
            10)
        return [partition.committed_offset for partition in answer.groups[0].topics[0].partitions]
    finally:
        client.close()


def _topic(broker, name: str, partitions: int):
    client = RawClient(broker.host, broker.port)
    try:
        created = create_topic(client, name, partitions=partitions)
        assert created.error_code == 0
        return created.topic_id
    finally:
        client.close()


def test_two_java_consumers_split_partitions_and_consume_each_record_once(kip848_broker, java_consumer):
    topic, group = "kip848-split", "kip848-split-group"
    topic_id = _topic(kip848_broker, topic, 6)
    members = [java_consumer(group, topic), java_consumer(group, topic)]
    wait_until(lambda: split_evenly(members, 6), "two members with three partitions each", members)
    values = [f"split-{index}" for index in range(60)]
    produce(kip848_broker.bootstrap, topic, values, 6)
    wait_until(lambda: consumed_once(members, values), "every record consumed once", members)
    for member in members:  # each consumed exactly its own partitions
        assert {partition for partition, _, _ in member.records()} == member.assignment()
    wait_until(lambda: committed(kip848_broker, group, topic_id, 6) == [10] * 6, "commits of every partition")

    described = describe_group(kip848_broker, group)
    assert described.error_code == 0 and described.group_state == "Stable" and described.assignor_name == "uniform"
    assert len(described.members) == 2
    for member in described.members:
        assert member.member_epoch == described.assignment_epoch == described.group_epoch
        assert member.subscribed_topic_names == [topic]
        current = {p for tp in member.assignment.topic_partitions for p in tp.partitions}
        target = {p for tp in member.target_assignment.topic_partitions for p in tp.partitions}
        assert current == target and len(current) == 3
    client = RawClient(kip848_broker.host, kip848_broker.port)
    listed = client.request(ListGroupsRequest(types_filter=["consumer"]), 5).groups
    client.close()
    assert (group, "consumer", "Stable") in {(g.group_id, g.group_type, g.group_state) for g in listed}
    for member in members:
        member.stop()
    wait_until(lambda: describe_group(kip848_broker, group).group_state == "Empty", "the group to empty")


@pytest.mark.slow
def test_third_member_joins_and_leaves_and_partitions_move_without_duplicates(kip848_broker, java_consumer):
    topic, group = "kip848-three", "kip848-three-group"
    _topic(kip848_broker, topic, 6)
    members = [java_consumer(group, topic), java_consumer(group, topic)]
    wait_until(lambda: split_evenly(members, 6), "two members split six partitions", members)
    first = [f"first-{index}" for index in range(60)]
    produce(kip848_broker.bootstrap, topic, first, 6)
    wait_until(lambda: consumed_once(members, first), "the first records consumed once", members)

    third = java_consumer(group, topic)
    everyone = members + [third]
    wait_until(lambda: split_evenly(everyone, 6), "three members with two partitions each", everyone)
    second = [f"second-{index}" for index in range(60)]
    produce(kip848_broker.bootstrap, topic, second, 6)
    wait_until(lambda: consumed_once(everyone, first + second), "all records consumed once", everyone)
    assert {value for _, _, value in third.records()} <= set(second) and third.records()

    third.stop()
    wait_until(lambda: split_evenly(members, 6), "the two others to take the third's partitions back", members)
    last = [f"last-{index}" for index in range(60)]
    produce(kip848_broker.bootstrap, topic, last, 6)
    wait_until(lambda: consumed_once(everyone, first + second + last), "every record consumed once", everyone)
    for member in members:
        member.stop()


@pytest.mark.slow
def test_killed_member_loses_its_partitions_after_the_session_timeout(kip848_broker, java_consumer):
    topic, group = "kip848-kill", "kip848-kill-group"
    _topic(kip848_broker, topic, 4)
    survivor, victim = java_consumer(group, topic), java_consumer(group, topic)
    wait_until(lambda: split_evenly([survivor, victim], 4), "two members split four partitions", [survivor, victim])
    victim.kill()
    killed_at = time.monotonic()
    wait_until(lambda: survivor.assignment() == {0, 1, 2, 3}, "the survivor to get every partition", [survivor])
    # The session timeout (10 s here) had to pass first: nobody told the broker.
    assert time.monotonic() - killed_at >= 9.0
    values = [f"after-{index}" for index in range(20)]
    produce(kip848_broker.bootstrap, topic, values, 4)
    wait_until(lambda: sorted(v for _, _, v in survivor.records()) == sorted(values), "the survivor to read all",
               [survivor])
    survivor.stop()


@pytest.mark.slow
def test_restarted_static_member_gets_its_partitions_back(kip848_broker, java_consumer):
    topic, group = "kip848-static", "kip848-static-group"
    _topic(kip848_broker, topic, 4)
    other = java_consumer(group, topic, "group.instance.id=other")
    static = java_consumer(group, topic, "group.instance.id=static-1")
    wait_until(lambda: split_evenly([other, static], 4), "two static members split four partitions", [other, static])
    before = static.assignment()
    epoch_before = describe_group(kip848_broker, group).group_epoch
    static.stop()  # a static member leaves with epoch -2: its partitions wait for it
    time.sleep(2)
    assert other.assignment() == {0, 1, 2, 3} - before
    again = java_consumer(group, topic, "group.instance.id=static-1")
    wait_until(lambda: again.assignment() == before, "the restarted static member to get its partitions back",
               [again, other])
    assert describe_group(kip848_broker, group).group_epoch == epoch_before  # no rebalance
    again.stop()
    other.stop()


@pytest.mark.slow
def test_broker_side_regex_subscription_picks_up_matching_topics(kip848_broker, java_consumer):
    # SubscriptionPattern: the broker resolves the regex (a java.util.regex Pattern would be
    # matched by the client against its metadata, refreshed only every metadata.max.age.ms).
    group = "kip848-regex-group"
    _topic(kip848_broker, "regex-a", 2)
    _topic(kip848_broker, "other-topic", 2)
    member = java_consumer(group, "-", "subscribe.regex=regex-.*")
    wait_until(lambda: member.assignment() == {0, 1}, "the member to get regex-a's partitions", [member])
    _topic(kip848_broker, "regex-b", 2)
    values = [f"b-{index}" for index in range(10)]
    produce(kip848_broker.bootstrap, "regex-b", values, 2)
    wait_until(lambda: sorted(v for _, _, v in member.records()) == sorted(values),
               "the records of the new matching topic", [member])
    described = describe_group(kip848_broker, group)
    assert described.members[0].subscribed_topic_regex == "regex-.*"
    topics = {tp.topic_name for tp in described.members[0].assignment.topic_partitions}
    assert topics == {"regex-a", "regex-b"}
    member.stop()


@pytest.mark.slow
def test_kafka_tools_describe_the_group_and_decode_its_records(kip848_broker, java_consumer):
    from broker.test_java_tools import tool  # tests/broker's runner of Kafka's main classes
    from odradek.broker.groups import coordinator_partition

    topic, group = "kip848-tools", "kip848-tools-group"
    _topic(kip848_broker, topic, 2)
    member = java_consumer(group, topic)
    wait_until(lambda: member.assignment() == {0, 1}, "the member's assignment", [member])
    values = [f"tools-{index}" for index in range(6)]
    produce(kip848_broker.bootstrap, topic, values, 2)
    wait_until(lambda: len(member.records()) == 6, "the member's records", [member])
    server = ["--bootstrap-server", kip848_broker.bootstrap]
    groups_tool = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
    assert group in tool(groups_tool, *server, "--list", "--type", "consumer").split()
    state = tool(groups_tool, *server, "--describe", "--group", group, "--state")
    assert "Stable" in state and "uniform" in state, state
    members = tool(groups_tool, *server, "--describe", "--group", group, "--members", "--verbose")
    assert f"{topic}:0,1" in members.replace(" ", ""), members
    offsets = tool(groups_tool, *server, "--describe", "--group", group)
    rows = [line.split() for line in offsets.splitlines() if line.startswith(group)]
    assert sorted((row[2], row[3], row[4], row[5]) for row in rows) == [("0", "3", "3", "0"), ("1", "3", "3", "0")], offsets
    member.stop()

    segment = (Path(kip848_broker.data_dir) / f"__consumer_offsets-{coordinator_partition(group, 50)}"
               / "00000000000000000000.log")
    dumped = tool("org.apache.kafka.tools.DumpLogSegments", "--offsets-decoder", "--deep-iteration",
                  "--files", str(segment))
    # Kafka's offsets decoder reads every KIP-848 record type (key versions 3-8) we write...
    for key_type in range(3, 9):
        assert f'key: {{"type":"{key_type}","data":{{"groupId":"{group}"' in dumped, (key_type, dumped[-4000:])
    assert '"subscribedTopicNames":["kip848-tools"]' in dumped and '"assignmentEpoch":1' in dumped
    assert '"memberEpoch":1,"previousMemberEpoch":0,"state":0,"assignedPartitions":[{"topicId"' in dumped
    # ...and the member's tombstones when it left, then the bumped group epoch.
    assert '"type":"5","data":{"groupId":"kip848-tools-group","memberId"' in dumped and "payload: <DELETE>" in dumped
    assert '"data":{"epoch":2}' in dumped


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_java_members_carry_on_across_a_broker_restart(java_classpath, tmp_path, stop):
    data, log = tmp_path / "data", tmp_path / "broker.log"
    # A longer session than the module's: a loaded machine must not expire members while the
    # broker restarts and they reconnect (that would be a rebalance, which this test rules out).
    settings = CONSUMER_PROTOCOL_BROKER + ("group.consumer.session.timeout.ms=30000",)
    broker = BrokerProcess(data, settings, log)
    topic, group = "kip848-restart", "kip848-restart-group"
    _topic(broker, topic, 4)
    members = [JavaConsumer(java_classpath, broker.bootstrap, group, topic) for _ in range(2)]
    try:
        wait_until(lambda: split_evenly(members, 4), "two members split four partitions", members)
        before = [member.assignment() for member in members]
        first = [f"before-{index}" for index in range(20)]
        produce(broker.bootstrap, topic, first, 4)
        wait_until(lambda: consumed_once(members, first), "the first records", members)
        epoch = describe_group(broker, group).group_epoch
        port = broker.port
        if stop == "sigterm":
            assert broker.stop() == 0
        else:
            broker.kill()
        # The same port, so the clients find their coordinator again.
        broker = BrokerProcess(data, settings + (f"listeners=PLAINTEXT://127.0.0.1:{port}",), log)
        described = describe_group(broker, group)
        assert described.group_epoch == epoch and len(described.members) == 2
        second = [f"after-{index}" for index in range(20)]
        produce(broker.bootstrap, topic, second, 4)
        wait_until(lambda: consumed_once(members, first + second), "the records after the restart", members)
        # Nobody rebalanced: the members kept their partitions and the group its epoch.
        assert [member.assignment() for member in members] == before
        assert describe_group(broker, group).group_epoch == epoch
        for member in members:
            member.stop()
    finally:
        for member in members:
            if member.process.poll() is None:
                member.kill()
        assert_no_traceback(broker)
        broker.stop()


@pytest.mark.slow
def test_a_group_upgrades_and_downgrades_online_as_protocols_change(kip848_broker, java_classpath):
    # A rolling upgrade: two Java consumers of the classic protocol, then one of the new one;
    # then it goes away again.
    topic, group = "kip848-upgrade", "kip848-upgrade-group"
    _topic(kip848_broker, topic, 6)
    def start(protocol):
        classic_timing = ("session.timeout.ms=10000", "heartbeat.interval.ms=500") if protocol == "classic" else ()
        return JavaConsumer(java_classpath, kip848_broker.bootstrap, group, topic, f"group.protocol={protocol}",
                            *classic_timing)

    classic = [start("classic"), start("classic")]
    members = list(classic)
    try:
        wait_until(lambda: split_evenly(classic, 6), "two classic members split six partitions", classic)
        client = RawClient(kip848_broker.host, kip848_broker.port)
        listed = {g.group_id: g.group_type for g in client.request(ListGroupsRequest(), 5).groups}
        assert listed[group] == "classic"
        first = [f"classic-{index}" for index in range(60)]
        produce(kip848_broker.bootstrap, topic, first, 6)
        wait_until(lambda: consumed_once(classic, first), "the first records", classic)

        modern = start("consumer")
        members.append(modern)
        wait_until(lambda: split_evenly(members, 6), "three members with two partitions each", members)
        listed = {g.group_id: g.group_type for g in client.request(ListGroupsRequest(), 5).groups}
        assert listed[group] == "consumer"
        described = describe_group(kip848_broker, group)
        assert described.group_state == "Stable" and len(described.members) == 3
        second = [f"mixed-{index}" for index in range(60)]
        produce(kip848_broker.bootstrap, topic, second, 6)
        wait_until(lambda: consumed_once(members, first + second), "every record once", members)
        assert modern.records() and {v for _, _, v in modern.records()} <= set(second)

        # The consumer-protocol member leaves: only classic members are left, the group is a
        # classic group again and they split the partitions in a classic rebalance.
        modern.stop()
        wait_until(lambda: split_evenly(classic, 6), "the classic members to split the partitions", classic)
        listed = {g.group_id: g.group_type for g in client.request(ListGroupsRequest(), 5).groups}
        assert listed[group] == "classic"
        third = [f"classic-again-{index}" for index in range(60)]
        produce(kip848_broker.bootstrap, topic, third, 6)
        wait_until(lambda: consumed_once(members, first + second + third), "every record once", members)
        client.close()
        for member in classic:
            member.stop()
    finally:
        for member in members:
            if member.process.poll() is None:
                member.kill()
