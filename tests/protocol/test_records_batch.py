"""Magic-2 record batches: agreement with kafka-python's and aiokafka's record code in both
directions for every codec, control markers, attribute bits, bad input, properties."""

import struct

import crc32c
import pytest
from aiokafka.record.control_record import ABORT_MARKER, COMMIT_MARKER
from aiokafka.record.control_record import ControlRecord as AiokafkaControlRecord
from aiokafka.record.default_records import DefaultRecordBatch as AiokafkaBatch
from aiokafka.record.default_records import DefaultRecordBatchBuilder as AiokafkaBuilder
from aiokafka.record.memory_records import MemoryRecords as AiokafkaMemoryRecords
from hypothesis import given
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch as KafkaBatch
from kafka.record.default_records import DefaultRecordBatchBuilder as KafkaBuilder
from kafka.record.memory_records import MemoryRecords as KafkaMemoryRecords
from kafka.record.memory_records import MemoryRecordsBuilder as KafkaMemoryRecordsBuilder

from odradek.protocol.errors import (
    CorruptRecord,
    DecompressionLimitExceeded,
    ProtocolError,
    UnsupportedCompression,
)
from odradek.protocol.primitives import write_varint
from odradek.protocol.records.batch import (
    CONTROL_ABORT,
    CONTROL_COMMIT,
    LOG_APPEND_TIME,
    IncompleteBatch,
    Record,
    build_batch,
    build_end_txn_marker_batch,
    decode_batch,
    encode_record,
    iter_batch_headers,
    iter_batches,
    parse_control_record,
    assigns_in_place,
    validate_batch_for_append,
    validate_produce_records,
)
from odradek.protocol.records.compression import GZIP, LZ4, NONE, SNAPPY, ZSTD
from odradek.protocol.records.header import read_batch_header

CODECS = [NONE, GZIP, SNAPPY, LZ4, ZSTD]
LIMIT = 16 * 1024 * 1024
BASE_TS = 1_700_000_000_000


def sample_rows(count=12):
    """(timestamp, key, value, headers) rows with nulls, empties, unicode header keys, sizes."""
    rows = []
    for i in range(count):
        key = None if i % 3 == 0 else f"key-{i}".encode()
        value = None if i == 5 else bytes([i % 256]) * (i * 97)
        headers = [] if i % 2 else [("trace", b"t%d" % i), ("ünïcode", None), ("empty", b"")]
        rows.append((BASE_TS + i * 7 - (3 if i == 4 else 0), key, value, headers))
    return rows


def kafka_python_batch(codec, rows, **producer):
    builder = KafkaBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=producer.get("transactional", False),
        producer_id=producer.get("producer_id", -1),
        producer_epoch=producer.get("producer_epoch", -1),
        base_sequence=producer.get("base_sequence", -1),
        batch_size=1 << 30,
    )
    for offset, (timestamp, key, value, headers) in enumerate(rows):
        builder.append(offset, timestamp, key, value, headers)
    return bytes(builder.build())


def aiokafka_batch(codec, rows, **producer):
    builder = AiokafkaBuilder(
        2,
        codec,
        producer.get("transactional", False),
        producer.get("producer_id", -1),
        producer.get("producer_epoch", -1),
        producer.get("base_sequence", -1),
        1 << 30,
    )
    for offset, (timestamp, key, value, headers) in enumerate(rows):
        builder.append(offset, timestamp, key, value, headers)
    return bytes(builder.build())


def our_records(rows):
    return [
        Record(offset, timestamp - rows[0][0], key, value, list(headers))
        for offset, (timestamp, key, value, headers) in enumerate(rows)
    ]


def assert_rows(batch, rows):
    assert len(batch.records) == len(rows)
    for offset, (record, (timestamp, key, value, headers)) in enumerate(zip(batch.records, rows)):
        assert batch.offset_of(record) == batch.base_offset + offset
        assert batch.timestamp_of(record) == timestamp
        assert (record.key, record.value, record.headers) == (key, value, headers)


