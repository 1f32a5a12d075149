"""Log compaction: last record per key kept, offsets unchanged, tombstones expire, producer
state preserved, crash-safe segment swap."""

import pytest

from odradek.protocol.records.batch import decode_batch
from odradek.storage.cleaner import CLEANED_SUFFIX, SWAP_SUFFIX
from odradek.storage.config import LogConfig
from odradek.storage.fs import MemoryFileSystem, OsFileSystem
from odradek.storage.partition_log import PartitionLog

from storage_batches import encode_record

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
    for offset, _key, value in after:  # every kept record is found by offset
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
    for _i in range(8):
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


def test_records_without_a_key_go_as_in_kafkas_cleaner(backend):
    fs, directory = backend
    clock = Clock()
    log = PartitionLog.open(fs, directory, LogConfig(segment_bytes=300), clock=clock)  # delete: keyless allowed
    log.append(keyed_batch([(None, b"no key"), (b"k", b"a")]))
    for _i in range(6):
        log.append(keyed_batch([(b"other", b"x" * 100)]))
    log.config = LogConfig(cleanup_policy="compact", segment_bytes=300)  # the topic switched to compact
    log.update_high_watermark(log.log_end_offset)
    log.compact()
    assert [(offset, key) for offset, key, _ in contents(log) if offset < 2] == [(1, b"k")]


def test_delete_policy_is_not_compacted(backend):
    fs, directory = backend
    log = PartitionLog.open(fs, directory, LogConfig(segment_bytes=300), clock=Clock())
    for _i in range(12):
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




# ----------------------------------------------------------------------------- crash safety
class SimulatedCrash(BaseException):
    """Power lost in the middle of a clean (BaseException: nothing on the way may catch it)."""


class CrashingFileSystem(MemoryFileSystem):
    """Fails (as a power loss) at the ``crash_at``-th rename or unlink once armed."""

    def __init__(self):
        super().__init__()
        self.crash_at = None
        self.operations = 0

    def _step(self):
        if self.crash_at is not None:
            self.operations += 1
            if self.operations == self.crash_at:
                raise SimulatedCrash()

    def rename(self, source, target):
        self._step()
        super().rename(source, target)

    def unlink(self, path):
        self._step()
        super().unlink(path)


def _log_to_clean(fs, clock):
    log = compacted_log((fs, "d/t-0"), clock)
    for i in range(40):
        log.append(keyed_batch([(b"k%d" % (i % 3), b"v%d" % i + b"x" * 80)]))
    log.update_high_watermark(log.log_end_offset)
    log.flush()
    return log


def test_a_clean_interrupted_at_any_step_leaves_the_original_or_the_cleaned_log():
    clock = Clock()
    reference = _log_to_clean(MemoryFileSystem(), clock)
    before = contents(reference)
    reference.compact()
    after = contents(reference)
    assert after != before
    outcomes, stages, crash_at = set(), set(), 1
    while True:
        fs = CrashingFileSystem()
        log = _log_to_clean(fs, clock)
        fs.crash_at = crash_at
        try:
            log.compact()
        except SimulatedCrash:
            names = fs.listdir("d/t-0")
            stages.add((any(n.endswith(CLEANED_SUFFIX) for n in names), any(n.endswith(SWAP_SUFFIX) for n in names),
                        "00000000000000000000.log" in names))
        else:
            break  # the clean went through without reaching this step: every step was covered
        fs.crash_at = None
        fs.crash()
        reopened = PartitionLog.open(fs, "d/t-0", LogConfig(cleanup_policy="compact", segment_bytes=300), clock=clock,
                                     clean_shutdown=False, high_watermark=10**6)
        assert not any(name.endswith((CLEANED_SUFFIX, SWAP_SUFFIX)) for name in fs.listdir("d/t-0"))
        found = contents(reopened)
        # Group by group the log is either as it was or as cleaned; never anything else.
        assert set(found) <= set(before) and set(after) <= set(found), f"lost data crashing at step {crash_at}"
        assert reopened.log_end_offset == reference.log_end_offset
        for segment in reopened.segments:
            segment.check_indexes()
        outcomes.add("original" if found == before else "cleaned" if found == after else "partly")
        # A reopened log cleans to the same result.
        reopened.compact()
        assert contents(reopened) == after
        crash_at += 1
    assert {"original", "cleaned"} <= outcomes
    # Crashes hit: .cleaned written (old segment present), .swap renamed with the old segment
    # still there, and the old segment deleted before the .swap took its name.
    assert (True, False, True) in stages or (False, True, True) in stages
    assert (False, True, True) in stages and (False, True, False) in stages


