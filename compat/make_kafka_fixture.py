"""Write a partition directory with a real Apache Kafka broker: the Kafka-written fixture.

Run from the repository root (needs Java 17+ and Maven; a few minutes at most)::

    python compat/make_kafka_fixture.py [--out tests/fixtures/kafka-written] [--keep]

What it does:

1. fetches Kafka's jars (compat/kafka_jars.py);
2. writes a ``server.properties`` for one KRaft node in combined mode
   (``process.roles=broker,controller``, ``node.id=1``, a static ``controller.quorum.voters``,
   both listeners on 127.0.0.1 at free ports, ``log.dirs`` and the metadata log in a temporary
   directory) and formats the storage with ``kafka.tools.StorageTool format``;
3. starts ``kafka.Kafka`` and waits until it answers on its port;
4. runs compat/FixtureProducer.java (Kafka's Java client, as a single-file program) which
   creates topic ``fixture`` (one partition; tiny ``internal.segment.bytes`` -- Kafka 4 refuses a
   ``segment.bytes`` under 1 MiB -- and ``index.interval.bytes`` so that there are several
   segments with index entries; ``retention.ms=-1`` so nothing is deleted) and produces the
   records of :func:`plan`: keys and null keys, null and empty values, headers (one with a null
   value), explicit timestamps, every codec (none, gzip, snappy, lz4, zstd), a plain producer
   (acks=1, no producer id), idempotent producers, and a transactional producer with one
   committed and one aborted transaction (control batches, a ``.txnindex`` entry);
5. stops the broker with SIGTERM (a clean shutdown: indexes trimmed, checkpoints and the
   clean-shutdown marker written) and copies ``fixture-0/`` and the data directory's
   ``meta.properties``, ``.kafka_cleanshutdown`` and offset checkpoint files to
   ``<out>/log-dir/``, with ``<out>/expected.json``: every record with the offset and timestamp
   the broker acknowledged, what the files should say (log end offset, segments), and Kafka's
   own answers to ListOffsets by timestamp (Admin client, before the shutdown) for every
   record timestamp and the millisecond after it, and for the max timestamp.

The output is data produced by this script from our own inputs; it is committed (about 60 KB) and
read by ``tests/storage/test_kafka_written_dir.py``. Every JVM run is bounded in time.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kafka_jars  # noqa: E402  (a sibling script, not a package)

REPO = Path(__file__).resolve().parent.parent
PRODUCER_SOURCE = Path(__file__).resolve().parent / "FixtureProducer.java"
TOPIC = "fixture"
PARTITION = 0
TOPIC_CONFIGS = {
    "internal.segment.bytes": "2048",   # several segments from a few KB of records
    "index.interval.bytes": "256",      # several offset/time index entries per segment
    "retention.ms": "-1",               # the timestamps are fixed; nothing may expire
    "message.timestamp.type": "CreateTime",
}
DATA_DIR_FILES = [
    "meta.properties",
    ".kafka_cleanshutdown",
    "recovery-point-offset-checkpoint",
    "log-start-offset-checkpoint",
    "replication-offset-checkpoint",
    "cleaner-offset-checkpoint",
]
BROKER_START_TIMEOUT = 90.0
BROKER_STOP_TIMEOUT = 60.0
PRODUCER_TIMEOUT = 300.0
# Records carry fixed timestamps from this base (ms); retention is off, and Kafka 4's
# message.timestamp.before.max.ms default (unbounded) accepts old timestamps.
BASE_TIMESTAMP = 1_750_000_000_000


def new_cluster_id() -> str:
    """A random cluster id for ``kafka-storage format -t``, as Kafka's Uuid.randomUuid makes
    them: never one that starts with '-', which the tool would read as an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def plan() -> list[dict]:
    """The producers, batches and records, in the order produced.

    Each step is ``{"producer": codec, "mode": ..., "batches": [[record, ...], ...],
    "transaction": None | "commit" | "abort"}``; a record is ``{"id", "timestamp", "key",
    "value", "headers"}`` with text keys/values (None for null) and headers as [key, value]."""
    steps = []
    counter = 0

    def record(batch_index: int, index: int, codec: str) -> dict:
        nonlocal counter
        counter += 1
        key = None if index % 4 == 0 else f"{codec}-key-{batch_index}-{index}"
        if index % 5 == 2:
            value = None
        elif index % 7 == 3:
            value = ""
        else:
            value = f"{codec} batch {batch_index} record {index} · grüße " + "payload " * (index % 6 + 4)
        headers = []
        if index % 3 == 1:
            headers = [["trace", f"{codec}/{batch_index}/{index}"], ["nothing", None]]
        return {"id": counter, "timestamp": BASE_TIMESTAMP + counter * 10 + (index % 3),
                "key": key, "value": value, "headers": headers}

    batch_number = 0
    for codec, mode in [("none", "plain"), ("none", "idempotent"), ("gzip", "idempotent"),
                        ("snappy", "idempotent"), ("lz4", "idempotent"), ("zstd", "idempotent"),
                        ("gzip", "plain")]:
        batches = []
        for size in (1, 7, 12):
            batches.append([record(batch_number, i, codec) for i in range(size)])
            batch_number += 1
        steps.append({"producer": codec, "mode": mode, "batches": batches, "transaction": None})
    for outcome in ("commit", "abort", "commit"):
        batches = [[record(batch_number, i, "lz4") for i in range(5)]]
        batch_number += 1
        steps.append({"producer": "lz4", "mode": "transactional", "batches": batches, "transaction": outcome})
    return steps


