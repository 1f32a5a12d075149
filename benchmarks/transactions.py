#!/usr/bin/env python3
"""Transactional produce throughput of ``odradek serve`` against Apache Kafka on this machine.

Run from the repository root (odradek installed; Java 17+ and Kafka's jars, fetched by
``compat/kafka_jars.py`` into ``compat/.cache`` on the first run)::

    python3 benchmarks/transactions.py                      # defaults: about 3 minutes
    python3 benchmarks/transactions.py --repeats 3 --seconds 15 --records-per-txn 100,10000

The brokers are started as benchmarks/broker_throughput.py starts them (the same
``server.properties``, a fresh temporary data directory per repeat, the brokers alternating):
``odradek`` (fsync before acknowledging acks=all, and before answering EndTxn and writing
markers: odradek's default), ``odradek-nofsync`` (``odradek.flush.on.acks.all=false``) and
``kafka`` (no fsync on produce, Kafka's default). The load is one Java producer
(benchmarks/TransactionalThroughput.java, the Java client's defaults, acks=all as transactions
require), each transaction ``--records-per-txn`` records of ``--record-size`` bytes to a
one-partition topic, committed before the next begins; the first ``--warm-up-seconds`` run the
same loop unmeasured. A row reports records/s and transactions/s over ``--seconds``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))

import broker_throughput  # noqa: E402
import kafka_jars  # noqa: E402

PROGRAM = Path(__file__).with_name("TransactionalThroughput.java")
_RESULT = re.compile(r"records=(\d+) transactions=(\d+) seconds=([\d.]+)")


def compile_program(into: Path) -> str:
    """Compile the load generator once; the class path to run it with."""
    classpath = kafka_jars.classpath()
    subprocess.run([shutil.which("javac") or "javac", "-cp", classpath, "-d", str(into), str(PROGRAM)], check=True,
                   timeout=120)
    return f"{into}:{classpath}"


def run_producer(classpath: str, bootstrap: str, topic: str, per_transaction: int, options) -> tuple[float, float]:
    """(records/s, transactions/s) of one measured run."""
    command = [shutil.which("java") or "java", "-Xmx512m", "-cp", classpath, PROGRAM.stem, bootstrap,
               topic, str(per_transaction), str(options.record_size), str(options.warm_up_seconds),
               str(options.seconds)]
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=options.warm_up_seconds + options.seconds + 120)
    match = _RESULT.search(result.stdout)
    if result.returncode != 0 or match is None:
        raise broker_throughput.RowFailed(f"exit {result.returncode}: {result.stderr.strip()[-800:]}")
    records, transactions, seconds = int(match.group(1)), int(match.group(2)), float(match.group(3))
    return records / seconds, transactions / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", default="odradek,odradek-nofsync,kafka")
    parser.add_argument("--records-per-txn", default="100,10000")
    parser.add_argument("--record-size", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warm-up-seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=2)
    options = parser.parse_args(argv)
    kafka_jars.ensure()
    brokers = options.brokers.split(",")
    sizes = [int(size) for size in options.records_per_txn.split(",")]
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    classes = tempfile.TemporaryDirectory(prefix="txn-bench-classes-")
    classpath = compile_program(Path(classes.name))
    for repeat in range(options.repeats):
        order = brokers[repeat % len(brokers):] + brokers[:repeat % len(brokers)]
        for name in order:
            with tempfile.TemporaryDirectory(prefix=f"txn-bench-{name}-") as work:
                broker = broker_throughput.start_broker(name, Path(work), [])
                try:
                    for size in sizes:
                        topic = f"txn-{size}"
                        broker_throughput.create_topic(broker, topic, 1)
                        try:
                            outcome = run_producer(classpath, broker.bootstrap, topic, size, options)
                        except broker_throughput.RowFailed as error:
                            print(f"{name} {size}: failed: {error}", file=sys.stderr)
                            continue
                        results.setdefault((name, size), []).append(outcome)
                        print(f"{name} records/txn={size}: {outcome[0]:.0f} records/s, {outcome[1]:.1f} txn/s",
                              file=sys.stderr)
                finally:
                    broker.stop()
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}, {time.strftime('%Y-%m-%d')}")
    print("| records per transaction | " + " | ".join(f"{name} records/s (txn/s)" for name in brokers)
          + " | odradek / kafka |")
    print("|---|" + "---|" * (len(brokers) + 1))
    for size in sizes:
        cells, medians = [], {}
        for name in brokers:
            runs = results.get((name, size), [])
            if not runs:
                cells.append("failed")
                continue
            medians[name] = statistics.median(run[0] for run in runs)
            cells.append(f"{medians[name]:,.0f} ({statistics.median(run[1] for run in runs):,.1f})")
        ratio = (f"{medians['odradek'] / medians['kafka']:.2f}x" if "odradek" in medians and "kafka" in medians
                 else "-")
        print(f"| {size:,} | " + " | ".join(cells) + f" | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
