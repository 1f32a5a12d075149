"""odradek.storage opens a data directory that a real Apache Kafka broker wrote.

The fixture ``tests/fixtures/kafka-written/`` was made by ``compat/make_kafka_fixture.py``:
Kafka 4.3 in KRaft combined mode, topic ``fixture`` produced to by Kafka's Java client (every
codec, keys, null keys, null and empty values, headers, a plain producer, idempotent producers,
a transactional producer with committed and aborted transactions), stopped with SIGTERM; its
``log-dir/`` holds the partition directory ``fixture-0`` (six segments with their ``.index``,
``.timeindex``, ``.snapshot``, one ``.txnindex``) and the data directory's ``meta.properties``,
clean-shutdown marker and offset checkpoints. ``expected.json`` lists every record with the
offset and timestamp Kafka acknowledged.

Each test opens a copy (opening a data directory writes to it). Pure Python: no JVM here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from odradek.protocol.records import compression
from odradek.protocol.records.batch import Record, build_batch, iter_batches
from odradek.storage.checkpoints import uuid_to_kafka
from odradek.storage.log_directory import LogDirectory
from odradek.storage.segment import LogSegment

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "kafka-written"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
TOPIC, PARTITION = EXPECTED["topic"], EXPECTED["partition"]
RECORDS = EXPECTED["records"]
LOG_END_OFFSET = EXPECTED["log_end_offset"]


@pytest.fixture
def log_dir(tmp_path) -> Path:
    target = tmp_path / "log-dir"
    shutil.copytree(FIXTURE / "log-dir", target)
    return target


def open_directory(path: Path) -> LogDirectory:
    # node.id 1 is what the Kafka node that wrote it was; the cluster id comes from the file.
    return LogDirectory.open(str(path), node_id=1)


def read_all(log) -> list:
    """Every batch from the log start to the log end, decoded."""
    result = log.read(log.log_start_offset, 1 << 24, max_offset=log.log_end_offset)
    return list(iter_batches(result.read_bytes(), allow_incomplete=False))


def as_expected(batch, record) -> dict:
    return {
        "offset": batch.offset_of(record),
        "timestamp": batch.timestamp_of(record),
        "key": None if record.key is None else bytes(record.key).decode(),
        "value": None if record.value is None else bytes(record.value).decode(),
        "headers": [[k, None if v is None else bytes(v).decode()] for k, v in record.headers],
    }


def expected_view(entry: dict) -> dict:
    return {name: entry[name] for name in ("offset", "timestamp", "key", "value", "headers")}


def test_fixture_is_what_the_script_describes():
    partition_dir = FIXTURE / "log-dir" / f"{TOPIC}-{PARTITION}"
    assert sorted(p.name for p in partition_dir.iterdir()) == EXPECTED["files"]
    assert len(EXPECTED["segments"]) >= 4 and any(name.endswith(".txnindex") for name in EXPECTED["files"])
    assert {r["codec"] for r in RECORDS} == {"none", "gzip", "snappy", "lz4", "zstd"}
    assert sum(p.stat().st_size for p in FIXTURE.rglob("*") if p.is_file()) < 200_000


def test_opens_as_a_clean_kafka_data_directory(log_dir):
    meta = dict(line.split("=", 1) for line in (log_dir / "meta.properties").read_text().splitlines()
                if "=" in line and not line.startswith("#"))
    directory = open_directory(log_dir)
    try:
        assert directory.had_clean_shutdown
        assert directory.cluster_id == meta["cluster.id"]
        assert list(directory.logs) == [(TOPIC, PARTITION)]
        log = directory.get_log(TOPIC, PARTITION)
        assert [segment.base_offset for segment in log.segments] == EXPECTED["segments"]
        assert (log.log_start_offset, log.log_end_offset, log.high_watermark) == (0, LOG_END_OFFSET, LOG_END_OFFSET)
        assert log.recovery_point == LOG_END_OFFSET
        partition_metadata = (log_dir / f"{TOPIC}-{PARTITION}" / "partition.metadata").read_text()
        assert log.topic_id is not None
        assert f"topic_id: {uuid_to_kafka(log.topic_id)}" in partition_metadata
        assert log.leader_epochs.latest_epoch == 0
    finally:
        directory.close()


def test_every_record_read_back_in_one_scan(log_dir):
    directory = open_directory(log_dir)
    try:
        batches = read_all(directory.get_log(TOPIC, PARTITION))
    finally:
        directory.close()
    data = [as_expected(batch, record) for batch in batches if not batch.is_control for record in batch.records]
    assert data == [expected_view(r) for r in RECORDS]
    assert [batch.base_offset for batch in batches if batch.is_control] == EXPECTED["control_offsets"]
    assert batches[-1].next_offset == LOG_END_OFFSET

    # Batch attributes as the Java client and the broker set them.
    data_batches = [batch for batch in batches if not batch.is_control]
    assert len(data_batches) == len(EXPECTED["batches"])
    for batch, expected in zip(data_batches, EXPECTED["batches"]):
        assert (batch.base_offset, batch.last_offset) == (expected["first_offset"], expected["last_offset"])
        assert compression.codec_name(batch.compression) == expected["codec"]
        assert (batch.producer_id >= 0) == (expected["producer"] != "plain")
        assert batch.is_transactional == (expected["producer"] == "transactional")
        assert batch.partition_leader_epoch == 0


def test_every_record_by_offset(log_dir):
    directory = open_directory(log_dir)
    try:
        log = directory.get_log(TOPIC, PARTITION)
        for entry in RECORDS:
            # The smallest read: the one batch holding the offset (index lookup, then scan).
            result = log.read(entry["offset"], 1)
            assert len(result.regions) == 1
            (batch,) = iter_batches(result.read_bytes(), allow_incomplete=False)
            assert batch.base_offset <= entry["offset"] <= batch.last_offset
            (record,) = [r for r in batch.records if batch.offset_of(r) == entry["offset"]]
            assert as_expected(batch, record) == expected_view(entry)
    finally:
        directory.close()


# Kafka's answers to ListOffsets by timestamp on this partition, recorded by the script with
# the Java Admin client while the broker ran: (target, offset, timestamp), offset -1 when no
# record is that late. Kafka answers with the first record (control records included) whose
# timestamp is at least the target, looking inside compressed batches
# (FileRecords.searchForTimestamp).
KAFKA_ANSWERS = [tuple(answer) for answer in EXPECTED["list_offsets_by_time"] if answer[0] != "max"]
(KAFKA_MAX_TIMESTAMP_ANSWER,) = [tuple(a[1:]) for a in EXPECTED["list_offsets_by_time"] if a[0] == "max"]
CODEC_AT = {r["offset"]: r["codec"] for r in RECORDS}  # control batches are uncompressed


def answered_in_compressed_batch(answer) -> bool:
    return CODEC_AT.get(answer[1], "none") != "none"


def check_answers(log, answers) -> None:
    mismatches = []
    for target, offset, timestamp in answers:
        expected = None if offset < 0 else (timestamp, offset)
        found = log.offset_for_timestamp(target)
        if found != expected:
            mismatches.append((target, expected, found))
    assert mismatches == [], f"(target, Kafka's answer, odradek's) for {len(mismatches)} targets: {mismatches[:5]}"


def test_lookups_by_timestamp_answer_as_kafka_did(log_dir):
    answers = [a for a in KAFKA_ANSWERS if not answered_in_compressed_batch(a)]
    assert len(answers) > 50 and any(a[1] in EXPECTED["control_offsets"] for a in answers)
    directory = open_directory(log_dir)
    try:
        log = directory.get_log(TOPIC, PARTITION)
        check_answers(log, answers)
        assert log.max_timestamp_offset() == KAFKA_MAX_TIMESTAMP_ANSWER[::-1]
    finally:
        directory.close()


def test_lookups_by_timestamp_inside_compressed_batches_answer_as_kafka_did(log_dir):
    """Kafka looks inside compressed batches: target 1750000000421 finds offset 42 (timestamp
    ...431) in the middle of gzip batch 41-47, not the batch's base offset and max timestamp."""
    answers = [a for a in KAFKA_ANSWERS if answered_in_compressed_batch(a)]
    assert len(answers) > 100
    directory = open_directory(log_dir)
    try:
        check_answers(directory.get_log(TOPIC, PARTITION), answers)
    finally:
        directory.close()


