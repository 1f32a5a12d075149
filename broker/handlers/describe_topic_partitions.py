"""DescribeTopicPartitions (key 75), version 0 (KIP-966; what Kafka 3.8+ admin clients use for
``describeTopics`` when a broker offers it).

Topics asked for by name (none: every topic, by name order), with their partitions as Metadata
reports them, plus eligible leader replicas and last known ELR (empty: no ELR on one node).
At most ``response_partition_limit`` partitions per response (capped by the broker's
``max.request.partition.size.limit``, 2000): when more remain, ``next_cursor`` names the first
one left out and the client asks again from there. A cursor naming a topic the request does
not list is INVALID_REQUEST (as Kafka); unknown topics answer UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.describe_topic_partitions import (
    DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse,
)

from . import REGISTRY
from ._common import AUTHORIZED_OPERATIONS_OMITTED

Topic = DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
Partition = Topic.DescribeTopicPartitionsResponsePartition
Cursor = DescribeTopicPartitionsResponse.Cursor
BROKER_PARTITION_LIMIT = 2000


@REGISTRY.handles(DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse)
def handle_describe_topic_partitions(ctx, request: DescribeTopicPartitionsRequest):
    broker = ctx.broker
    names = sorted({item.name for item in request.topics}) if request.topics else sorted(broker.topics.by_name)
    cursor = request.cursor
    if cursor is not None:
        if cursor.topic_name not in names:
            return DescribeTopicPartitionsResponse(topics=[Topic(error_code=error_codes.INVALID_REQUEST,
                                                                 name=cursor.topic_name, partitions=[])])
        names = names[names.index(cursor.topic_name):]
    budget = max(1, min(request.response_partition_limit, BROKER_PARTITION_LIMIT))
    topics = []
    next_cursor = None
    for name in names:
        topic = broker.topics.get(name)
        if topic is None:
            topics.append(Topic(error_code=error_codes.UNKNOWN_TOPIC_OR_PARTITION, name=name, partitions=[]))
            continue
        start = cursor.partition_index if cursor is not None and name == cursor.topic_name else 0
        partitions = []
        for index in range(start, topic.partition_count):
            if budget == 0:
                next_cursor = Cursor(topic_name=name, partition_index=index)
                break
            partition = broker.partition(name, index)
            offline = broker.leaderless(name, index)  # as Metadata reports it
            partitions.append(Partition(
                error_code=error_codes.LEADER_NOT_AVAILABLE if offline else error_codes.NONE, partition_index=index,
                leader_id=-1 if offline else broker.node_id,
                leader_epoch=partition.leader_epoch if partition is not None else 0,
                replica_nodes=[broker.node_id], isr_nodes=[broker.node_id],
                eligible_leader_replicas=[], last_known_elr=[],
                offline_replicas=[broker.node_id] if offline else []))
            budget -= 1
        topics.append(Topic(error_code=error_codes.NONE, name=name, topic_id=topic.topic_id,
                            is_internal=topic.is_internal, partitions=partitions,
                            topic_authorized_operations=AUTHORIZED_OPERATIONS_OMITTED))
        if next_cursor is not None:
            break
    return DescribeTopicPartitionsResponse(throttle_time_ms=0, topics=topics, next_cursor=next_cursor)
