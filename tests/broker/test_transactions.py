"""The transaction coordinator against ``odradek serve``, over the wire with the raw protocol:
InitProducerId with transactional ids, AddPartitionsToTxn, the KIP-890 checks of Produce,
EndTxn and its markers (read_committed sees exactly the committed records), fencing, the
abort of timed-out transactions, transaction version 2, Describe/ListTransactions,
WriteTxnMarkers, and the state across restarts, including a crash between the PrepareCommit
record and the markers."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odradek.broker.coordinators.runtime import coordinator_partition
from odradek.broker.transactions.metadata import TransactionMetadata, TxnState, transaction_key, transaction_value
from odradek.protocol import error_codes
from odradek.protocol.messages.add_offsets_to_txn import AddOffsetsToTxnRequest
from odradek.protocol.messages.add_partitions_to_txn import AddPartitionsToTxnRequest, AddPartitionsToTxnTopic
from odradek.protocol.messages.describe_transactions import DescribeTransactionsRequest
from odradek.protocol.messages.end_txn import EndTxnRequest
from odradek.protocol.messages.fetch import FetchRequest
from odradek.protocol.messages.init_producer_id import InitProducerIdRequest
from odradek.protocol.messages.list_offsets import ListOffsetsRequest
from odradek.protocol.messages.list_transactions import ListTransactionsRequest
from odradek.protocol.messages.produce import ProduceRequest
from odradek.protocol.messages.write_txn_markers import WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest
from odradek.protocol.records.batch import Record, build_batch, iter_batches

from .conftest import RawClient, module_broker
from .test_server import create_topic

ABORT_CHECK_MS = 200
# Short abort checks, and few __transaction_state partitions so that its creation is quick.
OVERRIDES = (f"transaction.abort.timed.out.transaction.cleanup.interval.ms={ABORT_CHECK_MS}",
             "transaction.state.log.num.partitions=4")


@pytest.fixture(scope="module")
def txn_broker(tmp_path_factory):
    yield from module_broker(tmp_path_factory, "txn-broker", OVERRIDES)


@pytest.fixture
def client(txn_broker):
    connection = RawClient(txn_broker.host, txn_broker.port)
    yield connection
    connection.close()


# --- requests ---

def init(client, transactional_id, timeout_ms=60000, producer_id=-1, epoch=-1, version=4):
    return client.request(InitProducerIdRequest(transactional_id=transactional_id, transaction_timeout_ms=timeout_ms,
                                                producer_id=producer_id, producer_epoch=epoch), version)


def init_retrying(client, transactional_id, **kwargs):
    """InitProducerId until it is not CONCURRENT_TRANSACTIONS (an abort of the open one runs)."""
    deadline = time.monotonic() + 10
    while True:
        answer = init(client, transactional_id, **kwargs)
        if answer.error_code != error_codes.CONCURRENT_TRANSACTIONS or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def add(client, transactional_id, producer_id, epoch, partitions, version=3) -> dict:
    """AddPartitionsToTxn (v0-3 form); {(topic, index): error code}."""
    topics = {}
    for topic, index in partitions:
        topics.setdefault(topic, []).append(index)
    request = AddPartitionsToTxnRequest(
        v3_and_below_transactional_id=transactional_id, v3_and_below_producer_id=producer_id,
        v3_and_below_producer_epoch=epoch,
        v3_and_below_topics=[AddPartitionsToTxnTopic(name=topic, partitions=indexes) for topic, indexes in topics.items()])
    answer = client.request(request, version)
    return {(topic.name, result.partition_index): result.partition_error_code
            for topic in answer.results_by_topic_v3_and_below for result in topic.results_by_partition}


def end(client, transactional_id, producer_id, epoch, commit, version=3):
    return client.request(EndTxnRequest(transactional_id=transactional_id, producer_id=producer_id,
                                        producer_epoch=epoch, committed=commit), version)


def describe(client, transactional_id):
    return client.request(DescribeTransactionsRequest(transactional_ids=[transactional_id]), 0).transaction_states[0]


def wait_state(client, transactional_id, state: str, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        described = describe(client, transactional_id)
        if described.transaction_state == state or time.monotonic() > deadline:
            return described
        time.sleep(0.02)


def txn_batch(producer_id, epoch, sequence, *values):
    return build_batch([Record(i, 0, b"k", value) for i, value in enumerate(values)], producer_id=producer_id,
                       producer_epoch=epoch, base_sequence=sequence, transactional=True,
                       base_timestamp=1_700_000_000_000)


def produce_txn(client, transactional_id, topic, index, batch, version=9):
    request = ProduceRequest(transactional_id=transactional_id, acks=-1, timeout_ms=5000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic, partition_data=[
            ProduceRequest.TopicProduceData.PartitionProduceData(index=index, records=batch)])])
    return client.request(request, version).responses[0].partition_responses[0]


def produce_txn_retrying(client, transactional_id, topic, index, batch, version=12):
    """Produce, again while the answer is NOT_ENOUGH_REPLICAS (the coordinator could not add
    the partition yet: the previous transaction is still being completed), as clients do."""
    deadline = time.monotonic() + 10
    while True:
        answer = produce_txn(client, transactional_id, topic, index, batch, version)
        if answer.error_code != error_codes.NOT_ENOUGH_REPLICAS or time.monotonic() > deadline:
            return answer
        time.sleep(0.02)


def open_transaction(client, transactional_id, topic, value, timeout_ms=60000) -> tuple[int, int]:
    """A new topic and a transaction of a new id with one record in its partition 0 (open);
    (producer id, epoch)."""
    create_topic(client, topic)
    producer = init(client, transactional_id, timeout_ms=timeout_ms)
    pid, epoch = producer.producer_id, producer.producer_epoch
    assert add(client, transactional_id, pid, epoch, [(topic, 0)]) == {(topic, 0): 0}
    assert produce_txn(client, transactional_id, topic, 0, txn_batch(pid, epoch, 0, value)).error_code == 0
    return pid, epoch


def read(client, topic, index, committed: bool) -> list[bytes]:
    request = FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20,
                           isolation_level=1 if committed else 0, session_id=0, session_epoch=-1,
                           topics=[FetchRequest.FetchTopic(topic=topic, partitions=[
                               FetchRequest.FetchTopic.FetchPartition(partition=index, fetch_offset=0,
                                                                      partition_max_bytes=1 << 20)])])
    data = client.request(request, 12).responses[0].partitions[0]
    assert data.error_code == 0
    # What a read_committed consumer does with the aborted transactions listed (Kafka's
    # Fetcher): from an entry's first offset on, its producer's batches are dropped until that
    # producer's marker.
    pending = sorted((entry.first_offset, entry.producer_id) for entry in (data.aborted_transactions or []))
    aborting: set[int] = set()
    values = []
    for batch in iter_batches(bytes(data.records or b"")):
        while pending and pending[0][0] <= batch.base_offset:
            aborting.add(pending.pop(0)[1])
        if batch.is_control:
            aborting.discard(batch.producer_id)
            continue
        if committed and batch.is_transactional and batch.producer_id in aborting:
            continue
        values.extend(bytes(record.value) for record in batch.records)
    return values


def latest_offset(client, topic, index, committed: bool) -> int:
    request = ListOffsetsRequest(replica_id=-1, isolation_level=1 if committed else 0, topics=[
        ListOffsetsRequest.ListOffsetsTopic(name=topic, partitions=[
            ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(partition_index=index, timestamp=-1)])])
    return client.request(request, 5).topics[0].partitions[0].offset


# --- tests ---

def test_init_producer_id_bumps_the_epoch_and_checks_the_timeout(client):
    first = init(client, "init-1")
    assert (first.error_code, first.producer_epoch) == (0, 0) and first.producer_id >= 0
    second = init(client, "init-1")
    assert (second.error_code, second.producer_id, second.producer_epoch) == (0, first.producer_id, 1)
    assert init(client, "init-2", timeout_ms=0).error_code == error_codes.INVALID_TRANSACTION_TIMEOUT
    assert init(client, "init-2", timeout_ms=900_001).error_code == error_codes.INVALID_TRANSACTION_TIMEOUT
    assert init(client, "init-2", timeout_ms=900_000).error_code == error_codes.NONE
    assert init(client, "").error_code == error_codes.INVALID_REQUEST
    # KIP-360: the producer names its id and epoch and continues with the next epoch; an
    # epoch that is neither current nor the last one is fenced.
    resumed = init(client, "init-1", producer_id=first.producer_id, epoch=1)
    assert (resumed.error_code, resumed.producer_epoch) == (0, 2)
    assert init(client, "init-1", producer_id=first.producer_id, epoch=0).error_code == error_codes.PRODUCER_FENCED


def test_committed_and_aborted_transactions_across_partitions(client):
    for topic in ("txn-a", "txn-b"):
        assert create_topic(client, topic, partitions=2).error_code == 0
    producer = init(client, "commit-abort")
    pid, epoch = producer.producer_id, producer.producer_epoch
    partitions = [("txn-a", 0), ("txn-a", 1), ("txn-b", 0)]
    sequences = dict.fromkeys(partitions, 0)

    def run(tag: bytes, commit: bool):
        assert set(add(client, "commit-abort", pid, epoch, partitions).values()) == {0}
        for topic, index in partitions:
            answer = produce_txn(client, "commit-abort", topic, index,
                                 txn_batch(pid, epoch, sequences[(topic, index)], tag + b"-1", tag + b"-2"))
            assert answer.error_code == 0, answer
            sequences[(topic, index)] += 2
        assert describe(client, "commit-abort").transaction_state == "Ongoing"
        assert end(client, "commit-abort", pid, epoch, commit).error_code == 0
        assert wait_state(client, "commit-abort", "CompleteCommit" if commit else "CompleteAbort").error_code == 0

    run(b"first", commit=True)
    run(b"second", commit=False)
    run(b"third", commit=True)
    for topic, index in partitions:
        assert read(client, topic, index, committed=True) == [b"first-1", b"first-2", b"third-1", b"third-2"]
        assert read(client, topic, index, committed=False) == [
            b"first-1", b"first-2", b"second-1", b"second-2", b"third-1", b"third-2"]
        # Every marker is in: the last stable offset is the log end (3 transactions, 2 records
        # and a marker each).
        assert latest_offset(client, topic, index, committed=True) == latest_offset(client, topic, index, False) == 9
    described = describe(client, "commit-abort")
    assert (described.producer_id, described.producer_epoch, described.topics) == (pid, epoch, [])
    listed = client.request(ListTransactionsRequest(state_filters=["CompleteCommit", "NoSuchState"]), 1)
    assert listed.unknown_state_filters == ["NoSuchState"]
    assert ("commit-abort", pid, "CompleteCommit") in [
        (entry.transactional_id, entry.producer_id, entry.transaction_state) for entry in listed.transaction_states]
    assert client.request(ListTransactionsRequest(producer_id_filters=[pid]), 0).transaction_states[0] \
        .transactional_id == "commit-abort"
    assert client.request(ListTransactionsRequest(transactional_id_pattern="commit-.*"), 2).transaction_states
    assert not client.request(ListTransactionsRequest(transactional_id_pattern="commit"), 2).transaction_states


def test_open_transaction_holds_the_last_stable_offset(client):
    pid, epoch = open_transaction(client, "open", "txn-open", b"pending")
    assert read(client, "txn-open", 0, committed=True) == []
    assert latest_offset(client, "txn-open", 0, committed=True) == 0
    described = describe(client, "open")
    assert described.transaction_state == "Ongoing"
    assert [(topic.topic, topic.partitions) for topic in described.topics] == [("txn-open", [0])]
    assert end(client, "open", pid, epoch, commit=True).error_code == 0
    wait_state(client, "open", "CompleteCommit")
    assert read(client, "txn-open", 0, committed=True) == [b"pending"]


def test_produce_to_a_partition_not_in_the_transaction_is_refused(client):
    create_topic(client, "txn-unadded")
    producer = init(client, "unadded")
    pid, epoch = producer.producer_id, producer.producer_epoch
    refused = produce_txn(client, "unadded", "txn-unadded", 0, txn_batch(pid, epoch, 0, b"x"), version=9)
    assert (refused.error_code, refused.error_message) == (error_codes.INVALID_TXN_STATE,
                                                           "Partition was not added to the transaction")
    newer = produce_txn(client, "unadded", "txn-unadded", 0, txn_batch(pid, epoch, 0, b"x"), version=11)
    assert newer.error_code == error_codes.TRANSACTION_ABORTABLE
    stranger = produce_txn(client, "no-such-id", "txn-unadded", 0, txn_batch(pid, epoch, 0, b"x"), version=9)
    assert stranger.error_code == error_codes.INVALID_PRODUCER_ID_MAPPING
    assert latest_offset(client, "txn-unadded", 0, committed=False) == 0


def test_add_partitions_and_end_txn_errors(client):
    create_topic(client, "txn-errors")
    producer = init(client, "errors")
    pid, epoch = producer.producer_id, producer.producer_epoch
    assert add(client, "errors", pid, epoch, [("txn-errors", 0), ("txn-errors", 7)]) == {
        ("txn-errors", 0): error_codes.OPERATION_NOT_ATTEMPTED, ("txn-errors", 7): error_codes.UNKNOWN_TOPIC_OR_PARTITION}
    assert add(client, "errors", pid + 1, epoch, [("txn-errors", 0)]) == {
        ("txn-errors", 0): error_codes.INVALID_PRODUCER_ID_MAPPING}
    assert add(client, "never-initialized", pid, epoch, [("txn-errors", 0)]) == {
        ("txn-errors", 0): error_codes.INVALID_PRODUCER_ID_MAPPING}
    assert add(client, "errors", pid, epoch + 1, [("txn-errors", 0)]) == {("txn-errors", 0): error_codes.PRODUCER_FENCED}
    assert end(client, "errors", pid, epoch, commit=True).error_code == error_codes.INVALID_TXN_STATE  # Empty
    assert add(client, "errors", pid, epoch, [("txn-errors", 0)]) == {("txn-errors", 0): 0}
    assert end(client, "errors", pid, epoch, commit=False).error_code == 0
    wait_state(client, "errors", "CompleteAbort")
    assert end(client, "errors", pid, epoch, commit=False).error_code == 0  # a retry of the same end
    assert end(client, "errors", pid, epoch, commit=True).error_code == error_codes.INVALID_TXN_STATE


def test_a_new_producer_fences_the_open_transaction(client):
    pid, epoch = open_transaction(client, "fence", "txn-fence", b"zombie")
    first_try = init(client, "fence")
    assert first_try.error_code == error_codes.CONCURRENT_TRANSACTIONS  # the open one is being aborted
    new = init_retrying(client, "fence")
    # The abort bumped the epoch once, the new producer's init once more (so does Kafka 4.4.0).
    assert new.error_code == 0 and new.producer_id == pid and new.producer_epoch == epoch + 2
    # The old producer is fenced everywhere.
    assert end(client, "fence", pid, epoch, commit=True).error_code == error_codes.PRODUCER_FENCED
    late = produce_txn(client, "fence", "txn-fence", 0, txn_batch(pid, epoch, 1, b"late"))
    assert late.error_code == error_codes.INVALID_PRODUCER_EPOCH
    assert read(client, "txn-fence", 0, committed=True) == []
    assert describe(client, "fence").transaction_state == "Empty"


def test_a_fenced_producer_is_answered_in_its_versions_words(client):
    """PRODUCER_FENCED came with InitProducerId v4 and EndTxn, AddPartitionsToTxn and
    AddOffsetsToTxn v2 (KIP-588); older versions get INVALID_PRODUCER_EPOCH for it, as from
    Kafka 4.4.0."""
    create_topic(client, "txn-fenced-words")
    old = init(client, "fenced-words")
    pid, epoch = old.producer_id, old.producer_epoch
    assert init_retrying(client, "fenced-words").producer_epoch == epoch + 1
    for version, expected in ((1, error_codes.INVALID_PRODUCER_EPOCH), (2, error_codes.PRODUCER_FENCED)):
        assert end(client, "fenced-words", pid, epoch, commit=True, version=version).error_code == expected
        assert add(client, "fenced-words", pid, epoch, [("txn-fenced-words", 0)], version=version) == {
            ("txn-fenced-words", 0): expected}
        added = client.request(AddOffsetsToTxnRequest(transactional_id="fenced-words", producer_id=pid,
                                                      producer_epoch=epoch, group_id="g"), version)
        assert added.error_code == expected
    # KIP-360: the old producer asks to continue with its epoch after the id was taken over.
    for version, expected in ((3, error_codes.INVALID_PRODUCER_EPOCH), (4, error_codes.PRODUCER_FENCED)):
        assert init(client, "fenced-words", producer_id=pid, epoch=epoch, version=version).error_code == expected


def test_a_timed_out_transaction_is_aborted_by_the_broker(client):
    pid, epoch = open_transaction(client, "timeout", "txn-timeout", b"slow", timeout_ms=300)
    described = wait_state(client, "timeout", "CompleteAbort", timeout=5)
    # One bump: the abort runs at the broker's transaction version 2, which bumps the epoch it
    # found, not the fencing one (Kafka 4.4.0 ends at epoch + 1 too).
    assert (described.transaction_state, described.producer_epoch) == ("CompleteAbort", epoch + 1)
    assert end(client, "timeout", pid, epoch, commit=True).error_code == error_codes.PRODUCER_FENCED
    assert end(client, "timeout", pid, epoch, commit=False).error_code == error_codes.PRODUCER_FENCED
    assert read(client, "txn-timeout", 0, committed=True) == []
    assert latest_offset(client, "txn-timeout", 0, committed=True) == 2  # the record and the abort marker


def test_end_txn_answers_by_the_requests_transaction_version(client):
    """EndTxn v5+ (transaction version 2) against Kafka 4.4.0's answers, request by request
    (the same sequence was sent to its broker): an abort with nothing added ends an empty
    transaction with a new epoch, a commit of nothing is INVALID_TXN_STATE, a retry with the
    epoch before the bump is answered NONE, a second end with the current epoch is a new
    transaction's; EndTxn v3 keeps the rules of version 1 (the current epoch only)."""
    create_topic(client, "txn-endtxn")
    producer = init(client, "endtxn")
    pid, epoch = producer.producer_id, producer.producer_epoch

    def ending(epoch_sent, commit, version=5):
        """The answer, once the previous end finished (CONCURRENT_TRANSACTIONS until then)."""
        deadline = time.monotonic() + 10
        while True:
            answer = end(client, "endtxn", pid, epoch_sent, commit, version=version)
            if answer.error_code != error_codes.CONCURRENT_TRANSACTIONS or time.monotonic() > deadline:
                return answer.error_code, answer.producer_epoch
            time.sleep(0.02)

    assert ending(epoch, commit=True) == (error_codes.INVALID_TXN_STATE, -1)
    assert ending(epoch, commit=False, version=3) == (error_codes.INVALID_TXN_STATE, -1)
    assert ending(epoch, commit=False) == (error_codes.NONE, epoch + 1)
    described = wait_state(client, "endtxn", "CompleteAbort")
    assert (described.producer_epoch, described.topics) == (epoch + 1, [])
    assert ending(epoch + 1, commit=True) == (error_codes.INVALID_TXN_STATE, -1)
    assert ending(epoch, commit=False) == (error_codes.NONE, epoch + 1)  # a retry of the abort
    assert ending(epoch + 1, commit=False) == (error_codes.NONE, epoch + 2)  # another empty one
    wait_state(client, "endtxn", "CompleteAbort")
    epoch += 2

    deadline = time.monotonic() + 10
    while (added := add(client, "endtxn", pid, epoch, [("txn-endtxn", 0)])) == {
            ("txn-endtxn", 0): error_codes.CONCURRENT_TRANSACTIONS} and time.monotonic() < deadline:
        time.sleep(0.02)  # the last abort's Complete record is being made durable
    assert added == {("txn-endtxn", 0): 0}
    assert produce_txn(client, "endtxn", "txn-endtxn", 0, txn_batch(pid, epoch, 0, b"x")).error_code == 0
    assert ending(epoch, commit=True) == (error_codes.NONE, epoch + 1)
    wait_state(client, "endtxn", "CompleteCommit")
    assert ending(epoch, commit=True) == (error_codes.NONE, epoch + 1)  # a retry
    assert ending(epoch, commit=False) == (error_codes.INVALID_TXN_STATE, -1)
    assert ending(epoch + 1, commit=True) == (error_codes.INVALID_TXN_STATE, -1)
    assert ending(epoch + 1, commit=False) == (error_codes.NONE, epoch + 2)
    assert wait_state(client, "endtxn", "CompleteAbort").producer_epoch == epoch + 2
    assert read(client, "txn-endtxn", 0, committed=True) == [b"x"]


