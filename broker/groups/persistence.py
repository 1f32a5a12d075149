"""Groups and committed offsets as records of the ``__consumer_offsets`` topic, in Kafka's own
key/value formats, so the topic reads the same as Kafka's (its ``GroupMetadataMessageFormatter``
and ``OffsetsMessageFormatter`` decode it).

Record formats (each key and value is a big-endian int16 version followed by the generated
schema of ``group-coordinator/*.json`` at that version):

* offset commit: key version 1 ``OffsetCommitKey`` (group, topic, partition); value version 3
  ``OffsetCommitValue`` (offset, leader epoch, metadata, commit timestamp), or version 1 when
  the commit carried a retention time (it adds the expire timestamp, as Kafka writes it);
* group metadata: key version 2 ``GroupMetadataKey`` (group); value version 3
  ``GroupMetadataValue`` (protocol type, generation, protocol, leader, state timestamp, and per
  member its id, instance id, client id and host, timeouts, subscription and assignment);
* a null value is a tombstone: the offset or the group is gone.

Which partition holds a group's records: ``coordinator_partition(group, partitions)``, Kafka's
hash. The topic is created (compacted, ``offsets.topic.num.partitions`` partitions) on the first
write, as Kafka creates it on the first coordinator lookup. On start the coordinator replays
every partition before the broker listens (:meth:`ConsumerOffsetsLog.load`); record keys of
versions it does not know (Kafka's KIP-848 consumer-group records) are skipped.

Ownership: the :class:`ConsumerOffsetsLog` belongs to the group coordinator and is used on the
event loop only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import structlog

from odradek.protocol.errors import DecodeError, ProtocolError
from odradek.protocol.messages.records.group_metadata_key import GroupMetadataKey
from odradek.protocol.messages.records.group_metadata_value import GroupMetadataValue, MemberMetadata
from odradek.protocol.messages.records.offset_commit_key import OffsetCommitKey
from odradek.protocol.messages.records.offset_commit_value import OffsetCommitValue
from odradek.protocol.records.batch import Record, build_batch, iter_batches

from .coordinator import CommittedOffset, coordinator_partition

log = structlog.get_logger("odradek.groups")

OFFSETS_TOPIC = "__consumer_offsets"
OFFSET_KEY_VERSION = 1
GROUP_KEY_VERSION = 2
OFFSET_VALUE_VERSION = 3
OFFSET_VALUE_WITH_EXPIRY_VERSION = 1
GROUP_VALUE_VERSION = 3
_VERSION = struct.Struct(">h")
READ_CHUNK_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class StoredMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class StoredGroup:
    """A group as its metadata record has it."""

    protocol_type: str
    generation_id: int
    protocol_name: str | None
    leader_id: str | None
    state_timestamp_ms: int
    members: tuple[StoredMember, ...]


# --- record codecs (pure) ---

def offset_commit_key(group: str, topic: str, partition: int) -> bytes:
    return _VERSION.pack(OFFSET_KEY_VERSION) + OffsetCommitKey(group=group, topic=topic, partition=partition).encode(
        OFFSET_KEY_VERSION)


def offset_commit_value(committed: CommittedOffset) -> bytes:
    if committed.expire_timestamp_ms is not None:
        value = OffsetCommitValue(offset=committed.offset, metadata=committed.metadata,
                                  commit_timestamp=committed.commit_timestamp_ms,
                                  expire_timestamp=committed.expire_timestamp_ms)
        return _VERSION.pack(OFFSET_VALUE_WITH_EXPIRY_VERSION) + value.encode(OFFSET_VALUE_WITH_EXPIRY_VERSION)
    value = OffsetCommitValue(offset=committed.offset, leader_epoch=committed.leader_epoch, metadata=committed.metadata,
                              commit_timestamp=committed.commit_timestamp_ms)
    return _VERSION.pack(OFFSET_VALUE_VERSION) + value.encode(OFFSET_VALUE_VERSION)


def group_metadata_key(group: str) -> bytes:
    return _VERSION.pack(GROUP_KEY_VERSION) + GroupMetadataKey(group=group).encode(GROUP_KEY_VERSION)


def group_metadata_value(stored: StoredGroup) -> bytes:
    value = GroupMetadataValue(
        protocol_type=stored.protocol_type, generation=stored.generation_id, protocol=stored.protocol_name,
        leader=stored.leader_id, current_state_timestamp=stored.state_timestamp_ms,
        members=[MemberMetadata(member_id=m.member_id, group_instance_id=m.group_instance_id, client_id=m.client_id,
                                client_host=m.client_host, rebalance_timeout=m.rebalance_timeout_ms,
                                session_timeout=m.session_timeout_ms, subscription=m.subscription,
                                assignment=m.assignment) for m in stored.members])
    return _VERSION.pack(GROUP_VALUE_VERSION) + value.encode(GROUP_VALUE_VERSION)


def _split_version(data) -> tuple[int, memoryview]:
    if data is None or len(data) < 2:
        raise DecodeError("a __consumer_offsets key or value needs a 2-byte version")
    view = memoryview(data)
    return _VERSION.unpack_from(view, 0)[0], view[2:]


def decode_record(key, value):
    """What one ``__consumer_offsets`` record says:

    * ``("offset", group, topic, partition, CommittedOffset | None)``
    * ``("group", group, StoredGroup | None)``
    * ``None`` for a record kind this coordinator does not keep (KIP-848 records and others).

    Raises a ProtocolError subclass (DecodeError, UnsupportedVersion) for bytes that are not
    such a record."""
    key_version, key_body = _split_version(key)
    if key_version in (0, 1):
        offset_key = OffsetCommitKey.decode(key_body, key_version)
        if value is None:
            return ("offset", offset_key.group, offset_key.topic, offset_key.partition, None)
        value_version, value_body = _split_version(value)
        decoded = OffsetCommitValue.decode(value_body, value_version)
        expire = decoded.expire_timestamp if value_version == 1 and decoded.expire_timestamp >= 0 else None
        committed = CommittedOffset(decoded.offset, decoded.leader_epoch if value_version >= 3 else -1,
                                    decoded.metadata, decoded.commit_timestamp, expire)
        return ("offset", offset_key.group, offset_key.topic, offset_key.partition, committed)
    if key_version == GROUP_KEY_VERSION:
        group_key = GroupMetadataKey.decode(key_body, key_version)
        if value is None:
            return ("group", group_key.group, None)
        value_version, value_body = _split_version(value)
        decoded = GroupMetadataValue.decode(value_body, value_version)
        members = tuple(StoredMember(
            m.member_id, m.group_instance_id if value_version >= 3 else None, m.client_id, m.client_host,
            m.rebalance_timeout if value_version >= 1 and m.rebalance_timeout >= 0 else m.session_timeout,
            m.session_timeout, bytes(m.subscription), bytes(m.assignment)) for m in decoded.members)
        return ("group", group_key.group, StoredGroup(
            decoded.protocol_type, decoded.generation, decoded.protocol, decoded.leader,
            decoded.current_state_timestamp if value_version >= 2 else -1, members))
    return None


# --- the topic ---

class ConsumerOffsetsLog:
    """Appends the coordinator's records to ``__consumer_offsets`` and replays them at start."""

    def __init__(self, broker):
        self.broker = broker

    def _partition_count(self) -> int:
        topic = self.broker.topics.get(OFFSETS_TOPIC)
        if topic is not None:
            return topic.partition_count
        return self.broker.config["offsets.topic.num.partitions"]

    def _ensure_topic(self):
        topic = self.broker.topics.get(OFFSETS_TOPIC)
        if topic is None:
            configs = {"cleanup.policy": "compact",
                       "segment.bytes": str(self.broker.config["offsets.topic.segment.bytes"]),
                       "compression.type": "producer"}
            topic = self.broker.create_topic(OFFSETS_TOPIC, self.broker.config["offsets.topic.num.partitions"], 1,
                                             configs=configs)
        return topic

    def append(self, group_id: str, records: list[tuple[bytes, bytes | None]], now_ms: int) -> None:
        """Append one batch of records to the group's partition. Raises the storage layer's
        error when the disk refuses."""
        if not records:
            return
        topic = self._ensure_topic()
        partition = self.broker.partition(OFFSETS_TOPIC, coordinator_partition(group_id, topic.partition_count))
        batch = build_batch([Record(offset_delta=index, timestamp_delta=0, key=key, value=value)
                             for index, (key, value) in enumerate(records)], base_timestamp=now_ms)
        partition.append(batch)

    def load(self, coordinator) -> int:
        """Replay every partition into ``coordinator``; returns how many records were read."""
        topic = self.broker.topics.get(OFFSETS_TOPIC)
        if topic is None:
            return 0
        count = 0
        for index in range(topic.partition_count):
            partition = self.broker.partition(OFFSETS_TOPIC, index)
            if partition is None:
                continue
            for key, value in _records_of(partition.log):
                try:
                    decoded = decode_record(key, value)
                except ProtocolError as error:
                    log.warning("skipping an unreadable __consumer_offsets record", partition=index, error=str(error))
                    continue
                count += 1
                if decoded is None:
                    continue
                if decoded[0] == "offset":
                    coordinator.restore_offset(*decoded[1:])
                else:
                    coordinator.restore_group(*decoded[1:])
        coordinator.finish_restore()
        log.info("consumer offsets loaded", records=count, groups=len(coordinator.groups))
        return count


def _records_of(partition_log):
    """(key, value) of every record of a partition log, in offset order (control batches,
    which transaction markers will write, carry no group data)."""
    offset = partition_log.log_start_offset
    end = partition_log.log_end_offset
    while offset < end:
        result = partition_log.read(offset, READ_CHUNK_BYTES, max_offset=end, min_one_batch=True)
        if not result.regions:
            return
        data = b"".join(region.read() for region in result.regions)
        next_offset = offset
        for batch in iter_batches(data, allow_incomplete=False):
            next_offset = batch.next_offset
            if batch.is_control:
                continue
            for record in batch.records:
                if batch.offset_of(record) >= offset and record.key is not None:
                    yield bytes(record.key), (bytes(record.value) if record.value is not None else None)
        if next_offset <= offset:
            return
        offset = next_offset
