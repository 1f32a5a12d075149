"""Record batches and message sets written by librdkafka (captured by
compat/capture_librdkafka_batches.py into tests/fixtures/librdkafka) decode exactly."""

import base64
import json
from pathlib import Path

import pytest

from odradek.protocol.records.batch import decode_batch, iter_batch_headers, iter_batches, validate_batch_for_append
from odradek.protocol.records.compression import CODEC_IDS, xxhash32
from odradek.protocol.records.convert import down_convert, up_convert
from odradek.protocol.records.legacy import decode_message_set, iter_legacy_entries

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "librdkafka"
LIMIT = 16 * 1024 * 1024
NAMES = sorted(path.stem for path in FIXTURES.glob("*.json"))
V2_NAMES = [n for n in NAMES if not n.startswith(("v0-", "v1-"))]
LEGACY_NAMES = [n for n in NAMES if n.startswith(("v0-", "v1-"))]


def load(name):
    sidecar = json.loads((FIXTURES / f"{name}.json").read_text())
    data = (FIXTURES / f"{name}.bin").read_bytes()

    def raw(text):
        return None if text is None else base64.b64decode(text)

    expected = [
        (raw(r["key"]), raw(r["value"]), [(k, raw(v)) for k, v in r["headers"]], r["timestamp"]) for r in sidecar["records"]
    ]
    return sidecar, data, expected


def test_every_codec_and_magic_was_captured():
    codecs = {"none", "gzip", "snappy", "lz4", "zstd"}
    assert set(NAMES) == codecs | {f"idempotent-{codec}" for codec in codecs} | {
        f"v{magic}-{codec}" for magic in (0, 1) for codec in ("none", "gzip", "snappy", "lz4")
    }


@pytest.mark.parametrize("name", V2_NAMES)
def test_librdkafka_v2_batches_decode_exactly(name):
    sidecar, data, expected = load(name)
    batches = list(iter_batches(data, max_decompressed_size=LIMIT, allow_incomplete=False))
    assert {b.compression for b in batches} == {CODEC_IDS[sidecar["codec"]]}
    assert not any(b.is_transactional or b.is_control for b in batches)
    if sidecar["producer"]:
        producer_id, producer_epoch = sidecar["producer"]
        assert {(b.producer_id, b.producer_epoch) for b in batches} == {(producer_id, producer_epoch)}
        assert batches[0].base_sequence == 0
        assert [b.base_sequence for b in batches] == [b.base_offset for b in batches]
    else:
        assert {(b.producer_id, b.producer_epoch, b.base_sequence) for b in batches} == {(-1, -1, -1)}
    decoded = [
        (r.key, r.value, r.headers, batch.timestamp_of(r)) for batch in batches for r in batch.records
    ]
    assert decoded == expected
    offsets = [batch.offset_of(r) for batch in batches for r in batch.records]
    assert offsets == list(range(len(expected)))
    for position, _ in iter_batch_headers(data, allow_incomplete=False):
        validate_batch_for_append(data, position, max_decompressed_size=LIMIT)


@pytest.mark.parametrize("name", LEGACY_NAMES)
def test_librdkafka_legacy_message_sets_decode_exactly(name):
    sidecar, data, expected = load(name)
    magic = sidecar["magic"]
    entries = list(iter_legacy_entries(data))
    assert {e.record.magic for e in entries} == {magic}
    assert {e.record.compression for e in entries} == {CODEC_IDS[sidecar["codec"]]}
    records = decode_message_set(data, max_decompressed_size=LIMIT)
    assert [(r.key, r.value, [], r.timestamp) for r in records] == expected
    first = records[0].offset
    assert [r.offset - first for r in records] == list(range(len(expected)))


def test_librdkafka_writes_magic0_lz4_with_the_pre_kip57_checksum():
    _, data, _ = load("v0-lz4")
    frame = next(iter_legacy_entries(data)).record.value
    descriptor_end = 6  # librdkafka writes no content size
    assert frame[descriptor_end] == (xxhash32(frame[0:descriptor_end]) >> 8) & 0xFF
    assert frame[descriptor_end] != (xxhash32(frame[4:descriptor_end]) >> 8) & 0xFF
    _, v1_data, _ = load("v1-lz4")
    v1_frame = next(iter_legacy_entries(v1_data)).record.value
    assert v1_frame[6] == (xxhash32(v1_frame[4:6]) >> 8) & 0xFF


@pytest.mark.parametrize("name", LEGACY_NAMES)
def test_librdkafka_legacy_sets_up_convert(name):
    sidecar, data, expected = load(name)
    batch = decode_batch(up_convert(data, base_offset=10, max_decompressed_size=LIMIT), max_decompressed_size=LIMIT)
    assert batch.compression == CODEC_IDS[sidecar["codec"]]
    assert [(r.key, r.value, batch.offset_of(r)) for r in batch.records] == [
        (key, value, 10 + i) for i, (key, value, _, _) in enumerate(expected)
    ]


@pytest.mark.parametrize("name", ["none", "gzip", "snappy", "lz4"])
@pytest.mark.parametrize("to_magic", [0, 1])
def test_librdkafka_batches_down_convert(name, to_magic):
    _, data, expected = load(name)
    records = decode_message_set(down_convert(data, to_magic=to_magic, max_decompressed_size=LIMIT), max_decompressed_size=LIMIT)
    assert [(r.key, r.value, r.timestamp) for r in records] == [
        (key, value, timestamp if to_magic else None) for key, value, _, timestamp in expected
    ]
    if name == "lz4" and to_magic == 0:
        frame = next(iter_legacy_entries(down_convert(data, to_magic=0, max_decompressed_size=LIMIT))).record.value
        assert frame[6] == (xxhash32(frame[0:6]) >> 8) & 0xFF  # written the old way, as librdkafka does
