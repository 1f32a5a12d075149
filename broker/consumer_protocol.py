"""Kafka's consumer protocol for classic groups, client side: the bytes consumers put in
JoinGroup's member metadata and SyncGroup's assignments (Kafka's ``ConsumerProtocol``), and the
range assignor a group leader runs (Kafka's ``RangeAssignor``). Pure functions, no I/O; used by
the ``odradek`` developer commands (broker/admin_client.py, broker/group_membership.py).

Subscription v0::  version int16, topics [string], user_data bytes (-1: null)
Assignment v0::    version int16, [topic string, partitions [int32]], user_data bytes (-1: null)

Later versions only append fields (owned partitions, generation, rack), so a reader of v0 reads
any version's prefix, as Kafka's own reader does.
"""

from __future__ import annotations

import struct

PROTOCOL_TYPE = "consumer"
RANGE = "range"  # the assignor's name in JoinGroup, as Kafka's consumers announce it

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


class _Reader:
    """Reads the protocol's primitives from a buffer; struct.error or ValueError on bad input."""

    def __init__(self, data: bytes):
        self.data = data
        self.position = 0

    def int16(self) -> int:
        (value,) = _INT16.unpack_from(self.data, self.position)
        self.position += 2
        return value

    def int32(self) -> int:
        (value,) = _INT32.unpack_from(self.data, self.position)
        self.position += 4
        return value

    def string(self) -> str:
        length = self.int16()
        if length < 0 or self.position + length > len(self.data):
            raise ValueError("bad string length")
        value = bytes(self.data[self.position:self.position + length]).decode()
        self.position += length
        return value

    def count(self) -> int:
        """An array's length, bounded by what is left (each element takes at least 2 bytes)."""
        value = self.int32()
        if value < 0 or value > (len(self.data) - self.position) // 2:
            raise ValueError("bad array length")
        return value


def _string(text: str) -> bytes:
    data = text.encode()
    return _INT16.pack(len(data)) + data


def encode_subscription(topics: list[str]) -> bytes:
    """A v0 Subscription of ``topics``, no user data."""
    return (_INT16.pack(0) + _INT32.pack(len(topics)) + b"".join(_string(topic) for topic in topics)
            + _INT32.pack(-1))


def decode_subscription(data: bytes) -> list[str]:
    """The topics of a member's Subscription (any version); [] when it does not read."""
    try:
        reader = _Reader(data)
        reader.int16()
        return [reader.string() for _ in range(reader.count())]
    except (struct.error, ValueError):
        return []


def encode_assignment(pairs: list[tuple[str, int]]) -> bytes:
    """A v0 Assignment of (topic, partition) pairs, no user data."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in pairs:
        by_topic.setdefault(topic, []).append(partition)
    out = bytearray(_INT16.pack(0) + _INT32.pack(len(by_topic)))
    for topic, partitions in by_topic.items():
        out += _string(topic) + _INT32.pack(len(partitions)) + b"".join(_INT32.pack(p) for p in partitions)
    return bytes(out + _INT32.pack(-1))


def decode_assignment(data: bytes) -> list[tuple[str, int]]:
    """The (topic, partition) pairs of an Assignment (any version); [] for an empty or
    unreadable one (a member still joining has none)."""
    try:
        reader = _Reader(data)
        reader.int16()
        pairs = []
        for _ in range(reader.count()):
            topic = reader.string()
            pairs.extend((topic, reader.int32()) for _ in range(reader.count()))
        return pairs
    except (struct.error, ValueError):
        return []


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
