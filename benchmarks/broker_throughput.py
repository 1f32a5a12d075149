#!/usr/bin/env python3
"""End-to-end throughput and latency of ``odradek serve`` against Apache Kafka on this machine.

Run from the repository root (odradek installed; Java 17+ and Kafka's jars, fetched by
``compat/kafka_jars.py`` into ``compat/.cache`` on the first run)::

    python3 benchmarks/broker_throughput.py                    # defaults: about 5 minutes
    python3 benchmarks/broker_throughput.py --repeats 3 --row-seconds 20
    python3 benchmarks/broker_throughput.py --brokers odradek,kafka --rows produce-all,produce-all-many

The brokers, each started fresh for every repeat with its own temporary data directory on a
free 127.0.0.1 port (deleted afterwards), all reading the same ``server.properties``, the one
compat/make_kafka_fixture.py writes (one partition per topic by default, single-node
replication factors, ``group.initial.rebalance.delay.ms=0``; odradek ignores the KRaft keys):

* ``odradek``: ``python3 -m odradek.broker.cli serve --config server.properties`` (what
  ``odradek serve`` runs, on uvloop), so ``odradek.flush.on.acks.all=true``: an acks=all produce
  is answered after an fsync (one fsync round per partition covers every batch appended
  meanwhile, see docs/architecture.md, "Durability");
* ``odradek-nofsync``: the same with ``odradek.flush.on.acks.all=false`` (acks=all answered
  after the append, as Kafka without replicas does);
* ``kafka``: Apache Kafka (compat/kafka_jars.py's pinned version), one KRaft node in combined
  mode, formatted with its StorageTool, started with the JVM options of Kafka's ``kafka-server-start.sh`` (``-Xmx1g
  -Xms1g``, G1, full JIT). Kafka does not fsync on produce (``log.flush.interval.messages``
  is unbounded by default).

The load generators are Kafka's own tools (``kafka-producer-perf-test`` =
``org.apache.kafka.tools.ProducerPerformance``, ``kafka-consumer-perf-test`` =
``ConsumerPerformance``, from the same jars, JVMs with ``-Xmx512m``, full JIT), with the
Java client's defaults (batch.size 16384, linger.ms 5, max.in.flight 5) unless
``--producer-props`` says otherwise. Each fresh broker first takes ``--warm-up-seconds`` (8) of
unmeasured acks=1 produce: the Kafka JVM compiles its hot paths (with 3 s, Kafka's first row
came out well below its second). Every topic has
``--partitions`` (1) partitions. Rows:

* ``produce-1``: one producer of ``--record-size`` (1024) byte records, acks=1, as fast as it
  goes (``--throughput -1``), reporting every second; it is stopped once it has reported
  ``--skip-seconds`` (2) + ``--row-seconds`` (6), and the row's rate is over the reports after
  the first ``--skip-seconds`` (the tool's JVM start, JIT and metadata fetch left out);
* ``produce-all``: the same with acks=all;
* ``produce-all-many``: ``--producers`` (4) such producers at once, acks=all; the MiB/s is the
  sum of the producers' rates;
* ``consume``: one ConsumerPerformance (a consumer group, classic protocol, fetch size 1 MiB)
  reads every record of the ``produce-1`` topic from the start; the MiB/s is its
  ``fetch.MB.sec`` (time after the group join, which is shown apart);
* ``latency``: one producer at a fixed ``--latency-rate`` (2000) records/s for
  ``--latency-seconds`` (8), acks=all; the tool's p50 / p99 / p99.9 / max of send-to-ack
  latency over every record (it includes the client's linger.ms and the tool's own start).

MiB/s is the tools' "MB/sec", which is 2^20 bytes of record values per second. For every
produce row, where ``perf`` can count the ``syscalls:sys_enter_fsync`` and ``fdatasync``
tracepoints of the broker process (``perf stat -p``; no ptrace, so the broker is not slowed
down), the fsyncs during the row are counted, and the record batches the row wrote are counted
in the topic's segment files: batches per fsync shows how many batches one flush covered (an
odradek partition flush is three fsyncs: ``.log``, ``.index``, ``.timeindex``).

The brokers alternate: each repeat starts and measures them in a rotated order. A row that
runs ``--row-timeout`` (40) seconds past its own length is killed and reported as failed. The machine has
2 cores: the broker, the load generator JVM(s) and other work on the machine share them, so
every figure includes that contention (the same for both brokers), and the load average
(``/proc/loadavg``) is printed with the tables.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(BENCHMARKS.parent / "compat"))

import kafka_jars  # noqa: E402  (compat/, a sibling script folder)
import make_kafka_fixture as kafka_fixture  # noqa: E402
from _support import markdown_table  # noqa: E402

from odradek.protocol.records.header import BATCH_HEADER_SIZE, read_batch_header  # noqa: E402

PRODUCER_PERFORMANCE = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_PERFORMANCE = "org.apache.kafka.tools.ConsumerPerformance"
# kafka_jars.java_command starts short-lived tools with C1 and the serial GC; a load generator
# and a broker under load want what Kafka's own scripts give them (the later flags win).
FULL_JIT = ["-XX:TieredStopAtLevel=4", "-XX:-UseSerialGC", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent"]
KAFKA_HEAP = "1g"
TOOL_HEAP = "512m"
BROKER_START_TIMEOUT_S = 90.0
TOPIC_CREATE_TIMEOUT_S = 60.0
FSYNC_EVENTS = "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync"

BROKERS = {
    "odradek": "odradek (fsync on acks=all)",
    "odradek-nofsync": "odradek (odradek.flush.on.acks.all=false)",
    "kafka": f"Kafka {kafka_jars.kafka_version()}",
}
ROWS = {
    "produce-1": "produce, acks=1, 1 producer",
    "produce-all": "produce, acks=all, 1 producer",
    "produce-all-many": "produce, acks=all, {producers} producers",
    "consume": "consume from the start, 1 consumer",
    "latency": "produce at {rate} records/s, acks=all",
}
# Which rows each broker runs: acks=1 and fetches do not depend on the fsync setting.
ROWS_OF = {
    "odradek": list(ROWS),
    "odradek-nofsync": ["produce-all", "produce-all-many", "latency"],
    "kafka": list(ROWS),
}

_PRODUCER_SUMMARY = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


class RowFailed(RuntimeError):
    """A load generator failed or ran past the row's deadline."""


