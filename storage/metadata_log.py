"""The KRaft metadata log of a one-voter quorum: ``__cluster_metadata-0`` in the metadata log
directory, in Kafka's files (a log of record batches with its indexes and leader-epoch
checkpoint, ``quorum-state``, snapshots ``<end offset>-<epoch>.checkpoint``).

A node that is the only voter of its quorum elects itself at every start, as Kafka's raft
client does: the epoch goes one past the highest it knows (``quorum-state``, the log's batches,
the latest snapshot), ``quorum-state`` is written with itself as leader and vote, and a
LeaderChange control batch opens the epoch in the log. Every append is fsynced before it
returns: with one voter the high watermark is the flushed end of the log, and what a caller
was told is written stays written.

What the log holds is read back by :meth:`MetadataLog.replay`: the records of the latest
complete snapshot, then those of the log from the snapshot's end offset. A change of more
than one batch is appended inside BeginTransactionRecord / EndTransactionRecord, as Kafka's
controller writes a large atomic change (KIP-868); a replay drops a transaction the log does
not end (what a crash in its middle left), and one ended by AbortTransactionRecord.

Kafka's broker keeps this directory away from its LogManager; so does odradek's
(storage/log_directory.py skips it). Recovery of the log runs from offset 0 at every open (it
has no checkpoint of its own), which snapshots keep short: once
``SNAPSHOT_AFTER_BYTES`` were appended since the last one, the owner writes a snapshot of its
state (:meth:`snapshot_due`, :meth:`write_snapshot`), and the segments below it go.

Owner: one caller (the broker's topic table, on the event loop); not thread safe.
"""

from __future__ import annotations

import os
import uuid
from typing import Iterator, Sequence

import structlog

from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.records.abort_transaction_record import AbortTransactionRecord
from odradek.protocol.messages.records.begin_transaction_record import BeginTransactionRecord
from odradek.protocol.messages.records.end_transaction_record import EndTransactionRecord
from odradek.protocol.messages.records.leader_change_message import LeaderChangeMessage, Voter
from odradek.protocol.metadata import (
    MetadataRecord,
    build_control_batch,
    build_data_batch,
    encode_metadata_record,
    iter_entries,
    value_batches,
)

from .checkpoints import QUORUM_STATE_FILE, CorruptCheckpoint, QuorumState, read_quorum_state, write_quorum_state
from .config import LogConfig
from .errors import KafkaStorageError
from .metadata_snapshots import (
    MAX_BATCH_BYTES,
    DamagedSnapshot,
    SnapshotId,
    read_snapshot,
    snapshot_file_name,
    snapshot_files,
    write_snapshot,
)
from .partition_log import PartitionLog
from .validation import ORIGIN_COORDINATOR

_log = structlog.get_logger("odradek.metadata_log")

METADATA_TOPIC = "__cluster_metadata"
METADATA_PARTITION_DIR = f"{METADATA_TOPIC}-0"
# Kafka's Uuid.METADATA_TOPIC_ID ("AAAAAAAAAAAAAAAAAAAAAQ"), in the log's partition.metadata.
METADATA_TOPIC_ID = uuid.UUID(int=1)
# Kafka's metadata.log.max.record.bytes.between.snapshots default: a snapshot once this many
# bytes of records were appended since the last one.
SNAPSHOT_AFTER_BYTES = 20 * 1024 * 1024
# The metadata log's own config: batches up to the raft client's 8 MiB (Kafka sets the
# metadata log's max.message.bytes to it).
_LOG_CONFIG = LogConfig(max_message_bytes=MAX_BATCH_BYTES)
_READ_BYTES = 4 * 1024 * 1024


class DamagedMetadataLog(Exception):
    """The metadata log does not replay: a record that does not decode, or records missing
    between the latest snapshot and the log."""


