"""The control API's HTTP parser (broker/control/http.py): any bytes end in a request, a wait
for more, or an HttpError with a status to answer — never another exception and never an
unbounded buffer; well-formed requests parse the same however they are split."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odradek.broker.control.http import MAX_BODY_BYTES, MAX_HEAD_BYTES, HttpError, RequestParser, response_bytes


def request_bytes(method: str, path: str, body: bytes = b"", headers: dict | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def feed(data: bytes, cuts: list[int]):
    parser = RequestParser()
    requests = []
    start = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        parser.receive(data[start:cut])
        start = cut
        while (request := parser.next_request()) is not None:
            requests.append(request)
    return requests


@given(st.binary(max_size=4096), st.lists(st.integers(0, 4096), max_size=8))
@settings(max_examples=400)
def test_any_bytes_parse_or_raise_http_error(data, cuts):
    try:
        feed(data, [cut for cut in cuts if cut <= len(data)])
    except HttpError as error:
        assert 400 <= error.status < 500


names = st.text(st.sampled_from("abcxyz0189-_."), min_size=1, max_size=12)


@given(method=st.sampled_from(["GET", "POST", "DELETE"]), segments=st.lists(names, min_size=1, max_size=4),
       query=st.dictionaries(names, names, max_size=3), document=st.dictionaries(names, st.integers(), max_size=4),
       count=st.integers(1, 3), cuts=st.lists(st.integers(0, 2000), max_size=10))
def test_pipelined_requests_parse_the_same_however_split(method, segments, query, document, count, cuts):
    path = "/" + "/".join(segments)
    target = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    body = json.dumps(document).encode() if document else b""
    data = request_bytes(method, target, body) * count
    requests = feed(data, [cut for cut in cuts if cut <= len(data)])
    assert len(requests) == count
    for request in requests:
        assert (request.method, request.path, request.query, request.body) == (method, path, query, body)
        assert request.keep_alive
        assert request.json == (document or None)


def test_percent_escapes_and_connection_close():
    [request] = feed(b"GET /v1/faults/f%201?x=a%20b HTTP/1.1\r\nConnection: close\r\n\r\n", [])
    assert request.path == "/v1/faults/f%201" and request.query == {"x": "a b"} and not request.keep_alive
    [old] = feed(b"GET / HTTP/1.0\r\n\r\n", [])
    assert not old.keep_alive


@pytest.mark.parametrize("data, status", [
    (b"GET / HTTP/2.0\r\n\r\n", 400),
    (b"GET /\r\n\r\n", 400),
    (b"GET http://x/ HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
    (b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1), 413),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * (MAX_HEAD_BYTES + 1), 431),  # no end of head yet: refused already
    (b"G\xc3\xa9T / HTTP/1.1\r\n\r\n", 400),
])
def test_malformed_requests_get_their_status(data, status):
    with pytest.raises(HttpError) as raised:
        feed(data, [])
    assert raised.value.status == status


def test_a_body_that_is_not_json_is_a_400():
    [request] = feed(request_bytes("POST", "/v1/faults", b"{nope"), [])
    with pytest.raises(HttpError) as raised:
        _ = request.json
    assert raised.value.status == 400


def test_response_bytes():
    assert response_bytes(204, None) == b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
    head, body = response_bytes(404, {"error": "x"}, keep_alive=False).split(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 Not Found\r\n") and b"Connection: close" in head
    assert json.loads(body) == {"error": "x"}
