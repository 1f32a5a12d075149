"""Transactions through franz-go, Sarama and kafkajs against a real ``odradek serve``: the
programs' ``txn`` (a transactional producer driven line by line from the test), ``read`` (a
read_committed or read_uncommitted reader) and franz-go's ``transform`` (kgo.GroupTransactSession)
subcommands in compat/franzgo, compat/sarama and compat/kafkajs.

Each client: transactions committed, aborted and committed again over two topics; offsets sent in
a transaction (kafkajs sendOffsets, Sarama AddOffsetsToTxn and AddMessageToTxn, franz-go's
GroupTransactSession) visible to the group exactly when it commits; a second producer with the
same transactional id fencing the first; a transaction left open past its timeout aborted by the
broker. The errors a client reports are the ones it reports against Kafka 4.4.

A reader stops when every partition delivered the value ``END``, written last by a committed
transaction: a read_committed reader gets there only once every transaction before it ended.
"""

from __future__ import annotations

import json
import queue
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass

import pytest

from broker.conftest import BrokerProcess, RawClient
from broker.test_server import create_topic, fetch_request
from compat_scripts import load_compat_script
from groups.conftest import FAST_GROUPS, assert_no_traceback
from groups.test_clients import produce_kafka_python, wait_until
from odradek.protocol import error_codes as E
from odradek.protocol.messages.list_offsets import ListOffsetsRequest
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestTopic
from odradek.protocol.records.batch import iter_batches, parse_control_record
from program_process import ProgramProcess

from .programs import run

END = "END"
ANSWER_TIMEOUT = 45.0  # one operation of a client program, retries included
SETTLE_TIMEOUT = 20.0  # markers written after EndTxn answered, a timed-out transaction aborted
# The broker looks for expired transactions every 500 ms (Kafka's default: every 10 s).
TRANSACTION_SETTINGS = (*FAST_GROUPS, "transaction.abort.timed.out.transaction.cleanup.interval.ms=500")
SHORT_TRANSACTION_TIMEOUT_MS = 1500
READ_COMMITTED, READ_UNCOMMITTED = 1, 0


def start_broker(directory):
    return BrokerProcess(directory / "data", TRANSACTION_SETTINGS, directory / "broker.log")


@pytest.fixture(scope="module")
def txn_broker(tmp_path_factory):
    process = start_broker(tmp_path_factory.mktemp("txn-broker"))
    yield process
    code = process.stop()
    assert code == 0, f"broker exited {code}: {process.log()}"
    assert_no_traceback(process)


@pytest.fixture
def raw_client(txn_broker):
    client = RawClient(txn_broker.host, txn_broker.port)
    yield client
    client.close()


@dataclass
class Client:
    """How to run one client library's program: the command prefix, the options after the
    subcommand, its environment, and how it spells a duration."""
    name: str
    prefix: list[str]
    env: dict | None
    go: bool
    options: tuple[str, ...] = ()

    def duration(self, ms: int) -> str:
        return f"{ms}ms" if self.go else str(ms)

    def txn_command(self, bootstrap: str, transactional_id: str, timeout_ms: int | None = None) -> list[str]:
        command = [*self.prefix, "txn", *self.options, "--bootstrap", bootstrap,
                   "--transactional-id", transactional_id]
        return command + (["--transaction-timeout", self.duration(timeout_ms)] if timeout_ms else [])

    def read(self, bootstrap: str, topics: dict[str, int], isolation: str) -> dict[tuple[str, int], list]:
        """The records of ``topics`` as read with ``isolation`` (committed or uncommitted) up to
        END on every partition: {(topic, partition): [(offset, value), ...]} in delivery order."""
        command = [*self.prefix, "read", *self.options, "--bootstrap", bootstrap, "--isolation", isolation,
                   "--until", END, "--topics", ",".join(f"{topic}:{count}" for topic, count in topics.items())]
        if not self.go:
            command += ["--group", f"reader-{isolation}-{'-'.join(topics)}"]
        records = defaultdict(list)
        for event in run(command, env=self.env, timeout=ANSWER_TIMEOUT):
            assert event["event"] == "record", event
            records[(event["topic"], event["partition"])].append((int(event["offset"]), event["value"]))
        return dict(records)


