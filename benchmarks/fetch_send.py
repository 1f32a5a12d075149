#!/usr/bin/env python3
"""Sending fetch data: which way of moving file bytes to a loopback socket is fastest here, and
how many fsyncs per second the disk does.

Run from the repository root (odradek installed)::

    python3 benchmarks/fetch_send.py                      # defaults: about a minute
    python3 benchmarks/fetch_send.py --file-size 256M --runs 9
    python3 benchmarks/fetch_send.py --methods sendfile,preadv --sndbuf default
    python3 benchmarks/fetch_send.py --fsync-seconds 0    # no fsync baseline

Sizes take K, M, G suffixes. A file of ``--file-size`` (1 GiB) is written under ``--dir``
(default /tmp), read once so that it sits in the page cache, and deleted at the end.

**Send methods.** One run sends the whole file over a fresh TCP connection on 127.0.0.1 to a
receiver in a child process (the other core) that drains it with ``recv_into`` into one
reused 1 MiB buffer as fast as it can and, at EOF, answers with the byte count; a run's time is
from the first byte sent to that answer. The sender moves ``--chunk`` (1 MiB, the broker's
``SEND_CHUNK_SIZE``) at a time:

* ``sendfile``: ``os.sendfile`` from the file (no copy through user space);
* ``preadv reused + sendall``: ``os.preadv`` into one buffer reused for every chunk;
* ``preadv fresh + sendall``: ``os.preadv`` into a new ``bytearray`` per chunk (what the
  broker's ``RegionReader`` does, since the transport may keep the buffer);
* ``pread + sendall``: ``os.pread``, a new ``bytes`` per chunk (not zero-filled first);
* ``mmap + sendall``: slices of a read-only ``mmap`` of the file;
* ``<loop> RegionReader + transport.write``: the broker's own send path, run on an asyncio
  event loop (``asyncio``: the standard selector loop; ``uvloop``: what ``odradek serve``
  runs on): ``odradek.broker.records_source.RegionReader`` reads the file region chunk by
  chunk and each chunk goes to ``transport.write`` while the transport does not ask to pause,
  as ``KafkaProtocol._pump_output`` does;
* ``<loop> loop.sendfile``: ``loop.sendfile(transport, file, offset, count)`` (the standard
  loop uses ``os.sendfile``; where a loop does not implement it the row says so).

Each method runs with the kernel's default socket send buffer and with ``SO_SNDBUF`` = 102400,
what the broker sets on its listening sockets (Kafka's default ``socket.send.buffer.bytes``;
accepted sockets inherit it). The methods alternate within each of ``--runs`` rounds; the
table gives the median and the best GB/s (10^9 bytes per second) and the median relative to
``sendfile`` with the same buffer.

**Fsync rate.** In the same directory, for ``--fsync-seconds`` each: a loop of a 100-byte
``os.write`` + ``os.fsync``; the same with ``os.fdatasync``; and the broker's flush of a
partition (``PartitionLog.flush`` fsyncs the ``.log``, ``.index`` and ``.timeindex`` of the
active segment): a 100-byte write to one file, then ``fsync`` of it and of two other files
that were not written. Operations per second and the p50 / p99 latency of one operation.

The machine has two cores shared with other work: figures are noisy, so the load average
(``/proc/loadavg``) is printed with each table.
"""

from __future__ import annotations

import argparse
import asyncio
import mmap
import multiprocessing
import os
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _support import MIB, markdown_table, percentile  # noqa: E402
from storage import parse_size  # noqa: E402

from odradek.broker.records_source import FileRegions, RegionReader  # noqa: E402
from odradek.broker.server import SEND_CHUNK_SIZE  # noqa: E402
from odradek.storage.segment import FileRegion  # noqa: E402

BROKER_SNDBUF = 102400  # Kafka's (and odradek's) default socket.send.buffer.bytes
RECEIVE_BUFFER = MIB
RUN_TIMEOUT_S = 60.0
FSYNC_WRITE = b"x" * 100


# --- the receiver (child process) ---

def _drain_forever(listener: socket.socket, cpus: set[int] | None) -> None:
    """Accept one connection at a time, read it to EOF, answer with the byte count."""
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    buffer = memoryview(bytearray(RECEIVE_BUFFER))
    while True:
        connection, _ = listener.accept()
        with connection:
            total = 0
            while True:
                count = connection.recv_into(buffer)
                if not count:
                    break
                total += count
            connection.sendall(struct.pack(">Q", total))


