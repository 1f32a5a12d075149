"""Kafka's own DumpLogSegments (from the Maven Central jars, compat/kafka_jars.py) reads a
partition directory that odradek.storage wrote.

What is checked, on a log of several segments holding every codec (none, gzip, lz4, zstd,
snappy), null and non-null keys, null and empty values, headers, an idempotent producer's
batches, CreateTime and LogAppendTime:

* ``--deep-iteration --print-data-log``: every batch valid (CRC), with the base/last offset,
  count, codec, producer id/epoch/sequence and leader epoch we wrote; every record's offset,
  timestamp, key, payload and header keys (the tool prints no header values); no index or time
  index complaint (the tool cross-checks each index entry against the log in this mode); the
  producer snapshots (``.snapshot``) parsed by Kafka's reader;
* ``--verify-index-only``: no mismatch between the indexes and the log;
* ``--index-sanity-check``: every ``.index`` and ``.timeindex`` passes the check a Kafka broker
  runs at start to decide whether to rebuild an index;
* and, so that the checks above are known to be able to fail, a log whose offset index has one
  entry naming the wrong offset is reported by the tool.

Java and Maven are required: without them the session fixture raises (the test fails, it is
not skipped). The first run copies the jars into compat/.cache/ (about 55 MB: 25 s with a warm
~/.m2, about 40 s from Maven Central); later runs start four JVMs, 1-4 s each.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import time
import uuid
from pathlib import Path

import pytest

from odradek.protocol.records import compression
from odradek.protocol.records.batch import Record, build_batch
from odradek.storage.config import LogConfig
from odradek.storage.log_directory import LogDirectory

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000_000
LEADER_EPOCH = 7
PRODUCER_ID = 4242
PRODUCER_EPOCH = 3
CODECS = [compression.NONE, compression.GZIP, compression.LZ4, compression.ZSTD, compression.SNAPPY]

# Lines DumpLogSegments prints when something is wrong (its own messages, Kafka 4.x).
PROBLEM_MARKERS = (
    "isvalid: false",
    "Mismatches in",
    "The following indexed offsets are not found",
    "Found timestamp mismatch",
    "Found out of order timestamp",
    "invalid bytes at the end",
    "Error at",
    "Unknown record type",
    "Ignoring unknown file",
    "Exception",
)


def dump(kafka_jars, files, *options, check=True):
    """Run the tool; its dump goes to stdout, its error report ("Mismatches in", ...) to stderr."""
    return kafka_jars.run_java(kafka_jars.DUMP_LOG_SEGMENTS,
                               [*options, "--files", ",".join(str(f) for f in files)],
                               timeout=120, check=check)


def problems(output: str, segment_bases: dict[str, int]) -> list[str]:
    """Lines of ``output`` reporting a problem. One report is not a problem: DumpLogSegments
    (4.x) starts each file's "previous offset" at -1, so a segment whose base offset is N > 0
    is always reported as "-1 is followed by N" -- Kafka-written segments get the same line."""
    found = []
    lines = output.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("Non-consecutive offsets in "):
            name = Path(line[len("Non-consecutive offsets in "):].strip()).name
            pairs = []
            for follower in lines[number + 1:]:
                if not follower.startswith("  "):
                    break
                pairs.append(follower.strip())
            if pairs != [f"-1 is followed by {segment_bases.get(name)}"]:
                found.append(f"{line}: {pairs}")
        elif any(marker in line for marker in PROBLEM_MARKERS):
            found.append(line)
    return found


# ---------------------------------------------------------------------------------- the log
def record_spec(batch_number: int, index: int) -> dict:
    """What record ``index`` of batch ``batch_number`` holds: null keys and values, an empty
    value, non-ASCII UTF-8, headers (one with a null value), repetitive text that compresses."""
    key = None if index % 4 == 0 else f"key-{batch_number}-{index}"
    if index == 2:
        value = None
    elif index == 3:
        value = ""
    else:
        value = f"value {batch_number}/{index} grüße € " + "abc" * (index + batch_number % 5)
    headers = []
    if index % 3 == 1:
        headers = [("trace-id", f"t{batch_number}.{index}".encode()), ("empty", None)]
    return {"key": key, "value": value, "headers": headers, "timestamp_delta": index * 7}


def fill_partition(directory: LogDirectory, topic: str, timestamp_type: str):
    """Append the test batches to ``<topic>-0``; return the expected batches and records."""
    config = LogConfig(segment_bytes=600, index_interval_bytes=120, message_timestamp_type=timestamp_type)
    log = directory.create_log(topic, 0, topic_id=uuid.uuid4(), config=config)
    batches, records = [], []
    sequence = 0
    for batch_number in range(15):
        codec = CODECS[batch_number % len(CODECS)]
        count = 1 + batch_number % 6
        specs = [record_spec(batch_number, i) for i in range(count)]
        idempotent = batch_number % 2 == 1
        base_timestamp = T0 + batch_number * 1000
        payload = build_batch(
            [Record(i, spec["timestamp_delta"],
                    None if spec["key"] is None else spec["key"].encode(),
                    None if spec["value"] is None else spec["value"].encode(),
                    spec["headers"]) for i, spec in enumerate(specs)],
            base_timestamp=base_timestamp, compression=codec,
            producer_id=PRODUCER_ID if idempotent else -1,
            producer_epoch=PRODUCER_EPOCH if idempotent else -1,
            base_sequence=sequence if idempotent else -1)
        result = log.append(payload, leader_epoch=LEADER_EPOCH)
        stamped = result.log_append_time
        batches.append({
            "base_offset": result.first_offset, "last_offset": result.last_offset, "count": count,
            "codec": compression.codec_name(codec), "producer_id": PRODUCER_ID if idempotent else -1,
            "producer_epoch": PRODUCER_EPOCH if idempotent else -1,
            "base_sequence": sequence if idempotent else -1,
        })
        for i, spec in enumerate(specs):
            records.append({
                "offset": result.first_offset + i,
                "timestamp": stamped if stamped >= 0 else base_timestamp + spec["timestamp_delta"],
                "key": spec["key"], "value": spec["value"],
                "header_keys": [name for name, _ in spec["headers"]],
                "sequence": sequence + i if idempotent else -1,
            })
        if idempotent:
            sequence += count
    return batches, records


TIMESTAMP_TYPES = {"create-time": "CreateTime", "append-time": "LogAppendTime"}


def build_data_dir(root: Path) -> dict:
    """One data directory, one partition per timestamp type, closed cleanly (as a broker
    leaves it at shutdown); returns {topic: (batches, records)}."""
    directory = LogDirectory.open(str(root), node_id=1, cluster_id="odradek-dump-test")
    expected = {topic: fill_partition(directory, topic, kind) for topic, kind in TIMESTAMP_TYPES.items()}
    directory.close()
    return expected


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("dumped")
    return root, build_data_dir(root)


@pytest.fixture(scope="module")
def deep_dump(kafka_jars, data_dir):
    """One DumpLogSegments run over every segment file and producer snapshot of both
    partitions: ``--deep-iteration --print-data-log``."""
    root, _ = data_dir
    files = [f for topic in TIMESTAMP_TYPES for f in segment_files(root / f"{topic}-0", snapshots=True)]
    return dump(kafka_jars, files, "--deep-iteration", "--print-data-log")


def sections(output: str) -> dict[Path, list[str]]:
    """The dump split by file: {path: the lines printed under its "Dumping <path>" line}."""
    found: dict[Path, list[str]] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("Dumping "):
            current = found.setdefault(Path(line[len("Dumping "):]), [])
        elif current is not None:
            current.append(line)
    return found


def segment_files(partition_dir: Path, snapshots: bool = False) -> list[Path]:
    suffixes = (".log", ".index", ".timeindex") + ((".snapshot",) if snapshots else ())
    return sorted(p for p in partition_dir.iterdir() if p.suffix in suffixes)


def segment_bases(root: Path) -> dict[str, int]:
    return {p.name: int(p.stem) for p in root.glob("*-0/*.log")}


# ------------------------------------------------------------------------- output parsing
_BATCH_LINE = re.compile(
    r"^baseOffset: (\d+) lastOffset: (\d+) count: (\d+) baseSequence: (-?\d+) lastSequence: (-?\d+) "
    r"producerId: (-?\d+) producerEpoch: (-?\d+) partitionLeaderEpoch: (-?\d+) isTransactional: (\w+) "
    r"isControl: (\w+) .* position: (\d+) (CreateTime|LogAppendTime): (-?\d+) size: (\d+) magic: (\d) "
    r"compresscodec: (\w+) crc: (\d+) isvalid: (\w+)$")
_RECORD_LINE = re.compile(
    r"^\| offset: (\d+) (CreateTime|LogAppendTime): (-?\d+) keySize: (-?\d+) valueSize: (-?\d+) "
    r"sequence: (-?\d+) headerKeys: \[([^\]]*)\](.*)$")


def parse_record(line: str) -> dict:
    match = _RECORD_LINE.match(line)
    assert match, f"unexpected record line: {line!r}"
    offset, timestamp_type, timestamp, key_size, value_size, sequence, header_keys, rest = match.groups()
    key_size, value_size = int(key_size), int(value_size)
    key = value = None
    # The tool prints " key: <key>" when the key is not null, then " payload: <value>" when the
    # value is not null; our keys are ASCII, so keySize (bytes) is also its length in characters.
    if key_size >= 0:
        assert rest.startswith(" key: "), line
        key, rest = rest[6:6 + key_size], rest[6 + key_size:]
    if value_size >= 0:
        assert rest.startswith(" payload: "), line
        value, rest = rest[10:], ""
        assert len(value.encode()) == value_size, line
    assert rest == "", line
    return {"offset": int(offset), "timestamp_type": timestamp_type, "timestamp": int(timestamp),
            "key": key, "value": value, "header_keys": header_keys.split(",") if header_keys else [],
            "sequence": int(sequence)}


# ------------------------------------------------------------------------------------ tests
def test_dump_reports_no_problem(deep_dump, data_dir):
    root, _ = data_dir
    assert problems(deep_dump.stdout + deep_dump.stderr, segment_bases(root)) == [], deep_dump.stderr


@pytest.mark.parametrize("topic", list(TIMESTAMP_TYPES))
def test_dump_shows_every_batch_and_record(deep_dump, data_dir, topic):
    root, expected = data_dir
    expected_batches, expected_records = expected[topic]
    timestamp_type = TIMESTAMP_TYPES[topic]
    partition_dir = root / f"{topic}-0"
    dumped = sections(deep_dump.stdout)
    lines = [line for path in sorted(dumped) if path.parent == partition_dir and path.suffix == ".log"
             for line in dumped[path]]
    assert len([p for p in dumped if p.parent == partition_dir and p.suffix == ".log"]) >= 4  # several segments

    batch_lines = [_BATCH_LINE.match(line) for line in lines if line.startswith("baseOffset:")]
    assert all(batch_lines), lines
    seen_batches = [{
        "base_offset": int(m[1]), "last_offset": int(m[2]), "count": int(m[3]), "codec": m[16],
        "producer_id": int(m[6]), "producer_epoch": int(m[7]), "base_sequence": int(m[4]),
    } for m in batch_lines]
    assert seen_batches == expected_batches
    assert {m[8] for m in batch_lines} == {str(LEADER_EPOCH)}
    assert {(m[9], m[10], m[12], m[15], m[18]) for m in batch_lines} == {("false", "false", timestamp_type, "2", "true")}

    seen_records = [parse_record(line) for line in lines if line.startswith("| offset:")]
    assert {r.pop("timestamp_type") for r in seen_records} == {timestamp_type}
    assert seen_records == expected_records

    # Every segment's indexes were dumped; each entry names a batch boundary the tool found in
    # the log (checked by the tool itself: a mismatch would be in test_dump_reports_no_problem).
    index_entries = [line for path, found in dumped.items() if path.parent == partition_dir
                     and path.suffix == ".index" for line in found if re.match(r"^offset: \d+ position: \d+$", line)]
    time_entries = [line for path, found in dumped.items() if path.parent == partition_dir
                    and path.suffix == ".timeindex" for line in found if re.match(r"^timestamp: -?\d+ offset: \d+$", line)]
    assert len(index_entries) >= len(seen_batches) // 4 and len(time_entries) >= 4


def test_producer_snapshots_are_read_by_kafka(deep_dump, data_dir):
    """Our ``.snapshot`` files (producer state) parse with Kafka's reader (CRC, version, entry
    layout) and name the idempotent producer's last batch."""
    root, expected = data_dir
    expected_batches, _ = expected["create-time"]
    partition_dir = root / "create-time-0"
    snapshots = sorted(partition_dir.glob("*.snapshot"))
    assert snapshots, "no producer snapshot written"
    dumped = sections(deep_dump.stdout)
    entry = re.compile(
        r"^producerId: (-?\d+) producerEpoch: (-?\d+) coordinatorEpoch: (-?\d+) .* "
        r"firstSequence: (-?\d+) lastSequence: (-?\d+) lastOffset: (-?\d+) offsetDelta: (-?\d+) "
        r"timestamp: (-?\d+)$")
    entries = [entry.match(line) for path in snapshots for line in dumped[path]]
    assert len(entries) == len(snapshots) and all(entries), {p: dumped[p] for p in snapshots}
    last = [b for b in expected_batches if b["producer_id"] == PRODUCER_ID][-1]
    producer_id, epoch, _, first_sequence, last_sequence, last_offset, offset_delta, _ = map(int, entries[-1].groups())
    assert (producer_id, epoch) == (PRODUCER_ID, PRODUCER_EPOCH)
    assert (first_sequence, last_sequence) == (last["base_sequence"], last["base_sequence"] + last["count"] - 1)
    assert (last_offset, offset_delta) == (last["last_offset"], last["count"] - 1)


