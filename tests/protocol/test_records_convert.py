"""Up-conversion (legacy -> v2 on append) and down-conversion (v2 -> magic 0/1 for old fetches),
checked through kafka-python's readers and builders."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch as KafkaBatch
from kafka.record.legacy_records import LegacyRecordBatchBuilder as KafkaLegacyBuilder
from kafka.record.memory_records import MemoryRecords as KafkaMemoryRecords

from odradek.protocol.errors import CorruptRecord, ProtocolError, UnsupportedCompression
from odradek.protocol.records.batch import (
    LOG_APPEND_TIME,
    Record,
    build_batch,
    build_end_txn_marker_batch,
    decode_batch,
)
from odradek.protocol.records.compression import GZIP, LZ4, NONE, SNAPPY, ZSTD
from odradek.protocol.records.convert import down_convert, iter_entry_spans, up_convert
from odradek.protocol.records.legacy import LegacyRecord, build_message_set, decode_message_set

LIMIT = 16 * 1024 * 1024
TS = 1_650_000_000_000


def legacy_items(count=6):
    return [(TS + 10 * i - (5 if i == 2 else 0), None if i == 0 else b"k%d" % i, b"v" * i) for i in range(count)]


def kafka_legacy(magic, codec, items):
    builder = KafkaLegacyBuilder(magic, codec, 1 << 30)
    for i, (ts, key, value) in enumerate(items):
        builder.append(i, ts if magic else None, key, value)
    return bytes(builder.build())


def read_legacy(data):
    records = KafkaMemoryRecords(data)
    out = []
    while records.has_next():
        batch = records.next_batch()
        assert batch.magic in (0, 1)
        out += [(r.offset, r.timestamp, r.key, r.value) for r in batch]
    return out


# --- up-conversion --------------------------------------------------------------------------------


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", [NONE, GZIP, SNAPPY, LZ4])
def test_up_convert_client_message_set(magic, codec):
    items = legacy_items()
    data = up_convert(kafka_legacy(magic, codec, items), base_offset=300, max_decompressed_size=LIMIT, partition_leader_epoch=4)
    batch = decode_batch(data, max_decompressed_size=LIMIT)
    assert batch.compression == codec  # compression.type=producer keeps the codec
    assert (batch.base_offset, batch.last_offset_delta, batch.producer_id, batch.partition_leader_epoch) == (300, 5, -1, 4)
    expected_timestamps = [ts if magic else -1 for ts, _, _ in items]
    assert [batch.timestamp_of(r) for r in batch.records] == expected_timestamps
    assert batch.max_timestamp == max(expected_timestamps)
    assert [(batch.offset_of(r), r.key, r.value, r.headers) for r in batch.records] == [
        (300 + i, key, value, []) for i, (_, key, value) in enumerate(items)
    ]
    theirs = KafkaBatch(data)
    assert theirs.validate_crc()
    assert [(r.offset, r.key) for r in theirs] == [(300 + i, key) for i, (_, key, _) in enumerate(items)]


def test_up_convert_several_entries_into_one_batch_with_target_codec_and_log_append_time():
    first = build_message_set([LegacyRecord(0, b"a", b"1", TS)], magic=1, compression=GZIP)
    second = build_message_set([LegacyRecord(0, b"b", b"2", TS + 1), LegacyRecord(1, b"c", b"3", TS + 2)], magic=1)
    data = up_convert(first + second, base_offset=0, max_decompressed_size=LIMIT, compression=ZSTD,
                      timestamp_type=LOG_APPEND_TIME, log_append_time=TS + 999)
    batch = decode_batch(data, max_decompressed_size=LIMIT)
    assert batch.compression == ZSTD and batch.timestamp_type == LOG_APPEND_TIME
    assert [(batch.offset_of(r), r.key, batch.timestamp_of(r)) for r in batch.records] == [
        (0, b"a", TS + 999), (1, b"b", TS + 999), (2, b"c", TS + 999)
    ]


def test_up_convert_bad_input():
    with pytest.raises(CorruptRecord):
        up_convert(b"", base_offset=0, max_decompressed_size=LIMIT)
    with pytest.raises(CorruptRecord):
        up_convert(build_batch([Record(0, 0, None, b"v")]), base_offset=0, max_decompressed_size=LIMIT)
    data = bytearray(build_message_set([LegacyRecord(0, None, b"v", TS)], magic=1))
    data[-1] ^= 1
    with pytest.raises(CorruptRecord, match="CRC"):
        up_convert(bytes(data), base_offset=0, max_decompressed_size=LIMIT)


# --- down-conversion --------------------------------------------------------------------------------


def v2_records(count=5):
    return [Record(i, i * 3, b"key%d" % i, b"value%d" % i, [("dropped", b"h")]) for i in range(count)]


@pytest.mark.parametrize("to_magic", [0, 1])
@pytest.mark.parametrize("codec", [NONE, GZIP, SNAPPY, LZ4])
def test_down_convert_is_read_by_kafka_python(to_magic, codec):
    data = build_batch(v2_records(), base_offset=1000, base_timestamp=TS, compression=codec) + build_batch(
        v2_records(2), base_offset=1005, base_timestamp=TS, compression=codec
    )
    converted = down_convert(data, to_magic=to_magic, max_decompressed_size=LIMIT)
    expected = [(1000 + i, TS + i * 3 if to_magic else None, b"key%d" % i, b"value%d" % i) for i in range(5)]
    expected += [(1005 + i, TS + i * 3 if to_magic else None, b"key%d" % i, b"value%d" % i) for i in range(2)]
    assert read_legacy(converted) == expected
    ours = decode_message_set(converted, max_decompressed_size=LIMIT)
    assert [(r.offset, r.timestamp, r.key, r.value) for r in ours] == expected
    assert {r.magic for r in ours} == {to_magic}
    # A compressed batch becomes one wrapper per batch with the same codec.
    spans = list(iter_entry_spans(converted))
    assert len(spans) == (2 if codec != NONE else 7)


def test_down_convert_skips_below_first_offset_and_control_batches():
    data = (
        build_batch(v2_records(), base_offset=10, base_timestamp=TS, compression=GZIP)
        + build_end_txn_marker_batch(True, producer_id=1, producer_epoch=0, coordinator_epoch=0, base_offset=15)
        + build_batch(v2_records(1), base_offset=16, base_timestamp=TS)
    )
    # The first offset trims uncompressed batches only; a compressed one stays whole (Kafka).
    converted = down_convert(data, to_magic=1, max_decompressed_size=LIMIT, first_offset=12)
    assert [r[0] for r in read_legacy(converted)] == [10, 11, 12, 13, 14, 16]
    uncompressed = build_batch(v2_records(), base_offset=10, base_timestamp=TS) + build_batch(v2_records(1), base_offset=16)
    converted = down_convert(uncompressed, to_magic=0, max_decompressed_size=LIMIT, first_offset=12)
    assert [r[0] for r in read_legacy(converted)] == [12, 13, 14, 16]


def test_down_convert_log_append_time_batch_stamps_messages():
    data = build_batch(v2_records(3), base_timestamp=TS, max_timestamp=TS + 777, timestamp_type=LOG_APPEND_TIME, compression=SNAPPY)
    records = decode_message_set(down_convert(data, to_magic=1, max_decompressed_size=LIMIT), max_decompressed_size=LIMIT)
    assert {(r.timestamp, r.timestamp_type) for r in records} == {(TS + 777, LOG_APPEND_TIME)}


def test_down_convert_zstd_is_unsupported():
    with pytest.raises(UnsupportedCompression) as info:
        down_convert(build_batch(v2_records(), compression=ZSTD), to_magic=1, max_decompressed_size=LIMIT)
    assert info.value.error_code == 76


def test_down_convert_mixed_magics_and_partial_tail():
    v0 = build_message_set([LegacyRecord(0, None, b"zero")], magic=0)
    v1 = build_message_set([LegacyRecord(1, None, b"one", TS)], magic=1)
    v2 = build_batch([Record(0, 0, None, b"two")], base_offset=2, base_timestamp=TS)
    partial = build_batch([Record(0, 0, None, b"three")], base_offset=3)[:-4]
    to_v1 = down_convert(v0 + v1 + v2 + partial, to_magic=1, max_decompressed_size=LIMIT)
    assert to_v1.startswith(v0 + v1)  # older entries are copied unchanged
    assert [(r.offset, r.value, r.magic) for r in decode_message_set(to_v1, max_decompressed_size=LIMIT)] == [
        (0, b"zero", 0), (1, b"one", 1), (2, b"two", 1)
    ]
    to_v0 = down_convert(v0 + v1 + v2, to_magic=0, max_decompressed_size=LIMIT)
    assert [(r.offset, r.value, r.magic) for r in decode_message_set(to_v0, max_decompressed_size=LIMIT)] == [
        (0, b"zero", 0), (1, b"one", 0), (2, b"two", 0)
    ]


@given(
    st.lists(st.tuples(st.integers(0, 2**40), st.one_of(st.none(), st.binary(max_size=20)), st.binary(max_size=40)), min_size=1, max_size=6),
    st.sampled_from([0, 1]),
    st.sampled_from([NONE, GZIP, SNAPPY, LZ4]),
)
def test_up_then_down_round_trip(items, magic, codec):
    legacy = build_message_set([LegacyRecord(i, k, v, ts) for i, (ts, k, v) in enumerate(items)], magic=magic, compression=codec)
    batch = up_convert(legacy, base_offset=50, max_decompressed_size=LIMIT)
    back = decode_message_set(down_convert(batch, to_magic=magic, max_decompressed_size=LIMIT), max_decompressed_size=LIMIT)
    assert [(r.offset, r.timestamp, r.key, r.value) for r in back] == [
        (50 + i, ts if magic else None, k, v) for i, (ts, k, v) in enumerate(items)
    ]


@given(st.binary(max_size=300), st.sampled_from([0, 1]))
def test_fuzz_only_protocol_errors(data, to_magic):
    for convert in (
        lambda: down_convert(data, to_magic=to_magic, max_decompressed_size=4096),
        lambda: up_convert(data, base_offset=0, max_decompressed_size=4096),
    ):
        try:
            convert()
        except ProtocolError:
            pass