# --- their builders, our decoder ------------------------------------------------------------------


@pytest.mark.parametrize("builder", [kafka_python_batch, aiokafka_batch], ids=["kafka-python", "aiokafka"])
@pytest.mark.parametrize("codec", CODECS)
def test_client_built_batches_decode_exactly(builder, codec):
    rows = sample_rows()
    data = builder(codec, rows, transactional=True, producer_id=4242, producer_epoch=3, base_sequence=17)
    batch = decode_batch(data, max_decompressed_size=LIMIT)
    assert batch.compression == codec
    assert batch.is_transactional and not batch.is_control
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (4242, 3, 17)
    assert batch.base_timestamp == rows[0][0]
    assert batch.max_timestamp == max(row[0] for row in rows)
    assert batch.last_offset_delta == len(rows) - 1
    assert batch.size_in_bytes == len(data)
    assert_rows(batch, rows)
    assert validate_batch_for_append(data, max_decompressed_size=LIMIT).records == batch.records


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_memory_records_builder_output(codec):
    builder = KafkaMemoryRecordsBuilder(magic=2, compression_type=codec, batch_size=1 << 30, offset=100)
    rows = sample_rows(5)
    for timestamp, key, value, headers in rows:
        builder.append(timestamp, key, value, headers)
    builder.close()
    (batch,) = list(iter_batches(bytes(builder.buffer())))
    # kafka-python writes the starting offset into the deltas and leaves base_offset 0.
    assert [batch.offset_of(r) for r in batch.records] == list(range(100, 105))
    assert [(batch.timestamp_of(r), r.key, r.value, r.headers) for r in batch.records] == rows


def test_uncompressed_bytes_equal_kafka_pythons():
    rows = sample_rows()
    producer = dict(transactional=True, producer_id=9, producer_epoch=1, base_sequence=0)
    fields = dict(base_timestamp=rows[0][0], producer_id=9, producer_epoch=1, base_sequence=0, transactional=True)
    # kafka-python leaves partition_leader_epoch at 0; aiokafka writes -1, as the Java client.
    assert build_batch(our_records(rows), partition_leader_epoch=0, **fields) == kafka_python_batch(NONE, rows, **producer)
    assert build_batch(our_records(rows), **fields) == aiokafka_batch(NONE, rows, **producer)


# --- our builder, their readers --------------------------------------------------------------------


def _read_with(reader_batch_class, data):
    batch = reader_batch_class(data)
    assert batch.validate_crc()
    return batch, [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]


@pytest.mark.parametrize("reader", [KafkaBatch, AiokafkaBatch], ids=["kafka-python", "aiokafka"])
@pytest.mark.parametrize("codec", CODECS)
def test_our_batches_are_read_by_clients(reader, codec):
    rows = sample_rows()
    data = build_batch(
        our_records(rows),
        base_offset=500,
        base_timestamp=rows[0][0],
        compression=codec,
        producer_id=77,
        producer_epoch=5,
        base_sequence=1000,
        partition_leader_epoch=12,
    )
    batch, read = _read_with(reader, data)
    assert batch.compression_type == codec
    assert (batch.base_offset, batch.producer_id, batch.producer_epoch, batch.base_sequence) == (500, 77, 5, 1000)
    assert batch.max_timestamp == max(row[0] for row in rows)
    assert read == [
        (500 + i, timestamp, key, value, headers) for i, (timestamp, key, value, headers) in enumerate(rows)
    ]


@pytest.mark.parametrize("codec", CODECS)
def test_concatenated_batches_through_memory_records(codec):
    first = build_batch(our_records(sample_rows(3)), base_offset=0, base_timestamp=BASE_TS, compression=codec)
    second = build_batch(our_records(sample_rows(4)), base_offset=3, base_timestamp=BASE_TS, compression=codec)
    for memory_records_class in (KafkaMemoryRecords, AiokafkaMemoryRecords):
        records = memory_records_class(first + second)
        offsets = []
        while records.has_next():
            offsets += [record.offset for record in records.next_batch()]
        assert offsets == list(range(7))
    decoded = list(iter_batches(first + second))
    assert [b.base_offset for b in decoded] == [0, 3]


