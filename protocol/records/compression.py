"""Compression codecs of Kafka record batches and legacy message sets, with bounded inflation.

Codec ids are the three low attribute bits, as Kafka defines them (``CompressionType``)::

    0 none   1 gzip   2 snappy   3 lz4   4 zstd      (5..7 undefined)

Framing of each codec, as Kafka's Java client writes and reads it:

* gzip: the gzip file format (RFC 1952). Concatenated members are read one after another, as
  ``java.util.zip.GZIPInputStream`` does.
* snappy: the Java client writes snappy-java's *xerial* stream: an 8-byte magic
  ``\\x82SNAPPY\\x00``, int32 version 1, int32 minimum compatible version 1, then blocks of
  (int32 compressed length, raw snappy block) each covering at most 32 KiB of input. librdkafka
  and some older clients write a single raw snappy block instead. Readers detect the magic and
  fall back to raw, as snappy-java's ``SnappyInputStream`` does.
* lz4: the LZ4 frame format (magic 0x184D2204) with independent 64 KiB blocks and no content
  size, as Kafka's ``KafkaLZ4BlockOutputStream`` writes. KIP-57: before magic 1, Kafka computed
  the frame descriptor's header checksum (HC) over the descriptor *including the 4-byte magic
  number*. Magic-0 messages therefore carry that wrong checksum: we write it that way for magic 0
  and accept the old or the correct checksum when reading magic 0; magic 1 and 2 use the
  correct checksum both ways.
* zstd: the zstd frame format; concatenated frames are read across.

Every decompression is bounded by ``max_size``: output beyond it raises
:class:`~odradek.protocol.errors.DecompressionLimitExceeded` after at most ``max_size + 1``
bytes were produced (the decompressors are driven with an output limit; snappy is checked against
the uncompressed length its blocks declare before anything is inflated). zstd frames are further
limited to the zstd library's default maximum window (128 MiB), as zstd-jni does in Kafka.
"""

from __future__ import annotations

import struct
import zlib

import cramjam
import lz4.frame
import zstandard

from ..errors import CorruptRecord, DecompressionLimitExceeded, UnsupportedCompression

NONE = 0
GZIP = 1
SNAPPY = 2
LZ4 = 3
ZSTD = 4

CODEC_NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}
CODEC_IDS = {name: codec for codec, name in CODEC_NAMES.items()}

XERIAL_MAGIC = b"\x82SNAPPY\x00"
XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
# snappy-java's default block size; the Java producer uses it.
XERIAL_BLOCK_SIZE = 32 * 1024

LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"

_INT32 = struct.Struct(">i")


def codec_name(codec: int) -> str:
    try:
        return CODEC_NAMES[codec]
    except KeyError:
        raise UnsupportedCompression(f"unknown compression codec {codec}") from None


# --- compression -------------------------------------------------------------------------------


def compress(codec: int, data, level: int | None = None, *, magic: int = 2) -> bytes:
    """Compress ``data`` the way a Kafka client does for ``codec``.

    ``magic`` matters only for lz4 (KIP-57 header checksum, see the module docstring).
    ``level`` is the codec's level (gzip 1-9, lz4 0-16, zstd 1-22; snappy has none).
    """
    if codec == NONE:
        return bytes(data)
    if codec == GZIP:
        # zlib's default level (6) is Java's Deflater default, which Kafka's gzip level -1 means.
        # zlib writes mtime 0 in the gzip header, as Java's GZIPOutputStream does.
        level = zlib.Z_DEFAULT_COMPRESSION if level is None else level
        compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return compressor.compress(data) + compressor.flush()
    if codec == SNAPPY:
        return _xerial_compress(data)
    if codec == LZ4:
        return _lz4_compress(data, level, magic)
    if codec == ZSTD:
        return zstandard.ZstdCompressor(level=3 if level is None else level).compress(data)
    raise UnsupportedCompression(f"unknown compression codec {codec}")


def _xerial_compress(data) -> bytes:
    view = memoryview(data)
    out = bytearray(XERIAL_HEADER)
    for start in range(0, len(view), XERIAL_BLOCK_SIZE):
        block = bytes(cramjam.snappy.compress_raw(view[start : start + XERIAL_BLOCK_SIZE]))
        out += _INT32.pack(len(block))
        out += block
    return bytes(out)


def _lz4_compress(data, level: int | None, magic: int) -> bytes:
    frame = bytearray(
        lz4.frame.compress(
            data,
            compression_level=0 if level is None else level,
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,  # Kafka's reader refuses dependent blocks
            content_checksum=False,
            store_size=False,  # Kafka's writer never stores the content size
        )
    )
    if magic == 0:
        # The descriptor is FLG, BD, HC at bytes 4..6 (no content size, no dict id).
        frame[6] = _lz4_header_checksum(frame[0:6])
    return bytes(frame)


# --- decompression ------------------------------------------------------------------------------


