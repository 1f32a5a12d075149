"""Fetch (key 1), versions 0-18 for consumers (follower fetches come with replication).

Behaviour:

* Each partition is read from ``fetch_offset`` up to the high watermark (read_uncommitted) or
  the last stable offset (read_committed), at most ``partition_max_bytes``, and the whole
  response at most ``max_bytes``; the first partition that has data returns at least one whole
  batch even if it is larger than both limits (Kafka's minOneMessage, so a consumer never
  stalls on a big batch).
* Record data is not copied into Python objects: the response carries file regions
  (:class:`~odradek.broker.records_source.FileRegions`) that the server reads into the socket
  buffer straight from the segment files.
* Long poll: when fewer than ``min_bytes`` are available and ``max_wait_ms`` > 0 the response
  waits until a produce to one of the fetched partitions adds data (then reads again), the
  wait ends, or the broker shuts down. Errors answer at once.
* Errors per partition: UNKNOWN_TOPIC_OR_PARTITION (v13+ by id: UNKNOWN_TOPIC_ID), answered
  after every other partition, as Kafka does; OFFSET_OUT_OF_RANGE outside [log start offset,
  log end offset]; FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH when ``current_leader_epoch``
  (v9+) is older / newer than ours. In a v13+ session, a topic deleted since it was added is
  UNKNOWN_TOPIC_OR_PARTITION, and INCONSISTENT_TOPIC_ID once a topic of its name exists again
  (Kafka's session keeps the name it resolved). Partitions of one topic share a topic entry
  when adjacent.
* Fetch sessions (KIP-227, v7+): see :mod:`odradek.broker.fetch_sessions`. Session errors
  (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH, FETCH_SESSION_TOPIC_ID_ERROR) are
  top-level and answer at once with no partitions. A full fetch opens its session when it is
  answered (after any long poll).

Version notes: v0-v3 predate record batches: what is read is down-converted to magic 0
(v0-v1) or magic 1 (v2-v3) message sets (``odradek.protocol.records.convert``), copied through
memory; a topic with ``message.downconversion.enable=false`` answers them UNSUPPORTED_VERSION,
and zstd data UNSUPPORTED_COMPRESSION_TYPE, as Kafka does. v0-v2 have no response byte limit
and no "at least one batch" rule (a batch larger than ``partition_max_bytes`` is not returned,
as Kafka's hard limit). v4+ last stable offset and, for read_committed, the aborted transactions
overlapping the records returned (from the ``.txnindex`` files; null for read_uncommitted), so
the consumer drops their records; v5+ log start offset; v7+ sessions; v11+
preferred read replica (-1); v12+ flexible, diverging epoch and current leader (tagged); v13+
topic ids.
"""

from __future__ import annotations

import asyncio

from odradek.protocol import error_codes
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.fetch import AbortedTransaction, FetchRequest, FetchResponse

from odradek.protocol.records.convert import down_convert

from ..fetch_sessions import (FINAL_EPOCH, INVALID_SESSION_ID, FetchContext, FetchSessionError,
                              FetchSessionIdOutOfRange, FetchTarget)
from ..records_source import FileRegions
from . import REGISTRY

TopicResponse = FetchResponse.FetchableTopicResponse
PartitionData = FetchResponse.FetchableTopicResponse.PartitionData
READ_COMMITTED = 1
FIRST_BATCH_VERSION = 4  # below: down-convert to legacy message sets
# Kafka's cap on what one down-conversion may decompress (a hostile batch cannot expand past it).
MAX_DECOMPRESSED_SIZE = 128 * 1024 * 1024


def _legacy_magic(version: int) -> int:
    return 0 if version <= 1 else 1


def _targets(request: FetchRequest, uses_topic_ids: bool) -> tuple[list[FetchTarget], list[tuple]]:
    targets = []
    for topic in request.topics:
        for item in topic.partitions:
            key = ("id", topic.topic_id, item.partition) if uses_topic_ids else ("name", topic.topic, item.partition)
            targets.append(FetchTarget(key, None if uses_topic_ids else topic.topic, topic.topic_id, item.partition,
                                       item.fetch_offset, item.partition_max_bytes, item.current_leader_epoch))
    forgotten = []
    for topic in request.forgotten_topics_data:
        for index in topic.partitions:
            forgotten.append(("id", topic.topic_id, index) if uses_topic_ids else ("name", topic.topic, index))
    return targets, forgotten


