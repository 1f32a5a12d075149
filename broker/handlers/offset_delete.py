"""OffsetDelete (key 47), version 0: delete a group's committed offsets for some partitions
(``kafka-consumer-groups --delete-offsets``).

Errors: GROUP_ID_NOT_FOUND (top level) for a group that does not exist; NON_EMPTY_GROUP (top
level) for a non-empty group that is not a consumer group; per partition,
UNKNOWN_TOPIC_OR_PARTITION for a partition the broker does not have and GROUP_SUBSCRIBED_TO_TOPIC
while members of the group subscribe to the topic.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.offset_delete import (
    OffsetDeleteRequest,
    OffsetDeleteResponse,
    OffsetDeleteResponsePartition,
    OffsetDeleteResponseTopic,
)

from . import REGISTRY


@REGISTRY.handles(OffsetDeleteRequest, OffsetDeleteResponse)
def handle_offset_delete(ctx, request: OffsetDeleteRequest) -> OffsetDeleteResponse:
    broker = ctx.broker
    known = [(topic.name, item.partition_index) for topic in request.topics for item in topic.partitions
             if broker.partition(topic.name, item.partition_index) is not None]
    error, results = broker.group_coordinator.delete_offsets(request.group_id, known)
    if error != error_codes.NONE:
        return OffsetDeleteResponse(error_code=error)
    topics = [OffsetDeleteResponseTopic(name=topic.name, partitions=[
        OffsetDeleteResponsePartition(partition_index=item.partition_index,
                                      error_code=results.get((topic.name, item.partition_index),
                                                             error_codes.UNKNOWN_TOPIC_OR_PARTITION))
        for item in topic.partitions]) for topic in request.topics]
    return OffsetDeleteResponse(error_code=error_codes.NONE, topics=topics)
