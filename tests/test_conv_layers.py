"""Conv2D, MaxPooling2D and Dropout: the Layer contract, Keras's arithmetic against direct
loops, gradients, errors, and the reports' CNN (summary, gradients, overfitting, memory).

Results summed in different orders (im2col GEMMs against loops, chunked against whole batches)
are compared with ``tinynn.testing.assert_close``: ``depth`` roundings of the working dtype at
the compared values' scale, from the sums' lengths (``helpers.rounding_depth`` for a network).
Dropout's statistics are checked against their standard deviations, not rounding.
"""

import tracemalloc

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinynn as tn
from tinynn import models as models_module
from tinynn.errors import DTypeError, ShapeError, TinyNNError
from tinynn.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, MaxPooling2D, conv_algorithms
from tinynn.testing import assert_close, check_layer_gradients, check_model_gradients, floatx

from .helpers import check_layer, rounding_depth

seeds = st.integers(0, 2**32 - 1)
pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))
extras = st.tuples(st.integers(0, 3), st.integers(0, 3))  # input size beyond the window
paddings = st.sampled_from(["valid", "same"])

GOLDEN_CNN = '''\
Model: "sequential"
_________________________________________________________________
 Layer (type)                Output Shape              Param #
=================================================================
 conv2d (Conv2D)             (None, 28, 28, 32)        832

 max_pooling2d (MaxPooling2D  (None, 14, 14, 32)       0
 )

 conv2d_1 (Conv2D)           (None, 14, 14, 64)        51264

 max_pooling2d_1 (MaxPooling  (None, 7, 7, 64)         0
 2D)

 flatten (Flatten)           (None, 3136)              0

 dense (Dense)               (None, 1024)              3212288

 dropout (Dropout)           (None, 1024)              0

 dense_1 (Dense)             (None, 10)                10250
=================================================================
Total params: 3,274,634
Trainable params: 3,274,634
Non-trainable params: 0
_________________________________________________________________'''


def reports_cnn(seed: int = 0) -> tn.Sequential:
    """The reports' Task 3 network (docs/keras-parity.md, "The reports' models"), dropout 0.4."""
    return tn.Sequential([
        Conv2D(32, 5, padding="same", activation="relu", input_shape=(28, 28, 1)),
        MaxPooling2D(2), Conv2D(64, 5, padding="same", activation="relu"), MaxPooling2D(2),
        Flatten(), Dense(1024, activation="relu"), Dropout(0.4),
        Dense(10, activation="softmax")], seed=seed)


def keras_conv2d_by_loops(x, kernel, bias, strides, padding):
    """Keras's Conv2D written out from docs/keras-parity.md, "Layers": cross-correlation, NHWC,
    'same' padding total = max((out - 1) * stride + k - in, 0) with the smaller half before."""
    n, h, w, _ = x.shape
    kh, kw, _, f = kernel.shape
    sh, sw = strides
    if padding == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        pt, pl = max((oh - 1) * sh + kh - h, 0) // 2, max((ow - 1) * sw + kw - w, 0) // 2
    else:
        oh, ow, pt, pl = (h - kh) // sh + 1, (w - kw) // sw + 1, 0, 0
    y = np.zeros((n, oh, ow, f))
    for i, r, s, a, b in np.ndindex(n, oh, ow, kh, kw):
        ih, iw = r * sh - pt + a, s * sw - pl + b
        if 0 <= ih < h and 0 <= iw < w:
            y[i, r, s] += x[i, ih, iw] @ kernel[a, b]  # (C,) @ (C, F)
    return y + bias


def built(layer, input_shape, rng, dtype="float64"):
    with floatx(dtype):
        layer.build(input_shape, rng)
    return layer


