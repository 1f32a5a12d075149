"""PartitionLog behaviour: append validation and offsets, reads, rolls, retention, truncation,
faults. Every test runs on both backends (memory and real files)."""

import struct

import pytest

from odradek.protocol.errors import CorruptRecord, ProtocolError, UnsupportedCompression
from odradek.protocol.records.header import TIMESTAMP_TYPE_MASK, batch_crc_matches, read_batch_header
from odradek.storage.config import LogConfig
from odradek.storage.errors import (
    InvalidRecord,
    InvalidTimestamp,
    KafkaStorageError,
    OffsetOutOfRange,
    RecordListTooLarge,
    RecordTooLarge,
    RecordValidationError,
    UnsupportedForMessageFormat,
)
from odradek.storage.fs import MemoryFileSystem, OsFileSystem
from odradek.storage.partition_log import PartitionLog

from storage_batches import make_batch

T0 = 1_700_000_000_000


class Clock:
    def __init__(self, now=T0 + 500):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture(params=["memory", "os"])
def backend(request, tmp_path):
    if request.param == "memory":
        return MemoryFileSystem(), "data"
    return OsFileSystem(), str(tmp_path)


def open_log(backend, clock=None, **config):
    fs, root = backend
    return PartitionLog.open(fs, f"{root}/t-0", LogConfig(**config), clock=clock or Clock())


def batches_of(data: bytes):
    position, found = 0, []
    while position < len(data):
        header = read_batch_header(data, position)
        found.append(header)
        position += header.size_in_bytes
    return found


def test_append_assigns_offsets_and_reads_back(backend):
    log = open_log(backend)
    assert (log.log_start_offset, log.log_end_offset, log.high_watermark) == (0, 0, 0)
    result = log.append(make_batch([b"a", b"b", b"c"], base_offset=99))
    assert (result.first_offset, result.last_offset, result.log_append_time, result.log_start_offset) == (0, 2, -1, 0)
    result = log.append(bytearray(make_batch([b"d"])))
    assert (result.first_offset, result.last_offset) == (3, 3)
    assert log.read(0, 10_000).regions == []  # bounded by the high watermark
    log.update_high_watermark(log.log_end_offset)
    data = log.read(0, 10_000).read_bytes()
    assert [(h.base_offset, h.last_offset) for h in batches_of(data)] == [(0, 2), (3, 3)]
    assert all(batch_crc_matches(data, 0, h) for h in batches_of(data)[:1])
    assert batches_of(log.read(3, 10_000).read_bytes())[0].base_offset == 3
    assert log.read(4, 10_000).regions == []
    with pytest.raises(OffsetOutOfRange):
        log.read(5, 100)
    assert [h.base_offset for h in batches_of(log.read(0, 10_000, max_offset=3).read_bytes())] == [0]


