"""Legacy message sets (magic 0/1): agreement with kafka-python's and aiokafka's legacy record
code both ways, for every codec they allow, wrappers and relative offsets, bad input, fuzz."""

import struct
import zlib

import pytest
from aiokafka.record.legacy_records import LegacyRecordBatchBuilder as AiokafkaLegacyBuilder
from aiokafka.record.memory_records import MemoryRecords as AiokafkaMemoryRecords
from hypothesis import given
from hypothesis import strategies as st
from kafka.record.legacy_records import LegacyRecordBatchBuilder as KafkaLegacyBuilder
from kafka.record.memory_records import MemoryRecords as KafkaMemoryRecords

from odradek.protocol.errors import CorruptRecord, DecompressionLimitExceeded, ProtocolError, UnsupportedCompression
from odradek.protocol.records.batch import LOG_APPEND_TIME, IncompleteBatch
from odradek.protocol.records.compression import GZIP, LZ4, NONE, SNAPPY, ZSTD, compress
from odradek.protocol.records.legacy import (
    LegacyRecord,
    build_message_set,
    decode_message_set,
    encode_message,
    iter_legacy_entries,
)

LIMIT = 16 * 1024 * 1024
LEGACY_CODECS = [NONE, GZIP, SNAPPY, LZ4]
TS = 1_600_000_000_000


def rows(count=10):
    return [
        (TS + i * 3, None if i % 4 == 0 else b"key%d" % i, None if i == 3 else b"value-%d" % i * (i + 1))
        for i in range(count)
    ]


def client_message_set(builder_class, magic, codec, items, first_offset=0):
    builder = builder_class(magic, codec, 1 << 30)
    for i, (timestamp, key, value) in enumerate(items):
        builder.append(first_offset + i, timestamp if magic else None, key, value)
    return bytes(builder.build())


def read_with(memory_records_class, data):
    records = memory_records_class(data)
    out = []
    while records.has_next():
        out += [(r.offset, r.timestamp, r.key, r.value) for r in records.next_batch()]
    return out


def client_params():
    for name, builder, memory in (
        ("kafka-python", KafkaLegacyBuilder, KafkaMemoryRecords),
        ("aiokafka", AiokafkaLegacyBuilder, AiokafkaMemoryRecords),
    ):
        for magic in (0, 1):
            for codec in LEGACY_CODECS:
                marks = []
                if name == "aiokafka" and magic == 0 and codec == LZ4:
                    marks = [pytest.mark.skip(reason="aiokafka refuses lz4 with magic 0 (KAFKA-3160)")]
                yield pytest.param(builder, memory, magic, codec, id=f"{name}-v{magic}-codec{codec}", marks=marks)


@pytest.mark.parametrize("builder, memory, magic, codec", list(client_params()))
def test_client_message_sets_decode_exactly(builder, memory, magic, codec):
    items = rows()
    data = bytearray(client_message_set(builder, magic, codec, items))
    if codec != NONE:
        (entry,) = list(iter_legacy_entries(data))
        if magic == 1:
            # The Python producers leave the wrapper offset at 0, so the inner offsets resolve
            # below 0 until the broker sets the wrapper's offset to the last inner one's.
            assert entry.record.offset == 0
            unassigned = decode_message_set(data, max_decompressed_size=LIMIT)
            assert [r.offset for r in unassigned] == [i - len(items) + 1 for i in range(len(items))]
            struct.pack_into(">q", data, 0, len(items) - 1)  # outside the CRC, as a broker patches it
    records = decode_message_set(data, max_decompressed_size=LIMIT)
    assert [(r.offset, r.timestamp, r.key, r.value) for r in records] == [
        (i, ts if magic else None, key, value) for i, (ts, key, value) in enumerate(items)
    ]
    assert {r.magic for r in records} == {magic}


@pytest.mark.parametrize("builder, memory, magic, codec", list(client_params()))
def test_our_message_sets_are_read_by_clients(builder, memory, magic, codec):
    items = rows()
    ours = [LegacyRecord(1000 + i, key, value, ts) for i, (ts, key, value) in enumerate(items)]
    data = build_message_set(ours, magic=magic, compression=codec)
    assert read_with(memory, data) == [
        (1000 + i, ts if magic else None, key, value) for i, (ts, key, value) in enumerate(items)
    ]
    decoded = decode_message_set(data, max_decompressed_size=LIMIT)
    assert [(r.offset, r.timestamp, r.key, r.value, r.magic, r.attributes) for r in decoded] == [
        (r.offset, r.timestamp if magic else None, r.key, r.value, magic, 0) for r in ours
    ]


@pytest.mark.parametrize("magic", [0, 1])
def test_uncompressed_bytes_equal_kafka_pythons(magic):
    items = rows()
    ours = build_message_set([LegacyRecord(i, k, v, ts) for i, (ts, k, v) in enumerate(items)], magic=magic)
    assert ours == client_message_set(KafkaLegacyBuilder, magic, NONE, items)


