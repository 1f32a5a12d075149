"""Incremental fetch sessions (KIP-227): the session cache on its own, and over the wire."""

from __future__ import annotations

import uuid

import pytest

from odradek.broker.fetch_sessions import FetchSessionCache, FetchSessionError, FetchTarget
from odradek.protocol import error_codes
from odradek.protocol.messages.fetch import FetchRequest

from .test_server import batch_of, create_topic, produce, records_of


def target(name, partition, offset=0):
    return FetchTarget(("name", name, partition), name, uuid.UUID(int=0), partition, offset, 1 << 20)


def test_session_lifecycle_and_errors():
    cache = FetchSessionCache(max_sessions=2)
    session, targets, incremental = cache.resolve(0, -1, [target("a", 0)], [], False)
    assert session is None and not incremental and len(cache) == 0  # sessionless full fetch
    session, targets, incremental = cache.resolve(0, 0, [target("a", 0), target("a", 1)], [], False)
    assert session.session_id > 0 and [t.partition for t in targets] == [0, 1] and not incremental
    same, targets, incremental = cache.resolve(session.session_id, 1, [target("b", 0, offset=5)], [("name", "a", 0)],
                                              False)
    assert same is session and incremental
    assert [(t.topic_name, t.partition, t.fetch_offset) for t in targets] == [("a", 1, 0), ("b", 0, 5)]
    with pytest.raises(FetchSessionError) as stale:
        cache.resolve(session.session_id, 1, [], [], False)
    assert stale.value.error_code == error_codes.INVALID_FETCH_SESSION_EPOCH
    with pytest.raises(FetchSessionError) as switched:
        cache.resolve(session.session_id, 2, [], [], True)
    assert switched.value.error_code == error_codes.FETCH_SESSION_TOPIC_ID_ERROR
    with pytest.raises(FetchSessionError) as unknown:
        cache.resolve(12345, 1, [], [], False)
    assert unknown.value.error_code == error_codes.FETCH_SESSION_ID_NOT_FOUND
    with pytest.raises(FetchSessionError):
        cache.resolve(0, 3, [], [], False)
    cache.resolve(session.session_id, -1, [], [], False)  # close
    assert len(cache) == 0


def test_least_recently_used_session_is_evicted():
    cache = FetchSessionCache(max_sessions=2)
    first = cache.resolve(0, 0, [], [], False)[0]
    second = cache.resolve(0, 0, [], [], False)[0]
    cache.resolve(first.session_id, 1, [], [], False)  # first is now the most recent
    cache.resolve(0, 0, [], [], False)
    with pytest.raises(FetchSessionError):
        cache.resolve(second.session_id, 1, [], [], False)
    cache.resolve(first.session_id, 2, [], [], False)


def test_only_changes_are_sent_and_busy_partitions_rotate():
    cache = FetchSessionCache()
    session = cache.resolve(0, 0, [target("a", 0), target("a", 1)], [], False)[0]
    a0, a1 = session.targets.values()
    assert session.should_send(a0, 0, 0, 10, 10, 0)
    session.record_sent(a0, 10, 10, 0, had_records=True)
    assert list(session.targets) == [("name", "a", 1), ("name", "a", 0)]
    assert not session.should_send(a0, 0, 0, 10, 10, 0)
    assert session.should_send(a0, 0, 0, 11, 10, 0)  # high watermark moved
    assert session.should_send(a0, 0, 5, 10, 10, 0)  # records
    assert session.should_send(a0, 3, 0, 10, 10, 0)  # an error


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
