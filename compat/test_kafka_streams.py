"""A Kafka Streams application with ``processing.guarantee=exactly_once_v2`` (kafka-streams
4.4.0 from Maven Central, compat/kafka_jars.py) against a real ``odradek serve``.

compat/ExactlyOnceWordCount.java counts input records per word: it re-keys each record by its
value (a repartition topic), counts in a RocksDB store backed by a changelog topic, and writes
every new count to an output topic, one output record per input record (no record cache). Read
with read_committed, the output of a word must then be exactly 1, 2, ..., n for n input records
of that word: a record counted twice shows as a repeated or skipped number, a lost one as a
final count short of n, an aborted transaction that leaked as anything else.

The input arrives in four parts, around two faults:

1. the first part is counted by a fresh application;
2. the second part is produced while the application runs; the application is killed with
   SIGKILL in the middle (its transaction open) and started again on the same state directory;
3. the third part is produced and the broker is stopped and started again on the same data
   directory and port while the application is counting it;
4. the fourth part is produced once the broker is back.

After each part the committed output must be exact. The same scenario was run against a Kafka
4.4.0 broker (``running_kafka`` of compat/test_same_answers_as_kafka.py, by hand).

Slow (the JVM, RocksDB, a rebalance and a store restored from its changelog after each fault:
about 25 s against odradek, as against Kafka). Java and Maven are required: without them the
fixture fails (no skip). Kafka Streams needs TxnOffsetCommit with transaction version 2's
implicit add of the group's offsets partition.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "compat"))
sys.path.insert(0, str(REPO / "tests"))
from broker.conftest import BrokerProcess  # noqa: E402
from program_process import ProgramProcess  # noqa: E402
import test_kafka_cli  # noqa: E402

pytestmark = pytest.mark.slow

PROGRAM = REPO / "compat" / "ExactlyOnceWordCount.java"
WORDS = [f"word-{index}" for index in range(7)]
PARTITIONS = 3
# How long a step may take on a loaded two-core machine (a rebalance after a crash waits for
# the dead member's session, 6 s here, then restores the store from its changelog).
STEP_TIMEOUT = 120.0
# The application's settings beyond the program's own: a dead member leaves the group after 6 s.
APPLICATION_SETTINGS = ("consumer.session.timeout.ms=6000", "consumer.heartbeat.interval.ms=1000")
BROKER_SETTINGS = ("group.initial.rebalance.delay.ms=0", "transaction.state.log.num.partitions=4",
                   "offsets.topic.num.partitions=4")

kafka_jars = test_kafka_cli.kafka_jars  # the fixture: Kafka's jars fetched once


@pytest.fixture(scope="module")
def streams_program(kafka_jars, tmp_path_factory):
    """(classpath, main class, log4j2 configuration): the application compiled once with javac,
    or without javac the source file itself (the java launcher compiles it at each start)."""
    jars = kafka_jars.classpath()
    log_config = kafka_jars.home() / "log4j2.properties"
    if shutil.which("javac") is None:
        return jars, str(PROGRAM), log_config
    classes = tmp_path_factory.mktemp("streams-classes")
    subprocess.run(["javac", "-d", str(classes), "-cp", jars, str(PROGRAM)], check=True, capture_output=True,
                   timeout=120)
    return f"{classes}:{jars}", PROGRAM.stem, log_config


class StreamsApplication(ProgramProcess):
    """One run of the application; its STATE/ERROR/CLOSED lines are kept (shown on a failure)."""

    def __init__(self, program, bootstrap, application_id, state_dir, log_path):
        classpath, main, log_config = program
        command = [shutil.which("java") or "java", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                   f"-Dlog4j2.configurationFile={log_config}", "-cp", classpath, main,
                   bootstrap, application_id, "words", "counts", str(state_dir), *APPLICATION_SETTINGS]
        self.lines: list[str] = []
        super().__init__(command, f"streams-{application_id}", log_path, stdin=subprocess.PIPE)

    def on_line(self, line: bytes) -> None:
        self.lines.append(line.decode(errors="replace"))

    def close(self) -> None:
        """A clean close ("stop" on stdin)."""
        self.process.stdin.write(b"stop\n")
        self.process.stdin.flush()
        self.process.wait(60)
        assert "CLOSED" in self.lines, self.describe()
        self.kill()  # releases the pipes

    def kill(self) -> None:
        super().kill()
        self.process.stdin.close()

    def describe(self) -> str:
        return "\n".join(self.lines[-20:]) + "\n--- log:\n" + self.log()


class InputProducer:
    """Input records (value: a word) through kafka-python's idempotent producer; counts what
    was acknowledged per word."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.producer = None
        self.sent: Counter[str] = Counter()
        self.random = random.Random(7)

    def send(self, count: int, per_second: float | None = None) -> None:
        if self.producer is None:
            self.producer = KafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all",
                                          linger_ms=5)
        for _ in range(count):
            word = self.random.choice(WORDS)
            self.producer.send("words", key=f"r{sum(self.sent.values())}".encode(), value=word.encode()).get(30)
            self.sent[word] += 1
            if per_second:
                time.sleep(1 / per_second)

    def close(self) -> None:
        """Close the producer (a later send opens a new one)."""
        if self.producer is not None:
            self.producer.close(10)
            self.producer = None


