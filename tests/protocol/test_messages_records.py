"""Hypothesis round trips for every record-level schema (offsets, group and transaction state,
KRaft metadata records, raft state, share state, consumer protocol) at every version."""

import importlib
import pkgutil
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odradek.protocol.messages import records as record_package
from test_messages_strategies import EXAMPLES, assert_round_trip, message_strategy


def _record_classes():
    for module_info in pkgutil.iter_modules(record_package.__path__):
        module = importlib.import_module(f"{record_package.__name__}.{module_info.name}")
        for name in module.__all__:
            cls = getattr(module, name)
            if "_ENCODERS" in cls.__dict__:
                yield cls


RECORD_CLASSES = sorted(_record_classes(), key=lambda cls: cls.__name__)


def test_every_record_schema_is_generated():
    # Kafka 4.4's jars: 27 metadata, 25 coordinator-key, 25 coordinator-value and 12 data schemas.
    assert len(RECORD_CLASSES) == 89
    kinds = {}
    for cls in RECORD_CLASSES:
        kind = re.search(r": (\S+) schema v", importlib.import_module(cls.__module__).__doc__).group(1)
        kinds.setdefault(kind, []).append(cls)
    assert {kind: len(classes) for kind, classes in kinds.items()} == {
        "metadata": 27, "coordinator-key": 25, "coordinator-value": 25, "data": 12}


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_populated_record_round_trips_at_every_version(cls, data):
    for version in range(cls.MIN_VERSION, cls.MAX_VERSION + 1):
        message = data.draw(message_strategy(cls, version), label=f"v{version}")
        assert_round_trip(cls, message, version)
