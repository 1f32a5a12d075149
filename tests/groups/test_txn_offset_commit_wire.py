"""TxnOffsetCommit over a socket against a real ``odradek serve``: the offsets stay pending
(invisible to OffsetFetch, UNSTABLE_OFFSET_COMMIT with require_stable) until the producer's
marker; the errors Kafka answers; pending offsets across kill -9, completed by a marker written
afterwards (in process on the same data directory, as the transaction coordinator's marker writer
calls ``GroupCoordinator.complete_transaction``, and over the wire with EndTxn); whole
transactions with AddOffsetsToTxn (transaction version 1) and without (TxnOffsetCommit v5).

The group coordinator's side alone runs on a broker with
``transaction.partition.verification.enable=false``, with producer ids from InitProducerId
without a transactional id (an idempotent producer's): the group coordinator then takes any
producer id and epoch, and the log fences older epochs. The whole transactions run with Kafka's
default (verification on)."""

from __future__ import annotations

import asyncio
import time

import pytest

from broker.test_server import create_topic  # tests/broker's helper
from odradek.broker.groups import coordinator_partition
from odradek.protocol import error_codes as E
from odradek.protocol.messages.add_offsets_to_txn import AddOffsetsToTxnRequest
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.describe_transactions import DescribeTransactionsRequest
from odradek.protocol.messages.delete_groups import DeleteGroupsRequest
from odradek.protocol.messages.init_producer_id import InitProducerIdRequest
from odradek.protocol.messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from odradek.protocol.messages.offset_fetch import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopic,
    OffsetFetchRequestTopics,
)
from odradek.protocol.messages.txn_offset_commit import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)

from broker.conftest import BrokerProcess
from broker.test_transactions import end, init, init_retrying, wait_state

from .conftest import FAST_GROUPS, RawClient, assert_no_traceback, wait_until_loaded
from .test_transactional_offsets import loaded, open_broker

UNVERIFIED = FAST_GROUPS + ("transaction.partition.verification.enable=false",)
TRANSACTIONS = FAST_GROUPS + ("transaction.state.log.num.partitions=4", "offsets.topic.num.partitions=5")


def module_broker(tmp_path_factory, name, overrides):
    directory = tmp_path_factory.mktemp(name)
    process = BrokerProcess(directory / "data", overrides, directory / "broker.log")
    yield process
    code = process.stop()
    assert code == 0, f"broker exited {code}: {process.log()}"
    assert_no_traceback(process)


@pytest.fixture(scope="module")
def offsets_broker(tmp_path_factory):
    """The group coordinator's side alone: no KIP-890 verification."""
    yield from module_broker(tmp_path_factory, "txo-offsets", UNVERIFIED)


@pytest.fixture(scope="module")
def txn_broker(tmp_path_factory):
    """Kafka's defaults: the transaction coordinator verifies (or adds) the offsets partition."""
    yield from module_broker(tmp_path_factory, "txo-txn", TRANSACTIONS)


@pytest.fixture
def group_client(offsets_broker):
    clients = []

    def connect() -> RawClient:
        clients.append(RawClient(offsets_broker.host, offsets_broker.port))
        return clients[-1]

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def txn_client(txn_broker):
    client = RawClient(txn_broker.host, txn_broker.port)
    yield client
    client.close()


def init_producer(client, producer_id=-1, epoch=-1) -> tuple[int, int]:
    answer = client.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000,
                                                  producer_id=producer_id, producer_epoch=epoch), 4)
    assert answer.error_code == E.NONE
    return answer.producer_id, answer.producer_epoch


def txn_commit(client, group, producer, topics, version=3, generation=-1, member="", instance=None,
               transactional_id="tx") -> list[list[tuple[int, int]]]:
    """TxnOffsetCommit of ``topics`` {name: [(partition, offset, metadata)]}: per topic, the
    (partition, error code) answers."""
    producer_id, epoch = producer
    request = TxnOffsetCommitRequest(
        transactional_id=transactional_id, group_id=group, producer_id=producer_id, producer_epoch=epoch,
        generation_id_or_member_epoch=generation, member_id=member, group_instance_id=instance,
        topics=[TxnOffsetCommitRequestTopic(name=name, partitions=[
            TxnOffsetCommitRequestPartition(partition_index=index, committed_offset=offset, committed_metadata=meta,
                                            committed_leader_epoch=1)
            for index, offset, meta in partitions]) for name, partitions in topics.items()])
    answer = client.request(request, version)
    return [[(p.partition_index, p.error_code) for p in topic.partitions] for topic in answer.topics]


