"""Byte-for-byte agreement of odradek's generated codecs with kafka-python 3.0.12 (test oracle).

kafka-python 3.0.12 codes every message from Kafka's JSON schemas (the 4.1-era files it ships in
`kafka/protocol/schemas/resources`), independently of our generator. For every API, and every
version that both kafka-python and odradek can code, hypothesis draws a random, canonically
encoded message body straight from kafka-python's own (unpatched) JSON schema (`wire_message`
below writes the bytes field by field; it knows nothing of either codec). Then:

- ours:   our decode + our encode of those bytes (`ours_bytes`), and the decoder must consume all;
- theirs: kafka-python's decode + encode of the same bytes (`their_bytes`);
- our encoding decoded by kafka-python and re-encoded by kafka-python gives `ours_bytes` again;
- kafka-python's encoding decoded by us and re-encoded by us gives `their_bytes` again;
- and, since the drawn bytes are canonical, all three are the same bytes.

The same is checked for the request/response headers and the consumer-protocol data schemas.

Each example also draws a message from the generator helper's strategies for our classes
(test_messages_strategies.py) and checks that kafka-python gives our bytes back unchanged.

kafka-python accepts every version from 0 (it ignores the lower end of `validVersions`), while
Kafka 4 dropped old versions from the files it ships, so below a file's declared minimum
kafka-python extrapolates the newer schema (and so does the generator fed with it). Those
versions are compared too; they agree with our codecs (which take them from the older schema
files), so the extrapolation is right for every one of them.

Known divergences, all on kafka-python's side and none in the wire format of a schema:
- unknown tagged fields: kafka-python drops them, we keep them (pinned by its own test below;
  the comparison hands kafka-python messages without them);
- ApiVersionsResponse: kafka-python's decode() reads a body with a non-zero error code as v0,
  a client rule (KIP-511), bypassed to compare the codec;
- decoded kafka-python messages lack the `_header` slot that encode() reads (set to None).
"""

from __future__ import annotations

import functools
import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

kafka_protocol = pytest.importorskip("kafka.protocol")

# kafka-python reads its schema files with importlib.resources' legacy read_text.
pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated. Use files:DeprecationWarning")

from kafka.protocol import admin as _kp_admin  # noqa: E402,F401  (import registers the classes)
from kafka.protocol import consumer as _kp_consumer  # noqa: E402,F401
from kafka.protocol import metadata as _kp_metadata  # noqa: E402,F401
from kafka.protocol import producer as _kp_producer  # noqa: E402,F401
from kafka.protocol import sasl as _kp_sasl  # noqa: E402,F401
from kafka.protocol.api_data import ApiData  # noqa: E402
from kafka.protocol.api_header import RequestHeader as KpRequestHeader  # noqa: E402
from kafka.protocol.api_header import ResponseHeader as KpResponseHeader  # noqa: E402
from kafka.protocol.api_message import ApiMessage  # noqa: E402
from kafka.protocol.schemas import load_json as _kp_load_json  # noqa: E402

# The generator helper's strategies for our classes (built from each class's FIELDS).
from test_messages_strategies import message_strategy  # noqa: E402
from test_oracle_wire import (  # noqa: E402
    our_class,
    our_roundtrip,
    parse_versions,
    strip_unknown_tags,
    wire_message,
)

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
# Hypothesis examples per schema; each example checks one message at every version.
EXAMPLES = 100 if THOROUGH else 3
SEEDS = st.integers(0, 2**32 - 1)


@functools.cache
def load_json(schema_name: str) -> dict:
    """kafka-python's own JSON for a schema, unpatched, common structs resolved (parsed once)."""
    return _kp_load_json(schema_name)



def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def kafka_python_classes() -> dict[str, type]:
    found = {}
    for base in (ApiMessage, ApiData):
        for cls in _subclasses(base):
            if cls.__dict__.get("_json") is not None and cls.__dict__.get("_class_version") is None:
                found[cls.__name__] = cls
    return found


KP_CLASSES = kafka_python_classes()


