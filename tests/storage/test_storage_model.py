"""Stateful property test: random appends, rolls (tiny segments), high watermark moves,
DeleteRecords, retention by size, truncation, flushes, data syncs (the records without their
indexes, what acks=all waits for), clean reopens and simulated power losses agree with a plain
list-of-batches model of the log (on the memory backend)."""

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from odradek.protocol.records.batch import decode_batch
from odradek.protocol.records.header import read_batch_header
from odradek.storage.config import LogConfig
from odradek.storage.fs import MemoryFileSystem
from odradek.storage.partition_log import PartitionLog

from storage_batches import make_batch

T0 = 1_700_000_000_000
DIRECTORY = "data/topic-0"


class LogModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.fs = MemoryFileSystem()
        # No time retention: retention_by_size is the rule under test (a segment compaction left
        # with emptied batches only has no record timestamp, and the memory backend's mtime is 0).
        self.config = LogConfig(segment_bytes=700, index_interval_bytes=150, segment_index_bytes=64,
                                retention_bytes=-1, retention_ms=-1)
        self.now = T0 + 100_000
        self.log = self._watched(PartitionLog.open(self.fs, DIRECTORY, self.config, clock=lambda: self.now))
        # The model: batches as (base_offset, last_offset, tag), tag = the value of its records.
        self.batches: list[tuple[int, int, bytes]] = []
        # Record indexes (within their batch) still present, for batches compaction thinned.
        self.kept: dict[int, list[int]] = {}
        self.log_start = 0
        self.end = 0
        self.high_watermark = 0
        self.flushed = 0  # the recovery point a restart is given (the last full flush)
        self.synced = 0  # records below are durable (a full flush or a data sync)
        self.counter = 0
        # Compaction removed an idempotent batch (not the producer's last); if a truncation then
        # removes the last one, the sequence the log expects depends on which producer-state
        # snapshots exist (as in Kafka), which this model does not follow: idempotent appends stop.
        self.idempotent_compacted = False
        self.idempotent_history_lost = False
        self.first_dirty = 0  # the cleaner checkpoint of this partition

    def _watched(self, log):
        """The cleaner checkpoint follows truncations, as LogDirectory makes it."""
        def truncated(offset):
            self.first_dirty = min(self.first_dirty, offset)

        log.truncation_listener = truncated
        return log

    # ----------------------------------------------------------------------------- rules
    @rule(records=st.integers(1, 4), size=st.integers(0, 120))
    def append(self, records, size):
        tag = b"%d:" % self.counter + b"p" * size
        self.counter += 1
        result = self.log.append(make_batch([tag] * records, timestamps=[T0 + self.counter] * records))
        assert (result.first_offset, result.last_offset) == (self.end, self.end + records - 1)
        self.batches.append((self.end, self.end + records - 1, tag))
        self.end += records

    def _last_idempotent(self):
        for batch in reversed(self.batches):
            if batch[2].startswith(b"idem"):
                return batch
        return None

    def _forget_idempotent_history_if_cut(self, new_end):
        last = self._last_idempotent()
        if self.idempotent_compacted and last is not None and last[1] >= new_end:
            self.idempotent_history_lost = True

    @precondition(lambda self: not self.idempotent_history_lost)
    @rule(records=st.integers(1, 3))
    def append_idempotent(self, records):
        """One idempotent producer (id 9, epoch 0) whose sequence is its record count so far;
        the model derives the next sequence from the batches it still holds."""
        last = self._last_idempotent()
        sequence = int(last[2].split(b":")[1]) + (last[1] - last[0] + 1) if last else 0
        tag = b"idem:%d:%d" % (sequence, self.counter)
        self.counter += 1
        result = self.log.append(make_batch([tag] * records, producer_id=9, producer_epoch=0,
                                            base_sequence=sequence, timestamps=[T0 + self.counter] * records))
        assert (result.first_offset, result.last_offset) == (self.end, self.end + records - 1)
        self.batches.append((self.end, self.end + records - 1, tag))
        self.end += records

    @precondition(lambda self: not self.idempotent_history_lost and self._last_idempotent() is not None
                  and self._last_idempotent()[0] >= self.log.segments[0].base_offset)
    @rule()
    def retry_last_idempotent(self):
        base, last, tag = self._last_idempotent()
        sequence = int(tag.split(b":")[1])
        records = last - base + 1
        result = self.log.append(make_batch([tag] * records, producer_id=9, producer_epoch=0, base_sequence=sequence,
                                            timestamps=[T0] * records))
        assert (result.first_offset, result.last_offset) == (base, last), "a retry was appended again"
        assert self.log.log_end_offset == self.end

    @rule(data=st.data())
    def move_high_watermark(self, data):
        target = data.draw(st.integers(self.high_watermark, self.end))
        assert self.log.update_high_watermark(target) == target
        self.high_watermark = target

    @rule()
    def flush(self):
        assert self.log.flush() == self.end
        self.flushed = self.synced = self.end

    @rule()
    def sync(self):
        ticket = self.log.prepare_sync()
        assert (ticket is None) == (self.log.durable_offset >= self.end)
        if ticket is not None:
            ticket.sync()
            assert self.log.complete_sync(ticket) == self.end
        self.synced = self.end

    @rule()
    def roll(self):
        self.log.roll()

    @rule(data=st.data())
    def delete_records(self, data):
        target = data.draw(st.integers(self.log_start, self.high_watermark))
        assert self.log.delete_records_before(target) == max(target, self.log_start)
        self.log_start = max(target, self.log_start)

    @rule(limit=st.integers(0, 2000))
    def retention_by_size(self, limit):
        old_start = self.log_start
        size_before = self.log.size_in_bytes
        self.log.config = self.config = LogConfig(**{**self.config.__dict__, "retention_bytes": limit})
        self.log.delete_old_segments()
        self.log.config = self.config = LogConfig(**{**self.config.__dict__, "retention_bytes": -1})
        new_start = self.log.log_start_offset
        assert new_start >= old_start and new_start <= max(self.high_watermark, old_start)
        if new_start != old_start:
            # Whole segments went: the new start is not inside a batch, the log not below the limit.
            assert not any(b[0] < new_start <= b[1] for b in self.batches)
            assert self.log.size_in_bytes >= min(limit, size_before) or new_start == self.end
        self.log_start = new_start

    @rule(data=st.data())
    def truncate(self, data):
        boundaries = sorted({b[0] for b in self.batches if b[0] >= self.log_start} | {self.end})
        target = data.draw(st.sampled_from(boundaries))
        assert self.log.truncate_to(target) == target
        self._forget_idempotent_history_if_cut(target)
        self.batches = [b for b in self.batches if b[1] < target]
        # A cut that leaves nothing readable (compaction emptied what stayed) restarts the log there.
        new_start = self.log.log_start_offset
        assert new_start == self.log_start or (new_start == target and not any(
            b[1] >= self.log_start for b in self.batches))
        self.log_start = new_start
        self.kept = {base: kept for base, kept in self.kept.items() if base < target}
        self.end = target
        self.high_watermark = min(self.high_watermark, target)
        self.flushed = min(self.flushed, target)
        self.synced = min(self.synced, target)

    @rule()
    def reopen_clean(self):
        self.log.close()
        self.log = self._watched(PartitionLog.open(self.fs, DIRECTORY, self.config, clock=lambda: self.now,
                                     recovery_point=self.end, log_start_offset=self.log_start,
                                     high_watermark=self.high_watermark, clean_shutdown=True))
        self.flushed = self.synced = self.end

    @rule(seed=st.integers(0, 2**32 - 1), torn=st.booleans())
    def power_loss(self, seed, torn):
        # Offsets checkpointed at the last flush are what a real restart would read.
        self.fs.crash(random.Random(seed) if torn else None)
        self.log = self._watched(PartitionLog.open(self.fs, DIRECTORY, self.config, clock=lambda: self.now,
                                     recovery_point=self.flushed, log_start_offset=self.log_start,
                                     high_watermark=self.high_watermark, clean_shutdown=False))
        new_end = self.log.log_end_offset
        assert new_end >= self.synced, "lost synced records"
        assert new_end <= self.end
        # Whole batches survive; a log that lost everything from its start restarts there.
        assert new_end == self.log_start or not any(b[0] < new_end <= b[1] for b in self.batches), "partial batch"
        self._forget_idempotent_history_if_cut(new_end)
        self.batches = [b for b in self.batches if b[1] < new_end]
        self.kept = {base: kept for base, kept in self.kept.items() if base < new_end}
        self.end = new_end
        self.high_watermark = min(self.high_watermark, new_end)
        self.flushed = self.synced = new_end

    @rule(data=st.data(), max_bytes=st.integers(0, 1500), min_one=st.booleans())
    def read_some(self, data, max_bytes, min_one):
        visible = [b for b in self.batches if b[1] >= self.log_start and b[1] < self.high_watermark]
        if not visible:
            return
        start = data.draw(st.integers(self.log_start, visible[-1][1]))
        result = self.log.read(start, max_bytes, min_one_batch=min_one).read_bytes()
        position, seen = 0, []
        while position < len(result):
            header = read_batch_header(result, position)
            seen.append((header.base_offset, header.last_offset, header.size_in_bytes))
            position += header.size_in_bytes
        assert position == len(result)  # whole batches only
        wanted = [b for b in visible if b[1] >= start]
        assert [s[:2] for s in seen] == [(b[0], b[1]) for b in wanted[: len(seen)]]
        if seen:
            assert sum(s[2] for s in seen) <= max_bytes or (min_one and len(seen) == 1)
        else:
            assert not min_one
        if len(seen) < len(wanted) and (seen or not min_one):
            # Stopped early only for want of room: the next batch would not have fitted
            # (segments end a read region; the next read continues from there).
            next_size = self.log.read(max(wanted[len(seen)][0], self.log_start), 1).size
            assert sum(s[2] for s in seen) + next_size > max_bytes

    @rule(advance_high_watermark=st.booleans(), incremental=st.booleans())
    def compact(self, advance_high_watermark, incremental):
        """Compaction keeps the last record of each key (keys are k0, k1, ... by position in
        the batch) among the cleanable segments; offsets do not move; a batch compaction
        empties may go, except the idempotent producer's last one. ``incremental``: from the
        first dirty offset the previous clean reached, as the cleaner manager does (lowered
        by truncations), which must come to the same."""
        log = self.log
        if advance_high_watermark:  # as a single node does once appends are durable
            self.high_watermark = log.update_high_watermark(self.end)
        log.config = self.config = LogConfig(**{**self.config.__dict__, "cleanup_policy": "compact"})
        try:
            count = 0
            for index in range(len(log.segments) - 1):
                if log.segments[index + 1].base_offset > log.high_watermark:
                    break
                count += 1
            boundary = log.segments[count].base_offset
            first_present = log.segments[0].base_offset
            stats = log.compact(first_dirty_offset=self.first_dirty if incremental else None)
            self.first_dirty = stats.next_dirty_offset
        finally:
            log.config = self.config = LogConfig(**{**self.config.__dict__, "cleanup_policy": "delete"})
        cleanable = [b for b in self.batches if b[0] >= first_present and b[1] < boundary]
        records_of = {base: self.kept.get(base, list(range(last - base + 1))) for base, last, _ in cleanable}
        latest = {}
        # Records below the log start are not read (nor mapped); their batches are not checked.
        for base, last, _ in cleanable:
            if last < self.log_start:
                continue
            for i in records_of[base]:
                latest[b"k%d" % i] = base + i
        expected = {base: [i for i in records_of[base] if latest.get(b"k%d" % i, base + i) <= base + i]
                    for base in records_of}
        last_idempotent = self._last_idempotent()
        # What the log holds now below the boundary, batch by batch: (base, last) -> kept indexes.
        found = {}
        for segment in log.segments:
            for info in segment.batches():
                if info.header.base_offset >= boundary:
                    break
                batch = decode_batch(segment.log.pread(info.size, info.position), 0, max_decompressed_size=1 << 20)
                found[(batch.base_offset, batch.last_offset)] = [r.offset_delta for r in batch.records]
        assert set(found) <= {(b[0], b[1]) for b in cleanable}, "compaction moved offsets"
        for base, last, tag in cleanable:
            if (base, last) not in found:
                assert (base, last, tag) != last_idempotent, "the producer's last batch went"
                self.idempotent_compacted |= tag.startswith(b"idem")
            if last < self.log_start:
                self.kept[base] = found.get((base, last), [])
            elif (base, last) in found:
                assert found[(base, last)] == expected[base]
                self.kept[base] = expected[base]
            else:
                assert not expected[base], "a record that is the last of its key went"
        self.batches = [b for b in self.batches if b not in cleanable or (b[0], b[1]) in found]

    # ------------------------------------------------------------------------ invariants
    @invariant()
    def offsets_agree(self):
        log = self.log
        assert (log.log_start_offset, log.log_end_offset, log.high_watermark) == (
            self.log_start, self.end, self.high_watermark)
        assert log.durable_offset >= self.synced >= self.flushed

    @invariant()
    def contents_agree(self):
        visible = [b for b in self.batches if b[1] >= self.log_start and b[1] < self.high_watermark]
        if self.log_start >= self.high_watermark:
            assert self.log.read(self.log_start, 10**6).regions == []
            return
        data = self.log.read(self.log_start, 10**6).read_bytes()
        position, seen = 0, []
        while position < len(data):
            header = read_batch_header(data, position)
            tag = data[position + 61 + 8 : position + header.size_in_bytes]  # first record's value onwards
            seen.append((header.base_offset, header.last_offset))
            position += header.size_in_bytes
        assert seen == [(b[0], b[1]) for b in visible]
        # Every visible offset is found through the index, in the right batch with its content.
        for base, last, tag in visible[-3:]:
            batch = self.log.read(last, 1).read_bytes()
            header = read_batch_header(batch)
            assert header.base_offset == base and header.last_offset == last
            assert (tag in batch) == bool(self.kept.get(base, True))
        for segment in self.log.segments:
            segment.check_indexes()


LogModel.TestCase.settings = settings(stateful_step_count=30, deadline=None)
test_log_agrees_with_model = LogModel.TestCase
