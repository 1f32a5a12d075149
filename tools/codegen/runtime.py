"""Shared runtime of the generated message codecs: base classes and the primitive readers and
writers the generated encode/decode functions call.

Readers take ``(buf, pos)`` where ``buf`` is bytes, a bytearray or a flat unsigned-byte memoryview, and return
``(value, new_pos)``. They check every length against the bytes that remain *before* slicing or
allocating, and raise :class:`DecodeError` for truncation, negative lengths (other than -1 / 0
for a null where the field is nullable) and over-long varints. Fixed-width fields are read by the
generated code with precomputed ``struct.Struct`` objects; the ``struct.error`` a truncated buffer
raises there is turned into a DecodeError by :meth:`Message.decode_from`, the only entry point.

Writers append to a bytearray. ``parts`` (see :meth:`Message.encode_parts`) is None except when
the caller wants records values that are not bytes-like (file regions) passed through untouched.
"""

from __future__ import annotations

import struct
from uuid import UUID, SafeUUID

from ..errors import DecodeError, ProtocolError, UnsupportedVersion

__all__ = [
    "Struct", "Message", "FieldInfo", "DecodeError", "UNSET", "ZERO_UUID", "new",
]

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_pack_i16 = _I16.pack
_pack_i32 = _I32.pack
_unpack_i16 = _I16.unpack_from
_unpack_i32 = _I32.unpack_from

new = object.__new__
ZERO_UUID = UUID(int=0)
_BYTES_LIKE = (bytes, bytearray, memoryview)
# encode() leaves records values at least this large out of its buffer and joins them in at
# the end: one copy of the records instead of two (into the buffer, then bytes(buffer)). Below
# about 2 KiB the extra chunk costs as much as the copy it saves (benchmarks/protocol_codecs.py).
_JOIN_RECORDS_MIN_SIZE = 2 * 1024


class _JoinedChunks(list):
    """The ``parts`` list encode() hands the encoders: bytes chunks and large bytes-like records
    values, in order, for one b"".join. Unlike encode_parts() it takes no file regions."""

    __slots__ = ()
_NULL_I16 = b"\xff\xff"
_NULL_I32 = b"\xff\xff\xff\xff"


class _Unset:
    """Marks a keyword argument left out, where the default is a fresh mutable object."""

    __slots__ = ()

    def __repr__(self):
        return "UNSET"


UNSET = _Unset()


class FieldInfo:
    """What the schema says about one field of a generated class (for introspection and tests).

    ``present``, ``nullable`` and ``tagged`` are bit masks over versions: bit v set means "at
    version v". ``struct`` is the element class for struct and struct-array fields.
    """

    __slots__ = ("attr", "name", "type", "is_array", "struct", "present", "nullable", "tagged",
                 "tag", "ignorable", "default_null", "map_key", "entity_type")

    def __init__(self, attr, name, type, is_array, struct, present, nullable, tagged, tag,
                 ignorable, default_null, map_key, entity_type):
        self.attr = attr
        self.name = name
        self.type = type
        self.is_array = is_array
        self.struct = struct
        self.present = present
        self.nullable = nullable
        self.tagged = tagged
        self.tag = tag
        self.ignorable = ignorable
        self.default_null = default_null
        self.map_key = map_key
        self.entity_type = entity_type

    def __repr__(self):
        return f"FieldInfo({self.attr!r}, {self.type!r}, array={self.is_array})"


class Struct:
    """Base of every generated class: slot-wise equality and a readable repr."""

    __slots__ = ()
    FIELDS: tuple = ()
    __hash__ = None  # mutable value objects

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        for name in self.__slots__:
            if getattr(self, name) != getattr(other, name):
                return False
        return True

    def __repr__(self):
        items = []
        for name in self.__slots__:
            value = getattr(self, name)
            if name == "unknown_tagged_fields" and not value:
                continue
            if isinstance(value, memoryview):
                value = f"<{value.nbytes} bytes>"
            else:
                value = repr(value)
            items.append(f"{name}={value}")
        return f"{type(self).__qualname__}({', '.join(items)})"


