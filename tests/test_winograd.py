"""Winograd convolution: exact transform matrices, numba vs NumPy transforms, the layer against
im2col and finite differences, its float32 error against float64, and the algorithm choice."""

import importlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynn as tn
from tinynn.errors import TinyNNError
from tinynn.layers import Conv2D, conv_algorithms
from tinynn.ops import reference, winograd
from tinynn.testing import assert_close, floatx

from .helpers import check_layer

try:
    numba_kernels = importlib.import_module("tinynn.ops.numba_kernels")
except ImportError:
    numba_kernels = None
needs_numba = pytest.mark.skipif(numba_kernels is None, reason="numba is not importable")


def correlate(d: np.ndarray, g: np.ndarray, m: int) -> np.ndarray:
    """The m x m valid cross-correlation of a tile d with a filter g, by definition."""
    r = len(g)
    return np.array([[np.sum(d[i:i + r, j:j + r] * g) for j in range(m)] for i in range(m)])


@pytest.mark.parametrize("m, r", [(2, 3), (4, 3), (2, 5), (3, 5), (4, 5)])
def test_winograd_matrices_compute_the_correlation(m, r, rng):
    AT, G, BT = winograd.matrices(m, r)
    assert AT.shape == (m, m + r - 1) and G.shape == (m + r - 1, r) and BT.shape == (m + r - 1,) * 2
    assert np.array_equal(BT, np.round(BT)), "the input transform is integer (adds and shifts)"
    for _ in range(3):
        d, g = rng.standard_normal((m + r - 1, m + r - 1)), rng.standard_normal((r, r))
        y = AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T
        # Six products of (m + r - 1)-term sums whose terms grow with the matrices'
        # coefficients (up to 8 = 2^3): 6 (m + r - 1) roundings, 2^6 larger.
        assert_close(y, correlate(d, g, m), depth=6 * (m + r - 1) * 2**6)


def test_winograd_f2x2_3x3_is_lavins():
    AT, G, BT = winograd.matrices(2, 3)
    np.testing.assert_array_equal(BT, [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0],
                                       [0, -1, 0, 1]])
    np.testing.assert_array_equal(AT, [[1, 1, 1, 0], [0, 1, -1, 1]])
    assert_close(G, np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
                 depth=4)  # from Lagrange interpolation on (0, 1, -1): a few roundings


