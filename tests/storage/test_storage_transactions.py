"""Transactions in the partition log: markers complete transactions, ABORTs write ``.txnindex``
entries with the last stable offset of the moment, the LSO bounds read_committed reads, and a
reopen (from a snapshot, or a recovery that rescans segments) gives back the same index, open
transactions and LSO. Kafka's rules: ProducerAppendInfo.appendEndTxnMarker / appendDataBatch,
ProducerStateManager.lastStableOffset, UnifiedLog.lastStableOffset, LogSegment.recover."""

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from odradek.protocol.records.batch import build_end_txn_marker_batch, decode_batch
from odradek.protocol.records.header import TRANSACTIONAL_MASK, patch_base_offset, read_batch_header
from odradek.storage.config import LogConfig
from odradek.storage.fs import MemoryFileSystem, OsFileSystem
from odradek.storage.partition_log import PartitionLog
from odradek.storage.producer_state import (
    INVALID_TXN_STATE,
    TRANSACTION_COORDINATOR_FENCED,
    InvalidProducerEpoch,
    InvalidTxnState,
    OutOfOrderSequence,
    TransactionCoordinatorFenced,
)
from odradek.storage.segment import TXN_INDEX_SUFFIX
from odradek.storage.txn_index import AbortedTxn
from odradek.storage.validation import ORIGIN_COORDINATOR, ORIGIN_REPLICATION

from storage_batches import make_batch

T0 = 1_700_000_000_000


class Producer:
    """A transactional producer's batches and the coordinator's markers for it."""

    def __init__(self, producer_id: int, epoch: int = 0, coordinator_epoch: int = 0):
        self.producer_id = producer_id
        self.epoch = epoch
        self.coordinator_epoch = coordinator_epoch
        self.sequence = 0

    def batch(self, values, transactional=True) -> bytes:
        data = make_batch(values, producer_id=self.producer_id, producer_epoch=self.epoch,
                          base_sequence=self.sequence, attributes=TRANSACTIONAL_MASK if transactional else 0)
        self.sequence += len(values)
        return data

    def marker(self, commit: bool, *, epoch: int | None = None, coordinator_epoch: int | None = None) -> bytes:
        return build_end_txn_marker_batch(
            commit, producer_id=self.producer_id, producer_epoch=self.epoch if epoch is None else epoch,
            coordinator_epoch=self.coordinator_epoch if coordinator_epoch is None else coordinator_epoch,
            timestamp=T0)


def new_log(fs=None, directory="d/t-0", **config) -> PartitionLog:
    return PartitionLog.open(fs or MemoryFileSystem(), directory, LogConfig(**config), clock=lambda: T0 + 1000)


def end(log, producer: Producer, commit: bool, **kwargs):
    return log.append(producer.marker(commit, **kwargs), origin=ORIGIN_COORDINATOR)


def all_entries(log) -> list[AbortedTxn]:
    return [entry for segment in log.segments for entry in segment.txn_index.entries()]


def values_read(log, offset=0, committed=True):
    """Values a consumer sees from ``offset``: up to the LSO (read_committed, dropping the aborted
    transactions the read lists, as Kafka's consumer does) or the high watermark."""
    upper = log.last_stable_offset if committed else log.high_watermark
    read = log.read(offset, 1 << 20, max_offset=upper, with_aborted_transactions=committed)
    data = read.read_bytes()
    aborted = sorted(read.aborted_transactions or [], key=lambda t: t.first_offset)
    dropping, seen = set(), []
    position = 0
    while position < len(data):
        header = read_batch_header(data, position)
        while aborted and aborted[0].first_offset <= header.base_offset:
            dropping.add(aborted.pop(0).producer_id)
        if header.is_control:
            dropping.discard(header.producer_id)
        elif not (header.is_transactional and header.producer_id in dropping):
            batch = decode_batch(data, position, max_decompressed_size=1 << 20)
            seen.extend(record.value for record in batch.records)
        position += header.size_in_bytes
    return seen