def fetch(client, group, topic, partitions, require_stable=False, version=8):
    """(partition, committed offset, error code) per partition."""
    if version >= 8:
        answer = client.request(OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id=group, topics=[
            OffsetFetchRequestTopics(name=topic, partition_indexes=list(partitions))])], require_stable=require_stable),
            version)
        assert answer.groups[0].error_code == E.NONE
        found = answer.groups[0].topics[0].partitions
    else:
        answer = client.request(OffsetFetchRequest(group_id=group, require_stable=require_stable, topics=[
            OffsetFetchRequestTopic(name=topic, partition_indexes=list(partitions))]), version)
        assert answer.error_code == E.NONE
        found = answer.topics[0].partitions
    return [(p.partition_index, p.committed_offset, p.error_code) for p in found]


def test_txn_offset_commit_is_advertised_at_kafkas_versions(group_client):
    answer = group_client().request(ApiVersionsRequest(), 2)
    assert [(key.min_version, key.max_version) for key in answer.api_keys if key.api_key == 28] == [(0, 5)]


@pytest.mark.parametrize("version", range(0, 6))
def test_offsets_stay_pending_and_require_stable_sees_them_at_every_version(group_client, version):
    client = group_client()
    topic, group = f"txo-{version}", f"txo-group-{version}"
    create_topic(client, topic, partitions=2)
    producer = init_producer(client)
    answer = txn_commit(client, group, producer, {topic: [(0, 10, "m"), (5, 1, "")], "txo-missing": [(0, 1, "")]},
                        version=version)
    assert answer == [[(0, E.NONE), (5, E.UNKNOWN_TOPIC_OR_PARTITION)], [(0, E.UNKNOWN_TOPIC_OR_PARTITION)]]
    # Not visible; require_stable: unstable where a transaction has an offset pending.
    assert fetch(client, group, topic, [0, 1]) == [(0, -1, E.NONE), (1, -1, E.NONE)]
    for fetch_version in (7, 8, 9):
        assert fetch(client, group, topic, [0, 1], require_stable=True, version=fetch_version) == [
            (0, -1, E.UNSTABLE_OFFSET_COMMIT), (1, -1, E.NONE)]
    # A fetch of every offset lists committed partitions only, unstable where one is pending.
    client.request(OffsetCommitRequest(group_id=group, topics=[OffsetCommitRequestTopic(name=topic, partitions=[
        OffsetCommitRequestPartition(partition_index=index, committed_offset=3) for index in (0, 1)])]), 8)
    everything = client.request(OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id=group, topics=None)],
                                                   require_stable=True), 8)
    assert [(p.partition_index, p.committed_offset, p.error_code) for p in everything.groups[0].topics[0].partitions] \
        == [(0, -1, E.UNSTABLE_OFFSET_COMMIT), (1, 3, E.NONE)]
    assert fetch(client, group, topic, [0, 1]) == [(0, 3, E.NONE), (1, 3, E.NONE)]


def test_the_errors_are_kafkas(group_client, offsets_broker):
    client = group_client()
    create_topic(client, "txo-errors", partitions=1)
    producer_id, epoch = init_producer(client)
    one = {"txo-errors": [(0, 1, "")]}
    assert txn_commit(client, "", (producer_id, epoch), one) == [[(0, E.INVALID_GROUP_ID)]]
    assert txn_commit(client, "txo-e", (-1, 0), one) == [[(0, E.INVALID_PRODUCER_ID_MAPPING)]]
    # A group that does not exist takes generation -1 only.
    assert txn_commit(client, "txo-none", (producer_id, epoch), one, generation=2, member="m") == [
        [(0, E.ILLEGAL_GENERATION)]]
    # Metadata longer than offset.metadata.max.bytes (4096): that partition only.
    two = {"txo-errors": [(0, 1, "x" * 4097)]}
    assert txn_commit(client, "txo-e", (producer_id, epoch), two) == [[(0, E.OFFSET_METADATA_TOO_LARGE)]]
    # The epoch is bumped (KIP-360 through InitProducerId): the old epoch is fenced by the log.
    bumped = init_producer(client, producer_id, epoch)
    assert bumped == (producer_id, epoch + 1)
    assert txn_commit(client, "txo-e", bumped, one) == [[(0, E.NONE)]]
    for version in range(0, 6):
        assert txn_commit(client, "txo-e", (producer_id, epoch), one, version=version) == [
            [(0, E.INVALID_PRODUCER_EPOCH)]]
    assert_no_traceback(offsets_broker)


def test_deleting_the_group_deletes_its_pending_offsets(group_client):
    client = group_client()
    create_topic(client, "txo-delete", partitions=1)
    producer = init_producer(client)
    assert txn_commit(client, "txo-deleted", producer, {"txo-delete": [(0, 9, "")]}) == [[(0, E.NONE)]]
    deleted = client.request(DeleteGroupsRequest(groups_names=["txo-deleted"]), 2)
    assert [(r.group_id, r.error_code) for r in deleted.results] == [("txo-deleted", E.NONE)]
    assert fetch(client, "txo-deleted", "txo-delete", [0], require_stable=True) == [(0, -1, E.NONE)]


