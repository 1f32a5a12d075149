"""Produce (key 0), versions 0-13 (v0-v2 carry legacy message sets, magic 0 and 1, which the
storage engine up-converts to one v2 batch before appending, as Kafka's LogValidator does).

Behaviour:

* ``acks`` must be 0, 1 or -1 (all); anything else is INVALID_REQUIRED_ACKS for every partition.
* Each partition's record set is validated and appended by the storage engine (CRC, sizes,
  ``max.message.bytes``, timestamps, keys on compacted topics); a refusal answers that
  partition with the error's Kafka code and leaves the others unaffected. As in Kafka
  (ReplicaManager's ``hasCustomErrorMessage``), ``error_message`` is null for every partition
  error except a record validation fault (below); odradek's own explanation of a refusal goes
  to the broker's log at debug level.
* Faults of single records (a keyless record on a compacted topic: INVALID_RECORD; a
  timestamp outside ``message.timestamp.before/after.max.ms``: INVALID_TIMESTAMP) are answered
  as Kafka answers its ``RecordValidationException``: v8+ ``record_errors`` (each record's index
  in its batch and Kafka's message) and Kafka's summary as ``error_message``, with the
  partition's log start offset.
* acks=-1 on a partition with fewer in-sync replicas than ``min.insync.replicas`` capped at
  the replication factor (Kafka's effective min ISR): NOT_ENOUGH_REPLICAS, before anything is
  appended. One node is never short: a topic of replication factor 1 with
  ``min.insync.replicas=2`` takes acks=-1 produces, as Kafka does.
* Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION (v13+, by topic id: UNKNOWN_TOPIC_ID).
  Produce never auto-creates topics (clients ask Metadata first, which does).
* ``timeout_ms`` bounds the wait for durability (acks=-1): a partition not durable by then
  answers REQUEST_TIMED_OUT (its records stay appended, as in Kafka).
* acks=0: no response at all, unless a partition failed: then the connection is closed, as
  Kafka does, so the client notices. acks=1: answered after the append. acks=-1: after the records are
  durable; on one node that means fsynced when ``odradek.flush.on.acks.all`` is true (grouped:
  one fsync serves every produce that appended meanwhile), else at once like acks=1.
* The response carries the first offset of the appended records, the log append time (or -1
  for CreateTime topics, v2+) and the log start offset (v5+).

* Transactions (v3+ ``transactional_id``), KIP-890: before a producer's first transactional
  batch in a partition (no transaction of its epoch open there), the partition must be in the
  producer's transaction. Below v12 the transaction coordinator is asked whether it is (a
  partition not added answers INVALID_TXN_STATE, "Partition was not added to the transaction",
  or from v11 TRANSACTION_ABORTABLE); from v12 (transaction version 2) the partitions are added
  to the transaction implicitly. A coordinator that cannot tell yet (CONCURRENT_TRANSACTIONS,
  loading, ...) answers NOT_ENOUGH_REPLICAS, which every client retries, and a fenced producer
  INVALID_PRODUCER_EPOCH, as Kafka's ReplicaManager translates them
  (``transaction.partition.verification.enable`` turns the check below v12 off; the implicit
  add of v12+ is not a check and happens whatever it says, as in Kafka 4.4).
* Transactional batches in a request without a ``transactional_id``: every partition answers
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED and nothing is appended, as Kafka's KafkaApis answers
  (only a transactional producer may write transactional batches).

Version notes: v8+ ``record_errors`` and ``error_message``; v13+ topics by id.
"""

from __future__ import annotations

import asyncio
import inspect
import struct

import structlog

from odradek.protocol import error_codes
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.produce import ProduceRequest, ProduceResponse
from odradek.protocol.records.batch import BATCH_HEADER_SIZE
from odradek.protocol.records.header import (
    ATTRIBUTES_OFFSET, LOG_OVERHEAD, MAGIC_OFFSET, TRANSACTIONAL_MASK, read_batch_header,
)
from odradek.storage.errors import RecordValidationError

from ..error_responses import ErrorAnswer, error_response
from ..registry import CLOSE_CONNECTION, LaterResponse
from ..transactions.coordinator import TransactionCoordinator
from . import REGISTRY
from ._common import topic_by_name_or_id

TopicResponse = ProduceResponse.TopicProduceResponse
PartitionResponse = ProduceResponse.TopicProduceResponse.PartitionProduceResponse
RecordErrorEntry = PartitionResponse.BatchIndexAndErrorMessage

log = structlog.get_logger("odradek.produce")


