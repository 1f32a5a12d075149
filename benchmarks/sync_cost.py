#!/usr/bin/env python3
"""What one data sync costs on this machine's disk, as an acks=all round pays it.

Run from the repository root (odradek installed)::

    python3 benchmarks/sync_cost.py                 # in a temporary directory under /tmp, ~10 s
    python3 benchmarks/sync_cost.py --dir /data --syncs 500

For each write size (one round's appends: 4, 16, 64 and 256 KiB) it times ``--syncs`` rounds
of "write, then sync" on a real file and prints the median and the 90th percentile:

* ``append, fdatasync``: the write extends the file, as an append to a segment does; the file
  system has to commit the new size to its journal along with the data;
* ``append, kernel AIO``: the same sync handed to the kernel's AIO (what odradek does,
  storage/kernel_aio.py), timed from the submission to its end on the eventfd;
* ``overwrite, fdatasync``: the write lands in space the file already had, written and synced
  beforehand (a preallocated segment): the size does not change, so only the data and a cache
  flush remain.

The difference between the first and the last is what a preallocated segment would save each
round (docs/performance.md, "acks=all: what the fsync costs").
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from odradek.storage.kernel_aio import KernelAio

SIZES = (4096, 16384, 65536, 262144)


def _timed_rounds(fd: int, size: int, syncs: int, *, start: int, sync) -> list[float]:
    data = os.urandom(size)
    took = []
    position = start
    for _ in range(syncs):
        os.pwrite(fd, data, position)
        position += size
        began = time.perf_counter()
        sync(fd)
        took.append(time.perf_counter() - began)
    return took


def _aio_sync(aio: KernelAio):
    def sync(fd: int) -> None:
        aio.submit(fd, True, None)
        while aio.in_flight:
            select.select([aio.eventfd], [], [], 5)
            aio.completions()
    return sync


def measure(directory: Path, size: int, syncs: int, aio: KernelAio | None) -> dict[str, list[float]]:
    results = {}
    appended = directory / "appended"
    fd = os.open(appended, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    try:
        results["append, fdatasync"] = _timed_rounds(fd, size, syncs, start=0, sync=os.fdatasync)
        if aio is not None:
            results["append, kernel AIO"] = _timed_rounds(fd, size, syncs, start=size * syncs, sync=_aio_sync(aio))
    finally:
        os.close(fd)
        appended.unlink()
    preallocated = directory / "preallocated"
    fd = os.open(preallocated, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    try:
        zeros = bytes(1 << 20)
        for position in range(0, size * syncs, len(zeros)):
            os.pwrite(fd, zeros, position)
        os.fsync(fd)
        results["overwrite, fdatasync"] = _timed_rounds(fd, size, syncs, start=0, sync=os.fdatasync)
    finally:
        os.close(fd)
        preallocated.unlink()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="where the files are written (a temporary directory under /tmp)")
    parser.add_argument("--syncs", type=int, default=300, help="rounds per size and way (300)")
    options = parser.parse_args(argv)
    if not hasattr(os, "fdatasync"):
        print("no fdatasync on this system", file=sys.stderr)
        return 1
    directory = Path(tempfile.mkdtemp(prefix="odradek-sync-cost-", dir=options.dir or "/tmp"))
    aio = KernelAio.open(4)
    try:
        print("| write per round | way | p50 ms | p90 ms |")
        print("| --- | --- | --- | --- |")
        for size in SIZES:
            for way, took in measure(directory, size, options.syncs, aio).items():
                p50 = statistics.median(took) * 1e3
                p90 = statistics.quantiles(took, n=10)[-1] * 1e3
                print(f"| {size // 1024} KiB | {way} | {p50:.3f} | {p90:.3f} |", flush=True)
    finally:
        if aio is not None:
            aio.close()
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
