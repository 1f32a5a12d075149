"""Idempotent producers: sequence checks, duplicate retries, epochs, snapshots, recovery."""

import struct

import crc32c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from odradek.protocol.records.header import read_batch_header

from odradek.storage.config import LogConfig
from odradek.storage.fs import MemoryFileSystem
from odradek.storage.partition_log import PartitionLog
from odradek.storage.producer_state import (
    CorruptSnapshot,
    InvalidProducerEpoch,
    OutOfOrderSequence,
    ProducerStateManager,
)

from storage_batches import make_batch

T0 = 1_700_000_000_000
PID = 4242


def clock():
    return T0 + 1000


def idempotent(values, sequence, epoch=0, producer_id=PID):
    return make_batch(values, producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence,
                      timestamps=[T0] * len(values))


def open_log(fs, clean=True, **config):
    return PartitionLog.open(fs, "d/t-0", LogConfig(**config), clock=clock, clean_shutdown=clean)


def test_sequences_duplicates_and_epochs():
    log = open_log(MemoryFileSystem())
    first = log.append(idempotent([b"a", b"b"], 0))
    assert (first.first_offset, first.last_offset) == (0, 1)
    assert log.append(idempotent([b"c"], 2)).first_offset == 2
    size = log.size_in_bytes
    retry = log.append(idempotent([b"a", b"b"], 0))  # a retry of the first batch
    assert (retry.first_offset, retry.last_offset) == (0, 1) and log.size_in_bytes == size
    with pytest.raises(OutOfOrderSequence) as raised:
        log.append(idempotent([b"d"], 5))
    assert raised.value.error_code == 45 and log.log_end_offset == 3
    assert log.append(idempotent([b"x"], 0, epoch=1)).first_offset == 3  # new epoch restarts at 0
    with pytest.raises(InvalidProducerEpoch) as raised:
        log.append(idempotent([b"y"], 3, epoch=0))
    assert raised.value.error_code == 47
    with pytest.raises(OutOfOrderSequence):
        log.append(idempotent([b"z"], 7, epoch=2))  # a newer epoch must start at sequence 0
    assert log.append(idempotent([b"w"], 0, producer_id=7)).first_offset == 4  # another producer
    assert log.append(make_batch([b"plain"])).first_offset == 5  # non-idempotent: unchecked


def test_only_the_last_five_batches_are_deduplicated():
    log = open_log(MemoryFileSystem())
    for sequence in range(7):
        log.append(idempotent([b"v"], sequence))
    assert log.append(idempotent([b"v"], 2)).first_offset == 2
    with pytest.raises(OutOfOrderSequence):
        log.append(idempotent([b"v"], 1))  # too old to be recognised


def test_sequence_wraps_after_int32_max():
    log = open_log(MemoryFileSystem())
    log.append(idempotent([b"a", b"b"], 2**31 - 2))
    assert log.append(idempotent([b"c"], 0)).first_offset == 2


def test_unknown_producer_may_start_anywhere():
    log = open_log(MemoryFileSystem())
    assert log.append(idempotent([b"a"], 17)).first_offset == 0
    assert log.append(idempotent([b"b"], 18)).first_offset == 1


@pytest.mark.parametrize("clean", [True, False])
def test_state_survives_restart(clean):
    fs = MemoryFileSystem()
    log = open_log(fs, segment_bytes=400)
    for sequence in range(0, 12, 2):
        log.append(idempotent([b"x" * 20, b"y"], sequence))
    assert len(log.segments) > 1
    snapshots = log.producer_state.snapshot_offsets()
    assert snapshots == [s.base_offset for s in log.segments[1:]]  # one per roll
    if clean:
        log.close()
    log = open_log(fs, clean=clean, segment_bytes=400)
    assert log.append(idempotent([b"x" * 20, b"y"], 10)).first_offset == 10  # duplicate, recognised
    with pytest.raises(OutOfOrderSequence):
        log.append(idempotent([b"n"], 13))
    assert log.append(idempotent([b"n"], 12)).first_offset == 12


