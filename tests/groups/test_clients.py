"""Real clients in consumer groups against a real broker: kafka-python and confluent-kafka
(librdkafka) split partitions, consume everything once, commit, resume, and rebalance when a
member leaves."""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition as ConfluentPartition
from kafka import KafkaConsumer, KafkaProducer

from broker.test_server import create_topic
from odradek.protocol import error_codes as E
from odradek.protocol.messages.describe_groups import DescribeGroupsRequest
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestTopic

from .conftest import RawClient

PARTITIONS = 4
DEADLINE = 30.0


def produce_kafka_python(bootstrap, topic, values, partitions=PARTITIONS):
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for index, value in enumerate(values):
        producer.send(topic, value=value, partition=index % partitions)
    producer.flush()
    producer.close()


def wait_until(condition, timeout=DEADLINE, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


class PythonMember(threading.Thread):
    """A kafka-python consumer polling in its own thread (a JoinGroup blocks its poll until the
    rebalance completes, so group members must run concurrently)."""

    def __init__(self, bootstrap, topic, group, name):
        super().__init__(name=name, daemon=True)
        self.consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=group, client_id=name, auto_offset_reset="earliest",
            enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=200,
            max_poll_interval_ms=20000)
        self.records: list[tuple[int, int, bytes]] = []
        self.assignment: set[int] = set()
        self.failure: BaseException | None = None
        self._stopping = threading.Event()

    def run(self):
        try:
            while not self._stopping.is_set():
                # A poll longer than a rebalance: with 100 ms polls kafka-python 3.0.12 sometimes
                # never finished a rebalance it led (its SyncGroup was answered, the assignment
                # never applied, heartbeats stopped; the broker log shows the group stable).
                batch = self.consumer.poll(timeout_ms=1000)
                for partition, messages in batch.items():
                    self.records.extend((partition.partition, m.offset, m.value) for m in messages)
                if batch:
                    self.consumer.commit()
                self.assignment = {tp.partition for tp in self.consumer.assignment()}
        except BaseException as error:  # reported by the test, not swallowed
            self.failure = error
        finally:
            self.consumer.close()  # sends LeaveGroup

    def stop(self):
        self._stopping.set()
        self.join(15)
        assert not self.is_alive() and self.failure is None, self.failure


def committed_offsets(broker, group, topic, partitions=PARTITIONS):
    client = RawClient(broker.host, broker.port)
    try:
        answer = client.request(OffsetFetchRequest(group_id=group, topics=[
            OffsetFetchRequestTopic(name=topic, partition_indexes=list(range(partitions)))]), 7)
    finally:
        client.close()
    assert answer.error_code == E.NONE
    return {p.partition_index: p.committed_offset for p in answer.topics[0].partitions}


def split_report(broker, group, *members) -> str:
    """What a failed split wait shows: each member's assignment and failure, and the group as
    the broker describes it (state, and its members), to tell a client stuck in a
    rebalance from a broker that never completed one."""
    client = RawClient(broker.host, broker.port)
    try:
        described = client.request(DescribeGroupsRequest(groups=[group]), 5).groups[0]
    finally:
        client.close()
    members = "; ".join(f"{m.name}: {sorted(m.assignment)} failure={m.failure!r}" for m in members)
    return (f"a 2+2 split ({members}); broker: {described.group_state}, members "
            f"{[(m.client_id, m.member_id) for m in described.members]}")


