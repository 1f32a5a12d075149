"""IBM/sarama (Go) against a real ``odradek serve``: compat/sarama/main.go, built by
compat/go_programs.py (cached in compat/.cache/go; compat/install_tools.sh builds it on a fresh
machine, and without go the fixture raises: a failure, not a skip).

Sarama picks its protocol versions from ``config.Version``: each test runs with the newest
version Sarama knows (4.3.1: Produce v9+, Fetch v12+, flexible versions), Sarama's default
(2.8.0) and 0.11.0 (the first with record batches, idempotence and headers: Produce v3,
Fetch v4-v5, JoinGroup v1-v2, ...), as a client pinned to an old Kafka speaks."""

from __future__ import annotations

import os

import pytest

from broker.test_server import create_topic
from groups.test_clients import produce_kafka_python
from compat_scripts import load_compat_script
from odradek.protocol import error_codes as E

from .programs import (BASE_TIMESTAMP, GroupMember, check_acknowledged, check_batches, check_consumed, encode_records,
                       expected_records, run, run_group, stored_batches)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
NEWEST, DEFAULT, OLDEST = "4.3.1", "default", "0.11.0.0"
VERSIONS = [NEWEST, DEFAULT, OLDEST]
# Before record batches: Sarama writes magic 1 message sets (Produce v2, up-converted on append)
# and reads with Fetch v3 (down-converted back); no headers, no idempotence.
MESSAGE_SETS = "0.10.2.0"
RECORDS, PARTITIONS = 40, 2


@pytest.fixture(scope="module")
def sarama():
    return str(load_compat_script("go_programs").build("sarama"))  # GoUnavailable without go


def cases():
    for version in [*VERSIONS, MESSAGE_SETS]:
        for codec in CODECS:
            if codec == "zstd" and version in (OLDEST, MESSAGE_SETS):
                continue  # Sarama refuses zstd before 2.1.0 (Produce v7), as Kafka does
            for idempotent in [True, False] if version != MESSAGE_SETS else [False]:
                yield pytest.param(version, codec, idempotent,
                                   id=f"{version}-{codec}-{'idempotent' if idempotent else 'plain'}")


@pytest.mark.parametrize("version, codec, idempotent", list(cases()))
def test_sarama_produce_consume(client_broker, setup_client, sarama, version, codec, idempotent):
    topic = f"sarama-{version}-{codec}-{'idem' if idempotent else 'plain'}".replace(".", "")
    assert create_topic(setup_client, topic, partitions=PARTITIONS).error_code == E.NONE
    records = expected_records(RECORDS, PARTITIONS)
    if version == MESSAGE_SETS:
        records = [dict(record, headers=[]) for record in records]
    common = ["-bootstrap", client_broker.bootstrap, "-topic", topic, "-version", version]
    produced = run([sarama, "produce", *common, "-codec", codec, *(["-idempotent"] if idempotent else [])],
                   encode_records(records))
    placed = check_acknowledged(produced, records)
    check_batches(stored_batches(setup_client, topic, PARTITIONS), codec, idempotent)
    at = BASE_TIMESTAMP + 10_500
    consumed = run([sarama, "consume", *common, "-partitions", str(PARTITIONS), "-count", str(RECORDS),
                    "-offset-time", str(at)])
    check_consumed(consumed, placed)
    # ListOffsets by timestamp: the first offset whose timestamp is at or after it.
    offsets = {e["partition"]: e for e in consumed if e["event"] == "offsets"}
    for partition in range(PARTITIONS):
        stored = sorted(offset for (p, offset), record in placed.items()
                        if p == partition and record["timestamp"] >= at)
        assert (offsets[partition]["for time"], offsets[partition]["oldest"], offsets[partition]["newest"]) == (
            stored[0], 0, RECORDS // PARTITIONS)


# Each balance strategy with the newest protocol, and the old versions once each (about 7 s a case).
GROUP_CASES = [("range", NEWEST), ("roundrobin", NEWEST), ("sticky", NEWEST), ("range", DEFAULT), ("sticky", OLDEST)]


@pytest.mark.parametrize("strategy, version", GROUP_CASES, ids=[f"{s}-{v}" for s, v in GROUP_CASES])
def test_sarama_consumer_group(client_broker, setup_client, sarama, strategy, version, tmp_path):
    topic = group = f"sarama-group-{strategy}-{version}".replace(".", "")
    partitions = 4
    assert create_topic(setup_client, topic, partitions=partitions).error_code == E.NONE
    members = [GroupMember([sarama, "group", "-bootstrap", client_broker.bootstrap, "-topic", topic, "-group", group,
                            "-strategy", strategy, "-version", version, "-client-id", f"sarama-{index}"],
                           f"sarama-{index}", tmp_path / f"sarama-{index}.log")
               for index in range(2)]
    run_group(client_broker, setup_client, members, topic, group, partitions,
              lambda values: produce_kafka_python(client_broker.bootstrap, topic, values, partitions=partitions),
              records=40)


@pytest.mark.parametrize("version", VERSIONS)
def test_sarama_cluster_admin(client_broker, sarama, version):
    topic = f"sarama-admin-{version}".replace(".", "")
    events = {e["event"]: e for e in run([sarama, "admin", "-bootstrap", client_broker.bootstrap, "-topic", topic,
                                           "-version", version])}
    assert "created" in events
    assert events["created again"]["error"] == "kafka server: Topic with this name already exists"
    assert (events["listed"]["found"], events["listed"]["partitions"]) == (True, 3)
    assert events["described"] == {"event": "described", "name": topic, "error": None, "partitions": 3,
                                   "leaders": [1, 1, 1]}
    assert (events["configs"]["retention.ms"], events["configs"]["cleanup.policy"]) == ("3600000", "delete")
    assert events["altered"]["retention.ms"] == "7200000"
    if version != OLDEST:  # IncrementalAlterConfigs came with Kafka 2.3
        assert events["incrementally altered"] == {"event": "incrementally altered", "retention.ms": "604800000",
                                                   "segment.ms": "7200000"}  # deleted: back to the default
    assert events["cluster"]["brokers"] == [client_broker.bootstrap] and events["cluster"]["controller"] == 1
    if version != OLDEST:  # Kafka 0.11 had no CreatePartitions: Sarama does not send it
        assert events["grown"]["partitions"] == 5
    assert (events["records deleted"]["oldest"], events["records deleted"]["newest"]) == (2, 3)
    if version != OLDEST:  # DescribeLogDirs came with Kafka 1.0
        assert events["log dirs"]["paths"] == [os.path.realpath(client_broker.data_dir)]
        sizes = events["log dirs"]["sizes"]
        assert set(sizes) == {str(p) for p in range(5)} and sizes["0"] > 0  # the 3 records (none removed yet)
        assert all(sizes[str(p)] == 0 for p in range(1, 5))
    assert events["deleted"]["still listed"] is False
    assert events["deleted again"]["error"] == ("kafka server: Request was for a topic or partition that does not "
                                                "exist on this broker")
