"""Hypothesis strategies for the generated message classes, built from the schema metadata each
generated class carries in ``FIELDS`` (see odradek.protocol.messages._runtime.FieldInfo): for a
class and a version, every field the version carries gets a value of its type (None where the
version makes it nullable), fields the version cannot carry keep their defaults, and flexible
versions get unknown tagged fields with tags no known field of that struct uses.

The other test_messages_* files import from here; the tests at the bottom check the strategies
themselves.
"""

from __future__ import annotations

import os
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from odradek.protocol.messages import registry

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
# Examples per (API, request/response) test; each example covers every version of the message.
EXAMPLES = 300 if THOROUGH else 3

_INT_RANGES = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "uint16": (0, (1 << 16) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "uint32": (0, (1 << 32) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
}

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)
_uuids = st.builds(uuid.UUID, int=st.integers(0, (1 << 128) - 1))
_blobs = st.binary(max_size=8)


def scalar_strategy(type_: str):
    if type_ in _INT_RANGES:
        lo, hi = _INT_RANGES[type_]
        return st.integers(lo, hi)
    if type_ == "bool":
        return st.booleans()
    if type_ == "float64":
        return st.floats(allow_nan=False)
    if type_ == "string":
        return _text
    if type_ in ("bytes", "records"):
        return _blobs
    if type_ == "uuid":
        return _uuids
    raise AssertionError(f"no strategy for {type_}")


def is_flexible(top_cls, version: int) -> bool:
    return top_cls.FLEXIBLE_MIN_VERSION is not None and version >= top_cls.FLEXIBLE_MIN_VERSION


_cache: dict = {}


def struct_strategy(cls, version: int, flexible: bool):
    """Instances of generated class ``cls`` populated for ``version``."""
    key = (cls, version, flexible)
    if key in _cache:
        return _cache[key]
    bit = 1 << version
    fields = {}
    known_tags = set()
    for info in cls.FIELDS:
        if not info.present & bit:
            continue
        if info.tagged & bit:
            known_tags.add(info.tag)
        if info.struct is not None:
            element = st.deferred(lambda c=info.struct: struct_strategy(c, version, flexible))
        else:
            element = scalar_strategy(info.type)
        value = st.lists(element, max_size=2) if info.is_array else element
        if info.nullable & bit:
            value = st.none() | value
        fields[info.attr] = value
    if flexible:
        first_free = max(known_tags, default=-1) + 1
        fields["unknown_tagged_fields"] = st.lists(
            st.tuples(st.integers(first_free, first_free + 200), _blobs),
            max_size=2,
            unique_by=lambda item: item[0],
        ).map(lambda items: sorted(items))
    strategy = st.fixed_dictionaries(fields).map(lambda kwargs: cls(**kwargs))
    _cache[key] = strategy
    return strategy


def message_strategy(top_cls, version: int):
    return struct_strategy(top_cls, version, is_flexible(top_cls, version))


def api_classes():
    """(id, class) for every request and response class, in API-key order."""
    for key, info in sorted(registry.API_KEYS.items()):
        yield f"{key}-{info.name}Request", info.request_class
        yield f"{key}-{info.name}Response", info.response_class


def assert_round_trip(cls, message, version: int) -> bytes:
    raw = message.encode(version)
    decoded, end = cls.decode_from(raw, 0, version)
    assert end == len(raw)
    assert decoded == message, (version, message, decoded)
    assert decoded.encode(version) == raw
    return raw


# -- the strategies themselves ----------------------------------------------------------------

from odradek.protocol.messages.produce import ProduceRequest  # noqa: E402


@settings(max_examples=30)
@given(st.data())
def test_strategy_leaves_fields_a_version_cannot_carry_at_their_default(data):
    # Produce v2 has no TransactionalId (v3+): the strategy must leave it at its default.
    message = data.draw(message_strategy(ProduceRequest, 2))
    assert message.transactional_id is None
    assert message.unknown_tagged_fields == []


@settings(max_examples=30)
@given(st.data())
def test_strategy_gives_flexible_versions_unknown_tags_above_known_ones(data):
    message = data.draw(message_strategy(ProduceRequest, 9))
    tags = [tag for tag, _ in message.unknown_tagged_fields]
    assert tags == sorted(set(tags))