def distinct_values(shape, rng) -> np.ndarray:
    """Values at least 0.1 apart: max-pool windows without ties, even under perturbation."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0


# --- the contract (hypothesis) ----------------------------------------------------------------


@given(filters=st.integers(1, 3), kernel=pairs,
       strides=st.tuples(st.integers(1, 2), st.integers(1, 2)), padding=paddings,
       extra=extras, channels=st.integers(1, 2),
       activation=st.sampled_from(["linear", "tanh", "relu"]), seed=seeds)
def test_conv2d_contract(filters, kernel, strides, padding, extra, channels, activation, seed):
    rng = np.random.default_rng(seed)
    shape = (kernel[0] + extra[0], kernel[1] + extra[1], channels)
    layer = built(Conv2D(filters, kernel, strides, padding, activation=activation), shape, rng)
    layer.params["bias"][...] = rng.standard_normal(filters)
    x = rng.standard_normal((3, *shape))
    if activation == "relu":
        assume(np.abs(layer.forward_logits(x)).min() >= 1e-3)
    check_layer(layer, shape, rng, x=x)


@given(pool=pairs, strides=st.none() | pairs, padding=paddings, extra=extras, seed=seeds)
def test_maxpooling2d_contract(pool, strides, padding, extra, seed):
    rng = np.random.default_rng(seed)
    shape = (pool[0] + extra[0], pool[1] + extra[1], 2)
    check_layer(MaxPooling2D(pool, strides, padding), shape, rng,
                x=distinct_values((3, *shape), rng))


@pytest.mark.parametrize("make", [lambda: Dropout(0.0), lambda: Dropout(0.0, seed=3, name="d")])
def test_dropout_rate_zero_contract(make, rng):
    check_layer(make(), (4, 3), rng)


# --- Keras's arithmetic -----------------------------------------------------------------------


@pytest.mark.parametrize("kernel, strides, padding, shape", [
    (3, 1, "same", (5, 5, 2)),
    (3, 1, "valid", (5, 6, 2)),
    (2, 1, "same", (5, 6, 2)),            # even kernel: one pixel of padding, bottom/right
    (4, 2, "same", (7, 6, 3)),
    (2, 2, "same", (7, 7, 1)),            # stride not dividing the input
    ((2, 3), (3, 2), "same", (8, 7, 2)),
    (5, 1, "same", (6, 6, 1)),            # the reports' kernel
    ((3, 2), (2, 1), "valid", (7, 5, 2)),
    (1, 3, "same", (7, 7, 2)),
    (5, 1, "same", (3, 3, 1)),            # kernel larger than the input
])
def test_conv2d_matches_direct_keras_cross_correlation(kernel, strides, padding, shape, rng):
    layer = built(Conv2D(3, kernel, strides, padding), shape, rng)
    layer.params["bias"][...] = rng.standard_normal(3)
    x = rng.standard_normal((2, *shape))
    expected = keras_conv2d_by_loops(x, layer.params["kernel"], layer.params["bias"],
                                     layer.strides, padding)
    taps = int(np.prod(layer.params["kernel"].shape[:3]))  # KH * KW * C terms per output
    for training in (False, True):  # two computations of a sum of taps terms and the bias
        assert_close(layer.forward(x, training=training), expected, depth=2 * (taps + 1))
    check_layer_gradients(layer, x, rng=rng)


def test_conv2d_forward_by_hand(rng):
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    valid = built(Conv2D(1, 2), (3, 3, 1), rng)
    valid.params["kernel"][...] = np.array([[1, 0], [0, -1]]).reshape(2, 2, 1, 1)
    valid.params["bias"][...] = 0.5
    # y[i, j] = x[i, j] - x[i + 1, j + 1] + 0.5 = -4 + 0.5 (cross-correlation: no flip)
    np.testing.assert_array_equal(valid.forward(x)[0, :, :, 0], [[-3.5, -3.5], [-3.5, -3.5]])
    same = built(Conv2D(1, 3, padding="same", use_bias=False), (3, 3, 1), rng)
    same.params["kernel"][...] = 1.0  # sums of each 3x3 neighbourhood, zeros outside
    np.testing.assert_array_equal(same.forward(x)[0, :, :, 0],
                                  [[12, 21, 16], [27, 45, 33], [24, 39, 28]])


def test_conv2d_same_even_kernel_pads_bottom_right(rng):
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    layer = built(Conv2D(1, 2, padding="same", use_bias=False), (3, 3, 1), rng)
    layer.params["kernel"][...] = np.array([[0, 0], [0, 1]]).reshape(2, 2, 1, 1)
    # Padding (0, 1) per axis: y[i, j] = x[i + 1, j + 1], zero past the bottom/right edge.
    np.testing.assert_array_equal(layer.forward(x)[0, :, :, 0], [[5, 6, 0], [8, 9, 0], [0, 0, 0]])


@pytest.mark.parametrize("kwargs, shape, expected", [
    (dict(kernel_size=5, padding="same"), (28, 28, 1), (28, 28, 32)),
    (dict(kernel_size=5), (28, 28, 1), (24, 24, 32)),
    (dict(kernel_size=3, strides=2, padding="same"), (28, 28, 1), (14, 14, 32)),
    (dict(kernel_size=4, strides=3, padding="same"), (28, 28, 1), (10, 10, 32)),
    (dict(kernel_size=(3, 5), strides=(1, 2)), (10, 11, 3), (8, 4, 32)),
])
def test_conv2d_output_shape_matches_keras(kwargs, shape, expected):
    assert Conv2D(32, **kwargs).compute_output_shape(shape) == expected


@pytest.mark.parametrize("kwargs, shape, expected", [
    (dict(), (28, 28, 32), (14, 14, 32)),
    (dict(), (14, 14, 64), (7, 7, 64)),
    (dict(pool_size=3), (7, 7, 1), (2, 2, 1)),          # strides default to pool_size
    (dict(pool_size=3, strides=1), (7, 7, 1), (5, 5, 1)),
    (dict(padding="same"), (7, 7, 2), (4, 4, 2)),
    (dict(pool_size=(2, 3), strides=(1, 2), padding="same"), (5, 5, 1), (5, 3, 1)),
])
def test_maxpooling2d_output_shape_matches_keras(kwargs, shape, expected):
    assert MaxPooling2D(**kwargs).compute_output_shape(shape) == expected


def test_maxpooling2d_same_padding_never_picks_the_padding(rng):
    layer = built(MaxPooling2D(2, padding="same"), (3, 3, 1), rng)
    x = -np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # all negative: zero padding would win
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(y[0, :, :, 0], [[-1, -3], [-7, -9]])
    dx = layer.backward(np.array([1.0, 2, 3, 4]).reshape(1, 2, 2, 1))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 0, 2], [0, 0, 0], [3, 0, 4]])


def test_maxpooling2d_ties_route_gradient_to_first_max_in_row_major_order(rng):
    layer = built(MaxPooling2D(2), (2, 2, 1), rng)
    x = np.array([[0.0, 7.0], [7.0, 7.0]]).reshape(1, 2, 2, 1)
    layer.forward(x, training=True)
    dx = layer.backward(np.array([5.0]).reshape(1, 1, 1, 1))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 5], [0, 0]])


def test_max_pool2d_alias_is_max_pooling2d():
    assert MaxPool2D is MaxPooling2D
    assert MaxPool2D(3).get_config() == {"name": None, "pool_size": [3, 3], "strides": [3, 3],
                                         "padding": "valid"}


# --- parameters, gradients, configuration -----------------------------------------------------


def test_conv2d_parameter_shapes_and_counts(rng):
    conv1 = built(Conv2D(32, 5, padding="same"), (28, 28, 1), rng, "float32")
    conv2 = built(Conv2D(64, 5, padding="same", use_bias=False), (14, 14, 32), rng, "float32")
    assert conv1.params["kernel"].shape == (5, 5, 1, 32) and conv1.params["bias"].shape == (32,)
    assert conv1.params["kernel"].dtype == np.float32
    assert (conv1.count_params(), conv2.count_params()) == (832, 51200)
    assert list(conv2.params) == ["kernel"]


def test_conv2d_gradients_overwritten_not_accumulated(rng):
    layer, fresh = (built(Conv2D(2, 3, strides=2, padding="same"), (5, 5, 2), rng)
                    for _ in range(2))
    fresh.params["kernel"][...] = layer.params["kernel"]
    grads = dict(layer.grads)
    x = rng.standard_normal((2, 5, 5, 2))
    dy1, dy2 = rng.standard_normal((2, 2, 3, 3, 2))
    for dy in (dy1, dy2):
        layer.forward(x, training=True)
        layer.backward(dy)
    fresh.forward(x, training=True)
    fresh.backward(dy2)
    for key in layer.grads:
        assert layer.grads[key] is grads[key]
        np.testing.assert_array_equal(layer.grads[key], fresh.grads[key])


def test_conv2d_get_config_round_trips_with_keras_names():
    layer = Conv2D(8, (3, 5), strides=2, padding="SAME", activation="relu", use_bias=False,
                   name="c", input_shape=(28, 28, 1))
    config = layer.get_config()
    assert config == {"name": "c", "input_shape": [28, 28, 1], "filters": 8,
                      "kernel_size": [3, 5], "strides": [2, 2], "padding": "same",
                      "activation": "relu", "use_bias": False,
                      "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros",
                      "kernel_regularizer": None, "bias_regularizer": None}
    assert Conv2D.from_config(config).get_config() == config


def test_dropout_get_config_round_trips():
    config = Dropout(0.25, seed=7, name="drop").get_config()
    assert config == {"name": "drop", "rate": 0.25, "seed": 7}
    assert Dropout.from_config(config).get_config() == config


# --- Dropout ----------------------------------------------------------------------------------


def test_dropout_inference_returns_input_unchanged(rng):
    layer = built(Dropout(0.5, seed=0), (3,), rng)
    x = rng.standard_normal((4, 3))
    assert layer.forward(x) is x and layer.forward(x, training=False) is x
    assert not layer.holds_cache


def test_dropout_rate_zero_is_identity_in_training(rng):
    layer = built(Dropout(0.0), (3,), rng)
    x = rng.standard_normal((4, 3))
    assert layer.forward(x, training=True) is x
    dy = rng.standard_normal((4, 3))
    assert layer.backward(dy) is dy


@pytest.mark.parametrize("rate", [0.1, 0.4, 0.75])
def test_dropout_keeps_one_minus_rate_and_scales_by_inverse(rate, rng):
    layer = built(Dropout(rate, seed=1), (1000,), rng, "float32")
    x = np.ones((200, 1000), np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    kept = y != 0
    assert set(np.unique(y).tolist()) == {0.0, float(np.float32(1 / (1 - rate)))}
    assert abs(kept.mean() - (1 - rate)) < 0.006  # 5 standard deviations over 200,000 draws
    assert abs(y.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation
    dy = np.full_like(x, 2.0)
    np.testing.assert_array_equal(layer.backward(dy), 2.0 * y)  # same mask, same scale


def test_dropout_gradients_with_a_fixed_mask(rng):
    layer = built(Dropout(0.5, seed=3), (4, 3), rng)
    x = rng.standard_normal((5, 4, 3))
    check_layer_gradients(layer, x, rng=rng)  # the harness rewinds layer.rng: same mask


def test_dropout_masks_follow_the_seed(rng):
    masks = []
    for seed in (5, 5, 6):
        layer = built(Dropout(0.5, seed=seed), (50,), rng)
        masks.append(layer.forward(np.ones((4, 50)), training=True))
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2])


def test_dropout_in_a_model_draws_from_the_model_dropout_generator():
    model = reports_cnn()
    model.build()
    assert model.layers[6].rng is model.rngs["dropout"]


# --- the gradient check catches broken conv and pooling backwards -----------------------------


class PaddingShifted(Conv2D):
    """d(input) through col2im with all of the padding moved to the bottom/right."""

    def linear_backward(self, dz):
        kh, kw, sh, sw, pt, pb, pl, pr = correct = self.window
        self.window = (kh, kw, sh, sw, 0, pt + pb, 0, pl + pr)
        try:
            return super().linear_backward(dz)
        finally:
            self.window = correct


class KernelGradientFlipped(Conv2D):
    """The kernel gradient of a true convolution (flipped), not of a cross-correlation."""

    def linear_backward(self, dz):
        dx = super().linear_backward(dz)
        self.grads["kernel"][...] = self.grads["kernel"][::-1, ::-1].copy()
        return dx


class PoolingMisrouted(MaxPooling2D):
    """Each window's gradient sent to the element after its maximum."""

    def backward(self, dy):
        self._cache["argmax"] = (self._cache["argmax"] + 1) % 4
        return super().backward(dy)


