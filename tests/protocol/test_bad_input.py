"""Bad input to the connection codec: each case raises one documented ProtocolError subclass
carrying the Kafka error code and whether Kafka closes the connection (see the table in
odradek.protocol.connection), without hanging or allocating what the input claims."""

import struct
import tracemalloc

import pytest

from odradek.protocol import error_codes
from odradek.protocol.connection import ClientConnection, ServerConnection
from odradek.protocol.errors import DecodeError, FrameTooLarge, ProtocolError, UnknownApiKey, UnsupportedVersion
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.metadata import MetadataRequest, MetadataRequestTopic
from odradek.protocol.messages.produce import ProduceRequest

INT32 = struct.Struct(">i")


def framed(payload: bytes) -> bytes:
    return INT32.pack(len(payload)) + payload


def header_v1(api_key, api_version, correlation_id=1, client_id=b"c") -> bytes:
    return struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id


def header_v2(api_key, api_version, correlation_id=1, client_id=b"c") -> bytes:
    return header_v1(api_key, api_version, correlation_id, client_id) + b"\x00"  # no tagged fields


def refused(data: bytes, **server_args) -> ProtocolError:
    """Feed ``data`` and return the ProtocolError it raises (from receive_data or next_request)."""
    server = ServerConnection(**server_args)
    with pytest.raises(ProtocolError) as caught:
        server.receive_data(data)
        while server.next_request() is not None:
            pass
        raise AssertionError("no error raised")  # pragma: no cover
    return caught.value


def assert_closes(error, cls, error_code=error_codes.INVALID_REQUEST):
    assert type(error) is cls, repr(error)
    assert error.error_code == error_code
    assert error.closes_connection


# -- frame level ---------------------------------------------------------------------------------

def test_frame_over_the_limit_raises_from_the_prefix_alone_before_allocating():
    server = ServerConnection()
    tracemalloc.start()
    try:
        with pytest.raises(FrameTooLarge) as caught:
            server.receive_data(INT32.pack(2**31 - 1))  # 2 GiB announced, 4 bytes sent
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
    assert_closes(caught.value, FrameTooLarge)
    # Just over a configured limit, too; exactly at it is fine.
    assert_closes(refused(INT32.pack(1001) + b"x" * 10, max_frame_size=1000), FrameTooLarge)
    server = ServerConnection(max_frame_size=1000)
    server.receive_data(INT32.pack(1000) + b"x" * 10)
    assert server.next_request() is None


def test_frame_over_the_limit_after_a_good_frame():
    good = ClientConnection().encode_request(MetadataRequest(), 1, 1)
    server = ServerConnection(max_frame_size=100)
    server.receive_data(good + INT32.pack(101))
    assert server.next_request().correlation_id == 1  # the good frame before it is not lost
    with pytest.raises(FrameTooLarge):
        server.next_request()


def test_negative_frame_size():
    for size in (-1, -2**31):
        assert_closes(refused(INT32.pack(size)), DecodeError)


def test_frame_too_short_for_a_header():
    for payload in (b"", b"\x00", b"\x00\x03\x00"):
        assert_closes(refused(framed(payload)), DecodeError)


def test_a_failed_connection_stays_failed():
    server = ServerConnection()
    with pytest.raises(DecodeError) as first:
        server.receive_data(INT32.pack(-5))
    good = ClientConnection().encode_request(MetadataRequest(), 1, 1)
    for call in (lambda: server.receive_data(good), server.next_request):
        with pytest.raises(DecodeError) as again:
            call()
        assert again.value is first.value


def test_truncated_stream_waits_rather_than_fails():
    # A frame whose bytes have not all arrived is not an error: more may come.
    good = ClientConnection().encode_request(MetadataRequest(), 1, 1)
    for cut in range(len(good)):
        server = ServerConnection()
        server.receive_data(good[:cut])
        assert server.next_request() is None


# -- header level --------------------------------------------------------------------------------

def test_unknown_api_key():
    for api_key in (-1, 9999, 32767):
        error = refused(framed(header_v1(api_key, 0, correlation_id=77)))
        assert_closes(error, UnknownApiKey)
        assert (error.api_key, error.correlation_id, error.header) == (api_key, 77, None)


def test_api_key_not_served():
    # Known to the schemas, but not among the APIs this broker serves: Kafka closes.
    error = refused(ClientConnection().encode_request(MetadataRequest(), 1, 1), api_versions={18: (0, 4)})
    assert_closes(error, UnknownApiKey)


def test_unsupported_version_of_an_api_closes():
    for version in (-1, 99, ProduceRequest.MAX_VERSION + 1):
        hdr = header_v2(0, version) if version > 0 else header_v1(0, version)
        error = refused(framed(hdr + b"body"))
        assert_closes(error, UnsupportedVersion, error_codes.UNSUPPORTED_VERSION)
        assert error.header is not None and error.header.request_api_version == version
        assert error.request is None


