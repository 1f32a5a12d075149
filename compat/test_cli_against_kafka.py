"""odradek's developer commands (``odradek topic|produce|consume|group``, broker/cli_dev.py)
against a real Apache Kafka broker (the Maven jars, KRaft combined mode, as
compat/test_same_answers_as_kafka.py starts it): the small client in broker/admin_client.py and
the group membership of ``consume --group`` work with Kafka's own coordinator, and the output
is what Kafka's tools print for the same broker.

Slow: a Kafka JVM for the module, and a JVM per Kafka tool. Java and Maven are required.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "compat"))
sys.path.insert(0, str(REPO / "tests"))
import kafka_jars  # noqa: E402  (a sibling script)
from test_same_answers_as_kafka import running_kafka  # noqa: E402

from broker.conftest import subprocess_env  # noqa: E402

pytestmark = pytest.mark.slow

ODRADEK = str(Path(sys.executable).parent / "odradek")


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    """The bootstrap server of a running Kafka broker (no wait before a new group's first
    rebalance, as in the server.properties Kafka ships for development)."""
    with running_kafka(tmp_path_factory.mktemp("kafka"), ("group.initial.rebalance.delay.ms=0",)) as (host, port):
        yield f"{host}:{port}"


def odradek(kafka, *args, stdin=None):
    return subprocess.run([ODRADEK, *args, "--bootstrap-server", kafka], capture_output=True, text=True,
                          input=stdin, timeout=60, env=subprocess_env())


def tool(kafka, main_class: str, *args: str) -> str:
    result = subprocess.run(kafka_jars.java_command(main_class, ["--bootstrap-server", kafka, *args]),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


TOPICS = "org.apache.kafka.tools.TopicCommand"
GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def test_topics_records_and_groups_on_kafka(kafka):
    created = odradek(kafka, "topic", "create", "cli", "--partitions", "3", "--config", "retention.ms=60000")
    assert created.stdout == "Created topic cli.\n", created.stderr
    exists = odradek(kafka, "topic", "create", "cli")
    assert (exists.returncode, exists.stdout) == (1, "Error while executing topic command : Topic 'cli' already exists.\n")
    assert odradek(kafka, "topic", "describe", "cli").stdout == tool(kafka, TOPICS, "--describe", "--topic", "cli")
    assert odradek(kafka, "topic", "list").stdout == tool(kafka, TOPICS, "--list")

    assert odradek(kafka, "produce", "cli", "--key-separator", ":", stdin="a:1\nb:2\nc:3\nd:4\n").returncode == 0
    read = odradek(kafka, "consume", "cli", "--from-beginning", "--count", "4", "--format", "{key}={value}")
    assert sorted(read.stdout.splitlines()) == ["a=1", "b=2", "c=3", "d=4"], read.stderr

    # A member of a group on Kafka's own coordinator: described by Kafka's tool while it reads.
    member = subprocess.Popen([ODRADEK, "consume", "cli", "--from-beginning", "--group", "cli-group",
                               "--bootstrap-server", kafka], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=subprocess_env())
    try:
        lines = [member.stdout.readline() for _ in range(4)]
        assert sorted(lines) == [b"1\n", b"2\n", b"3\n", b"4\n"]
        deadline = time.monotonic() + 20
        while True:  # its commit follows the records it printed
            described = tool(kafka, GROUPS, "--describe", "--group", "cli-group")
            rows = [line.split() for line in described.splitlines()[2:]]
            if rows and all(row[3] == row[4] for row in rows):
                break
            assert time.monotonic() < deadline, described
        assert {row[-1] for row in rows} == {"odradek-cli"} and len(rows) == 3
        assert odradek(kafka, "group", "describe", "cli-group").stdout == described
        assert odradek(kafka, "group", "describe", "cli-group", "--members").stdout == \
            tool(kafka, GROUPS, "--describe", "--members", "--group", "cli-group")
        member.send_signal(2)  # SIGINT
        _, stderr = member.communicate(timeout=30)
    finally:
        if member.poll() is None:
            member.kill()
            member.wait()
    assert member.returncode == 130 and stderr.endswith(b"Processed a total of 4 messages\n"), stderr
    left = odradek(kafka, "group", "describe", "cli-group")
    assert "has no active members" in left.stderr and left.stdout == tool(kafka, GROUPS, "--describe", "--group",
                                                                            "cli-group")
    assert odradek(kafka, "group", "list").stdout == tool(kafka, GROUPS, "--list")

    assert odradek(kafka, "topic", "delete", "cli").returncode == 0
    assert "cli" not in odradek(kafka, "topic", "list").stdout.splitlines()