@pytest.mark.parametrize("layer, tensor", [(PaddingShifted(2, 3, padding="same"), "input"),
                                           (KernelGradientFlipped(2, 3), "kernel"),
                                           (PoolingMisrouted(2), "input")])
def test_gradient_check_catches_broken_backward(layer, tensor, rng):
    shape = (6, 6, 2)
    built(layer, shape, rng)
    with pytest.raises(AssertionError, match=f"gradient of .*{tensor}"):
        check_layer_gradients(layer, distinct_values((2, *shape), rng), rng=rng)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make, match", [
    (lambda: Conv2D(0, 3), r"Conv2D filters expected a positive integer, got 0"),
    (lambda: Conv2D(2.5, 3), r"Conv2D filters expected a positive integer, got 2.5"),
    (lambda: Conv2D(4, 0), r"Conv2D kernel_size expected a positive integer, got 0"),
    (lambda: Conv2D(4, (3, -1)), r"Conv2D kernel_size expected a positive integer, got -1"),
    (lambda: Conv2D(4, (3, 3, 3)), r"Conv2D kernel_size expected an int or 2 ints"),
    (lambda: Conv2D(4, None), r"Conv2D kernel_size expected an int or 2 ints, got None"),
    (lambda: Conv2D(4, 3, strides=0), r"Conv2D strides expected a positive integer, got 0"),
    (lambda: Conv2D(4, 3, padding="full"), r"Conv2D padding expected one of \('valid', 'same'\)"),
    (lambda: Conv2D(4, 3, activation="Swish"), r"unknown activation 'Swish'"),
    (lambda: MaxPooling2D(0), r"MaxPooling2D pool_size expected a positive integer, got 0"),
    (lambda: MaxPooling2D(2, strides=-2), r"MaxPooling2D strides expected a positive integer"),
    (lambda: MaxPooling2D(padding="causal"), r"MaxPooling2D padding expected one of"),
    (lambda: MaxPooling2D(17), r"at most 256 elements per window, got \(17, 17\)"),
    (lambda: Dropout(-0.1), r"Dropout rate expected a finite number in \[0, 1\), got -0.1"),
    (lambda: Dropout(1.0), r"Dropout rate expected a finite number in \[0, 1\), got 1.0"),
    (lambda: Dropout(float("nan")), r"Dropout rate expected a finite number"),
    (lambda: Dropout("0.5"), r"Dropout rate expected a finite number"),
    (lambda: Dropout(True), r"Dropout rate expected a finite number"),
    (lambda: Dropout(0.5, seed=-1), r"Dropout seed expected a non-negative integer, got -1"),
])
def test_invalid_hyper_parameters_rejected_naming_the_argument(make, match):
    with pytest.raises(TinyNNError, match=match):
        make()