def _franzgo() -> Client:
    return Client("franz-go", [str(load_compat_script("go_programs").build("franzgo"))], None, go=True)


def _sarama() -> Client:
    """Sarama speaking the protocol of the newest Kafka it knows (4.3.1: InitProducerId v4, the
    other transaction requests v3)."""
    return Client("sarama", [str(load_compat_script("go_programs").build("sarama"))], None, go=True)


def _sarama_default() -> Client:
    """Sarama with its default config.Version (2.8.0: the transaction requests at v2)."""
    return Client("sarama-2.8", [str(load_compat_script("go_programs").build("sarama"))], None, go=True,
                  options=("--version", "default"))


def _kafkajs() -> Client:
    command, env = load_compat_script("node_programs").command("kafkajs")
    return Client("kafkajs", command, env, go=False)


CLIENTS = {"franz-go": _franzgo, "sarama": _sarama, "sarama-2.8": _sarama_default, "kafkajs": _kafkajs}


@pytest.fixture(scope="module", params=list(CLIENTS))
def client(request):
    return CLIENTS[request.param]()  # GoUnavailable / NodeUnavailable without the toolchain: a failure


class ClientProgram(ProgramProcess):
    """A client program that answers each command line on its standard input with one JSON event."""

    def __init__(self, command, name, log_path, env=None):
        self.answers: queue.Queue = queue.Queue()
        super().__init__(command, name, log_path, stdin=subprocess.PIPE, env=env)

    def on_line(self, line: bytes) -> None:
        if line.strip():
            self.answers.put(json.loads(line))

    def next_event(self, timeout: float = ANSWER_TIMEOUT) -> dict:
        try:
            return self.answers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.name}: no answer within {timeout} s; its log:\n{self.log()}") from None

    def tell(self, line: str) -> None:
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def ask(self, line: str) -> dict:
        self.tell(line)
        return self.next_event()

    def do(self, line: str) -> dict:
        answer = self.ask(line)
        assert answer["event"] == "done", f"{self.name}: {line!r} answered {answer}; its log:\n{self.log()}"
        return answer

    def close(self) -> int:
        self.process.stdin.close()
        try:
            return self.process.wait(30)
        finally:
            self.kill()


@pytest.fixture
def programs(tmp_path):
    started = []

    def start(command, name, env=None) -> ClientProgram:
        program = ClientProgram(command, name, tmp_path / f"{name}.log", env=env)
        started.append(program)
        return program

    yield start
    for program in started:
        program.kill()


def producer(programs, client: Client, broker, transactional_id: str, name: str, timeout_ms=None) -> ClientProgram:
    return programs(client.txn_command(broker.bootstrap, transactional_id, timeout_ms), f"{client.name}-{name}",
                    env=client.env)


def create_topics(raw_client, topics: dict[str, int]) -> None:
    for topic, partitions in topics.items():
        assert create_topic(raw_client, topic, partitions=partitions).error_code == E.NONE


def partitions_of(topics: dict[str, int]) -> list[tuple[str, int]]:
    return [(topic, partition) for topic, count in topics.items() for partition in range(count)]


def commit_end(program: ClientProgram, topics: dict[str, int]) -> None:
    """One committed transaction writing END to every partition (where the readers stop)."""
    program.do("begin")
    for topic, partition in partitions_of(topics):
        program.do(f"send {topic} {partition} {END}")
    program.do("commit")


def values(records: dict[tuple[str, int], list]) -> dict[tuple[str, int], list[str]]:
    return {key: [value for _, value in items] for key, items in records.items()}


