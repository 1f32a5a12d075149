"""KRaft's metadata log in Kafka's formats, sans-I/O: the frame of each ``__cluster_metadata``
record, raft's control records, and the batches the log and its snapshots are made of.

* A data record of the metadata log (Kafka's ``MetadataRecordSerde``) has a null key and a value
  of: unsigned varint frame version (1), unsigned varint record type (the schema's ``apiKey``:
  TopicRecord 2, PartitionRecord 3, ...), unsigned varint record version, then the record body
  at that version. Frame version 0 (KRaft's 2.8 preview), another frame version, a type or
  version above 32767, an unknown type, a body that does not decode and bytes after the body
  are each refused with :class:`~odradek.protocol.errors.CorruptRecord`, as Kafka refuses them.
* Raft's own records (LeaderChange, SnapshotHeader, SnapshotFooter, KRaftVersion, KRaftVoters)
  are control records: the control key (version 0, type 2-6) and the body at version 0 with no
  frame, read at version 0 whatever follows (as Kafka's ``ControlRecordUtils``).
* A batch holds only data records or only control records (the control bit), carries the
  raft epoch it was written in as its partition leader epoch, and no producer.

The record classes come from Kafka's metadata and raft schemas (``protocol/messages/records``);
:data:`~odradek.protocol.messages.records.METADATA_RECORD_TYPES` names them by type.
"""

from __future__ import annotations

import importlib
from typing import Iterator, NamedTuple, Sequence

from .errors import CorruptRecord, ProtocolError
from .messages.records import METADATA_RECORD_TYPES
from .messages.records.k_raft_version_record import KRaftVersionRecord
from .messages.records.leader_change_message import LeaderChangeMessage
from .messages.records.snapshot_footer_record import SnapshotFooterRecord
from .messages.records.snapshot_header_record import SnapshotHeaderRecord
from .messages.records.voters_record import VotersRecord
from .messages._runtime import Message, r_uvarint, w_uvarint
from .records.batch import (
    CONTROL_KRAFT_VERSION,
    CONTROL_KRAFT_VOTERS,
    CONTROL_LEADER_CHANGE,
    CONTROL_SNAPSHOT_FOOTER,
    CONTROL_SNAPSHOT_HEADER,
    DEFAULT_MAX_DECOMPRESSED_SIZE,
    IncompleteBatch,
    Record,
    build_batch,
    encode_control_key,
    iter_batches,
    parse_control_record,
)

FRAME_VERSION = 1
# Raft's control records are written and read at this version (ControlRecordUtils' *_CURRENT_VERSION).
CONTROL_RECORD_VERSION = 0
# The most a type or version field may hold (Kafka reads them into a short).
_SHORT_MAX = 32767

# Control type -> (record class, the name Kafka's DumpLogSegments prints for it).
CONTROL_RECORDS: dict[int, tuple[type[Message], str]] = {
    CONTROL_LEADER_CHANGE: (LeaderChangeMessage, "LeaderChange"),
    CONTROL_SNAPSHOT_HEADER: (SnapshotHeaderRecord, "SnapshotHeader"),
    CONTROL_SNAPSHOT_FOOTER: (SnapshotFooterRecord, "SnapshotFooter"),
    CONTROL_KRAFT_VERSION: (KRaftVersionRecord, "KRaftVersion"),
    CONTROL_KRAFT_VOTERS: (VotersRecord, "KRaftVoters"),
}
_CONTROL_TYPES = {record_class: control_type for control_type, (record_class, _) in CONTROL_RECORDS.items()}

_classes: dict[int, type[Message]] = {}


def record_class(record_type: int) -> type[Message]:
    """The metadata record class of ``record_type`` (imported on first use); KeyError if none."""
    found = _classes.get(record_type)
    if found is None:
        module, name = METADATA_RECORD_TYPES[record_type]
        found = _classes[record_type] = getattr(importlib.import_module(f"{__package__}.messages.records.{module}"), name)
    return found


class MetadataRecord(NamedTuple):
    """A metadata record and the version its body is (or is to be) encoded at."""

    message: Message
    version: int


def encode_metadata_record(record: MetadataRecord) -> bytes:
    """The value of a metadata log record: the frame, then the body (ValueError if it cannot
    be encoded at that version)."""
    message, version = record
    if message.API_KEY not in METADATA_RECORD_TYPES:
        raise ValueError(f"{type(message).__name__} is not a metadata record")
    out = bytearray()
    w_uvarint(out, FRAME_VERSION)
    w_uvarint(out, message.API_KEY)
    w_uvarint(out, version)
    message.write(out, version)
    return bytes(out)


def _short(value, pos: int, what: str) -> tuple[int, int]:
    try:
        number, pos = r_uvarint(value, pos)
    except ProtocolError as error:
        raise CorruptRecord(f"error while reading {what}: {error}") from None
    if number > _SHORT_MAX:
        raise CorruptRecord(f"value for {what} was too large")
    return number, pos