def test_verify_index_only_and_sanity_check_pass(kafka_jars, data_dir):
    root, _ = data_dir
    files = [f for topic in TIMESTAMP_TYPES for f in segment_files(root / f"{topic}-0")]
    verified = dump(kafka_jars, files, "--verify-index-only")
    assert problems(verified.stdout + verified.stderr, segment_bases(root)) == [], verified.stderr

    sanity = dump(kafka_jars, files, "--index-sanity-check").stdout
    passed = {Path(p) for p in re.findall(r"^(\S+) passed sanity check\.$", sanity, re.M)}
    empty = {Path(p) for p in re.findall(r"^(\S+) is empty\.$", sanity, re.M)}
    indexes = {p for p in files if p.suffix in (".index", ".timeindex")}
    # An empty .index (a segment too small for one entry) is reported as empty, not checked.
    assert passed | empty == indexes and passed, sanity


def test_a_wrong_index_entry_is_reported(kafka_jars, tmp_path):
    """The negative control: the checks above would catch a bad index."""
    directory = LogDirectory.open(str(tmp_path), node_id=1)
    fill_partition(directory, "broken", "CreateTime")
    directory.close()
    partition_dir = tmp_path / "broken-0"
    first_index = min(p for p in partition_dir.iterdir() if p.suffix == ".index" and p.stat().st_size >= 16)
    data = bytearray(first_index.read_bytes())
    relative_offset, position = struct.unpack_from(">ii", data, 8)
    # The second entry names an offset one past the batch at its position (entries name the
    # last offset of the batch they point at).
    struct.pack_into(">ii", data, 8, relative_offset + 1, position)
    first_index.write_bytes(bytes(data))
    log_file = first_index.with_suffix(".log")
    # The index before its log, as in a sorted listing (the tool checks the index entries
    # against the log when it reaches the index file).
    result = dump(kafka_jars, [first_index, log_file], "--verify-index-only", check=False)
    assert result.returncode == 0, result.stderr
    reported = problems(result.stdout + result.stderr, {log_file.name: int(log_file.stem)})
    assert reported and reported[0].startswith("Mismatches in"), result.stderr
    base = int(log_file.stem)
    assert f"Index offset: {base + relative_offset + 1}, log offset: {base + relative_offset}" in result.stderr


