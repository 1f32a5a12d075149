"""The connection codec: framing, headers, every request fed whole, byte by byte and with trailing
bytes, pipelining, responses, the client side, KIP-511."""

import struct
import time

import pytest

from odradek.protocol import connection
from odradek.protocol.connection import ClientConnection, Request, ServerConnection, _FrameReader
from odradek.protocol.errors import FrameTooLarge, UnsupportedVersion
from odradek.protocol.messages import registry
from odradek.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from odradek.protocol.messages.metadata import MetadataRequest, MetadataResponse
from odradek.protocol.messages.produce import ProduceRequest, ProduceResponse

ALL_VERSIONS = [
    (key, version) for key, info in sorted(registry.API_KEYS.items())
    for version in range(info.min_version, info.max_version + 1)
]


def every_request_frame():
    """One frame per (API key, version): the default message of that version, encoded by the
    client side, with a distinct correlation id."""
    frames = []
    client = ClientConnection()
    for correlation_id, (key, version) in enumerate(ALL_VERSIONS):
        msg = registry.API_KEYS[key].request_class()
        frames.append((key, version, correlation_id, msg, client.encode_request(msg, version, correlation_id)))
    return frames


FRAMES = every_request_frame()


def check_request(request, key, version, correlation_id, msg):
    assert isinstance(request, Request)
    assert (request.api_key, request.api_version, request.correlation_id) == (key, version, correlation_id)
    assert request.header.request_api_key == key
    assert request.body == msg
    # ControlledShutdown v0's header (v0) has no client id; a missing client id reads as "".
    assert request.client_id == ("" if (key, version) == (7, 0) else "odradek-test")
    assert request.response_version == version


def test_every_request_whole():
    for key, version, correlation_id, msg, data in FRAMES:
        server = ServerConnection()
        server.receive_data(data)
        request = server.next_request()
        check_request(request, key, version, correlation_id, msg)
        assert request.frame_size == len(data) - 4
        assert server.next_request() is None
        assert server.buffered_bytes == 0


def test_every_request_byte_by_byte():
    for key, version, correlation_id, msg, data in FRAMES:
        server = ServerConnection()
        for i in range(len(data) - 1):
            server.receive_data(data[i:i + 1])
            assert server.next_request() is None
        server.receive_data(data[-1:])
        check_request(server.next_request(), key, version, correlation_id, msg)
        assert server.next_request() is None


def test_every_request_with_trailing_bytes():
    # The next frame's start follows in the same chunk: it must stay buffered, untouched.
    for key, version, correlation_id, msg, data in FRAMES:
        server = ServerConnection()
        server.receive_data(data + data[:7])
        check_request(server.next_request(), key, version, correlation_id, msg)
        assert server.next_request() is None
        assert server.buffered_bytes == 3  # the 4-byte size prefix was already read and checked
        server.receive_data(data[7:])
        check_request(server.next_request(), key, version, correlation_id, msg)


def test_pipelined_requests_in_one_chunk_and_in_odd_chunks():
    stream = b"".join(data for *_, data in FRAMES)
    for chunk_size in (len(stream), 4096, 1000, 7, 3):
        server = ServerConnection()
        received = []
        for start in range(0, len(stream), chunk_size):
            server.receive_data(stream[start:start + chunk_size])
            while (request := server.next_request()) is not None:
                received.append(request)
        assert len(received) == len(FRAMES)
        for request, (key, version, correlation_id, msg, _) in zip(received, FRAMES):
            check_request(request, key, version, correlation_id, msg)


def test_header_versions_follow_kafka():
    # Produce: flexible from v9; ApiVersions: flexible from v3 but responses always header v0;
    # ControlledShutdown v0 has the client-id-less header v0.
    assert connection.request_header_version(0, 8) == 1
    assert connection.request_header_version(0, 9) == 2
    assert connection.response_header_version(0, 8) == 0
    assert connection.response_header_version(0, 9) == 1
    assert connection.request_header_version(18, 3) == 2
    assert connection.response_header_version(18, 3) == 0
    assert connection.request_header_version(7, 0) == 0
    assert connection.request_header_version(7, 1) == 1
    # Beyond the newest version the last flexibility holds (an ApiVersions v99 header parses).
    assert connection.request_header_version(18, 99) == 2
    for key, version in ALL_VERSIONS:
        assert connection.request_header_version(key, version) == registry.request_header_version(key, version)
        assert connection.response_header_version(key, version) == registry.response_header_version(key, version)


