"""InitProducerId (key 22), versions 0-5, for idempotent producers.

A producer without a transactional id gets a fresh producer id (never reused, see
``odradek.broker.producer_ids``) with epoch 0. From v3 a producer that already has an id may
send it with its epoch to have the epoch bumped (KIP-360, after a sequence error): it gets the
same id with epoch + 1, or a fresh id when the epoch would overflow.

Transactional ids need the transaction coordinator, which odradek does not serve yet: such a
request is answered COORDINATOR_NOT_AVAILABLE (a retriable error: FindCoordinator does name
this broker for transactional ids, so a transactional client retries until its
``max.block.ms`` and then fails, rather than appear to work).

Version notes: v6 (KIP-939 two-phase commit) is an unstable version in Kafka 4.4, which a
broker advertises only with ``unstable.api.versions.enable``; odradek serves up to v5 as a
default Kafka 4.4 broker does.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.init_producer_id import InitProducerIdRequest, InitProducerIdResponse

from . import REGISTRY

MAX_EPOCH = 32767


@REGISTRY.handles(InitProducerIdRequest, InitProducerIdResponse, max_version=5)
def handle_init_producer_id(ctx, request: InitProducerIdRequest) -> InitProducerIdResponse:
    broker = ctx.broker
    if request.transactional_id is not None:
        return InitProducerIdResponse(error_code=error_codes.COORDINATOR_NOT_AVAILABLE, producer_id=-1,
                                      producer_epoch=-1)
    producer_id, epoch = request.producer_id, request.producer_epoch
    if ctx.api_version >= 3 and producer_id >= 0 and 0 <= epoch < MAX_EPOCH - 1:
        return InitProducerIdResponse(error_code=error_codes.NONE, producer_id=producer_id, producer_epoch=epoch + 1)
    if (producer_id >= 0) != (epoch >= 0):
        return InitProducerIdResponse(error_code=error_codes.INVALID_REQUEST, producer_id=-1, producer_epoch=-1)
    return InitProducerIdResponse(error_code=error_codes.NONE, producer_id=broker.producer_ids.next_producer_id(),
                                  producer_epoch=0)