# ------------------------------------------------------------------------------ markers
def test_an_abort_writes_its_entry_and_a_commit_none():
    log = new_log()
    a = Producer(100)
    log.append(make_batch([b"plain"]))                                   # 0
    first = log.append(a.batch([b"a1", b"a2"]))                          # 1-2
    log.append(a.batch([b"a3"]))                                         # 3
    assert log.producer_state.producers[100].current_txn_first_offset == first.first_offset
    abort = end(log, a, commit=False)                                    # 4
    assert all_entries(log) == [AbortedTxn(100, 1, abort.first_offset, abort.first_offset + 1)]
    assert log.producer_state.producers[100].current_txn_first_offset == -1
    log.append(a.batch([b"a4"]))                                         # 5
    end(log, a, commit=True)                                             # 6
    assert all_entries(log) == [AbortedTxn(100, 1, 4, 5)]  # a COMMIT writes none
    log.update_high_watermark(log.log_end_offset)
    assert values_read(log) == [b"plain", b"a4"]
    assert values_read(log, committed=False) == [b"plain", b"a1", b"a2", b"a3", b"a4"]


def test_the_entry_lso_is_the_oldest_other_open_transaction():
    log = new_log()
    a, b = Producer(1), Producer(2)
    log.append(a.batch([b"a"]))                                          # 0
    log.append(b.batch([b"b"]))                                          # 1
    log.append(a.batch([b"a"]))                                          # 2
    end(log, a, commit=False)                                            # 3
    end(log, b, commit=False)                                            # 4
    assert all_entries(log) == [AbortedTxn(1, 0, 3, 1), AbortedTxn(2, 1, 4, 5)]


def test_a_marker_without_an_open_transaction_is_accepted_and_completes_nothing():
    log = new_log()
    a = Producer(7)
    end(log, a, commit=False)
    end(log, a, commit=True)
    assert all_entries(log) == [] and log.first_unstable_offset is None
    assert log.producer_state.producers[7].coordinator_epoch == 0


def test_marker_epochs_are_checked_as_kafka():
    log = new_log()
    a = Producer(9, epoch=3, coordinator_epoch=5)
    log.append(a.batch([b"x"]))                                          # 0
    end(log, a, commit=True)                                             # 1: coordinator epoch 5
    log.append(a.batch([b"y"]))                                          # 2
    with pytest.raises(TransactionCoordinatorFenced) as fenced:
        end(log, a, commit=False, coordinator_epoch=4)
    assert fenced.value.error_code == TRANSACTION_COORDINATOR_FENCED == 52
    with pytest.raises(InvalidProducerEpoch):
        end(log, a, commit=False, epoch=2)
    assert log.log_end_offset == 3 and all_entries(log) == []  # refusals leave the log as it was
    end(log, a, commit=False, coordinator_epoch=6)                       # 3
    assert all_entries(log) == [AbortedTxn(9, 2, 3, 4)]
    assert log.producer_state.producers[9].coordinator_epoch == 6
    # A newer coordinator epoch sticks: the old coordinator is fenced from now on, even for a
    # producer without an open transaction.
    with pytest.raises(TransactionCoordinatorFenced):
        end(log, a, commit=True, coordinator_epoch=5)
    # A marker with a bumped producer epoch (the coordinator's fencing abort) is accepted.
    end(log, a, commit=False, epoch=4, coordinator_epoch=6)
    assert log.producer_state.producers[9].epoch == 4


def test_replicated_markers_are_taken_as_the_leader_wrote_them():
    leader, follower = new_log(), new_log()
    a = Producer(9, epoch=3, coordinator_epoch=5)
    leader.append(a.batch([b"x"]))
    end(leader, a, commit=False)
    follower.append(leader.read(0, 1 << 20, max_offset=leader.log_end_offset).read_bytes(), origin=ORIGIN_REPLICATION)
    assert all_entries(follower) == all_entries(leader) == [AbortedTxn(9, 0, 1, 2)]
    # Older coordinator and producer epochs: Kafka's follower logs them and keeps the batch.
    stale = bytearray(a.marker(False, epoch=1, coordinator_epoch=1))
    patch_base_offset(stale, 0, follower.log_end_offset)
    follower.append(stale, origin=ORIGIN_REPLICATION)
    assert follower.log_end_offset == 3 and follower.producer_state.producers[9].coordinator_epoch == 1