def test_log_append_time_batch_is_read_as_log_append_time():
    data = build_batch(our_records(sample_rows(3)), base_timestamp=BASE_TS, max_timestamp=BASE_TS + 999, timestamp_type=LOG_APPEND_TIME)
    kafka_batch = KafkaBatch(data)
    assert kafka_batch.timestamp_type == 1
    assert {r.timestamp for r in kafka_batch} == {BASE_TS + 999}
    ours = decode_batch(data, max_decompressed_size=LIMIT)
    assert ours.timestamp_type == LOG_APPEND_TIME
    assert {ours.timestamp_of(r) for r in ours.records} == {BASE_TS + 999}


def test_delete_horizon_bit_and_base_timestamp():
    data = build_batch(our_records(sample_rows(2)), delete_horizon=BASE_TS + 86_400_000)
    header = read_batch_header(data)
    assert header.has_delete_horizon and header.base_timestamp == BASE_TS + 86_400_000
    assert decode_batch(data, max_decompressed_size=LIMIT).delete_horizon == BASE_TS + 86_400_000
    assert decode_batch(build_batch(our_records(sample_rows(2))), max_decompressed_size=LIMIT).delete_horizon is None


def test_attribute_bits():
    data = build_batch([Record(0, 0, None, b"v")], compression=ZSTD, timestamp_type=LOG_APPEND_TIME,
                       transactional=True, control=True, producer_id=1, producer_epoch=0, delete_horizon=5)
    assert read_batch_header(data).attributes == 0x04 | 0x08 | 0x10 | 0x20 | 0x40


def test_empty_batch_builds_as_kafka_writes_it():
    batch = decode_batch(build_batch([]), max_decompressed_size=LIMIT)
    assert batch.records == [] and batch.max_timestamp == -1


# --- control records ----------------------------------------------------------------------------


@pytest.mark.parametrize("commit", [True, False])
def test_end_txn_marker_batch(commit):
    data = build_end_txn_marker_batch(
        commit, producer_id=31, producer_epoch=4, coordinator_epoch=9, base_offset=70, timestamp=BASE_TS
    )
    batch = decode_batch(data, max_decompressed_size=LIMIT)
    assert batch.is_control and batch.is_transactional
    (record,) = batch.records
    marker = parse_control_record(record)
    assert marker.control_type == (CONTROL_COMMIT if commit else CONTROL_ABORT)
    assert (marker.key_version, marker.marker_version, marker.coordinator_epoch) == (0, 0, 9)
    assert marker.is_commit is commit and marker.is_abort is not commit
    # kafka-python reads a control batch as ControlRecords; aiokafka's fetcher parses the key.
    (kafka_record,) = list(KafkaBatch(data))
    assert kafka_record.commit is commit and kafka_record.version == 0
    aiokafka_batch_ = AiokafkaBatch(data)
    assert aiokafka_batch_.is_control_batch
    (aiokafka_record,) = list(aiokafka_batch_)
    assert AiokafkaControlRecord.parse(aiokafka_record.key) == (COMMIT_MARKER if commit else ABORT_MARKER)
    assert struct.unpack(">hi", kafka_record.value) == (0, 9)


def test_control_record_newer_versions_and_other_types():
    newer = Record(0, 0, struct.pack(">hh", 1, CONTROL_COMMIT) + b"future", struct.pack(">hi", 1, 3) + b"tags")
    assert parse_control_record(newer)[:] == (1, CONTROL_COMMIT, 1, 3)
    leader_change = Record(0, 0, struct.pack(">hh", 0, 2), b"whatever")
    assert parse_control_record(leader_change) == (0, 2, None, None)
    for bad in (Record(0, 0, b"\x00", b""), Record(0, 0, None, None),
                Record(0, 0, struct.pack(">hh", -1, 1), struct.pack(">hi", 0, 1)),
                Record(0, 0, struct.pack(">hh", 0, 0), b"\x00\x00")):
        with pytest.raises(CorruptRecord):
            parse_control_record(bad)


