#!/usr/bin/env python3
"""Footprint of one ``odradek serve`` process: start time and resident memory (issue 4).

Run from the repository root (odradek installed, e.g. ``pip install -e '.[test]'``)::

    python3 benchmarks/footprint.py [--starts 5] [--traffic-mib 50]

What it measures, each time on a real broker subprocess listening on a free 127.0.0.1 port with
a fresh temporary data directory (removed at the end, with the process):

* start: wall time from ``Popen`` of ``python3 -m odradek.broker.cli serve`` (what the
  ``odradek serve`` console script runs) to the first ApiVersions v3 response over TCP (the client
  polls connect every 2 ms, then sends the request built with ``odradek.protocol``). Brokers
  keep their bytecode in a private cache (PYTHONPYCACHEPREFIX in the temporary directory, so
  the source tree is left alone): one unmeasured warm-up start fills it, as installing a
  package does, then ``--starts`` starts are reported as min / median / max; the target
  applies to the median. For reference, ``--starts`` more starts with odradek's own modules
  left out of that cache: what every start costs where bytecode cannot be cached
  (PYTHONDONTWRITEBYTECODE, as under tox), the generated codecs compiled from source each time.
* idle RSS: ``VmRSS`` from ``/proc/<pid>/status`` right after that first answer and after 2 s
  idle.
* traffic RSS: ``VmRSS`` after producing ``--traffic-mib`` MiB of values through
  confluent-kafka (acks=all; half in 1 KiB values, half in 100 KiB values, on a 4-partition
  topic), after consuming all of it back (every byte checked), and the peak (``VmHWM``).

Targets (issue 4): start <= 0.5 s, idle RSS <= 80 MB, RSS after 50 MB of produce traffic <= 150
MB; memory is shown in MB (10^6 bytes) and the traffic counted in MiB, both on the strict side.
The table is printed as Markdown; the exit status is 1 if a target is missed. The whole run is
bounded (each phase has a deadline); on a two-core machine the client shares the CPU with the
broker, so start times vary by some tens of milliseconds between runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import odradek.broker
import odradek.protocol
import odradek.storage
from _support import KIB, MIB, markdown_table, stop_process
from odradek.protocol.connection import ClientConnection
from odradek.protocol.messages.api_versions import ApiVersionsRequest

START_TARGET_S = 0.5
IDLE_RSS_TARGET_MB = 80.0
TRAFFIC_RSS_TARGET_MB = 150.0

START_DEADLINE_S = 20.0
IDLE_S = 2.0
TRAFFIC_DEADLINE_S = 240.0
TOPIC = "footprint"
PARTITIONS = 4
VALUE_SIZES = (KIB, 100 * KIB)


class Broker:
    """One ``odradek serve`` subprocess on a free loopback port with its own data directory."""

    def __init__(self, work_dir: str, name: str, env: dict, data_dir: str | None = None, preexec_fn=None):
        self.data_dir = data_dir or os.path.join(work_dir, name)
        self.port = _free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._log = open(os.path.join(work_dir, f"{name}.log"), "wb")
        command = [sys.executable, "-m", "odradek.broker.cli", "serve",
                   "--override", f"listeners=PLAINTEXT://{self.bootstrap}",
                   "--override", f"log.dirs={self.data_dir}"]
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._log, env=env,
                                        preexec_fn=preexec_fn)

    def seconds_to_api_versions(self, deadline_s: float = START_DEADLINE_S) -> float:
        """Poll-connect, send ApiVersions v3, return seconds from Popen to its response."""
        deadline = self.started_at + deadline_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited {self.process.returncode} before answering: {self.log()}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no ApiVersions answer within {deadline_s}s: {self.log()}")
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=deadline_s)
            except ConnectionRefusedError:
                time.sleep(0.002)
                continue
            with sock:
                response = _request(sock, ApiVersionsRequest(client_software_name="odradek-footprint",
                                                             client_software_version="1"), 3)
            elapsed = time.perf_counter() - self.started_at
            if response.error_code != 0 or not response.api_keys:
                raise RuntimeError(f"ApiVersions answered error {response.error_code}")
            return elapsed

    def rss_mb(self, field: str = "VmRSS") -> float:
        return rss_mb(self.process.pid, field)

    def log(self) -> str:
        self._log.flush()
        with open(self._log.name, "rb") as handle:
            return handle.read().decode(errors="replace")[-2000:]

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it has not exited after ``timeout`` s."""
        stop_process(self.process, timeout)
        self._log.close()


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """``field`` (VmRSS, VmHWM) of process ``pid`` in MB (10^6 bytes)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * KIB / 1e6  # the kernel's "kB" are KiB
    raise RuntimeError(f"{field} missing from /proc/{pid}/status")


def bytecode_environment(pycache_dir: str, *, write: bool) -> dict:
    """The broker's environment with its bytecode cache in ``pycache_dir`` (PYTHONPYCACHEPREFIX:
    nothing read from or written into the source tree); ``write=False`` reads it only."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=pycache_dir)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def without_odradek_bytecode(pycache_dir: str, copy_dir: str) -> None:
    """Copy the cache in ``pycache_dir`` to ``copy_dir`` less odradek's own modules, which a
    broker started with it then compiles from source (as under tox, whose
    PYTHONDONTWRITEBYTECODE leaves no cache behind) while the standard library stays cached."""
    shutil.copytree(pycache_dir, copy_dir)
    for package in (odradek.broker, odradek.protocol, odradek.storage):
        source_dir = os.path.dirname(os.path.abspath(package.__file__))
        shutil.rmtree(os.path.join(copy_dir, source_dir.lstrip(os.sep)))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _request(sock: socket.socket, message, version: int):
    connection = ClientConnection()
    sock.sendall(connection.encode_request(message, version, 1, client_id="odradek-footprint"))
    while True:
        answer = connection.next_response()
        if answer is not None:
            return answer[1]
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("broker closed the connection before answering ApiVersions")
        connection.receive_data(data)