def test_transaction_version_2_bumps_the_epoch_and_adds_partitions_implicitly(client):
    create_topic(client, "txn-v2", partitions=2)
    producer = init(client, "v2", version=5)
    pid, epoch = producer.producer_id, producer.producer_epoch
    for index in (0, 1):  # Produce v12: no AddPartitionsToTxn
        assert produce_txn(client, "v2", "txn-v2", index, txn_batch(pid, epoch, 0, b"one"), version=12).error_code == 0
    assert describe(client, "v2").transaction_state == "Ongoing"
    ended = end(client, "v2", pid, epoch, commit=True, version=5)
    assert (ended.error_code, ended.producer_id, ended.producer_epoch) == (0, pid, epoch + 1)
    wait_state(client, "v2", "CompleteCommit")
    # The retry of that end, with the epoch before the bump, is answered as done.
    retried = end(client, "v2", pid, epoch, commit=True, version=5)
    assert (retried.error_code, retried.producer_epoch) == (0, epoch + 1)
    epoch += 1
    assert produce_txn_retrying(client, "v2", "txn-v2", 0, txn_batch(pid, epoch, 0, b"two")).error_code == 0
    ended = end(client, "v2", pid, epoch, commit=False, version=5)
    assert (ended.error_code, ended.producer_epoch) == (0, epoch + 1)
    wait_state(client, "v2", "CompleteAbort")
    assert read(client, "txn-v2", 0, committed=True) == [b"one"]
    assert read(client, "txn-v2", 1, committed=True) == [b"one"]
    # The old epoch is fenced by the bump.
    stale = produce_txn(client, "v2", "txn-v2", 0, txn_batch(pid, epoch, 1, b"stale"), version=12)
    assert stale.error_code == error_codes.INVALID_PRODUCER_EPOCH


