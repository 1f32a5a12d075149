"""Kafka's own DumpLogSegments reads a partition that odradek's log cleaner compacted: batches
thinned to the last record of each key (uncompressed and compressed), tombstones carrying a
delete horizon, batches left empty to keep a producer's sequence, segments merged by the
cleaner; every batch valid, the records those odradek reads, the indexes consistent."""

from __future__ import annotations

import re

from odradek.protocol.records import compression
from odradek.protocol.records.batch import Record, build_batch, decode_batch
from odradek.storage.config import LogConfig
from odradek.storage.log_directory import LogDirectory

from test_dump_log_segments import (
    _BATCH_LINE, dump, parse_record, problems, sections, segment_bases, segment_files)

T0 = 1_700_000_000_000
PRODUCER_ID = 77


def _batch(pairs, timestamp, codec=compression.NONE, **producer):
    return build_batch([Record(i, i, key, value) for i, (key, value) in enumerate(pairs)], base_timestamp=timestamp,
                       compression=codec, **producer)


def test_dump_log_segments_reads_a_compacted_partition(kafka_jars, tmp_path):
    clock = [T0 + 10_000]
    config = LogConfig(cleanup_policy="compact", segment_bytes=1200, index_interval_bytes=100)
    directory = LogDirectory.open(str(tmp_path / "data"), node_id=1, clock=lambda: clock[0])
    log = directory.create_log("compacted", 0, config=config)
    codecs = [compression.NONE, compression.GZIP, compression.ZSTD, compression.LZ4]
    log.append(_batch([(b"idem", b"first")], T0, producer_id=PRODUCER_ID, producer_epoch=0, base_sequence=0))
    for n in range(40):
        pairs = [(b"key-%d" % ((n * 3 + i) % 7), b"value %d/%d " % (n, i) + b"abc" * i) for i in range(3)]
        if n == 5:
            pairs.append((b"deleted", b"soon deleted"))
        if n == 10:
            pairs.append((b"deleted", None))  # a tombstone
        log.append(_batch(pairs, T0 + n, codecs[n % len(codecs)]))
    log.append(_batch([(b"idem", b"second")], T0 + 50))  # supersedes the producer's only record
    log.roll()
    log.update_high_watermark(log.log_end_offset)
    first = log.compact()
    clock[0] += 1000
    second = log.compact(first_dirty_offset=first.next_dirty_offset)
    assert first.records_removed > 0 and second.next_dirty_offset == first.next_dirty_offset
    expected = []
    for segment in log.segments:
        for info in segment.batches():
            batch = decode_batch(segment.log.pread(info.size, info.position), 0, max_decompressed_size=1 << 20)
            expected.append((batch, [(batch.offset_of(r), r.key, r.value) for r in batch.records]))
    assert any(not records for _, records in expected), "no emptied batch kept"
    assert any(batch.delete_horizon is not None for batch, _ in expected), "no tombstone with a delete horizon"
    directory.close()

    root = tmp_path / "data"
    partition = root / "compacted-0"
    output = dump(kafka_jars, segment_files(partition), "--deep-iteration", "--print-data-log")
    # Gaps in offsets are what compaction leaves: the tool notes them ("Non-consecutive offsets")
    # as it does on Kafka's compacted segments.
    assert [line for line in problems(output.stdout + output.stderr, segment_bases(root))
            if not line.startswith("Non-consecutive offsets")] == [], output.stderr
    batches, records = [], []
    for lines in sections(output.stdout).values():
        for line in lines:
            match = _BATCH_LINE.match(line)
            if match:
                batches.append((int(match.group(1)), int(match.group(2)), int(match.group(3)), match.group(18)))
            elif line.startswith("| offset:"):
                record = parse_record(line)
                records.append((record["offset"], record["key"], record["value"]))
    assert [(b.base_offset, b.last_offset, len(r)) for b, r in expected] == [b[:3] for b in batches]
    assert all(valid == "true" for *_, valid in batches)
    assert records == [(offset, key.decode(), None if value is None else value.decode())
                       for _, found in expected for offset, key, value in found]
    assert re.search(r"deleteHorizonMs: OptionalLong\[\d+\]", output.stdout) or "deleteHorizonMs" not in output.stdout
    for options in (("--verify-index-only",), ("--index-sanity-check",)):
        result = dump(kafka_jars, segment_files(partition), *options)
        assert problems(result.stdout + result.stderr, segment_bases(root)) == [], result.stdout + result.stderr