def produce_and_consume(broker: Broker, traffic_bytes: int) -> dict[str, float]:
    """Produce ``traffic_bytes`` of values (acks=all), then consume them back; RSS after each."""
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    deadline = time.monotonic() + TRAFFIC_DEADLINE_S
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).values():
        future.result(timeout=30)

    failures: list[str] = []

    def delivered(error, _message) -> None:
        if error is not None:
            failures.append(str(error))

    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    per_size = traffic_bytes // len(VALUE_SIZES)
    expected = {}  # value size -> count
    for size in VALUE_SIZES:
        count = per_size // size
        expected[size] = count
        value = bytes([size % 251]) * size
        for index in range(count):
            while True:
                try:
                    producer.produce(TOPIC, value=value, key=b"%d" % index, on_delivery=delivered)
                    break
                except BufferError:  # librdkafka's local queue is full: let it drain
                    producer.poll(0.05)
            if index % 1000 == 0:
                producer.poll(0)
    remaining = producer.flush(max(1.0, deadline - time.monotonic()))
    if remaining or failures:
        raise RuntimeError(f"produce failed: {remaining} undelivered, errors {failures[:3]}")
    produced = sum(size * count for size, count in expected.items())
    result = {"produced_bytes": produced, "after_produce": broker.rss_mb()}

    # assign(), not subscribe(): no group membership, just fetches (librdkafka wants a group.id).
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "footprint",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, partition, 0) for partition in range(PARTITIONS)])
    received = dict.fromkeys(VALUE_SIZES, 0)
    try:
        while sum(received.values()) < sum(expected.values()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"consumed {received} of {expected} before the deadline")
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                if message.error():
                    raise KafkaException(message.error())
                value = message.value()
                size = len(value)
                if size not in received or value != bytes([size % 251]) * size:
                    raise RuntimeError(f"unexpected value of {size} bytes at offset {message.offset()}")
                received[size] += 1
    finally:
        consumer.close()
    if received != expected:
        raise RuntimeError(f"consumed {received}, produced {expected}")
    result["after_consume"] = broker.rss_mb()
    result["peak"] = broker.rss_mb("VmHWM")
    return result


