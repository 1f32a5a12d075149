#!/usr/bin/env python3
"""End-to-end throughput and latency of ``odradek serve`` against Apache Kafka, one row per workload.

Run from the repository root (odradek installed with its test extras; Java 17+ and Kafka's jars,
fetched by ``compat/kafka_jars.py`` into ``compat/.cache`` on the first run)::

    python3 benchmarks/broker_throughput.py                        # every row; the estimate is printed first
    python3 benchmarks/broker_throughput.py --write-docs docs/performance.md
    python3 benchmarks/broker_throughput.py --quick --rows baseline,100b,latency-1k
    python3 benchmarks/broker_throughput.py --brokers odradek,kafka --rows baseline,producers-8
    python3 benchmarks/broker_throughput.py --list-rows

Brokers (``BROKERS``; one entry each: a name, a label, a start function returning the running
broker, and the rows it cannot do with the reason, shown in the tables as "cannot, note N",
the reasons numbered after the tables).
Each is started fresh for every repeat with its own temporary data directory on a free
127.0.0.1 port (deleted afterwards, also on Ctrl-C or an error); odradek and Kafka read the same
``server.properties``, the one compat/make_kafka_fixture.py writes (single-node replication
factors, ``group.initial.rebalance.delay.ms=0``; odradek ignores the KRaft keys):

* ``odradek``: ``python3 -m odradek.broker.cli serve --config server.properties`` (what
  ``odradek serve`` runs, on uvloop), so ``odradek.flush.on.acks.all=true``: an acks=all produce
  is answered after an fsync (see docs/architecture.md, "Durability");
* ``odradek-nofsync``: the same with ``odradek.flush.on.acks.all=false`` (acks=all answered
  after the append, as Kafka without replicas does); it runs only the rows where that setting
  matters (acks=all produce and latency), the others are odradek's;
* ``kafka``: Apache Kafka (compat/kafka_jars.py's pinned version), one KRaft node in combined
  mode, formatted with its StorageTool, started with the JVM options of Kafka's
  ``kafka-server-start.sh`` (``-Xmx1g -Xms1g``, G1, full JIT). Kafka does not fsync on produce
  (``log.flush.interval.messages`` is unbounded by default).

Rows (``ROWS``, ``--list-rows``): each changes one thing against the baseline (1 KiB records, one
partition, one producer, acks=all, no compression, Java producer), so that every dimension of a
user's workload is covered without a cartesian product. Two load generators:

* ``java``: Kafka's own tools from the same jars (``ProducerPerformance`` = kafka-producer-perf-test,
  ``ConsumerPerformance`` = kafka-consumer-perf-test; JVMs with ``-Xmx512m``, full JIT) with the
  Java client's defaults (batch.size 16384, linger.ms 5, max.in.flight 5) plus the row's acks
  and ``compression.type`` and ``--producer-props``;
* ``librdkafka``: benchmarks/rdkafka_load.py (confluent-kafka), one process per producer or
  consumer, with librdkafka's defaults (linger 5 ms, batches up to 1 MB / 10,000 records).

Produce rows run as fast as the producers go. Every producer reports each second; once every
producer has reported ``--skip-seconds`` (2; JVM start, JIT, metadata), the measured window
opens, and it closes ``--row-seconds`` (6) later, after each producer's next report. Per
producer, the rate over its reports inside the window; summed over producers. MiB/s is 2^20
bytes of record values per second (what the tools call MB/sec; for compressed rows, the values
before compression). The broker's and the generators' CPU over the window are read from
``/proc/PID/stat`` and ``/proc/PID/task/TID/stat``: a generator thread near 100 % of a core is
marked "bound" (the row may measure the generator, not the broker).

Consume rows read, from the page cache, a topic of ``--consume-mib`` (1024) MiB of 1 KiB records
that one librdkafka producer (acks=1) wrote on first use, so that every broker serves the same
data (one topic of 1 partition, one of 16): ``consume`` is one ConsumerPerformance (classic group
protocol, fetch size 1 MiB; its ``fetch.MB.sec``, after the group join); the librdkafka rows start
their consumers in one group, wait until the group has assigned every partition (held paused),
then time the read of everything from the start: total bytes / (last record - start).

Latency rows produce at a fixed rate, acks=all, for ``--latency-seconds`` (8): the Java rows
give ProducerPerformance's send-to-acknowledgement percentiles (linger.ms included) over the
records after rate x ``--skip-seconds`` warm-up records (its ``--warmup-records``: the tool's
start, first metadata request and JIT would otherwise be the slowest percent, and p99 would say
more about them than about the broker); the ``e2e`` rows stamp each record with its send time and a
librdkafka consumer in another process takes receive time minus send time (produce to consume),
over the records after the first ``--skip-seconds``; their producer's send-to-ack p99 is shown
too.

Fsyncs: where ``perf`` can count the ``syscalls:sys_enter_fsync`` / ``fdatasync`` /
``io_submit`` tracepoints of the broker process (``perf stat -p``; no ptrace, so the broker is
not slowed down), they are counted during each produce and latency row, with the record batches
the row left in the topic's segment files (brokers writing Kafka's log format): batches per
fsync shows how many batches one flush covered. ``io_submit`` counts because odradek hands its
syncs to the kernel's AIO on Linux, one ``io_submit`` per file synced (storage/kernel_aio.py),
and submits nothing else that way.

Each fresh broker first takes ``--warm-up-seconds`` (8) of unmeasured acks=1 produce (the Kafka
JVM compiles its hot paths). The brokers alternate: each repeat starts them in a rotated order.
A row that runs ``--row-timeout`` (40) seconds past its own length is killed and reported as
failed. The machine's cores are shared by the broker, the load generators and whatever else
runs: the load average is printed with the tables. ``--write-docs PATH`` replaces the text
between ``<!-- broker_throughput:begin -->`` and ``<!-- broker_throughput:end -->`` in PATH with
the report (machine, command line, date, load, tables).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(BENCHMARKS.parent / "compat"))

import kafka_jars  # noqa: E402  (compat/, a sibling script folder)
import make_kafka_fixture as kafka_fixture  # noqa: E402
from _support import KIB, MIB, markdown_table  # noqa: E402
import peers  # noqa: E402

from odradek.protocol.records.header import BATCH_HEADER_SIZE, read_batch_header  # noqa: E402

PRODUCER_PERFORMANCE = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_PERFORMANCE = "org.apache.kafka.tools.ConsumerPerformance"
RDKAFKA_LOAD = BENCHMARKS / "rdkafka_load.py"
# kafka_jars.java_command starts short-lived tools with C1 and the serial GC; a load generator
# and a broker under load want what Kafka's own scripts give them (the later flags win).
FULL_JIT = ["-XX:TieredStopAtLevel=4", "-XX:-UseSerialGC", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent"]
KAFKA_HEAP = "1g"
TOOL_HEAP = "512m"
BROKER_START_TIMEOUT_S = 90.0
TOPIC_CREATE_TIMEOUT_S = 60.0
GROUP_FORM_TIMEOUT_S = 60.0
FILL_TIMEOUT_S = 300.0
FSYNC_EVENTS = "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_io_submit"
DOC_BEGIN = "<!-- broker_throughput:begin -->"
DOC_END = "<!-- broker_throughput:end -->"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# A generator thread using this much of a core is taken as the row's bottleneck (see CpuWindow).
GENERATOR_BOUND_CPU = 90
# Broker and generators together using this much (90 % of every core) leave nothing to spare.
MACHINE_FULL_CPU = 90 * len(os.sched_getaffinity(0))

JAVA, RDKAFKA = "java", "librdkafka"
PRODUCE, CONSUME, LATENCY, E2E = "produce", "consume", "latency", "e2e"


class RowFailed(RuntimeError):
    """A load generator failed or ran past the row's deadline."""


