"""Kafka's own DumpLogSegments reads a partition holding transactions that odradek wrote:
transactional batches of interleaved producers, their COMMIT and ABORT markers (control
batches), and the ``.txnindex`` files the ABORTs wrote; every batch valid, each marker's type
and coordinator epoch, each index entry (producer, first/last offset, last stable offset) as
odradek recorded it, in the segment of its marker."""

from __future__ import annotations

import re

from odradek.storage.config import LogConfig
from odradek.storage.log_directory import LogDirectory

from test_dump_log_segments import (
    _BATCH_LINE, dump, problems, sections, segment_bases, segment_files)
from test_storage_transactions import Producer, end

from storage_batches import make_batch

_TXN_ENTRY = re.compile(r"^version: 0 producerId: (-?\d+) firstOffset: (\d+) lastOffset: (\d+) lastStableOffset: (\d+)$")
_MARKER = re.compile(r"^\| offset: (\d+) .* endTxnMarker: (ABORT|COMMIT) coordinatorEpoch: (\d+)$")


def test_dump_log_segments_reads_transactions_and_transaction_indexes(kafka_jars, tmp_path):
    root = tmp_path / "data"
    directory = LogDirectory.open(str(root), node_id=1)
    log = directory.create_log("txn", 0, config=LogConfig(segment_bytes=450))
    a, b = Producer(1001, epoch=2, coordinator_epoch=3), Producer(1002, epoch=0, coordinator_epoch=7)
    markers = {}
    for n in range(6):
        log.append(a.batch([b"a%d-%d" % (n, i) for i in range(3)]))
        if n % 3 != 2:
            log.append(b.batch([b"b%d" % n]))
        log.append(make_batch([b"plain%d" % n]))
        result = end(log, a, commit=n % 2 == 1)
        markers[result.first_offset] = ("COMMIT" if n % 2 == 1 else "ABORT", 3)
        if n % 3 == 1:
            result = end(log, b, commit=False)
            markers[result.first_offset] = ("ABORT", 7)
    log.update_high_watermark(log.log_end_offset)
    expected_index = {f"{s.base_offset:020d}.txnindex": [(e.producer_id, e.first_offset, e.last_offset,
                                                          e.last_stable_offset) for e in s.txn_index.entries()]
                      for s in log.segments}
    assert len(log.segments) >= 3 and sum(map(len, expected_index.values())) == 5
    assert any(entry[3] < entry[2] for entries in expected_index.values() for entry in entries), \
        "no entry whose LSO is held back by another producer's open transaction"
    directory.close()

    partition = root / "txn-0"
    txn_indexes = sorted(partition.glob("*.txnindex"))
    output = dump(kafka_jars, segment_files(partition) + txn_indexes, "--deep-iteration", "--print-data-log")
    assert problems(output.stdout + output.stderr, segment_bases(root)) == [], output.stderr
    by_file = sections(output.stdout)
    dumped_index = {path.name: [tuple(map(int, _TXN_ENTRY.match(line).groups())) for line in lines if line.strip()]
                    for path, lines in by_file.items() if path.suffix == ".txnindex"}
    assert dumped_index == {name: entries for name, entries in expected_index.items() if entries}
    dumped_markers, control_batches = {}, 0
    for path, lines in by_file.items():
        if path.suffix != ".log":
            continue
        for line in lines:
            batch = _BATCH_LINE.match(line)
            if batch and batch.group(10) == "true":
                control_batches += 1
                assert batch.group(9) == "true" and batch.group(18) == "true"  # transactional, valid
            marker = _MARKER.match(line)
            if marker:
                dumped_markers[int(marker.group(1))] = (marker.group(2), int(marker.group(3)))
    assert dumped_markers == markers and control_batches == len(markers)
