"""OffsetForLeaderEpoch (key 23), versions 0-4.

For each partition: the largest leader epoch at or below the one asked for, and the offset
where the next epoch starts (or the log end offset for the current epoch), from the partition's
leader-epoch cache. Consumers use it to detect log truncation after a leader change (KIP-320);
followers will use it to truncate before fetching.

Errors: UNKNOWN_TOPIC_OR_PARTITION; FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH when
``current_leader_epoch`` (v2+) is older / newer than the partition's. An epoch the cache has
no entry at or below answers epoch -1 and offset -1 (UNDEFINED), as Kafka does.

Version notes: v1+ answer the epoch found; v3+ carry ``replica_id`` (-1 consumer, -2 debug).
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.offset_for_leader_epoch import OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse

from . import REGISTRY

TopicResult = OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult
EpochEndOffset = OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult.EpochEndOffset


@REGISTRY.handles(OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse)
def handle_offset_for_leader_epoch(ctx, request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse:
    broker = ctx.broker
    version = ctx.api_version
    topics = []
    for item in request.topics:
        answers = []
        for wanted in item.partitions:
            answer = EpochEndOffset(partition=wanted.partition, error_code=error_codes.NONE, leader_epoch=-1,
                                    end_offset=-1)
            partition = broker.partition(item.topic, wanted.partition)
            current = wanted.current_leader_epoch if version >= 2 else -1
            if partition is None:
                answer.error_code = error_codes.UNKNOWN_TOPIC_OR_PARTITION
            elif partition.offline:
                answer.error_code = error_codes.KAFKA_STORAGE_ERROR
            elif (offline := broker.faults.offline_error(item.topic, wanted.partition)) is not None:
                answer.error_code = offline
            elif current != -1 and current != partition.leader_epoch:
                answer.error_code = (error_codes.FENCED_LEADER_EPOCH if current < partition.leader_epoch
                                     else error_codes.UNKNOWN_LEADER_EPOCH)
            else:
                epoch, end_offset = partition.end_offset_for_epoch(wanted.leader_epoch)
                answer.end_offset = end_offset
                if version >= 1:
                    answer.leader_epoch = epoch
            answers.append(answer)
        topics.append(TopicResult(topic=item.topic, partitions=answers))
    return OffsetForLeaderEpochResponse(throttle_time_ms=0, topics=topics)
