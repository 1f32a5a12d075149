"""What the broker's clients did, for the test kit's eyes (the control API's ``/v1/clients`` and
``/v1/activity``, ``odradek activity``): each connection (its peer, client id, the software it
named in ApiVersions — KIP-511 — and the versions of each API it used) and a stream of the
requests answered (client, API and version, the topics and partitions it named, the error codes
in the response, how long it took).

Bounded: the stream keeps the last :data:`EVENTS_KEPT` requests and the list of clients the
open connections plus the last :data:`CLOSED_CLIENTS_KEPT` closed ones. A sequence number
orders the events; a reader asks for those after the last it saw, waiting for the next if there
is none yet. Owned by the server (broker/server.py), on the event loop; it outlives a reset.
"""

from __future__ import annotations

import asyncio
import collections
import time

from odradek.protocol import error_codes
from odradek.protocol.messages._runtime import Struct
from odradek.protocol.messages.produce import ProduceRequest, ProduceResponse

from .faults import named_request_targets

EVENTS_KEPT = 10_000
CLOSED_CLIENTS_KEPT = 200
_API_VERSIONS_KEY = 18


class ClientRecord:
    """One connection: who it was and what it used."""

    __slots__ = ("peer", "listener", "client_id", "software_name", "software_version", "connected_ms",
                 "closed_ms", "requests", "versions")

    def __init__(self, peer: str, listener: str):
        self.peer = peer
        self.listener = listener
        self.client_id: str | None = None
        self.software_name: str | None = None
        self.software_version: str | None = None
        self.connected_ms = _now_ms()
        self.closed_ms: int | None = None
        self.requests = 0
        self.versions: dict[str, set[int]] = {}  # API name -> versions used

    def describe(self) -> dict:
        return {"peer": self.peer, "listener": self.listener, "client_id": self.client_id,
                "software_name": self.software_name, "software_version": self.software_version,
                "connected_ms": self.connected_ms, "closed_ms": self.closed_ms, "requests": self.requests,
                "api_versions": {api: sorted(versions) for api, versions in sorted(self.versions.items())}}


class Activity:
    def __init__(self, topic_name_of=lambda topic_id: None):
        """``topic_name_of``: a topic id's name (Fetch v13+ names topics by id only)."""
        self._topic_name_of = topic_name_of
        self._events: collections.deque[tuple] = collections.deque(maxlen=EVENTS_KEPT)
        self._sequence = 0
        self._open: set[ClientRecord] = set()
        self._closed: collections.deque[ClientRecord] = collections.deque(maxlen=CLOSED_CLIENTS_KEPT)
        self._arrived: asyncio.Event | None = None  # made on the loop by the first reader that waits

    # --- the server's side ---

    def connection_opened(self, peer: str, listener: str) -> ClientRecord:
        client = ClientRecord(peer, listener)
        self._open.add(client)
        return client

    def connection_closed(self, client: ClientRecord) -> None:
        if client in self._open:
            self._open.discard(client)
            client.closed_ms = _now_ms()
            self._closed.append(client)

    def request_answered(self, client: ClientRecord, request, api_name: str, elapsed_s: float, response) -> None:
        """Note a request whose answer left (``response`` None when none is sent: acks=0, or
        the connection was closed instead)."""
        client.requests += 1
        client.client_id = request.client_id
        versions = client.versions.get(api_name)
        if versions is None:
            versions = client.versions[api_name] = set()
        versions.add(request.api_version)
        if request.api_key == _API_VERSIONS_KEY:  # v3+ names the software (KIP-511)
            client.software_name = getattr(request.body, "client_software_name", None) or client.software_name
            client.software_version = (getattr(request.body, "client_software_version", None)
                                       or client.software_version)
        self._sequence += 1
        # Kept as a tuple, made readable only when read: this runs for every request.
        self._events.append((self._sequence, time.time_ns() // 1_000_000, client.peer, request.client_id, api_name,
                             request.api_version, request.correlation_id,
                             _request_topics(request.body, self._topic_name_of), _error_codes(response), elapsed_s))
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None

    # --- the readers' side ---

    def clients(self) -> list[dict]:
        """The open connections, then the closed ones kept, oldest first in each."""
        opened = sorted(self._open, key=lambda client: client.connected_ms)
        return [client.describe() for client in (*opened, *self._closed)]

    def events(self, since: int = 0, limit: int = 1000) -> list[dict]:
        """The events after sequence number ``since``, oldest first, at most ``limit``."""
        found = []
        for event in reversed(self._events):
            if event[0] <= since:
                break
            found.append(event)
        found.reverse()
        return [_readable(event) for event in found[:limit]]

    @property
    def last_sequence(self) -> int:
        return self._sequence

    async def wait_for_events(self, since: int, timeout: float) -> None:
        """Return once there is an event after ``since``, or after ``timeout`` seconds."""
        if self._sequence > since or timeout <= 0:
            return
        if self._arrived is None:
            self._arrived = asyncio.Event()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except asyncio.TimeoutError:
            pass


