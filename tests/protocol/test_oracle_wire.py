"""Shared parts of the oracle tests (test_oracle_kafka_python.py, test_oracle_kio.py).

- A wire-bytes generator driven by a Kafka JSON schema (a dict in the schema's own shape:
  "fields", "versions", "nullableVersions", "taggedVersions", "tag", "default",
  "flexibleVersions", and "choices" or "range": the only values an int field may take). It writes random, *canonical* message bodies field by field and knows
  nothing of any codec, so it can be fed the oracle's schema and judge both codecs by the same
  bytes. Canonical means: what a correct encoder writes back after decoding it (a tagged field
  only when it differs from its default, tags in ascending order, booleans as 0/1).
- Our side of the comparison: the generated class for a schema name, and its round trip.
- Tests of the generator itself, against hand-written bytes.
"""

from __future__ import annotations

import importlib
import random
import re
import struct

from odradek.protocol.messages.headers import RequestHeader
from odradek.protocol.primitives import read_uvarint

MAX_ARRAY = 3  # elements per array: enough to hit "more than one", small enough to stay fast


def parse_versions(text: str | None) -> tuple[int, int] | None:
    """Kafka's version-range syntax: "3", "3-5", "3+", "none" (None: no such range)."""
    if text is None:
        return None
    text = text.strip()
    if text in ("", "none"):
        return None
    if text.endswith("+"):
        return int(text[:-1]), 32767
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def in_range(version: int, spec: str | None) -> bool:
    bounds = parse_versions(spec)
    return bounds is not None and bounds[0] <= version <= bounds[1]


def uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


INT_FORMATS = {
    "int8": (">b", -(2**7), 2**7 - 1),
    "int16": (">h", -(2**15), 2**15 - 1),
    "uint16": (">H", 0, 2**16 - 1),
    "int32": (">i", -(2**31), 2**31 - 1),
    "uint32": (">I", 0, 2**32 - 1),
    "int64": (">q", -(2**63), 2**63 - 1),
}


# Text with one-, two-, three- and four-byte UTF-8 characters (lengths are in bytes on the wire).
TEXT_ALPHABET = "az09-_.é中😀"


def _int(rng: random.Random, low: int, high: int) -> int:
    # Mostly small values (the ones real messages carry), sometimes the extremes.
    choice = rng.randrange(4)
    if choice == 0:
        return rng.randint(max(low, -2), min(high, 300))
    if choice == 1:
        return rng.choice((low, high))
    return rng.randint(low, high)


def _float(rng: random.Random) -> float:
    return rng.choice((0.0, -0.0, 1.5, float("inf"), float("-inf"), 1e308, rng.uniform(-1e9, 1e9)))


def _size(rng: random.Random, small: int) -> int:
    """Mostly small; one time in eight 120-300, so that compact lengths (varint of length + 1)
    and tagged-field sizes cross the one-byte varint limit of 127."""
    return rng.randint(120, 300) if rng.randrange(8) == 0 else rng.randint(0, small)


class WireContext:
    """What the field encoders need to know: the version, and whether it is a flexible one."""

    def __init__(self, version: int, flexible: bool):
        self.version = version
        self.flexible = flexible


def _length_prefix(ctx: WireContext, compact: bool, length: int | None, classic_format: str) -> bytes:
    if compact:
        return uvarint(0 if length is None else length + 1)
    return struct.pack(classic_format, -1 if length is None else length)


def _field_is_compact(field: dict, ctx: WireContext) -> bool:
    # A field may opt out of compact encodings ("flexibleVersions": "none": RequestHeader.ClientId).
    if "flexibleVersions" in field:
        return in_range(ctx.version, field["flexibleVersions"])
    return ctx.flexible


def _nullable(field: dict, ctx: WireContext) -> bool:
    return in_range(ctx.version, field.get("nullableVersions"))


def draw_scalar(rng, type_name: str, field: dict, ctx: WireContext, nullable: bool) -> bytes:
    compact = _field_is_compact(field, ctx)
    if type_name in INT_FORMATS:
        fmt, low, high = INT_FORMATS[type_name]
        if "choices" in field:  # an oracle that only takes some values (kio's error codes)
            return struct.pack(fmt, rng.choice(field["choices"]))
        low, high = field.get("range", (low, high))  # or only a narrower range (kio's times)
        return struct.pack(fmt, _int(rng, low, high))
    if type_name == "bool":
        return bytes([rng.randint(0, 1)])
    if type_name == "float64":
        return struct.pack(">d", _float(rng))
    if type_name == "uuid":
        return rng.randbytes(16)
    if type_name == "string":
        if nullable and rng.randrange(5) == 0:
            return _length_prefix(ctx, compact, None, ">h")
        raw = "".join(rng.choices(TEXT_ALPHABET, k=_size(rng, 8))).encode("utf-8")
        return _length_prefix(ctx, compact, len(raw), ">h") + raw
    if type_name in ("bytes", "records"):
        if nullable and rng.randrange(5) == 0:
            return _length_prefix(ctx, compact, None, ">i")
        raw = rng.randbytes(_size(rng, 24))
        return _length_prefix(ctx, compact, len(raw), ">i") + raw
    raise AssertionError(f"schema type {type_name!r} not known to the oracle generator")


