"""Fetch session (KIP-227) scenarios over raw Fetch requests, runnable against any broker: every
(session id, epoch) combination and the sequences clients rely on. Each answer is reduced to
what does not depend on the run (error code, which session id came back, which partitions and
what they carry), so that odradek's answers can be compared with an expected table here and with
a real Kafka broker's (compat/test_same_answers_as_kafka.py).

A session id in an answer is named: ``0`` (none), ``"new@<shard>"`` (a session id not seen
before, with the cache shard its value falls in: Kafka gives shard n the ids from
n * (2**31 - 1) // 8), ``"<label>"`` (the id first returned at the step so labelled) or
``"request"`` (the id the request sent, not otherwise known).
"""

from __future__ import annotations

import time
import uuid

from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.messages.delete_topics import DeleteTopicsRequest
from odradek.protocol.messages.fetch import FetchRequest
from odradek.protocol.messages.metadata import MetadataRequest
from odradek.protocol.messages.produce import ProduceRequest
from odradek.protocol.records.batch import Record, build_batch, iter_batches

from .conftest import RawClient

NAMES_VERSION = 12  # the last Fetch version with topic names
IDS_VERSION = 13  # the first with topic ids
SESSION_ID_RANGE = (2**31 - 1) // 8
RETRIABLE_WHILE_CREATING = (3, 5, 6)  # UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER
TRANSIENT = (5, 6)  # Kafka's answers while a new topic's leader is being set up


