"""Incremental fetch sessions (KIP-227): the session cache on its own (its eviction with a
stepped clock, a hypothesis model of random request sequences), and over the wire: Kafka's
answer to every session id / epoch combination (tests/broker/fetch_session_scenarios.py, whose
tables compat/test_same_answers_as_kafka.py checks against a running Kafka), and a long poll
overtaken in its session."""

from __future__ import annotations

import time
import uuid

import pytest
from hypothesis import given, settings, strategies as st

from odradek.broker.fetch_sessions import (CACHE_SHARDS, EVICTION_MS, SESSION_ID_RANGE, FetchSessionCache,
                                          FetchSessionError, FetchSessionIdOutOfRange, FetchTarget)
from odradek.protocol import error_codes
from odradek.protocol.messages.fetch import FetchRequest

from . import fetch_session_scenarios
from .test_server import batch_of, create_topic, produce, records_of


def target(name, partition, offset=0):
    return FetchTarget(("name", name, partition), name, uuid.UUID(int=0), partition, offset, 1 << 20)


class Clock:
    def __init__(self):
        self.now_ms = 1_000_000

    def __call__(self) -> int:
        return self.now_ms


def resolve_error(cache, *args) -> int:
    with pytest.raises(FetchSessionError) as error:
        cache.resolve(*args)
    return error.value.error_code


def opened(cache, targets=(), uses_topic_ids=False):
    """A session as a full fetch with epoch 0 opens it."""
    context = cache.resolve(0, 0, list(targets), [], uses_topic_ids)
    assert context.kind == "full"
    return cache.open(context.targets, uses_topic_ids)


def test_session_lifecycle_and_errors():
    cache = FetchSessionCache()
    context = cache.resolve(0, -1, [target("a", 0)], [], False)
    assert context.kind == "sessionless" and len(cache) == 0
    session = opened(cache, [target("a", 0), target("a", 1)])
    assert session.session_id > 0 and [t.partition for t in session.targets.values()] == [0, 1]
    context = cache.resolve(session.session_id, 1, [target("b", 0, offset=5)], [("name", "a", 0)], False)
    assert context.kind == "incremental" and context.session is session
    assert [(t.topic_name, t.partition, t.fetch_offset) for t in context.targets] == [("a", 1, 0), ("b", 0, 5)]
    assert resolve_error(cache, session.session_id, 1, [], [], False) == error_codes.INVALID_FETCH_SESSION_EPOCH
    assert resolve_error(cache, session.session_id, 2, [], [], True) == error_codes.FETCH_SESSION_TOPIC_ID_ERROR
    assert resolve_error(cache, 12345, 1, [], [], False) == error_codes.FETCH_SESSION_ID_NOT_FOUND
    assert resolve_error(cache, 0, 3, [], [], False) == error_codes.FETCH_SESSION_ID_NOT_FOUND
    assert cache.resolve(session.session_id, 2, [], [], False).kind == "incremental"  # errors left it as it was
    assert cache.resolve(session.session_id, -1, [], [], False).kind == "sessionless"  # close
    assert len(cache) == 0


def test_epoch_0_on_an_existing_session_closes_it_and_opens_another():
    """franz-go's and librdkafka's recovery after they drop an in-flight fetch."""
    cache = FetchSessionCache()
    first = opened(cache, [target("a", 0)])
    cache.resolve(first.session_id, 1, [], [], False)
    context = cache.resolve(first.session_id, 0, [target("a", 0, offset=7)], [], False)
    assert context.kind == "full" and cache.get(first.session_id) is None
    second = cache.open(context.targets, False)
    assert second.session_id != first.session_id and second.next_epoch == 1
    assert resolve_error(cache, first.session_id, 2, [], [], False) == error_codes.FETCH_SESSION_ID_NOT_FOUND
    assert cache.resolve(second.session_id, 1, [], [], False).targets[0].fetch_offset == 7


def test_forgetting_every_partition_closes_the_session():
    cache = FetchSessionCache()
    session = opened(cache, [target("a", 0)])
    context = cache.resolve(session.session_id, 1, [], [("name", "a", 0)], False)
    assert context.kind == "sessionless" and len(cache) == 0