def markers(raw_client, topic: str, partitions: int) -> dict[int, list[str]]:
    """The transaction markers stored in each partition, in order ("commit" or "abort")."""
    found = {}
    for partition in range(partitions):
        data = raw_client.request(fetch_request(topic, partition, 0), 12).responses[0].partitions[0]
        assert data.error_code == E.NONE
        found[partition] = ["commit" if parse_control_record(record).is_commit else "abort"
                            for batch in iter_batches(bytes(data.records)) if batch.is_control
                            for record in batch.records]
    return found


def list_offsets(raw_client, topic: str, partitions: int, isolation: int) -> dict[int, int]:
    """Each partition's end offset: the high watermark (read_uncommitted) or the last stable
    offset (read_committed)."""
    request = ListOffsetsRequest(replica_id=-1, isolation_level=isolation, topics=[ListOffsetsRequest.ListOffsetsTopic(
        name=topic, partitions=[ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
            partition_index=p, timestamp=-1) for p in range(partitions)])])
    answer = raw_client.request(request, 5).topics[0]
    assert all(p.error_code == E.NONE for p in answer.partitions), answer
    return {p.partition_index: p.offset for p in answer.partitions}


def wait_transactions_ended(raw_client, topic: str, partitions: int) -> None:
    """Every transaction on ``topic`` ended (its markers written): the last stable offset is
    the high watermark."""
    wait_until(lambda: list_offsets(raw_client, topic, partitions, READ_COMMITTED)
               == list_offsets(raw_client, topic, partitions, READ_UNCOMMITTED), timeout=SETTLE_TIMEOUT,
               what=lambda: f"the transactions on {topic} to end: last stable offsets "
                            f"{list_offsets(raw_client, topic, partitions, READ_COMMITTED)}, high watermarks "
                            f"{list_offsets(raw_client, topic, partitions, READ_UNCOMMITTED)}")


def group_offsets(raw_client, group: str, topic: str, partitions: int, require_stable: bool = False):
    """OffsetFetch v7: {partition: (committed offset, error name)}."""
    answer = raw_client.request(OffsetFetchRequest(group_id=group, require_stable=require_stable, topics=[
        OffsetFetchRequestTopic(name=topic, partition_indexes=list(range(partitions)))]), 7)
    assert answer.error_code == E.NONE, answer
    return {p.partition_index: (p.committed_offset, E.lookup(p.error_code).name) for p in answer.topics[0].partitions}


def committed(raw_client, group, topic, partitions) -> dict[int, int]:
    """The group's committed offsets once no transactional offset is pending (OffsetFetch with
    require_stable answers UNSTABLE_OFFSET_COMMIT for a partition while one is)."""
    stable = {}

    def settled():
        stable.update(group_offsets(raw_client, group, topic, partitions, require_stable=True))
        return all(error == "NONE" for _, error in stable.values())

    wait_until(settled, timeout=SETTLE_TIMEOUT, what=lambda: f"the offsets of {group} to settle: {stable}")
    return {partition: offset for partition, (offset, _) in stable.items()}


def wait_visible(raw_client, group: str, topic: str, offsets: dict[int, int]) -> None:
    """The group shows ``offsets`` (a commit's offsets appear once its markers are written)."""
    shown = {partition: (offset, "NONE") for partition, offset in offsets.items()}
    wait_until(lambda: group_offsets(raw_client, group, topic, len(offsets)) == shown, timeout=SETTLE_TIMEOUT,
               what=lambda: f"offsets {offsets}: {group_offsets(raw_client, group, topic, len(offsets))}, with "
                            f"require_stable {group_offsets(raw_client, group, topic, len(offsets), True)}")


def error_name(answer: dict) -> str | None:
    return None if answer.get("code") is None else E.lookup(answer["code"]).name


# --- begin, produce to several partitions, commit; abort; commit again --------------------------------------------


