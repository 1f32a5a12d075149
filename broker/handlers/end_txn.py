"""EndTxn (key 26), versions 0-5: commit or abort the producer's transaction (the
coordinator's answer, once the PrepareCommit / PrepareAbort record is durable; the markers
follow). v5+ is transaction version 2 (KIP-890 part 2): the end bumps the producer epoch, and
the answer carries the producer id and epoch to continue with."""

from __future__ import annotations

from odradek.protocol.messages.end_txn import EndTxnRequest, EndTxnResponse

from . import REGISTRY

FIRST_TV2_VERSION = 5


@REGISTRY.handles(EndTxnRequest, EndTxnResponse)
async def handle_end_txn(ctx, request: EndTxnRequest) -> EndTxnResponse:
    client_transaction_version = 2 if ctx.api_version >= FIRST_TV2_VERSION else 0
    error, producer_id, epoch = await ctx.broker.transaction_coordinator.end_transaction(
        request.transactional_id, request.producer_id, request.producer_epoch, request.committed,
        client_transaction_version)
    return EndTxnResponse(throttle_time_ms=0, error_code=error, producer_id=producer_id, producer_epoch=epoch)
