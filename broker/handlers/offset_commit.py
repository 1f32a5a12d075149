"""OffsetCommit (key 8), versions 0-10: store a group's consumed positions.

Per partition the answer is UNKNOWN_TOPIC_OR_PARTITION (v10: UNKNOWN_TOPIC_ID) for a partition
this broker does not have; otherwise the group's verdict on the committer applies to every
partition (see ``GroupCoordinator.validate_offset_commit``: ILLEGAL_GENERATION,
UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS, GROUP_ID_NOT_FOUND from v9 for a
generation >= 0 in a group that does not exist; for a KIP-848 consumer group the generation is the
member epoch: STALE_MEMBER_EPOCH, and UNSUPPORTED_VERSION below v9); metadata longer than
``offset.metadata.max.bytes`` is OFFSET_METADATA_TOO_LARGE. A commit with generation -1 from
outside any group (the admin client, a consumer using ``assign``) creates a "simple" group.

Version notes: v0 has no generation or member id (only an empty group takes it); v1 carries a
per-partition commit timestamp (ignored: the broker stamps commits itself, as Kafka does since
v2); v2-4 a retention time (kept as the offsets' expiry); v6 the leader epoch; v7 the
``group.instance.id``; v10 names topics by id.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
)

from . import REGISTRY
from ._common import topic_by_name_or_id

TOPIC_IDS_VERSION = 10


@REGISTRY.handles(OffsetCommitRequest, OffsetCommitResponse)
def handle_offset_commit(ctx, request: OffsetCommitRequest) -> OffsetCommitResponse:
    broker = ctx.broker
    version = ctx.api_version
    coordinator = broker.group_coordinator
    by_id = version >= TOPIC_IDS_VERSION
    generation = request.generation_id_or_member_epoch if version >= 1 else -1
    member_id = request.member_id if version >= 1 else ""
    instance_id = request.group_instance_id if version >= 7 else None
    group_error, _ = coordinator.validate_offset_commit(request.group_id, generation, member_id, instance_id, version)

    answers: list[tuple[object, list[OffsetCommitResponsePartition]]] = []
    to_store = []
    stored_answers = []  # the answers of the partitions in to_store, for a failed write
    for wanted in request.topics:
        topic = topic_by_name_or_id(broker, None if by_id else wanted.name, wanted.topic_id if by_id else None)
        partitions = []
        for item in wanted.partitions:
            if topic is None or broker.partition(topic.name, item.partition_index) is None:
                code = error_codes.UNKNOWN_TOPIC_ID if by_id and topic is None else error_codes.UNKNOWN_TOPIC_OR_PARTITION
            elif group_error != error_codes.NONE:
                code = group_error
            elif coordinator.metadata_too_large(item.committed_metadata):
                code = error_codes.OFFSET_METADATA_TOO_LARGE
            else:
                code = error_codes.NONE
                leader_epoch = item.committed_leader_epoch if version >= 6 else -1
                to_store.append((topic.name, item.partition_index, item.committed_offset, leader_epoch,
                                 item.committed_metadata))
            answer = OffsetCommitResponsePartition(partition_index=item.partition_index, error_code=code)
            if code == error_codes.NONE:
                stored_answers.append(answer)
            partitions.append(answer)
        if by_id:
            answers.append(OffsetCommitResponseTopic(topic_id=wanted.topic_id, partitions=partitions))
        else:
            answers.append(OffsetCommitResponseTopic(name=wanted.name, partitions=partitions))
    if to_store:
        retention = request.retention_time_ms if 2 <= version <= 4 else -1
        error = coordinator.store_offsets(request.group_id, to_store, retention)
        for answer in stored_answers:
            answer.error_code = error
    return OffsetCommitResponse(topics=answers)
