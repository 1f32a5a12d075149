"""Record batches (magic 2): decode, validate, build; control records (transaction markers).

A batch is the 61-byte header of :mod:`.header` followed by ``records_count`` records, the whole
record section compressed as one blob when the compression bits are set. One record is::

    length            varint   bytes that follow, up to the end of this record
    attributes        int8     unused by Kafka, kept as read
    timestamp_delta   varlong  from base_timestamp
    offset_delta      varint   from base_offset
    key_length        varint   -1: null key
    key               bytes
    value_length      varint   -1: null value
    value             bytes
    header_count      varint
    headers           header_count x (key_length varint, key utf-8, value_length varint (-1 null), value)

Decoding checks what Kafka's ``DefaultRecordBatch`` / ``DefaultRecord`` readers check: the CRC,
that the batch length covers its header and lies inside the buffer, that each record's fields end
exactly where its length says, and that the record section holds exactly ``records_count``
records. Every failure raises :class:`~odradek.protocol.errors.CorruptRecord` (error code
CORRUPT_MESSAGE) or a compression error from :mod:`.compression`; nothing else escapes.

The timestamp type bit means LogAppendTime: then every record's timestamp *is* the batch's
max_timestamp (the broker stamped it), whatever the deltas say. The delete-horizon bit means the
log cleaner has put the delete horizon in base_timestamp.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple, Sequence

import crc32c

from ..errors import CorruptRecord, DecodeError
from ..primitives import read_varlong, write_varint, write_varlong
from . import compression as _compression
from .header import (
    ATTRIBUTES_OFFSET,
    BATCH_HEADER_SIZE,
    COMPRESSION_MASK,
    CONTROL_MASK,
    CRC_OFFSET,
    DELETE_HORIZON_MASK,
    LOG_OVERHEAD,
    MAGIC_OFFSET,
    TIMESTAMP_TYPE_MASK,
    TRANSACTIONAL_MASK,
    RecordBatchHeader,
    batch_crc_matches,
    read_batch_header,
)

CREATE_TIME = 0
LOG_APPEND_TIME = 1
NO_TIMESTAMP = -1

# What decoding allows a compressed batch to inflate to when the caller does not say.
DEFAULT_MAX_DECOMPRESSED_SIZE = 128 * 1024 * 1024

_HEADER = struct.Struct(">qiibIhiqqqhii")
_UINT32 = struct.Struct(">I")
_CONTROL_KEY = struct.Struct(">hh")
_END_TXN_MARKER = struct.Struct(">hi")


@dataclass(slots=True)
class Record:
    """One record of a v2 batch, with its offset and timestamp relative to the batch."""

    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    attributes: int = 0


@dataclass(slots=True)
class RecordBatch:
    """A decoded magic-2 batch: its header fields and its records (already decompressed)."""

    base_offset: int
    partition_leader_epoch: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records: list[Record]
    crc: int = 0
    size_in_bytes: int = 0
    magic: int = 2

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        return LOG_APPEND_TIME if self.attributes & TIMESTAMP_TYPE_MASK else CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def delete_horizon(self) -> int | None:
        """The log cleaner's delete horizon (ms), or None when the batch carries none."""
        return self.base_timestamp if self.attributes & DELETE_HORIZON_MASK else None

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    def offset_of(self, record: Record) -> int:
        return self.base_offset + record.offset_delta

    def timestamp_of(self, record: Record) -> int:
        if self.attributes & TIMESTAMP_TYPE_MASK:
            return self.max_timestamp
        return self.base_timestamp + record.timestamp_delta


class IncompleteBatch(NamedTuple):
    """The partial batch at the end of a buffer, as a fetch response may end with one.

    Kafka fills a fetch response up to the requested size and lets the last batch be cut off;
    consumers skip it and fetch it again from its offset. :func:`iter_batches` yields one of
    these, last, instead of raising. ``position`` is where it starts in the buffer,
    ``available`` how many of its bytes are there, ``size`` its full size in bytes when the first
    12 bytes (offset and length) were present to tell, else None.
    """

    position: int
    available: int
    size: int | None


# --- decoding ------------------------------------------------------------------------------------


