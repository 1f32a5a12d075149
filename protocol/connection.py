"""The sans-I/O connection codec: bytes in, whole requests out; responses in, bytes out.

One :class:`ServerConnection` per TCP connection on the broker side, one
:class:`ClientConnection` per connection on the client side (tests and tools). Neither touches a
socket: the caller feeds received bytes with ``receive_data`` and pulls whole messages with
``next_request`` / ``next_response``; encoding returns the bytes to write.

Framing (Kafka's ``NetworkReceive``): every request and response is a big-endian int32 size
followed by that many bytes. The size is checked the moment its four bytes are known: negative
raises :class:`DecodeError`, above ``max_frame_size`` (Kafka's ``socket.request.max.bytes``)
raises :class:`FrameTooLarge`; both before anything is allocated for the frame.

What Kafka does with a frame it cannot serve, and what we mirror (``SocketServer.
processCompletedReceives``, ``RequestHeader.parse``, ``RequestContext.parseRequest``,
``ApiKeys.isVersionEnabled`` in Kafka 3.9/4.0):

=============================================  =========================================  ==========
input                                          exception (``error_code``)                 Kafka
=============================================  =========================================  ==========
size prefix < 0                                DecodeError (INVALID_REQUEST)              closes
size prefix > max_frame_size                   FrameTooLarge (INVALID_REQUEST)            closes
header truncated / bad                         DecodeError (INVALID_REQUEST)              closes
API key no schema defines, or not served       UnknownApiKey (INVALID_REQUEST)            closes
ApiVersions at a version outside its range     UnsupportedVersion (UNSUPPORTED_VERSION),  answers
                                               ``.request`` to answer at v0
other API at a version it does not serve       UnsupportedVersion (UNSUPPORTED_VERSION)   closes
body that does not decode                      DecodeError (INVALID_REQUEST), ``.header`` closes
bytes left after the body inside the frame     ignored, as Kafka does                     --
=============================================  =========================================  ==========

The ApiVersions answer Kafka gives then (``ApiVersionsRequest.getErrorResponse``): an
ApiVersionsResponse v0 with ``error_code`` UNSUPPORTED_VERSION and ``api_keys`` holding one entry,
ApiVersions' own version range, so the client can retry at a version we speak; encode it with
``encode_response(error.request, response)`` (``error.request.response_version`` is 0).

Every exception is a :class:`ProtocolError` whose ``closes_connection`` says which tier it is.
After one that closes, the connection object is dead: every later call raises the same error.
One that answers (the KIP-511 ApiVersions case) consumed its frame; the next request follows.
The exceptions carry ``api_key``, ``api_version`` and ``correlation_id`` when the frame had them,
and ``header`` (the decoded request header) when the header decoded.

The receive buffer (:class:`_FrameReader`, after h11's ``ReceiveBuffer``) keeps big received
chunks as the immutable ``bytes`` they came in and hands a frame out as a zero-copy slice of one
chunk when the frame lies within it, else joins the pieces once when the frame is complete;
small chunks are coalesced. So neither many small chunks nor one big frame in many chunks costs
more than linear time (no re-scanning, no repeated compaction), memory is what was fed (nothing
is allocated from a size prefix), and the records of a decoded request are memoryview slices of
the received bytes.
"""

from __future__ import annotations

import functools
import struct
import types
from collections import deque

from .errors import DecodeError, FrameTooLarge, ProtocolError, UnknownApiKey, UnsupportedVersion
from .messages import registry
from .messages.headers import RequestHeader, ResponseHeader

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "ClientConnection",
    "Request",
    "ServerConnection",
    "request_header_version",
    "response_header_version",
]

# Kafka's socket.request.max.bytes default (100 MiB).
DEFAULT_MAX_FRAME_SIZE = 104857600
# A client accepts any response a signed int32 size can describe, as Kafka's clients do.
CLIENT_MAX_FRAME_SIZE = 2**31 - 1

PRODUCE_KEY = 0
API_VERSIONS_KEY = 18

