"""The asyncio server: one :class:`KafkaProtocol` per TCP connection over the sans-I/O codec.

How a connection works
----------------------
``data_received`` feeds the bytes to the connection's
:class:`~odradek.protocol.connection.ServerConnection` and pulls whole requests out of it. Each
request is dispatched at once, in arrival order: the handler runs there and then and returns
either the response or, when it must wait (produce waiting for acks, fetch long polls), an
awaitable that becomes a task. Either
way the request takes its place in the connection's queue of pending responses, and responses
leave strictly in that order: a response that is ready waits behind an earlier one that is not.
Because dispatch happens in arrival order and handlers do their state changes before they
return, pipelined requests also take effect in order (two produces on one connection
append in the order they were sent).

Flow control
------------
A connection stops being read (``transport.pause_reading``) while it has more than
``queued.max.requests`` requests pending or more than ``queued.max.request.bytes`` of request
bytes buffered or pending, and resumes when both drop below half of that. When the socket
cannot take more (``pause_writing``), output stops (record data is read from the segment files
chunk by chunk, only as the socket takes it), ready responses stay queued, the queue fills, and
reading stops: a slow or hostile peer holds at most one bounded queue, never the broker's memory, and
other connections keep being served.

Errors
------
A :class:`~odradek.protocol.errors.ProtocolError` whose ``closes_connection`` is true (bad frame,
frame over ``socket.request.max.bytes``, unknown API, unparsable body) closes that connection
only, after the responses to requests already dispatched were sent. (The codec checks a size
prefix the moment it arrives, so complete requests that arrived in the same chunk as a bad
prefix are not answered.) The KIP-511 case (ApiVersions at a
version we do not speak) is answered.

A handler that raises is answered as Kafka answers it (``KafkaApis.handle`` ->
``sendErrorOrCloseConnection``): the exception is logged with its traceback (a bug or a fault
worth seeing), mapped to an error code (:func:`~odradek.broker.error_responses.error_answer`:
the code an exception carries, KAFKA_STORAGE_ERROR for an OSError such as running out of file
descriptors, UNKNOWN_SERVER_ERROR for anything else) and the request gets the error response
its API defines (``odradek.broker.error_responses``: the code at the top level and/or in every
result mirroring the request's topics, partitions, resources or groups); the connection stays
open. It closes only where Kafka's answer is none (an acks=0 produce: the client reads no
response, so a closed connection is how it learns) or the error response itself cannot be built
or encoded. A response the encoder refuses (a handler's bug) is answered the same way.

Idle connections (no request for ``connections.max.idle.ms`` and nothing pending) are closed
by one sweeper task for the whole server.

Ownership: all of this runs on the broker's event loop; nothing here is thread-safe or needs
to be.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections import deque

import structlog

from odradek.protocol.connection import ServerConnection
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages._runtime import Message

from . import advertised_versions, faults
from .activity import Activity
from .context import RequestContext
from .error_responses import ErrorAnswer, error_answer, error_response
from .records_source import RegionReader
from .registry import CLOSE_CONNECTION, LaterResponse

log = structlog.get_logger("odradek.server")

_BYTES_LIKE = (bytes, bytearray, memoryview)
# Record data goes from the segment file to the socket in chunks of this size (read with
# preadv into a fresh buffer, handed to the transport). benchmarks/fetch_send.py over loopback
# on this machine: this path 2.60 GB/s against 2.08 for os.sendfile with the kernel's default
# send buffer, 2.08 against 2.15 with socket.send.buffer.bytes' 102400 (docs/performance.md);
# a Java consumer reading from odradek is the limit either way (~370 MiB/s), and uvloop has no
# loop.sendfile. Chunking bounds the memory a large fetch response holds to about one chunk
# plus the transport's write buffer.
SEND_CHUNK_SIZE = 1 << 20


class _Pending:
    """One request waiting for (or holding) its response, in the connection's queue."""

    __slots__ = ("request", "response", "done", "task", "cost", "arrived", "api_name", "faulted", "throttle_ms")

    def __init__(self, request, cost: int):
        self.request = request
        self.response = None
        self.done = False
        self.task: asyncio.Task | None = None
        self.cost = cost
        self.arrived = time.monotonic()
        self.api_name = "?"
        self.faulted = False  # a scripted fault (broker/faults.py) applied to it already
        self.throttle_ms = 0  # a throttle fault's: put in the response, then the connection muted