def test_a_non_transactional_batch_inside_a_transaction_is_refused():
    log = new_log()
    a = Producer(3)
    log.append(a.batch([b"t"]))
    with pytest.raises(InvalidTxnState) as refused:
        log.append(a.batch([b"plain"], transactional=False))
    assert refused.value.error_code == INVALID_TXN_STATE == 48
    a.sequence -= 1
    end(log, a, commit=True)
    log.append(a.batch([b"plain"], transactional=False))  # between transactions it is fine


def test_a_marker_and_data_in_one_replicated_append():
    leader = new_log()
    a, b = Producer(1), Producer(2)
    leader.append(a.batch([b"a"]))
    leader.append(b.batch([b"b"]))
    end(leader, a, commit=False)
    end(leader, b, commit=True)
    follower = new_log()
    follower.append(leader.read(0, 1 << 20, max_offset=leader.log_end_offset).read_bytes(), origin=ORIGIN_REPLICATION)
    assert all_entries(follower) == all_entries(leader) == [AbortedTxn(1, 0, 2, 1)]


# ------------------------------------------------------------------------------ the LSO
def test_the_lso_is_the_oldest_open_transaction_bounded_by_the_high_watermark():
    log = new_log()
    a, b = Producer(1), Producer(2)
    log.append(make_batch([b"p0", b"p1"]))                               # 0-1
    log.update_high_watermark(1)
    assert log.last_stable_offset == 1  # nothing open: the high watermark
    log.append(a.batch([b"a"]))                                          # 2
    log.append(b.batch([b"b"]))                                          # 3
    log.update_high_watermark(log.log_end_offset)
    assert (log.first_unstable_offset, log.last_stable_offset) == (2, 2)
    end(log, a, commit=True)                                             # 4
    log.update_high_watermark(log.log_end_offset)
    assert log.last_stable_offset == 3  # B still open
    assert values_read(log) == [b"p0", b"p1", b"a"]  # read_committed stops at the LSO
    assert values_read(log, committed=False) == [b"p0", b"p1", b"a", b"b"]
    end(log, b, commit=False)                                            # 5
    # The marker is at 5, not below the high watermark (5) yet: B stays unstable (Kafka's
    # unreplicatedTxns) until the high watermark passes it.
    assert log.first_unstable_offset == 3 and log.last_stable_offset == 3
    log.update_high_watermark(log.log_end_offset)
    assert log.first_unstable_offset is None and log.last_stable_offset == log.high_watermark == 6
    assert values_read(log) == [b"p0", b"p1", b"a"]


def test_read_committed_lists_the_aborted_transactions_of_what_it_returns():
    log = new_log(segment_bytes=400)
    a = Producer(5)
    aborted_ranges = []
    for round_number in range(6):
        first = log.append(a.batch([b"r%d" % round_number] * 3))
        abort = end(log, a, commit=round_number % 2 == 1)
        if round_number % 2 == 0:
            aborted_ranges.append((first.first_offset, abort.first_offset))
        log.append(make_batch([b"plain%d" % round_number]))
    log.update_high_watermark(log.log_end_offset)
    assert len(log.segments) > 2
    everything = [(t.first_offset, t.last_offset) for t in log.aborted_transactions(0, log.log_end_offset)]
    assert everything == aborted_ranges
    # A small read returns one batch: only the transactions overlapping it are listed.
    read = log.read(0, 1, max_offset=log.last_stable_offset, with_aborted_transactions=True)
    assert [(t.first_offset, t.last_offset) for t in read.aborted_transactions] == aborted_ranges[:1]
    second = aborted_ranges[1][0]
    read = log.read(second, 1, max_offset=log.last_stable_offset, with_aborted_transactions=True)
    assert [(t.first_offset, t.last_offset) for t in read.aborted_transactions] == aborted_ranges[1:2]
    assert log.read(0, 1 << 20, max_offset=log.last_stable_offset).aborted_transactions is None
    assert [v for v in values_read(log) if v.startswith(b"r")] == [b"r1"] * 3 + [b"r3"] * 3 + [b"r5"] * 3


