"""The control API's routes for looking inside the broker: topics and their partitions'
offsets, the records of a partition (each with the fate of its transaction), and groups with
their committed offsets and lag. Read-only; what a test asserts on (docs/testing.md)."""

from __future__ import annotations

import base64

from odradek.broker.groups.coordinator import DEAD
from odradek.protocol import error_codes
from odradek.protocol.records.batch import CONTROL_ABORT, CONTROL_COMMIT, iter_batches, parse_control_record

from .http import HttpError
from .router import route

# The most records one GET .../records returns.
RECORDS_LIMIT_MAX = 10_000
# What one read of a partition's log takes at most (whole batches; at least one).
READ_BYTES = 1 << 20


def _partition_offsets(partition) -> dict:
    return {"partition": partition.index, "leader_epoch": partition.leader_epoch,
            "log_start_offset": partition.log_start_offset, "log_end_offset": partition.log_end_offset,
            "high_watermark": partition.high_watermark, "last_stable_offset": partition.last_stable_offset}


def _describe_topic(broker, topic) -> dict:
    partitions = [broker.partition(topic.name, index) for index in range(topic.partition_count)]
    return {"name": topic.name, "topic_id": str(topic.topic_id), "internal": topic.name.startswith("__"),
            "configs": dict(topic.configs),
            "partitions": [_partition_offsets(partition) if partition is not None and not partition.offline
                           else {"partition": index, "offline": True}
                           for index, partition in enumerate(partitions)]}


def _topic(service, name: str):
    topic = service.broker.topics.by_name.get(name)
    if topic is None:
        raise HttpError(404, f"no topic {name}")
    return topic


@route("GET", "/v1/topics")
async def list_topics(service, request):
    broker = service.broker
    return 200, {"topics": [_describe_topic(broker, topic) for topic in sorted(broker.topics, key=lambda t: t.name)]}


@route("GET", "/v1/topics/{name}")
async def describe_topic(service, request):
    return 200, _describe_topic(service.broker, _topic(service, request.params["name"]))


@route("GET", "/v1/topics/{name}/records")
async def topic_records(service, request):
    """Records up to the high watermark, from ``offset`` (default: the log start) of
    ``partition`` (default: every partition, one after the other), at most ``limit``. Each:
    partition, offset, timestamp, key, value, headers (UTF-8 text where they decode, else
    ``{"base64": ...}``), producer id and ``transaction``: null (not transactional),
    "committed", "aborted" or "open" (no marker below the high watermark yet)."""
    broker = service.broker
    topic = _topic(service, request.params["name"])
    limit = min(request.int_query("limit", 1000), RECORDS_LIMIT_MAX)
    if "partition" in request.query:
        wanted = [request.int_query("partition", 0)]
        if wanted[0] >= topic.partition_count:
            raise HttpError(404, f"topic {topic.name} has no partition {wanted[0]}")
    else:
        wanted = list(range(topic.partition_count))
    records = []
    for index in wanted:
        partition = broker.partition(topic.name, index)
        if partition is None or partition.offline:
            raise HttpError(503, f"partition {topic.name}-{index} is offline")
        start = request.int_query("offset", partition.log_start_offset) if "partition" in request.query else \
            partition.log_start_offset
        records += _read_partition(partition, max(start, partition.log_start_offset), limit - len(records))
        if len(records) >= limit:
            break
    return 200, {"records": records[:limit]}


def _read_partition(partition, start: int, limit: int) -> list[dict]:
    """The records of ``partition`` from ``start`` up to its high watermark. Reading begins at
    the log start so that the fate of each transaction (its marker) is known; what precedes
    ``start`` is left out of the answer."""
    found: list[dict] = []
    open_transactions: dict[int, list[dict]] = {}  # producer id -> its records awaiting a marker
    offset = partition.log_start_offset
    end = partition.high_watermark
    while offset < end and (len(found) < limit or open_transactions):
        result = partition.read(offset, READ_BYTES, True)
        data = b"".join(region.read() for region in result.regions)
        if not data:
            break
        for batch in iter_batches(data, allow_incomplete=False):
            if batch.next_offset <= offset:
                continue
            offset = batch.next_offset
            if batch.is_control:
                for record in batch.records:
                    control = parse_control_record(record)
                    if control.control_type in (CONTROL_COMMIT, CONTROL_ABORT):
                        fate = "committed" if control.control_type == CONTROL_COMMIT else "aborted"
                        for pending in open_transactions.pop(batch.producer_id, []):
                            pending["transaction"] = fate
                continue
            for record in batch.records:
                at = batch.offset_of(record)
                if at < start:
                    continue
                entry = {"partition": partition.index, "offset": at, "timestamp": batch.timestamp_of(record),
                         "key": _text(record.key), "value": _text(record.value),
                         "headers": [[name, _text(value)] for name, value in record.headers],
                         "producer_id": batch.producer_id,
                         "transaction": "open" if batch.is_transactional else None}
                if batch.is_transactional:
                    open_transactions.setdefault(batch.producer_id, []).append(entry)
                if len(found) < limit:
                    found.append(entry)
            if len(found) >= limit and not open_transactions:
                break
    return found


def _text(data: bytes | None):
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


@route("GET", "/v1/groups")
async def list_groups(service, request):
    coordinator = service.broker.group_coordinator
    classic = [{"group_id": group.group_id, "type": "classic", "state": group.state.value,
                "protocol_type": group.protocol_type or ""} for group in coordinator.list_groups()]
    consumer = [{"group_id": group.group_id, "type": "consumer", "state": group.state.value,
                 "protocol_type": group.protocol_type} for group in coordinator.consumer.groups.values()
                if coordinator.is_loaded(group.group_id)]
    return 200, {"groups": sorted(classic + consumer, key=lambda group: group["group_id"])}


@route("GET", "/v1/groups/{group_id}")
async def describe_group(service, request):
    """A group's state, members (member id, client id, host) and committed offsets, each with
    the partition's high watermark and the lag, as kafka-consumer-groups.sh --describe shows."""
    broker = service.broker
    coordinator = broker.group_coordinator
    group_id = request.params["group_id"]
    error, committed = coordinator.fetch_offsets(group_id, None)
    if error != error_codes.NONE:
        raise HttpError(503, f"group {group_id}: {error_codes.lookup(error).name}")
    classic = coordinator.group(group_id)
    consumer = coordinator.consumer.groups.get(group_id)
    if classic is not None and not classic.is_in(DEAD):
        kind, state = "classic", classic.state.value
        members = [{"member_id": member.member_id, "client_id": member.client_id, "host": member.client_host}
                   for member in classic.members.values()]
    elif consumer is not None:
        kind, state = "consumer", consumer.state.value
        members = [{"member_id": member.member_id, "client_id": member.client_id, "host": member.client_host}
                   for member in consumer.members.values()]
    elif committed:
        kind, state, members = "classic", "Empty", []
    else:
        raise HttpError(404, f"no group {group_id}")
    offsets = []
    for (topic, index), stored in sorted(committed.items()):
        partition = broker.partition(topic, index)
        end = partition.high_watermark if partition is not None and not partition.offline else None
        offsets.append({"topic": topic, "partition": index, "offset": stored.offset, "metadata": stored.metadata,
                        "high_watermark": end, "lag": None if end is None else max(0, end - stored.offset)})
    return 200, {"group_id": group_id, "type": kind, "state": state, "members": members, "offsets": offsets}