def test_conv2d_build_on_images_without_channel_axis_suggests_one(rng):
    match = (r"Conv2D 'c' expected NHWC input \(N, H, W, C\), got \(N, 28, 28\): add a channel "
             r"axis, e.g. x\[\.\.\., None\]")
    with pytest.raises(ShapeError, match=match):
        Conv2D(4, 3, name="c").build((28, 28), rng)


def test_conv2d_forward_names_layout_mistakes(rng):
    layer = built(Conv2D(4, 3, name="c"), (28, 28, 1), rng, "float32")
    cases = [((2, 28, 28), r"got \(2, 28, 28\): add a channel axis, e\.g\. x\[\.\.\., None\]"),
             ((2, 1, 28, 28), r"got \(2, 1, 28, 28\): this looks channels-first \(NCHW\)"),
             ((2, 28, 28, 3), r"built for 1 input channels, got 3"),
             ((2, 27, 28, 1), r"expected NHWC input \(N, 28, 28, 1\), got \(2, 27, 28, 1\)$")]
    for shape, match in cases:
        with pytest.raises(ShapeError, match=match):
            layer.forward(np.zeros(shape, np.float32))


@pytest.mark.parametrize("layer, shape, match", [
    (Conv2D(4, 5, name="c"), (3, 3, 1), r"Conv2D 'c' window 5x5 is larger than its input "
                                        r"\(N, 3, 3, 1\) with padding='valid'"),
    (Conv2D(4, 5), (1, 28, 28), r"channels-first images \(C, H, W\)"),
    (MaxPooling2D(3), (2, 2, 1), r"MaxPooling2D None window 3x3 is larger than its input"),
])
def test_window_larger_than_input_rejected_at_build(layer, shape, match, rng):
    with pytest.raises(ShapeError, match=match):
        layer.compute_output_shape(shape)
    with pytest.raises(ShapeError, match=match):
        layer.build(shape, rng)