class SessionProbe:
    """One connection, one topic of ``partitions`` partitions, and the named answers so far."""

    def __init__(self, host: str, port: int, partitions: int = 2):
        self.client = RawClient(host, port, timeout=30)
        self.topic = f"sessions-{uuid.uuid4().hex[:8]}"
        self.create_topic(partitions)
        self.answers: list[tuple] = []
        self._names: dict[int, str] = {}
        self._wait_until_served(partitions)

    def close(self) -> None:
        self.client.close()

    def create_topic(self, partitions: int) -> None:
        """Create the probe's topic (again, after delete_topic: Kafka may still be deleting it)."""
        deadline = time.monotonic() + 30
        while True:
            created = self.client.request(CreateTopicsRequest(timeout_ms=10000, topics=[
                CreateTopicsRequest.CreatableTopic(name=self.topic, num_partitions=partitions,
                                                   replication_factor=1)]), 7)
            if created.topics[0].error_code == 0:
                break
            assert created.topics[0].error_code == 36 and time.monotonic() < deadline, created  # TOPIC_ALREADY_EXISTS
            time.sleep(0.2)
        self.topic_id = self._topic_id()
        self.ids_seen = getattr(self, "ids_seen", []) + [self.topic_id]

    def delete_topic(self) -> None:
        deleted = self.client.request(DeleteTopicsRequest(timeout_ms=10000, topic_names=[self.topic]), 5)
        assert deleted.responses[0].error_code == 0, deleted

    def _topic_id(self) -> uuid.UUID:
        deadline = time.monotonic() + 30
        while True:
            metadata = self.client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(
                name=self.topic)], allow_auto_topic_creation=False), 12)
            topic = metadata.topics[0]
            if topic.error_code == 0 and topic.partitions and all(p.leader_id >= 0 for p in topic.partitions):
                return topic.topic_id
            assert time.monotonic() < deadline, metadata
            time.sleep(0.1)

    def _wait_until_served(self, partitions: int) -> None:
        """Kafka answers NOT_LEADER_OR_FOLLOWER for a moment after its metadata names the leader."""
        deadline = time.monotonic() + 30
        while True:
            answer = self.fetch("ready?", 0, -1, [(partition, 0) for partition in range(partitions)])
            self.answers.pop()
            if all(error == 0 for _, error, _, _, _ in answer[3]):
                return
            assert time.monotonic() < deadline, answer
            time.sleep(0.1)

    def produce(self, partition: int, *values: bytes) -> None:
        batch = build_batch([Record(i, 0, None, value) for i, value in enumerate(values)],
                            base_timestamp=int(time.time() * 1000))
        request = ProduceRequest(acks=-1, timeout_ms=10000, topic_data=[ProduceRequest.TopicProduceData(
            name=self.topic, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
                index=partition, records=batch)])])
        deadline = time.monotonic() + 30
        while True:
            answer = self.client.request(request, 9).responses[0].partition_responses[0]
            if answer.error_code == 0:
                return
            assert answer.error_code in RETRIABLE_WHILE_CREATING and time.monotonic() < deadline, answer
            time.sleep(0.1)

    def fetch(self, label: str, session_id: int, epoch: int, partitions=(), forgotten=(),
              version: int = NAMES_VERSION, topic_id: uuid.UUID | None = None) -> tuple:
        """Send a Fetch naming ``partitions`` ((partition, fetch offset) pairs) and forgetting
        ``forgotten`` (partition numbers); record and return the reduced answer."""
        by_id = version >= IDS_VERSION
        topic_id = topic_id or self.topic_id
        topic_fields = {"topic_id": topic_id} if by_id else {"topic": self.topic}
        request = FetchRequest(
            replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0,
            session_id=session_id, session_epoch=epoch,
            topics=[FetchRequest.FetchTopic(**topic_fields, partitions=[FetchRequest.FetchTopic.FetchPartition(
                partition=partition, fetch_offset=offset, partition_max_bytes=1 << 20)
                for partition, offset in partitions])] if partitions else [],
            forgotten_topics_data=[FetchRequest.ForgottenTopic(**topic_fields, partitions=list(forgotten))]
            if forgotten else [])
        response = self.client.request(request, version)
        carried = []
        for topic in response.responses:
            assert (topic.topic_id == topic_id) if by_id else (topic.topic == self.topic), topic
            for item in topic.partitions:
                records = [record.value for batch in iter_batches(bytes(item.records or b""))
                           for record in batch.records]
                carried.append((item.partition_index, item.error_code, item.high_watermark, item.log_start_offset,
                                records))
        answer = (label, response.error_code, self._name(label, response.session_id, session_id), carried)
        self.answers.append(answer)
        return answer

    def session_id(self, label: str) -> int:
        """The session id first answered at step ``label``."""
        return next(value for value, name in self._names.items() if name == label)

    def _name(self, label: str, session_id: int, requested: int):
        if session_id == 0:
            return 0
        if session_id in self._names:
            return self._names[session_id]
        if session_id == requested:
            return "request"
        self._names[session_id] = label
        return f"new@{session_id // SESSION_ID_RANGE}"


