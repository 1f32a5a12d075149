"""A consume-transform-produce pipeline (tests/broker/exactly_once_app.py, librdkafka) while
both the application and the broker are killed with SIGKILL at random points, again and
again, and input keeps arriving: at the end the output topic, read with read_committed, holds
every input record exactly once, in input order per key."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from .conftest import BrokerProcess, subprocess_env

APP = Path(__file__).with_name("exactly_once_app.py")
INPUT, OUTPUT, GROUP, TRANSACTIONAL_ID = "eo-input", "eo-output", "eo-app", "eo-app-txn"
KEYS = 12
OVERRIDES = ("transaction.abort.timed.out.transaction.cleanup.interval.ms=1000",
             "transaction.state.log.num.partitions=4", "offsets.topic.num.partitions=4",
             "group.initial.rebalance.delay.ms=0", "num.partitions=3")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Pipeline:
    def __init__(self, tmp_path: Path, seed: int):
        self.tmp_path = tmp_path
        self.random = random.Random(seed)
        self.data_dir = tmp_path / "data"
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.broker = None
        self.app = None
        self.starts = 0

    def start_broker(self) -> None:
        self.starts += 1
        self.broker = BrokerProcess(self.data_dir, OVERRIDES + (f"listeners=PLAINTEXT://127.0.0.1:{self.port}",),
                                    self.tmp_path / f"broker{self.starts}.log")

    def start_app(self) -> None:
        self.app = subprocess.Popen([sys.executable, str(APP), self.bootstrap, INPUT, OUTPUT, GROUP, TRANSACTIONAL_ID],
                                    stdout=subprocess.DEVNULL, stderr=open(self.tmp_path / "app.log", "ab"),
                                    env=subprocess_env())

    def kill_app(self) -> None:
        if self.app is not None and self.app.poll() is None:
            self.app.send_signal(signal.SIGKILL)
        if self.app is not None:
            self.app.wait()

    def committed_lag(self) -> int | None:
        """Input records the group has not committed yet (None if the broker does not answer)."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": GROUP, "enable.auto.commit": False})
        try:
            partitions = [TopicPartition(INPUT, index) for index in range(3)]
            committed = consumer.committed(partitions, timeout=5)
            lag = 0
            for partition in committed:
                _, high = consumer.get_watermark_offsets(TopicPartition(INPUT, partition.partition), timeout=5)
                lag += high - max(partition.offset, 0)
            return lag
        except Exception:  # noqa: BLE001 - a broker that is restarting answers nothing useful
            return None
        finally:
            consumer.close()


def feed_input(bootstrap: str, stop: threading.Event, sent: list) -> None:
    """Input records, key k<i> with a per-key counter, until ``stop``; the topic's content is
    the truth the output is compared with, so records lost with a killed broker do not matter."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5,
                         "message.timeout.ms": 60000})
    counter = 0
    while not stop.is_set():
        key = counter % KEYS
        producer.produce(INPUT, key=b"k%d" % key, value=b"%d" % counter)
        counter += 1
        producer.poll(0)
        time.sleep(0.004)
    producer.flush(60)
    sent.append(counter)


def read_all(bootstrap: str, topic: str, committed: bool) -> dict[bytes, list[bytes]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{topic}-{time.monotonic_ns()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed" if committed else "read_uncommitted"})
    partitions = [TopicPartition(topic, index, 0) for index in range(3)]
    ends = {index: consumer.get_watermark_offsets(TopicPartition(topic, index), timeout=10)[1] for index in range(3)}
    consumer.assign(partitions)
    by_key: dict[bytes, list[bytes]] = {}
    deadline = time.monotonic() + 60
    done = set()
    while len(done) < 3 and time.monotonic() < deadline:
        for message in consumer.consume(500, 0.5):
            if message.error():
                continue
            by_key.setdefault(message.key(), []).append(message.value())
        for index in range(3):
            position = consumer.position([TopicPartition(topic, index)])[0].offset
            if position >= ends[index] or (ends[index] == 0):
                done.add(index)
        if not consumer.assignment():
            break
    consumer.close()
    return by_key


def run(tmp_path: Path, rounds: int, seed: int, victims: tuple[str, ...] = ()) -> None:
    """``rounds`` rounds of: start the application, let it run a random while, kill the
    application, the broker or both (``victims`` names the first ones; the rest at random)."""
    pipeline = Pipeline(tmp_path, seed)
    pipeline.start_broker()
    stop, sent = threading.Event(), []
    feeder = threading.Thread(target=feed_input, args=(pipeline.bootstrap, stop, sent), daemon=True)
    feeder.start()
    try:
        for round_ in range(rounds):
            pipeline.start_app()
            time.sleep(pipeline.random.uniform(0.5, 3.0))
            victim = victims[round_] if round_ < len(victims) else pipeline.random.choice(["app", "broker", "both"])
            if victim in ("broker", "both"):
                pipeline.broker.kill()
                time.sleep(pipeline.random.uniform(0, 0.5))
                pipeline.start_broker()
            if victim in ("app", "both"):
                pipeline.kill_app()
            else:
                time.sleep(pipeline.random.uniform(0.5, 2.0))  # the app lives through the broker's restart
                pipeline.kill_app()
        stop.set()
        feeder.join(90)
        assert sent, "the input feeder did not finish"
        pipeline.start_app()
        deadline = time.monotonic() + 90
        while (lag := pipeline.committed_lag()) != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert lag == 0, f"the application did not catch up (lag {lag}): {(tmp_path / 'app.log').read_text()[-3000:]}"
        pipeline.kill_app()
        inputs = read_all(pipeline.bootstrap, INPUT, committed=False)
        outputs = read_all(pipeline.bootstrap, OUTPUT, committed=True)
        assert sum(map(len, inputs.values())) >= sent[0] // 2  # most of what was sent survived the kills
        for key, values in inputs.items():
            assert outputs.get(key, []) == [b"copy:" + value for value in values], key
        assert set(outputs) <= set(inputs)
    finally:
        stop.set()
        pipeline.kill_app()
        if pipeline.broker.process.poll() is None:
            assert pipeline.broker.stop() == 0
        assert "Traceback" not in "".join(path.read_text(errors="replace") for path in tmp_path.glob("broker*.log"))


def test_exactly_once_through_kills(tmp_path):
    run(tmp_path, rounds=2, seed=int(os.environ.get("ODRADEK_EO_SEED", "7")), victims=("broker", "both"))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_exactly_once_through_many_kills(tmp_path, seed):
    run(tmp_path, rounds=10, seed=seed)
