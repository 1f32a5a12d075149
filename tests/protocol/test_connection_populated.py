"""Populated requests and responses (hypothesis strategies of test_messages_strategies, every
field a version carries, unknown tagged fields included) through both sides of the connection:
fed whole, in random chunks, and followed by the start of the next frame; and the same frames
mutated, for the fuzz invariant (requests out or a ProtocolError, nothing else)."""

import os
import struct

from hypothesis import given, settings, strategies as st

from odradek.protocol.connection import ClientConnection, ServerConnection
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages import registry
from test_messages_strategies import message_strategy

KEYS = sorted(registry.API_KEYS)
# Populated messages are big to generate; the CI profile's 100 examples would take ~10 s here.
EXAMPLES = settings(max_examples=2000 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 40)


@st.composite
def api_and_version(draw):
    info = registry.API_KEYS[draw(st.sampled_from(KEYS))]
    return info, draw(st.integers(info.min_version, info.max_version))


def chunked(data: bytes, cuts):
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)])]


@EXAMPLES
@given(st.data())
def test_populated_requests_whole_chunked_and_with_trailing_bytes(data):
    client = ClientConnection()
    frames = []
    for correlation_id in range(data.draw(st.integers(1, 3), label="requests")):
        info, version = data.draw(api_and_version())
        msg = data.draw(message_strategy(info.request_class, version), label=f"{info.name} v{version}")
        frames.append((info, version, correlation_id, msg, client.encode_request(msg, version, correlation_id)))
    stream = b"".join(frame for *_, frame in frames)
    cuts = data.draw(st.lists(st.integers(min_value=0), max_size=12), label="cuts")
    for chunks in ([stream], chunked(stream, cuts), [stream + frames[0][4][:6]]):
        server = ServerConnection()
        received = []
        for chunk in chunks:
            server.receive_data(chunk)
            while (request := server.next_request()) is not None:
                received.append(request)
        assert len(received) == len(frames)
        for request, (info, version, correlation_id, msg, frame) in zip(received, frames):
            assert (request.api_key, request.api_version, request.correlation_id) == (
                info.api_key, version, correlation_id)
            assert request.frame_size == len(frame) - 4
            # The body the server decoded is what the codec alone makes of the same bytes.
            header_end = len(frame) - len(msg.encode(version))
            assert request.body == info.request_class.decode(frame[header_end:], version)


@EXAMPLES
@given(st.data())
def test_populated_responses_through_both_sides(data):
    client = ClientConnection()
    server = ServerConnection()
    sent = []
    for correlation_id in range(data.draw(st.integers(1, 3), label="responses")):
        info, version = data.draw(api_and_version())
        # Raw, so that even a default Produce (acks=0, which gets no response) expects one here.
        server.receive_data(client.encode_raw_request(info.api_key, version, correlation_id,
                                                      info.request_class().encode(version)))
        request = server.next_request()
        response = data.draw(message_strategy(info.response_class, version), label=f"{info.name} v{version}")
        frame = server.encode_response(request, response)
        assert b"".join(server.encode_response_parts(request, response)) == frame
        sent.append((correlation_id, info, version, response, frame))
    stream = b"".join(frame for *_, frame in sent)
    for chunk in chunked(stream, data.draw(st.lists(st.integers(min_value=0), max_size=12), label="cuts")):
        client.receive_data(chunk)
    for correlation_id, info, version, response, _ in sent:
        got_id, got = client.next_response()
        assert got_id == correlation_id
        assert got == info.response_class.decode(response.encode(version), version)
    assert client.next_response() is None


@EXAMPLES
@given(st.data())
def test_mutated_populated_requests_raise_only_protocol_errors(data):
    info, version = data.draw(api_and_version())
    msg = data.draw(message_strategy(info.request_class, version))
    frame = bytearray(ClientConnection().encode_request(msg, version, 1))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(4, len(frame) - 1)) if len(frame) > 4 else 4
        action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip" and position < len(frame):
            frame[position] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "delete":
            del frame[position:position + data.draw(st.integers(1, 6))]
        else:
            frame[position:position] = data.draw(st.sampled_from([b"\xff", b"\x80\x80", b"\x00", b"\x7f\xff\xff\xff"]))
    struct.pack_into(">i", frame, 0, len(frame) - 4)  # damage the header and body, not the framing
    server = ServerConnection(max_frame_size=1 << 16)
    server.receive_data(bytes(frame))
    try:
        request = server.next_request()
    except ProtocolError as error:
        assert isinstance(error.error_code, int)
    else:
        assert request is not None and request.frame_size == len(frame) - 4
