"""The 61-byte header of a record batch (magic 2), read and patched without touching records.

This is the broker's hot path: a produce request carries record batches as bytes; the broker
reads each batch's header, validates it, patches the base offset (and, for LogAppendTime, the
max timestamp and CRC) and writes the bytes unchanged otherwise.

Layout (big-endian), as in Kafka's ``DefaultRecordBatch``::

    offset  size  field
         0     8  base_offset
         8     4  batch_length            (bytes after this field: total size - 12)
        12     4  partition_leader_epoch
        16     1  magic                   (2)
        17     4  crc                     (CRC-32C of bytes 21..end, unsigned)
        21     2  attributes
        23     4  last_offset_delta
        27     8  base_timestamp
        35     8  max_timestamp
        43     8  producer_id
        51     2  producer_epoch
        53     4  base_sequence
        57     4  records_count
        61        records...

The first 17 bytes (offset, length, epoch, magic) are shared with the legacy message format
(offset, size, crc, magic sit at the same places for magic 0/1: offset 8 bytes, size 4 bytes,
then CRC 4 bytes and magic at 16), which is how a reader tells the formats apart.
"""

from __future__ import annotations

import struct

import crc32c

from ..errors import CorruptRecord, DecodeError

BATCH_HEADER_SIZE = 61
# Bytes before the batch_length field's end: a batch occupies LOG_OVERHEAD + batch_length bytes.
LOG_OVERHEAD = 12
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21
MAX_TIMESTAMP_OFFSET = 35
PARTITION_LEADER_EPOCH_OFFSET = 12

# Attribute bits.
COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08  # set: LogAppendTime; clear: CreateTime
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20
DELETE_HORIZON_MASK = 0x40  # base_timestamp is the delete horizon (set by the log cleaner)

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1

_HEADER = struct.Struct(">qiibIhiqqqhii")
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")


class RecordBatchHeader:
    """The decoded header fields of one magic-2 record batch. Immutable by convention."""

    __slots__ = (
        "base_offset",
        "batch_length",
        "partition_leader_epoch",
        "magic",
        "crc",
        "attributes",
        "last_offset_delta",
        "base_timestamp",
        "max_timestamp",
        "producer_id",
        "producer_epoch",
        "base_sequence",
        "records_count",
    )

    def __init__(self, *fields):
        (
            self.base_offset,
            self.batch_length,
            self.partition_leader_epoch,
            self.magic,
            self.crc,
            self.attributes,
            self.last_offset_delta,
            self.base_timestamp,
            self.max_timestamp,
            self.producer_id,
            self.producer_epoch,
            self.base_sequence,
            self.records_count,
        ) = fields

    @property
    def size_in_bytes(self) -> int:
        return LOG_OVERHEAD + self.batch_length

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_log_append_time(self) -> bool:
        return bool(self.attributes & TIMESTAMP_TYPE_MASK)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & DELETE_HORIZON_MASK)

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id >= 0

    def __eq__(self, other):
        if not isinstance(other, RecordBatchHeader):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__)
        return f"RecordBatchHeader({fields})"


def read_batch_header(buf, pos: int = 0) -> RecordBatchHeader:
    """Read the header of the magic-2 batch at ``pos`` without touching its records.

    Raises DecodeError when fewer than 61 bytes remain, CorruptRecord when the magic is not 2 or
    the length cannot hold a header. Does not check the CRC or that the whole batch is present:
    see :func:`batch_crc_matches` and the caller's bounds.
    """
    if len(buf) - pos < BATCH_HEADER_SIZE:
        raise DecodeError("truncated record batch header")
    header = RecordBatchHeader(*_HEADER.unpack_from(buf, pos))
    if header.magic != 2:
        raise CorruptRecord(f"record batch magic {header.magic}, expected 2")
    if header.batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD:
        raise CorruptRecord(f"record batch length {header.batch_length} is smaller than its header")
    return header


def read_magic(buf, pos: int = 0) -> int:
    """The magic byte of the batch or legacy message at ``pos`` (same place in every format)."""
    if len(buf) - pos <= MAGIC_OFFSET:
        raise DecodeError("truncated record batch: no magic byte")
    return buf[pos + MAGIC_OFFSET]


def patch_base_offset(buf, pos: int, base_offset: int) -> None:
    """Overwrite the base offset of the batch at ``pos`` in a writable buffer, in place.
    The base offset is outside the CRC, so the CRC stays valid."""
    _INT64.pack_into(buf, pos, base_offset)


def patch_partition_leader_epoch(buf, pos: int, epoch: int) -> None:
    """Overwrite the partition leader epoch (also outside the CRC)."""
    _INT32.pack_into(buf, pos + PARTITION_LEADER_EPOCH_OFFSET, epoch)


def compute_batch_crc(buf, pos: int, size: int) -> int:
    """CRC-32C over the attributes..end part of the batch of ``size`` bytes at ``pos``."""
    return crc32c.crc32c(memoryview(buf)[pos + ATTRIBUTES_OFFSET : pos + size])


def batch_crc_matches(buf, pos: int, header: RecordBatchHeader) -> bool:
    return compute_batch_crc(buf, pos, header.size_in_bytes) == header.crc


def patch_max_timestamp(buf, pos: int, size: int, timestamp: int, attributes: int) -> None:
    """Set max_timestamp and attributes (LogAppendTime stamping) and recompute the CRC."""
    struct.pack_into(">h", buf, pos + ATTRIBUTES_OFFSET, attributes)
    _INT64.pack_into(buf, pos + MAX_TIMESTAMP_OFFSET, timestamp)
    _UINT32.pack_into(buf, pos + CRC_OFFSET, compute_batch_crc(buf, pos, size))
