"""InitProducerId (key 22), versions 0-5.

Without a transactional id (an idempotent producer): a fresh producer id (never reused, see
``odradek.broker.producer_ids``) with epoch 0. From v3 a producer that already has an id may
send it with its epoch to have the epoch bumped (KIP-360, after a sequence error): it gets the
same id with epoch + 1, or a fresh id when the epoch would overflow.

With a transactional id: the transaction coordinator's answer
(:meth:`~odradek.broker.transactions.coordinator.TransactionCoordinator.init_producer_id`):
INVALID_TRANSACTION_TIMEOUT for a timeout outside (0, ``transaction.max.timeout.ms``], the
id's producer id with a bumped epoch (fencing any older producer of the id), and, from v3, the
KIP-360 continuation of a producer that names its producer id and epoch (PRODUCER_FENCED when
another producer took the id meanwhile; INVALID_PRODUCER_EPOCH below v4, as Kafka answers).

Version notes: v6 (KIP-939 two-phase commit) is an unstable version in Kafka 4.4, which a
broker advertises only with ``unstable.api.versions.enable``; odradek serves up to v5 as a
default Kafka 4.4 broker does.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.init_producer_id import InitProducerIdRequest, InitProducerIdResponse

from . import REGISTRY
from ._common import fenced_as_known_to

MAX_EPOCH = 32767
FIRST_FENCED_VERSION = 4  # PRODUCER_FENCED from this version, INVALID_PRODUCER_EPOCH before


@REGISTRY.handles(InitProducerIdRequest, InitProducerIdResponse, max_version=5)
def handle_init_producer_id(ctx, request: InitProducerIdRequest):
    broker = ctx.broker
    producer_id, epoch = request.producer_id, request.producer_epoch
    if ctx.api_version < 3:
        producer_id = epoch = -1
    if request.transactional_id is not None:
        return _transactional(broker, request.transactional_id, request.transaction_timeout_ms, producer_id, epoch,
                              ctx.api_version)
    if producer_id >= 0 and 0 <= epoch < MAX_EPOCH - 1:
        return InitProducerIdResponse(error_code=error_codes.NONE, producer_id=producer_id, producer_epoch=epoch + 1)
    if (producer_id >= 0) != (epoch >= 0):
        return InitProducerIdResponse(error_code=error_codes.INVALID_REQUEST, producer_id=-1, producer_epoch=-1)
    return InitProducerIdResponse(error_code=error_codes.NONE, producer_id=broker.producer_ids.next_producer_id(),
                                  producer_epoch=0)


async def _transactional(broker, transactional_id: str, timeout_ms: int, producer_id: int,
                         epoch: int, api_version: int) -> InitProducerIdResponse:
    if (producer_id >= 0) != (epoch >= 0):
        return InitProducerIdResponse(error_code=error_codes.INVALID_REQUEST, producer_id=-1, producer_epoch=-1)
    error, producer_id, epoch = await broker.transaction_coordinator.init_producer_id(
        transactional_id, timeout_ms, producer_id, epoch)
    return InitProducerIdResponse(error_code=fenced_as_known_to(api_version, FIRST_FENCED_VERSION, error),
                                  producer_id=producer_id, producer_epoch=epoch)
