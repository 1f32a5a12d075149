"""Validation of record batches before they are appended: pure functions, no I/O, no state.

:func:`validate_batches` walks the batches of a produce (or replication) payload by their
61-byte headers and checks what Kafka's ``LogValidator`` checks at batch level:

* magic 2; a legacy message set (magic 0/1, old producers) is up-converted to one v2 batch
  first (``odradek.protocol.records.convert.up_convert``), then checked like any batch;
* each batch lies wholly inside the payload, its length can hold a header, its CRC matches;
* compression codec is one Kafka defines (0..4);
* ``max.message.bytes`` per batch; the whole append no larger than ``segment.bytes``;
* from clients: ``records_count == last_offset_delta + 1`` (offsets are dense), no control
  batches, idempotent batches carry a sequence;
* CreateTime topics: the batch's first timestamp no older than
  ``message.timestamp.before.max.ms`` and its max timestamp no newer than
  ``message.timestamp.after.max.ms`` (batch-level bounds: individual record timestamps are not
  decoded on the hot path; the first and the max bound every record a Java/librdkafka
  producer writes, whose timestamps never go below the batch's first). A batch outside the
  bounds is decoded and its records checked one by one, as Kafka's ``validateTimestamp`` does,
  so that the refusal names each record out of range;
* compacted topics (``cleanup.policy`` with ``compact``): every record from a client has a key
  (the batch is decoded; Kafka's ``validateKey``).

Faults of single records are reported as Kafka's ``RecordValidationException`` reports them
(:class:`~odradek.storage.errors.RecordValidationError`): per batch, each faulty record's index
in its batch and Kafka's message for it, a key fault taking precedence over a timestamp fault
of the same record; the first batch with faults refuses the whole append.

The result, :class:`ValidatedAppend`, tells the log where each batch starts and what offsets
and timestamps the append spans; :meth:`PartitionLog.append` then commits it (patches and
writes) in one place.
"""

from __future__ import annotations

from odradek.protocol.errors import CorruptRecord, ProtocolError, UnsupportedCompression
from odradek.protocol.records.batch import LOG_APPEND_TIME, decode_batch
from odradek.protocol.records.header import (
    LOG_OVERHEAD,
    batch_crc_matches,
    read_batch_header,
    read_magic,
)

from .config import LogConfig
from .errors import (
    InvalidRecord,
    InvalidTimestamp,
    RecordListTooLarge,
    RecordTooLarge,
    RecordValidationError,
    UnsupportedForMessageFormat,
)

NO_TIMESTAMP = -1
MAX_COMPRESSION_ID = 4  # none, gzip, snappy, lz4, zstd
# crc, magic, attributes, key length, value length: the smallest magic-0 message after its size.
LEGACY_MIN_MESSAGE_SIZE = 14
# Bound on what decompressing a legacy message set may produce while up-converting it.
MAX_DECOMPRESSED_APPEND_BYTES = 64 * 1024 * 1024

# Who is appending: a producer (offsets assigned here, full validation), a follower copying
# the leader (offsets kept), or the broker itself (coordinators: control batches allowed).
ORIGIN_CLIENT = "client"
ORIGIN_REPLICATION = "replication"
ORIGIN_COORDINATOR = "coordinator"


class ValidatedAppend:
    """What :func:`validate_batches` found: ``batches`` is a list of (position, header)."""

    __slots__ = ("batches", "size", "offset_count", "max_timestamp", "max_timestamp_batch", "converted_payload")

    def __init__(self, batches, size, offset_count, max_timestamp, max_timestamp_batch, converted_payload=None):
        # Set when the input was a legacy message set: the v2 batch to append instead.
        self.converted_payload = converted_payload
        self.batches = batches
        self.size = size
        self.offset_count = offset_count
        self.max_timestamp = max_timestamp
        self.max_timestamp_batch = max_timestamp_batch


