"""AddOffsetsToTxn (key 25), versions 0-4: puts the group's ``__consumer_offsets`` partition
into the producer's transaction, so that the EndTxn markers reach the offsets a TxnOffsetCommit
then sends (the coordinator's answer, as for AddPartitionsToTxn; below v2 a fenced producer is
answered INVALID_PRODUCER_EPOCH, as by Kafka)."""

from __future__ import annotations

from odradek.protocol.messages.add_offsets_to_txn import AddOffsetsToTxnRequest, AddOffsetsToTxnResponse

from ..transactions.coordinator import OFFSETS_TOPIC
from . import REGISTRY
from ._common import fenced_as_known_to

FIRST_FENCED_VERSION = 2  # PRODUCER_FENCED from this version, INVALID_PRODUCER_EPOCH before


@REGISTRY.handles(AddOffsetsToTxnRequest, AddOffsetsToTxnResponse)
async def handle_add_offsets_to_txn(ctx, request: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse:
    coordinator = ctx.broker.transaction_coordinator
    partition = (OFFSETS_TOPIC, coordinator.partition_for_group(request.group_id))
    error = await coordinator.add_partitions(request.transactional_id, request.producer_id, request.producer_epoch,
                                             [partition])
    return AddOffsetsToTxnResponse(throttle_time_ms=0,
                                   error_code=fenced_as_known_to(ctx.api_version, FIRST_FENCED_VERSION, error))