def committed_output(bootstrap: str) -> dict[str, list[int]]:
    """Every count the output topic holds for each word, in order, as read_committed reads it
    (up to the last stable offset)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, consumer_timeout_ms=1000)
    try:
        partitions = [TopicPartition("counts", index) for index in range(PARTITIONS)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        counts: dict[str, list[int]] = {}
        deadline = time.monotonic() + 30
        while any(consumer.position(partition) < ends[partition] for partition in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read the output up to {ends}")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    counts.setdefault(record.key.decode(), []).append(int(record.value.decode()))
        return counts
    finally:
        consumer.close()


def wait_exact(bootstrap: str, sent: Counter, application: StreamsApplication, what: str) -> dict:
    """Wait until the last count of every word is the number of its input records; then the
    whole output must be 1..n per word (never a count twice, never one skipped)."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        output = committed_output(bootstrap)
        if {word: counts[-1] for word, counts in output.items()} == dict(sent):
            break
        for word, counts in output.items():
            assert counts[-1] <= sent[word], f"{what}: {word} counted {counts[-1]} > {sent[word]} records"
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: the output did not reach {dict(sent)}; last counts "
                                 f"{ {word: counts[-1] for word, counts in output.items()} }\n{application.describe()}")
        time.sleep(0.5)
    assert output == {word: list(range(1, count + 1)) for word, count in sent.items()}, what
    return output


def exactly_once_scenario(program, bootstrap: str, work: Path, restart_broker) -> None:
    """The four parts (module docstring) against the broker at ``bootstrap``;
    ``restart_broker()`` stops and starts it on the same data directory and port."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in ("words", "counts")])
    finally:
        admin.close()
    state_dir = work / "streams-state"
    runs = iter(range(1, 10))

    def start() -> StreamsApplication:
        return StreamsApplication(program, bootstrap, "eos-word-count", state_dir, work / f"streams-{next(runs)}.log")

    inputs = InputProducer(bootstrap)
    application = start()
    try:
        inputs.send(150)
        wait_exact(bootstrap, inputs.sent, application, "the first part")

        # SIGKILL while input arrives and a transaction is open, then start again.
        base = sum(inputs.sent.values())
        feeding = threading.Thread(target=inputs.send, args=(300, 40.0))
        feeding.start()
        deadline = time.monotonic() + STEP_TIMEOUT
        # Killed once it has committed some of this part, while the rest arrives (or, on a
        # machine too slow for that, once the part is all sent).
        while (sum(counts[-1] for counts in committed_output(bootstrap).values()) < base + 40
               and feeding.is_alive()):
            assert time.monotonic() < deadline, application.describe()
            time.sleep(0.2)
        application.kill()
        application = start()
        feeding.join()
        wait_exact(bootstrap, inputs.sent, application, "the second part, across a SIGKILL of the application")

        # The broker stops and starts again while the application counts the third part.
        inputs.send(150)
        inputs.close()
        restart_broker()
        wait_exact(bootstrap, inputs.sent, application, "the third part, across a broker restart")

        inputs.send(100)
        wait_exact(bootstrap, inputs.sent, application, "the fourth part")
        application.close()
    finally:
        inputs.close()
        application.kill()


def test_exactly_once_count_across_application_and_broker_restarts(streams_program, tmp_path):
    settings = BROKER_SETTINGS
    broker = BrokerProcess(tmp_path / "data", settings, tmp_path / "broker.log")
    # Later starts take the first one's port, so that the clients find the broker again.
    settings += (f"listeners=PLAINTEXT://127.0.0.1:{broker.port}",)
    brokers = [broker]

    def restart_broker() -> None:
        assert brokers[-1].stop() == 0, brokers[-1].log()
        brokers.append(BrokerProcess(tmp_path / "data", settings, tmp_path / "broker.log"))

    try:
        exactly_once_scenario(streams_program, broker.bootstrap, tmp_path, restart_broker)
    finally:
        log = brokers[-1].full_log()
        code = brokers[-1].stop()
    assert code == 0 and "Traceback" not in log, log[-6000:]
