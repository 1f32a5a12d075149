"""ListOffsets (key 2), versions 0-11.

Per partition, ``timestamp`` selects what to look up:

* -2 (EARLIEST): the log start offset; -4 (EARLIEST_LOCAL, v8+): the same (no tiered storage).
* -1 (LATEST): the high watermark (read_uncommitted) or last stable offset (read_committed, v2+).
* -3 (MAX_TIMESTAMP, v7+): the offset and timestamp of the record with the largest timestamp.
* -5 (LATEST_TIERED, v9+) and -6 (EARLIEST_PENDING_UPLOAD, v11): -1, as a broker without tiered
  storage answers.
* a timestamp >= 0: the first offset whose record timestamp is >= it, from the time index;
  offset -1 / timestamp -1 when there is none (or it is not below the high watermark yet).

Errors: UNKNOWN_TOPIC_OR_PARTITION; FENCED/UNKNOWN_LEADER_EPOCH on ``current_leader_epoch`` (v4+).
v0 answers ``old_style_offsets`` (a list holding the one offset found); v1+ ``offset`` and
``timestamp``; v4+ the leader epoch.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.list_offsets import ListOffsetsRequest, ListOffsetsResponse

from . import REGISTRY

TopicResponse = ListOffsetsResponse.ListOffsetsTopicResponse
PartitionResponse = ListOffsetsResponse.ListOffsetsTopicResponse.ListOffsetsPartitionResponse

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5
EARLIEST_PENDING_UPLOAD = -6
READ_COMMITTED = 1


def _lookup(partition, timestamp: int, isolation: int) -> tuple[int, int]:
    """(timestamp, offset) for one partition; (-1, -1) when there is none."""
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return -1, partition.log_start_offset
    if timestamp == LATEST:
        return -1, partition.last_stable_offset if isolation == READ_COMMITTED else partition.high_watermark
    if timestamp == MAX_TIMESTAMP:
        found_timestamp, offset = partition.log.max_timestamp_offset()
        return (found_timestamp, offset) if offset >= 0 else (-1, -1)
    if timestamp < 0:  # LATEST_TIERED, EARLIEST_PENDING_UPLOAD, and unknown specials
        return -1, -1
    found = partition.log.offset_for_timestamp(timestamp)
    upper = partition.last_stable_offset if isolation == READ_COMMITTED else partition.high_watermark
    if found is None or found[1] >= upper:
        return -1, -1
    return found


@REGISTRY.handles(ListOffsetsRequest, ListOffsetsResponse)
def handle_list_offsets(ctx, request: ListOffsetsRequest) -> ListOffsetsResponse:
    broker = ctx.broker
    version = ctx.api_version
    isolation = request.isolation_level if version >= 2 else 0
    topics = []
    for wanted in request.topics:
        answers = []
        for item in wanted.partitions:
            answer = PartitionResponse(partition_index=item.partition_index, error_code=error_codes.NONE)
            partition = broker.partition(wanted.name, item.partition_index)
            current_epoch = item.current_leader_epoch if version >= 4 else -1
            if partition is None:
                answer.error_code = error_codes.UNKNOWN_TOPIC_OR_PARTITION
            elif partition.offline:
                answer.error_code = error_codes.KAFKA_STORAGE_ERROR
            elif (offline := broker.faults.offline_error(wanted.name, item.partition_index)) is not None:
                answer.error_code = offline
            elif current_epoch != -1 and current_epoch != partition.leader_epoch:
                answer.error_code = (error_codes.FENCED_LEADER_EPOCH if current_epoch < partition.leader_epoch
                                     else error_codes.UNKNOWN_LEADER_EPOCH)
            else:
                try:
                    timestamp, offset = _lookup(partition, item.timestamp, isolation)
                except ProtocolError as error:
                    answer.error_code = error.error_code
                else:
                    if version == 0:
                        answer.old_style_offsets = [offset] if offset >= 0 else []
                    else:
                        answer.timestamp = timestamp
                        answer.offset = offset
                        if version >= 4:
                            answer.leader_epoch = partition.leader_epoch if offset >= 0 else -1
            answers.append(answer)
        topics.append(TopicResponse(name=wanted.name, partitions=answers))
    return ListOffsetsResponse(throttle_time_ms=0, topics=topics)