def _up_convert_legacy(payload, config: LogConfig, now_ms: int, origin: str) -> bytes:
    """A legacy message set (magic 0/1, produce v0-v2 clients) as one v2 batch, as Kafka's
    LogValidator converts it; offsets are assigned at commit like any batch's. Followers never
    send legacy data (our logs hold only v2), so replication refuses it."""
    if origin == ORIGIN_REPLICATION:
        raise UnsupportedForMessageFormat("replicated data must be magic 2")
    from odradek.protocol.records.batch import CREATE_TIME, LOG_APPEND_TIME
    from odradek.protocol.records.convert import up_convert

    return up_convert(
        payload,
        base_offset=0,
        max_decompressed_size=max(MAX_DECOMPRESSED_APPEND_BYTES, config.max_message_bytes),
        timestamp_type=LOG_APPEND_TIME if config.is_log_append_time else CREATE_TIME,
        log_append_time=now_ms if config.is_log_append_time else None,
    )


def validate_batches(payload, config: LogConfig, now_ms: int, origin: str = ORIGIN_CLIENT,
                     topic_partition: str = "") -> ValidatedAppend:
    """Check every batch of ``payload`` (bytes-like). Raises a ProtocolError subclass carrying
    the Kafka error code; returns a :class:`ValidatedAppend` otherwise. Never writes.
    ``topic_partition`` (``name-index``) is named in record errors, as Kafka names it."""
    total = len(payload)
    if total == 0:
        raise InvalidRecord("no record batch in the append")
    if total > config.segment_bytes:
        raise RecordListTooLarge(f"append of {total} bytes exceeds segment.bytes {config.segment_bytes}")
    batches = []
    offset_count = 0
    max_timestamp = NO_TIMESTAMP
    max_timestamp_batch = 0
    position = 0
    from_client = origin == ORIGIN_CLIENT
    check_times = not config.is_log_append_time and origin != ORIGIN_REPLICATION
    check_keys = from_client and config.compacts
    while position < total:
        if total - position < LOG_OVERHEAD + 5:
            raise CorruptRecord(f"{total - position} trailing bytes are not a record batch")
        magic = read_magic(payload, position)
        if magic < 2:
            # A legacy message: refuse it as such only if it is one (sane size, inside the
            # payload); zeros or a torn tail are corrupt whatever their magic byte says.
            legacy_size = int.from_bytes(payload[position + 8 : position + 12], "big", signed=True)
            if legacy_size < LEGACY_MIN_MESSAGE_SIZE or position + LOG_OVERHEAD + legacy_size > total:
                raise CorruptRecord(f"bytes at {position} are neither a record batch nor a legacy message")
            if position != 0:
                raise CorruptRecord("a produce mixes record batches and legacy messages")
            converted = _up_convert_legacy(payload, config, now_ms, origin)
            validated = validate_batches(converted, config, now_ms, origin, topic_partition)
            validated.converted_payload = converted
            return validated
        try:
            header = read_batch_header(payload, position)
        except CorruptRecord:
            raise
        except ProtocolError as error:
            raise CorruptRecord(str(error)) from None
        size = header.size_in_bytes
        if position + size > total:
            raise CorruptRecord(f"record batch of {size} bytes at {position} runs past the payload ({total} bytes)")
        if size > config.max_message_bytes:
            raise RecordTooLarge(f"record batch of {size} bytes exceeds max.message.bytes {config.max_message_bytes}")
        if not batch_crc_matches(payload, position, header):
            raise CorruptRecord(f"record batch at {position}: CRC mismatch")
        if header.compression > MAX_COMPRESSION_ID:
            raise UnsupportedCompression(f"unknown compression codec {header.compression}")
        if header.last_offset_delta < 0:
            raise InvalidRecord(f"record batch with last offset delta {header.last_offset_delta}")
        if from_client:
            if header.records_count <= 0 or header.records_count != header.last_offset_delta + 1:
                raise InvalidRecord(
                    f"inconsistent batch offset range: {header.records_count} records, last offset delta "
                    f"{header.last_offset_delta}")
            if header.is_control:
                raise InvalidRecord("clients may not write control batches")
            if header.has_producer_id and header.base_sequence < 0:
                raise InvalidRecord("idempotent batch without a base sequence")
            if header.is_transactional and not header.has_producer_id:
                raise InvalidRecord("transactional batch without a producer id")
        times_out_of_bounds = check_times and (
            (header.base_timestamp != NO_TIMESTAMP
             and header.base_timestamp < now_ms - config.message_timestamp_before_max_ms)
            or (header.max_timestamp != NO_TIMESTAMP
                and header.max_timestamp > now_ms + config.message_timestamp_after_max_ms))
        if check_keys or times_out_of_bounds:
            record_errors = _record_errors(payload, position, config, now_ms, check_keys, times_out_of_bounds,
                                           topic_partition)
            if record_errors:
                raise _record_validation_error(record_errors)
        if header.max_timestamp > max_timestamp:
            max_timestamp = header.max_timestamp
            max_timestamp_batch = len(batches)
        batches.append((position, header))
        offset_count += header.last_offset_delta + 1
        position += size
    return ValidatedAppend(batches, total, offset_count, max_timestamp, max_timestamp_batch)