def _readable(event: tuple) -> dict:
    sequence, time_ms, peer, client_id, api, api_version, correlation_id, topics, codes, elapsed_s = event
    return {"seq": sequence, "time_ms": time_ms, "peer": peer, "client_id": client_id, "api": api,
            "api_version": api_version, "correlation_id": correlation_id, "topics": topics,
            "errors": sorted({error_codes.lookup(code).name for code in codes}), "ms": round(elapsed_s * 1000, 3)}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _error_codes(response) -> set[int]:
    """Every non-zero ``error_code`` anywhere in a response (top level, topics, partitions)."""
    if type(response) is ProduceResponse:
        return _produce_error_codes(response)
    return _walked_error_codes(response)


def _walked_error_codes(response) -> set[int]:
    """:func:`_error_codes` of any response, by a walk over its fields."""
    found = set()
    pending = [response] if isinstance(response, Struct) else []
    while pending:
        node = pending.pop()
        has_error_code, list_fields = _shape(type(node))
        if has_error_code and node.error_code:
            found.add(node.error_code)
        for name in list_fields:
            value = getattr(node, name)
            if value and isinstance(value[0], Struct):
                pending.extend(value)
    return found


_SHAPES: dict[type, tuple[bool, tuple[str, ...]]] = {}


def _shape(cls: type) -> tuple[bool, tuple[str, ...]]:
    """Whether a generated message class has an ``error_code`` and which of its fields are
    lists (of structs or of plain values: which, a value tells), found once per class."""
    shape = _SHAPES.get(cls)
    if shape is None:
        blank = cls()
        lists = tuple(name for name in cls.__slots__
                      if name != "unknown_tagged_fields" and isinstance(getattr(blank, name, None), list))
        shape = _SHAPES[cls] = ("error_code" in cls.__slots__, lists)
    return shape


def _request_topics(body, topic_name_of) -> dict[str, list[int]] | None:
    """The topics a request names (by name; a topic id the broker does not know as its text),
    each with the partitions it names, sorted; None for a request that names none."""
    if type(body) is ProduceRequest:
        topics = _produce_topics(body, topic_name_of)
    else:
        topics = named_request_targets(body, topic_name_of).topics
    if not topics:
        return None
    return {str(topic): sorted(partitions) for topic, partitions in topics.items()}


# Produce is the request a busy client sends thousands of times a second: its topics and error
# codes are read directly, not by the walk over any message's fields that the other requests
# take (tests/broker/test_activity.py checks that both give the same answer).

def _produce_topics(body: ProduceRequest, topic_name_of) -> dict:
    """``named_request_targets(body, topic_name_of).topics`` of a produce request."""
    topics: dict = {}
    for topic_data in body.topic_data:
        topic = topic_data.name
        if not topic:
            topic_id = topic_data.topic_id
            if topic_id is None or not topic_id.int:
                continue  # names no topic: its partitions belong to none
            topic = topic_name_of(topic_id) or topic_id
        partitions = topics.get(topic)
        if partitions is None:
            partitions = topics[topic] = set()
        for data in topic_data.partition_data:
            partitions.add(data.index)
    return topics


def _produce_error_codes(response: ProduceResponse) -> set[int]:
    """``_error_codes`` of a produce response: only its partitions carry an error code."""
    found = set()
    for topic_response in response.responses:
        for answer in topic_response.partition_responses:
            if answer.error_code:
                found.add(answer.error_code)
    return found
