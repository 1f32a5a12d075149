#!/usr/bin/env python3
"""How ``odradek serve`` changes with scale (issue 11): partitions, idle connections, topics in
Metadata, and start time and RSS against partitions; Apache Kafka alongside where it is cheap.

Run from the repository root (odradek installed; Java 17+ and Kafka's jars, fetched by
``compat/kafka_jars.py`` into ``compat/.cache`` on the first run)::

    python3 benchmarks/scale.py                               # defaults: about 12 minutes
    python3 benchmarks/scale.py --partitions 1,100 --topics 10,100 --brokers odradek
    python3 benchmarks/scale.py --write-docs docs/performance.md

The brokers are started as benchmarks/broker_throughput.py starts them (its ``start_odradek``
with fsync on acks=all, odradek's default, and ``start_kafka``: the same ``server.properties``,
a free 127.0.0.1 port, a fresh temporary data directory, removed afterwards). The load
generators are that script's runners of Kafka's ``ProducerPerformance`` (its
``run_producers_for`` and ``run_java_latency``, the scale rows given as its ``Row``). Three parts:

1. **Partitions** (``--partitions``, default 1,10,100,1,000,10,000; Kafka up to
   ``--kafka-max-partitions``, 1,000): for each count a fresh broker, ``--warm-up-seconds`` (5)
   of unmeasured acks=1 produce to a one-partition topic, then one topic of that many
   partitions (its CreateTopics timed, and the time until Metadata shows a leader for every
   partition: Kafka's broker takes them over after its controller answered), and on it: one
   producer of ``--record-size`` (1024) byte records, acks=all, as fast as it goes for
   ``--skip-seconds`` (2) + ``--row-seconds`` (6) s, the rate over the last ``--row-seconds``;
   then one producer at ``--latency-rate`` (2,000) records/s for ``--latency-seconds`` (8) s,
   acks=all, its p50 / p99 send-to-ack latency (after ``--skip-seconds`` of warm-up records,
   as that harness runs its latency rows). The
   Java client's default partitioner (no keys) fills a batch for one partition, then moves on
   to another, so the records spread over every partition. Both rows again with
   ``--idle-connections`` (1,000) more connections open: sockets from this process that each
   sent ApiVersions v3 and Metadata v12 for no topics (what a Java client sends first), then sit
   idle; every one must still be open afterwards. VmRSS of the broker after the topic is
   created, with the idle connections, and after the rows.
2. **Start time and RSS against partitions** (odradek): each partition sweep's broker is then
   stopped cleanly (SIGTERM, timed) and started again on its data directory as
   benchmarks/footprint.py starts a broker (``footprint.Broker``: bytecode cached by a warm-up
   start), timed from ``Popen`` to the first ApiVersions answer (it listens once every
   partition is loaded); VmRSS then. benchmarks/partitions.py covers 1,000 to 50,000 partitions
   in topics of 10, kill -9 restarts and open files.
3. **Topics in Metadata** (``--topics``, default 10,100,1,000,10,000; Kafka up to
   ``--kafka-max-topics``, 1,000): one fresh broker per broker kind; topics of one partition
   are created (benchmarks/partitions.py's raw CreateTopics, 20 topics per request) up to each
   count, then ``--metadata-requests`` (30) Metadata v12 requests for all topics, one after the
   other on one connection, each timed from sending it to the last byte of its response (not
   decoded: the time is the broker's); the last is decoded and must list every topic.

Every step is bounded in time (a row ``--row-timeout`` s past its length fails); traffic goes
to 127.0.0.1 only. Tables are Markdown; ``--write-docs PATH`` replaces the text between
``<!-- scale:begin -->`` and ``<!-- scale:end -->`` in PATH with them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(BENCHMARKS.parent / "compat"))

import broker_throughput  # noqa: E402
import footprint  # noqa: E402
import kafka_jars  # noqa: E402  (compat/, a sibling script folder)
import partitions as partitions_benchmark  # noqa: E402
from _support import KIB, markdown_table, percentile  # noqa: E402

from odradek.protocol.connection import ClientConnection  # noqa: E402
from odradek.protocol.messages.api_versions import ApiVersionsRequest  # noqa: E402
from odradek.protocol.messages.metadata import MetadataRequest  # noqa: E402

BROKERS = {
    "odradek": "odradek (fsync on acks=all)",
    "kafka": f"Kafka {kafka_jars.kafka_version()}",
}
DOCS_BEGIN = "<!-- scale:begin -->"
DOCS_END = "<!-- scale:end -->"
METADATA_VERSION = 12
SCALE_TOPIC = "scale"
RESTART_DEADLINE_S = 300.0
IDLE_CONNECT_TIMEOUT_S = 30.0
METADATA_CATCH_UP_S = 120.0


def _counts(text: str) -> list[int]:
    """Comma-separated whole numbers; "0" is none (that part is skipped)."""
    if text.strip() == "0":
        return []
    try:
        counts = [int(item.replace("_", "")) for item in text.split(",") if item.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of whole numbers: {text}") from error
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("counts must be at least 1 (or the list just 0)")
    return sorted(counts)


def _port(broker) -> int:
    return int(broker.bootstrap.rsplit(":", 1)[1])


def start(name: str, work: Path):
    if name == "kafka":
        return broker_throughput.start_kafka(work)
    return broker_throughput.start_odradek(work, flush_on_acks_all=True)


# --- idle connections ---

class IdleConnections:
    """``count`` client sockets that each did ApiVersions + Metadata (no topics), then idle."""

    def __init__(self, port: int, count: int):
        self.clients: list[partitions_benchmark.Client] = []
        started = time.perf_counter()
        try:
            for _ in range(count):
                client = partitions_benchmark.Client(port)
                client.sock.settimeout(IDLE_CONNECT_TIMEOUT_S)
                self.clients.append(client)
                client.request(ApiVersionsRequest(client_software_name="odradek-scale",
                                                  client_software_version="1"), 3)
                client.request(MetadataRequest(topics=[]), METADATA_VERSION)
        except BaseException:
            self.close()
            raise
        self.open_seconds = time.perf_counter() - started

    def closed_by_broker(self) -> int:
        """How many the broker has closed meanwhile (a peek reads b'' or fails)."""
        closed = 0
        for client in self.clients:
            client.sock.setblocking(False)
            try:
                if client.sock.recv(1, socket.MSG_PEEK) == b"":
                    closed += 1
            except BlockingIOError:
                pass  # open, nothing to read: as it should be
            except OSError:
                closed += 1
        return closed

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.clients = []


# --- part 1 and 2: partitions ---

def _rows(broker, count: int, options, work: Path, label: str) -> dict:
    """The throughput and the fixed-rate latency row on the scale topic, run by
    broker_throughput.py's runners as rows of that harness."""
    started = time.monotonic()
    result: dict = {}
    harness_options = argparse.Namespace(**vars(options), producer_props=[])
    throughput = broker_throughput.Row(SCALE_TOPIC, f"{count:,} partitions", broker_throughput.PRODUCE,
                                       broker_throughput.JAVA, record_size=options.record_size, partitions=count)
    try:
        produced = broker_throughput.run_producers_for(broker, SCALE_TOPIC, throughput, harness_options, work)
        result["mib_per_s"] = produced["mib_per_s"]
    except broker_throughput.RowFailed as error:
        result["produce_error"] = str(error)
    try:
        latency = broker_throughput.run_java_latency(broker, SCALE_TOPIC, dataclasses.replace(
            throughput, kind=broker_throughput.LATENCY, rate=options.latency_rate), harness_options, work)
        result.update(p50_ms=latency["p50_ms"], p99_ms=latency["p99_ms"])
    except broker_throughput.RowFailed as error:
        result["latency_error"] = str(error)
    print(f"  {broker.name:8} {label:16} {time.monotonic() - started:4.0f} s: "
          + ", ".join(f"{key}={value:.1f}" if isinstance(value, float) else f"{key}={value}"
                      for key, value in result.items()), flush=True)
    return result


