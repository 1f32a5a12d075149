"""The generated codecs against bytes built by hand from Kafka's protocol guide, and against bad
input: truncation at every byte, negative and huge lengths, bad varints and UTF-8, unknown
tagged fields, fields a version cannot carry, records passed through encode_parts, and
zero-copy records on decode."""

import struct
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odradek.protocol.errors import DecodeError, UnsupportedVersion
from odradek.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from odradek.protocol.messages.describe_topic_partitions import DescribeTopicPartitionsResponse
from odradek.protocol.messages.fetch import FetchRequest, FetchResponse
from odradek.protocol.messages.join_group import JoinGroupRequest
from odradek.protocol.messages.metadata import MetadataRequest, MetadataResponse
from odradek.protocol.messages.produce import ProduceRequest, ProduceResponse
from test_messages_strategies import THOROUGH, api_classes, message_strategy

SCALE = 20 if THOROUGH else 1  # HYPOTHESIS_PROFILE=thorough runs 20x the examples


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def produce_v3():
    return ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout_ms=30000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name="t",
                partition_data=[ProduceRequest.PartitionProduceData(index=2, records=b"abc")],
            )
        ],
    )


# ---------------------------------------------------------------------------------------------
# Known answers (bytes written from the protocol guide's field tables, not by our encoder)


def test_produce_v3_known_bytes():
    expected = (
        i16(-1)                      # transactional_id: null string
        + i16(-1)                    # acks
        + i32(30000)                 # timeout_ms
        + i32(1)                     # topic_data: 1 topic
        + i16(1) + b"t"              # name
        + i32(1)                     # partition_data: 1 partition
        + i32(2)                     # index
        + i32(3) + b"abc"            # records
    )
    assert produce_v3().encode(3) == expected
    assert ProduceRequest.decode(expected, 3) == produce_v3()


def test_produce_v9_known_bytes_use_compact_encodings_and_tag_sections():
    expected = (
        b"\x00"                      # transactional_id: compact null
        + i16(-1) + i32(30000)
        + b"\x02"                    # compact array of 1
        + b"\x02t"                   # compact string "t"
        + b"\x02"                    # 1 partition
        + i32(2)
        + b"\x04abc"                 # compact records of 3 bytes
        + b"\x00"                    # partition tags
        + b"\x00"                    # topic tags
        + b"\x00"                    # message tags
    )
    assert produce_v3().encode(9) == expected
    assert ProduceRequest.decode(expected, 9) == produce_v3()


def test_api_versions_request_v3_known_bytes():
    message = ApiVersionsRequest(client_software_name="kcat", client_software_version="1.0")
    expected = b"\x05kcat" + b"\x041.0" + b"\x00"
    assert message.encode(3) == expected
    assert ApiVersionsRequest.decode(expected, 3) == message
    # v0-2 carry neither field; they are ignorable, so encoding drops them.
    assert message.encode(2) == b""


def test_api_versions_response_v3_known_tagged_field():
    message = ApiVersionsResponse(
        error_code=0,
        api_keys=[ApiVersionsResponse.ApiVersion(api_key=0, min_version=0, max_version=9)],
        throttle_time_ms=0,
        finalized_features_epoch=5,
    )
    expected = (
        i16(0)
        + b"\x02" + i16(0) + i16(0) + i16(9) + b"\x00"
        + i32(0)
        + b"\x01"                    # one tagged field
        + b"\x01\x08" + i64(5)       # tag 1 (FinalizedFeaturesEpoch), 8 bytes
    )
    assert message.encode(3) == expected
    assert ApiVersionsResponse.decode(expected, 3) == message
    # At the default (-1) the tagged field is left out entirely.
    message.finalized_features_epoch = -1
    assert message.encode(3).endswith(i32(0) + b"\x00")


def test_nullable_struct_field_is_marked_with_a_byte():
    message = DescribeTopicPartitionsResponse(throttle_time_ms=0, topics=[], next_cursor=None)
    assert message.encode(0) == i32(0) + b"\x01" + b"\xff" + b"\x00"
    cursor = DescribeTopicPartitionsResponse.Cursor(topic_name="a", partition_index=1)
    message.next_cursor = cursor
    raw = message.encode(0)
    assert raw == i32(0) + b"\x01" + b"\x01" + b"\x02a" + i32(1) + b"\x00" + b"\x00"
    assert DescribeTopicPartitionsResponse.decode(raw, 0) == message