def complete_in_process(data_dir, group: str, producer_id: int, epoch: int, committed: bool) -> int:
    """What the transaction coordinator's marker writer does, on a stopped broker's directory."""
    async def main():
        broker = await loaded(open_broker(data_dir))
        try:
            coordinator = broker.group_coordinator
            partition = coordinator_partition(group, coordinator.partition_count)
            return await coordinator.complete_transaction(partition, producer_id, epoch, 0, committed)
        finally:
            broker.close()
    return asyncio.run(main())


def test_pending_offsets_survive_a_crash_and_the_marker_decides(broker_process):
    """kill -9 with offsets pending: they are pending after the restart; a COMMIT marker written
    then makes them visible, an ABORT marker drops them, and both stay so after restarts."""
    broker = broker_process(None, *UNVERIFIED, "offsets.topic.num.partitions=3")
    client = RawClient(broker.host, broker.port)
    create_topic(client, "txo-crash", partitions=2)
    committing, aborting = init_producer(client), init_producer(client)
    assert txn_commit(client, "txo-commit", committing, {"txo-crash": [(0, 100, "c"), (1, 101, "")]}) == [
        [(0, E.NONE), (1, E.NONE)]]
    assert txn_commit(client, "txo-abort", aborting, {"txo-crash": [(0, 200, "")]}) == [[(0, E.NONE)]]
    client.request(OffsetCommitRequest(group_id="txo-abort", topics=[OffsetCommitRequestTopic(
        name="txo-crash", partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=7)])]), 8)
    client.close()
    broker.kill()

    restarted = broker_process(broker.data_dir, *UNVERIFIED, "offsets.topic.num.partitions=3")
    client = RawClient(restarted.host, restarted.port)
    wait_until_loaded(client)
    assert fetch(client, "txo-commit", "txo-crash", [0, 1], require_stable=True) == [
        (0, -1, E.UNSTABLE_OFFSET_COMMIT), (1, -1, E.UNSTABLE_OFFSET_COMMIT)]
    assert fetch(client, "txo-abort", "txo-crash", [0]) == [(0, 7, E.NONE)]
    client.close()
    assert restarted.stop() == 0

    assert complete_in_process(restarted.data_dir, "txo-commit", *committing, committed=True) == E.NONE
    assert complete_in_process(restarted.data_dir, "txo-abort", *aborting, committed=False) == E.NONE

    final = broker_process(restarted.data_dir, *UNVERIFIED, "offsets.topic.num.partitions=3")
    client = RawClient(final.host, final.port)
    wait_until_loaded(client)
    assert fetch(client, "txo-commit", "txo-crash", [0, 1], require_stable=True) == [(0, 100, E.NONE),
                                                                                      (1, 101, E.NONE)]
    assert fetch(client, "txo-abort", "txo-crash", [0], require_stable=True) == [(0, 7, E.NONE)]
    client.close()
    assert_no_traceback(final)


# --- whole transactions: the transaction coordinator writes the markers ---


def add_offsets(client, transactional_id, producer_id, epoch, group, version=3) -> int:
    return client.request(AddOffsetsToTxnRequest(transactional_id=transactional_id, producer_id=producer_id,
                                                 producer_epoch=epoch, group_id=group), version).error_code


