#!/usr/bin/env python3
"""How long a reset takes with 100 topics and 10 groups present (issue 10: under 50 ms).

Run with odradek installed (``pip install -e '.[test]'``)::

    python3 benchmarks/reset.py [--rounds 5]

For each way of running the embedded broker (thread or process mode; in memory or on a
temporary data directory), each round fills the broker — 100 topics of one partition with 10
records each, and 10 consumer groups with an offset committed for every topic (so that
``__consumer_offsets`` holds them) — then resets it through the control API and checks that no
topic is left. Printed: the broker's own time for the reset (``ms`` in the answer: from the
request to the empty broker being ready again) and the caller's wall time for the HTTP call,
min / median / max over the rounds, as a Markdown table. The exit status is 1 if a median of
the broker's time misses the target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from odradek import Broker

TOPICS, GROUPS, RECORDS = 100, 10, 10
TARGET_MS = 50.0


def fill(broker: Broker) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks=1, linger_ms=5)
    try:
        names = [f"topic-{index}" for index in range(TOPICS)]
        admin.create_topics([NewTopic(name, 1, 1) for name in names])
        for name in names:
            for record in range(RECORDS):
                producer.send(name, b"record %d" % record)
        producer.flush()
        for group in range(GROUPS):
            admin.alter_group_offsets(f"group-{group}", {TopicPartition(name, 0): OffsetAndMetadata(RECORDS, "", -1)
                                                         for name in names})
    finally:
        producer.close()
        admin.close()
    status = broker.status()
    assert status["topics"] == TOPICS, status


def measure(mode: str, memory: bool, rounds: int) -> tuple[list[float], list[float]]:
    broker_ms, caller_ms = [], []
    with Broker(mode=mode, memory=memory) as broker:
        for _ in range(rounds):
            fill(broker)
            began = time.perf_counter()
            broker_ms.append(broker.reset())
            caller_ms.append((time.perf_counter() - began) * 1000)
            assert broker.status()["topics"] == 0
    return broker_ms, caller_ms


def spread(values: list[float]) -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print("| mode | storage | reset, broker (ms, min / median / max) | reset, caller (ms) |")
    print("| --- | --- | --- | --- |")
    missed = False
    for mode, memory in (("thread", True), ("thread", False), ("process", True), ("process", False)):
        broker_ms, caller_ms = measure(mode, memory, args.rounds)
        missed |= statistics.median(broker_ms) >= TARGET_MS
        print(f"| {mode} | {'memory' if memory else 'disk'} | {spread(broker_ms)} | {spread(caller_ms)} |",
              flush=True)
    print(f"\n{TOPICS} topics x {RECORDS} records, {GROUPS} groups with an offset for each topic; "
          f"{args.rounds} rounds; target: median under {TARGET_MS:.0f} ms")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
