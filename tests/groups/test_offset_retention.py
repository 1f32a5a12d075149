"""``offsets.retention.minutes``: the committed offsets of an empty group expire that long after
the group became empty, whenever they were committed; a simple group's, and a Stable consumer
group's offsets of topics no member subscribes to, that long after their commit (checked every
``offsets.retention.check.interval.ms``); an OffsetCommit v2-4 with its own retention time sets
an expire timestamp that wins; an empty group without offsets left is forgotten, with
tombstones in __consumer_offsets so that a restart does not bring it back. Kafka's OffsetMetadataManager.cleanupExpiredOffsets and ClassicGroup's offset expiration
condition are the reference.

With the manual clock first, then against a real broker: a fast test with v2 commits and a short
check interval, and a slow one with offsets.retention.minutes=1 and a real consumer group."""

from __future__ import annotations

import time

import pytest

from broker.test_server import create_topic
from odradek.broker.groups import CommittedOffset, GroupState
from odradek.broker.groups.persistence import StoredGroup
from odradek.protocol import error_codes as E
from odradek.protocol.messages.list_groups import ListGroupsRequest
from odradek.protocol.messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestTopic

from .conftest import RawClient, assert_no_traceback, wait_until_loaded
from .test_clients import PythonMember, produce_kafka_python, wait_until
from .test_coordinator import DELAY, _subscription, make, new_member, sync

RETENTION = 30_000
INTERVAL = 1_000


def test_offsets_expire_retention_after_the_group_became_empty_not_after_the_commit():
    coordinator, timer = make(offsets_retention_ms=RETENTION, offsets_retention_check_interval_ms=INTERVAL,
                              max_session_timeout_ms=120_000)
    member_id, joined = new_member(coordinator, session=120_000)
    timer.advance(DELAY)
    assert sync(coordinator, member_id, joined.value.generation_id, {member_id: b""}).value.error_code == E.NONE
    coordinator.store_offsets("g", [("t", 0, 10, -1, "")])
    timer.advance(2 * RETENTION)  # a member keeps the group non-empty: nothing expires
    assert ("t", 0) in coordinator.fetch_offsets("g", None)[1]
    coordinator.leave_group("g", [(member_id, None)])
    timer.advance(RETENTION - 2 * INTERVAL)
    assert ("t", 0) in coordinator.fetch_offsets("g", None)[1]
    timer.advance(3 * INTERVAL)
    assert coordinator.fetch_offsets("g", None)[1] == {} and coordinator.group("g") is None


def test_a_commit_with_its_own_retention_expires_at_its_expire_timestamp():
    coordinator, timer = make(offsets_retention_ms=RETENTION, offsets_retention_check_interval_ms=INTERVAL)
    coordinator.store_offsets("simple", [("t", 0, 1, -1, "")], 5_000)  # OffsetCommit v2-4 retention_time_ms
    coordinator.store_offsets("simple", [("t", 1, 2, -1, "")])  # the broker's retention
    timer.advance(5_000 + INTERVAL)
    assert set(coordinator.fetch_offsets("simple", None)[1]) == {("t", 1)}
    timer.advance(RETENTION)
    assert coordinator.group("simple") is None


def test_a_later_commit_renews_a_simple_group_offset():
    coordinator, timer = make(offsets_retention_ms=RETENTION, offsets_retention_check_interval_ms=INTERVAL)
    coordinator.store_offsets("simple", [("t", 0, 1, -1, "")])
    timer.advance(RETENTION - 2 * INTERVAL)
    coordinator.store_offsets("simple", [("t", 0, 2, -1, "")])
    timer.advance(RETENTION - 2 * INTERVAL)
    assert coordinator.fetch_offsets("simple", None)[1][("t", 0)].offset == 2
    timer.advance(3 * INTERVAL)
    assert coordinator.group("simple") is None


