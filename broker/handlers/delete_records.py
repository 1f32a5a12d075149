"""DeleteRecords (key 21), versions 0-2.

Raises a partition's log start offset to ``offset`` (-1: the high watermark), deleting the
segments wholly below it; records below it are no longer readable (ListOffsets earliest and
fetches move on). Answers the new log start offset as ``low_watermark``. An offset above the
high watermark is OFFSET_OUT_OF_RANGE; an offset below the current log start offset changes
nothing. Unknown partitions: UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.delete_records import DeleteRecordsRequest, DeleteRecordsResponse

from . import REGISTRY

TopicResult = DeleteRecordsResponse.DeleteRecordsTopicResult
PartitionResult = DeleteRecordsResponse.DeleteRecordsTopicResult.DeleteRecordsPartitionResult
HIGH_WATERMARK = -1


@REGISTRY.handles(DeleteRecordsRequest, DeleteRecordsResponse)
def handle_delete_records(ctx, request: DeleteRecordsRequest) -> DeleteRecordsResponse:
    broker = ctx.broker
    topics = []
    for item in request.topics:
        answers = []
        for wanted in item.partitions:
            answer = PartitionResult(partition_index=wanted.partition_index, low_watermark=-1,
                                     error_code=error_codes.NONE)
            partition = broker.partition(item.name, wanted.partition_index)
            if partition is None:
                answer.error_code = error_codes.UNKNOWN_TOPIC_OR_PARTITION
            elif (offline := broker.faults.offline_error(item.name, wanted.partition_index)) is not None:
                answer.error_code = offline
            else:
                offset = partition.high_watermark if wanted.offset == HIGH_WATERMARK else wanted.offset
                try:
                    answer.low_watermark = partition.delete_records_before(offset)
                except ProtocolError as error:
                    answer.error_code = error.error_code
            answers.append(answer)
        topics.append(TopicResult(name=item.name, partitions=answers))
    return DeleteRecordsResponse(throttle_time_ms=0, topics=topics)
