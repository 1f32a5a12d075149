"""KRaft snapshots of the metadata log, in Kafka's files.

A snapshot holds the metadata state up to, not including, its end offset, taken in a raft
epoch: ``<end offset, 20 digits>-<epoch, 10 digits>.checkpoint`` in the ``__cluster_metadata-0``
directory (``00000000000000000000-0000000000.checkpoint`` is the one ``kafka-storage format``
writes: the bootstrap metadata). Inside, record batches with offsets from 0:

* a control batch: SnapshotHeader (version 0, the timestamp of the last record it contains),
  then, in a quorum of kraft.version 1 or more, KRaftVersion and the voters (KRaftVoters);
* batches of metadata records (protocol/metadata.py);
* a control batch: SnapshotFooter (version 0).

Written as Kafka's FileRawSnapshotWriter does: to ``<name>.checkpoint.part``, fsynced, renamed
to its name, the directory fsynced. ``.checkpoint.part`` files are what a crash left of a
snapshot being written; ``.checkpoint.deleted`` ones were being deleted. Neither is a snapshot.
A ``.checkpoint`` that does not read whole (torn, a CRC that does not match, no header or
footer) raises :class:`DamagedSnapshot`.

Thread safety: none needed; these are functions over a file system object (storage/fs.py).
"""

from __future__ import annotations

import os
from typing import NamedTuple, Sequence

from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.records.k_raft_version_record import KRaftVersionRecord
from odradek.protocol.messages.records.snapshot_footer_record import SnapshotFooterRecord
from odradek.protocol.messages.records.snapshot_header_record import SnapshotHeaderRecord
from odradek.protocol.messages.records.voters_record import VotersRecord
from odradek.protocol.metadata import (
    CONTROL_RECORD_VERSION,
    MetadataRecord,
    build_control_batch,
    build_data_batch,
    encode_metadata_record,
    iter_entries,
    value_batches,
)

SNAPSHOT_SUFFIX = ".checkpoint"
PARTIAL_SUFFIX = ".checkpoint.part"
DELETED_SUFFIX = ".checkpoint.deleted"
_SUFFIX_STATES = ((PARTIAL_SUFFIX, "partial"), (DELETED_SUFFIX, "deleted"), (SNAPSHOT_SUFFIX, "complete"))
_OFFSET_DIGITS = 20
_EPOCH_DIGITS = 10
# The largest batch of metadata records a snapshot is written in (Kafka's raft client cuts
# its batches at 8 MiB: KafkaRaftClient.MAX_BATCH_SIZE_BYTES).
MAX_BATCH_BYTES = 8 * 1024 * 1024


class DamagedSnapshot(Exception):
    """A ``.checkpoint`` file that does not read as a whole snapshot."""


class SnapshotId(NamedTuple):
    """Where a snapshot ends in the log (exclusive) and the epoch of its last record."""

    end_offset: int
    epoch: int


class SnapshotFile(NamedTuple):
    """A file of the metadata log directory named as a snapshot; ``state`` is "complete",
    "partial" (``.checkpoint.part``) or "deleted" (``.checkpoint.deleted``)."""

    snapshot_id: SnapshotId
    state: str
    name: str


class Snapshot(NamedTuple):
    """A snapshot's content. ``kraft_version`` is None when the header batch has no KRaftVersion
    record (kraft.version 0); ``voters`` is None without a KRaftVoters record."""

    snapshot_id: SnapshotId
    last_contained_timestamp: int
    kraft_version: int | None
    voters: VotersRecord | None
    records: list[MetadataRecord]


def snapshot_file_name(snapshot_id: SnapshotId) -> str:
    end_offset, epoch = snapshot_id
    if end_offset < 0 or epoch < 0:
        raise ValueError(f"a snapshot id has no negative part: {snapshot_id}")
    return f"{end_offset:0{_OFFSET_DIGITS}d}-{epoch:0{_EPOCH_DIGITS}d}{SNAPSHOT_SUFFIX}"


def parse_snapshot_file_name(name: str) -> SnapshotFile | None:
    """The snapshot a file name stands for, or None for any other file."""
    state = next((state for suffix, state in _SUFFIX_STATES if name.endswith(suffix)), None)
    if state is None:
        return None
    offset, dash, epoch = name[:_OFFSET_DIGITS], name[_OFFSET_DIGITS:_OFFSET_DIGITS + 1], \
        name[_OFFSET_DIGITS + 1:_OFFSET_DIGITS + 1 + _EPOCH_DIGITS]
    if dash != "-" or not (offset.isascii() and offset.isdigit() and epoch.isascii() and epoch.isdigit()) \
            or len(epoch) != _EPOCH_DIGITS:
        return None
    if state == "complete" and len(name) != _OFFSET_DIGITS + 1 + _EPOCH_DIGITS + len(SNAPSHOT_SUFFIX):
        return None
    return SnapshotFile(SnapshotId(int(offset), int(epoch)), state, name)