def _read_count(sock: socket.socket) -> int:
    answer = b""
    while len(answer) < 8:
        data = sock.recv(8 - len(answer))
        if not data:
            raise ConnectionError("the receiver closed without answering")
        answer += data
    return struct.unpack(">Q", answer)[0]


# --- senders over a blocking socket ---

def _send_sendfile(sock, file, size, chunk):
    fd, out, position = file.fileno(), sock.fileno(), 0
    while position < size:
        position += os.sendfile(out, fd, position, min(chunk, size - position))


def _send_preadv_reused(sock, file, size, chunk):
    fd, buffer, position = file.fileno(), memoryview(bytearray(chunk)), 0
    while position < size:
        count = os.preadv(fd, [buffer[:min(chunk, size - position)]], position)
        sock.sendall(buffer[:count])
        position += count


def _send_preadv_fresh(sock, file, size, chunk):
    fd, position = file.fileno(), 0
    while position < size:
        buffer = bytearray(min(chunk, size - position))
        count = os.preadv(fd, [buffer], position)
        sock.sendall(memoryview(buffer)[:count])
        position += count


def _send_pread(sock, file, size, chunk):
    fd, position = file.fileno(), 0
    while position < size:
        data = os.pread(fd, min(chunk, size - position), position)
        sock.sendall(data)
        position += len(data)


def _send_mmap(sock, file, size, chunk):
    with mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            for position in range(0, size, chunk):
                sock.sendall(view[position:position + chunk])
        finally:
            view.release()


def _blocking_run(send):
    def run(sock, file, size, chunk):
        sock.setblocking(True)
        started = time.perf_counter()
        send(sock, file, size, chunk)
        sock.shutdown(socket.SHUT_WR)
        received = _read_count(sock)
        return time.perf_counter() - started, received
    return run


# --- senders on an event loop ---

class _AnswerReader(asyncio.Protocol):
    """Waits for the receiver's 8-byte count."""

    def __init__(self, done: asyncio.Future):
        self.done = done
        self.answer = b""

    def data_received(self, data):
        self.answer += data
        if len(self.answer) >= 8 and not self.done.done():
            self.done.set_result(struct.unpack(">Q", self.answer[:8])[0])

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed before the receiver answered"))


class _RegionSender(_AnswerReader):
    """The broker's output path in miniature: a RegionReader over one file region, a chunk to
    ``transport.write`` at a time while the transport does not ask to pause
    (``KafkaProtocol._pump_output`` / ``pause_writing`` / ``resume_writing``)."""

    def __init__(self, file, size: int, chunk: int, done: asyncio.Future):
        handle = SimpleNamespace(file=file)  # FileRegion's handle: only .file is used here
        self.reader = RegionReader(FileRegions([FileRegion(handle, 0, size)]))
        self.chunk = chunk
        super().__init__(done)
        self.paused = False
        self.eof_sent = False
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.pump()

    def pump(self):
        while not self.reader.done and not self.paused:
            self.transport.write(self.reader.next_chunk(self.chunk))
        if self.reader.done and not self.paused and not self.eof_sent:
            # Not from inside the transport's own callback: asyncio's _write_ready, which
            # calls resume_writing, would shut the socket down a second time after it.
            self.eof_sent = True
            asyncio.get_running_loop().call_soon(self.transport.write_eof)

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        self.pump()


async def _transport_write(sock, file, size, chunk):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    started = time.perf_counter()
    transport, _ = await loop.create_connection(lambda: _RegionSender(file, size, chunk, done), sock=sock)
    try:
        received = await asyncio.wait_for(done, RUN_TIMEOUT_S)
        return time.perf_counter() - started, received
    finally:
        done.cancel()  # no-op once answered; otherwise connection_lost must not set it
        transport.close()


async def _loop_sendfile(sock, file, size, chunk):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    started = time.perf_counter()
    transport, _ = await loop.create_connection(lambda: _AnswerReader(done), sock=sock)
    try:
        await loop.sendfile(transport, file, 0, size, fallback=False)
        transport.write_eof()
        received = await asyncio.wait_for(done, RUN_TIMEOUT_S)
        return time.perf_counter() - started, received
    finally:
        done.cancel()  # no-op once answered; otherwise connection_lost must not set it
        transport.close()