def test_commit_abort_commit(txn_broker, raw_client, client, programs):
    prefix = f"{client.name}-cac"
    topics = {f"{prefix}-a": 2, f"{prefix}-b": 3}
    create_topics(raw_client, topics)
    program = producer(programs, client, txn_broker, f"{prefix}-id", "producer")
    program.do("init")
    sent = defaultdict(list)  # (topic, partition) -> [(offset, value, outcome)]
    for number, outcome in enumerate(["commit", "abort", "commit"]):
        program.do("begin")
        for index in range(2):
            for topic, partition in partitions_of(topics):
                value = f"{outcome}{number}-{partition}-{index}"
                offset = program.do(f"send {topic} {partition} {value}")["offset"]
                sent[(topic, partition)].append((int(offset), value, outcome))
        program.do(outcome)
    commit_end(program, topics)
    assert program.close() == 0, program.log()

    read_committed = client.read(txn_broker.bootstrap, topics, "committed")
    read_uncommitted = client.read(txn_broker.bootstrap, topics, "uncommitted")
    for key, records in sent.items():
        committed_records = [(offset, value) for offset, value, outcome in records if outcome == "commit"]
        assert read_committed[key][:-1] == committed_records, key  # in order, each once, at its offset
        assert read_uncommitted[key][:-1] == [(offset, value) for offset, value, _ in records], key
        for read in (read_committed, read_uncommitted):
            assert read[key][-1][1] == END
    assert set(read_committed) == set(read_uncommitted) == set(sent)
    for topic, count in topics.items():  # one marker per transaction that touched the partition
        assert markers(raw_client, topic, count) == {p: ["commit", "abort", "commit", "commit"] for p in range(count)}


# --- fencing: a second producer with the same transactional id ---------------------------------------------------

# What each client reports, as against Kafka 4.4. The coordinator answers an EndTxn with an old
# epoch PRODUCER_FENCED, which it spells INVALID_PRODUCER_EPOCH before EndTxn v2 (kafkajs sends v1);
# the partition leader answers a Produce with an old epoch INVALID_PRODUCER_EPOCH. The commit after
# that fails in the client itself: franz-go sends nothing once its producer id failed
# (OPERATION_NOT_ATTEMPTED), Sarama repeats the Produce's error.
FENCING_ERRORS = {
    "franz-go": {"first commit": "PRODUCER_FENCED", "second send": "INVALID_PRODUCER_EPOCH",
                 "second commit": "OPERATION_NOT_ATTEMPTED"},
    "sarama": {"first commit": "PRODUCER_FENCED", "second send": "INVALID_PRODUCER_EPOCH",
               "second commit": "INVALID_PRODUCER_EPOCH"},
    "sarama-2.8": {"first commit": "PRODUCER_FENCED", "second send": "INVALID_PRODUCER_EPOCH",
                   "second commit": "INVALID_PRODUCER_EPOCH"},
    "kafkajs": {"first commit": "INVALID_PRODUCER_EPOCH", "second send": "INVALID_PRODUCER_EPOCH",
                "second commit": "INVALID_PRODUCER_EPOCH"},
}


def test_second_producer_fences_the_first(txn_broker, raw_client, client, programs):
    """A's transaction is open when B initialises with the same transactional id: A's EndTxn
    is refused by the coordinator. B's is open when C initialises: B's next Produce is refused by
    the partition leader (the partition is already in B's transaction, so no AddPartitionsToTxn
    comes first). Both open transactions are aborted; C's goes through."""
    prefix = f"{client.name}-fence"
    topics = {prefix: 2}
    create_topics(raw_client, topics)
    fenced = {}
    first = producer(programs, client, txn_broker, f"{prefix}-id", "first")
    first.do("init")
    first.do("begin")
    first.do(f"send {prefix} 0 first-0")
    second = producer(programs, client, txn_broker, f"{prefix}-id", "second")
    second.do("init")
    fenced["first commit"] = first.ask("commit")
    second.do("begin")
    second.do(f"send {prefix} 0 second-0")
    third = producer(programs, client, txn_broker, f"{prefix}-id", "third")
    third.do("init")
    fenced["second send"] = second.ask(f"send {prefix} 0 second-1")
    fenced["second commit"] = second.ask("commit")
    commit_end(third, topics)
    assert third.close() == 0, third.log()
    assert {step: error_name(answer) for step, answer in fenced.items()} == FENCING_ERRORS[client.name], fenced
    assert all(answer["event"] == "failed" for answer in fenced.values())

    read_committed = values(client.read(txn_broker.bootstrap, topics, "committed"))
    read_uncommitted = values(client.read(txn_broker.bootstrap, topics, "uncommitted"))
    assert read_committed == {(prefix, 0): [END], (prefix, 1): [END]}
    assert read_uncommitted == {(prefix, 0): ["first-0", "second-0", END], (prefix, 1): [END]}
    assert markers(raw_client, prefix, 2) == {0: ["abort", "abort", "commit"], 1: ["commit"]}