def test_conv_model_on_images_without_channel_axis_fails_at_build():
    model = tn.Sequential([Conv2D(4, 3, input_shape=(28, 28)), Flatten(), Dense(2)])
    with pytest.raises(ShapeError, match=r"add a channel axis"):
        model.build()


def test_conv2d_dtype_mismatch(rng):
    layer = built(Conv2D(2, 3), (5, 5, 1), rng)
    with pytest.raises(DTypeError, match="expected float64 input, got float32"):
        layer.forward(np.zeros((1, 5, 5, 1), np.float32))


@pytest.mark.parametrize("make", [lambda: Conv2D(2, 3), lambda: MaxPooling2D(2),
                                  lambda: Dropout(0.5)])
def test_layer_backward_without_training_forward(make, rng):
    layer = built(make(), (4, 4, 1), rng)
    x = rng.standard_normal((2, 4, 4, 1))
    dy = layer.forward(x)
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        layer.backward(dy)


# --- inference memory -------------------------------------------------------------------------


def peak_bytes(run, warm_up) -> int:
    """Peak traced allocation (NumPy reports its buffers to tracemalloc) during ``run()``, after
    ``warm_up()`` has compiled (or loaded) the numba kernels, whose compilation allocates too."""
    warm_up()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_conv2d_inference_unfolds_in_chunks_and_keeps_nothing(monkeypatch, rng):
    layer = built(Conv2D(8, 3, strides=(1, 2), padding="same"), (9, 8, 3), rng)
    layer.params["bias"][...] = rng.standard_normal(8)
    x = rng.standard_normal((7, 9, 8, 3))
    expected = layer.forward(x, training=True)
    layer.release_cache()
    per_sample = 9 * 4 * 27 * 8  # OH * OW * KH*KW*C * float64 bytes (im2col: strides 2)
    monkeypatch.setattr(conv_algorithms, "CHUNK_BYTES", 2 * per_sample)  # chunks of 2
    # two GEMMs (the chunks may block differently) of 3 * 3 * 3 = 27 terms, and the bias
    assert_close(layer.forward(x), expected, depth=2 * (27 + 1))
    assert not layer.holds_cache


