#!/usr/bin/env python3
"""Storage engine speed (odradek.storage on the real file system): append throughput against the
disk's raw sequential write speed, read-by-offset latency, and recovery time (issue #3).

Run from the repository root (odradek installed):

    python3 benchmarks/storage.py                         # defaults: a few minutes at most
    python3 benchmarks/storage.py --append-bytes 4G --recovery-bytes 4G   # bigger runs
    python3 benchmarks/storage.py --only append --fsync each   # fsync after every append/write
    python3 benchmarks/storage.py --dir /mnt/data/tmp     # another disk (default: under /tmp)

Sizes take K, M, G suffixes (powers of 1024). Everything is written under a fresh temporary
directory inside ``--dir`` and deleted at the end, also on errors or Ctrl-C.

What is measured:

* **append** — one partition (``PartitionLog``, Kafka's default topic config) takes
  ``--append-bytes`` of uncompressed record batches of 16 KiB and of 1 MiB (``--batch-sizes``),
  each append a new ``bytes`` payload as a produce request delivers it (the log validates the
  batch, CRC included, copies it once to patch offsets, writes it). Against it, in the same run,
  the same directory and with the same fsync policy: plain ``os.write`` of the same bytes in
  the same chunk sizes to one file. MiB/s = MiB written / wall time including the fsync; the
  two alternate (raw, log, raw, log ... ``--repeats`` times); the table gives the best run of
  each and, in brackets, the median. The issue's target: the log reaches at least 70 % of the
  raw speed with 1 MiB batches.
  ``--fsync end`` (default) fsyncs once when all bytes are written (``PartitionLog.flush()``
  / ``os.fsync``), ``each`` after every append/write, ``none`` never (page cache speed).
* **read** — a log of ``--read-log-bytes`` of 16 KiB batches (16 records each); reads at
  ``--read-samples`` offsets drawn uniformly from the whole log, as fetches at a random
  position: ``PartitionLog.read(offset, 1 MiB)`` locates the batches and returns file regions
  (what the broker hands to sendfile), and, separately, locate + ``pread`` of those regions
  (the bytes in hand). Latency percentiles in µs; the log's files are in the page cache.
* **recovery** — ``--recovery-bytes`` of batches (``--recovery-batch-size``) in a data
  directory (``LogDirectory``) whose topic rolls segments at ``--recovery-segment-bytes``,
  written and fsynced by a child process that then exits without closing anything: no
  clean-shutdown marker and no recovery-point checkpoint, as after a crash before the first
  checkpoint. Then, timed in this process: the reopen that rescans every segment (CRC of every
  batch, indexes rebuilt); a clean close and the clean reopen (indexes trusted, nothing
  scanned); and a second crash after a recovery-point checkpoint, whose reopen rescans only
  the segments from the one holding the recovery point. With ``--cold`` (default) the log's
  files are dropped from the page cache (``posix_fadvise(DONTNEED)``, this directory's files
  only) before each reopen, so the rescan reads from the disk as after a reboot;
  ``--no-cold`` measures with the files cached.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _support import KIB, MIB, batch_of_size, markdown_table, percentile  # noqa: E402

from odradek.storage.config import LogConfig  # noqa: E402
from odradek.storage.fs import OsFileSystem  # noqa: E402
from odradek.storage.log_directory import CLEAN_SHUTDOWN_FILE, LogDirectory  # noqa: E402
from odradek.storage.partition_log import PartitionLog  # noqa: E402

TOPIC = "bench"
NODE_ID = 1
READ_BATCH_SIZE = 16 * KIB
READ_RECORDS_PER_BATCH = 16
FETCH_MAX_BYTES = MIB  # Kafka's default max.partition.fetch.bytes


def parse_size(text: str) -> int:
    units = {"K": KIB, "M": MIB, "G": 1024 * MIB}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def human(size: int) -> str:
    for unit, factor in (("GiB", 1024 * MIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def mib_per_s(size: int, seconds: float) -> float:
    return size / MIB / seconds


# -------------------------------------------------------------------------------- append
def payloads(batch: bytes, count: int) -> list[bytes]:
    """``count`` distinct bytes objects holding ``batch``, as produce requests deliver them.
    At most 64 are kept (reused round robin): a payload is copied by the append, not kept."""
    return [bytes(bytearray(batch)) for _ in range(min(count, 64))]


def raw_write(directory: str, chunks: list[bytes], count: int, fsync: str) -> float:
    path = os.path.join(directory, "raw.bin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        start = time.perf_counter()
        for i in range(count):
            view = memoryview(chunks[i % len(chunks)])
            while view:
                view = view[os.write(fd, view):]
            if fsync == "each":
                os.fsync(fd)
        if fsync == "end":
            os.fsync(fd)
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
        os.unlink(path)
    return elapsed


def log_append(directory: str, chunks: list[bytes], count: int, fsync: str) -> float:
    path = os.path.join(directory, f"{TOPIC}-0")
    log = PartitionLog.open(OsFileSystem(), path, LogConfig())
    try:
        start = time.perf_counter()
        for i in range(count):
            log.append(chunks[i % len(chunks)])
            if fsync == "each":
                log.flush()
        if fsync == "end":
            log.flush()
        elapsed = time.perf_counter() - start
        expected = count * chunk_records(chunks[0])
        if log.log_end_offset != expected:
            raise AssertionError(f"log end offset {log.log_end_offset}, expected {expected}")
    finally:
        log.close()
        shutil.rmtree(path)
    return elapsed


def chunk_records(batch: bytes) -> int:
    return int.from_bytes(batch[57:61], "big")  # records count, the last field of the header


def bench_append(work: str, args) -> list[list[str]]:
    rows = []
    for batch_size in args.batch_sizes:
        count = max(1, args.append_bytes // batch_size)
        total = count * batch_size
        chunks = payloads(batch_of_size(batch_size), count)
        raw_times, log_times = [], []
        for _ in range(args.repeats):
            raw_times.append(raw_write(work, chunks, count, args.fsync))
            log_times.append(log_append(work, chunks, count, args.fsync))
        raw_best, log_best = min(raw_times), min(log_times)
        raw_speed, log_speed = mib_per_s(total, raw_best), mib_per_s(total, log_best)
        raw_median = mib_per_s(total, statistics.median(raw_times))
        log_median = mib_per_s(total, statistics.median(log_times))
        rows.append([human(batch_size), human(total), f"{count:,}", args.fsync,
                     f"{raw_speed:,.0f} ({raw_median:,.0f})", f"{log_speed:,.0f} ({log_median:,.0f})",
                     f"{100 * log_speed / raw_speed:.0f} % ({100 * log_median / raw_median:.0f} %)",
                     f"{1e6 * log_best / count:,.1f}"])
        print(f"  append {human(batch_size)} batches: done", file=sys.stderr, flush=True)
    return rows


# ---------------------------------------------------------------------------------- read
def bench_read(work: str, args) -> list[list[str]]:
    path = os.path.join(work, f"{TOPIC}-0")
    log = PartitionLog.open(OsFileSystem(), path, LogConfig())
    try:
        batch = batch_of_size(READ_BATCH_SIZE, record_value_size=READ_BATCH_SIZE // READ_RECORDS_PER_BATCH - 30)
        per_batch = chunk_records(batch)
        for _ in range(max(1, args.read_log_bytes // len(batch))):
            log.append(batch)
        log.flush()
        log.update_high_watermark(log.log_end_offset)
        rng = random.Random(args.seed)
        offsets = [rng.randrange(log.log_start_offset, log.log_end_offset) for _ in range(args.read_samples)]
        for offset in offsets[:100]:  # warm up: indexes loaded, code paths hot
            log.read(offset, FETCH_MAX_BYTES).read_bytes()

        locate, locate_and_read = [], []
        clock = time.perf_counter_ns
        for offset in offsets:
            start = clock()
            result = log.read(offset, FETCH_MAX_BYTES)
            locate.append(clock() - start)
            if not result.regions:
                raise AssertionError(f"nothing read at offset {offset}")
        for offset in offsets:
            start = clock()
            data = log.read(offset, FETCH_MAX_BYTES).read_bytes()
            locate_and_read.append(clock() - start)
            if int.from_bytes(data[:8], "big") > offset or len(data) < READ_BATCH_SIZE:
                raise AssertionError(f"read at offset {offset} does not start at its batch")
        log_size, end_offset, segments = log.size_in_bytes, log.log_end_offset, len(log.segments)
    finally:
        log.close()
        shutil.rmtree(path)
    rows = []
    for name, samples in (("locate (file regions, as for sendfile)", locate),
                          ("locate + pread the bytes", locate_and_read)):
        samples.sort()
        rows.append([name, human(log_size) if log_size % MIB == 0 else f"{log_size / MIB:,.0f} MiB",
                     f"{end_offset:,} records / {segments} segment(s)", f"{len(samples):,}",
                     f"{percentile(samples, 0.50) / 1e3:,.1f}", f"{percentile(samples, 0.99) / 1e3:,.1f}",
                     f"{samples[-1] / 1e3:,.1f}"])
    print(f"  read: done ({per_batch} records per {human(READ_BATCH_SIZE)} batch)", file=sys.stderr, flush=True)
    return rows


# ------------------------------------------------------------------------------ recovery
def recovery_config(args) -> LogConfig:
    return LogConfig(segment_bytes=args.recovery_segment_bytes)


def crash_writer(path: str, total: int, batch_size: int, segment_bytes: int) -> None:
    """Child process: fill the data directory, fsync, exit without closing (a crash)."""
    directory = LogDirectory.open(path, node_id=NODE_ID, default_config=LogConfig(segment_bytes=segment_bytes))
    log = directory.create_log(TOPIC, 0)
    if total:
        batch = batch_of_size(batch_size)
        for _ in range(max(1, total // batch_size)):
            log.append(batch)
    else:  # a reopened directory: checkpoint the recovery points, then crash
        directory.checkpoint()
    log.flush()
    print(log.log_end_offset, flush=True)
    os._exit(0)


def run_crash_writer(path: str, total: int, args) -> int:
    child = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--crash-writer", path, str(total),
         str(args.recovery_batch_size), str(args.recovery_segment_bytes)],
        capture_output=True, text=True)
    if child.returncode != 0:
        raise RuntimeError(f"crash writer failed ({child.returncode}):\n{child.stderr}")
    return int(child.stdout.split()[-1])


def drop_from_page_cache(path: str) -> None:
    """Evict this directory's (fsynced, so clean) file pages: the next reads go to the disk."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def timed_open(path: str, args, expected_end: int, expect_clean: bool):
    if args.cold:
        drop_from_page_cache(path)
    start = time.perf_counter()
    directory = LogDirectory.open(path, node_id=NODE_ID, default_config=recovery_config(args))
    elapsed = time.perf_counter() - start
    log = directory.get_log(TOPIC, 0)
    if directory.had_clean_shutdown != expect_clean:
        raise AssertionError(f"clean shutdown seen: {directory.had_clean_shutdown}, expected {expect_clean}")
    if log.log_end_offset != expected_end or log.recovered_bytes_truncated:
        raise AssertionError(f"reopened at {log.log_end_offset} (cut {log.recovered_bytes_truncated} bytes), "
                             f"expected {expected_end}, nothing cut")
    return directory, elapsed