# --- bad input --------------------------------------------------------------------------------------


def raw_batch(records_section: bytes, count: int, attributes: int = 0, last_offset_delta=None) -> bytes:
    """A batch around a hand-made records section, with a correct CRC."""
    body = struct.pack(">hiqqqhii", attributes, count - 1 if last_offset_delta is None else last_offset_delta,
                       BASE_TS, BASE_TS, -1, -1, -1, count) + records_section
    return struct.pack(">qiibI", 0, len(body) + 9, -1, 2, crc32c.crc32c(body)) + body


def encoded(*records):
    out = bytearray()
    for record in records:
        encode_record(out, record)
    return bytes(out)


def test_crc_mismatch():
    data = bytearray(build_batch(our_records(sample_rows(3))))
    data[-1] ^= 0x01
    with pytest.raises(CorruptRecord, match="CRC") as info:
        decode_batch(data, max_decompressed_size=LIMIT)
    assert info.value.error_code == 2


@pytest.mark.parametrize("cut", [1, 10, 60, 61, 62])
def test_truncated_batch(cut):
    data = build_batch(our_records(sample_rows(3)))
    with pytest.raises(CorruptRecord, match="truncated"):
        decode_batch(data[: len(data) - cut] if cut < 62 else data[:20], max_decompressed_size=LIMIT)


def test_record_count_mismatch_both_ways():
    section = encoded(Record(0, 0, b"k", b"v"), Record(1, 0, b"k", b"v"))
    with pytest.raises(CorruptRecord, match="declares 3 records but holds 2"):
        decode_batch(raw_batch(section, 3), max_decompressed_size=LIMIT)
    with pytest.raises(CorruptRecord, match="after its 1 declared records"):
        decode_batch(raw_batch(section, 1), max_decompressed_size=LIMIT)
    with pytest.raises(CorruptRecord, match="negative record count"):
        decode_batch(raw_batch(section, -1), max_decompressed_size=LIMIT)


@pytest.mark.parametrize("codec", [GZIP, ZSTD])
def test_record_count_mismatch_in_compressed_batch(codec):
    from odradek.protocol.records.compression import compress

    section = compress(codec, encoded(Record(0, 0, b"k", b"v"), Record(1, 0, b"k", b"v")))
    for count in (1, 3):
        with pytest.raises(CorruptRecord):
            decode_batch(raw_batch(section, count, attributes=codec), max_decompressed_size=LIMIT)


def test_bad_varint_in_record():
    # A record whose timestamp delta is an unterminated 10-byte varlong.
    body = b"\x00" + b"\xff" * 10
    section = bytearray()
    write_varint(section, len(body))
    section += body
    with pytest.raises(CorruptRecord, match="malformed record|outside"):
        decode_batch(raw_batch(bytes(section), 1), max_decompressed_size=LIMIT)
    # An over-long record length varint.
    with pytest.raises(CorruptRecord):
        decode_batch(raw_batch(b"\xff\xff\xff\xff\xff\xff", 1), max_decompressed_size=LIMIT)


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\x00\x00\x04",  # key length 2 (zigzag 4) past the record's end
        b"\x00\x00\x00\x03\x00\x00",  # key length -2
        b"\x00\x00\x00\x01\x01\x01",  # header count -1
        b"\x00\x00\x00\x01\x01\x02\x01",  # header key length -1
        b"\x00\x00\x00\x01\x01\x00\x00",  # one byte left over inside the record
    ],
)
def test_malformed_record_fields(body):
    section = bytearray()
    write_varint(section, len(body))
    section += body
    with pytest.raises(CorruptRecord):
        decode_batch(raw_batch(bytes(section), 1), max_decompressed_size=LIMIT)