def test_tagged_nullable_struct_uses_a_varint_marker_and_defaults_to_the_empty_struct():
    # Bytes from Kafka 4.4.0's (as 4.3.1's) generated ConsumerGroupMemberMetadataValue: "default":
    # null in the JSON is read by Kafka's generator as no default, so the field defaults to the
    # empty struct (left out when equal to it), and a null is written as the tag with a varint
    # marker 0.
    from odradek.protocol.messages.records.consumer_group_member_metadata_value import (
        ClassicMemberMetadata, ClassicProtocol, ConsumerGroupMemberMetadataValue)
    fields = b"\x01" * 6 + i32(-1) + b"\x01"  # empty strings and topic list, rebalance -1, no assignor
    assert ConsumerGroupMemberMetadataValue().classic_member_metadata == ClassicMemberMetadata()
    assert ConsumerGroupMemberMetadataValue().encode(0) == fields + b"\x00"
    null = fields + b"\x01" + b"\x00\x01" + b"\x00"  # one tag: tag 0, size 1, marker 0 (null)
    assert ConsumerGroupMemberMetadataValue(classic_member_metadata=None).encode(0) == null
    assert ConsumerGroupMemberMetadataValue.decode(null, 0).classic_member_metadata is None
    classic = ConsumerGroupMemberMetadataValue(classic_member_metadata=ClassicMemberMetadata(
        session_timeout_ms=45000, supported_protocols=[ClassicProtocol(name="range", metadata=b"\x00\x01")]))
    raw = classic.encode(0)
    # one tag: tag 0, size 17, marker 1, the struct (timeout, one protocol, its tags, the struct's tags)
    assert raw == fields + b"\x01\x00\x11\x01" + i32(45000) + b"\x02\x06range\x03\x00\x01\x00\x00"
    assert ConsumerGroupMemberMetadataValue.decode(raw, 0) == classic


def test_metadata_request_null_topics_means_all_topics():
    assert MetadataRequest(topics=None).encode(1) == i32(-1)
    assert MetadataRequest.decode(i32(-1), 1).topics is None
    with pytest.raises(DecodeError):
        MetadataRequest.decode(i32(-1), 0)  # v0 topics are not nullable


# ---------------------------------------------------------------------------------------------
# Truncation and malformed input


def _populated_samples():
    fetch = FetchResponse(
        throttle_time_ms=1,
        responses=[
            FetchResponse.FetchableTopicResponse(
                topic="t",
                topic_id=uuid.UUID(int=77),
                partitions=[
                    FetchResponse.PartitionData(
                        partition_index=0,
                        high_watermark=10,
                        aborted_transactions=[FetchResponse.AbortedTransaction(producer_id=3, first_offset=4)],
                        records=b"x" * 20,
                    )
                ],
            )
        ],
    )
    metadata = MetadataResponse(
        brokers=[MetadataResponse.MetadataResponseBroker(node_id=1, host="h", port=9092, rack=None)],
        cluster_id="c",
        topics=[MetadataResponse.MetadataResponseTopic(name="t", partitions=[
            MetadataResponse.MetadataResponsePartition(partition_index=0, replica_nodes=[1, 2], isr_nodes=[1])])],
    )
    api_versions = ApiVersionsResponse(
        api_keys=[ApiVersionsResponse.ApiVersion(api_key=1, max_version=3)],
        finalized_features_epoch=2,
        unknown_tagged_fields=[(9, b"zz")],
    )
    return [
        (ProduceRequest, produce_v3(), 3),
        (ProduceRequest, produce_v3(), 9),
        (FetchResponse, fetch, 4),
        (FetchResponse, fetch, 12),
        (FetchResponse, fetch, 16),
        (MetadataResponse, metadata, 7),
        (MetadataResponse, metadata, 12),
        (ApiVersionsResponse, api_versions, 3),
    ]


@pytest.mark.parametrize("cls, message, version", _populated_samples(),
                         ids=lambda x: getattr(x, "__name__", None) if isinstance(x, type) else None)
def test_truncation_at_every_byte_raises_decode_error(cls, message, version):
    raw = message.encode(version)
    assert cls.decode(raw, version).encode(version) == raw
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            cls.decode(raw[:cut], version)


_SOME_API_CLASSES = [cls for _, cls in api_classes()]