class MetadataLog:
    """The ``__cluster_metadata-0`` log of a one-voter quorum (see the module doc)."""

    def __init__(self, fs, directory: str, log: PartitionLog, node_id: int, directory_id: uuid.UUID, clock):
        self.fs = fs
        self.directory = directory
        self.log = log
        self.node_id = node_id
        self.directory_id = directory_id
        self.clock = clock
        self.epoch = -1
        self.snapshot_id: SnapshotId | None = None
        self.failed: BaseException | None = None  # a refused change that could not be cut

    @staticmethod
    def exists(fs, metadata_dir: str) -> bool:
        return fs.exists(os.path.join(metadata_dir, METADATA_PARTITION_DIR))

    @classmethod
    def open(cls, fs, metadata_dir: str, *, node_id: int, directory_id: uuid.UUID, clock) -> "MetadataLog":
        """Open (creating it if needed) and recover the log of ``metadata_dir``, and elect this
        node for a new epoch. The caller then reads it with :meth:`replay`."""
        directory = os.path.join(metadata_dir, METADATA_PARTITION_DIR)
        log = PartitionLog.open(fs, directory, _LOG_CONFIG, topic=METADATA_TOPIC, partition=0,
                                topic_id=METADATA_TOPIC_ID, recovery_point=0, clean_shutdown=False, clock=clock)
        metadata_log = cls(fs, directory, log, node_id, directory_id, clock)
        try:
            metadata_log._open_snapshots()
            metadata_log._elect()
        except BaseException:
            log.close()
            raise
        return metadata_log

    def _open_snapshots(self) -> None:
        """Remove what a crash left of snapshot writes and deletions; take the latest complete
        snapshot."""
        for found in snapshot_files(self.fs, self.directory):  # by id: the latest last
            if found.state != "complete":
                self.fs.unlink(os.path.join(self.directory, found.name))
            else:
                self.snapshot_id = found.snapshot_id
        if self.snapshot_id is not None and self.log.log_end_offset < self.snapshot_id.end_offset:
            # The log ends before the snapshot (lost, or cut by recovery): as Kafka's metadata
            # log does, it starts again at the snapshot's end.
            self.log.truncate_fully_and_start_at(self.snapshot_id.end_offset)

    def _elect(self) -> None:
        state = None
        path = os.path.join(self.directory, QUORUM_STATE_FILE)
        try:
            state = read_quorum_state(self.fs, path)
        except (CorruptCheckpoint, OSError) as error:
            # The epoch is also in the log and the snapshots, and this node is the only voter.
            _log.warning("ignoring a quorum-state that cannot be read", file=path, reason=str(error))
        known = [self.log.leader_epochs.latest_epoch]
        if state is not None:
            known.append(state.leader_epoch)
        if self.snapshot_id is not None:
            known.append(self.snapshot_id.epoch)
        self.epoch = max(max(known), 0) + 1
        write_quorum_state(self.fs, path, QuorumState(leader_id=self.node_id, leader_epoch=self.epoch,
                                                      voted_id=self.node_id, voted_directory_id=self.directory_id))
        me = [Voter(voter_id=self.node_id)]
        change = LeaderChangeMessage(version=0, leader_id=self.node_id, voters=me, granting_voters=me)
        self._append([build_control_batch([change], base_offset=self.log.log_end_offset, epoch=self.epoch,
                                          timestamp=self.clock())])

    @property
    def end_offset(self) -> int:
        return self.log.log_end_offset

    def replay(self) -> Iterator[MetadataRecord]:
        """Every metadata record the log holds, in order (see the module doc); raises
        :class:`DamagedMetadataLog` when it cannot be read whole."""
        start = self.log.log_start_offset
        if self.snapshot_id is not None:
            try:
                yield from read_snapshot(self.fs, self.directory, self.snapshot_id).records
            except (DamagedSnapshot, OSError) as error:
                raise DamagedMetadataLog(f"snapshot {snapshot_file_name(self.snapshot_id)}: {error}") from None
            start = self.snapshot_id.end_offset
        elif start > 0:
            raise DamagedMetadataLog(f"the log starts at {start} and there is no snapshot before it")
        pending: list[MetadataRecord] | None = None  # the records of an open transaction
        offset = start
        while offset < self.log.log_end_offset:
            data = self.log.read(offset, _READ_BYTES, max_offset=self.log.log_end_offset).read_bytes()
            try:
                entries = list(iter_entries(data, max_decompressed_size=MAX_BATCH_BYTES * 4))
            except ProtocolError as error:
                raise DamagedMetadataLog(f"{self.directory} at offset {offset}: {error}") from None
            if not entries:
                break
            for entry in entries:
                if entry.offset < offset or entry.control_type is not None:
                    continue
                message = entry.message
                if isinstance(message, BeginTransactionRecord):
                    pending = []
                elif isinstance(message, EndTransactionRecord):
                    yield from pending or ()
                    pending = None
                elif isinstance(message, AbortTransactionRecord):
                    pending = None
                elif pending is not None:
                    pending.append(MetadataRecord(message, entry.version))
                else:
                    yield MetadataRecord(message, entry.version)
            offset = entries[-1].offset + 1
        if pending:
            _log.warning("a metadata transaction the log does not end was dropped", records=len(pending))

    def append(self, records: Sequence[MetadataRecord]) -> None:
        """Append ``records`` as one change and fsync them. On a failure (KafkaStorageError) the
        change is cut from the log again."""
        groups = value_batches([encode_metadata_record(record) for record in records], MAX_BATCH_BYTES)
        if not groups:
            return
        if len(groups) > 1:
            begin = encode_metadata_record(MetadataRecord(BeginTransactionRecord(name="odradek"), 0))
            end = encode_metadata_record(MetadataRecord(EndTransactionRecord(), 0))
            groups = [[begin]] + groups + [[end]]
        offset, batches, now = self.log.log_end_offset, [], self.clock()
        for group in groups:
            batches.append(build_data_batch(group, base_offset=offset, epoch=self.epoch, timestamp=now))
            offset += len(group)
        self._append(batches)

    def _append(self, batches: list[bytes]) -> None:
        if self.failed is not None:
            raise KafkaStorageError(f"the metadata log failed earlier: {self.failed}")
        start = self.log.log_end_offset
        try:
            for batch in batches:
                self.log.append(batch, leader_epoch=self.epoch, origin=ORIGIN_COORDINATOR)
            self.log.flush()
        except (OSError, ProtocolError) as error:
            # The change is refused: it must not stay in the log under the changes that follow
            # (a restart would replay it). If even the cut fails, no change is taken any more.
            try:
                self.log.truncate_to(start)
            except (OSError, ProtocolError) as second:
                self.failed = second
            raise KafkaStorageError(f"append to the metadata log failed: {error}") from error
        self.log.update_high_watermark(self.log.log_end_offset)

    @property
    def snapshot_due(self) -> bool:
        # The segments below the latest snapshot are deleted (it starts a segment of its own):
        # what the log holds is what was appended since.
        return self.log.size_in_bytes >= SNAPSHOT_AFTER_BYTES

    def write_snapshot(self, records: Sequence[MetadataRecord]) -> SnapshotId:
        """Write ``records`` (the whole state the log holds up to its end) as a snapshot at the
        log end, then drop the segments and snapshots below it."""
        snapshot_id = SnapshotId(self.log.log_end_offset, self.epoch)
        now = self.clock()
        newest, _ = self.log.max_timestamp_offset()  # the append time of the last record it contains
        write_snapshot(self.fs, self.directory, snapshot_id, records,
                       last_contained_timestamp=newest if newest >= 0 else now, now_ms=now)
        self.snapshot_id = snapshot_id
        self.log.roll()
        self.log.delete_records_before(snapshot_id.end_offset)
        for found in snapshot_files(self.fs, self.directory):
            if found.snapshot_id < snapshot_id:
                self.fs.unlink(os.path.join(self.directory, found.name))
        return snapshot_id

    def close(self) -> None:
        self.log.close()

    def abandon(self) -> None:
        """Close without flushing (the directory is removed next)."""
        self.log.abandon()

