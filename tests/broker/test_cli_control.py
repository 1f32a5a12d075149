"""``odradek reset | snapshot | clients | activity`` against a running broker's control API."""

from __future__ import annotations

import json
import subprocess

import pytest
from kafka import KafkaProducer

from odradek import Broker

from .conftest import subprocess_env
from .test_cli import ODRADEK, run_odradek


@pytest.fixture(scope="module")
def broker():
    with Broker(memory=True) as running:
        yield running


def odradek(broker, *args, env_url: bool = False):
    if env_url:
        return subprocess.run([ODRADEK, *args], capture_output=True, timeout=30, text=True,
                              env={**subprocess_env(), "ODRADEK_CONTROL": broker.control_url})
    return run_odradek(*args, "--control", broker.control_url)


def test_reset_snapshot_clients_and_activity(broker, tmp_path):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, client_id="cli-probe")
    producer.send("cli-topic", b"one").get(timeout=10)

    saved = odradek(broker, "snapshot", "save", "one-record")
    assert saved.returncode == 0 and saved.stdout.startswith("saved one-record (")
    assert odradek(broker, "snapshot", "list").stdout.split("\t")[0] == "one-record"
    producer.close()  # a producer still connected would create its topic again right after the reset

    reset = odradek(broker, "reset", env_url=True)
    assert reset.returncode == 0 and reset.stdout.startswith("reset in "), reset.stderr
    assert broker.status()["topics"] == 0

    restored = odradek(broker, "snapshot", "restore", "one-record")
    assert restored.returncode == 0, restored.stderr
    assert [record["value"] for record in broker.records("cli-topic")] == ["one"]

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, client_id="cli-probe")
    producer.send("cli-topic", b"two").get(timeout=10)
    producer.close()
    emptied = odradek(broker, "reset", "cli-topic")
    assert emptied.returncode == 0 and emptied.stdout.strip() == "emptied cli-topic"
    assert broker.records("cli-topic") == []

    clients = odradek(broker, "clients").stdout.splitlines()
    assert any("\tcli-probe\tkafka-python 3" in line and "Produce:" in line for line in clients), clients

    lines = odradek(broker, "activity", "--client-id", "cli-probe", "--api", "Produce").stdout.splitlines()
    assert lines and all(" cli-probe Produce v" in line and "cli-topic[0] NONE" in line for line in lines)
    events = [json.loads(line) for line in odradek(broker, "activity", "--topic", "cli-topic", "--json").stdout.splitlines()]
    assert {event["api"] for event in events} >= {"Produce", "Metadata"}

    assert odradek(broker, "snapshot", "delete", "one-record").returncode == 0


def test_errors_name_the_cause(broker):
    missing = odradek(broker, "snapshot", "restore", "nope")
    assert missing.returncode == 1 and missing.stderr.strip() == "odradek: no snapshot nope"
    unknown_topic = odradek(broker, "reset", "no-such-topic")
    assert unknown_topic.returncode == 1 and "no topic no-such-topic" in unknown_topic.stderr
    assert odradek(broker, "snapshot", "save").returncode == 2
    unreachable = run_odradek("reset", "--control", "http://127.0.0.1:1")
    assert unreachable.returncode == 1 and "cannot reach the control API" in unreachable.stderr
    nowhere = run_odradek("clients")
    assert nowhere.returncode == 2 and "no broker to talk to" in nowhere.stderr