def _wait_until_led(client: partitions_benchmark.Client, count: int) -> None:
    """Kafka answers CreateTopics once its controller has the partitions; the broker leads
    them a while later (seconds for 1,000 under load), and a producer started before then
    waits. Polls Metadata until every partition has a leader; not part of any row."""
    deadline = time.monotonic() + METADATA_CATCH_UP_S
    while True:
        (topic,) = client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=SCALE_TOPIC)],
                                                  allow_auto_topic_creation=False), METADATA_VERSION).topics
        led = sum(1 for partition in topic.partitions if partition.error_code == 0 and partition.leader_id >= 0)
        if topic.error_code == 0 and led == count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{led} of {count} partitions have a leader after {METADATA_CATCH_UP_S:.0f} s")
        time.sleep(0.2)


def measure_partitions(name: str, count: int, options, env: dict) -> dict:
    """One fresh broker with a topic of ``count`` partitions: the rows without and with idle
    connections, RSS; odradek: the clean stop and the start after it."""
    work = Path(tempfile.mkdtemp(prefix=f"odradek-scale-{name}-{count}-"))
    row: dict = {}
    broker = start(name, work)
    try:
        if options.warm_up_seconds > 0:  # as broker_throughput.measure_broker warms a broker up
            warm_up = broker_throughput.Row("warm-up", "warm-up", broker_throughput.PRODUCE, broker_throughput.JAVA,
                                            acks="1")
            broker_throughput.create_topic(broker, warm_up.name, 1)
            broker_throughput.run_producers_for(broker, warm_up.name, warm_up, argparse.Namespace(
                **{**vars(options), "skip_seconds": options.warm_up_seconds, "row_seconds": 0.5}, producer_props=[]),
                work)
        # One raw CreateTopics (timeout_ms 600,000): 10,000 partitions take longer than the
        # Admin client's wait in broker_throughput.create_topic.
        client = partitions_benchmark.Client(_port(broker))
        try:
            started = time.perf_counter()
            partitions_benchmark.create(client, [SCALE_TOPIC], count)
            row["create_s"] = time.perf_counter() - started
            _wait_until_led(client, count)
            row["led_s"] = time.perf_counter() - started
        finally:
            client.close()
        row["rss_created"] = footprint.rss_mb(broker.pid)
        row["plain"] = _rows(broker, count, options, work, "no idle")
        if options.idle_connections:
            idle = IdleConnections(_port(broker), options.idle_connections)
            try:
                row["idle_open_s"] = idle.open_seconds
                row["rss_idle"] = footprint.rss_mb(broker.pid)
                row["idle"] = _rows(broker, count, options, work, f"{options.idle_connections:,} idle")
                row["idle_closed"] = idle.closed_by_broker()
            finally:
                idle.close()
        row["rss_after"] = footprint.rss_mb(broker.pid)
        if name == "odradek":
            started = time.perf_counter()
            broker.stop()
            row["stop_s"] = time.perf_counter() - started
            restarted = footprint.Broker(str(work), "restart", env, str(broker.data_dir))
            try:
                row["restart_s"] = restarted.seconds_to_api_versions(RESTART_DEADLINE_S)
                row["rss_restart"] = restarted.rss_mb()
            finally:
                restarted.stop(RESTART_DEADLINE_S)
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return row