def test_header_key_not_utf8_is_read_with_replacement_as_kafka_does():
    # Kafka's DefaultRecord reads header keys with Utils.utf8 (new String(bytes, UTF_8)).
    body = b"\x00\x00\x00\x01\x01\x02\x02\xff\x01"  # one header, key b"\xff", value null
    section = bytearray()
    write_varint(section, len(body))
    section += body
    record = decode_batch(raw_batch(bytes(section), 1), max_decompressed_size=LIMIT).records[0]
    assert record.headers == [("\ufffd", None)]


def test_wrong_magic_and_short_length():
    data = bytearray(build_batch([Record(0, 0, None, b"v")]))
    data[16] = 1
    with pytest.raises(CorruptRecord, match="magic"):
        decode_batch(data, max_decompressed_size=LIMIT)
    data = bytearray(build_batch([Record(0, 0, None, b"v")]))
    struct.pack_into(">i", data, 8, 10)
    with pytest.raises(CorruptRecord):
        decode_batch(data, max_decompressed_size=LIMIT)


@pytest.mark.parametrize("codec_bits", [5, 6, 7])
def test_unknown_codec_in_attributes(codec_bits):
    with pytest.raises(UnsupportedCompression):
        decode_batch(raw_batch(b"whatever", 1, attributes=codec_bits), max_decompressed_size=LIMIT)


def test_compressed_batch_over_the_limit():
    data = build_batch([Record(0, 0, None, bytes(4 * 1024 * 1024))], compression=ZSTD)
    assert len(data) < 1024
    with pytest.raises(DecompressionLimitExceeded):
        decode_batch(data, max_decompressed_size=1024 * 1024)


# --- iteration and the trailing partial batch -----------------------------------------------------


def test_iter_batches_yields_trailing_partial_batch_last():
    first = build_batch(our_records(sample_rows(3)), base_offset=0)
    second = build_batch(our_records(sample_rows(3)), base_offset=3)
    for cut in (1, 12, len(second) - 61, len(second) - 1):
        items = list(iter_batches(first + second[:cut]))
        assert [type(i) for i in items] == [type(items[0]), IncompleteBatch]
        assert items[0].base_offset == 0
        assert items[1].position == len(first) and items[1].available == cut
        assert items[1].size == (len(second) if cut >= 12 else None)
        with pytest.raises(CorruptRecord, match="truncated"):
            list(iter_batches(first + second[:cut], allow_incomplete=False))
    headers = list(iter_batch_headers(first + second))
    assert [(pos, h.base_offset) for pos, h in headers] == [(0, 0), (len(first), 3)]


# --- append validation --------------------------------------------------------------------------------


def test_validate_batch_for_append_rejects_what_kafka_rejects():
    ok = [Record(0, 0, None, b"a"), Record(1, 0, None, b"b")]
    validate_batch_for_append(build_batch(ok), max_decompressed_size=LIMIT)
    cases = [
        build_batch([], last_offset_delta=0),
        build_batch(ok, last_offset_delta=5),
        build_batch(ok, producer_id=7, producer_epoch=0, base_sequence=-1),
        build_end_txn_marker_batch(True, producer_id=1, producer_epoch=0, coordinator_epoch=0),
    ]
    for data in cases:
        with pytest.raises(CorruptRecord) as info:
            validate_batch_for_append(data, max_decompressed_size=LIMIT)
        assert info.value.error_code == 87


def test_compressed_batch_with_odd_inner_offsets_is_rebuilt_not_refused():
    odd = [Record(0, 0, None, b"a"), Record(2, 0, None, b"b")]
    batch = validate_batch_for_append(build_batch(odd, last_offset_delta=1, compression=GZIP), max_decompressed_size=LIMIT)
    assert not assigns_in_place(batch)
    ok = [Record(0, 0, None, b"a"), Record(1, 0, None, b"b")]
    assert assigns_in_place(decode_batch(build_batch(ok, compression=GZIP), max_decompressed_size=LIMIT))
    assert not assigns_in_place(decode_batch(build_batch(ok, compression=GZIP, base_offset=5), max_decompressed_size=LIMIT))
    assert assigns_in_place(decode_batch(build_batch(odd, last_offset_delta=1), max_decompressed_size=LIMIT))


