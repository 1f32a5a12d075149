"""Fetch (key 1), versions 4-18 for consumers (v0-v3 would need magic 0/1 down-conversion,
not served yet; follower fetches come with replication).

Behaviour:

* Each partition is read from ``fetch_offset`` up to the high watermark (read_uncommitted) or
  the last stable offset (read_committed, v4+), at most ``partition_max_bytes``, and the whole
  response at most ``max_bytes``; the first partition that has data returns at least one whole
  batch even if it is larger than both limits (Kafka's minOneMessage, so a consumer never
  stalls on a big batch).
* Record data is not copied into Python objects: the response carries file regions
  (:class:`~odradek.broker.records_source.FileRegions`) that the server reads into the socket
  buffer straight from the segment files.
* Long poll: when fewer than ``min_bytes`` are available and ``max_wait_ms`` > 0 the response
  waits until a produce to one of the fetched partitions adds data (then reads again), the
  wait ends, or the broker shuts down. Errors answer at once.
* Errors per partition: UNKNOWN_TOPIC_OR_PARTITION (v13+ by id: UNKNOWN_TOPIC_ID);
  OFFSET_OUT_OF_RANGE outside [log start offset, log end offset]; FENCED_LEADER_EPOCH /
  UNKNOWN_LEADER_EPOCH when ``current_leader_epoch`` (v9+) is older / newer than ours.
* Fetch sessions (KIP-227, v7+): this broker does not create sessions. A request to create one
  (session id 0, epoch 0) is answered as a full fetch with session id 0 ("no session"), which
  clients accept and keep sending full requests; a request in an existing session (id != 0)
  gets FETCH_SESSION_ID_NOT_FOUND, after which clients start over.

Version notes: v4+ last stable offset and aborted transactions (null for read_uncommitted,
empty for read_committed until transactions exist); v5+ log start offset; v11+ preferred read
replica (-1); v12+ flexible, diverging epoch and current leader (tagged); v13+ topic ids.
"""

from __future__ import annotations

import asyncio

from odradek.protocol import error_codes
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.fetch import FetchRequest, FetchResponse

from ..records_source import FileRegions
from . import REGISTRY
from ._common import topic_by_name_or_id

TopicResponse = FetchResponse.FetchableTopicResponse
PartitionData = FetchResponse.FetchableTopicResponse.PartitionData
READ_COMMITTED = 1
MIN_FETCH_VERSION = 4


def _error_partition(index: int, code: int, partition=None) -> PartitionData:
    return PartitionData(
        partition_index=index, error_code=code,
        high_watermark=partition.high_watermark if partition is not None else -1,
        last_stable_offset=partition.last_stable_offset if partition is not None else -1,
        log_start_offset=partition.log_start_offset if partition is not None else -1,
        records=b"",
    )


def _read_all(broker, request: FetchRequest, version: int):
    """One pass over the requested partitions: (response topics, bytes read, any error,
    partitions to wait on)."""
    by_id = version >= 13
    isolation = request.isolation_level if version >= 4 else 0
    remaining = request.max_bytes if version >= 3 else 2**31 - 1
    min_one_batch = True
    total = 0
    errors = False
    watched = []
    topics = []
    for wanted in request.topics:
        topic = topic_by_name_or_id(broker, None if by_id else wanted.topic, wanted.topic_id if by_id else None)
        answers = []
        for fetch_partition in wanted.partitions:
            index = fetch_partition.partition
            partition = broker.partition(topic.name, index) if topic is not None else None
            if partition is None:
                errors = True
                code = error_codes.UNKNOWN_TOPIC_ID if by_id and topic is None else error_codes.UNKNOWN_TOPIC_OR_PARTITION
                answers.append(_error_partition(index, code))
                continue
            current_epoch = fetch_partition.current_leader_epoch if version >= 9 else -1
            if current_epoch != -1 and current_epoch != partition.leader_epoch:
                errors = True
                code = (error_codes.FENCED_LEADER_EPOCH if current_epoch < partition.leader_epoch
                        else error_codes.UNKNOWN_LEADER_EPOCH)
                answers.append(_error_partition(index, code, partition))
                continue
            limit = max(0, min(fetch_partition.partition_max_bytes, remaining))
            try:
                result = partition.read(fetch_partition.fetch_offset, limit, min_one_batch, isolation)
            except ProtocolError as error:
                errors = True
                answers.append(_error_partition(index, error.error_code, partition))
                continue
            records = FileRegions(result.regions) if result.regions else b""
            size = len(records)
            if size:
                min_one_batch = False
                remaining -= size
                total += size
            watched.append(partition)
            answers.append(PartitionData(
                partition_index=index,
                error_code=error_codes.NONE,
                high_watermark=partition.high_watermark,
                last_stable_offset=partition.last_stable_offset,
                log_start_offset=partition.log_start_offset,
                aborted_transactions=[] if isolation == READ_COMMITTED else None,
                preferred_read_replica=-1,
                records=records,
            ))
        topics.append(TopicResponse(topic=wanted.topic, topic_id=wanted.topic_id, partitions=answers))
    return topics, total, errors, watched


@REGISTRY.handles(FetchRequest, FetchResponse, min_version=MIN_FETCH_VERSION)
def handle_fetch(ctx, request: FetchRequest):
    version = ctx.api_version
    if version >= 7 and request.session_id != 0:
        return FetchResponse(error_code=error_codes.FETCH_SESSION_ID_NOT_FOUND, session_id=0, responses=[])
    topics, total, errors, watched = _read_all(ctx.broker, request, version)
    if total >= request.min_bytes or errors or request.max_wait_ms <= 0 or not watched \
            or ctx.broker.shutting_down:
        return FetchResponse(error_code=error_codes.NONE, session_id=0, responses=topics)
    return _long_poll(ctx, request, version, watched)


async def _long_poll(ctx, request: FetchRequest, version: int, watched) -> FetchResponse:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request.max_wait_ms / 1000
    broker = ctx.broker
    while True:
        timeout = deadline - loop.time()
        if timeout <= 0 or broker.shutting_down:
            break
        woken = loop.create_future()
        for partition in watched:
            partition.add_fetch_waiter(woken)
        try:
            await asyncio.wait((woken,), timeout=timeout)
        finally:
            for partition in watched:
                partition.remove_fetch_waiter(woken)
            if not woken.done():
                woken.cancel()
        topics, total, errors, watched = _read_all(broker, request, version)
        if total >= request.min_bytes or errors or not watched:
            return FetchResponse(error_code=error_codes.NONE, session_id=0, responses=topics)
    topics, _, _, _ = _read_all(broker, request, version)
    return FetchResponse(error_code=error_codes.NONE, session_id=0, responses=topics)
