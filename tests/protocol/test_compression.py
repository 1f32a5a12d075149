"""Compression codecs: round trips, agreement with the clients' codecs, the KIP-57 lz4 quirk,
bounded decompression (bombs), corrupt input."""

import gzip
import os
import time
import tracemalloc
import zlib

import cramjam
import lz4.frame
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st
from kafka import codec as kafka_codec

from odradek.protocol.errors import (
    CorruptRecord,
    DecompressionLimitExceeded,
    ProtocolError,
    UnsupportedCompression,
)
from odradek.protocol.records import compression
from odradek.protocol.records.compression import GZIP, LZ4, NONE, SNAPPY, ZSTD, compress, decompress

CODECS = [NONE, GZIP, SNAPPY, LZ4, ZSTD]
MiB = 1024 * 1024
PAYLOAD = os.urandom(5000) + b"kafka " * 20000 + os.urandom(70000)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("magic", [0, 1, 2])
def test_round_trip(codec, magic):
    assert decompress(codec, compress(codec, PAYLOAD, magic=magic), max_size=MiB, magic=magic) == PAYLOAD


@pytest.mark.parametrize("codec", CODECS)
def test_empty_payload_round_trips(codec):
    assert decompress(codec, compress(codec, b""), max_size=0) == b""


@given(st.binary(max_size=3000), st.sampled_from(CODECS), st.sampled_from([0, 1, 2]))
def test_round_trip_property(data, codec, magic):
    assert decompress(codec, compress(codec, data, magic=magic), max_size=len(data), magic=magic) == data


def test_our_output_is_read_by_kafka_python():
    assert kafka_codec.gzip_decode(compress(GZIP, PAYLOAD)) == PAYLOAD
    assert kafka_codec.snappy_decode(compress(SNAPPY, PAYLOAD)) == PAYLOAD
    assert kafka_codec.lz4_decode(compress(LZ4, PAYLOAD)) == PAYLOAD
    assert kafka_codec.zstd_decode(compress(ZSTD, PAYLOAD)) == PAYLOAD


def test_kafka_python_output_is_read():
    assert decompress(GZIP, kafka_codec.gzip_encode(PAYLOAD), max_size=MiB) == PAYLOAD
    assert decompress(SNAPPY, kafka_codec.snappy_encode(PAYLOAD), max_size=MiB) == PAYLOAD
    raw = kafka_codec.snappy_encode(PAYLOAD, xerial_compatible=False)
    assert decompress(SNAPPY, raw, max_size=MiB) == PAYLOAD
    assert decompress(LZ4, kafka_codec.lz4_encode(PAYLOAD), max_size=MiB) == PAYLOAD
    assert decompress(ZSTD, kafka_codec.zstd_encode(PAYLOAD), max_size=MiB) == PAYLOAD