def fetch_until(client, group, topic, partitions, expected, timeout=10.0):
    """OffsetFetch with require_stable until it answers ``expected`` (the markers are written
    after EndTxn is answered, as in Kafka)."""
    deadline = time.monotonic() + timeout
    while True:
        found = fetch(client, group, topic, partitions, require_stable=True)
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_a_committed_transaction_makes_its_offsets_the_groups(txn_client):
    client = txn_client
    create_topic(client, "txo-e2e", partitions=2)
    started = init(client, "txo-committer")
    producer = (started.producer_id, started.producer_epoch)
    one = {"txo-e2e": [(0, 40, "x"), (1, 41, "")]}
    # Not in the transaction yet (no AddOffsetsToTxn): refused by the verification (KIP-890),
    # as Kafka: INVALID_TXN_STATE below v4, TRANSACTION_ABORTABLE from v4.
    assert txn_commit(client, "txo-g", producer, one, version=3, transactional_id="txo-committer") == [
        [(0, E.INVALID_TXN_STATE), (1, E.INVALID_TXN_STATE)]]
    assert txn_commit(client, "txo-g", producer, one, version=4, transactional_id="txo-committer") == [
        [(0, E.TRANSACTION_ABORTABLE), (1, E.TRANSACTION_ABORTABLE)]]
    assert add_offsets(client, "txo-committer", *producer, "txo-g") == E.NONE
    assert txn_commit(client, "txo-g", producer, one, version=3, transactional_id="txo-committer") == [
        [(0, E.NONE), (1, E.NONE)]]
    assert fetch(client, "txo-g", "txo-e2e", [0, 1], require_stable=True) == [
        (0, -1, E.UNSTABLE_OFFSET_COMMIT), (1, -1, E.UNSTABLE_OFFSET_COMMIT)]
    assert end(client, "txo-committer", *producer, commit=True).error_code == E.NONE
    assert fetch_until(client, "txo-g", "txo-e2e", [0, 1], [(0, 40, E.NONE), (1, 41, E.NONE)]) == [
        (0, 40, E.NONE), (1, 41, E.NONE)]
    wait_state(client, "txo-committer", "CompleteCommit")

    # The next transaction of the same producer aborts: the offsets stay where they were.
    assert add_offsets(client, "txo-committer", *producer, "txo-g") == E.NONE
    assert txn_commit(client, "txo-g", producer, {"txo-e2e": [(0, 90, "")]}, transactional_id="txo-committer") == [
        [(0, E.NONE)]]
    assert end(client, "txo-committer", *producer, commit=False).error_code == E.NONE
    assert fetch_until(client, "txo-g", "txo-e2e", [0, 1], [(0, 40, E.NONE), (1, 41, E.NONE)]) == [
        (0, 40, E.NONE), (1, 41, E.NONE)]

    # A new producer with the same transactional id fences the old epoch.
    fenced = init_retrying(client, "txo-committer")
    assert fenced.error_code == E.NONE and fenced.producer_epoch > producer[1]
    assert txn_commit(client, "txo-g", producer, {"txo-e2e": [(0, 1, "")]}, transactional_id="txo-committer") == [
        [(0, E.INVALID_PRODUCER_EPOCH)]]


def test_transaction_version_2_adds_the_offsets_partition_with_txn_offset_commit_v5(txn_client):
    client = txn_client
    create_topic(client, "txo-v2", partitions=1)
    started = init(client, "txo-v2-producer", version=5)
    producer = (started.producer_id, started.producer_epoch)
    # No AddOffsetsToTxn: TxnOffsetCommit v5 puts the group's partition into the transaction.
    assert txn_commit(client, "txo-v2-group", producer, {"txo-v2": [(0, 12, "")]}, version=5,
                      transactional_id="txo-v2-producer") == [[(0, E.NONE)]]
    described = client.request(DescribeTransactionsRequest(transactional_ids=["txo-v2-producer"]), 0)
    state = described.transaction_states[0]
    assert state.transaction_state == "Ongoing"
    assert [(topic.topic, list(topic.partitions)) for topic in state.topics] == [
        ("__consumer_offsets", [coordinator_partition("txo-v2-group", 5)])]
    ended = end(client, "txo-v2-producer", *producer, commit=True, version=5)
    assert (ended.error_code, ended.producer_epoch) == (E.NONE, producer[1] + 1)
    assert fetch_until(client, "txo-v2-group", "txo-v2", [0], [(0, 12, E.NONE)]) == [(0, 12, E.NONE)]


def test_a_transaction_left_pending_by_a_crash_commits_after_the_restart(broker_process):
    broker = broker_process(None, *TRANSACTIONS)
    client = RawClient(broker.host, broker.port)
    create_topic(client, "txo-restart", partitions=1)
    started = init(client, "txo-restarting")
    producer = (started.producer_id, started.producer_epoch)
    assert add_offsets(client, "txo-restarting", *producer, "txo-r") == E.NONE
    assert txn_commit(client, "txo-r", producer, {"txo-restart": [(0, 77, "")]},
                      transactional_id="txo-restarting") == [[(0, E.NONE)]]
    client.close()
    broker.kill()

    restarted = broker_process(broker.data_dir, *TRANSACTIONS)
    client = RawClient(restarted.host, restarted.port)
    wait_until_loaded(client)
    assert fetch(client, "txo-r", "txo-restart", [0], require_stable=True) == [(0, -1, E.UNSTABLE_OFFSET_COMMIT)]
    deadline = time.monotonic() + 10
    while (answer := end(client, "txo-restarting", *producer, commit=True)).error_code in (
            E.COORDINATOR_LOAD_IN_PROGRESS, E.CONCURRENT_TRANSACTIONS) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answer.error_code == E.NONE
    assert fetch_until(client, "txo-r", "txo-restart", [0], [(0, 77, E.NONE)]) == [(0, 77, E.NONE)]
    client.close()
    assert restarted.stop() == 0

    again = broker_process(restarted.data_dir, *TRANSACTIONS)
    client = RawClient(again.host, again.port)
    wait_until_loaded(client)
    assert fetch(client, "txo-r", "txo-restart", [0], require_stable=True) == [(0, 77, E.NONE)]
    client.close()
    assert_no_traceback(again)