def test_unsupported_version_of_api_versions_is_answered():
    for version in (ApiVersionsRequest.MAX_VERSION + 1, 99, 32767, -1):
        hdr = header_v2(18, version) if version > 0 else header_v1(18, version)
        server = ServerConnection()
        server.receive_data(framed(hdr + b"whatever a future version carries"))
        with pytest.raises(UnsupportedVersion) as caught:
            server.next_request()
        error = caught.value
        assert error.error_code == error_codes.UNSUPPORTED_VERSION and not error.closes_connection
        assert error.request.response_version == 0
        assert server.next_request() is None  # the frame was consumed; the connection lives


def test_truncated_header_fields():
    # client_id claims 5 bytes, frame has 2; header v2 missing its tagged-field count.
    assert_closes(refused(framed(struct.pack(">hhih", 3, 1, 1, 5) + b"ab")), DecodeError)
    assert_closes(refused(framed(header_v1(3, 12))), DecodeError)


def test_invalid_varint_in_header_tagged_fields():
    # Header v2's tagged-field count as a varint that never ends within 5 bytes.
    error = refused(framed(header_v1(3, 12) + b"\xff\xff\xff\xff\xff\xff\x01"))
    assert_closes(error, DecodeError)
    assert error.api_key == 3 and error.correlation_id == 1


# -- body level ----------------------------------------------------------------------------------

def body_error(api_key, version, body: bytes) -> ProtocolError:
    header = header_v2(api_key, version) if version >= _flexible_min(api_key) else header_v1(api_key, version)
    error = refused(framed(header + body))
    assert_closes(error, DecodeError)
    assert error.header is not None  # the header decoded: the broker can log what it was
    assert (error.api_key, error.api_version) == (api_key, version)
    return error


def _flexible_min(api_key):
    from odradek.protocol.messages import registry
    flexible = registry.API_KEYS[api_key].flexible_min_version
    return 1 << 15 if flexible is None else flexible


def test_truncated_body_at_every_byte():
    topic = ProduceRequest.TopicProduceData(name="topic", partition_data=[
        ProduceRequest.TopicProduceData.PartitionProduceData(index=3, records=b"r" * 50)])
    for version in (3, 9):
        msg = ProduceRequest(transactional_id="tx", acks=-1, timeout_ms=1000, topic_data=[topic])
        body = msg.encode(version)
        for cut in range(len(body)):
            body_error(0, version, body[:cut])


def test_string_length_past_the_end_of_the_frame():
    # Metadata v1: topics array of 1, topic name claims 100 bytes, 3 present.
    body_error(3, 1, struct.pack(">ih", 1, 100) + b"abc")
    # Flexible (v9): compact string length 100 (uvarint 101).
    body_error(3, 9, b"\x02\x65abc")


@pytest.mark.parametrize("length", [-2, -100, -2**31])
def test_negative_array_and_string_lengths(length):
    body_error(3, 1, INT32.pack(length))  # topics array (nullable only as -1 from v1)
    body_error(3, 1, struct.pack(">ih", 1, max(length, -2**15)))  # topic name (not nullable)


def test_huge_array_and_string_lengths_do_not_allocate():
    tracemalloc.start()
    try:
        body_error(3, 1, INT32.pack(2**31 - 1))  # 2 billion topics claimed
        body_error(3, 1, struct.pack(">ih", 1, 2**15 - 1))  # 32 KiB topic name claimed
        body_error(3, 9, b"\xff\xff\xff\xff\x07")  # compact array of 2**31-2 topics claimed
        body_error(0, 3, struct.pack(">hhii", -1, 1, 1000, 1) + struct.pack(">h", 1) + b"t"
                   + INT32.pack(1) + INT32.pack(0) + INT32.pack(2**31 - 1))  # 2 GiB of records claimed
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_invalid_varint_in_body():
    # Metadata v9: compact array length as an unterminated varint.
    body_error(3, 9, b"\xff\xff\xff\xff\xff\xff")
    body_error(3, 9, b"\x80")  # truncated varint


def test_trailing_bytes_inside_the_frame_are_ignored_as_kafka_does():
    server = ServerConnection()
    data = ClientConnection().encode_request(MetadataRequest(), 1, 1)
    server.receive_data(framed(data[4:] + b"trailing"))
    assert server.next_request().body == MetadataRequest()


def test_invalid_utf8_in_a_string_is_read_with_replacement_as_kafka_does():
    # Kafka reads strings with new String(bytes, UTF_8): malformed UTF-8 becomes U+FFFD and the
    # request is answered, in the header (classic and flexible) and in the body.
    server = ServerConnection()
    server.receive_data(framed(struct.pack(">hhih", 3, 1, 1, 2) + b"\xff\xfe" + INT32.pack(-1)))
    assert server.next_request().client_id == "\ufffd\ufffd"
    body = MetadataRequest(topics=[MetadataRequestTopic(name="x")]).encode(12)
    body = body.replace(b"\x02x", b"\x02\xff")  # the compact topic name "x" -> one invalid byte
    server.receive_data(framed(struct.pack(">hhih", 3, 12, 2, -1) + b"\x00" + body))
    assert server.next_request().body.topics[0].name == "\ufffd"
