"""Consumers keep receiving through what resets their fetch sessions (KIP-227): partitions
removed from and added back to their assignment, purged partitions (DeleteRecords past their
position: OFFSET_OUT_OF_RANGE, then a reset to the new log start), and eager, cooperative and
KIP-848 rebalances, while a producer writes all along.

franz-go (compat/franzgo) drops its in-flight fetch at each of these and restarts its session
with a full fetch naming the old session id with epoch 0; a broker that refused that (as
odradek did) left it resetting in a loop, receiving nothing. The broker logs at debug level
when a full fetch closes a session, so each franz-go test also asserts that its resets happened
and that the broker never answered one with INVALID_FETCH_SESSION_EPOCH (franz-go logs "resetting
fetch session" for that). librdkafka (confluent-kafka 2.16) fetches without sessions: the same
churn checks its sessionless fetches.

Every record produced, except those a purge deleted, must be received within a bounded time.
The franz-go direct consumer and eager group (a few seconds each) run by default; the other
group variants are slow.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer

from broker.test_server import batch_of, create_topic, produce
from compat_scripts import load_compat_script
from odradek.protocol import error_codes as E
from odradek.protocol.messages.delete_records import DeleteRecordsRequest

from .conftest import FAST_GROUPS, BrokerProcess, RawClient, assert_no_traceback
from .test_clients import wait_until
from .test_mixed_clients import LineMember

PARTITIONS = 4
RECEIVE_TIMEOUT = 60.0  # every record, after the churn ends
STEP_TIMEOUT = 45.0  # a rebalance, or records flowing again after a step
STOP_TIMEOUT = 30.0
FREEZE_S = 0.5  # consumers stopped this long fall behind the producer, then the purge passes them
SESSION_CLOSED = "fetch session closed by a full fetch"
INVALID_EPOCH_RESET = "resetting fetch session"


@pytest.fixture(scope="module")
def franzgo_binary():
    return load_compat_script("go_programs").build("franzgo")  # GoUnavailable without go


@pytest.fixture(scope="module")
def session_broker(tmp_path_factory):
    """A broker with fast group settings that logs fetch sessions (debug level)."""
    directory = tmp_path_factory.mktemp("session-broker")
    process = BrokerProcess(directory / "data", FAST_GROUPS, directory / "broker.log", log_level="debug")
    yield process
    code = process.stop()
    assert code == 0, f"broker exited {code}: {process.log()}"
    assert_no_traceback(process)


def sessions_closed_by_full_fetches(broker) -> int:
    with open(broker.log_path, encoding="utf-8", errors="replace") as handle:
        return handle.read().count(SESSION_CLOSED)


class Producer(threading.Thread):
    """Writes one record every few milliseconds, round the partitions, until stopped; remembers
    where each went, and which of them a purge deleted."""

    def __init__(self, broker, topic):
        super().__init__(name="producer", daemon=True)
        self.client = RawClient(broker.host, broker.port)
        self.topic = topic
        self.placed: dict[bytes, tuple[int, int]] = {}  # value: (partition, offset)
        self.log_start = dict.fromkeys(range(PARTITIONS), 0)
        self.failure: BaseException | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def run(self):
        try:
            index = 0
            while not self._stopping.is_set():
                value = b"r-%d" % index
                partition = index % PARTITIONS
                with self._lock:  # one connection, shared with purge()
                    answer = produce(self.client, self.topic, partition, batch_of(value))
                    assert answer.error_code == E.NONE, answer
                    self.placed[value] = (partition, answer.base_offset)
                index += 1
                time.sleep(0.005)
        except BaseException as error:  # reported by stop()
            self.failure = error

    def purge(self, partition: int) -> int:
        """DeleteRecords up to the high watermark; the new log start offset."""
        with self._lock:
            request = DeleteRecordsRequest(timeout_ms=5000, topics=[DeleteRecordsRequest.DeleteRecordsTopic(
                name=self.topic, partitions=[DeleteRecordsRequest.DeleteRecordsTopic.DeleteRecordsPartition(
                    partition_index=partition, offset=-1)])])
            answer = self.client.request(request, 2).topics[0].partitions[0]
            assert answer.error_code == E.NONE, answer
            self.log_start[partition] = answer.low_watermark
            return answer.low_watermark

    def count(self) -> int:
        with self._lock:
            return len(self.placed)

    def expected(self) -> set[bytes]:
        """Every value still in the log."""
        with self._lock:
            return {value for value, (partition, offset) in self.placed.items()
                    if offset >= self.log_start[partition]}

    def stop(self):
        self._stopping.set()
        self.join(STOP_TIMEOUT)
        self.client.close()
        assert not self.is_alive() and self.failure is None, self.failure


class FranzGoConsumer(LineMember):
    """compat/franzgo as a group member (``balancer``) or, without a group, a direct consumer of
    every partition taking remove/add commands. It stops when its standard input closes."""

    def __init__(self, binary, broker, topic, name, log_path, group=None, balancer="range"):
        self.assigned: set[int] = set()
        self.done: list[str] = []
        command = [str(binary), "-bootstrap", broker.bootstrap, "-topic", topic, "-client-id", name]
        command += ["-group", group, "-balancer", balancer] if group else ["-partitions", str(PARTITIONS)]
        super().__init__(command, name, log_path, stdin=subprocess.PIPE)

    def on_line(self, line):
        if line.startswith(b"assigned"):
            self.assigned = {int(p) for p in line[len(b"assigned"):].strip().split(b",") if p}
        elif line.startswith(b"done "):
            self.done.append(line[5:].decode())
        super().on_line(line)

    def parse(self, line):
        if not line.startswith(b"record "):
            return None
        _, partition, offset, value = line.split(b" ", 3)
        return int(partition), int(offset), value

    def command(self, line: str):
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()
        wait_until(lambda: line in self.done, timeout=STEP_TIMEOUT, what=f"{self.name} to apply {line!r}")

    def freeze(self):
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.process.send_signal(signal.SIGCONT)

    def invalid_epoch_resets(self) -> int:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read().count(INVALID_EPOCH_RESET)

    def stop(self):
        self.process.stdin.close()
        code = self.process.wait(STOP_TIMEOUT)
        self.kill()
        assert code == 0, f"{self.name} exited {code}: {self.log()}"


LIBRDKAFKA_PROTOCOLS = {
    "eager": {"partition.assignment.strategy": "range", "session.timeout.ms": 10000, "heartbeat.interval.ms": 200},
    "cooperative": {"partition.assignment.strategy": "cooperative-sticky", "session.timeout.ms": 10000,
                    "heartbeat.interval.ms": 200},
    "kip848": {"group.protocol": "consumer"},
}
FRANZGO_BALANCERS = {"eager": "range", "cooperative": "cooperative-sticky", "kip848": "consumer"}


class LibrdkafkaConsumer(threading.Thread):
    """A confluent-kafka group member polling in its own thread; freeze/thaw pause and resume
    its partitions from that thread."""

    def __init__(self, broker, topic, group, name, protocol):
        super().__init__(name=name, daemon=True)
        self.consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "client.id": name,
                                  "auto.offset.reset": "earliest", **LIBRDKAFKA_PROTOCOLS[protocol]})
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_revoke)
        self.assigned: set[int] = set()
        self.records: list[tuple[int, int, bytes]] = []
        self.failure: BaseException | None = None
        self._commands: queue.Queue = queue.Queue()
        self._stopping = threading.Event()

    def _on_assign(self, consumer, partitions):
        self.assigned |= {tp.partition for tp in partitions}

    def _on_revoke(self, consumer, partitions):
        self.assigned -= {tp.partition for tp in partitions}

    def run(self):
        try:
            while not self._stopping.is_set():
                while not self._commands.empty():
                    action, applied = self._commands.get()
                    action(self.consumer.assignment())
                    applied.set()
                message = self.consumer.poll(0.1)
                if message is not None and message.error() is None:
                    self.records.append((message.partition(), message.offset(), message.value()))
        except BaseException as error:  # reported by stop()
            self.failure = error
        finally:
            self.consumer.close()

    def _apply(self, action):
        applied = threading.Event()
        self._commands.put((action, applied))
        assert applied.wait(STEP_TIMEOUT), f"{self.name} did not apply {action}"

    def freeze(self):
        self._apply(self.consumer.pause)

    def thaw(self):
        self._apply(self.consumer.resume)

    def stop(self):
        self._stopping.set()
        self.join(STOP_TIMEOUT)
        assert not self.is_alive() and self.failure is None, self.failure

    def kill(self):
        pass  # a thread: stop() ended it


def received(*consumers) -> set[bytes]:
    return {value for consumer in consumers for _, _, value in list(consumer.records)}


def wait_for_all(producer, *consumers, timeout=RECEIVE_TIMEOUT):
    expected = producer.expected()
    wait_until(lambda: expected <= received(*consumers), timeout=timeout,
               what=lambda: f"{len(expected - received(*consumers))} of {len(expected)} records, e.g. "
                            f"{sorted(expected - received(*consumers))[:5]}; "
                            + "; ".join(f"{c.name}: {c.log()[-1500:]}" for c in consumers if hasattr(c, "log")))


def wait_for_progress(producer, *consumers, timeout=STEP_TIMEOUT):
    """Records produced from now on reach the consumers (they are not stalled)."""
    start = producer.count()
    wait_until(lambda: producer.count() > start + 2 * PARTITIONS, timeout=timeout, what="the producer")
    wait_for_all(producer, *consumers, timeout=timeout)


def purge_behind(producer, consumers, partition: int) -> None:
    """Stop the consumers, let the producer get ahead, delete everything of ``partition`` up to
    its high watermark (past where they are), and let them go on."""
    for consumer in consumers:
        consumer.freeze()
    try:
        time.sleep(FREEZE_S)
        producer.purge(partition)
    finally:
        for consumer in consumers:
            consumer.thaw()


def test_franzgo_direct_consumer_through_removed_added_and_purged_partitions(
        session_broker, franzgo_binary, tmp_path):
    topic = "sessions-direct"
    client = RawClient(session_broker.host, session_broker.port)
    assert create_topic(client, topic, partitions=PARTITIONS).error_code == E.NONE
    client.close()
    closed_before = sessions_closed_by_full_fetches(session_broker)
    producer = Producer(session_broker, topic)
    consumer = FranzGoConsumer(franzgo_binary, session_broker, topic, "direct", tmp_path / "franz-go.log")
    producer.start()
    try:
        wait_for_progress(producer, consumer)
        consumer.command("remove 1")
        removed_at = producer.count()  # records from this index on were written after the removal
        wait_until(lambda: producer.count() > removed_at + 4 * PARTITIONS, timeout=STEP_TIMEOUT, what="the producer")
        written = producer.count()
        others = {b"r-%d" % i for i in range(written) if i % PARTITIONS != 1}
        wait_until(lambda: others <= received(consumer), timeout=STEP_TIMEOUT,
                   what=lambda: f"partitions 0, 2 and 3: {consumer.log()}")
        assert not {b"r-%d" % i for i in range(removed_at, written) if i % PARTITIONS == 1} & received(consumer)
        consumer.command("add 1")  # from the start: what was written to 1 meanwhile comes too
        wait_for_progress(producer, consumer)
        purge_behind(producer, [consumer], 0)
        wait_for_progress(producer, consumer)
        producer.stop()
        wait_for_all(producer, consumer)
        assert producer.log_start[0] > 0
        assert received(consumer) >= producer.expected()
        assert sessions_closed_by_full_fetches(session_broker) > closed_before  # the resets happened
        assert consumer.invalid_epoch_resets() == 0, consumer.log()
    finally:
        if producer.is_alive():
            producer.stop()
        try:
            consumer.stop()
        finally:
            consumer.kill()
    assert_no_traceback(session_broker)


def run_group_churn(broker, make_member):
    """Member one; member two joins (partitions leave one); a purge behind both; member two
    leaves (its partitions come back to one); then every record."""
    producer = Producer(broker, make_member.topic)
    first = make_member("one")
    members = [first]
    producer.start()
    try:
        wait_for_progress(producer, first)
        second = make_member("two")
        members.append(second)
        wait_until(lambda: first.assigned and second.assigned and first.assigned | second.assigned
                   == set(range(PARTITIONS)) and not first.assigned & second.assigned, timeout=STEP_TIMEOUT,
                   what=lambda: f"a split: one {first.assigned}, two {second.assigned}")
        wait_for_progress(producer, first, second)
        purge_behind(producer, members, 0)
        purge_behind(producer, members, 3)
        wait_for_progress(producer, first, second)
        try:
            second.stop()
        finally:
            second.kill()
            members.remove(second)
        wait_until(lambda: first.assigned == set(range(PARTITIONS)), timeout=STEP_TIMEOUT,
                   what=lambda: f"one to take every partition: {first.assigned}")
        wait_for_progress(producer, first, second)
        producer.stop()
        wait_for_all(producer, first, second)
        assert producer.log_start[0] > 0 and producer.log_start[3] > 0
        return first, second
    finally:
        if producer.is_alive():
            producer.stop()
        for member in members:
            try:
                member.stop()
            finally:
                member.kill()


@pytest.mark.parametrize("protocol", ["eager", pytest.param("cooperative", marks=pytest.mark.slow),
                                      pytest.param("kip848", marks=pytest.mark.slow)])
def test_franzgo_group_through_rebalances_and_purges(session_broker, franzgo_binary, tmp_path, protocol):
    topic, group = f"sessions-franzgo-{protocol}", f"sessions-franzgo-{protocol}-group"
    client = RawClient(session_broker.host, session_broker.port)
    assert create_topic(client, topic, partitions=PARTITIONS).error_code == E.NONE
    client.close()
    closed_before = sessions_closed_by_full_fetches(session_broker)

    def make_member(name):
        return FranzGoConsumer(franzgo_binary, session_broker, topic, name, tmp_path / f"{name}.log", group=group,
                               balancer=FRANZGO_BALANCERS[protocol])
    make_member.topic = topic

    first, second = run_group_churn(session_broker, make_member)
    assert sessions_closed_by_full_fetches(session_broker) > closed_before  # the resets happened
    assert first.invalid_epoch_resets() == second.invalid_epoch_resets() == 0, (first.log(), second.log())
    assert_no_traceback(session_broker)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["eager", "cooperative", "kip848"])
def test_librdkafka_group_through_rebalances_and_purges(session_broker, protocol):
    topic, group = f"sessions-librdkafka-{protocol}", f"sessions-librdkafka-{protocol}-group"
    client = RawClient(session_broker.host, session_broker.port)
    assert create_topic(client, topic, partitions=PARTITIONS).error_code == E.NONE
    client.close()

    def make_member(name):
        member = LibrdkafkaConsumer(session_broker, topic, group, name, protocol)
        member.start()
        return member
    make_member.topic = topic

    run_group_churn(session_broker, make_member)
    assert_no_traceback(session_broker)