def produce_without_transactional_id(client, topic, batch, version=9):
    request = ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
        name=topic, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=batch)])])
    return client.request(request, version).responses[0].partition_responses[0]


def test_transactional_batches_need_a_transactional_id(client):
    """Kafka's KafkaApis: a Produce carrying a transactional batch without a transactional id
    is refused whole with TRANSACTIONAL_ID_AUTHORIZATION_FAILED (checked against Kafka 4.4.0:
    error 53, base offset -1, no error message); nothing is appended."""
    create_topic(client, "txn-no-id")
    pid = init(client, None).producer_id
    batch = build_batch([Record(0, 0, None, b"stray")], producer_id=pid, producer_epoch=0, base_sequence=0,
                        transactional=True, base_timestamp=1_700_000_000_000)
    answer = produce_without_transactional_id(client, "txn-no-id", batch)
    assert (answer.error_code, answer.base_offset, answer.log_append_time_ms, answer.log_start_offset,
            answer.error_message) == (error_codes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1, -1, None)
    assert latest_offset(client, "txn-no-id", 0, committed=False) == 0
    # The same producer's idempotent (not transactional) batch is taken.
    plain = build_batch([Record(0, 0, None, b"plain")], producer_id=pid, producer_epoch=0, base_sequence=0,
                        base_timestamp=1_700_000_000_000)
    assert produce_without_transactional_id(client, "txn-no-id", plain).error_code == error_codes.NONE