class _Read:
    """One pass over the targets: per target (partition or None, PartitionData, bytes)."""

    __slots__ = ("items", "total", "errors", "watched")

    def __init__(self):
        self.items = []
        self.total = 0
        self.errors = False
        self.watched = []


def _read(broker, targets: list[FetchTarget], request: FetchRequest, version: int) -> _Read:
    uses_ids = version >= 13
    isolation = request.isolation_level
    remaining = request.max_bytes
    min_one_batch = version >= 3  # v0-v2: a hard per-partition limit (Kafka's hardMaxBytesLimit)
    result = _Read()
    # Kafka answers partitions of unknown topics after all the others (its "erroneous" list).
    unknown = []
    for target in targets:
        if uses_ids:
            topic = broker.topics.by_id.get(target.topic_id)
            if topic is not None:
                target.topic_name = topic.name  # kept by a session, as Kafka's cached partitions keep it
            elif target.topic_name is not None:
                # A session's topic deleted since: Kafka looks it up by the name it kept, and a topic
                # of that name now (recreated) has another id.
                recreated = broker.topics.get(target.topic_name)
                if recreated is not None and broker.partition(recreated.name, target.partition) is not None:
                    result.errors = True
                    result.items.append((target, None, _error_data(target.partition,
                                                                   error_codes.INCONSISTENT_TOPIC_ID), 0))
                    continue
        else:
            topic = broker.topics.get(target.topic_name)
        partition = broker.partition(topic.name, target.partition) if topic is not None else None
        if partition is None:
            result.errors = True
            code = error_codes.UNKNOWN_TOPIC_ID if uses_ids and target.topic_name is None \
                else error_codes.UNKNOWN_TOPIC_OR_PARTITION
            unknown.append((target, None, _error_data(target.partition, code), 0))
            continue
        offline = broker.faults.offline_error(topic.name, target.partition)
        if offline is not None:  # an offline fault: Kafka's answer from a broker that is not the leader
            result.errors = True
            data = _error_data(target.partition, offline)
            if version >= 16:  # KIP-951: the leader as this broker knows it (none)
                data.current_leader.leader_epoch = partition.leader_epoch
            result.items.append((target, partition, data, 0))
            continue
        epoch = target.current_leader_epoch if version >= 9 else -1
        if epoch != -1 and epoch != partition.leader_epoch:
            result.errors = True
            code = error_codes.FENCED_LEADER_EPOCH if epoch < partition.leader_epoch else error_codes.UNKNOWN_LEADER_EPOCH
            result.items.append((target, partition, _error_data(target.partition, code, partition), 0))
            continue
        if version < FIRST_BATCH_VERSION and not partition.downconversion_enabled:
            result.errors = True
            result.items.append((target, partition,
                                 _error_data(target.partition, error_codes.UNSUPPORTED_VERSION, partition), 0))
            continue
        limit = max(0, min(target.partition_max_bytes, remaining))
        try:
            read = partition.read(target.fetch_offset, limit, min_one_batch, isolation)
            records = FileRegions(read.regions) if read.regions else b""
            if records and version < FIRST_BATCH_VERSION:
                records = down_convert(records.read_bytes(), to_magic=_legacy_magic(version),
                                       max_decompressed_size=MAX_DECOMPRESSED_SIZE,
                                       first_offset=target.fetch_offset)
        except ProtocolError as error:
            result.errors = True
            result.items.append((target, partition, _error_data(target.partition, error.error_code, partition), 0))
            continue
        size = len(records)
        if size:
            min_one_batch = False
            remaining -= size
            result.total += size
        result.watched.append(partition)
        result.items.append((target, partition, PartitionData(
            partition_index=target.partition,
            error_code=error_codes.NONE,
            high_watermark=partition.high_watermark,
            last_stable_offset=partition.last_stable_offset,
            log_start_offset=partition.log_start_offset,
            aborted_transactions=[AbortedTransaction(producer_id=txn.producer_id, first_offset=txn.first_offset)
                                  for txn in read.aborted_transactions] if isolation == READ_COMMITTED else None,
            preferred_read_replica=-1,
            records=records,
        ), size))
    result.items += unknown
    return result