# --- the brokers ---

class RunningBroker:
    """A broker process on 127.0.0.1 with its data directory under a temporary work dir."""

    def __init__(self, name: str, process: subprocess.Popen, port: int, data_dir: Path, log_path: Path):
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


def _write_server_properties(work: Path) -> tuple[Path, int]:
    """compat/make_kafka_fixture.py's ``server.properties`` (one KRaft node, loopback
    listeners, ``log.dirs`` = work/data): both brokers read the same file."""
    broker_port, controller_port = kafka_fixture.free_port(), kafka_fixture.free_port()
    properties = work / "server.properties"
    properties.write_text(kafka_fixture.server_properties(work, broker_port, controller_port))
    return properties, broker_port


def _wait_or_kill(port: int, process: subprocess.Popen, log_path: Path) -> None:
    """Wait until the broker listens; a broker that does not is not left running."""
    try:
        kafka_fixture.wait_for_port(port, process, BROKER_START_TIMEOUT_S, log_path)
    except BaseException:
        process.kill()
        process.wait()
        raise


def start_odradek(work: Path, *, flush_on_acks_all: bool, overrides: list[str] = ()) -> RunningBroker:
    properties, port = _write_server_properties(work)  # odradek ignores the KRaft keys it does not use
    log_path = work / "odradek.log"
    command = [sys.executable, "-m", "odradek.broker.cli", "serve", "--config", str(properties),
               "--override", f"odradek.flush.on.acks.all={str(flush_on_acks_all).lower()}"]
    for override in overrides:
        command += ["--override", override]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    _wait_or_kill(port, process, log_path)
    return RunningBroker("odradek", process, port, work / "data", log_path)


def start_kafka(work: Path) -> RunningBroker:
    properties, broker_port = _write_server_properties(work)
    kafka_jars.run_java(kafka_jars.STORAGE_TOOL, ["format", "-t", kafka_fixture.new_cluster_id(), "-c", str(properties)],
                        timeout=120)
    log_path = work / "kafka.log"
    command = kafka_jars.java_command(kafka_jars.KAFKA_SERVER, [str(properties)], heap=KAFKA_HEAP,
                                      jvm_options=[f"-Xms{KAFKA_HEAP}", *FULL_JIT])
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    _wait_or_kill(broker_port, process, log_path)
    return RunningBroker("kafka", process, broker_port, work / "data", log_path)