# ----------------------------------------------------------------------------- reopening
def _transactional_log(fs, directory, segment_bytes=350):
    """Three producers interleaving transactions over several segments; B's last one stays
    open. Returns the log."""
    log = new_log(fs, directory, segment_bytes=segment_bytes)
    a, b, c = Producer(10), Producer(20), Producer(30)
    for n in range(5):
        log.append(a.batch([b"a%d" % n] * 2))
        log.append(b.batch([b"b%d" % n]))
        log.append(make_batch([b"plain%d" % n]))
        end(log, a, commit=n % 2 == 0)
        log.append(c.batch([b"c%d" % n]))
        end(log, c, commit=False)
        if n < 4:
            end(log, b, commit=n % 3 == 0)
    log.update_high_watermark(log.log_end_offset)
    assert len(log.segments) >= 3
    return log


@pytest.mark.parametrize("backend", ["memory", "os"])
def test_recovery_rebuilds_lost_transaction_indexes(backend, tmp_path):
    fs = MemoryFileSystem() if backend == "memory" else OsFileSystem()
    directory = "d/t-0" if backend == "memory" else str(tmp_path / "t-0")
    log = _transactional_log(fs, directory)
    entries, lso, open_txn = all_entries(log), log.last_stable_offset, log.producer_state.ongoing_txns.copy()
    seen = values_read(log)
    per_segment = {segment.base_offset: segment.txn_index.entries() for segment in log.segments}
    assert len([e for e in entries if e.producer_id == 30]) == 5 and lso < log.log_end_offset
    log.flush()
    for segment in log.segments:
        segment.close()  # an unclean stop: no snapshot at the end, no checkpoint
    for name in fs.listdir(directory):
        if name.endswith(TXN_INDEX_SUFFIX) or name.endswith(".snapshot"):
            fs.unlink(f"{directory}/{name}")
    reopened = PartitionLog.open(fs, directory, LogConfig(segment_bytes=350), clock=lambda: T0,
                                 clean_shutdown=False, recovery_point=0, high_watermark=log.high_watermark)
    assert {s.base_offset: s.txn_index.entries() for s in reopened.segments} == per_segment
    assert reopened.producer_state.ongoing_txns == open_txn
    assert reopened.last_stable_offset == lso
    assert values_read(reopened) == seen


def test_recovery_from_the_recovery_point_uses_an_older_snapshot_and_keeps_earlier_indexes():
    fs = MemoryFileSystem()
    log = _transactional_log(fs, "d/t-0")
    per_segment = {segment.base_offset: segment.txn_index.entries() for segment in log.segments}
    lso = log.last_stable_offset
    log.flush()
    recovery_point = log.segments[-2].base_offset + 1  # rescan the last two segments
    for segment in log.segments[-2:]:
        fs.unlink(segment.txn_index.path)
    reopened = PartitionLog.open(fs, "d/t-0", LogConfig(segment_bytes=350), clock=lambda: T0, clean_shutdown=False,
                                 recovery_point=recovery_point, high_watermark=log.high_watermark)
    assert {s.base_offset: s.txn_index.entries() for s in reopened.segments} == per_segment
    assert reopened.last_stable_offset == lso


def test_a_power_loss_keeps_the_index_entries_of_the_markers_that_survived():
    fs = MemoryFileSystem()
    log = _transactional_log(fs, "d/t-0")
    log.flush()
    a = Producer(10)
    a.sequence = 10
    log.append(a.batch([b"late"]))
    end(log, a, commit=False)  # not flushed: lost in the crash, with its entry
    before = all_entries(log)
    fs.crash()
    reopened = PartitionLog.open(fs, "d/t-0", LogConfig(segment_bytes=350), clock=lambda: T0, clean_shutdown=False,
                                 recovery_point=0, high_watermark=log.high_watermark)
    assert all_entries(reopened) == [e for e in before if e.last_offset < reopened.log_end_offset]
    assert reopened.log_end_offset < log.log_end_offset