# ------------------------------------------------------------------- choosing what to clean
def test_the_manager_cleans_by_dirty_ratio_and_max_lag_and_checkpoints_where_it_stopped():
    from odradek.storage.cleaner import cleanable_offsets
    from odradek.storage.cleaner_manager import LogCleanerManager
    from odradek.storage.checkpoints import read_offset_checkpoint
    from odradek.storage.log_directory import CLEANER_OFFSET_CHECKPOINT, LogDirectory

    fs, clock = MemoryFileSystem(), Clock()
    config = LogConfig(cleanup_policy="compact", segment_bytes=300, min_cleanable_dirty_ratio=0.5)
    directory = LogDirectory.open("data", node_id=1, fs=fs, clock=clock)
    log = directory.create_log("t", 0, config=config)
    plain = directory.create_log("plain", 0, config=LogConfig(segment_bytes=300))
    for i in range(30):
        log.append(keyed_batch([(b"k%d" % (i % 3), b"v%d" % i + b"x" * 80)]))
        plain.append(keyed_batch([(b"k", b"x" * 80)]))
    for each in (log, plain):
        each.update_high_watermark(each.log_end_offset)
    manager = LogCleanerManager([directory], clock)
    stats = manager.clean_filthiest_now()
    assert stats is not None and stats.records_removed > 0
    assert stats.next_dirty_offset == log.active_segment.base_offset
    checkpoint = read_offset_checkpoint(fs, f"data/{CLEANER_OFFSET_CHECKPOINT}")
    assert checkpoint == {("t", 0): stats.next_dirty_offset}  # the delete-policy topic is not cleaned
    assert manager.clean_filthiest_now() is None  # nothing dirty any more

    # A little new data: dirty ratio below 0.5 is left alone...
    clean_size = log.size_in_bytes - log.active_segment.size
    while log.active_segment.base_offset == stats.next_dirty_offset:
        log.append(keyed_batch([(b"k1", b"new" + b"y" * 80)], timestamp=clock.now))
    log.update_high_watermark(log.log_end_offset)
    to_clean = cleanable_offsets(log, stats.next_dirty_offset, clock())
    assert to_clean.first_dirty_offset == stats.next_dirty_offset
    assert 0 < to_clean.cleanable_bytes and to_clean.clean_bytes == clean_size
    assert to_clean.cleanable_ratio <= 0.5 and manager.logs_to_clean(clock()) == []
    assert manager.clean_filthiest_now() is None
    # ... until its oldest dirty record is older than max.compaction.lag.ms.
    log.config = LogConfig(**{**config.__dict__, "min_cleanable_dirty_ratio": 1.0, "max_compaction_lag_ms": 5000})
    assert manager.clean_filthiest_now() is None  # the oldest dirty record (T0) is 1 s old
    clock.now += 10_000
    assert manager.clean_filthiest_now() is not None
    assert directory.cleaner_offsets[("t", 0)] == log.active_segment.base_offset
    expected = directory.cleaner_offsets[("t", 0)]
    directory.close()
    reopened = LogDirectory.open("data", node_id=1, fs=fs, clock=clock)
    assert reopened.cleaner_offsets == {("t", 0): expected}
    reopened.close()