def start_broker(name: str, work: Path, odradek_overrides: list[str]) -> RunningBroker:
    if name == "kafka":
        return start_kafka(work)
    return start_odradek(work, flush_on_acks_all=(name == "odradek"), overrides=odradek_overrides)


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


def count_batches(broker: RunningBroker, topic: str) -> tuple[int, int]:
    """Record batches and records in the topic's segment files (the same format for both brokers)."""
    count = records = 0
    for partition_dir in broker.data_dir.glob(f"{topic}-*"):
        for segment in partition_dir.glob("*.log"):
            with open(segment, "rb") as log:
                fd, size, position = log.fileno(), os.fstat(log.fileno()).st_size, 0
                while position + BATCH_HEADER_SIZE <= size:
                    header = read_batch_header(os.pread(fd, BATCH_HEADER_SIZE, position), 0)
                    position += header.size_in_bytes
                    count += 1
                    records += header.records_count
    return count, records


# --- fsync counting ---

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
        self.process.send_signal(signal.SIGINT)
        self.process.wait(30)
        if not self.output.exists():
            return None
        total = 0
        for line in self.output.read_text().splitlines():
            fields = line.split(",")
            if len(fields) > 2 and "sys_enter_" in fields[2] and fields[0].strip().isdigit():
                total += int(fields[0])
        return total


# --- the load generators ---

def _tool(main_class: str, args: list[str]) -> subprocess.Popen:
    command = kafka_jars.java_command(main_class, args, heap=TOOL_HEAP, jvm_options=FULL_JIT)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(processes: list[subprocess.Popen], deadline: float) -> list[str]:
    outputs = []
    try:
        for process in processes:
            try:
                stdout, stderr = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired as error:
                raise RowFailed("timed out") from error
            if process.returncode != 0:
                raise RowFailed(f"exit {process.returncode}: {stderr.strip()[-500:]}")
            outputs.append(stdout)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return outputs


_PRODUCER_WINDOW = re.compile(
    r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), [\d.]+ ms avg latency, "
    r"[\d.]+ ms max latency\.$", re.MULTILINE)
_UNBOUNDED_RECORDS = 10**12


def _producer_args(broker, topic, *, records, record_size, throughput, acks, extra_props, interval_ms=5000):
    return ["--bootstrap-server", broker.bootstrap, "--topic", topic, "--num-records", str(records),
            "--record-size", str(record_size), "--throughput", str(throughput),
            "--reporting-interval", str(interval_ms),
            # one --command-property option: a second occurrence would replace the first
            "--command-property", f"acks={acks}", *extra_props]


class _WindowReader(threading.Thread):
    """Collects a ProducerPerformance's per-interval lines: (records, records/s, MiB/s)."""

    def __init__(self, process: subprocess.Popen):
        super().__init__(daemon=True)
        self.process = process
        self.windows: list[tuple[int, float, float]] = []
        self.tail: list[str] = []

    def run(self):
        for line in self.process.stdout:
            match = _PRODUCER_WINDOW.match(line.strip())
            if match:
                self.windows.append((int(match[1]), float(match[2]), float(match[3])))
            else:
                self.tail = (self.tail + [line])[-20:]

    def seconds(self) -> float:
        return sum(records / rate for records, rate, _ in self.windows if rate > 0)