def test_a_clean_reopen_keeps_open_transactions_and_the_lso_from_the_snapshot():
    fs = MemoryFileSystem()
    log = _transactional_log(fs, "d/t-0")
    lso, entries = log.last_stable_offset, all_entries(log)
    open_first = log.producer_state.producers[20].current_txn_first_offset
    assert lso == open_first
    log.close()
    reopened = PartitionLog.open(fs, "d/t-0", LogConfig(segment_bytes=350), clock=lambda: T0,
                                 high_watermark=log.high_watermark)
    assert reopened.producer_state.map_end_offset == reopened.log_end_offset
    assert reopened.last_stable_offset == lso and all_entries(reopened) == entries
    b = Producer(20)
    abort = end(reopened, b, commit=False)
    assert all_entries(reopened)[-1] == AbortedTxn(20, open_first, abort.first_offset, abort.first_offset + 1)
    reopened.update_high_watermark(reopened.log_end_offset)
    assert reopened.last_stable_offset == reopened.log_end_offset


def test_truncation_below_a_marker_reopens_its_transaction():
    log = new_log()
    a = Producer(1)
    log.append(a.batch([b"x"]))
    abort = end(log, a, commit=False)
    log.truncate_to(abort.first_offset)
    assert all_entries(log) == [] and log.first_unstable_offset == 0
    log.update_high_watermark(log.log_end_offset)
    assert log.last_stable_offset == 0