def every_combination(host: str, port: int) -> list[tuple]:
    """Sessions opened, continued, reopened with epoch 0 on the same id, closed with -1, unknown
    ids, wrong and negative epochs, id 0 with an incremental epoch, the topic name / topic id
    switch, a session emptied by forgetting, an empty full fetch, a partition added and one in
    error, a partition named twice, and ids that no cache shard holds. On a fresh broker (the
    shard of a new id depends on how many sessions were opened before)."""
    probe = SessionProbe(host, port)
    fetch, ids = probe.fetch, probe.session_id
    try:
        probe.produce(0, b"a0")
        both = [(0, 0), (1, 0)]
        fetch("sessionless", 0, -1, both)
        fetch("open A", 0, 0, both)
        fetch("A 1, nothing changed", ids("open A"), 1, [(0, 1)])
        fetch("A 1 again", ids("open A"), 1)
        fetch("A 3, ahead", ids("open A"), 3)
        fetch("A -2", ids("open A"), -2)
        probe.produce(1, b"b0")
        fetch("A 2, p1 has a record", ids("open A"), 2)
        fetch("A 3, nothing changed", ids("open A"), 3, [(1, 1)])
        fetch("reopen A with epoch 0", ids("open A"), 0, [(0, 1), (1, 1)])
        fetch("A 4 after the reopen", ids("open A"), 4)
        fetch("A 1 after the reopen", ids("open A"), 1)
        fetch("B 1", ids("reopen A with epoch 0"), 1)
        fetch("B 2 by topic id", ids("reopen A with epoch 0"), 2, version=IDS_VERSION)
        fetch("B 2 by name still works", ids("reopen A with epoch 0"), 2)
        fetch("unknown id, epoch 0", 12345, 0, [(0, 0)])
        fetch("unknown id, epoch 1", 12345, 1)
        fetch("unknown id, epoch -1", 12345, -1, [(0, 0)])
        fetch("id 0, epoch 1", 0, 1, [(0, 0)])
        fetch("id 0, epoch 7", 0, 7)
        fetch("id 0, epoch -2", 0, -2, [(0, 0)])
        fetch("id -1, epoch 1", -1, 1)
        fetch("id -1, epoch 0", -1, 0, [(0, 0)])
        fetch("close C with -1 and partitions", ids("unknown id, epoch 0"), -1, [(1, 0)])
        fetch("C 1 after the close", ids("unknown id, epoch 0"), 1)
        fetch("close D with -1", ids("id -1, epoch 0"), -1)
        fetch("open E by topic id", 0, 0, [(0, 1)], version=IDS_VERSION)
        fetch("E 1 by name", ids("open E by topic id"), 1)
        fetch("E 1 by topic id, adds p1", ids("open E by topic id"), 1, [(1, 0)], version=IDS_VERSION)
        fetch("E 2 forgets p1", ids("open E by topic id"), 2, forgotten=[1], version=IDS_VERSION)
        probe.produce(0, b"a1")
        fetch("E 3, p0 has a record", ids("open E by topic id"), 3, version=IDS_VERSION)
        fetch("E 4 adds p7 (no such partition)", ids("open E by topic id"), 4, [(7, 0)], version=IDS_VERSION)
        fetch("E 5, p7 still in error", ids("open E by topic id"), 5, version=IDS_VERSION)
        fetch("B 3 forgets everything", ids("reopen A with epoch 0"), 3, forgotten=[0, 1])
        fetch("B 4 after it emptied", ids("reopen A with epoch 0"), 4)
        fetch("open F with nothing", 0, 0)
        fetch("F 1 with nothing", ids("open F with nothing"), 1)
        fetch("F 2 after it emptied", ids("open F with nothing"), 2)
        fetch("open G naming p0 twice", 0, 0, [(0, 0), (0, 1)])
        fetch("G 1, nothing changed", ids("open G naming p0 twice"), 1)
        fetch("sessionless naming p0 twice", 0, -1, [(0, 1), (0, 0)])
        fetch("G 2 adds and forgets p1", ids("open G naming p0 twice"), 2, [(1, 0)], forgotten=[1])
        fetch("G 3 adds and forgets p0", ids("open G naming p0 twice"), 3, [(0, 0)], forgotten=[0])
        fetch("G 4 after it emptied", ids("open G naming p0 twice"), 4)
        top = 8 * SESSION_ID_RANGE
        fetch("id past the last shard, epoch 1", top, 1, [(0, 0)])
        fetch("id past the last shard, epoch 0", top, 0, [(0, 0)])
        fetch("id past the last shard, epoch -1, by topic id", 2**31 - 1, -1, [(0, 0)], version=IDS_VERSION)
        fetch("id below the first shard, epoch 0", -2**31, 0, [(1, 0)])
        fetch("id below the first shard, epoch 1", -SESSION_ID_RANGE, 1)
        fetch("E 6 at the end", ids("open E by topic id"), 6, version=IDS_VERSION)
        return probe.answers
    finally:
        probe.close()