def test_implicit_add_happens_without_verification(broker_process):
    """Transaction version 2 adds a partition to the transaction with its first Produce v12+
    even when ``transaction.partition.verification.enable`` is false (Kafka 4.4.0 does: its
    kafka-transactions describe shows the partition of a Java producer's open transaction)."""
    broker = broker_process(None, *OVERRIDES, "transaction.partition.verification.enable=false")
    client = RawClient(broker.host, broker.port)
    try:
        create_topic(client, "txn-unverified")
        producer = init(client, "unverified")
        pid, epoch = producer.producer_id, producer.producer_epoch
        assert produce_txn(client, "unverified", "txn-unverified", 0, txn_batch(pid, epoch, 0, b"one"),
                           version=12).error_code == 0
        described = describe(client, "unverified")
        assert described.transaction_state == "Ongoing"
        assert [(topic.topic, topic.partitions) for topic in described.topics] == [("txn-unverified", [0])]
    finally:
        client.close()


def test_write_txn_markers_ends_a_hanging_transaction(broker_process):
    """What ``kafka-transactions abort`` does: a transactional batch of a producer id the
    coordinator never saw (written below Produce v12 with verification off, as a Kafka broker
    lets it be) hangs: it holds the last stable offset until an ABORT marker."""
    broker = broker_process(None, *OVERRIDES, "transaction.partition.verification.enable=false")
    client = RawClient(broker.host, broker.port)
    try:
        create_topic(client, "txn-hanging")
        pid = init(client, None).producer_id
        hanging = build_batch([Record(0, 0, None, b"hung")], producer_id=pid, producer_epoch=3, base_sequence=0,
                              transactional=True, base_timestamp=1_700_000_000_000)
        assert produce_txn(client, "never-initialized", "txn-hanging", 0, hanging).error_code == 0
        assert latest_offset(client, "txn-hanging", 0, committed=True) == 0

        def markers(epoch, topic="txn-hanging"):
            answer = client.request(WriteTxnMarkersRequest(markers=[WritableTxnMarker(
                producer_id=pid, producer_epoch=epoch, transaction_result=False, coordinator_epoch=0,
                topics=[WritableTxnMarkerTopic(name=topic, partition_indexes=[0])])]), 1)
            return answer.markers[0].topics[0].partitions[0].error_code

        assert markers(2) == error_codes.INVALID_PRODUCER_EPOCH
        assert markers(3, topic="no-such-topic") == error_codes.UNKNOWN_TOPIC_OR_PARTITION
        assert markers(3) == error_codes.NONE
        assert latest_offset(client, "txn-hanging", 0, committed=True) == 2
        assert read(client, "txn-hanging", 0, committed=True) == []
    finally:
        client.close()


