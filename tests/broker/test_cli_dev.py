"""The developer commands of ``odradek`` (broker/cli_dev.py, broker/dev_broker.py,
broker/admin_client.py) as a user runs them: the installed script, real broker processes over
TCP, kafka-python as the independent client on the other side; the parsers of what the user
types (configs, formats, the state file) and of what the broker sends (assignments) under
hypothesis. The comparison with Kafka's own tools' output is slow (a JVM per tool)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from odradek.broker.admin_client import (
    ConsumedRecord,
    KafkaClient,
    murmur2,
    parse_bootstrap,
    partition_for_key,
)
from odradek.broker.cli_dev import (
    FORMAT_FIELDS,
    RecordFormat,
    java_hash_map_order,
    parse_topic_configs,
)
from odradek.broker.consumer_protocol import (
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
    range_assign,
)
from odradek.broker.control.client import ControlClient
from odradek.broker.dev_broker import (
    DevBrokerState,
    StateFileError,
    parse_state,
    process_is_broker,
)

from .conftest import module_broker, subprocess_env
from .test_cli import ODRADEK


def odradek(*args, cwd=None, stdin=None, timeout=60):
    """Run the installed ``odradek`` script."""
    return subprocess.run([ODRADEK, *args], capture_output=True, text=True, input=stdin, timeout=timeout, cwd=cwd,
                          env=subprocess_env())


@pytest.fixture(scope="module")
def group_broker(tmp_path_factory):
    """The module's broker; a new group's first rebalance does not wait for more members (as in
    the server.properties Kafka ships for development, and as `odradek up` runs)."""
    yield from module_broker(tmp_path_factory, "cli-dev", ["group.initial.rebalance.delay.ms=0"])


# --- up / status / down ---------------------------------------------------------------------------

@pytest.fixture
def project(tmp_path):
    """A project folder; whatever broker a test left running in it is stopped at teardown."""
    folder = tmp_path / "project"
    folder.mkdir()
    yield folder
    state_file = folder / ".odradek" / "state.json"
    if state_file.exists():
        try:
            pid = json.loads(state_file.read_text())["pid"]
        except (ValueError, KeyError):
            return
        if process_is_broker(pid):
            result = odradek("down", cwd=folder)
            if result.returncode != 0 and process_is_broker(pid):
                os.kill(pid, signal.SIGKILL)
            pytest.fail(f"the test left a broker running: {result.stdout}{result.stderr}")


def field(output: str, name: str) -> str:
    match = re.search(rf"^{re.escape(name)}=(.*)$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_up_status_down_keep_the_data_per_project_folder(project):
    up = odradek("up", "--port", "0", cwd=project)
    assert up.returncode == 0, up.stdout + up.stderr
    bootstrap = field(up.stdout, "bootstrap.servers")
    state = json.loads((project / ".odradek" / "state.json").read_text())
    assert state["bootstrap_servers"] == bootstrap
    assert state["data_dir"] == str(project / ".odradek" / "data")
    assert process_is_broker(state["pid"])
    # The control API's URL, read from serve's `odradek control:` line, answers.
    assert field(up.stdout, "control") == state["control_url"]
    control = ControlClient(state["control_url"], timeout=10)
    try:
        assert control.call("GET", "/v1/status")["bootstrap_servers"] == bootstrap
    finally:
        control.close()

    again = odradek("up", "--port", "0", cwd=project)
    assert again.returncode == 0 and "already running" in again.stdout and f"pid {state['pid']}" in again.stdout
    assert field(again.stdout, "bootstrap.servers") == bootstrap

    # Commands in the project (or a folder below it) talk to its broker without being told where.
    created = odradek("topic", "create", "kept", "--partitions", "2", cwd=project)
    assert created.stdout == "Created topic kept.\n", created.stdout + created.stderr
    below = project / "src" / "deep"
    below.mkdir(parents=True)
    status = odradek("status", cwd=below)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"pid {state['pid']}" in status.stdout and field(status.stdout, "topics") == "1"
    assert field(status.stdout, "bootstrap.servers") == bootstrap

    # The control commands find it too (broker/cli_control.py): a reset drops the topic.
    reset = odradek("reset", cwd=below)
    assert reset.returncode == 0 and reset.stdout.startswith("reset in"), reset.stdout + reset.stderr
    assert odradek("topic", "list", "--exclude-internal", cwd=project).stdout == "\n"
    assert odradek("topic", "create", "kept", "--partitions", "2", cwd=project).returncode == 0

    down = odradek("down", cwd=project)
    assert down.returncode == 0 and f"stopped (pid {state['pid']})" in down.stdout, down.stdout + down.stderr
    assert not process_is_broker(state["pid"])
    assert not (project / ".odradek" / "state.json").exists()
    assert "shut down cleanly" in (project / ".odradek" / "broker.log").read_text()

    stopped = odradek("status", cwd=project)
    assert stopped.returncode == 3 and "not running" in stopped.stdout
    assert odradek("down", cwd=project).returncode == 0  # nothing running is not an error

    # The next `up` serves the same data.
    up = odradek("up", "--port", "0", cwd=project)
    assert up.returncode == 0, up.stdout + up.stderr
    listed = odradek("topic", "list", "--exclude-internal", cwd=project)
    assert listed.stdout == "kept\n"
    assert odradek("down", cwd=project).returncode == 0


def test_two_ups_at_once_start_one_broker(project):
    ups = [subprocess.Popen([ODRADEK, "up", "--port", "0"], cwd=project, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=subprocess_env()) for _ in range(2)]
    outputs = [up.communicate(timeout=60) for up in ups]
    assert [up.returncode for up in ups] == [0, 0], outputs
    assert sorted("already running" in stdout for stdout, _ in outputs) == [False, True], outputs
    pids = {re.search(r"\(pid (\d+)\)", stdout).group(1) for stdout, _ in outputs}
    assert len(pids) == 1  # the second waited for the first's lock, then found its broker
    assert odradek("down", cwd=project).returncode == 0


def test_memory_broker_keeps_nothing(project):
    up = odradek("up", "--port", "0", "--memory", cwd=project)
    assert up.returncode == 0, up.stdout + up.stderr
    assert field(up.stdout, "data.dir") == "(in memory)"
    assert odradek("topic", "create", "gone", cwd=project).returncode == 0
    assert odradek("down", cwd=project).returncode == 0
    assert not (project / ".odradek" / "data").exists()
    assert odradek("up", "--port", "0", "--memory", cwd=project).returncode == 0
    assert odradek("topic", "list", "--exclude-internal", cwd=project).stdout == "\n"
    assert odradek("down", cwd=project).returncode == 0


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("stale", ["dead pid", "other program", "unreadable"])
def test_a_stale_state_file_is_reported_and_cleaned(project, stale):
    state_dir = project / ".odradek"
    state_dir.mkdir()
    other = None
    if stale == "unreadable":
        text = "{not json"
    else:
        if stale == "dead pid":
            pid = _dead_pid()
        else:  # a live process that is not a broker: a reused pid must not pass for one
            other = subprocess.Popen(["sleep", "60"])
            pid = other.pid
        text = DevBrokerState(pid=pid, bootstrap_servers="127.0.0.1:1", control_url=None, data_dir=None,
                              log=str(state_dir / "broker.log"), started_at="2026-01-01T00:00:00Z").to_json()
    (state_dir / "state.json").write_text(text)
    try:
        status = odradek("status", cwd=project)
        assert status.returncode == 3, status.stdout + status.stderr
        assert "not running" in status.stdout
        up = odradek("up", "--port", "0", cwd=project)
        assert up.returncode == 0, up.stdout + up.stderr
        assert field(up.stdout, "bootstrap.servers") != "127.0.0.1:1"
        if other is not None:
            assert other.poll() is None  # up left the unrelated process alone
        assert odradek("down", cwd=project).returncode == 0
    finally:
        if other is not None:
            other.kill()
            other.wait()


def test_a_killed_broker_is_stale_and_the_next_up_recovers_its_data(project):
    up = odradek("up", "--port", "0", cwd=project)
    assert up.returncode == 0, up.stdout + up.stderr
    pid = json.loads((project / ".odradek" / "state.json").read_text())["pid"]
    assert odradek("produce", "survivor", "--value", "kept", cwd=project).returncode == 0  # auto-created
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_is_broker(pid):  # dead, or a zombie until its new parent reaps it
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status = odradek("status", cwd=project)
    assert status.returncode == 3 and f"pid {pid}" in status.stdout, status.stdout
    up = odradek("up", "--port", "0", cwd=project)
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"pid {pid}" in up.stderr  # the stale state it removed
    consumed = odradek("consume", "survivor", "--from-beginning", "--count", "1", "--timeout-ms", "5000",
                       cwd=project)
    assert consumed.stdout == "kept\n", consumed.stderr
    assert odradek("down", cwd=project).returncode == 0


def test_up_reports_a_broker_that_cannot_start(project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = odradek("up", "--port", str(port), "--override", "listeners=PLAINTEXT://127.0.0.1:" + str(port),
                     cwd=project)
        assert up.returncode == 2  # serve refuses --port with an --override of listeners: told, not hung
        up = odradek("up", "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}", cwd=project)
    assert up.returncode == 1
    assert "before it was ready" in up.stderr and "cannot start" in up.stderr, up.stderr
    assert not (project / ".odradek" / "state.json").exists()
    assert odradek("status", cwd=project).returncode == 3


# --- topics ---------------------------------------------------------------------------------------

def test_topic_create_list_describe_delete(group_broker):
    from confluent_kafka.admin import AdminClient, ConfigResource

    server = ["--bootstrap-server", group_broker.bootstrap]
    created = odradek("topic", "create", "devtopic", "--partitions", "3", "--config", "retention.ms=12345",
                      "--config", " cleanup.policy = compact ", *server)
    assert (created.returncode, created.stdout) == (0, "Created topic devtopic.\n"), created.stderr
    admin = AdminClient({"bootstrap.servers": group_broker.bootstrap})
    metadata = admin.list_topics("devtopic", timeout=10)
    assert len(metadata.topics["devtopic"].partitions) == 3
    resource = ConfigResource("topic", "devtopic")
    configs = admin.describe_configs([resource])[resource].result(10)
    assert configs["retention.ms"].value == "12345" and configs["cleanup.policy"].value == "compact"

    exists = odradek("topic", "create", "devtopic", *server)
    assert exists.returncode == 1
    assert exists.stdout == "Error while executing topic command : Topic 'devtopic' already exists.\n"
    assert odradek("topic", "create", "devtopic", "--if-not-exists", *server).returncode == 0
    bad = odradek("topic", "create", "other", "--config", "a=b=c", *server)
    assert bad.returncode == 1 and 'must be in the format "key=val"' in bad.stdout
    invalid = odradek("topic", "create", "other", "--config", "retention.ms=soon", *server)
    assert invalid.returncode == 1 and invalid.stdout.startswith("Error while executing topic command : ")
    assert "retention.ms" in invalid.stdout

    assert "devtopic" in odradek("topic", "list", *server).stdout.splitlines()
    described = odradek("topic", "describe", "devtopic", *server)
    lines = described.stdout.splitlines()
    assert re.fullmatch(r"Topic: devtopic\tTopicId: [A-Za-z0-9_-]{22}\tPartitionCount: 3\tReplicationFactor: 1"
                        r"\tConfigs: cleanup.policy=compact,retention.ms=12345", lines[0]), lines[0]
    assert lines[1:] == [f"\tTopic: devtopic\tPartition: {p}\tLeader: 1\tReplicas: 1\tIsr: 1\tElr: \tLastKnownElr: "
                         for p in range(3)]

    assert odradek("topic", "delete", "devtopic", *server).returncode == 0
    assert "devtopic" not in odradek("topic", "list", *server).stdout.splitlines()
    missing = odradek("topic", "describe", "devtopic", *server)
    assert missing.returncode == 1
    assert missing.stdout == "Error while executing topic command : Topic 'devtopic' does not exist as expected\n"
    assert odradek("topic", "delete", "devtopic", "--if-exists", *server).returncode == 0


def test_a_topic_described_a_page_at_a_time_has_every_partition(group_broker):
    server = ["--bootstrap-server", group_broker.bootstrap]
    assert odradek("topic", "create", "paged", "--partitions", "7", *server).returncode == 0
    with KafkaClient(group_broker.bootstrap, partition_page_size=3) as client:
        topic = client.topic("paged")
    assert [p.partition for p in topic.partitions] == list(range(7))
    assert all(p.leader == 1 and p.replicas == [1] for p in topic.partitions)


def test_no_broker_is_an_error_not_a_hang(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = odradek("topic", "list", "--bootstrap-server", f"127.0.0.1:{port}", cwd=tmp_path)
    assert result.returncode == 1 and "cannot connect" in result.stdout + result.stderr
    assert time.monotonic() - started < 10


def test_a_broker_that_closes_the_connection_is_an_error(tmp_path):
    import threading

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def close_each_connection():
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:  # the listener closed: the test is over
                    return
                connection.recv(65536)  # the request, unanswered
                connection.close()
        threading.Thread(target=close_each_connection, daemon=True).start()
        result = odradek("topic", "list", "--bootstrap-server", "127.0.0.1:%d" % listener.getsockname()[1],
                         cwd=tmp_path)
    assert result.returncode == 1 and "closed the connection" in result.stderr, result.stderr


# --- records --------------------------------------------------------------------------------------

def test_lines_produced_by_the_cli_are_read_back_by_kafka_python(group_broker):
    from kafka import KafkaConsumer, TopicPartition

    server = ["--bootstrap-server", group_broker.bootstrap]
    assert odradek("topic", "create", "lines", "--partitions", "4", *server).returncode == 0
    keyed = "".join(f"key{i}:value {i}\n" for i in range(20))
    produced = odradek("produce", "lines", "--key-separator", ":", *server, stdin=keyed)
    assert produced.returncode == 0, produced.stderr
    assert odradek("produce", "lines", "--partition", "3", *server, stdin="plain\n\nlast without newline").returncode == 0
    assert odradek("produce", "lines", "--value", "héllo", "--key", "k", *server).returncode == 0

    consumer = KafkaConsumer(bootstrap_servers=group_broker.bootstrap, auto_offset_reset="earliest")
    consumer.assign([TopicPartition("lines", p) for p in range(4)])
    seen = {}
    deadline = time.monotonic() + 20
    while sum(map(len, seen.values())) < 24 and time.monotonic() < deadline:
        for records in consumer.poll(500).values():
            for record in records:
                seen.setdefault(record.partition, []).append((record.key, record.value))
    consumer.close()
    assert sum(map(len, seen.values())) == 24
    # Keys land where Kafka's default partitioner puts them (murmur2), as kafka-python computes it.
    from kafka.partitioner.default import murmur2 as kafka_python_murmur2

    for i in range(20):
        key = f"key{i}".encode()
        expected = (kafka_python_murmur2(key) & 0x7FFFFFFF) % 4
        assert (key, f"value {i}".encode()) in seen[expected]
    assert [value for key, value in seen[3] if key is None] == [b"plain", b"", b"last without newline"]
    assert (b"k", "héllo".encode()) in seen[(kafka_python_murmur2(b"k") & 0x7FFFFFFF) % 4]

    # A missing topic is auto-created (the broker's auto.create.topics.enable), as for Kafka's
    # producers; a missing partition is an error.
    assert odradek("produce", "made-on-use", "--value", "x", *server).returncode == 0
    assert "made-on-use" in odradek("topic", "list", *server).stdout.splitlines()
    missing = odradek("produce", "lines", "--partition", "9", "--value", "x", *server)
    assert missing.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in missing.stderr


def test_records_produced_by_kafka_python_are_consumed_by_the_cli(group_broker):
    from kafka import KafkaProducer

    server = ["--bootstrap-server", group_broker.bootstrap]
    assert odradek("topic", "create", "tocli", "--partitions", "2", *server).returncode == 0
    producer = KafkaProducer(bootstrap_servers=group_broker.bootstrap, compression_type="gzip")
    for i in range(6):
        producer.send("tocli", key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 2)
    producer.send("tocli", key=b"nv", value=None, partition=0)
    producer.flush()
    producer.close()

    values = odradek("consume", "tocli", "--from-beginning", "--count", "7", *server)
    assert values.returncode == 0, values.stderr
    assert sorted(values.stdout.splitlines()) == sorted([f"v{i}" for i in range(6)] + ["null"])
    assert values.stderr == "Processed a total of 7 messages\n"
    formatted = odradek("consume", "tocli", "--partition", "1", "--offset", "1", "--count", "2",
                        "--format", "{topic}/{partition}@{offset} {key}={value}", *server)
    assert formatted.stdout.splitlines() == ["tocli/1@1 k3=v3", "tocli/1@2 k5=v5"], formatted.stderr
    # Without --from-beginning only new records come; none come, so the timeout ends it.
    started = time.monotonic()
    idle = odradek("consume", "tocli", "--timeout-ms", "700", *server)
    assert idle.returncode == 0 and idle.stdout == "" and "total of 0 messages" in idle.stderr
    assert time.monotonic() - started < 10
    # A start past the end resets as a consumer's auto.offset.reset does: latest, or earliest
    # with --from-beginning.
    past = odradek("consume", "tocli", "--partition", "1", "--offset", "999", "--timeout-ms", "700", *server)
    assert past.returncode == 0 and past.stdout == "", past.stderr
    past = odradek("consume", "tocli", "--partition", "1", "--offset", "999", "--from-beginning", "--count", "1",
                   *server)
    assert past.stdout == "v1\n", past.stderr
    bad = odradek("consume", "tocli", "--format", "{value.__class__}", *server)
    assert bad.returncode == 2 and "unknown field" in bad.stderr


# --- groups ---------------------------------------------------------------------------------------

def test_group_describe_shows_a_kafka_python_consumer_and_its_lag(group_broker):
    from kafka import KafkaConsumer, KafkaProducer

    server = ["--bootstrap-server", group_broker.bootstrap]
    assert odradek("topic", "create", "lagging", "--partitions", "2", *server).returncode == 0
    producer = KafkaProducer(bootstrap_servers=group_broker.bootstrap)
    for value, partition in [(b"x", 0)] * 5 + [(b"y", 1)] * 3:
        producer.send("lagging", value=value, partition=partition)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer("lagging", group_id="laggards", client_id="lag-client",
                             bootstrap_servers=group_broker.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, max_poll_records=1)
    try:
        consumed = 0
        deadline = time.monotonic() + 20
        while consumed < 1 and time.monotonic() < deadline:
            consumed += sum(len(batch) for batch in consumer.poll(500).values())
        consumer.commit()
        committed = {tp.partition: consumer.committed(tp) for tp in consumer.assignment()}
        member_id = consumer._coordinator._generation.member_id

        listed = odradek("group", "list", *server)
        assert "laggards" in listed.stdout.splitlines()
        live = odradek("group", "describe", "laggards", *server)
        assert live.returncode == 0, live.stderr
        lines = live.stdout.splitlines()
        assert lines[0] == "" and lines[1].split() == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET",
                                                      "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]
        rows = {int(line.split()[2]): line.split() for line in lines[2:]}
        assert set(rows) == {0, 1}
        for partition, end in ((0, 5), (1, 3)):
            current = committed[partition]
            assert rows[partition][:6] == ["laggards", "lagging", str(partition),
                                           "-" if current is None else str(current), str(end),
                                           "-" if current is None else str(end - current)]
            assert rows[partition][6:] == [member_id, "/127.0.0.1", "lag-client"]
        members = odradek("group", "describe", "laggards", "--members", *server).stdout.splitlines()
        assert members[0] == "" and members[1].split() == ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"]
        assert [line.split() for line in members[2:]] == [["laggards", member_id, "/127.0.0.1", "lag-client", "2"]]
    finally:
        consumer.close()

    empty = odradek("group", "describe", "laggards", *server)
    assert empty.returncode == 0
    assert empty.stderr == "\nConsumer group 'laggards' has no active members.\n"
    for line in empty.stdout.splitlines()[2:]:
        assert line.split()[6:] == ["-", "-", "-"]
    assert odradek("group", "describe", "laggards", "--members", *server).stdout.splitlines()[2:] == []
    missing = odradek("group", "describe", "nobody", *server)
    assert missing.returncode == 1 and missing.stdout == "\nError: Consumer group 'nobody' does not exist.\n"


def test_consume_with_a_group_commits_what_it_read(group_broker):
    from kafka import KafkaConsumer, TopicPartition

    server = ["--bootstrap-server", group_broker.bootstrap]
    assert odradek("topic", "create", "resumable", "--partitions", "1", *server).returncode == 0
    assert odradek("produce", "resumable", *server, stdin="a\nb\nc\nd\n").returncode == 0
    first = odradek("consume", "resumable", "--from-beginning", "--group", "resumers", "--count", "3", *server)
    assert first.stdout.splitlines() == ["a", "b", "c"], first.stderr
    consumer = KafkaConsumer(bootstrap_servers=group_broker.bootstrap, group_id="resumers",
                             enable_auto_commit=False)
    try:
        assert consumer.committed(TopicPartition("resumable", 0)) == 3
    finally:
        consumer.close()
    # The next run resumes at the commit, not at the beginning.
    rest = odradek("consume", "resumable", "--from-beginning", "--group", "resumers", "--timeout-ms", "700", *server)
    assert rest.stdout.splitlines() == ["d"], rest.stderr
    described = odradek("group", "describe", "resumers", *server)
    (row,) = described.stdout.splitlines()[2:]
    assert row.split()[:6] == ["resumers", "resumable", "0", "4", "4", "0"]


def _start_consumer(*args) -> subprocess.Popen:
    return subprocess.Popen([ODRADEK, "consume", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=subprocess_env())


def _finish(process: subprocess.Popen, timeout: float = 30) -> tuple[int, str, str]:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stdout.decode(), stderr.decode()


def test_consume_with_a_group_is_a_member_of_it(group_broker):
    server = ["--bootstrap-server", group_broker.bootstrap]
    assert odradek("topic", "create", "membered", "--partitions", "3", *server).returncode == 0
    assert odradek("produce", "membered", "--partition", "1", *server, stdin="x\ny\n").returncode == 0
    process = _start_consumer("membered", "--from-beginning", "--group", "members", *server)
    try:
        assert process.stdout.readline() == b"x\n" and process.stdout.readline() == b"y\n"
        members = odradek("group", "describe", "members", "--members", *server).stdout.splitlines()
        assert [line.split()[0::2] for line in members[2:]] == [["members", "/127.0.0.1", "3"]], members
        rows = [line.split() for line in odradek("group", "describe", "members", *server).stdout.splitlines()[2:]]
        assert [row[2:6] + row[8:] for row in rows] == [["0", "0", "0", "0", "odradek-cli"],
                                                        ["1", "2", "2", "0", "odradek-cli"],
                                                        ["2", "0", "0", "0", "odradek-cli"]], rows
        process.send_signal(signal.SIGINT)
    finally:
        code, _, stderr = _finish(process)
    assert code == 130 and stderr.endswith("Processed a total of 2 messages\n"), stderr
    # It left the group on its way out: no member, its commits kept.
    empty = odradek("group", "describe", "members", *server)
    assert "has no active members" in empty.stderr
    assert [line.split()[3] for line in empty.stdout.splitlines()[2:]] == ["0", "2", "0"]


@pytest.mark.slow
def test_two_group_consumers_share_the_partitions(group_broker):
    """Two ``consume --group`` processes and a kafka-python consumer in one group: the second
    and third joins rebalance the group, each record is read once."""
    from kafka import KafkaConsumer

    server = ["--bootstrap-server", group_broker.bootstrap]
    assert odradek("topic", "create", "shared", "--partitions", "4", *server).returncode == 0
    # From the beginning: a member that starts reading a partition after the records came
    # still reads them (with latest it would start after them).
    first = _start_consumer("shared", "--group", "sharers", "--from-beginning", "--timeout-ms", "12000", *server)
    second = None
    python_consumer = None
    try:
        deadline = time.monotonic() + 20
        while "odradek-cli" not in odradek("group", "describe", "sharers", "--members", *server).stdout:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        second = _start_consumer("shared", "--group", "sharers", "--from-beginning", "--timeout-ms", "12000",
                                 *server)
        python_consumer = KafkaConsumer("shared", group_id="sharers", bootstrap_servers=group_broker.bootstrap,
                                        client_id="python-member", auto_offset_reset="earliest")
        while True:  # until the group is Stable with its three members, each with a partition
            python_consumer.poll(200)
            members = odradek("group", "describe", "sharers", "--members", *server)
            counts = [line.split()[-1] for line in members.stdout.splitlines()[2:]]
            if len(counts) == 3 and "0" not in counts and not members.stderr:
                break
            assert time.monotonic() < deadline + 20, members.stdout + members.stderr
        values = [f"v{i}" for i in range(40)]
        stdin = "".join(f"k{i}:{value}\n" for i, value in enumerate(values))
        assert odradek("produce", "shared", "--key-separator", ":", *server, stdin=stdin).returncode == 0
        python_read = []
        quiet_until = time.monotonic() + 3
        while time.monotonic() < quiet_until:
            for records in python_consumer.poll(200).values():
                python_read += [record.value.decode() for record in records]
                quiet_until = time.monotonic() + 3
    finally:
        if python_consumer is not None:
            python_consumer.close()
        results = [_finish(process, 60) for process in (first, second) if process is not None]
    assert [code for code, _, _ in results] == [0, 0], results
    cli_read = [line for _, stdout, _ in results for line in stdout.splitlines()]
    assert sorted(cli_read + python_read) == sorted(values)  # every record once
    assert all(stdout for _, stdout, _ in results) and python_read


def test_ctrl_c_ends_consume_with_its_reads_committed(group_broker):
    from kafka import KafkaConsumer, TopicPartition

    server = ["--bootstrap-server", group_broker.bootstrap]
    assert odradek("topic", "create", "interrupted", "--partitions", "1", *server).returncode == 0
    assert odradek("produce", "interrupted", *server, stdin="a\nb\n").returncode == 0
    process = subprocess.Popen([ODRADEK, "consume", "interrupted", "--from-beginning", "--group", "interrupters",
                                *server], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env())
    try:
        assert process.stdout.readline() == b"a\n" and process.stdout.readline() == b"b\n"
        time.sleep(0.3)  # into its next fetch, which waits for records that do not come
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert stderr.decode().endswith("Processed a total of 2 messages\n")
    consumer = KafkaConsumer(bootstrap_servers=group_broker.bootstrap, group_id="interrupters",
                             enable_auto_commit=False)
    try:
        assert consumer.committed(TopicPartition("interrupted", 0)) == 2
    finally:
        consumer.close()


# --- parsers (hypothesis) -------------------------------------------------------------------------

_token = st.text(st.characters(blacklist_characters="=", blacklist_categories=("Cs",)), min_size=1).filter(
    lambda text: text.strip() and text == text.strip())


@given(_token, _token, st.sampled_from(["", " ", "  "]), st.sampled_from(["", " ", "\t"]))
def test_topic_config_key_value_round_trip(key, value, left, right):
    assert parse_topic_configs([f"{key}{left}={right}{value}"]) == {key: value}


@given(st.lists(st.text(), max_size=4))
def test_topic_configs_parse_or_give_kafkas_message(items):
    try:
        configs = parse_topic_configs(items)
    except ValueError as error:
        assert 'all configs to be added must be in the format "key=val"' in str(error)
        return
    assert len(configs) <= len(items)
    for key, value in configs.items():
        assert key == key.strip() and value == value.strip() and "=" not in value


@given(st.text())
def test_record_format_parses_or_refuses(template):
    try:
        record_format = RecordFormat(template)
    except ValueError as error:
        assert "--format" in str(error)
        return
    record = ConsumedRecord("t", 3, 42, 1700000000000, b"\xff\x00k", None, [])
    assert isinstance(record_format.render(record), str)


@given(st.lists(st.sampled_from(FORMAT_FIELDS), min_size=1), st.text(alphabet="abc :=\t-"))
def test_record_format_fields_render_their_values(fields, separator):
    template = separator.join("{" + name + "}" for name in fields)
    record = ConsumedRecord("topic", 3, 42, 1700000000000, b"key", b"\xc3\xa9t\xff", [])
    values = {"topic": "topic", "partition": "3", "offset": "42", "timestamp": "1700000000000", "key": "key",
              "value": "ét\\xff"}
    assert RecordFormat(template).render(record) == separator.join(values[name] for name in fields)


_states = st.builds(DevBrokerState, pid=st.integers(1, 2**31 - 1), bootstrap_servers=st.text(min_size=1),
                    control_url=st.none() | st.text(), data_dir=st.none() | st.text(), log=st.text(),
                    started_at=st.text())


@given(_states)
def test_state_file_round_trips(state):
    assert parse_state(state.to_json()) == state


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3))


@given(st.one_of(st.text(), _json.map(json.dumps),
                 st.fixed_dictionaries({"pid": _json, "bootstrap_servers": _json, "control_url": _json,
                                        "data_dir": _json, "log": _json, "started_at": _json}).map(json.dumps)))
def test_state_file_parses_or_is_refused(text):
    try:
        state = parse_state(text)
    except StateFileError:
        return
    assert isinstance(state.pid, int) and 0 < state.pid < 2**31 and state.bootstrap_servers


def test_state_file_refuses_a_nesting_bomb():
    with pytest.raises(StateFileError):
        parse_state("[" * 100000)


@given(st.binary(max_size=64))
def test_murmur2_is_kafkas(data):
    from kafka.partitioner.default import murmur2 as kafka_python_murmur2

    assert murmur2(data) & 0xFFFFFFFF == kafka_python_murmur2(data) & 0xFFFFFFFF
    assert partition_for_key(data, 7) == (kafka_python_murmur2(data) & 0x7FFFFFFF) % 7


def test_murmur2_known_values():
    # Kafka's UtilsTest.testMurmur2 vectors.
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829,
             b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, b"abc": 479470107}
    for data, expected in cases.items():
        assert murmur2(data) == expected


def test_configs_are_ordered_as_a_java_hash_map_iterates():
    # What java.util.HashMap's keySet() printed for these keys put in this order (a 64-bucket
    # table, with a non-ASCII key), run with Java 17.
    keys = ("cleanup.policy compression.type delete.retention.ms file.delete.delay.ms flush.messages flush.ms "
            "follower.replication.throttled.replicas index.interval.bytes leader.replication.throttled.replicas "
            "local.retention.bytes local.retention.ms max.compaction.lag.ms max.message.bytes "
            "message.timestamp.after.max.ms message.timestamp.before.max.ms message.timestamp.type "
            "min.cleanable.dirty.ratio min.compaction.lag.ms min.insync.replicas preallocate remote.storage.enable "
            "retention.bytes retention.ms segment.bytes segment.index.bytes segment.jitter.ms segment.ms "
            "unclean.leader.election.enable é日本 a b").split()
    java = ("compression.type,é日本,leader.replication.throttled.replicas,remote.storage.enable,min.insync.replicas,"
            "segment.jitter.ms,local.retention.ms,cleanup.policy,flush.ms,follower.replication.throttled.replicas,"
            "retention.ms,segment.bytes,flush.messages,a,b,file.delete.delay.ms,max.compaction.lag.ms,"
            "max.message.bytes,min.compaction.lag.ms,message.timestamp.type,local.retention.bytes,preallocate,"
            "index.interval.bytes,min.cleanable.dirty.ratio,unclean.leader.election.enable,delete.retention.ms,"
            "retention.bytes,message.timestamp.after.max.ms,message.timestamp.before.max.ms,segment.ms,"
            "segment.index.bytes").split(",")
    order = java_hash_map_order(keys)
    assert sorted(keys, key=order.get) == java
    # Five keys fit the first 16-bucket table.
    assert sorted(keys[:5], key=java_hash_map_order(keys[:5]).get) == \
        "compression.type,cleanup.policy,file.delete.delay.ms,delete.retention.ms,flush.messages".split(",")


_assignments = st.lists(st.tuples(st.text(max_size=8), st.lists(st.integers(0, 2**31 - 1), max_size=4)), max_size=4)


@given(_assignments, st.binary(max_size=8))
def test_consumer_assignment_reads_what_kafka_python_writes(topics, user_data):
    from kafka.protocol.old.consumer_protocol import ConsumerProtocolMemberAssignment_v0

    encoded = ConsumerProtocolMemberAssignment_v0(0, topics, user_data).encode()
    assert decode_assignment(encoded) == [(topic, p) for topic, partitions in topics for p in partitions]


@given(st.binary(max_size=64))
def test_consumer_assignment_never_raises(data):
    assert isinstance(decode_assignment(data), list)


@given(st.lists(st.tuples(st.text(max_size=8), st.integers(0, 2**31 - 1)), max_size=8))
def test_consumer_assignment_round_trips(pairs):
    by_topic = {}
    for topic, partition in pairs:
        by_topic.setdefault(topic, []).append(partition)
    assert decode_assignment(encode_assignment(pairs)) == [(t, p) for t, ps in by_topic.items() for p in ps]


@given(st.lists(st.text(max_size=8), max_size=4), st.binary(max_size=8) | st.none())
def test_subscription_reads_what_kafka_python_writes(topics, user_data):
    from kafka.protocol.old.consumer_protocol import ConsumerProtocolMemberMetadata_v0

    assert decode_subscription(ConsumerProtocolMemberMetadata_v0(0, topics, user_data).encode()) == topics
    # and kafka-python reads ours
    assert ConsumerProtocolMemberMetadata_v0.decode(encode_subscription(topics)).topics == topics


@given(st.binary(max_size=64))
def test_subscription_never_raises(data):
    assert isinstance(decode_subscription(data), list)


@given(st.dictionaries(st.text(min_size=1, max_size=6), st.lists(st.sampled_from("abc"), max_size=3), min_size=1,
                       max_size=5),
       st.dictionaries(st.sampled_from("abc"), st.integers(0, 12)))
def test_range_assignment_gives_each_partition_once(subscriptions, counts):
    assignment = range_assign(subscriptions, counts)
    assert set(assignment) == set(subscriptions)
    for topic, count in counts.items():
        subscribed = sorted(m for m, topics in subscriptions.items() if topic in topics)
        owned = {m: [p for t, p in assignment[m] if t == topic] for m in subscribed}
        if not subscribed:
            continue
        assert sorted(p for ps in owned.values() for p in ps) == list(range(count))  # each once
        sizes = [len(owned[m]) for m in subscribed]
        assert sizes == sorted(sizes, reverse=True) and max(sizes) - min(sizes) <= 1  # the first ones get more
        ranges = [owned[m] for m in subscribed if owned[m]]  # consecutive ranges, in member order
        assert [p for r in ranges for p in r] == list(range(count))
    for member, pairs in assignment.items():
        assert all(topic in subscriptions[member] for topic, _ in pairs)


@given(st.lists(st.tuples(st.sampled_from(["localhost", "127.0.0.1", "[::1]", "broker-1.example"]),
                          st.integers(1, 65535)), min_size=1, max_size=3))
def test_bootstrap_servers_parse(addresses):
    text = ",".join(f"{host}:{port}" for host, port in addresses)
    assert parse_bootstrap(text) == [(host.strip("[]"), port) for host, port in addresses]


@given(st.text())
def test_bootstrap_servers_parse_or_refuse(text):
    try:
        addresses = parse_bootstrap(text)
    except ValueError:
        return
    assert addresses and all(host and 0 < port <= 65535 for host, port in addresses)


# --- side by side with Kafka's own tools (slow: a JVM per tool) --------------------------------------

@pytest.mark.slow
def test_output_is_kafka_tools_output(group_broker):
    """``topic list|describe`` and ``group list|describe`` print what kafka-topics.sh and
    kafka-consumer-groups.sh (Kafka's jars, compat/.cache) print for the same broker state."""
    from kafka import KafkaConsumer, KafkaProducer

    from .test_java_tools import tool

    server = ["--bootstrap-server", group_broker.bootstrap]
    topics = "org.apache.kafka.tools.TopicCommand"
    groups = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
    assert odradek("topic", "create", "side.by.side", "--partitions", "3", "--config", "retention.ms=60000",
                   "--config", "max.message.bytes=2000000", *server).returncode == 0
    assert odradek("topic", "list", *server).stdout == tool(topics, *server, "--list")
    assert odradek("topic", "list", "--exclude-internal", *server).stdout == \
        tool(topics, *server, "--list", "--exclude-internal")
    assert odradek("topic", "describe", "side.by.side", *server).stdout == \
        tool(topics, *server, "--describe", "--topic", "side.by.side")
    for name in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"):
        assert odradek("topic", "create", f"side-{name}", *server).returncode == 0
    assert odradek("topic", "describe", "--exclude-internal", *server).stdout == \
        tool(topics, *server, "--describe", "--exclude-internal")

    producer = KafkaProducer(bootstrap_servers=group_broker.bootstrap)
    for partition in (0, 1, 1, 2, 2, 2):
        producer.send("side.by.side", value=b"v", partition=partition)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer("side.by.side", group_id="side-group", client_id="side-client",
                             bootstrap_servers=group_broker.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, max_poll_records=2)
    try:
        deadline = time.monotonic() + 20
        while not consumer.poll(500) and time.monotonic() < deadline:
            pass
        consumer.commit()
        live = tool(groups, *server, "--describe", "--group", "side-group")
        assert odradek("group", "describe", "side-group", *server).stdout == live
        assert "side-client" in live
        members = tool(groups, *server, "--describe", "--members", "--group", "side-group")
        assert odradek("group", "describe", "side-group", "--members", *server).stdout == members
    finally:
        consumer.close()
    assert odradek("group", "list", *server).stdout == tool(groups, *server, "--list")
    assert odradek("group", "describe", "side-group", *server).stdout == \
        tool(groups, *server, "--describe", "--group", "side-group")
    assert odradek("group", "describe", "side-group", "--members", *server).stdout == \
        tool(groups, *server, "--describe", "--members", "--group", "side-group")


@pytest.mark.parametrize("release", ["2.8", "0.11"])
def test_commands_against_an_older_kafka(broker_process, release):
    """The version each request is sent at follows the broker's ApiVersions: against a broker
    advertising an older Kafka the commands take the older shapes (FindCoordinator's single key,
    DeleteTopics' topic_names, Metadata instead of DescribeTopicPartitions, ApiVersions v0)."""
    broker = broker_process(None, f"odradek.advertise.kafka.version={release}")
    server = ["--bootstrap-server", broker.bootstrap]
    created = odradek("topic", "create", "old", "--partitions", "2", "--config", "retention.ms=60000", *server)
    assert created.returncode == 0, created.stdout + created.stderr
    described = odradek("topic", "describe", "old", *server).stdout.splitlines()
    assert described[0].endswith("\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: retention.ms=60000")
    # No DescribeTopicPartitions before 3.8: no ELR to show, as Kafka's admin client shows it.
    assert described[1] == "\tTopic: old\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\tElr: N/A\tLastKnownElr: N/A"
    assert odradek("produce", "old", "--key-separator", ":", *server, stdin="a:1\nb:2\nc:3\n").returncode == 0
    consumed = odradek("consume", "old", "--from-beginning", "--group", "elders", "--count", "3",
                       "--format", "{key}={value}", *server)
    assert sorted(consumed.stdout.splitlines()) == ["a=1", "b=2", "c=3"], consumed.stderr
    assert odradek("group", "list", *server).stdout == "elders\n"
    rows = [line.split() for line in odradek("group", "describe", "elders", *server).stdout.splitlines()[2:]]
    assert sorted(row[2] for row in rows) == ["0", "1"]
    assert all(row[3] == row[4] and row[5] == "0" for row in rows) and sum(int(row[4]) for row in rows) == 3
    assert odradek("topic", "delete", "old", *server).returncode == 0
    assert odradek("topic", "list", "--exclude-internal", *server).stdout == "\n"