def cache_full(host: str, port: int) -> list[tuple]:
    """With ``max.incremental.fetch.session.cache.slots=8`` (one session per shard) on a fresh
    broker: eight full fetches open a session each, in shards 0-7; the next ones find their
    shard full and get none (the sessions are too recent to evict); closing them all makes room
    again; a full fetch naming a session closes it even when no new one can be opened."""
    probe = SessionProbe(host, port)
    try:
        probe.produce(0, b"a0")
        for n in range(8):
            probe.fetch(f"open {n}", 0, 0, [(0, 0)])
        probe.fetch("ninth", 0, 0, [(0, 0)])
        probe.fetch("tenth, bigger", 0, 0, [(0, 0), (1, 0)])
        probe.fetch("0 1 still there", probe.session_id("open 0"), 1)
        for n in range(8):
            probe.fetch(f"close {n}", probe.session_id(f"open {n}"), -1)
        for n in range(8):
            probe.fetch(f"open again {n}", 0, 0, [(0, 1)])
        # Ten opens so far went round the shards: again-0 is in shard 2, again-3 in shard 5.
        probe.fetch("reopen again-3: shard 5 freed, shard 2 next", probe.session_id("open again 3"), 0, [(0, 1)])
        probe.fetch("again-3 1 after the reopen", probe.session_id("open again 3"), 1)
        probe.fetch("reopen again-4: shard 6 freed, shard 3 next", probe.session_id("open again 4"), 0, [(0, 1)])
        probe.fetch("open with shard 4 next", 0, 0, [(0, 1)])
        probe.fetch("open with shard 5 next", 0, 0, [(0, 1)])
        return probe.answers
    finally:
        probe.close()



def topic_deleted_and_recreated(host: str, port: int) -> list[tuple]:
    """A session by topic id whose topic is deleted, then created again under the same name (a
    new id): Kafka's session keeps the name it resolved, so the partitions are
    UNKNOWN_TOPIC_OR_PARTITION and then INCONSISTENT_TOPIC_ID; a fetch naming the old id
    without the session gets UNKNOWN_TOPIC_ID. Kafka applies a deletion or creation a moment
    later: each such step is the first answer that differs from the one before (and has no
    partition in a TRANSIENT state)."""
    probe = SessionProbe(host, port)
    try:
        probe.produce(0, b"a0")
        opened = probe.fetch("open by topic id", 0, 0, [(0, 0), (1, 0)], version=IDS_VERSION)
        session_id, epoch = probe.session_id("open by topic id"), 1
        probe.fetch("1, nothing changed", session_id, epoch, [(0, 1)], version=IDS_VERSION)
        old_id = probe.topic_id

        def next_change(label, previous):
            nonlocal epoch
            deadline = time.monotonic() + 30
            while True:
                epoch += 1
                answer = probe.fetch(label, session_id, epoch, version=IDS_VERSION, topic_id=old_id)
                settled = all(error not in TRANSIENT for _, error, _, _, _ in answer[3])
                if answer[1:] != previous[1:] and settled:
                    return answer
                probe.answers.pop()
                assert time.monotonic() < deadline, answer
                time.sleep(0.1)

        probe.delete_topic()
        deleted = next_change("after the delete", probe.answers[-1])
        probe.create_topic(2)
        next_change("after the topic is created again", deleted)
        probe.fetch("old id without a session", 0, -1, [(0, 0)], version=IDS_VERSION, topic_id=old_id)
        probe.fetch("new id, new session", 0, 0, [(0, 0), (1, 0)], version=IDS_VERSION)
        assert opened[3] and probe.topic_id != old_id
        return probe.answers
    finally:
        probe.close()


EVICTION_WAIT_S = 121.5  # a little more than Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS


def eviction_start(host: str, port: int) -> SessionProbe:
    """With ``max.incremental.fetch.session.cache.slots=8`` on a fresh broker: a session of one
    partition in each shard. Wait EVICTION_WAIT_S, then :func:`eviction_finish`."""
    probe = SessionProbe(host, port)
    for n in range(8):
        probe.fetch(f"open {n}", 0, 0, [(0, 0)])
    return probe


