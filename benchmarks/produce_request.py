#!/usr/bin/env python3
"""The broker's own CPU time per produce request, in process, without the network or a client.

Run from the repository root (odradek installed)::

    python3 benchmarks/produce_request.py                      # 1 KiB and 100 B records, ~20 s
    python3 benchmarks/produce_request.py --record-sizes 1024 --requests 20000 --profile

A real broker (``BrokerService``, uvloop, a temporary data directory on disk, deleted
afterwards) with one topic of one partition; a connection object (``KafkaProtocol``) whose
transport only counts the bytes it is given. Produce v13 requests as the Java producer sends them
(one idempotent batch of 16 KiB of records, acks=1, the topic by id, a new sequence each) are
encoded first, then fed to the connection one per ``data_received``: each is decoded, validated,
appended (the ``pwrite`` of the segment file included), recorded in the activity stream and
answered, exactly as on a socket. With ``--acks all`` each request is answered once its group
commit round has synced it (the broker's default, ``odradek.flush.on.acks.all``): the script
waits for each response before the next request, so every request has a round of its own, and
the figure adds the round's work on the loop (the sync itself runs in the kernel's AIO worker,
or on the loop where there is none, and then counts too). The figure is the process's CPU time per request
(``time.process_time``), the smallest over ``--rounds`` rounds: CPU time, not wall time, and the
least disturbed round, so that other work on the machine moves it little (unlike a run against
a real client, where the client and the broker share the cores). ``--profile`` samples the same
run with py-spy (``pip install py-spy``, a developer tool) and prints the top functions by
self time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from odradek.broker import logs
from odradek.broker.config import BrokerConfig
from odradek.broker.server import KafkaProtocol
from odradek.broker.service import BrokerService
from odradek.protocol.connection import ClientConnection
from odradek.protocol.messages.produce import PartitionProduceData, ProduceRequest, TopicProduceData
from odradek.protocol.records.batch import Record, build_batch

BATCH_BYTES = 16384  # the Java producer's batch.size
PRODUCER_ID = 1000


class CountingTransport:
    """A transport that takes everything at once."""

    def __init__(self):
        self.writes = 0
        self.bytes = 0
        self.answered: asyncio.Future | None = None  # set by the next write

    def write(self, data) -> None:
        self.writes += 1
        self.bytes += len(data)
        if self.answered is not None and not self.answered.done():
            self.answered.set_result(None)

    def writelines(self, chunks) -> None:
        self.writes += 1
        self.bytes += sum(len(chunk) for chunk in chunks)

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 1) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def produce_frames(topic_id, record_size: int, count: int, acks: int) -> list[bytes]:
    client = ClientConnection()
    per_batch = max(1, BATCH_BYTES // (record_size + 10))
    now = int(time.time() * 1000)
    frames = []
    for sequence in range(count):
        batch = build_batch([Record(offset_delta=i, timestamp_delta=0, key=None, value=b"x" * record_size)
                             for i in range(per_batch)], base_timestamp=now, producer_id=PRODUCER_ID,
                            producer_epoch=0, base_sequence=sequence * per_batch)
        request = ProduceRequest(acks=acks, timeout_ms=30000, topic_data=[TopicProduceData(
            topic_id=topic_id, partition_data=[PartitionProduceData(index=0, records=batch)])])
        frames.append(client.encode_request(request, 13, sequence, client_id="producer-1"))
    return frames


async def measure(record_size: int, requests: int, rounds: int, acks: int) -> dict:
    work = tempfile.mkdtemp(prefix="odradek-produce-request-")
    try:
        config = BrokerConfig.from_sources({"log.dirs": work, "listeners": "PLAINTEXT://127.0.0.1:0",
                                            "odradek.control.port": "-1"})
        service = BrokerService(config)
        await service.start()
        await service.ready()
        try:
            broker = service.broker
            broker.create_topic("bench", 1, 1)
            frames = produce_frames(broker.topics.by_name["bench"].topic_id, record_size, requests, acks)
            protocol = KafkaProtocol(service.server, "PLAINTEXT")
            transport = CountingTransport()
            protocol.connection_made(transport)
            per_round = max(1, requests // rounds)
            loop = asyncio.get_running_loop()
            seconds = []
            for start in range(0, requests, per_round):
                chunk = frames[start:start + per_round]
                began = time.process_time()
                for frame in chunk:
                    answered = transport.writes
                    transport.answered = loop.create_future()
                    protocol.data_received(frame)
                    if transport.writes == answered:  # acks=all: the round's callback answers
                        await transport.answered
                seconds.append((time.process_time() - began) / len(chunk))
            partition = broker.partition("bench", 0)
            if transport.writes != requests or partition.log_end_offset != requests * (
                    max(1, BATCH_BYTES // (record_size + 10))):
                raise RuntimeError(f"{transport.writes} responses, log end offset {partition.log_end_offset}")
            protocol.connection_lost(None)
        finally:
            await service.stop()
        return {"best_us": min(seconds) * 1e6, "median_us": sorted(seconds)[len(seconds) // 2] * 1e6}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(record_size: int, requests: int, rounds: int, acks: int) -> dict:
    import uvloop  # what odradek serve runs on
    return uvloop.run(measure(record_size, requests, rounds, acks))


def profile(argv: list[str], top: int) -> None:
    """This script under py-spy (once, without --profile): self time per function while the
    connection handles requests."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as output:
        executable = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        subprocess.run([executable, "record", "--rate", "1000", "--format", "raw", "--output", output.name, "--",
                        sys.executable, __file__, *argv], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        own: collections.Counter = collections.Counter()
        total = 0
        for line in Path(output.name).read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if "data_received" not in stack:
                continue  # setup: building the requests, starting the broker
            total += int(count)
            own[stack.split(";")[-1].split(" (")[0]] += int(count)
    print(f"\npy-spy, {total} samples while requests were handled; self time:")
    for name, count in own.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record-sizes", default="1024,100", help="comma-separated record value sizes (1024,100)")
    parser.add_argument("--requests", type=int, default=10000, help="produce requests per size (10000)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds the requests are timed in (10)")
    parser.add_argument("--acks", choices=("1", "all"), default="1", help="the requests' acks (1)")
    parser.add_argument("--profile", action="store_true", help="also sample the run with py-spy")
    parser.add_argument("--top", type=int, default=30, help="functions listed with --profile (30)")
    options = parser.parse_args(argv)
    logs.configure("WARNING")
    print("| record bytes | records per request | CPU us per request, best round | median round |")
    print("| --- | --- | --- | --- |")
    sizes = [int(size) for size in options.record_sizes.split(",")]
    for size in sizes:
        result = run(size, options.requests, options.rounds, -1 if options.acks == "all" else 1)
        print(f"| {size} | {max(1, BATCH_BYTES // (size + 10))} | {result['best_us']:.1f} | {result['median_us']:.1f} |",
              flush=True)
    if options.profile:
        for size in sizes:
            profile(["--record-sizes", str(size), "--requests", str(options.requests), "--acks", options.acks],
                    options.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
