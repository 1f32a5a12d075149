"""Apache Kafka's own command-line tools (from the Maven Central jars, compat/kafka_jars.py)
against a real ``odradek serve`` process on a random loopback port.

Tools run (Kafka 4.x main classes; the shell scripts of a Kafka distribution call the same):
kafka-topics (TopicCommand), kafka-console-producer (ConsoleProducer), kafka-console-consumer
(ConsoleConsumer, by partition and in a consumer group), kafka-consumer-groups
(ConsumerGroupCommand), kafka-get-offsets (GetOffsetShell), kafka-configs (ConfigCommand),
kafka-delete-records (DeleteRecordsCommand), kafka-log-dirs (LogDirsCommand).

Slow (one JVM per tool run, 2-4 s each; about a minute in all). Run with
``python -m pytest compat/test_kafka_cli.py``. Java and Maven are required: without them the
fixture raises (a failure, not a skip). The broker is started with the fixture class the broker
tests use (tests/broker/conftest.py), imported, not copied.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from broker.conftest import BrokerProcess  # noqa: E402  (tests/broker/conftest.py)

pytestmark = pytest.mark.slow

TOOL_TIMEOUT = 90.0


def _load_kafka_jars():
    if "kafka_jars" not in sys.modules:
        spec = importlib.util.spec_from_file_location("kafka_jars", REPO / "compat" / "kafka_jars.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["kafka_jars"] = module
        spec.loader.exec_module(module)
    return sys.modules["kafka_jars"]


@pytest.fixture(scope="module")
def kafka_jars():
    module = _load_kafka_jars()
    module.ensure()  # KafkaJarsUnavailable without java/mvn: an error, not a skip
    return module


# The broker's sweep for transactions open past their timeout runs this often (Kafka's default
# is 10 s): the timeout test waits for it.
ABORT_SWEEP_INTERVAL_MS = 500


@pytest.fixture(scope="module")
def odradek(tmp_path_factory):
    directory = tmp_path_factory.mktemp("odradek-cli")
    process = BrokerProcess(directory / "data", (
        f"transaction.abort.timed.out.transaction.cleanup.interval.ms={ABORT_SWEEP_INTERVAL_MS}",),
        directory / "broker.log")
    yield process
    code = process.stop()
    assert code == 0, f"odradek exited {code}: {process.log()}"


@pytest.fixture(scope="module")
def tool(kafka_jars, odradek):
    """tool(main_class, *args, input=None, ok=True) -> CompletedProcess, with
    --bootstrap-server added; ``ok`` asserts exit status 0 (showing the output and the
    broker's log otherwise)."""

    def run(main_class, *args, input=None, ok=True):
        result = kafka_jars.run_java(main_class, ["--bootstrap-server", odradek.bootstrap, *args],
                                     input=input, timeout=TOOL_TIMEOUT, check=False)
        if ok:
            assert result.returncode == 0, (
                f"{main_class} {args} exited {result.returncode}\nstdout: {result.stdout[-3000:]}\n"
                f"stderr: {result.stderr[-3000:]}\nbroker: {odradek.log()[-2000:]}")
        return result

    return run


def create_topic(kafka_jars, tool, name, partitions=1, *configs):
    extra = [item for config in configs for item in ("--config", config)]
    result = tool(kafka_jars.TOPIC_COMMAND, "--create", "--topic", name, "--partitions", str(partitions),
                  "--replication-factor", "1", *extra)
    assert f"Created topic {name}." in result.stdout


def test_topics_create_list_describe_alter_delete(kafka_jars, tool):
    create_topic(kafka_jars, tool, "cli-topics", 3, "retention.ms=86400000")
    assert "cli-topics" in tool(kafka_jars.TOPIC_COMMAND, "--list").stdout.split()

    described = tool(kafka_jars.TOPIC_COMMAND, "--describe", "--topic", "cli-topics").stdout
    assert re.search(r"Topic: cli-topics\tTopicId: \S+\tPartitionCount: 3\tReplicationFactor: 1", described), described
    assert "retention.ms=86400000" in described
    partitions = re.findall(r"Partition: (\d+)\tLeader: (\d+)\tReplicas: (\d+)\tIsr: (\d+)", described)
    assert sorted(partitions) == [(str(p), "1", "1", "1") for p in range(3)]

    tool(kafka_jars.TOPIC_COMMAND, "--alter", "--topic", "cli-topics", "--partitions", "5")
    described = tool(kafka_jars.TOPIC_COMMAND, "--describe", "--topic", "cli-topics").stdout
    assert "PartitionCount: 5" in described

    duplicate = tool(kafka_jars.TOPIC_COMMAND, "--create", "--topic", "cli-topics", "--partitions", "1", ok=False)
    assert duplicate.returncode != 0 and "TopicExistsException" in duplicate.stdout + duplicate.stderr

    tool(kafka_jars.TOPIC_COMMAND, "--delete", "--topic", "cli-topics")
    assert "cli-topics" not in tool(kafka_jars.TOPIC_COMMAND, "--list").stdout.split()


CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def test_console_producer_and_consumer_every_codec(kafka_jars, tool):
    """Keys, headers (one null), null values (``null.marker``), each codec from the producer;
    the consumer reads the one partition back in order with offsets."""
    create_topic(kafka_jars, tool, "cli-console")
    expected = []
    for codec in CODECS:
        lines = []
        for i in range(3):
            key, value = f"{codec}-k{i}", (None if i == 1 else f"{codec} value {i} ünïcode")
            headers = f"h:{codec}{i},empty:NULL"
            lines.append(f"{headers}\t{key}\t{'NULL' if value is None else value}")
            expected.append((f"h:{codec}{i},empty:NULL", key, "NULL" if value is None else value))
        tool(kafka_jars.CONSOLE_PRODUCER, "--topic", "cli-console", "--compression-codec", codec,
             "--reader-property", "parse.key=true", "--reader-property", "parse.headers=true",
             "--reader-property", "null.marker=NULL", input="\n".join(lines) + "\n")
    consumed = tool(kafka_jars.CONSOLE_CONSUMER, "--topic", "cli-console", "--partition", "0",
                    "--offset", "earliest", "--max-messages", str(len(expected)), "--timeout-ms", "20000",
                    "--formatter-property", "print.key=true", "--formatter-property", "print.headers=true",
                    "--formatter-property", "print.offset=true", "--formatter-property", "null.literal=NULL")
    rows = [line.split("\t") for line in consumed.stdout.splitlines() if line.startswith("Offset:")]
    assert [(int(r[0][len("Offset:"):]), *r[1:]) for r in rows] == [
        (offset, *row) for offset, row in enumerate(expected)], consumed.stdout
    assert f"Processed a total of {len(expected)} messages" in consumed.stderr


def test_console_consumer_in_a_group_and_consumer_groups_tool(kafka_jars, tool):
    create_topic(kafka_jars, tool, "cli-group", 2)
    lines = [f"key-{i}:value-{i}" for i in range(6)]
    tool(kafka_jars.CONSOLE_PRODUCER, "--topic", "cli-group", "--reader-property", "parse.key=true",
         "--reader-property", "key.separator=:", input="\n".join(lines) + "\n")
    consumed = tool(kafka_jars.CONSOLE_CONSUMER, "--topic", "cli-group", "--group", "cli-group-1",
                    "--from-beginning", "--max-messages", "6", "--timeout-ms", "30000",
                    "--formatter-property", "print.key=true", "--formatter-property", "key.separator=:")
    assert sorted(line for line in consumed.stdout.splitlines() if line) == sorted(lines)

    listed = tool(kafka_jars.CONSUMER_GROUP_COMMAND, "--list").stdout.split()
    assert "cli-group-1" in listed
    described = tool(kafka_jars.CONSUMER_GROUP_COMMAND, "--describe", "--group", "cli-group-1").stdout
    rows = re.findall(r"^cli-group-1\s+cli-group\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", described, re.M)
    # Every partition's committed offset is its log end offset: lag 0, six records in all.
    assert len(rows) == 2 and all(current == end and lag == "0" for _, current, end, lag in rows), described
    assert sum(int(end) for _, _, end, _ in rows) == 6


def test_get_offsets_latest_earliest_max_timestamp_and_by_time(kafka_jars, tool):
    create_topic(kafka_jars, tool, "cli-offsets")
    tool(kafka_jars.CONSOLE_PRODUCER, "--topic", "cli-offsets", input="".join(f"v{i}\n" for i in range(4)))
    consumed = tool(kafka_jars.CONSOLE_CONSUMER, "--topic", "cli-offsets", "--partition", "0", "--offset",
                    "earliest", "--max-messages", "4", "--timeout-ms", "20000",
                    "--formatter-property", "print.timestamp=true", "--formatter-property", "print.offset=true")
    timestamps = [int(t) for t, _ in re.findall(r"^CreateTime:(\d+)\tOffset:(\d+)\t", consumed.stdout, re.M)]
    assert len(timestamps) == 4, consumed.stdout

    def offsets(*args):
        out = tool(kafka_jars.GET_OFFSET_SHELL, "--topic", "cli-offsets", *args).stdout
        return dict(re.findall(r"^cli-offsets:(\d+):(-?\d*)$", out, re.M))

    def first_at_or_after(target):
        return next(str(offset) for offset, ts in enumerate(timestamps) if ts >= target)

    assert offsets() == {"0": "4"}  # latest by default
    assert offsets("--time", "-1") == {"0": "4"}
    assert offsets("--time", "-2") == {"0": "0"}
    # KIP-734: the (first) record holding the largest timestamp.
    assert offsets("--time", "-3") == {"0": str(timestamps.index(max(timestamps)))}
    assert offsets("--time", str(timestamps[2])) == {"0": first_at_or_after(timestamps[2])}
    assert offsets("--time", str(timestamps[0] - 60_000)) == {"0": "0"}
    # Nothing that late: the tool prints no offset for the partition.
    assert offsets("--time", str(max(timestamps) + 60_000)).get("0") in (None, "", "-1")


def test_configs_alter_and_describe(kafka_jars, tool):
    create_topic(kafka_jars, tool, "cli-configs")
    tool(kafka_jars.CONFIG_COMMAND, "--entity-type", "topics", "--entity-name", "cli-configs", "--alter",
         "--add-config", "retention.ms=123456,cleanup.policy=compact")
    described = tool(kafka_jars.CONFIG_COMMAND, "--entity-type", "topics", "--entity-name", "cli-configs",
                     "--describe").stdout
    assert "retention.ms=123456" in described and "cleanup.policy=compact" in described
    tool(kafka_jars.CONFIG_COMMAND, "--entity-type", "topics", "--entity-name", "cli-configs", "--alter",
         "--delete-config", "cleanup.policy")
    described = tool(kafka_jars.CONFIG_COMMAND, "--entity-type", "topics", "--entity-name", "cli-configs",
                     "--describe").stdout
    assert "retention.ms=123456" in described and "cleanup.policy" not in described
    refused = tool(kafka_jars.CONFIG_COMMAND, "--entity-type", "topics", "--entity-name", "cli-configs",
                   "--alter", "--add-config", "retention.ms=not-a-number", ok=False)
    assert refused.returncode != 0


def test_delete_records_moves_the_log_start(kafka_jars, tool, tmp_path):
    create_topic(kafka_jars, tool, "cli-delete")
    tool(kafka_jars.CONSOLE_PRODUCER, "--topic", "cli-delete", input="".join(f"v{i}\n" for i in range(5)))
    plan = tmp_path / "delete.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": "cli-delete", "partition": 0, "offset": 3}]}))
    result = tool(kafka_jars.DELETE_RECORDS_COMMAND, "--offset-json-file", str(plan))
    assert "partition: cli-delete-0\tlow_watermark: 3" in result.stdout, result.stdout
    earliest = tool(kafka_jars.GET_OFFSET_SHELL, "--topic", "cli-delete", "--time", "-2").stdout
    assert "cli-delete:0:3" in earliest.split()
    consumed = tool(kafka_jars.CONSOLE_CONSUMER, "--topic", "cli-delete", "--partition", "0", "--offset",
                    "earliest", "--max-messages", "2", "--timeout-ms", "20000")
    assert consumed.stdout.split() == ["v3", "v4"]