def decode_metadata_record(value) -> MetadataRecord:
    """Read a metadata log record's value (bytes-like); CorruptRecord when Kafka would refuse it."""
    if value is None:
        raise CorruptRecord("metadata record with a null value")
    frame_version, pos = _short(value, 0, "frame version")
    if frame_version == 0:
        raise CorruptRecord("could not deserialize metadata record with frame version 0 "
                            "(the KRaft preview of Kafka 2.8)")
    if frame_version != FRAME_VERSION:
        raise CorruptRecord(f"could not deserialize metadata record due to unknown frame version "
                            f"{frame_version} (only frame version {FRAME_VERSION} is supported)")
    record_type, pos = _short(value, pos, "type")
    version, pos = _short(value, pos, "version")
    try:
        message_class = record_class(record_type)
    except KeyError:
        raise CorruptRecord(f"unknown metadata record type {record_type}") from None
    try:
        message, end = message_class.decode_from(value, pos, version)
    except ProtocolError as error:
        raise CorruptRecord(f"failed to deserialize record with type {record_type}: {error}") from None
    if end != len(value):
        raise CorruptRecord(f"found {len(value) - end} byte(s) of garbage after {record_type}")
    return MetadataRecord(message, version)


def control_record(message: Message, offset_delta: int = 0) -> Record:
    """A raft control record (LeaderChangeMessage, SnapshotHeaderRecord, ...) for a control batch."""
    control_type = _CONTROL_TYPES.get(type(message))
    if control_type is None:
        raise ValueError(f"{type(message).__name__} is not a raft control record")
    return Record(offset_delta=offset_delta, timestamp_delta=0, key=encode_control_key(control_type),
                  value=message.encode(CONTROL_RECORD_VERSION))


def decode_control_record(record: Record) -> tuple[int, Message]:
    """(control type, message) of a raft control record; CorruptRecord for a transaction marker
    or an unknown type, which the metadata log never holds."""
    control_type = parse_control_record(record).control_type
    known = CONTROL_RECORDS.get(control_type)
    if known is None:
        raise CorruptRecord(f"control record of type {control_type} in the metadata log")
    if record.value is None:
        raise CorruptRecord(f"{known[1]} control record with a null value")
    return control_type, known[0].decode(record.value, CONTROL_RECORD_VERSION)


def build_data_batch(values: Sequence[bytes], *, base_offset: int, epoch: int, timestamp: int) -> bytes:
    """One batch of metadata records (each value from :func:`encode_metadata_record`) written
    in raft epoch ``epoch``."""
    return build_batch([Record(offset_delta=index, timestamp_delta=0, key=None, value=value)
                        for index, value in enumerate(values)],
                       base_offset=base_offset, base_timestamp=timestamp, partition_leader_epoch=epoch)


def value_batches(values: Sequence[bytes], max_bytes: int) -> list[list[bytes]]:
    """``values`` cut, in order, into groups that each make a batch of at most about
    ``max_bytes`` (each record's own framing counted as 16 bytes, and 1 KiB left for the batch
    header); a value larger than that is a group of its own."""
    groups: list[list[bytes]] = [[]]
    size = 0
    for value in values:
        if groups[-1] and size + len(value) + 16 > max_bytes - 1024:
            groups.append([])
            size = 0
        groups[-1].append(value)
        size += len(value) + 16
    return groups if groups[0] else []


def build_control_batch(messages: Sequence[Message], *, base_offset: int, epoch: int, timestamp: int) -> bytes:
    """One control batch of raft control records written in raft epoch ``epoch``."""
    return build_batch([control_record(message, index) for index, message in enumerate(messages)],
                       base_offset=base_offset, base_timestamp=timestamp, partition_leader_epoch=epoch, control=True)


class LogEntry(NamedTuple):
    """One record of the metadata log or a snapshot, decoded.

    ``control_type`` is None for a metadata record (``version`` is then its record version) and
    the control type for a raft control record (``version`` is 0)."""

    offset: int
    epoch: int
    timestamp: int
    control_type: int | None
    message: Message
    version: int


def iter_entries(buf, *, max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE) -> Iterator[LogEntry]:
    """Every record of the concatenated batches in ``buf``, in order. A torn or corrupt batch, or
    a record that does not decode, raises CorruptRecord (the caller knows whether a torn tail can
    be cut, as the log's recovery does, or makes the whole file unusable, as for a snapshot)."""
    for batch in iter_batches(buf, max_decompressed_size=max_decompressed_size, allow_incomplete=True):
        if isinstance(batch, IncompleteBatch):
            raise CorruptRecord(f"torn record batch at {batch.position}: {batch.available} of "
                                f"{batch.size if batch.size is not None else 'at least 12'} bytes")
        for record in batch.records:
            offset = batch.base_offset + record.offset_delta
            timestamp = batch.base_timestamp + record.timestamp_delta
            if batch.is_control:
                control_type, message = decode_control_record(record)
                yield LogEntry(offset, batch.partition_leader_epoch, timestamp, control_type, message,
                               CONTROL_RECORD_VERSION)
            else:
                message, version = decode_metadata_record(record.value)
                yield LogEntry(offset, batch.partition_leader_epoch, timestamp, None, message, version)