def _new_loop(kind: str):
    if kind == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.SelectorEventLoop()


def _loop_run(kind: str, coroutine_function):
    def run(sock, file, size, chunk):
        sock.setblocking(False)
        loop = _new_loop(kind)
        try:
            return loop.run_until_complete(coroutine_function(sock, file, size, chunk))
        finally:
            loop.close()
    return run


METHODS = {
    "sendfile": ("os.sendfile", _blocking_run(_send_sendfile)),
    "preadv": ("os.preadv into a reused buffer + sendall", _blocking_run(_send_preadv_reused)),
    "preadv-fresh": ("os.preadv into a fresh bytearray + sendall", _blocking_run(_send_preadv_fresh)),
    "pread": ("os.pread (new bytes) + sendall", _blocking_run(_send_pread)),
    "mmap": ("mmap slices + sendall", _blocking_run(_send_mmap)),
    "asyncio-write": ("asyncio: RegionReader + transport.write (the broker's path)",
                      _loop_run("asyncio", _transport_write)),
    "uvloop-write": ("uvloop: RegionReader + transport.write (the broker's path, as served)",
                     _loop_run("uvloop", _transport_write)),
    "asyncio-sendfile": ("asyncio: loop.sendfile", _loop_run("asyncio", _loop_sendfile)),
    "uvloop-sendfile": ("uvloop: loop.sendfile", _loop_run("uvloop", _loop_sendfile)),
}


def _one_run(method: str, address, sndbuf: int | None, file, size: int, chunk: int) -> float:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if sndbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        sock.settimeout(RUN_TIMEOUT_S)
        sock.connect(address)
        elapsed, received = METHODS[method][1](sock, file, size, chunk)
    finally:
        sock.close()
    if received != size:
        raise RuntimeError(f"{method}: the receiver got {received} bytes of {size}")
    return elapsed


def _write_file(path: str, size: int) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as out:
        for position in range(0, size, MIB):
            out.write(block[:min(MIB, size - position)])
    with open(path, "rb") as cached:  # into the page cache
        while cached.read(8 * MIB):
            pass


def measure_send(directory: str, size: int, chunk: int, runs: int, methods: list[str],
                 sndbufs: list[int | None], affinity: str) -> list[list[str]]:
    path = os.path.join(directory, "fetch-data")
    _write_file(path, size)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    cpus = sorted(os.sched_getaffinity(0))
    sender_cpus = receiver_cpus = None
    if affinity == "split" and len(cpus) >= 2:
        sender_cpus, receiver_cpus = {cpus[0]}, {cpus[1]}
    elif affinity == "same":
        sender_cpus = receiver_cpus = {cpus[0]}
    receiver = multiprocessing.get_context("fork").Process(target=_drain_forever, args=(listener, receiver_cpus),
                                                           daemon=True)
    receiver.start()
    if sender_cpus is not None:
        os.sched_setaffinity(0, sender_cpus)
    samples: dict[tuple, list[float]] = {}
    unsupported: dict[tuple, str] = {}
    try:
        with open(path, "rb") as file:
            for _ in range(runs):
                for sndbuf in sndbufs:
                    for method in methods:
                        key = (method, sndbuf)
                        if key in unsupported:
                            continue
                        try:
                            elapsed = _one_run(method, listener.getsockname(), sndbuf, file, size, chunk)
                        except (NotImplementedError, asyncio.SendfileNotAvailableError) as error:
                            unsupported[key] = f"not available ({type(error).__name__})"
                            continue
                        samples.setdefault(key, []).append(size / elapsed / 1e9)
    finally:
        receiver.terminate()
        receiver.join()
        listener.close()
        os.sched_setaffinity(0, cpus)
    rows = []
    for sndbuf in sndbufs:
        baseline = samples.get(("sendfile", sndbuf))
        for method in methods:
            key = (method, sndbuf)
            buffer_label = "kernel default" if sndbuf is None else f"{sndbuf}"
            if key in unsupported:
                rows.append([METHODS[method][0], buffer_label, "n/a", "n/a", unsupported[key]])
                continue
            rates = samples[key]
            ratio = (f"{statistics.median(rates) / statistics.median(baseline):.2f}x" if baseline else "-")
            rows.append([METHODS[method][0], buffer_label, f"{statistics.median(rates):.2f}",
                         f"{max(rates):.2f}", ratio])
    return rows