class KafkaProtocol(asyncio.Protocol):
    """One client connection. Created by the server for each accepted socket."""

    def __init__(self, server: "BrokerServer", listener_name: str):
        self.server = server
        self.broker = server.broker
        self.listener_name = listener_name
        config = self.broker.config
        self.connection = ServerConnection(
            max_frame_size=config["socket.request.max.bytes"],
            # The registry's ranges, cut down to an older release's with
            # odradek.advertise.kafka.version (computed once, then cached by the registry).
            api_versions=server.registry.version_ranges(config[advertised_versions.CONFIG_KEY]),
        )
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._request_log = log
        self._pending: deque[_Pending] = deque()
        self._pending_bytes = 0
        self._output: deque = deque()  # response bytes and RegionReaders not yet written
        self._max_requests = config["queued.max.requests"]
        self._max_bytes = config.queued_max_request_bytes
        self._reading_paused = False
        self._writing_paused = False
        self._send_scheduled = False  # _send_ready is due in the next pass (see _finished_later)
        self._closing = False
        self._draining = False  # shutdown: no new requests, finish the pending ones
        self._in_read_loop = False
        # Scripted faults (broker/faults.py): requests read but not handled yet, behind a delayed
        # one (always the tail of _pending); reading stopped by a throttle; input thrown away
        # after a request that is never answered.
        self._held: deque[_Pending] = deque()
        self._muted = False
        self._discarding = False
        self.last_activity = time.monotonic()
        self.requests_served = 0
        self.client = None  # this connection's record in the server's activity (broker/activity.py)

    # --- asyncio callbacks ---

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        # Bound once: a call on the module's lazy logger binds anew each time (some 5 us, on every
        # request), a bound one filters a debug line out in a fraction of that.
        self._request_log = log.bind(peer=self.peer)
        self.server.connections.add(self)
        self.client = self.server.activity.connection_opened(self.peer, self.listener_name)
        log.info("connection opened", peer=self.peer, listener=self.listener_name)

    def connection_lost(self, exc) -> None:
        self._closing = True
        self.server.connections.discard(self)
        self._held.clear()
        for entry in self._pending:
            if entry.task is not None and not entry.task.done():
                entry.task.cancel()
        self._pending.clear()
        if self.client is not None:
            self.server.activity.connection_closed(self.client)
        log.info("connection closed", peer=self.peer, requests=self.requests_served,
                 error=str(exc) if exc else None)
        self.server.connection_closed()

    def data_received(self, data) -> None:
        if self._closing or self._discarding:
            return
        self.last_activity = time.monotonic()
        try:
            self.connection.receive_data(data)
        except ProtocolError as error:
            self._protocol_error(error)
            return
        self._read_requests()

    def eof_received(self):
        # The client half-closed: answer what is pending, then close (returning False closes
        # the transport once the write buffer drains; pending responses would be lost, so keep
        # it open while work remains).
        if (self._pending or self._output) and not self._discarding:
            self._draining = True
            return True
        return False

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._send_ready()

    # --- requests in ---

    def _over_limit(self) -> bool:
        return (len(self._pending) >= self._max_requests
                or self._pending_bytes + self.connection.buffered_bytes >= self._max_bytes)

    def _read_requests(self) -> None:
        if self._in_read_loop:
            return  # re-entered from a response sent by a request this loop dispatched
        self._in_read_loop = True
        try:
            self._read_requests_loop()
        finally:
            self._in_read_loop = False

    def _read_requests_loop(self) -> None:
        while not self._closing and not self._draining and not self._muted:
            if self._over_limit():
                self._pause_reading()
                return
            try:
                request = self.connection.next_request()
            except ProtocolError as error:
                if error.closes_connection or getattr(error, "request", None) is None:
                    self._protocol_error(error)
                    return
                request = error.request  # answered (KIP-511 ApiVersions)
            if request is None:
                break
            self._dispatch(request)
        if not self._over_limit():
            self._resume_reading()

    def _dispatch(self, request) -> None:
        entry = _Pending(request, request.frame_size)
        self._pending.append(entry)
        self._pending_bytes += entry.cost
        handler = self.server.registry.get(request.api_key)
        entry.api_name = handler.name
        # Kafka's request logger at DEBUG: which client sent what at which version (the versions
        # a client negotiated, e.g. against odradek.advertise.kafka.version).
        self._request_log.debug("request", client_id=request.client_id, api=handler.name,
                                api_key=request.api_key, api_version=request.api_version)
        if self._held:  # behind a delayed request: Kafka handles a connection's requests one at a time
            self._held.append(entry)
            return
        self._handle(entry, handler)

    def _handle(self, entry: _Pending, handler) -> None:
        request = entry.request
        if self.broker.faults.active and not entry.faulted and self._inject_fault(entry):
            return
        ctx = RequestContext(self.broker, request.api_key, request.api_version, request.correlation_id,
                             request.client_id, self.listener_name, self.peer)
        try:
            result = handler.handler(ctx, request.body)
        except Exception as error:  # a bug or a fault (disk, descriptors): answered with its code
            self._handler_failed(entry, error)
            return
        # A response message (most requests) is told apart first: inspect.isawaitable's check
        # against the Awaitable ABC costs more than the rest of this method.
        if not isinstance(result, Message):
            if isinstance(result, LaterResponse):  # finished from a loop callback (acks=all)
                result.when_finished(lambda response, entry=entry: self._finished_later(entry, response))
                return
            if inspect.isawaitable(result):
                # The handler did its state changes already; what remains is waiting (a long
                # poll). Later requests are dispatched meanwhile; responses keep their order.
                entry.task = asyncio.ensure_future(result)
                entry.task.add_done_callback(lambda task, entry=entry: self._task_done(entry, task))
                return
        entry.response = result
        entry.done = True
        self._send_ready()

    def _inject_fault(self, entry: _Pending) -> bool:
        """Apply the scripted fault the request matches, if any (broker/faults.py has what each
        does and why). True when the fault took the request over: its handler does not run now."""
        request = entry.request
        broker = self.broker
        fault = broker.faults.match(request.api_key, request.client_id, request.body, broker.topic_name_of_id)
        if fault is None:
            return False
        entry.faulted = True
        action = fault.spec.action
        log.info("fault applied", peer=self.peer, fault=fault.id, action=action, api_key=request.api_key,
                 correlation_id=request.correlation_id)
        if action == faults.ERROR:
            response = error_response(request.body, request.response_version, ErrorAnswer(fault.spec.error, None),
                                      self.connection.api_versions[request.api_key])
            entry.response = CLOSE_CONNECTION if response is None else response  # an acks=0 produce
            entry.done = True
            self._send_ready()
        elif action == faults.DELAY:
            self._held.appendleft(entry)
            asyncio.get_running_loop().call_later(fault.spec.delay_ms / 1000, self._release_held)
        elif action == faults.NO_RESPONSE:
            # Never done, so nothing after it is answered; later input is read (to see the
            # client close) and thrown away.
            self._stop_handling()
            self._discarding = True
            if self._reading_paused and self.transport is not None:
                self._reading_paused = False
                self.transport.resume_reading()
        elif action == faults.CLOSE_BEFORE_RESPONSE:
            self._stop_handling()
            entry.response = CLOSE_CONNECTION
            entry.done = True
            self._send_ready()
        elif action == faults.CLOSE_AFTER_RESPONSE:
            self._stop_handling()  # the connection closes once this response is sent
            return False
        elif action == faults.THROTTLE:
            entry.throttle_ms = fault.spec.throttle_ms
            return False
        return True

    def _stop_handling(self) -> None:
        """Handle no request after the current one: read no more, drop those held, and close
        once the pending responses are sent."""
        self._draining = True
        self._pause_reading()
        while self._held:
            entry = self._held.pop()
            self._pending.remove(entry)
            self._pending_bytes -= entry.cost

    def _release_held(self) -> None:
        """A delay ended: handle the held requests in order, until one is delayed again."""
        held = self._held
        while held and not self._closing:
            entry = held.popleft()
            self._handle(entry, self.server.registry.get(entry.request.api_key))
            if held and held[0] is entry:
                return
        if not self._closing and not self._draining and self._reading_paused and not self._over_limit_half():
            self._read_requests()

    def _mute(self, throttle_ms: int) -> None:
        """Read nothing from this connection for ``throttle_ms`` (a throttled response was sent)."""
        self._muted = True
        self._pause_reading()

        def unmute() -> None:
            self._muted = False
            if not self._closing and not self._draining:
                self._read_requests()
        asyncio.get_running_loop().call_later(throttle_ms / 1000, unmute)

    def _task_done(self, entry: _Pending, task: asyncio.Task) -> None:
        if task.cancelled() or self._closing:
            return
        error = task.exception()
        if error is not None:
            self._handler_failed(entry, error)
            return
        self._finished(entry, task.result())

    def _finished(self, entry: _Pending, response) -> None:
        if self._closing:
            return
        entry.response = response
        entry.done = True
        self._send_ready()

    def _finished_later(self, entry: _Pending, response) -> None:
        """A response finished by a callback (a group commit's round ends): sent in the next
        pass of the loop with every other response finished in this one, in one write. A
        round answers several requests of a connection at once; a write per response wakes
        the client once per response, and on a machine whose cores the client keeps busy the
        woken client thread takes the core from the loop before the next response is written
        (measured: 200-300 us between the four answers of one round with 100 B records)."""
        if self._closing:
            return
        entry.response = response
        entry.done = True
        if not self._send_scheduled:
            self._send_scheduled = True
            asyncio.get_running_loop().call_soon(self._send_scheduled_responses)

    def _send_scheduled_responses(self) -> None:
        self._send_scheduled = False
        if not self._closing:
            self._send_ready()

    def _handler_failed(self, entry: _Pending, error: BaseException) -> None:
        """Answer ``entry``'s request with the error response Kafka gives for ``error`` (in
        its place in the queue), or close once the responses before it were sent where
        Kafka would."""
        entry.response = self._error_response(entry.request, error)
        entry.done = True
        self._send_ready()

    def _error_response(self, request, error: BaseException):
        """The error response for ``request`` failed with ``error`` (logged with its
        traceback), or CLOSE_CONNECTION where there is none."""
        answer = error_answer(error)
        log.error("handler failed", peer=self.peer, api_key=request.api_key, api_version=request.api_version,
                  correlation_id=request.correlation_id, error=repr(error), error_code=answer.code, exc_info=error)
        try:
            response = error_response(request.body, request.response_version, answer,
                                      self.connection.api_versions[request.api_key])
        except Exception as second:  # pragma: no cover - a bug in the error response itself
            log.error("building the error response failed", api_key=request.api_key, error=repr(second),
                      exc_info=second)
            return CLOSE_CONNECTION
        return CLOSE_CONNECTION if response is None else response

    # --- responses out ---

    def _send_ready(self) -> None:
        if not self._pump_output():
            return  # an earlier response is still being sent; resume_writing continues
        pending = self._pending
        while pending and pending[0].done and not self._writing_paused and not self._closing:
            if pending[0].response is CLOSE_CONNECTION and self._output and not self._pump_output():
                return  # the answers before the close first; resume_writing comes back here
            entry = pending.popleft()
            self._pending_bytes -= entry.cost
            self.requests_served += 1
            self.server.activity.request_answered(
                self.client, entry.request, entry.api_name, time.monotonic() - entry.arrived,
                None if entry.response is CLOSE_CONNECTION else entry.response)
            if entry.response is CLOSE_CONNECTION:
                log.info("closing connection as the handler asked", peer=self.peer, api_key=entry.request.api_key)
                self.close()
                return
            if entry.throttle_ms:
                faults.set_throttle_time(entry.response, entry.request.response_version, entry.throttle_ms)
                self._mute(entry.throttle_ms)
            if entry.response is not None:  # acks=0 produce: no response at all
                self._queue_response(entry.request, entry.response)
        # Every ready response in one write (one wake-up of the client, see _finished_later).
        if not self._pump_output():
            return  # the socket is full mid-response: resume_writing goes on
        if self._closing:
            return
        if self._draining:
            if not pending:
                self.close()
            return
        if self._reading_paused and not self._over_limit_half():
            self._read_requests()

    def _queue_response(self, request, response, *, is_error_response: bool = False) -> None:
        """Encode ``response`` into the output queue; :meth:`_send_ready` writes the queue."""
        try:
            parts = self.connection.encode_response_parts(request, response)
        except Exception as error:  # an encoder refusing a field this version cannot carry: a bug
            if is_error_response:
                log.error("encoding the error response failed", peer=self.peer, api_key=request.api_key,
                          error=repr(error), exc_info=error)
                self._pump_output()  # the answers queued before this one
                self.close()
                return
            answer = self._error_response(request, error)
            if answer is CLOSE_CONNECTION:
                self._pump_output()
                self.close()
            else:
                self._queue_response(request, answer, is_error_response=True)
            return
        output = self._output
        for part in parts:
            output.append(part if isinstance(part, _BYTES_LIKE) else RegionReader(part))

    def _pump_output(self) -> bool:
        """Write queued response bytes while the socket takes them; record data is read from
        the segment files one chunk at a time, only when it can be written. True when all
        queued output was handed to the transport."""
        output = self._output
        transport = self.transport
        while output and not self._writing_paused and not self._closing:
            part = output[0]
            if isinstance(part, _BYTES_LIKE):
                # Every response's bytes queued up to the next record data: one system call.
                parts = [output.popleft()]
                while output and isinstance(output[0], _BYTES_LIKE):
                    parts.append(output.popleft())
                if len(parts) == 1:
                    transport.write(parts[0])
                else:
                    transport.writelines(parts)
                continue
            try:
                chunk = part.next_chunk(SEND_CHUNK_SIZE)
            except OSError as error:  # a segment shrank under us: the frame cannot be completed
                log.error("reading record data for a response failed", peer=self.peer, error=repr(error))
                self.close()
                return False
            if part.done:
                output.popleft()
            transport.write(chunk)
        return not output

    # --- flow control ---

    def _over_limit_half(self) -> bool:
        return (len(self._pending) >= max(1, self._max_requests // 2)
                or self._pending_bytes + self.connection.buffered_bytes >= self._max_bytes // 2)

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if (self._reading_paused and self.transport is not None and not self._closing and not self._draining
                and not self._muted):
            self._reading_paused = False
            self.transport.resume_reading()

    # --- closing ---

    def _protocol_error(self, error: ProtocolError) -> None:
        log.warning("protocol error, closing connection", peer=self.peer, error=str(error),
                    error_type=type(error).__name__, api_key=error.api_key, api_version=error.api_version,
                    correlation_id=error.correlation_id)
        # Answer the requests already dispatched, then close.
        self._draining = True
        self._pause_reading()
        if self._pending or self._output:
            self._send_ready()
        else:
            self.close()

    def drain_and_close(self) -> None:
        """Shutdown: read no more requests, answer the pending ones, then close."""
        if self._closing:
            return
        self._draining = True
        self._pause_reading()
        if (not self._pending and not self._output) or self._discarding:  # discarding: never answered
            self.close()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now: nothing pending is answered, no waiting handler resumes
        (a reset replaces the broker state those would have touched)."""
        self._closing = True
        for entry in self._pending:
            if entry.task is not None and not entry.task.done():
                entry.task.cancel()
        if self.transport is not None:
            self.transport.abort()

    @property
    def idle(self) -> bool:
        return not self._pending and not self._output


class BrokerServer:
    """The listeners and the set of open connections; shutdown in Kafka's order: stop
    accepting, finish in-flight requests, then the caller flushes and closes the broker."""

    def __init__(self, broker, registry):
        self.broker = broker
        self.registry = registry
        self.connections: set[KafkaProtocol] = set()
        self.activity = Activity(self._topic_name_of)
        self._servers: list[asyncio.AbstractServer] = []
        self.bound: dict[str, tuple[str, int]] = {}  # listener name -> (host, real port)
        self._sweeper: asyncio.Task | None = None
        self._all_closed = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.broker.config
        for listener in config.client_listeners:
            host = listener.host or None
            if listener.port == 0 and host is not None:
                # A name with several addresses (localhost: 127.0.0.1 and ::1) would get a
                # different random port on each; bind the first address only.
                infos = await loop.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
                host = infos[0][4][0] if infos else host
            server = await loop.create_server(
                lambda name=listener.name: KafkaProtocol(self, name),
                host=host,
                port=listener.port,
                backlog=config["socket.listen.backlog.size"],
                reuse_address=True,
            )
            self._configure_sockets(server)
            self._servers.append(server)
            sockname = server.sockets[0].getsockname()
            self.bound[listener.name] = (sockname[0], sockname[1])
        self._sweeper = asyncio.ensure_future(self._sweep_idle())

    def _configure_sockets(self, server) -> None:
        config = self.broker.config
        for sock in server.sockets:
            for option, key in ((socket.SO_SNDBUF, "socket.send.buffer.bytes"),
                                (socket.SO_RCVBUF, "socket.receive.buffer.bytes")):
                if config[key] > 0:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, option, config[key])
                    except OSError:  # pragma: no cover - platform limits
                        pass

    async def _sweep_idle(self) -> None:
        idle_limit = self.broker.config["connections.max.idle.ms"] / 1000
        if idle_limit <= 0:
            return
        period = min(max(idle_limit / 4, 0.05), 30.0)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for connection in list(self.connections):
                if connection.idle and now - connection.last_activity > idle_limit:
                    log.info("closing idle connection", peer=connection.peer)
                    connection.close()

    def _topic_name_of(self, topic_id) -> str | None:
        return self.broker.topic_name_of_id(topic_id)  # the broker of now: a reset replaces it

    def abort_connections(self) -> int:
        """Drop every client connection (a reset); clients reconnect as after a broker restart.
        Returns how many there were."""
        connections = list(self.connections)
        for connection in connections:
            connection.abort()
        return len(connections)

    def connection_closed(self) -> None:
        if not self.connections:
            self._all_closed.set()

    async def shutdown(self, timeout: float = 10.0) -> None:
        for server in self._servers:
            server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.broker.begin_shutdown()  # wakes long polls so they answer now
        if self.connections:
            self._all_closed.clear()
            for connection in list(self.connections):
                connection.drain_and_close()
            try:
                await asyncio.wait_for(self._all_closed.wait(), timeout)
            except asyncio.TimeoutError:
                for connection in list(self.connections):
                    log.warning("connection still busy at shutdown, closing", peer=connection.peer)
                    if connection.transport is not None:
                        connection.transport.abort()
        for server in self._servers:
            await server.wait_closed()