def eviction_finish(probe: SessionProbe) -> list[tuple]:
    """Sessions 0-5 are used now (older than the eviction time when used: a bigger session may
    evict them), 6 and 7 were unused longer than it (any new session evicts them)."""
    try:
        for n in range(6):
            probe.fetch(f"{n} 1, older than the eviction time", probe.session_id(f"open {n}"), 1)
        probe.fetch("one partition, shard 0 next", 0, 0, [(0, 0)])
        probe.fetch("two partitions, shard 1 next", 0, 0, [(0, 0), (1, 0)])
        probe.fetch("1 2 after it was evicted", probe.session_id("open 1"), 2)
        probe.fetch("two partitions, shard 2 next", 0, 0, [(0, 0), (1, 0)])
        probe.fetch("one partition, shard 3 next", 0, 0, [(0, 0)])
        probe.fetch("one partition, shard 4 next", 0, 0, [(0, 0)])
        probe.fetch("one partition, shard 5 next", 0, 0, [(1, 0)])
        probe.fetch("one partition, shard 6 next", 0, 0, [(0, 0)])
        probe.fetch("6 1 after it was evicted", probe.session_id("open 6"), 1)
        probe.fetch("none, shard 7 next", 0, 0)
        probe.fetch("0 2 still there", probe.session_id("open 0"), 2)
        probe.fetch("3 2 still there", probe.session_id("open 3"), 2)
        return probe.answers
    finally:
        probe.close()


# Kafka 4.4.0's answers (checked against a running Kafka by compat/test_same_answers_as_kafka.py):
# (step, error code, session id, [(partition, error code, high watermark, log start offset,
# record values)]). Error codes: 70 FETCH_SESSION_ID_NOT_FOUND, 71 INVALID_FETCH_SESSION_EPOCH,
# 106 FETCH_SESSION_TOPIC_ID_ERROR, 3 UNKNOWN_TOPIC_OR_PARTITION, -1 UNKNOWN_SERVER_ERROR,
# 100 UNKNOWN_TOPIC_ID, 103 INCONSISTENT_TOPIC_ID.
EVERY_COMBINATION = [
    ('sessionless', 0, 0, [(0, 0, 1, 0, [b'a0']), (1, 0, 0, 0, [])]),
    ('open A', 0, 'new@0', [(0, 0, 1, 0, [b'a0']), (1, 0, 0, 0, [])]),
    ('A 1, nothing changed', 0, 'open A', []),
    ('A 1 again', 71, 0, []),
    ('A 3, ahead', 71, 0, []),
    ('A -2', 71, 0, []),
    ('A 2, p1 has a record', 0, 'open A', [(1, 0, 1, 0, [b'b0'])]),
    ('A 3, nothing changed', 0, 'open A', []),
    ('reopen A with epoch 0', 0, 'new@1', [(0, 0, 1, 0, []), (1, 0, 1, 0, [])]),
    ('A 4 after the reopen', 70, 0, []),
    ('A 1 after the reopen', 70, 0, []),
    ('B 1', 0, 'reopen A with epoch 0', []),
    ('B 2 by topic id', 106, 0, []),
    ('B 2 by name still works', 0, 'reopen A with epoch 0', []),
    ('unknown id, epoch 0', 0, 'new@2', [(0, 0, 1, 0, [b'a0'])]),
    ('unknown id, epoch 1', 70, 0, []),
    ('unknown id, epoch -1', 0, 0, [(0, 0, 1, 0, [b'a0'])]),
    ('id 0, epoch 1', 70, 0, []),
    ('id 0, epoch 7', 70, 0, []),
    ('id 0, epoch -2', 70, 0, []),
    ('id -1, epoch 1', 70, 0, []),
    ('id -1, epoch 0', 0, 'new@3', [(0, 0, 1, 0, [b'a0'])]),
    ('close C with -1 and partitions', 0, 0, [(1, 0, 1, 0, [b'b0'])]),
    ('C 1 after the close', 70, 0, []),
    ('close D with -1', 0, 0, []),
    ('open E by topic id', 0, 'new@4', [(0, 0, 1, 0, [])]),
    ('E 1 by name', 106, 0, []),
    ('E 1 by topic id, adds p1', 0, 'open E by topic id', [(1, 0, 1, 0, [b'b0'])]),
    ('E 2 forgets p1', 0, 'open E by topic id', []),
    ('E 3, p0 has a record', 0, 'open E by topic id', [(0, 0, 2, 0, [b'a1'])]),
    ('E 4 adds p7 (no such partition)', 0, 'open E by topic id', [(0, 0, 2, 0, [b'a1']), (7, 3, -1, -1, [])]),
    ('E 5, p7 still in error', 0, 'open E by topic id', [(0, 0, 2, 0, [b'a1']), (7, 3, -1, -1, [])]),
    ('B 3 forgets everything', 0, 0, []),
    ('B 4 after it emptied', 70, 0, []),
    ('open F with nothing', 0, 'new@5', []),
    ('F 1 with nothing', 0, 0, []),
    ('F 2 after it emptied', 70, 0, []),
    ('open G naming p0 twice', 0, 'new@6', [(0, 0, 2, 0, [b'a1'])]),
    ('G 1, nothing changed', 0, 'open G naming p0 twice', [(0, 0, 2, 0, [b'a1'])]),
    ('sessionless naming p0 twice', 0, 0, [(0, 0, 2, 0, [b'a0', b'a1'])]),
    ('G 2 adds and forgets p1', 0, 'open G naming p0 twice', [(0, 0, 2, 0, [b'a1'])]),
    ('G 3 adds and forgets p0', 0, 0, [(0, 0, 2, 0, [b'a0', b'a1'])]),
    ('G 4 after it emptied', 70, 0, []),
    ('id past the last shard, epoch 1', -1, 'request', [(0, -1, -1, -1, [])]),
    ('id past the last shard, epoch 0', -1, 'request', [(0, -1, -1, -1, [])]),
    ('id past the last shard, epoch -1, by topic id', -1, 'request', []),
    ('id below the first shard, epoch 0', -1, 'request', [(1, -1, -1, -1, [])]),
    ('id below the first shard, epoch 1', -1, 'request', []),
    ('E 6 at the end', 0, 'open E by topic id', [(0, 0, 2, 0, [b'a1']), (7, 3, -1, -1, [])]),
]

