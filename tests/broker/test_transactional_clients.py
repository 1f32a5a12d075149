"""Transactions through the Python clients' own transactional producers and consumers against a
real ``odradek serve``: confluent-kafka (librdkafka), aiokafka and kafka-python.

Each scenario runs for each client (its producer writes, its consumer reads):
- commit, abort, commit over two topics of two partitions each: a read_committed consumer gets
  exactly the committed records, in order and at the offsets Kafka gives them (every transaction
  end writes one marker per partition), a read_uncommitted one every data record;
- consume-transform-produce: input records read, transformed into an output topic, their
  offsets sent in the transaction; the group's offsets (OffsetFetch) change exactly when the
  transaction commits, not when the offsets are sent, and not at all when it aborts;
- the same as a member of the group (confluent-kafka and kafka-python, whose producers send a
  member's metadata): once the member left, its offsets are refused (UNKNOWN_MEMBER_ID);
- fencing: a second producer with the same transactional id initialises, and the first one's
  commit fails with the client's fencing error (librdkafka: the fatal error _FENCED; aiokafka:
  ProducerFenced; kafka-python: ProducerFencedError); its open transaction is aborted;
- a transaction left open past the producer's transaction.timeout.ms is aborted by the broker
  (``transaction.abort.timed.out.transaction.cleanup.interval.ms`` is short here): its record
  never reaches read_committed, and the producer's commit then fails with the fencing error,
  as against Kafka 4.4 (each expectation was checked against a Kafka 4.4.0 broker).

Every client call is bounded in time (a hang is a failure, not a stuck run).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from broker.conftest import RawClient, module_broker
from broker.test_server import create_topic
from groups.conftest import FAST_GROUPS
from odradek.protocol import error_codes as E
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestTopic

# Seconds any one client call may take (an initialisation waits out a previous producer's
# aborting transaction; a commit writes markers).
CALL_TIMEOUT = 30.0
# How long a reader waits for the records it expects, and then for any it must not get.
READ_TIMEOUT = 20.0
QUIET_AFTER_READ = 1.0
# The producer's transaction.timeout.ms in the timeout scenario, the broker's sweep interval,
# and how long the producer then stays idle (well past both).
SHORT_TRANSACTION_TIMEOUT_MS = 2000
ABORT_SWEEP_INTERVAL_MS = 500
IDLE_PAST_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def transaction_broker(tmp_path_factory):
    yield from module_broker(tmp_path_factory, "transaction-broker", (
        *FAST_GROUPS, f"transaction.abort.timed.out.transaction.cleanup.interval.ms={ABORT_SWEEP_INTERVAL_MS}"))


def bounded(call, timeout=CALL_TIMEOUT):
    """call() in a daemon thread: its result, its exception, or TimeoutError after ``timeout``."""
    outcome = {}

    def run():
        try:
            outcome["result"] = call()
        except BaseException as error:  # handed to the caller
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{call} did not return within {timeout}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


# --------------------------------------------------------------------------- the three clients
# A producer wrapper: begin(), send(topic, partition, value), flush() -> the sends since the last
# flush, commit or abort, acknowledged: [(topic, partition, offset or error)],
# send_offsets(group id or member metadata, {(topic, partition): offset}), commit(), abort(),
# close(). A client: producer(bootstrap, transactional_id, **timeout); read(bootstrap, isolation,
# partitions, count) -> {(topic, partition): [(offset, value)]}; fenced(error) -> bool; and, for
# the clients that send a member's metadata, member(bootstrap, group, topic, count) and
# stale_member(error) -> bool.


class ConfluentProducer:
    def __init__(self, bootstrap, transactional_id, transaction_timeout_ms=None):
        from confluent_kafka import Producer

        config = {"bootstrap.servers": bootstrap, "transactional.id": transactional_id}
        if transaction_timeout_ms is not None:
            config["transaction.timeout.ms"] = transaction_timeout_ms
        self.bootstrap = bootstrap
        self.producer = Producer(config)
        self.acks = []
        self.producer.init_transactions(CALL_TIMEOUT)

    def begin(self):
        self.producer.begin_transaction()

    def send(self, topic, partition, value):
        def delivered(error, message):
            self.acks.append((topic, partition, error if error is not None else message.offset()))

        self.producer.produce(topic, value=value, partition=partition, on_delivery=delivered)

    def flush(self):
        assert self.producer.flush(CALL_TIMEOUT) == 0
        acks, self.acks = self.acks, []
        return acks

    def send_offsets(self, group, offsets):
        """``group``: a group id, or a member's metadata (Member.metadata)."""
        from confluent_kafka import Consumer, TopicPartition

        listed = [TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()]
        if not isinstance(group, str):
            self.producer.send_offsets_to_transaction(listed, group, CALL_TIMEOUT)
            return
        # librdkafka takes the group from a consumer's metadata; this one never joins.
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            self.producer.send_offsets_to_transaction(listed, consumer.consumer_group_metadata(), CALL_TIMEOUT)
        finally:
            consumer.close()

    def commit(self):
        try:
            self.producer.commit_transaction(CALL_TIMEOUT)
        finally:
            self.acks = []  # delivery reports arrive during the call

    def abort(self):
        try:
            self.producer.abort_transaction(CALL_TIMEOUT)
        finally:
            self.acks = []

    def close(self):
        try:
            bounded(self.producer.close)
        except Exception as error:
            if not ConfluentClient.fenced(error):
                raise  # a fenced producer reports its fencing once more while it closes