def test_kafka_python_members_split_partitions_consume_once_and_resume(group_broker):
    topic, group = "kp-split", "kp-group"
    setup = RawClient(group_broker.host, group_broker.port)
    create_topic(setup, topic, partitions=PARTITIONS)
    setup.close()
    first = PythonMember(group_broker.bootstrap, topic, group, "kp-1")
    second = PythonMember(group_broker.bootstrap, topic, group, "kp-2")
    first.start()
    second.start()
    try:
        wait_until(lambda: len(first.assignment) == 2 and len(second.assignment) == 2,
                   what=lambda: split_report(group_broker, group, first, second))
        assert first.assignment | second.assignment == set(range(PARTITIONS))
        values = [b"value-%d" % index for index in range(40)]
        produce_kafka_python(group_broker.bootstrap, topic, values)
        wait_until(lambda: len(first.records) + len(second.records) >= len(values), what="all records")
        time.sleep(0.3)  # anything delivered twice would show up now
    finally:
        first.stop()
        second.stop()
    consumed = first.records + second.records
    assert sorted(value for _, _, value in consumed) == sorted(values)  # each record exactly once
    assert {p for p, _, _ in first.records} <= first.assignment
    assert {p for p, _, _ in second.records} <= second.assignment
    assert committed_offsets(group_broker, group, topic) == {p: 10 for p in range(PARTITIONS)}

    # A member of the same group started later resumes from the committed offsets.
    later = [b"later-%d" % index for index in range(8)]
    produce_kafka_python(group_broker.bootstrap, topic, later)
    third = PythonMember(group_broker.bootstrap, topic, group, "kp-3")
    third.start()
    try:
        wait_until(lambda: len(third.records) >= len(later), what="the new records")
        time.sleep(0.3)
    finally:
        third.stop()
    assert sorted(value for _, _, value in third.records) == sorted(later)
    assert committed_offsets(group_broker, group, topic) == {p: 12 for p in range(PARTITIONS)}


def test_member_that_leaves_hands_its_partitions_to_the_other_at_once(group_broker):
    topic, group = "kp-leave", "kp-leave-group"
    setup = RawClient(group_broker.host, group_broker.port)
    create_topic(setup, topic, partitions=PARTITIONS)
    setup.close()
    staying = PythonMember(group_broker.bootstrap, topic, group, "stays")
    leaving = PythonMember(group_broker.bootstrap, topic, group, "leaves")
    staying.start()
    leaving.start()
    try:
        wait_until(lambda: len(staying.assignment) == 2 and len(leaving.assignment) == 2,
                   what=lambda: f"a 2+2 split: {staying.assignment} {leaving.assignment} {staying.failure} {leaving.failure}")
        started = time.monotonic()
        leaving.stop()  # close() sends LeaveGroup
        wait_until(lambda: staying.assignment == set(range(PARTITIONS)), what="all partitions on the stayer")
        # Well inside the 10 s session timeout: the LeaveGroup, not an expiry, moved them.
        assert time.monotonic() - started < 8
    finally:
        staying.stop()


def confluent_consumer(bootstrap, group, name):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 200,
                     "topic.metadata.refresh.interval.ms": 1000})


def test_confluent_kafka_members_split_partitions_and_commit(group_broker):
    # The case: three librdkafka members of one group split six partitions.
    topic, group, partitions, member_count = "ck-split", "ck-group", 6, 3
    setup = RawClient(group_broker.host, group_broker.port)
    create_topic(setup, topic, partitions=partitions)
    setup.close()
    producer = Producer({"bootstrap.servers": group_broker.bootstrap})
    values = [b"ck-%d" % index for index in range(10 * partitions)]
    for index, value in enumerate(values):
        producer.produce(topic, value=value, partition=index % partitions)
    assert producer.flush(10) == 0
    members = [confluent_consumer(group_broker.bootstrap, group, f"ck-{index}") for index in range(member_count)]
    for member in members:
        member.subscribe([topic])
    received = {index: [] for index in range(member_count)}
    deadline = time.monotonic() + DEADLINE
    # librdkafka joins in its background threads; poll every member until each holds its
    # share and every record arrived (the first may start alone and hand partitions over).
    while time.monotonic() < deadline:
        for index, member in enumerate(members):
            message = member.poll(0.05)
            if message is not None and message.error() is None:
                received[index].append((message.partition(), message.offset(), message.value()))
                member.commit(message=message, asynchronous=False)
        assignments = [{tp.partition for tp in member.assignment()} for member in members]
        if (sum(len(r) for r in received.values()) >= len(values)
                and all(len(a) == 2 for a in assignments)):
            break
    try:
        assert [len(a) for a in assignments] == [2] * member_count
        assert set().union(*assignments) == set(range(partitions))
        everything = [record for records in received.values() for record in records]
        # A partition moved by the rebalance may be re-read from its last commit: at least once,
        # and nothing beyond what was committed twice.
        assert {value for _, _, value in everything} == set(values)
        committed = members[0].committed([ConfluentPartition(topic, p) for p in range(partitions)], timeout=10)
        assert sorted((tp.partition, tp.offset) for tp in committed) == [(p, 10) for p in range(partitions)]
    finally:
        for member in members:
            member.close()