def draw_field_value(rng, field: dict, ctx: WireContext) -> bytes:
    type_name = field["type"]
    nullable = _nullable(field, ctx)
    if type_name.startswith("[]"):
        element_type = type_name[2:]
        if nullable and rng.randrange(5) == 0:
            return _length_prefix(ctx, ctx.flexible, None, ">i")
        # Scalar arrays sometimes get a count whose compact varint takes two bytes.
        count = rng.randint(0, MAX_ARRAY) if "fields" in field else _size(rng, MAX_ARRAY)
        out = bytearray(_length_prefix(ctx, ctx.flexible, count, ">i"))
        for _ in range(count):
            if "fields" in field:
                out += draw_struct(rng, field["fields"], ctx)
            else:
                out += draw_scalar(rng, element_type, field, ctx, nullable=False)
        return bytes(out)
    if "fields" in field:  # a single struct; KIP-893 nullable structs carry an int8 marker
        if nullable:
            if rng.randrange(5) == 0:
                return b"\xff"
            return b"\x01" + draw_struct(rng, field["fields"], ctx)
        return draw_struct(rng, field["fields"], ctx)
    return draw_scalar(rng, type_name, field, ctx, nullable)


def _int_default(text) -> int:
    if isinstance(text, int):
        return text
    text = str(text).strip()
    if text.lower().startswith(("0x", "-0x")):
        return int(text, 16)
    return int(text or 0)


def default_value_bytes(field: dict, ctx: WireContext) -> bytes:
    """The encoding of a field's schema default: a tagged field holding it is left out."""
    type_name = field["type"]
    default = field.get("default")
    compact = _field_is_compact(field, ctx)
    if type_name.startswith("[]"):
        if default == "null" and _nullable(field, ctx):  # e.g. BrokerHeartbeat v2's CordonedLogDirs
            return _length_prefix(ctx, ctx.flexible, None, ">i")
        return _length_prefix(ctx, ctx.flexible, 0, ">i")
    if "fields" in field:
        if default == "null" and _nullable(field, ctx):
            return b"\xff"
        body = default_struct_bytes(field["fields"], ctx)
        return (b"\x01" + body) if _nullable(field, ctx) else body
    if type_name in INT_FORMATS:
        fmt = INT_FORMATS[type_name][0]
        return struct.pack(fmt, _int_default(default if default not in (None, "") else 0))
    if type_name == "bool":
        return b"\x01" if str(default).lower() == "true" else b"\x00"
    if type_name == "float64":
        return struct.pack(">d", float(default or 0))
    if type_name == "uuid":
        return bytes(16)
    if type_name == "string":
        if default == "null":
            return _length_prefix(ctx, compact, None, ">h")
        raw = (default or "").encode("utf-8")
        return _length_prefix(ctx, compact, len(raw), ">h") + raw
    if type_name in ("bytes", "records"):
        if default == "null":
            return _length_prefix(ctx, compact, None, ">i")
        return _length_prefix(ctx, compact, 0, ">i")
    raise AssertionError(f"schema type {type_name!r} not known to the oracle generator")


def default_struct_bytes(fields: list[dict], ctx: WireContext) -> bytes:
    out = bytearray()
    for field in fields:
        if not in_range(ctx.version, field.get("versions")):
            continue
        if ctx.flexible and in_range(ctx.version, field.get("taggedVersions")):
            continue
        out += default_value_bytes(field, ctx)
    if ctx.flexible:
        out += uvarint(0)
    return bytes(out)


def draw_struct(rng, fields: list[dict], ctx: WireContext) -> bytes:
    out = bytearray()
    tagged: list[tuple[int, bytes]] = []
    for field in fields:
        if not in_range(ctx.version, field.get("versions")):
            continue
        if ctx.flexible and in_range(ctx.version, field.get("taggedVersions")):
            # Canonical form: a tagged field is written only when it differs from its default.
            if rng.randrange(2):
                value = draw_field_value(rng, field, ctx)
                if value != default_value_bytes(field, ctx):
                    tagged.append((int(field["tag"]), value))  # some schemas write "0"
            continue
        out += draw_field_value(rng, field, ctx)
    if ctx.flexible:
        tagged.sort()
        out += uvarint(len(tagged))
        for tag, value in tagged:
            out += uvarint(tag) + uvarint(len(value)) + value
    return bytes(out)