class ConfluentMember:
    """A consumer of ``topic`` in ``group`` (subscribed: it joins) that polls until it has
    ``count`` records; ``metadata`` is then its group metadata (generation, member id)."""

    def __init__(self, bootstrap, group, topic, count):
        from confluent_kafka import Consumer

        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                                  "enable.auto.commit": False, "isolation.level": "read_committed",
                                  "session.timeout.ms": 6000})
        self.consumer.subscribe([topic])
        records = Records(count)
        while records.received < count and not records.done():
            message = self.consumer.poll(0.1)
            if message is not None:
                assert message.error() is None, message.error()
                records.add(message.topic(), message.partition(), message.offset(), message.value())
        self.records = records.by_partition
        self.metadata = self.consumer.consumer_group_metadata()

    def leave(self):
        bounded(self.consumer.close)


class ConfluentClient:
    name = "confluent-kafka"
    producer = ConfluentProducer
    member = ConfluentMember

    @staticmethod
    def read(bootstrap, isolation, partitions, count):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                             "enable.auto.commit": False, "isolation.level": isolation})
        try:
            consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for topic, partition in partitions])
            records = Records(count)
            while not records.done():
                message = consumer.poll(0.1)
                if message is not None:
                    assert message.error() is None, message.error()
                    records.add(message.topic(), message.partition(), message.offset(), message.value())
            return records.by_partition
        finally:
            consumer.close()

    @staticmethod
    def fenced(error):
        from confluent_kafka import KafkaError, KafkaException

        return (isinstance(error, KafkaException) and error.args[0].code() == KafkaError._FENCED
                and error.args[0].fatal())

    @staticmethod
    def stale_member(error):
        """The broker refused the offsets of a member that left (UNKNOWN_MEMBER_ID): the
        transaction must be aborted, the producer stays usable."""
        from confluent_kafka import KafkaError, KafkaException

        return (isinstance(error, KafkaException) and error.args[0].code() == KafkaError.UNKNOWN_MEMBER_ID
                and error.args[0].txn_requires_abort() and not error.args[0].fatal())


