"""Fuzz: every parser of the storage layer, fed arbitrary bytes, either accepts them or raises
its documented error, never anything else (IndexError, struct.error, ...)."""

from hypothesis import given
from hypothesis import strategies as st

from odradek.protocol.errors import ProtocolError
from odradek.storage import checkpoints
from odradek.storage.config import LogConfig
from odradek.storage.fs import MemoryFileSystem
from odradek.storage.indexes import CorruptIndex
from odradek.storage.partition_log import PartitionLog
from odradek.storage.validation import validate_batches

from storage_batches import make_batch

T0 = 1_700_000_000_000
VALID = make_batch([b"a", b"bb", b"ccc"], timestamps=[T0, T0 + 1, T0 + 2])


@given(st.binary(max_size=300))
def test_validation_of_arbitrary_bytes(payload):
    try:
        validate_batches(payload, LogConfig(), T0)
    except ProtocolError as error:
        assert isinstance(error.error_code, int)


@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(0, len(VALID)))
def test_validation_of_mutated_and_cut_batches(mutations, cut):
    payload = bytearray(VALID + VALID)
    for position, value in mutations:
        payload[position] = value
    payload = payload[: len(VALID) + cut]
    try:
        validated = validate_batches(bytes(payload), LogConfig(), T0)
    except ProtocolError:
        return
    assert validated.size == len(payload)  # accepted only if every byte belongs to a checked batch


@given(st.binary(max_size=120), st.binary(max_size=120), st.binary(max_size=40))
def test_opening_a_partition_with_garbage_files(log_bytes, index_bytes, time_index_bytes):
    fs = MemoryFileSystem()
    fs.makedirs("d/t-0")
    for name, data in (("log", log_bytes), ("index", index_bytes), ("timeindex", time_index_bytes)):
        fs.open(f"d/t-0/00000000000000000000.{name}").pwrite(data, 0)
    for clean in (True, False):
        try:
            log = PartitionLog.open(fs, "d/t-0", LogConfig(), clock=lambda: T0, clean_shutdown=clean,
                                    recovery_point=10**6 if clean else 0)
        except (ProtocolError, CorruptIndex):
            assert clean  # recovery never gives up on garbage; a trusted clean log may
            continue
        log.update_high_watermark(log.log_end_offset)
        try:
            log.read(log.log_start_offset, 1000)
            log.offset_for_timestamp(0)
        except ProtocolError:
            assert clean
        if not clean:
            assert log.log_end_offset == 0  # garbage never passes for batches
            log.append(make_batch([b"x"]))


@given(st.binary(max_size=100))
def test_checkpoint_and_metadata_parsers(data):
    fs = MemoryFileSystem()
    fs.write_file_atomic("f", data)
    for reader in (checkpoints.read_offset_checkpoint, checkpoints.read_leader_epochs,
                   checkpoints.read_partition_metadata, checkpoints.read_meta_properties):
        try:
            reader(fs, "f")
        except checkpoints.CorruptCheckpoint:
            pass
