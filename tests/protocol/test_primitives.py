import pytest
from hypothesis import given, strategies as st

from odradek.protocol.errors import DecodeError, ProtocolError
from odradek.protocol.primitives import (
    read_uvarint,
    read_varint,
    read_varlong,
    uvarint_size,
    write_uvarint,
    write_varint,
    write_varlong,
)


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_uvarint_round_trip(value):
    out = bytearray()
    write_uvarint(out, value)
    assert len(out) == uvarint_size(value)
    assert read_uvarint(bytes(out) + b"trailing", 0) == (value, len(out))


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_varint_round_trip(value):
    out = bytearray()
    write_varint(out, value)
    assert read_varint(out, 0) == (value, len(out))


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_varlong_round_trip(value):
    out = bytearray()
    write_varlong(out, value)
    assert read_varlong(out, 0) == (value, len(out))


def test_known_zigzag_encodings():
    # Values from Kafka's protocol documentation of zigzag varints.
    for value, encoded in [(0, b"\x00"), (-1, b"\x01"), (1, b"\x02"), (-2, b"\x03"), (300, b"\xd8\x04")]:
        out = bytearray()
        write_varint(out, value)
        assert bytes(out) == encoded


def test_truncated_varint_raises_decode_error():
    with pytest.raises(DecodeError):
        read_uvarint(b"\x80\x80", 0)


def test_overlong_varint_raises_decode_error():
    with pytest.raises(DecodeError):
        read_varint(b"\xff\xff\xff\xff\xff\x01", 0)


@given(st.binary(max_size=12))
def test_readers_raise_only_protocol_errors(data):
    for reader in (read_uvarint, read_varint, read_varlong):
        try:
            reader(data, 0)
        except ProtocolError:
            pass
