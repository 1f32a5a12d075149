"""Fuzzing the connection codec (h11's fuzz invariant): whatever bytes arrive, in whatever chunks,
the server either yields requests or raises a ProtocolError, nothing else; it never holds more
than it was fed, and every call returns (a frame is consumed or more bytes are awaited)."""

import struct

from hypothesis import given, strategies as st

from odradek.protocol.connection import ClientConnection, ServerConnection
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages import registry
from odradek.protocol.messages.metadata import MetadataRequest
from odradek.protocol.messages.produce import ProduceRequest

MAX_FRAME = 1 << 16


def _seed_frames():
    """Valid request frames to mutate: the default message of every (API, version) and a few
    populated ones (records, arrays, strings, nulls, flexible and not)."""
    client = ClientConnection()
    frames = []
    for _key, info in sorted(registry.API_KEYS.items()):
        for version in range(info.min_version, info.max_version + 1):
            frames.append(client.encode_request(info.request_class(), version, len(frames)))
    topic = ProduceRequest.TopicProduceData(name="t", partition_data=[
        ProduceRequest.TopicProduceData.PartitionProduceData(index=1, records=b"\x00" * 70)])
    for version in (3, 8, 9, 11):
        frames.append(client.encode_request(ProduceRequest(acks=1, timeout_ms=9, topic_data=[topic]), version, 1))
    for version in (1, 4, 9, 12):
        frames.append(client.encode_request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name="abc")]),
                                            version, 2))
    return frames


SEED_FRAMES = _seed_frames()


def drive(chunks):
    """Feed the chunks to a fresh server, pulling requests after each; return what happened."""
    server = ServerConnection(max_frame_size=MAX_FRAME)
    fed = 0
    requests = 0
    try:
        for chunk in chunks:
            server.receive_data(chunk)
            fed += len(chunk)
            assert server.buffered_bytes <= fed
            while True:
                try:
                    request = server.next_request()
                except ProtocolError as error:
                    check_error(error)
                    if error.closes_connection:
                        return requests, error
                    continue  # answered (KIP-511): its frame is consumed, go on
                if request is None:
                    break
                requests += 1
                assert request.frame_size <= MAX_FRAME
    except ProtocolError as error:
        check_error(error)
        return requests, error
    return requests, None


def check_error(error):
    assert isinstance(error.error_code, int)
    # A decoder that raised something other than DecodeError (IndexError, struct.error, ...)
    # is a bug even though the connection converts it: it shows up here as the cause.
    cause = error.__cause__
    assert cause is None or isinstance(cause, ProtocolError), repr(cause)


def chunked(data: bytes, cuts: list[int]):
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points + [len(data)]:
        pieces.append(data[last:point])
        last = point
    return pieces


@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0), max_size=10))
def test_random_bytes(data, cuts):
    drive(chunked(data, cuts))


@given(st.lists(st.binary(max_size=300), max_size=8),
       st.lists(st.integers(min_value=0, max_value=MAX_FRAME + 10), max_size=8))
def test_random_frames_with_plausible_sizes(payloads, sizes):
    # Size prefixes that are mostly consistent with what follows, sometimes not.
    stream = b"".join(struct.pack(">i", len(p) if i >= len(sizes) else sizes[i]) + p
                      for i, p in enumerate(payloads))
    drive([stream])


@st.composite
def mutated_frames(draw):
    frame = bytearray(draw(st.sampled_from(SEED_FRAMES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "resize"]))
        position = draw(st.integers(min_value=0, max_value=max(len(frame) - 1, 0)))
        if kind == "flip" and frame:
            frame[position] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == "set" and frame:
            frame[position] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
        elif kind == "insert":
            frame[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and frame:
            del frame[position:position + draw(st.integers(min_value=1, max_value=8))]
        elif kind == "truncate":
            del frame[position:]
        # "resize": make the size prefix agree with the mutated payload, so the damage reaches
        # the header and body decoders instead of only the framing.
        if kind == "resize" or draw(st.booleans()):
            if len(frame) >= 4:
                struct.pack_into(">i", frame, 0, len(frame) - 4)
    return bytes(frame)


@given(st.lists(mutated_frames(), min_size=1, max_size=4), st.lists(st.integers(min_value=0), max_size=6))
def test_mutated_valid_frames(frames, cuts):
    drive(chunked(b"".join(frames), cuts))


@given(st.lists(st.sampled_from(SEED_FRAMES), min_size=1, max_size=6), st.lists(st.integers(min_value=0), max_size=20))
def test_valid_frames_in_any_chunking_all_decode(frames, cuts):
    requests, error = drive(chunked(b"".join(frames), cuts))
    assert error is None and requests == len(frames)


@given(st.binary(max_size=600), st.lists(st.integers(min_value=0), max_size=6),
       st.lists(st.sampled_from(sorted(registry.API_KEYS)), min_size=1, max_size=3))
def test_client_side_random_responses(data, cuts, api_keys):
    # The client side holds the same invariant for responses (with some requests in flight,
    # correlation ids 0.. so that random bytes sometimes match one).
    client = ClientConnection(max_frame_size=MAX_FRAME)
    for correlation_id, key in enumerate(api_keys):
        info = registry.API_KEYS[key]
        client.encode_raw_request(key, info.max_version, correlation_id, b"")
    try:
        for chunk in chunked(data, cuts):
            client.receive_data(chunk)
            while client.next_response() is not None:
                pass
    except ProtocolError as error:
        check_error(error)


@st.composite
def frames_with_plausible_headers(draw):
    """A frame whose header starts as a real one (a known API key at a version near its range),
    followed by random bytes: so that the header and body decoders, not the key lookup, see the
    garbage."""
    key = draw(st.sampled_from(sorted(registry.API_KEYS)))
    info = registry.API_KEYS[key]
    version = draw(st.integers(info.min_version - 1, info.max_version + 1))
    client_id_length = draw(st.sampled_from([-1, 0, 3, 200, 32767, -2]))
    rest = draw(st.binary(max_size=120))
    payload = struct.pack(">hhih", key, version, draw(st.integers(-(2**31), 2**31 - 1)), client_id_length) + rest
    return struct.pack(">i", len(payload)) + payload


@given(st.lists(frames_with_plausible_headers(), min_size=1, max_size=4), st.lists(st.integers(min_value=0), max_size=6))
def test_plausible_headers_with_random_bodies(frames, cuts):
    drive(chunked(b"".join(frames), cuts))
