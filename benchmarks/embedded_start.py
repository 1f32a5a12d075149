#!/usr/bin/env python3
"""Start-to-ready and stop times of the embedded broker, ``odradek.Broker`` (issue 10).

Run with odradek installed (``pip install -e '.[test]'``)::

    python3 benchmarks/embedded_start.py [--starts 20] [--kafka 3]

For each way of running it (thread or process mode; in memory or on a temporary data
directory) one unmeasured start warms up (imports; for process mode the child's bytecode, kept
in a private cache in a temporary directory as benchmarks/footprint.py does, since an installed
package has its bytecode compiled and PYTHONDONTWRITEBYTECODE would make every child compile the
generated codecs again), then ``--starts`` brokers are
started and stopped one after the other. Start is the wall time of ``Broker.start()``: it
returns once the broker is ready (listening, coordinators loaded, topics creatable), and an
ApiVersions answer over TCP right after it is checked so that a start that returned early would
show. Stop is the wall time of ``Broker.stop()``. Printed as a Markdown table of min / median /
max in milliseconds; the targets (issue 10) apply to the median start: under 150 ms in thread
mode, under 500 ms in process mode. The exit status is 1 if one is missed.

``--kafka N`` also starts Apache Kafka (compat/kafka_jars.py's pinned version, fetched into
compat/.cache on the first run; one KRaft node in combined mode, as benchmarks/broker_throughput.py
runs it) N times on this machine, for the same table: ``kafka-storage format`` plus the start of
the JVM broker until a topic can be created, the nearest Kafka comes to "ready".
"""

from __future__ import annotations

import argparse
import os
import pathlib
import socket
import statistics
import sys
import tempfile
import time

from odradek import Broker
from odradek.protocol.connection import ClientConnection
from odradek.protocol.messages.api_versions import ApiVersionsRequest

TARGET_MS = {"thread": 150.0, "process": 500.0}


def api_versions_answered(host: str, port: int) -> bool:
    connection = ClientConnection()
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(connection.encode_request(ApiVersionsRequest(client_software_name="bench",
                                                                  client_software_version="1"), 3, 1))
        while True:
            response = connection.next_response()
            if response is not None:
                return response[1].error_code == 0
            data = sock.recv(65536)
            if not data:
                return False
            connection.receive_data(data)


def measure(mode: str, memory: bool, starts: int) -> tuple[list[float], list[float]]:
    Broker(mode=mode, memory=memory).start().stop()  # warm-up
    start_ms, stop_ms = [], []
    for _ in range(starts):
        broker = Broker(mode=mode, memory=memory)
        began = time.perf_counter()
        broker.start()
        start_ms.append((time.perf_counter() - began) * 1000)
        assert api_versions_answered(broker.host, broker.port)
        began = time.perf_counter()
        broker.stop()
        stop_ms.append((time.perf_counter() - began) * 1000)
    return start_ms, stop_ms


def measure_kafka(starts: int) -> list[float]:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import broker_throughput as throughput

    throughput.kafka_jars.ensure()
    ready_ms = []
    for index in range(starts):
        with tempfile.TemporaryDirectory(prefix="odradek-bench-kafka-") as work:
            began = time.perf_counter()
            broker = throughput.start_kafka(pathlib.Path(work))
            try:
                throughput.create_topic(broker, f"ready-{index}", 1)
                ready_ms.append((time.perf_counter() - began) * 1000)
            finally:
                broker.process.terminate()
                broker.process.wait(60)
    return ready_ms


def spread(values: list[float]) -> str:
    return f"{min(values):.0f} / {statistics.median(values):.0f} / {max(values):.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--kafka", type=int, default=0, metavar="N", help="also start Apache Kafka N times")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the children inherit the environment
    with tempfile.TemporaryDirectory(prefix="odradek-bench-pycache-") as cache:
        os.environ["PYTHONPYCACHEPREFIX"] = cache
        return run(args.starts, args.kafka)


def run(starts: int, kafka_starts: int) -> int:
    missed = False
    print("| mode | storage | start to ready, ms (min / median / max) | stop, ms | target (median start) |")
    print("| --- | --- | --- | --- | --- |")
    for mode in ("thread", "process"):
        for memory in (True, False):
            start_ms, stop_ms = measure(mode, memory, starts)
            met = statistics.median(start_ms) < TARGET_MS[mode]
            missed |= not met
            storage = "memory" if memory else "temporary dir"
            print(f"| {mode} | {storage} | {spread(start_ms)} | {spread(stop_ms)} | "
                  f"< {TARGET_MS[mode]:.0f}: {'met' if met else 'MISSED'} |")
    if kafka_starts:
        ready_ms = measure_kafka(kafka_starts)
        print(f"| Apache Kafka (JVM, KRaft), format + start | disk | {spread(ready_ms)} | | |")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