def test_compact_and_delete_both_apply():
    from odradek.storage.cleaner import cleanable_offsets

    fs, clock = MemoryFileSystem(), Clock()
    config = LogConfig(cleanup_policy="compact,delete", segment_bytes=300, retention_ms=10_000)
    log = PartitionLog.open(fs, "d/t-0", config, clock=clock)
    for i in range(10):
        log.append(keyed_batch([(b"k%d" % (i % 2), b"old%d" % i + b"x" * 90)], timestamp=T0))
    for i in range(10):
        log.append(keyed_batch([(b"k%d" % (i % 2), b"new%d" % i + b"x" * 90)], timestamp=T0 + 50_000))
    log.update_high_watermark(log.log_end_offset)
    stats = log.compact()
    assert stats.records_removed > 0
    kept = contents(log)
    assert not any(value.startswith(b"old") for _, _, value in kept)  # superseded by the new ones
    clock.now = T0 + 55_000  # the first segments' records are past retention.ms
    assert log.delete_old_segments() > 0 and log.log_start_offset > 0
    # The checkpointed first dirty offset fell below the new log start: it restarts there.
    assert cleanable_offsets(log, 0, clock()).first_dirty_offset == log.log_start_offset
    assert [r for r in contents(log) if r[0] >= log.log_start_offset] == [r for r in kept if r[0] >= log.log_start_offset]


def test_a_full_offset_map_cleans_in_rounds_to_the_same_result():
    from odradek.storage.cleaner import MAP_ENTRY_OVERHEAD, LogClean, cleanable_offsets

    def build():
        log = compacted_log((MemoryFileSystem(), "d/t-0"), Clock())
        for i in range(90):
            log.append(keyed_batch([(b"key%02d" % (i % 30), b"v%d" % i + b"x" * 60)]))
        log.update_high_watermark(log.log_end_offset)
        return log

    reference = build()
    reference.compact()
    expected = contents(reference)
    log = build()
    budget = 4 * (len(b"key00") + MAP_ENTRY_OVERHEAD)  # four keys a round
    first_dirty, rounds = None, 0
    while True:
        to_clean = cleanable_offsets(log, first_dirty, log.clock())
        if to_clean.cleanable_bytes == 0:
            break
        clean = LogClean(log, to_clean, log.clock(), max_map_bytes=budget)
        stats = clean.run()
        assert to_clean.first_dirty_offset < stats.next_dirty_offset <= to_clean.first_uncleanable_offset
        found = contents(log)
        # Never a record that is the last of its key (below the end of this round's map) lost.
        for key in {k for _, k, _ in expected}:
            last = max(o for o, k, _ in contents(reference) if k == key)
            assert any(o == last for o, _, _ in found) or last >= stats.next_dirty_offset
        first_dirty, rounds = stats.next_dirty_offset, rounds + 1
    assert rounds > 3
    assert contents(log) == expected


def test_a_clean_yields_every_step_bytes_and_stops_if_its_segments_go():
    from odradek.storage import cleaner

    log = PartitionLog.open(MemoryFileSystem(), "d/t-0", LogConfig(cleanup_policy="compact", segment_bytes=64 * 1024),
                            clock=Clock())
    big = b"x" * 4000
    for i in range(1000):  # ~4 MiB in ~64 segments
        log.append(keyed_batch([(b"k%d" % (i % 50), big)]))
    log.update_high_watermark(log.log_end_offset)
    clean = cleaner.LogClean(log, cleaner.cleanable_offsets(log, None, log.clock()), log.clock())
    steps = sum(1 for _ in clean.steps())
    read = clean.stats.map_bytes_read + clean.stats.bytes_read
    # Never more than STEP_BYTES (plus the batch that crossed it) between two yields.
    assert steps >= read // (cleaner.STEP_BYTES + 4100)
    assert contents(log)  # and the clean went through

    # A log whose segments are deleted between two steps: the clean stops, nothing swapped.
    log2 = PartitionLog.open(MemoryFileSystem(), "d/t-1", LogConfig(cleanup_policy="compact", segment_bytes=64 * 1024),
                             clock=Clock())
    for i in range(1000):
        log2.append(keyed_batch([(b"k%d" % (i % 50), big)]))
    log2.update_high_watermark(log2.log_end_offset)
    before = contents(log2)
    running = cleaner.LogClean(log2, cleaner.cleanable_offsets(log2, None, log2.clock()), log2.clock()).steps()
    next(running)
    log2.delete_records_before(log2.segments[2].base_offset)  # retention/DeleteRecords meanwhile
    with pytest.raises(cleaner.CleaningAborted):
        for _ in running:
            pass
    assert not any(name.endswith((CLEANED_SUFFIX, SWAP_SUFFIX)) for name in log2.fs.listdir("d/t-1"))
    assert contents(log2) == [r for r in before if r[0] >= log2.log_start_offset]


