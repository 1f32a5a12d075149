"""Shared test settings.

Hypothesis runs with no per-example deadline (CI machines are shared and have two cores) and a
bounded number of examples; HYPOTHESIS_PROFILE=thorough runs many more locally.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

from compat_scripts import load_compat_script

settings.register_profile(
    "ci", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", deadline=None, max_examples=2000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def kafka_jars():
    """compat/kafka_jars.py with Kafka's jars fetched (once; a second run costs nothing)."""
    module = load_compat_script("kafka_jars")
    module.ensure()  # KafkaJarsUnavailable without java/mvn: a failure, not a skip
    return module