def _error_data(index: int, code: int, partition=None) -> PartitionData:
    return PartitionData(
        partition_index=index, error_code=code,
        high_watermark=partition.high_watermark if partition is not None else -1,
        last_stable_offset=partition.last_stable_offset if partition is not None else -1,
        log_start_offset=partition.log_start_offset if partition is not None else -1,
        records=b"",
    )


def _respond(read: _Read, context: FetchContext, broker) -> FetchResponse:
    """The response for ``read``: every partition, or (incremental) only what changed; the
    session remembers what was sent. A full fetch opens its session here, as Kafka does when it
    answers."""
    session = context.session
    if context.kind == "full":
        # The session keeps the partitions in the order they are answered (unknown ones last).
        session = broker.fetch_sessions.open([target for target, *_ in read.items], context.uses_topic_ids)
    elif context.kind == "incremental" and session.next_epoch != context.expected_epoch:
        # Another request in this session (same epoch) was answered while this one waited.
        return FetchResponse(error_code=error_codes.INVALID_FETCH_SESSION_EPOCH, session_id=session.session_id,
                             responses=[])
    incremental = context.kind == "incremental"
    responses: list[TopicResponse] = []
    last_topic_key = None
    for target, _, data, size in read.items:
        if incremental and not session.should_send(target, data.error_code, size, data.high_watermark,
                                                   data.log_start_offset):
            continue
        if session is not None:
            # Only an incremental answer rotates what returned records (Kafka's full fetch keeps
            # the order it was asked in).
            session.record_sent(target, data.error_code, data.high_watermark, data.log_start_offset,
                                incremental and size > 0)
        # Partitions of one topic share an entry only when they are adjacent, as in Kafka (a
        # session's order can interleave topics after partitions that returned records rotate).
        if target.key[:2] != last_topic_key:
            last_topic_key = target.key[:2]
            responses.append(TopicResponse(topic=target.topic_name or "", topic_id=target.topic_id, partitions=[]))
        responses[-1].partitions.append(data)
    return FetchResponse(error_code=error_codes.NONE,
                         session_id=session.session_id if session is not None else INVALID_SESSION_ID,
                         responses=responses)


def _request_failed(request: FetchRequest, version: int, error_code: int) -> FetchResponse:
    """Kafka's answer to a Fetch whose handling threw: the error at the top and, before v13,
    in every partition the request names; the request's session id."""
    responses = [] if version >= 13 else [
        TopicResponse(topic=topic.topic, topic_id=topic.topic_id,
                      partitions=[_error_data(item.partition, error_code) for item in topic.partitions])
        for topic in request.topics]
    return FetchResponse(error_code=error_code, session_id=request.session_id, responses=responses)


@REGISTRY.handles(FetchRequest, FetchResponse)
def handle_fetch(ctx, request: FetchRequest):
    broker = ctx.broker
    version = ctx.api_version
    uses_ids = version >= 13
    targets, forgotten = _targets(request, uses_ids)
    session_id, epoch = (request.session_id, request.session_epoch) if version >= 7 else (INVALID_SESSION_ID, FINAL_EPOCH)
    try:
        context = broker.fetch_sessions.resolve(session_id, epoch, targets, forgotten, uses_ids)
    except FetchSessionIdOutOfRange as error:
        return _request_failed(request, version, error.error_code)
    except FetchSessionError as error:
        return FetchResponse(error_code=error.error_code, session_id=INVALID_SESSION_ID, responses=[])
    read = _read(broker, context.targets, request, version)
    if read.total >= request.min_bytes or read.errors or request.max_wait_ms <= 0 or not read.watched \
            or broker.shutting_down:
        return _respond(read, context, broker)
    return _long_poll(broker, request, version, context, read)


async def _long_poll(broker, request: FetchRequest, version: int, context: FetchContext,
                     read: _Read) -> FetchResponse:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request.max_wait_ms / 1000
    while True:
        timeout = deadline - loop.time()
        if timeout <= 0 or broker.shutting_down:
            break
        woken = loop.create_future()
        watched = read.watched
        for partition in watched:
            partition.add_fetch_waiter(woken)
        try:
            await asyncio.wait((woken,), timeout=timeout)
        finally:
            for partition in watched:
                partition.remove_fetch_waiter(woken)
            if not woken.done():
                woken.cancel()
        read = _read(broker, context.targets, request, version)
        if read.total >= request.min_bytes or read.errors or not read.watched:
            return _respond(read, context, broker)
    return _respond(_read(broker, context.targets, request, version), context, broker)
