#!/usr/bin/env python3
"""Footprint of one ``odradek serve`` process holding many partitions (issue 8): resident memory,
open files, and the time to stop and to start again, cleanly and after ``kill -9``.

Run from the repository root (odradek installed)::

    python3 benchmarks/partitions.py                        # 1,000, 10,000 and 50,000 partitions
    python3 benchmarks/partitions.py --partitions 1000,10000 --open-files-limit 4096

For each partition count, on a real broker subprocess (``footprint.Broker``: a free loopback
port, a fresh data directory under a temporary directory removed at the end, bytecode cached
after one warm-up start) with the open-files limit it inherits (``--open-files-limit`` sets
the soft and hard limit, as ``ulimit -n``):

1. create the partitions (topics of ``--partitions-per-topic``, 20 topics per CreateTopics
   request) and produce one record of 100 bytes to each (acks=1, one Produce per 20 topics);
   then ``VmRSS`` and the open descriptors (``/proc/PID/fd``) are read;
2. clean stop (SIGTERM; its wall time), start again: seconds from ``Popen`` to the first
   ApiVersions answer (the broker listens once every partition is loaded), RSS and open files
   then, and one Fetch of every partition (all records checked);
3. produce one more record to each partition, ``kill -9``, start again: seconds to ApiVersions
   (the unflushed tails are recovered), and every partition fetched again (both records);
4. clean stop again (timed): nothing was written since that start.

A partition count the broker cannot serve (it runs out of descriptors: CreateTopics errors, a
dropped connection) is reported as such with where it stopped. The table is Markdown.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time

from _support import markdown_table
from footprint import Broker, bytecode_environment
from odradek.protocol.connection import ClientConnection
from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.messages.fetch import FetchRequest
from odradek.protocol.messages.produce import ProduceRequest
from odradek.protocol.records.batch import Record, build_batch, iter_batches

TOPICS_PER_REQUEST = 20
VALUE_SIZE = 100
START_DEADLINE_S = 900.0
STOP_DEADLINE_S = 900.0
REQUEST_TIMEOUT_S = 600.0


class Client:
    """A blocking raw-protocol client (requests one at a time)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT_S)
        self.connection = ClientConnection()
        self.correlation_id = 0

    def request(self, message, version: int):
        self.correlation_id += 1
        self.sock.sendall(self.connection.encode_request(message, version, self.correlation_id,
                                                         client_id="odradek-partitions"))
        while True:
            answer = self.connection.next_response()
            if answer is not None:
                return answer[1]
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("the broker closed the connection")
            self.connection.receive_data(data)

    def close(self) -> None:
        self.sock.close()


def value_of(topic: str, partition: int, round_: int) -> bytes:
    return f"{topic}/{partition}/{round_}".encode().ljust(VALUE_SIZE, b".")


def groups_of(topics: list[str]):
    for start in range(0, len(topics), TOPICS_PER_REQUEST):
        yield topics[start:start + TOPICS_PER_REQUEST]


def create(client: Client, topics: list[str], per_topic: int) -> None:
    for group in groups_of(topics):
        answer = client.request(CreateTopicsRequest(timeout_ms=600000, topics=[CreateTopicsRequest.CreatableTopic(
            name=name, num_partitions=per_topic, replication_factor=1) for name in group]), 5)
        failed = [(topic.name, topic.error_code, topic.error_message) for topic in answer.topics if topic.error_code]
        if failed:
            raise RuntimeError(f"CreateTopics failed after {topics.index(group[0])} topics: {failed[:2]}")


def produce(client: Client, topics: list[str], per_topic: int, round_: int) -> None:
    for group in groups_of(topics):
        request = ProduceRequest(acks=1, timeout_ms=600000, topic_data=[ProduceRequest.TopicProduceData(
            name=name, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
                index=partition, records=build_batch([Record(offset_delta=0, timestamp_delta=0, key=None,
                                                             value=value_of(name, partition, round_))],
                                                     base_timestamp=int(time.time() * 1000)))
                for partition in range(per_topic)]) for name in group])
        for topic in client.request(request, 9).responses:
            for partition in topic.partition_responses:
                if partition.error_code or partition.base_offset != round_:
                    raise RuntimeError(f"produce to {topic.name}-{partition.index}: error {partition.error_code}, "
                                       f"offset {partition.base_offset}")


def fetch_and_check(client: Client, topics: list[str], per_topic: int, rounds: int) -> None:
    for group in groups_of(topics):
        request = FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=256 << 20, isolation_level=0,
                               session_id=0, session_epoch=-1, topics=[FetchRequest.FetchTopic(topic=name, partitions=[
                                   FetchRequest.FetchTopic.FetchPartition(partition=partition, fetch_offset=0,
                                                                          partition_max_bytes=1 << 20)
                                   for partition in range(per_topic)]) for name in group])
        for topic in client.request(request, 11).responses:
            for partition in topic.partitions:
                values = [record.value for batch in iter_batches(bytes(partition.records)) for record in batch.records]
                expected = [value_of(topic.topic, partition.partition_index, r) for r in range(rounds)]
                if partition.error_code or values != expected:
                    raise RuntimeError(f"fetch of {topic.topic}-{partition.partition_index}: error "
                                       f"{partition.error_code}, {len(values)} records")