def decompress(codec: int, data, *, max_size: int, magic: int = 2) -> bytes:
    """Inflate ``data`` compressed with ``codec``; at most ``max_size`` bytes of output.

    Raises DecompressionLimitExceeded past ``max_size``, CorruptRecord on data the codec cannot
    read, UnsupportedCompression on an unknown codec id.
    """
    if codec == NONE:
        if len(data) > max_size:
            raise DecompressionLimitExceeded(f"{len(data)} bytes exceed the limit of {max_size}")
        return bytes(data)
    if codec == GZIP:
        return _gzip_decompress(data, max_size)
    if codec == SNAPPY:
        return _snappy_decompress(data, max_size)
    if codec == LZ4:
        return _lz4_decompress(data, max_size, magic)
    if codec == ZSTD:
        return _zstd_decompress(data, max_size)
    raise UnsupportedCompression(f"unknown compression codec {codec}")


def _over_limit(max_size: int) -> DecompressionLimitExceeded:
    return DecompressionLimitExceeded(f"compressed data inflates past the limit of {max_size} bytes")


def _gzip_decompress(data, max_size: int) -> bytes:
    out = bytearray()
    remaining = bytes(data)
    if not remaining:
        raise CorruptRecord("empty gzip data")
    try:
        while remaining:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pending = remaining
            while True:
                # Ask for at most one byte over the limit, so a bomb stops right there.
                chunk = inflater.decompress(pending, max_size + 1 - len(out))
                out += chunk
                if len(out) > max_size:
                    raise _over_limit(max_size)
                if inflater.eof:
                    break
                pending = inflater.unconsumed_tail
                if not pending:
                    raise CorruptRecord("truncated gzip data")
            remaining = inflater.unused_data
    except zlib.error as exc:
        raise CorruptRecord(f"invalid gzip data: {exc}") from None
    return bytes(out)