def test_corrupt_snapshot_is_ignored_and_state_rebuilt_from_the_log():
    fs = MemoryFileSystem()
    log = open_log(fs)
    log.append(idempotent([b"a"], 0))
    log.append(idempotent([b"b"], 1))
    log.close()
    path = "d/t-0/00000000000000000002.snapshot"
    data = bytearray(fs.read_file(path))
    data[-1] ^= 0x01
    fs.files[path].data[:] = data
    log = open_log(fs)
    assert not fs.exists(path)  # refused and removed
    assert log.append(idempotent([b"b"], 1)).first_offset == 1  # duplicate known from the log replay


def test_truncation_forgets_truncated_batches():
    fs = MemoryFileSystem()
    log = open_log(fs, segment_bytes=300)
    for sequence in range(6):
        log.append(idempotent([b"v" * 30], sequence))
    log.truncate_to(3)
    assert log.producer_state.snapshot_offsets() == [s for s in log.producer_state.snapshot_offsets() if s <= 3]
    assert log.append(idempotent([b"v" * 30], 3)).first_offset == 3  # not a duplicate any more
    with pytest.raises(OutOfOrderSequence):
        log.append(idempotent([b"v" * 30], 5))


def test_snapshot_format():
    fs = MemoryFileSystem()
    fs.makedirs("d")
    state = ProducerStateManager(fs, "d")
    state.replay(read_batch_header(make_batch([b"a", b"b", b"c"], base_offset=10, producer_id=9, producer_epoch=2,
                                              base_sequence=4, timestamps=[T0, T0 + 1, T0 + 2])))
    state.take_snapshot()
    raw = fs.read_file("d/00000000000000000013.snapshot")
    entry = struct.pack(">qhiqiqiq", 9, 2, 6, 12, 2, T0 + 2, -1, -1)
    assert raw == struct.pack(">hIi", 1, crc32c.crc32c(struct.pack(">i", 1) + entry), 1) + entry
    reloaded = ProducerStateManager(fs, "d")
    assert reloaded.load_latest_snapshot(at_most=100) == 13
    producer = reloaded.producers[9]
    assert (producer.epoch, producer.last_sequence, producer.batches[-1].first_offset) == (2, 6, 10)


@given(st.binary(max_size=200))
def test_snapshot_decoder_refuses_garbage_with_its_error(data):
    state = ProducerStateManager(MemoryFileSystem(), "d")
    try:
        state.decode(data)
    except CorruptSnapshot:
        pass


@given(st.binary(min_size=1, max_size=3), st.integers(0, 10_000))
def test_snapshot_with_a_bit_flip_or_torn_tail_is_refused(noise, position_seed):
    fs = MemoryFileSystem()
    fs.makedirs("d")
    state = ProducerStateManager(fs, "d")
    for producer_id in range(3):
        state.replay(read_batch_header(make_batch([b"v"], base_offset=producer_id, producer_id=producer_id,
                                                  producer_epoch=0, base_sequence=producer_id)))
    data = bytearray(state.encode())
    position = position_seed % len(data)
    torn = bytes(data[:position])
    data[position] ^= noise[0] or 1
    for bad in (bytes(data), torn):
        with pytest.raises(CorruptSnapshot):
            state.decode(bad)


def test_idle_producers_expire():
    now = [T0 + 1000]
    log = PartitionLog.open(MemoryFileSystem(), "d/t-0", LogConfig(), clock=lambda: now[0])
    log.append(idempotent([b"a"], 0))
    log.append(make_batch([b"t"], producer_id=5, producer_epoch=0, base_sequence=0, attributes=0x10,
                          timestamps=[T0]))  # an open transaction keeps its producer
    now[0] = T0 + 86_400_000
    assert log.expire_producers() == 1
    assert set(log.producer_state.producers) == {5}
    assert log.append(idempotent([b"b"], 9)).first_offset == 2  # unknown again: any sequence
