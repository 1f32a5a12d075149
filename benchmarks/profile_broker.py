#!/usr/bin/env python3
"""Where a real ``odradek serve`` spends its time on the produce and fetch paths, under load
from Kafka's own perf tools.

Run from the repository root (odradek installed; Java 17+ and Kafka's jars, fetched by
``compat/kafka_jars.py`` on the first run)::

    python3 benchmarks/profile_broker.py                          # every workload, py-spy, ~3 min
    python3 benchmarks/profile_broker.py --workloads produce-100,consume --profiler none
    python3 benchmarks/profile_broker.py --profiler cprofile --top 40
    python3 benchmarks/profile_broker.py --workloads produce-1k --profiler perf

For each workload a fresh broker (``python3 -m odradek.broker.cli serve``, uvloop, the
``server.properties`` of compat/make_kafka_fixture.py in a temporary directory, deleted
afterwards) takes the load of one ``ProducerPerformance`` as fast as it goes (the Java
client's defaults: batch.size 16384, linger.ms 5, 5 requests in flight), for
``--skip-seconds`` (3, the tool's start, not counted) + ``--seconds`` (8); the rate is over the
reports after the skipped seconds, as in benchmarks/broker_throughput.py (whose load
generators this script reuses). The ``consume`` workload first produces ``--consume-records``
1 KiB records (not profiled), then one ``ConsumerPerformance`` reads them all from offset 0;
its rate is the tool's ``fetch.MB.sec``. Workloads:

* ``produce-1k`` / ``produce-100``: 1024 / 100-byte records, acks=1, uncompressed, 1 partition;
* ``produce-1k-lz4`` / ``produce-100-lz4``: the same compressed by the producer with lz4;
* ``produce-16p``: 1024-byte records, acks=1, to a topic of 16 partitions;
* ``produce-all``: 1024-byte records, acks=all (the broker's default, fsync on acks=all);
* ``consume``: as above.

Profilers (``--profiler``):

* ``py-spy`` (default; ``pip install py-spy``, a developer tool, not a dependency of odradek):
  samples the broker's Python stacks ``--rate`` times a second while the load runs, from outside
  the process, so the broker runs at nearly full speed. Idle samples (the loop waiting in
  epoll) are left out, so the percentages are of the broker's busy time. "self" is the share of
  samples whose innermost Python frame is the function (time in C code called from it, such as
  a socket write or a CRC, counts as its self time); "cumulative" the share with the function
  anywhere on the stack.
  py-spy counts a thread as busy while it is runnable, also when it waits for a core: on a
  loaded machine a call that wakes another process (a send on loopback wakes the client) looks
  more costly than the CPU it takes. ``perf`` tells the two apart.
* ``perf``: ``perf record`` of the broker's on-CPU samples (``--rate`` a second), reported by
  binary (the kernel: system calls; libpython: the interpreter running odradek's Python code;
  extension modules such as crc32c, lz4, uvloop) and by symbol. No Python function names (Python
  3.11 has no perf trampoline), but the true split between system calls and Python.
* ``cprofile``: the broker runs under ``python -m cProfile -o FILE``; its stats are written when
  SIGTERM stops it and printed sorted by cumulative and by self (tottime) time. Deterministic
  and complete (call counts), but every Python call costs several times more, so the rates
  drop and small functions look bigger than they are.
* ``none``: the rates alone (what before/after comparisons should use).

``--save DIR`` keeps the raw profiles (py-spy's collapsed stacks, cProfile's stats files, perf's
data files). Every workload also reports the broker's CPU time (``/proc``, all its threads) per
record batch and per record over the whole run: steadier than the rates when other work shares
the cores.
The machine's load average is printed with the results: on a shared 2-core machine the load
generator's JVM and other work compete with the broker, so compare runs taken alternately.
"""

from __future__ import annotations

import argparse
import collections
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(BENCHMARKS.parent / "compat"))

import kafka_jars  # noqa: E402  (compat/, a sibling script folder)
import make_kafka_fixture as kafka_fixture  # noqa: E402
from broker_throughput import (  # noqa: E402
    BROKER_START_TIMEOUT_S, JAVA, PRODUCE, Row, RowFailed, count_batches, create_topic, run_java_consumer,
    run_producers_for, topic_records,
)