def _b64(text: str | None) -> str:
    return "-" if text is None else base64.b64encode(text.encode("utf-8")).decode()


def producer_commands(steps: list[dict]) -> str:
    lines = ["\t".join(["TOPIC", TOPIC, "1", *(f"{k}={v}" for k, v in TOPIC_CONFIGS.items())])]
    transactional_open = None
    for step in steps:
        mode = step["mode"]
        if transactional_open != (step["producer"], mode) or mode != "transactional":
            lines.append(f"PRODUCER\t{step['producer']}\t{mode}")
            transactional_open = (step["producer"], mode) if mode == "transactional" else None
        if step["transaction"]:
            lines.append("BEGIN")
        for batch in step["batches"]:
            for rec in batch:
                fields = ["RECORD", str(rec["id"]), str(rec["timestamp"]), _b64(rec["key"]), _b64(rec["value"])]
                for header_key, header_value in rec["headers"]:
                    fields += [_b64(header_key), _b64(header_value)]
                lines.append("\t".join(fields))
            lines.append("FLUSH")
        if step["transaction"] == "commit":
            lines.append("COMMIT")
        elif step["transaction"] == "abort":
            lines.append("ABORT")
    lines.append("\t".join(["TIMES", *(str(t) for t in timestamp_targets(steps)), "max"]))
    return "\n".join(lines) + "\n"


def timestamp_targets(steps: list[dict]) -> list[int]:
    """ListOffsets-by-time targets whose answers Kafka records in the fixture: every record's
    timestamp and one millisecond later (inside and between batches), one before all."""
    stamps = sorted({rec["timestamp"] for step in steps for batch in step["batches"] for rec in batch})
    return [stamps[0] - 10_000] + sorted({t + delta for t in stamps for delta in (0, 1)})


def server_properties(work: Path, broker_port: int, controller_port: int) -> str:
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{broker_port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={work / 'data'}",
        f"metadata.log.dir={work / 'metadata'}",
        "num.partitions=1",
        "auto.create.topics.enable=false",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=1",
        "group.initial.rebalance.delay.ms=0",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "",
    ])