def run_producers_for(broker: RunningBroker, topic: str, *, producers: int, seconds: float, skip_seconds: float,
                      record_size: int, acks: str, extra_props: list[str], timeout: float) -> dict:
    """``producers`` ProducerPerformance runs at once, as fast as they go, reporting every second;
    stopped once each has reported ``skip_seconds + seconds``. Per producer, the rate over its
    reports after the first ``skip_seconds`` (JVM start, JIT, metadata); summed over producers."""
    args = _producer_args(broker, topic, records=_UNBOUNDED_RECORDS, record_size=record_size, throughput=-1,
                          acks=acks, extra_props=extra_props, interval_ms=1000)
    processes = [_tool(PRODUCER_PERFORMANCE, args) for _ in range(producers)]
    readers = [_WindowReader(process) for process in processes]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    try:
        while not all(reader.seconds() >= skip_seconds + seconds for reader in readers):
            for reader in readers:
                if reader.process.poll() is not None:
                    raise RowFailed(f"producer exited {reader.process.returncode}: {''.join(reader.tail)[-500:]}")
            if time.monotonic() > deadline:
                raise RowFailed("timed out")
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
    mib_per_s = records_per_s = 0.0
    for reader in readers:
        kept, elapsed = [], 0.0
        for records, rate, mib in reader.windows:
            if elapsed >= skip_seconds:
                kept.append((records, rate, mib))
            elapsed += records / rate if rate > 0 else 0.0
        duration = sum(records / rate for records, rate, _ in kept if rate > 0)
        if not kept or duration <= 0:
            raise RowFailed("no reports after the warm-up seconds")
        records_per_s += sum(records for records, _, _ in kept) / duration
        mib_per_s += sum(records / rate * mib for records, rate, mib in kept if rate > 0) / duration
    return {"mib_per_s": mib_per_s, "records_per_s": records_per_s}


def run_producer_at_rate(broker: RunningBroker, topic: str, *, records: int, rate: int, record_size: int,
                         acks: str, extra_props: list[str], timeout: float) -> dict:
    """One ProducerPerformance of ``records`` records at ``rate`` records/s; its final summary."""
    args = _producer_args(broker, topic, records=records, record_size=record_size, throughput=rate,
                          acks=acks, extra_props=extra_props)
    (output,) = _finish([_tool(PRODUCER_PERFORMANCE, args)], time.monotonic() + timeout)
    matches = _PRODUCER_SUMMARY.findall(output)
    if not matches:
        raise RowFailed(f"no summary line in: {output.strip()[-500:]}")
    sent, per_second, mib_per_second, average, maximum, p50, p95, p99, p999 = matches[-1]
    if int(sent) != records:
        raise RowFailed(f"{sent} of {records} records sent")
    return {"records_per_s": float(per_second), "mib_per_s": float(mib_per_second),
            "avg_ms": float(average), "max_ms": float(maximum), "p50_ms": int(p50),
            "p95_ms": int(p95), "p99_ms": int(p99), "p999_ms": int(p999)}


def run_consumer(broker: RunningBroker, topic: str, *, records: int, timeout: float) -> dict:
    args = ["--bootstrap-server", broker.bootstrap, "--topic", topic, "--num-records", str(records),
            "--group", f"perf-{uuid.uuid4().hex[:8]}", "--timeout", "20000"]
    (output,) = _finish([_tool(CONSUMER_PERFORMANCE, args)], time.monotonic() + timeout)
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
    # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    lines = [line for line in output.splitlines() if line.count(",") >= 9 and not line.startswith("start.time")]
    if not lines:
        raise RowFailed(f"no result line in: {output.strip()[-500:]}")
    fields = [field.strip() for field in lines[-1].split(",")]
    if int(fields[4]) < records:
        raise RowFailed(f"consumed {fields[4]} of {records} records")
    return {"mib_per_s": float(fields[8]), "total_mib_per_s": float(fields[3]),
            "rebalance_ms": float(fields[6]), "fetch_ms": float(fields[7])}


# --- one broker, every row ---

