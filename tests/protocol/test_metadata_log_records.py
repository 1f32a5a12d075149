"""The KRaft metadata log's records (protocol/metadata.py): the frame of a metadata record, raft's
control records and the batches they travel in. Kafka's own tools read what this writes in
tests/storage/test_dump_metadata_log.py; here, round trips and bad input."""

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odradek.protocol.errors import CorruptRecord
from odradek.protocol.messages.records import METADATA_RECORD_TYPES
from odradek.protocol.messages.records.feature_level_record import FeatureLevelRecord
from odradek.protocol.messages.records.leader_change_message import LeaderChangeMessage, Voter
from odradek.protocol.messages.records.topic_record import TopicRecord
from odradek.protocol.metadata import (
    CONTROL_RECORDS,
    MetadataRecord,
    build_control_batch,
    build_data_batch,
    control_record,
    decode_control_record,
    decode_metadata_record,
    encode_metadata_record,
    iter_entries,
    record_class,
    value_batches,
)
from odradek.protocol.records.batch import (
    CONTROL_COMMIT,
    CONTROL_LEADER_CHANGE,
    Record,
    build_batch,
    encode_control_key,
    encode_end_txn_marker,
)
from test_messages_strategies import EXAMPLES, message_strategy

TYPES = sorted(METADATA_RECORD_TYPES)


def test_the_metadata_record_types_are_kafkas():
    # Kafka 4.4's MetadataRecordType: types 6, 13 and 16 were retired before 4.0.
    assert TYPES == [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 14, 15, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]
    for record_type in TYPES:
        assert record_class(record_type).API_KEY == record_type


def test_a_frame_is_version_one_then_type_then_record_version():
    topic_id = uuid.UUID("2b5823a4-052c-47a5-9b4c-138fc1f44881")
    value = encode_metadata_record(MetadataRecord(TopicRecord(name="t", topic_id=topic_id), 0))
    # frame 1, type 2, version 0; compact string "t"; the uuid; no tagged fields
    assert value == bytes([1, 2, 0, 2]) + b"t" + topic_id.bytes + b"\x00"
    assert decode_metadata_record(value) == (TopicRecord(name="t", topic_id=topic_id), 0)


@pytest.mark.parametrize("record_type", TYPES)
@settings(max_examples=max(EXAMPLES // 4, 10), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_every_metadata_record_round_trips_in_its_frame_at_every_version(record_type, data):
    cls = record_class(record_type)
    for version in range(cls.MIN_VERSION, cls.MAX_VERSION + 1):
        message = data.draw(message_strategy(cls, version), label=f"v{version}")
        decoded = decode_metadata_record(encode_metadata_record(MetadataRecord(message, version)))
        assert decoded.version == version
        assert decoded.message.encode(version) == message.encode(version)


@pytest.mark.parametrize("value, refusal", [
    (b"", "frame version"),
    (bytes([0, 2, 0]), "frame version 0"),
    (bytes([2, 2, 0]), "unknown frame version 2"),
    (bytes([1, 0x80, 0x80, 0x02]), "type"),  # 32768: more than a short
    (bytes([1, 6, 0]), "unknown metadata record type 6"),
    (bytes([1, 2, 0x80, 0x80, 0x02]), "version"),
    (bytes([1, 2, 5]), "failed to deserialize record with type 2"),  # TopicRecord has v0 only
    (bytes([1, 2, 0, 2]) + b"t", "failed to deserialize record with type 2"),  # torn body
    (bytes([1, 2, 0, 2]) + b"t" + bytes(16) + b"\x00\x00", r"1 byte\(s\) of garbage after 2"),
    (None, "null value"),
])
def test_bad_frames_are_refused_as_kafka_refuses_them(value, refusal):
    with pytest.raises(CorruptRecord, match=refusal):
        decode_metadata_record(value)


@settings(max_examples=300)
@given(value=st.binary(max_size=64) | st.binary(max_size=40).map(lambda tail: bytes([1]) + tail))
def test_any_bytes_decode_or_are_refused_with_corrupt_record(value):
    try:
        record = decode_metadata_record(value)
    except CorruptRecord:
        return
    # What decoded encodes again, and that decodes to the same bytes (a value may spell a varint
    # with more bytes than needed, so the first encoding can differ from the input).
    again = encode_metadata_record(record)
    assert encode_metadata_record(decode_metadata_record(again)) == again


def test_only_metadata_records_are_framed():
    with pytest.raises(ValueError, match="not a metadata record"):
        encode_metadata_record(MetadataRecord(LeaderChangeMessage(), 0))


@pytest.mark.parametrize("control_type", sorted(CONTROL_RECORDS))
@settings(max_examples=max(EXAMPLES // 4, 10), suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_raft_control_records_round_trip_at_version_zero(control_type, data):
    cls = CONTROL_RECORDS[control_type][0]
    message = data.draw(message_strategy(cls, 0))
    record = control_record(message)
    assert record.key == encode_control_key(control_type)
    found_type, decoded = decode_control_record(record)
    assert found_type == control_type
    assert decoded.encode(0) == message.encode(0)


def test_a_transaction_marker_or_an_unknown_control_type_is_no_raft_record():
    marker = Record(0, 0, encode_control_key(CONTROL_COMMIT), encode_end_txn_marker(0))
    with pytest.raises(CorruptRecord, match="type 1"):
        decode_control_record(marker)
    with pytest.raises(CorruptRecord, match="type 9"):
        decode_control_record(Record(0, 0, encode_control_key(9), b"\x00"))
    with pytest.raises(CorruptRecord, match="null value"):
        decode_control_record(Record(0, 0, encode_control_key(CONTROL_LEADER_CHANGE), None))


def test_batches_carry_the_epoch_and_read_back_in_order():
    leader_change = LeaderChangeMessage(version=0, leader_id=1, voters=[Voter(voter_id=1)],
                                        granting_voters=[Voter(voter_id=1)])
    features = [MetadataRecord(FeatureLevelRecord(name="metadata.version", feature_level=33), 0),
                MetadataRecord(TopicRecord(name="orders", topic_id=uuid.uuid4()), 0)]
    log = (build_control_batch([leader_change], base_offset=0, epoch=3, timestamp=1000)
           + build_data_batch([encode_metadata_record(record) for record in features],
                              base_offset=1, epoch=3, timestamp=2000))
    entries = list(iter_entries(log))
    assert [(entry.offset, entry.epoch, entry.timestamp, entry.control_type) for entry in entries] == [
        (0, 3, 1000, CONTROL_LEADER_CHANGE), (1, 3, 2000, None), (2, 3, 2000, None)]
    assert entries[0].message == leader_change
    assert [(entry.message, entry.version) for entry in entries[1:]] == features
    with pytest.raises(CorruptRecord, match="torn record batch"):
        list(iter_entries(log[:-1]))
    # A data batch whose record is no metadata record: refused, not skipped.
    stray = build_batch([Record(0, 0, None, b"plain value")], base_offset=3, partition_leader_epoch=3)
    with pytest.raises(CorruptRecord, match="frame version"):
        list(iter_entries(log + stray))


@settings(max_examples=200)
@given(sizes=st.lists(st.integers(0, 3000), max_size=60), max_bytes=st.integers(1500, 20000))
def test_values_are_cut_into_batches_in_order_and_within_the_size(sizes, max_bytes):
    values = [bytes([index % 256]) * size for index, size in enumerate(sizes)]
    groups = value_batches(values, max_bytes)
    assert [value for group in groups for value in group] == values
    assert all(group for group in groups)
    for group in groups:
        assert len(group) == 1 or sum(len(value) + 16 for value in group) <= max_bytes - 1024
