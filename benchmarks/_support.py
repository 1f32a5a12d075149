"""What the benchmark scripts share: timing, markdown tables, record batches of a given size.

Not a benchmark itself. The scripts put their own folder on ``sys.path`` (``python3
benchmarks/X.py`` does that), so they import this as ``_support``.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import time
import timeit

from odradek.protocol.records.batch import Record, build_batch

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


class Timing:
    """Seconds per operation: the best and the median of several runs (each run a loop long
    enough to time; the minimum is the least disturbed by other work on the machine)."""

    __slots__ = ("best", "median", "loops", "runs")

    def __init__(self, samples: list[float], loops: int):
        self.best = min(samples)
        self.median = statistics.median(samples)
        self.loops = loops
        self.runs = len(samples)

    def micros(self) -> str:
        return f"{self.best * 1e6:,.1f} / {self.median * 1e6:,.1f}"


def time_per_op(fn, *, runs: int, min_run_seconds: float) -> Timing:
    """timeit-style: find a loop count whose run lasts at least ``min_run_seconds``, then time
    ``runs`` runs of that many calls."""
    timer = timeit.Timer(fn)
    loops = 1
    while True:
        if timer.timeit(loops) >= min_run_seconds:
            break
        loops *= 2 if loops < 8 else 4
    samples = [elapsed / loops for elapsed in timer.repeat(repeat=runs, number=loops)]
    return Timing(samples, loops)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |",
             "| " + " | ".join("-" * w for w in widths) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    return "\n".join(lines)


def batch_of_size(size: int, *, record_value_size: int = 1000, base_timestamp: int | None = None) -> bytes:
    """One uncompressed magic-2 batch (odradek's own builder, real CRC-32C) of exactly ``size``
    bytes on the wire: records of ``record_value_size``-byte values (keyless, no headers), the
    last one resized so the total is exact. Timestamps are now (within Kafka's default
    message.timestamp.after.max.ms), one millisecond apart."""
    if base_timestamp is None:
        base_timestamp = time.time_ns() // 1_000_000
    value = bytes(range(256)) * (record_value_size // 256 + 1)

    def build(count: int, last_value_size: int) -> bytes:
        records = [Record(i, i, None, value[:record_value_size]) for i in range(count - 1)]
        records.append(Record(count - 1, count - 1, None, bytes(last_value_size)))
        return build_batch(records, base_timestamp=base_timestamp)

    count = max(1, size // (record_value_size + 16))
    last = record_value_size
    for _ in range(8):  # varint lengths shift by a byte or two as the last value changes size
        batch = build(count, last)
        missing = size - len(batch)
        if missing == 0:
            return batch
        if last + missing < 0:
            count -= 1
            continue
        last += missing
    raise ValueError(f"cannot build a batch of exactly {size} bytes")


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM (a broker's clean shutdown), then SIGKILL if it is still running after
    ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