def _read_snappy_length(block, start: int = 0) -> int:
    """The uncompressed length a raw snappy block declares in its leading uvarint."""
    value = 0
    for index in range(5):
        if start + index >= len(block):
            break
        byte = block[start + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value
    raise CorruptRecord("invalid snappy length preamble")


def _snappy_raw_block(block, budget: int, max_size: int) -> bytes:
    if _read_snappy_length(block) > budget:
        raise _over_limit(max_size)
    try:
        return bytes(cramjam.snappy.decompress_raw(bytes(block)))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise CorruptRecord(f"invalid snappy data: {exc}") from None


def _snappy_decompress(data, max_size: int) -> bytes:
    view = memoryview(data)
    if bytes(view[: len(XERIAL_MAGIC)]) != XERIAL_MAGIC:
        return _snappy_raw_block(view, max_size, max_size)
    if len(view) < len(XERIAL_HEADER):
        raise CorruptRecord("truncated xerial snappy header")
    out = bytearray()
    pos = len(XERIAL_HEADER)  # version and compatible version are not checked, as snappy-java
    while pos < len(view):
        if len(view) - pos < 4:
            raise CorruptRecord("truncated xerial snappy block length")
        (block_length,) = _INT32.unpack_from(view, pos)
        pos += 4
        if block_length < 0 or block_length > len(view) - pos:
            raise CorruptRecord(f"xerial snappy block length {block_length} past the end")
        out += _snappy_raw_block(view[pos : pos + block_length], max_size - len(out), max_size)
        pos += block_length
    return bytes(out)


def _lz4_decompress(data, max_size: int, magic: int) -> bytes:
    frame = bytes(data)
    if magic == 0 and len(frame) >= 7 and frame[:4] == LZ4_FRAME_MAGIC:
        frame = _lz4_fix_legacy_checksum(frame)
    out = bytearray()
    try:
        while True:
            decompressor = lz4.frame.LZ4FrameDecompressor()
            out += decompressor.decompress(frame, max_length=max_size + 1 - len(out))
            while not decompressor.eof:
                if len(out) > max_size:
                    raise _over_limit(max_size)
                if decompressor.needs_input:
                    raise CorruptRecord("truncated lz4 frame")
                out += decompressor.decompress(b"", max_length=max_size + 1 - len(out))
            if len(out) > max_size:
                raise _over_limit(max_size)
            frame = decompressor.unused_data
            if not frame:
                return bytes(out)
    except RuntimeError as exc:  # python-lz4 reports malformed frames as RuntimeError
        raise CorruptRecord(f"invalid lz4 data: {exc}") from None


def _lz4_fix_legacy_checksum(frame: bytes) -> bytes:
    """For magic 0, accept the pre-KIP-57 header checksum by rewriting it to the correct one."""
    flags = frame[4]
    descriptor_end = 6 + (8 if flags & 0x08 else 0) + (4 if flags & 0x01 else 0)
    if len(frame) <= descriptor_end:
        return frame
    checksum = frame[descriptor_end]
    if checksum == _lz4_header_checksum(frame[4:descriptor_end]):
        return frame
    if checksum == _lz4_header_checksum(frame[0:descriptor_end]):
        fixed = bytearray(frame)
        fixed[descriptor_end] = _lz4_header_checksum(frame[4:descriptor_end])
        return bytes(fixed)
    return frame  # neither: let the decompressor report it


def _zstd_decompress(data, max_size: int) -> bytes:
    data = bytes(data)
    # zstandard's stream reader stops quietly at the end of a truncated frame, so the frame
    # structure is walked first (cheap: block headers only) to refuse incomplete input.
    _check_zstd_frames_complete(data)
    out = bytearray()
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
        with reader:
            while True:
                chunk = reader.read(max_size + 1 - len(out))
                if not chunk:
                    break
                out += chunk
                if len(out) > max_size:
                    raise _over_limit(max_size)
    except zstandard.ZstdError as exc:
        raise CorruptRecord(f"invalid zstd data: {exc}") from None
    return bytes(out)


_ZSTD_MAGIC = 0xFD2FB528
_ZSTD_SKIPPABLE_MAGIC_MASK = 0xFFFFFFF0
_ZSTD_SKIPPABLE_MAGIC = 0x184D2A50


def _check_zstd_frames_complete(data: bytes) -> None:
    """Walk the frames and block headers of zstd ``data`` (RFC 8878); CorruptRecord unless every
    frame is complete and nothing else follows."""
    pos, end = 0, len(data)
    if end == 0:
        raise CorruptRecord("empty zstd data")

    def need(count: int) -> None:
        if end - pos < count:
            raise CorruptRecord("truncated zstd frame")

    while pos < end:
        need(4)
        magic = int.from_bytes(data[pos : pos + 4], "little")
        pos += 4
        if magic & _ZSTD_SKIPPABLE_MAGIC_MASK == _ZSTD_SKIPPABLE_MAGIC:
            need(4)
            skip = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
            need(skip)
            pos += skip
            continue
        if magic != _ZSTD_MAGIC:
            raise CorruptRecord("invalid zstd data: bad frame magic")
        need(1)
        descriptor = data[pos]
        pos += 1
        single_segment = descriptor & 0x20
        content_size_bytes = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
        header_rest = (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 0x03] + content_size_bytes
        need(header_rest)
        pos += header_rest
        while True:
            need(3)
            block_header = int.from_bytes(data[pos : pos + 3], "little")
            pos += 3
            block_type = (block_header >> 1) & 0x03
            if block_type == 3:
                raise CorruptRecord("invalid zstd data: reserved block type")
            block_size = 1 if block_type == 1 else block_header >> 3
            need(block_size)
            pos += block_size
            if block_header & 1:
                break
        if descriptor & 0x04:  # content checksum
            need(4)
            pos += 4


# --- xxHash32, for the lz4 frame header checksum ------------------------------------------------

_PRIME1 = 0x9E3779B1
_PRIME2 = 0x85EBCA77
_PRIME3 = 0xC2B2AE3D
_PRIME4 = 0x27D4EB2F
_PRIME5 = 0x165667B1
_MASK32 = 0xFFFFFFFF


def _rotl32(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _MASK32


def xxhash32(data, seed: int = 0) -> int:
    """XXH32 of ``data``: lz4 frames checksum their descriptor with it (only a few bytes)."""
    data = bytes(data)
    length = len(data)
    pos = 0
    if length >= 16:
        lanes = [
            (seed + _PRIME1 + _PRIME2) & _MASK32,
            (seed + _PRIME2) & _MASK32,
            seed & _MASK32,
            (seed - _PRIME1) & _MASK32,
        ]
        while pos + 16 <= length:
            for lane in range(4):
                (word,) = struct.unpack_from("<I", data, pos)
                pos += 4
                lanes[lane] = (_rotl32((lanes[lane] + word * _PRIME2) & _MASK32, 13) * _PRIME1) & _MASK32
        acc = (_rotl32(lanes[0], 1) + _rotl32(lanes[1], 7) + _rotl32(lanes[2], 12) + _rotl32(lanes[3], 18)) & _MASK32
    else:
        acc = (seed + _PRIME5) & _MASK32
    acc = (acc + length) & _MASK32
    while pos + 4 <= length:
        (word,) = struct.unpack_from("<I", data, pos)
        pos += 4
        acc = (_rotl32((acc + word * _PRIME3) & _MASK32, 17) * _PRIME4) & _MASK32
    while pos < length:
        acc = (_rotl32((acc + data[pos] * _PRIME5) & _MASK32, 11) * _PRIME1) & _MASK32
        pos += 1
    acc ^= acc >> 15
    acc = (acc * _PRIME2) & _MASK32
    acc ^= acc >> 13
    acc = (acc * _PRIME3) & _MASK32
    acc ^= acc >> 16
    return acc


def _lz4_header_checksum(descriptor) -> int:
    """The lz4 frame HC byte: the second byte of XXH32(descriptor, seed 0)."""
    return (xxhash32(descriptor) >> 8) & 0xFF
