"""Kafka's own DumpLogSegments reads an odradek partition directory: every batch valid, every
record's offset and payload as written, index entries matching the log. Slow: it fetches Kafka's
jars from Maven Central on first use (compat/kafka_jars.py) and starts a JVM."""

import os
import re
import shutil
import sys
import uuid

import pytest

from odradek.storage.config import LogConfig
from odradek.storage.log_directory import LogDirectory

from storage_batches import make_batch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "compat"))

pytestmark = pytest.mark.slow

DUMP_LOG_SEGMENTS = "org.apache.kafka.tools.DumpLogSegments"  # kafka.tools.* before Kafka 4.0


@pytest.mark.skipif(shutil.which("java") is None or shutil.which("mvn") is None, reason="needs java and mvn")
@pytest.mark.parametrize("timestamp_type", ["CreateTime", "LogAppendTime"])
def test_dump_log_segments_reads_our_segments(tmp_path, timestamp_type):
    import kafka_jars

    config = LogConfig(segment_bytes=700, index_interval_bytes=100, message_timestamp_type=timestamp_type,
                       message_timestamp_before_max_ms=2**63 - 1, message_timestamp_after_max_ms=2**62)
    directory = LogDirectory.open(str(tmp_path), node_id=1, cluster_id="odradek-test", default_config=config)
    log = directory.create_log("dumped", 0, topic_id=uuid.uuid4())
    expected = []
    for i in range(25):
        values = [b"value-%d-%d" % (i, j) for j in range(i % 3 + 1)]
        result = log.append(make_batch(values), leader_epoch=7)
        expected.extend((result.first_offset + j, value) for j, value in enumerate(values))
    directory.close()
    partition_dir = tmp_path / "dumped-0"
    files = sorted(str(p) for p in partition_dir.iterdir() if p.suffix in (".log", ".index", ".timeindex"))
    assert len(files) >= 6  # several segments

    result = kafka_jars.run_java(DUMP_LOG_SEGMENTS, ["--deep-iteration", "--print-data-log", "--files", ",".join(files)],
                                 timeout=180)
    out = result.stdout
    assert "isvalid: false" not in out and "Mismatches" not in out and "mismatch" not in out.lower(), out
    batch_lines = [line for line in out.splitlines() if line.startswith("baseOffset:")]
    assert len(batch_lines) == 25 and all("isvalid: true" in line and "partitionLeaderEpoch: 7" in line
                                          for line in batch_lines)
    if timestamp_type == "LogAppendTime":
        assert all("LogAppendTime:" in line for line in batch_lines)
    records = re.findall(r"^\| offset: (\d+) .* payload: (\S+)$", out, re.M)
    assert [(int(o), p.encode()) for o, p in records] == expected
    index_entries = re.findall(r"^offset: (\d+) position: (\d+)$", out, re.M)
    assert index_entries, "no offset index entries were dumped"