def measure(work_dir: str, env: dict, count: int, per_topic: int, preexec_fn) -> dict:
    topics = [f"p{index:05d}" for index in range(-(-count // per_topic))]
    data_dir = os.path.join(work_dir, f"data-{count}")
    row: dict = {"partitions": count}
    broker = Broker(work_dir, f"broker-{count}-1", env, data_dir, preexec_fn)
    try:
        broker.seconds_to_api_versions(START_DEADLINE_S)
        client = Client(broker.port)
        started = time.perf_counter()
        try:
            create(client, topics, per_topic)
            row["create_s"] = time.perf_counter() - started
            produce(client, topics, per_topic, 0)
        except (RuntimeError, ConnectionError) as error:
            row["failed"] = str(error)[:200]
            row["open_files"] = broker.open_files() if broker.process.poll() is None else None
            return row
        finally:
            client.close()
        row["rss_mb"] = broker.rss_mb()
        row["open_files"] = broker.open_files()
        started = time.perf_counter()
        broker.stop(STOP_DEADLINE_S)
        row["stop_s"] = time.perf_counter() - started

        broker = Broker(work_dir, f"broker-{count}-2", env, data_dir, preexec_fn)
        row["restart_s"] = broker.seconds_to_api_versions(START_DEADLINE_S)
        row["restart_rss_mb"] = broker.rss_mb()
        row["restart_open_files"] = broker.open_files()
        client = Client(broker.port)
        started = time.perf_counter()
        fetch_and_check(client, topics, per_topic, 1)
        row["fetch_all_s"] = time.perf_counter() - started
        produce(client, topics, per_topic, 1)
        client.close()
        broker.process.send_signal(signal.SIGKILL)
        broker.process.wait()
        broker.stop()

        broker = Broker(work_dir, f"broker-{count}-3", env, data_dir, preexec_fn)
        row["kill9_restart_s"] = broker.seconds_to_api_versions(START_DEADLINE_S)
        client = Client(broker.port)
        fetch_and_check(client, topics, per_topic, 2)
        client.close()
        row["kill9_open_files"] = broker.open_files()
        row["kill9_rss_mb"] = broker.rss_mb()
        started = time.perf_counter()
        broker.stop(STOP_DEADLINE_S)  # nothing written since the start, which flushed what it recovered
        row["idle_stop_s"] = time.perf_counter() - started
        return row
    finally:
        broker.stop(STOP_DEADLINE_S)
        shutil.rmtree(data_dir, ignore_errors=True)


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    return "-" if value is None else format(value, fmt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", default="1000,10000,50000",
                        help="comma-separated partition counts (default 1000,10000,50000)")
    parser.add_argument("--partitions-per-topic", type=int, default=10, help="default 10")
    parser.add_argument("--open-files-limit", type=int,
                        help="the broker's RLIMIT_NOFILE, soft and hard (default: inherited)")
    args = parser.parse_args(argv)
    counts = [int(item) for item in args.partitions.split(",")]
    preexec_fn = None
    if args.open_files_limit:
        def preexec_fn():
            resource.setrlimit(resource.RLIMIT_NOFILE, (args.open_files_limit, args.open_files_limit))
    limit = args.open_files_limit or resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    work_dir = tempfile.mkdtemp(prefix="odradek-partitions-")
    rows = []
    try:
        env = bytecode_environment(os.path.join(work_dir, "pycache"), write=True)
        warm_up = Broker(work_dir, "warm-up", env)
        warm_up.seconds_to_api_versions()
        warm_up.stop()
        for count in counts:
            print(f"  {count:,} partitions ...", file=sys.stderr, flush=True)
            rows.append(measure(work_dir, env, count, args.partitions_per_topic, preexec_fn))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    print(f"\n### {args.partitions_per_topic} partitions per topic, one 100-byte record each; "
          f"open-files limit {limit:,}\n")
    print(markdown_table(
        ["partitions", "create s", "RSS MB", "open files", "clean stop s", "clean restart s",
         "RSS MB after restart", "open files after restart", "fetch all s", "kill -9 restart s",
         "stop, nothing written s", "note"],
        [[f"{row['partitions']:,}", _cell(row, "create_s", ".1f"), _cell(row, "rss_mb", ".0f"),
          _cell(row, "open_files", ","), _cell(row, "stop_s", ".2f"), _cell(row, "restart_s", ".2f"),
          _cell(row, "restart_rss_mb", ".0f"), _cell(row, "restart_open_files", ","),
          _cell(row, "fetch_all_s", ".2f"), _cell(row, "kill9_restart_s", ".2f"), _cell(row, "idle_stop_s", ".2f"),
          row.get("failed", "")]
         for row in rows]))
    print(f"\ntemporary data under {tempfile.gettempdir()} removed; Python {sys.version.split()[0]}")
    return 1 if any("failed" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