def decode_batch(buf, pos: int = 0, *, max_decompressed_size: int) -> RecordBatch:
    """Decode and verify the complete magic-2 batch at ``pos`` in ``buf``.

    Raises CorruptRecord (truncated batch, wrong magic, CRC mismatch, malformed record, record
    count mismatch), DecompressionLimitExceeded, UnsupportedCompression.
    """
    header = _read_complete_header(buf, pos)
    if not batch_crc_matches(buf, pos, header):
        raise CorruptRecord(f"record batch at {pos}: CRC mismatch (header says {header.crc:#010x})")
    records = _decode_records_section(buf, pos, header, max_decompressed_size)
    return RecordBatch(
        base_offset=header.base_offset,
        partition_leader_epoch=header.partition_leader_epoch,
        attributes=header.attributes,
        last_offset_delta=header.last_offset_delta,
        base_timestamp=header.base_timestamp,
        max_timestamp=header.max_timestamp,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        records=records,
        crc=header.crc,
        size_in_bytes=header.size_in_bytes,
    )


def _read_complete_header(buf, pos: int) -> RecordBatchHeader:
    available = len(buf) - pos
    if available < BATCH_HEADER_SIZE:
        raise CorruptRecord(f"record batch at {pos}: truncated header ({available} bytes)")
    try:
        header = read_batch_header(buf, pos)
    except DecodeError as exc:  # cannot happen after the length check; keep the contract anyway
        raise CorruptRecord(str(exc)) from None
    if header.size_in_bytes > available:
        raise CorruptRecord(
            f"record batch at {pos}: truncated, {header.size_in_bytes} bytes declared, {available} present"
        )
    if header.records_count < 0:
        raise CorruptRecord(f"record batch at {pos}: negative record count {header.records_count}")
    return header


def _decode_records_section(buf, pos: int, header: RecordBatchHeader, max_decompressed_size: int) -> list[Record]:
    start = pos + BATCH_HEADER_SIZE
    end = pos + header.size_in_bytes
    codec = header.attributes & COMPRESSION_MASK
    if codec == _compression.NONE:
        section, section_start, section_end = buf, start, end
    else:
        section = _compression.decompress(
            codec, memoryview(buf)[start:end], max_size=max_decompressed_size, magic=2
        )
        section_start, section_end = 0, len(section)
    return decode_records(section, section_start, section_end, header.records_count)


def decode_records(buf, pos: int, end: int, count: int) -> list[Record]:
    """Decode exactly ``count`` records from ``buf[pos:end]``, which they must fill exactly."""
    records = []
    append = records.append
    try:
        for index in range(count):
            if pos >= end:
                raise CorruptRecord(f"record batch declares {count} records but holds {index}")
            record, pos = _decode_record(buf, pos, end)
            append(record)
    except DecodeError as exc:  # a varint running past the data or over-long
        raise CorruptRecord(f"malformed record: {exc}") from None
    if pos != end:
        raise CorruptRecord(f"record batch holds {end - pos} bytes after its {count} declared records")
    return records