def _verdict(value: float, target: float) -> str:
    return "pass" if value <= target else "**FAIL**"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=5, help="measured starts (default 5)")
    parser.add_argument("--traffic-mib", type=int, default=50, help="MiB of values to produce (default 50)")
    args = parser.parse_args(argv)
    if args.starts < 1 or args.traffic_mib < 1:
        parser.error("--starts and --traffic-mib must be at least 1")

    work_dir = tempfile.mkdtemp(prefix="odradek-footprint-")
    brokers: list[Broker] = []

    def start(name: str, env: dict) -> tuple[Broker, float]:
        broker = Broker(work_dir, name, env)
        brokers.append(broker)
        return broker, broker.seconds_to_api_versions()

    try:
        pycache_dir = os.path.join(work_dir, "pycache")
        warm_up, _ = start("warm-up", bytecode_environment(pycache_dir, write=True))
        warm_up.stop()
        cached = bytecode_environment(pycache_dir, write=False)
        start_times = []
        for run in range(args.starts):
            broker, seconds = start(f"start{run}", cached)
            start_times.append(seconds)
            if run == 0:
                rss_started = broker.rss_mb()
                time.sleep(IDLE_S)
                rss_idle = broker.rss_mb()
                traffic = produce_and_consume(broker, args.traffic_mib * MIB)
            broker.stop()
        source_pycache_dir = os.path.join(work_dir, "pycache-without-odradek")
        without_odradek_bytecode(pycache_dir, source_pycache_dir)
        from_source = bytecode_environment(source_pycache_dir, write=False)
        source_start_times = []
        for run in range(args.starts):
            broker, seconds = start(f"source-start{run}", from_source)
            source_start_times.append(seconds)
            if run == 0:
                rss_source_started = broker.rss_mb()
            broker.stop()
    finally:
        for broker in brokers:
            broker.stop()
        shutil.rmtree(work_dir, ignore_errors=True)

    def spread(times: list[float]) -> str:
        return "%.3f / %.3f / %.3f s" % (min(times), statistics.median(times), max(times))

    median = statistics.median(start_times)
    traffic_mib = traffic["produced_bytes"] / MIB
    rows = [
        ("start to first ApiVersions answer (bytecode cached), min / median / max of %d" % len(start_times),
         spread(start_times), "median <= %.1f s" % START_TARGET_S, _verdict(median, START_TARGET_S)),
        ("idle RSS right after the first answer", "%.1f MB" % rss_started,
         "<= %.0f MB" % IDLE_RSS_TARGET_MB, _verdict(rss_started, IDLE_RSS_TARGET_MB)),
        ("idle RSS after %.0f s" % IDLE_S, "%.1f MB" % rss_idle,
         "<= %.0f MB" % IDLE_RSS_TARGET_MB, _verdict(rss_idle, IDLE_RSS_TARGET_MB)),
        ("RSS after producing %.0f MiB (acks=all, 1 KiB + 100 KiB values)" % traffic_mib,
         "%.1f MB" % traffic["after_produce"], "<= %.0f MB" % TRAFFIC_RSS_TARGET_MB,
         _verdict(traffic["after_produce"], TRAFFIC_RSS_TARGET_MB)),
        ("RSS after consuming it all back", "%.1f MB" % traffic["after_consume"],
         "<= %.0f MB" % TRAFFIC_RSS_TARGET_MB, _verdict(traffic["after_consume"], TRAFFIC_RSS_TARGET_MB)),
        ("peak RSS (VmHWM) over the run", "%.1f MB" % traffic["peak"], "(for reference)", "-"),
        ("start, odradek compiled from source each time (no bytecode cache), min / median / max",
         spread(source_start_times), "(for reference)", "-"),
        ("idle RSS right after such a start", "%.1f MB" % rss_source_started, "(for reference)", "-"),
    ]
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"odradek footprint (python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {load} at the end)\n")
    print(markdown_table(["measure", "value", "target", "result"], [list(row) for row in rows]))
    return 1 if any(row[3] != "pass" and row[3] != "-" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