# --- fsync rate ---

def _fsync_loop(directory: str, seconds: float, pattern: str) -> tuple[int, float, list[float]]:
    paths = [os.path.join(directory, f"fsync-{pattern}-{index}") for index in range(3)]
    fds = [os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) for p in paths]
    latencies = []
    try:
        for fd in fds:  # the two "index" files exist and hold something, already synced
            os.write(fd, FSYNC_WRITE)
            os.fsync(fd)
        started = time.perf_counter()
        deadline = started + seconds
        while True:
            begin = time.perf_counter()
            if begin >= deadline:
                break
            os.write(fds[0], FSYNC_WRITE)
            if pattern == "fsync":
                os.fsync(fds[0])
            elif pattern == "fdatasync":
                os.fdatasync(fds[0])
            else:  # the broker's partition flush: .log, .index, .timeindex
                for fd in fds:
                    os.fsync(fd)
            latencies.append(time.perf_counter() - begin)
        return len(latencies), time.perf_counter() - started, sorted(latencies)
    finally:
        for fd in fds:
            os.close(fd)
        for path in paths:
            os.unlink(path)


def measure_fsync(directory: str, seconds: float) -> list[list[str]]:
    rows = []
    for pattern, label in (("fsync", "100-byte write + fsync"),
                           ("fdatasync", "100-byte write + fdatasync"),
                           ("flush", "100-byte write + fsync of 3 files (a partition flush)")):
        count, elapsed, latencies = _fsync_loop(directory, seconds, pattern)
        rows.append([label, f"{count:,}", f"{count / elapsed:,.0f}",
                     f"{percentile(latencies, 0.5) * 1e6:,.0f}", f"{percentile(latencies, 0.99) * 1e6:,.0f}"])
    return rows


def _load() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file-size", type=parse_size, default=parse_size("1G"), help="bytes per run (1G)")
    parser.add_argument("--chunk", type=parse_size, default=SEND_CHUNK_SIZE,
                        help=f"bytes per read/send (default {SEND_CHUNK_SIZE}, the broker's SEND_CHUNK_SIZE)")
    parser.add_argument("--runs", type=int, default=5, help="rounds over every method (5)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated, from: " + ", ".join(METHODS))
    parser.add_argument("--sndbuf", choices=["both", "default", "broker"], default="both",
                        help="socket send buffer: kernel default, the broker's 102400, or both")
    parser.add_argument("--affinity", choices=["split", "same", "none"], default="split",
                        help="sender and receiver pinned to two different CPUs (default), "
                             "both to one, or left to the scheduler")
    parser.add_argument("--fsync-seconds", type=float, default=3.0, help="seconds per fsync pattern (3; 0: skip)")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the file goes (default /tmp)")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or args.runs < 1 or args.file_size < args.chunk:
        parser.error(f"unknown methods {unknown}" if unknown else "--runs >= 1 and --file-size >= --chunk")
    sndbufs = {"both": [None, BROKER_SNDBUF], "default": [None], "broker": [BROKER_SNDBUF]}[args.sndbuf]

    directory = tempfile.mkdtemp(prefix="odradek-fetch-send-", dir=args.dir)
    try:
        rows = measure_send(directory, args.file_size, args.chunk, args.runs, methods, sndbufs, args.affinity)
        print(f"Sending {args.file_size / MIB:,.0f} MiB from a cached file to a loopback socket, "
              f"{args.chunk / MIB:g} MiB chunks, median of {args.runs} runs, affinity {args.affinity} "
              f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {_load()})\n")
        print(markdown_table(["method", "SO_SNDBUF", "GB/s median", "GB/s best", "median vs sendfile"], rows))
        if args.fsync_seconds > 0:
            fsync_rows = measure_fsync(directory, args.fsync_seconds)
            print(f"\nFsync rate in {args.dir}, {args.fsync_seconds:g} s per row (load average {_load()})\n")
            print(markdown_table(["operation", "count", "per second", "p50 µs", "p99 µs"], fsync_rows))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
