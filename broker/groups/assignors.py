"""Server-side partition assignors of KIP-848 consumer groups: ``uniform`` and ``range``.

With the consumer protocol (``group.protocol=consumer``) the coordinator, not a group leader,
computes the target assignment, with the assignor the members name in ``ServerAssignor`` (the
most named wins; ``uniform``, the first of Kafka's ``group.consumer.assignors``, by default).
An assignor is a pure function of an :class:`AssignmentSpec` and answers every member's target
partitions; it never sees time, I/O or the group's epochs.

* ``uniform`` (Kafka's ``UniformAssignor``): every partition of a subscribed topic goes to one
  member subscribed to that topic, the counts are as even as the subscriptions allow (within one
  when every member subscribes to the same topics), and partitions stay with the member that
  had them in the previous target assignment unless balance requires a move (sticky), so a
  rebalance revokes as few partitions as possible.
* ``range`` (Kafka's ``RangeAssignor``): per topic, the members subscribed to it (ordered by
  member id) each get one consecutive range of partitions, the first ``partitions % members``
  one more. Members subscribing to the same co-partitioned topics get the same partition
  numbers of each (joins of keyed topics rely on it). Unlike Kafka's, it is not sticky: a member
  joining or leaving can shift every range (revocation before assignment keeps that safe).

Neither is rack aware (odradek is a single broker: every partition is on every rack).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

Assignment = dict[uuid.UUID, set[int]]


@dataclass(slots=True)
class MemberSpec:
    """What an assignor knows of one member."""

    subscribed_topic_ids: frozenset[uuid.UUID]
    instance_id: str | None = None
    rack_id: str | None = None


@dataclass(slots=True)
class AssignmentSpec:
    members: dict[str, MemberSpec]
    partition_counts: dict[uuid.UUID, int]  # every subscribed topic that exists
    current: dict[str, Assignment] = field(default_factory=dict)  # the previous target assignment


def _eligible(spec: AssignmentSpec) -> dict[uuid.UUID, list[str]]:
    """Topic id -> the members subscribed to it, in member id order."""
    eligible: dict[uuid.UUID, list[str]] = {topic_id: [] for topic_id in spec.partition_counts}
    for member_id in sorted(spec.members):
        for topic_id in spec.members[member_id].subscribed_topic_ids:
            if topic_id in eligible:
                eligible[topic_id].append(member_id)
    return eligible


class UniformAssignor:
    name = "uniform"

    def assign(self, spec: AssignmentSpec) -> dict[str, Assignment]:
        eligible = _eligible(spec)
        owner: dict[tuple[uuid.UUID, int], str] = {}
        counts = {member_id: 0 for member_id in spec.members}
        # 1. Stickiness: a partition stays with its previous owner while still valid.
        for member_id in sorted(spec.current):
            if member_id not in spec.members:
                continue
            subscribed = spec.members[member_id].subscribed_topic_ids
            for topic_id, partitions in spec.current[member_id].items():
                if topic_id not in subscribed or topic_id not in spec.partition_counts:
                    continue
                for partition in partitions:
                    key = (topic_id, partition)
                    if partition < spec.partition_counts[topic_id] and key not in owner:
                        owner[key] = member_id
                        counts[member_id] += 1
        # 2. Every unowned partition to the least loaded member subscribed to its topic; topics
        # with the fewest candidates first, so constrained partitions are placed first.
        for topic_id in sorted(spec.partition_counts, key=lambda t: (len(eligible[t]), str(t))):
            candidates = eligible[topic_id]
            if not candidates:
                continue
            for partition in range(spec.partition_counts[topic_id]):
                key = (topic_id, partition)
                if key not in owner:
                    chosen = min(candidates, key=lambda m: (counts[m], m))
                    owner[key] = chosen
                    counts[chosen] += 1
        # 3. Balance: move partitions from a member to an eligible one with at least two fewer.
        # Each move lowers the sum of squared counts, so this ends.
        moved = True
        while moved:
            moved = False
            for key in sorted(owner, key=lambda k: (str(k[0]), k[1])):
                current_owner = owner[key]
                candidates = eligible[key[0]]
                target = min(candidates, key=lambda m: (counts[m], m))
                if counts[target] < counts[current_owner] - 1:
                    owner[key] = target
                    counts[current_owner] -= 1
                    counts[target] += 1
                    moved = True
        return _by_member(spec, owner)


class RangeAssignor:
    name = "range"

    def assign(self, spec: AssignmentSpec) -> dict[str, Assignment]:
        owner: dict[tuple[uuid.UUID, int], str] = {}
        for topic_id, members in _eligible(spec).items():
            if not members:
                continue
            count = spec.partition_counts[topic_id]
            quota, extra = divmod(count, len(members))
            start = 0
            for index, member_id in enumerate(members):
                size = quota + (1 if index < extra else 0)
                for partition in range(start, start + size):
                    owner[(topic_id, partition)] = member_id
                start += size
        return _by_member(spec, owner)


def _by_member(spec: AssignmentSpec, owner: dict[tuple[uuid.UUID, int], str]) -> dict[str, Assignment]:
    result: dict[str, Assignment] = {member_id: {} for member_id in spec.members}
    for (topic_id, partition), member_id in owner.items():
        result[member_id].setdefault(topic_id, set()).add(partition)
    return result


ASSIGNORS = {assignor.name: assignor for assignor in (UniformAssignor(), RangeAssignor())}
DEFAULT_ASSIGNOR = UniformAssignor.name
# ``group.consumer.assignors`` may name them by Kafka's class names too.
CLASS_NAMES = {"org.apache.kafka.coordinator.group.assignor.UniformAssignor": UniformAssignor.name,
               "org.apache.kafka.coordinator.group.assignor.RangeAssignor": RangeAssignor.name}


def assignor_names(configured) -> tuple[str, ...]:
    """The assignors a ``group.consumer.assignors`` value enables, by short name, in order."""
    names: list[str] = []
    for item in configured:
        name = CLASS_NAMES.get(item, item)
        if name in ASSIGNORS and name not in names:
            names.append(name)
    return tuple(names) or (DEFAULT_ASSIGNOR,)
