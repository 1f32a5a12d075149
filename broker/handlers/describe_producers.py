"""DescribeProducers (key 61), version 0 (KIP-664, ``kafka-transactions describe-producers``).

For each partition asked for, the producers the partition log keeps idempotence state for:
producer id, epoch, last sequence, last timestamp, coordinator epoch and the first offset of
an open transaction (-1: none). Unknown partitions: UNKNOWN_TOPIC_OR_PARTITION, offline ones
KAFKA_STORAGE_ERROR, without a message (as Kafka answers them).
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.describe_producers import DescribeProducersRequest, DescribeProducersResponse

from . import REGISTRY

TopicResponse = DescribeProducersResponse.TopicResponse
PartitionResponse = TopicResponse.PartitionResponse
ProducerState = PartitionResponse.ProducerState


@REGISTRY.handles(DescribeProducersRequest, DescribeProducersResponse)
def handle_describe_producers(ctx, request: DescribeProducersRequest) -> DescribeProducersResponse:
    broker = ctx.broker
    topics = []
    for item in request.topics:
        partitions = []
        for index in item.partition_indexes:
            partition = broker.partition(item.name, index)
            # Kafka's ReplicaManager.activeProducerState answers these with the code alone.
            if partition is None:
                partitions.append(PartitionResponse(partition_index=index,
                                                    error_code=error_codes.UNKNOWN_TOPIC_OR_PARTITION))
                continue
            if partition.offline:
                partitions.append(PartitionResponse(partition_index=index, error_code=error_codes.KAFKA_STORAGE_ERROR))
                continue
            if (offline := broker.faults.offline_error(item.name, index)) is not None:
                partitions.append(PartitionResponse(partition_index=index, error_code=offline))
                continue
            producers = [
                ProducerState(producer_id=entry.producer_id, producer_epoch=entry.epoch,
                              last_sequence=entry.last_sequence, last_timestamp=entry.last_timestamp,
                              coordinator_epoch=entry.coordinator_epoch,
                              current_txn_start_offset=entry.current_txn_first_offset)
                for entry in partition.active_producers()
            ]
            partitions.append(PartitionResponse(partition_index=index, error_code=error_codes.NONE,
                                                active_producers=producers))
        topics.append(TopicResponse(name=item.name, partitions=partitions))
    return DescribeProducersResponse(throttle_time_ms=0, topics=topics)