def bench_recovery(work: str, args) -> list[list[str]]:
    path = os.path.join(work, "data")
    total = max(1, args.recovery_bytes // args.recovery_batch_size) * args.recovery_batch_size
    start = time.perf_counter()
    end_offset = run_crash_writer(path, total, args)
    write_seconds = time.perf_counter() - start
    segments = sum(1 for name in os.listdir(os.path.join(path, f"{TOPIC}-0")) if name.endswith(".log"))
    if os.path.exists(os.path.join(path, CLEAN_SHUTDOWN_FILE)):
        raise AssertionError("the crash writer left a clean-shutdown marker")
    print(f"  recovery: {human(total)} written in {write_seconds:.1f} s (child process)", file=sys.stderr, flush=True)

    rows = []
    shape = f"{human(total)}, {segments} segments of ≤ {human(args.recovery_segment_bytes)}, " \
            f"{human(args.recovery_batch_size)} batches"
    cache = "cold" if args.cold else "warm"

    directory, rescan = timed_open(path, args, end_offset, expect_clean=False)
    rows.append(["unclean, no recovery-point checkpoint (every segment rescanned)", shape, cache,
                 f"{rescan:,.2f}", f"{mib_per_s(total, rescan):,.0f}"])
    directory.close()
    directory, clean = timed_open(path, args, end_offset, expect_clean=True)
    rows.append(["clean (marker present, indexes trusted)", shape, cache, f"{clean:,.3f}", "-"])
    directory.close()

    run_crash_writer(path, 0, args)  # reopen, checkpoint the recovery point, crash
    directory, partial = timed_open(path, args, end_offset, expect_clean=False)
    rows.append(["unclean after a recovery-point checkpoint (segments from the recovery point)",
                 shape, cache, f"{partial:,.3f}", "-"])
    directory.close()
    shutil.rmtree(path)
    return rows


# ---------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("append", "read", "recovery"), help="run one part only")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the temporary directory goes (/tmp)")
    parser.add_argument("--fsync", choices=("end", "each", "none"), default="end",
                        help="append/raw fsync policy (default: once at the end)")
    parser.add_argument("--append-bytes", type=parse_size, default=parse_size("1G"),
                        help="bytes per append measurement (default 1G)")
    parser.add_argument("--batch-sizes", type=lambda s: [parse_size(p) for p in s.split(",")],
                        default=[16 * KIB, MIB], help="comma-separated batch sizes (default 16K,1M)")
    parser.add_argument("--repeats", type=int, default=5, help="raw/log alternations per batch size (default 5)")
    parser.add_argument("--read-log-bytes", type=parse_size, default=parse_size("256M"),
                        help="size of the log read from (default 256M)")
    parser.add_argument("--read-samples", type=int, default=5000, help="random reads (default 5000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the read offsets")
    parser.add_argument("--recovery-bytes", type=parse_size, default=parse_size("1G"),
                        help="data in the recovered log (default 1G)")
    parser.add_argument("--recovery-batch-size", type=parse_size, default=16 * KIB,
                        help="batch size in the recovered log (default 16K)")
    parser.add_argument("--recovery-segment-bytes", type=parse_size, default=parse_size("128M"),
                        help="segment.bytes of the recovered log (default 128M)")
    parser.add_argument("--cold", action=argparse.BooleanOptionalAction, default=True,
                        help="drop the log's files from the page cache before each reopen (default: yes)")
    parser.add_argument("--crash-writer", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.crash_writer:
        path, total, batch_size, segment_bytes = args.crash_writer
        crash_writer(path, int(total), int(batch_size), int(segment_bytes))
        return 0  # not reached

    work = tempfile.mkdtemp(prefix="odradek-bench-storage-", dir=args.dir)
    try:
        if args.only in (None, "append"):
            print("### Append throughput vs raw sequential write (same disk, same run)\n")
            print(markdown_table(
                ["batch", "written", "appends", "fsync", "raw os.write MiB/s, best (median)",
                 "PartitionLog.append MiB/s, best (median)", "log / raw, best (median)", "µs per append (best)"],
                bench_append(work, args)), flush=True)
            print()
        if args.only in (None, "read"):
            print("### Read by offset (random offsets, max_bytes 1 MiB, page cache warm)\n")
            print(markdown_table(
                ["operation", "log", "offsets", "reads", "p50 µs", "p99 µs", "max µs"], bench_read(work, args)),
                flush=True)
            print()
        if args.only in (None, "recovery"):
            print("### Reopen time\n")
            print(markdown_table(["reopen", "log", "page cache", "seconds", "rescan MiB/s"],
                                 bench_recovery(work, args)), flush=True)
            print()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"temporary data under {args.dir} removed; Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
