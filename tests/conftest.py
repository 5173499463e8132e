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
def real_data_dir():
    """The directory of the real Fashion-MNIST files; skip if absent, but fail instead when
    TINYNN_REQUIRE_DATA=1 (as CI sets it)."""
    from tinynn.datasets import fashion_mnist
    from tinynn.errors import DatasetNotFoundError
    try:
        return fashion_mnist.find_data_dir()
    except DatasetNotFoundError as exc:
        if os.environ.get("TINYNN_REQUIRE_DATA") == "1":
            pytest.fail(f"TINYNN_REQUIRE_DATA=1 but Fashion-MNIST is missing:\n{exc}")
        pytest.skip("Fashion-MNIST files not found (TINYNN_REQUIRE_DATA=1 makes this fail)")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def float64():
    """Run the test with tinynn's floatx set to float64."""
    from tinynn.testing import floatx
    with floatx("float64"):
        yield