def test_known_answer_request_frame():
    # ApiVersions v0 from client "ab", correlation id 7, by hand from the protocol docs:
    # size, api_key=18, api_version=0, correlation_id=7, client_id=(int16 2)"ab", empty body.
    data = struct.pack(">ihhih", 12, 18, 0, 7, 2) + b"ab"
    server = ServerConnection()
    server.receive_data(data)
    request = server.next_request()
    assert (request.api_key, request.api_version, request.correlation_id, request.client_id) == (18, 0, 7, "ab")
    assert ClientConnection().encode_request(ApiVersionsRequest(), 0, 7, client_id="ab") == data
    # A null client id (int16 -1) reads as "", as in Kafka.
    server = ServerConnection()
    server.receive_data(struct.pack(">ihhih", 10, 18, 0, 7, -1))
    assert server.next_request().client_id == ""


def test_known_answer_response_frames():
    server = ServerConnection()
    client = ClientConnection()
    # Produce v8 (not flexible): response header v0 = correlation id only.
    server.receive_data(client.encode_request(ProduceRequest(acks=1, timeout_ms=100), 8, 0x01020304))
    request = server.next_request()
    body = ProduceResponse(throttle_time_ms=5).encode(8)
    assert server.encode_response(request, ProduceResponse(throttle_time_ms=5)) == (
        struct.pack(">ii", 4 + len(body), 0x01020304) + body)
    # Produce v9 (flexible): response header v1 = correlation id + empty tagged fields.
    server.receive_data(client.encode_request(ProduceRequest(acks=1, timeout_ms=100), 9, 9))
    request = server.next_request()
    body = ProduceResponse().encode(9)
    assert server.encode_response(request, ProduceResponse()) == struct.pack(">iib", 5 + len(body), 9, 0) + body
    # ApiVersions v3 (flexible) still answers with response header v0.
    server.receive_data(client.encode_request(ApiVersionsRequest(), 3, 11))
    request = server.next_request()
    body = ApiVersionsResponse().encode(3)
    assert server.encode_response(request, ApiVersionsResponse()) == struct.pack(">ii", 4 + len(body), 11) + body


def test_request_response_round_trip_through_both_sides():
    server = ServerConnection()
    client = ClientConnection()
    requests = [(MetadataRequest(topics=None), 12), (ApiVersionsRequest(client_software_name="x"), 3),
                (MetadataRequest(), 1), (ProduceRequest(acks=-1, timeout_ms=5), 3)]
    for correlation_id, (msg, version) in enumerate(requests):
        server.receive_data(client.encode_request(msg, version, correlation_id))
    assert client.in_flight == 4
    responses = {MetadataRequest: MetadataResponse(cluster_id="c", controller_id=1),
                 ApiVersionsRequest: ApiVersionsResponse(error_code=0),
                 ProduceRequest: ProduceResponse(throttle_time_ms=3)}
    out = b""
    while (request := server.next_request()) is not None:
        out += server.encode_response(request, responses[type(request.body)])
    for i in range(len(out)):  # byte by byte on the client side too
        client.receive_data(out[i:i + 1])
    got = []
    while (response := client.next_response()) is not None:
        got.append(response)
    assert [cid for cid, _ in got] == [0, 1, 2, 3]
    for (_cid, msg), (req, version) in zip(got, requests):
        expected = responses[type(req)]
        assert msg == type(expected).decode(expected.encode(version), version)
    assert client.in_flight == 0


