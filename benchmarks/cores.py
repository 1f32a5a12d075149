#!/usr/bin/env python3
"""Where one odradek process stops scaling, and what a second process on the same machine adds.

Run from the repository root (odradek and the test extras installed)::

    python3 benchmarks/cores.py                      # about 2 minutes
    python3 benchmarks/cores.py --seconds 10 --producers 2 --acks all

An odradek process runs its request handling on one event loop, so one core bounds it (the
sync threads of acks=all and the kernel's work for its sockets and files run beside it). This
measures, with librdkafka producers (benchmarks/rdkafka_load.py, one process each) writing
``--record-size`` byte records as fast as they go, ``--producers`` of them in every layout. By
default they batch as the Java client does (``batch.size=16384``, ``linger.ms=5``): many small
produce requests, so the broker's work per request, not the disk, is what is measured (with
librdkafka's own 1 MB batches the page cache's write-back bounds the rate first here):

* ``one process``: one ``odradek serve``, one topic per producer;
* ``N processes``: ``--producers`` separate ``odradek serve`` processes (each its own port and
  data directory), each with one topic and one producer: the prototype of one process per
  core with the partitions split between them. (Clients reach partitions on different
  processes today only as separate bootstrap servers; the cluster of the replication issue
  would make them one cluster whose Metadata routes each partition to its process.)

For each layout: the records/s and MiB/s acknowledged (summed over the producers, over the
reports after ``--skip-seconds``), and the CPU of the broker processes (% of one core, each)
and of the producers together, from ``/proc/PID/stat``. A broker near 100 % is the bound; the
machine's cores (``nproc``) are shared by brokers and producers, so a second process helps only
where a core is left idle. Traffic stays on 127.0.0.1; temporary data directories are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

from _support import markdown_table  # noqa: E402
from broker_throughput import RDKAFKA_LOAD, cpu_seconds, create_topic, start_odradek  # noqa: E402


def run_layout(processes: int, options, work: Path) -> dict:
    """``options.producers`` producers against ``processes`` brokers (producer i -> broker i % processes)."""
    brokers = []
    producers = []
    try:
        for number in range(processes):
            directory = work / f"broker-{number}"
            directory.mkdir()
            brokers.append(start_odradek(directory, flush_on_acks_all=True))
        topics = []
        for index in range(options.producers):
            broker = brokers[index % processes]
            topic = f"cores-{index}"
            create_topic(broker, topic, options.partitions)
            topics.append((broker, topic))
        for broker, topic in topics:
            command = [sys.executable, str(RDKAFKA_LOAD), "produce", "--bootstrap", broker.bootstrap, "--topic", topic,
                       "--record-size", str(options.record_size), "--config", f"acks={options.acks}"]
            for setting in options.config:
                command += ["--config", setting]
            producers.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        time.sleep(options.skip_seconds)
        began = time.monotonic()
        broker_cpu0 = [cpu_seconds(broker.pid) for broker in brokers]
        producer_cpu0 = [cpu_seconds(producer.pid) for producer in producers]
        counted = {index: [0, 0] for index in range(len(producers))}
        # Each producer reports every second; read until every one reported past the window.
        deadline = began + options.seconds
        readers = {producer.stdout.fileno(): index for index, producer in enumerate(producers)}
        selector = selectors.DefaultSelector()
        for producer in producers:
            selector.register(producer.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                line = key.fileobj.readline()
                if not line:
                    raise RuntimeError("a producer exited")
                report = json.loads(line)
                if "records" in report:
                    counted[readers[key.fileobj.fileno()]][0] += report["records"]
                    counted[readers[key.fileobj.fileno()]][1] += report["bytes"]
        elapsed = time.monotonic() - began
        brokers_cpu = [100 * (cpu_seconds(broker.pid) - before) / elapsed for broker, before in zip(brokers, broker_cpu0)]
        producers_cpu = sum(100 * (cpu_seconds(producer.pid) - before) / elapsed
                            for producer, before in zip(producers, producer_cpu0))
        records = sum(value[0] for value in counted.values())
        payload = sum(value[1] for value in counted.values())
        return {"records_per_s": records / elapsed, "mib_per_s": payload / elapsed / 2**20,
                "broker_cpu": brokers_cpu, "producer_cpu": producers_cpu}
    finally:
        for producer in producers:
            producer.kill()
            producer.wait()
        for broker in brokers:
            broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--producers", type=int, default=2, help="producers, and processes of the split layout (2)")
    parser.add_argument("--partitions", type=int, default=1, help="partitions per topic (1)")
    parser.add_argument("--record-size", type=int, default=1024, help="bytes per record value (1024)")
    parser.add_argument("--acks", choices=["1", "all"], default="1", help="producers' acks (1)")
    parser.add_argument("--config", action="append", default=None, metavar="KEY=VALUE",
                        help="librdkafka producer setting, repeatable (default: batch.size=16384 linger.ms=5)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per layout (8)")
    parser.add_argument("--skip-seconds", type=float, default=3.0, help="seconds before measuring (3)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each layout, alternating (2)")
    options = parser.parse_args(argv)
    if options.config is None:
        options.config = ["batch.size=16384", "linger.ms=5"]
    results: dict[int, list[dict]] = {1: [], options.producers: []}
    for _ in range(options.repeats):
        for processes in results:
            work = Path(tempfile.mkdtemp(prefix="odradek-cores-"))
            try:
                results[processes].append(run_layout(processes, options, work))
                print(f"  {processes} process(es): {results[processes][-1]}", flush=True)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    rows = []
    for processes, runs in results.items():
        best = max(runs, key=lambda run: run["mib_per_s"])
        rows.append([f"{processes} process{'es' if processes > 1 else ''}",
                     " / ".join(f"{run['mib_per_s']:,.1f}" for run in runs),
                     " / ".join(f"{run['records_per_s']:,.0f}" for run in runs),
                     ", ".join(f"{cpu:.0f}" for cpu in best["broker_cpu"]), f"{best['producer_cpu']:.0f}"])
    with open("/proc/loadavg") as handle:
        load = " ".join(handle.read().split()[:3])
    print(f"\n{options.producers} librdkafka producers (acks={options.acks}, {options.record_size}-byte records, "
          f"{' '.join(options.config)}, "
          f"{options.partitions} partition(s) per topic), {options.seconds:g} s per run; {os.cpu_count()} CPUs; "
          f"load average {load}\n")
    print(markdown_table(["layout", "MiB/s (each run)", "records/s (each run)", "broker CPU % (best run, each process)",
                          "producers' CPU % (best run)"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