# The workloads, as rows of broker_throughput.py (Java's ProducerPerformance as the load).
WORKLOADS = {row.name: row for row in [
    Row("produce-1k", "1 KiB, acks=1", PRODUCE, JAVA, acks="1"),
    Row("produce-100", "100 B, acks=1", PRODUCE, JAVA, record_size=100, acks="1"),
    Row("produce-1k-lz4", "1 KiB, lz4, acks=1", PRODUCE, JAVA, acks="1", compression="lz4"),
    Row("produce-100-lz4", "100 B, lz4, acks=1", PRODUCE, JAVA, record_size=100, acks="1", compression="lz4"),
    Row("produce-16p", "1 KiB, 16 partitions, acks=1", PRODUCE, JAVA, partitions=16, acks="1"),
    Row("produce-all", "1 KiB, acks=all", PRODUCE, JAVA),
    Row("consume", "consume what 1 KiB acks=1 produced", PRODUCE, JAVA, acks="1"),
]}
PROFILERS = ("py-spy", "cprofile", "perf", "none")


class Broker:
    """``odradek serve`` on a free port, optionally under cProfile."""

    def __init__(self, work: Path, cprofile_output: Path | None):
        broker_port, controller_port = kafka_fixture.free_port(), kafka_fixture.free_port()
        properties = work / "server.properties"
        properties.write_text(kafka_fixture.server_properties(work, broker_port, controller_port))
        command = [sys.executable]
        if cprofile_output is not None:
            command += ["-m", "cProfile", "-o", str(cprofile_output)]
        command += ["-m", "odradek.broker.cli", "serve", "--config", str(properties)]
        self.log_path = work / "odradek.log"
        self.bootstrap = f"127.0.0.1:{broker_port}"
        self.name = "odradek"
        self.data_dir = work / "data"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        kafka_fixture.wait_for_port(broker_port, self.process, BROKER_START_TIMEOUT_S, self.log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the broker process so far (all its threads)."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        kafka_fixture.stop(self.process)  # SIGTERM: a clean shutdown, so cProfile writes its stats


class Perf:
    """``perf record`` of the broker's on-CPU time (kernel included) until stopped."""

    def __init__(self, pid: int, output: Path, rate: int):
        self.output = output
        self.process = subprocess.Popen(["perf", "record", "-F", str(rate), "-p", str(pid), "-o", str(output)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        _, stderr = self.process.communicate(timeout=60)
        if not self.output.exists():
            raise RuntimeError(f"perf wrote no profile: {stderr.strip()[-500:]}")


def perf_tops(path: Path, top: int) -> str:
    """Shares of on-CPU samples by binary (kernel, the interpreter, extension modules) and by
    symbol: what the system calls cost next to the Python code (the interpreter's share)."""
    lines = []
    for sort in ("dso", "dso,sym"):
        report = subprocess.run(["perf", "report", "-i", str(path), "--stdio", "--no-children", "--sort", sort,
                                 "--percent-limit", "0.5"], capture_output=True, text=True, timeout=120)
        rows = [line for line in report.stdout.splitlines() if line.strip() and not line.startswith("#")]
        lines.append(f"  by {sort}:")
        lines += [f"    {row.strip()}" for row in rows[:top]]
    return "\n".join(lines)


class PySpy:
    """``py-spy record`` attached to a process until stopped; collapsed stacks in ``output``."""

    def __init__(self, pid: int, output: Path, rate: int):
        executable = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.output = output
        self.process = subprocess.Popen([executable, "record", "--pid", str(pid), "--rate", str(rate),
                                         "--format", "raw", "--output", str(output)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)  # py-spy writes what it sampled on Ctrl-C
        _, stderr = self.process.communicate(timeout=60)
        if not self.output.exists():
            raise RuntimeError(f"py-spy wrote no profile: {stderr.strip()[-500:]}")


def _frame_name(frame: str) -> str:
    """``function (path/to/file.py:line)`` -> ``function (file.py)``: one entry per function."""
    name, _, where = frame.rpartition(" (")
    if not name:
        return frame
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if "odradek" in path or "wt-" in path else parts[-1] if parts else path
    return f"{name} ({short})"


def collapsed_tops(path: Path, top: int) -> str:
    """Self and cumulative shares per function from py-spy's collapsed stacks."""
    own: collections.Counter = collections.Counter()
    cumulative: collections.Counter = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_frame_name(frame) for frame in stack.split(";") if not frame.startswith("process ")
                  and not frame.startswith("thread ")]
        if not frames:
            continue
        total += samples
        own[frames[-1]] += samples
        for name in set(frames):
            cumulative[name] += samples
    if not total:
        return "(no samples)"
    lines = [f"{total} busy samples"]
    for title, counter in (("cumulative", cumulative), ("self", own)):
        lines.append(f"  by {title}:")
        lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]
    return "\n".join(lines)


def cprofile_tops(path: Path, top: int) -> str:
    import io
    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text)
    stats.strip_dirs()
    for order in ("cumulative", "tottime"):
        text.write(f"  by {order}:\n")
        stats.sort_stats(order).print_stats(top)
    return text.getvalue()


def _profiler(options, broker: Broker, stem: Path):
    if options.profiler == "py-spy":
        return PySpy(broker.pid, stem.with_suffix(".txt"), options.rate)
    if options.profiler == "perf":
        return Perf(broker.pid, stem.with_suffix(".perf"), options.rate)
    return None


def run_workload(name: str, options, work: Path) -> tuple[dict, str]:
    row = WORKLOADS[name]
    cprofile_output = work / f"{name}.prof" if options.profiler == "cprofile" else None
    broker = Broker(work, cprofile_output)
    profile = ""
    spy = None
    load = SimpleNamespace(skip_seconds=options.skip_seconds, row_seconds=options.seconds, row_timeout=60,
                           producer_props=[])
    try:
        topic = f"profile-{name}"
        create_topic(broker, topic, row.partitions)
        if name == "consume":
            run_producers_for(broker, topic, row, SimpleNamespace(**{**vars(load), "skip_seconds": 0,
                                                                     "row_seconds": options.consume_seconds}), work)
            batches, records = count_batches(broker, topic), topic_records(broker, topic, row.partitions)
            spy = _profiler(options, broker, work / name)
            cpu = broker.cpu_seconds()
            result = run_java_consumer(broker, topic, records, load, work)
            cpu = broker.cpu_seconds() - cpu
        else:
            spy = _profiler(options, broker, work / name)
            cpu = broker.cpu_seconds()
            result = run_producers_for(broker, topic, row, load, work)
            cpu = broker.cpu_seconds() - cpu
            batches, records = count_batches(broker, topic), topic_records(broker, topic, row.partitions)
        # The broker's CPU time per batch (per produce request on one partition) and per record,
        # over everything the tool sent or read: steadier than the rates when other work shares
        # the cores.
        result.update(batches=batches, records=records, cpu_s=cpu,
                      cpu_us_per_batch=cpu * 1e6 / max(batches, 1), cpu_ns_per_record=cpu * 1e9 / max(records, 1))
        if spy is not None:
            spy.stop()
            profile = (perf_tops if isinstance(spy, Perf) else collapsed_tops)(spy.output, options.top)
            spy = None
    except RowFailed as error:
        result = {"error": str(error)}
    finally:
        if spy is not None:
            spy.stop()
        broker.stop()
    if cprofile_output is not None and cprofile_output.exists():
        profile = cprofile_tops(cprofile_output, options.top)
    if options.save is not None:
        for kept in work.glob(f"{name}.*"):
            shutil.copy(kept, options.save / kept.name)
    return result, profile


def _load() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated, from: " + ", ".join(WORKLOADS))
    parser.add_argument("--profiler", choices=PROFILERS, default="py-spy")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds of each produce workload (8)")
    parser.add_argument("--skip-seconds", type=float, default=3.0, help="first seconds not counted (3)")
    parser.add_argument("--consume-seconds", type=float, default=8.0,
                        help="seconds of acks=1 produce that fill the consume workload's topic (8)")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second (200)")
    parser.add_argument("--top", type=int, default=25, help="functions listed per ordering (25)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each workload, alternating (1)")
    parser.add_argument("--save", type=Path, help="keep the raw profiles in this directory")
    options = parser.parse_args(argv)
    names = [name.strip() for name in options.workloads.split(",") if name.strip()]
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}")
    if options.save is not None:
        options.save.mkdir(parents=True, exist_ok=True)
    kafka_jars.ensure()
    loads = [_load()]
    results: dict[str, list[dict]] = {}
    for repeat in range(options.repeats):
        for name in names:
            work = Path(tempfile.mkdtemp(prefix=f"odradek-profile-{name}-"))
            try:
                result, profile = run_workload(name, options, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            results.setdefault(name, []).append(result)
            print(f"{name} (repeat {repeat + 1}, load average {_load()}): " + ", ".join(
                f"{key}={value:,.1f}" if isinstance(value, float) else f"{key}={value}"
                for key, value in result.items()), flush=True)
            if profile:
                print(profile, flush=True)
        loads.append(_load())
    print(f"\nload average at the start and after each repeat: {' | '.join(loads)}")
    for name, runs in results.items():
        rates = [f"{run['mib_per_s']:.1f} MiB/s ({run['records_per_s']:,.0f} rec/s, {run['cpu_us_per_batch']:.0f} us "
                 f"CPU/batch, {run['cpu_ns_per_record']:,.0f} ns CPU/record)" if "mib_per_s" in run
                 else run.get("error", "?") for run in runs]
        print(f"  {name:16} {' | '.join(rates)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