def wait_for_port(port: int, process: subprocess.Popen, timeout: float, log_path: Path) -> None:
    """Wait until ``process`` listens on ``port``; one that exits or does not listen in time is
    not left running (killed) and its log's tail is raised."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"Kafka exited ({process.returncode}):\n{log_path.read_text()[-4000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"Kafka did not listen on {port} within {timeout}s:\n{log_path.read_text()[-4000:]}")
    except BaseException:
        process.kill()
        process.wait()
        raise


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(BROKER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise RuntimeError(f"Kafka did not stop within {BROKER_STOP_TIMEOUT}s of SIGTERM") from None


def produce(work: Path, bootstrap: str, steps: list[dict]) -> tuple[dict[int, tuple[int, int, int]], list]:
    command = [shutil.which("java") or "java", "-Xmx256m", "-Dfile.encoding=UTF-8",
               f"-Dlog4j2.configurationFile={kafka_jars.home() / 'log4j2.properties'}",
               "-cp", kafka_jars.classpath(), str(PRODUCER_SOURCE), bootstrap]
    result = subprocess.run(command, input=producer_commands(steps), capture_output=True, text=True,
                            timeout=PRODUCER_TIMEOUT)
    (work / "producer.log").write_text(result.stdout + "\n" + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"FixtureProducer failed ({result.returncode}):\n{result.stderr[-4000:]}")
    acks, times = {}, []
    for line in result.stdout.splitlines():
        if line.startswith("ACK "):
            _, record_id, partition, offset, timestamp = line.split()
            acks[int(record_id)] = (int(partition), int(offset), int(timestamp))
        elif line.startswith("TIME "):
            _, target, offset, timestamp = line.split()
            times.append([target if target == "max" else int(target), int(offset), int(timestamp)])
    return acks, times


def expected_document(steps, acks, partition_dir: Path) -> dict:
    records = []
    batches = []
    for step in steps:
        for batch in step["batches"]:
            offsets = []
            for rec in batch:
                partition, offset, timestamp = acks[rec["id"]]
                assert partition == PARTITION and timestamp == rec["timestamp"], (rec, acks[rec["id"]])
                offsets.append(offset)
                records.append({
                    "offset": offset, "timestamp": rec["timestamp"], "key": rec["key"], "value": rec["value"],
                    "headers": rec["headers"], "codec": step["producer"], "producer": step["mode"],
                    "aborted": step["transaction"] == "abort",
                })
            batches.append({"first_offset": offsets[0], "last_offset": offsets[-1], "codec": step["producer"],
                            "producer": step["mode"], "transaction": step["transaction"]})
    records.sort(key=lambda r: r["offset"])
    segments = sorted(int(p.stem) for p in partition_dir.glob("*.log"))
    log_end_offset = read_checkpoint(partition_dir.parent / "recovery-point-offset-checkpoint")[(TOPIC, PARTITION)]
    data_offsets = {r["offset"] for r in records}
    return {
        "generated_by": "compat/make_kafka_fixture.py",
        "kafka_version": kafka_jars.kafka_version(),
        "topic": TOPIC,
        "partition": PARTITION,
        "topic_configs": TOPIC_CONFIGS,
        "segments": segments,
        "log_end_offset": log_end_offset,
        # Offsets that hold no produced record: the transaction markers (control batches).
        "control_offsets": [o for o in range(log_end_offset) if o not in data_offsets],
        "files": sorted(p.name for p in partition_dir.iterdir()),
        "batches": batches,
        "records": records,
    }


def read_checkpoint(path: Path) -> dict[tuple[str, int], int]:
    """Kafka's offset checkpoint text: version line, count line, "topic partition offset" lines."""
    lines = path.read_text().splitlines()
    entries = {}
    for line in lines[2:2 + int(lines[1])]:
        topic, partition, offset = line.split()
        entries[(topic, int(partition))] = int(offset)
    return entries


def render(document: dict) -> str:
    """JSON with one batch or record per line: small, and readable in a diff."""
    parts = []
    for name, value in document.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            items = ",\n  ".join(json.dumps(item, ensure_ascii=False) for item in value)
            parts.append(f" {json.dumps(name)}: [\n  {items}\n ]")
        else:
            parts.append(f" {json.dumps(name)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "kafka-written"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary broker directory")
    options = parser.parse_args(argv)
    kafka_jars.ensure()
    work = Path(tempfile.mkdtemp(prefix="odradek-kafka-fixture-"))
    broker_port, controller_port = free_port(), free_port()
    properties = work / "server.properties"
    properties.write_text(server_properties(work, broker_port, controller_port))
    kafka_jars.run_java(kafka_jars.STORAGE_TOOL, ["format", "-t", new_cluster_id(), "-c", str(properties)],
                        timeout=120)
    log_path = work / "kafka.log"
    steps = plan()
    with open(log_path, "wb") as log:
        broker = subprocess.Popen(kafka_jars.java_command(kafka_jars.KAFKA_SERVER, [str(properties)], heap="768m"),
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(broker_port, broker, BROKER_START_TIMEOUT, log_path)
        acks, times = produce(work, f"127.0.0.1:{broker_port}", steps)
    finally:
        code = stop(broker)
    if code not in (0, 143):
        raise RuntimeError(f"Kafka exited with {code} after SIGTERM:\n{log_path.read_text()[-4000:]}")
    data = work / "data"
    partition_dir = data / f"{TOPIC}-{PARTITION}"
    if not (data / ".kafka_cleanshutdown").exists():
        raise RuntimeError("Kafka did not write its clean-shutdown marker")

    out = Path(options.out)
    target = out / "log-dir"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copytree(partition_dir, target / partition_dir.name)
    for name in DATA_DIR_FILES:
        if (data / name).exists():
            shutil.copy2(data / name, target / name)
    document = expected_document(steps, acks, partition_dir)
    # Kafka's own answers to ListOffsets by timestamp: [target, offset, timestamp] (offset -1:
    # no record that late; target "max": the max-timestamp query).
    document["list_offsets_by_time"] = times
    (out / "expected.json").write_text(render(document))
    assert json.loads((out / "expected.json").read_text()) == document
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({size} bytes, {len(document['records'])} records, "
          f"segments {document['segments']}); broker dir {work}")
    if not options.keep:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