def test_an_empty_group_counts_from_when_it_emptied_even_for_a_later_commit():
    """Kafka's Empty condition takes the state timestamp, not the later of it and the commit:
    an admin commit (kafka-consumer-groups --reset-offsets) to a group that emptied earlier
    expires with the rest, the retention after the emptying."""
    coordinator, timer = make(offsets_retention_ms=RETENTION, offsets_retention_check_interval_ms=INTERVAL,
                              max_session_timeout_ms=120_000)
    member_id, joined = new_member(coordinator, session=120_000)
    timer.advance(DELAY)
    sync(coordinator, member_id, joined.value.generation_id, {member_id: b""})
    coordinator.store_offsets("g", [("t", 0, 10, -1, "")])
    timer.advance(RETENTION // 2)
    assert coordinator.leave_group("g", [(member_id, None)]) == (E.NONE, [E.NONE])
    emptied = timer.now_ms()
    timer.advance(RETENTION // 2)
    assert coordinator.validate_offset_commit("g", -1, "", None, 8)[0] == E.NONE
    coordinator.store_offsets("g", [("t", 1, 20, -1, "")])
    timer.advance(emptied + RETENTION - INTERVAL - timer.now_ms())
    assert set(coordinator.fetch_offsets("g", None)[1]) == {("t", 0), ("t", 1)}
    timer.advance(2 * INTERVAL)
    assert coordinator.fetch_offsets("g", None)[1] == {} and coordinator.group("g") is None


def test_a_stable_consumer_group_loses_the_offsets_of_topics_it_no_longer_subscribes_to():
    coordinator, timer = make(offsets_retention_ms=RETENTION, offsets_retention_check_interval_ms=INTERVAL,
                              max_session_timeout_ms=600_000)
    member_id, joined = new_member(coordinator, session=600_000,
                                   protocols=(("range", _subscription("kept")),))
    timer.advance(DELAY)
    sync(coordinator, member_id, joined.value.generation_id, {member_id: b""})
    coordinator.store_offsets("g", [("kept", 0, 1, -1, ""), ("dropped", 0, 2, -1, "")])
    coordinator.store_offsets("g", [("short", 0, 3, -1, "")], RETENTION * 10)  # a v2-4 retention: its own expiry
    timer.advance(RETENTION - INTERVAL)
    assert set(coordinator.fetch_offsets("g", None)[1]) == {("kept", 0), ("dropped", 0), ("short", 0)}
    timer.advance(2 * INTERVAL)  # the retention since the commit: the unsubscribed topic's offset goes
    assert set(coordinator.fetch_offsets("g", None)[1]) == {("kept", 0), ("short", 0)}
    timer.advance(RETENTION * 10)
    assert set(coordinator.fetch_offsets("g", None)[1]) == {("kept", 0)}
    assert coordinator.group("g").is_in(GroupState.STABLE)  # a group with members stays


def test_a_group_that_is_not_stable_or_of_another_protocol_keeps_its_offsets():
    coordinator, timer = make(offsets_retention_ms=RETENTION, offsets_retention_check_interval_ms=INTERVAL,
                              max_session_timeout_ms=600_000)
    # Kafka Connect's protocol: the coordinator cannot tell what the members read.
    member_id, joined = new_member(coordinator, group="connect", session=600_000, protocol_type="connect")
    timer.advance(DELAY)
    sync(coordinator, member_id, joined.value.generation_id, {member_id: b""}, group="connect")
    coordinator.store_offsets("connect", [("t", 0, 1, -1, "")])
    timer.advance(3 * RETENTION)
    assert set(coordinator.fetch_offsets("connect", None)[1]) == {("t", 0)}


def test_a_restored_empty_group_without_a_state_timestamp_counts_from_the_commit():
    """A GroupMetadataValue older than v2 has no current state timestamp (-1)."""
    coordinator, timer = make(offsets_retention_ms=RETENTION, offsets_retention_check_interval_ms=INTERVAL)
    timer.advance(RETENTION)
    coordinator.restore_group("old", StoredGroup("consumer", 3, None, None, -1, ()))
    coordinator.restore_offset("old", "t", 0, CommittedOffset(1, -1, "", timer.now_ms() - RETENTION // 2))
    coordinator.finish_restore()
    timer.advance(RETENTION // 2 - INTERVAL)
    assert ("t", 0) in coordinator.fetch_offsets("old", None)[1]
    timer.advance(2 * INTERVAL)
    assert coordinator.group("old") is None


def _commit_v2(client, group, topic, retention_ms):
    request = OffsetCommitRequest(group_id=group, generation_id_or_member_epoch=-1, member_id="",
                                  retention_time_ms=retention_ms, topics=[OffsetCommitRequestTopic(
                                      name=topic, partitions=[OffsetCommitRequestPartition(
                                          partition_index=0, committed_offset=3, committed_metadata="m")])])
    answer = client.request(request, 2)
    assert answer.topics[0].partitions[0].error_code == E.NONE


def _committed(client, group, topic) -> int:
    answer = client.request(OffsetFetchRequest(group_id=group, topics=[
        OffsetFetchRequestTopic(name=topic, partition_indexes=[0])]), 7)
    return answer.topics[0].partitions[0].committed_offset


def _groups(client) -> set[str]:
    answer = client.request(ListGroupsRequest(), 4)
    assert answer.error_code == E.NONE
    return {group.group_id for group in answer.groups}


def test_real_broker_expires_a_short_retention_commit_and_the_restart_keeps_it_gone(broker_process, tmp_path):
    data = tmp_path / "retention-data"
    settings = ("offsets.retention.check.interval.ms=200", "group.initial.rebalance.delay.ms=0")
    broker = broker_process(data, *settings)
    client = RawClient(broker.host, broker.port)
    create_topic(client, "kept-topic")
    started = time.monotonic()
    _commit_v2(client, "short-lived", "kept-topic", 1000)
    _commit_v2(client, "long-lived", "kept-topic", -1)  # -1: the broker's offsets.retention.minutes
    assert _committed(client, "short-lived", "kept-topic") == 3
    wait_until(lambda: _committed(client, "short-lived", "kept-topic") == -1, timeout=10, what="the expiry")
    assert time.monotonic() - started > 0.9  # not before its second of retention
    assert "short-lived" not in _groups(client) and "long-lived" in _groups(client)
    client.close()
    assert broker.stop() == 0
    assert_no_traceback(broker)

    # __consumer_offsets replayed: the tombstones hold (the default check interval, ten minutes,
    # cannot expire anything again while we look).
    broker = broker_process(data, "group.initial.rebalance.delay.ms=0")
    client = RawClient(broker.host, broker.port)
    try:
        wait_until_loaded(client, timeout=15)
        assert "short-lived" not in _groups(client) and "long-lived" in _groups(client)
        assert _committed(client, "short-lived", "kept-topic") == -1
        assert _committed(client, "long-lived", "kept-topic") == 3
    finally:
        client.close()


@pytest.mark.slow
def test_real_consumer_group_offsets_expire_a_minute_after_it_emptied(broker_process):
    """offsets.retention.minutes=1 (its minimum): a kafka-python group commits, stays alive past
    the minute (its offsets stay), leaves; its offsets go about a minute after it emptied."""
    broker = broker_process(None, "offsets.retention.minutes=1", "offsets.retention.check.interval.ms=500",
                            "group.initial.rebalance.delay.ms=0")
    client = RawClient(broker.host, broker.port)
    topic, group = "retained", "retained-group"
    create_topic(client, topic, partitions=1)
    produce_kafka_python(broker.bootstrap, topic, [b"a", b"b", b"c"], partitions=1)
    member = PythonMember(broker.bootstrap, topic, group, "retained-member")
    member.start()
    try:
        wait_until(lambda: _committed(client, group, topic) == 3, what="the member's commit")
        committed_at = time.monotonic()
        time.sleep(65)  # past the retention since the commit, but the group is Stable
        assert _committed(client, group, topic) == 3
    finally:
        member.stop()  # LeaveGroup: the group is Empty from now
    emptied_at = time.monotonic()
    time.sleep(40)
    assert _committed(client, group, topic) == 3, "expired before the retention since the group emptied"
    wait_until(lambda: _committed(client, group, topic) == -1, timeout=40, what="the expiry")
    expired_after = time.monotonic() - emptied_at
    assert 55 < expired_after < 70, expired_after
    assert time.monotonic() - committed_at > 120
    assert group not in _groups(client)
    client.close()
    assert_no_traceback(broker)