# --- offsets sent in a transaction --------------------------------------------------------------------------------


@pytest.mark.parametrize("library", ["sarama", "sarama-2.8", "kafkajs"])
def test_offsets_visible_when_the_transaction_commits(txn_broker, raw_client, library, programs):
    """kafkajs's sendOffsets sends AddOffsetsToTxn and TxnOffsetCommit at once: the offsets are
    pending in the group (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT) until
    EndTxn. Sarama's AddOffsetsToTxn and AddMessageToTxn keep them until CommitTxn sends them
    before EndTxn. Either way: visible once the commit is answered (its markers written), never
    after an abort."""
    client = CLIENTS[library]()
    prefix = f"{client.name}-offsets"
    source, output, group = f"{prefix}-in", f"{prefix}-out", f"{prefix}-group"
    topics = {source: 2, output: 2}
    create_topics(raw_client, topics)
    program = producer(programs, client, txn_broker, f"{prefix}-id", "producer")
    program.do("init")
    nothing = {0: -1, 1: -1}

    def add_offsets(offsets: dict[int, int]):
        for partition, offset in offsets.items():
            if library.startswith("sarama") and partition == 1:
                program.do(f"consumed {group} {source} {partition} {offset - 1}")  # AddMessageToTxn
            else:
                program.do(f"offsets {group} {source} {partition} {offset}")

    def pending_check(offsets: dict[int, int], before: dict[int, int]):
        """Before the transaction ends: the group still shows ``before``; with require_stable the
        partitions whose offsets the client already sent are UNSTABLE_OFFSET_COMMIT."""
        plain = group_offsets(raw_client, group, source, 2)
        assert {p: offset for p, (offset, _) in plain.items()} == before
        stable = group_offsets(raw_client, group, source, 2, require_stable=True)
        expected = "UNSTABLE_OFFSET_COMMIT" if library == "kafkajs" else "NONE"
        assert {p: error for p, (_, error) in stable.items() if p in offsets} == {p: expected for p in offsets}

    program.do("begin")
    program.do(f"send {output} 0 aborted-0")
    add_offsets({0: 3, 1: 5})
    pending_check({0: 3, 1: 5}, nothing)
    program.do("abort")
    assert committed(raw_client, group, source, 2) == nothing

    program.do("begin")
    program.do(f"send {output} 1 committed-0")
    add_offsets({0: 4, 1: 6})
    pending_check({0: 4, 1: 6}, nothing)
    program.do("commit")
    wait_visible(raw_client, group, source, {0: 4, 1: 6})

    program.do("begin")
    program.do(f"send {output} 0 aborted-1")
    add_offsets({0: 9})
    pending_check({0: 9}, {0: 4, 1: 6})
    program.do("abort")
    assert committed(raw_client, group, source, 2) == {0: 4, 1: 6}

    commit_end(program, {output: 2})
    assert program.close() == 0, program.log()
    assert values(client.read(txn_broker.bootstrap, {output: 2}, "committed")) == {
        (output, 0): [END], (output, 1): ["committed-0", END]}