# ----------------------------------------------------------------------------- transactions
def test_aborted_transactions_go_and_their_markers_after_the_delete_horizon():
    from odradek.protocol.records.batch import build_end_txn_marker_batch
    from odradek.storage.txn_index import AbortedTxn
    from odradek.storage.validation import ORIGIN_COORDINATOR

    clock = Clock()
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, "d/t-0", LogConfig(cleanup_policy="compact", segment_bytes=400, delete_retention_ms=5000),
                            clock=clock)
    producer_a, producer_b = dict(producer_id=100, producer_epoch=0), dict(producer_id=200, producer_epoch=0)

    def txn_batch(pairs, producer, sequence):
        batch = bytearray(keyed_batch(pairs, timestamp=clock.now, base_sequence=sequence, **producer))
        batch[22] |= 0x10  # the transactional attribute bit (attributes int16 at 21..22)
        import crc32c
        import struct
        struct.pack_into(">I", batch, 17, crc32c.crc32c(bytes(batch[21:])))
        return bytes(batch)

    def marker(commit, producer):
        return build_end_txn_marker_batch(commit, coordinator_epoch=0, timestamp=clock.now, **producer)

    log.append(keyed_batch([(b"k3", b"kept"), (b"k9", b"old")], timestamp=clock.now))          # 0-1
    aborted = log.append(txn_batch([(b"k3", b"aborted"), (b"k4", b"aborted")], producer_a, 0))  # 2-3
    abort_marker = log.append(marker(False, producer_a), origin=ORIGIN_COORDINATOR)             # 4
    # The ABORT wrote its .txnindex entry: no other open transaction, so the LSO is past it.
    assert log.segments[-1].txn_index.entries() == [AbortedTxn(100, aborted.first_offset, abort_marker.first_offset, 5)]
    committed = log.append(txn_batch([(b"k9", b"a-committed")], producer_a, 2))                  # 5
    log.append(marker(True, producer_a), origin=ORIGIN_COORDINATOR)                              # 6
    log.append(txn_batch([(b"k1", b"b-committed")], producer_b, 0))                              # 7
    log.append(marker(True, producer_b), origin=ORIGIN_COORDINATOR)                              # 8
    for i in range(12):
        log.append(keyed_batch([(b"k1", b"plain%d" % i + b"z" * 60)], timestamp=clock.now))      # 9-20
    log.roll()
    log.update_high_watermark(log.log_end_offset)
    def offsets():
        return [offset for offset, _, _ in contents(log)]
    def values():
        return {key: value for _, key, value in contents(log)}

    log.compact()
    found = values()
    assert found[b"k3"] == b"kept"  # an aborted record supersedes nothing
    assert b"k4" not in found and aborted.first_offset not in offsets()  # aborted data gone
    assert found[b"k9"] == b"a-committed" and 1 not in offsets()  # a committed one does
    assert abort_marker.first_offset in offsets()  # its transaction had data this round
    assert [(t.producer_id, t.first_offset) for t in log.aborted_transactions(0, log.log_end_offset)] == [(100, 2)]

    # (Cleans of the whole log again: a real cleaner gets there with new dirty data.)
    log.compact()  # no aborted data left: the marker gets a delete horizon, its index entry goes
    assert abort_marker.first_offset in offsets() and log.aborted_transactions(0, log.log_end_offset) == []
    clock.now += 6000
    log.compact()
    assert abort_marker.first_offset not in offsets()
    # Producer B's only batch is superseded (k1) but stays, empty, with its sequence; its COMMIT too.
    b_batches = [info.header for s in log.segments for info in s.batches() if info.header.producer_id == 200]
    assert [(h.base_offset, h.records_count, h.is_control) for h in b_batches] == [(7, 0, False), (8, 1, True)]
    assert committed.first_offset in offsets()
    log.close()
    reopened = PartitionLog.open(fs, "d/t-0", LogConfig(cleanup_policy="compact", segment_bytes=400), clock=clock,
                                 clean_shutdown=False)
    assert reopened.producer_state.producers[200].last_sequence == 0