@pytest.mark.parametrize("crash_point", ["after-prepare", "between-markers", "after-complete"])
def test_state_survives_a_crash_at_any_point_of_a_commit(broker_process, tmp_path, crash_point):
    """A kill -9 during a commit, its on-disk state rebuilt exactly (the broker is killed
    with the transaction open, then the records the commit would have written up to the crash
    point are appended as the coordinator writes them): after the PrepareCommit record only,
    after the marker of one partition of two, or after the CompleteCommit record. The
    restarted broker finishes the commit as Kafka's coordinator does on load: every record
    is read_committed once, the state is CompleteCommit, and the id keeps its producer id."""
    data_dir = tmp_path / "crash"
    broker = broker_process(data_dir, *OVERRIDES)
    client = RawClient(broker.host, broker.port)
    create_topic(client, "txn-crash", partitions=2)
    producer = init(client, "crash")
    pid, epoch = producer.producer_id, producer.producer_epoch
    partitions = [("txn-crash", 0), ("txn-crash", 1)]
    assert set(add(client, "crash", pid, epoch, partitions).values()) == {0}
    for index in (0, 1):
        assert produce_txn(client, "crash", "txn-crash", index, txn_batch(pid, epoch, 0, b"kept")).error_code == 0
    ongoing = describe(client, "crash")
    client.close()
    broker.kill()

    from odradek.storage.log_directory import LogDirectory
    from odradek.protocol.records.batch import build_end_txn_marker_batch
    from odradek.storage.validation import ORIGIN_COORDINATOR
    now = int(time.time() * 1000)
    directory = LogDirectory.open(str(data_dir), node_id=1)
    state_log = directory.get_log("__transaction_state", coordinator_partition("crash", 4))
    prepared = TransactionMetadata("crash", pid, producer_epoch=epoch, timeout_ms=ongoing.transaction_timeout_ms,
                                   state=TxnState.PREPARE_COMMIT, partitions=frozenset(partitions),
                                   start_ms=ongoing.transaction_start_time_ms, last_update_ms=now)
    state_log.append(build_batch([Record(0, 0, transaction_key("crash"), transaction_value(prepared, 0))],
                                 base_timestamp=now))
    marked = [] if crash_point == "after-prepare" else [0] if crash_point == "between-markers" else [0, 1]
    for index in marked:
        directory.get_log("txn-crash", index).append(
            build_end_txn_marker_batch(True, producer_id=pid, producer_epoch=epoch, coordinator_epoch=0, timestamp=now),
            origin=ORIGIN_COORDINATOR)
    if crash_point == "after-complete":
        completed = prepared.but(state=TxnState.COMPLETE_COMMIT, partitions=frozenset())
        state_log.append(build_batch([Record(0, 0, transaction_key("crash"), transaction_value(completed, 0))],
                                     base_timestamp=now))
    directory.close()

    restarted = broker_process(data_dir, *OVERRIDES)
    client = RawClient(restarted.host, restarted.port)
    described = wait_state(client, "crash", "CompleteCommit")
    assert (described.transaction_state, described.producer_id, described.topics) == ("CompleteCommit", pid, [])
    for index in (0, 1):
        assert read(client, "txn-crash", index, committed=True) == [b"kept"]
        assert latest_offset(client, "txn-crash", index, committed=True) == \
            latest_offset(client, "txn-crash", index, committed=False)
    again = init(client, "crash")
    assert (again.error_code, again.producer_id, again.producer_epoch) == (0, pid, epoch + 1)
    client.close()