@pytest.mark.parametrize("chunk_samples", [1, 2, 7])
def test_conv2d_training_in_chunks_keeps_the_input_and_matches_one_chunk(monkeypatch, rng,
                                                                         chunk_samples):
    layer = built(Conv2D(8, 3, strides=(1, 2), padding="same"), (9, 8, 3), rng)
    layer.params["bias"][...] = rng.standard_normal(8)
    x = rng.standard_normal((7, 9, 8, 3))
    dy = rng.standard_normal((7, 9, 4, 8))
    whole = layer.forward(x, training=True)
    dx_whole, dkernel_whole = layer.backward(dy), layer.grads["kernel"].copy()
    per_sample = 9 * 4 * 27 * 8  # OH * OW * KH*KW*C * float64 bytes
    monkeypatch.setattr(conv_algorithms, "CHUNK_BYTES", chunk_samples * per_sample)
    assert_close(layer.forward(x, training=True), whole, depth=2 * (27 + 1))
    saved_input, unfolded = layer._cache["saved"]
    assert saved_input is x and (unfolded is None) == (chunk_samples < 7)
    assert_close(layer.backward(dy), dx_whole, depth=2 * 8)  # sums of F = 8 products
    # the kernel gradient sums 7 * 9 * 4 products, in chunks or at once
    assert_close(layer.grads["kernel"], dkernel_whole, depth=2 * 7 * 9 * 4)
    check_layer_gradients(layer, x)  # float64, random upstream gradient, in chunks


def test_conv2d_inference_memory_is_output_plus_one_chunk(rng):
    layer = built(Conv2D(64, 5, padding="same"), (14, 14, 32), rng, "float32")
    x = rng.standard_normal((1000, 14, 14, 32), dtype=np.float32)  # unfolded: 627 MB
    output_bytes = 1000 * 14 * 14 * 64 * 4
    peak = peak_bytes(lambda: layer.forward(x), lambda: layer.forward(x[:2]))
    assert peak <= output_bytes + conv_algorithms.CHUNK_BYTES + 2**20


