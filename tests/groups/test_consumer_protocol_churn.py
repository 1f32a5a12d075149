"""Churn with the KIP-848 consumer protocol (slow): librdkafka members (``group.protocol=consumer``,
each its own process) join, leave cleanly and are SIGKILLed at random for a minute while a
producer writes. Every acknowledged record is consumed at least once, no committed offset ever
moves backwards (a watcher polls OffsetFetch), the group settles afterwards with every partition
owned by exactly one member, and the broker logs no traceback."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from broker.test_server import create_topic  # noqa: E402
from odradek.protocol.messages.consumer_group_describe import ConsumerGroupDescribeRequest  # noqa: E402
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestTopic  # noqa: E402

from .conftest import BrokerProcess, RawClient, assert_no_traceback  # noqa: E402

pytestmark = pytest.mark.slow

PARTITIONS = 6
CHURN_SECONDS = 60
BROKER_SETTINGS = ("group.consumer.heartbeat.interval.ms=500", "group.consumer.min.heartbeat.interval.ms=500",
                   "group.consumer.session.timeout.ms=6000", "group.consumer.min.session.timeout.ms=6000")

# One member: consumes, prints "R <partition> <offset> <value>" per record, commits after each.
MEMBER = """
import sys, signal
from confluent_kafka import Consumer, KafkaException
bootstrap, group, topic = sys.argv[1:4]
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False, "log_level": 0})
consumer.subscribe([topic])
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
while not stopping:
    message = consumer.poll(0.2)
    if message is None or message.error():
        continue
    print("R", message.partition(), message.offset(), message.value().decode(), flush=True)
    try:
        consumer.commit(message, asynchronous=False)
    except KafkaException as error:  # e.g. STALE_MEMBER_EPOCH mid-rebalance: the record comes again
        print("COMMIT-FAILED", error, flush=True)
consumer.close()
print("CLOSED", flush=True)
"""


class Member:
    def __init__(self, bootstrap, group, topic):
        self.process = subprocess.Popen([sys.executable, "-c", MEMBER, bootstrap, group, topic],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.values: list[str] = []
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        threading.Thread(target=lambda: self.errors.extend(self.process.stderr), daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.strip())
            if line.startswith("R "):
                self.values.append(line.split(" ", 3)[3].strip())

    def leave(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        self._reader.join(5)
        assert "CLOSED" in self.lines, "".join(self.errors)[-3000:]

    def crash(self):
        self.process.kill()
        self.process.wait()
        self._reader.join(5)


def _committed(client, group, topic):
    answer = client.request(OffsetFetchRequest(group_id=group, topics=[
        OffsetFetchRequestTopic(name=topic, partition_indexes=list(range(PARTITIONS)))]), 7)
    return {p.partition_index: p.committed_offset for p in answer.topics[0].partitions}


def test_members_churn_and_nothing_is_lost_or_goes_back(tmp_path):
    broker = BrokerProcess(tmp_path / "data", BROKER_SETTINGS, tmp_path / "broker.log")
    topic, group = "churn848", "churn848-group"
    client = RawClient(broker.host, broker.port)
    assert create_topic(client, topic, partitions=PARTITIONS).error_code == 0
    rng = random.Random(848)
    members: list[Member] = []
    gone: list[Member] = []
    acknowledged: list[str] = []
    backwards: list[tuple] = []
    stop = threading.Event()

    def produce():
        producer = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap, "log_level": 0})
        index = 0
        while not stop.is_set():
            value = f"v{index}"
            producer.produce(topic, value=value.encode(), partition=index % PARTITIONS,
                             on_delivery=lambda error, message, value=value: error is None and acknowledged.append(value))
            producer.poll(0)
            index += 1
            time.sleep(0.01)
        producer.flush(30)

    def watch():
        watcher = RawClient(broker.host, broker.port)
        last: dict[int, int] = {}
        while not stop.is_set():
            for partition, offset in _committed(watcher, group, topic).items():
                if offset < last.get(partition, -1):
                    backwards.append((partition, last[partition], offset))
                last[partition] = max(last.get(partition, -1), offset)
            time.sleep(0.1)
        watcher.close()

    threads = [threading.Thread(target=produce), threading.Thread(target=watch)]
    for thread in threads:
        thread.start()
    try:
        members = [Member(broker.bootstrap, group, topic) for _ in range(3)]
        deadline = time.monotonic() + CHURN_SECONDS
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(1.0, 4.0))
            action = rng.choice(["join", "leave", "crash"]) if len(members) > 1 else "join"
            if action == "join" or len(members) < 2:
                members.append(Member(broker.bootstrap, group, topic))
            else:
                member = members.pop(rng.randrange(len(members)))
                member.leave() if action == "leave" else member.crash()
                gone.append(member)
        stop.set()
        for thread in threads:
            thread.join(60)
        # The survivors read everything that was acknowledged, at least once.
        deadline = time.monotonic() + 90
        everyone = members + gone
        while time.monotonic() < deadline:
            seen = {value for member in everyone for value in member.values}
            if set(acknowledged) <= seen:
                break
            time.sleep(0.5)
        missing = set(acknowledged) - {value for member in everyone for value in member.values}
        assert not missing, f"{len(missing)} acknowledged records never consumed, e.g. {sorted(missing)[:5]}"
        assert not backwards, backwards
        failed_commits = [line for member in everyone for line in member.lines if line.startswith("COMMIT-FAILED")]
        print(f"{len(acknowledged)} records, {len(gone)} members gone, {len(failed_commits)} commits refused:",
              sorted({line.split(' ', 1)[1][:80] for line in failed_commits})[:5])
        described = client.request(ConsumerGroupDescribeRequest(group_ids=[group]), 0).groups[0]
        deadline = time.monotonic() + 30
        while described.group_state != "Stable" and time.monotonic() < deadline:  # crashed ones time out
            time.sleep(0.5)
            described = client.request(ConsumerGroupDescribeRequest(group_ids=[group]), 0).groups[0]
        assert described.group_state == "Stable" and len(described.members) == len(members)
        owned = sorted(p for m in described.members for tp in m.assignment.topic_partitions for p in tp.partitions)
        assert owned == list(range(PARTITIONS))
    finally:
        stop.set()
        for member in members:
            if member.process.poll() is None:
                member.crash()
        client.close()
        assert_no_traceback(broker)
        assert broker.stop() == 0