def test_an_idle_transactional_id_expires(broker_process, tmp_path):
    """transactional.id.expiration.ms: an id idle that long is removed (a tombstone, so also
    after a restart); the next InitProducerId of it starts afresh with a new producer id."""
    data_dir = tmp_path / "expiry"
    overrides = (*OVERRIDES, "transactional.id.expiration.ms=500",
                 "transaction.remove.expired.transaction.cleanup.interval.ms=100")
    broker = broker_process(data_dir, *overrides)
    client = RawClient(broker.host, broker.port)
    first = init(client, "idle")
    assert first.error_code == 0
    deadline = time.monotonic() + 10
    while describe(client, "idle").error_code != error_codes.TRANSACTIONAL_ID_NOT_FOUND and time.monotonic() < deadline:
        time.sleep(0.05)
    assert describe(client, "idle").error_code == error_codes.TRANSACTIONAL_ID_NOT_FOUND
    client.close()
    assert broker.stop() == 0
    restarted = broker_process(data_dir, *OVERRIDES)
    client = RawClient(restarted.host, restarted.port)
    deadline = time.monotonic() + 10
    while (answer := describe(client, "idle")).error_code == error_codes.COORDINATOR_LOAD_IN_PROGRESS \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answer.error_code == error_codes.TRANSACTIONAL_ID_NOT_FOUND
    again = init(client, "idle")
    assert again.error_code == 0 and again.producer_id != first.producer_id and again.producer_epoch == 0
    client.close()