def their_roundtrip(schema_name: str, data: bytes, version: int) -> bytes:
    if schema_name in ("RequestHeader", "ResponseHeader"):
        cls = KpRequestHeader if schema_name == "RequestHeader" else KpResponseHeader
        flexible = version == cls._flexible_versions[0]
        message = cls._struct.decode(
            io.BytesIO(bytes(data)), version=version, compact=False, tagged=flexible, data_class=cls
        )
        return bytes(message.encode(flexible=flexible))
    cls = KP_CLASSES[schema_name]
    if issubclass(cls, ApiData):
        return bytes(cls.decode(data, version=version, header=False).encode(version=version, header=False))
    # A decoded kafka-python message already carries its version (and has no header slot set,
    # so passing version= again to encode() would trip over it).
    if schema_name == "ApiVersionsResponse":
        # kafka-python's ApiVersionsResponse.decode re-reads any body whose error code is not 0
        # as v0 (what a client must do with a broker's UNSUPPORTED_VERSION answer, KIP-511).
        # That is client behaviour, not the codec; the schema codec underneath is compared.
        message = ApiMessage.decode.__func__(cls, data, version=version)
    else:
        message = cls.decode(data, version=version)
    # kafka-python leaves the `_header` slot unset on decoded messages, and encode() reads it.
    message._header = None
    return bytes(message.encode(version=version))




def kafka_python_versions(schema_name: str) -> list[int]:
    """Versions both sides code: kafka-python takes 0..max of its file, we take our range."""
    if schema_name in ("RequestHeader", "ResponseHeader"):
        theirs = range(1, 3) if schema_name == "RequestHeader" else range(0, 2)
    else:
        theirs = range(0, parse_versions(load_json(schema_name)["validVersions"])[1] + 1)
    ours = our_class(schema_name)
    return [v for v in theirs if ours.MIN_VERSION <= v <= ours.MAX_VERSION]


# The Kafka schemas kafka-python codes: every request/response it ships, both headers and the
# consumer-protocol data schemas. (Subclasses outside kafka.protocol, such as the sticky
# assignor's user data, are kafka-python's own formats, not Kafka's.)
SCHEMA_NAMES = sorted(
    name for name, cls in KP_CLASSES.items() if cls.__module__.startswith("kafka.protocol.")
) + ["RequestHeader", "ResponseHeader"]


def check_their_bytes(schema_name: str, data: bytes, version: int) -> None:
    """Canonical bytes drawn from kafka-python's schema: both sides must reproduce them, and
    each side must reproduce what the other one wrote."""
    their_bytes = their_roundtrip(schema_name, data, version)
    ours_bytes = our_roundtrip(schema_name, data, version)
    assert our_roundtrip(schema_name, their_bytes, version) == their_bytes
    assert their_roundtrip(schema_name, ours_bytes, version) == ours_bytes
    assert ours_bytes == their_bytes == data


def check_our_message(schema_name: str, message, version: int) -> None:
    """A message built with our classes: kafka-python must decode and re-encode our bytes."""
    ours_bytes = message.encode(version)
    assert their_roundtrip(schema_name, ours_bytes, version) == ours_bytes
    assert our_roundtrip(schema_name, ours_bytes, version) == ours_bytes


@pytest.mark.parametrize("schema_name", SCHEMA_NAMES)
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_codecs_agree(schema_name, data):
    schema = _their_schema(schema_name)
    cls = our_class(schema_name)
    for version in kafka_python_versions(schema_name):
        # kafka-python's schema -> canonical bytes -> both codecs, both directions.
        raw = wire_message(schema, version, data.draw(SEEDS, label=f"v{version} seed"))
        check_their_bytes(schema_name, raw, version)
        # Our classes -> our bytes -> kafka-python must give them back.
        message = strip_unknown_tags(data.draw(message_strategy(cls, version), label=f"v{version}"))
        check_our_message(schema_name, message, version)


def test_unknown_tagged_fields_are_dropped_by_kafka_python_and_kept_by_us():
    # A divergence on kafka-python's side, pinned here so the comparison above stays exact:
    # Kafka's generated code keeps unknown tags and writes them back; kafka-python drops them.
    cls = our_class("HeartbeatRequest")
    message = cls(group_id="g", generation_id=3, member_id="m", unknown_tagged_fields=[(7, b"xy")])
    ours_bytes = message.encode(4)
    assert ours_bytes.endswith(b"\x01\x07\x02xy")  # one tag: 7, two bytes
    assert our_roundtrip("HeartbeatRequest", ours_bytes, 4) == ours_bytes
    assert their_roundtrip("HeartbeatRequest", ours_bytes, 4) == ours_bytes[:-5] + b"\x00"


def _their_schema(schema_name: str) -> dict:
    if schema_name in ("RequestHeader", "ResponseHeader"):
        return (KpRequestHeader if schema_name == "RequestHeader" else KpResponseHeader)._json
    return load_json(schema_name)


def test_every_schema_has_versions_to_compare():
    # Guards against the comparison quietly covering nothing (a renamed class, an empty range).
    assert len(SCHEMA_NAMES) >= 100
    for name in SCHEMA_NAMES:
        assert kafka_python_versions(name), name
