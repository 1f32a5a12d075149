"""Legacy message sets (magic 0 and 1): decode and encode.

A message set is a sequence of entries, each ``offset int64, message_size int32, message``::

    crc          uint32   CRC-32 (zlib's) of everything after it, magic to the end
    magic        int8     0 or 1
    attributes   int8     bits 0-2 compression codec, bit 3 timestamp type (magic 1 only)
    timestamp    int64    magic 1 only (-1: none)
    key          int32 length (-1: null), bytes
    value        int32 length (-1: null), bytes

A compressed entry is a *wrapper*: its value is the compressed bytes of an inner message set of
uncompressed messages of the same magic, and its offset is the offset of the *last* inner
message. Magic 0 inner messages carry absolute offsets. Magic 1 inner messages carry relative
offsets 0..n-1 (KIP-31), resolved as ``wrapper_offset - last_inner_offset + inner_offset``. A magic-1
wrapper with LogAppendTime gives every inner message its own timestamp and type. zstd cannot be
used with magic 0/1 (UnsupportedCompression), as in Kafka; lz4 in magic 0 carries the KIP-57
header checksum quirk (see :mod:`.compression`).

Decoders raise only CorruptRecord / compression errors (ProtocolError subclasses).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Iterator, NamedTuple, Sequence

from ..errors import CorruptRecord, UnsupportedCompression
from . import compression as _compression
from .batch import CREATE_TIME, LOG_APPEND_TIME, NO_TIMESTAMP, IncompleteBatch

LEGACY_COMPRESSION_MASK = 0x07
LEGACY_TIMESTAMP_TYPE_MASK = 0x08

# offset (8) + message_size (4)
LOG_OVERHEAD = 12
# crc (4) + magic (1) + attributes (1) + key length (4) + value length (4)
MESSAGE_OVERHEAD_V0 = 14
# ... + timestamp (8)
MESSAGE_OVERHEAD_V1 = 22

_ENTRY_HEAD = struct.Struct(">qiIbb")  # offset, size, crc, magic, attributes
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")


@dataclass(frozen=True, slots=True)
class LegacyRecord:
    """One message of a legacy message set. ``timestamp`` is None for magic 0.

    Decoding gives inner messages of a wrapper with their absolute offset and, under a
    LogAppendTime wrapper, the wrapper's timestamp and attributes' timestamp type.
    """

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None = None
    magic: int = 1
    attributes: int = 0
    crc: int = 0

    @property
    def compression(self) -> int:
        return self.attributes & LEGACY_COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int | None:
        if self.magic == 0:
            return None
        return LOG_APPEND_TIME if self.attributes & LEGACY_TIMESTAMP_TYPE_MASK else CREATE_TIME


class LegacyEntry(NamedTuple):
    """One outer entry of a message set as it sits in the buffer (a wrapper stays compressed)."""

    position: int
    size_in_bytes: int
    record: LegacyRecord


# --- decoding ------------------------------------------------------------------------------------


def iter_legacy_entries(buf, pos: int = 0, end: int | None = None, *, allow_incomplete: bool = False) -> Iterator[LegacyEntry | IncompleteBatch]:
    """The outer entries of the message set in ``buf[pos:end]``, CRC-checked, not decompressed.

    A trailing partial entry yields an :class:`~.batch.IncompleteBatch` when
    ``allow_incomplete`` (fetch responses), else raises CorruptRecord.
    """
    end = len(buf) if end is None else end
    while pos < end:
        available = end - pos
        if available < LOG_OVERHEAD + MESSAGE_OVERHEAD_V0:
            size = None if available < LOG_OVERHEAD else LOG_OVERHEAD + _INT32.unpack_from(buf, pos + 8)[0]
            if not allow_incomplete:
                raise CorruptRecord(f"message set entry at {pos}: truncated ({available} bytes)")
            yield IncompleteBatch(pos, available, size)
            return
        offset, message_size, crc, magic, attributes = _ENTRY_HEAD.unpack_from(buf, pos)
        if magic not in (0, 1):
            raise CorruptRecord(f"message at {pos}: magic {magic} is not a legacy message")
        overhead = MESSAGE_OVERHEAD_V0 if magic == 0 else MESSAGE_OVERHEAD_V1
        if message_size < overhead:
            raise CorruptRecord(f"message at {pos}: size {message_size} below the magic-{magic} minimum {overhead}")
        if LOG_OVERHEAD + message_size > available:
            if not allow_incomplete:
                raise CorruptRecord(f"message set entry at {pos}: truncated ({available} of {LOG_OVERHEAD + message_size} bytes)")
            yield IncompleteBatch(pos, available, LOG_OVERHEAD + message_size)
            return
        message_start = pos + LOG_OVERHEAD
        message_end = message_start + message_size
        if zlib.crc32(memoryview(buf)[message_start + 4 : message_end]) != crc:
            raise CorruptRecord(f"message at {pos}: CRC mismatch")
        field_pos = message_start + 6
        timestamp = None
        if magic == 1:
            (timestamp,) = _INT64.unpack_from(buf, field_pos)
            field_pos += 8
        key, field_pos = _read_bytes(buf, field_pos, message_end, "key")
        if message_end - field_pos < 4:
            raise CorruptRecord(f"message at {pos}: no room for the value length")
        value, field_pos = _read_bytes(buf, field_pos, message_end, "value")
        if field_pos != message_end:
            raise CorruptRecord(f"message at {pos}: {message_end - field_pos} bytes after the value")
        record = LegacyRecord(offset, key, value, timestamp, magic, attributes & 0xFF, crc)
        yield LegacyEntry(pos, LOG_OVERHEAD + message_size, record)
        pos = message_end


def _read_bytes(buf, pos: int, limit: int, what: str) -> tuple[bytes | None, int]:
    (length,) = _INT32.unpack_from(buf, pos)
    pos += 4
    if length == -1:
        return None, pos
    if length < -1 or length > limit - pos:
        raise CorruptRecord(f"message {what} length {length} invalid")
    return bytes(buf[pos : pos + length]), pos + length


def decode_message_set(buf, pos: int = 0, end: int | None = None, *, max_decompressed_size: int, allow_incomplete: bool = False) -> list[LegacyRecord]:
    """Every message of the set, wrappers expanded into their inner messages with absolute
    offsets (Kafka's "deep" iteration). A trailing partial entry is dropped when
    ``allow_incomplete``, else CorruptRecord. ``max_decompressed_size`` bounds each wrapper."""
    records: list[LegacyRecord] = []
    for entry in iter_legacy_entries(buf, pos, end, allow_incomplete=allow_incomplete):
        if isinstance(entry, IncompleteBatch):
            break
        records.extend(expand_entry(entry.record, max_decompressed_size=max_decompressed_size))
    return records


def expand_entry(record: LegacyRecord, *, max_decompressed_size: int) -> list[LegacyRecord]:
    """A plain message as itself; a wrapper as its inner messages (absolute offsets)."""
    codec = record.compression
    if codec == _compression.NONE:
        return [record]
    if codec == _compression.ZSTD:
        raise UnsupportedCompression(f"zstd is not allowed with message format magic {record.magic}")
    if record.value is None:
        raise CorruptRecord(f"compressed message at offset {record.offset} has a null value")
    inner_bytes = _compression.decompress(codec, record.value, max_size=max_decompressed_size, magic=record.magic)
    inner = [entry.record for entry in iter_legacy_entries(inner_bytes)]
    if not inner:
        raise CorruptRecord(f"compressed message at offset {record.offset} holds no messages")
    log_append_time = record.magic == 1 and bool(record.attributes & LEGACY_TIMESTAMP_TYPE_MASK)
    last_inner_offset = inner[-1].offset
    expanded = []
    for message in inner:
        if message.compression != _compression.NONE:
            raise CorruptRecord(f"compressed message at offset {record.offset} nests compression")
        if message.magic != record.magic:
            raise CorruptRecord(
                f"inner message magic {message.magic} differs from its wrapper's {record.magic}"
            )
        offset = message.offset
        if record.magic == 1:
            offset = record.offset - last_inner_offset + message.offset
        timestamp, attributes = message.timestamp, message.attributes
        if log_append_time:
            timestamp, attributes = record.timestamp, attributes | LEGACY_TIMESTAMP_TYPE_MASK
        expanded.append(LegacyRecord(offset, message.key, message.value, timestamp, message.magic, attributes, message.crc))
    return expanded


# --- encoding ------------------------------------------------------------------------------------


def encode_message(
    out: bytearray, offset: int, magic: int, attributes: int, timestamp: int | None, key: bytes | None, value: bytes | None
) -> None:
    """Append one entry (offset, size, message) to ``out``."""
    if magic not in (0, 1):
        raise ValueError(f"legacy magic must be 0 or 1, not {magic}")
    body = bytearray()
    body.append(magic)
    body.append(attributes & 0xFF)
    if magic == 1:
        body += _INT64.pack(NO_TIMESTAMP if timestamp is None else timestamp)
    for field in (key, value):
        if field is None:
            body += _INT32.pack(-1)
        else:
            body += _INT32.pack(len(field))
            body += field
    out += _INT64.pack(offset)
    out += _INT32.pack(len(body) + 4)
    out += struct.pack(">I", zlib.crc32(body))
    out += body


def build_message_set(
    records: Sequence[LegacyRecord],
    *,
    magic: int,
    compression: int = _compression.NONE,
    compression_level: int | None = None,
    timestamp_type: int = CREATE_TIME,
    log_append_time: int | None = None,
) -> bytes:
    """Encode ``records`` (their offsets, keys, values, timestamps; their magic and attributes
    are ignored) as a magic-0/1 message set.

    Uncompressed: one entry per record. Compressed: one wrapper holding them all, with inner
    offsets absolute (magic 0) or relative to the first record (magic 1) and the wrapper offset
    being the last record's, as Kafka writes them. ``timestamp_type`` LOG_APPEND_TIME (magic 1)
    sets the type bit and stamps ``log_append_time`` (on the wrapper, or on each message).
    """
    if compression not in _compression.CODEC_NAMES:
        raise UnsupportedCompression(f"unknown compression codec {compression}")
    if compression == _compression.ZSTD:
        raise UnsupportedCompression(f"zstd is not allowed with message format magic {magic}")
    if magic not in (0, 1):
        raise ValueError(f"legacy magic must be 0 or 1, not {magic}")
    type_bit = LEGACY_TIMESTAMP_TYPE_MASK if magic == 1 and timestamp_type == LOG_APPEND_TIME else 0

    def timestamp_of(record: LegacyRecord) -> int | None:
        if magic == 0:
            return None
        if type_bit and log_append_time is not None:
            return log_append_time
        return NO_TIMESTAMP if record.timestamp is None else record.timestamp

    out = bytearray()
    if compression == _compression.NONE:
        for record in records:
            encode_message(out, record.offset, magic, type_bit, timestamp_of(record), record.key, record.value)
        return bytes(out)
    if not records:
        return b""
    inner = bytearray()
    first_offset = records[0].offset
    for record in records:
        inner_offset = record.offset - first_offset if magic == 1 else record.offset
        # Inner messages are CreateTime; a LogAppendTime wrapper overrides them when read.
        encode_message(inner, inner_offset, magic, 0, timestamp_of(record), record.key, record.value)
    if magic == 1:
        wrapper_timestamp = (
            log_append_time if type_bit and log_append_time is not None
            else max(NO_TIMESTAMP if r.timestamp is None else r.timestamp for r in records)
        )
    else:
        wrapper_timestamp = None
    compressed = _compression.compress(compression, inner, compression_level, magic=magic)
    encode_message(out, records[-1].offset, magic, compression | type_bit, wrapper_timestamp, None, compressed)
    return bytes(out)