@needs_numba
@given(n=st.integers(1, 70_000), f=st.integers(1, 9), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_elementwise_kernels_numba_match_reference(n, f, seed, dtype):
    data = np.random.default_rng(seed)
    a, da = (data.standard_normal(n).astype(dtype) for _ in range(2))
    np.testing.assert_array_equal(numba_kernels.relu_backward(a, da),
                                  reference.relu_backward(a, da))
    z = data.standard_normal((n // f + 1, f)).astype(dtype)
    bias = data.standard_normal(f).astype(dtype)
    for relu in (False, True):
        np.testing.assert_array_equal(numba_kernels.bias_activation(z.copy(), bias, relu),
                                      reference.bias_activation(z.copy(), bias, relu))
    assert numba_kernels.all_finite(a)
    for bad in (np.nan, np.inf, -np.inf):
        broken = a.copy()
        broken[data.integers(n)] = bad
        assert not numba_kernels.all_finite(broken) and not reference.all_finite(broken)


def test_winograd_matrices_refuse_wrong_points():
    with pytest.raises(ValueError, match=r"F\(2, 5\) needs 5 distinct points, got"):
        winograd.matrices(2, 5, points=(0, 1, 1, 2, -2))


@st.composite
def transform_cases(draw):
    """(x, dy, m, r, PT, PL, TH, TW): an image batch and the tiling of a stride-1 convolution."""
    m, r = draw(st.sampled_from([(2, 3), (2, 5), (3, 5)]))
    padding = draw(st.sampled_from(["valid", "same"]))
    h, w = (draw(st.integers(r if padding == "valid" else 1, r + 6)) for _ in range(2))
    pt = pl = (r - 1) // 2 if padding == "same" else 0
    oh, ow = (h, w) if padding == "same" else (h - r + 1, w - r + 1)
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    data = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = data.standard_normal((n, h, w, c)).astype(dtype)
    dy = data.standard_normal((n, oh, ow, f)).astype(dtype)
    return x, dy, m, r, pt, pl, -(-oh // m), -(-ow // m)


@needs_numba
@given(case=transform_cases())
def test_winograd_transforms_numba_match_reference(case):
    x, dy, m, r, pt, pl, th, tw = case
    AT, _, BT = (a.astype(x.dtype) for a in winograd.matrices(m, r))

    def close(actual, desired, matrix, operand):
        """Two summation orders of (m + r - 1)^2-term transforms, against the terms' size."""
        n = (m + r - 1) ** 2
        assert_close(actual, desired, depth=2 * n,
                     scale=n * np.abs(matrix).max() ** 2 * np.abs(operand).max())

    for impl in (reference, numba_kernels):
        assert impl.winograd_input_transform(x, BT, m, pt, pl, th, tw).dtype == x.dtype
    V = reference.winograd_input_transform(x, BT, m, pt, pl, th, tw)
    close(numba_kernels.winograd_input_transform(x, BT, m, pt, pl, th, tw), V, BT, x)
    dx_args = (V, BT, x.shape, m, pt, pl, th, tw)
    close(numba_kernels.winograd_input_transform_backward(*dx_args),
          reference.winograd_input_transform_backward(*dx_args), BT, V)
    dM = reference.winograd_output_transform_backward(dy, AT, th, tw)
    close(numba_kernels.winograd_output_transform_backward(dy, AT, th, tw), dM, AT, dy)
    bias = np.linspace(-1, 1, dy.shape[3]).astype(x.dtype)
    for relu in (False, True):
        y_numba, y_reference = np.empty_like(dy), np.empty_like(dy)
        numba_kernels.winograd_output_transform(dM, AT, bias, relu, y_numba)
        reference.winograd_output_transform(dM, AT, bias, relu, y_reference)
        close(y_numba, y_reference, AT, dM)
        assert not relu or y_numba.min() >= 0


@given(case=transform_cases())
def test_winograd_transform_backwards_are_adjoints(case):
    """<T(x), v> == <x, T^T(v)> for both transforms, in float64."""
    x, dy, m, r, pt, pl, th, tw = case
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    AT, _, BT = winograd.matrices(m, r)
    V = reference.winograd_input_transform(x, BT, m, pt, pl, th, tw)
    v = np.random.default_rng(0).standard_normal(V.shape)
    back = reference.winograd_input_transform_backward(v, BT, x.shape, m, pt, pl, th, tw)
    # Inner products of n terms after transforms of (m + r - 1)^2 terms: against sum |terms|
    depth = 2 * (V.size + (m + r - 1) ** 2)
    assert_close(np.sum(V * v), np.sum(x * back), depth=depth, scale=np.abs(V * v).sum())
    dM = reference.winograd_output_transform_backward(dy, AT, th, tw)
    M = np.random.default_rng(1).standard_normal(dM.shape)
    y = np.empty_like(dy)
    reference.winograd_output_transform(M, AT, np.zeros(dy.shape[3]), False, y)
    depth = 2 * (M.size + (m + r - 1) ** 2)
    assert_close(np.sum(y * dy), np.sum(M * dM), depth=depth, scale=np.abs(M * dM).sum())


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_winograd_conv2d_meets_the_layer_contract(padding, kernel_size, rng):
    check_layer(Conv2D(4, kernel_size, padding=padding, activation="tanh", algorithm="winograd"),
                (7, 8, 3), rng)


def test_winograd_fused_relu_equals_relu_of_the_linear_layer(rng):
    x = rng.standard_normal((2, 6, 9, 4))
    layers = {}
    for activation in ("relu", None):
        layers[activation] = Conv2D(5, 5, padding="same", activation=activation,
                                    algorithm="winograd")
        with floatx("float64"):
            layers[activation].build((6, 9, 4), np.random.default_rng(5))
    z = layers[None].forward(x, training=True)
    y = layers["relu"].forward(x, training=True)
    np.testing.assert_array_equal(y, np.maximum(z, 0))
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(layers["relu"].backward(dy), layers[None].backward(dy * (z > 0)))


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_winograd_equals_im2col_in_float64(padding, rng):
    x = rng.standard_normal((3, 11, 10, 9))
    dy = rng.standard_normal((3, *Conv2D(6, 5, padding=padding).compute_output_shape(
        x.shape[1:])))
    results = {}
    for algorithm in ("im2col", "winograd"):
        layer = Conv2D(6, 5, padding=padding, activation="relu", algorithm=algorithm)
        with floatx("float64"):
            layer.build(x.shape[1:], np.random.default_rng(7))
        layer.params["bias"][...] = np.linspace(-0.5, 0.5, 6)
        y = layer.forward(x, training=True)
        dx = layer.backward(dy)
        results[algorithm] = (y, dx, *(g.copy() for g in layer.grads.values()))
    # Two algorithms' sums of 5 * 5 * 9 products (kernel gradient: 3 * 11 * 10), Winograd's
    # through transforms whose coefficients reach 8 (a few bits): 64 * fan-in roundings.
    for im2col_value, winograd_value in zip(results["im2col"], results["winograd"]):
        assert_close(winograd_value, im2col_value, depth=64 * 5 * 5 * 9)


def float32_errors(algorithm: str, rng) -> dict:
    """Largest error of float32 conv2 (the reports' CNN: 14x14x32 -> 64, 5x5 same) against the
    same layer in float64, relative to the largest float64 magnitude, for y, dx and dkernel."""
    x = rng.random((8, 14, 14, 32))
    dy = rng.standard_normal((8, 14, 14, 64))
    values = {}
    for dtype in ("float64", "float32"):
        layer = Conv2D(64, 5, padding="same", algorithm=algorithm)
        with floatx(dtype):
            layer.build((14, 14, 32), np.random.default_rng(3))
        y = layer.forward(x.astype(dtype), training=True)
        dx = layer.backward(dy.astype(dtype))
        values[dtype] = {"y": y, "dx": dx, "dkernel": layer.grads["kernel"].copy()}
    return {k: float(np.abs(values["float32"][k] - values["float64"][k]).max()
                     / np.abs(values["float64"][k]).max()) for k in values["float64"]}


def test_winograd_float32_error_is_bounded(rng):
    """Measured (8 images, of the largest float64 value): Winograd F(2x2, 5x5) y 2.0e-6,
    dx 3.4e-6, dkernel 9.8e-6; im2col 6.8e-7, 1.8e-7, 4.1e-7. Bound: sqrt(n) epsilons for a
    sum of n = 800 products in any order (Higham and Mary's probabilistic bound), ten times that
    for Winograd: the transforms' large coefficients (up to 5 in BT) cost a few bits, most in the
    kernel gradient, which sums the transformed products over every tile."""
    ours, im2col = float32_errors("winograd", rng), float32_errors("im2col", rng)
    sum_bound = np.sqrt(5 * 5 * 32) * np.finfo(np.float32).eps  # 3.4e-6
    for key in ours:
        assert ours[key] < 10 * sum_bound, (key, ours[key])
        assert im2col[key] < sum_bound, (key, im2col[key])


def test_winograd_inference_in_chunks_equals_one_batch(monkeypatch, rng):
    layer = Conv2D(8, 3, padding="same", algorithm="winograd")
    with floatx("float64"):
        layer.build((6, 6, 4), rng)
    x = rng.standard_normal((5, 6, 6, 4))
    whole = layer.forward(x)
    monkeypatch.setattr(conv_algorithms, "CHUNK_BYTES", 1)  # one sample per chunk
    # the same sums per sample; BLAS may block a 5-sample product differently from a 1-sample
    assert_close(layer.forward(x), whole, depth=2 * 3 * 3 * 4 * 16)


def test_auto_chooses_by_shape_and_the_environment_overrides(monkeypatch):
    monkeypatch.delenv(conv_algorithms.ENVIRONMENT_VARIABLE, raising=False)
    model = tn.Sequential([tn.layers.Input((28, 28, 1)),
                           Conv2D(32, 5, padding="same"), Conv2D(64, 5, padding="same"),
                           Conv2D(8, 5, strides=2), Conv2D(8, (3, 5)),
                           Conv2D(8, 3, algorithm="im2col")])
    model.build()
    assert [layer.algorithm_used for layer in model.layers] == ["im2col"] * 5  # as measured
    monkeypatch.setattr(conv_algorithms, "WINOGRAD_SHAPES", frozenset({(5, 5, 32)}))
    assert conv_algorithms.choose("auto", (5, 5), (1, 1), 32) == "winograd"
    assert conv_algorithms.choose("auto", (5, 5), (2, 2), 32) == "im2col"
    monkeypatch.setenv(conv_algorithms.ENVIRONMENT_VARIABLE, "winograd")
    assert conv_algorithms.choose("auto", (3, 3), (1, 1), 1) == "winograd"
    monkeypatch.setenv(conv_algorithms.ENVIRONMENT_VARIABLE, "im2col")
    assert conv_algorithms.choose("auto", (5, 5), (1, 1), 64) == "im2col"
    assert conv_algorithms.choose("winograd", (5, 5), (1, 1), 1) == "winograd"
    monkeypatch.setenv(conv_algorithms.ENVIRONMENT_VARIABLE, "fft")
    with pytest.raises(TinyNNError, match="TINYNN_CONV_ALGORITHM expected one of"):
        conv_algorithms.choose("auto", (5, 5), (1, 1), 64)


def test_winograd_refuses_strides_and_rectangular_kernels():
    for kernel_size, strides in (((5, 5), (2, 2)), ((3, 5), (1, 1)), ((7, 7), (1, 1))):
        layer = Conv2D(4, kernel_size, strides=strides, algorithm="winograd")
        with pytest.raises(TinyNNError, match="algorithm='winograd' needs strides"):
            layer.build((16, 16, 3), np.random.default_rng(0))
    with pytest.raises(TinyNNError, match="Conv2D algorithm"):
        Conv2D(4, 3, algorithm="fft")


def test_algorithm_round_trips_through_config():
    layer = Conv2D(4, 3, algorithm="winograd")
    assert layer.get_config()["algorithm"] == "winograd"
    assert Conv2D.from_config(layer.get_config()).algorithm == "winograd"
    assert "algorithm" not in Conv2D(4, 3).get_config()  # Keras's own arguments only