def wire_message(schema: dict, version: int, seed: int) -> bytes:
    """Canonical bytes of one random message body of `schema` at `version`.

    Plain `random` seeded by hypothesis rather than one hypothesis draw per field: the schemas
    are deep and per-field draws made this ten times slower. A failure reports the seed (and the
    assertion shows the bytes), which reproduces the case exactly.
    """
    ctx = WireContext(version, in_range(version, schema.get("flexibleVersions")))
    return draw_struct(random.Random(seed), schema["fields"], ctx)




# ---------------------------------------------------------------------------------------------
# Our side: the generated class for a schema name, per the messages contract.
# ---------------------------------------------------------------------------------------------


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def our_class(schema_name: str):
    """`ProduceRequest` -> odradek.protocol.messages.produce.ProduceRequest (per the contract)."""
    if schema_name in ("RequestHeader", "ResponseHeader"):
        module = "odradek.protocol.messages.headers"
    elif schema_name.endswith(("Request", "Response")):
        base = schema_name[: -len("Request")] if schema_name.endswith("Request") else schema_name[: -len("Response")]
        module = f"odradek.protocol.messages.{snake_case(base)}"
    else:
        module = f"odradek.protocol.messages.records.{snake_case(schema_name)}"
    return getattr(importlib.import_module(module), schema_name)


def our_roundtrip(schema_name: str, data: bytes, version: int) -> bytes:
    cls = our_class(schema_name)
    message, end = cls.decode_from(data, 0, version)
    assert end == len(data), f"our decoder stopped at {end} of {len(data)} bytes"
    return bytes(message.encode(version))




def strip_unknown_tags(message):
    """Neither oracle keeps unknown tagged fields (their encoders write only the tags their
    schemas name), so messages handed to them must carry none; clears them in place."""
    if hasattr(message, "unknown_tagged_fields"):
        message.unknown_tagged_fields = []
    for info in type(message).FIELDS:
        if info.struct is None:
            continue
        value = getattr(message, info.attr)
        for element in (value if info.is_array else [value]) if value is not None else []:
            strip_unknown_tags(element)
    return message


# ---------------------------------------------------------------------------------------------
# The generator itself, against bytes written by hand from Kafka's protocol guide.
# ---------------------------------------------------------------------------------------------

HEADER_SCHEMA = {
    "flexibleVersions": "2+",
    "fields": [
        {"name": "RequestApiKey", "type": "int16", "versions": "0+"},
        {"name": "RequestApiVersion", "type": "int16", "versions": "0+"},
        {"name": "CorrelationId", "type": "int32", "versions": "0+"},
        {"name": "ClientId", "type": "string", "versions": "1+", "nullableVersions": "1+",
         "flexibleVersions": "none"},
    ],
}


def test_parse_versions():
    assert parse_versions("3") == (3, 3)
    assert parse_versions("2-5") == (2, 5)
    assert parse_versions("4+") == (4, 32767)
    assert parse_versions("none") is None
    assert parse_versions(None) is None


def test_uvarint():
    assert uvarint(0) == b"\x00"
    assert uvarint(127) == b"\x7f"
    assert uvarint(128) == b"\x80\x01"
    assert uvarint(300) == b"\xac\x02"


def test_generated_request_headers_parse_with_our_decoder():
    # The header's ClientId keeps the classic int16 length even in flexible versions.
    for seed in range(200):
        for version in (0, 1, 2):
            raw = wire_message(HEADER_SCHEMA, version, seed)
            header, end = RequestHeader.decode_from(raw, 0, version)
            assert end == len(raw)
            if version == 2:
                assert raw[-1] == 0  # an empty tagged-field section
            if version >= 1 and header.client_id is not None:
                size = struct.unpack_from(">h", raw, 8)[0]
                assert size == len(header.client_id.encode("utf-8"))


def test_tagged_fields_are_canonical():
    schema = {
        "flexibleVersions": "0+",
        "fields": [
            {"name": "A", "type": "int32", "versions": "0+", "taggedVersions": "0+", "tag": 1,
             "default": "-1"},
            {"name": "B", "type": "string", "versions": "0+", "taggedVersions": "0+", "tag": 0,
             "nullableVersions": "0+", "default": "null"},
        ],
    }
    seen = set()
    for seed in range(300):
        raw = wire_message(schema, 0, seed)
        count, pos = read_uvarint(raw, 0)
        seen.add(count)
        tags = []
        for _ in range(count):
            tag, pos = read_uvarint(raw, pos)
            size, pos = read_uvarint(raw, pos)  # past 127 bytes the size takes two
            value = raw[pos : pos + size]
            tags.append(tag)
            if tag == 1:
                assert value != struct.pack(">i", -1)  # the default is never written
            else:
                assert value != b"\x00"  # a null (the default) is never written
            pos += size
        assert pos == len(raw)
        assert tags == sorted(tags)
    assert seen == {0, 1, 2}