class AioMember(threading.Thread):
    """An aiokafka consumer on its own event loop in a thread; commits what each poll returned."""

    def __init__(self, bootstrap, topic, group):
        super().__init__(name="aiokafka-member", daemon=True)
        self.bootstrap, self.topic, self.group = bootstrap, topic, group
        self.assignment: set[int] = set()
        self.records: list[tuple[int, int, bytes]] = []
        self.failure: BaseException | None = None
        self._stopping = threading.Event()

    def run(self):
        import asyncio

        from aiokafka import AIOKafkaConsumer
        from aiokafka.coordinator.assignors.range import RangePartitionAssignor

        async def main():
            # aiokafka's default assignor is roundrobin alone, which librdkafka's "range" does not
            # share: the broker would rightly refuse it (INCONSISTENT_GROUP_PROTOCOL).
            consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap, group_id=self.group,
                                        client_id="mixed-aiokafka", session_timeout_ms=10000,
                                        heartbeat_interval_ms=200, auto_offset_reset="earliest",
                                        enable_auto_commit=False,
                                        partition_assignment_strategy=(RangePartitionAssignor,))
            await consumer.start()
            try:
                while not self._stopping.is_set():
                    batch = await consumer.getmany(timeout_ms=100)
                    for partition, messages in batch.items():
                        self.records.extend((partition.partition, m.offset, m.value) for m in messages)
                    if batch:
                        await consumer.commit()
                    self.assignment = {tp.partition for tp in consumer.assignment()}
            finally:
                await consumer.stop()

        try:
            asyncio.run(main())
        except BaseException as error:
            self.failure = error

    def stop(self):
        self._stopping.set()
        self.join(15)
        assert not self.is_alive() and self.failure is None, self.failure


def test_mixed_clients_in_one_group(group_broker):
    """kafka-python, aiokafka and librdkafka members share the "range" assignor and split six
    partitions two each."""
    topic, group, partitions = "mixed", "mixed-group", 6
    setup = RawClient(group_broker.host, group_broker.port)
    create_topic(setup, topic, partitions=partitions)
    setup.close()
    python_member = PythonMember(group_broker.bootstrap, topic, group, "mixed-python")
    python_member.start()
    aio_member = AioMember(group_broker.bootstrap, topic, group)
    aio_member.start()
    native = Consumer({"bootstrap.servers": group_broker.bootstrap, "group.id": group, "client.id": "mixed-native",
                       "session.timeout.ms": 10000, "heartbeat.interval.ms": 200,
                       "partition.assignment.strategy": "range"})
    native.subscribe([topic])
    try:
        deadline = time.monotonic() + DEADLINE
        native_partitions: set[int] = set()
        while time.monotonic() < deadline:
            native.poll(0.05)
            native_partitions = {tp.partition for tp in native.assignment()}
            if [len(native_partitions), len(python_member.assignment), len(aio_member.assignment)] == [2, 2, 2]:
                break
        assigned = [native_partitions, python_member.assignment, aio_member.assignment]
        assert [len(each) for each in assigned] == [2, 2, 2], assigned
        assert set().union(*assigned) == set(range(partitions))
    finally:
        native.close()
        python_member.stop()
        aio_member.stop()


def _poll_until(consumers, condition, timeout=DEADLINE):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for consumer in consumers:
            consumer.poll(0.05)
        if condition():
            return True
    return False


def _partitions(consumer) -> set[int]:
    return {tp.partition for tp in consumer.assignment()}


