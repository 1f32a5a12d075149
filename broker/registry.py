"""The handler registry: which APIs and versions this broker serves, and who serves them.

It is the ONLY source of the ApiVersions answer and of the version ranges the connection codec
accepts: an API that is not registered is not advertised, and the codec refuses it as Kafka
refuses an API it does not know (the connection closes). Registering an API key twice is an
error, so two modules cannot silently fight over one API.

An entry registered with ``advertised=False`` is served (the codec accepts it and its handler
answers) but left out of ApiVersions: Kafka does this with the client telemetry APIs when no
metrics plugin receives them, so clients do not send them unasked, yet answers a client that
sends them anyway.

Every API registered has the answer Kafka gives when its handler fails (Kafka's
``getErrorResponse``, ``odradek.broker.error_responses``); registering one without it is an
error, so a new API cannot leave a failure to a dropped connection.

A handler is a function ``handler(ctx, request) -> response``: ``ctx`` is the
:class:`~odradek.broker.context.RequestContext` (the broker state it may use, the request
header, the version), ``request`` the decoded request message, and the result a generated
response message. A handler that has to wait (a fetch long poll) is an ``async def``; the
server awaits it while still answering in request order. A handler whose answer waits only for
a callback of the loop (a produce with acks=all, for the sync of its records) returns a
:class:`LaterResponse` instead and finishes it from that callback.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable

from . import advertised_versions, error_responses


class _CloseConnection:
    """What a handler returns instead of a response to close the connection once the responses
    before it were sent (Kafka's ``closeConnection``: an acks=0 produce that failed, so that the
    client, which expects no answer, notices and refreshes its metadata)."""

    def __repr__(self) -> str:
        return "CLOSE_CONNECTION"


CLOSE_CONNECTION = _CloseConnection()


class LaterResponse:
    """What a handler returns when its state changes are done and its response waits for a
    callback on the loop (an acks=all produce, for its group commit): the handler, from that
    callback, calls :meth:`finish` with the response, and the server sends it right then, in
    request order. An ``async def`` would cost a Task and three more passes of the loop before
    the response went out, time a producer's requests in flight spend waiting."""

    __slots__ = ("_response", "_send")

    def __init__(self):
        self._response = None
        self._send: Callable | None = None

    def finish(self, response) -> None:
        """The response is ready (call once)."""
        if self._send is None:  # finished before the server took it
            self._response = response
        else:
            self._send(response)

    def when_finished(self, send: Callable) -> None:
        """The server's side: ``send(response)`` once the handler finishes."""
        if self._response is not None:
            send(self._response)
        else:
            self._send = send

    def __await__(self):
        """The response, for a handler that hands its answer on from a coroutine (a produce
        appended after its transaction's coordinator write)."""
        future = asyncio.get_running_loop().create_future()
        self.when_finished(future.set_result)
        return future.__await__()


class DuplicateHandler(ValueError):
    """An API key registered twice."""


@dataclass(frozen=True)
class HandlerEntry:
    api_key: int
    name: str
    min_version: int
    max_version: int
    handler: Callable
    request_class: type
    response_class: type
    advertised: bool = True


class HandlerRegistry:
    """API key -> handler entry. Filled at import of ``odradek.broker.handlers``; read-only after."""

    def __init__(self) -> None:
        self._entries: dict[int, HandlerEntry] = {}
        self._ranges: dict[str | None, dict[int, tuple[int, int]]] = {}  # version_ranges' answers

    def register(self, request_class: type, response_class: type, handler: Callable,
                 min_version: int | None = None, max_version: int | None = None, *,
                 advertised: bool = True) -> HandlerEntry:
        api_key = request_class.API_KEY
        if api_key in self._entries:
            raise DuplicateHandler(f"API key {api_key} ({request_class.__name__}) is already registered "
                                   f"by {self._entries[api_key].handler.__module__}")
        low = request_class.MIN_VERSION if min_version is None else min_version
        high = request_class.MAX_VERSION if max_version is None else max_version
        if not request_class.MIN_VERSION <= low <= high <= request_class.MAX_VERSION:
            raise ValueError(f"{request_class.__name__}: versions {low}-{high} outside the schema's "
                             f"{request_class.MIN_VERSION}-{request_class.MAX_VERSION}")
        if api_key not in error_responses.BUILDERS:
            raise ValueError(f"{request_class.__name__}: no error response in odradek.broker.error_responses")
        name = request_class.__name__.removesuffix("Request")
        entry = HandlerEntry(api_key, name, low, high, handler, request_class, response_class, advertised)
        self._entries[api_key] = entry
        self._ranges.clear()
        return entry

    def handles(self, request_class: type, response_class: type, *, min_version: int | None = None,
                max_version: int | None = None, advertised: bool = True) -> Callable[[Callable], Callable]:
        """Decorator form of :meth:`register`."""
        def decorate(handler: Callable) -> Callable:
            self.register(request_class, response_class, handler, min_version, max_version, advertised=advertised)
            return handler
        return decorate

    def get(self, api_key: int) -> HandlerEntry | None:
        return self._entries.get(api_key)

    def __contains__(self, api_key: int) -> bool:
        return api_key in self._entries

    def __iter__(self):
        return iter(sorted(self._entries.values(), key=lambda entry: entry.api_key))

    def __len__(self) -> int:
        return len(self._entries)

    def advertised(self):
        """The entries ApiVersions lists, by API key."""
        return [entry for entry in self if entry.advertised]

    def version_ranges(self, release: str | None = None) -> dict[int, tuple[int, int]]:
        """api_key -> (min_version, max_version): what the connection codec accepts and
        ApiVersions lists; with a Kafka release (``odradek.advertise.kafka.version``), only the
        APIs and versions that release had too (odradek.broker.advertised_versions). Read-only."""
        if release not in self._ranges:
            served = {key: (entry.min_version, entry.max_version) for key, entry in self._entries.items()}
            self._ranges[release] = advertised_versions.restrict(served, release)
        return self._ranges[release]
