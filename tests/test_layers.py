"""Tests for Input, Flatten, Dense and Activation: the Layer contract, hand numbers, errors.

Computed values are compared with ``tinynn.testing.assert_close``: ``depth`` roundings of the
working dtype at the compared values' scale, from the computation; hand numbers that are exact
in binary, exactly.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tinynn import activations
from tinynn.errors import DTypeError, ShapeError, TinyNNError
from tinynn.layers import Activation, Dense, Flatten, Input, InputLayer
from tinynn.testing import assert_close, floatx

from .helpers import check_layer

ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax"]
seeds = st.integers(0, 2**32 - 1)
dims = st.integers(1, 5)


def away_from_kink(x: np.ndarray) -> np.ndarray:
    """Move entries with |x| < 1e-3 (ReLU's kink) to 0.5."""
    return np.where(np.abs(x) < 1e-3, 0.5, x)


# --- the contract (hypothesis) ----------------------------------------------------------------


@given(units=dims, n_in=dims, batch=dims, activation=st.sampled_from(ACTIVATIONS),
       use_bias=st.booleans(), seed=seeds)
def test_dense_contract(units, n_in, batch, activation, use_bias, seed):
    rng = np.random.default_rng(seed)
    layer = Dense(units, activation=activation, use_bias=use_bias)
    with floatx("float64"):
        layer.build((n_in,), rng)
    if use_bias:  # zeros by default: make the bias matter
        layer.params["bias"][...] = rng.standard_normal(units)
    x = rng.standard_normal((batch, n_in))
    if activation == "relu":
        assume(np.abs(layer.forward_logits(x)).min() >= 1e-3)
    check_layer(layer, (n_in,), rng, x=x)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), seed=seeds)
def test_flatten_contract(shape, seed):
    check_layer(Flatten(), shape, np.random.default_rng(seed))


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       activation=st.sampled_from(ACTIVATIONS), seed=seeds)
def test_activation_layer_contract(shape, activation, seed):
    rng = np.random.default_rng(seed)
    x = away_from_kink(rng.standard_normal((2, *shape)))
    check_layer(Activation(activation), shape, rng, x=x)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=seeds)
def test_input_contract(shape, seed):
    check_layer(InputLayer(shape), shape, np.random.default_rng(seed))


def test_dense_contract_with_declared_input_shape(rng):
    check_layer(Dense(2, activation="tanh", name="d", input_shape=(3,)), (3,), rng)


# --- hand-computed numbers --------------------------------------------------------------------


def test_dense_forward_by_hand(float64, rng):
    layer = Dense(2, activation="relu")
    layer.build((3,), rng)
    layer.params["kernel"][...] = [[1, 0], [0, 1], [1, -1]]
    layer.params["bias"][...] = [0.5, -1]
    x = np.array([[1.0, 2, 3], [4, 5, 6]])
    # x @ kernel = [[1 + 3, 2 - 3], [4 + 6, 5 - 6]] = [[4, -1], [10, -1]]; + bias
    np.testing.assert_array_equal(layer.forward_logits(x), [[4.5, -2], [10.5, -2]])
    np.testing.assert_array_equal(layer.forward(x), [[4.5, 0], [10.5, 0]])


def test_dense_parameter_shapes_and_count(rng):
    layer = Dense(10)
    layer.build((784,), rng)
    assert layer.params["kernel"].shape == (784, 10) and layer.params["bias"].shape == (10,)
    assert layer.count_params() == 7850
    assert layer.params["kernel"].dtype == np.float32  # floatx default
    no_bias = Dense(10, use_bias=False)
    no_bias.build((784,), rng)
    assert list(no_bias.params) == ["kernel"] and no_bias.count_params() == 7840


@pytest.mark.parametrize("name, z, expected", [
    ("linear", [-2.0, 0.0, 3.0], [-2.0, 0.0, 3.0]),
    ("relu", [-2.0, 0.0, 3.0], [0.0, 0.0, 3.0]),
    ("sigmoid", [-math.log(3), 0.0, math.log(3)], [0.25, 0.5, 0.75]),
    ("tanh", [-math.log(2), 0.0, math.log(2)], [-0.6, 0.0, 0.6]),
    ("softmax", [0.0, math.log(2), math.log(3)], [1 / 6, 2 / 6, 3 / 6]),
    ("softmax", [5.0, 5.0], [0.5, 0.5]),
])
def test_activation_values_by_hand(name, z, expected):
    out = Activation(name)
    out.build((len(z),), None)
    # the inputs (log 2, log 3) rounded, an exp, a sum of up to 3, a division or a subtraction
    assert_close(out.forward(np.array([z])), np.array([expected]), depth=8)


@pytest.mark.parametrize("name, expected", [
    ("sigmoid", [1.0, 0.0, 0.5]),
    ("tanh", [1.0, -1.0, 0.0]),
    ("softmax", [1.0, 0.0, 0.0]),
])
def test_activation_large_inputs_stay_finite(name, expected):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = activations.get(name).forward(np.array([[1e4, -1e4, 0.0]]))
    np.testing.assert_array_equal(out, [expected])


def test_softmax_backward_is_jacobian_product():
    a = activations.Softmax().forward(np.array([[0.0, math.log(2), math.log(3)]]))
    da = np.array([[1.0, -2.0, 0.5]])
    jacobian = np.diag(a[0]) - np.outer(a[0], a[0])
    # from the same a, on each side: a sum of 3 products, and a product and a difference
    assert_close(activations.Softmax().backward(a, da), da @ jacobian, depth=2 * 5)