def measure_broker(name: str, options, work: Path, count_fsyncs: bool) -> dict[str, dict]:
    """Start ``name`` fresh, warm it up, run its rows; {row: result or {"error": ...}}."""
    broker = start_broker(name, work, options.odradek_override)
    results: dict[str, dict] = {}
    extra = list(options.producer_props)
    timeout = options.skip_seconds + options.row_seconds + options.row_timeout
    try:
        create_topic(broker, "warm-up", options.partitions)
        if options.warm_up_seconds > 0:
            run_producers_for(broker, "warm-up", producers=1, seconds=options.warm_up_seconds, skip_seconds=0,
                              record_size=options.record_size, acks="1", extra_props=extra, timeout=timeout)
        for row in ROWS_OF[name]:
            if row not in options.rows:
                continue
            topic = "consume-source" if row in ("produce-1", "consume") else row
            if row != "consume":
                create_topic(broker, topic, options.partitions)
            counter = FsyncCounter(broker.pid, work / f"perf-{row}.txt") if count_fsyncs and row != "consume" else None
            try:
                if row == "consume":
                    if "error" in results.get("produce-1", {"error": ""}):
                        raise RowFailed("needs the produce-1 row's topic")
                    _, records = count_batches(broker, topic)
                    result = run_consumer(broker, topic, records=records, timeout=timeout)
                    result["records"] = records
                elif row == "latency":
                    result = run_producer_at_rate(
                        broker, topic, records=options.latency_rate * options.latency_seconds,
                        rate=options.latency_rate, record_size=options.record_size, acks="all",
                        extra_props=extra, timeout=options.latency_seconds + options.row_timeout)
                else:
                    result = run_producers_for(
                        broker, topic, producers=options.producers if row == "produce-all-many" else 1,
                        seconds=options.row_seconds, skip_seconds=options.skip_seconds,
                        record_size=options.record_size, acks="1" if row == "produce-1" else "all",
                        extra_props=extra, timeout=timeout)
            except RowFailed as error:
                result = {"error": str(error)}
            finally:
                fsyncs = counter.stop() if counter is not None else None
            if fsyncs is not None and "error" not in result:
                result["fsyncs"] = fsyncs
                result["batches"], _ = count_batches(broker, topic)
            results[row] = result
            print(f"  {name:16} {row:17} " + ", ".join(
                f"{key}={value:.1f}" if isinstance(value, float) else f"{key}={value}"
                for key, value in result.items()), flush=True)
    finally:
        broker.stop()
    return results


# --- tables ---

def _median(values: list[float]) -> str:
    if not values:
        return "-"
    text = f"{statistics.median(values):,.1f}"
    if len(values) > 1:
        text += f" ({min(values):,.1f}-{max(values):,.1f})"
    return text


def _values(results, broker: str, row: str, key: str) -> list[float]:
    return [run[row][key] for run in results.get(broker, []) if row in run and key in run[row]]


def _errors(results, broker: str, row: str) -> list[str]:
    return [run[row]["error"] for run in results.get(broker, []) if row in run and "error" in run[row]]


def tables(results: dict, options) -> str:
    brokers = [b for b in BROKERS if b in options.brokers]
    labels = {row: text.format(producers=options.producers, rate=options.latency_rate) for row, text in ROWS.items()}
    out = []
    throughput_rows = []
    for row in ("produce-1", "produce-all", "produce-all-many", "consume"):
        if row not in options.rows:
            continue
        cells = [labels[row]]
        for broker in brokers:
            values = _values(results, broker, row, "mib_per_s")
            errors = _errors(results, broker, row)
            cell = _median(values) if row in ROWS_OF[broker] else "(same as above)"
            if errors:
                cell += f" [{len(errors)} failed: {errors[0][:60]}]"
            cells.append(cell)
        if "odradek" in brokers and "kafka" in brokers:
            ours = _values(results, "odradek", row, "mib_per_s")
            theirs = _values(results, "kafka", row, "mib_per_s")
            cells.append(f"{statistics.median(ours) / statistics.median(theirs):.2f}" if ours and theirs else "-")
        throughput_rows.append(cells)
    if throughput_rows:
        headers = ["row (MiB/s, median (min-max) of repeats)", *(BROKERS[b] for b in brokers)]
        if "odradek" in brokers and "kafka" in brokers:
            headers.append("odradek / Kafka")
        out.append(markdown_table(headers, throughput_rows))

    consume = [(b, _values(results, b, "consume", "rebalance_ms"), _values(results, b, "consume", "total_mib_per_s"))
               for b in brokers if "consume" in ROWS_OF[b] and "consume" in options.rows]
    if any(values for _, values, _ in consume):
        out.append(markdown_table(["consume row", "group join ms", "MiB/s including the join"],
                                  [[BROKERS[b], _median(join), _median(total)] for b, join, total in consume]))

    fsync_rows = []
    for broker in brokers:
        for row in ("produce-1", "produce-all", "produce-all-many", "latency"):
            fsyncs = _values(results, broker, row, "fsyncs")
            batches = _values(results, broker, row, "batches")
            if row in ROWS_OF[broker] and row in options.rows and fsyncs:
                per = [b / f for b, f in zip(batches, fsyncs) if f]
                fsync_rows.append([BROKERS[broker], labels[row], _median(fsyncs), _median(batches),
                                   _median(per) if per else "-"])
    if fsync_rows:
        out.append(markdown_table(["broker", "row", "fsyncs", "batches written", "batches per fsync"], fsync_rows))

    latency_rows = []
    for broker in brokers:
        if "latency" in ROWS_OF[broker] and "latency" in options.rows:
            latency_rows.append([BROKERS[broker], *(_median(_values(results, broker, "latency", key))
                                                    for key in ("p50_ms", "p99_ms", "p999_ms", "max_ms", "records_per_s"))])
            errors = _errors(results, broker, "latency")
            if errors:
                latency_rows[-1][0] += f" [{len(errors)} failed: {errors[0][:60]}]"
    if latency_rows:
        out.append(markdown_table([f"{labels['latency']}, {options.latency_seconds} s", "p50 ms", "p99 ms",
                                   "p99.9 ms", "max ms", "records/s reached"], latency_rows))
    return "\n\n".join(out)


