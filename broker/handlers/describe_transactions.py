"""DescribeTransactions (key 65), version 0 (KIP-664, ``kafka-transactions describe``): per
transactional id its state, producer id and epoch, timeout, start time and partitions;
TRANSACTIONAL_ID_NOT_FOUND for an id the coordinator does not know, INVALID_REQUEST for an
empty one, the coordinator's availability (COORDINATOR_LOAD_IN_PROGRESS while its partition
is replayed)."""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.describe_transactions import (
    DescribeTransactionsRequest, DescribeTransactionsResponse, TopicData, TransactionState,
)

from . import REGISTRY


@REGISTRY.handles(DescribeTransactionsRequest, DescribeTransactionsResponse)
def handle_describe_transactions(ctx, request: DescribeTransactionsRequest) -> DescribeTransactionsResponse:
    coordinator = ctx.broker.transaction_coordinator
    states = []
    for transactional_id in request.transactional_ids:
        error, metadata = coordinator.describe(transactional_id)
        if error != error_codes.NONE:
            states.append(TransactionState(error_code=error, transactional_id=transactional_id))
            continue
        by_topic: dict[str, list[int]] = {}
        for topic, index in sorted(metadata.partitions):
            by_topic.setdefault(topic, []).append(index)
        states.append(TransactionState(
            error_code=error_codes.NONE, transactional_id=transactional_id,
            transaction_state=metadata.state.display_name, transaction_timeout_ms=metadata.timeout_ms,
            transaction_start_time_ms=metadata.start_ms, producer_id=metadata.producer_id,
            producer_epoch=metadata.producer_epoch,
            topics=[TopicData(topic=topic, partitions=indexes) for topic, indexes in by_topic.items()]))
    return DescribeTransactionsResponse(throttle_time_ms=0, transaction_states=states)
