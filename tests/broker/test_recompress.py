"""A topic's compression.type: batches are recompressed to it (keeping producer ids, sequences,
timestamps), or kept as sent with ``producer``."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from odradek.broker.recompress import recompress, target_codec
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.records import compression
from odradek.protocol.records.batch import Record, build_batch, iter_batches

from .test_server import create_topic, fetch_request, produce

CODECS = ["uncompressed", "gzip", "snappy", "lz4", "zstd"]


def sample_batch(codec=compression.NONE, **extra):
    records = [Record(i, i * 10, b"k%d" % i, b"v%d" % i * 50, [("h", b"%d" % i)]) for i in range(5)]
    return build_batch(records, compression=codec, base_timestamp=1_700_000_000_000, **extra)


@pytest.mark.parametrize("target", CODECS)
@pytest.mark.parametrize("source", [compression.NONE, compression.GZIP, compression.ZSTD])
def test_recompress_keeps_everything_but_the_codec(source, target):
    original = sample_batch(source, producer_id=7, producer_epoch=2, base_sequence=40)
    rebuilt = recompress(original, target_codec(target), None)
    (before,), (after,) = list(iter_batches(original)), list(iter_batches(bytes(rebuilt)))
    assert after.compression == target_codec(target)
    assert (after.producer_id, after.producer_epoch, after.base_sequence) == (7, 2, 40)
    assert (after.base_timestamp, after.max_timestamp, after.last_offset_delta) == (
        before.base_timestamp, before.max_timestamp, before.last_offset_delta)
    assert after.records == before.records
    if source == target_codec(target):
        assert rebuilt is original  # nothing to do: no copy


@given(st.binary(max_size=200))
def test_garbage_raises_the_protocol_error_or_passes_through(data):
    try:
        recompress(data, compression.GZIP, None)
    except ProtocolError:
        pass


@pytest.mark.parametrize("codec", CODECS)
def test_topic_compression_type_over_the_wire(raw_client, codec):
    client = raw_client()
    name = f"recompressed-{codec}"
    create_topic(client, name, configs=[CreateTopicsRequest.CreatableTopic.CreatableTopicConfig(
        name="compression.type", value=codec)])
    assert produce(client, name, 0, sample_batch(compression.SNAPPY if codec != "snappy" else compression.NONE)).error_code == 0
    data = client.request(fetch_request(name, 0, 0), 12).responses[0].partitions[0]
    (batch,) = list(iter_batches(bytes(data.records)))
    assert batch.compression == target_codec(codec)
    assert [r.value for r in batch.records] == [b"v%d" % i * 50 for i in range(5)]
