"""Build magic-2 record batches for the storage tests (uncompressed, real CRC-32C).

Written here rather than taken from odradek.protocol.records so the storage tests do not
depend on that package's progress; the layout follows Kafka's DefaultRecordBatch.
"""

from __future__ import annotations

import struct

import crc32c


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def _varint(value: int) -> bytes:
    raw = _zigzag(value) & ((1 << 64) - 1)
    out = bytearray()
    while True:
        byte = raw & 0x7F
        raw >>= 7
        if raw:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_record(offset_delta: int, timestamp_delta: int, key: bytes | None, value: bytes | None) -> bytes:
    body = bytearray(b"\x00")  # attributes
    body += _varint(timestamp_delta)
    body += _varint(offset_delta)
    for field in (key, value):
        if field is None:
            body += _varint(-1)
        else:
            body += _varint(len(field)) + field
    body += _varint(0)  # no headers
    return _varint(len(body)) + bytes(body)


def make_batch(values: list[bytes], *, base_offset: int = 0, timestamps: list[int] | None = None,
               producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1,
               attributes: int = 0, partition_leader_epoch: int = -1, records_count: int | None = None,
               last_offset_delta: int | None = None, keys: list[bytes | None] | None = None) -> bytes:
    """One uncompressed batch holding ``values`` (one record each), keyed ``k0``, ``k1``...
    unless ``keys`` says otherwise."""
    if timestamps is None:
        timestamps = [1_700_000_000_000 + i for i in range(len(values))]
    base_timestamp = timestamps[0] if timestamps else -1
    records = b"".join(
        encode_record(i, timestamps[i] - base_timestamp, b"k%d" % i if keys is None else keys[i], value)
        for i, value in enumerate(values))
    last_delta = len(values) - 1 if last_offset_delta is None else last_offset_delta
    count = len(values) if records_count is None else records_count
    after_crc = struct.pack(">hiqqqhii", attributes, last_delta, base_timestamp, max(timestamps, default=-1),
                            producer_id, producer_epoch, base_sequence, count) + records
    crc = crc32c.crc32c(after_crc)
    batch_length = 4 + 1 + 4 + len(after_crc)
    return struct.pack(">qiibI", base_offset, batch_length, partition_leader_epoch, 2, crc) + after_crc
