"""The control API's routes of the broker's state: status, reset, snapshots. Every area's
routes module is imported at the end, which registers its routes (router.py)."""

from __future__ import annotations

import re

from odradek.broker.topics import INTERNAL_TOPICS, TopicError

from .http import HttpError
from .router import route

# A snapshot's name: what is safe in a URL path segment and a file name.
SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


@route("GET", "/v1/status")
async def status(service, request):
    broker = service.broker
    return 200, {
        "bootstrap_servers": _bootstrap(service),
        "cluster_id": broker.cluster_id,
        "node_id": broker.node_id,
        "memory": service.in_memory,
        "log_dirs": None if service.in_memory else broker.log_dirs,
        "topics": sum(1 for topic in broker.topics if topic.name not in INTERNAL_TOPICS),
        "connections": len(service.server.connections),
        "control_url": service.control_url,
    }


@route("POST", "/v1/reset")
async def reset(service, request):
    """No body: everything. ``{"topics": [...]}``: only those topics, emptied (deleted and
    created again with their partitions and configs, under a new topic id)."""
    body = request.json
    if body is None or "topics" not in body:
        return 200, {"reset": "all", "ms": round(await service.reset(), 3)}
    names = body["topics"]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise HttpError(400, '"topics" must be a list of topic names')
    broker = service.broker
    missing = [name for name in names if name not in broker.topics.by_name]
    if missing:
        raise HttpError(404, f"no topic {', '.join(missing)}")
    for name in names:
        topic = broker.topics.by_name[name]
        try:
            broker.delete_topic(topic)
            broker.create_topic(name, topic.partition_count, configs=dict(topic.configs))
        except TopicError as error:
            raise HttpError(409, f"topic {name}: {error}") from None
    return 200, {"reset": names}


@route("GET", "/v1/snapshots")
async def list_snapshots(service, request):
    return 200, {"snapshots": [snapshot.describe() for snapshot in service.snapshots.values()]}


@route("POST", "/v1/snapshots/{name}")
async def save_snapshot(service, request):
    name = _snapshot_name(request)
    snapshot = await service.save_snapshot(name)
    return 201, snapshot.describe()


@route("POST", "/v1/snapshots/{name}/restore")
async def restore_snapshot(service, request):
    name = _snapshot_name(request)
    if name not in service.snapshots:
        raise HttpError(404, f"no snapshot {name}")
    return 200, {"restored": name, "ms": round(await service.restore_snapshot(name), 3)}


@route("DELETE", "/v1/snapshots/{name}")
async def delete_snapshot(service, request):
    name = _snapshot_name(request)
    if service.snapshots.pop(name, None) is None:
        raise HttpError(404, f"no snapshot {name}")
    return 204, None


@route("GET", "/v1/clients")
async def clients(service, request):
    return 200, {"clients": service.server.activity.clients()}


# How long GET /v1/activity may wait for a first event (wait_ms) at most.
ACTIVITY_WAIT_MAX_MS = 60_000


@route("GET", "/v1/activity")
async def activity(service, request):
    """The requests answered after ``since`` (a ``seq``; 0: all those kept), at most ``limit``,
    waiting up to ``wait_ms`` for one when there is none yet (``odradek activity -f`` polls
    so); filtered by ``client_id``, ``api`` (its name) and ``topic`` when given. ``last`` is the
    sequence number to ask after next."""
    since = request.int_query("since", 0)
    limit = request.int_query("limit", 1000)
    wait_ms = min(request.int_query("wait_ms", 0), ACTIVITY_WAIT_MAX_MS)
    stream = service.server.activity
    await stream.wait_for_events(since, wait_ms / 1000)
    wanted = {key: request.query[key] for key in ("client_id", "api") if key in request.query}
    topic = request.query.get("topic")
    batch = stream.events(since, limit)
    events = [event for event in batch
              if all(event[key] == value for key, value in wanted.items())
              and (topic is None or topic in (event["topics"] or {}))]
    # After a broker restart a reader's ``since`` may be ahead of the stream: it starts over.
    last = batch[-1]["seq"] if batch else min(since, stream.last_sequence)
    return 200, {"events": events, "last": last}


def _snapshot_name(request) -> str:
    name = request.params["name"]
    if not SNAPSHOT_NAME.match(name):
        raise HttpError(400, f"a snapshot name is 1-200 of A-Z a-z 0-9 . _ -, not {name[:50]!r}")
    return name


def _bootstrap(service) -> str:
    from odradek.broker.service import bootstrap_servers

    return bootstrap_servers(service.bound)


# Every area's routes, registered by importing their modules.
from . import faults, inspect  # noqa: E402,F401