def test_restarted_static_member_gets_its_partitions_back_without_a_rebalance(group_broker):
    topic, group = "static", "static-group"
    setup = RawClient(group_broker.host, group_broker.port)
    create_topic(setup, topic, partitions=PARTITIONS)
    setup.close()
    revoked = []

    def static_member(instance, on_revoke=None):
        consumer = Consumer({"bootstrap.servers": group_broker.bootstrap, "group.id": group,
                             "group.instance.id": instance, "session.timeout.ms": 10000,
                             "heartbeat.interval.ms": 200})
        if on_revoke is None:
            consumer.subscribe([topic])
        else:
            consumer.subscribe([topic], on_revoke=on_revoke)
        return consumer

    first = static_member("instance-1")
    second = static_member("instance-2", on_revoke=lambda consumer, partitions: revoked.append(list(partitions)))
    try:
        assert _poll_until([first, second], lambda: len(_partitions(first)) == 2 and len(_partitions(second)) == 2)
        before = _partitions(first)
        revoked.clear()
        first.close()  # a static member does not leave the group when it closes (KIP-345)
        first = static_member("instance-1")
        assert _poll_until([first, second], lambda: _partitions(first) == before, timeout=15)
        _poll_until([second], lambda: False, timeout=1)  # a rebalance would reach the other member now
        assert revoked == [] and len(_partitions(second)) == 2
    finally:
        first.close()
        second.close()


MEMBER_SCRIPT = """
import sys, time
from confluent_kafka import Consumer
consumer = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "session.timeout.ms": 2000,
                     "heartbeat.interval.ms": 200})
consumer.subscribe([sys.argv[3]])
while True:
    consumer.poll(0.1)
    if consumer.assignment():
        print("assigned", flush=True)
"""


def test_killed_member_loses_its_partitions_after_its_session(group_broker, tmp_path):
    import subprocess
    import sys

    topic, group = "killed", "killed-group"
    setup = RawClient(group_broker.host, group_broker.port)
    create_topic(setup, topic, partitions=PARTITIONS)
    setup.close()
    survivor = Consumer({"bootstrap.servers": group_broker.bootstrap, "group.id": group, "session.timeout.ms": 10000,
                         "heartbeat.interval.ms": 200})
    survivor.subscribe([topic])
    script = tmp_path / "member.py"
    script.write_text(MEMBER_SCRIPT)
    victim = subprocess.Popen([sys.executable, str(script), group_broker.bootstrap, group, topic],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert _poll_until([survivor], lambda: len(_partitions(survivor)) == 2)
        victim.kill()  # SIGKILL: no LeaveGroup, only the session timeout tells
        victim.wait()
        started = time.monotonic()
        assert _poll_until([survivor], lambda: _partitions(survivor) == set(range(PARTITIONS)), timeout=20)
        assert time.monotonic() - started >= 1.5  # it took the victim's 2 s session to notice
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
        victim.stdout.close()
        survivor.close()


def test_cooperative_sticky_keeps_unaffected_partitions_through_a_rebalance(group_broker):
    """Three librdkafka members with cooperative-sticky on six partitions: when the third one
    joins, the first two give up only what moves to it (incremental revocation, KIP-429); the
    broker sees ordinary classic rebalances and passes the protocol through."""
    topic, group, partitions = "coop", "coop-group", 6
    setup = RawClient(group_broker.host, group_broker.port)
    create_topic(setup, topic, partitions=partitions)
    setup.close()
    revoked: dict[str, list[int]] = {"a": [], "b": [], "c": []}

    def member(name):
        consumer = Consumer({"bootstrap.servers": group_broker.bootstrap, "group.id": group, "client.id": name,
                             "partition.assignment.strategy": "cooperative-sticky",
                             "session.timeout.ms": 10000, "heartbeat.interval.ms": 200})
        consumer.subscribe([topic], on_revoke=lambda c, lost: revoked[name].extend(tp.partition for tp in lost))
        return consumer

    a, b = member("a"), member("b")
    c = None
    try:
        assert _poll_until([a, b], lambda: len(_partitions(a)) == 3 and len(_partitions(b)) == 3)
        before = {"a": _partitions(a), "b": _partitions(b)}
        revoked["a"].clear()
        revoked["b"].clear()
        c = member("c")
        assert _poll_until([a, b, c], lambda: [len(_partitions(x)) for x in (a, b, c)] == [2, 2, 2])
        after = {"a": _partitions(a), "b": _partitions(b)}
        for name in ("a", "b"):
            assert after[name] <= before[name]  # sticky: nothing new, nothing shuffled
            assert sorted(revoked[name]) == sorted(before[name] - after[name])  # only what moved
        assert _partitions(a) | _partitions(b) | _partitions(c) == set(range(partitions))
    finally:
        for consumer in (a, b, c):
            if consumer is not None:
                consumer.close()
