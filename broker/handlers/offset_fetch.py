"""OffsetFetch (key 9), versions 0-10: read a group's committed positions.

A partition without a committed offset answers offset -1, empty metadata, no error (as Kafka
does); a null topic list (v2+) asks for every committed offset of the group. Offsets committed
in a transaction that has not ended (TxnOffsetCommit) are not seen; with ``require_stable``
(v7+) a partition that has such a pending offset answers UNSTABLE_OFFSET_COMMIT with offset -1
instead of its committed offset (Kafka's OffsetMetadataManager.fetchOffsets, the same for the
classic and the KIP-848 paths; the client retries until the transaction ends). The check needs
no wait: a commit is applied when it is written.

A group error (COORDINATOR_LOAD_IN_PROGRESS while the group's ``__consumer_offsets``
partition is replayed after a start, COORDINATOR_NOT_AVAILABLE while stopping) comes with no
offsets, as in Kafka, so a client cannot mistake it for "nothing committed".

Version notes: v0-1 report errors per partition only (every requested partition carries the
group error), v2-7 at the top; v5 adds the leader
epoch; from v8 one request asks for several groups (KIP-709), each answered with its own error;
v9 carries the member id and epoch of the KIP-848 consumer protocol (checked for consumer
groups: UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH; ignored for classic groups, as Kafka does); v10 names topics by id (an unknown id is UNKNOWN_TOPIC_ID).
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.offset_fetch import (
    OffsetFetchRequest,
    OffsetFetchResponse,
    OffsetFetchResponseGroup,
    OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
)

from . import REGISTRY
from ._common import topic_by_name_or_id

REQUIRE_STABLE_VERSION = 7
BATCHED_VERSION = 8
MEMBER_EPOCH_VERSION = 9
TOPIC_IDS_VERSION = 10


def _fetch_group(broker, group_id: str, topics, by_id: bool, require_stable: bool = False):
    """(group error, [(topic name or None, topic id, [(partition, CommittedOffset | None, error)])])."""
    coordinator = broker.group_coordinator

    def unstable(name: str, partition: int) -> bool:
        return require_stable and coordinator.has_pending_transactional_offsets(group_id, name, partition)

    if topics is None:
        error, found = coordinator.fetch_offsets(group_id, None)
        by_topic: dict[str, list] = {}
        for (name, partition), committed in sorted(found.items()):
            by_topic.setdefault(name, []).append(
                (partition, None, error_codes.UNSTABLE_OFFSET_COMMIT) if unstable(name, partition)
                else (partition, committed, error_codes.NONE))
        result = []
        for name, partitions in by_topic.items():
            topic_id = None
            if by_id:
                topic = broker.topics.get(name)
                if topic is None:
                    continue  # offsets of a topic deleted since: no id to name it by
                topic_id = topic.topic_id
            result.append((name, topic_id, partitions))
        return error, result
    wanted = []
    for item in topics:
        name = item.name if not by_id else None
        unknown_id = False
        if by_id:
            topic = topic_by_name_or_id(broker, None, item.topic_id)
            name = topic.name if topic is not None else None
            unknown_id = topic is None
        wanted.append((name, item.topic_id if by_id else None, list(item.partition_indexes), unknown_id))
    keys = [(name, partition) for name, _, partitions, unknown in wanted if not unknown for partition in partitions]
    error, found = coordinator.fetch_offsets(group_id, keys)
    result = []
    for name, topic_id, partitions, unknown_id in wanted:
        entries = []
        for partition in partitions:
            if unknown_id:
                entries.append((partition, None, error_codes.UNKNOWN_TOPIC_ID))
            elif unstable(name, partition):
                entries.append((partition, None, error_codes.UNSTABLE_OFFSET_COMMIT))
            else:
                entries.append((partition, found.get((name, partition)), error_codes.NONE))
        result.append((name, topic_id, entries))
    return error, result


@REGISTRY.handles(OffsetFetchRequest, OffsetFetchResponse)
def handle_offset_fetch(ctx, request: OffsetFetchRequest) -> OffsetFetchResponse:
    version = ctx.api_version
    broker = ctx.broker
    if version < BATCHED_VERSION:
        # null (v2+) asks for every committed offset of the group
        error, result = _fetch_group(broker, request.group_id, request.topics, by_id=False,
                                     require_stable=version >= REQUIRE_STABLE_VERSION and request.require_stable)
        if error != error_codes.NONE and version >= 2:
            return OffsetFetchResponse(error_code=error)  # no offsets with a group error, as Kafka
        answers = []
        for name, _, entries in result:
            partitions = []
            for partition, committed, code in entries:
                partitions.append(OffsetFetchResponsePartition(
                    partition_index=partition,
                    committed_offset=committed.offset if committed else -1,
                    committed_leader_epoch=committed.leader_epoch if committed and version >= 5 else -1,
                    metadata=committed.metadata if committed else "",
                    # v0-1 have no top-level error: a group error shows on every partition.
                    error_code=code if code != error_codes.NONE or version >= 2 else error))
            answers.append(OffsetFetchResponseTopic(name=name, partitions=partitions))
        return OffsetFetchResponse(topics=answers, error_code=error if version >= 2 else 0)
    by_id = version >= TOPIC_IDS_VERSION
    groups = []
    for wanted in request.groups:
        if version >= MEMBER_EPOCH_VERSION:
            error = broker.group_coordinator.consumer.validate_offset_fetch(wanted.group_id, wanted.member_id,
                                                                            wanted.member_epoch)
            if error != error_codes.NONE:
                groups.append(OffsetFetchResponseGroup(group_id=wanted.group_id, error_code=error))
                continue
        error, result = _fetch_group(broker, wanted.group_id, wanted.topics, by_id, request.require_stable)
        if error != error_codes.NONE:
            groups.append(OffsetFetchResponseGroup(group_id=wanted.group_id, error_code=error))
            continue
        topics = []
        for name, topic_id, entries in result:
            partitions = [OffsetFetchResponsePartitions(
                partition_index=partition,
                committed_offset=committed.offset if committed else -1,
                committed_leader_epoch=committed.leader_epoch if committed else -1,
                metadata=committed.metadata if committed else "",
                error_code=code) for partition, committed, code in entries]
            if by_id:
                topics.append(OffsetFetchResponseTopics(topic_id=topic_id, partitions=partitions))
            else:
                topics.append(OffsetFetchResponseTopics(name=name, partitions=partitions))
        groups.append(OffsetFetchResponseGroup(group_id=wanted.group_id, topics=topics, error_code=error))
    return OffsetFetchResponse(groups=groups)