def test_activation_get_accepts_none_and_instances():
    assert activations.get(None).name == "linear"
    relu = activations.ReLU()
    assert activations.get(relu) is relu


def test_flatten_is_c_order(rng):
    layer = Flatten()
    layer.build((2, 3, 2), rng)
    x = np.arange(24.0).reshape(2, 2, 3, 2)
    np.testing.assert_array_equal(layer.forward(x), np.arange(24.0).reshape(2, 12))
    np.testing.assert_array_equal(layer.backward(layer.forward(x)), x)


@pytest.mark.parametrize("batch, units", [(1, 128), (32, 128), (33, 128), (32, 127), (4, 200)])
def test_dense_input_gradient_takes_either_product_correctly(batch, units):
    """Small batches of wide layers compute dx as (kernel @ dz^T)^T (``core.SKINNY_ROWS``,
    ``WIDE_UNITS``), the others as dz @ kernel^T: both give dz @ kernel^T within the rounding
    of a ``units``-term dot product, a C-contiguous array, and pass the gradient check."""
    rng = np.random.default_rng(batch * units)
    layer = Dense(units)
    with floatx("float64"):
        layer.build((3,), rng)
    x, dz = rng.standard_normal((batch, 3)), rng.standard_normal((batch, units))
    layer.forward(x, training=True)
    dx = layer.backward(dz)
    assert dx.flags.c_contiguous and dx.shape == (batch, 3)
    assert_close(dx, dz @ layer.params["kernel"].T, depth=units)
    check_layer(layer, (3,), rng, x=x)


# --- gradients are overwritten, not accumulated -----------------------------------------------


def test_dense_gradients_overwritten_not_accumulated(float64, rng):
    layer = Dense(3)
    layer.build((4,), rng)
    x = rng.standard_normal((5, 4))
    dy1, dy2 = rng.standard_normal((2, 5, 3))
    for dy in (dy1, dy2):
        layer.forward(x, training=True)
        layer.backward(dy)
    # two computations of sums over the batch of 5
    assert_close(layer.grads["kernel"], x.T @ dy2, depth=2 * 5)
    assert_close(layer.grads["bias"], dy2.sum(axis=0), depth=2 * 5)


# --- errors -----------------------------------------------------------------------------------


def test_dense_build_on_images_suggests_flatten(rng):
    with pytest.raises(ShapeError, match=r"got \(N, 28, 28\): add Flatten\(\) first"):
        Dense(10).build((28, 28), rng)


def test_dense_forward_on_images_suggests_flatten(rng):
    layer = Dense(10)
    layer.build((784,), rng)
    with pytest.raises(ShapeError, match=r"\(N, 784\), got \(2, 28, 28\): add Flatten"):
        layer.forward(np.zeros((2, 28, 28), np.float32))


def test_dense_wrong_feature_size_names_both_shapes(rng):
    layer = Dense(3, name="hidden")
    layer.build((4,), rng)
    with pytest.raises(ShapeError, match=r"'hidden'.*expected input \(N, 4\), got \(2, 5\)$"):
        layer.forward(np.zeros((2, 5), np.float32))


@pytest.mark.parametrize("units", [0, -3, True, 2.5, "8", None])
def test_dense_invalid_units_rejected(units):
    with pytest.raises(TinyNNError, match="units expected a positive integer"):
        Dense(units)


def test_dense_units_accepts_numpy_int():
    assert Dense(np.int64(4)).units == 4


@pytest.mark.parametrize("make", [lambda: Dense(3, activation="Swish"),
                                  lambda: Activation("Relu")])
def test_unknown_activation_rejected(make):
    with pytest.raises(TinyNNError, match=r"unknown activation '(Swish|Relu)'.*'relu'"):
        make()


def test_dense_dtype_mismatch(float64, rng):
    layer = Dense(3)
    layer.build((4,), rng)
    with pytest.raises(DTypeError, match="expected float64 input, got float32"):
        layer.forward(np.zeros((2, 4), np.float32))


@pytest.mark.parametrize("make", [lambda: Dense(2), lambda: Activation("tanh")])
def test_layer_backward_without_forward(make, rng):
    layer = make()
    layer.build((3,), rng)
    x = np.ones((2, 3), np.float32)
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        layer.backward(np.ones((2, 2 if isinstance(layer, Dense) else 3), np.float32))
    layer.forward(x, training=False)  # inference keeps no cache
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        layer.backward(np.ones((2, 2 if isinstance(layer, Dense) else 3), np.float32))


def test_layer_backward_twice_after_one_forward(rng):
    layer = Dense(2)
    layer.build((3,), rng)
    layer.forward(np.ones((2, 3), np.float32), training=True)
    layer.backward(np.ones((2, 2), np.float32))
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        layer.backward(np.ones((2, 2), np.float32))


@pytest.mark.parametrize("layer", [Dense(2), Flatten(), Activation("relu")])
def test_layer_forward_before_build(layer):
    with pytest.raises(RuntimeError, match=r"before build"):
        layer.forward(np.ones((2, 3), np.float32))


@pytest.mark.parametrize("shape", [(0,), (28, -1), (2.0,), (True,)])
def test_input_invalid_shape_rejected(shape):
    with pytest.raises(TinyNNError, match="Input shape dimension expected a positive integer"):
        Input(shape)


def test_input_wrong_shape(rng):
    layer = InputLayer((28, 28))
    with pytest.raises(ShapeError, match=r"expected input \(N, 28, 28\), got \(1, 784\)"):
        layer.forward(np.zeros((1, 784)))