def test_add_partitions_batched_form_adds_and_verifies(client):
    """AddPartitionsToTxn v4+ (KIP-890's broker form): several transactions in one request,
    each added or, with verify_only, checked."""
    from odradek.protocol.messages.add_partitions_to_txn import AddPartitionsToTxnTransaction
    create_topic(client, "txn-batched", partitions=2)
    ids = {name: init(client, name) for name in ("batched-1", "batched-2")}

    def request(name, indexes, verify_only):
        return AddPartitionsToTxnTransaction(transactional_id=name, producer_id=ids[name].producer_id,
                                             producer_epoch=ids[name].producer_epoch, verify_only=verify_only,
                                             topics=[AddPartitionsToTxnTopic(name="txn-batched", partitions=indexes)])

    def results(answer):
        return {(result.transactional_id, partition.partition_index): partition.partition_error_code
                for result in answer.results_by_transaction for topic in result.topic_results
                for partition in topic.results_by_partition}

    added = client.request(AddPartitionsToTxnRequest(transactions=[
        request("batched-1", [0], False), request("batched-2", [1], False)]), 4)
    assert added.error_code == 0
    assert results(added) == {("batched-1", 0): 0, ("batched-2", 1): 0}
    verified = client.request(AddPartitionsToTxnRequest(transactions=[request("batched-1", [0, 1], True)]), 5)
    assert results(verified) == {("batched-1", 0): 0, ("batched-1", 1): error_codes.TRANSACTION_ABORTABLE}
    assert describe(client, "batched-1").topics[0].partitions == [0]  # verifying added nothing
    empty = client.request(AddPartitionsToTxnRequest(transactions=[AddPartitionsToTxnTransaction(
        transactional_id="batched-1", producer_id=ids["batched-1"].producer_id, producer_epoch=0, topics=[])]), 4)
    assert empty.error_code == error_codes.INVALID_REQUEST