# --- the rows ---

@dataclass(frozen=True)
class Row:
    """One workload: what it changes against the baseline row, and with which load generator."""

    name: str
    label: str
    kind: str
    generator: str
    record_size: int = KIB
    partitions: int = 1
    producers: int = 1
    consumers: int = 1
    acks: str = "all"
    compression: str = "none"
    rate: int = 0

    @property
    def fsync_matters(self) -> bool:
        return self.acks == "all" and self.kind != CONSUME

    @property
    def in_records(self) -> bool:
        """Small records are compared by records/s (the per-record cost), the rest by MiB/s."""
        return self.record_size < KIB


ROWS_IN_ORDER = [
    Row("baseline", "1 KiB records, 1 partition, 1 producer, acks=all", PRODUCE, JAVA),
    Row("acks-1", "acks=1", PRODUCE, JAVA, acks="1"),
    Row("100b", "100 B records", PRODUCE, JAVA, record_size=100),
    Row("100kib", "100 KiB records", PRODUCE, JAVA, record_size=100 * KIB),
    Row("partitions-16", "16 partitions", PRODUCE, JAVA, partitions=16),
    Row("partitions-100", "100 partitions", PRODUCE, JAVA, partitions=100),
    Row("producers-8", "8 producers", PRODUCE, JAVA, producers=8),
    Row("lz4", "compression.type=lz4", PRODUCE, JAVA, compression="lz4"),
    Row("zstd", "compression.type=zstd", PRODUCE, JAVA, compression="zstd"),
    Row("rdkafka-baseline", "1 KiB records, 1 partition, 1 producer, acks=all", PRODUCE, RDKAFKA),
    Row("rdkafka-100b", "100 B records", PRODUCE, RDKAFKA, record_size=100),
    Row("rdkafka-producers-8", "8 producers", PRODUCE, RDKAFKA, producers=8),
    Row("consume", "consume from the page cache, 1 consumer", CONSUME, JAVA),
    Row("rdkafka-consume", "consume from the page cache, 1 consumer", CONSUME, RDKAFKA),
    Row("consume-group", "consume from the page cache, 4 consumers in one group, 16 partitions", CONSUME,
        RDKAFKA, partitions=16, consumers=4),
    Row("latency-1k", "1,000 records/s, send to ack", LATENCY, JAVA, rate=1000),
    Row("latency-10k", "10,000 records/s, send to ack", LATENCY, JAVA, rate=10000),
    Row("e2e-1k", "1,000 records/s, produce to consume", E2E, RDKAFKA, rate=1000),
    Row("e2e-10k", "10,000 records/s, produce to consume", E2E, RDKAFKA, rate=10000),
]
ROWS = {row.name: row for row in ROWS_IN_ORDER}


# --- the brokers ---

class RunningBroker:
    """A broker process on 127.0.0.1. ``data_dir``: where it writes Kafka's log format (partition
    directories of ``.log`` segments), or None for a broker that does not (batches are then not
    counted)."""

    def __init__(self, name: str, process: subprocess.Popen, port: int, data_dir: Path | None, log_path: Path):
        self.name = name
        self.process = process
        self.bootstrap = f"127.0.0.1:{port}"
        self.data_dir = data_dir
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        kafka_fixture.stop(self.process)


@dataclass(frozen=True)
class BrokerUnderTest:
    """One entry of the registry. ``start(work)`` starts the broker with its data under the
    temporary directory ``work`` and returns it listening (an object of RunningBroker's shape:
    ``name``, ``bootstrap``, ``pid``, ``data_dir``, ``log_path``, ``stop()``); with
    ``takes_odradek_overrides``, ``start(work, overrides)`` gets ``--odradek-override`` too.
    ``cannot``: row name -> why this broker cannot run it. ``fsync_rows_only``: it runs only the
    rows where acks=all's fsync matters and shares the others with ``odradek``."""

    name: str
    label: str
    start: Callable[..., RunningBroker]
    cannot: Mapping[str, str] = field(default_factory=dict)
    fsync_rows_only: bool = False
    takes_odradek_overrides: bool = False
    start_seconds: float = 5.0  # for the run's estimate: start, stop, clean-up

    def runs(self, row: Row) -> bool:
        return row.fsync_matters or not self.fsync_rows_only

    def start_in(self, work: Path, odradek_overrides: Sequence[str]) -> RunningBroker:
        if self.takes_odradek_overrides:
            return self.start(work, odradek_overrides)
        return self.start(work)


def _write_server_properties(work: Path) -> tuple[Path, int]:
    """compat/make_kafka_fixture.py's ``server.properties`` (one KRaft node, loopback
    listeners, ``log.dirs`` = work/data): odradek and Kafka read the same file."""
    broker_port, controller_port = kafka_fixture.free_port(), kafka_fixture.free_port()
    properties = work / "server.properties"
    properties.write_text(kafka_fixture.server_properties(work, broker_port, controller_port))
    return properties, broker_port


def start_odradek(work: Path, overrides: Sequence[str] = (), *, flush_on_acks_all: bool = True) -> RunningBroker:
    properties, port = _write_server_properties(work)  # odradek ignores the KRaft keys it does not use
    log_path = work / "odradek.log"
    command = [sys.executable, "-m", "odradek.broker.cli", "serve", "--config", str(properties),
               "--override", f"odradek.flush.on.acks.all={str(flush_on_acks_all).lower()}"]
    for override in overrides:
        command += ["--override", override]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    kafka_fixture.wait_for_port(port, process, BROKER_START_TIMEOUT_S, log_path)
    return RunningBroker("odradek", process, port, work / "data", log_path)


def start_odradek_nofsync(work: Path, overrides: Sequence[str] = ()) -> RunningBroker:
    return start_odradek(work, overrides, flush_on_acks_all=False)