def _partition_error(index: int, code: int, message: str | None = None) -> PartitionResponse:
    """A refused partition; ``message`` only for Kafka's RecordValidationException answers."""
    return PartitionResponse(index=index, error_code=code, base_offset=-1, log_append_time_ms=-1,
                             log_start_offset=-1, error_message=message)


def _refused(topic: str, index: int, code: int, detail: str) -> PartitionResponse:
    """A refused partition answered as Kafka does (no error_message); the detail is logged."""
    log.debug("produce refused", topic=topic, partition=index, error_code=code, detail=detail)
    return _partition_error(index, code)


# A batch header's length, magic and attributes in one read (every plain produce looks at them).
BATCH_LENGTH_OFFSET = 8
_LENGTH_MAGIC_ATTRIBUTES = struct.Struct(
    f">i{MAGIC_OFFSET - BATCH_LENGTH_OFFSET - 4}xB{ATTRIBUTES_OFFSET - MAGIC_OFFSET - 1}xh")

# Produce v11 clients understand TRANSACTION_ABORTABLE; v12+ ones add partitions implicitly.
FIRST_ABORTABLE_VERSION = 11
FIRST_IMPLICIT_ADD_VERSION = 12
# What a verification that could not complete answers (Kafka's ReplicaManager): a retriable
# error that does not make the client refresh its metadata.
_UNVERIFIED = frozenset({error_codes.CONCURRENT_TRANSACTIONS, error_codes.NETWORK_EXCEPTION,
                         error_codes.COORDINATOR_LOAD_IN_PROGRESS, error_codes.COORDINATOR_NOT_AVAILABLE,
                         error_codes.NOT_COORDINATOR})


def _needs_verification(broker, topic_name: str, data) -> tuple[int, int] | None:
    """(producer id, epoch) of a transactional batch that would open its producer's
    transaction in this partition; None when there is nothing to verify."""
    partition = broker.partition(topic_name, data.index)
    records = data.records
    if partition is None or partition.offline or records is None or len(records) < BATCH_HEADER_SIZE:
        return None
    try:
        header = read_batch_header(records, 0)
    except ProtocolError:
        return None  # the append refuses it with the right code
    if header.magic != 2 or not header.is_transactional or header.producer_id < 0:
        return None
    entry = partition.log.producer_state.producers.get(header.producer_id)
    if entry is not None and entry.epoch == header.producer_epoch and entry.current_txn_first_offset >= 0:
        return None
    return header.producer_id, header.producer_epoch


def _verification_refusal(code: int, version: int) -> tuple[int, str | None]:
    """The produce answer to a failed verification (Kafka's AddPartitionsToTxnManager and
    ReplicaManager translations): (error code, error message)."""
    code = TransactionCoordinator.verification_answer(code, knows_abortable=version >= FIRST_ABORTABLE_VERSION)
    if code == error_codes.INVALID_TXN_STATE:
        return code, "Partition was not added to the transaction"
    if code in _UNVERIFIED:
        return error_codes.NOT_ENOUGH_REPLICAS, ("Unable to verify the partition has been added to the transaction. "
                                                 f"Underlying error: {error_codes.lookup(code).name}")
    return code, None


def _has_transactional_batch(request: ProduceRequest) -> bool:
    """Whether any batch of the request has the transactional bit (Kafka's
    RequestUtils.hasTransactionalRecords). Read from the header bytes alone, as every plain
    produce asks: the magic, the low byte of the attributes and the batch length; a malformed
    batch ends the look at its partition (the append refuses it)."""
    for topic_data in request.topic_data:
        for data in topic_data.partition_data:
            records = data.records
            if not records:
                continue
            position = 0
            while position + BATCH_HEADER_SIZE <= len(records):
                batch_length, magic, attributes = _LENGTH_MAGIC_ATTRIBUTES.unpack_from(records, position + BATCH_LENGTH_OFFSET)
                if magic == 2 and attributes & TRANSACTIONAL_MASK:
                    return True
                if batch_length <= 0:
                    break
                position += LOG_OVERHEAD + batch_length
    return False


