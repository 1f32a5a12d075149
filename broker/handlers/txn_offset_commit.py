"""TxnOffsetCommit (key 28), versions 0-5: commit a group's offsets inside a producer's
transaction (the consume-transform-produce loop of exactly-once processing).

The offsets are written to the group's ``__consumer_offsets`` partition as one transactional
batch of the request's producer (id and epoch) and stay *pending*, invisible to OffsetFetch and
to the group, until the transaction coordinator ends the transaction: its COMMIT marker in that
partition makes them the group's committed offsets, its ABORT marker drops them
(``GroupCoordinator.commit_transactional_offsets`` / ``complete_transaction``). The response is
given once the batch is fsynced.

Per partition: UNKNOWN_TOPIC_OR_PARTITION for a topic or partition this broker does not have
(not sent to the coordinator, as Kafka); otherwise the coordinator's verdict on the whole request
applies to every other partition: COORDINATOR_NOT_AVAILABLE while stopping, INVALID_GROUP_ID for
an empty group id, COORDINATOR_LOAD_IN_PROGRESS / NOT_COORDINATOR while the group's partition is
not served, the group's checks (Kafka's validateTransactionalOffsetCommit: a group that does not
exist takes a commit with generation -1 and becomes a "simple" group, ILLEGAL_GENERATION with
any other; a classic group checks member and generation when given, UNKNOWN_MEMBER_ID,
FENCED_INSTANCE_ID, ILLEGAL_GENERATION, whatever its state; a KIP-848 consumer group its
member's epoch, ILLEGAL_GENERATION for a stale one), then the storage layer's producer checks:
INVALID_PRODUCER_EPOCH for an epoch older than the partition knows (Kafka answers it so at
every version: unlike InitProducerId, EndTxn and AddOffsetsToTxn there is no PRODUCER_FENCED to
translate). A negative producer id is INVALID_PRODUCER_ID_MAPPING, the answer Kafka's
transaction verification gives it (odradek answers so with the verification off too, where Kafka
would store the offsets as a plain commit). A partition whose metadata is longer than
``offset.metadata.max.bytes`` is OFFSET_METADATA_TOO_LARGE and not written.

KIP-890 (``Broker.verify_transactional_offset_commit``, Kafka's
``maybeStartTransactionVerification``), before the write, with
``transaction.partition.verification.enable`` (the default): below v5 the group's
``__consumer_offsets`` partition must be in the producer's transaction (AddOffsetsToTxn put it
there), else INVALID_TXN_STATE (v4: TRANSACTION_ABORTABLE); from v5 the broker adds it; a
producer the transaction coordinator has fenced is INVALID_PRODUCER_EPOCH.

Version notes: v0-1 are the same; v2 adds the committed leader epoch; v3 (flexible) the member
id, generation and group instance id; v4 allows TRANSACTION_ABORTABLE (from the verification);
v5 (transaction version 2) is v4, the client relying on the verification to add the partition
to its transaction. Below v2 COORDINATOR_LOAD_IN_PROGRESS is answered COORDINATOR_NOT_AVAILABLE
(clients before 2.0 did not retry it, KAFKA-7296). v6 (KIP-1319, topic ids) is not served, as by
a default Kafka 4.4 broker.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.txn_offset_commit import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
    TxnOffsetCommitResponsePartition,
    TxnOffsetCommitResponseTopic,
)

from . import REGISTRY

LEADER_EPOCH_VERSION = 2
GROUP_METADATA_VERSION = 3
LOAD_IN_PROGRESS_VERSION = 2  # from this version clients retry COORDINATOR_LOAD_IN_PROGRESS


@REGISTRY.handles(TxnOffsetCommitRequest, TxnOffsetCommitResponse, max_version=5)
def handle_txn_offset_commit(ctx, request: TxnOffsetCommitRequest):
    broker = ctx.broker
    version = ctx.api_version
    coordinator = broker.group_coordinator
    answers: list[TxnOffsetCommitResponseTopic] = []
    to_store = []  # (topic, partition, offset, leader epoch, metadata)
    decided = []   # the answers the coordinator's verdict goes into, with whether the metadata is too large
    for wanted in request.topics:
        topic = broker.topics.get(wanted.name)
        partitions = []
        for item in wanted.partitions:
            answer = TxnOffsetCommitResponsePartition(partition_index=item.partition_index,
                                                      error_code=error_codes.UNKNOWN_TOPIC_OR_PARTITION)
            partitions.append(answer)
            if topic is None or broker.partition(topic.name, item.partition_index) is None:
                continue
            too_large = coordinator.metadata_too_large(item.committed_metadata)
            decided.append((answer, too_large))
            if not too_large:
                leader_epoch = item.committed_leader_epoch if version >= LEADER_EPOCH_VERSION else -1
                to_store.append((topic.name, item.partition_index, item.committed_offset, leader_epoch,
                                 item.committed_metadata))
        answers.append(TxnOffsetCommitResponseTopic(name=wanted.name, partitions=partitions))
    response = TxnOffsetCommitResponse(topics=answers)
    if not decided:
        return response

    async def commit() -> TxnOffsetCommitResponse:
        error = await _commit(ctx, request, version, to_store)
        if error == error_codes.COORDINATOR_LOAD_IN_PROGRESS and version < LOAD_IN_PROGRESS_VERSION:
            error = error_codes.COORDINATOR_NOT_AVAILABLE
        for answer, too_large in decided:
            answer.error_code = error_codes.OFFSET_METADATA_TOO_LARGE if too_large and error == error_codes.NONE \
                else error
        return response

    return commit()


async def _commit(ctx, request: TxnOffsetCommitRequest, version: int, to_store: list) -> int:
    """The coordinator's verdict for every partition it was given (Kafka's
    GroupCoordinatorService.commitTransactionalOffsets)."""
    broker = ctx.broker
    coordinator = broker.group_coordinator
    if not coordinator.active:
        return error_codes.COORDINATOR_NOT_AVAILABLE
    if not request.group_id:
        return error_codes.INVALID_GROUP_ID
    if request.producer_id < 0:
        return error_codes.INVALID_PRODUCER_ID_MAPPING
    error = await broker.verify_transactional_offset_commit(request.transactional_id, request.group_id,
                                                            request.producer_id, request.producer_epoch, version)
    if error != error_codes.NONE:
        return error
    with_group = version >= GROUP_METADATA_VERSION
    return await coordinator.commit_transactional_offsets(
        request.group_id, request.producer_id, request.producer_epoch,
        request.generation_id_or_member_epoch if with_group else -1,
        request.member_id if with_group else "",
        request.group_instance_id if with_group else None,
        to_store)