def snapshot_files(fs, directory: str) -> list[SnapshotFile]:
    """The snapshot files of ``directory`` (every state), by id."""
    found = [parsed for parsed in map(parse_snapshot_file_name, fs.listdir(directory)) if parsed is not None]
    return sorted(found, key=lambda found_file: (found_file.snapshot_id, found_file.state))


def encode_snapshot(records: Sequence[MetadataRecord], *, epoch: int, last_contained_timestamp: int, now_ms: int,
                    kraft_version: int = 0, voters: VotersRecord | None = None,
                    max_batch_bytes: int = MAX_BATCH_BYTES) -> bytes:
    """The bytes of a snapshot file: header batch, the records in batches of at most about
    ``max_batch_bytes``, footer batch. ``voters`` needs ``kraft_version`` 1 or more (in Kafka
    too: a voter set is not written at kraft.version 0)."""
    if voters is not None and kraft_version < 1:
        raise ValueError("a voter set is only written at kraft.version 1 or more")
    control = [SnapshotHeaderRecord(version=CONTROL_RECORD_VERSION, last_contained_log_timestamp=last_contained_timestamp)]
    if kraft_version >= 1:
        control.append(KRaftVersionRecord(version=CONTROL_RECORD_VERSION, k_raft_version=kraft_version))
        if voters is not None:
            control.append(voters)
    parts = [build_control_batch(control, base_offset=0, epoch=epoch, timestamp=now_ms)]
    offset = len(control)
    for batch in value_batches([encode_metadata_record(record) for record in records], max_batch_bytes):
        parts.append(build_data_batch(batch, base_offset=offset, epoch=epoch, timestamp=now_ms))
        offset += len(batch)
    parts.append(build_control_batch([SnapshotFooterRecord(version=CONTROL_RECORD_VERSION)],
                                     base_offset=offset, epoch=epoch, timestamp=now_ms))
    return b"".join(parts)


def write_snapshot(fs, directory: str, snapshot_id: SnapshotId, records: Sequence[MetadataRecord], *,
                   last_contained_timestamp: int, now_ms: int, kraft_version: int = 0,
                   voters: VotersRecord | None = None) -> str:
    """Write a snapshot file durably (see the module doc); returns its path."""
    data = encode_snapshot(records, epoch=snapshot_id.epoch, last_contained_timestamp=last_contained_timestamp,
                           now_ms=now_ms, kraft_version=kraft_version, voters=voters)
    name = snapshot_file_name(snapshot_id)
    path = os.path.join(directory, name)
    partial = path[:-len(SNAPSHOT_SUFFIX)] + PARTIAL_SUFFIX
    fs.write_file(partial, data, sync=True)
    fs.rename(partial, path)
    fs.fsync_dir(directory)
    return path


def decode_snapshot(snapshot_id: SnapshotId, data) -> Snapshot:
    """Read a snapshot file's bytes; DamagedSnapshot unless they are one whole snapshot."""
    try:
        entries = list(iter_entries(data))
    except ProtocolError as error:
        raise DamagedSnapshot(str(error)) from None
    if not entries or entries[0].control_type is None or not isinstance(entries[0].message, SnapshotHeaderRecord):
        raise DamagedSnapshot("no SnapshotHeader at its start")
    if len(entries) < 2 or not isinstance(entries[-1].message, SnapshotFooterRecord):
        raise DamagedSnapshot("no SnapshotFooter at its end")
    kraft_version, voters, records = None, None, []
    for entry in entries[1:-1]:
        if entry.control_type is None:
            records.append(MetadataRecord(entry.message, entry.version))
        elif isinstance(entry.message, KRaftVersionRecord) and not records:
            kraft_version = entry.message.k_raft_version
        elif isinstance(entry.message, VotersRecord) and not records:
            voters = entry.message
        else:
            raise DamagedSnapshot(f"a {type(entry.message).__name__} record at offset {entry.offset}")
    return Snapshot(snapshot_id, entries[0].message.last_contained_log_timestamp, kraft_version, voters, records)


def read_snapshot(fs, directory: str, snapshot_id: SnapshotId) -> Snapshot:
    """The complete snapshot ``snapshot_id`` of ``directory``; DamagedSnapshot if it does not read."""
    return decode_snapshot(snapshot_id, fs.read_file(os.path.join(directory, snapshot_file_name(snapshot_id))))