def test_kafka_indexes_are_accepted_not_rebuilt(log_dir, monkeypatch):
    rebuilt = []
    original = LogSegment.rebuild_indexes

    def spy(segment):
        rebuilt.append(segment.base_offset)
        original(segment)

    monkeypatch.setattr(LogSegment, "rebuild_indexes", spy)
    partition_dir = log_dir / f"{TOPIC}-{PARTITION}"
    index_files = sorted(p for p in partition_dir.iterdir() if p.suffix in (".index", ".timeindex"))
    before = {p.name: p.read_bytes() for p in index_files}
    directory = open_directory(log_dir)
    try:
        log = directory.get_log(TOPIC, PARTITION)
        for segment in log.segments:
            segment.check_indexes()  # raises CorruptIndex if odradek finds them implausible
        for entry in RECORDS:
            log.read(entry["offset"], 1)
            log.offset_for_timestamp(entry["timestamp"])
    finally:
        directory.close()
    assert rebuilt == []
    # A clean close leaves Kafka's (already trimmed) index files byte for byte as they were.
    assert {p.name: p.read_bytes() for p in index_files} == before


def test_unclean_open_rescans_kafka_batches_and_keeps_them_all(log_dir):
    """Without the clean-shutdown marker and recovery point, every Kafka segment is re-read
    batch by batch (CRC, offsets) and its indexes rebuilt: nothing may be cut."""
    (log_dir / ".kafka_cleanshutdown").unlink()
    (log_dir / "recovery-point-offset-checkpoint").unlink()
    directory = open_directory(log_dir)
    try:
        assert not directory.had_clean_shutdown
        log = directory.get_log(TOPIC, PARTITION)
        assert log.recovered_bytes_truncated == 0
        assert [segment.base_offset for segment in log.segments] == EXPECTED["segments"]
        assert log.log_end_offset == LOG_END_OFFSET
        batches = read_all(log)
        data = [as_expected(b, r) for b in batches if not b.is_control for r in b.records]
        assert data == [expected_view(r) for r in RECORDS]
        # The rebuilt time indexes answer as Kafka's did.
        check_answers(log, [a for a in KAFKA_ANSWERS if not answered_in_compressed_batch(a)])
    finally:
        directory.close()


