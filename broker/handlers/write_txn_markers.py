"""WriteTxnMarkers (key 27), versions 1-2 (v0 was removed in Kafka 4.0).

Appends a COMMIT or ABORT marker of each producer to each partition named and answers once
durable, as a partition leader does for its transaction coordinator; ``kafka-transactions
abort`` sends it to end a hanging transaction. Per partition: UNKNOWN_TOPIC_OR_PARTITION for
a partition this broker does not have, the storage layer's refusal (INVALID_PRODUCER_EPOCH for
an older epoch than the producer's, TRANSACTION_COORDINATOR_FENCED for an older coordinator
epoch), else NONE. ``__consumer_offsets`` partitions are completed through the group
coordinator, which makes the transaction's offsets visible or drops them; a partition it does
not serve now (loading, not owned, shutting down) answers NOT_LEADER_OR_FOLLOWER, as Kafka's
KafkaApis translates it, so that the sender retries.
"""

from __future__ import annotations

import asyncio

from odradek.protocol.messages.write_txn_markers import (
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)

from odradek.protocol import error_codes

from . import REGISTRY

# What the group coordinator answers for a partition it does not serve now.
_NOT_SERVED = frozenset({error_codes.COORDINATOR_LOAD_IN_PROGRESS, error_codes.NOT_COORDINATOR,
                         error_codes.COORDINATOR_NOT_AVAILABLE})


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
                WritableTxnMarkerPartitionResult(
                    partition_index=index,
                    error_code=error_codes.NOT_LEADER_OR_FOLLOWER if code in _NOT_SERVED else code)
                for index, code in zip(topic.partition_indexes, codes)]))
        results.append(WritableTxnMarkerResult(producer_id=marker.producer_id, topics=topics))
    return WriteTxnMarkersResponse(markers=results)
