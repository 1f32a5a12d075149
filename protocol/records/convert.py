"""Conversion between legacy message sets (magic 0/1) and record batches (magic 2).

Up-conversion is what Kafka's broker does on append when a producer sends an older format than
the log's (``LogValidator``'s convert-and-assign-offsets paths): every message of the request,
wrappers expanded, goes into ONE new v2 batch with offsets assigned from ``base_offset`` in
order (the legacy offsets are the producer's and are discarded), no producer id, the messages'
timestamps (magic 0 has none: -1), keys and values; magic 0/1 carry no headers.

Down-conversion is what Kafka does for fetch requests below v4 (``LazyDownConversionRecords`` /
``RecordsUtil.downConvert``): each batch newer than ``to_magic`` becomes legacy messages of
``to_magic`` -- a compressed batch one wrapper with the same codec, an uncompressed one plain
messages --, headers dropped, timestamps dropped for magic 0 and LogAppendTime batches stamped
with their max timestamp. Records below ``first_offset`` (the fetch offset) are dropped from
*uncompressed* batches only: an old consumer fetching from the middle of a v2 batch must not see
the records before it (some librdkafka versions rely on it), while a compressed batch becomes one
wrapper that old consumers already expect to skip into. Control batches are skipped
(old consumers know no markers), batches already at or below ``to_magic`` are copied unchanged,
and zstd, which no legacy format can carry, raises UnsupportedCompression (Kafka answers
UNSUPPORTED_COMPRESSION_TYPE). A trailing partial batch is dropped, as Kafka does.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from ..errors import CorruptRecord, UnsupportedCompression
from . import compression as _compression
from .batch import (
    CREATE_TIME,
    LOG_APPEND_TIME,
    NO_TIMESTAMP,
    Record,
    build_batch,
    decode_batch,
)
from .header import BATCH_HEADER_SIZE, LOG_OVERHEAD, MAGIC_OFFSET
from .legacy import (
    LegacyRecord,
    build_message_set,
    expand_entry,
    iter_legacy_entries,
)

_USE_SOURCE_CODEC = None


def up_convert(
    buf,
    *,
    base_offset: int,
    max_decompressed_size: int,
    compression: int | None = _USE_SOURCE_CODEC,
    timestamp_type: int = CREATE_TIME,
    log_append_time: int | None = None,
    partition_leader_epoch: int = -1,
) -> bytes:
    """One v2 batch holding every message of the legacy message set ``buf``.

    ``compression`` None keeps the codec of the set's first entry (Kafka's
    ``compression.type=producer``). With ``timestamp_type`` LOG_APPEND_TIME, ``log_append_time``
    becomes the batch's max timestamp. Raises CorruptRecord and the compression errors for bad
    input; an empty message set is CorruptRecord (Kafka refuses a produce without records).
    """
    entries = [entry for entry in iter_legacy_entries(buf)]
    if not entries:
        raise CorruptRecord("message set holds no messages")
    records: list[LegacyRecord] = []
    for entry in entries:
        records.extend(expand_entry(entry.record, max_decompressed_size=max_decompressed_size))
    if compression is _USE_SOURCE_CODEC:
        compression = entries[0].record.compression
    return legacy_records_to_batch(
        records,
        base_offset=base_offset,
        compression=compression,
        timestamp_type=timestamp_type,
        log_append_time=log_append_time,
        partition_leader_epoch=partition_leader_epoch,
    )


def legacy_records_to_batch(
    records: Sequence[LegacyRecord],
    *,
    base_offset: int,
    compression: int = _compression.NONE,
    timestamp_type: int = CREATE_TIME,
    log_append_time: int | None = None,
    partition_leader_epoch: int = -1,
) -> bytes:
    """Encode decoded legacy messages as one v2 batch with offsets base_offset, +1, ..."""
    timestamps = [NO_TIMESTAMP if r.timestamp is None else r.timestamp for r in records]
    # As Kafka's builder: the base timestamp is the first record's, max the largest.
    base_timestamp = timestamps[0] if timestamps else NO_TIMESTAMP
    v2_records = [
        Record(offset_delta=index, timestamp_delta=timestamp - base_timestamp, key=r.key, value=r.value)
        for index, (r, timestamp) in enumerate(zip(records, timestamps))
    ]
    max_timestamp = max(timestamps, default=NO_TIMESTAMP)
    if timestamp_type == LOG_APPEND_TIME and log_append_time is not None:
        max_timestamp = log_append_time
    return build_batch(
        v2_records,
        base_offset=base_offset,
        base_timestamp=base_timestamp,
        max_timestamp=max_timestamp,
        compression=compression,
        timestamp_type=timestamp_type,
        partition_leader_epoch=partition_leader_epoch,
    )


def down_convert(buf, *, to_magic: int, max_decompressed_size: int, first_offset: int = 0) -> bytes:
    """The batches and messages of ``buf`` (as read from a log: any mix of magics) as a
    message set of magic ``to_magic`` (0 or 1). See the module docstring for the rules."""
    if to_magic not in (0, 1):
        raise ValueError(f"down-conversion targets magic 0 or 1, not {to_magic}")
    out = bytearray()
    for pos, size, magic in iter_entry_spans(buf):
        if magic <= to_magic:
            out += buf[pos : pos + size]
        elif magic == 2:
            out += _down_convert_batch(buf, pos, to_magic, first_offset, max_decompressed_size)
        else:  # a magic-1 message going to magic 0
            (entry,) = list(iter_legacy_entries(buf, pos, pos + size))
            compressed = entry.record.compression != _compression.NONE
            records = [
                r
                for r in expand_entry(entry.record, max_decompressed_size=max_decompressed_size)
                if compressed or r.offset >= first_offset
            ]
            if records:
                out += build_message_set(records, magic=0, compression=entry.record.compression)
    return bytes(out)


def _down_convert_batch(buf, pos: int, to_magic: int, first_offset: int, max_decompressed_size: int) -> bytes:
    batch = decode_batch(buf, pos, max_decompressed_size=max_decompressed_size)
    if batch.is_control:
        return b""
    if batch.compression == _compression.ZSTD:
        raise UnsupportedCompression(f"a zstd batch cannot be down-converted to magic {to_magic}")
    compressed = batch.compression != _compression.NONE
    records = [
        LegacyRecord(batch.offset_of(r), r.key, r.value, batch.timestamp_of(r) if to_magic else None)
        for r in batch.records
        if compressed or batch.offset_of(r) >= first_offset
    ]
    if not records:
        return b""
    return build_message_set(
        records,
        magic=to_magic,
        compression=batch.compression,
        timestamp_type=batch.timestamp_type,
        log_append_time=batch.max_timestamp if batch.timestamp_type == LOG_APPEND_TIME else None,
    )


def iter_entry_spans(buf) -> Iterator[tuple[int, int, int]]:
    """``(position, size, magic)`` of each complete batch or legacy entry in ``buf``, whatever
    its magic; stops silently at a trailing partial one. Sizes are checked to be at least a
    header's, nothing else (decoders check the rest)."""
    pos, end = 0, len(buf)
    while end - pos > MAGIC_OFFSET:
        size = LOG_OVERHEAD + int.from_bytes(buf[pos + 8 : pos + 12], "big", signed=True)
        magic = buf[pos + MAGIC_OFFSET]
        if magic > 2:
            raise CorruptRecord(f"record entry at {pos}: unknown magic {magic}")
        minimum = BATCH_HEADER_SIZE if magic == 2 else LOG_OVERHEAD + 14
        if size < minimum:
            raise CorruptRecord(f"record entry at {pos}: size {size} below its header's")
        if size > end - pos:
            return
        yield pos, size, magic
        pos += size
