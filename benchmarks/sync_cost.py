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

The difference between the first and the last is what the zeros written ahead of a hot
segment's appends save each round (docs/performance.md, "acks=all: what the fsync costs").

A second table times rounds over several files, 16 KiB written to each, as a round of an
acks=all load over several partitions syncs one ``.log`` per partition: one kernel AIO
fdatasync per file, appending and overwriting written zeros, and for comparison one
``syncfs`` of the whole file system after overwrites (one journal commit and one cache flush
for every file, but it also writes back whatever else is dirty on that file system).
"""

from __future__ import annotations

import argparse
import ctypes
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
FILE_COUNTS = (1, 4, 16)
FILE_WRITE = 16384


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


def _aio_fdatasync(aio: KernelAio, fds) -> None:
    """fdatasync every one of ``fds`` at once through the kernel's AIO; back once all ended."""
    for fd in fds:
        aio.submit(fd, True, None)
    while aio.in_flight:
        select.select([aio.eventfd], [], [], 5)
        aio.completions()


def measure(directory: Path, size: int, syncs: int, aio: KernelAio | None) -> dict[str, list[float]]:
    results = {}
    appended = directory / "appended"
    fd = os.open(appended, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    try:
        results["append, fdatasync"] = _timed_rounds(fd, size, syncs, start=0, sync=os.fdatasync)
        if aio is not None:
            results["append, kernel AIO"] = _timed_rounds(fd, size, syncs, start=size * syncs, sync=lambda fd: _aio_fdatasync(aio, [fd]))
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


def measure_files(directory: Path, files: int, syncs: int, aio: KernelAio | None) -> dict[str, list[float]]:
    """Rounds that write FILE_WRITE bytes to each of ``files`` files and sync them all."""
    libc = ctypes.CDLL(None, use_errno=True)
    has_syncfs = hasattr(libc, "syncfs")
    data = os.urandom(FILE_WRITE)
    results = {}
    ways = [("append", "one AIO fdatasync per file")] if aio is not None else []
    ways += [("overwrite", "one AIO fdatasync per file")] if aio is not None else []
    ways += [("overwrite", "one syncfs")] if has_syncfs else []
    for write, sync in ways:
        fds = [os.open(directory / f"file-{index}", os.O_RDWR | os.O_CREAT | os.O_TRUNC) for index in range(files)]
        try:
            if write == "overwrite":
                for fd in fds:
                    os.pwrite(fd, bytes(FILE_WRITE * syncs), 0)
                    os.fsync(fd)
            took = []
            for round_ in range(syncs):
                for fd in fds:
                    os.pwrite(fd, data, round_ * FILE_WRITE)
                began = time.perf_counter()
                if sync == "one syncfs":
                    if libc.syncfs(fds[0]) != 0:
                        raise OSError(ctypes.get_errno(), "syncfs")
                else:
                    _aio_fdatasync(aio, fds)
                took.append(time.perf_counter() - began)
            results[f"{write}, {sync}"] = took
        finally:
            for index, fd in enumerate(fds):
                os.close(fd)
                (directory / f"file-{index}").unlink()
    return results


def _print_row(first: str, way: str, took: list[float]) -> None:
    p50 = statistics.median(took) * 1e3
    p90 = statistics.quantiles(took, n=10)[-1] * 1e3
    print(f"| {first} | {way} | {p50:.3f} | {p90:.3f} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="where the files are written (a temporary directory under /tmp)")
    parser.add_argument("--syncs", type=int, default=300, help="rounds per size and way (300)")
    options = parser.parse_args(argv)
    if not hasattr(os, "fdatasync"):
        print("no fdatasync on this system", file=sys.stderr)
        return 1
    directory = Path(tempfile.mkdtemp(prefix="odradek-sync-cost-", dir=options.dir or "/tmp"))
    aio = KernelAio.open(max(FILE_COUNTS))
    try:
        print("| write per round | way | p50 ms | p90 ms |")
        print("| --- | --- | --- | --- |")
        for size in SIZES:
            for way, took in measure(directory, size, options.syncs, aio).items():
                _print_row(f"{size // 1024} KiB", way, took)
        print(f"\n| files per round ({FILE_WRITE // 1024} KiB each) | way | p50 ms | p90 ms |")
        print("| --- | --- | --- | --- |")
        for files in FILE_COUNTS:
            for way, took in measure_files(directory, files, options.syncs, aio).items():
                _print_row(str(files), way, took)
    finally:
        if aio is not None:
            aio.close()
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