def test_magic1_inner_offsets_are_relative_to_the_wrapper():
    # As a broker stores it: wrapper offset 57 is the absolute offset of the last inner message.
    data = bytearray(build_message_set([LegacyRecord(i, None, b"v%d" % i, TS) for i in range(3)], magic=1, compression=GZIP))
    struct.pack_into(">q", data, 0, 57)  # the offset is outside the CRC
    assert [r.offset for r in decode_message_set(data, max_decompressed_size=LIMIT)] == [55, 56, 57]
    assert [r[0] for r in read_with(KafkaMemoryRecords, bytes(data))] == [55, 56, 57]


def test_magic0_inner_offsets_are_absolute():
    data = build_message_set([LegacyRecord(40 + i, None, b"v") for i in range(3)], magic=0, compression=SNAPPY)
    entries = list(iter_legacy_entries(data))
    assert len(entries) == 1 and entries[0].record.offset == 42
    assert [r.offset for r in decode_message_set(data, max_decompressed_size=LIMIT)] == [40, 41, 42]


def test_log_append_time_wrapper_stamps_inner_messages():
    records = [LegacyRecord(i, None, b"v", TS + i) for i in range(3)]
    data = build_message_set(records, magic=1, compression=GZIP, timestamp_type=LOG_APPEND_TIME, log_append_time=TS + 500)
    decoded = decode_message_set(data, max_decompressed_size=LIMIT)
    assert {(r.timestamp, r.timestamp_type) for r in decoded} == {(TS + 500, LOG_APPEND_TIME)}
    assert {r[1] for r in read_with(KafkaMemoryRecords, data)} == {TS + 500}


def test_create_time_wrapper_carries_max_timestamp():
    records = [LegacyRecord(i, None, b"v", TS + t) for i, t in enumerate((5, 9, 2))]
    (entry,) = list(iter_legacy_entries(build_message_set(records, magic=1, compression=LZ4)))
    assert entry.record.timestamp == TS + 9


def test_lz4_magic0_uses_the_old_checksum_both_ways():
    items = rows(4)
    theirs = client_message_set(KafkaLegacyBuilder, 0, LZ4, items)
    assert [r.value for r in decode_message_set(theirs, max_decompressed_size=LIMIT)] == [v for _, _, v in items]
    ours = build_message_set([LegacyRecord(i, k, v) for i, (_, k, v) in enumerate(items)], magic=0, compression=LZ4)
    (our_wrapper,) = list(iter_legacy_entries(ours))
    (their_wrapper,) = list(iter_legacy_entries(theirs))
    # Same lz4 frame parameters, same (wrong) header checksum: the same compressed bytes.
    assert our_wrapper.record.value == their_wrapper.record.value


# --- bad input --------------------------------------------------------------------------------


def one_message(magic=1, attributes=0, key=b"k", value=b"v"):
    out = bytearray()
    encode_message(out, 0, magic, attributes, TS if magic else None, key, value)
    return out


def recrc(data):
    struct.pack_into(">I", data, 12, zlib.crc32(bytes(data[16:])))
    return data


def test_crc_mismatch():
    data = one_message()
    data[-1] ^= 1
    with pytest.raises(CorruptRecord, match="CRC"):
        decode_message_set(data, max_decompressed_size=LIMIT)


def test_truncated_entries():
    data = bytes(one_message()) * 2
    for cut in (1, 5, 20, 30):
        with pytest.raises(CorruptRecord, match="truncated"):
            decode_message_set(data[:-cut], max_decompressed_size=LIMIT)
        items = list(iter_legacy_entries(data[:-cut], allow_incomplete=True))
        assert isinstance(items[-1], IncompleteBatch) and items[-1].position == len(data) // 2
        assert len(decode_message_set(data[:-cut], max_decompressed_size=LIMIT, allow_incomplete=True)) == 1


@pytest.mark.parametrize("magic_byte", [2, 3, 255])
def test_non_legacy_magic(magic_byte):
    data = one_message()
    data[16] = magic_byte
    with pytest.raises(CorruptRecord, match="magic"):
        decode_message_set(recrc(data), max_decompressed_size=LIMIT)


def test_bad_lengths():
    data = one_message(key=b"kk", value=b"vv")
    key_length_at = 12 + 4 + 2 + 8
    for bad in (-2, 3, 1000, 2**31 - 1):
        broken = bytearray(data)
        struct.pack_into(">i", broken, key_length_at, bad)
        with pytest.raises(CorruptRecord):
            decode_message_set(recrc(broken), max_decompressed_size=LIMIT)
    small = bytearray(data)
    struct.pack_into(">i", small, 8, 10)
    with pytest.raises(CorruptRecord, match="size"):
        decode_message_set(small, max_decompressed_size=LIMIT)


