"""read_committed against ``odradek serve``: transactional batches, COMMIT/ABORT markers and an
open transaction written into a partition through the storage API (there is no transaction
coordinator yet), then read by librdkafka consumers. A read_committed consumer sees the
committed and plain records up to the last stable offset (the open transaction's first
offset) and never an aborted one, using the aborted transactions the Fetch response lists; a
read_uncommitted consumer sees every data record up to the high watermark. ListOffsets
(latest) answers the LSO to the first and the high watermark to the second."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "storage"))

from odradek.storage.log_directory import LogDirectory  # noqa: E402

from storage_batches import make_batch  # noqa: E402
from test_storage_transactions import Producer, end  # noqa: E402

TOPIC = "txn-read"


def _write_transactions(data_dir: Path) -> tuple[int, int]:
    """Append to the partition the broker created: returns (LSO, high watermark)."""
    directory = LogDirectory.open(str(data_dir), node_id=1)
    log = directory.get_log(TOPIC, 0)
    a, b, c = Producer(900_001), Producer(900_002), Producer(900_003)
    log.append(a.batch([b"aborted-1", b"aborted-2"]))
    log.append(b.batch([b"committed-1"]))
    log.append(a.batch([b"aborted-3"]))
    end(log, a, commit=False)
    log.append(b.batch([b"committed-2"]))
    end(log, b, commit=True)
    log.append(make_batch([b"plain-1"]))
    log.append(a.batch([b"aborted-4"]))  # A's second transaction, aborted too, overlapping C's start
    log.append(c.batch([b"open-1"]))     # C's transaction stays open: the LSO stops here
    end(log, a, commit=False)
    log.append(make_batch([b"plain-2"]))
    log.update_high_watermark(log.log_end_offset)
    offsets = log.last_stable_offset, log.high_watermark
    assert len(log.aborted_transactions(0, log.log_end_offset)) == 2
    directory.close()
    return offsets


def _consume(bootstrap: str, isolation: str, expected_count: int) -> tuple[list[bytes], int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"unused-{isolation}",
                         "enable.auto.commit": False, "isolation.level": isolation,
                         "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        values = []
        deadline = time.monotonic() + 20
        quiet_until = None
        # Read until the expected count arrives, then a little longer: nothing more may come.
        while time.monotonic() < deadline and (quiet_until is None or time.monotonic() < quiet_until):
            message = consumer.poll(0.2)
            if message is None:
                continue
            assert message.error() is None, message.error()
            values.append(message.value())
            if len(values) == expected_count:
                quiet_until = time.monotonic() + 1.5
        _, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)
        return values, high
    finally:
        consumer.close()


def test_read_committed_skips_aborted_records_and_stops_at_the_lso(broker_process, tmp_path):
    from kafka import KafkaProducer

    data_dir = tmp_path / "txn-data"
    first = broker_process(data_dir)
    producer = KafkaProducer(bootstrap_servers=first.bootstrap, acks="all")
    producer.send(TOPIC, value=b"plain-0", partition=0).get(timeout=10)
    producer.close()
    assert first.stop() == 0
    lso, high_watermark = _write_transactions(data_dir)
    assert lso < high_watermark

    broker = broker_process(data_dir)
    committed, committed_latest = _consume(broker.bootstrap, "read_committed", 4)
    assert committed == [b"plain-0", b"committed-1", b"committed-2", b"plain-1"]
    assert committed_latest == lso
    uncommitted, latest = _consume(broker.bootstrap, "read_uncommitted", 10)
    assert uncommitted == [b"plain-0", b"aborted-1", b"aborted-2", b"committed-1", b"aborted-3", b"committed-2",
                           b"plain-1", b"aborted-4", b"open-1", b"plain-2"]
    assert latest == high_watermark
