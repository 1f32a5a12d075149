"""A small sans-I/O HTTP/1.1 server side: requests parsed from bytes, responses written to bytes.

Only what the control API needs: a request line, headers, a body sized by Content-Length
(chunked request bodies are refused with 411, as a server that requires a length may), and
keep-alive. Bounds keep a peer from holding memory: the request line and headers together at
most :data:`MAX_HEAD_BYTES` (431 past it), a body at most :data:`MAX_BODY_BYTES` (413).
Malformed input raises :class:`HttpError` with the status to answer before closing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 411: "Length Required", 413: "Content Too Large",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class HttpError(Exception):
    """A request answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    method: str
    path: str  # as sent (percent-encoded), without the query: the router decodes each segment
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body: bytes
    keep_alive: bool
    params: dict[str, str] = field(default_factory=dict)  # filled by the router from the path

    def int_query(self, name: str, default: int) -> int:
        """Query parameter ``name`` as a whole number (``default`` when absent); HttpError 400
        when it is not one."""
        text = self.query.get(name)
        if text is None:
            return default
        if not text.isdigit() or not text.isascii():
            raise HttpError(400, f"{name} must be a whole number, not {text[:30]!r}")
        return int(text)

    @property
    def json(self):
        """The body parsed as JSON (None for an empty body); HttpError 400 when it is not JSON."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise HttpError(400, f"the body is not JSON: {error}") from None


class RequestParser:
    """Feed bytes with :meth:`receive`; :meth:`next_request` returns each whole request in turn."""

    def __init__(self):
        self._buffer = bytearray()

    def receive(self, data: bytes) -> None:
        self._buffer += data

    def next_request(self) -> Request | None:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise HttpError(431, "the request line and headers are too large")
            return None
        if end > MAX_HEAD_BYTES:
            raise HttpError(431, "the request line and headers are too large")
        method, target, version, headers = _parse_head(bytes(buffer[:end]))
        if "transfer-encoding" in headers:
            raise HttpError(411, "give the body's length in Content-Length (chunked bodies are not read)")
        length_text = headers.get("content-length", "0").strip()
        if not length_text.isdigit() or not length_text.isascii():
            raise HttpError(400, f"Content-Length {length_text!r} is not a number")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise HttpError(413, f"the body is over {MAX_BODY_BYTES} bytes")
        start = end + 4
        if len(buffer) < start + length:
            return None
        body = bytes(buffer[start:start + length])
        del buffer[:start + length]
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        path, query = _split_target(target)
        return Request(method, path, query, headers, body, keep_alive)


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise HttpError(400, "the request line and headers must be ASCII") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not set(parts[0]) <= _TOKEN_CHARS or not parts[1]:
        raise HttpError(400, f"malformed request line {lines[0][:100]!r}")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(400, f"unsupported HTTP version {version[:20]!r}")
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or not set(name) <= _TOKEN_CHARS:
            raise HttpError(400, f"malformed header line {line[:100]!r}")
        headers[name.lower()] = value.strip(" \t")
    return method, target, version, headers


def _split_target(target: str) -> tuple[str, dict[str, str]]:
    if not target.startswith("/"):
        raise HttpError(400, "the request target must be a path")
    parts = urlsplit(target)
    return parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))


def response_bytes(status: int, document=None, *, keep_alive: bool = True) -> bytes:
    """A whole response: ``document`` as JSON (none for 204)."""
    body = b"" if status == 204 else (json.dumps(document, separators=(",", ":")) + "\n").encode()
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}", f"Content-Length: {len(body)}"]
    if body:
        head.append("Content-Type: application/json")
    if not keep_alive:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body
