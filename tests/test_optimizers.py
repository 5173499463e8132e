"""Optimizers: Keras's formulas by hand, fused numba kernels vs NumPy twins, state views."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynn as tn
from tinynn import ops
from tinynn.errors import TinyNNError
from tinynn.ops import reference
from tinynn.testing import assert_close

numba_kernels = pytest.importorskip("tinynn.ops.numba_kernels")


def adam_by_hand(w, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    """Keras Adam written out step by step in float64 from docs/keras-parity.md, "Optimizers"."""
    m = v = 0.0
    for t, g in enumerate(grads, start=1):
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        w = w - alpha * m / (math.sqrt(v) + eps)
    return w


def built_optimizer(optimizer, params):
    optimizer.build(params, {"w": (slice(0, params.size), params.shape)})
    return optimizer


def test_adam_first_three_steps_match_keras_formula_by_hand():
    w0 = np.array([0.5, -1.0, 2.0], dtype=np.float64)
    steps = [np.array([0.1, -0.2, 0.3]), np.array([-0.05, 0.4, 0.0]), np.array([1.0, 2.0, -3.0])]
    params = w0.copy()
    adam = built_optimizer(tn.optimizers.Adam(learning_rate=0.01), params)
    for g in steps:
        adam.apply(params, g.copy())
    expected = [adam_by_hand(w0[i], [g[i] for g in steps], lr=0.01) for i in range(3)]
    # each side (kernel, hand) rounds ~16 times per step (alpha's powers, sqrt and divisions,
    # m, v, sqrt, division, subtraction), over 3 steps
    assert_close(params, expected, depth=2 * 3 * 16)
    assert adam.iterations == 3


def test_adam_first_step_moves_each_weight_by_learning_rate():
    # With t = 1, m = 0.1 g and v = 0.001 g^2, so the step is lr * g / (|g| + eps/sqrt(0.001)).
    params = np.zeros(2, dtype=np.float32)
    adam = built_optimizer(tn.optimizers.Adam(), params)
    g = np.array([3.0, -0.5])
    adam.apply(params, g.astype(np.float32))
    expected = -0.001 * g / (np.abs(g) + 1e-7 / np.sqrt(0.001))
    # alpha's float32 1 - 0.999 cancels, growing 0.999's rounding (eps / 2) 1000 times, and its
    # sqrt halves that: 250 roundings of the step (measured 54), plus ~10 in the step itself
    assert_close(params, expected, depth=250 + 10)


def test_sgd_plain_momentum_and_nesterov_match_keras_formula():
    g1, g2 = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    for momentum, nesterov in [(0.0, False), (0.9, False), (0.9, True)]:
        params = np.array([1.0, 1.0])
        sgd = built_optimizer(tn.optimizers.SGD(0.1, momentum=momentum, nesterov=nesterov), params)
        w, v = np.array([1.0, 1.0]), np.zeros(2)
        for g in (g1, g2):
            sgd.apply(params, g.copy())
            v = momentum * v - 0.1 * g
            w = w + (momentum * v - 0.1 * g if nesterov else v)
        # each side rounds at most 6 times per step (products, differences, the sum), 2 steps
        assert_close(params, w, depth=2 * 2 * 6)


@given(size=st.integers(1, 300), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float32, np.float64]), steps=st.integers(1, 3))
def test_adam_update_numba_matches_numpy_reference(size, seed, dtype, steps):
    rng = np.random.default_rng(seed)
    buffers = [rng.standard_normal(size).astype(dtype) for _ in range(2)]
    state = [np.zeros(size, dtype), np.zeros(size, dtype)]
    fast = [b.copy() for b in buffers] + [s.copy() for s in state]
    one = dtype(1)
    for _ in range(steps):
        grads = rng.standard_normal(size).astype(dtype)
        args = (dtype(0.003), one - dtype(0.9), one - dtype(0.999), dtype(1e-7))
        reference.adam_update(buffers[0], grads, state[0], state[1], *args)
        numba_kernels.adam_update(fast[0], grads, fast[2], fast[3], *args)
    # element-wise twins: each side rounds ~10 times per element and step (m, v, sqrt, division,
    # the subtraction); params near zero are judged at the params' scale
    depth = 2 * steps * 10
    assert_close(fast[0], buffers[0], depth=depth, err_msg="params")
    assert_close(fast[2], state[0], depth=depth, err_msg="m")
    assert_close(fast[3], state[1], depth=depth, err_msg="v")


@given(size=st.integers(1, 300), seed=st.integers(0, 2**32 - 1),
       momentum=st.sampled_from([0.0, 0.5, 0.9]), nesterov=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_sgd_update_numba_matches_numpy_reference(size, seed, momentum, nesterov, dtype):
    rng = np.random.default_rng(seed)
    params, velocity = rng.standard_normal(size).astype(dtype), np.zeros(size, dtype)
    fast_params, fast_velocity = params.copy(), velocity.copy()
    for _ in range(2):
        grads = rng.standard_normal(size).astype(dtype)
        args = (dtype(0.05), dtype(momentum), nesterov)
        reference.sgd_update(params, grads, velocity, *args)
        numba_kernels.sgd_update(fast_params, grads, fast_velocity, *args)
    # element-wise twins: each side rounds at most 6 times per element and step, 2 steps;
    # params near zero are judged at the params' scale
    assert_close(fast_params, params, depth=2 * 2 * 6, err_msg="params")
    assert_close(fast_velocity, velocity, depth=2 * 2 * 6, err_msg="velocity")


def test_all_finite_kernels_agree_on_nan_and_inf():
    for values in ([1.0, 2.0], [1.0, np.nan], [np.inf, 0.0], []):
        array = np.array(values, dtype=np.float32)
        assert numba_kernels.all_finite(array) == reference.all_finite(array) == (
            bool(np.isfinite(array).all()))


def test_optimizer_kernels_default_to_numba():
    assert ops.BACKEND == "numba"
    assert ops.implementation("adam_update") == "numba"


def test_adam_state_for_returns_views_into_flat_state():
    model = tn.Sequential([tn.layers.Dense(3, input_shape=(2,))], seed=0)
    model.compile("adam", "mse")
    model.build()
    state = model.optimizer.state_for("dense/kernel")
    assert state["m"].shape == (2, 3) and np.shares_memory(state["m"], model.optimizer.state["m"])
    state["v"][...] = 7.0  # restorable: writing the view writes the optimizer's buffer
    where, _ = model.layout["dense/kernel"]
    assert np.all(model.optimizer.state["v"][where] == 7.0)


@pytest.mark.parametrize("make, match", [
    (lambda: tn.optimizers.Adam(learning_rate=0), "learning_rate"),
    (lambda: tn.optimizers.Adam(learning_rate=float("nan")), "learning_rate"),
    (lambda: tn.optimizers.Adam(beta_1=1.0), "beta_1"),
    (lambda: tn.optimizers.Adam(beta_2=1.5), "beta_2"),
    (lambda: tn.optimizers.Adam(epsilon=-1), "epsilon"),
    (lambda: tn.optimizers.SGD(learning_rate=-0.1), "learning_rate"),
    (lambda: tn.optimizers.SGD(momentum=1.0), "momentum"),
    (lambda: tn.optimizers.get("adagrad"), "unknown optimizer 'adagrad'"),
])
def test_optimizer_bad_hyper_parameters_are_refused_naming_the_argument(make, match):
    with pytest.raises(TinyNNError, match=match):
        make()


def test_optimizer_get_by_string_and_instance():
    assert isinstance(tn.optimizers.get("adam"), tn.optimizers.Adam)
    assert isinstance(tn.optimizers.get("SGD"), tn.optimizers.SGD)
    adam = tn.optimizers.Adam(0.01)
    assert tn.optimizers.get(adam) is adam
    assert (tn.optimizers.Adam().get_config() ==
            {"name": "adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999,
             "epsilon": 1e-7, "amsgrad": False})