def _load() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def _names(text: str, known) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(known)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", type=lambda t: _names(t, BROKERS), default=list(BROKERS),
                        help="comma-separated, from: " + ", ".join(BROKERS))
    parser.add_argument("--rows", type=lambda t: _names(t, ROWS), default=list(ROWS),
                        help="comma-separated, from: " + ", ".join(ROWS))
    parser.add_argument("--repeats", type=int, default=2, help="starts of each broker (2)")
    parser.add_argument("--row-seconds", type=float, default=6.0,
                        help="measured seconds of each produce row, after --skip-seconds (6)")
    parser.add_argument("--skip-seconds", type=float, default=2.0,
                        help="first seconds of each producer's reports left out (2)")
    parser.add_argument("--record-size", type=int, default=1024, help="bytes per record value (1024)")
    parser.add_argument("--producers", type=int, default=4, help="producers in the produce-all-many row (4)")
    parser.add_argument("--partitions", type=int, default=1, help="partitions per topic (1)")
    parser.add_argument("--latency-rate", type=int, default=2000, help="records/s in the latency row (2000)")
    parser.add_argument("--latency-seconds", type=int, default=8, help="length of the latency row (8)")
    parser.add_argument("--warm-up-seconds", type=float, default=8.0,
                        help="seconds of unmeasured acks=1 produce per broker start (8)")
    parser.add_argument("--producer-props", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more producer configs for every producer (e.g. linger.ms=10)")
    parser.add_argument("--odradek-override", action="append", default=[], metavar="KEY=VALUE",
                        help="one more odradek config (repeatable), e.g. socket.send.buffer.bytes=-1")
    parser.add_argument("--row-timeout", type=float, default=40.0,
                        help="seconds a row may take beyond its length before it is killed (40)")
    parser.add_argument("--no-fsync-count", action="store_true", help="do not count fsyncs with perf")
    options = parser.parse_args(argv)
    if options.repeats < 1 or options.producers < 1 or options.row_seconds <= 0:
        parser.error("--repeats and --producers must be at least 1, --row-seconds above 0")

    kafka_jars.ensure()
    count_fsyncs = not options.no_fsync_count and perf_can_count_fsyncs()
    started = time.monotonic()
    loads = [_load()]
    results: dict[str, list[dict]] = {}
    for repeat in range(options.repeats):
        order = options.brokers[repeat % len(options.brokers):] + options.brokers[:repeat % len(options.brokers)]
        for name in order:
            work = Path(tempfile.mkdtemp(prefix=f"odradek-throughput-{name}-"))
            try:
                print(f"repeat {repeat + 1}: {name} (load average {_load()})", flush=True)
                began = time.monotonic()
                results.setdefault(name, []).append(measure_broker(name, options, work, count_fsyncs))
                print(f"  ({time.monotonic() - began:.0f} s)", flush=True)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        loads.append(_load())
    print(f"\nodradek against Apache Kafka {kafka_jars.kafka_version()}, {options.repeats} repeats, "
          f"{options.record_size}-byte records, {options.partitions} partition(s) per topic, "
          f"produce rows of {options.row_seconds:g} s after {options.skip_seconds:g} s; "
          + (f"odradek with {' '.join(options.odradek_override)}; " if options.odradek_override else "")
          + f"{os.cpu_count()} CPUs shared by broker and load "
          f"generator; load average at start and after each repeat: {' | '.join(loads)}; "
          f"{time.monotonic() - started:.0f} s"
          + ("" if count_fsyncs else "; fsyncs not counted (perf unavailable)") + "\n")
    print(tables(results, options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
