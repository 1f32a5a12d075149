"""Transactional offsets in the group coordinator (TxnOffsetCommit, then the producer's marker):
pending until the marker, committed or dropped by it, replayed from ``__consumer_offsets`` after
a restart. In process: the coordinator alone with a manual clock, and a real broker's storage
(Broker.open on a temporary directory, its event loop, no listener). Over TCP:
tests/groups/test_txn_offset_commit_wire.py."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from odradek.broker.broker import Broker
from odradek.broker.config import BrokerConfig
from odradek.broker.coordinators.runtime import _end_transaction_marker
from odradek.broker.groups import GroupState, coordinator_partition
from odradek.broker.groups.persistence import OFFSETS_TOPIC
from odradek.protocol import error_codes as E
from odradek.protocol.records.batch import Record, build_batch, iter_batches

from .test_coordinator import join, make, new_member, stable_group_of_two, sync

PRODUCER = 4000
OTHER_PRODUCER = 4001


def commit(coordinator, group="g", producer=PRODUCER, epoch=0, generation=-1, member="", instance=None,
           offsets=(("t", 0, 10),)) -> int:
    entries = [(topic, partition, offset, -1, "m") for topic, partition, offset in offsets]
    return asyncio.run(coordinator.commit_transactional_offsets(group, producer, epoch, generation, member,
                                                                instance, entries))


def end(coordinator, committed: bool, group="g", producer=PRODUCER, epoch=0, coordinator_epoch=0) -> int:
    partition = coordinator_partition(group, coordinator.partition_count)
    return asyncio.run(coordinator.complete_transaction(partition, producer, epoch, coordinator_epoch, committed))


def visible(coordinator, group="g") -> dict:
    error, found = coordinator.fetch_offsets(group, None)
    assert error == E.NONE
    return {key: committed.offset for key, committed in found.items()}


# --- in memory: the coordinator and its runtime without a log ---


def test_offsets_stay_pending_until_the_commit_marker():
    coordinator, _ = make()
    assert commit(coordinator, offsets=(("t", 0, 10), ("t", 1, 20))) == E.NONE
    assert visible(coordinator) == {}
    assert coordinator.has_pending_transactional_offsets("g", "t", 0)
    assert not coordinator.has_pending_transactional_offsets("g", "t", 2)
    assert coordinator.group("g").is_in(GroupState.EMPTY)  # a simple group, as Kafka creates it
    assert end(coordinator, committed=True) == E.NONE
    assert visible(coordinator) == {("t", 0): 10, ("t", 1): 20}
    assert not coordinator.has_pending_transactional_offsets("g", "t", 0)


def test_an_abort_marker_drops_the_offsets_and_keeps_the_committed_ones():
    coordinator, _ = make()
    assert coordinator.store_offsets("g", [("t", 0, 5, -1, "")]) == E.NONE
    assert commit(coordinator, offsets=(("t", 0, 10),)) == E.NONE
    assert visible(coordinator) == {("t", 0): 5}
    assert end(coordinator, committed=False) == E.NONE
    assert visible(coordinator) == {("t", 0): 5}
    assert not coordinator.has_pending_transactional_offsets("g", "t", 0)
    assert end(coordinator, committed=True) == E.NONE  # nothing pending any more: nothing changes
    assert visible(coordinator) == {("t", 0): 5}


def test_a_plain_commit_after_the_transactional_one_wins_at_the_commit():
    coordinator, _ = make()
    assert commit(coordinator, offsets=(("t", 0, 10), ("t", 1, 11))) == E.NONE
    assert coordinator.store_offsets("g", [("t", 0, 3, -1, "")]) == E.NONE  # reached the log later
    assert end(coordinator, committed=True) == E.NONE
    assert visible(coordinator) == {("t", 0): 3, ("t", 1): 11}


def test_validation_is_kafkas_for_classic_groups():
    coordinator, timer = make()
    # A group that does not exist: a generation is ILLEGAL_GENERATION, -1 makes a simple group.
    assert commit(coordinator, group="nope", generation=3, member="m") == E.ILLEGAL_GENERATION
    assert coordinator.group("nope") is None
    a, b, generation = stable_group_of_two(coordinator, timer)
    assert commit(coordinator, generation=generation, member=a) == E.NONE
    assert commit(coordinator, generation=generation + 1, member=a) == E.ILLEGAL_GENERATION
    assert commit(coordinator, generation=generation, member="stranger") == E.UNKNOWN_MEMBER_ID
    # No generation and no member (v0-2) from outside a non-empty group: taken, unlike OffsetCommit.
    assert commit(coordinator, generation=-1, member="") == E.NONE
    # A rebalancing group takes transactional commits of the current generation (no state check).
    _, joining = new_member(coordinator, client="c")
    assert coordinator.group("g").is_in(GroupState.PREPARING_REBALANCE)
    assert commit(coordinator, generation=generation, member=b) == E.NONE
    assert not joining.done


def test_a_static_member_that_was_replaced_is_fenced():
    coordinator, timer = make()
    joined = join(coordinator, instance="pod-1")  # a static member gets its id at once (KIP-345)
    timer.advance(10_000)
    member, generation = joined.value.member_id, joined.value.generation_id
    assert sync(coordinator, member, generation, {member: b""}).value.error_code == E.NONE
    assert commit(coordinator, generation=generation, member=member, instance="pod-1") == E.NONE
    assert commit(coordinator, generation=generation, member="other", instance="pod-1") == E.FENCED_INSTANCE_ID
    assert commit(coordinator, generation=generation, member=member, instance="pod-2") == E.UNKNOWN_MEMBER_ID


def test_pending_offsets_block_expiry_and_go_with_deletions():
    coordinator, timer = make(offsets_retention_ms=1000, offsets_retention_check_interval_ms=100)
    assert coordinator.store_offsets("g", [("t", 0, 5, -1, ""), ("t", 1, 6, -1, "")]) == E.NONE
    assert commit(coordinator, offsets=(("t", 0, 10), ("u", 0, 7))) == E.NONE
    timer.advance(5000)
    # ("t", 1) expired; ("t", 0) has a pending offset; the group stays while its transaction is open.
    assert visible(coordinator) == {("t", 0): 5}
    assert coordinator.group("g") is not None
    # OffsetDelete of a partition that has only a pending offset deletes it.
    error, results = coordinator.delete_offsets("g", [("u", 0)])
    assert (error, results) == (E.NONE, {("u", 0): E.NONE})
    assert not coordinator.has_pending_transactional_offsets("g", "u", 0)
    # DeleteGroups deletes the pending ones too: the commit marker then brings nothing back.
    assert coordinator.delete_group("g") == E.NONE
    assert end(coordinator, committed=True) == E.NONE
    error, found = coordinator.fetch_offsets("g", None)
    assert found == {} and coordinator.group("g") is None


def test_a_group_with_only_pending_offsets_is_forgotten_after_the_abort():
    coordinator, timer = make(offsets_retention_ms=1000, offsets_retention_check_interval_ms=100)
    assert commit(coordinator, group="lonely") == E.NONE
    timer.advance(5000)
    assert coordinator.group("lonely") is not None
    assert end(coordinator, committed=False, group="lonely") == E.NONE
    timer.advance(200)
    assert coordinator.group("lonely") is None


def test_a_consumer_group_member_commits_with_its_epoch():
    from .test_consumer_protocol import Cluster

    cluster = Cluster(t=1)
    cluster.join("m1")
    coordinator = cluster.coordinator
    assert commit(coordinator, generation=1, member="m1") == E.NONE
    assert commit(coordinator, generation=0, member="m1") == E.ILLEGAL_GENERATION  # v0-5: not STALE_MEMBER_EPOCH
    assert commit(coordinator, generation=1, member="who") == E.UNKNOWN_MEMBER_ID
    assert commit(coordinator, generation=-1, member="") == E.UNKNOWN_MEMBER_ID  # the group has members
    assert coordinator.group("g") is None  # no classic twin was created
    assert end(coordinator, committed=True) == E.NONE
    assert visible(coordinator) == {("t", 0): 10}
    # Deleting the emptied consumer group deletes what a transaction still has pending.
    assert commit(coordinator, generation=1, member="m1", offsets=(("t", 0, 11),)) == E.NONE
    cluster.beat("m1", -1)
    assert coordinator.delete_group("g") == E.NONE
    assert not coordinator.has_pending_transactional_offsets("g", "t", 0)


# --- on a real broker's storage: the batches, the markers, the replay after a restart ---


def open_broker(data_dir, **overrides) -> Broker:
    config = BrokerConfig.from_sources({"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(data_dir)},
                                       {"offsets.topic.num.partitions": "3", **overrides})
    broker = Broker(config)
    broker.open()
    return broker


async def loaded(broker: Broker) -> Broker:
    deadline = time.monotonic() + 30
    while broker.group_coordinator.availability() != E.NONE:
        assert time.monotonic() < deadline, "the group coordinator never loaded"
        await asyncio.sleep(0.001)
    return broker


def run_on(data_dir, scenario, **overrides):
    """Open a broker on ``data_dir`` inside a fresh event loop, wait for the load, run
    ``scenario(broker)`` and close the broker cleanly."""
    async def main():
        broker = await loaded(open_broker(data_dir, **overrides))
        try:
            return await scenario(broker)
        finally:
            broker.close()
    return asyncio.run(main())


async def commit_async(coordinator, group="g", producer=PRODUCER, epoch=0, offsets=(("t", 0, 10),)) -> int:
    entries = [(topic, partition, offset, -1, "") for topic, partition, offset in offsets]
    return await coordinator.commit_transactional_offsets(group, producer, epoch, -1, "", None, entries)


async def end_async(coordinator, committed: bool, group="g", producer=PRODUCER, epoch=0, coordinator_epoch=0) -> int:
    partition = coordinator_partition(group, coordinator.partition_count)
    return await coordinator.complete_transaction(partition, producer, epoch, coordinator_epoch, committed)


def offsets_partition_log(broker, group="g"):
    coordinator = broker.group_coordinator
    return broker.partition(OFFSETS_TOPIC, coordinator_partition(group, coordinator.partition_count)).log


def batches_of(partition_log):
    data = b"".join(region.read() for region in partition_log.read(0, 1 << 20,
                                                                   max_offset=partition_log.log_end_offset).regions)
    return list(iter_batches(data, allow_incomplete=False))


def test_the_commit_is_a_transactional_batch_and_the_marker_a_control_batch_both_fsynced(tmp_path):
    async def scenario(broker):
        coordinator = broker.group_coordinator
        assert await commit_async(coordinator, epoch=3, offsets=(("t", 0, 10), ("t", 1, 11))) == E.NONE
        partition_log = offsets_partition_log(broker)
        assert partition_log.durable_offset == partition_log.log_end_offset  # answered once durable
        assert await end_async(coordinator, committed=True, epoch=3, coordinator_epoch=7) == E.NONE
        assert partition_log.durable_offset == partition_log.log_end_offset
        data, marker = batches_of(partition_log)
        assert (data.producer_id, data.producer_epoch, data.is_transactional, data.is_control) == (PRODUCER, 3, True,
                                                                                                   False)
        assert len(data.records) == 2
        assert (marker.producer_id, marker.producer_epoch, marker.is_transactional, marker.is_control) == (
            PRODUCER, 3, True, True)
        parsed = _end_transaction_marker(marker)
        assert parsed.is_commit and parsed.coordinator_epoch == 7
        # The partition's transaction is closed: its last stable offset is back at its end.
        assert partition_log.last_stable_offset == partition_log.log_end_offset
        assert visible(coordinator) == {("t", 0): 10, ("t", 1): 11}
    run_on(tmp_path, scenario)


def test_an_older_producer_epoch_is_refused_by_the_log_with_the_state_untouched(tmp_path):
    async def scenario(broker):
        coordinator = broker.group_coordinator
        assert await commit_async(coordinator, epoch=5) == E.NONE
        assert await commit_async(coordinator, epoch=4, offsets=(("t", 9, 1),)) == E.INVALID_PRODUCER_EPOCH
        assert not coordinator.has_pending_transactional_offsets("g", "t", 9)
        # A marker of an older epoch too; of an older coordinator epoch TRANSACTION_COORDINATOR_FENCED.
        assert await end_async(coordinator, committed=True, epoch=4) == E.INVALID_PRODUCER_EPOCH
        assert coordinator.has_pending_transactional_offsets("g", "t", 0)
        assert await end_async(coordinator, committed=False, epoch=5, coordinator_epoch=2) == E.NONE
        assert await commit_async(coordinator, epoch=5) == E.NONE
        assert await end_async(coordinator, committed=True, epoch=5, coordinator_epoch=1) == \
            E.TRANSACTION_COORDINATOR_FENCED
        assert coordinator.has_pending_transactional_offsets("g", "t", 0) and visible(coordinator) == {}
    run_on(tmp_path, scenario)


def test_a_marker_completes_only_its_own_producer_and_partition(tmp_path):
    async def scenario(broker):
        coordinator = broker.group_coordinator
        groups = {}
        for number in range(200):  # two groups in different __consumer_offsets partitions
            groups.setdefault(coordinator_partition(f"g{number}", coordinator.partition_count), f"g{number}")
        first, second = list(groups.values())[:2]
        assert await commit_async(coordinator, group=first, offsets=(("t", 0, 1),)) == E.NONE
        assert await commit_async(coordinator, group=second, offsets=(("t", 0, 2),)) == E.NONE
        assert await commit_async(coordinator, group=first, producer=OTHER_PRODUCER, offsets=(("t", 1, 3),)) == E.NONE
        assert await end_async(coordinator, True, group=first) == E.NONE
        assert visible(coordinator, first) == {("t", 0): 1}
        assert visible(coordinator, second) == {}  # the producer's marker has not reached its partition
        assert coordinator.has_pending_transactional_offsets(first, "t", 1)  # another producer's
        assert await end_async(coordinator, True, group=second) == E.NONE
        assert visible(coordinator, second) == {("t", 0): 2}
    run_on(tmp_path, scenario)


def test_a_marker_for_a_partition_that_does_not_exist_or_is_not_served_is_refused(tmp_path):
    async def scenario(broker):
        coordinator = broker.group_coordinator
        # No __consumer_offsets yet: nothing can be pending, the marker does not create the topic.
        assert await coordinator.complete_transaction(0, PRODUCER, 0, 0, True) == E.UNKNOWN_TOPIC_OR_PARTITION
        assert broker.topics.get(OFFSETS_TOPIC) is None
        assert await commit_async(coordinator) == E.NONE
        assert await coordinator.complete_transaction(99, PRODUCER, 0, 0, True) == E.UNKNOWN_TOPIC_OR_PARTITION
        coordinator.runtime.loading.add(1)
        assert await coordinator.complete_transaction(1, PRODUCER, 0, 0, True) == E.COORDINATOR_LOAD_IN_PROGRESS
        coordinator.runtime.loading.discard(1)
    run_on(tmp_path, scenario)


def test_pending_offsets_survive_a_restart_and_the_marker_written_after_completes_them(tmp_path):
    async def before(broker):
        coordinator = broker.group_coordinator
        assert await commit_async(coordinator, group="committed", offsets=(("t", 0, 10),)) == E.NONE
        assert await commit_async(coordinator, group="aborted", producer=OTHER_PRODUCER,
                                  offsets=(("t", 0, 20),)) == E.NONE
        assert coordinator.store_offsets("aborted", [("t", 0, 1, -1, "")]) == E.NONE
    run_on(tmp_path, before)

    async def after_restart(broker):
        coordinator = broker.group_coordinator
        assert coordinator.has_pending_transactional_offsets("committed", "t", 0)
        assert coordinator.has_pending_transactional_offsets("aborted", "t", 0)
        assert visible(coordinator, "committed") == {} and visible(coordinator, "aborted") == {("t", 0): 1}
        assert coordinator.group("committed") is not None  # a simple group holds the pending offsets
        assert await end_async(coordinator, True, group="committed") == E.NONE
        assert await end_async(coordinator, False, group="aborted", producer=OTHER_PRODUCER) == E.NONE
        assert visible(coordinator, "committed") == {("t", 0): 10}
        assert visible(coordinator, "aborted") == {("t", 0): 1}
    run_on(tmp_path, after_restart)

    async def after_second_restart(broker):
        coordinator = broker.group_coordinator
        assert visible(coordinator, "committed") == {("t", 0): 10}
        assert visible(coordinator, "aborted") == {("t", 0): 1}
        assert not coordinator.has_pending_transactional_offsets("committed", "t", 0)
        assert not coordinator.has_pending_transactional_offsets("aborted", "t", 0)
    run_on(tmp_path, after_second_restart)


# --- the load replays what the live coordinator did (property) ---

GROUPS = ("a", "b", "c")
PRODUCERS = (7, 8)
operations = st.lists(st.one_of(
    st.tuples(st.just("plain"), st.sampled_from(GROUPS), st.integers(0, 2), st.integers(0, 99)),
    st.tuples(st.just("txn"), st.sampled_from(GROUPS), st.integers(0, 2), st.integers(0, 99),
              st.sampled_from(PRODUCERS)),
    st.tuples(st.just("end"), st.sampled_from(GROUPS), st.sampled_from(PRODUCERS), st.booleans()),
    st.tuples(st.just("delete"), st.sampled_from(GROUPS), st.integers(0, 2)),
), max_size=25)


def state_of(coordinator) -> dict:
    return {group: (visible(coordinator, group), sorted(coordinator.transactional_offsets.keys_of(group)))
            for group in GROUPS}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_a_restart_replays_to_the_state_the_live_coordinator_had(tmp_path_factory, steps):
    """Any mix of plain commits, transactional commits, markers and OffsetDeletes: a model of
    Kafka's semantics (a committed transaction's offset replaces the committed one only if it
    reached the log after it) agrees with the live coordinator, and a broker restarted on the
    same directory replays to the same state."""
    data_dir = tmp_path_factory.mktemp("replay")
    order = [0]
    committed_model: dict[str, dict] = {group: {} for group in GROUPS}  # key -> (order, offset)
    pending_model: dict[tuple[str, int], dict] = {}  # (group, producer) -> key -> (order, offset)
    exists: set[str] = set()

    def next_order() -> int:
        order[0] += 1
        return order[0]

    async def live(broker):
        coordinator = broker.group_coordinator
        for step in steps:
            if step[0] == "plain":
                _, group, partition, offset = step
                assert coordinator.store_offsets(group, [("t", partition, offset, -1, "")]) == E.NONE
                committed_model[group][("t", partition)] = (next_order(), offset)
                exists.add(group)
            elif step[0] == "txn":
                _, group, partition, offset, producer = step
                assert await commit_async(coordinator, group, producer, offsets=(("t", partition, offset),)) == E.NONE
                pending_model.setdefault((group, producer), {})[("t", partition)] = (next_order(), offset)
                exists.add(group)
            elif step[0] == "end":
                _, group, producer, committed = step
                if not exists:  # no commit yet: no __consumer_offsets, nothing pending, no marker
                    assert await end_async(coordinator, committed, group, producer) == E.UNKNOWN_TOPIC_OR_PARTITION
                    continue
                assert await end_async(coordinator, committed, group, producer) == E.NONE
                # The marker is in the group's partition: it ends the producer's offsets of every
                # group of that partition.
                index = coordinator_partition(group, coordinator.partition_count)
                for other in GROUPS:
                    if coordinator_partition(other, coordinator.partition_count) != index:
                        continue
                    for key, (when, offset) in pending_model.pop((other, producer), {}).items():
                        current = committed_model[other].get(key)
                        if committed and (current is None or when > current[0]):
                            committed_model[other][key] = (when, offset)
            else:
                _, group, partition = step
                error, _ = coordinator.delete_offsets(group, [("t", partition)])
                if group not in exists:
                    assert error == E.GROUP_ID_NOT_FOUND
                    continue
                assert error == E.NONE
                committed_model[group].pop(("t", partition), None)
                for (pending_group, _), offsets in pending_model.items():
                    if pending_group == group:
                        offsets.pop(("t", partition), None)
        expected = {group: ({key: offset for key, (_, offset) in committed_model[group].items()},
                            sorted({key for (pending_group, _), offsets in pending_model.items()
                                    if pending_group == group for key in offsets}))
                    for group in GROUPS}
        assert state_of(coordinator) == expected
        return expected

    expected = run_on(data_dir, live)

    async def replayed(broker):
        assert state_of(broker.group_coordinator) == expected
    run_on(data_dir, replayed)


# --- the marker reader (fuzz) ---


@given(st.one_of(st.none(), st.binary(max_size=12)), st.one_of(st.none(), st.binary(max_size=12)),
       st.integers(-1, 5))
def test_any_control_record_is_a_marker_or_nothing(key, value, producer_id):
    batch, = iter_batches(build_batch([Record(offset_delta=0, timestamp_delta=0, key=key, value=value)], control=True,
                                      transactional=True, producer_id=producer_id, producer_epoch=0))
    marker = _end_transaction_marker(batch)
    if marker is not None:
        assert producer_id >= 0 and marker.coordinator_epoch is not None
        assert marker.is_commit or marker.is_abort


def test_an_empty_control_batch_is_nothing():
    batch, = iter_batches(build_batch([], control=True, transactional=True, producer_id=1, producer_epoch=0))
    assert _end_transaction_marker(batch) is None


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])


def test_a_deleted_topic_takes_its_pending_offsets_with_it():
    coordinator, _ = make()
    assert commit(coordinator, offsets=(("gone", 0, 1), ("kept", 0, 2))) == E.NONE
    coordinator.delete_topic_offsets("gone")
    assert not coordinator.has_pending_transactional_offsets("g", "gone", 0)
    assert coordinator.has_pending_transactional_offsets("g", "kept", 0)
    assert end(coordinator, committed=True) == E.NONE
    assert visible(coordinator) == {("kept", 0): 2}


@pytest.mark.parametrize("version, expected", [(0, E.COORDINATOR_NOT_AVAILABLE), (1, E.COORDINATOR_NOT_AVAILABLE),
                                               (2, E.COORDINATOR_LOAD_IN_PROGRESS), (5, E.COORDINATOR_LOAD_IN_PROGRESS)])
def test_the_handler_answers_a_loading_partition_as_kafka_per_version(tmp_path, version, expected):
    """Below v2 COORDINATOR_LOAD_IN_PROGRESS is COORDINATOR_NOT_AVAILABLE (KAFKA-7296)."""
    from odradek.broker.context import RequestContext
    from odradek.broker.handlers.txn_offset_commit import handle_txn_offset_commit
    from odradek.protocol.messages.txn_offset_commit import (TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition,
                                                             TxnOffsetCommitRequestTopic)

    async def scenario(broker):
        broker.create_topic("t", 1, 1)
        coordinator = broker.group_coordinator
        coordinator.runtime.loading.add(coordinator.runtime.partition_of("g"))
        ctx = RequestContext(broker, 28, version, 1, "test", "PLAINTEXT", "127.0.0.1:1")
        request = TxnOffsetCommitRequest(transactional_id="tx", group_id="g", producer_id=PRODUCER, producer_epoch=0,
                                         topics=[TxnOffsetCommitRequestTopic(name="t", partitions=[
                                             TxnOffsetCommitRequestPartition(partition_index=0, committed_offset=1)])])
        response = await handle_txn_offset_commit(ctx, request)
        coordinator.runtime.loading.clear()
        return [p.error_code for p in response.topics[0].partitions]
    # Without KIP-890 verification (which would come first, as in Kafka, and fail for this
    # producer the transaction coordinator does not know).
    assert run_on(tmp_path, scenario, **{"transaction.partition.verification.enable": "false"}) == [expected]
