"""Churn: librdkafka consumers join, leave and are killed (SIGKILL) at random for two minutes
while a producer writes. Every record is consumed at least once, and no committed offset ever
moves backwards (a watcher polls OffsetFetch all along). Slow.

The seed of the random choices is printed in every failure (set ODRADEK_CHURN_SEED to replay
the same sequence of actions; the timings still differ from run to run)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from kafka import KafkaProducer

from broker.test_server import create_topic
from odradek.protocol import error_codes as E
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestTopic

from .conftest import RawClient, assert_no_traceback

pytestmark = pytest.mark.slow

PARTITIONS = 6
CHURN_SECONDS = 120  # issue 5: "for two minutes"
MAX_MEMBERS = 4
DRAIN_SECONDS = 90  # after the churn: the survivors must finish the backlog and commit its end
LEAVE_SECONDS = 20  # a member told to leave must have closed by then
WATCH_INTERVAL = 0.1

MEMBER = """
import signal, sys
from confluent_kafka import Consumer, KafkaException, TopicPartition
bootstrap, group, topic, out, strategy = sys.argv[1:6]
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "session.timeout.ms": 3000, "heartbeat.interval.ms": 300,
                     "partition.assignment.strategy": strategy})
# partition -> the offset to commit: a commit refused in a rebalance (REBALANCE_IN_PROGRESS,
# ILLEGAL_GENERATION) is retried while the partition stays ours, as cooperative-sticky keeps
# it; a revoked partition is forgotten (its next owner reads from the last commit again).
pending = {}
consumer.subscribe([topic], on_revoke=lambda _, partitions: [pending.pop(tp.partition, None) for tp in partitions])
with open(out, "a") as sink:
    while not stopping:
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            sink.write(message.value().decode() + "\\n")
            sink.flush()  # written before it is committed: at least once
            pending[message.partition()] = message.offset() + 1
        if pending:
            try:
                consumer.commit(offsets=[TopicPartition(topic, partition, offset) for partition, offset in pending.items()],
                                asynchronous=False)
                pending.clear()
            except KafkaException:
                pass
