"""Real clients through scripted faults: librdkafka (confluent-kafka), Kafka's Java producer
(compat/FaultProducer.java) and franz-go (compat/franzgo's produce subcommand), each an
idempotent producer sending records to a partition while the broker answers its produce
requests with NOT_LEADER_OR_FOLLOWER, with REQUEST_TIMED_OUT, or drops the connection before or
after handling one. Each client retries through it: every record is acknowledged, the fault
was used up (the client met it), and the partition holds each record exactly once, at the
offset the client was told. TOPIC_AUTHORIZATION_FAILED, which is not retriable, reaches the
application as that error for every record, and nothing is written. A librdkafka consumer reads
every record once, in order, through NOT_LEADER_OR_FOLLOWER, a dropped connection and a delay on
its fetches (which name the topic by id); a librdkafka group member commits through coordinator
errors filtered on its group; a throttled produce reaches librdkafka's throttle_cb.

What each client does on each fault is in docs/testing.md ("Faults")."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from broker.conftest import RawClient
from broker.test_server import create_topic, fetch_request
from compat_scripts import load_compat_script
from odradek import Broker
from odradek.protocol import error_codes as E
from odradek.protocol.messages.create_topics import CreatableTopicConfig
from odradek.protocol.records.batch import iter_batches

REPO = Path(__file__).resolve().parents[2]
JAVA_PROGRAM = REPO / "compat" / "FaultProducer.java"
COUNT = 20
RUN_TIMEOUT = 90.0

# (action, spec) of the faults every client must retry through; the topic is added per test.
RETRIED = {
    "not_leader": ("error", {"api": "Produce", "error": "NOT_LEADER_OR_FOLLOWER", "count": 2}),
    "request_timed_out": ("error", {"api": "Produce", "error": "REQUEST_TIMED_OUT", "count": 2}),
    "dropped_before_handling": ("close_before_response", {"api": "Produce", "count": 1}),
    "dropped_after_handling": ("close_after_response", {"api": "Produce", "count": 1}),
    # Never answered: the client's own request timeout (about 2 s here) fires and it retries.
    "no_response": ("no_response", {"api": "Produce", "count": 1}),
    # The partition has no leader (a leader moving) until a second after the client first saw it
    # so (the test removes the fault then): the client waits for a leader.
    "offline": ("offline", {}),
}
OFFLINE_SECONDS = 1.0
# Every client waits about this long for a produce response (its request timeout).
CLIENT_REQUEST_TIMEOUT_MS = 2000


@dataclass
class Report:
    """What a client said about each record: index -> offset acknowledged, index -> error code
    (None where the client gave no Kafka code)."""

    acked: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    output: str = ""

    def parse(self, text: str, code_column: int) -> "Report":
        self.output = text
        for line in text.splitlines():
            parts = line.split(" ")
            if parts[0] == "ACK":
                self.acked[int(parts[1])] = int(parts[3])
            elif parts[0] == "ERROR":
                code = parts[code_column]
                self.errors[int(parts[1])] = None if code == "-" else int(code)
        assert "DONE" in text.splitlines(), text
        return self


def produce_confluent(bootstrap: str, topic: str, count: int) -> Report:
    from confluent_kafka import Producer

    report = Report()
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "message.timeout.ms": 30000,
                         # A ProduceRequest waits the lesser of this and the first message's
                         # remaining message.timeout.ms (request.timeout.ms is the broker's ack wait).
                         "socket.timeout.ms": CLIENT_REQUEST_TIMEOUT_MS})

    def delivered(index):
        def callback(error, message):
            if error is None:
                report.acked[index] = message.offset()
            else:
                report.errors[index] = error.code()
                report.output += f"{index}: {error}\n"
        return callback
    for index in range(count):
        producer.produce(topic, value=f"value-{index}".encode(), partition=0, on_delivery=delivered(index))
    assert producer.flush(RUN_TIMEOUT) == 0
    return report


@pytest.fixture(scope="module")
def java_program(tmp_path_factory):
    """(classpath, main class): Kafka's jars and FaultProducer compiled once."""
    jars = load_compat_script("kafka_jars").classpath()
    if shutil.which("javac") is None:
        return jars, str(JAVA_PROGRAM)
    classes = tmp_path_factory.mktemp("fault-producer-classes")
    subprocess.run(["javac", "-d", str(classes), "-cp", jars, str(JAVA_PROGRAM)], check=True, capture_output=True,
                   timeout=120)
    return f"{classes}:{jars}", "FaultProducer"