def start_kafka(work: Path) -> RunningBroker:
    properties, broker_port = _write_server_properties(work)
    kafka_jars.run_java(kafka_jars.STORAGE_TOOL, ["format", "-t", kafka_fixture.new_cluster_id(), "-c", str(properties)],
                        timeout=120)
    log_path = work / "kafka.log"
    command = kafka_jars.java_command(kafka_jars.KAFKA_SERVER, [str(properties)], heap=KAFKA_HEAP,
                                      jvm_options=[f"-Xms{KAFKA_HEAP}", *FULL_JIT])
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    kafka_fixture.wait_for_port(broker_port, process, BROKER_START_TIMEOUT_S, log_path)
    return RunningBroker("kafka", process, broker_port, work / "data", log_path)


def _registry(entries: list[BrokerUnderTest]) -> dict[str, BrokerUnderTest]:
    registry: dict[str, BrokerUnderTest] = {}
    for entry in entries:
        if entry.name in registry:
            raise ValueError(f"broker {entry.name!r} registered twice")
        unknown = set(entry.cannot) - set(ROWS)
        if unknown:
            raise ValueError(f"broker {entry.name!r}: no rows named {sorted(unknown)}")
        registry[entry.name] = entry
    return registry


# A peer plugs in with one entry here, e.g.
#   BrokerUnderTest("tansu", peers.LABELS["tansu"], peers.start_tansu, cannot={"zstd": "the reason"}),
# its start function returning a broker of RunningBroker's shape (data_dir None if it does not
# write Kafka's log format); ``cannot`` is keyed by the row names of ROWS.
BROKERS = _registry([
    BrokerUnderTest("odradek", "odradek (fsync on acks=all)", start_odradek, takes_odradek_overrides=True,
                    start_seconds=4.0),
    BrokerUnderTest("odradek-nofsync", "odradek (odradek.flush.on.acks.all=false)", start_odradek_nofsync,
                    fsync_rows_only=True, takes_odradek_overrides=True, start_seconds=4.0),
    BrokerUnderTest("kafka", f"Kafka {kafka_jars.kafka_version()}", start_kafka, start_seconds=25.0),
    # The lightweight peers (benchmarks/peers.py fetches them from PyPI on first use).
    BrokerUnderTest("tansu", peers.LABELS["tansu"], peers.start_tansu, cannot=peers.CANNOT["tansu"]),
    BrokerUnderTest("noida", peers.LABELS["noida"], peers.start_noida, cannot=peers.CANNOT["noida"]),
])
REFERENCE, OURS, OURS_NOFSYNC = "kafka", "odradek", "odradek-nofsync"


def start_broker(name: str, work: Path, odradek_overrides: Sequence[str]) -> RunningBroker:
    return BROKERS[name].start_in(work, odradek_overrides)


def create_topic(broker: RunningBroker, topic: str, partitions: int) -> None:
    """Create ``topic`` with the Admin API, retrying while a just-started broker is not ready."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 3})
    deadline = time.monotonic() + TOPIC_CREATE_TIMEOUT_S
    while True:
        try:
            admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=30)
            return
        except KafkaException as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot create {topic} on {broker.name}: {error}") from error
            time.sleep(0.5)


def topic_records(broker: RunningBroker, topic: str, partitions: int) -> int:
    """Records in the topic: the sum of its partitions' high watermarks (any broker)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "watermarks", "log_level": 3})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)[1]
                   for partition in range(partitions))
    finally:
        consumer.close()


def count_batches(broker: RunningBroker, topic: str) -> int | None:
    """Record batches in the topic's segment files (Kafka's format, written by both brokers).
    The files are read while the broker runs: an active segment odradek syncs often ends in
    zeros written ahead of its appends (as a segment of Kafka's ``preallocate`` ends in a
    hole), where the batches end."""
    if broker.data_dir is None:
        return None
    count = 0
    for partition_dir in broker.data_dir.glob(f"{topic}-*"):
        for segment in partition_dir.glob("*.log"):
            with open(segment, "rb") as log:
                fd, size, position = log.fileno(), os.fstat(log.fileno()).st_size, 0
                while position + BATCH_HEADER_SIZE <= size:
                    raw = os.pread(fd, BATCH_HEADER_SIZE, position)
                    if not any(raw):
                        break
                    header = read_batch_header(raw, 0)
                    position += header.size_in_bytes
                    count += 1
    return count


# --- fsyncs and CPU ---

def perf_can_count_fsyncs() -> bool:
    if shutil.which("perf") is None:
        return False
    probe = subprocess.run(["perf", "stat", "-x", ",", "-e", FSYNC_EVENTS, "--", "true"],
                           capture_output=True, text=True, timeout=30)
    return probe.returncode == 0 and "sys_enter_fsync" in probe.stderr