CACHE_FULL = [
    ('open 0', 0, 'new@0', [(0, 0, 1, 0, [b'a0'])]),
    ('open 1', 0, 'new@1', [(0, 0, 1, 0, [b'a0'])]),
    ('open 2', 0, 'new@2', [(0, 0, 1, 0, [b'a0'])]),
    ('open 3', 0, 'new@3', [(0, 0, 1, 0, [b'a0'])]),
    ('open 4', 0, 'new@4', [(0, 0, 1, 0, [b'a0'])]),
    ('open 5', 0, 'new@5', [(0, 0, 1, 0, [b'a0'])]),
    ('open 6', 0, 'new@6', [(0, 0, 1, 0, [b'a0'])]),
    ('open 7', 0, 'new@7', [(0, 0, 1, 0, [b'a0'])]),
    ('ninth', 0, 0, [(0, 0, 1, 0, [b'a0'])]),
    ('tenth, bigger', 0, 0, [(0, 0, 1, 0, [b'a0']), (1, 0, 0, 0, [])]),
    ('0 1 still there', 0, 'open 0', [(0, 0, 1, 0, [b'a0'])]),
    ('close 0', 0, 0, []),
    ('close 1', 0, 0, []),
    ('close 2', 0, 0, []),
    ('close 3', 0, 0, []),
    ('close 4', 0, 0, []),
    ('close 5', 0, 0, []),
    ('close 6', 0, 0, []),
    ('close 7', 0, 0, []),
    ('open again 0', 0, 'new@2', [(0, 0, 1, 0, [])]),
    ('open again 1', 0, 'new@3', [(0, 0, 1, 0, [])]),
    ('open again 2', 0, 'new@4', [(0, 0, 1, 0, [])]),
    ('open again 3', 0, 'new@5', [(0, 0, 1, 0, [])]),
    ('open again 4', 0, 'new@6', [(0, 0, 1, 0, [])]),
    ('open again 5', 0, 'new@7', [(0, 0, 1, 0, [])]),
    ('open again 6', 0, 'new@0', [(0, 0, 1, 0, [])]),
    ('open again 7', 0, 'new@1', [(0, 0, 1, 0, [])]),
    ('reopen again-3: shard 5 freed, shard 2 next', 0, 0, [(0, 0, 1, 0, [])]),
    ('again-3 1 after the reopen', 70, 0, []),
    ('reopen again-4: shard 6 freed, shard 3 next', 0, 0, [(0, 0, 1, 0, [])]),
    ('open with shard 4 next', 0, 0, [(0, 0, 1, 0, [])]),
    ('open with shard 5 next', 0, 'new@5', [(0, 0, 1, 0, [])]),
]