def transform_session(programs, client, broker, prefix, timeout_ms=None) -> tuple[ClientProgram, dict[str, int], str]:
    """compat/franzgo's transform (kgo.GroupTransactSession) from ``prefix``-in to ``prefix``-out,
    the input holding in-0..in-5 on two partitions."""
    source, output, group = f"{prefix}-in", f"{prefix}-out", f"{prefix}-group"
    produce_kafka_python(broker.bootstrap, source, [b"in-%d" % i for i in range(INPUT_RECORDS)], partitions=2)
    command = [*client.prefix, "transform", "--bootstrap", broker.bootstrap, "--transactional-id", f"{prefix}-id",
               "--group", group, "--input", source, "--output", output]
    if timeout_ms:
        command += ["--transaction-timeout", client.duration(timeout_ms)]
    return programs(command, f"{client.name}-transform", env=client.env), {source: 2, output: 2}, group


INPUT_RECORDS = 6
INPUT_VALUES = sorted(f"in-{i}" for i in range(INPUT_RECORDS))


def test_franzgo_group_transact_session(txn_broker, raw_client, programs):
    """An aborted round leaves the group's offsets alone and the session reads the same records
    again; a committed round's offsets are pending (UNSTABLE_OFFSET_COMMIT with require_stable,
    the old offsets without) between TxnOffsetCommit and EndTxn, visible after it. The output
    holds each input record once for read_committed, twice (the aborted copy first) for
    read_uncommitted."""
    client = CLIENTS["franz-go"]()
    prefix = f"{client.name}-session"
    topics = {f"{prefix}-in": 2, f"{prefix}-out": 2}
    create_topics(raw_client, topics)
    session, topics, group = transform_session(programs, client, txn_broker, prefix)
    source, output = list(topics)

    session.tell(f"round abort {INPUT_RECORDS}")
    polled = session.next_event()
    assert polled["event"] == "polled" and sorted(polled["values"]) == INPUT_VALUES, polled
    assert session.next_event() == {"event": "ended", "committed": False, "error": None, "code": None}
    assert committed(raw_client, group, source, 2) == {0: -1, 1: -1}

    session.tell(f"round commit {INPUT_RECORDS} pause")
    polled = session.next_event()
    assert polled["event"] == "polled" and sorted(polled["values"]) == INPUT_VALUES, polled  # read again
    assert session.next_event() == {"event": "offsets sent"}
    assert group_offsets(raw_client, group, source, 2) == {0: (-1, "NONE"), 1: (-1, "NONE")}
    assert group_offsets(raw_client, group, source, 2, require_stable=True) == {
        0: (-1, "UNSTABLE_OFFSET_COMMIT"), 1: (-1, "UNSTABLE_OFFSET_COMMIT")}
    assert session.ask("continue") == {"event": "ended", "committed": True, "error": None, "code": None}
    half = INPUT_RECORDS // 2
    wait_visible(raw_client, group, source, {0: half, 1: half})
    assert session.close() == 0, session.log()

    end = producer(programs, client, txn_broker, f"{prefix}-end", "end")
    end.do("init")
    commit_end(end, {output: 2})
    assert end.close() == 0, end.log()
    expected = {(output, p): [f"out-in-{i}" for i in range(p, INPUT_RECORDS, 2)] for p in range(2)}
    read_committed = values(client.read(txn_broker.bootstrap, {output: 2}, "committed"))
    assert read_committed == {key: [*items, END] for key, items in expected.items()}
    read_uncommitted = values(client.read(txn_broker.bootstrap, {output: 2}, "uncommitted"))
    assert read_uncommitted == {key: [*items, *items, END] for key, items in expected.items()}
    assert markers(raw_client, output, 2) == {p: ["abort", "commit", "commit"] for p in range(2)}


# --- a transaction left open past its timeout ----------------------------------------------------------------------


def wait_aborted_by_broker(raw_client, topic: str, partitions: int, began: float) -> None:
    """The broker ended the open transaction on ``topic`` (its last stable offset caught up with
    the high watermark), and not before the transaction timeout since ``began`` (a time before
    the transaction started)."""
    wait_transactions_ended(raw_client, topic, partitions)
    assert time.monotonic() - began >= SHORT_TRANSACTION_TIMEOUT_MS / 1000