class KafkaPythonProducer:
    def __init__(self, bootstrap, transactional_id, transaction_timeout_ms=None):
        from kafka import KafkaProducer

        extra = {} if transaction_timeout_ms is None else {"transaction_timeout_ms": transaction_timeout_ms}
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id,
                                      max_block_ms=int(CALL_TIMEOUT * 1000), **extra)
        self.sent = []
        bounded(self.producer.init_transactions)

    def begin(self):
        self.producer.begin_transaction()

    def send(self, topic, partition, value):
        self.sent.append((topic, partition, self.producer.send(topic, value=value, partition=partition)))

    def flush(self):
        bounded(self.producer.flush)
        sent, self.sent = self.sent, []
        acks = []
        for topic, partition, future in sent:
            try:
                acks.append((topic, partition, future.get(timeout=CALL_TIMEOUT).offset))
            except Exception as error:  # reported as the ack
                acks.append((topic, partition, error))
        return acks

    def send_offsets(self, group, offsets):
        from kafka import OffsetAndMetadata, TopicPartition

        bounded(lambda: self.producer.send_offsets_to_transaction(
            {TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
             for (topic, partition), offset in offsets.items()}, group))

    def commit(self):
        self.sent = []
        bounded(self.producer.commit_transaction)

    def abort(self):
        self.sent = []
        bounded(self.producer.abort_transaction)

    def close(self):
        bounded(lambda: self.producer.close(timeout=5))


class KafkaPythonMember:
    """As ConfluentMember, with kafka-python's consumer."""

    def __init__(self, bootstrap, group, topic, count):
        from kafka import KafkaConsumer

        # metadata_max_age_ms: a leader whose metadata did not have the just-created topic yet
        # assigns it to nobody and rejoins only once its metadata changes (seen in a loaded CI
        # run: "No partition metadata for topic"); kafka-python's 5-minute default outlasts the read.
        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                                      enable_auto_commit=False, isolation_level="read_committed",
                                      session_timeout_ms=6000, heartbeat_interval_ms=500, metadata_max_age_ms=1000)
        records = Records(count)
        while records.received < count and not records.done():
            for messages in self.consumer.poll(timeout_ms=100).values():
                for m in messages:
                    records.add(m.topic, m.partition, m.offset, m.value)
        self.records = records.by_partition
        self.metadata = self.consumer.group_metadata()

    def leave(self):
        bounded(self.consumer.close)


class KafkaPythonClient:
    name = "kafka-python"
    producer = KafkaPythonProducer
    member = KafkaPythonMember

    @staticmethod
    def read(bootstrap, isolation, partitions, count):
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                 isolation_level=isolation)
        try:
            assigned = [TopicPartition(topic, partition) for topic, partition in partitions]
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            records = Records(count)
            while not records.done():
                for messages in consumer.poll(timeout_ms=100).values():
                    for m in messages:
                        records.add(m.topic, m.partition, m.offset, m.value)
            return records.by_partition
        finally:
            consumer.close()

    @staticmethod
    def fenced(error):
        from kafka.errors import ProducerFencedError

        return isinstance(error, ProducerFencedError)

    @staticmethod
    def stale_member(error):
        from kafka.errors import CommitFailedError

        return isinstance(error, CommitFailedError) and "UnknownMemberIdError" in str(error)