# --- part 3: topics in Metadata ---

def _read_frame(sock: socket.socket) -> bytes:
    """One whole response frame (size prefix included), read as it arrives."""
    chunks, size, received = [], None, 0
    while size is None or received < size + 4:
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the broker closed the connection")
        chunks.append(data)
        received += len(data)
        if size is None and received >= 4:
            size = struct.unpack(">i", b"".join(chunks)[:4])[0]
    frame = b"".join(chunks)
    if len(frame) != size + 4:
        raise ConnectionError(f"{len(frame) - size - 4} bytes after the response")
    return frame


def time_metadata(port: int, topics: int, requests: int) -> dict:
    """``requests`` Metadata v12 round trips for all topics on one connection: times in ms,
    the response's size; the last response decoded must list ``topics`` user topics."""
    connection = ClientConnection()
    body = bytearray()
    MetadataRequest(topics=None, allow_auto_topic_creation=False).write(body, METADATA_VERSION)
    times = []
    with socket.create_connection(("127.0.0.1", port), timeout=partitions_benchmark.REQUEST_TIMEOUT_S) as sock:
        for correlation_id in range(1, requests + 1):
            last = correlation_id == requests
            frame = connection.encode_raw_request(MetadataRequest.API_KEY, METADATA_VERSION, correlation_id,
                                                  bytes(body), "odradek-scale", expects_response=last)
            started = time.perf_counter()
            sock.sendall(frame)
            response = _read_frame(sock)
            times.append((time.perf_counter() - started) * 1000)
    connection.receive_data(response)
    _, decoded = connection.next_response()
    listed = _user_topics(decoded)
    if listed != topics:
        raise RuntimeError(f"Metadata listed {listed} of {topics} topics")
    times.sort()
    return {"median_ms": statistics.median(times), "p99_ms": percentile(times, 0.99), "bytes": len(response)}