def test_fewer_slots_than_shards_keep_no_session():
    cache = FetchSessionCache(max_sessions=CACHE_SHARDS - 1)
    assert opened(cache, [target("a", 0)]) is None


def test_new_sessions_go_round_the_shards_and_ids_say_the_shard():
    cache = FetchSessionCache(max_sessions=CACHE_SHARDS)
    sessions = [opened(cache) for _ in range(CACHE_SHARDS)]
    assert [s.session_id // SESSION_ID_RANGE for s in sessions] == list(range(CACHE_SHARDS))
    assert opened(cache) is None  # every shard holds its one session
    cache.resolve(sessions[3].session_id, -1, [], [], False)
    assert [opened(cache) is None for _ in range(CACHE_SHARDS)] == [i != 2 for i in range(CACHE_SHARDS)]


def test_a_session_unused_for_the_eviction_time_makes_room():
    clock = Clock()
    cache = FetchSessionCache(max_sessions=CACHE_SHARDS, clock_ms=clock)
    sessions = [opened(cache, [target("a", 0)]) for _ in range(CACHE_SHARDS)]
    clock.now_ms += EVICTION_MS
    assert opened(cache, [target("a", 0)]) is None  # not yet: more than EVICTION_MS unused
    clock.now_ms += 1
    newer = opened(cache, [target("a", 0)])  # shard 1 is next; its session is evicted
    assert newer is not None and cache.get(sessions[1].session_id) is None
    assert resolve_error(cache, sessions[1].session_id, 1, [], [], False) == error_codes.FETCH_SESSION_ID_NOT_FOUND


def test_a_bigger_session_evicts_the_smallest_old_one():
    clock = Clock()
    cache = FetchSessionCache(max_sessions=2 * CACHE_SHARDS, clock_ms=clock)
    small = [opened(cache, [target("a", 0)]) for _ in range(CACHE_SHARDS)]
    large = [opened(cache, [target("a", 0), target("a", 1)]) for _ in range(CACHE_SHARDS)]
    # Used just now, but older than EVICTION_MS when last used: evictable by a bigger session.
    clock.now_ms += EVICTION_MS + 1
    for session in small + large:
        cache.resolve(session.session_id, 1, [], [], False)
    assert opened(cache, [target("b", 0), target("b", 1)]) is not None  # shard 0
    assert cache.get(small[0].session_id) is None and cache.get(large[0].session_id) is large[0]
    assert opened(cache, [target("b", 0)]) is None  # shard 1: not bigger than its smallest
    assert opened(cache, [target("b", p) for p in range(3)]) is not None  # shard 2
    assert cache.get(small[2].session_id) is None and len(cache) == 2 * CACHE_SHARDS


def test_recently_created_sessions_are_not_evicted_by_bigger_ones():
    clock = Clock()
    cache = FetchSessionCache(max_sessions=CACHE_SHARDS, clock_ms=clock)
    sessions = [opened(cache, [target("a", 0)]) for _ in range(CACHE_SHARDS)]
    clock.now_ms += EVICTION_MS // 2
    for session in sessions:
        cache.resolve(session.session_id, 1, [], [], False)
    assert opened(cache, [target("b", p) for p in range(5)]) is None


def test_session_ids_outside_every_shard_fail_the_request():
    cache = FetchSessionCache()
    for session_id in (CACHE_SHARDS * SESSION_ID_RANGE, 2**31 - 1, -2**31, -SESSION_ID_RANGE):
        for epoch in (-1, 0, 1):
            with pytest.raises(FetchSessionIdOutOfRange):
                cache.resolve(session_id, epoch, [], [], False)
    assert resolve_error(cache, -1, 1, [], [], False) == error_codes.FETCH_SESSION_ID_NOT_FOUND  # shard 0


KEYS = [("name", "a", p) for p in range(4)]


@st.composite
def session_requests(draw):
    """(which session: ("opened", an index into those opened) or ("raw", an id), epoch choice,
    partitions named, partitions forgotten, milliseconds that pass before it)."""
    which = draw(st.one_of(st.tuples(st.just("opened"), st.integers(0, 20)),
                           st.tuples(st.just("raw"), st.sampled_from([0, 12345, -1]))))
    epoch = draw(st.sampled_from(["next", "next", "next", 0, -1, "other"]))
    named = draw(st.lists(st.sampled_from(KEYS), max_size=3))
    forgotten = draw(st.lists(st.sampled_from(KEYS), max_size=3))
    return which, epoch, named, forgotten, draw(st.sampled_from([0, 10, EVICTION_MS // 2, EVICTION_MS + 1]))


@settings(max_examples=300, deadline=None)
@given(st.lists(session_requests(), max_size=40))
def test_sessions_follow_a_simple_model_whatever_the_requests(requests):
    """Against a model of sessions (their partitions and next epochs): every request is
    answered as the module's table says, the cache never holds more than its slots, every id
    lies in its shard's range, and a session disappears only when named by a full fetch,
    emptied, or evicted to open another."""
    clock = Clock()
    slots = 2 * CACHE_SHARDS
    cache = FetchSessionCache(max_sessions=slots, clock_ms=clock)
    model: dict[int, tuple[set, int]] = {}  # session id: (partition keys, next epoch)
    opened_ids: list[int] = []
    for which, epoch_choice, named, forgotten, elapsed_ms in requests:
        clock.now_ms += elapsed_ms
        kind, value = which
        session_id = opened_ids[value % len(opened_ids)] if kind == "opened" and opened_ids else (
            value if kind == "raw" else 0)
        known = model.get(session_id)
        if epoch_choice == "next":
            epoch = known[1] if known else 1
        elif epoch_choice == "other":
            epoch = known[1] + 1 if known else 2
        else:
            epoch = epoch_choice
        targets = [FetchTarget(key, "a", uuid.UUID(int=0), key[2], 0, 1 << 20) for key in named]
        before = set(model)
        try:
            context = cache.resolve(session_id, epoch, targets, forgotten, False)
        except FetchSessionError as error:
            assert epoch not in (0, -1)
            expected = (error_codes.FETCH_SESSION_ID_NOT_FOUND if known is None
                        else error_codes.INVALID_FETCH_SESSION_EPOCH)
            assert error.error_code == expected
            continue
        if epoch in (0, -1):
            model.pop(session_id, None)
            assert context.kind == ("full" if epoch == 0 else "sessionless")
            assert [t.key for t in context.targets] == list(dict.fromkeys(named))
            if context.kind == "full":
                session = cache.open(context.targets, False)
                if session is not None:
                    evicted = before - {session_id} - {s for s in model if cache.get(s) is not None}
                    assert len(evicted) <= 1
                    for gone in evicted:
                        model.pop(gone)
                    model[session.session_id] = (set(named), 1)
                    opened_ids.append(session.session_id)
        else:
            assert known is not None and epoch == known[1]
            partitions = (known[0] | set(named)) - set(forgotten)
            if not partitions:
                assert context.kind == "sessionless" and cache.get(session_id) is None
                model.pop(session_id)
            else:
                assert context.kind == "incremental" and {t.key for t in context.targets} == partitions
                model[session_id] = (partitions, known[1] + 1)
        assert {s for s in model} == {s for s in model if cache.get(s) is not None}
        assert len(cache) == len(model) <= slots
        for live in model:
            assert 0 < live < CACHE_SHARDS * SESSION_ID_RANGE


def test_only_changes_are_sent_and_busy_partitions_rotate():
    cache = FetchSessionCache()
    session = opened(cache, [target("a", 0), target("a", 1)])
    a0, a1 = session.targets.values()
    assert session.should_send(a0, 0, 0, 10, 0)
    session.record_sent(a0, 0, 10, 0, rotate=True)
    assert list(session.targets) == [("name", "a", 1), ("name", "a", 0)]
    assert not session.should_send(a0, 0, 0, 10, 0)
    assert session.should_send(a0, 0, 0, 11, 0)  # high watermark moved
    assert session.should_send(a0, 0, 0, 10, 4)  # log start offset moved
    assert session.should_send(a0, 0, 5, 10, 0)  # records
    assert session.should_send(a0, 3, 0, 10, 0)  # an error
    session.record_sent(a0, 3, 10, 0, rotate=False)
    assert session.should_send(a0, 0, 0, 10, 0)  # the first answer after an error


def test_every_session_id_and_epoch_gets_kafkas_answer(broker_process):
    """The table in tests/broker/fetch_session_scenarios.py is Kafka's answers (the slow
    compat/test_same_answers_as_kafka.py checks it against a running Kafka)."""
    broker = broker_process()
    assert fetch_session_scenarios.every_combination(broker.host, broker.port) == \
        fetch_session_scenarios.EVERY_COMBINATION


def test_a_sessions_deleted_and_recreated_topic_gets_kafkas_answer(broker_process):
    broker = broker_process()
    assert fetch_session_scenarios.topic_deleted_and_recreated(broker.host, broker.port) == \
        fetch_session_scenarios.RECREATED


def test_a_full_session_cache_gets_kafkas_answer(broker_process):
    broker = broker_process(None, "max.incremental.fetch.session.cache.slots=8")
    assert fetch_session_scenarios.cache_full(broker.host, broker.port) == fetch_session_scenarios.CACHE_FULL


def fetch(client, session_id, epoch, topics, forgotten=(), max_wait_ms=0):
    request = FetchRequest(replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=1, max_bytes=1 << 20, isolation_level=0,
                           session_id=session_id, session_epoch=epoch,
                           topics=[FetchRequest.FetchTopic(topic=name, partitions=[
                               FetchRequest.FetchTopic.FetchPartition(partition=p, fetch_offset=o,
                                                                      partition_max_bytes=1 << 20)])
                                   for name, p, o in topics],
                           forgotten_topics_data=[FetchRequest.ForgottenTopic(topic=name, partitions=[p])
                                                  for name, p in forgotten])
    return client.request(request, 12)


def test_incremental_fetch_over_the_wire(raw_client):
    client = raw_client()
    create_topic(client, "sess", partitions=2)
    produce(client, "sess", 0, batch_of(b"one"))
    full = fetch(client, 0, 0, [("sess", 0, 0), ("sess", 1, 0)])
    assert full.error_code == 0 and full.session_id > 0
    assert sorted(p.partition_index for t in full.responses for p in t.partitions) == [0, 1]
    session_id = full.session_id
    quiet = fetch(client, session_id, 1, [("sess", 0, 1)])  # the new position only
    assert quiet.error_code == 0 and quiet.responses == []  # nothing changed
    produce(client, "sess", 1, batch_of(b"two"))
    changed = fetch(client, session_id, 2, [])
    ((topic,),) = [changed.responses]
    assert [(p.partition_index, [r.value for r in records_of(p.records)]) for p in topic.partitions] == [(1, [b"two"])]
    assert fetch(client, session_id, 2, []).error_code == error_codes.INVALID_FETCH_SESSION_EPOCH
    assert fetch(client, 999, 1, []).error_code == error_codes.FETCH_SESSION_ID_NOT_FOUND
    closed = fetch(client, session_id, -1, [("sess", 0, 0)])
    assert closed.error_code == 0 and closed.session_id == 0
    assert fetch(client, session_id, 3, []).error_code == error_codes.FETCH_SESSION_ID_NOT_FOUND


def test_a_long_poll_overtaken_in_its_session_is_answered_invalid_epoch(raw_client):
    """Kafka's check when it answers an incremental fetch: if another request moved the session
    on while this one waited, INVALID_FETCH_SESSION_EPOCH with the session's id and nothing
    else (what it read would corrupt what the session remembers having sent)."""
    waiting, other = raw_client(), raw_client()
    create_topic(other, "overtaken")
    session_id = fetch(other, 0, 0, [("overtaken", 0, 0)]).session_id
    request = FetchRequest(replica_id=-1, max_wait_ms=5000, min_bytes=1, max_bytes=1 << 20, isolation_level=0,
                           session_id=session_id, session_epoch=1, topics=[], forgotten_topics_data=[])
    correlation_id = waiting.send(request, 12)
    time.sleep(0.3)  # the long poll has started
    assert fetch(other, session_id, 2, []).error_code == 0
    produce(other, "overtaken", 0, batch_of(b"wakes the long poll"))
    received_id, answer = waiting.receive()
    assert received_id == correlation_id
    assert (answer.error_code, answer.session_id, answer.responses) == \
        (error_codes.INVALID_FETCH_SESSION_EPOCH, session_id, [])
    assert fetch(other, session_id, 3, []).responses  # the session goes on, and sends the record