# ----------------------------------------------------------------------- property test
class TransactionModel(RuleBasedStateMachine):
    """Random begin/append/commit/abort by three producers, plain appends, rolls, reopens (clean,
    unclean with the transaction indexes deleted) and power losses (torn tails); the log's LSO,
    open transactions, aborted transactions and read_committed view agree with a plain model:
    the list of what was appended, of which a power loss keeps what is below the new log end."""

    PRODUCERS = (1, 2, 3)

    def __init__(self):
        super().__init__()
        self.fs = MemoryFileSystem()
        self.config = LogConfig(segment_bytes=500)
        self.log = PartitionLog.open(self.fs, "d/t-0", self.config, clock=lambda: T0)
        self.producers = {pid: Producer(pid) for pid in self.PRODUCERS}
        # In offset order: ("data", first offset, values, producer or None) and
        # ("marker", offset, producer, commit).
        self.events: list[tuple] = []
        self.counter = 0

    def _append(self, payload, **kwargs):
        result = self.log.append(payload, **kwargs)
        self.log.update_high_watermark(self.log.log_end_offset)
        return result

    def model(self):
        """(open transactions {producer: first offset}, aborted [AbortedTxn], values
        [(offset, value, (producer, first offset) or None)], outcome {(producer, first): committed})."""
        open_txns, aborted, values, outcome = {}, [], [], {}
        for kind, offset, *rest in self.events:
            if kind == "data":
                batch_values, pid = rest
                txn = None if pid is None else (pid, open_txns.setdefault(pid, offset))
                values.extend((offset + i, value, txn) for i, value in enumerate(batch_values))
                continue
            pid, commit = rest
            lso = min((first for owner, first in open_txns.items() if owner != pid), default=offset + 1)
            first = open_txns.pop(pid, None)
            if first is not None:
                outcome[(pid, first)] = commit
                if not commit:
                    aborted.append(AbortedTxn(pid, first, offset, lso))
        return open_txns, aborted, values, outcome

    @rule(pid=st.sampled_from(PRODUCERS), count=st.integers(1, 3))
    def transactional_append(self, pid, count):
        values = [b"v%d" % (self.counter + i) for i in range(count)]
        self.counter += count
        self.events.append(("data", self._append(self.producers[pid].batch(values)).first_offset, values, pid))

    @rule()
    def plain_append(self):
        values = [b"v%d" % self.counter]
        self.counter += 1
        self.events.append(("data", self._append(make_batch(values)).first_offset, values, None))

    @rule(pid=st.sampled_from(PRODUCERS), commit=st.booleans())
    def end_transaction(self, pid, commit):
        marker = self._append(self.producers[pid].marker(commit), origin=ORIGIN_COORDINATOR).first_offset
        self.events.append(("marker", marker, pid, commit))

    @rule()
    def roll(self):
        self.log.roll()

    @rule()
    def flush(self):
        self.log.flush()

    @rule()
    def reopen_clean(self):
        high_watermark = self.log.high_watermark
        self.log.close()
        self.log = PartitionLog.open(self.fs, "d/t-0", self.config, clock=lambda: T0, high_watermark=high_watermark)

    @precondition(lambda self: self.log.log_end_offset > 0)
    @rule()
    def reopen_after_losing_the_indexes(self):
        high_watermark = self.log.high_watermark
        self.log.flush()
        for segment in self.log.segments:
            segment.close()
            if self.fs.exists(segment.txn_index.path):
                self.fs.unlink(segment.txn_index.path)
        self.log = PartitionLog.open(self.fs, "d/t-0", self.config, clock=lambda: T0, clean_shutdown=False,
                                     recovery_point=0, high_watermark=high_watermark)

    @rule(seed=st.integers(0, 2**32 - 1))
    def power_loss(self, seed):
        import random

        recovery_point, high_watermark = self.log.recovery_point, self.log.high_watermark
        self.fs.crash(random.Random(seed))
        self.log = PartitionLog.open(self.fs, "d/t-0", self.config, clock=lambda: T0, clean_shutdown=False,
                                     recovery_point=recovery_point, high_watermark=high_watermark)
        assert self.log.log_end_offset >= recovery_point  # what was flushed survives
        self.events = [event for event in self.events if event[1] < self.log.log_end_offset]
        for pid, producer in self.producers.items():  # the producers resume where the log is
            entry = self.log.producer_state.producers.get(pid)
            producer.sequence = entry.last_sequence + 1 if entry is not None and entry.last_sequence >= 0 else 0

    @invariant()
    def lso_is_the_oldest_open_transaction(self):
        open_txns = self.model()[0]
        assert self.log.last_stable_offset == min(open_txns.values(), default=self.log.high_watermark)
        assert {pid: entry.current_txn_first_offset for pid, entry in self.log.producer_state.producers.items()
                if entry.current_txn_first_offset >= 0} == open_txns

    @invariant()
    def aborted_transactions_agree(self):
        aborted = self.model()[1]
        assert all_entries(self.log) == aborted
        end_offset = self.log.log_end_offset
        for start, stop in [(0, end_offset), (end_offset // 3, end_offset // 2 + 1), (end_offset // 2, end_offset)]:
            expected = [t for t in aborted if t.last_offset >= start and t.first_offset < stop]
            assert self.log.aborted_transactions(start, stop) == expected

    @invariant()
    def read_committed_sees_committed_data_only(self):
        _, _, values, outcome = self.model()
        lso = self.log.last_stable_offset
        assert values_read(self.log) == [value for offset, value, txn in values
                                         if offset < lso and (txn is None or outcome.get(txn, True))]


TransactionModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_transaction_model = TransactionModel.TestCase


def test_after_a_marker_bumps_the_epoch_the_new_epoch_starts_at_sequence_zero():
    """Transaction version 2: the end of a transaction writes its marker with the next epoch;
    the producer's first batch of that epoch must have sequence 0 (Kafka's checkSequence: a
    known epoch with no batch yet takes only the next sequence after -1), so a later batch
    that overtook a refused first one is refused too, and the client resends both in order."""
    log = new_log()
    producer = Producer(7)
    log.append(producer.batch([b"a", b"b"]))
    log.append(producer.marker(True, epoch=1), origin=ORIGIN_COORDINATOR)
    producer.epoch, producer.sequence = 1, 5
    with pytest.raises(OutOfOrderSequence):
        log.append(producer.batch([b"overtaking"]))
    producer.sequence = 0
    log.append(producer.batch([b"first"]))
    assert log.producer_state.producers[7].last_sequence == 0