def _varint(buf, pos: int, limit: int) -> tuple[int, int]:
    """A zigzag varint (at most 5 bytes, 32 bits) that must end at or before ``limit``.

    Inlined rather than calling primitives.read_varint: it runs ~5 times per record."""
    raw = 0
    shift = 0
    while pos < limit and shift < 35:
        byte = buf[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if byte < 0x80:
            if raw > 0xFFFFFFFF:
                raise CorruptRecord("record varint out of 32-bit range")
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7
    raise CorruptRecord("record varint runs past the record or is longer than 5 bytes")


def _decode_record(buf, pos: int, end: int) -> tuple[Record, int]:
    length, pos = _varint(buf, pos, end)
    if length < 1 or length > end - pos:
        raise CorruptRecord(f"record length {length} outside the batch or too short")
    limit = pos + length
    attributes = buf[pos]
    timestamp_delta, pos = read_varlong(buf, pos + 1)  # DecodeError is turned into CorruptRecord
    if pos > limit:
        raise CorruptRecord("record timestamp runs past the record's length")
    offset_delta, pos = _varint(buf, pos, limit)

    size, pos = _varint(buf, pos, limit)
    if size == -1:
        key = None
    elif 0 <= size <= limit - pos:
        key = bytes(buf[pos : pos + size])
        pos += size
    else:
        raise CorruptRecord(f"record key length {size} invalid")

    size, pos = _varint(buf, pos, limit)
    if size == -1:
        value = None
    elif 0 <= size <= limit - pos:
        value = bytes(buf[pos : pos + size])
        pos += size
    else:
        raise CorruptRecord(f"record value length {size} invalid")

    header_count, pos = _varint(buf, pos, limit)
    if header_count < 0:
        raise CorruptRecord(f"negative record header count {header_count}")
    headers = []
    for _ in range(header_count):
        size, pos = _varint(buf, pos, limit)
        if size < 0 or size > limit - pos:
            raise CorruptRecord(f"record header key length {size} invalid")
        try:
            header_key = str(buf[pos : pos + size], "utf-8", "replace")  # as Kafka's Utils.utf8: U+FFFD
        except UnicodeDecodeError:
            raise CorruptRecord("record header key is not UTF-8") from None
        pos += size
        size, pos = _varint(buf, pos, limit)
        if size == -1:
            header_value = None
        elif 0 <= size <= limit - pos:
            header_value = bytes(buf[pos : pos + size])
            pos += size
        else:
            raise CorruptRecord(f"record header value length {size} invalid")
        headers.append((header_key, header_value))
    if pos != limit:
        raise CorruptRecord(f"record fields end {pos - limit:+d} bytes from its declared length")
    return Record(offset_delta, timestamp_delta, key, value, headers, attributes), pos


def iter_batches(
    buf, *, max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE, allow_incomplete: bool = True
) -> Iterator[RecordBatch | IncompleteBatch]:
    """Decode the concatenated magic-2 batches of ``buf`` in order.

    A partial batch at the end (fewer bytes than its length says, or fewer than a header) is
    yielded as an :class:`IncompleteBatch`, last, when ``allow_incomplete`` (fetch responses);
    otherwise (produce requests) it raises CorruptRecord. Anything wrong in a complete batch
    raises as in :func:`decode_batch`.
    """
    for position, header in iter_batch_headers(buf, allow_incomplete=allow_incomplete):
        if isinstance(header, IncompleteBatch):
            yield header
            return
        yield decode_batch(buf, position, max_decompressed_size=max_decompressed_size)


def iter_batch_headers(buf, *, allow_incomplete: bool = True) -> Iterator[tuple[int, RecordBatchHeader | IncompleteBatch]]:
    """``(position, header)`` of each batch in ``buf`` without decoding or checking records.

    Magic and minimum length are checked (CorruptRecord); the CRC is not. The trailing partial
    batch is handled as in :func:`iter_batches`.
    """
    pos, end = 0, len(buf)
    while pos < end:
        available = end - pos
        size = None
        if available >= LOG_OVERHEAD:
            size = LOG_OVERHEAD + int.from_bytes(buf[pos + 8 : pos + 12], "big", signed=True)
        if available < BATCH_HEADER_SIZE or (size is not None and size > available):
            if available > MAGIC_OFFSET and buf[pos + MAGIC_OFFSET] != 2:
                raise CorruptRecord(f"record batch at {pos}: magic {buf[pos + MAGIC_OFFSET]}, expected 2")
            if size is not None and size < BATCH_HEADER_SIZE:
                raise CorruptRecord(f"record batch at {pos}: length {size - LOG_OVERHEAD} below the header size")
            if not allow_incomplete:
                raise CorruptRecord(f"record batch at {pos}: truncated ({available} bytes present)")
            yield pos, IncompleteBatch(pos, available, size)
            return
        try:
            header = read_batch_header(buf, pos)
        except DecodeError as exc:
            raise CorruptRecord(str(exc)) from None
        yield pos, header
        pos += header.size_in_bytes


# --- Kafka's batch-level checks on append ------------------------------------------------------

INVALID_RECORD = 87


def validate_batch_for_append(buf, pos: int = 0, *, max_decompressed_size: int) -> RecordBatch:
    """Decode the batch at ``pos`` and apply the batch checks Kafka's ``LogValidator.validateBatch``
    makes on a v2 batch appended by a client (pure; CorruptRecord with INVALID_RECORD):

    * a positive record count equal to last_offset_delta + 1;
    * no control batch (only the broker writes markers -- callers appending markers skip this);
    * a batch with a producer id has a base sequence >= 0.

    Not checked here, because they need the topic's configuration and clock: timestamps
    (``message.timestamp.*``, and a client batch stamped LogAppendTime, INVALID_TIMESTAMP) and
    keys on compacted topics. Inner offsets are not refused either: see :func:`assigns_in_place`.
    """
    batch = decode_batch(buf, pos, max_decompressed_size=max_decompressed_size)
    count = len(batch.records)
    if count <= 0:
        raise CorruptRecord("invalid reported count for record batch: 0", error_code=INVALID_RECORD)
    if batch.last_offset_delta + 1 != count:
        raise CorruptRecord(
            f"inconsistent batch offset range: last offset delta {batch.last_offset_delta} with {count} records",
            error_code=INVALID_RECORD,
        )
    if batch.is_control:
        raise CorruptRecord("clients are not allowed to write control records", error_code=INVALID_RECORD)
    if batch.producer_id >= 0 and batch.base_sequence < 0:
        raise CorruptRecord(
            f"invalid sequence number {batch.base_sequence} for producer id {batch.producer_id}",
            error_code=INVALID_RECORD,
        )
    return batch


def assigns_in_place(batch: RecordBatch) -> bool:
    """Whether Kafka keeps this produced batch's bytes and only patches offsets (True), or
    rebuilds it with offsets 0..n-1 (False).

    Uncompressed v2 batches are always patched in place. For a compressed one Kafka compares each
    record's offset (base_offset + offset_delta, as the producer sent it) with its index, and
    rebuilds when any differs rather than rejecting it ("some older clients do not implement the
    internal offsets correctly")."""
    if batch.compression == _compression.NONE:
        return True
    return all(batch.base_offset + record.offset_delta == index for index, record in enumerate(batch.records))


def validate_produce_records(buf, *, max_decompressed_size: int) -> RecordBatch:
    """The one v2 batch of a produce request's records for one partition, validated.

    As Kafka: no batch at all, or more than one v2 batch, is INVALID_RECORD; trailing bytes too
    few to form a batch are ignored (Kafka trims them on append, ``UnifiedLog.trimInvalidBytes``).
    Then :func:`validate_batch_for_append`. Legacy (magic 0/1) data raises CorruptRecord for
    wrong magic; callers route those through :func:`odradek.protocol.records.convert.up_convert`.
    """
    positions = [pos for pos, header in iter_batch_headers(buf) if not isinstance(header, IncompleteBatch)]
    if not positions:
        raise CorruptRecord("produce records hold no complete record batch", error_code=INVALID_RECORD)
    if len(positions) > 1:
        raise CorruptRecord(
            f"produce records hold {len(positions)} record batches, Kafka accepts one", error_code=INVALID_RECORD
        )
    return validate_batch_for_append(buf, positions[0], max_decompressed_size=max_decompressed_size)


# --- building ------------------------------------------------------------------------------------


def encode_record(out: bytearray, record: Record) -> None:
    """Append one record in the v2 record format."""
    body = bytearray()
    body.append(record.attributes & 0xFF)
    write_varlong(body, record.timestamp_delta)
    write_varint(body, record.offset_delta)
    _write_nullable_bytes(body, record.key)
    _write_nullable_bytes(body, record.value)
    write_varint(body, len(record.headers))
    for header_key, header_value in record.headers:
        encoded_key = header_key.encode("utf-8")
        write_varint(body, len(encoded_key))
        body += encoded_key
        _write_nullable_bytes(body, header_value)
    write_varint(out, len(body))
    out += body


def _write_nullable_bytes(out: bytearray, data: bytes | None) -> None:
    if data is None:
        write_varint(out, -1)
    else:
        write_varint(out, len(data))
        out += data


def build_batch(
    records: Sequence[Record],
    *,
    base_offset: int = 0,
    base_timestamp: int = 0,
    max_timestamp: int | None = None,
    compression: int = _compression.NONE,
    compression_level: int | None = None,
    timestamp_type: int = CREATE_TIME,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    control: bool = False,
    partition_leader_epoch: int = -1,
    delete_horizon: int | None = None,
    last_offset_delta: int | None = None,
) -> bytes:
    """Encode a magic-2 batch holding ``records``.

    ``max_timestamp`` defaults to the largest record timestamp (base_timestamp + delta), or -1
    for an empty batch as Kafka writes it; ``last_offset_delta`` to the last record's
    offset_delta. With ``delete_horizon`` the delete-horizon bit is set and base_timestamp
    *is* the horizon (so base_timestamp must then be left at its default or equal it).
    """
    if compression not in _compression.CODEC_NAMES:
        raise _compression.UnsupportedCompression(f"unknown compression codec {compression}")
    if delete_horizon is not None:
        base_timestamp = delete_horizon
    if max_timestamp is None:
        max_timestamp = max((base_timestamp + r.timestamp_delta for r in records), default=NO_TIMESTAMP)
    if last_offset_delta is None:
        last_offset_delta = records[-1].offset_delta if records else 0
    attributes = compression
    if timestamp_type == LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_MASK
    if transactional:
        attributes |= TRANSACTIONAL_MASK
    if control:
        attributes |= CONTROL_MASK
    if delete_horizon is not None:
        attributes |= DELETE_HORIZON_MASK

    section = bytearray()
    for record in records:
        encode_record(section, record)
    if compression != _compression.NONE:
        section = _compression.compress(compression, section, compression_level, magic=2)

    out = bytearray(BATCH_HEADER_SIZE)
    _HEADER.pack_into(
        out,
        0,
        base_offset,
        BATCH_HEADER_SIZE - LOG_OVERHEAD + len(section),
        partition_leader_epoch,
        2,
        0,  # CRC, filled in below
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    )
    out += section
    _UINT32.pack_into(out, CRC_OFFSET, crc32c.crc32c(memoryview(out)[ATTRIBUTES_OFFSET:]))
    return bytes(out)


# --- control records -----------------------------------------------------------------------------

# Kafka's ControlRecordType ids (the key's "type" field).
CONTROL_ABORT = 0
CONTROL_COMMIT = 1
CONTROL_LEADER_CHANGE = 2
CONTROL_SNAPSHOT_HEADER = 3
CONTROL_SNAPSHOT_FOOTER = 4
CONTROL_KRAFT_VERSION = 5
CONTROL_KRAFT_VOTERS = 6

CONTROL_KEY_VERSION = 0
END_TXN_MARKER_VERSION = 0


class ControlRecord(NamedTuple):
    """A control record's key (version, type); for commit/abort markers also the marker value
    (version, coordinator epoch), else None for those two."""

    key_version: int
    control_type: int
    marker_version: int | None = None
    coordinator_epoch: int | None = None

    @property
    def is_commit(self) -> bool:
        return self.control_type == CONTROL_COMMIT

    @property
    def is_abort(self) -> bool:
        return self.control_type == CONTROL_ABORT


def encode_control_key(control_type: int, version: int = CONTROL_KEY_VERSION) -> bytes:
    return _CONTROL_KEY.pack(version, control_type)


def encode_end_txn_marker(coordinator_epoch: int, version: int = END_TXN_MARKER_VERSION) -> bytes:
    return _END_TXN_MARKER.pack(version, coordinator_epoch)


def parse_control_record(record: Record) -> ControlRecord:
    """Read a control record's key and, for commit/abort, its end-transaction marker value.

    As Kafka does, a key or marker of a newer version is read for the fields this version knows
    (trailing bytes ignored); a negative version or a short key/value is CorruptRecord.
    """
    key = record.key
    if key is None or len(key) < _CONTROL_KEY.size:
        raise CorruptRecord("control record key shorter than version and type")
    key_version, control_type = _CONTROL_KEY.unpack_from(key)
    if key_version < 0:
        raise CorruptRecord(f"control record key version {key_version}")
    if control_type not in (CONTROL_ABORT, CONTROL_COMMIT):
        return ControlRecord(key_version, control_type)
    value = record.value
    if value is None or len(value) < _END_TXN_MARKER.size:
        raise CorruptRecord("end transaction marker value too short")
    marker_version, coordinator_epoch = _END_TXN_MARKER.unpack_from(value)
    if marker_version < 0:
        raise CorruptRecord(f"end transaction marker version {marker_version}")
    return ControlRecord(key_version, control_type, marker_version, coordinator_epoch)


def build_end_txn_marker_batch(
    commit: bool,
    *,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    base_offset: int = 0,
    timestamp: int = 0,
    partition_leader_epoch: int = -1,
) -> bytes:
    """A control batch holding one commit or abort marker, as the transaction coordinator's
    WriteTxnMarkers makes the partition leader append it (transactional + control bits)."""
    marker = Record(
        offset_delta=0,
        timestamp_delta=0,
        key=encode_control_key(CONTROL_COMMIT if commit else CONTROL_ABORT),
        value=encode_end_txn_marker(coordinator_epoch),
    )
    return build_batch(
        [marker],
        base_offset=base_offset,
        base_timestamp=timestamp,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        transactional=True,
        control=True,
        partition_leader_epoch=partition_leader_epoch,
    )


__all__ = [
    "CREATE_TIME",
    "LOG_APPEND_TIME",
    "NO_TIMESTAMP",
    "DEFAULT_MAX_DECOMPRESSED_SIZE",
    "Record",
    "RecordBatch",
    "IncompleteBatch",
    "decode_batch",
    "decode_records",
    "iter_batches",
    "iter_batch_headers",
    "validate_batch_for_append",
    "validate_produce_records",
    "assigns_in_place",
    "encode_record",
    "build_batch",
    "ControlRecord",
    "parse_control_record",
    "encode_control_key",
    "encode_end_txn_marker",
    "build_end_txn_marker_batch",
]
