"""The coordinator runtime (broker/coordinators/runtime.py) with a toy shard: a counter per
name, kept as records ``name -> count`` of a coordinator topic of its own.

In process, on a real broker's storage (Broker.open on a temporary directory, no listener): the
group coordinator's tests drive the same runtime through a real broker process over TCP."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import functools
import struct
import threading

import pytest

from odradek.broker.broker import Broker
from odradek.broker.config import BrokerConfig
from odradek.broker.coordinators import (CoordinatorLog, CoordinatorResult, CoordinatorRuntime, CoordinatorTopic,
                                         ManualTimer, coordinator_partition)
from odradek.protocol import error_codes as E
from odradek.protocol.errors import DecodeError

PARTITIONS = 3
COUNT = struct.Struct(">q")


def decode(key: bytes, value: bytes | None):
    if value is not None and len(value) != COUNT.size:
        raise DecodeError(f"a count is {COUNT.size} bytes, not {len(value)}")
    return key.decode(), (None if value is None else COUNT.unpack(value)[0])


# Sized by the transaction log's keys, to show the runtime takes whichever keys it is given.
TOY_TOPIC = CoordinatorTopic(name="__toy_state", partitions_key="transaction.state.log.num.partitions",
                             segment_bytes_key="transaction.state.log.segment.bytes",
                             load_buffer_key="offsets.load.buffer.size", decode=decode)


class CounterShard:
    """The toy coordinator: ``replay`` is the only way its state changes."""

    def __init__(self, runtime: CoordinatorRuntime):
        self.runtime = runtime
        self.counts: dict[str, int] = {}
        self.loaded: list[int] = []
        self.unloaded: list[int] = []

    def replay(self, record) -> None:
        name, count = record
        if count is None:
            self.counts.pop(name, None)
        else:
            self.counts[name] = count

    def on_loaded(self, partition: int) -> None:
        self.loaded.append(partition)

    def on_unloaded(self, partition: int) -> None:
        self.unloaded.append(partition)
        self.counts = {name: count for name, count in self.counts.items()
                       if self.runtime.partition_of(name) != partition}

    # Operations: they read the state and return records; they change nothing themselves.

    def add(self, name: str, amount: int, padding: int = 0) -> CoordinatorResult:
        count = self.counts.get(name, 0) + amount
        records = [(name.encode(), COUNT.pack(count))]
        if padding:  # a record that makes the batch as large as asked (a refused append)
            records.append((b"x" * padding, COUNT.pack(0)))
        return CoordinatorResult(records, response=count)

    def remove(self, name: str) -> CoordinatorResult:
        return CoordinatorResult([(name.encode(), None)], response=self.counts.get(name))


def names_in_distinct_partitions():
    """A name per partition of the toy topic, in partition order."""
    found = {}
    for number in range(1000):
        found.setdefault(coordinator_partition(f"n{number}", PARTITIONS), f"n{number}")
    return [found[index] for index in range(PARTITIONS)]


def open_broker(data_dir, **overrides) -> Broker:
    config = BrokerConfig.from_sources({"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(data_dir)},
                                       {"transaction.state.log.num.partitions": str(PARTITIONS), **overrides})
    broker = Broker(config)
    broker.open()
    return broker


def runtime_on(broker: Broker | None) -> CoordinatorRuntime:
    runtime = CoordinatorRuntime(TOY_TOPIC, CounterShard, ManualTimer())
    if broker is not None:
        runtime.load(CoordinatorLog(broker, TOY_TOPIC))
        runtime.timer.advance(0)  # an empty (or absent) topic loads at once
    return runtime


class ControlledFlushes(concurrent.futures.ThreadPoolExecutor):
    """The broker's fsync thread, held until ``release`` (and, with ``fail``, failing as a disk
    whose fsync returns EIO: the flush ticket carries the error, as storage records one)."""

    def __init__(self, fail: bool = False):
        super().__init__(max_workers=1, thread_name_prefix="test-flush")
        self.gate = threading.Event()
        self.fail = fail

    def submit(self, fn, tickets, /):
        def held():
            self.gate.wait(10)
            took = fn(tickets)
            if self.fail:
                for ticket in tickets:
                    ticket.error = OSError(errno.EIO, "injected fsync failure")
            return took
        return super().submit(held)


# How long a sync takes on a disk the group commit keeps off the event loop.
SLOW_DISK_SYNC_S = 3600.0


def control_flushes(broker: Broker, fail: bool = False) -> ControlledFlushes:
    """Replace the broker's sync thread (its group commit's) before the toy topic's partitions are made."""
    flushes = ControlledFlushes(fail)
    for group_commit in broker._group_commits.values():
        group_commit._close_aio()  # the syncs go to the (held) threads, not to the kernel's AIO
        group_commit._executor.shutdown(wait=True)
        group_commit._executor = flushes
        group_commit.expected_sync_s = SLOW_DISK_SYNC_S  # syncs go to the (held) thread
    return flushes