def test_encode_response_parts_matches_encode_response_and_keeps_record_sources():
    class FileRegion:
        """Stands for records to send from a segment file: only its size is known."""

        def __init__(self, size):
            self.size = size

    server = ServerConnection()
    client = ClientConnection()
    server.receive_data(client.encode_request(ProduceRequest(), 9, 1))
    request = server.next_request()
    response = ProduceResponse(throttle_time_ms=1)
    assert b"".join(server.encode_response_parts(request, response)) == server.encode_response(request, response)

    from odradek.protocol.messages.fetch import FetchResponse
    records = b"r" * 1000
    region = FileRegion(len(records))
    topic = FetchResponse.FetchableTopicResponse(topic="t", partitions=[
        FetchResponse.PartitionData(partition_index=0, high_watermark=5, records=region)])
    from odradek.protocol.messages.fetch import FetchRequest
    server.receive_data(client.encode_request(FetchRequest(), 12, 3))
    request = server.next_request()
    parts = server.encode_response_parts(request, FetchResponse(responses=[topic]))
    assert region in parts
    filled = b"".join(records if part is region else bytes(part) for part in parts)
    expected = server.encode_response(request, FetchResponse(responses=[
        FetchResponse.FetchableTopicResponse(topic="t", partitions=[
            FetchResponse.PartitionData(partition_index=0, high_watermark=5, records=records)])]))
    assert filled == expected
    assert struct.unpack_from(">i", filled)[0] == len(filled) - 4


def test_decoded_records_are_not_copied():
    # A big produce request arriving in one chunk: the records are a view of the received bytes.
    batch = bytes(range(256)) * 4096  # 1 MiB stand-in for a record batch
    topic = ProduceRequest.TopicProduceData(name="t", partition_data=[
        ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=batch)])
    data = ClientConnection().encode_request(ProduceRequest(acks=1, timeout_ms=1, topic_data=[topic]), 9, 1)
    server = ServerConnection()
    server.receive_data(data)
    records = server.next_request().body.topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview) and records.obj is data
    assert records == batch


def test_api_versions_at_unsupported_version_is_answered_at_v0():
    client = ClientConnection()
    server = ServerConnection()
    # A newer client's ApiVersions v99 (header v2, a body we cannot know), then a normal request.
    server.receive_data(client.encode_raw_request(18, 99, 5, b"\x03ab\x021\x00" + b"future"))
    server.receive_data(client.encode_request(MetadataRequest(), 4, 6))
    with pytest.raises(UnsupportedVersion) as caught:
        server.next_request()
    error = caught.value
    assert error.error_code == 35 and not error.closes_connection
    assert (error.api_key, error.api_version, error.correlation_id) == (18, 99, 5)
    assert error.header.client_id == "odradek-test"
    assert error.request.response_version == 0 and error.request.body == ApiVersionsRequest()
    answer = ApiVersionsResponse(error_code=35, api_keys=[
        ApiVersionsResponse.ApiVersion(api_key=18, min_version=0, max_version=4)])
    client.receive_data(server.encode_response(error.request, answer))
    # The connection goes on with the next request.
    assert server.next_request().correlation_id == 6
    # The client decodes the answer at v0, as Kafka's client falls back.
    cid, response = client.next_response()
    assert cid == 5 and response == ApiVersionsResponse.decode(answer.encode(0), 0)
    assert response.error_code == 35 and response.api_keys[0].max_version == 4


def test_server_restricted_to_served_versions():
    server = ServerConnection(api_versions={18: (0, 3), 3: (0, 12)})
    client = ClientConnection()
    server.receive_data(client.encode_request(MetadataRequest(), 12, 1))
    assert server.next_request().api_version == 12
    server.receive_data(client.encode_request(ApiVersionsRequest(), 4, 2))
    with pytest.raises(UnsupportedVersion) as caught:  # ApiVersions beyond what we serve: answered
        server.next_request()
    assert caught.value.request is not None and not caught.value.closes_connection


def test_client_rejects_out_of_order_response():
    client = ClientConnection()
    client.encode_request(MetadataRequest(), 1, 1)
    client.encode_request(MetadataRequest(), 1, 2)
    client.receive_data(struct.pack(">ii", 4 + 8, 2) + MetadataResponse().encode(1))
    with pytest.raises(connection.ProtocolError):
        client.next_response()