@settings(max_examples=60 * SCALE, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_message_truncated_anywhere_raises_decode_error(data):
    cls = data.draw(st.sampled_from(_SOME_API_CLASSES))
    version = data.draw(st.integers(cls.MIN_VERSION, cls.MAX_VERSION))
    raw = data.draw(message_strategy(cls, version)).encode(version)
    if not raw:
        return
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        cls.decode(raw[:cut], version)


@settings(max_examples=150 * SCALE, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), garbage=st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_decode_error(data, garbage):
    cls = data.draw(st.sampled_from(_SOME_API_CLASSES))
    version = data.draw(st.integers(cls.MIN_VERSION, cls.MAX_VERSION))
    try:
        message, end = cls.decode_from(garbage, 0, version)
    except DecodeError:
        return
    assert 0 <= end <= len(garbage)
    # Whatever decoded must encode again (possibly canonicalised, e.g. bools).
    message.encode(version)


@settings(max_examples=80 * SCALE, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_byte_flip_decodes_or_raises_decode_error(data):
    cls = data.draw(st.sampled_from(_SOME_API_CLASSES))
    version = data.draw(st.integers(cls.MIN_VERSION, cls.MAX_VERSION))
    raw = bytearray(data.draw(message_strategy(cls, version)).encode(version))
    if not raw:
        return
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] = data.draw(st.integers(0, 255))
    try:
        cls.decode(bytes(raw), version)
    except DecodeError:
        pass


@pytest.mark.parametrize("raw, version, what", [
    (i16(-2), 3, "string length -2 where only -1 (null) is allowed"),
    (i16(0) + i16(-1), 0, "v0: acks, then a truncated timeout"),
    (i16(-1) + i16(1) + i32(0) + i32(-5), 3, "negative array length"),
    (i16(-1) + i16(1) + i32(0) + i32(0x7FFFFFFF), 3, "array length 2^31-1 with nothing behind it"),
    (i16(-1) + i16(1) + i32(0) + i32(1) + i16(0x7FFF), 3, "string length past the end"),
    (i16(-1) + i16(1) + i32(0) + i32(1) + i16(-1), 3, "null topic name (not nullable)"),
    (i16(-1) + i16(1) + i32(0) + i32(1) + i16(1) + b"t" + i32(1) + i32(0) + i32(0x7FFFFFFF), 3,
     "records length 2^31-1 past the end"),
    (i16(-1) + i16(1) + i32(0) + i32(1) + i16(1) + b"t" + i32(1) + i32(0) + i32(-7), 3,
     "records length -7"),
    (b"\x00" + i16(1) + i32(0) + b"\xff\xff\xff\xff\x0f", 9, "compact array length 2^32-2"),
    (b"\x00" + i16(1) + i32(0) + b"\xff\xff\xff\xff\xff\x01", 9, "varint longer than 5 bytes"),
    (b"\x00" + i16(1) + i32(0) + b"\x00", 9, "compact null for a non-nullable array"),
    (b"\x00" + i16(1) + i32(0) + b"\x02\xff\xff\xff\xff\x07", 9, "compact string length past the end"),
    (b"\x00" + i16(1) + i32(0) + b"\x02\x03\xff\xfe", 9, "invalid UTF-8 in a topic name"),
    (b"\x00" + i16(1) + i32(0) + b"\x01\x05\x01\x07", 9, "tagged field size past the end"),
])
def test_malformed_lengths_raise_decode_error(raw, version, what):
    with pytest.raises(DecodeError):
        ProduceRequest.decode(raw, version)


def test_huge_lengths_are_refused_before_allocating():
    # 2^31-1 elements claimed with four bytes behind them: refused by the length check, fast.
    raw = i16(-1) + i16(1) + i32(0) + i32(0x7FFFFFFF) + b"abcd"
    with pytest.raises(DecodeError, match="exceeds the remaining bytes"):
        ProduceRequest.decode(raw, 3)
    raw = i32(0) + i16(0) + b"\xff\xff\xff\xff\x0f"
    with pytest.raises(DecodeError):
        ProduceResponse.decode(raw, 9)


def test_unsupported_versions_raise_unsupported_version():
    with pytest.raises(UnsupportedVersion):
        ProduceRequest.decode(b"", 99)
    with pytest.raises(UnsupportedVersion):
        produce_v3().encode(-1)


# ---------------------------------------------------------------------------------------------
# Tagged fields


def test_unknown_tagged_fields_survive_a_round_trip_at_every_level():
    raw = (
        b"\x00" + i16(1) + i32(0)
        + b"\x02" + b"\x02t"
        + b"\x02" + i32(0) + b"\x00"  # partition 0, null records
        + b"\x01" + b"\x07\x02hi"    # partition level: tag 7, 2 bytes
        + b"\x02" + b"\x03\x00" + b"\x05\x01!"  # topic level: tags 3 (empty) and 5
        + b"\x01" + b"\x10\x01?"     # message level: tag 16
    )
    message = ProduceRequest.decode(raw, 9)
    assert message.unknown_tagged_fields == [(16, b"?")]
    topic = message.topic_data[0]
    assert topic.unknown_tagged_fields == [(3, b""), (5, b"!")]
    assert topic.partition_data[0].unknown_tagged_fields == [(7, b"hi")]
    assert topic.partition_data[0].records is None
    assert message.encode(9) == raw


def test_unknown_tags_are_merged_with_known_ones_in_tag_order():
    message = ApiVersionsResponse(finalized_features_epoch=5, unknown_tagged_fields=[(0x20, b"a")])
    raw = message.encode(3)
    assert raw.endswith(b"\x02" + b"\x01\x08" + i64(5) + b"\x20\x01a")
    assert ApiVersionsResponse.decode(raw, 3) == message


def test_unknown_tagged_fields_cannot_go_into_a_non_flexible_version():
    message = ProduceRequest(unknown_tagged_fields=[(1, b"x")])
    with pytest.raises(ValueError):
        message.encode(8)


# ---------------------------------------------------------------------------------------------
# Fields a version cannot carry


def test_non_ignorable_field_at_a_version_without_it_raises_value_error():
    with pytest.raises(ValueError, match="transactional_id"):
        ProduceRequest(transactional_id="tx").encode(2)
    with pytest.raises(ValueError, match="group_instance_id"):
        JoinGroupRequest(group_instance_id="static-1").encode(4)
    # At its default the field is simply absent.
    assert JoinGroupRequest(group_instance_id=None).encode(4)


def test_ignorable_field_at_a_version_without_it_is_dropped():
    raw = FetchRequest(rack_id="rack-a").encode(10)  # RackId is v11+ and ignorable
    assert FetchRequest.decode(raw, 10).rack_id == ""
    assert FetchRequest.decode(FetchRequest(rack_id="rack-a").encode(11), 11).rack_id == "rack-a"


def test_null_in_a_version_that_cannot_carry_it_raises_value_error():
    with pytest.raises(ValueError):
        MetadataRequest(topics=None).encode(0)
    with pytest.raises(ValueError):
        ProduceRequest(topic_data=None).encode(9)      # compact, non-nullable array
    with pytest.raises(ValueError):
        ProduceRequest(topic_data=[None]).encode(9)    # a struct that is None
    with pytest.raises(ValueError):
        ProduceRequest(acks=1 << 20).encode(3)         # int16 out of range


# ---------------------------------------------------------------------------------------------
# Records: zero-copy decode, pass-through encode


def test_records_decode_is_a_zero_copy_slice_of_the_input():
    batch = bytes(range(256)) * 4096  # 1 MiB
    message = ProduceRequest(acks=1, topic_data=[ProduceRequest.TopicProduceData(
        name="t", partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch)])])
    raw = message.encode(9)
    decoded = ProduceRequest.decode(raw, 9)
    records = decoded.topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview)
    assert records.obj is raw
    assert records == batch


