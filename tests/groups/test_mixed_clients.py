"""Five client libraries in one consumer group: kafka-python, aiokafka, librdkafka
(confluent-kafka), Kafka's Java consumer (kafka-console-consumer from the Maven Central jars,
compat/kafka_jars.py) and franz-go (compat/franzgo, built by compat/go_programs.py). They share
the "range" assignor, split ten partitions two each (as the broker's DescribeGroups shows),
consume every record exactly once from their own partitions, and commit it.

About 5 s (one JVM; the Go program is built once, by compat/install_tools.sh or here). Java,
Maven and Go are required: without them the fixtures raise (a failure, not a skip);
compat/install_tools.sh installs the jars and builds the Go program on a fresh machine."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer

from broker.test_server import create_topic
from compat_scripts import load_compat_script
from program_process import ProgramProcess
from odradek.protocol import error_codes as E
from odradek.protocol.messages.describe_groups import DescribeGroupsRequest
from odradek.protocol.messages.records.consumer_protocol_assignment import ConsumerProtocolAssignment

from .conftest import RawClient, assert_no_traceback
from .test_clients import AioMember, PythonMember, committed_offsets, produce_kafka_python, wait_until

PARTITIONS = 10
RECORDS = 100
GROUP_TIMEOUT = 90.0  # five libraries joining one after another: several rebalances
STOP_TIMEOUT = 30.0
RANGE_ASSIGNOR = "org.apache.kafka.clients.consumer.RangeAssignor"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"


@pytest.fixture(scope="module")
def franzgo_binary():
    return load_compat_script("go_programs").build("franzgo")  # GoUnavailable without go


class LineMember(ProgramProcess):
    """A member in another process; ``parse(line)`` turns a line of its output into a
    (partition, offset, value) record or None."""

    def __init__(self, command, client_id, log_path, stdin=None):
        self.client_id = client_id
        self.records: list[tuple[int, int, bytes]] = []
        super().__init__(command, client_id, log_path, stdin=stdin)

    def parse(self, line: bytes):
        raise NotImplementedError

    def on_line(self, line: bytes) -> None:
        record = self.parse(line)
        if record is not None:
            self.records.append(record)


class JavaMember(LineMember):
    """Kafka's kafka-console-consumer in the group with the RangeAssignor; it auto-commits
    every 500 ms and once more when SIGTERM closes it."""

    RECORD = re.compile(rb"Partition:(\d+)\tOffset:(\d+)\t(.*)")

    def __init__(self, kafka_jars, bootstrap, topic, group, log_path):
        properties = [f"partition.assignment.strategy={RANGE_ASSIGNOR}", "client.id=mixed-java",
                      "session.timeout.ms=10000", "heartbeat.interval.ms=200", "auto.commit.interval.ms=500"]
        arguments = ["--bootstrap-server", bootstrap, "--topic", topic, "--group", group, "--from-beginning",
                     "--formatter-property", "print.partition=true", "--formatter-property", "print.offset=true"]
        for item in properties:
            arguments += ["--consumer-property", item]
        super().__init__(kafka_jars.java_command(CONSOLE_CONSUMER, arguments), "mixed-java", log_path)

    def parse(self, line):
        match = self.RECORD.fullmatch(line)
        return None if match is None else (int(match[1]), int(match[2]), match[3])

    def stop(self):
        self.process.send_signal(signal.SIGTERM)  # the shutdown hook closes the consumer: commit, LeaveGroup
        self.process.wait(STOP_TIMEOUT)
        self.kill()


class FranzGoMember(LineMember):
    """compat/franzgo: a franz-go member with the range balancer; it commits after every poll
    and leaves the group when its standard input closes."""

    def __init__(self, binary, bootstrap, topic, group, log_path):
        super().__init__([str(binary), "-bootstrap", bootstrap, "-group", group, "-topic", topic,
                          "-client-id", "mixed-franz-go"], "mixed-franz-go", log_path, stdin=subprocess.PIPE)

    def parse(self, line):
        if not line.startswith(b"record "):
            return None
        _, partition, offset, value = line.split(b" ", 3)
        return int(partition), int(offset), value

    def stop(self):
        self.process.stdin.close()
        code = self.process.wait(STOP_TIMEOUT)
        self.kill()
        assert code == 0, f"franz-go member exited {code}: {self.log()}"


class LibrdkafkaMember(threading.Thread):
    """A confluent-kafka consumer polling in its own thread; commits each record synchronously."""

    client_id = "mixed-librdkafka"

    def __init__(self, bootstrap, topic, group):
        super().__init__(name=self.client_id, daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": self.client_id,
                                  "partition.assignment.strategy": "range", "auto.offset.reset": "earliest",
                                  "enable.auto.commit": False, "session.timeout.ms": 10000,
                                  "heartbeat.interval.ms": 200})
        self.consumer.subscribe([topic])
        self.records: list[tuple[int, int, bytes]] = []
        self.failure: BaseException | None = None
        self._stopping = threading.Event()

    def run(self):
        try:
            while not self._stopping.is_set():
                message = self.consumer.poll(0.1)
                if message is not None and message.error() is None:
                    self.records.append((message.partition(), message.offset(), message.value()))
                    self.consumer.commit(message=message, asynchronous=False)
        except BaseException as error:  # reported by stop()
            self.failure = error
        finally:
            self.consumer.close()

    def stop(self):
        self._stopping.set()
        self.join(STOP_TIMEOUT)
        assert not self.is_alive() and self.failure is None, self.failure


def describe(broker, group):
    """(state, protocol, {client id: assigned partitions}) from the broker's DescribeGroups."""
    client = RawClient(broker.host, broker.port)
    try:
        described = client.request(DescribeGroupsRequest(groups=[group]), 5).groups[0]
    finally:
        client.close()
    assert described.error_code == E.NONE
    shares: dict[str, set[int]] = {}
    for member in described.members:
        partitions: set[int] = set()
        if len(member.member_assignment) >= 2:
            version = int.from_bytes(member.member_assignment[:2], "big")
            assignment = ConsumerProtocolAssignment.decode(
                memoryview(member.member_assignment)[2:], min(version, ConsumerProtocolAssignment.MAX_VERSION))
            for topic in assignment.assigned_partitions:
                partitions.update(topic.partitions)
        shares.setdefault(member.client_id, set()).update(partitions)
    return described.group_state, described.protocol_data, shares


