"""WriteTxnMarkers (key 27), versions 1-2 (v0 was removed in Kafka 4.0).

Appends a COMMIT or ABORT marker of each producer to each partition named and answers once
durable, as a partition leader does for its transaction coordinator; ``kafka-transactions
abort`` sends it to end a hanging transaction. Per partition: UNKNOWN_TOPIC_OR_PARTITION for
a partition this broker does not have, the storage layer's refusal (INVALID_PRODUCER_EPOCH for
an older epoch than the producer's, TRANSACTION_COORDINATOR_FENCED for an older coordinator
epoch), else NONE. ``__consumer_offsets`` partitions are completed through the group
coordinator, which makes the transaction's offsets visible or drops them.
"""

from __future__ import annotations

import asyncio

from odradek.protocol.messages.write_txn_markers import (
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)

from . import REGISTRY


@REGISTRY.handles(WriteTxnMarkersRequest, WriteTxnMarkersResponse, min_version=1)
async def handle_write_txn_markers(ctx, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse:
    coordinator = ctx.broker.transaction_coordinator
    results = []
    for marker in request.markers:
        topics = []
        for topic in marker.topics:
            codes = await asyncio.gather(*(
                coordinator.write_marker(topic.name, index, marker.producer_id, marker.producer_epoch,
                                         marker.coordinator_epoch, marker.transaction_result)
                for index in topic.partition_indexes))
            topics.append(WritableTxnMarkerTopicResult(name=topic.name, partitions=[
                WritableTxnMarkerPartitionResult(partition_index=index, error_code=code)
                for index, code in zip(topic.partition_indexes, codes)]))
        results.append(WritableTxnMarkerResult(producer_id=marker.producer_id, topics=topics))
    return WriteTxnMarkersResponse(markers=results)