def test_operations_change_the_state_only_through_their_records():
    runtime = runtime_on(None)  # no log: the records go straight to replay
    shard = runtime.shard
    assert asyncio.run(runtime.write("a", lambda: shard.add("a", 2))) == (E.NONE, 2)
    assert asyncio.run(runtime.write("a", lambda: shard.add("a", 3))) == (E.NONE, 5)
    assert shard.counts == {"a": 5}
    assert asyncio.run(runtime.write("a", lambda: shard.remove("a"))) == (E.NONE, 5)
    assert shard.counts == {}
    assert asyncio.run(runtime.write("b", lambda: CoordinatorResult([], "nothing to write"))) == (E.NONE,
                                                                                               "nothing to write")


def test_the_topic_is_created_on_the_first_write_and_replayed_after_a_restart(tmp_path):
    names = names_in_distinct_partitions()
    broker = open_broker(tmp_path, **{"transaction.state.log.segment.bytes": "1048576"})
    try:
        runtime = runtime_on(broker)
        assert broker.topics.get(TOY_TOPIC.name) is None  # nothing written yet

        async def write_all():
            for round_number in range(1, 4):
                for name in names:
                    operation = functools.partial(runtime.shard.add, name, round_number)
                    assert await runtime.write(name, operation) == (E.NONE, sum(range(1, round_number + 1)))
            assert await runtime.write(names[2], lambda: runtime.shard.remove(names[2])) == (E.NONE, 6)
        asyncio.run(write_all())
        topic = broker.topics.get(TOY_TOPIC.name)
        assert (topic.partition_count, topic.configs) == (PARTITIONS, {"cleanup.policy": "compact",
                                                                       "segment.bytes": "1048576"})
        # One batch per write, each in the partition that owns its name.
        assert [broker.partition(TOY_TOPIC.name, index).log.log_end_offset for index in range(PARTITIONS)] == [3, 3, 4]
        written = dict(runtime.shard.counts)
        assert written == {names[0]: 6, names[1]: 6}
    finally:
        broker.close()

    broker = open_broker(tmp_path)
    try:
        replayed = CoordinatorRuntime(TOY_TOPIC, CounterShard, ManualTimer())
        replayed.load(CoordinatorLog(broker, TOY_TOPIC))
        # Nothing is replayed inside load (the broker listens first): every name waits.
        assert replayed.timer.is_scheduled(("load",))
        assert replayed.availability() == E.COORDINATOR_LOAD_IN_PROGRESS
        assert {replayed.availability(name) for name in names} == {E.COORDINATOR_LOAD_IN_PROGRESS}
        assert asyncio.run(replayed.write(names[0], lambda: replayed.shard.add(names[0], 1))) == (
            E.COORDINATOR_LOAD_IN_PROGRESS, None)
        replayed.timer.advance(0)  # the slices, each armed by the one before
        assert replayed.availability() == E.NONE
        assert replayed.shard.counts == written and replayed.shard.loaded == list(range(PARTITIONS))
    finally:
        broker.close()


def test_a_write_is_answered_only_once_its_records_are_fsynced(tmp_path):
    broker = open_broker(tmp_path)
    flushes = control_flushes(broker)
    try:
        runtime = runtime_on(broker)

        async def scenario():
            write = asyncio.ensure_future(runtime.write("a", lambda: runtime.shard.add("a", 7)))
            await asyncio.sleep(0.2)
            partition = broker.partition(TOY_TOPIC.name, runtime.partition_of("a"))
            assert not write.done()
            assert partition.log.log_end_offset == 1 and partition.log.durable_offset == 0
            # Replayed already: the next operation builds on it (it waits for its flush too).
            assert runtime.shard.counts == {"a": 7}
            second = asyncio.ensure_future(runtime.write("a", lambda: runtime.shard.add("a", 1)))
            await asyncio.sleep(0.05)
            assert not second.done()
            flushes.gate.set()
            assert await write == (E.NONE, 7)
            assert await second == (E.NONE, 8)
            assert partition.log.durable_offset == 2
        asyncio.run(scenario())
    finally:
        flushes.gate.set()
        broker.close()


