"""AddPartitionsToTxn (key 24), versions 0-5.

v0-3 (from a producer): one transaction; each partition that does not exist answers
UNKNOWN_TOPIC_OR_PARTITION and then the others OPERATION_NOT_ATTEMPTED (nothing is added);
otherwise every partition gets the coordinator's answer (the partitions added to the
transaction, or why not: INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED (INVALID_PRODUCER_EPOCH
below v2, which came before it, as Kafka answers), CONCURRENT_TRANSACTIONS, ...).

v4+ (KIP-890, the batched form Kafka's brokers send): several transactions, each either added
or, with ``verify_only``, checked (a partition not in the transaction answers
TRANSACTION_ABORTABLE), with the same per-partition answers; a transaction with no partitions
answers INVALID_REQUEST at the top level, as Kafka does.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.add_partitions_to_txn import (
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
)

from . import REGISTRY
from ._common import fenced_as_known_to

FIRST_FENCED_VERSION = 2  # PRODUCER_FENCED from this version, INVALID_PRODUCER_EPOCH before


def _results(errors: dict[tuple[str, int], int]) -> list[AddPartitionsToTxnTopicResult]:
    by_topic: dict[str, list[AddPartitionsToTxnPartitionResult]] = {}
    for (topic, index), code in errors.items():
        by_topic.setdefault(topic, []).append(
            AddPartitionsToTxnPartitionResult(partition_index=index, partition_error_code=code))
    return [AddPartitionsToTxnTopicResult(name=topic, results_by_partition=results) for topic, results in by_topic.items()]


async def _one_transaction(broker, transactional_id: str, producer_id: int, producer_epoch: int, topics,
                           verify_only: bool) -> dict[tuple[str, int], int]:
    partitions = [(topic.name, index) for topic in topics for index in topic.partitions]
    unknown = {partition for partition in partitions if broker.partition(*partition) is None}
    if unknown:
        return {partition: error_codes.UNKNOWN_TOPIC_OR_PARTITION if partition in unknown
                else error_codes.OPERATION_NOT_ATTEMPTED for partition in partitions}
    coordinator = broker.transaction_coordinator
    if verify_only:
        return {partition: coordinator.verify_partition(transactional_id, producer_id, producer_epoch, *partition)
                for partition in partitions}
    error = await coordinator.add_partitions(transactional_id, producer_id, producer_epoch, partitions)
    return {partition: error for partition in partitions}


@REGISTRY.handles(AddPartitionsToTxnRequest, AddPartitionsToTxnResponse)
async def handle_add_partitions_to_txn(ctx, request: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse:
    broker = ctx.broker
    if ctx.api_version < 4:
        errors = await _one_transaction(broker, request.v3_and_below_transactional_id,
                                        request.v3_and_below_producer_id, request.v3_and_below_producer_epoch,
                                        request.v3_and_below_topics, verify_only=False)
        errors = {partition: fenced_as_known_to(ctx.api_version, FIRST_FENCED_VERSION, code)
                  for partition, code in errors.items()}
        return AddPartitionsToTxnResponse(throttle_time_ms=0, results_by_topic_v3_and_below=_results(errors))
    if any(not transaction.topics for transaction in request.transactions):
        return AddPartitionsToTxnResponse(throttle_time_ms=0, error_code=error_codes.INVALID_REQUEST)
    results = []
    for transaction in request.transactions:
        errors = await _one_transaction(broker, transaction.transactional_id, transaction.producer_id,
                                        transaction.producer_epoch, transaction.topics, transaction.verify_only)
        results.append(AddPartitionsToTxnResult(transactional_id=transaction.transactional_id,
                                                topic_results=_results(errors)))
    return AddPartitionsToTxnResponse(throttle_time_ms=0, error_code=error_codes.NONE, results_by_transaction=results)