class TestFrameReader:
    def test_frame_inside_one_chunk_is_a_view(self):
        reader = _FrameReader(100)
        data = struct.pack(">i", 3) + b"abc" + struct.pack(">i", 2) + b"de"
        chunk = data * 2000  # one big chunk
        reader.feed(chunk)
        first = reader.next_frame()
        assert isinstance(first, memoryview) and first.obj is chunk
        frames = [bytes(first)]
        while (payload := reader.next_frame()) is not None:
            frames.append(bytes(payload))
        assert frames == [b"abc", b"de"] * 2000
        assert reader.buffered == 0

    def test_empty_frame_and_empty_feed(self):
        reader = _FrameReader(100)
        reader.feed(b"")
        assert reader.next_frame() is None
        reader.feed(b"\0\0\0\0")
        assert reader.next_frame() == b""
        assert reader.next_frame() is None

    def test_fed_buffer_may_be_reused_by_the_caller(self):
        reader = _FrameReader(1 << 20)
        buf = bytearray(struct.pack(">i", 5000) + b"x" * 5000)
        reader.feed(buf)
        buf[:] = b"y" * len(buf)
        assert reader.next_frame() == b"x" * 5000

    def test_big_frame_in_many_small_chunks_is_linear(self):
        # 4 MiB in 64-byte chunks: with quadratic copying this would take minutes.
        size = 4 << 20
        payload = bytes(range(256)) * (size // 256)
        data = struct.pack(">i", size) + payload
        reader = _FrameReader(size)
        started = time.perf_counter()
        for start in range(0, len(data), 64):
            reader.feed(data[start:start + 64])
            if start % 65536 == 0 and start + 64 < len(data):
                assert reader.next_frame() is None
        assert reader.buffered == size
        assert reader.next_frame() == payload
        assert reader.buffered == 0
        # ~0.1 s here; copying what is buffered on each chunk would be ~100 GB of copies.
        assert time.perf_counter() - started < 10

    def test_many_small_frames_in_small_chunks(self):
        one = struct.pack(">i", 3) + b"abc"
        data = one * 50000
        reader = _FrameReader(100)
        count = 0
        for start in range(0, len(data), 5):
            reader.feed(data[start:start + 5])
            while (payload := reader.next_frame()) is not None:
                assert payload == b"abc"
                count += 1
        assert count == 50000


def test_client_expects_no_response_to_a_produce_with_acks_0():
    client = ClientConnection()
    client.encode_request(ProduceRequest(acks=0), 8, 1)
    client.encode_request(MetadataRequest(), 1, 2)
    assert client.in_flight == 1
    client.receive_data(struct.pack(">ii", 4 + len(MetadataResponse().encode(1)), 2) + MetadataResponse().encode(1))
    assert client.next_response() == (2, MetadataResponse.decode(MetadataResponse().encode(1), 1))


def test_served_versions_table_is_shared_and_read_only():
    first = ServerConnection(api_versions={18: [0, 4], 3: (1, 12)})
    second = ServerConnection(api_versions={3: (1, 12), 18: (0, 4)})
    assert first.api_versions == {18: (0, 4), 3: (1, 12)}
    assert first.api_versions is second.api_versions
    with pytest.raises(TypeError):
        first.api_versions[0] = (0, 9)


def test_encode_response_parts_does_not_copy_a_big_first_chunk():
    from odradek.protocol.messages.fetch import FetchRequest, FetchResponse
    server = ServerConnection()
    server.receive_data(ClientConnection().encode_request(FetchRequest(), 4, 1))
    request = server.next_request()
    records = b"r" * 100000
    response = FetchResponse(responses=[FetchResponse.FetchableTopicResponse(topic="t", partitions=[
        FetchResponse.PartitionData(partition_index=0, records=records)])])
    parts = server.encode_response_parts(request, response)
    assert len(parts[0]) == 8  # size prefix + response header v0, alone
    assert b"".join(parts) == server.encode_response(request, response)
    small = server.encode_response_parts(request, FetchResponse())
    assert len(small) == 1 and small[0] == server.encode_response(request, FetchResponse())


def test_raw_frames_between_requests():
    # SaslHandshake v0 is followed by a raw SASL token in a frame of its own, then requests again.
    client = ClientConnection()
    server = ServerConnection(max_frame_size=100)
    token = b"\x00user\x00secret"
    server.receive_data(client.encode_request(MetadataRequest(), 1, 1) + struct.pack(">i", len(token)) + token
                        + client.encode_request(MetadataRequest(), 1, 2))
    assert server.next_request().correlation_id == 1
    assert server.next_raw_frame() == token
    assert server.next_request().correlation_id == 2
    assert server.next_raw_frame() is None
    with pytest.raises(FrameTooLarge):
        server.receive_data(struct.pack(">i", 101))
    with pytest.raises(FrameTooLarge):  # and the connection stays failed
        server.next_raw_frame()