def test_a_refused_append_leaves_the_state_as_it_was(tmp_path):
    broker = open_broker(tmp_path, **{"message.max.bytes": "2048"})
    try:
        runtime = runtime_on(broker)

        async def scenario():
            assert await runtime.write("a", lambda: runtime.shard.add("a", 1)) == (E.NONE, 1)
            # Larger than message.max.bytes: the log refuses the batch (RECORD_TOO_LARGE), which
            # a coordinator answers COORDINATOR_NOT_AVAILABLE; nothing was replayed.
            assert await runtime.write("a", lambda: runtime.shard.add("a", 5, padding=4096)) == (
                E.COORDINATOR_NOT_AVAILABLE, None)
            assert runtime.shard.counts == {"a": 1}
            assert broker.partition(TOY_TOPIC.name, runtime.partition_of("a")).log.log_end_offset == 1
            assert await runtime.write("a", lambda: runtime.shard.add("a", 1)) == (E.NONE, 2)
        asyncio.run(scenario())
    finally:
        broker.close()


def test_a_failed_fsync_unloads_the_partition_until_it_is_loaded_again(tmp_path):
    first, second, _ = names_in_distinct_partitions()
    broker = open_broker(tmp_path)
    flushes = control_flushes(broker)
    flushes.gate.set()
    try:
        runtime = runtime_on(broker)
        assert asyncio.run(runtime.write(second, lambda: runtime.shard.add(second, 4))) == (E.NONE, 4)
        flushes.fail = True

        async def scenario():
            # The fsync fails: the write is answered NOT_COORDINATOR, and the partition, whose
            # state holds records the disk may not, is given up (the shard drops it).
            assert await runtime.write(first, lambda: runtime.shard.add(first, 3)) == (E.NOT_COORDINATOR, None)
        asyncio.run(scenario())
        index = runtime.partition_of(first)
        assert runtime.shard.unloaded == [index] and first not in runtime.shard.counts
        assert runtime.availability(first) == E.NOT_COORDINATOR and not runtime.is_loaded(first)
        assert runtime.availability(second) == E.NONE and runtime.shard.counts == {second: 4}
        # Taken over again, the partition is replayed from its log: the record was appended.
        runtime.load_partition(index)
        assert runtime.availability(first) == E.COORDINATOR_LOAD_IN_PROGRESS
        runtime.timer.advance(0)
        assert runtime.availability(first) == E.NONE
        assert runtime.shard.counts == {first: 3, second: 4}
    finally:
        broker.close()


def test_a_timer_runs_a_write_operation_unless_its_partition_is_unloaded():
    first, second, _ = names_in_distinct_partitions()
    runtime = CoordinatorRuntime(TOY_TOPIC, CounterShard, ManualTimer())
    runtime.partition_count = PARTITIONS
    shard = runtime.shard
    runtime.schedule(first, ("add", first), 100, lambda: shard.add(first, 1))
    runtime.schedule(second, ("add", second), 100, lambda: shard.add(second, 1))
    runtime.schedule(second, ("add", second), 200, lambda: shard.add(second, 10))  # replaces the first one
    runtime.timer.advance(99)
    assert shard.counts == {}
    runtime.timer.advance(1)
    assert shard.counts == {first: 1}
    runtime.timer.advance(100)
    assert shard.counts == {first: 1, second: 10}

    runtime.schedule(first, ("add", first), 100, lambda: shard.add(first, 1))
    runtime.schedule(second, ("add", second), 100, lambda: shard.add(second, 1))
    runtime.unload_partition(runtime.partition_of(first))
    assert not runtime.timer.is_scheduled(("add", first)) and runtime.timer.is_scheduled(("add", second))
    runtime.timer.advance(100)
    assert shard.counts == {second: 11} and shard.unloaded == [runtime.partition_of(first)]
    assert asyncio.run(runtime.write(first, lambda: shard.add(first, 1))) == (E.NOT_COORDINATOR, None)


def test_shutdown_stops_every_timer_and_answers_coordinator_not_available():
    runtime = CoordinatorRuntime(TOY_TOPIC, CounterShard, ManualTimer())
    runtime.schedule("a", ("add", "a"), 10, lambda: runtime.shard.add("a", 1))
    runtime.shutdown()
    runtime.timer.advance(10)
    assert runtime.shard.counts == {}
    assert runtime.availability("a") == runtime.availability() == E.COORDINATOR_NOT_AVAILABLE
    assert asyncio.run(runtime.write("a", lambda: runtime.shard.add("a", 1))) == (E.COORDINATOR_NOT_AVAILABLE, None)


@pytest.mark.parametrize("value", [b"", b"\x00" * 3, b"\x00" * 9])
def test_an_unreadable_record_is_skipped_at_load(tmp_path, value):
    broker = open_broker(tmp_path)
    try:
        log = CoordinatorLog(broker, TOY_TOPIC)
        log.append("a", [(b"a", value), (b"a", COUNT.pack(5)), (b"b", value)], 0)
        runtime = runtime_on(broker)
        assert runtime.shard.counts == {"a": 5} and runtime.availability("a") == E.NONE
    finally:
        broker.close()