@REGISTRY.handles(ProduceRequest, ProduceResponse)
def handle_produce(ctx, request: ProduceRequest):
    broker = ctx.broker
    transactional_id = request.transactional_id
    if transactional_id is None:
        if _has_transactional_batch(request):
            served = REGISTRY.get(ProduceRequest.API_KEY)
            return error_response(request, ctx.api_version,
                                  ErrorAnswer(error_codes.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, None),
                                  (served.min_version, served.max_version))
        return _produce(ctx, request, {})
    if ctx.api_version < FIRST_IMPLICIT_ADD_VERSION and not broker.config["transaction.partition.verification.enable"]:
        return _produce(ctx, request, {})
    order = broker.transaction_coordinator.produce_order
    previous = order.get(transactional_id)
    if previous is None:
        to_verify = _to_verify(ctx, request)
        if not to_verify or ctx.api_version < FIRST_IMPLICIT_ADD_VERSION:
            return _produce(ctx, request, _verified(ctx, request, to_verify))
    # An implicit add awaits a coordinator write before appending. Requests are pipelined, so
    # the produce requests of this transactional id that follow wait for it: the batches of
    # a producer are appended in the order they were sent, as their sequence numbers need
    # (Kafka reads one request of a connection at a time).
    appended = asyncio.get_running_loop().create_future()
    order[transactional_id] = appended
    task = asyncio.ensure_future(_in_order(ctx, request, previous, appended))
    # Also when the task is cancelled before it runs (its connection closed): the next
    # produce of the id must not wait for it forever.
    task.add_done_callback(lambda _: _appended(order, transactional_id, appended))
    return task


def _appended(order: dict, transactional_id: str, appended: asyncio.Future) -> None:
    if not appended.done():
        appended.set_result(None)
    if order.get(transactional_id) is appended:
        del order[transactional_id]


def _to_verify(ctx, request: ProduceRequest) -> dict:
    """(topic name, index) -> (producer id, epoch) of the partitions whose batch must be
    verified (or, from v12, added) before it is appended."""
    broker = ctx.broker
    by_id = ctx.api_version >= 13
    to_verify = {}
    for topic_data in request.topic_data:
        topic = topic_by_name_or_id(broker, None if by_id else topic_data.name, topic_data.topic_id if by_id else None)
        if topic is None:
            continue
        for data in topic_data.partition_data:
            producer = _needs_verification(broker, topic.name, data)
            if producer is not None:
                to_verify[(topic.name, data.index)] = producer
    return to_verify


def _verified(ctx, request: ProduceRequest, to_verify: dict) -> dict:
    """KIP-890 part 1: the refusals of the partitions not in the transaction."""
    refused = {}
    for (topic_name, index), (producer_id, epoch) in to_verify.items():
        code = ctx.broker.transaction_coordinator.verify_partition(request.transactional_id, producer_id, epoch,
                                                                   topic_name, index)
        if code != error_codes.NONE:
            refused[(topic_name, index)] = _verification_refusal(code, ctx.api_version)
    return refused


async def _in_order(ctx, request: ProduceRequest, previous, appended):
    """Append after the previous produce of the same transactional id has appended; from v12
    the partitions new to the transaction are first added to it (transaction version 2, one
    coordinator write per producer)."""
    order = ctx.broker.transaction_coordinator.produce_order
    try:
        if previous is not None:
            await previous
        to_verify = _to_verify(ctx, request)
        if ctx.api_version < FIRST_IMPLICIT_ADD_VERSION:
            refused = _verified(ctx, request, to_verify)
        else:
            by_producer: dict[tuple[int, int], list[tuple[str, int]]] = {}
            for partition, producer in to_verify.items():
                by_producer.setdefault(producer, []).append(partition)
            refused = {}
            for (producer_id, epoch), partitions in by_producer.items():
                code = await ctx.broker.transaction_coordinator.add_partitions_for_produce(
                    request.transactional_id, producer_id, epoch, partitions)
                if code != error_codes.NONE:
                    refused.update({partition: _verification_refusal(code, ctx.api_version) for partition in partitions})
        response = _produce(ctx, request, refused)
    finally:
        _appended(order, request.transactional_id, appended)
    return await response if inspect.isawaitable(response) else response