# The commit of a transaction the broker aborted, as against Kafka 4.4. The abort bumped the
# producer epoch. franz-go speaks transaction version 2 (EndTxn v5), where an EndTxn one epoch
# behind is taken for a retry: the transaction is CompleteAbort, a commit of it INVALID_TXN_STATE.
# Before version 2 the old epoch is fenced: PRODUCER_FENCED for Sarama (EndTxn v3, v2 at 2.8),
# INVALID_PRODUCER_EPOCH for kafkajs's EndTxn v1.
TIMEOUT_ERRORS = {"franz-go": "INVALID_TXN_STATE", "sarama": "PRODUCER_FENCED", "sarama-2.8": "PRODUCER_FENCED",
                  "kafkajs": "INVALID_PRODUCER_EPOCH"}


def test_transaction_timeout_aborts(txn_broker, raw_client, client, programs):
    prefix = f"{client.name}-timeout"
    topics = {prefix: 2}
    create_topics(raw_client, topics)
    program = producer(programs, client, txn_broker, f"{prefix}-id", "producer",
                       timeout_ms=SHORT_TRANSACTION_TIMEOUT_MS)
    program.do("init")
    began = time.monotonic()
    program.do("begin")
    program.do(f"send {prefix} 0 late-0")
    program.do(f"send {prefix} 1 late-1")
    assert list_offsets(raw_client, prefix, 2, READ_COMMITTED) == {0: 0, 1: 0}  # open: stable below it
    wait_aborted_by_broker(raw_client, prefix, 2, began)
    late = program.ask("commit")
    assert (late["event"], error_name(late)) == ("failed", TIMEOUT_ERRORS[client.name]), late

    after = producer(programs, client, txn_broker, f"{prefix}-id", "after")
    after.do("init")
    commit_end(after, topics)
    assert after.close() == 0, after.log()
    assert values(client.read(txn_broker.bootstrap, topics, "committed")) == {(prefix, 0): [END], (prefix, 1): [END]}
    assert values(client.read(txn_broker.bootstrap, topics, "uncommitted")) == {
        (prefix, 0): ["late-0", END], (prefix, 1): ["late-1", END]}
    assert markers(raw_client, prefix, 2) == {p: ["abort", "commit"] for p in range(2)}


def test_franzgo_group_transact_session_timeout(txn_broker, raw_client, programs):
    """The session stops between TxnOffsetCommit and EndTxn for longer than its transaction
    timeout: the broker aborts the transaction, its offsets never become visible, End reports
    the failure."""
    client = CLIENTS["franz-go"]()
    prefix = f"{client.name}-session-timeout"
    create_topics(raw_client, {f"{prefix}-in": 2, f"{prefix}-out": 2})
    began = time.monotonic()
    session, topics, group = transform_session(programs, client, txn_broker, prefix, SHORT_TRANSACTION_TIMEOUT_MS)
    source, output = list(topics)
    session.tell(f"round commit {INPUT_RECORDS} pause")
    polled = session.next_event()
    assert polled["event"] == "polled" and sorted(polled["values"]) == INPUT_VALUES, polled
    assert session.next_event() == {"event": "offsets sent"}
    wait_aborted_by_broker(raw_client, output, 2, began)
    ended = session.ask("continue")
    assert (ended["event"], ended["committed"], error_name(ended)) == (
        "ended", False, TIMEOUT_ERRORS["franz-go"]), ended
    assert committed(raw_client, group, source, 2) == {0: -1, 1: -1}
    assert session.close() == 0, session.log()

    end = producer(programs, client, txn_broker, f"{prefix}-end", "end")
    end.do("init")
    commit_end(end, {output: 2})
    assert end.close() == 0, end.log()
    assert values(client.read(txn_broker.bootstrap, {output: 2}, "committed")) == {(output, p): [END] for p in range(2)}
    assert markers(raw_client, output, 2) == {p: ["abort", "commit"] for p in range(2)}