@pytest.mark.parametrize("sizes", [(0, 2047), (2048, 5), (2047, 2048, 2049), (1 << 20, 0, 4096)])
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_encode_joins_large_records_to_the_same_bytes_as_write(sizes, kind):
    # encode() keeps records of 2 KiB and more out of its buffer and joins them at the end.
    response = FetchResponse(responses=[FetchResponse.FetchableTopicResponse(topic="t", partitions=[
        FetchResponse.PartitionData(partition_index=p, records=kind(bytes([p + 1]) * size))
        for p, size in enumerate(sizes)])])
    for version in (4, 12):
        written = bytearray()
        response.write(written, version)
        encoded = response.encode(version)
        assert type(encoded) is bytes and encoded == written
        decoded = FetchResponse.decode(encoded, version)
        assert [bytes(p.records) for p in decoded.responses[0].partitions] == [
            bytes([p + 1]) * size for p, size in enumerate(sizes)]


class FileRegion:
    """Stands in for a segment-file region the server sends with sendfile."""

    def __init__(self, data):
        self.data = data
        self.size = len(data)


def test_encode_parts_passes_records_objects_through():
    def response(records):
        return FetchResponse(responses=[FetchResponse.FetchableTopicResponse(topic="t", partitions=[
            FetchResponse.PartitionData(partition_index=p, records=records(p)) for p in range(2)])])

    for version in (4, 12):
        regions = [FileRegion(b"A" * 5), FileRegion(b"B" * 300)]
        parts = response(lambda p, regions=regions: regions[p]).encode_parts(version)
        assert [part for part in parts if not isinstance(part, bytes)] == regions
        joined = b"".join(part if isinstance(part, bytes) else part.data for part in parts)
        assert joined == response(lambda p, regions=regions: regions[p].data).encode(version)
        with pytest.raises(ValueError, match="encode_parts"):
            response(lambda p, regions=regions: regions[p]).encode(version)


def test_registry_imports_api_modules_only_on_first_use():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from odradek.protocol.messages import registry\n"
        "assert 'odradek.protocol.messages.fetch' not in sys.modules\n"
        "assert registry.API_KEYS[1].request_class.__name__ == 'FetchRequest'\n"
        "assert 'odradek.protocol.messages.fetch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