def _as_buffer(data):
    """bytes and bytearray are decoded as they are (indexing and slicing them is cheaper than a
    memoryview's); anything else becomes a flat unsigned-byte memoryview."""
    kind = type(data)
    if kind is bytes or kind is bytearray:
        return data
    view = data if kind is memoryview else memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class Message(Struct):
    """Base of the top-level generated classes (requests, responses, headers, records).

    Subclasses set ``_ENCODERS`` / ``_DECODERS``: version -> generated function.
    """

    __slots__ = ()
    _ENCODERS: dict = {}
    _DECODERS: dict = {}
    API_KEY = None
    MIN_VERSION = 0
    MAX_VERSION = 0
    FLEXIBLE_MIN_VERSION = None

    def _encoder(self, version):
        encoder = self._ENCODERS.get(version)
        if encoder is None:
            raise UnsupportedVersion(
                f"{type(self).__name__} has no version {version} "
                f"(supported {self.MIN_VERSION}-{self.MAX_VERSION})"
            )
        return encoder

    def _run_encoder(self, version, out, parts):
        encoder = self._encoder(version)
        try:
            encoder(self, out, parts)
        except (struct.error, TypeError, AttributeError, UnicodeEncodeError) as exc:
            # A value of the wrong type or range (an int too large for its field, None where the
            # version has no null, a str with lone surrogates): one exception type for callers.
            raise ValueError(f"{type(self).__name__} v{version} cannot be encoded: {exc}") from exc

    def encode(self, version: int) -> bytes:
        """The message body at ``version`` as bytes."""
        out = bytearray()
        joined = _JoinedChunks()
        self._run_encoder(version, out, joined)
        if not joined:
            return bytes(out)
        joined.append(out)
        return b"".join(joined)

    def write(self, out: bytearray, version: int) -> None:
        """Append the message body at ``version`` to ``out``."""
        self._run_encoder(version, out, None)

    def encode_parts(self, version: int) -> list:
        """The encoding as a list of bytes chunks, with each records value that is not bytes-like
        (for example a file region with a ``size``) in place, its length prefix already written
        into the chunk before it. Joining the chunks with those values' bytes gives encode()."""
        out = bytearray()
        parts: list = []
        self._run_encoder(version, out, parts)
        if out:
            parts.append(bytes(out))
        return parts

    @classmethod
    def decode(cls, data, version: int):
        """Decode a message from the start of ``data`` (bytes, bytearray or memoryview).
        Trailing bytes after the message are not an error here; use decode_from to see where
        the message ended. Records fields are memoryview slices of ``data`` (no copy), so a
        bytearray passed in cannot be resized while they are alive."""
        return cls.decode_from(data, 0, version)[0]

    @classmethod
    def decode_from(cls, data, pos: int, version: int):
        """Decode a message starting at ``pos``; returns ``(message, position after it)``."""
        decoder = cls._DECODERS.get(version)
        if decoder is None:
            raise UnsupportedVersion(
                f"{cls.__name__} has no version {version} (supported {cls.MIN_VERSION}-{cls.MAX_VERSION})"
            )
        buf = _as_buffer(data)
        try:
            return decoder(buf, pos)
        except ProtocolError:
            raise
        except (struct.error, IndexError, ValueError, OverflowError) as exc:
            # struct.error: a fixed-width field past the end; UnicodeDecodeError (a ValueError):
            # a string that is not UTF-8. Both mean the input is bad, never our state.
            raise DecodeError(f"{cls.__name__} v{version}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Readers


def r_uvarint(buf, pos):
    """Unsigned varint of at most 5 bytes (lengths, tags, counts)."""
    try:
        byte = buf[pos]
    except IndexError:
        raise DecodeError("truncated varint") from None
    if byte < 0x80:
        return byte, pos + 1
    value = byte & 0x7F
    shift = 7
    for _ in range(4):
        pos += 1
        try:
            byte = buf[pos]
        except IndexError:
            raise DecodeError("truncated varint") from None
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value > 0xFFFFFFFF:
                raise DecodeError("varint out of 32-bit range")
            return value, pos + 1
        shift += 7
    raise DecodeError("varint longer than 5 bytes")


def _truncated(what, pos, length, buf):
    return DecodeError(f"{what} of {length} bytes at {pos} runs past the end ({len(buf)} bytes)")


def bad_length(what, pos, length, buf):
    if length < 0:
        return DecodeError(f"{what} length {length} at {pos} is not allowed here")
    return DecodeError(f"{what} length {length} at {pos} exceeds the remaining bytes ({len(buf)} in all)")


# Strings are read as Kafka reads them (new String(bytes, UTF_8)): malformed UTF-8 becomes U+FFFD
# and the request is still answered.

def r_str(buf, pos):
    (n,) = _unpack_i16(buf, pos)
    pos += 2
    end = pos + n
    if n < 0 or end > len(buf):
        raise bad_length("string", pos - 2, n, buf)
    return str(buf[pos:end], "utf-8", "replace"), end


def r_nstr(buf, pos):
    (n,) = _unpack_i16(buf, pos)
    pos += 2
    end = pos + n
    if n < 0 or end > len(buf):
        if n == -1:
            return None, pos
        raise bad_length("string", pos - 2, n, buf)
    return str(buf[pos:end], "utf-8", "replace"), end


# Compact readers: the first byte is read directly (IndexError at the end of the buffer becomes
# a DecodeError in Message.decode_from); only lengths of 127 and more take the varint path.

def r_cstr(buf, pos):
    n = buf[pos]
    if n > 127:
        n, pos = r_uvarint(buf, pos)
    else:
        pos += 1
    end = pos + n - 1
    if n == 0 or end > len(buf):
        raise bad_length("compact string", pos, n - 1, buf)
    return str(buf[pos:end], "utf-8", "replace"), end


def r_cnstr(buf, pos):
    n = buf[pos]
    if n > 127:
        n, pos = r_uvarint(buf, pos)
    else:
        pos += 1
    if n == 0:
        return None, pos
    end = pos + n - 1
    if end > len(buf):
        raise bad_length("compact string", pos, n - 1, buf)
    return str(buf[pos:end], "utf-8", "replace"), end


def r_bytes(buf, pos):
    (n,) = _unpack_i32(buf, pos)
    pos += 4
    end = pos + n
    if n < 0 or end > len(buf):
        raise bad_length("bytes", pos - 4, n, buf)
    return bytes(buf[pos:end]), end


def r_nbytes(buf, pos):
    (n,) = _unpack_i32(buf, pos)
    pos += 4
    end = pos + n
    if n < 0 or end > len(buf):
        if n == -1:
            return None, pos
        raise bad_length("bytes", pos - 4, n, buf)
    return bytes(buf[pos:end]), end


def r_cbytes(buf, pos):
    n = buf[pos]
    if n > 127:
        n, pos = r_uvarint(buf, pos)
    else:
        pos += 1
    end = pos + n - 1
    if n == 0 or end > len(buf):
        raise bad_length("compact bytes", pos, n - 1, buf)
    return bytes(buf[pos:end]), end


def r_cnbytes(buf, pos):
    n = buf[pos]
    if n > 127:
        n, pos = r_uvarint(buf, pos)
    else:
        pos += 1
    if n == 0:
        return None, pos
    end = pos + n - 1
    if end > len(buf):
        raise bad_length("compact bytes", pos, n - 1, buf)
    return bytes(buf[pos:end]), end


# Records are returned as memoryview slices of the input: no copy of the batch bytes.

def r_rec(buf, pos):
    (n,) = _unpack_i32(buf, pos)
    pos += 4
    end = pos + n
    if n < 0 or end > len(buf):
        raise bad_length("records", pos - 4, n, buf)
    return memoryview(buf)[pos:end], end


def r_nrec(buf, pos):
    (n,) = _unpack_i32(buf, pos)
    pos += 4
    end = pos + n
    if n < 0 or end > len(buf):
        if n == -1:
            return None, pos
        raise bad_length("records", pos - 4, n, buf)
    return memoryview(buf)[pos:end], end


def r_crec(buf, pos):
    n = buf[pos]
    if n > 127:
        n, pos = r_uvarint(buf, pos)
    else:
        pos += 1
    end = pos + n - 1
    if n == 0 or end > len(buf):
        raise bad_length("compact records", pos, n - 1, buf)
    return memoryview(buf)[pos:end], end


def r_cnrec(buf, pos):
    n = buf[pos]
    if n > 127:
        n, pos = r_uvarint(buf, pos)
    else:
        pos += 1
    if n == 0:
        return None, pos
    end = pos + n - 1
    if end > len(buf):
        raise bad_length("compact records", pos, n - 1, buf)
    return memoryview(buf)[pos:end], end


# Array counts: at most one element per remaining byte, checked before anything is allocated
# (an element takes at least one byte in every schema that has array elements of zero size...
# none does; Kafka applies the same bound).

def r_alen(buf, pos):
    (n,) = _unpack_i32(buf, pos)
    pos += 4
    if n < 0 or n > len(buf) - pos:
        raise bad_length("array", pos - 4, n, buf)
    return n, pos


def r_nalen(buf, pos):
    (n,) = _unpack_i32(buf, pos)
    pos += 4
    if n < 0 or n > len(buf) - pos:
        if n == -1:
            return -1, pos
        raise bad_length("array", pos - 4, n, buf)
    return n, pos


def r_calen(buf, pos):
    n = buf[pos]
    if n > 127:
        n, pos = r_uvarint(buf, pos)
    else:
        pos += 1
    n -= 1
    if n < 0 or n > len(buf) - pos:
        raise bad_length("compact array", pos, n, buf)
    return n, pos


def r_cnalen(buf, pos):
    n = buf[pos]
    if n > 127:
        n, pos = r_uvarint(buf, pos)
    else:
        pos += 1
    n -= 1
    if n > len(buf) - pos:
        raise bad_length("compact array", pos, n, buf)
    return n, pos


def r_fixed_array(buf, pos, n, code, size):
    """``n`` fixed-width items of struct format ``code`` as a list."""
    end = pos + n * size
    if end > len(buf):
        raise _truncated("array", pos, n * size, buf)
    return list(struct.unpack_from(f">{n}{code}", buf, pos)), end


def uuid_from(raw: bytes) -> UUID:
    """A UUID from 16 bytes, skipping UUID.__init__'s argument parsing (hot in Fetch/Metadata)."""
    value = new(UUID)
    object.__setattr__(value, "int", int.from_bytes(raw, "big"))
    object.__setattr__(value, "is_safe", SafeUUID.unknown)
    return value


def r_uuid(buf, pos):
    end = pos + 16
    if end > len(buf):
        raise _truncated("uuid", pos, 16, buf)
    return uuid_from(buf[pos:end]), end


def r_tagged_unknown(buf, pos):
    """A tagged-field section none of whose tags is known here: (list of (tag, bytes), pos)."""
    count, pos = r_uvarint(buf, pos)
    unknown = []
    for _ in range(count):
        tag, pos = r_uvarint(buf, pos)
        size, pos = r_uvarint(buf, pos)
        end = pos + size
        if end > len(buf):
            raise _truncated("tagged field", pos, size, buf)
        unknown.append((tag, bytes(buf[pos:end])))
        pos = end
    return unknown, pos


def tagged_size_mismatch(tag, start, end, pos):
    return DecodeError(f"tagged field {tag} declares {end - start} bytes but its value takes {pos - start}")


def r_tag_header(buf, pos):
    """(tag, start, end) of the next tagged field, with its size checked."""
    tag, pos = r_uvarint(buf, pos)
    size, pos = r_uvarint(buf, pos)
    end = pos + size
    if end > len(buf):
        raise _truncated("tagged field", pos, size, buf)
    return tag, pos, end


# ---------------------------------------------------------------------------------------------
# Writers


def w_uvarint(out, value):
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _null_error(what):
    return ValueError(f"{what} is None but this version cannot carry a null")


def w_str(out, value):
    if value is None:
        raise _null_error("string")
    raw = value.encode("utf-8")
    if len(raw) > 0x7FFF:
        raise ValueError(f"string of {len(raw)} bytes does not fit an int16 length")
    out += _pack_i16(len(raw))
    out += raw


def w_nstr(out, value):
    if value is None:
        out += _NULL_I16
        return
    raw = value.encode("utf-8")
    if len(raw) > 0x7FFF:
        raise ValueError(f"string of {len(raw)} bytes does not fit an int16 length")
    out += _pack_i16(len(raw))
    out += raw


def w_cstr(out, value):
    if value is None:
        raise _null_error("string")
    raw = value.encode("utf-8")
    w_uvarint(out, len(raw) + 1)
    out += raw


def w_cnstr(out, value):
    if value is None:
        out.append(0)
        return
    raw = value.encode("utf-8")
    w_uvarint(out, len(raw) + 1)
    out += raw


def _blob_len(value):
    return value.nbytes if type(value) is memoryview else len(value)


def w_bytes(out, value):
    if value is None:
        raise _null_error("bytes")
    out += _pack_i32(_blob_len(value))
    out += value


def w_nbytes(out, value):
    if value is None:
        out += _NULL_I32
        return
    out += _pack_i32(_blob_len(value))
    out += value


def w_cbytes(out, value):
    if value is None:
        raise _null_error("bytes")
    w_uvarint(out, _blob_len(value) + 1)
    out += value


def w_cnbytes(out, value):
    if value is None:
        out.append(0)
        return
    w_uvarint(out, _blob_len(value) + 1)
    out += value


def w_rec(out, parts, value, nullable, compact):
    """A records field: bytes-like values are copied in; other objects (file regions) must have
    a ``size`` and are passed through ``parts`` after their length prefix."""
    if value is None:
        if not nullable:
            raise _null_error("records")
        if compact:
            out.append(0)
        else:
            out += _NULL_I32
        return
    if isinstance(value, _BYTES_LIKE):
        size = _blob_len(value)
        inline = True
    else:
        size = value.size
        inline = False
    if compact:
        w_uvarint(out, size + 1)
    else:
        out += _pack_i32(size)
    if inline:
        if size >= _JOIN_RECORDS_MIN_SIZE and type(parts) is _JoinedChunks:
            parts.append(bytes(out))
            out.clear()
            parts.append(value)
        else:
            out += value
    elif parts is None or type(parts) is _JoinedChunks:
        raise ValueError(
            f"records value of type {type(value).__name__} is not bytes-like; use encode_parts()"
        )
    else:
        parts.append(bytes(out))
        out.clear()
        parts.append(value)


def w_alen(out, value):
    if value is None:
        raise _null_error("array")
    out += _pack_i32(len(value))


def w_nalen(out, value):
    out += _NULL_I32 if value is None else _pack_i32(len(value))


def w_calen(out, value):
    if value is None:
        raise _null_error("array")
    w_uvarint(out, len(value) + 1)


def w_cnalen(out, value):
    if value is None:
        out.append(0)
    else:
        w_uvarint(out, len(value) + 1)


# Fixed-width arrays are mostly short (replica lists, partition indexes): a precompiled
# struct.Struct per element count up to this many, instead of formatting a struct format string
# per array. Built per element code on first use, so importing costs nothing.
_SHORT_ARRAY_MAX = 16
_SHORT_ARRAY_PACKERS: dict = {}


def _short_array_packers(code):
    packers = tuple(struct.Struct(f">{count}{code}").pack for count in range(_SHORT_ARRAY_MAX + 1))
    _SHORT_ARRAY_PACKERS[code] = packers
    return packers


def w_fixed_array(out, values, code):
    count = len(values)
    if count == 0:
        return
    if count <= _SHORT_ARRAY_MAX:
        packers = _SHORT_ARRAY_PACKERS.get(code) or _short_array_packers(code)
        out += packers[count](*values)
    else:
        out += struct.pack(f">{count}{code}", *values)


def w_tagged(out, known, unknown):
    """The tagged-field section: known (tag, bytes) pairs plus the unknown ones, by tag."""
    fields = list(known)
    if unknown:
        fields.extend(unknown)
        fields.sort(key=_tag_of)
    w_uvarint(out, len(fields))
    for tag, raw in fields:
        w_uvarint(out, tag)
        w_uvarint(out, len(raw))
        out += raw


def _tag_of(item):
    return item[0]


def no_tagged_fields_error(cls_name, versions):
    return ValueError(f"{cls_name} has unknown tagged fields but version(s) {versions} are not flexible")


def cannot_carry(cls_name, attr, versions):
    return ValueError(
        f"{cls_name}.{attr} is set to a non-default value that version(s) {versions} cannot carry"
    )