def _produce(ctx, request: ProduceRequest, refused: dict):
    """Append every partition's records, except those in ``refused`` ((topic name, index) ->
    (error code, message)), which answer their refusal."""
    broker = ctx.broker
    acks = request.acks
    by_id = ctx.api_version >= 13
    responses = []
    durable_waits = []  # (partition, end offset, its response) for acks=-1
    for topic_data in request.topic_data:
        topic = topic_by_name_or_id(broker, None if by_id else topic_data.name, topic_data.topic_id if by_id else None)
        partitions = []
        for data in topic_data.partition_data:
            if acks not in (0, 1, -1):
                partitions.append(_partition_error(data.index, error_codes.INVALID_REQUIRED_ACKS))
                continue
            partition = broker.partition(topic.name, data.index) if topic is not None else None
            if partition is None:
                code = error_codes.UNKNOWN_TOPIC_ID if by_id and topic is None else error_codes.UNKNOWN_TOPIC_OR_PARTITION
                partitions.append(_partition_error(data.index, code))
                continue
            offline = broker.faults.offline_error(topic.name, data.index)
            if offline is not None:  # an offline fault: Kafka's answer from a broker that is not the leader
                answer = _partition_error(data.index, offline)
                if ctx.api_version >= 10:  # KIP-951: the leader as this broker knows it (none)
                    answer.current_leader.leader_epoch = partition.leader_epoch
                partitions.append(answer)
                continue
            if (topic.name, data.index) in refused:
                code, message = refused[(topic.name, data.index)]
                log.debug("transactional produce refused", topic=topic.name, partition=data.index, error_code=code)
                partitions.append(_partition_error(data.index, code, message))
                continue
            if acks == -1 and partition.effective_min_insync_replicas > len(partition.in_sync_replicas):
                # Checked before appending, as Kafka does (NOT_ENOUGH_REPLICAS_AFTER_APPEND is
                # for an ISR that shrinks while waiting, which one node cannot have).
                partitions.append(_refused(
                    topic_data.name, data.index, error_codes.NOT_ENOUGH_REPLICAS,
                    f"The size of the current ISR {partition.in_sync_replicas} is insufficient to satisfy the "
                    f"min.isr requirement of {partition.effective_min_insync_replicas}"))
                continue
            if data.records is None or len(data.records) == 0:
                partitions.append(_refused(topic_data.name, data.index, error_codes.INVALID_RECORD,
                                           "the produce request has no record batches"))
                continue
            try:
                appended = partition.append(data.records)
            except RecordValidationError as error:
                answer = _partition_error(data.index, error.error_code, str(error))
                answer.log_start_offset = partition.log_start_offset
                answer.record_errors = [RecordErrorEntry(batch_index=index, batch_index_error_message=message)
                                        for index, message in error.record_errors]
                partitions.append(answer)
                continue
            except ProtocolError as error:
                partitions.append(_refused(topic_data.name, data.index, error.error_code, str(error)))
                continue
            answer = PartitionResponse(
                index=data.index,
                error_code=error_codes.NONE,
                base_offset=appended.first_offset,
                log_append_time_ms=appended.log_append_time,
                log_start_offset=partition.log_start_offset,
            )
            partitions.append(answer)
            if acks == -1:
                durable_waits.append((partition, appended.last_offset + 1, answer))
        responses.append(TopicResponse(name=topic_data.name, topic_id=topic_data.topic_id, partition_responses=partitions))

    response = ProduceResponse(responses=responses, throttle_time_ms=0)
    if acks == 0:
        # No response; but an error must not pass silently: Kafka closes the connection so
        # that the client notices and refreshes its metadata.
        failed = any(answer.error_code != error_codes.NONE
                     for topic_response in responses for answer in topic_response.partition_responses)
        return CLOSE_CONNECTION if failed else None
    if durable_waits and broker.config["odradek.flush.on.acks.all"]:
        answer = _DurableAnswer(response)
        for partition, end, partition_answer in durable_waits:
            answer.wait_for(partition, end, partition_answer)
        if answer.waiting:
            return answer.start(request.timeout_ms)
    return response


class _DurableAnswer:
    """An acks=all produce's response, sent once every appended partition is synced (the
    group commit calls back per partition); a partition whose sync fails answers
    KAFKA_STORAGE_ERROR, one not durable within the request's timeout REQUEST_TIMED_OUT (its
    records stay appended and become durable with the next round, as in Kafka, where a
    timed-out acks=all produce may still be committed)."""

    __slots__ = ("response", "waiting", "later", "timer")

    def __init__(self, response: ProduceResponse):
        self.response = response
        self.waiting: dict = {}  # id(partition answer) -> partition answer, not synced yet
        self.later = LaterResponse()
        self.timer = None

    def wait_for(self, partition, end_offset: int, answer) -> None:
        if partition.when_durable(end_offset, lambda error: self._synced(answer, error)):
            self.waiting[id(answer)] = answer

    def start(self, timeout_ms: int) -> LaterResponse:
        self.timer = asyncio.get_running_loop().call_later(max(timeout_ms, 0) / 1000, self._timed_out)
        return self.later

    def _synced(self, answer, error: BaseException | None) -> None:
        if self.waiting.pop(id(answer), None) is None:
            return  # answered already: the request timed out
        if error is not None:
            answer.error_code = error_codes.KAFKA_STORAGE_ERROR
            log.debug("produce sync failed", error=repr(error))
        if not self.waiting:
            if self.timer is not None:
                self.timer.cancel()
            self.later.finish(self.response)

    def _timed_out(self) -> None:
        for answer in self.waiting.values():
            answer.error_code = error_codes.REQUEST_TIMED_OUT  # no error_message, as Kafka's DelayedProduce
        self.waiting.clear()
        log.debug("produce not durable in time")
        self.later.finish(self.response)
