"""Groups and committed offsets as records of the ``__consumer_offsets`` topic, in Kafka's own
key/value formats, so the topic reads the same as Kafka's (its ``GroupMetadataMessageFormatter``
and ``OffsetsMessageFormatter`` decode it).

Record formats, from the schemas of Kafka's kafka-group-coordinator jar: a key is a big-endian
int16 *record type* (the schema's ``apiKey``) followed by the key schema at version 0; a value
is an int16 version followed by the value schema at that version:

* offset commit: key type 1 ``OffsetCommitKey`` (group, topic, partition; type 0,
  ``LegacyOffsetCommitKey``, has the same fields and is read too); value version 3
  ``OffsetCommitValue`` (offset, leader epoch, metadata, commit timestamp), or version 1 when
  the commit carried a retention time (it adds the expire timestamp, as Kafka writes it);
* group metadata: key type 2 ``GroupMetadataKey`` (group); value version 3
  ``GroupMetadataValue`` (protocol type, generation, protocol, leader, state timestamp, and per
  member its id, instance id, client id and host, timeouts, subscription and assignment);
* KIP-848 consumer groups (``broker/groups/consumer.py``), each value version 0: group epoch
  (key type 3 ``ConsumerGroupMetadataKey``), subscribed topics' ids and partition counts (4,
  ``ConsumerGroupPartitionMetadata``), per member its subscription and client (5,
  ``ConsumerGroupMemberMetadata``), the target assignment's epoch (6,
  ``ConsumerGroupTargetAssignmentMetadata``) and per member its target (7,
  ``ConsumerGroupTargetAssignmentMember``), per member its epochs, state, assigned and revoking
  partitions (8, ``ConsumerGroupCurrentMemberAssignment``);
* a null value is a tombstone: the offset or the group is gone.

The topic itself (which partition holds a group's records, its creation with the
``offsets.topic.*`` settings on the first write, the background replay at start, during which a
group of a partition not yet replayed answers COORDINATOR_LOAD_IN_PROGRESS) is the coordinator
runtime's (:mod:`odradek.broker.coordinators.runtime`), given :data:`CONSUMER_OFFSETS`; record
keys of types the group coordinator does not know (share groups, streams groups, regular
expressions) decode to None and are skipped.

Ownership: pure functions and constants; the records are the group coordinator's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from odradek.protocol.errors import DecodeError
from odradek.protocol.messages.records import (
    consumer_group_current_member_assignment_key as current_key,
    consumer_group_current_member_assignment_value as current_value,
    consumer_group_member_metadata_key as member_key,
    consumer_group_member_metadata_value as member_value,
    consumer_group_metadata_key as epoch_key,
    consumer_group_metadata_value as epoch_value,
    consumer_group_partition_metadata_key as partition_metadata_key,
    consumer_group_partition_metadata_value as partition_metadata_value,
    consumer_group_target_assignment_member_key as target_key,
    consumer_group_target_assignment_member_value as target_value,
    consumer_group_target_assignment_metadata_key as target_epoch_key,
    consumer_group_target_assignment_metadata_value as target_epoch_value,
)
from odradek.protocol.messages.records.group_metadata_key import GroupMetadataKey
from odradek.protocol.messages.records.group_metadata_value import GroupMetadataValue, MemberMetadata
from odradek.protocol.messages.records.legacy_offset_commit_key import LegacyOffsetCommitKey
from odradek.protocol.messages.records.offset_commit_key import OffsetCommitKey
from odradek.protocol.messages.records.offset_commit_value import OffsetCommitValue

from ..coordinators.runtime import CoordinatorTopic
from .consumer import ClassicMemberInfo, ConsumerMember, MemberState
from .coordinator import CommittedOffset


OFFSETS_TOPIC = "__consumer_offsets"
OFFSET_VALUE_VERSION = 3
OFFSET_VALUE_WITH_EXPIRY_VERSION = 1
GROUP_VALUE_VERSION = 3
CONSUMER_GROUP_VALUE_VERSION = 0
# A coordinator key schema has the one version 0; its int16 prefix is the record type.
KEY_SCHEMA_VERSION = 0
_VERSION = struct.Struct(">h")


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

def _key(message) -> bytes:
    return _VERSION.pack(message.API_KEY) + message.encode(KEY_SCHEMA_VERSION)


def offset_commit_key(group: str, topic: str, partition: int) -> bytes:
    return _key(OffsetCommitKey(group=group, topic=topic, partition=partition))


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
    return _key(GroupMetadataKey(group=group))


def group_metadata_value(stored: StoredGroup) -> bytes:
    value = GroupMetadataValue(
        protocol_type=stored.protocol_type, generation=stored.generation_id, protocol=stored.protocol_name,
        leader=stored.leader_id, current_state_timestamp=stored.state_timestamp_ms,
        members=[MemberMetadata(member_id=m.member_id, group_instance_id=m.group_instance_id, client_id=m.client_id,
                                client_host=m.client_host, rebalance_timeout=m.rebalance_timeout_ms,
                                session_timeout=m.session_timeout_ms, subscription=m.subscription,
                                assignment=m.assignment) for m in stored.members])
    return _VERSION.pack(GROUP_VALUE_VERSION) + value.encode(GROUP_VALUE_VERSION)


def _versioned(version: int, message) -> bytes:
    return _VERSION.pack(version) + message.encode(version)


def _topic_partitions(struct_class, assignment) -> list:
    return [struct_class(topic_id=topic_id, partitions=sorted(partitions))
            for topic_id, partitions in sorted(assignment.items(), key=lambda item: str(item[0])) if partitions]


def _assignment_of(topic_partitions) -> dict:
    return {item.topic_id: set(item.partitions) for item in topic_partitions if item.partitions}


def consumer_group_epoch_record(group_id: str, epoch: int) -> tuple[bytes, bytes]:
    return (_key(epoch_key.ConsumerGroupMetadataKey(group_id=group_id)),
            _versioned(CONSUMER_GROUP_VALUE_VERSION, epoch_value.ConsumerGroupMetadataValue(epoch=epoch)))


def consumer_group_partition_metadata_record(group_id: str, metadata: dict) -> tuple[bytes, bytes]:
    topics = [partition_metadata_value.TopicMetadata(topic_id=topic_id, topic_name=name, num_partitions=count,
                                                     partition_metadata=[])
              for name, (topic_id, count) in sorted(metadata.items())]
    return (_key(partition_metadata_key.ConsumerGroupPartitionMetadataKey(group_id=group_id)),
            _versioned(CONSUMER_GROUP_VALUE_VERSION, partition_metadata_value.ConsumerGroupPartitionMetadataValue(
                topics=topics)))


def consumer_group_member_record(group_id: str, member: ConsumerMember) -> tuple[bytes, bytes]:
    value = member_value.ConsumerGroupMemberMetadataValue(
        instance_id=member.instance_id, rack_id=member.rack_id, client_id=member.client_id,
        client_host=member.client_host, subscribed_topic_names=list(member.subscribed_topic_names),
        subscribed_topic_regex=member.subscribed_topic_regex, rebalance_timeout_ms=member.rebalance_timeout_ms,
        server_assignor=member.server_assignor,
        classic_member_metadata=None)  # written as an explicit null: the field's default is the empty struct
    if member.classic is not None:
        value.classic_member_metadata = member_value.ClassicMemberMetadata(
            session_timeout_ms=member.classic.session_timeout_ms,
            supported_protocols=[member_value.ClassicProtocol(name=name, metadata=metadata)
                                 for name, metadata in member.classic.protocols])
    return (_key(member_key.ConsumerGroupMemberMetadataKey(group_id=group_id, member_id=member.member_id)),
            _versioned(CONSUMER_GROUP_VALUE_VERSION, value))


def consumer_group_assignment_epoch_record(group_id: str, epoch: int) -> tuple[bytes, bytes]:
    return (_key(target_epoch_key.ConsumerGroupTargetAssignmentMetadataKey(group_id=group_id)),
            _versioned(CONSUMER_GROUP_VALUE_VERSION,
                       target_epoch_value.ConsumerGroupTargetAssignmentMetadataValue(assignment_epoch=epoch)))


def consumer_group_target_record(group_id: str, member_id: str, assignment: dict) -> tuple[bytes, bytes]:
    value = target_value.ConsumerGroupTargetAssignmentMemberValue(
        topic_partitions=_topic_partitions(target_value.TopicPartition, assignment))
    return (_key(target_key.ConsumerGroupTargetAssignmentMemberKey(group_id=group_id, member_id=member_id)),
            _versioned(CONSUMER_GROUP_VALUE_VERSION, value))


def consumer_group_current_assignment_record(group_id: str, member: ConsumerMember) -> tuple[bytes, bytes]:
    value = current_value.ConsumerGroupCurrentMemberAssignmentValue(
        member_epoch=member.member_epoch, previous_member_epoch=member.previous_member_epoch,
        state=int(member.state),
        assigned_partitions=_topic_partitions(current_value.TopicPartitions, member.assigned),
        partitions_pending_revocation=_topic_partitions(current_value.TopicPartitions, member.pending_revocation))
    return (_key(current_key.ConsumerGroupCurrentMemberAssignmentKey(
                group_id=group_id, member_id=member.member_id)),
            _versioned(CONSUMER_GROUP_VALUE_VERSION, value))


def consumer_group_member_tombstones(group_id: str, member_id: str) -> list[tuple[bytes, None]]:
    """A member leaves: its current assignment, target and metadata go (Kafka's order)."""
    return [
        (_key(current_key.ConsumerGroupCurrentMemberAssignmentKey(
            group_id=group_id, member_id=member_id)), None),
        (_key(target_key.ConsumerGroupTargetAssignmentMemberKey(
            group_id=group_id, member_id=member_id)), None),
        (_key(member_key.ConsumerGroupMemberMetadataKey(
            group_id=group_id, member_id=member_id)), None),
    ]


def consumer_group_tombstones(group_id: str) -> list[tuple[bytes, None]]:
    """An empty consumer group is deleted: its group-level records go, the epoch last."""
    return [
        (_key(target_epoch_key.ConsumerGroupTargetAssignmentMetadataKey(group_id=group_id)), None),
        (_key(partition_metadata_key.ConsumerGroupPartitionMetadataKey(group_id=group_id)), None),
        (_key(epoch_key.ConsumerGroupMetadataKey(group_id=group_id)), None),
    ]


def _decode_consumer_record(record_type: int, key_body, value):
    key_class, kind = _CONSUMER_KEYS[record_type]
    key = key_class.decode(key_body, KEY_SCHEMA_VERSION)
    member_id = getattr(key, "member_id", None)
    if value is None:
        return ("consumer", kind, key.group_id, member_id, None)
    value_version, body = _split_version(value)
    if kind == "epoch":
        decoded = epoch_value.ConsumerGroupMetadataValue.decode(body, value_version).epoch
    elif kind == "partition_metadata":
        topics = partition_metadata_value.ConsumerGroupPartitionMetadataValue.decode(body, value_version).topics
        decoded = {topic.topic_name: (topic.topic_id, topic.num_partitions) for topic in topics}
    elif kind == "member":
        item = member_value.ConsumerGroupMemberMetadataValue.decode(body, value_version)
        classic = item.classic_member_metadata  # None (written as an explicit null) for a consumer-protocol member
        decoded = ConsumerMember(
            member_id, instance_id=item.instance_id, rack_id=item.rack_id, client_id=item.client_id,
            client_host=item.client_host, rebalance_timeout_ms=item.rebalance_timeout_ms,
            subscribed_topic_names=tuple(item.subscribed_topic_names), subscribed_topic_regex=item.subscribed_topic_regex,
            server_assignor=item.server_assignor,
            classic=None if classic is None else ClassicMemberInfo(
                classic.session_timeout_ms, tuple((p.name, bytes(p.metadata)) for p in classic.supported_protocols)))
    elif kind == "target":
        decoded = _assignment_of(target_value.ConsumerGroupTargetAssignmentMemberValue.decode(
            body, value_version).topic_partitions)
    elif kind == "assignment_epoch":
        decoded = target_epoch_value.ConsumerGroupTargetAssignmentMetadataValue.decode(
            body, value_version).assignment_epoch
    else:
        item = current_value.ConsumerGroupCurrentMemberAssignmentValue.decode(body, value_version)
        try:
            state = MemberState(item.state)
        except ValueError:
            state = MemberState.UNKNOWN
        decoded = ConsumerMember(member_id, member_epoch=item.member_epoch,
                                 previous_member_epoch=item.previous_member_epoch, state=state,
                                 assigned=_assignment_of(item.assigned_partitions),
                                 pending_revocation=_assignment_of(item.partitions_pending_revocation))
    return ("consumer", kind, key.group_id, member_id, decoded)


_CONSUMER_KEYS = {key_class.API_KEY: (key_class, kind) for key_class, kind in (
    (epoch_key.ConsumerGroupMetadataKey, "epoch"),
    (partition_metadata_key.ConsumerGroupPartitionMetadataKey, "partition_metadata"),
    (member_key.ConsumerGroupMemberMetadataKey, "member"),
    (target_epoch_key.ConsumerGroupTargetAssignmentMetadataKey, "assignment_epoch"),
    (target_key.ConsumerGroupTargetAssignmentMemberKey, "target"),
    (current_key.ConsumerGroupCurrentMemberAssignmentKey, "current"),
)}
_OFFSET_KEYS = {key_class.API_KEY: key_class for key_class in (LegacyOffsetCommitKey, OffsetCommitKey)}


def _split_version(data) -> tuple[int, memoryview]:
    """(int16 prefix, rest): a key's record type or a value's version, then the schema's bytes."""
    if data is None or len(data) < 2:
        raise DecodeError("a __consumer_offsets key or value needs a 2-byte prefix")
    view = memoryview(data)
    return _VERSION.unpack_from(view, 0)[0], view[2:]


def decode_record(key, value):
    """What one ``__consumer_offsets`` record says:

    * ``("offset", group, topic, partition, CommittedOffset | None)``
    * ``("group", group, StoredGroup | None)``
    * ``("consumer", kind, group, member id | None, value | None)`` for a KIP-848 consumer
      group record, kind one of "epoch", "partition_metadata", "member", "target",
      "assignment_epoch", "current" (see :meth:`ConsumerGroups.restore`);
    * ``None`` for a record kind this coordinator does not keep (share and streams groups).

    Raises a ProtocolError subclass (DecodeError, UnsupportedVersion) for bytes that are not
    such a record."""
    record_type, key_body = _split_version(key)
    if record_type in _OFFSET_KEYS:
        offset_key = _OFFSET_KEYS[record_type].decode(key_body, KEY_SCHEMA_VERSION)
        if value is None:
            return ("offset", offset_key.group, offset_key.topic, offset_key.partition, None)
        value_version, value_body = _split_version(value)
        decoded = OffsetCommitValue.decode(value_body, value_version)
        expire = decoded.expire_timestamp if value_version == 1 and decoded.expire_timestamp >= 0 else None
        committed = CommittedOffset(decoded.offset, decoded.leader_epoch if value_version >= 3 else -1,
                                    decoded.metadata, decoded.commit_timestamp, expire)
        return ("offset", offset_key.group, offset_key.topic, offset_key.partition, committed)
    if record_type == GroupMetadataKey.API_KEY:
        group_key = GroupMetadataKey.decode(key_body, KEY_SCHEMA_VERSION)
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
    if record_type in _CONSUMER_KEYS:
        return _decode_consumer_record(record_type, key_body, value)
    return None


def replay(coordinator, decoded) -> None:
    """Apply one decoded record (:func:`decode_record`) to the coordinator."""
    if decoded is None:
        return
    if decoded[0] == "offset":
        coordinator.restore_offset(*decoded[1:])
    elif decoded[0] == "consumer":
        coordinator.consumer.restore(*decoded[1:])
    else:
        coordinator.restore_group(*decoded[1:])


# --- the topic ---

# __consumer_offsets as the coordinator runtime (broker/coordinators/runtime.py) keeps it: Kafka's
# offsets.topic.* settings and topic configs (compacted; compression as the producer chose).
CONSUMER_OFFSETS = CoordinatorTopic(
    name=OFFSETS_TOPIC, partitions_key="offsets.topic.num.partitions", segment_bytes_key="offsets.topic.segment.bytes",
    load_buffer_key="offsets.load.buffer.size", decode=decode_record,
    fixed_configs=(("cleanup.policy", "compact"), ("compression.type", "producer")))