def test_five_client_libraries_share_one_group(group_broker, kafka_jars, franzgo_binary, tmp_path):
    topic, group = "mixed-five", "mixed-five-group"
    setup = RawClient(group_broker.host, group_broker.port)
    assert create_topic(setup, topic, partitions=PARTITIONS).error_code == E.NONE
    setup.close()
    bootstrap = group_broker.bootstrap
    # The slow starters first: the JVM and the Go binary start while the Python members join.
    java = JavaMember(kafka_jars, bootstrap, topic, group, tmp_path / "java.log")
    franz = FranzGoMember(franzgo_binary, bootstrap, topic, group, tmp_path / "franz-go.log")
    python_member = PythonMember(bootstrap, topic, group, "mixed-kafka-python")
    aio_member = AioMember(bootstrap, topic, group)
    native = LibrdkafkaMember(bootstrap, topic, group)
    threads = [python_member, aio_member, native]
    for thread in threads:
        thread.start()
    members = {"mixed-java": java, "mixed-franz-go": franz, "mixed-kafka-python": python_member,
               "mixed-aiokafka": aio_member, "mixed-librdkafka": native}
    try:
        def split():
            state, protocol, shares = describe(group_broker, group)
            return (state == "Stable" and protocol == "range" and set(shares) == set(members)
                    and all(len(share) == PARTITIONS // len(members) for share in shares.values()))

        wait_until(split, timeout=GROUP_TIMEOUT,
                   what=lambda: f"a 2-each range split: {describe(group_broker, group)}; java: {java.log()}; "
                                f"franz-go: {franz.log()}")
        _, _, shares = describe(group_broker, group)
        assert set().union(*shares.values()) == set(range(PARTITIONS))

        values = [b"mixed-%d" % index for index in range(RECORDS)]
        produce_kafka_python(bootstrap, topic, values, partitions=PARTITIONS)
        wait_until(lambda: sum(len(m.records) for m in members.values()) >= RECORDS, timeout=GROUP_TIMEOUT,
                   what=lambda: {name: len(m.records) for name, m in members.items()})
        time.sleep(1.0)  # anything delivered twice would show up now
        assert describe(group_broker, group)[2] == shares  # no rebalance while they consumed
        consumed = [value for member in members.values() for _, _, value in member.records]
        assert sorted(consumed) == sorted(values)  # each record exactly once
        for name, member in members.items():
            partitions = {partition for partition, _, _ in member.records}
            assert partitions == shares[name], f"{name} consumed {partitions}, was assigned {shares[name]}"
            assert len(member.records) == RECORDS // len(members), name

        # Every library committed its share while in the group (the Java one within its
        # 500 ms auto-commit interval).
        wait_until(lambda: committed_offsets(group_broker, group, topic, PARTITIONS)
                   == {p: RECORDS // PARTITIONS for p in range(PARTITIONS)}, timeout=15,
                   what=lambda: f"all offsets committed: {committed_offsets(group_broker, group, topic, PARTITIONS)}")
    finally:
        for member in members.values():
            try:
                member.stop()
            finally:
                if isinstance(member, LineMember):
                    member.kill()
    state, _, shares = describe(group_broker, group)
    assert state == "Empty" and shares == {}  # every member left
    assert committed_offsets(group_broker, group, topic, PARTITIONS) == {p: RECORDS // PARTITIONS for p in range(PARTITIONS)}
    assert_no_traceback(group_broker)
