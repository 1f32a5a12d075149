"""Log compaction: last record per key kept, offsets unchanged, tombstones expire, producer
state preserved, crash-safe segment swap."""

import pytest

from odradek.protocol.records.batch import decode_batch
from odradek.storage.cleaner import CLEANED_SUFFIX, SWAP_SUFFIX
from odradek.storage.config import LogConfig
from odradek.storage.fs import MemoryFileSystem, OsFileSystem
from odradek.storage.partition_log import PartitionLog

from storage_batches import make_batch, encode_record

T0 = 1_700_000_000_000


class Clock:
    def __init__(self):
        self.now = T0 + 1000

    def __call__(self):
        return self.now


def keyed_batch(pairs, timestamp=T0, **producer):
    """A batch of (key, value) records; value None is a tombstone."""
    import struct

    import crc32c

    records = b"".join(encode_record(i, 0, key, value) for i, (key, value) in enumerate(pairs))
    after_crc = struct.pack(">hiqqqhii", 0, len(pairs) - 1, timestamp, timestamp, producer.get("producer_id", -1),
                            producer.get("producer_epoch", -1), producer.get("base_sequence", -1), len(pairs)) + records
    return struct.pack(">qiibI", 0, 9 + len(after_crc), -1, 2, crc32c.crc32c(after_crc)) + after_crc


def contents(log):
    """[(offset, key, value)] of every record readable, in order."""
    log.update_high_watermark(log.log_end_offset)
    data = log.read(log.log_start_offset, 10**9).read_bytes()
    position, found = 0, []
    while position < len(data):
        batch = decode_batch(data, position, max_decompressed_size=1 << 24)
        found.extend((batch.offset_of(r), r.key, r.value) for r in batch.records)
        position += 12 + int.from_bytes(data[position + 8 : position + 12], "big")
    return found


@pytest.fixture(params=["memory", "os"])
def backend(request, tmp_path):
    if request.param == "memory":
        return MemoryFileSystem(), "data/t-0"
    return OsFileSystem(), str(tmp_path / "t-0")


def compacted_log(backend, clock, **config):
    fs, directory = backend
    return PartitionLog.open(fs, directory, LogConfig(cleanup_policy="compact", segment_bytes=300, **config),
                             clock=clock)


def test_keeps_the_last_record_of_each_key_at_its_offset(backend):
    clock = Clock()
    log = compacted_log(backend, clock)
    written = []
    for i in range(30):
        key, value = b"k%d" % (i % 4), b"v%d" % i
        result = log.append(keyed_batch([(key, value)]))
        written.append((result.first_offset, key, value))
    end = log.log_end_offset
    log.update_high_watermark(end)
    before = contents(log)
    stats = log.compact()
    assert stats.segments_cleaned > 0 and stats.records_removed > 0
    after = contents(log)
    assert log.log_end_offset == end
    active_base = log.active_segment.base_offset
    cleaned = [r for r in after if r[0] < active_base]
    last_per_key = {}
    for offset, key, value in [r for r in before if r[0] < active_base]:
        last_per_key[key] = (offset, key, value)
    assert cleaned == sorted(last_per_key.values())
    assert [r for r in after if r[0] >= active_base] == [r for r in before if r[0] >= active_base]
    fs, directory = backend
    assert not any(name.endswith((CLEANED_SUFFIX, SWAP_SUFFIX)) for name in fs.listdir(directory))
    for offset, key, value in after:  # every kept record is found by offset
        batch = decode_batch(log.read(offset, 1).read_bytes(), 0, max_decompressed_size=1 << 20)
        assert any(batch.offset_of(r) == offset and r.value == value for r in batch.records)
    log.close()
    for clean in (True, False):
        reopened = PartitionLog.open(fs, directory, LogConfig(cleanup_policy="compact", segment_bytes=300),
                                     clock=clock, clean_shutdown=clean, recovery_point=end if clean else 0)
        assert reopened.log_end_offset == end and contents(reopened) == after
        reopened.close()


def test_tombstones_live_for_delete_retention_ms(backend):
    clock = Clock()
    log = compacted_log(backend, clock, delete_retention_ms=10_000)
    log.append(keyed_batch([(b"gone", b"x" * 100)]))
    log.append(keyed_batch([(b"gone", None)]))  # tombstone
    for i in range(8):
        log.append(keyed_batch([(b"other", b"y" * 100)]))
    log.update_high_watermark(log.log_end_offset)
    log.compact()
    assert [(k, v) for _, k, v in contents(log) if k == b"gone"] == [(b"gone", None)]
    clock.now = T0 + 20_000
    log.compact()
    assert [k for _, k, _ in contents(log) if k == b"gone"] == []


def test_only_below_the_high_watermark_and_past_the_lag(backend):
    clock = Clock()
    log = compacted_log(backend, clock, min_compaction_lag_ms=5000)
    for i in range(12):
        log.append(keyed_batch([(b"same", b"v%d" % i + b"z" * 80)]))
    log.update_high_watermark(2)
    assert log.compact().segments_cleaned == 0  # nothing wholly below the high watermark
    log.update_high_watermark(log.log_end_offset)
    assert log.compact().segments_cleaned == 0  # records younger than min.compaction.lag.ms
    clock.now = T0 + 6000
    assert log.compact().segments_cleaned > 0


def test_delete_policy_is_not_compacted(backend):
    fs, directory = backend
    log = PartitionLog.open(fs, directory, LogConfig(segment_bytes=300), clock=Clock())
    for i in range(12):
        log.append(keyed_batch([(b"same", b"v" * 80)]))
    log.update_high_watermark(12)
    assert log.compact().segments_cleaned == 0


def test_producer_last_batch_survives_and_retries_are_still_recognised():
    fs = MemoryFileSystem()
    clock = Clock()
    log = compacted_log((fs, "d/t-0"), clock)
    log.append(keyed_batch([(b"k", b"a" * 100)], producer_id=3, producer_epoch=0, base_sequence=0))
    for i in range(10):
        log.append(keyed_batch([(b"k", b"b%d" % i + b"x" * 100)]))  # supersede the producer's record
    log.update_high_watermark(log.log_end_offset)
    log.compact()
    assert 0 not in [offset for offset, _, _ in contents(log)]  # its record is gone
    for snapshot in log.producer_state.snapshot_offsets():
        fs.unlink(log.producer_state.snapshot_path(snapshot))  # state must come from the log alone
    log = PartitionLog.open(fs, "d/t-0", LogConfig(cleanup_policy="compact", segment_bytes=300), clock=clock,
                            clean_shutdown=False)
    retry = log.append(keyed_batch([(b"k", b"a" * 100)], producer_id=3, producer_epoch=0, base_sequence=0))
    assert (retry.first_offset, retry.last_offset) == (0, 0)  # the emptied batch kept the sequence