def _user_topics(metadata) -> int:
    return sum(1 for topic in metadata.topics if not topic.is_internal and topic.name.startswith("m"))


def _wait_until_listed(client: partitions_benchmark.Client, topics: int) -> None:
    """Kafka answers CreateTopics once its controller has the topics; its Metadata lists them
    a moment later. Not timed."""
    deadline = time.monotonic() + METADATA_CATCH_UP_S
    while True:
        listed = _user_topics(client.request(MetadataRequest(topics=None, allow_auto_topic_creation=False),
                                             METADATA_VERSION))
        if listed == topics:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Metadata lists {listed} of {topics} topics after {METADATA_CATCH_UP_S:.0f} s")
        time.sleep(0.2)


def measure_topics(name: str, counts: list[int], options) -> list[dict]:
    work = Path(tempfile.mkdtemp(prefix=f"odradek-scale-topics-{name}-"))
    rows = []
    broker = start(name, work)
    port = _port(broker)
    try:
        client = partitions_benchmark.Client(port)
        try:
            created = 0
            for count in counts:
                step = f"creating topics {created + 1:,} to {count:,}"
                try:
                    started = time.perf_counter()
                    partitions_benchmark.create(client, [f"m{index:05d}" for index in range(created, count)], 1)
                    row = {"topics": count, "create_s": time.perf_counter() - started}
                    created = count
                    step = f"Metadata with {count:,} topics"
                    _wait_until_listed(client, count)
                    row.update(time_metadata(port, count, options.metadata_requests))
                except (RuntimeError, OSError) as error:
                    raise RuntimeError(f"{step}: {error}; {broker.name}'s log ends: "
                                       f"{broker.log_path.read_text(errors='replace')[-1500:]}") from error
                rows.append(row)
                print(f"  {name:8} {count:>6,} topics: {row['median_ms']:.2f} ms median, "
                      f"{row['p99_ms']:.2f} ms p99, {row['bytes']:,} bytes", flush=True)
        finally:
            client.close()
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return rows


# --- tables ---

def _number(value, fmt: str = ",.1f") -> str:
    return "-" if value is None else format(value, fmt)


def _row_cells(result: dict | None) -> list[str]:
    if result is None:
        return ["-", "-", "-"]
    throughput = _number(result.get("mib_per_s"))
    if "produce_error" in result:
        throughput = f"failed: {result['produce_error'][:60]}"
    if "latency_error" in result:
        return [throughput, f"failed: {result['latency_error'][:60]}", "-"]
    return [throughput, _number(result.get("p50_ms"), ",.0f"), _number(result.get("p99_ms"), ",.0f")]