def test_kafka_jars_second_run_is_instant(kafka_jars):
    """compat/kafka_jars.py does not call Maven again once the jars are there."""
    started = time.monotonic()
    lib = kafka_jars.ensure()
    assert time.monotonic() - started < 0.5
    assert any(lib.glob("kafka_2.13-*.jar")) and any(lib.glob("kafka-tools-*.jar"))
    assert shutil.which("java")


def test_kafka_written_log_continued_by_odradek(kafka_jars, tmp_path):
    """The Kafka-written fixture (tests/fixtures/kafka-written), opened by odradek.storage and
    appended to until it rolls twice (odradek extends Kafka's last segment and its indexes,
    then writes segments of its own), still reads clean in Kafka's tool: every offset once, in
    order, indexes matching the log."""
    fixture = REPO / "tests" / "fixtures" / "kafka-written"
    expected = json.loads((fixture / "expected.json").read_text())
    shutil.copytree(fixture / "log-dir", tmp_path / "log-dir")
    directory = LogDirectory.open(str(tmp_path / "log-dir"), node_id=1)
    log = directory.get_log(expected["topic"], expected["partition"])
    log.config = LogConfig(segment_bytes=2048, index_interval_bytes=256)
    appended = 0
    for batch_number in range(30):
        specs = [record_spec(batch_number, i) for i in range(4)]
        log.append(build_batch([Record(i, spec["timestamp_delta"],
                                       None if spec["key"] is None else spec["key"].encode(),
                                       None if spec["value"] is None else spec["value"].encode(),
                                       spec["headers"]) for i, spec in enumerate(specs)],
                               base_timestamp=T0 + batch_number, compression=CODECS[batch_number % len(CODECS)]))
        appended += len(specs)
    assert len(log.segments) >= len(expected["segments"]) + 2
    directory.close()

    partition_dir = tmp_path / "log-dir" / f"{expected['topic']}-{expected['partition']}"
    files = segment_files(partition_dir)
    result = dump(kafka_jars, files, "--deep-iteration")
    assert problems(result.stdout + result.stderr, {p.name: int(p.stem) for p in files if p.suffix == ".log"}) == [], \
        result.stderr
    offsets = [int(m) for m in re.findall(r"^\| offset: (\d+) ", result.stdout, re.M)]
    assert offsets == list(range(expected["log_end_offset"] + appended))
