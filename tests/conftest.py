"""Shared test settings.

Hypothesis runs with no per-example deadline (CI machines are shared and have two cores) and a
bounded number of examples; HYPOTHESIS_PROFILE=thorough runs many more locally.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", deadline=None, max_examples=2000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
