"""Tests for tinynn.initializers: Keras fan rules, distributions, determinism, dtypes."""

import math

import numpy as np
import pytest

from tinynn import initializers
from tinynn.errors import TinyNNError
from tinynn.initializers import GlorotUniform, HeNormal, HeUniform, Zeros, compute_fans
from tinynn.layers import Dense


@pytest.mark.parametrize("shape, fans", [
    ((784, 100), (784, 100)),         # Dense kernel (in, units)
    ((3, 3, 2, 4), (18, 36)),         # Conv2D kernel (kh, kw, in, out): receptive field 9
    ((5, 1, 16, 32), (80, 160)),
    ((7,), (7, 7)),
    ((), (1, 1)),
])
def test_compute_fans_keras_rules(shape, fans):
    assert compute_fans(shape) == fans


def _sample(init, shape, seed=0, dtype="float64"):
    return init(shape, dtype, np.random.default_rng(seed))


@pytest.mark.parametrize("shape", [(300, 200), (3, 3, 64, 64)])
def test_glorot_uniform_bounds_and_variance(shape):
    fan_in, fan_out = compute_fans(shape)
    limit = math.sqrt(6 / (fan_in + fan_out))
    w = _sample(GlorotUniform(), shape)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    assert abs(w.mean()) < 0.01 * limit
    assert w.var() == pytest.approx(limit**2 / 3, rel=0.03)  # var of U(-a, a) is a^2 / 3


def test_he_uniform_bounds_and_variance():
    w = _sample(HeUniform(), (300, 200))
    limit = math.sqrt(6 / 300)
    assert np.abs(w).max() <= limit and w.var() == pytest.approx(limit**2 / 3, rel=0.03)


def test_he_normal_truncated_with_keras_std():
    w = _sample(HeNormal(), (3, 3, 32, 64))  # fan_in 288
    std = math.sqrt(2 / 288)
    assert w.std() == pytest.approx(std, rel=0.03)  # the truncation correction restores std
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978


def test_zeros():
    w = _sample(Zeros(), (4, 5), dtype="float32")
    assert w.dtype == np.float32 and w.shape == (4, 5) and not w.any()


@pytest.mark.parametrize("name", ["glorot_uniform", "he_uniform", "he_normal"])
def test_initializer_deterministic_given_generator(name):
    init = initializers.get(name)
    np.testing.assert_array_equal(_sample(init, (6, 5), seed=7), _sample(init, (6, 5), seed=7))
    assert not np.array_equal(_sample(init, (6, 5), seed=7), _sample(init, (6, 5), seed=8))


def test_initializer_does_not_touch_global_rng():
    state = np.random.get_state()[1].copy()
    _sample(GlorotUniform(), (10, 10))
    np.testing.assert_array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_initializer_returns_requested_dtype(dtype):
    assert _sample(GlorotUniform(), (3, 4), dtype=dtype).dtype == dtype


def test_layer_weights_default_to_float32():
    layer = Dense(4, bias_initializer="ones")
    layer.build((3,), np.random.default_rng(0))
    assert layer.params["kernel"].dtype == np.float32
    assert layer.params["bias"].dtype == np.float32 and (layer.params["bias"] == 1).all()


def test_dense_uses_keras_glorot_limit():
    layer = Dense(100)
    layer.build((784,), np.random.default_rng(0))
    limit = math.sqrt(6 / (784 + 100))
    assert np.abs(layer.params["kernel"]).max() == pytest.approx(limit, rel=1e-3)
    assert not layer.params["bias"].any()


def test_initializers_get():
    init = HeUniform()
    assert initializers.get(init) is init
    assert type(initializers.get("zeros")) is Zeros
    with pytest.raises(TinyNNError, match=r"unknown initializer 'lecun_normal'.*'he_normal'"):
        initializers.get("lecun_normal")