def test_reports_cnn_predict_on_10000_images_at_once_adds_at_most_512_mb():
    model = reports_cnn()
    model.build()
    x = np.random.default_rng(0).random((10_000, 28, 28, 1), dtype=np.float32)
    # One batch of 10,000 would need conv1's output (10000, 28, 28, 32) alone: 957 MiB. The model
    # splits inference into sub-batches and Conv2D unfolds im2col in chunks.
    peak = peak_bytes(lambda: model.predict(x, batch_size=10_000, verbose=0),
                      lambda: model.predict(x[:2], verbose=0))
    assert peak <= 512 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_inference_sub_batches_give_the_same_predictions_and_loss(monkeypatch):
    model = reports_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(1).random((40, 28, 28, 1), dtype=np.float32)
    y = np.arange(40) % 10
    whole = model.predict(x, batch_size=40, verbose=0)
    loss, accuracy = model.evaluate(x, y, batch_size=40, verbose=0)
    monkeypatch.setattr(models_module.model, "INFERENCE_ACTIVATION_BYTES", 1)  # 1 sample a chunk
    depth = rounding_depth(model)  # the same network, its GEMMs blocked for other batch sizes
    assert_close(model.predict(x, batch_size=40, verbose=0), whole, depth=depth)
    sub_loss, sub_accuracy = model.evaluate(x, y, batch_size=40, verbose=0)
    assert_close(sub_loss, loss, depth=depth + len(x), dtype=np.float32)  # + the mean's sum
    assert sub_accuracy == accuracy  # a count


# --- the reports' CNN and small conv nets -----------------------------------------------------


def test_reports_cnn_summary_matches_keras_golden_text():
    lines = []
    reports_cnn().summary(print_fn=lines.append)
    assert [line.rstrip() for line in lines] == GOLDEN_CNN.splitlines()


def test_reports_cnn_parameter_counts():
    model = reports_cnn()
    model.build()
    assert [layer.count_params() for layer in model.layers] == [
        832, 0, 51_264, 0, 0, 3_212_288, 0, 10_250]
    assert model.count_params() == 3_274_634


def test_reports_cnn_predicts_zero_samples_as_an_empty_batch():
    out = reports_cnn().predict(np.zeros((0, 28, 28, 1), np.float32), verbose=0)
    assert out.shape == (0, 10) and out.dtype == np.float32


def test_conv_net_model_gradients_match_numerical():
    with floatx("float64"):
        model = tn.Sequential([Conv2D(3, 3, padding="same", activation="relu",
                                      input_shape=(6, 6, 1)),
                               MaxPooling2D(2), Flatten(), Dropout(0.3),
                               Dense(4, activation="softmax")], seed=6)
        model.compile("adam", "sparse_categorical_crossentropy")
        model.build()
        rng = np.random.default_rng(0)
        model.layers[0].params["bias"][...] = [0.1, -0.2, 0.3]
        x = rng.standard_normal((3, 6, 6, 1))
        y = np.array([0, 3, 1])
        # ReLU inputs away from the kink, so central differences see a smooth function.
        assert np.abs(model.layers[0].forward_logits(x)).min() >= 1e-3
        check_model_gradients(model, x, y, rng=rng)


def test_conv_net_overfits_20_samples():
    rng = np.random.default_rng(0)
    x = rng.random((20, 8, 8, 1), dtype=np.float32)
    y = np.arange(20) % 10
    model = tn.Sequential([Conv2D(8, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
                           MaxPooling2D(2), Conv2D(16, 3, activation="relu"), Flatten(),
                           Dense(10, activation="softmax")], seed=0)
    model.compile(tn.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=10, epochs=60, verbose=0)
    assert history.history["accuracy"][-1] == 1.0
    assert model.evaluate(x, y, verbose=0)[1] == 1.0


@pytest.mark.parametrize("shape, hint", [
    ((2, 28, 28), r"add the channel axis, e\.g\. x\[\.\.\., None\]"),
    ((2, 1, 28, 28), r"channels-first \(NCHW\) data given, NHWC expected"),
])
def test_reports_cnn_names_the_image_layout_slip(shape, hint):
    model = reports_cnn()
    with pytest.raises(ShapeError, match=r"expects x of shape \(N, 28, 28, 1\), got .*" + hint):
        model.predict(np.zeros(shape, np.float32), verbose=0)