def test_producer_state_comes_from_kafka_snapshots(log_dir):
    """The idempotent producers Kafka saw are known after open (Kafka's .snapshot files plus
    the batches after the newest one): a retry of the last zstd batch is answered with its
    original offsets and writes nothing; the next sequence is appended at the log end."""
    directory = open_directory(log_dir)
    try:
        log = directory.get_log(TOPIC, PARTITION)
        batches = read_all(log)
        last_zstd = [b for b in batches if b.compression == compression.ZSTD and b.producer_id >= 0][-1]
        records = [Record(r.offset_delta, r.timestamp_delta, r.key, r.value, r.headers) for r in last_zstd.records]
        retry = build_batch(records, base_timestamp=last_zstd.base_timestamp, compression=compression.ZSTD,
                            producer_id=last_zstd.producer_id, producer_epoch=last_zstd.producer_epoch,
                            base_sequence=last_zstd.base_sequence)
        result = log.append(retry)
        assert (result.first_offset, result.last_offset) == (last_zstd.base_offset, last_zstd.last_offset)
        assert log.log_end_offset == LOG_END_OFFSET

        following = build_batch([Record(0, 0, b"after", b"kafka")], base_timestamp=RECORDS[-1]["timestamp"] + 1,
                                producer_id=last_zstd.producer_id, producer_epoch=last_zstd.producer_epoch,
                                base_sequence=last_zstd.base_sequence + len(records))
        result = log.append(following)
        assert result.first_offset == LOG_END_OFFSET
        log.update_high_watermark(log.log_end_offset)
    finally:
        directory.close()
    reopened = open_directory(log_dir)
    try:
        log = reopened.get_log(TOPIC, PARTITION)
        assert log.log_end_offset == LOG_END_OFFSET + 1
        last = read_all(log)[-1]
        assert (last.base_offset, bytes(last.records[0].value)) == (LOG_END_OFFSET, b"kafka")
    finally:
        reopened.close()


def test_checkpoints_written_back_in_kafkas_format(log_dir):
    """After odradek closes the directory, its checkpoint lines for the partition are the ones
    Kafka wrote (Kafka's files also list __transaction_state-0, which was not copied)."""
    kafka_lines = {name: (log_dir / name).read_text().splitlines()
                   for name in ("recovery-point-offset-checkpoint", "replication-offset-checkpoint",
                                "log-start-offset-checkpoint")}
    open_directory(log_dir).close()
    for name, lines in kafka_lines.items():
        ours = (log_dir / name).read_text().splitlines()
        assert ours[0] == lines[0] == "0"
        ours_entries = [line for line in ours[2:] if line.startswith(f"{TOPIC} ")]
        kafka_entries = [line for line in lines[2:] if line.startswith(f"{TOPIC} ")]
        if name == "log-start-offset-checkpoint" and not kafka_entries:
            # Kafka leaves out partitions whose log start is their first segment's base.
            assert ours_entries in ([], [f"{TOPIC} {PARTITION} 0"])
        else:
            assert ours_entries == kafka_entries


def test_clean_shutdown_marker_has_kafkas_shape(log_dir):
    """Kafka 4 writes and reads {"version":0,"brokerEpoch":N}: the same keys and JSON types."""
    kafka_marker = json.loads((log_dir / ".kafka_cleanshutdown").read_text())
    open_directory(log_dir).close()
    ours = json.loads((log_dir / ".kafka_cleanshutdown").read_text())
    assert set(ours) == set(kafka_marker)
    assert all(type(ours[key]) is type(kafka_marker[key]) for key in kafka_marker)