def test_transaction_version_is_the_finalized_feature(client, broker_process):
    """ApiVersions finalizes transaction.version at ``odradek.transaction.version`` (2 by
    default); at 0 it is not finalized, and the coordinator writes version-0 records."""
    from odradek.protocol.messages.api_versions import ApiVersionsRequest

    def features(connection):
        answer = connection.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 3)
        return ([(f.name, f.min_version, f.max_version) for f in answer.supported_features],
                [(f.name, f.min_version_level, f.max_version_level) for f in answer.finalized_features],
                answer.finalized_features_epoch)

    assert features(client) == ([("transaction.version", 0, 2)], [("transaction.version", 2, 2)], 0)
    old_cluster = broker_process(None, "odradek.transaction.version=0", "transaction.state.log.num.partitions=1")
    connection = RawClient(old_cluster.host, old_cluster.port)
    assert features(connection)[:2] == ([("transaction.version", 0, 2)], [])
    create_topic(connection, "txn-tv0")
    producer = init(connection, "tv0")
    pid, epoch = producer.producer_id, producer.producer_epoch
    assert add(connection, "tv0", pid, epoch, [("txn-tv0", 0)]) == {("txn-tv0", 0): 0}
    assert produce_txn(connection, "tv0", "txn-tv0", 0, txn_batch(pid, epoch, 0, b"v0")).error_code == 0
    assert end(connection, "tv0", pid, epoch, commit=True).error_code == 0
    assert wait_state(connection, "tv0", "CompleteCommit").producer_epoch == epoch  # no bump before version 2
    assert read(connection, "txn-tv0", 0, committed=True) == [b"v0"]
    connection.close()


@settings(max_examples=200, deadline=None)
@given(flags=st.lists(st.booleans(), min_size=0, max_size=4), tail=st.binary(max_size=80),
       cut=st.integers(min_value=0, max_value=400))
def test_transactional_batch_detection_reads_every_batch_header(flags, tail, cut):
    """The Produce handler's look for a transactional batch (Kafka's hasTransactionalRecords):
    any well-formed batch with the bit counts, whatever comes before or after it; truncated or
    garbage bytes never raise."""
    from odradek.broker.handlers.produce import _has_transactional_batch

    batches = b"".join(build_batch([Record(0, 0, None, b"v")], producer_id=7, producer_epoch=0, base_sequence=0,
                                   transactional=flag) for flag in flags)

    def request(records):
        return ProduceRequest(transactional_id=None, acks=-1, timeout_ms=1, topic_data=[
            ProduceRequest.TopicProduceData(name="t", partition_data=[
                ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=records)])])

    assert _has_transactional_batch(request(batches)) == any(flags)
    # Bytes after the batches may parse as anything, but never hide a transactional batch.
    assert _has_transactional_batch(request(batches + tail)) or not any(flags)
    _has_transactional_batch(request(batches[:cut] + tail))  # never raises
    assert _has_transactional_batch(request(None)) is False


def test_a_connection_closed_during_an_implicit_add_does_not_stall_the_id(client, txn_broker):
    """Fault: a Produce v12 whose implicit add is under way when its connection closes. The
    next produce of the same transactional id, on another connection, is still answered."""
    create_topic(client, "txn-closed", partitions=2)
    producer = init(client, "closed", version=5)
    pid, epoch = producer.producer_id, producer.producer_epoch
    for round_ in range(10):
        doomed = RawClient(txn_broker.host, txn_broker.port)
        request = ProduceRequest(transactional_id="closed", acks=-1, timeout_ms=5000, topic_data=[
            ProduceRequest.TopicProduceData(name="txn-closed", partition_data=[
                ProduceRequest.TopicProduceData.PartitionProduceData(
                    index=round_ % 2, records=txn_batch(pid, epoch, 0, b"lost?"))])])
        doomed.send(request, 12)
        doomed.close()
        answer = produce_txn_retrying(client, "closed", "txn-closed", (round_ + 1) % 2,
                                      txn_batch(pid, epoch, 0, b"next"))
        assert answer.error_code == error_codes.NONE, answer  # the other partition: its own sequence
        ended = end(client, "closed", pid, epoch, commit=False, version=5)
        assert ended.error_code == 0, ended
        epoch = ended.producer_epoch
        wait_state(client, "closed", "CompleteAbort")