_INT32 = struct.Struct(">i")
_MERGE_LIMIT = 16384  # encode_response_parts merges the header into a first chunk up to this size
_API_KEY_AND_VERSION = struct.Struct(">hh")
_CORRELATION_ID_OFFSET = 4  # api_key int16, api_version int16, then correlation_id in every header version


# The header versions Kafka uses for (api_key, api_version), defined for any version number (a
# request at a version we do not speak must still have its header read; see KIP-511).
request_header_version = registry.request_header_version
response_header_version = registry.response_header_version


class Request:
    """One decoded request.

    ``header`` is the generated RequestHeader; ``api_key``, ``api_version``, ``correlation_id``
    and ``client_id`` are copied from it (a null client id reads as "", as in Kafka);
    ``body`` is the generated request message; ``frame_size`` the frame's size without its
    4-byte prefix. ``response_version`` is the version to encode the response at: the request's
    own, except for an ApiVersions request at an unsupported version, answered at v0 (KIP-511).
    """

    __slots__ = ("header", "api_key", "api_version", "correlation_id", "client_id", "body", "frame_size",
                 "response_version")

    def __init__(self, header, body, frame_size: int, response_version: int | None = None):
        self.header = header
        self.api_key = header.request_api_key
        self.api_version = header.request_api_version
        self.correlation_id = header.correlation_id
        self.client_id = header.client_id
        self.body = body
        self.frame_size = frame_size
        self.response_version = self.api_version if response_version is None else response_version

    def __repr__(self) -> str:
        return (f"Request(api_key={self.api_key}, api_version={self.api_version}, "
                f"correlation_id={self.correlation_id}, client_id={self.client_id!r}, "
                f"frame_size={self.frame_size}, body={self.body!r})")


class _FrameReader:
    """Splits a byte stream into size-prefixed frames, bounded.

    Owned by one connection object. Holds the unconsumed received bytes as a deque of chunks:
    big chunks as the immutable ``bytes`` they came in (a frame inside one is handed out as a
    zero-copy memoryview of it), small chunks coalesced into a bytearray so that a stream fed in
    tiny pieces costs neither per-piece memory overhead nor quadratic copying. ``next_frame``
    returns a frame's payload (bytes or memoryview) or None. The size prefix of the frame being
    assembled is checked as soon as its 4 bytes are there, so an oversized or negative size
    raises before any frame buffer exists.
    """

    __slots__ = ("max_frame_size", "_chunks", "_offset", "_buffered", "_frame_size")

    # Chunks below this size are copied into the coalescing bytearray...
    _SMALL_CHUNK = 4096
    # ...until it holds this much; then a new one starts (a consumed prefix of a coalescing
    # bytearray is kept until all of it is consumed, so this also bounds that waste).
    _COALESCE_LIMIT = 65536

    def __init__(self, max_frame_size: int):
        self.max_frame_size = max_frame_size
        self._chunks: deque = deque()  # bytes (immutable) or bytearray (coalesced small chunks)
        self._offset = 0  # bytes of _chunks[0] already consumed
        self._buffered = 0  # unconsumed bytes across all chunks
        self._frame_size = -1  # size of the frame being assembled, once its prefix was read

    @property
    def buffered(self) -> int:
        return self._buffered

    def feed(self, data) -> None:
        size = len(data)
        if not size:
            return
        chunks = self._chunks
        if size < self._SMALL_CHUNK:
            last = chunks[-1] if chunks else None
            if type(last) is bytearray and len(last) < self._COALESCE_LIMIT:
                last += data
            else:
                chunks.append(bytearray(data))
        else:
            # Keep an immutable copy (a no-op for bytes): the caller may reuse its buffer, and
            # frames handed out may be views of this chunk.
            chunks.append(data if type(data) is bytes else bytes(data))
        self._buffered += size
        self._read_size()

    def _read_size(self) -> None:
        if self._frame_size >= 0 or self._buffered < 4:
            return
        first = self._chunks[0]
        offset = self._offset
        if offset + 4 < len(first):  # fast path: the prefix lies inside the first chunk
            size = _INT32.unpack_from(first, offset)[0]
            self._offset = offset + 4
            self._buffered -= 4
        else:
            size = _INT32.unpack(self._take(4))[0]
        if size < 0:
            raise DecodeError(f"negative frame size {size}")
        if size > self.max_frame_size:
            raise FrameTooLarge(f"frame size {size} exceeds the maximum of {self.max_frame_size}")
        self._frame_size = size

    def next_frame(self):
        """The payload of the next whole frame, or None when more bytes are needed."""
        size = self._frame_size
        if size < 0:
            self._read_size()
            size = self._frame_size
            if size < 0:
                return None
        if self._buffered < size:
            return None
        payload = self._take(size)
        self._frame_size = -1
        # The following frame's prefix is checked on the next call (or feed), so that a bad one
        # never costs the whole frame before it.
        return payload

    def _take(self, count: int):
        """Consume and return ``count`` buffered bytes (count <= buffered)."""
        self._buffered -= count
        chunks = self._chunks
        if not count:
            return b""
        first = chunks[0]
        start = self._offset
        end = start + count
        if end <= len(first):
            if end == len(first):
                chunks.popleft()
                self._offset = 0
            else:
                self._offset = end
            if type(first) is bytes:
                return first if start == 0 and end == len(first) else memoryview(first)[start:end]
            return _copy(first, start, end)
        # The frame spans chunks: one join, when it is complete. The views die with this call,
        # before any bytearray chunk can be resized again.
        pieces = []
        remaining = count
        while remaining:
            chunk = chunks[0]
            start = self._offset
            available = len(chunk) - start
            if available <= remaining:
                pieces.append(memoryview(chunk)[start:] if start else chunk)
                chunks.popleft()
                self._offset = 0
                remaining -= available
            else:
                pieces.append(memoryview(chunk)[start:start + remaining])
                self._offset = start + remaining
                remaining = 0
        return b"".join(pieces)