class AioLoop:
    """One event loop in a daemon thread for every aiokafka object of the module: the clients'
    background tasks keep running between the test's calls."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="aiokafka-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout=CALL_TIMEOUT):
        return asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, timeout), self.loop).result()

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


_aio = None


def aio() -> AioLoop:
    global _aio
    if _aio is None:
        _aio = AioLoop()
    return _aio


class AioProducer:
    def __init__(self, bootstrap, transactional_id, transaction_timeout_ms=None):
        from aiokafka import AIOKafkaProducer

        extra = {} if transaction_timeout_ms is None else {"transaction_timeout_ms": transaction_timeout_ms}

        async def create():
            return AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id, **extra)

        self.producer = aio().run(create())
        self.sent = []
        aio().run(self.producer.start())  # InitProducerId

    def begin(self):
        aio().run(self.producer.begin_transaction())

    def send(self, topic, partition, value):
        self.sent.append((topic, partition, aio().run(self.producer.send(topic, value=value, partition=partition))))

    def flush(self):
        aio().run(self.producer.flush())
        sent, self.sent = self.sent, []
        acks = []
        for topic, partition, future in sent:
            try:
                acks.append((topic, partition, aio().run(asyncio.shield(future)).offset))
            except Exception as error:  # reported as the ack
                acks.append((topic, partition, error))
        return acks

    def send_offsets(self, group, offsets):
        from aiokafka import TopicPartition

        aio().run(self.producer.send_offsets_to_transaction(
            {TopicPartition(topic, partition): offset for (topic, partition), offset in offsets.items()}, group))

    def commit(self):
        self.sent = []
        aio().run(self.producer.commit_transaction())

    def abort(self):
        self.sent = []
        aio().run(self.producer.abort_transaction())

    def close(self):
        from aiokafka.errors import ProducerFenced

        try:
            aio().run(self.producer.stop())
        except ProducerFenced:
            pass  # a fenced producer reports its fencing once more while it stops


class AioClient:
    name = "aiokafka"
    producer = AioProducer

    @staticmethod
    def read(bootstrap, isolation, partitions, count):
        from aiokafka import AIOKafkaConsumer, TopicPartition

        async def consume():
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                        isolation_level=isolation)
            await consumer.start()
            try:
                assigned = [TopicPartition(topic, partition) for topic, partition in partitions]
                consumer.assign(assigned)
                await consumer.seek_to_beginning(*assigned)
                records = Records(count)
                while not records.done():
                    for messages in (await consumer.getmany(timeout_ms=100)).values():
                        for m in messages:
                            records.add(m.topic, m.partition, m.offset, m.value)
                return records.by_partition
            finally:
                await consumer.stop()

        return aio().run(consume(), timeout=READ_TIMEOUT + CALL_TIMEOUT)

    @staticmethod
    def fenced(error):
        from aiokafka.errors import ProducerFenced

        return isinstance(error, ProducerFenced)


@pytest.fixture(scope="module", autouse=True)
def _stop_aio_loop():
    yield
    global _aio
    if _aio is not None:
        _aio.stop()
        _aio = None


class Records:
    """What a reader got, by partition: until ``count`` records came, then QUIET_AFTER_READ more
    seconds in which any further record is collected too (and fails the comparison)."""

    def __init__(self, count):
        self.count = count
        self.by_partition: dict[tuple[str, int], list[tuple[int, bytes]]] = {}
        self.received = 0
        self.deadline = time.monotonic() + READ_TIMEOUT
        self.quiet_until = None

    def add(self, topic, partition, offset, value):
        self.by_partition.setdefault((topic, partition), []).append((offset, value))
        self.received += 1

    def done(self) -> bool:
        now = time.monotonic()
        if self.quiet_until is None and self.received >= self.count:
            self.quiet_until = now + QUIET_AFTER_READ
        return now >= self.deadline or (self.quiet_until is not None and now >= self.quiet_until)


CLIENTS = [ConfluentClient, AioClient, KafkaPythonClient]


@pytest.fixture(params=CLIENTS, ids=lambda client: client.name)
def client(request):
    return request.param


@pytest.fixture
def names(client):
    """Unique topic, group and transactional id names: name("out") -> "<client>-out-<hex>"."""
    suffix = uuid.uuid4().hex[:8]
    return lambda what: f"{client.name}-{what}-{suffix}"


@pytest.fixture
def producers(transaction_broker, client):
    """producers(transactional_id, **timeout) -> an initialised transactional producer, closed
    at the end of the test."""
    made = []

    def make(transactional_id, **options):
        producer = client.producer(transaction_broker.bootstrap, transactional_id, **options)
        made.append(producer)
        return producer

    yield make
    for producer in made:
        producer.close()


def create_topics(broker, *topics, partitions=2):
    setup = RawClient(broker.host, broker.port)
    try:
        for topic in topics:
            assert create_topic(setup, topic, partitions=partitions).error_code == E.NONE
    finally:
        setup.close()


def offset_fetch(broker, group, topic, partitions, require_stable=False):
    """{partition: (committed offset, error code)} from OffsetFetch v7 (the first version with
    require_stable)."""
    client = RawClient(broker.host, broker.port)
    try:
        answer = client.request(OffsetFetchRequest(group_id=group, require_stable=require_stable, topics=[
            OffsetFetchRequestTopic(name=topic, partition_indexes=list(partitions))]), 7)
    finally:
        client.close()
    assert answer.error_code == E.NONE
    return {p.partition_index: (p.committed_offset, p.error_code) for p in answer.topics[0].partitions}


def settled_offsets(broker, group, topic, partitions, timeout=10.0):
    """The group's offsets once no transaction's offset commit is pending on them: what a
    read_committed consumer asks for (require_stable) and retries while the answer is
    UNSTABLE_OFFSET_COMMIT. A transaction's end returns before its markers are written, so
    its offsets may settle just after the producer's commit or abort returned."""
    deadline = time.monotonic() + timeout
    while True:
        answer = offset_fetch(broker, group, topic, partitions, require_stable=True)
        if all(error != E.UNSTABLE_OFFSET_COMMIT for _, error in answer.values()):
            return answer
        assert time.monotonic() < deadline, f"offsets of {group} still unstable after {timeout}s: {answer}"
        time.sleep(0.05)


