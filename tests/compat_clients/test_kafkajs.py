"""kafkajs (Node.js) against a real ``odradek serve``: compat/kafkajs/main.js, its npm packages
installed by compat/node_programs.py (``npm ci`` from the committed package-lock.json, cached in
compat/.cache/npm; compat/install_tools.sh installs them on a fresh machine, and without node
and npm the fixture raises: a failure, not a skip).

Codecs: none and gzip (kafkajs's own), snappy (kafkajs-snappy) and lz4 (kafkajs-lz4). No zstd:
@kafkajs/zstd's native dependency (cppzst) does not build on current Node."""

from __future__ import annotations

import pytest

from broker.test_server import create_topic
from groups.test_clients import produce_kafka_python
from compat_scripts import load_compat_script
from odradek.protocol import error_codes as E

from .programs import (GroupMember, check_acknowledged, check_batches, check_consumed, encode_records,
                       expected_records, run, run_group, stored_batches)

CODECS = ["none", "gzip", "snappy", "lz4"]
RECORDS, PARTITIONS = 40, 2


@pytest.fixture(scope="module")
def kafkajs():
    """(command, environment) that run compat/kafkajs/main.js."""
    return load_compat_script("node_programs").command("kafkajs")  # NodeUnavailable without node/npm


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("idempotent", [True, False], ids=["idempotent", "plain"])
def test_kafkajs_produce_consume(client_broker, setup_client, kafkajs, codec, idempotent):
    command, env = kafkajs
    topic = f"kafkajs-{codec}-{'idem' if idempotent else 'plain'}"
    assert create_topic(setup_client, topic, partitions=PARTITIONS).error_code == E.NONE
    records = expected_records(RECORDS, PARTITIONS)
    common = ["--bootstrap", client_broker.bootstrap, "--topic", topic]
    produced = run([*command, "produce", *common, "--codec", codec, *(["--idempotent"] if idempotent else [])],
                   encode_records(records), env=env)
    placed = check_acknowledged(produced, records)
    check_batches(stored_batches(setup_client, topic, PARTITIONS), codec, idempotent)
    consumed = run([*command, "consume", *common, "--group", f"{topic}-reader", "--count", str(RECORDS)], env=env)
    check_consumed(consumed, placed)


def test_kafkajs_consumer_group(client_broker, setup_client, kafkajs, tmp_path):
    command, env = kafkajs
    topic = group = "kafkajs-group"
    partitions = 4
    assert create_topic(setup_client, topic, partitions=partitions).error_code == E.NONE
    members = [GroupMember([*command, "group", "--bootstrap", client_broker.bootstrap, "--topic", topic,
                            "--group", group, "--client-id", f"kafkajs-{index}"],
                           f"kafkajs-{index}", tmp_path / f"kafkajs-{index}.log", env=env)
               for index in range(2)]
    run_group(client_broker, setup_client, members, topic, group, partitions,
              lambda values: produce_kafka_python(client_broker.bootstrap, topic, values, partitions=partitions),
              records=40)
    assert {e["protocol"] for m in members for e in m.events if e["event"] == "assigned"} == {"RoundRobinAssigner"}


def test_kafkajs_admin(client_broker, kafkajs):
    command, env = kafkajs
    topic = "kafkajs-admin"
    events = {e["event"]: e for e in run([*command, "admin", "--bootstrap", client_broker.bootstrap, "--topic", topic],
                                          env=env)}
    assert events["created"]["result"] is True
    assert events["created again"]["result"] is False  # TOPIC_ALREADY_EXISTS, which kafkajs answers as false
    assert events["listed"]["found"] is True
    assert events["described"] == {"event": "described", "name": topic, "partitions": [
        {"partition": p, "leader": 1, "error": 0} for p in range(3)]}
    assert events["configs"] == {"event": "configs", "error": 0, "retention.ms": "3600000", "cleanup.policy": "delete"}
    assert events["altered"]["retention.ms"] == "7200000"
    assert events["cluster"] == {"event": "cluster", "brokers": [client_broker.bootstrap], "controller": 1}
    assert events["grown"]["partitions"] == 5
    # Three records were produced to partition 4 with timestamps base, base + 1, base + 2.
    assert events["offsets"]["partitions"] == [
        {"partition": p, "low": 0, "high": 3 if p == 4 else 0, "offset": 3 if p == 4 else 0} for p in range(5)]
    assert events["offsets by time"]["partitions"] == [
        {"partition": p, "offset": 1 if p == 4 else 0} for p in range(5)]
    assert (events["records deleted"]["low"], events["records deleted"]["high"]) == (2, 3)
    assert events["deleted"]["still listed"] is False
    # Deleting it again: UNKNOWN_TOPIC_OR_PARTITION, which kafkajs retries until it gives up.
    assert (events["deleted again"]["error"], events["deleted again"]["cause"]) == (
        "KafkaJSNumberOfRetriesExceeded", "UNKNOWN_TOPIC_OR_PARTITION")