def test_log_dirs_describe(kafka_jars, tool, odradek):
    create_topic(kafka_jars, tool, "cli-logdirs", 2)
    tool(kafka_jars.CONSOLE_PRODUCER, "--topic", "cli-logdirs", input="a\nb\nc\n")
    out = tool(kafka_jars.LOG_DIRS_COMMAND, "--describe", "--topic-list", "cli-logdirs").stdout
    document = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    (broker,) = document["brokers"]
    assert broker["broker"] == 1
    (log_dir,) = broker["logDirs"]
    assert log_dir["error"] is None and Path(log_dir["logDir"]).resolve() == Path(odradek.data_dir).resolve()
    sizes = {p["partition"]: p["size"] for p in log_dir["partitions"]}
    assert set(sizes) == {"cli-logdirs-0", "cli-logdirs-1"}
    assert sum(sizes.values()) > 0


def test_log_dirs_describe_two_directories(kafka_jars, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    broker = BrokerProcess(one, (f"log.dirs={one},{two}",), tmp_path / "broker.log")
    try:
        def run(main_class, *args, input=None):
            result = kafka_jars.run_java(main_class, ["--bootstrap-server", broker.bootstrap, *args],
                                         input=input, timeout=TOOL_TIMEOUT, check=False)
            assert result.returncode == 0, f"{main_class} {args}: {result.stdout[-2000:]} {result.stderr[-2000:]}"
            return result.stdout

        run(kafka_jars.TOPIC_COMMAND, "--create", "--topic", "cli-two-dirs", "--partitions", "3",
            "--replication-factor", "1")
        run(kafka_jars.CONSOLE_PRODUCER, "--topic", "cli-two-dirs", input="a\nb\nc\nd\n")
        out = run(kafka_jars.LOG_DIRS_COMMAND, "--describe", "--topic-list", "cli-two-dirs")
        document = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
        (described,) = document["brokers"]
        partitions = {Path(log_dir["logDir"]).resolve(): sorted(p["partition"] for p in log_dir["partitions"])
                      for log_dir in described["logDirs"] if log_dir["error"] is None}
        # The first directory gets partitions 0 and 2, the second partition 1 (fewest first).
        assert partitions == {one.resolve(): ["cli-two-dirs-0", "cli-two-dirs-2"], two.resolve(): ["cli-two-dirs-1"]}
    finally:
        assert broker.stop() == 0, broker.log()


# ----------------------------------------------------------------- Kafka's Java client itself
FIXTURE_PRODUCER = REPO / "compat" / "FixtureProducer.java"


def _b64(data: str | None) -> str:
    return "-" if data is None else base64.b64encode(data.encode()).decode()


def fixture_producer_command(kafka_jars, bootstrap: str) -> list[str]:
    """The argv that runs compat/FixtureProducer.java against ``bootstrap`` (commands on stdin)."""
    return [shutil.which("java") or "java", "-Xmx256m", "-XX:+UseSerialGC", "-Dfile.encoding=UTF-8",
            f"-Dlog4j2.configurationFile={kafka_jars.home() / 'log4j2.properties'}",
            "-cp", kafka_jars.classpath(), str(FIXTURE_PRODUCER), bootstrap]


@pytest.fixture(scope="module")
def java_producer(kafka_jars, odradek):
    """java_producer(commands) -> (acks {id: (partition, offset, timestamp)}, ListOffsets
    answers [(target, offset, timestamp)], CompletedProcess): compat/FixtureProducer.java (the
    Java producer and Admin clients) fed the given command lines."""

    def run(lines, ok=True):
        result = subprocess.run(fixture_producer_command(kafka_jars, odradek.bootstrap), input="\n".join(lines) + "\n", capture_output=True, text=True,
                                timeout=TOOL_TIMEOUT)
        if ok:
            assert result.returncode == 0, f"{result.stderr[-3000:]}\nbroker: {odradek.log()[-2000:]}"
        acks, answers = {}, []
        for line in result.stdout.splitlines():
            fields = line.split()
            if fields[:1] == ["ACK"]:
                acks[int(fields[1])] = tuple(map(int, fields[2:]))
            elif fields[:1] == ["TIME"]:
                answers.append((fields[1], int(fields[2]), int(fields[3])))
        return acks, answers, result

    return run


def test_java_client_every_codec_plain_and_idempotent(kafka_jars, tool, java_producer):
    """The Java producer (idempotent by default in Kafka 3+) with every codec, then a plain
    acks=1 one; its acknowledged offsets, ListOffsets by time through the Java Admin client, and
    the console consumer reading everything back with headers."""
    base = 1_750_000_000_000
    lines = ["TOPIC\tcli-java\t1"]
    sent = []
    for step, (codec, mode) in enumerate([(codec, "idempotent") for codec in CODECS] + [("gzip", "plain")]):
        lines.append(f"PRODUCER\t{codec}\t{mode}")
        for i in range(4):
            record_id = len(sent)
            key = None if i == 0 else f"{codec}-{mode}-{i}"
            value = None if i == 2 else f"{codec} {mode} value {i} ✓"
            headers = [("trace", f"{step}.{i}")] if i % 2 else []
            timestamp = base + record_id * 10
            fields = ["RECORD", str(record_id), str(timestamp), _b64(key), _b64(value)]
            for header_key, header_value in headers:
                fields += [_b64(header_key), _b64(header_value)]
            lines.append("\t".join(fields))
            sent.append((timestamp, key, value, headers))
        lines.append("FLUSH")
    targets = [base - 1] + [t + d for t, *_ in sent for d in (0, 5)] + [sent[-1][0] + 1]
    lines.append("\t".join(["TIMES", *map(str, targets), "max"]))
    acks, answers, _ = java_producer(lines)
    assert [acks[i] for i in range(len(sent))] == [(0, i, sent[i][0]) for i in range(len(sent))]

    # ListOffsets by time answered as Kafka answers: the first offset with timestamp >= target.
    expected_answers = []
    for target in targets:
        hit = next((i for i, (t, *_) in enumerate(sent) if t >= target), None)
        expected_answers.append((str(target), -1 if hit is None else hit, -1 if hit is None else sent[hit][0]))
    expected_answers.append(("max", len(sent) - 1, sent[-1][0]))
    assert answers == expected_answers

    consumed = tool(kafka_jars.CONSOLE_CONSUMER, "--topic", "cli-java", "--partition", "0", "--offset", "earliest",
                    "--max-messages", str(len(sent)), "--timeout-ms", "20000",
                    "--formatter-property", "print.key=true", "--formatter-property", "print.headers=true",
                    "--formatter-property", "print.timestamp=true", "--formatter-property", "null.literal=<null>",
                    "--formatter-property", "headers.separator=;")
    rows = [line.split("\t") for line in consumed.stdout.splitlines() if line.startswith("CreateTime:")]
    assert rows == [[f"CreateTime:{t}", ";".join(f"{k}:{v}" for k, v in h) if h else "NO_HEADERS",
                     "<null>" if key is None else key, "<null>" if value is None else value]
                    for t, key, value, h in sent], consumed.stdout


def test_java_client_transactional_producer(kafka_jars, tool, java_producer):
    lines = ["TOPIC\tcli-txn\t1", "PRODUCER\tlz4\ttransactional\tmax.block.ms=8000\tlinger.ms=10\tdelivery.timeout.ms=20000\t"
             "request.timeout.ms=4000", "BEGIN",
             "\t".join(["RECORD", "1", "1750000000000", _b64("k"), _b64("committed")]), "COMMIT",
             "BEGIN", "\t".join(["RECORD", "2", "1750000000001", _b64("k"), _b64("aborted")]), "ABORT"]
    acks, _, result = java_producer(lines, ok=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [acks[1][1], acks[2][1]] == [0, 2]  # offset 1 is the commit marker
    consumed = tool(kafka_jars.CONSOLE_CONSUMER, "--topic", "cli-txn", "--partition", "0", "--offset", "earliest",
                    "--isolation-level", "read_committed", "--timeout-ms", "10000")
    assert consumed.stdout.split() == ["committed"]


TRANSACTIONAL_CLIENT = REPO / "compat" / "TransactionalClient.java"


@pytest.fixture(scope="module")
def transactional_client(kafka_jars, odradek):
    """transactional_client(commands) -> the output lines of compat/TransactionalClient.java (the
    Java transactional producer, consumers and Admin client) fed the given command lines, each
    split on spaces (an ERROR line into 5 fields: its message keeps its spaces)."""

    def run(lines):
        command = [shutil.which("java") or "java", "-Xmx256m", "-XX:+UseSerialGC", "-Dfile.encoding=UTF-8",
                   f"-Dlog4j2.configurationFile={kafka_jars.home() / 'log4j2.properties'}",
                   "-cp", kafka_jars.classpath(), str(TRANSACTIONAL_CLIENT), odradek.bootstrap]
        result = subprocess.run(command, input="\n".join(lines) + "\n", capture_output=True, text=True,
                                timeout=TOOL_TIMEOUT)
        assert result.returncode == 0, f"{result.stderr[-3000:]}\nbroker: {odradek.log()[-2000:]}"
        return [line.split(" ", 4) if line.startswith("ERROR ") else line.split(" ")
                for line in result.stdout.splitlines()]

    return run


def _lines(*commands):
    return ["\t".join(map(str, command)) for command in commands]


def _reads(output):
    """{(topic, partition): [(offset, value)]} of each READ and JOIN command, in order."""
    reads, current = [], {}
    for fields in output:
        if fields[0] == "RECORD":
            current.setdefault((fields[1], int(fields[2])), []).append((int(fields[3]), fields[4]))
        elif fields[0] in ("OK", "ERROR") and fields[1] in ("READ", "JOIN"):
            reads.append(current)
            current = {}
    return reads


def _errors(output):
    """[(command, producer name, exception class)] of the ERROR lines."""
    return [(fields[1], fields[2], fields[3]) for fields in output if fields[0] == "ERROR"]


def test_java_transactions_commit_abort_commit_with_offsets(transactional_client):
    """Three transactions over two topics of two partitions: committed, aborted, committed with
    the offsets of a group. The group's offsets are not visible while the transaction is open
    (Admin: none; read_committed's committed() would wait) and are once it committed; a
    read_committed consumer reads exactly the committed records at Kafka's offsets (one marker
    per partition per transaction end), a read_uncommitted one every record."""
    a, b, group, partitions = "java-txn-a", "java-txn-b", "java-txn-group", "java-txn-a:0,java-txn-a:1,java-txn-b:0,java-txn-b:1"
    output = transactional_client(_lines(
        ("TOPIC", a, 2), ("TOPIC", b, 2),
        ("PRODUCER", "p", "java-txn-1"),
        ("BEGIN", "p"), ("SEND", "p", a, 0, "c1"), ("SEND", "p", a, 1, "c2"), ("SEND", "p", b, 0, "c3"),
        ("COMMIT", "p"),
        ("BEGIN", "p"), ("SEND", "p", a, 0, "a1"), ("SEND", "p", b, 1, "a2"), ("FLUSH", "p"),
        ("OFFSETS", "p", group, "java-txn-b:0=9"), ("ABORT", "p"),
        ("COMMITTED", group, "java-txn-b:0"),
        ("BEGIN", "p"), ("SEND", "p", a, 0, "c4"), ("SEND", "p", b, 1, "c5"),
        ("OFFSETS", "p", group, "java-txn-a:0=5,java-txn-a:1=1"),
        ("COMMITTED", group, "java-txn-a:0,java-txn-a:1"),
        ("COMMIT", "p"),
        ("STABLE", group, "java-txn-a:0,java-txn-a:1,java-txn-b:0"),
        ("COMMITTED", group, "java-txn-a:0,java-txn-a:1,java-txn-b:0"),
        ("READ", "read_committed", 5, partitions),
        ("READ", "read_uncommitted", 7, partitions)))
    assert _errors(output) == [], output
    assert [fields[2:] for fields in output if fields[0] == "ACK"] == [
        [a, "0", "0"], [a, "1", "0"], [b, "0", "0"], [a, "0", "2"], [b, "1", "0"], [a, "0", "4"], [b, "1", "2"]]
    assert [fields[1:] for fields in output if fields[0] == "COMMITTED"] == [
        ["java-txn-b:0", "-1"],  # aborted: never the group's
        ["java-txn-a:0", "-1"], ["java-txn-a:1", "-1"],  # sent, not committed yet
        ["java-txn-a:0", "5"], ["java-txn-a:1", "1"], ["java-txn-b:0", "-1"],  # committed
        ["java-txn-a:0", "5"], ["java-txn-a:1", "1"], ["java-txn-b:0", "-1"]]
    committed, everything = _reads(output)
    assert committed == {(a, 0): [(0, "c1"), (4, "c4")], (a, 1): [(0, "c2")], (b, 0): [(0, "c3")],
                         (b, 1): [(2, "c5")]}
    assert everything == {(a, 0): [(0, "c1"), (2, "a1"), (4, "c4")], (a, 1): [(0, "c2")], (b, 0): [(0, "c3")],
                          (b, 1): [(0, "a2"), (2, "c5")]}


def test_java_producer_fenced_by_a_second_one_with_the_same_id(transactional_client):
    """A second producer's initTransactions() fences the first and aborts its open transaction.
    As against Kafka 4.4: the fenced one's commit (EndTxn) fails with ProducerFencedException,
    a fatal error (its next beginTransaction fails the same way); a fenced producer's send fails
    with InvalidProducerEpochException (the partition leader refuses the old epoch), which its
    commit then reports."""
    topic = "java-fenced"
    output = transactional_client(_lines(
        ("TOPIC", topic, 1),
        ("PRODUCER", "first", "java-fenced-1"),
        ("BEGIN", "first"), ("SEND", "first", topic, 0, "fenced-1"), ("FLUSH", "first"),
        ("PRODUCER", "second", "java-fenced-1"),
        ("COMMIT", "first"), ("BEGIN", "first"),
        ("BEGIN", "second"), ("SEND", "second", topic, 0, "new-1"), ("COMMIT", "second"),
        ("PRODUCER", "third", "java-fenced-2"),
        ("BEGIN", "third"), ("SEND", "third", topic, 0, "fenced-2"), ("FLUSH", "third"),
        ("PRODUCER", "fourth", "java-fenced-2"),
        ("SEND", "third", topic, 0, "fenced-3"), ("FLUSH", "third"), ("COMMIT", "third"),
        ("READ", "read_committed", 1, f"{topic}:0"),
        ("READ", "read_uncommitted", 3, f"{topic}:0")))
    assert _errors(output) == [("COMMIT", "first", "ProducerFencedException"),
                               ("BEGIN", "first", "ProducerFencedException"),
                               ("COMMIT", "third", "InvalidProducerEpochException")], output
    assert ["NACK", "third", topic, "0", "InvalidProducerEpochException"] in output
    # first-0: fenced-1 0, abort marker 1, new-1 2, commit marker 3, fenced-2 4, abort marker 5.
    committed, everything = _reads(output)
    assert committed == {(topic, 0): [(2, "new-1")]}
    assert everything == {(topic, 0): [(0, "fenced-1"), (2, "new-1"), (4, "fenced-2")]}


def test_java_transaction_open_past_its_timeout_is_aborted_by_the_broker(transactional_client):
    """A transaction idle past the producer's transaction.timeout.ms is aborted by the broker's
    sweep: its record never reaches read_committed, and the producer's commit then fails with
    InvalidTxnStateException, as against Kafka 4.4 (transaction version 2: the broker's abort
    bumped the epoch). The transactional id works again in a new producer."""
    topic = "java-timeout"
    output = transactional_client(_lines(
        ("TOPIC", topic, 1),
        ("PRODUCER", "late", "java-timeout-1", "transaction.timeout.ms=2000"),
        ("BEGIN", "late"), ("SEND", "late", topic, 0, "too-late"), ("FLUSH", "late"),
        ("SLEEP", 5000 + ABORT_SWEEP_INTERVAL_MS), ("COMMIT", "late"),
        ("PRODUCER", "again", "java-timeout-1"),
        ("BEGIN", "again"), ("SEND", "again", topic, 0, "on-time"), ("COMMIT", "again"),
        ("READ", "read_committed", 1, f"{topic}:0"),
        ("READ", "read_uncommitted", 2, f"{topic}:0")))
    assert _errors(output) == [("COMMIT", "late", "InvalidTxnStateException")], output
    committed, everything = _reads(output)
    assert committed == {(topic, 0): [(2, "on-time")]}
    assert everything == {(topic, 0): [(0, "too-late"), (2, "on-time")]}


def test_java_consume_transform_produce_as_a_group_member(transactional_client):
    """A subscribed consumer (a member of the group) reads the input; the transactional producer
    writes it transformed and sends the offsets with the member's metadata (KIP-447), which
    become the group's when the transaction commits. Once the member has left, the same
    metadata is refused: CommitFailedException (UNKNOWN_MEMBER_ID, as Kafka 4.4 answers), the
    transaction is aborted and the group's offsets stay."""
    source, sink, group = "java-ctp-in", "java-ctp-out", "java-ctp-group"
    output = transactional_client(_lines(
        ("TOPIC", source, 2), ("TOPIC", sink, 2),
        ("PRODUCER", "feed", "java-ctp-feed"),
        ("BEGIN", "feed"), *[("SEND", "feed", source, i % 2, f"in-{i}") for i in range(4)], ("COMMIT", "feed"),
        ("JOIN", "member", group, source, 4),
        ("PRODUCER", "p", "java-ctp-1"),
        ("BEGIN", "p"), *[("SEND", "p", sink, i % 2, f"IN-{i}") for i in range(4)],
        ("MEMBER_OFFSETS", "p", "member", f"{source}:0=3,{source}:1=3"),
        ("COMMIT", "p"),
        ("STABLE", group, f"{source}:0,{source}:1"),
        ("LEAVE", "member"),
        ("BEGIN", "p"), ("SEND", "p", sink, 0, "from-a-zombie"), ("FLUSH", "p"),
        ("MEMBER_OFFSETS", "p", "member", f"{source}:0=4"),
        ("ABORT", "p"),
        ("STABLE", group, f"{source}:0,{source}:1"),
        ("READ", "read_committed", 4, f"{sink}:0,{sink}:1")))
    assert _errors(output) == [("MEMBER_OFFSETS", "p", "CommitFailedException")], output
    # in-0 0, in-2 1, marker 2 on partition 0; the member read all four.
    member_read, committed = _reads(output)
    assert member_read == {(source, 0): [(0, "in-0"), (1, "in-2")], (source, 1): [(0, "in-1"), (1, "in-3")]}
    assert [fields[1:] for fields in output if fields[0] == "COMMITTED"] == [
        [f"{source}:0", "3"], [f"{source}:1", "3"], [f"{source}:0", "3"], [f"{source}:1", "3"]]
    assert committed == {(sink, 0): [(0, "IN-0"), (1, "IN-2")], (sink, 1): [(0, "IN-1"), (1, "IN-3")]}
