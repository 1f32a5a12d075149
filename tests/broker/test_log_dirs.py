"""A real ``odradek serve`` with two entries in ``log.dirs``: partitions spread over both,
DescribeLogDirs reports each directory with its partitions, every directory is a Kafka log dir
of its own, and after a restart everything is read back from where it was placed."""

from __future__ import annotations

import subprocess
import sys

from odradek.protocol.messages.describe_log_dirs import DescribeLogDirsRequest
from odradek.protocol.records.batch import Record, build_batch
from odradek.storage.checkpoints import read_meta_properties
from odradek.storage.fs import OsFileSystem

from .conftest import RawClient, subprocess_env
from .test_server import create_topic, fetch_request, produce, records_of


def placement(client) -> dict[str, dict[str, list[int]]]:
    """log dir -> topic -> partitions, from DescribeLogDirs v4."""
    answer = client.request(DescribeLogDirsRequest(topics=None), 4)
    assert answer.error_code == 0
    found = {}
    for result in answer.results:
        assert result.error_code == 0 and result.total_bytes > 0
        found[result.log_dir] = {topic.name: sorted(p.partition_index for p in topic.partitions)
                                 for topic in result.topics}
    return found


def read_all(client, topic, partition):
    values, offset = [], 0
    while True:
        data = client.request(fetch_request(topic, partition, offset), 12).responses[0].partitions[0]
        assert data.error_code == 0
        batch_records = records_of(data.records)
        if not batch_records:
            return values
        values += [record.value for record in batch_records]
        offset += len(batch_records)


def test_two_log_dirs_spread_partitions_and_survive_a_restart(broker_process, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    dirs = f"log.dirs={one},{two}"
    first = broker_process(one, dirs)
    client = RawClient(first.host, first.port)
    assert create_topic(client, "spread", partitions=4).error_code == 0
    assert create_topic(client, "single").error_code == 0
    expected = {}
    for topic, partitions in (("spread", 4), ("single", 1)):
        for index in range(partitions):
            values = [b"%s-%d-%d" % (topic.encode(), index, i) for i in range(3)]
            answer = produce(client, topic, index, build_batch([Record(i, 0, None, v) for i, v in enumerate(values)]))
            assert (answer.error_code, answer.base_offset) == (0, 0)
            expected[(topic, index)] = values
    # Fewest partitions first, the first directory on a tie: one, two, one, two, then one.
    layout = placement(client)
    assert layout == {str(one): {"spread": [0, 2], "single": [0]}, str(two): {"spread": [1, 3]}}
    for log_dir, topics in layout.items():
        for topic, indexes in topics.items():
            for index in indexes:
                assert (tmp_path / log_dir / f"{topic}-{index}" / "00000000000000000000.log").exists()
    client.close()
    assert first.stop() == 0

    fs = OsFileSystem()
    metas = [read_meta_properties(fs, str(path / "meta.properties")) for path in (one, two)]
    assert metas[0]["cluster.id"] == metas[1]["cluster.id"] and metas[0]["node.id"] == metas[1]["node.id"] == "1"
    assert metas[0]["directory.id"] != metas[1]["directory.id"]
    for path in (one, two):
        assert (path / ".kafka_cleanshutdown").exists() and (path / "recovery-point-offset-checkpoint").exists()

    second = broker_process(one, dirs)
    client = RawClient(second.host, second.port)
    assert placement(client) == layout
    for (topic, index), values in expected.items():
        assert read_all(client, topic, index) == values
        assert produce(client, topic, index, build_batch([Record(0, 0, None, b"after")])).base_offset == 3
    # Asking for some partitions: every directory is answered, only with what it holds.
    answer = client.request(DescribeLogDirsRequest(topics=[DescribeLogDirsRequest.DescribableLogDirTopic(
        topic="spread", partitions=[1])]), 4)
    assert {result.log_dir: [(t.name, [p.partition_index for p in t.partitions]) for t in result.topics]
            for result in answer.results} == {str(one): [], str(two): [("spread", [1])]}
    client.close()


def test_a_log_dir_named_twice_is_refused_at_start(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "odradek.broker.cli", "serve", "--override", "listeners=PLAINTEXT://127.0.0.1:0",
         "--override", f"log.dirs={tmp_path / 'a'},{tmp_path / 'a'}/"],
        capture_output=True, text=True, timeout=30, env=subprocess_env())
    assert result.returncode == 2
    assert "log.dirs" in result.stderr and "Duplicate log directory found" in result.stderr