def tables(partition_rows: dict, topic_rows: dict, options) -> str:
    out = []
    headers = ["partitions", "broker", "CreateTopics s", "all led s", "MiB/s", "p50 ms", "p99 ms"]
    if options.idle_connections:
        headers += [f"MiB/s, {options.idle_connections:,} idle", "p50 ms, idle", "p99 ms, idle",
                    "idle connect s", "closed by broker"]
    rows = []
    for count in options.partitions:
        for name in options.brokers:
            row = partition_rows.get((name, count))
            if row is None:
                continue
            if "error" in row:
                rows.append([f"{count:,}", BROKERS[name], f"failed: {row['error'][:80]}"]
                            + ["-"] * (len(headers) - 3))
                continue
            cells = [f"{count:,}", BROKERS[name], _number(row.get("create_s"), ",.2f"),
                     _number(row.get("led_s"), ",.2f"), *_row_cells(row["plain"])]
            if options.idle_connections:
                cells += [*_row_cells(row.get("idle")), _number(row.get("idle_open_s"), ",.2f"),
                          _number(row.get("idle_closed"), ",d")]
            rows.append(cells)
    if rows:
        out.append(f"Produce, acks=all, {options.record_size:,}-byte records, one topic of that many partitions "
                   f"(MiB/s over {options.row_seconds:g} s; latency at {options.latency_rate:,} records/s for "
                   f"{options.latency_seconds} s):\n\n" + markdown_table(headers, rows))

    rows = []
    for count in options.partitions:
        row = partition_rows.get(("odradek", count))
        if row is None or "error" in row:
            continue
        cells = [f"{count:,}", _number(row.get("rss_created"))]
        if options.idle_connections:
            cells.append(_number(row.get("rss_idle")))
        cells.append(_number(row.get("rss_after")))
        cells += [_number(row.get("stop_s"), ",.2f"), _number(row.get("restart_s"), ",.2f"),
                  _number(row.get("rss_restart"))]
        rows.append(cells)
    if rows:
        headers = ["partitions", "RSS MB, topic created"]
        if options.idle_connections:
            headers.append(f"RSS MB with {options.idle_connections:,} idle connections")
        headers += ["RSS MB after the rows", "clean stop s", "start s (to ApiVersions)", "RSS MB after start"]
        kafka_rss = [f"{count:,} partitions {partition_rows[('kafka', count)]['rss_after']:,.0f} MB"
                     for count in options.partitions if "rss_after" in partition_rows.get(("kafka", count), {})]
        title = "odradek's memory and start against partitions"
        if kafka_rss:
            title += f" (Kafka's RSS after the rows, JVM heap {broker_throughput.KAFKA_HEAP}: {', '.join(kafka_rss)})"
        out.append(title + ":\n\n" + markdown_table(headers, rows))

    rows = []
    for count in options.topics:
        cells = [f"{count:,}"]
        for name in options.brokers:
            found = next((row for row in topic_rows.get(name, []) if row["topics"] == count), None)
            cells += (["-", "-", "-", "-"] if found is None else
                      [_number(found["create_s"], ",.1f"), _number(found["median_ms"], ",.2f"),
                       _number(found["p99_ms"], ",.2f"), f"{found['bytes']:,}"])
        rows.append(cells)
    if rows and topic_rows:
        headers = ["topics"]
        for name in options.brokers:
            headers += [f"{BROKERS[name]}: create s", "Metadata median ms", "p99 ms", "response bytes"]
        out.append(f"Metadata v{METADATA_VERSION} for all topics (one partition each), "
                   f"{options.metadata_requests} requests one after the other; create s: creating the topics "
                   "added since the row above:\n\n" + markdown_table(headers, rows))
    return "\n\n".join(out)


