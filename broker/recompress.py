"""A topic's ``compression.type``: batches a producer compressed differently are recompressed
before they are appended, as Kafka's LogValidator does.

``producer`` (the default) keeps every batch as sent: the fast path, no record is decoded.
Any codec name (``uncompressed``, ``gzip``, ``snappy``, ``lz4``, ``zstd``) makes every magic-2
batch whose codec differs be decoded and rebuilt with the target codec and level
(``compression.gzip.level`` / ``lz4.level`` / ``zstd.level``), keeping everything else of the
batch: producer id, epoch and sequence (idempotence), transactional flag, timestamps and their
type, offset deltas. Batches already in the target codec, and legacy message sets (which the
storage engine up-converts as they are), pass unchanged. A batch that does not decode raises
the protocol layer's CorruptRecord (answered CORRUPT_MESSAGE).

Pure functions: no state, no I/O.
"""

from __future__ import annotations

from odradek.protocol.records import compression
from odradek.protocol.records.batch import (
    CREATE_TIME,
    LOG_APPEND_TIME,
    IncompleteBatch,
    build_batch,
    decode_batch,
    iter_batch_headers,
)
from odradek.protocol.records.header import COMPRESSION_MASK, CONTROL_MASK, TIMESTAMP_TYPE_MASK

TARGET_CODECS = {
    "uncompressed": compression.NONE,
    "gzip": compression.GZIP,
    "snappy": compression.SNAPPY,
    "lz4": compression.LZ4,
    "zstd": compression.ZSTD,
}
# Larger than any batch a produce may carry once decompressed would be refused anyway by
# max.message.bytes after recompression; this bounds the work a hostile batch can cause.
MAX_DECOMPRESSED_SIZE = 128 * 1024 * 1024


def target_codec(compression_type: str) -> int | None:
    """The codec batches must end up in, or None for ``producer`` (keep as sent)."""
    return TARGET_CODECS.get(compression_type)


def codec_level(codec: int, gzip_level: int, lz4_level: int, zstd_level: int) -> int | None:
    if codec == compression.GZIP:
        return None if gzip_level == -1 else gzip_level
    if codec == compression.LZ4:
        return lz4_level
    if codec == compression.ZSTD:
        return zstd_level
    return None


def recompress(records, codec: int, level: int | None):
    """``records`` with every magic-2 batch in ``codec``; the same object when nothing changes."""
    headers = list(iter_batch_headers(records, allow_incomplete=False))
    if any(isinstance(header, IncompleteBatch) or header.magic != 2 for _, header in headers):
        return records  # legacy input: the storage engine up-converts it as sent
    if all((header.attributes & COMPRESSION_MASK) == codec or header.attributes & CONTROL_MASK
           for _, header in headers):
        return records
    out = bytearray()
    for position, header in headers:
        if (header.attributes & COMPRESSION_MASK) == codec or header.attributes & CONTROL_MASK:
            out += records[position:position + header.size_in_bytes]
            continue
        batch = decode_batch(records, position, max_decompressed_size=MAX_DECOMPRESSED_SIZE)
        out += build_batch(
            batch.records,
            base_offset=batch.base_offset,
            base_timestamp=batch.base_timestamp,
            max_timestamp=batch.max_timestamp,
            compression=codec,
            compression_level=level,
            timestamp_type=LOG_APPEND_TIME if batch.attributes & TIMESTAMP_TYPE_MASK else CREATE_TIME,
            producer_id=batch.producer_id,
            producer_epoch=batch.producer_epoch,
            base_sequence=batch.base_sequence,
            transactional=batch.is_transactional,
            partition_leader_epoch=batch.partition_leader_epoch,
            last_offset_delta=batch.last_offset_delta,
        )
    return out