def produce_java(program, bootstrap: str, topic: str, count: int) -> Report:
    classpath, main = program
    command = ["java", "-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", classpath, main,
               bootstrap, topic, str(count), "linger.ms=5", "delivery.timeout.ms=30000",
               f"request.timeout.ms={CLIENT_REQUEST_TIMEOUT_MS}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return Report().parse(result.stdout, code_column=3)


@pytest.fixture(scope="module")
def franzgo_binary():
    return load_compat_script("go_programs").build("franzgo")


def produce_franzgo(binary, bootstrap: str, topic: str, count: int) -> Report:
    command = [str(binary), "produce", "-bootstrap", bootstrap, "-topic", topic, "-count", str(count),
               "-delivery-timeout", "30s", "-metadata-min-age", "250ms",
               # franz-go waits for a produce response its request's timeout plus this overhead.
               "-request-timeout", f"{CLIENT_REQUEST_TIMEOUT_MS // 2}ms",
               "-request-timeout-overhead", f"{CLIENT_REQUEST_TIMEOUT_MS // 2}ms"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return Report().parse(result.stdout, code_column=2)


@pytest.fixture(scope="module")
def broker():
    with Broker({"group.initial.rebalance.delay.ms": 0}) as running:
        yield running


@pytest.fixture
def producer(request, broker):
    """A function (topic, count) -> Report running the client named by the test's parameter."""
    name = request.param
    bootstrap = broker.bootstrap_servers
    if name == "confluent":
        return lambda topic, count: produce_confluent(bootstrap, topic, count)
    if name == "java":
        program = request.getfixturevalue("java_program")
        return lambda topic, count: produce_java(program, bootstrap, topic, count)
    binary = request.getfixturevalue("franzgo_binary")
    return lambda topic, count: produce_franzgo(binary, bootstrap, topic, count)


def partition_values(broker, topic: str, append_times: list | None = None) -> list[tuple[int, bytes]]:
    """(offset, value) of every record in partition 0 of ``topic``; the batches' append times
    (a topic with message.timestamp.type LogAppendTime) added to ``append_times``."""
    client = RawClient(broker.host, broker.port)
    try:
        found = []
        offset = 0
        while True:
            response = client.request(fetch_request(topic, 0, offset), 11)
            data = response.responses[0].partitions[0]
            assert data.error_code == E.NONE
            if not data.records:
                return found
            for batch in iter_batches(bytes(data.records)):
                if append_times is not None:
                    append_times.append(batch.max_timestamp)
                for record in batch.records:
                    found.append((batch.base_offset + record.offset_delta, record.value))
            offset = found[-1][0] + 1
            if offset >= data.high_watermark:
                return found
    finally:
        client.close()


def new_topic(broker, name: str) -> str:
    """A one-partition topic whose batches carry the time the broker appended them."""
    client = RawClient(broker.host, broker.port)
    try:
        assert create_topic(client, name, 1, configs=[CreatableTopicConfig(
            name="message.timestamp.type", value="LogAppendTime")]).error_code == E.NONE
    finally:
        client.close()
    return name


CLIENTS = [
    pytest.param("confluent", id="librdkafka"),
    pytest.param("java", id="java"),
    pytest.param("franzgo", id="franz-go"),
]


def restore_when_seen(broker, fault_id: int, restored: list) -> None:
    """Remove the offline fault OFFLINE_SECONDS after a client's request first showed it (its
    hits), and put the wall-clock time in ms and the fault as it was last in ``restored``."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        if any(item["id"] == fault_id and item["hits"] for item in broker.faults()):
            time.sleep(OFFLINE_SECONDS)
            removed_at = int(time.time() * 1000)
            restored += [removed_at, broker.remove_fault(fault_id)]
            return
        time.sleep(0.02)


@pytest.mark.parametrize("producer", CLIENTS, indirect=True)
@pytest.mark.parametrize("fault", list(RETRIED))
def test_an_idempotent_producer_retries_through_the_fault_and_writes_each_record_once(broker, producer, fault,
                                                                                      request):
    topic = new_topic(broker, f"retry-{fault}-{request.node.callspec.id}".replace("_", "-").replace("[", "-"))
    action, spec = RETRIED[fault]
    added = broker.add_fault(action, topic=topic, **spec)
    restored = []
    if action == "offline":
        threading.Thread(target=restore_when_seen, args=(broker, added["id"], restored), daemon=True).start()
    try:
        report = producer(topic, COUNT)
    finally:
        listed = restored[1] if restored else broker.remove_fault(added["id"])
    assert report.errors == {}, report.output
    assert sorted(report.acked) == list(range(COUNT)), report.output
    append_times = []
    stored = partition_values(broker, topic, append_times)
    if "count" in spec:
        assert listed["hits"] == spec["count"], listed  # the client met the fault, every time it could
    else:  # the client saw the partition offline, and wrote nothing before it was back
        assert listed["hits"] >= 1 and restored, listed
        assert min(append_times) >= restored[0], (append_times, restored[0])
    values = [value for _, value in stored]
    assert sorted(values) == sorted(f"value-{index}".encode() for index in range(COUNT)), values  # each once
    by_offset = dict(stored)
    assert all(by_offset[offset] == f"value-{index}".encode() for index, offset in report.acked.items())


@pytest.mark.parametrize("producer", CLIENTS, indirect=True)
def test_a_non_retriable_error_reaches_the_application(broker, producer, request):
    topic = new_topic(broker, f"denied-{request.node.callspec.id}".replace("_", "-"))
    added = broker.add_fault("error", api="Produce", error="TOPIC_AUTHORIZATION_FAILED", topic=topic)
    began = time.monotonic()
    try:
        report = producer(topic, 3)
    finally:
        listed = broker.remove_fault(added["id"])
    assert report.acked == {}, report.output
    assert report.errors == {index: E.TOPIC_AUTHORIZATION_FAILED for index in range(3)}, report.output
    assert listed["hits"] >= 1
    assert time.monotonic() - began < 30  # failed at once, not after the delivery timeout
    assert partition_values(broker, topic) == []



@pytest.mark.parametrize("fault", [
    ("error", {"api": "Fetch", "error": "NOT_LEADER_OR_FOLLOWER", "count": 2}),
    ("close_before_response", {"api": "Fetch", "count": 1}),
    ("delay", {"api": "Fetch", "delay_ms": 1000, "count": 1}),
], ids=["not_leader", "dropped", "delayed"])
def test_a_librdkafka_consumer_reads_each_record_once_through_fetch_faults(broker, fault):
    from confluent_kafka import Consumer, TopicPartition

    action, spec = fault
    topic = new_topic(broker, f"consume-{action}-{spec.get('error', '')}".replace("_", "-").rstrip("-"))
    assert produce_confluent(broker.bootstrap_servers, topic, COUNT).errors == {}
    added = broker.add_fault(action, topic=topic, **spec)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": f"{topic}-group",
                         "enable.auto.commit": False, "socket.timeout.ms": CLIENT_REQUEST_TIMEOUT_MS})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while len(values) < COUNT and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None:
                assert message.error() is None, message.error()
                values.append(message.value())
    finally:
        consumer.close()
        listed = broker.remove_fault(added["id"])
    assert values == [f"value-{index}".encode() for index in range(COUNT)]  # in order, each once
    assert listed["hits"] == spec["count"], listed


def test_a_librdkafka_group_member_commits_through_coordinator_errors_for_its_group(broker):
    """Faults filtered on the group id: the coordinator lookup answered COORDINATOR_NOT_AVAILABLE
    and the first commit NOT_COORDINATOR; the member looks the coordinator up again, and its
    synchronous commit succeeds without the application seeing the error."""
    from confluent_kafka import Consumer, TopicPartition

    topic = new_topic(broker, "group-faults")
    assert produce_confluent(broker.bootstrap_servers, topic, COUNT).errors == {}
    group = "faulty-group"
    since = max((event["seq"] for event in broker.activity()), default=0)
    lookup = broker.add_fault("error", api="FindCoordinator", error="COORDINATOR_NOT_AVAILABLE", count=1, group=group)
    commit = broker.add_fault("error", api="OffsetCommit", error="NOT_COORDINATOR", count=1, group=group)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        values = []
        deadline = time.monotonic() + RUN_TIMEOUT
        while len(values) < COUNT and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None:
                assert message.error() is None, message.error()
                values.append(message.value())
        assert len(values) == COUNT
        committed = consumer.commit(asynchronous=False)  # retried inside librdkafka: no error here
        assert [(tp.partition, tp.offset) for tp in committed] == [(0, COUNT)]
        assert [tp.offset for tp in consumer.committed([TopicPartition(topic, 0)], timeout=10)] == [COUNT]
    finally:
        consumer.close()
    assert broker.remove_fault(lookup["id"])["hits"] == 1
    assert broker.remove_fault(commit["id"])["hits"] == 1
    answered = [(event["api"], event["errors"]) for event in broker.activity(since)
                if event["api"] in ("FindCoordinator", "OffsetCommit")]
    assert answered[0] == ("FindCoordinator", ["COORDINATOR_NOT_AVAILABLE"])
    commits = [errors for api, errors in answered if api == "OffsetCommit"]
    assert commits == [["NOT_COORDINATOR"], []]  # librdkafka retried the commit itself


def test_librdkafka_reports_a_throttled_produce_and_holds_back(broker):
    """A throttle fault on Produce: librdkafka's throttle_cb reports the broker's throttle time,
    and it sends that broker nothing more until the time is over (KIP-219)."""
    from confluent_kafka import Producer

    topic = new_topic(broker, "throttled")
    throttles = []
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 0,
                         "throttle_cb": lambda event: throttles.append(event.throttle_time)})
    fault = broker.add_fault("throttle", api="Produce", throttle_ms=1500, count=1, topic=topic)
    acked = []
    producer.produce(topic, value=b"first", partition=0, on_delivery=lambda error, message: acked.append(error))
    assert producer.flush(RUN_TIMEOUT) == 0
    began = time.monotonic()
    producer.produce(topic, value=b"second", partition=0, on_delivery=lambda error, message: acked.append(error))
    assert producer.flush(RUN_TIMEOUT) == 0
    held_back = time.monotonic() - began
    producer.poll(0)  # serves the throttle callback
    assert acked == [None, None]
    assert throttles and abs(throttles[0] - 1.5) < 0.01, throttles  # librdkafka reports seconds
    assert held_back >= 1.0, held_back  # the second produce waited out (most of) the throttle
    assert broker.remove_fault(fault["id"])["hits"] == 1