consumer.close()  # LeaveGroup
"""


class Producer(threading.Thread):
    """Writes "0", "1", ... round-robin over the partitions, ~100 a second, and remembers what
    the broker acknowledged: value i lands in partition i % PARTITIONS."""

    def __init__(self, bootstrap, topic):
        super().__init__(name="churn-producer", daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.acknowledged: set[str] = set()
        self.end_offsets: dict[int, int] = {}
        self.failures: list[BaseException] = []
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._running.set()

    def run(self):
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, acks="all")
        index = 0
        try:
            while self._running.is_set():
                value = str(index)
                future = producer.send(self.topic, value=value.encode(), partition=index % PARTITIONS)
                future.add_callback(self._acknowledged, value)
                future.add_errback(self.failures.append)
                index += 1
                time.sleep(0.01)
            producer.flush(30)
        finally:
            producer.close(10)

    def _acknowledged(self, value, metadata):
        with self._lock:
            self.acknowledged.add(value)
            self.end_offsets[metadata.partition] = max(self.end_offsets.get(metadata.partition, 0), metadata.offset + 1)

    def stop(self):
        self._running.clear()
        self.join(60)
        assert not self.is_alive(), "the producer did not finish"


class CommitWatcher(threading.Thread):
    """Polls the group's committed offsets with OffsetFetch and records every backward move."""

    def __init__(self, broker, group, topic):
        super().__init__(name="commit-watcher", daemon=True)
        self.client = RawClient(broker.host, broker.port)
        self.group, self.topic = group, topic
        self.highest: dict[int, int] = {}
        self.backward: list[str] = []
        self.errors: list[str] = []
        self.polls = 0
        self._running = threading.Event()
        self._running.set()

    def run(self):
        try:
            while self._running.is_set():
                self.poll()
                time.sleep(WATCH_INTERVAL)
        except BaseException as error:  # reported by the test
            self.errors.append(repr(error))

    def poll(self):
        answer = self.client.request(OffsetFetchRequest(group_id=self.group, topics=[
            OffsetFetchRequestTopic(name=self.topic, partition_indexes=list(range(PARTITIONS)))]), 7)
        self.polls += 1
        if answer.error_code != E.NONE:
            self.errors.append(f"OffsetFetch error {answer.error_code}")
            return
        for partition in answer.topics[0].partitions:
            index, offset = partition.partition_index, partition.committed_offset
            if partition.error_code != E.NONE:
                self.errors.append(f"partition {index}: error {partition.error_code}")
            elif offset < self.highest.get(index, -1):
                self.backward.append(f"partition {index}: {self.highest[index]} -> {offset}")
            else:
                self.highest[index] = offset

    def stop(self):
        self._running.clear()
        self.join(15)
        self.client.close()


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_churn_every_record_at_least_once_and_offsets_never_go_back(group_broker, tmp_path, strategy):
    """Eager (range: every rebalance revokes everything) and incremental (cooperative-sticky,
    KIP-429: two rebalances in a row, unaffected partitions stay) rebalancing."""
    topic, group = f"churn-{strategy}", f"churn-group-{strategy}"
    setup = RawClient(group_broker.host, group_broker.port)
    assert create_topic(setup, topic, partitions=PARTITIONS).error_code == E.NONE
    setup.close()
    seed = int(os.environ.get("ODRADEK_CHURN_SEED") or random.randrange(1 << 32))
    randomness = random.Random(seed)
    script = tmp_path / "member.py"
    script.write_text(MEMBER)
    members: list[subprocess.Popen] = []
    outputs = []
    leaving: dict[subprocess.Popen, float] = {}  # member -> when it was told to leave
    error_files = []
    actions = {"start": 0, "leave": 0, "kill": 0}

    def start_member():
        number = len(outputs)
        outputs.append(tmp_path / f"consumed-{number}.txt")
        error_files.append(open(tmp_path / f"member-{number}.err", "wb"))
        members.append(subprocess.Popen(
            [sys.executable, str(script), group_broker.bootstrap, group, topic, str(outputs[-1]), strategy],
            stdout=subprocess.DEVNULL, stderr=error_files[-1]))
        actions["start"] += 1

    def consumed() -> set[str]:
        values: set[str] = set()
        for out in outputs:
            if out.exists():
                values.update(line for line in out.read_text().splitlines() if line)
        return values

    def context() -> str:
        return f"seed {seed}, actions {actions}, {watcher.polls} offset polls, highest {watcher.highest}"

    producer = Producer(group_broker.bootstrap, topic)
    watcher = CommitWatcher(group_broker, group, topic)
    producer.start()
    watcher.start()
    start_member()
    start_member()
    try:
        deadline = time.monotonic() + CHURN_SECONDS
        while time.monotonic() < deadline:
            time.sleep(randomness.uniform(0.5, 2.0))
            active = [m for m in members if m.poll() is None and m not in leaving]
            action = randomness.choice(["start", "leave", "kill"])
            if len(active) < 2 or (action == "start" and len(active) < MAX_MEMBERS):
                start_member()
            elif action == "leave":
                member = randomness.choice(active)
                member.send_signal(signal.SIGTERM)  # close(): LeaveGroup, an immediate rebalance
                leaving[member] = time.monotonic()
                actions["leave"] += 1
            elif action == "kill":
                member = randomness.choice(active)
                member.kill()  # no goodbye: only the session timeout tells
                actions["kill"] += 1
            overdue = [m for m, since in leaving.items() if m.poll() is None and time.monotonic() - since > LEAVE_SECONDS]
            assert not overdue, f"{len(overdue)} members did not close within {LEAVE_SECONDS}s ({context()})"
        producer.stop()
        assert not producer.failures, f"produce failed: {producer.failures[:3]}"
        expected = producer.acknowledged
        assert len(expected) > CHURN_SECONDS * 20  # the producer kept writing through the churn
        if sum(1 for m in members if m.poll() is None and m not in leaving) < 2:
            start_member()
        finish = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < finish and not (expected <= consumed() and watcher.highest == producer.end_offsets):
            time.sleep(0.5)
        watcher.stop()
        missing = expected - consumed()
        assert not missing, f"{len(missing)} of {len(expected)} records never consumed ({context()})"
        assert not watcher.backward, f"committed offsets moved backwards: {watcher.backward[:5]} ({context()})"
        assert not watcher.errors, f"OffsetFetch failed: {watcher.errors[:5]} ({context()})"
        # The group's progress reached the end of every partition.
        assert watcher.highest == producer.end_offsets, context()
        assert all(count > 0 for count in actions.values()), context()
        for member in leaving:  # a member that left closed cleanly (killed ones exit -9)
            assert member.wait(LEAVE_SECONDS) == 0, f"a leaving member exited {member.returncode} ({context()})"
        duplicates = sum(len(out.read_text().splitlines()) for out in outputs if out.exists()) - len(expected)
        print(f"churn: {len(expected)} records, {duplicates} read again after rebalances; {context()}")
    finally:
        producer.stop()
        watcher.stop()
        for member in members:
            if member.poll() is None:
                member.kill()
            member.wait()
        for handle in error_files:
            handle.close()
    assert_no_traceback(group_broker)