def test_wrapper_errors():
    with pytest.raises(CorruptRecord, match="null value"):
        decode_message_set(one_message(attributes=GZIP, value=None), max_decompressed_size=LIMIT)
    with pytest.raises(CorruptRecord, match="holds no messages"):
        decode_message_set(one_message(attributes=GZIP, value=compress(GZIP, b"")), max_decompressed_size=LIMIT)
    nested = build_message_set([LegacyRecord(0, None, b"v", TS)], magic=1, compression=GZIP)
    with pytest.raises(CorruptRecord, match="nests"):
        decode_message_set(one_message(attributes=GZIP, value=compress(GZIP, nested)), max_decompressed_size=LIMIT)
    other_magic = build_message_set([LegacyRecord(0, None, b"v")], magic=0)
    with pytest.raises(CorruptRecord, match="magic"):
        decode_message_set(one_message(attributes=GZIP, value=compress(GZIP, other_magic)), max_decompressed_size=LIMIT)
    with pytest.raises(CorruptRecord):
        decode_message_set(one_message(attributes=SNAPPY, value=b"not snappy at all"), max_decompressed_size=LIMIT)


def test_zstd_and_unknown_codecs_are_unsupported_in_legacy():
    for attributes in (ZSTD, 5, 7):
        with pytest.raises(UnsupportedCompression):
            decode_message_set(one_message(attributes=attributes), max_decompressed_size=LIMIT)
    with pytest.raises(UnsupportedCompression):
        build_message_set([LegacyRecord(0, None, b"v")], magic=1, compression=ZSTD)


def test_wrapper_bomb():
    inner = build_message_set([LegacyRecord(0, None, bytes(8 * 1024 * 1024))], magic=1)
    data = one_message(attributes=GZIP, value=compress(GZIP, inner))
    assert len(data) < 64 * 1024
    with pytest.raises(DecompressionLimitExceeded):
        decode_message_set(data, max_decompressed_size=1024 * 1024)


# --- properties ---------------------------------------------------------------------------------

legacy_rows = st.lists(
    st.tuples(st.integers(-1, 2**50), st.one_of(st.none(), st.binary(max_size=30)), st.one_of(st.none(), st.binary(max_size=60))),
    max_size=6,
)


@given(legacy_rows, st.sampled_from([0, 1]), st.sampled_from(LEGACY_CODECS), st.integers(0, 2**40))
def test_round_trip(items, magic, codec, first_offset):
    records = [LegacyRecord(first_offset + i, k, v, ts) for i, (ts, k, v) in enumerate(items)]
    decoded = decode_message_set(build_message_set(records, magic=magic, compression=codec), max_decompressed_size=LIMIT)
    assert [(r.offset, r.key, r.value, r.timestamp) for r in decoded] == [
        (r.offset, r.key, r.value, r.timestamp if magic else None) for r in records
    ]


@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data):
    for allow_incomplete in (False, True):
        try:
            decode_message_set(data, max_decompressed_size=4096, allow_incomplete=allow_incomplete)
        except ProtocolError:
            pass


@given(legacy_rows, st.sampled_from([0, 1]), st.sampled_from(LEGACY_CODECS), st.data())
def test_fuzz_mutated_with_valid_crc(items, magic, codec, data):
    records = [LegacyRecord(i, k, v, ts) for i, (ts, k, v) in enumerate(items)]
    message_set = bytearray(build_message_set(records, magic=magic, compression=codec))
    if len(message_set) < 20:
        return
    for _ in range(data.draw(st.integers(1, 3))):
        message_set[data.draw(st.integers(8, len(message_set) - 1))] = data.draw(st.integers(0, 255))
    if codec != NONE:  # one wrapper: fix its CRC so the inner parsing is reached
        size = struct.unpack_from(">i", message_set, 8)[0]
        if 0 <= size <= len(message_set) - 12 and size >= 4:
            struct.pack_into(">I", message_set, 12, zlib.crc32(bytes(message_set[16 : 12 + size])))
    try:
        decode_message_set(bytes(message_set), max_decompressed_size=4096)
    except ProtocolError:
        pass


def test_every_prefix_yields_complete_entries_then_the_partial_one():
    data = build_message_set([LegacyRecord(i, b"k", b"v" * i, TS) for i in range(3)], magic=1)
    boundaries = [entry.position for entry in iter_legacy_entries(data)] + [len(data)]
    for cut in range(len(data) + 1):
        items = list(iter_legacy_entries(data[:cut], allow_incomplete=True))
        complete = [i for i in items if not isinstance(i, IncompleteBatch)]
        assert len(complete) == sum(1 for b in boundaries[1:] if b <= cut)
        assert sum(isinstance(i, IncompleteBatch) for i in items) == (cut not in boundaries)