def _copy(chunk, start: int, end: int) -> bytes:
    """bytes of chunk[start:end] with a single copy; releases its view at once so that a
    bytearray chunk stays resizable."""
    with memoryview(chunk) as view:
        return bytes(view[start:end])


def _context(error: ProtocolError, api_key, api_version, correlation_id, header=None) -> ProtocolError:
    error.api_key = api_key
    error.api_version = api_version
    error.correlation_id = correlation_id
    if header is not None:
        error.header = header
    return error


@functools.lru_cache(maxsize=16)
def _served_table(api_versions: tuple | None):
    """The served versions as a dict, and api_key -> (min_version, max_version, ApiInfo) for the
    served keys a schema defines. Cached: a broker creates every connection with the same table
    (read-only for the connections)."""
    if api_versions is None:
        api_versions = tuple((key, (info.min_version, info.max_version)) for key, info in registry.API_KEYS.items())
    versions = {key: (low, high) for key, (low, high) in api_versions}
    served = {key: (low, high, registry.API_KEYS[key]) for key, (low, high) in versions.items()
              if key in registry.API_KEYS}
    return types.MappingProxyType(versions), served


class ServerConnection:
    """The broker side of one connection (sans-I/O). Owned by the connection's protocol object.

    ``max_frame_size`` is Kafka's ``socket.request.max.bytes``. ``api_versions`` maps each API
    key the broker serves to its (min_version, max_version); requests for other keys or versions
    are refused as Kafka refuses them (see the module docstring). By default every API and
    version the generated schemas define is accepted. ``api_versions`` is read-only afterwards.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, api_versions: dict | None = None):
        self._reader = _FrameReader(max_frame_size)
        self.api_versions, self._served = _served_table(
            None if api_versions is None else tuple(sorted((key, (low, high)) for key, (low, high) in api_versions.items())))
        self._failure: ProtocolError | None = None

    @property
    def max_frame_size(self) -> int:
        return self._reader.max_frame_size

    @property
    def buffered_bytes(self) -> int:
        """Received bytes not yet returned as requests (for the server's flow control)."""
        return self._reader.buffered

    def receive_data(self, data) -> None:
        """Buffer received bytes; raises FrameTooLarge/DecodeError at once for a bad size prefix."""
        self._check_alive()
        try:
            self._reader.feed(data)
        except ProtocolError as error:
            self._failure = error
            raise

    def next_request(self) -> Request | None:
        """The next whole request, or None when more bytes are needed."""
        self._check_alive()
        try:
            payload = self._reader.next_frame()
            if payload is None:
                return None
            return self._decode_request(payload)
        except ProtocolError as error:
            if error.closes_connection:
                self._failure = error
            raise

    def next_raw_frame(self):
        """The payload of the next whole frame undecoded (bytes or memoryview), or None.

        For what is framed but is not a Kafka request: the SASL tokens a client sends after a
        SaslHandshake v0 (KIP-43, before SaslAuthenticate existed) are size-prefixed raw bytes.
        The frame-size limit applies as to requests.
        """
        self._check_alive()
        try:
            return self._reader.next_frame()
        except ProtocolError as error:
            self._failure = error
            raise

    def _check_alive(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _decode_request(self, payload) -> Request:
        size = len(payload)
        if size < 4:
            raise DecodeError(f"request header truncated: frame of {size} bytes")
        api_key, api_version = _API_KEY_AND_VERSION.unpack_from(payload, 0)
        correlation_id = _INT32.unpack_from(payload, _CORRELATION_ID_OFFSET)[0] if size >= 8 else None
        served = self._served.get(api_key)
        if served is None:
            raise _context(UnknownApiKey(f"unknown or unserved API key {api_key}"),
                           api_key, api_version, correlation_id)
        min_version, max_version, info = served
        try:
            header, position = RequestHeader.decode_from(payload, 0, request_header_version(api_key, api_version))
        except DecodeError as error:
            _context(error, api_key, api_version, correlation_id)
            raise
        if header.client_id is None:
            header.client_id = ""  # Kafka reads a null client id as ""
        if not min_version <= api_version <= max_version:
            if api_key == API_VERSIONS_KEY:
                # KIP-511: the body is not parsed; the broker answers v0 with UNSUPPORTED_VERSION
                # and the versions it speaks, so the client can retry at one of them.
                error = UnsupportedVersion(
                    f"ApiVersions v{api_version} is outside v{min_version}-v{max_version}; answer at v0",
                    closes_connection=False)
                error.request = Request(header, info.request_class(), size, response_version=0)
            else:
                error = UnsupportedVersion(f"{info.name} v{api_version} is outside v{min_version}-v{max_version}",
                                           closes_connection=True)
            raise _context(error, api_key, api_version, header.correlation_id, header)
        request_class = info.request_class
        try:
            body, _ = request_class.decode_from(payload, position, api_version)
        except DecodeError as error:
            _context(error, api_key, api_version, header.correlation_id, header)
            raise
        except (ValueError, IndexError, struct.error, OverflowError) as error:
            # The generated decoders promise DecodeError only; should anything else slip out,
            # Kafka's answer to any body that fails to parse is still to close. The original
            # stays as __cause__ (the fuzz tests check there is none).
            raise _context(DecodeError(f"request body does not decode: {error}"),
                           api_key, api_version, header.correlation_id, header) from error
        return Request(header, body, size)

    def encode_response(self, request: Request, response_msg) -> bytes:
        """The response frame: size prefix, response header, body at ``request.response_version``."""
        version = request.response_version
        out = bytearray(4)
        ResponseHeader(correlation_id=request.correlation_id).write(
            out, response_header_version(request.api_key, version))
        response_msg.write(out, version)
        _INT32.pack_into(out, 0, len(out) - 4)
        return bytes(out)

    def encode_response_parts(self, request: Request, response_msg) -> list:
        """As :meth:`encode_response`, as a list of bytes chunks and record-source objects (items
        that are not bytes-like stand for ``item.size`` bytes of records to send from a file)."""
        version = request.response_version
        head = bytearray(4)
        ResponseHeader(correlation_id=request.correlation_id).write(
            head, response_header_version(request.api_key, version))
        parts = response_msg.encode_parts(version)
        total = len(head) - 4
        for part in parts:
            total += part.size if not isinstance(part, (bytes, bytearray, memoryview)) else len(part)
        _INT32.pack_into(head, 0, total)
        first = parts[0] if parts else None
        if isinstance(first, (bytes, bytearray, memoryview)) and len(first) <= _MERGE_LIMIT:
            # One chunk instead of two for the common small response; a big first chunk (inline
            # records) is not copied just to save a write.
            return [bytes(head + first), *parts[1:]]
        return [bytes(head), *parts]


class ClientConnection:
    """The client side of one connection, for tests and tools (sans-I/O).

    Remembers the API key and version each correlation id was sent with, and requires responses
    in request order, as Kafka's clients do.
    """

    def __init__(self, max_frame_size: int = CLIENT_MAX_FRAME_SIZE):
        self._reader = _FrameReader(max_frame_size)
        self._in_flight: deque[tuple[int, int, int]] = deque()  # (correlation_id, api_key, api_version)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def encode_request(self, msg, version: int, correlation_id: int, client_id: str | None = "odradek-test") -> bytes:
        """The request frame for ``msg`` at ``version``; raises UnsupportedVersion if the message
        cannot be encoded at that version. A Produce with acks=0 expects no response (the
        broker sends none), as in Kafka's clients."""
        body = bytearray()
        msg.write(body, version)
        expects_response = not (msg.API_KEY == PRODUCE_KEY and msg.acks == 0)
        return self.encode_raw_request(msg.API_KEY, version, correlation_id, bytes(body), client_id,
                                       expects_response=expects_response)

    def encode_raw_request(self, api_key: int, api_version: int, correlation_id: int, body: bytes = b"",
                           client_id: str | None = "odradek-test", *, expects_response: bool = True) -> bytes:
        """A request frame with an already-encoded body, at any version (tests use it to send
        what a client we do not know would send, e.g. ApiVersions v99)."""
        out = bytearray(4)
        header_version = request_header_version(api_key, api_version)
        if header_version == 0:
            client_id = ""  # header v0 (ControlledShutdown v0) has no client id
        RequestHeader(request_api_key=api_key, request_api_version=api_version, correlation_id=correlation_id,
                      client_id=client_id).write(out, header_version)
        out += body
        _INT32.pack_into(out, 0, len(out) - 4)
        if expects_response:
            self._in_flight.append((correlation_id, api_key, api_version))
        return bytes(out)

    def receive_data(self, data) -> None:
        self._reader.feed(data)

    def next_response(self):
        """``(correlation_id, response_msg)`` for the next whole response, or None."""
        payload = self._reader.next_frame()
        if payload is None:
            return None
        if len(payload) < 4:
            raise DecodeError(f"response header truncated: frame of {len(payload)} bytes")
        correlation_id = _INT32.unpack_from(payload, 0)[0]
        if not self._in_flight:
            raise ProtocolError(f"response with correlation id {correlation_id} but no request in flight")
        expected, api_key, api_version = self._in_flight[0]
        if correlation_id != expected:
            raise ProtocolError(f"response correlation id {correlation_id}, expected {expected}")
        self._in_flight.popleft()
        response_class = registry.API_KEYS[api_key].response_class
        decode_version = api_version
        if api_key == API_VERSIONS_KEY and not (response_class.MIN_VERSION <= api_version <= response_class.MAX_VERSION):
            decode_version = 0  # the broker answers an ApiVersions version it lacks at v0 (KIP-511)
        _, position = ResponseHeader.decode_from(payload, 0, response_header_version(api_key, decode_version))
        try:
            msg, _ = response_class.decode_from(payload, position, decode_version)
        except DecodeError:
            if api_key != API_VERSIONS_KEY or decode_version == 0:
                raise
            # As Kafka's ApiVersionsResponse.parse: a broker older than our request answers v0.
            msg, _ = response_class.decode_from(payload, position, 0)
        return correlation_id, msg
