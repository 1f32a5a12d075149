"""EndTxn (key 26), versions 0-5: commit or abort the producer's transaction (the
coordinator's answer, once the PrepareCommit / PrepareAbort record is durable; the markers
follow). v5+ is transaction version 2 (KIP-890 part 2): the end bumps the producer epoch, and
the answer carries the producer id and epoch to continue with. Below v2 a fenced producer is
answered INVALID_PRODUCER_EPOCH (PRODUCER_FENCED came with v2, KIP-588), as by Kafka."""

from __future__ import annotations

from odradek.protocol.messages.end_txn import EndTxnRequest, EndTxnResponse

from . import REGISTRY
from ._common import fenced_as_known_to

FIRST_TV2_VERSION = 5
FIRST_FENCED_VERSION = 2  # PRODUCER_FENCED from this version, INVALID_PRODUCER_EPOCH before


@REGISTRY.handles(EndTxnRequest, EndTxnResponse)
async def handle_end_txn(ctx, request: EndTxnRequest) -> EndTxnResponse:
    client_transaction_version = 2 if ctx.api_version >= FIRST_TV2_VERSION else 0
    error, producer_id, epoch = await ctx.broker.transaction_coordinator.end_transaction(
        request.transactional_id, request.producer_id, request.producer_epoch, request.committed,
        client_transaction_version)
    return EndTxnResponse(throttle_time_ms=0, error_code=fenced_as_known_to(ctx.api_version, FIRST_FENCED_VERSION, error),
                          producer_id=producer_id, producer_epoch=epoch)
