"""Test configuration: hypothesis profiles and shared fixtures.

``HYPOTHESIS_PROFILE=ci`` (the default) is small and deterministic; ``dev`` explores more.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def float64():
    """Run the test with tinynn's floatx set to float64."""
    from tinynn.testing import floatx
    with floatx("float64"):
        yield
