"""Power loss under acks=all load: every record a producer saw acknowledged survives.

A broker runs in a thread on the storage layer's in-memory file system with directory entries
that need a directory fsync (as on a real disk). Real producers (librdkafka, acks=all) write
to it over TCP as fast as they go. Several times during the load, on the broker's own loop
(so between two of its steps, like an instant power cut), the file system is copied as a power
loss would leave it (``MemoryFileSystem.power_loss_copy``: only what was synced, plus a
random prefix of what was not). Afterwards each copy is opened by a fresh broker, which
recovers it, and read back: every record whose acknowledgement the producer had received
before the copy was taken must be there, at the offset it was acknowledged with.

The same run with ``odradek.flush.on.acks.all=false`` (acks=all answered after the append,
nothing synced) must lose acknowledged records: what shows that the test sees a missing sync.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time

import confluent_kafka
import confluent_kafka.admin
import pytest

from odradek.broker.config import BrokerConfig
from odradek.broker.service import BrokerService, bootstrap_servers
from odradek.storage.fs import MemoryFileSystem

TOPIC = "power-loss"
PARTITIONS = 4
PRODUCERS = 3
LOAD_SECONDS = 3.0
COPIES = 3
DATA_DIR = "/data"


class BrokerThread:
    """A broker on ``fs`` in its own thread and event loop (as an embedded broker runs)."""

    def __init__(self, fs: MemoryFileSystem, **overrides):
        self.fs = fs
        self.config = BrokerConfig.from_sources(
            {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": DATA_DIR},
            {"num.partitions": str(PARTITIONS), **{key: str(value) for key, value in overrides.items()}})
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(30) and self.error is None, f"the broker did not start: {self.error!r}"

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error
        finally:
            self.ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        service = BrokerService(self.config, fs=self.fs)
        await service.start()
        try:
            await service.ready()
            self.bootstrap = bootstrap_servers(service.bound)
            self.ready.set()
            await self._stop.wait()
        finally:
            await service.stop()

    def power_loss_copy(self, rng: random.Random) -> tuple[MemoryFileSystem, float]:
        """The file system as a power cut now would leave it, and when the copy was taken."""
        async def take():
            return self.fs.power_loss_copy(rng), time.monotonic()
        return asyncio.run_coroutine_threadsafe(take(), self.loop).result(30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)
        assert not self.thread.is_alive() and self.error is None, repr(self.error)


def produce_until(bootstrap: str, stop: threading.Event, acknowledged: list, failures: list) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
                                         "enable.idempotence": True, "log_level": 0})

    def delivered(error, message):
        if error is None:
            acknowledged.append((time.monotonic(), message.partition(), message.offset(), message.value()))
        else:
            failures.append(str(error))

    index = 0
    while not stop.is_set():
        try:
            producer.produce(TOPIC, value=b"%s-%08d" % (threading.current_thread().name.encode(), index),
                             partition=index % PARTITIONS, on_delivery=delivered)
            index += 1
        except BufferError:
            producer.poll(0.01)
        producer.poll(0)
    producer.flush(30)


def read_everything(bootstrap: str) -> dict[tuple[int, int], bytes]:
    """(partition, offset) -> value of every record the broker serves."""
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "power-loss-check",
                                         "enable.auto.commit": False, "log_level": 0})
    try:
        ends = {p: consumer.get_watermark_offsets(confluent_kafka.TopicPartition(TOPIC, p), timeout=30)[1]
                for p in range(PARTITIONS)}
        consumer.assign([confluent_kafka.TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        found: dict[tuple[int, int], bytes] = {}
        position = dict.fromkeys(ends, 0)  # the next offset to read of each partition
        deadline = time.monotonic() + 60
        while any(position[p] < end for p, end in ends.items()):
            assert time.monotonic() < deadline, f"could not read back {ends}: at {position}"
            for message in consumer.consume(10000, 0.5):
                if message.error() is None:
                    found[(message.partition(), message.offset())] = message.value()
                    position[message.partition()] = message.offset() + 1
        return found
    finally:
        consumer.close()


def run_power_losses(flush_on_acks_all: bool, seed: int):
    """Load, copies during it; per copy: the acknowledged records it must hold and those missing."""
    rng = random.Random(seed)
    fs = MemoryFileSystem(names_need_dir_fsync=True)
    fs.makedirs(DATA_DIR)
    fs.fsync_dir("/")  # the data directory itself exists before the broker, as on a real disk
    broker = BrokerThread(fs, **{"odradek.flush.on.acks.all": str(flush_on_acks_all).lower()})
    acknowledged: list = []
    failures: list = []
    stop = threading.Event()
    copies = []
    try:
        admin = confluent_kafka.admin.AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 0})
        admin.create_topics([confluent_kafka.admin.NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(30)
        del admin
        producers = [threading.Thread(target=produce_until, args=(broker.bootstrap, stop, acknowledged, failures),
                                      name=f"p{number}") for number in range(PRODUCERS)]
        for producer in producers:
            producer.start()
        started = time.monotonic()
        for number in range(COPIES):
            time.sleep(max(0.0, started + LOAD_SECONDS * (number + 1) / COPIES - time.monotonic()) * rng.uniform(0.7, 1))
            copies.append(broker.power_loss_copy(rng))
        stop.set()
        for producer in producers:
            producer.join(60)
        rate = len(acknowledged) / (time.monotonic() - started)
    finally:
        stop.set()
        broker.stop()
    assert not failures, failures[:5]
    results = []
    for copy, taken in copies:
        recovered = BrokerThread(copy)
        try:
            found = read_everything(recovered.bootstrap)
        finally:
            recovered.stop()
        due = [(partition, offset, value) for at, partition, offset, value in acknowledged if at < taken]
        missing = [record for record in due if found.get(record[:2]) != record[2]]
        results.append((len(due), missing))
    return rate, results


@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_records_acknowledged_with_acks_all_survive_a_power_loss(seed):
    rate, results = run_power_losses(flush_on_acks_all=True, seed=seed)
    print(f"{rate:.0f} acknowledged records/s; per copy (acknowledged before it, missing): "
          f"{[(due, len(missing)) for due, missing in results]}")
    assert all(due for due, _ in results[1:]), "no record was acknowledged before a copy: nothing tested"
    for due, missing in results:
        assert not missing, f"{len(missing)} of {due} acknowledged records lost, e.g. {missing[:3]}"


def test_without_the_sync_a_power_loss_loses_acknowledged_records():
    _, results = run_power_losses(flush_on_acks_all=False, seed=3)
    assert any(missing for _, missing in results), "nothing lost without syncing: the test cannot see a missing sync"
