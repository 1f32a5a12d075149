#!/usr/bin/env python3
"""Log compaction speed (odradek.storage.cleaner on the real file system), issue #3.

Run from the repository root (odradek installed):

    python3 benchmarks/compaction.py                      # 256 MiB of 1 KiB records over 10k keys
    python3 benchmarks/compaction.py --bytes 1G --keys 100000
    python3 benchmarks/compaction.py --no-cold            # with the log in the page cache
    python3 benchmarks/compaction.py --dir /mnt/data/tmp  # another disk (default: under /tmp)

Sizes take K, M, G suffixes (powers of 1024). Everything is written under a fresh temporary
directory inside ``--dir`` and deleted at the end.

What is measured: one partition (``PartitionLog``, ``cleanup.policy=compact``, segments of
``--segment-bytes``) receives ``--bytes`` of uncompressed batches of ``--batch-records``
records, each record a key drawn uniformly from ``--keys`` keys and a value making it
``--record-size`` bytes; then it rolls (so the whole log is cleanable), is fsynced and, with
``--cold`` (default), dropped from the page cache. Timed:

* **full clean** — the first clean: the whole log is dirty; the cleaner reads it twice (offset
  map, then the rewrite), writes the survivors and swaps the segments in.
* **incremental clean** — ``--dirty-fraction`` more of the same records is appended (and
  rolled), then a clean from the first dirty offset the first one checkpointed: the map covers
  only the new part, the rewrite reads the clean head again (as Kafka's cleaner does).

MiB/s is Kafka's own figure for the cleaner ("MB of log processed ... MB/sec"): MiB of the log
the clean went over (every segment up to the first uncleanable offset, which the rewrite
reads) per second of wall time, the offset map, fsync and swap included. The table also gives
the dirty part (what the offset map reads), the bytes kept, and how long the slices of work
between two yields took (the broker serves requests between slices: the longest slice is the
longest a request can wait behind the cleaner).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _support import KIB, MIB, markdown_table, percentile  # noqa: E402
from storage import drop_from_page_cache, parse_size  # noqa: E402

from odradek.protocol.records.batch import Record, build_batch  # noqa: E402
from odradek.storage.cleaner import LogClean, cleanable_offsets  # noqa: E402
from odradek.storage.config import LogConfig  # noqa: E402
from odradek.storage.fs import OsFileSystem  # noqa: E402
from odradek.storage.partition_log import PartitionLog  # noqa: E402

RECORD_OVERHEAD = 10  # varint lengths, attributes and deltas of a small record, about


def keyed_batches(total_bytes: int, *, record_size: int, keys: int, batch_records: int, seed: int):
    """Uncompressed batches of ``batch_records`` records (random keys of ``keys``) adding up to
    about ``total_bytes``."""
    rng = random.Random(seed)
    now = time.time_ns() // 1_000_000
    written = 0
    while written < total_bytes:
        records = []
        for i in range(batch_records):
            key = b"key-%08d" % rng.randrange(keys)
            value = rng.randbytes(max(0, record_size - len(key) - RECORD_OVERHEAD))
            records.append(Record(i, i, key, value))
        batch = build_batch(records, base_timestamp=now)
        written += len(batch)
        yield batch


def fill(log: PartitionLog, total_bytes: int, args, seed: int) -> int:
    written = 0
    for batch in keyed_batches(total_bytes, record_size=args.record_size, keys=args.keys,
                               batch_records=args.batch_records, seed=seed):
        log.append(batch)
        written += len(batch)
    log.roll()
    log.flush()
    log.update_high_watermark(log.log_end_offset)
    return written


def timed_clean(log: PartitionLog, directory: str, first_dirty: int | None, cold: bool):
    if cold:
        drop_from_page_cache(directory)
    now = log.clock()
    to_clean = cleanable_offsets(log, first_dirty, now)
    clean = LogClean(log, to_clean, now)
    slices = []
    start = last = time.perf_counter()
    for _ in clean.steps():  # as the broker drives it: one slice between two event-loop turns
        current = time.perf_counter()
        slices.append(current - last)
        last = current
    slices.append(time.perf_counter() - last)
    elapsed = time.perf_counter() - start
    return to_clean, clean.stats, elapsed, sorted(slices)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bytes", type=parse_size, default=256 * MIB, help="log size before the first clean")
    parser.add_argument("--record-size", type=int, default=KIB)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--batch-records", type=int, default=16)
    parser.add_argument("--segment-bytes", type=parse_size, default=64 * MIB)
    parser.add_argument("--dirty-fraction", type=float, default=0.25)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--cold", action=argparse.BooleanOptionalAction, default=True,
                        help="drop the log from the page cache before each clean (default)")
    args = parser.parse_args(argv)

    root = tempfile.mkdtemp(prefix="odradek-compaction-", dir=args.dir)
    try:
        directory = os.path.join(root, "bench-0")
        config = LogConfig(cleanup_policy="compact", segment_bytes=args.segment_bytes)
        log = PartitionLog.open(OsFileSystem(), directory, config)
        written = fill(log, args.bytes, args, seed=1)
        rows = []
        to_clean, stats, elapsed, slices = timed_clean(log, directory, None, args.cold)
        rows.append(row("full clean", to_clean, stats, elapsed, slices))
        fill(log, int(written * args.dirty_fraction), args, seed=2)
        to_clean, stats, elapsed, slices = timed_clean(log, directory, stats.next_dirty_offset, args.cold)
        rows.append(row("incremental clean", to_clean, stats, elapsed, slices))
        log.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    cache = "cold" if args.cold else "warm"
    print(f"Log compaction: {args.bytes / MIB:.0f} MiB of {args.record_size} B records over {args.keys} keys, "
          f"{args.batch_records} records a batch, segments of {args.segment_bytes / MIB:.0f} MiB, page cache {cache}, "
          f"in {args.dir}\n")
    print(markdown_table(["clean", "log MiB processed", "dirty MiB (mapped)", "seconds", "MiB/s", "kept MiB",
                          "records removed", "slice ms p50 / p99 / max"], rows))
    return 0


def row(name, to_clean, stats, elapsed, slices) -> list[str]:
    return [name, f"{stats.bytes_read / MIB:.1f}", f"{to_clean.cleanable_bytes / MIB:.1f}", f"{elapsed:.2f}",
            f"{stats.bytes_read / MIB / elapsed:.1f}", f"{stats.bytes_written / MIB:.1f}", f"{stats.records_removed}",
            f"{percentile(slices, 0.5) * 1000:.1f} / {percentile(slices, 0.99) * 1000:.1f} / {slices[-1] * 1000:.1f}"]


if __name__ == "__main__":
    raise SystemExit(main())