def test_validate_produce_records_wants_exactly_one_batch():
    one = build_batch([Record(0, 0, None, b"a")])
    assert validate_produce_records(one + one[:30], max_decompressed_size=LIMIT).records[0].value == b"a"
    for data in (b"", one[:-1], one + one):
        with pytest.raises(CorruptRecord) as info:
            validate_produce_records(data, max_decompressed_size=LIMIT)
        assert info.value.error_code == 87


# --- properties --------------------------------------------------------------------------------------

header_keys = st.text(max_size=8)
nullable = st.one_of(st.none(), st.binary(max_size=40))
records_strategy = st.lists(
    st.tuples(
        st.integers(-(2**40), 2**40),
        nullable,
        nullable,
        st.lists(st.tuples(header_keys, nullable), max_size=3),
        st.integers(0, 255),
    ),
    max_size=8,
)


@given(records_strategy, st.sampled_from(CODECS), st.integers(-(2**62), 2**62), st.integers(0, 2**62))
def test_build_decode_round_trip(rows, codec, base_timestamp, base_offset):
    records = [Record(i, ts, k, v, h, a) for i, (ts, k, v, h, a) in enumerate(rows)]
    data = build_batch(records, base_offset=base_offset, base_timestamp=base_timestamp, compression=codec,
                       producer_id=5, producer_epoch=1, base_sequence=0)
    batch = decode_batch(data, max_decompressed_size=LIMIT)
    assert batch.records == records
    assert (batch.base_offset, batch.base_timestamp, batch.compression) == (base_offset, base_timestamp, codec)
    assert batch.size_in_bytes == len(data)


@given(st.binary(max_size=400))
def test_fuzz_decode_batch_random_bytes(data):
    try:
        decode_batch(data, max_decompressed_size=4096)
    except ProtocolError:
        pass
    try:
        list(iter_batches(data, max_decompressed_size=4096))
    except ProtocolError:
        pass


@given(records_strategy, st.sampled_from(CODECS), st.data())
def test_fuzz_decode_batch_mutated_with_valid_crc(rows, codec, data):
    """Mutate bytes after the header, then fix the CRC, so the record parser sees the damage."""
    records = [Record(i, ts, k, v, h, a) for i, (ts, k, v, h, a) in enumerate(rows)]
    batch = bytearray(build_batch(records, compression=codec))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(21, len(batch) - 1))
        batch[index] = data.draw(st.integers(0, 255))
    struct.pack_into(">I", batch, 17, crc32c.crc32c(bytes(batch[21:])))
    try:
        decode_batch(bytes(batch), max_decompressed_size=4096)
    except ProtocolError:
        pass


# --- every prefix, trailing data ---------------------------------------------------------------------


def test_every_prefix_yields_complete_batches_then_the_partial_one():
    first = build_batch(our_records(sample_rows(2)), base_offset=0, compression=GZIP)
    second = build_batch(our_records(sample_rows(2)), base_offset=2)
    data = first + second
    for cut in range(len(data) + 1):
        items = list(iter_batches(data[:cut]))
        complete = [i for i in items if not isinstance(i, IncompleteBatch)]
        assert [b.base_offset for b in complete] == [0, 2][: (cut >= len(first)) + (cut == len(data))]
        partial = [i for i in items if isinstance(i, IncompleteBatch)]
        assert len(partial) == (cut not in (0, len(first), len(data)))
        assert not partial or items[-1] is partial[0]


def test_decode_batch_ignores_what_follows_it():
    data = build_batch(our_records(sample_rows(3)), base_offset=7)
    for trailing in (b"\x00", b"garbage" * 10, data):
        batch = decode_batch(data + trailing, max_decompressed_size=LIMIT)
        assert batch.base_offset == 7 and batch.size_in_bytes == len(data)
    assert decode_batch(b"xyz" + data, 3, max_decompressed_size=LIMIT).base_offset == 7
    assert list(iter_batches(b"")) == []
