"""Hypothesis round trips for every API key's requests, at every version: a populated
message encodes, decodes back to an equal message, and re-encodes to the same bytes; the same
bytes also decode from a bytes, a bytearray and an offset inside a larger memoryview.

Each example draws one message per version of the class, so every (API, version, direction) is
exercised in every example; EXAMPLES (6 in CI, 300 with HYPOTHESIS_PROFILE=thorough) bounds it.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_messages_strategies import EXAMPLES, api_classes, assert_round_trip, message_strategy

CASES = [pytest.param(cls, id=name) for name, cls in api_classes() if name.endswith("Request")]


@pytest.mark.parametrize("cls", CASES)
@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_populated_message_round_trips_at_every_version(cls, data):
    for version in range(cls.MIN_VERSION, cls.MAX_VERSION + 1):
        message = data.draw(message_strategy(cls, version), label=f"v{version}")
        raw = assert_round_trip(cls, message, version)
        # Embedded in a larger buffer at an offset, with trailing bytes.
        framed = memoryview(b"\x07" * 3 + raw + b"\xee")
        decoded, end = cls.decode_from(framed, 3, version)
        assert end == 3 + len(raw)
        assert decoded == message
        assert cls.decode(bytearray(raw), version) == message
