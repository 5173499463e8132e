"""Test configuration: hypothesis profiles and shared fixtures.

``HYPOTHESIS_PROFILE=ci`` (the default) is small and deterministic; ``dev`` explores more.
"""

import importlib
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent

settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    """Point Fashion-MNIST downloads at a closed port on 127.0.0.1: tests never use the internet
    (a test that downloads points MIRRORS at its own local server)."""
    from tinynn.datasets import fashion_mnist
    monkeypatch.setattr(fashion_mnist, "MIRRORS", ["http://127.0.0.1:9/"])


@pytest.fixture
def places(tmp_path, monkeypatch) -> dict:
    """Point every place Fashion-MNIST is searched into tmp_path, all empty; TINYNN_DATA unset.

    Returns the paths: "env" (for TINYNN_DATA), "cache" and "system" (the Debian directory).
    """
    from tinynn.datasets import fashion_mnist
    monkeypatch.delenv("TINYNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "system")
    return {
        "env": tmp_path / "env",
        "cache": tmp_path / "xdg" / "tinynn" / "datasets" / "fashion-mnist",
        "system": tmp_path / "system",
    }


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


def require(module: str, extra: str = "keras"):
    """Import ``module``, an optional dependency from the pip extra ``extra`` (h5py, keras and
    tf_keras from "keras"; mpi4py and distributed from "distributed"; onnx and onnxruntime from
    "onnx"), or skip the test; fail instead when TINYNN_REQUIRE_<EXTRA>=1, as CI sets it after
    installing the extras (TINYNN_REQUIRE_KERAS, TINYNN_REQUIRE_DISTRIBUTED,
    TINYNN_REQUIRE_ONNX)."""
    variable = f"TINYNN_REQUIRE_{extra.upper()}"
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get(variable) == "1":
            pytest.fail(f"{variable}=1 but {module} cannot be imported ({exc}): "
                        f"pip install -e \".[{extra}]\"")
        pytest.skip(f"{module} is not installed (pip install -e \".[{extra}]\"; "
                    f"{variable}=1 makes this fail)")


@pytest.fixture(scope="session")
def h5py():
    return require("h5py")


@pytest.fixture(scope="session")
def keras():
    """Keras 3 on the TensorFlow backend."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return require("keras")


@pytest.fixture(scope="session")
def tf_keras(keras):
    """Keras 2 (the tf-keras package), to write Keras 2 files; it coexists with Keras 3."""
    return require("tf_keras")


@pytest.fixture(scope="session")
def mpi4py():
    """mpi4py (with an MPI library, e.g. the mpich wheel) from the "distributed" extra."""
    return require("mpi4py", "distributed")


@pytest.fixture(scope="session")
def dask_distributed():
    """Dask's ``distributed`` package from the "distributed" extra."""
    return require("distributed", "distributed")


@pytest.fixture(scope="session")
def onnx():
    return require("onnx", "onnx")


@pytest.fixture(scope="session")
def onnxruntime():
    return require("onnxruntime", "onnx")


@pytest.fixture(scope="session")
def examples():
    """The examples' model builders (examples/ is not a package)."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        yield SimpleNamespace(task1=importlib.import_module("task1_one_hidden"),
                              task2=importlib.import_module("task2_mlp"),
                              task3=importlib.import_module("task3_cnn"),
                              resnet=importlib.import_module("resnet_fashion"))
    finally:
        sys.path.remove(str(ROOT / "examples"))