class FsyncCounter:
    """``perf stat`` on the broker's tracepoints for the duration of a row."""

    def __init__(self, pid: int, output: Path):
        self.output = output
        self.process = subprocess.Popen(["perf", "stat", "-x", ",", "-e", FSYNC_EVENTS, "-p", str(pid),
                                         "-o", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached to every thread before the load starts

    def stop(self) -> int | None:
        """The count, or None if perf gave none (it failed to attach)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        if not self.output.exists():
            return None
        total = 0
        for line in self.output.read_text().splitlines():
            fields = line.split(",")
            if len(fields) > 2 and "sys_enter_" in fields[2] and fields[0].strip().isdigit():
                total += int(fields[0])
        return total


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU of a process, all its threads (``/proc/PID/stat`` fields 14 and 15), or
    of one of its threads; 0 once it is gone."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process."""
    try:
        tids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return {}
    return {tid: cpu_seconds(pid, tid) for tid in tids}


class CpuWindow:
    """CPU % (of one core) between start() and stop(): of the broker, of the load generators
    together, and of the busiest generator thread: a thread near 100 % (a Java producer's
    application or sender thread, rdkafka_load.py's Python loop, a librdkafka broker thread)
    cannot go faster, whatever the broker does."""

    def __init__(self, broker_pid: int, generator_pids: list[int]):
        self.broker_pid, self.generator_pids = broker_pid, generator_pids

    def start(self) -> None:
        self.began = time.monotonic()
        self.broker0 = cpu_seconds(self.broker_pid)
        self.generators0 = [cpu_seconds(pid) for pid in self.generator_pids]
        self.threads0 = [thread_cpu_seconds(pid) for pid in self.generator_pids]

    def stop(self) -> dict:
        elapsed = time.monotonic() - self.began
        broker = cpu_seconds(self.broker_pid) - self.broker0
        generators = [cpu_seconds(pid) - before for pid, before in zip(self.generator_pids, self.generators0)]
        threads = [seconds - before.get(tid, 0.0) for pid, before in zip(self.generator_pids, self.threads0)
                   for tid, seconds in thread_cpu_seconds(pid).items()]
        return {"broker_cpu": 100 * broker / elapsed, "generator_cpu": 100 * sum(generators) / elapsed,
                "generator_thread_max": 100 * max(threads, default=0.0) / elapsed}


# --- the load generators ---

def _java_tool(main_class: str, args: list[str], stderr_path: Path) -> subprocess.Popen:
    command = kafka_jars.java_command(main_class, args, heap=TOOL_HEAP, jvm_options=FULL_JIT)
    with open(stderr_path, "ab") as stderr:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)


def _java_tool_output(main_class: str, args: list[str], stderr_path: Path, timeout: float) -> str:
    """Run a Java tool to its end; its stdout (RowFailed if it fails or outlasts ``timeout``)."""
    process = _java_tool(main_class, args, stderr_path)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise RowFailed("timed out") from error
    finally:
        _kill([process])
    if process.returncode != 0:
        raise RowFailed(f"exit {process.returncode}: {_stderr_tail(stderr_path)}")
    return output


def _rdkafka(args: list[str], stderr_path: Path, *, stdin: bool = False) -> subprocess.Popen:
    with open(stderr_path, "ab") as stderr:
        return subprocess.Popen([sys.executable, str(RDKAFKA_LOAD), *args], stdout=subprocess.PIPE, stderr=stderr,
                                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, text=True)


def _kill(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait()


def _stderr_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()[-500:]
    except OSError:
        return ""


def _producer_props(row: Row, extra: list[str]) -> list[str]:
    props = [f"acks={row.acks}"]
    if row.compression != "none":
        props.append(f"compression.type={row.compression}")
    return props + list(extra)


def _java_producer_args(broker, topic, row: Row, *, records, throughput, extra, interval_ms):
    return ["--bootstrap-server", broker.bootstrap, "--topic", topic, "--num-records", str(records),
            "--record-size", str(row.record_size), "--throughput", str(throughput),
            "--reporting-interval", str(interval_ms),
            # one --command-property option with every key=value: a second occurrence would replace the first
            "--command-property", *_producer_props(row, extra)]


_JAVA_WINDOW = re.compile(
    r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), [\d.]+ ms avg latency, "
    r"[\d.]+ ms max latency\.$")
# ProducerPerformance with --warmup-records prints this one too: the records after the warm-up.
_JAVA_STEADY_SUMMARY = re.compile(
    r"(\d+) steady state records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")
_UNBOUNDED_RECORDS = 10**12
REPORT_INTERVAL_S = 1.0


def _java_window(line: str) -> tuple[int, float, float] | None:
    """(records, bytes, seconds) of one ProducerPerformance report line."""
    match = _JAVA_WINDOW.match(line.strip())
    if not match:
        return None
    records, rate, mib = int(match[1]), float(match[2]), float(match[3])
    seconds = records / rate if rate > 0 else REPORT_INTERVAL_S
    return records, mib * MIB * seconds, seconds


def _rdkafka_window(line: str) -> tuple[int, float, float] | None:
    try:
        document = json.loads(line)
    except ValueError:
        return None
    if "error" in document:
        raise RowFailed(document["error"])
    return document["records"], float(document["bytes"]), document["seconds"]


class _ProducerReports(threading.Thread):
    """One producer's per-interval reports, each with the time it arrived:
    (arrival, records, bytes, seconds)."""

    def __init__(self, process: subprocess.Popen, parse):
        super().__init__(daemon=True)
        self.process, self.parse = process, parse
        self.windows: list[tuple[float, int, float, float]] = []
        self.error: str | None = None

    def run(self):
        for line in self.process.stdout:
            try:
                window = self.parse(line)
            except RowFailed as error:
                self.error = str(error)
                continue
            if window is not None:
                self.windows.append((time.monotonic(), *window))

    def seconds(self) -> float:
        return sum(window[3] for window in list(self.windows))

    def last_arrival(self) -> float:
        return self.windows[-1][0] if self.windows else 0.0


def run_producers_for(broker: RunningBroker, topic: str, row: Row, options, work: Path) -> dict:
    """The row's producers at once, as fast as they go; the rates inside the common measured
    window (see the module docstring), summed, with the CPU of broker and generators."""
    stderr_path = work / f"{topic}.stderr"
    if row.generator == JAVA:
        args = _java_producer_args(broker, topic, row, records=_UNBOUNDED_RECORDS, throughput=-1,
                                   extra=options.producer_props, interval_ms=int(REPORT_INTERVAL_S * 1000))
        processes = [_java_tool(PRODUCER_PERFORMANCE, args, stderr_path) for _ in range(row.producers)]
        parse = _java_window
    else:
        args = ["produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--record-size", str(row.record_size),
                "--interval", str(REPORT_INTERVAL_S)]
        for prop in _producer_props(row, []):
            args += ["--config", prop]
        processes = [_rdkafka(args, stderr_path) for _ in range(row.producers)]
        parse = _rdkafka_window
    readers = [_ProducerReports(process, parse) for process in processes]
    for reader in readers:
        reader.start()
    cpu = CpuWindow(broker.pid, [process.pid for process in processes])
    deadline = time.monotonic() + options.skip_seconds + options.row_seconds + options.row_timeout

    def wait_until(condition) -> None:
        while not condition():
            if broker.process.poll() is not None:
                raise RowFailed(f"the broker exited {broker.process.returncode}")
            for reader in readers:
                if reader.error:
                    raise RowFailed(reader.error)
                if reader.process.poll() is not None:
                    raise RowFailed(f"producer exited {reader.process.returncode}: {_stderr_tail(stderr_path)}")
            if time.monotonic() > deadline:
                raise RowFailed("timed out")
            time.sleep(0.05)

    try:
        wait_until(lambda: all(reader.seconds() >= options.skip_seconds for reader in readers))
        opened = time.monotonic()
        cpu.start()
        wait_until(lambda: time.monotonic() >= opened + options.row_seconds)
        closing = time.monotonic()
        wait_until(lambda: all(reader.last_arrival() > closing for reader in readers))
        result = cpu.stop()
        closed = time.monotonic()
    finally:
        _kill(processes)
    records_per_s = bytes_per_s = 0.0
    for reader in readers:
        inside = [window for window in reader.windows if opened < window[0] <= closed]
        seconds = sum(window[3] for window in inside)
        if seconds <= 0:
            raise RowFailed("a producer reported nothing inside the measured window")
        records_per_s += sum(window[1] for window in inside) / seconds
        bytes_per_s += sum(window[2] for window in inside) / seconds
    result.update(records_per_s=records_per_s, mib_per_s=bytes_per_s / MIB)
    return result


def run_java_latency(broker: RunningBroker, topic: str, row: Row, options, work: Path) -> dict:
    """One ProducerPerformance of rate x ``--latency-seconds`` records at the row's rate, after
    rate x ``--skip-seconds`` warm-up records (its ``--warmup-records``: the tool's start, first
    metadata request and JIT, which would otherwise make up the slowest percent); its
    steady-state summary (send-to-ack percentiles over the records after the warm-up)."""
    warm_up = int(row.rate * options.skip_seconds)
    records = row.rate * options.latency_seconds
    args = ["--warmup-records", str(warm_up), *_java_producer_args(
        broker, topic, row, records=records + warm_up, throughput=row.rate, extra=options.producer_props,
        interval_ms=5000)]
    output = _java_tool_output(PRODUCER_PERFORMANCE, args, work / f"{topic}.stderr",
                               options.latency_seconds + options.row_timeout)
    matches = _JAVA_STEADY_SUMMARY.findall(output)
    if not matches:
        raise RowFailed(f"no steady-state summary line in: {output.strip()[-500:]}")
    sent, per_second, mib_per_second, _average, maximum, p50, _p95, p99, p999 = matches[-1]
    if int(sent) != records:
        raise RowFailed(f"{sent} of {records} records sent")
    return {"records_per_s": float(per_second), "mib_per_s": float(mib_per_second), "p50_ms": float(p50),
            "p99_ms": float(p99), "p999_ms": float(p999), "max_ms": float(maximum)}


def _json_line(process: subprocess.Popen, deadline: float, what: str, stderr_path: Path) -> dict:
    """The next JSON line of a librdkafka worker, or RowFailed at the deadline or its exit."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RowFailed(f"timed out waiting for {what}")
        if select.select([process.stdout], [], [], min(remaining, 0.5))[0]:
            line = process.stdout.readline()
            if not line:
                raise RowFailed(f"{what}: the worker exited {process.wait()}: {_stderr_tail(stderr_path)}")
            document = json.loads(line)
            if "error" in document:
                raise RowFailed(document["error"])
            return document


def run_e2e_latency(broker: RunningBroker, topic: str, row: Row, options, work: Path) -> dict:
    """A librdkafka producer at the row's rate stamping each record, a librdkafka consumer in
    another process: produce-to-consume percentiles after the first ``--skip-seconds``."""
    records = row.rate * options.latency_seconds
    skip = int(row.rate * min(options.skip_seconds, options.latency_seconds / 2))
    common = ["--bootstrap", broker.bootstrap, "--topic", topic, "--record-size", str(row.record_size),
              "--records", str(records), "--skip", str(skip)]
    stderr_path = work / f"{topic}.stderr"
    deadline = time.monotonic() + options.latency_seconds + options.row_timeout
    consumer = _rdkafka(["stamped-consume", *common], stderr_path)
    processes = [consumer]
    try:
        _json_line(consumer, deadline, "the consumer's start", stderr_path)
        producer = _rdkafka(["produce", *common, "--rate", str(row.rate), "--config", f"acks={row.acks}"],
                            stderr_path)
        processes.append(producer)
        sent = _json_line(producer, deadline, "the producer's summary", stderr_path)
        received = _json_line(consumer, deadline, "the consumer's summary", stderr_path)
    finally:
        _kill(processes)
    result = dict(received["e2e"])
    result["records_per_s"] = sent["records_per_s"]
    result["ack_p99_ms"] = sent["ack"]["p99_ms"]
    return result


def fill_topic(broker: RunningBroker, partitions: int, options, work: Path) -> tuple[str, int]:
    """A topic of ``partitions`` partitions holding ``--consume-mib`` MiB of 1 KiB records,
    written by one librdkafka producer (acks=1), for the consume rows: every broker serves the
    same data. (topic, records)."""
    topic, records = f"consume-{partitions}p", options.consume_mib * MIB // KIB
    create_topic(broker, topic, partitions)
    stderr_path = work / f"{topic}.stderr"
    process = _rdkafka(["produce", "--bootstrap", broker.bootstrap, "--topic", topic, "--record-size", str(KIB),
                        "--records", str(records), "--config", "acks=1"], stderr_path)
    deadline = time.monotonic() + FILL_TIMEOUT_S
    try:
        while "done" not in _json_line(process, deadline, f"{topic} to be written", stderr_path):
            pass
    finally:
        _kill([process])
    written = topic_records(broker, topic, partitions)
    if written != records:
        raise RowFailed(f"{topic}: {written} of {records} records written")
    return topic, records


def run_java_consumer(broker: RunningBroker, topic: str, records: int, options, work: Path) -> dict:
    args = ["--bootstrap-server", broker.bootstrap, "--topic", topic, "--num-records", str(records),
            "--group", f"perf-{uuid.uuid4().hex[:8]}", "--timeout", "20000"]
    output = _java_tool_output(CONSUMER_PERFORMANCE, args, work / f"consume-{topic}.stderr", options.row_timeout + 20)
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
    # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    lines = [line for line in output.splitlines() if line.count(",") >= 9 and not line.startswith("start.time")]
    if not lines:
        raise RowFailed(f"no result line in: {output.strip()[-500:]}")
    fields = [field.strip() for field in lines[-1].split(",")]
    if int(fields[4]) < records:
        raise RowFailed(f"consumed {fields[4]} of {records} records")
    return {"mib_per_s": float(fields[8]), "records_per_s": float(fields[9]), "total_mib_per_s": float(fields[3]),
            "join_ms": float(fields[6])}


def run_rdkafka_consumers(broker: RunningBroker, topic: str, row: Row, records: int, options, work: Path) -> dict:
    """The row's consumers in one group: once the group has assigned every partition (the
    workers hold them paused), all read from the start; bytes over (last record - start)."""
    stderr_path = work / f"consume-{topic}.stderr"
    group = f"rdkafka-{uuid.uuid4().hex[:8]}"
    args = ["consume", "--bootstrap", broker.bootstrap, "--topic", topic, "--group", group]
    processes = [_rdkafka(args, stderr_path, stdin=True) for _ in range(row.consumers)]
    try:
        assigned: dict[int, list[int]] = {}
        formed_by = time.monotonic() + GROUP_FORM_TIMEOUT_S
        joined = time.monotonic()
        while (len(assigned) < len(processes) or sorted(p for ps in assigned.values() for p in ps)
               != list(range(row.partitions))):
            ready = select.select([process.stdout for process in processes], [], [], 0.5)[0]
            for index, process in enumerate(processes):
                if process.stdout in ready:
                    assigned[index] = _json_line(process, formed_by, "the group", stderr_path)["assigned"]
            if time.monotonic() > formed_by:
                raise RowFailed(f"the group did not form: {assigned}")
        join_ms = (time.monotonic() - joined) * 1000
        cpu = CpuWindow(broker.pid, [process.pid for process in processes])
        cpu.start()
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        deadline = time.monotonic() + options.row_timeout
        done = [_json_line(process, deadline, "the read", stderr_path) for process in processes]
        result = cpu.stop()
    finally:
        _kill(processes)
    read = sum(document["records"] for document in done)
    if read < records:
        raise RowFailed(f"consumed {read} of {records} records")
    seconds = (max(document["last_ns"] or 0 for document in done) - min(document["started_ns"] for document in done)) / 1e9
    size = sum(document["bytes"] for document in done)
    result.update(mib_per_s=size / MIB / seconds, records_per_s=read / seconds, join_ms=join_ms)
    return result


# --- one broker, every row ---

def measure_row(broker: RunningBroker, row: Row, options, work: Path, count_fsyncs: bool, filled: dict) -> dict:
    """One row's result. ``filled``: partitions -> (topic, records) of the consume rows' topics
    written so far on this broker (written on first use, read by every consume row after)."""
    # What earlier rows left dirty in the page cache (above all the consume rows' 1 GiB fills)
    # is written back now: else the kernel writes it back about 30 s later (dirty_expire), in
    # the middle of another row, whose fsyncs then wait behind it (a broker that does not fsync
    # would not notice).
    os.sync()
    if row.kind == CONSUME:
        if row.partitions not in filled:
            filled[row.partitions] = fill_topic(broker, row.partitions, options, work)
        topic, records = filled[row.partitions]
        if row.generator == JAVA:
            return run_java_consumer(broker, topic, records, options, work)
        return run_rdkafka_consumers(broker, topic, row, records, options, work)
    create_topic(broker, row.name, row.partitions)
    counter = FsyncCounter(broker.pid, work / f"perf-{row.name}.txt") if count_fsyncs else None
    try:
        if row.kind == PRODUCE:
            result = run_producers_for(broker, row.name, row, options, work)
        elif row.kind == LATENCY:
            result = run_java_latency(broker, row.name, row, options, work)
        else:
            result = run_e2e_latency(broker, row.name, row, options, work)
    finally:
        fsyncs = counter.stop() if counter is not None else None
    if fsyncs is not None:
        result["fsyncs"] = fsyncs
        batches = count_batches(broker, row.name)
        if batches is not None:
            result["batches"] = batches
    return result


def measure_broker(entry: BrokerUnderTest, rows: list[Row], options, work: Path, count_fsyncs: bool) -> dict:
    """Start the broker fresh, warm it up, run its rows; {row: result or {"error": ...}}."""
    broker = entry.start_in(work, options.odradek_override)
    results: dict[str, dict] = {}
    filled: dict[int, tuple[str, int]] = {}
    try:
        if options.warm_up_seconds > 0:
            warm_up = Row("warm-up", "warm-up", PRODUCE, JAVA, acks="1")
            create_topic(broker, warm_up.name, 1)
            # --warm-up-seconds of reports, then a short window (run_producers_for wants one)
            warm_options = argparse.Namespace(**{**vars(options), "skip_seconds": options.warm_up_seconds,
                                                 "row_seconds": 0.5})
            try:
                run_producers_for(broker, warm_up.name, warm_up, warm_options, work)
            except RowFailed as error:
                print(f"  {entry.name}: warm-up failed: {error}", flush=True)
        for row in rows:
            if not entry.runs(row) or row.name in entry.cannot:
                continue
            began = time.monotonic()
            if broker.process.poll() is not None:
                result = {"error": f"the broker exited {broker.process.returncode}"}
            else:
                try:
                    result = measure_row(broker, row, options, work, count_fsyncs, filled)
                except RowFailed as error:
                    result = {"error": str(error)}
                except Exception as error:  # noqa: BLE001  (a client or admin error: the next rows still run)
                    result = {"error": f"{type(error).__name__}: {error}"}
            result["seconds"] = time.monotonic() - began
            results[row.name] = result
            print(f"  {entry.name:16} {row.name:19} " + ", ".join(
                f"{key}={value:,.1f}" if isinstance(value, float) else f"{key}={value}"
                for key, value in result.items()), flush=True)
    finally:
        broker.stop()
    return results


# --- the estimate ---

def row_seconds_estimate(row: Row, options) -> float:
    """Wall time of one row, from measurements on the 2-core machine (JVM starts, topic
    creation, group joins); for the estimate printed at the start."""
    if row.kind == PRODUCE:
        per_process = 2.5 if row.generator == JAVA else 0.3
        return options.skip_seconds + options.row_seconds + 2.0 + per_process * row.producers
    if row.kind in (LATENCY, E2E):
        return options.latency_seconds + 4.0
    reading = options.consume_mib / 300  # MiB/s
    if row.generator == JAVA:
        return 5.0 + reading
    return (10.0 if row.consumers > 1 else 2.0) + reading


def estimate_seconds(options, rows: list[Row]) -> float:
    total = 0.0
    for name in options.brokers:
        entry = BROKERS[name]
        runs = [row for row in rows if entry.runs(row) and row.name not in entry.cannot]
        total += entry.start_seconds + options.warm_up_seconds + 4.0
        total += sum(row_seconds_estimate(row, options) for row in runs)
        fills = {row.partitions for row in runs if row.kind == CONSUME}
        total += len(fills) * (3.0 + options.consume_mib / 150)  # MiB/s of one librdkafka producer
    return total * options.repeats


# --- tables ---

def _values(results, broker: str, row: str, key: str) -> list[float]:
    return [run[row][key] for run in results.get(broker, []) if row in run and key in run[row]]


def _errors(results, broker: str, row: str) -> list[str]:
    return [run[row]["error"] for run in results.get(broker, []) if row in run and "error" in run[row]]


def _median(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    text = f"{statistics.median(values):,.{digits}f}"
    if len(values) > 1:
        text += f" ({min(values):,.{digits}f}-{max(values):,.{digits}f})"
    return text


class _Notes:
    """The reasons a broker cannot do a row, numbered once per report: the cells say "cannot,
    note N", the notes follow the tables (a reason is a paragraph; repeated in every cell it
    made the tables unreadable)."""

    def __init__(self):
        self.numbers: dict[tuple[str, str], int] = {}

    def cannot(self, entry: BrokerUnderTest, row: Row) -> str:
        key = (entry.label, entry.cannot[row.name])
        number = self.numbers.setdefault(key, len(self.numbers) + 1)
        return f"cannot, note {number}"

    def text(self) -> str:
        return "Notes:\n\n" + "\n".join(f"{number}. {label} cannot run the row: {reason}"
                                         for (label, reason), number in self.numbers.items())


def _cell(results, entry: BrokerUnderTest, row: Row, key: str, notes: _Notes, digits: int = 1) -> str:
    if row.name in entry.cannot:
        return notes.cannot(entry, row)
    if not entry.runs(row):
        return f"(as {OURS})"
    cell = _median(_values(results, entry.name, row.name, key), digits)
    errors = _errors(results, entry.name, row.name)
    if errors:
        cell += f" [{len(errors)} failed: {errors[0][:80]}]"
    return cell


def _ratio(results, ours: str, row: Row, key: str, *, lower_is_better: bool = False) -> float | None:
    mine, theirs = _values(results, ours, row.name, key), _values(results, REFERENCE, row.name, key)
    if not mine or not theirs or not statistics.median(mine) or not statistics.median(theirs):
        return None
    if lower_is_better:
        return statistics.median(theirs) / statistics.median(mine)
    return statistics.median(mine) / statistics.median(theirs)


def _ratio_cell(results, brokers: list[str], row: Row, key: str, *, lower_is_better: bool = False) -> str:
    if OURS not in brokers or REFERENCE not in brokers:
        return "-"
    ratio = _ratio(results, OURS, row, key, lower_is_better=lower_is_better)
    text = f"{ratio:.2f}" if ratio is not None else "-"
    if OURS_NOFSYNC in brokers and BROKERS[OURS_NOFSYNC].runs(row):
        nofsync = _ratio(results, OURS_NOFSYNC, row, key, lower_is_better=lower_is_better)
        if nofsync is not None:
            text += f" ({nofsync:.2f} without fsync)"
    return text


def tables(results: dict, options, rows: list[Row]) -> str:
    brokers = [name for name in BROKERS if name in options.brokers]
    entries = [BROKERS[name] for name in brokers]
    out = []
    notes = _Notes()

    throughput = []
    for row in rows:
        if row.kind not in (PRODUCE, CONSUME):
            continue
        key = "records_per_s" if row.in_records else "mib_per_s"
        cells = [row.name, row.label, row.generator, "records/s" if row.in_records else "MiB/s"]
        cells += [_cell(results, entry, row, key, notes, 0 if row.in_records else 1) for entry in entries]
        cells.append(_ratio_cell(results, brokers, row, key))
        throughput.append(cells)
        if row.in_records:  # the same row in MiB/s
            throughput.append(["", "", "", "MiB/s"] + [_cell(results, entry, row, "mib_per_s", notes) for entry in entries]
                              + [""])
    if throughput:
        out.append("Throughput, median (min-max) of the repeats; the ratio is odradek's median over Kafka's:\n\n"
                   + markdown_table(["row", "workload", "generator", "unit", *(e.label for e in entries),
                                     "odradek / Kafka"], throughput))

    latency = []
    for row in rows:
        if row.kind not in (LATENCY, E2E):
            continue
        for entry in entries:
            line = [row.name, row.label, row.generator, entry.label]
            line += [_cell(results, entry, row, key, notes) for key in ("p50_ms", "p99_ms", "p999_ms", "max_ms")]
            line.append(_cell(results, entry, row, "ack_p99_ms", notes) if row.kind == E2E else "-")
            line.append(_cell(results, entry, row, "records_per_s", notes, 0))
            if REFERENCE in brokers and entry.name != REFERENCE and entry.runs(row):
                ratio = _ratio(results, entry.name, row, "p99_ms", lower_is_better=True)
                line.append(f"{ratio:.2f}" if ratio is not None else "-")
            else:
                line.append("-")
            latency.append(line)
    if latency:
        out.append(f"Latency at a fixed rate, acks=all, {options.latency_seconds} s; the ratio is Kafka's p99 "
                   "over this broker's (above 1: lower than Kafka's):\n\n"
                   + markdown_table(["row", "workload", "generator", "broker", "p50 ms", "p99 ms", "p99.9 ms",
                                     "max ms", "send-to-ack p99 ms", "records/s reached", "Kafka p99 / p99"],
                                    latency))

    resources = []
    for row in rows:
        for entry in entries:
            if not entry.runs(row) or row.name in entry.cannot:
                continue
            fsyncs = _values(results, entry.name, row.name, "fsyncs")
            batches = _values(results, entry.name, row.name, "batches")
            per = [b / f for b, f in zip(batches, fsyncs) if f]
            broker_cpu = _values(results, entry.name, row.name, "broker_cpu")
            generator_cpu = _values(results, entry.name, row.name, "generator_cpu")
            if not (fsyncs or broker_cpu):
                continue
            busiest = _values(results, entry.name, row.name, "generator_thread_max")
            bound = sum(value >= GENERATOR_BOUND_CPU for value in busiest)
            full = sum(b + g >= MACHINE_FULL_CPU for b, g in zip(broker_cpu, generator_cpu))
            resources.append([row.name, entry.label, _median(fsyncs, 0), _median(batches, 0),
                              _median(per) if per else "-", _median(broker_cpu, 0),
                              _median(generator_cpu, 0) + (f" (full in {full} of {len(generator_cpu)})" if full else ""),
                              _median(busiest, 0) + (f" (bound in {bound} of {len(busiest)})" if bound else "")])
    if resources:
        out.append("Where the time goes: fsyncs (fsync, fdatasync and AIO submissions) during the row and the "
                   "record batches it wrote; CPU % of one "
                   "core over the measured window, of the broker and of the load generators (all of them, and "
                   f"their busiest thread: at {GENERATOR_BOUND_CPU} % or more, marked \"bound\", the generator is "
                   f"likely the bottleneck rather than the broker; \"full\": broker and generators used {MACHINE_FULL_CPU} % "
                   "or more, the machine's cores were the limit):\n\n"
                   + markdown_table(["row", "broker", "fsyncs", "batches written", "batches per fsync",
                                     "broker CPU %", "generators CPU %", "busiest generator thread CPU %"], resources))

    joins = []
    for row in rows:
        if row.kind != CONSUME:
            continue
        for entry in entries:
            join = _values(results, entry.name, row.name, "join_ms")
            if join:
                total = _values(results, entry.name, row.name, "total_mib_per_s")
                joins.append([row.name, entry.label, _median(join, 0), _median(total) if total else "-"])
    if joins:
        out.append("Consume rows: time to join the group (not in the rates above; librdkafka rows: until "
                   "the whole group is assigned) and, for ConsumerPerformance, MiB/s including the join:\n\n"
                   + markdown_table(["row", "broker", "group join ms", "MiB/s including the join"], joins))
    if notes.numbers:
        out.append(notes.text())
    return "\n\n".join(out)


# --- the report ---

def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def _load() -> str:
    return " ".join(_read("/proc/loadavg").split()[:3])


def _mount_of(path: Path) -> tuple[str, str, str]:
    """(device, filesystem, options) of the mount holding ``path`` (the longest mount point)."""
    best = ("?", "?", "?", "")
    resolved = str(path.resolve())
    for line in _read("/proc/self/mounts").splitlines():
        device, mount_point, filesystem, mount_options, *_ = line.split()
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best[3]):
            best = (device, filesystem, mount_options, mount_point)
    return best[:3]


def machine() -> list[list[str]]:
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    memory = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.MULTILINE)
    try:
        java = subprocess.run([kafka_jars.require_tool("java"), "-version"], capture_output=True, text=True,
                              timeout=30).stderr.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError, RuntimeError) as error:
        java = f"unknown ({error})"
    data = Path(tempfile.gettempdir())
    device, filesystem, mount_options = _mount_of(data)
    rotational = _read(f"/sys/block/{Path(device).name}/queue/rotational").strip()
    disk = f"{data} on {device}, {filesystem} ({mount_options})"
    if rotational:
        disk += ", rotational" if rotational == "1" else ", not rotational"
        disk += " (as the kernel reports it)"
    return [
        ["nproc", str(len(os.sched_getaffinity(0)))],
        ["CPU", model.group(1).strip() if model else platform.processor() or "?"],
        ["memory", f"{int(memory.group(1)) / 2**20:.1f} GiB" if memory else "?"],
        ["kernel", f"{platform.system()} {platform.release()}"],
        ["Python", f"{platform.python_implementation()} {platform.python_version()}"],
        ["Java", java],
        ["librdkafka", _librdkafka_version()],
        ["data directories", disk],
    ]


def _librdkafka_version() -> str:
    import confluent_kafka

    return f"{confluent_kafka.libversion()[0]} (confluent-kafka {confluent_kafka.__version__})"


def report(results: dict, options, rows: list[Row], *, argv: list[str], started_at: datetime.datetime,
           seconds: float, estimate: float, loads: list[str], count_fsyncs: bool) -> str:
    command = shlex.join(["python3", "benchmarks/broker_throughput.py", *argv])
    brokers = ", ".join(BROKERS[name].label for name in options.brokers)
    lines = [
        f"Generated by `{command}` on {started_at:%Y-%m-%d %H:%M} UTC: {options.repeats} repeat(s) of "
        f"{brokers}; produce rows {options.row_seconds:g} s after {options.skip_seconds:g} s, latency rows "
        f"{options.latency_seconds} s, consume rows {options.consume_mib} MiB, {options.warm_up_seconds:g} s of "
        "warm-up per start"
        + (f"; odradek with {' '.join(options.odradek_override)}" if options.odradek_override else "")
        + (f"; Java producers with {' '.join(options.producer_props)}" if options.producer_props else "")
        + f". Took {seconds / 60:.1f} min (estimated {estimate / 60:.1f}). Load average (1, 5, 15 min) at the start "
        f"and after each repeat: {' | '.join(loads)}."
        + ("" if count_fsyncs else " Fsyncs not counted (perf cannot count the syscall tracepoints here)."),
        "",
        markdown_table(["machine", ""], machine()),
        "",
        tables(results, options, rows),
    ]
    return "\n".join(lines)


def write_docs(path: Path, text: str) -> None:
    document = path.read_text()
    begin, end = document.index(DOC_BEGIN) + len(DOC_BEGIN), document.index(DOC_END)
    path.write_text(document[:begin] + "\n" + text.strip() + "\n" + document[end:])


def _check_docs(path: Path) -> None:
    document = path.read_text()
    if DOC_BEGIN not in document or DOC_END not in document or document.index(DOC_BEGIN) > document.index(DOC_END):
        raise SystemExit(f"{path}: no {DOC_BEGIN} ... {DOC_END} markers to write between")


# --- main ---

def _names(text: str, known) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(known)}")
    return names


def _interrupt_on_sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt  # the same clean-up as Ctrl-C: brokers stopped, directories removed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", type=lambda t: _names(t, BROKERS), default=list(BROKERS),
                        help="comma-separated, from: " + ", ".join(BROKERS))
    parser.add_argument("--rows", type=lambda t: _names(t, ROWS), default=list(ROWS),
                        help="comma-separated (--list-rows lists them)")
    parser.add_argument("--list-rows", action="store_true", help="print the rows and exit")
    parser.add_argument("--repeats", type=int, default=2, help="starts of each broker (2)")
    parser.add_argument("--row-seconds", type=float, default=6.0,
                        help="measured seconds of each produce row, after --skip-seconds (6)")
    parser.add_argument("--skip-seconds", type=float, default=2.0,
                        help="first seconds of each producer's reports left out (2)")
    parser.add_argument("--latency-seconds", type=int, default=8, help="length of the latency rows (8)")
    parser.add_argument("--consume-mib", type=int, default=1024,
                        help="MiB of 1 KiB records in the topics the consume rows read (1024)")
    parser.add_argument("--warm-up-seconds", type=float, default=8.0,
                        help="seconds of unmeasured acks=1 produce per broker start (8)")
    parser.add_argument("--quick", action="store_true",
                        help="for development: 1 repeat, rows of 3 s after 2, latency rows of 4 s, 2 s of warm-up, "
                             "consume rows of 256 MiB")
    parser.add_argument("--producer-props", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more producer configs for every Java producer (e.g. linger.ms=10)")
    parser.add_argument("--odradek-override", action="append", default=[], metavar="KEY=VALUE",
                        help="one more odradek config (repeatable), e.g. socket.send.buffer.bytes=-1")
    parser.add_argument("--row-timeout", type=float, default=40.0,
                        help="seconds a row may take beyond its length before it is killed (40)")
    parser.add_argument("--no-fsync-count", action="store_true", help="do not count fsyncs with perf")
    parser.add_argument("--write-docs", type=Path, metavar="PATH",
                        help=f"replace the text between {DOC_BEGIN} and {DOC_END} in PATH with the report")
    options = parser.parse_args(argv)
    if options.list_rows:
        print(markdown_table(["row", "kind", "generator", "workload"],
                             [[row.name, row.kind, row.generator, row.label] for row in ROWS_IN_ORDER]))
        return 0
    if options.quick:
        options.repeats, options.row_seconds, options.skip_seconds = 1, 3.0, 2.0
        options.latency_seconds, options.warm_up_seconds, options.consume_mib = 4, 2.0, 256
    if options.repeats < 1 or options.row_seconds <= 0 or options.latency_seconds < 1:
        parser.error("--repeats and --latency-seconds must be at least 1, --row-seconds above 0")
    if options.write_docs is not None:
        _check_docs(options.write_docs)
    rows = [row for row in ROWS_IN_ORDER if row.name in options.rows]

    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    # also when started with SIGINT ignored (a background job of a non-interactive shell)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    kafka_jars.ensure()
    count_fsyncs = not options.no_fsync_count and perf_can_count_fsyncs()
    estimate = estimate_seconds(options, rows)
    print(f"{len(rows)} rows x {len(options.brokers)} brokers x {options.repeats} repeats: "
          f"about {estimate / 60:.0f} min", flush=True)
    started_at = datetime.datetime.now(datetime.timezone.utc)
    started = time.monotonic()
    loads = [_load()]
    results: dict[str, list[dict]] = {}
    for repeat in range(options.repeats):
        shift = repeat % len(options.brokers)
        for name in options.brokers[shift:] + options.brokers[:shift]:
            work = Path(tempfile.mkdtemp(prefix=f"odradek-throughput-{name}-"))
            try:
                print(f"repeat {repeat + 1}: {name} (load average {_load()})", flush=True)
                began = time.monotonic()
                results.setdefault(name, []).append(measure_broker(BROKERS[name], rows, options, work, count_fsyncs))
                print(f"  ({time.monotonic() - began:.0f} s)", flush=True)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        loads.append(_load())
    text = report(results, options, rows, argv=argv, started_at=started_at, seconds=time.monotonic() - started,
                  estimate=estimate, loads=loads, count_fsyncs=count_fsyncs)
    print("\n" + text)
    if options.write_docs is not None:
        write_docs(options.write_docs, text)
        print(f"\nwritten between the markers in {options.write_docs}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: the brokers are stopped and their directories removed", file=sys.stderr)
        sys.exit(130)