def test_read_returns_at_least_one_whole_batch(backend):
    log = open_log(backend)
    for _i in range(5):
        log.append(make_batch([b"x" * 100]))
    log.update_high_watermark(5)
    one = log.read(1, 10)
    assert one.size == len(make_batch([b"x" * 100])) and batches_of(one.read_bytes())[0].base_offset == 1
    assert log.read(1, 10, min_one_batch=False).regions == []
    size = one.size
    assert batches_of(log.read(0, 2 * size + size // 2).read_bytes())[-1].base_offset == 1


def test_regions_carry_real_files_for_sendfile(tmp_path):
    log = open_log((OsFileSystem(), str(tmp_path)))
    log.append(make_batch([b"v"]))
    log.update_high_watermark(1)
    region = log.read(0, 1000).regions[0]
    assert region.file.fileno() >= 0 and region.position == 0
    import os
    assert os.pread(region.file.fileno(), region.length, region.position) == region.read()


@pytest.mark.parametrize("make, error", [
    (lambda: make_batch([b"a"])[:-1], CorruptRecord),
    (lambda: make_batch([b"a"]) + b"\x00" * 20, CorruptRecord),
    (lambda: b"", InvalidRecord),
    (lambda: make_batch([b"a"])[:30] + b"\xff" + make_batch([b"a"])[31:], CorruptRecord),
    (lambda: make_batch([b"a", b"b"], records_count=3), InvalidRecord),
    (lambda: make_batch([b"a", b"b"], last_offset_delta=5), InvalidRecord),
    (lambda: make_batch([b"a"], attributes=0x20), InvalidRecord),
    (lambda: make_batch([b"a"], producer_id=5, producer_epoch=0, base_sequence=-1), InvalidRecord),
    (lambda: make_batch([b"a"], attributes=0x10), InvalidRecord),
    (lambda: make_batch([b"a"], attributes=0x07), UnsupportedCompression),
    (lambda: make_batch([b"a"])[:16] + b"\x01" + make_batch([b"a"])[17:], CorruptRecord),  # not a legacy message either
    (lambda: make_batch([b"a"])[:16] + b"\x03" + make_batch([b"a"])[17:], CorruptRecord),
    (lambda: make_batch([b"a"], timestamps=[T0 + 500 + 3_600_001]), InvalidTimestamp),
])
def test_refused_appends_leave_the_log_unchanged(backend, make, error):
    log = open_log(backend)
    log.append(make_batch([b"ok"]))
    with pytest.raises(error) as raised:
        log.append(make())
    assert isinstance(raised.value, ProtocolError) and not raised.value.closes_connection
    assert log.log_end_offset == 1 and log.size_in_bytes == len(make_batch([b"ok"]))


def test_size_and_timestamp_limits_from_config(backend):
    log = open_log(backend, max_message_bytes=100, segment_bytes=300, message_timestamp_before_max_ms=1000)
    with pytest.raises(RecordTooLarge) as raised:
        log.append(make_batch([b"x" * 200]))
    assert raised.value.error_code == 10
    with pytest.raises(RecordListTooLarge):
        log.append(b"".join(make_batch([b"x"]) for _ in range(5)))
    with pytest.raises(InvalidTimestamp) as raised:
        log.append(make_batch([b"x"], timestamps=[T0 - 1000]))
    assert raised.value.error_code == 32
    log.append(make_batch([b"x"], timestamps=[T0]))


def test_compacted_topics_refuse_keyless_records_naming_each(backend):
    fs, root = backend
    for number, policy in enumerate(("compact", "compact,delete", "delete, compact")):
        log = PartitionLog.open(fs, f"{root}/compacted{number}-3", LogConfig(cleanup_policy=policy), clock=Clock())
        with pytest.raises(RecordValidationError) as raised:
            log.append(make_batch([b"a", b"b", b"c", b"d", b"e"], keys=[b"k", None, b"k", None, None]))
        error = raised.value
        assert error.error_code == 87 and not isinstance(error, InvalidTimestamp)
        message = f"Compacted topic cannot accept message without key in topic partition compacted{number}-3"
        assert error.record_errors == [(1, message), (3, message), (4, message)]
        shown = ", ".join(f"RecordError(batchIndex={index}, message='{message}')" for index in (1, 3, 4))
        assert str(error) == ("One or more records have been rejected due to 3 record errors in total, and only "
                              f"showing the first three errors at most: [{shown}]")
        assert log.log_end_offset == 0
        # Keyed records are taken; a later batch's faults are indexed within that batch.
        log.append(make_batch([b"a"]))
        with pytest.raises(RecordValidationError) as raised:
            log.append(make_batch([b"a"]) + make_batch([b"b", b"c"], keys=[b"k", None]))
        assert raised.value.record_errors == [(1, message)]
        assert log.log_end_offset == 1
        log.close()
    # Not compacted: keyless records are fine.
    assert open_log(backend, cleanup_policy="delete").append(make_batch([b"a"], keys=[None])).first_offset == 0


def test_timestamp_faults_name_each_record(backend):
    clock = Clock(T0 + 10_000)
    log = open_log(backend, clock, message_timestamp_before_max_ms=1000, message_timestamp_after_max_ms=2000,
                   cleanup_policy="compact")
    with pytest.raises(InvalidTimestamp) as raised:
        log.append(make_batch([b"a", b"b", b"c"], base_offset=7, timestamps=[T0 + 8_000, T0 + 9_500, T0 + 12_001],
                              keys=[b"k", b"k", None]))
    error = raised.value
    assert error.error_code == 32 and str(error) == "One or more records have been rejected due to invalid timestamp"
    window = f"[{T0 + 9_000}, {T0 + 12_000}]"
    # Record 2 has no key: its key fault is reported, not its timestamp (Kafka's order); the
    # answer is still INVALID_TIMESTAMP because record 0's timestamp is at fault.
    assert error.record_errors == [
        (0, f"Timestamp {T0 + 8_000} of message with offset 7 is out of range. The timestamp should be within {window}"),
        (2, "Compacted topic cannot accept message without key in topic partition t-0"),
    ]
    assert log.log_end_offset == 0
    log.close()
    # Java's long arithmetic in the message: an after-limit of Long.MAX_VALUE wraps.
    log = open_log(backend, clock, message_timestamp_before_max_ms=1000, message_timestamp_after_max_ms=2**63 - 1)
    with pytest.raises(InvalidTimestamp) as raised:
        log.append(make_batch([b"a"], timestamps=[T0]))
    assert raised.value.record_errors == [
        (0, f"Timestamp {T0} of message with offset 0 is out of range. The timestamp should be within "
            f"[{T0 + 9_000}, {T0 + 10_000 + 2**63 - 1 - 2**64}]")]


def test_log_append_time_patches_max_timestamp_and_crc(backend):
    clock = Clock()
    log = open_log(backend, clock, message_timestamp_type="LogAppendTime")
    result = log.append(make_batch([b"a", b"b"], timestamps=[5, 6]))
    assert result.log_append_time == clock.now
    log.update_high_watermark(2)
    data = log.read(0, 1000).read_bytes()
    header = read_batch_header(data)
    assert header.max_timestamp == clock.now and header.attributes & TIMESTAMP_TYPE_MASK
    assert batch_crc_matches(data, 0, header)
    assert log.offset_for_timestamp(clock.now) == (clock.now, 0)


def test_several_batches_in_one_append(backend):
    log = open_log(backend)
    payload = make_batch([b"a", b"b"]) + make_batch([b"c"], timestamps=[T0 + 50]) + make_batch([b"d"], timestamps=[T0 + 10])
    result = log.append(payload)
    assert (result.first_offset, result.last_offset, result.record_count) == (0, 3, 4)
    log.update_high_watermark(4)
    assert [h.base_offset for h in batches_of(log.read(0, 10_000).read_bytes())] == [0, 2, 3]
    assert log.max_timestamp_offset() == (T0 + 50, 2)


def test_offset_for_timestamp_finds_the_first_record_at_or_after(backend):
    log = open_log(backend, index_interval_bytes=50)
    for i in range(20):
        log.append(make_batch([b"x", b"y"], timestamps=[T0 + 10 * i, T0 + 10 * i + 5]))
    log.update_high_watermark(40)
    assert log.offset_for_timestamp(T0 - 100) == (T0, 0)
    assert log.offset_for_timestamp(T0 + 103)[1] == 21  # record 21 has T0 + 105
    assert log.offset_for_timestamp(T0 + 100)[1] == 20
    assert log.offset_for_timestamp(T0 + 10_000) is None


def test_roll_on_segment_bytes_and_index_full(backend):
    batch = make_batch([b"x" * 50])
    log = open_log(backend, segment_bytes=3 * len(batch))
    for _ in range(7):
        log.append(make_batch([b"x" * 50]))
    assert [s.base_offset for s in log.segments] == [0, 3, 6]
    log = open_log((MemoryFileSystem(), "d"), segment_index_bytes=16, index_interval_bytes=0)
    for _ in range(6):
        log.append(make_batch([b"y"]))
    assert len(log.segments) > 1  # 2 offset index entries fit per segment
    log.update_high_watermark(6)
    assert [h.base_offset for h in batches_of(log.read(0, 10**6).read_bytes())] == list(range(6))


def test_roll_on_segment_ms_counts_from_first_batch_timestamp(backend):
    clock = Clock()
    log = open_log(backend, clock, segment_ms=1000)
    log.append(make_batch([b"a"], timestamps=[T0]))
    log.append(make_batch([b"b"], timestamps=[T0 + 1000]))
    assert len(log.segments) == 1
    log.append(make_batch([b"c"], timestamps=[T0 + 1001]))
    assert [s.base_offset for s in log.segments] == [0, 2]


def test_retention_by_time_bytes_and_log_start(backend):
    clock = Clock()
    batch_size = len(make_batch([b"x" * 50]))
    log = open_log(backend, clock, segment_bytes=2 * batch_size, retention_ms=10_000)
    for i in range(10):
        log.append(make_batch([b"x" * 50], timestamps=[T0 + i * 1000]))
    assert len(log.segments) == 5
    assert log.delete_old_segments() == 0  # nothing below the high watermark yet
    log.update_high_watermark(10)
    clock.now = T0 + 13_500
    assert log.delete_old_segments() == 2  # segments with max timestamps T0+1000, T0+3000
    assert log.log_start_offset == 4 and log.segments[0].base_offset == 4
    with pytest.raises(OffsetOutOfRange):
        log.read(3, 100)
    fs, root = backend
    assert not any(name.startswith("00000000000000000000") for name in fs.listdir(f"{root}/t-0"))

    log2 = open_log((MemoryFileSystem(), "d"), segment_bytes=2 * batch_size, retention_bytes=3 * batch_size)
    for _ in range(10):
        log2.append(make_batch([b"x" * 50]))
    log2.update_high_watermark(10)
    log2.delete_old_segments()
    # Kafka deletes a segment only if the log stays at or above retention.bytes without it.
    assert log2.size_in_bytes == 4 * batch_size and log2.log_start_offset == 6

    assert log2.delete_records_before(7) == 7
    assert log2.segments[0].base_offset == 6  # the segment holding 7 stays, 6 is unreadable
    with pytest.raises(OffsetOutOfRange):
        log2.read(6, 100)
    assert batches_of(log2.read(7, 100).read_bytes())[0].base_offset == 7
    with pytest.raises(OffsetOutOfRange):
        log2.delete_records_before(11)
    assert log2.delete_records_before(10) == 10
    assert log2.log_end_offset == 10 and log2.read(10, 100).regions == []


def test_retention_of_everything_keeps_an_empty_active_segment(backend):
    clock = Clock()
    log = open_log(backend, clock, retention_ms=1000)
    log.append(make_batch([b"a"], timestamps=[T0]))
    log.update_high_watermark(1)
    clock.now = T0 + 5000
    assert log.delete_old_segments() == 1
    assert [s.base_offset for s in log.segments] == [1] and log.log_start_offset == 1
    assert log.append(make_batch([b"b"], timestamps=[T0 + 5000])).first_offset == 1


def test_truncate_to_whole_batches(backend):
    batch_size = len(make_batch([b"x" * 50, b"y"]))
    log = open_log(backend, segment_bytes=2 * batch_size, index_interval_bytes=10)
    for _ in range(6):
        log.append(make_batch([b"x" * 50, b"y"]), leader_epoch=1)
    log.append(make_batch([b"z"]), leader_epoch=2)
    log.update_high_watermark(log.log_end_offset)
    assert log.truncate_to(7) == 6  # offset 7 is inside batch [6, 7]: the batch goes
    assert log.high_watermark == 6 and log.leader_epochs.entries == [(1, 0)]
    assert log.truncate_to(100) == 6
    assert [s.base_offset for s in log.segments] == [0, 4]
    assert log.append(make_batch([b"n"])).first_offset == 6
    assert log.truncate_to(2) == 2 and [s.base_offset for s in log.segments] == [0]
    log.update_high_watermark(2)
    assert [h.base_offset for h in batches_of(log.read(0, 10_000).read_bytes())] == [0]
    log.delete_records_before(2)
    assert log.truncate_to(1) == 1 and log.log_start_offset == 1 and log.segments[0].base_offset == 1


def test_reopen_keeps_offsets(backend):
    fs, root = backend
    clock = Clock()
    log = PartitionLog.open(fs, f"{root}/t-0", LogConfig(segment_bytes=500), clock=clock)
    for _ in range(20):
        log.append(make_batch([b"payload"]))
    log.close()
    log = PartitionLog.open(fs, f"{root}/t-0", LogConfig(segment_bytes=500), clock=clock, high_watermark=20)
    assert log.log_end_offset == 20 and len(log.segments) > 1
    assert log.append(make_batch([b"more"])).first_offset == 20
    assert batches_of(log.read(13, 1).read_bytes())[0].base_offset == 13


def test_flush_and_group_commit(backend):
    log = open_log(backend)
    log.append(make_batch([b"a"]))
    result = log.append(make_batch([b"b"]))
    assert log.durable_offset == 0
    assert log.flush_up_to(result.end_offset) == 2 and log.durable_offset == 2
    log.append(make_batch([b"c"]))
    assert log.flush_up_to(2) == 2  # already durable: no fsync
    assert log.flush() == 3


def test_flush_messages_and_flush_ms_policy(backend):
    clock = Clock()
    log = open_log(backend, clock, flush_messages=3, flush_ms=1000)
    log.append(make_batch([b"a", b"b"]))
    assert log.durable_offset == 0
    log.append(make_batch([b"c"]))
    assert log.durable_offset == 3
    log.append(make_batch([b"d"]))
    assert not log.flush_if_due()
    clock.now += 1000
    assert log.flush_if_due() and log.durable_offset == 4


def test_disk_full_fails_the_append_and_the_log_recovers():
    fs = MemoryFileSystem(space_limit=10_000)
    log = PartitionLog.open(fs, "d/t-0", LogConfig(), clock=Clock())
    log.append(make_batch([b"a"]))
    with pytest.raises(KafkaStorageError) as raised:
        log.append(make_batch([b"x" * 20_000]))
    assert raised.value.error_code == 56
    assert log.log_end_offset == 1 and fs.file_size("d/t-0/00000000000000000000.log") == len(make_batch([b"a"]))
    fs.space_limit = None
    assert log.append(make_batch([b"b"])).first_offset == 1
    log.update_high_watermark(2)
    assert [h.base_offset for h in batches_of(log.read(0, 1000).read_bytes())] == [0, 1]


def test_replication_appends_keep_offsets(backend):
    log = open_log(backend)
    log.append(make_batch([b"a", b"b"], base_offset=10, partition_leader_epoch=4), origin="replication")
    assert log.log_end_offset == 12 and log.leader_epochs.entries == [(4, 10)]
    with pytest.raises(InvalidRecord):
        log.append(make_batch([b"c"], base_offset=11), origin="replication")
    from odradek.protocol.records.legacy import LegacyRecord, build_message_set
    legacy = build_message_set([LegacyRecord(offset=12, key=None, value=b"v", timestamp=T0)], magic=1)
    with pytest.raises(UnsupportedForMessageFormat):
        log.append(legacy, origin="replication")


def test_delete_partition(backend):
    fs, root = backend
    log = open_log(backend)
    log.append(make_batch([b"a"]))
    log.delete()
    assert not fs.exists(f"{root}/t-0") and fs.listdir(root) == []
    with pytest.raises(KafkaStorageError):
        log.append(make_batch([b"a"]))


def test_payload_is_patched_in_place_when_writable(backend):
    log = open_log(backend)
    log.append(make_batch([b"a"]))
    payload = bytearray(make_batch([b"b"], base_offset=0))
    log.append(payload)
    assert struct.unpack_from(">q", payload)[0] == 1


@pytest.mark.parametrize("magic, compression", [(0, 0), (1, 0), (1, 1)])
def test_legacy_message_sets_are_up_converted(backend, magic, compression):
    from odradek.protocol.records.batch import decode_batch
    from odradek.protocol.records.legacy import LegacyRecord, build_message_set

    log = open_log(backend)
    log.append(make_batch([b"first"]))
    legacy = build_message_set(
        [LegacyRecord(offset=i, key=None, value=b"v%d" % i, timestamp=T0 + i if magic else None) for i in range(3)],
        magic=magic, compression=compression)
    result = log.append(legacy)
    assert (result.first_offset, result.last_offset) == (1, 3)
    log.update_high_watermark(4)
    data = log.read(1, 10_000).read_bytes()
    batch = decode_batch(data, 0, max_decompressed_size=1 << 20)
    assert batch.base_offset == 1 and [r.value for r in batch.records] == [b"v0", b"v1", b"v2"]
    with pytest.raises(CorruptRecord):
        log.append(make_batch([b"x"]) + legacy)


def test_read_errors_are_storage_errors():
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, "d/t-0", LogConfig(), clock=Clock())
    log.append(make_batch([b"a"]))
    log.update_high_watermark(1)

    fs.read_error = OSError(5, "Input/output error (simulated)")
    with pytest.raises(KafkaStorageError):
        log.read(0, 100)
    with pytest.raises(KafkaStorageError):
        log.offset_for_timestamp(0)
    fs.read_error = None
    assert log.read(0, 100).size > 0


def test_segment_jitter_rolls_early_within_bounds(backend):
    clock = Clock()
    log = open_log(backend, clock, segment_ms=1000, segment_jitter_ms=1000)
    jitter = log.active_segment.roll_jitter_ms
    assert 0 <= jitter < 1000
    log.append(make_batch([b"a"], timestamps=[T0]))
    log.append(make_batch([b"b"], timestamps=[T0 + 1000 - jitter]))
    assert len(log.segments) == 1
    log.append(make_batch([b"c"], timestamps=[T0 + 1001 - jitter]))
    assert len(log.segments) == 2