def test_an_aborted_transaction_whose_marker_is_in_a_later_segment_is_found_and_cleaned():
    from odradek.protocol.records.batch import build_end_txn_marker_batch
    from odradek.storage.txn_index import AbortedTxn
    from odradek.storage.validation import ORIGIN_COORDINATOR

    import struct

    import crc32c

    log = compacted_log((MemoryFileSystem(), "d/t-0"), Clock())
    log.append(keyed_batch([(b"k", b"committed before")]))
    data = bytearray(keyed_batch([(b"k", b"aborted")], producer_id=5, producer_epoch=0, base_sequence=0))
    data[22] |= 0x10  # transactional
    struct.pack_into(">I", data, 17, crc32c.crc32c(bytes(data[21:])))
    aborted = log.append(bytes(data))
    log.roll()
    abort = log.append(build_end_txn_marker_batch(False, producer_id=5, producer_epoch=0, coordinator_epoch=0,
                                                  timestamp=T0), origin=ORIGIN_COORDINATOR)
    assert log.active_segment.txn_index.entries() == [
        AbortedTxn(5, aborted.first_offset, abort.first_offset, abort.last_offset + 1)]
    for _i in range(6):
        log.append(keyed_batch([(b"other", b"y" * 100)]))
    log.update_high_watermark(log.log_end_offset)
    # The entry lives in the marker's segment, past the range asked about.
    assert [t.first_offset for t in log.aborted_transactions(aborted.first_offset, aborted.last_offset + 1)] == [1]
    log.compact()
    assert [(key, value) for _, key, value in contents(log) if key == b"k"] == [(b"k", b"committed before")]


def test_a_truncation_below_the_cleaner_checkpoint_lowers_it_on_disk():
    from odradek.storage.checkpoints import read_offset_checkpoint
    from odradek.storage.cleaner_manager import LogCleanerManager
    from odradek.storage.log_directory import CLEANER_OFFSET_CHECKPOINT, LogDirectory

    fs, clock = MemoryFileSystem(), Clock()
    directory = LogDirectory.open("data", node_id=1, fs=fs, clock=clock)
    log = directory.create_log("t", 0, config=LogConfig(cleanup_policy="compact", segment_bytes=300))
    for i in range(20):
        log.append(keyed_batch([(b"k%d" % (i % 2), b"v" * 100)]))
    log.update_high_watermark(log.log_end_offset)
    stats = LogCleanerManager([directory], clock).clean_filthiest_now()
    assert stats.next_dirty_offset > 5
    log.truncate_to(5)  # e.g. a follower's divergent tail, later
    assert read_offset_checkpoint(fs, f"data/{CLEANER_OFFSET_CHECKPOINT}") == {("t", 0): 5}
    for i in range(20):  # appended after the cut: dirty, so compacted by the next clean
        log.append(keyed_batch([(b"k%d" % (i % 2), b"w" * 100)]))
    log.update_high_watermark(log.log_end_offset)
    LogCleanerManager([directory], clock).clean_filthiest_now()
    below = [key for offset, key, _ in contents(log) if offset < log.active_segment.base_offset]
    assert sorted(below) == sorted(set(below))  # one record per key in the cleaned part
    directory.close()
