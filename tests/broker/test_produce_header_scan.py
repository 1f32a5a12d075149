"""Produce's look for transactional batches (broker/handlers/produce.py, Kafka's
RequestUtils.hasTransactionalRecords), which reads the length, magic and attributes of each
header in one struct read, against the same walk done byte by byte: property-tested over record
sets of several batches, transactional or not, followed by any bytes (a torn or hostile tail)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from odradek.broker.handlers.produce import _has_transactional_batch
from odradek.protocol.messages.produce import PartitionProduceData, ProduceRequest, TopicProduceData
from odradek.protocol.records.batch import BATCH_HEADER_SIZE, Record, build_batch
from odradek.protocol.records.header import ATTRIBUTES_OFFSET, LOG_OVERHEAD, MAGIC_OFFSET, TRANSACTIONAL_MASK


def _reference(records: bytes) -> bool:
    position = 0
    while position + BATCH_HEADER_SIZE <= len(records):
        if records[position + MAGIC_OFFSET] == 2 and records[position + ATTRIBUTES_OFFSET + 1] & TRANSACTIONAL_MASK:
            return True
        batch_length = int.from_bytes(records[position + 8:position + LOG_OVERHEAD], "big", signed=True)
        if batch_length <= 0:
            return False
        position += LOG_OVERHEAD + batch_length
    return False


batches = st.lists(st.booleans(), max_size=4).map(lambda flags: b"".join(
    build_batch([Record(offset_delta=0, timestamp_delta=0, key=None, value=b"v")], producer_id=7, producer_epoch=0,
                base_sequence=0, transactional=flag) for flag in flags))


@given(batches, st.binary(max_size=200))
def test_the_header_scan_finds_what_the_header_reader_finds(records, tail):
    payload = records + tail
    request = ProduceRequest(acks=1, timeout_ms=1, topic_data=[TopicProduceData(
        name="t", partition_data=[PartitionProduceData(index=0, records=payload)])])
    assert _has_transactional_batch(request) == _reference(payload)