class TransactionalCounterShard(CounterShard):
    """The toy coordinator with transactions: a producer's additions count once its COMMIT
    marker is replayed, never after an ABORT."""

    def __init__(self, runtime: CoordinatorRuntime):
        super().__init__(runtime)
        self.pending: dict[tuple[int, int], dict[str, int]] = {}  # (partition, producer) -> counts

    def replay_transactional(self, record, producer_id: int, producer_epoch: int) -> None:
        name, count = record
        self.pending.setdefault((self.runtime.partition_of(name), producer_id), {})[name] = count

    def replay_end_transaction(self, partition: int, producer_id: int, producer_epoch: int, committed: bool) -> None:
        ended = self.pending.pop((partition, producer_id), {})
        if committed:
            self.counts.update(ended)


def test_transactional_writes_are_producer_batches_and_markers_end_them_live_and_at_load(tmp_path):
    first, second, _ = names_in_distinct_partitions()
    broker = open_broker(tmp_path)
    try:
        runtime = CoordinatorRuntime(TOY_TOPIC, TransactionalCounterShard, ManualTimer())
        runtime.load(CoordinatorLog(broker, TOY_TOPIC))
        runtime.timer.advance(0)
        shard = runtime.shard

        async def scenario():
            assert await runtime.write_transactional(first, 11, 2, lambda: shard.add(first, 5)) == (E.NONE, 5)
            assert await runtime.write_transactional(second, 12, 0, lambda: shard.add(second, 7)) == (E.NONE, 7)
            assert shard.counts == {} and set(shard.pending) == {(runtime.partition_of(first), 11),
                                                                  (runtime.partition_of(second), 12)}
            # The log fences an older epoch; the shard is untouched.
            assert await runtime.write_transactional(first, 11, 1, lambda: shard.add(first, 9)) == (
                E.INVALID_PRODUCER_EPOCH, None)
            # A marker of the producer in another partition ends nothing there.
            assert await runtime.complete_transaction(runtime.partition_of(second), 11, 2, 0, True) == E.NONE
            assert shard.counts == {}
            assert await runtime.complete_transaction(runtime.partition_of(first), 11, 2, 0, True) == E.NONE
            assert await runtime.complete_transaction(runtime.partition_of(first), 11, 1, 0, True) == \
                E.INVALID_PRODUCER_EPOCH
            assert await runtime.complete_transaction(PARTITIONS, 11, 2, 0, True) == E.UNKNOWN_TOPIC_OR_PARTITION
            assert shard.counts == {first: 5}
        asyncio.run(scenario())
        log = broker.partition(TOY_TOPIC.name, runtime.partition_of(first)).log
        assert log.durable_offset == log.log_end_offset  # the marker was answered once fsynced
    finally:
        broker.close()

    broker = open_broker(tmp_path)
    try:
        replayed = CoordinatorRuntime(TOY_TOPIC, TransactionalCounterShard, ManualTimer())
        replayed.load(CoordinatorLog(broker, TOY_TOPIC))
        replayed.timer.advance(0)
        assert replayed.shard.counts == {first: 5}
        assert set(replayed.shard.pending) == {(replayed.partition_of(second), 12)}  # still open
        asyncio.run(replayed.complete_transaction(replayed.partition_of(second), 12, 0, 0, False))
        assert replayed.shard.counts == {first: 5} and replayed.shard.pending == {}
        # A shard without the transaction methods (the CounterShard) sees the records as plain
        # ones and no marker: what every coordinator saw before transactions.
        plain = runtime_on(broker)
        assert plain.shard.counts == {first: 5, second: 7}
    finally:
        broker.close()


def test_a_failed_fsync_of_a_transactional_write_or_marker_is_answered_without_unloading(tmp_path):
    broker = open_broker(tmp_path)
    flushes = control_flushes(broker, fail=True)
    flushes.gate.set()
    try:
        runtime = CoordinatorRuntime(TOY_TOPIC, TransactionalCounterShard, ManualTimer())
        runtime.load(CoordinatorLog(broker, TOY_TOPIC))
        runtime.timer.advance(0)

        async def scenario():
            assert await runtime.write_transactional("a", 3, 0, lambda: runtime.shard.add("a", 1)) == (
                E.NOT_COORDINATOR, None)
            assert await runtime.complete_transaction(runtime.partition_of("a"), 3, 0, 0, True) == \
                E.KAFKA_STORAGE_ERROR
        asyncio.run(scenario())
        assert runtime.shard.unloaded == [] and runtime.availability("a") == E.NONE
    finally:
        broker.close()
