"""Errors of the storage layer, each carrying the Kafka error code a broker answers with.

They extend :class:`odradek.protocol.errors.ProtocolError` so that the broker has one hierarchy
to catch and one ``error_code`` attribute to read (DESIGN.md, "two error tiers"): none of them
closes the connection; they are answered in the partition's response.

Record-level refusals of a produce (bad CRC, bad sizes) reuse the protocol layer's
:class:`~odradek.protocol.errors.CorruptRecord`; the classes here cover what only the log knows
(offsets out of range, size and timestamp limits from topic config, disk failures).
"""

from __future__ import annotations

from odradek.protocol.errors import ProtocolError

# Kafka error codes (clients/src/main/java/org/apache/kafka/common/protocol/Errors.java).
OFFSET_OUT_OF_RANGE = 1
MESSAGE_TOO_LARGE = 10
RECORD_LIST_TOO_LARGE = 18
INVALID_TIMESTAMP = 32
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
KAFKA_STORAGE_ERROR = 56
INVALID_RECORD = 87


class StorageError(ProtocolError):
    """Base of the storage layer's errors; answered, never closes the connection."""

    closes_connection = False


class OffsetOutOfRange(StorageError):
    """A read or truncation at an offset outside [log start offset, log end offset]."""

    error_code = OFFSET_OUT_OF_RANGE


class RecordTooLarge(StorageError):
    """A batch larger than the topic's ``max.message.bytes``."""

    error_code = MESSAGE_TOO_LARGE


class RecordListTooLarge(StorageError):
    """An append larger than ``segment.bytes``: it can never fit in one segment."""

    error_code = RECORD_LIST_TOO_LARGE


class InvalidRecord(StorageError):
    """A batch that is well formed but breaks a rule of the log: inconsistent offset range,
    a control batch from a client, an idempotent batch without a sequence."""

    error_code = INVALID_RECORD


class RecordValidationError(StorageError):
    """Kafka's ``RecordValidationException``: records of a batch refused one by one.
    ``record_errors`` lists ``(index of the record in its batch, message)``; the exception's
    message is Kafka's summary, which Produce v8+ answers as ``error_message`` beside the
    record errors. This class is the INVALID_RECORD kind (a keyless record on a compacted
    topic)."""

    error_code = INVALID_RECORD

    def __init__(self, message: str, record_errors: list[tuple[int, str]]):
        super().__init__(message)
        self.record_errors = record_errors


class InvalidTimestamp(RecordValidationError):
    """Records whose CreateTime timestamp is outside ``message.timestamp.before.max.ms`` /
    ``message.timestamp.after.max.ms`` of the broker's clock (Kafka answers INVALID_TIMESTAMP
    when any record of the batch has one, whatever else is wrong with the others)."""

    error_code = INVALID_TIMESTAMP


class UnsupportedForMessageFormat(StorageError):
    """Legacy (magic 0/1) input where it cannot be up-converted: data copied from a leader, whose
    logs hold magic 2 only."""

    error_code = UNSUPPORTED_FOR_MESSAGE_FORMAT


class KafkaStorageError(StorageError):
    """An I/O error (disk full, EIO) while writing: the append failed, the log stayed as it was
    before it."""

    error_code = KAFKA_STORAGE_ERROR


class LogDirectoryLocked(Exception):
    """The data directory's ``.lock`` is held by another process. Raised at start; not a
    protocol error (no client ever sees it)."""


class InconsistentLogDirectory(Exception):
    """``meta.properties`` disagrees with the node or cluster id the broker was started with,
    or cannot be parsed. Raised at start."""
