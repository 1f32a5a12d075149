"""Kafka's consumer protocol for classic groups: the bytes consumers put in JoinGroup's member
metadata and SyncGroup's assignments (Kafka's ``ConsumerProtocol``: an int16 version, then the
ConsumerProtocolSubscription or ConsumerProtocolAssignment record of that version, generated from
Kafka's schemas in protocol/messages/records), and the range assignor a group leader runs
(Kafka's ``RangeAssignor``). Pure functions, no I/O. The group coordinator reads and writes these
bytes for classic members of consumer groups (broker/groups/consumer_groups.py); the ``odradek``
developer commands are a classic member themselves (broker/group_membership.py).

Later versions only append fields (owned partitions, generation, rack), so a version newer than
the schemas know is read as the newest known, as Kafka's own reader does.
"""

from __future__ import annotations

from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.records.consumer_protocol_assignment import (
    ConsumerProtocolAssignment,
    TopicPartition as AssignedTopicPartition,
)
from odradek.protocol.messages.records.consumer_protocol_subscription import ConsumerProtocolSubscription

PROTOCOL_TYPE = "consumer"
RANGE = "range"  # the assignor's name in JoinGroup, as Kafka's consumers announce it


def known_version(message_class, version: int) -> int:
    """``version`` brought within what the schema of ``message_class`` defines."""
    return min(max(version, message_class.MIN_VERSION), message_class.MAX_VERSION)


def decode_versioned(message_class, data: bytes):
    """The record ``data`` holds (its int16 version, then the record); ProtocolError when it
    does not read."""
    if len(data) < 2:
        raise ProtocolError(f"{message_class.__name__} needs a 2-byte version")
    version = int.from_bytes(data[:2], "big", signed=True)
    return message_class.decode(memoryview(data)[2:], known_version(message_class, version))


def encode_versioned(message, version: int) -> bytes:
    version = known_version(type(message), version)
    return version.to_bytes(2, "big", signed=True) + bytes(message.encode(version))


def encode_subscription(topics: list[str]) -> bytes:
    """A v0 Subscription of ``topics``, no user data."""
    return encode_versioned(ConsumerProtocolSubscription(topics=list(topics), user_data=None), 0)


def decode_subscription(data: bytes) -> list[str]:
    """The topics of a member's Subscription (any version); [] when it does not read."""
    try:
        return list(decode_versioned(ConsumerProtocolSubscription, data).topics)
    except ProtocolError:
        return []


def encode_assignment(pairs: list[tuple[str, int]]) -> bytes:
    """A v0 Assignment of (topic, partition) pairs, no user data."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in pairs:
        by_topic.setdefault(topic, []).append(partition)
    topics = [AssignedTopicPartition(topic=topic, partitions=partitions) for topic, partitions in by_topic.items()]
    return encode_versioned(ConsumerProtocolAssignment(assigned_partitions=topics, user_data=None), 0)


def decode_assignment(data: bytes) -> list[tuple[str, int]]:
    """The (topic, partition) pairs of an Assignment (any version); [] for an empty or
    unreadable one (a member still joining has none)."""
    try:
        decoded = decode_versioned(ConsumerProtocolAssignment, data)
    except ProtocolError:
        return []
    return [(item.topic, partition) for item in decoded.assigned_partitions for partition in item.partitions]


def range_assign(subscriptions: dict[str, list[str]], partition_counts: dict[str, int]) -> dict[str, list[tuple[str, int]]]:
    """Kafka's RangeAssignor: for each topic, its partitions in order, split into consecutive
    ranges among the members subscribed to it sorted by member id, the first ``partitions %
    members`` members one more. member id -> its (topic, partition) pairs; a topic without a
    known partition count is left unassigned."""
    assignment: dict[str, list[tuple[str, int]]] = {member: [] for member in subscriptions}
    for topic in sorted({topic for topics in subscriptions.values() for topic in topics}):
        count = partition_counts.get(topic)
        if not count:
            continue
        members = sorted(member for member, topics in subscriptions.items() if topic in topics)
        per_member, extra = divmod(count, len(members))
        start = 0
        for index, member in enumerate(members):
            length = per_member + (1 if index < extra else 0)
            assignment[member].extend((topic, partition) for partition in range(start, start + length))
            start += length
    return assignment