EVICTION = [
    ('open 0', 0, 'new@0', [(0, 0, 0, 0, [])]),
    ('open 1', 0, 'new@1', [(0, 0, 0, 0, [])]),
    ('open 2', 0, 'new@2', [(0, 0, 0, 0, [])]),
    ('open 3', 0, 'new@3', [(0, 0, 0, 0, [])]),
    ('open 4', 0, 'new@4', [(0, 0, 0, 0, [])]),
    ('open 5', 0, 'new@5', [(0, 0, 0, 0, [])]),
    ('open 6', 0, 'new@6', [(0, 0, 0, 0, [])]),
    ('open 7', 0, 'new@7', [(0, 0, 0, 0, [])]),
    ('0 1, older than the eviction time', 0, 'open 0', []),
    ('1 1, older than the eviction time', 0, 'open 1', []),
    ('2 1, older than the eviction time', 0, 'open 2', []),
    ('3 1, older than the eviction time', 0, 'open 3', []),
    ('4 1, older than the eviction time', 0, 'open 4', []),
    ('5 1, older than the eviction time', 0, 'open 5', []),
    ('one partition, shard 0 next', 0, 0, [(0, 0, 0, 0, [])]),
    ('two partitions, shard 1 next', 0, 'new@1', [(0, 0, 0, 0, []), (1, 0, 0, 0, [])]),
    ('1 2 after it was evicted', 70, 0, []),
    ('two partitions, shard 2 next', 0, 'new@2', [(0, 0, 0, 0, []), (1, 0, 0, 0, [])]),
    ('one partition, shard 3 next', 0, 0, [(0, 0, 0, 0, [])]),
    ('one partition, shard 4 next', 0, 0, [(0, 0, 0, 0, [])]),
    ('one partition, shard 5 next', 0, 0, [(1, 0, 0, 0, [])]),
    ('one partition, shard 6 next', 0, 'new@6', [(0, 0, 0, 0, [])]),
    ('6 1 after it was evicted', 70, 0, []),
    ('none, shard 7 next', 0, 'new@7', []),
    ('0 2 still there', 0, 'open 0', []),
    ('3 2 still there', 0, 'open 3', []),
]

RECREATED = [
    ('open by topic id', 0, 'new@0', [(0, 0, 1, 0, [b'a0']), (1, 0, 0, 0, [])]),
    ('1, nothing changed', 0, 'open by topic id', []),
    ('after the delete', 0, 'open by topic id', [(0, 3, -1, -1, []), (1, 3, -1, -1, [])]),
    ('after the topic is created again', 0, 'open by topic id', [(0, 103, -1, -1, []), (1, 103, -1, -1, [])]),
    ('old id without a session', 0, 0, [(0, 100, -1, -1, [])]),
    ('new id, new session', 0, 'new@1', [(0, 0, 0, 0, []), (1, 0, 0, 0, [])]),
]