def write_docs(path: Path, text: str) -> None:
    document = path.read_text()
    begin, end = document.find(DOCS_BEGIN), document.find(DOCS_END)
    if begin < 0 or end < begin:
        raise SystemExit(f"{path} has no {DOCS_BEGIN} ... {DOCS_END} markers")
    path.write_text(document[:begin + len(DOCS_BEGIN)] + "\n" + text + "\n" + document[end:])


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default=",".join(BROKERS), help=f"comma-separated, from: {', '.join(BROKERS)}")
    parser.add_argument("--partitions", type=_counts, default=[1, 10, 100, 1000, 10000],
                        help="partition counts (default 1,10,100,1000,10000); 0 skips them")
    parser.add_argument("--kafka-max-partitions", type=int, default=1000,
                        help="Kafka's partition rows go up to this count (1000)")
    parser.add_argument("--topics", type=_counts, default=[10, 100, 1000, 10000],
                        help="topic counts for Metadata (default 10,100,1000,10000); --topics 0 skips them")
    parser.add_argument("--kafka-max-topics", type=int, default=1000, help="Kafka's Metadata rows go up to this (1000)")
    parser.add_argument("--idle-connections", type=int, default=1000, help="idle connections (1000; 0: none)")
    parser.add_argument("--row-seconds", type=float, default=6.0, help="measured seconds of the produce row (6)")
    parser.add_argument("--skip-seconds", type=float, default=2.0, help="first seconds of the row left out (2)")
    parser.add_argument("--record-size", type=int, default=KIB, help="bytes per record value (1024)")
    parser.add_argument("--latency-rate", type=int, default=2000, help="records/s in the latency row (2000)")
    parser.add_argument("--latency-seconds", type=int, default=8, help="length of the latency row (8)")
    parser.add_argument("--warm-up-seconds", type=float, default=5.0,
                        help="seconds of unmeasured acks=1 produce per broker start (5)")
    parser.add_argument("--metadata-requests", type=int, default=30, help="Metadata requests per topic count (30)")
    parser.add_argument("--row-timeout", type=float, default=60.0,
                        help="seconds a row may take beyond its length before it fails (60)")
    parser.add_argument("--write-docs", type=Path, metavar="PATH",
                        help=f"replace the text between {DOCS_BEGIN} and {DOCS_END} in PATH with the tables")
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parser.parse_args(argv)
    options.brokers = [name.strip() for name in options.brokers.split(",") if name.strip()]
    if not options.brokers or any(name not in BROKERS for name in options.brokers):
        parser.error(f"--brokers: choose from {', '.join(BROKERS)}")
    if options.write_docs and not options.write_docs.is_file():
        parser.error(f"--write-docs: no file {options.write_docs}")
    if "kafka" in options.brokers:
        kafka_jars.ensure()
    # Stopped with SIGTERM, stop the brokers and remove the directories on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    began, loads = time.monotonic(), [_load()]
    partition_rows: dict[tuple[str, int], dict] = {}
    topic_rows: dict[str, list[dict]] = {}
    pycache = tempfile.mkdtemp(prefix="odradek-scale-pycache-")
    try:
        env = footprint.bytecode_environment(pycache, write=True)
        warm_up = footprint.Broker(pycache, "bytecode-warm-up", env)  # fills the cache the restarts read
        warm_up.seconds_to_api_versions()
        warm_up.stop()
        for count in options.partitions:
            for name in options.brokers:
                if name == "kafka" and count > options.kafka_max_partitions:
                    continue
                print(f"{name}: {count:,} partitions (load average {_load()})", flush=True)
                started = time.monotonic()
                try:
                    row = measure_partitions(name, count, options, env)
                except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                    row = {"error": " ".join(str(error).split())}
                partition_rows[(name, count)] = row
                print(f"  ({time.monotonic() - started:.0f} s)" + (f" failed: {row['error']}" if "error" in row else ""), flush=True)
        loads.append(_load())
        for name in options.brokers:
            counts = [count for count in options.topics
                      if name != "kafka" or count <= options.kafka_max_topics]
            if counts:
                print(f"{name}: Metadata with {', '.join(f'{c:,}' for c in counts)} topics", flush=True)
                try:
                    topic_rows[name] = measure_topics(name, counts, options)
                except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                    print(f"  failed: {error}", flush=True)
        loads.append(_load())
    finally:
        shutil.rmtree(pycache, ignore_errors=True)

    text = tables(partition_rows, topic_rows, options)
    command = " ".join(["python3 benchmarks/scale.py", *argv])
    summary = (f"Measured {time.strftime('%Y-%m-%d')} with `{command}` ({time.monotonic() - began:.0f} s; "
               f"{os.cpu_count()} CPUs shared by the brokers, the load generators and other work; load average "
               f"at the start, after the partition rows and at the end: {' | '.join(loads)}).")
    print("\n" + summary + "\n\n" + text)
    if options.write_docs:
        write_docs(options.write_docs, summary + "\n\n" + text)
        print(f"\n(written to {options.write_docs})")
    return 1 if any("error" in row for row in partition_rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