def produce_plain(bootstrap, topic, records):
    """Non-transactional records [(partition, value)] written with kafka-python."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for partition, value in records:
            producer.send(topic, value=value, partition=partition).get(timeout=CALL_TIMEOUT)
    finally:
        producer.close(timeout=5)


def every_partition(*topics, partitions=2):
    return [(topic, partition) for topic in topics for partition in range(partitions)]


# ----------------------------------------------------------------------------------- scenarios
def test_commit_abort_commit_over_two_topics(transaction_broker, client, names, producers):
    first, second = names("first"), names("second")
    create_topics(transaction_broker, first, second)
    producer = producers(names("txn"))

    producer.begin()
    for topic, partition, value in [(first, 0, b"c1"), (first, 1, b"c2"), (second, 0, b"c3"), (second, 1, b"c4")]:
        producer.send(topic, partition, value)
    producer.commit()
    producer.begin()
    for topic, partition, value in [(first, 0, b"a1"), (first, 0, b"a2"), (second, 1, b"a3")]:
        producer.send(topic, partition, value)
    # The aborted records are written (acknowledged) before the abort.
    assert sorted(producer.flush()) == [(first, 0, 2), (first, 0, 3), (second, 1, 2)]
    producer.abort()
    producer.begin()
    for topic, partition, value in [(first, 0, b"c5"), (second, 1, b"c6"), (first, 0, b"c7")]:
        producer.send(topic, partition, value)
    producer.commit()

    # Offsets as Kafka gives them: each transaction end leaves one marker in each partition the
    # transaction wrote to (first-0: c1 0, marker 1, a1 2, a2 3, marker 4, c5 5, c7 6, marker 7).
    committed = {(first, 0): [(0, b"c1"), (5, b"c5"), (6, b"c7")], (first, 1): [(0, b"c2")],
                 (second, 0): [(0, b"c3")], (second, 1): [(0, b"c4"), (4, b"c6")]}
    everything = {(first, 0): [(0, b"c1"), (2, b"a1"), (3, b"a2"), (5, b"c5"), (6, b"c7")], (first, 1): [(0, b"c2")],
                  (second, 0): [(0, b"c3")], (second, 1): [(0, b"c4"), (2, b"a3"), (4, b"c6")]}
    partitions = every_partition(first, second)
    assert client.read(transaction_broker.bootstrap, "read_committed", partitions, 7) == committed
    assert client.read(transaction_broker.bootstrap, "read_uncommitted", partitions, 10) == everything


def test_offsets_sent_in_a_transaction_are_visible_exactly_when_it_commits(transaction_broker, client, names,
                                                                         producers):
    """Consume-transform-produce: read the input, write each value upper-cased to the output,
    send the offsets after what was read; then the same with an abort."""
    source, sink, group = names("in"), names("out"), names("group")
    create_topics(transaction_broker, source, sink)
    produce_plain(transaction_broker.bootstrap, source, [(p, b"in-%d-%d" % (p, i)) for p in range(2) for i in range(3)])
    inputs = client.read(transaction_broker.bootstrap, "read_committed", every_partition(source), 6)
    assert {key: [value for _, value in records] for key, records in inputs.items()} == {
        (source, p): [b"in-%d-%d" % (p, i) for i in range(3)] for p in range(2)}

    producer = producers(names("txn"))
    nothing = {0: (-1, E.NONE), 1: (-1, E.NONE)}
    producer.begin()
    for (_, partition), records in sorted(inputs.items()):
        for _, value in records[:2]:
            producer.send(sink, partition, value.upper())
    producer.send_offsets(group, {(source, 0): 2, (source, 1): 2})
    # Sent, not committed: the group's offsets are unchanged, and a fetch that requires stable
    # offsets is told the partitions have a pending transactional commit.
    assert offset_fetch(transaction_broker, group, source, range(2)) == nothing
    assert offset_fetch(transaction_broker, group, source, range(2), require_stable=True) == {
        0: (-1, E.UNSTABLE_OFFSET_COMMIT), 1: (-1, E.UNSTABLE_OFFSET_COMMIT)}
    producer.commit()
    assert settled_offsets(transaction_broker, group, source, range(2)) == {0: (2, E.NONE), 1: (2, E.NONE)}
    assert offset_fetch(transaction_broker, group, source, range(2)) == {0: (2, E.NONE), 1: (2, E.NONE)}

    producer.begin()
    for (_, partition), records in sorted(inputs.items()):
        producer.send(sink, partition, records[2][1].upper())
    producer.send_offsets(group, {(source, 0): 3, (source, 1): 3})
    producer.abort()
    # The aborted transaction's offsets never become the group's.
    assert settled_offsets(transaction_broker, group, source, range(2)) == {0: (2, E.NONE), 1: (2, E.NONE)}
    assert offset_fetch(transaction_broker, group, source, range(2)) == {0: (2, E.NONE), 1: (2, E.NONE)}

    # Done again, committed: the last input is consumed exactly once in the output.
    producer.begin()
    for (_, partition), records in sorted(inputs.items()):
        producer.send(sink, partition, records[2][1].upper())
    producer.send_offsets(group, {(source, 0): 3, (source, 1): 3})
    producer.commit()
    assert settled_offsets(transaction_broker, group, source, range(2)) == {0: (3, E.NONE), 1: (3, E.NONE)}
    assert offset_fetch(transaction_broker, group, source, range(2)) == {0: (3, E.NONE), 1: (3, E.NONE)}
    output = client.read(transaction_broker.bootstrap, "read_committed", every_partition(sink), 6)
    assert {key: [value for _, value in records] for key, records in output.items()} == {
        (sink, p): [b"IN-%d-%d" % (p, i) for i in range(3)] for p in range(2)}


def test_a_second_producer_with_the_same_id_fences_the_first(transaction_broker, client, names, producers):
    topic, transactional_id = names("fenced"), names("txn")
    create_topics(transaction_broker, topic)
    first = producers(transactional_id)
    first.begin()
    first.send(topic, 0, b"from-the-fenced-one")
    assert first.flush() == [(topic, 0, 0)]
    second = producers(transactional_id)  # aborts the first one's open transaction
    with pytest.raises(Exception) as raised:
        first.commit()
    assert client.fenced(raised.value), repr(raised.value)

    second.begin()
    second.send(topic, 0, b"from-the-new-one")
    second.commit()
    # The fenced transaction was aborted (offset 1 is its abort marker); only the new one counts.
    partitions = every_partition(topic, partitions=1)
    assert client.read(transaction_broker.bootstrap, "read_committed", partitions, 1) == {
        (topic, 0): [(2, b"from-the-new-one")]}
    assert client.read(transaction_broker.bootstrap, "read_uncommitted", partitions, 2) == {
        (topic, 0): [(0, b"from-the-fenced-one"), (2, b"from-the-new-one")]}


def test_a_transaction_open_past_its_timeout_is_aborted_by_the_broker(transaction_broker, client, names, producers):
    topic, transactional_id = names("timeout"), names("txn")
    create_topics(transaction_broker, topic)
    producer = producers(transactional_id, transaction_timeout_ms=SHORT_TRANSACTION_TIMEOUT_MS)
    producer.begin()
    producer.send(topic, 0, b"too-late")
    assert producer.flush() == [(topic, 0, 0)]
    time.sleep(IDLE_PAST_TIMEOUT)
    with pytest.raises(Exception) as raised:
        producer.commit()
    assert client.fenced(raised.value), repr(raised.value)

    # The id works again, and the broker's abort marker (offset 1) ended the old transaction:
    # read_committed passes it and gets only the new record.
    again = producers(transactional_id)
    again.begin()
    again.send(topic, 0, b"on-time")
    again.commit()
    partitions = every_partition(topic, partitions=1)
    assert client.read(transaction_broker.bootstrap, "read_committed", partitions, 1) == {
        (topic, 0): [(2, b"on-time")]}
    assert client.read(transaction_broker.bootstrap, "read_uncommitted", partitions, 2) == {
        (topic, 0): [(0, b"too-late"), (2, b"on-time")]}


# aiokafka's send_offsets_to_transaction takes a group id, never a member's metadata.
@pytest.mark.parametrize("client", [ConfluentClient, KafkaPythonClient], ids=lambda client: client.name)
def test_offsets_of_a_group_member_and_of_one_that_left(transaction_broker, client, names, producers):
    """Consume-transform-produce as a member of the group (KIP-447: the offsets carry the
    member's generation and id, which the broker checks): committed, they are the group's. Once
    the member has left, its metadata is stale: the broker refuses the offsets (UNKNOWN_MEMBER_ID,
    as Kafka 4.4 answers), the client asks for an abort, and the group's offsets stay."""
    source, sink, group = names("in"), names("out"), names("group")
    create_topics(transaction_broker, source, sink)
    produce_plain(transaction_broker.bootstrap, source, [(p, b"in-%d-%d" % (p, i)) for p in range(2) for i in range(2)])
    member = client.member(transaction_broker.bootstrap, group, source, 4)
    try:
        assert {key: [value for _, value in records] for key, records in member.records.items()} == {
            (source, p): [b"in-%d-%d" % (p, i) for i in range(2)] for p in range(2)}
        producer = producers(names("txn"))
        producer.begin()
        for (_, partition), records in sorted(member.records.items()):
            for _, value in records:
                producer.send(sink, partition, value.upper())
        producer.send_offsets(member.metadata, {(source, 0): 2, (source, 1): 2})
        producer.commit()
        assert settled_offsets(transaction_broker, group, source, range(2)) == {0: (2, E.NONE), 1: (2, E.NONE)}
    finally:
        member.leave()

    producer.begin()
    producer.send(sink, 0, b"from-a-zombie")
    assert producer.flush() == [(sink, 0, 3)]  # out-0: IN-0-0 0, IN-0-1 1, marker 2
    with pytest.raises(Exception) as raised:
        producer.send_offsets(member.metadata, {(source, 0): 5})
    assert client.stale_member(raised.value), repr(raised.value)
    producer.abort()
    assert settled_offsets(transaction_broker, group, source, range(2)) == {0: (2, E.NONE), 1: (2, E.NONE)}
    output = client.read(transaction_broker.bootstrap, "read_committed", every_partition(sink), 4)
    assert {key: [value for _, value in records] for key, records in output.items()} == {
        (sink, p): [b"IN-%d-%d" % (p, i) for i in range(2)] for p in range(2)}
