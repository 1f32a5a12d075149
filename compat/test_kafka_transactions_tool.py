"""Kafka's ``kafka-transactions`` tool (org.apache.kafka.tools.TransactionsCommand, kafka-tools
4.4.0 from Maven Central) against a real ``odradek serve``: ``list``, ``describe``,
``describe-producers``, ``find-hanging`` and ``abort``.

Every expected table (columns, values, what is left empty, the epochs) is what the same tool
printed for the same scenario against a Kafka 4.4.0 broker: these tests, with ``odradek``
replaced by compat/test_same_answers_as_kafka.py's ``running_kafka`` (same settings), pass
against it (run by hand); committed, they run against odradek only.

Three transactions are looked at:

* an open transaction of a real transactional producer (Kafka's Java client, through
  compat/FixtureProducer.java) that is then killed with SIGKILL: the coordinator knows it (so
  ``find-hanging`` does not list it) and aborts it once its ``transaction.timeout.ms`` passes;
* a hanging transaction: a transactional batch written by a producer id that no transactional
  id owns, so the coordinator will never end it and it holds the partition's last stable offset
  for ever. This is what ``find-hanging`` looks for (an open transaction in a partition's
  producer state whose producer id the coordinator does not list, or whose transaction does not
  include the partition) and what ``abort`` is for. A Kafka 4.4 broker lets such a batch in only
  with ``transaction.partition.verification.enable=false`` (KIP-890's check otherwise refuses a
  partition the coordinator has not been told of), so the broker here runs with it off, as the
  Kafka broker of the comparison did;
* the hanging transaction of the field: a producer with a transactional id writes to a
  partition it never added to its transaction; the coordinator knows the transaction but not
  the partition, and writes no marker there when it commits.

Slow (a JVM per tool run, 2-4 s each): run with ``python -m pytest compat/test_kafka_transactions_tool.py``.
The fixtures ``kafka_jars`` and ``tool`` are compat/test_kafka_cli.py's (imported); ``odradek``
is redefined here with the broker settings above.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "compat"))
sys.path.insert(0, str(REPO / "tests"))
from broker.conftest import RawClient, module_broker  # noqa: E402
from broker.test_transactions import add, describe, end, init, produce_txn, read  # noqa: E402
from program_process import ProgramProcess  # noqa: E402
import test_kafka_cli  # noqa: E402

from odradek.protocol.records.batch import Record, build_batch  # noqa: E402

pytestmark = pytest.mark.slow

# compat/test_kafka_cli.py's fixtures: Kafka's jars, and its tools run against ``odradek`` below.
kafka_jars, tool = test_kafka_cli.kafka_jars, test_kafka_cli.tool

TRANSACTIONS_COMMAND = "org.apache.kafka.tools.TransactionsCommand"
ABORT_CHECK_MS = 500
BROKER_SETTINGS = ("transaction.partition.verification.enable=false",
                   f"transaction.abort.timed.out.transaction.cleanup.interval.ms={ABORT_CHECK_MS}",
                   "transaction.state.log.num.partitions=2", "offsets.topic.num.partitions=2")

LIST_HEADERS = ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]
DESCRIBE_HEADERS = ["CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState",
                    "TransactionTimeoutMs", "CurrentTransactionStartTimeMs", "TransactionDurationMs", "TopicPartitions"]
PRODUCERS_HEADERS = ["ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp",
                     "CurrentTransactionStartOffset"]
HANGING_HEADERS = ["Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset",
                   "LastTimestamp", "Duration(min)"]


@pytest.fixture(scope="module")
def odradek(tmp_path_factory):
    yield from module_broker(tmp_path_factory, "odradek-transactions-tool", BROKER_SETTINGS)


def table(stdout: str, headers: list[str]) -> list[dict[str, str]]:
    """The rows of a table printed by the tool (ToolsUtils.prettyPrintTable: every cell padded to
    its column's widest value and followed by a tab), checked to be laid out exactly so."""
    cells = [line.split("\t") for line in stdout.splitlines() if line]
    assert cells and [cell.rstrip() for cell in cells[0]] == [*headers, ""], stdout
    assert all(len(row) == len(headers) + 1 and row[-1] == "" for row in cells), stdout
    widths = [max(len(row[i].rstrip()) for row in cells) for i in range(len(headers))]
    for row in cells:
        assert [len(cell) for cell in row[:-1]] == widths, f"columns not padded as Kafka pads them:\n{stdout}"
    return [dict(zip(headers, (cell.rstrip() for cell in row))) for row in cells[1:]]


def transactions(tool, *args, ok=True):
    return tool(TRANSACTIONS_COMMAND, *args, ok=ok)


class OpenTransactionProducer(ProgramProcess):
    """Kafka's Java producer (FixtureProducer.java) that begins a transaction, writes one record
    to partition 0 of ``topic`` (creating it), flushes, and then waits with the transaction
    open until it is killed."""

    def __init__(self, kafka_jars, bootstrap, topic, transactional_id, timeout_ms, log_path):
        self.acks: list[tuple[int, int, int]] = []
        self.acked = threading.Event()
        super().__init__(test_kafka_cli.fixture_producer_command(kafka_jars, bootstrap), "open-transaction", log_path,
                         stdin=subprocess.PIPE)
        value = base64.b64encode(b"never committed").decode()
        commands = [f"TOPIC\t{topic}\t1",
                    f"PRODUCER\tnone\ttransactional\ttransactional.id={transactional_id}\t"
                    f"transaction.timeout.ms={timeout_ms}",
                    "BEGIN", f"RECORD\t1\t{int(time.time() * 1000)}\t-\t{value}", "FLUSH", "SLEEP\t600000"]
        self.process.stdin.write(("\n".join(commands) + "\n").encode())
        self.process.stdin.flush()

    def on_line(self, line: bytes) -> None:
        fields = line.decode().split()
        if fields[:1] == ["ACK"]:
            self.acks.append(tuple(map(int, fields[2:])))
            self.acked.set()


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_list_describe_and_describe_producers_of_an_open_transaction_then_its_timeout(
        kafka_jars, tool, odradek, tmp_path):
    """A Java producer's open transaction, as the tool shows it; the producer is killed, the
    broker aborts the transaction after its timeout, and the tool shows the abort: state
    CompleteAbort, the epoch bumped once, no partition, the start time kept, the partition's
    producer with the ABORT marker's epoch and no open transaction; read_committed sees nothing."""
    topic, transactional_id, timeout_ms = "tool-open", "tool-open-producer", 6000
    started_ms = int(time.time() * 1000)
    producer = OpenTransactionProducer(kafka_jars, odradek.bootstrap, topic, transactional_id, timeout_ms,
                                       tmp_path / "producer.log")
    try:
        assert producer.acked.wait(90), producer.log()
        ((partition, offset, record_timestamp),) = producer.acks
        assert (partition, offset) == (0, 0)

        (listed,) = [row for row in table(transactions(tool, "list").stdout, LIST_HEADERS)
                     if row["TransactionalId"] == transactional_id]
        producer_id = listed["ProducerId"]
        assert listed == {"TransactionalId": transactional_id, "Coordinator": "1", "ProducerId": producer_id,
                          "TransactionState": "Ongoing"}

        (described,) = table(transactions(tool, "describe", "--transactional-id", transactional_id).stdout,
                             DESCRIBE_HEADERS)
        start_ms = int(described["CurrentTransactionStartTimeMs"])
        assert started_ms <= start_ms <= int(time.time() * 1000)
        assert 0 <= int(described["TransactionDurationMs"]) < 60_000
        assert described == {"CoordinatorId": "1", "TransactionalId": transactional_id, "ProducerId": producer_id,
                             "ProducerEpoch": "0", "TransactionState": "Ongoing",
                             "TransactionTimeoutMs": str(timeout_ms), "CurrentTransactionStartTimeMs": str(start_ms),
                             "TransactionDurationMs": described["TransactionDurationMs"],
                             "TopicPartitions": f"{topic}-0"}

        producers = table(transactions(tool, "describe-producers", "--topic", topic, "--partition", "0").stdout,
                          PRODUCERS_HEADERS)
        assert producers == [{"ProducerId": producer_id, "ProducerEpoch": "0", "LatestCoordinatorEpoch": "-1",
                              "LastSequence": "0", "LastTimestamp": str(record_timestamp),
                              "CurrentTransactionStartOffset": "0"}]

        # Open, but the coordinator has it with this partition: not hanging, however short the
        # timeout the search assumes.
        hanging = transactions(tool, "find-hanging", "--broker-id", "1", "--max-transaction-timeout", "0")
        assert [row for row in table(hanging.stdout, HANGING_HEADERS) if row["Topic"] == topic] == []

        # Only transactions running longer than the filter are listed.
        assert transactional_id not in transactions(tool, "list", "--duration-filter", "600000").stdout
    finally:
        producer.kill()

    client = RawClient(odradek.host, odradek.port)
    try:
        wait_for(lambda: describe(client, transactional_id).transaction_state == "CompleteAbort",
                 timeout_ms / 1000 + 20, "the broker to abort the timed-out transaction")
        assert read(client, topic, 0, committed=True) == []
    finally:
        client.close()

    (listed,) = [row for row in table(transactions(tool, "list").stdout, LIST_HEADERS)
                 if row["TransactionalId"] == transactional_id]
    assert listed["TransactionState"] == "CompleteAbort"
    (described,) = table(transactions(tool, "describe", "--transactional-id", transactional_id).stdout,
                         DESCRIBE_HEADERS)
    assert {key: described[key] for key in ("ProducerId", "ProducerEpoch", "TransactionState",
                                            "CurrentTransactionStartTimeMs", "TopicPartitions")} == {
        "ProducerId": producer_id, "ProducerEpoch": "1", "TransactionState": "CompleteAbort",
        "CurrentTransactionStartTimeMs": str(start_ms), "TopicPartitions": ""}
    (after,) = table(transactions(tool, "describe-producers", "--topic", topic, "--partition", "0").stdout,
                     PRODUCERS_HEADERS)
    assert {key: after[key] for key in ("ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence",
                                        "CurrentTransactionStartOffset")} == {
        "ProducerId": producer_id, "ProducerEpoch": "1", "LatestCoordinatorEpoch": "0", "LastSequence": "-1",
        "CurrentTransactionStartOffset": "None"}
    assert int(after["LastTimestamp"]) >= start_ms + timeout_ms  # the marker's, written at the abort

    unknown = transactions(tool, "describe", "--transactional-id", "tool-no-such-id", ok=False)
    assert unknown.returncode == 1
    assert ("Failed to describe transaction state of transactional-id `tool-no-such-id`: DescribeTransactions "
            "request for transactionalId `tool-no-such-id` failed because the ID could not be found.") \
        in unknown.stdout + unknown.stderr


def hanging_batch(producer_id: int, sequence: int, timestamp: int, value: bytes) -> bytes:
    return build_batch([Record(0, 0, b"k", value)], producer_id=producer_id, producer_epoch=0, base_sequence=sequence,
                       transactional=True, base_timestamp=timestamp)


def test_find_hanging_then_abort(kafka_jars, tool, odradek):
    """A transactional batch of a producer id the coordinator does not know, written 20 minutes
    ago (its timestamp), with a plain record after it: read_committed reads nothing past it;
    find-hanging lists it (and only it); abort by start offset writes the ABORT marker, after
    which read_committed reads the plain record and find-hanging finds nothing. The abort of
    brokers before 3.0 (by producer id, epoch and coordinator epoch) ends a second one."""
    topic = "tool-hanging"
    tool(kafka_jars.TOPIC_COMMAND, "--create", "--topic", topic, "--partitions", "2", "--replication-factor", "1")
    client = RawClient(odradek.host, odradek.port)
    try:
        producer_id = init(client, None).producer_id  # an idempotent producer id: no transactional id owns it
        written_ms = int(time.time() * 1000) - 20 * 60_000 - 30_000
        for index in (0, 1):
            answer = produce_txn(client, "tool-never-initialized", topic, index,
                                 hanging_batch(producer_id, 0, written_ms, b"hung"))
            assert (answer.error_code, answer.base_offset) == (0, 0)
        after = build_batch([Record(0, 0, b"k", b"after")], base_timestamp=int(time.time() * 1000))
        assert produce_txn(client, None, topic, 1, after).error_code == 0
        assert read(client, topic, 1, committed=True) == []  # held by the hanging transaction
    finally:
        client.close()

    producers = table(transactions(tool, "describe-producers", "--topic", topic, "--partition", "1").stdout,
                      PRODUCERS_HEADERS)
    assert producers == [{"ProducerId": str(producer_id), "ProducerEpoch": "0", "LatestCoordinatorEpoch": "-1",
                          "LastSequence": "0", "LastTimestamp": str(written_ms),
                          "CurrentTransactionStartOffset": "0"}]

    expected = [{"Topic": topic, "Partition": str(index), "ProducerId": str(producer_id), "ProducerEpoch": "0",
                 "CoordinatorEpoch": "-1", "StartOffset": "0", "LastTimestamp": str(written_ms),
                 "Duration(min)": "20"} for index in (0, 1)]
    found = table(transactions(tool, "find-hanging", "--broker-id", "1").stdout, HANGING_HEADERS)
    assert sorted(found, key=lambda row: row["Partition"]) == expected
    found = table(transactions(tool, "find-hanging", "--topic", topic, "--partition", "1").stdout, HANGING_HEADERS)
    assert found == expected[1:]

    missing = transactions(tool, "abort", "--topic", topic, "--partition", "1", "--start-offset", "5", ok=False)
    assert missing.returncode == 1
    assert f"Could not find any open transactions starting at offset 5 on partition {topic}-1" in \
        missing.stdout + missing.stderr
    aborted = transactions(tool, "abort", "--topic", topic, "--partition", "1", "--start-offset", "0")
    assert aborted.stdout == ""

    consumed = tool(kafka_jars.CONSOLE_CONSUMER, "--topic", topic, "--partition", "1", "--offset", "earliest",
                    "--isolation-level", "read_committed", "--max-messages", "1", "--timeout-ms", "20000",
                    "--formatter-property", "print.offset=true")
    assert consumed.stdout.split() == ["Offset:1", "after"]
    (state,) = table(transactions(tool, "describe-producers", "--topic", topic, "--partition", "1").stdout,
                     PRODUCERS_HEADERS)
    assert (state["ProducerId"], state["ProducerEpoch"], state["LatestCoordinatorEpoch"],
            state["CurrentTransactionStartOffset"]) == (str(producer_id), "0", "0", "None")
    found = table(transactions(tool, "find-hanging", "--broker-id", "1").stdout, HANGING_HEADERS)
    assert found == expected[:1]

    # The form for brokers before 3.0; a coordinator epoch of -1 (what describe-producers shows
    # for a producer that never had a marker) is sent as 0.
    transactions(tool, "abort", "--topic", topic, "--partition", "0", "--producer-id", str(producer_id),
                 "--producer-epoch", "0", "--coordinator-epoch", "-1")
    assert table(transactions(tool, "find-hanging", "--broker-id", "1").stdout, HANGING_HEADERS) == []
    client = RawClient(odradek.host, odradek.port)
    try:
        assert read(client, topic, 0, committed=True) == []
        assert read(client, topic, 1, committed=True) == [b"after"]
    finally:
        client.close()


def test_find_hanging_a_partition_the_coordinator_was_not_told_of(kafka_jars, tool, odradek):
    """The hanging transaction of the field (what KIP-890 set out to prevent): a producer with
    a transactional id writes to a partition it never added to its transaction (here through
    Produce v9 with the check off). The coordinator knows the transaction, but not that
    partition: find-hanging lists that partition and not the added one, and still lists it
    after the transaction commits (the coordinator wrote no marker there)."""
    topic, transactional_id = "tool-unadded", "tool-unadded-producer"
    tool(kafka_jars.TOPIC_COMMAND, "--create", "--topic", topic, "--partitions", "2", "--replication-factor", "1")
    client = RawClient(odradek.host, odradek.port)
    try:
        producer = wait_for(lambda: (answer := init(client, transactional_id)).error_code == 0 and answer, 30,
                            "InitProducerId")
        producer_id, epoch = producer.producer_id, producer.producer_epoch
        assert add(client, transactional_id, producer_id, epoch, [(topic, 0)]) == {(topic, 0): 0}
        written_ms = int(time.time() * 1000)
        for index in (0, 1):
            batch = build_batch([Record(0, 0, b"k", b"v")], producer_id=producer_id, producer_epoch=epoch,
                                base_sequence=0, transactional=True, base_timestamp=written_ms)
            assert produce_txn(client, transactional_id, topic, index, batch).error_code == 0
        expected = [{"Topic": topic, "Partition": "1", "ProducerId": str(producer_id), "ProducerEpoch": str(epoch),
                     "CoordinatorEpoch": "-1", "StartOffset": "0", "LastTimestamp": str(written_ms),
                     "Duration(min)": "0"}]
        found = transactions(tool, "find-hanging", "--topic", topic, "--max-transaction-timeout", "0").stdout
        assert table(found, HANGING_HEADERS) == expected

        assert end(client, transactional_id, producer_id, epoch, commit=True).error_code == 0
        wait_for(lambda: describe(client, transactional_id).transaction_state == "CompleteCommit", 30,
                 "the commit to complete")
        assert read(client, topic, 0, committed=True) == [b"v"]
        assert read(client, topic, 1, committed=True) == []  # held by the transaction nobody will end
    finally:
        client.close()
    found = transactions(tool, "find-hanging", "--topic", topic, "--max-transaction-timeout", "0").stdout
    assert table(found, HANGING_HEADERS) == expected
