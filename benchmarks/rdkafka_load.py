#!/usr/bin/env python3
"""librdkafka (confluent-kafka) as a load generator: one producer or consumer per process.

Not a benchmark itself: ``broker_throughput.py`` starts these as subprocesses, each in its own
process so that librdkafka's threads and the Python loop that feeds them have a GIL of their
own, and reads what they print on stdout, one JSON object per line::

    python3 benchmarks/rdkafka_load.py produce --bootstrap 127.0.0.1:9092 --topic t --record-size 1024
    python3 benchmarks/rdkafka_load.py produce ... --records 1000000             # then exit
    python3 benchmarks/rdkafka_load.py produce ... --rate 1000 --records 8000   # stamped records
    python3 benchmarks/rdkafka_load.py consume --bootstrap ... --topic t --group g
    python3 benchmarks/rdkafka_load.py stamped-consume --bootstrap ... --topic t --records 8000 --skip 2000

* ``produce`` without ``--rate``: as fast as librdkafka takes records, until killed (or, with
  ``--records N``, until N records are acknowledged: the last line has ``"done": N``); every
  ``--interval`` seconds a line ``{"records": N, "bytes": B, "seconds": S, "cpu": C}``: records
  acknowledged in the last S seconds, and the CPU seconds the process (all its threads) used
  since the previous line. Records are handed over 1,000 at a time (``produce_batch``);
  acknowledged is counted as enqueued minus librdkafka's queue (messages not yet sent or not yet
  answered), and a failed delivery ends the run: delivery reports are asked for failures only, so
  that no Python callback runs per record.
* ``produce --rate R --records N``: N records at R records/s (sent in 1 ms slices), each value
  starting with its send time (``time.monotonic_ns``, system-wide on Linux, so another process on
  this machine can compare) and its sequence number; at the end one line with the send-to-ack
  latency librdkafka measured per record (``msg.latency()``), after the first ``--skip`` records.
* ``stamped-consume``: reads partition 0 of the topic from its start and prints, once it has
  ``--records`` records, the percentiles of receive time minus send time over the records after
  the first ``--skip``: produce-to-consume latency.
* ``consume``: joins ``--group`` and subscribes; every assignment (or revocation) is printed
  as ``{"assigned": [...]}``, and the assigned partitions stay paused until a line ``go`` arrives
  on stdin, so that the caller starts the reading once the whole group is formed. Then it reads
  to the end of each assigned partition (partition EOF) and prints ``{"records", "bytes",
  "started_ns", "last_ns", "cpu"}`` (from ``go`` to the last records read); it stays in the group (a member leaving would make the others
  rebalance and read again) until stdin closes or the caller kills it.

Configuration is librdkafka's defaults (linger 5 ms, batches up to 1 MB / 10,000 records, acks
all) plus ``--config key=value`` options. The value of every record is one random string of
A-Z, generated once, as Kafka's ProducerPerformance does (so compression finds repeats).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

BATCH_RECORDS = 1000  # per produce_batch call
BATCH_BYTES = 1 << 20
CONSUME_WAIT_S = 0.005
STAMP_SIZE = 16  # send time (ns) and sequence number, 8 bytes each


def emit(document: dict) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


def fail(message: str) -> None:
    emit({"error": message})
    sys.stdout.flush()
    os._exit(1)


def payload(size: int) -> bytes:
    rng = random.Random(0)
    return bytes(rng.randrange(65, 91) for _ in range(size))


def client_config(options, **more) -> dict:
    config = {"bootstrap.servers": options.bootstrap, "log_level": 3, **more}
    for item in options.config:
        key, _, value = item.partition("=")
        config[key] = value
    return config


def percentiles(values: list[float]) -> dict:
    values = sorted(values)
    if not values:
        return {}

    def at(fraction: float) -> float:
        return values[min(len(values) - 1, int(fraction * len(values)))]

    return {"p50_ms": at(0.5), "p99_ms": at(0.99), "p999_ms": at(0.999), "max_ms": values[-1],
            "count": len(values)}


def produce_unbounded(options) -> None:
    failures: list[str] = []

    def on_error(error, _message) -> None:
        if error is not None:
            failures.append(str(error))

    producer = Producer(client_config(options, **{"delivery.report.only.error": True, "on_delivery": on_error}))
    value = payload(options.record_size)
    # produce_batch: about 40 % less Python per record than produce() in a loop (0.7 against
    # 1.2 us of CPU per 100-byte record here), which matters at a million records a second.
    batch = [{"value": value} for _ in range(max(1, min(BATCH_RECORDS, BATCH_BYTES // options.record_size)))]
    enqueued = acked_before = 0
    pending = batch
    window_start, cpu_start = time.monotonic(), time.process_time()
    while not options.records or enqueued < options.records:
        if options.records and options.records - enqueued < len(pending):
            pending = pending[:options.records - enqueued]
        taken = producer.produce_batch(options.topic, pending)
        enqueued += taken
        if taken < len(pending):
            # librdkafka's queue is full: the records it refused (marked) go again once acks
            # have made room for them. Waiting here, rather than offering them again every
            # poll, leaves the cores to the broker: eight producers retrying at once took
            # most of this 2-core machine and starved the broker they waited for.
            pending = [message for message in pending if message.pop("_error", None) is not None]
            room_at = len(producer) - len(pending)
            while len(producer) > room_at:
                producer.poll(0.005)  # no delivery events (only errors are reported): a sleep
        else:
            pending = batch
            producer.poll(0)
        if failures:
            fail(f"delivery failed: {failures[0]}")
        now = time.monotonic()
        if now - window_start >= options.interval:
            acked = enqueued - len(producer)
            cpu = time.process_time()
            emit({"records": acked - acked_before, "bytes": (acked - acked_before) * options.record_size,
                  "seconds": now - window_start, "cpu": cpu - cpu_start})
            acked_before, window_start, cpu_start = acked, now, cpu
    if producer.flush(120) != 0 or failures:
        fail(f"not acknowledged: {len(producer)} left, {failures[:1]}")
    emit({"records": enqueued - acked_before, "bytes": (enqueued - acked_before) * options.record_size,
          "seconds": time.monotonic() - window_start, "cpu": time.process_time() - cpu_start, "done": enqueued})


def produce_stamped(options) -> None:
    """``--records`` records at ``--rate`` records/s; send-to-ack latency of each."""
    latencies: list[float] = []
    failures: list[str] = []

    def on_delivery(error, message) -> None:
        if error is not None:
            failures.append(str(error))
        elif int.from_bytes(message.value()[8:16], "big") >= options.skip:
            latencies.append(message.latency() * 1000)

    producer = Producer(client_config(options, on_delivery=on_delivery))
    padding = payload(max(0, options.record_size - STAMP_SIZE))
    started = time.monotonic()
    sent = 0
    while sent < options.records:
        due = min(options.records, int((time.monotonic() - started) * options.rate) + 1)
        while sent < due:
            stamp = time.monotonic_ns().to_bytes(8, "big") + sent.to_bytes(8, "big")
            try:
                producer.produce(options.topic, stamp + padding)
            except BufferError:
                producer.poll(0.001)
                continue
            sent += 1
        producer.poll(0)
        if failures:
            fail(f"delivery failed: {failures[0]}")
        time.sleep(0.001)
    elapsed = time.monotonic() - started
    if producer.flush(60) != 0 or failures:
        fail(f"not acknowledged: {len(producer)} left, {failures[:1]}")
    emit({"records_per_s": options.records / elapsed, "ack": percentiles(latencies)})


def stamped_consume(options) -> None:
    consumer = Consumer(client_config(options, **{"group.id": f"stamped-{os.getpid()}", "enable.auto.commit": False}))
    consumer.assign([TopicPartition(options.topic, 0, OFFSET_BEGINNING)])
    emit({"ready": True})
    latencies: list[float] = []
    received = 0
    while received < options.records:
        message = consumer.poll(0.1)  # not consume(n, timeout): that waits for n records
        if message is None:
            continue
        if message.error():
            fail(f"consume: {message.error()}")
        now = time.monotonic_ns()
        value = message.value()
        received += 1
        if int.from_bytes(value[8:16], "big") >= options.skip:
            latencies.append((now - int.from_bytes(value[:8], "big")) / 1e6)
    emit({"e2e": percentiles(latencies)})
    os._exit(0)


def consume(options) -> None:
    go = False

    def on_assign(consumer, partitions) -> None:
        consumer.assign(partitions)
        if not go:
            consumer.pause(partitions)
        emit({"assigned": sorted(p.partition for p in partitions)})

    def on_revoke(consumer, _partitions) -> None:
        emit({"assigned": []})

    consumer = Consumer(client_config(options, **{
        "group.id": options.group, "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "enable.partition.eof": True}))
    consumer.subscribe([options.topic], on_assign=on_assign, on_revoke=on_revoke)
    while not go:
        consumer.poll(0.05)
        if select.select([sys.stdin], [], [], 0)[0]:
            line = sys.stdin.readline()
            if not line:
                os._exit(0)
            go = line.strip() == "go"
    assignment = consumer.assignment()
    consumer.resume(assignment)
    pending = {p.partition for p in assignment}
    records = size = 0
    started, last = time.monotonic_ns(), None
    cpu_start = time.process_time()
    while pending:
        # consume(n, timeout) returns after n records or the timeout: a short timeout keeps the
        # time of the last records (taken after the call) within a few ms of their arrival.
        for message in consumer.consume(10000, CONSUME_WAIT_S):
            error = message.error()
            if error is None:
                records += 1
                size += len(message)
                continue
            if error.code() == KafkaError._PARTITION_EOF:
                pending.discard(message.partition())
                continue
            fail(f"consume: {error}")
        if records:
            last = time.monotonic_ns()  # after the call that returned the latest records
    emit({"records": records, "bytes": size, "started_ns": started, "last_ns": last,
          "cpu": time.process_time() - cpu_start})
    sys.stdin.read()  # stay in the group until the caller is done with every member
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["produce", "consume", "stamped-consume"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--record-size", type=int, default=1024)
    parser.add_argument("--rate", type=int, help="records/s (produce: stamped records at this rate)")
    parser.add_argument("--records", type=int, default=0, help="records to send or to wait for")
    parser.add_argument("--skip", type=int, default=0, help="first records left out of the latencies")
    parser.add_argument("--group", default="rdkafka-load")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between produce reports")
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    options = parser.parse_args(argv)
    if options.mode == "produce":
        if options.rate:
            produce_stamped(options)
        else:
            produce_unbounded(options)
    elif options.mode == "stamped-consume":
        stamped_consume(options)
    else:
        consume(options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