def _java_long(value: int) -> int:
    """``value`` wrapped to a signed 64-bit integer, as Java's long arithmetic (Kafka's message
    prints ``now + message.timestamp.after.max.ms`` so)."""
    return (value + 2**63) % 2**64 - 2**63


def _record_errors(payload, position: int, config: LogConfig, now_ms: int, check_keys: bool,
                   check_times: bool, topic_partition: str) -> list[tuple[bool, int, str]]:
    """Kafka's ``LogValidator.validateRecord`` over the decoded batch at ``position``: (is a
    timestamp fault, index in the batch, message) of each record without a key
    (``check_keys``) or, failing that, with a timestamp out of bounds (``check_times``)."""
    batch = decode_batch(payload, position,
                         max_decompressed_size=max(MAX_DECOMPRESSED_APPEND_BYTES, config.max_message_bytes))
    before, after = config.message_timestamp_before_max_ms, config.message_timestamp_after_max_ms
    errors = []
    for index, record in enumerate(batch.records):
        if check_keys and record.key is None:
            errors.append((False, index, f"Compacted topic cannot accept message without key in topic partition "
                                         f"{topic_partition}"))
            continue
        if check_times and batch.timestamp_type != LOG_APPEND_TIME:
            timestamp = batch.timestamp_of(record)
            if timestamp != NO_TIMESTAMP and (now_ms - timestamp > before or timestamp - now_ms > after):
                errors.append((True, index, f"Timestamp {timestamp} of message with offset {batch.offset_of(record)} "
                                            f"is out of range. The timestamp should be within "
                                            f"[{_java_long(now_ms - before)}, {_java_long(now_ms + after)}]"))
    return errors


def _record_validation_error(faults: list[tuple[bool, int, str]]) -> RecordValidationError:
    """Kafka's ``processRecordErrors``: INVALID_TIMESTAMP if any timestamp is at fault, else
    INVALID_RECORD with the first three record errors in the message."""
    record_errors = [(index, message) for _, index, message in faults]
    if any(is_timestamp for is_timestamp, _, _ in faults):
        return InvalidTimestamp("One or more records have been rejected due to invalid timestamp", record_errors)
    shown = ", ".join(f"RecordError(batchIndex={index}, message='{message}')" for index, message in record_errors[:3])
    return RecordValidationError(
        f"One or more records have been rejected due to {len(record_errors)} record errors in total, and only "
        f"showing the first three errors at most: [{shown}]", record_errors)


def check_replicated_offsets(validated: ValidatedAppend, log_end_offset: int) -> None:
    """Batches copied from a leader keep their offsets: they must start at or after our end
    and increase."""
    expected = log_end_offset
    for _, header in validated.batches:
        if header.base_offset < expected:
            raise InvalidRecord(f"replicated batch at offset {header.base_offset} is below {expected}")
        expected = header.last_offset + 1