def test_snappy_is_written_xerial_framed_in_32k_blocks():
    data = compress(SNAPPY, PAYLOAD)
    assert data[:16] == b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"
    # Block count: ceil(len / 32 KiB); walk the blocks.
    pos, blocks = 16, 0
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4 + length
        blocks += 1
    assert pos == len(data)
    assert blocks == -(-len(PAYLOAD) // (32 * 1024))


def test_gzip_multiple_members_are_read_in_sequence():
    data = gzip.compress(b"first ") + gzip.compress(b"second")
    assert decompress(GZIP, data, max_size=100) == b"first second"


def test_zstd_multiple_frames_are_read_across():
    data = zstandard.ZstdCompressor().compress(b"one") + zstandard.ZstdCompressor().compress(b"two")
    assert decompress(ZSTD, data, max_size=100) == b"onetwo"


# --- KIP-57: the lz4 frame header checksum ------------------------------------------------------


def test_xxhash32_matches_lz4_content_checksum():
    # An lz4 frame with a content checksum ends with XXH32(content), little-endian.
    for size in (0, 1, 5, 15, 16, 17, 100, 1000):
        content = os.urandom(size)
        frame = lz4.frame.compress(content, content_checksum=True)
        assert compression.xxhash32(content) == int.from_bytes(frame[-4:], "little")


def test_lz4_magic0_is_written_with_the_old_checksum_that_kafka_python_reads():
    frame = compress(LZ4, PAYLOAD, magic=0)
    # kafka-python's reader for 0.8/0.9 brokers recomputes the header checksum before decoding;
    # a standard lz4 reader refuses it.
    with pytest.raises(RuntimeError):
        lz4.frame.decompress(frame)
    assert frame[6] == (compression.xxhash32(frame[0:6]) >> 8) & 0xFF
    assert decompress(LZ4, frame, max_size=MiB, magic=0) == PAYLOAD


def test_lz4_magic0_reads_both_checksums():
    correct = compress(LZ4, PAYLOAD, magic=1)
    assert lz4.frame.decompress(correct) == PAYLOAD
    assert decompress(LZ4, correct, max_size=MiB, magic=0) == PAYLOAD


def test_lz4_magic1_refuses_the_old_checksum():
    with pytest.raises(CorruptRecord):
        decompress(LZ4, compress(LZ4, PAYLOAD, magic=0), max_size=MiB, magic=1)


def test_lz4_frame_is_kafka_shaped():
    frame = compress(LZ4, PAYLOAD)
    assert frame[:4] == compression.LZ4_FRAME_MAGIC
    flags, block_descriptor = frame[4], frame[5]
    assert flags & 0x20  # independent blocks
    assert not flags & 0x08  # no content size
    assert (block_descriptor >> 4) & 0x7 == 4  # 64 KiB blocks


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", [5, 6, 7, -1, 99])
def test_unknown_codec(codec):
    with pytest.raises(UnsupportedCompression) as info:
        decompress(codec, b"x", max_size=10)
    assert info.value.error_code == 76
    with pytest.raises(UnsupportedCompression):
        compress(codec, b"x")


@pytest.mark.parametrize("codec", [GZIP, SNAPPY, LZ4, ZSTD])
def test_garbage_is_corrupt(codec):
    with pytest.raises(CorruptRecord):
        decompress(codec, b"\x00\x01garbage that is no compressed data" * 3, max_size=MiB)


@pytest.mark.parametrize("codec", [GZIP, SNAPPY, LZ4, ZSTD])
def test_truncated_is_corrupt(codec):
    data = compress(codec, PAYLOAD)
    with pytest.raises(CorruptRecord):
        decompress(codec, data[: len(data) // 2], max_size=MiB)


@given(st.sampled_from(CODECS), st.binary(max_size=300), st.sampled_from([0, 1, 2]))
def test_fuzz_only_protocol_errors(codec, data, magic):
    try:
        decompress(codec, data, max_size=4096, magic=magic)
    except ProtocolError:
        pass


@given(st.sampled_from([GZIP, SNAPPY, LZ4, ZSTD]), st.binary(min_size=1, max_size=2000), st.data())
def test_fuzz_mutated_valid_frames(codec, payload, data):
    frame = bytearray(compress(codec, payload))
    index = data.draw(st.integers(0, len(frame) - 1))
    frame[index] ^= data.draw(st.integers(1, 255))
    try:
        decompress(codec, bytes(frame), max_size=4096)
    except ProtocolError:
        pass


# --- bombs: small input, huge output --------------------------------------------------------------

BOMB_SIZE = 64 * MiB  # what the bomb would inflate to (64x the limit)
LIMIT = 1 * MiB


def _bomb(codec):
    zeros = bytes(16 * MiB)
    if codec == GZIP:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        parts = [compressor.compress(zeros) for _ in range(BOMB_SIZE // len(zeros))]
        return b"".join(parts) + compressor.flush()
    if codec == ZSTD:
        compressor = zstandard.ZstdCompressor().compressobj()
        parts = [compressor.compress(zeros) for _ in range(BOMB_SIZE // len(zeros))]
        return b"".join(parts) + compressor.flush()
    if codec == LZ4:
        # lz4 tops out near 255:1, so the frame is ~250 KiB.
        return compress(LZ4, bytes(64 * MiB))
    if codec == SNAPPY:
        # snappy's ratio is ~21:1; a raw block *declaring* 64 MiB is what a bomb looks like.
        declared = bytearray()
        value = BOMB_SIZE
        while value > 0x7F:
            declared.append((value & 0x7F) | 0x80)
            value >>= 7
        declared.append(value)
        return bytes(declared) + bytes(cramjam.snappy.compress_raw(bytes(MiB)))[1 + 3 :]
    raise AssertionError(codec)


@pytest.fixture(scope="module")
def bombs():
    return {codec: _bomb(codec) for codec in (GZIP, SNAPPY, LZ4, ZSTD)}


@pytest.mark.parametrize("codec", [GZIP, SNAPPY, LZ4, ZSTD])
def test_bomb_is_refused_fast_and_bounded(bombs, codec):
    bomb = bombs[codec]
    assert len(bomb) < MiB
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(DecompressionLimitExceeded) as info:
            decompress(codec, bomb, max_size=LIMIT)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.error_code == 2
    assert elapsed < 1.0
    # Output is bounded by the limit (plus buffers), nowhere near the 64-256 MiB it inflates to.
    assert peak < 8 * MiB + len(bomb), peak


def test_xerial_snappy_bomb_is_refused_block_by_block():
    block = bytes(cramjam.snappy.compress_raw(bytes(32 * 1024)))
    frame = compression.XERIAL_HEADER + (len(block).to_bytes(4, "big") + block) * 200  # 6.4 MiB
    with pytest.raises(DecompressionLimitExceeded):
        decompress(SNAPPY, frame, max_size=LIMIT)
    assert len(decompress(SNAPPY, frame, max_size=200 * 32 * 1024)) == 200 * 32 * 1024


@pytest.mark.parametrize("codec", CODECS)
def test_exact_limit_is_accepted(codec):
    data = compress(codec, PAYLOAD)
    assert decompress(codec, data, max_size=len(PAYLOAD)) == PAYLOAD
    with pytest.raises(DecompressionLimitExceeded):
        decompress(codec, data, max_size=len(PAYLOAD) - 1)
