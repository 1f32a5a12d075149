"""Primitive encodings of the Kafka protocol shared by the message codecs and the records.

Readers take a buffer (bytes, bytearray or memoryview) and a position and return
``(value, new_position)``; they raise :class:`~odradek.protocol.errors.DecodeError` on
truncation or on an over-long varint, never IndexError. Writers append to a bytearray.

Unsigned varints are the protocol's (compact lengths, tag numbers); signed varints and
varlongs use zigzag, as in the record format.
"""

from __future__ import annotations

import struct

from .errors import DecodeError

INT8 = struct.Struct(">b")
INT16 = struct.Struct(">h")
INT32 = struct.Struct(">i")
INT64 = struct.Struct(">q")
UINT16 = struct.Struct(">H")
UINT32 = struct.Struct(">I")
FLOAT64 = struct.Struct(">d")

# A uvarint holds at most 32 bits (5 bytes); a uvarlong at most 64 bits (10 bytes).
_MAX_VARINT_BYTES = 5
_MAX_VARLONG_BYTES = 10


def read_uvarint(buf, pos: int, max_bytes: int = _MAX_VARINT_BYTES) -> tuple[int, int]:
    """Read an unsigned LEB128 varint of at most ``max_bytes`` bytes."""
    value = 0
    shift = 0
    end = len(buf)
    for _i in range(max_bytes):
        if pos >= end:
            raise DecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise DecodeError(f"varint longer than {max_bytes} bytes")


def read_uvarlong(buf, pos: int) -> tuple[int, int]:
    return read_uvarint(buf, pos, _MAX_VARLONG_BYTES)


def read_varint(buf, pos: int) -> tuple[int, int]:
    """Read a zigzag-encoded signed 32-bit varint."""
    raw, pos = read_uvarint(buf, pos, _MAX_VARINT_BYTES)
    if raw > 0xFFFFFFFF:
        raise DecodeError("varint out of 32-bit range")
    return (raw >> 1) ^ -(raw & 1), pos


def read_varlong(buf, pos: int) -> tuple[int, int]:
    """Read a zigzag-encoded signed 64-bit varlong."""
    raw, pos = read_uvarint(buf, pos, _MAX_VARLONG_BYTES)
    if raw > 0xFFFFFFFFFFFFFFFF:
        raise DecodeError("varlong out of 64-bit range")
    return (raw >> 1) ^ -(raw & 1), pos


def write_uvarint(out: bytearray, value: int) -> None:
    """Append an unsigned varint (value must be >= 0)."""
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def write_varint(out: bytearray, value: int) -> None:
    """Append a zigzag-encoded signed 32-bit varint."""
    write_uvarint(out, ((value << 1) ^ (value >> 31)) & 0xFFFFFFFF)


def write_varlong(out: bytearray, value: int) -> None:
    """Append a zigzag-encoded signed 64-bit varlong."""
    write_uvarint(out, ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


def uvarint_size(value: int) -> int:
    size = 1
    while value > 0x7F:
        value >>= 7
        size += 1
    return size


def varint_size(value: int) -> int:
    return uvarint_size(((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)
