"""AveragePooling2D and GlobalAveragePooling2D: hand-computed numbers, the numba kernels against
their NumPy twins and the window definition, the Layer contract, errors, and Keras 3 parity
(layer outputs and gradients, model predictions, one Adam step, configs and files both ways).

'same' average pooling divides each window's sum by its in-image elements only (TensorFlow's
avg_pool): a window overlapping the padding is not diluted by zeros.

Tolerances: ``tinynn.testing.assert_close``, ``depth`` roundings of the working dtype at the
scale of the summed terms (a window mean's error is relative to its inputs, not to the mean,
which may cancel to near zero): a window of PH * PW elements is a sum of as many terms and a
division. Against Keras, both implementations' roundings count; whole models allow them
through the network (``network_depth``: ``helpers.rounding_depth`` and the pooling sums). Hand
numbers that are exact in binary are compared exactly, as are the numba kernels with their twins
(bitwise, as documented).
"""

import importlib
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynn as tn
from tinynn.errors import ArgumentError, ShapeError, UnsupportedKerasFeatureError
from tinynn.layers import AveragePooling2D, AvgPool2D, GlobalAveragePooling2D, GlobalAvgPool2D
from tinynn.ops import reference, shapes
from tinynn.saving import keras_config
from tinynn.testing import assert_close, floatx, rounding_bound

from .helpers import check_layer, rounding_depth

try:
    numba_kernels = importlib.import_module("tinynn.ops.numba_kernels")
except ImportError:  # the package falls back to the reference; parity tests are skipped
    numba_kernels = None

L = tn.layers
IMPLEMENTATIONS = [reference] + ([numba_kernels] if numba_kernels is not None else [])
needs_numba = pytest.mark.skipif(numba_kernels is None, reason="numba is not importable")
by_implementation = pytest.mark.parametrize(
    "impl", IMPLEMENTATIONS, ids=lambda module: module.__name__.rsplit(".", 1)[-1])
seeds = st.integers(0, 2**32 - 1)
pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))
paddings = st.sampled_from(["valid", "same"])

GRID = np.arange(25.0).reshape(1, 5, 5, 1)  # x[0, i, j, 0] = 5i + j


def built(layer, input_shape, rng=None, dtype="float64"):
    with floatx(dtype):
        layer.build(input_shape, rng or np.random.default_rng(0))
    return layer


def window(pool, strides, padding, h, w) -> tuple:
    """Kernel arguments (PH, PW, SH, SW, PT, PB, PL, PR) for Keras's padding arithmetic."""
    return (*pool, *strides, *shapes.padding_amounts(h, pool[0], strides[0], padding),
            *shapes.padding_amounts(w, pool[1], strides[1], padding))


@st.composite
def avgpool_cases(draw, max_extra: int = 4):
    """(x, window) for a Keras 'valid' or 'same' geometry (every window holds an element)."""
    pool, strides, padding = draw(pairs), draw(pairs), draw(paddings)
    low_h, low_w = (pool[0], pool[1]) if padding == "valid" else (1, 1)
    h = draw(st.integers(low_h, low_h + max_extra))
    w = draw(st.integers(low_w, low_w + max_extra))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(seeds))
    x = rng.standard_normal((n, h, w, c)).astype(draw(st.sampled_from([np.float32, np.float64])))
    return x, window(pool, strides, padding, h, w)


def avgpool_by_definition(x, win):
    """y[n, i, j] = mean of x[n, rows, cols] over the window's rows and columns inside the
    image, the window starting at (i * SH - PT, j * SW - PL)."""
    n, h, w, c = x.shape
    ph, pw, sh, sw, pt, pb, pl, pr = win
    oh, ow = (h + pt + pb - ph) // sh + 1, (w + pl + pr - pw) // sw + 1
    y = np.zeros((n, oh, ow, c))
    for i, j in np.ndindex(oh, ow):
        top, left = i * sh - pt, j * sw - pl
        inside = x[:, max(top, 0):top + ph, max(left, 0):left + pw, :].astype(np.float64)
        y[:, i, j] = inside.mean(axis=(1, 2))
    return y


# --- hand-computed numbers --------------------------------------------------------------------


@by_implementation
@pytest.mark.parametrize("pool, strides, padding, expected", [
    # Each window's mean is 5 * (mean row) + (mean column).
    ((2, 2), (1, 1), "valid", [[3, 4, 5, 6], [8, 9, 10, 11], [13, 14, 15, 16],
                               [18, 19, 20, 21]]),
    ((2, 2), (2, 2), "valid", [[3, 5], [13, 15]]),  # the last row and column are dropped
    # Windows over rows {0, 1}, {1, 2, 3}, {3, 4} (one padding row at the top and bottom):
    # means 0.5, 2, 3.5, not diluted by the padding.
    ((3, 3), (2, 2), "same", [[3, 4.5, 6], [10.5, 12, 13.5], [18, 19.5, 21]]),
    # Rows {0, 1}, {1, 2}, ..., columns {0, 1, 2} / {2, 3, 4}: strides differ from the pool.
    ((2, 3), (1, 2), "valid", [[3.5, 5.5], [8.5, 10.5], [13.5, 15.5], [18.5, 20.5]]),
    # 'same' with a 2x2 pool pads one row and column after: the last window is x[4, 4] alone.
    ((2, 2), (2, 2), "same", [[3, 5, 6.5], [13, 15, 16.5], [20.5, 22.5, 24]]),
])
def test_average_pooling_by_hand(impl, pool, strides, padding, expected):
    y = impl.avgpool2d_forward(GRID, *window(pool, strides, padding, 5, 5))
    np.testing.assert_array_equal(y[0, :, :, 0], expected)


@by_implementation
def test_same_padding_is_not_counted_as_keras_docstring_example(impl):
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # keras.layers.AveragePooling2D's example
    win = window((2, 2), (1, 1), "same", 3, 3)
    assert win == (2, 2, 1, 1, 0, 1, 0, 1)
    np.testing.assert_array_equal(impl.avgpool2d_forward(x, *win)[0, :, :, 0],
                                  [[3, 4, 4.5], [6, 7, 7.5], [7.5, 8.5, 9]])
    # Each window's gradient is shared by its count (4, 2 or 1 elements) and overlaps add up.
    dx = impl.avgpool2d_backward(np.ones((1, 3, 3, 1)), x.shape, *win)
    np.testing.assert_array_equal(dx[0, :, :, 0],
                                  [[0.25, 0.5, 0.75], [0.5, 1, 1.5], [0.75, 1.5, 2.25]])


@by_implementation
def test_average_pooling_backward_by_hand_with_odd_sizes(impl):
    dy = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)  # 3x3 pool, stride 2, 5x5
    dx = impl.avgpool2d_backward(dy, (1, 5, 5, 1), 3, 3, 2, 2, 0, 0, 0, 0)
    ninth = np.array([[1, 1, 3, 2, 2], [1, 1, 3, 2, 2], [4, 4, 10, 6, 6], [3, 3, 7, 4, 4],
                      [3, 3, 7, 4, 4]]) / 9  # the centre row/column is in two windows
    # up to four windows' dy / 9 summed (a division, three additions), against k / 9 (a division)
    assert_close(dx[0, :, :, 0], ninth, depth=5)


def test_global_average_pooling_by_hand():
    x = np.stack([GRID[..., 0], -2 * GRID[..., 0]], axis=-1)  # (1, 5, 5, 2)
    layer = built(GlobalAveragePooling2D(), (5, 5, 2))
    np.testing.assert_array_equal(layer.forward(x, training=True), [[12, -24]])
    dx = layer.backward(np.array([[25.0, -50.0]]))
    np.testing.assert_array_equal(dx[0, :, :, 0], np.ones((5, 5)))
    np.testing.assert_array_equal(dx[0, :, :, 1], -2 * np.ones((5, 5)))
    kept = built(GlobalAveragePooling2D(keepdims=True), (5, 5, 2))
    np.testing.assert_array_equal(kept.forward(x), [[[[12, -24]]]])


# --- the kernels: numba twins, the definition, adjointness, dtypes ----------------------------


@needs_numba
@given(case=avgpool_cases())
def test_avgpool2d_numba_matches_reference_bitwise(case):
    x, win = case
    y = reference.avgpool2d_forward(x, *win)
    np.testing.assert_array_equal(numba_kernels.avgpool2d_forward(x, *win), y, strict=True)
    dy = np.random.default_rng(0).standard_normal(y.shape).astype(x.dtype)
    np.testing.assert_array_equal(numba_kernels.avgpool2d_backward(dy, x.shape, *win),
                                  reference.avgpool2d_backward(dy, x.shape, *win), strict=True)


@by_implementation
@given(case=avgpool_cases())
def test_avgpool2d_matches_window_definition(impl, case):
    x, win = case
    y = impl.avgpool2d_forward(x, *win)
    assert y.dtype == x.dtype
    # two computations (tinynn's, the definition's) of a sum of PH * PW terms and a division
    assert_close(y, avgpool_by_definition(x, win), depth=2 * (win[0] * win[1] + 1),
                 dtype=x.dtype, scale=float(np.abs(x).max()))


@by_implementation
@given(case=avgpool_cases())
def test_avgpool2d_backward_is_adjoint_of_forward(impl, case):
    x, win = case
    x = x.astype(np.float64)
    y = impl.avgpool2d_forward(x, *win)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    dx = impl.avgpool2d_backward(dy, x.shape, *win)
    assert dx.shape == x.shape and dx.dtype == np.float64
    # y and dx: window sums of PH * PW terms and a division; the products; the totals, sums of
    # n terms (Higham: n roundings at the scale of the terms' magnitudes)
    n = max(y.size, x.size)
    scale = max(np.sum(np.abs(y * dy)), np.sum(np.abs(x * dx)))
    assert_close(np.sum(y * dy), np.sum(x * dx), depth=win[0] * win[1] + 2 + n, scale=scale)


@by_implementation
@given(case=avgpool_cases(), value=st.floats(-100, 100, width=32))
def test_avgpool2d_of_a_constant_image_is_that_constant(impl, case, value):
    x, win = case
    x = np.full_like(x, value)
    y = impl.avgpool2d_forward(x, *win)
    # a sum of PH * PW copies of value and a division
    assert_close(y, np.full(y.shape, value), depth=win[0] * win[1] + 1, dtype=x.dtype)


def test_avgpool2d_kernels_dispatch_through_ops():
    from tinynn import ops
    assert "avgpool2d_forward" in ops.KERNELS and "avgpool2d_backward" in ops.KERNELS
    expected = "numpy" if numba_kernels is None or ops.BACKEND == "numpy" else "numba"
    assert {ops.implementation("avgpool2d_forward"),
            ops.implementation("avgpool2d_backward")} == {expected}


# --- the Layer contract -----------------------------------------------------------------------


@given(pool=pairs, strides=st.none() | pairs, padding=paddings,
       extra=st.tuples(st.integers(0, 3), st.integers(0, 3)), seed=seeds)
def test_average_pooling2d_contract(pool, strides, padding, extra, seed):
    rng = np.random.default_rng(seed)
    shape = (pool[0] + extra[0], pool[1] + extra[1], 2)
    check_layer(AveragePooling2D(pool, strides, padding), shape, rng)


@pytest.mark.parametrize("layer, shape", [
    (AveragePooling2D(), (4, 4, 3)),
    (AveragePooling2D(3, strides=2, padding="same", name="avg"), (5, 7, 2)),
    (AveragePooling2D((2, 3), strides=(1, 2)), (3, 6, 1)),
    (AveragePooling2D(4, padding="same"), (2, 3, 2)),  # pool larger than the image
    (GlobalAveragePooling2D(), (4, 5, 3)),
    (GlobalAveragePooling2D(keepdims=True, name="gap"), (3, 3, 2)),
    (GlobalAveragePooling2D(data_format="channels_last"), (1, 1, 4)),
])
def test_pooling_layers_contract_geometries(layer, shape, rng):
    check_layer(layer, shape, rng)


@pytest.mark.parametrize("kwargs, shape, expected", [
    (dict(), (28, 28, 32), (14, 14, 32)),
    (dict(pool_size=3), (7, 7, 1), (2, 2, 1)),          # strides default to pool_size
    (dict(pool_size=3, strides=1), (7, 7, 1), (5, 5, 1)),
    (dict(padding="same"), (7, 7, 2), (4, 4, 2)),
    (dict(pool_size=(2, 3), strides=(1, 2), padding="same"), (5, 5, 1), (5, 3, 1)),
])
def test_average_pooling2d_output_shape_matches_keras(kwargs, shape, expected):
    assert AveragePooling2D(**kwargs).compute_output_shape(shape) == expected


def test_configs_and_aliases():
    assert AvgPool2D is AveragePooling2D and GlobalAvgPool2D is GlobalAveragePooling2D
    assert L.REGISTRY["AvgPool2D"] is L.REGISTRY["AveragePooling2D"] is AveragePooling2D
    assert L.REGISTRY["GlobalAvgPool2D"] is GlobalAveragePooling2D
    config = AveragePooling2D(3, padding="SAME", name="a").get_config()
    assert config == {"name": "a", "pool_size": [3, 3], "strides": [3, 3], "padding": "same"}
    assert AveragePooling2D.from_config(config).get_config() == config
    config = GlobalAveragePooling2D(keepdims=True, input_shape=(4, 4, 1)).get_config()
    assert config == {"name": None, "input_shape": [4, 4, 1], "data_format": "channels_last",
                      "keepdims": True}
    assert GlobalAveragePooling2D.from_config(config).get_config() == config


def test_global_average_pooling_keeps_float32(rng):
    layer = built(GlobalAveragePooling2D(), (3, 3, 2), dtype="float32")
    x = rng.standard_normal((2, 3, 3, 2)).astype(np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32 and layer.backward(np.ones_like(y)).dtype == np.float32


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make, match", [
    (lambda: AveragePooling2D(0), r"AveragePooling2D pool_size expected a positive integer, "
                                  r"got 0"),
    (lambda: AveragePooling2D((2, 2, 2)), r"AveragePooling2D pool_size expected an int or 2 ints"),
    (lambda: AveragePooling2D(2, strides=-1), r"AveragePooling2D strides expected a positive "
                                              r"integer, got -1"),
    (lambda: AveragePooling2D(padding="causal"), r"AveragePooling2D padding expected one of "
                                                 r"\('valid', 'same'\), got 'causal'"),
    (lambda: GlobalAveragePooling2D(data_format="channels_first"),
     r"data_format expected one of \(None, 'channels_last'\), got 'channels_first': tinynn "
     r"uses channels-last images"),
    (lambda: GlobalAveragePooling2D(keepdims="yes"),
     r"GlobalAveragePooling2D keepdims expected True or False, got 'yes'"),
])
def test_invalid_arguments_rejected_naming_the_argument(make, match):
    with pytest.raises(ArgumentError, match=match):
        make()


@pytest.mark.parametrize("layer, shape, match", [
    (AveragePooling2D(3, name="a"), (2, 2, 1),
     r"AveragePooling2D 'a' window 3x3 is larger than its input \(N, 2, 2, 1\) with "
     r"padding='valid': use padding='same'"),
    (AveragePooling2D(name="a"), (28, 28), r"expected NHWC input \(N, H, W, C\), got "
                                           r"\(N, 28, 28\): add a channel axis"),
    (GlobalAveragePooling2D(name="g"), (28, 28),
     r"GlobalAveragePooling2D 'g' expected NHWC input \(N, H, W, C\), got \(N, 28, 28\): add "
     r"a channel axis, e\.g\. x\[\.\.\., None\]"),
    (GlobalAveragePooling2D(name="g"), (10,), r"got \(N, 10\)$"),
])
def test_bad_input_shapes_rejected_at_build(layer, shape, match, rng):
    with pytest.raises(ShapeError, match=match):
        layer.compute_output_shape(shape)
    with pytest.raises(ShapeError, match=match):
        layer.build(shape, rng)


@pytest.mark.parametrize("make", [lambda: AveragePooling2D(name="p"),
                                  lambda: GlobalAveragePooling2D(name="p")])
def test_forward_names_layout_mistakes_and_backward_needs_forward(make, rng):
    layer = built(make(), (4, 4, 1), dtype="float32")
    cases = [((2, 4, 4), r"got \(2, 4, 4\): add a channel axis"),
             ((2, 1, 4, 4), r"this looks channels-first \(NCHW\)"),
             ((2, 4, 4, 3), r"built for 1 input channels, got 3")]
    for shape, match in cases:
        with pytest.raises(ShapeError, match=match):
            layer.forward(np.zeros(shape, np.float32))
    layer.forward(np.zeros((2, 4, 4, 1), np.float32))  # inference keeps nothing
    with pytest.raises(RuntimeError, match=r"backward called without a preceding forward"):
        layer.backward(np.zeros((2, 2, 2, 1), np.float32))


# --- Keras 3 parity ---------------------------------------------------------------------------

INPUT = (9, 9, 2)
X = np.random.default_rng(0).random((24, *INPUT), dtype=np.float32)
Y = np.arange(24) % 3


def stacks(lib, kind: str, padding: str) -> list:
    """The two test models' layers for ``tinynn.layers`` or ``keras.layers``: a 3x3 pool with
    stride 2 (odd sizes: 'same' pads a row and column on each side), or global pooling."""
    conv = lib.Conv2D(4, 3, padding=padding, activation="relu")
    if kind == "average":
        return [conv, lib.AveragePooling2D(3, strides=2, padding=padding), lib.Flatten(),
                lib.Dense(3, activation="softmax")]
    return [conv, lib.GlobalAveragePooling2D(), lib.Dense(3, activation="softmax")]


def keras_model(keras, kind, padding):
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input(INPUT), *stacks(keras.layers, kind, padding)])


def tinynn_model(kind, padding, seed=0):
    model = tn.Sequential([L.Input(INPUT), *stacks(L, kind, padding)], seed=seed)
    model.build()
    return model


def network_depth(model, batch: int = 1, steps: int = 0) -> float:
    """``helpers.rounding_depth``, plus the pooling layers' sums it does not count (they have no
    kernel): a window of n elements, 3 sqrt(n) epsilons and a division, forward and per step
    twice more (the forward again, and the backward's overlapping windows), per implementation."""
    depth = rounding_depth(model, batch=batch, steps=steps)
    for layer in model.layers:
        if isinstance(layer, AveragePooling2D):
            n = layer.pool_size[0] * layer.pool_size[1]
        elif isinstance(layer, GlobalAveragePooling2D):
            n = layer.input_shape[0] * layer.input_shape[1]
        else:
            continue
        depth += 2 * (1 + 2 * steps) * (3 * np.sqrt(n) + 1)
    return depth


def compile_both(theirs, ours, keras):
    theirs.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    ours.compile(tn.optimizers.Adam(), "sparse_categorical_crossentropy")


def strip_names(config: dict) -> list:
    """A Sequential config's layers without their session-dependent names and object ids."""
    layers = json.loads(json.dumps(config["config"]["layers"]))
    for entry in layers:
        entry["config"].pop("name")
        if isinstance(entry["config"].get("dtype"), dict):
            entry["config"]["dtype"].pop("shared_object_id", None)
    return layers


MODELS = pytest.mark.parametrize("kind, padding", [
    ("average", "valid"), ("average", "same"), ("global", "valid"), ("global", "same")])


@pytest.mark.parametrize("pool, strides, padding, shape", [
    (2, None, "valid", (6, 6, 2)), (2, None, "same", (5, 5, 2)), (3, 2, "same", (7, 6, 3)),
    ((2, 3), (1, 2), "same", (5, 5, 1)), ((3, 2), (2, 1), "valid", (7, 5, 2)),
    (4, 1, "same", (3, 3, 1)),
])
def test_average_pooling2d_outputs_and_gradients_match_keras(keras, pool, strides, padding,
                                                             shape, rng):
    import tensorflow as tf
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    layer = built(AveragePooling2D(pool, strides, padding), shape, dtype="float32")
    theirs = keras.layers.AveragePooling2D(pool, strides, padding)
    tensor = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(tensor)
        expected = theirs(tensor)
        dy = rng.standard_normal(tuple(expected.shape)).astype(np.float32)
        objective = tf.reduce_sum(expected * dy)
    y = layer.forward(x, training=True)
    # on each side, a window's sum of PH * PW terms and a division, at the terms' scale; and the
    # gradient, at most PH * PW windows' dy / count summed, at dy's scale
    depth = 2 * (layer.pool_size[0] * layer.pool_size[1] + 1)
    assert_close(y, expected.numpy(), depth=depth, scale=float(np.abs(x).max()))
    assert_close(layer.backward(dy), tape.gradient(objective, tensor).numpy(), depth=depth,
                 scale=float(np.abs(dy).max()))


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_average_pooling2d_outputs_and_gradients_match_keras(keras, keepdims, rng):
    import tensorflow as tf
    x = rng.standard_normal((3, 5, 4, 2)).astype(np.float32)
    layer = built(GlobalAveragePooling2D(keepdims=keepdims), (5, 4, 2), dtype="float32")
    tensor = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(tensor)
        expected = keras.layers.GlobalAveragePooling2D(keepdims=keepdims)(tensor)
        dy = rng.standard_normal(tuple(expected.shape)).astype(np.float32)
        objective = tf.reduce_sum(expected * dy)
    y = layer.forward(x, training=True)
    assert y.shape == tuple(expected.shape)
    # a mean of 5 * 4 terms on each side, at the terms' scale; dy / 20 (or dy times a rounded
    # 1 / 20: two roundings) on each side
    assert_close(y, expected.numpy(), depth=2 * (20 + 1), scale=float(np.abs(x).max()))
    assert_close(layer.backward(dy), tape.gradient(objective, tensor).numpy(), depth=2 * 2,
                 scale=float(np.abs(dy).max()))


@MODELS
def test_config_is_the_one_keras_writes(keras, kind, padding):
    theirs = keras_model(keras, kind, padding)
    ours = tinynn_model(kind, padding)
    keras_json = json.loads(json.dumps(keras.saving.serialize_keras_object(theirs)))
    assert strip_names(keras_config.model_config(ours)) == strip_names(keras_json)


@MODELS
def test_keras_weights_give_keras_predictions_and_adam_step(keras, tmp_path, kind, padding):
    theirs = keras_model(keras, kind, padding)
    theirs.save_weights(tmp_path / "keras.weights.h5")
    ours = tinynn_model(kind, padding, seed=5)
    ours.load_weights(tmp_path / "keras.weights.h5")
    assert_close(ours.predict(X, verbose=0), theirs.predict(X, verbose=0),
                 depth=network_depth(ours))
    compile_both(theirs, ours, keras)
    before = ours.get_weights()
    keras_loss = float(np.ravel(theirs.train_on_batch(X, Y))[0])
    history = ours.fit(X, Y, batch_size=len(X), epochs=1, shuffle=False, verbose=0)
    depth = network_depth(ours, batch=len(X), steps=1)
    assert_close(history.history["loss"][0], keras_loss, depth=depth + len(X),
                 dtype=np.float32)  # + the mean's sum
    for keras_weight, weight in zip(theirs.get_weights(), ours.get_weights(), strict=True):
        assert_close(weight, keras_weight, depth=depth)
    moved = max(np.abs(a - b).max() for a, b in zip(ours.get_weights(), before))
    # the step was taken (Adam: about the learning rate, 1e-3), by far more than the bound
    assert moved > 10 * max(rounding_bound(w, np.float32, depth) for w in before)


@MODELS
def test_keras_model_files_load_in_tinynn(keras, tmp_path, kind, padding):
    theirs = keras_model(keras, kind, padding)
    theirs.save(tmp_path / "m.keras")
    loaded = tn.models.load_model(tmp_path / "m.keras")
    assert [type(layer).__name__ for layer in loaded.layers] == [
        type(layer).__name__ for layer in theirs.layers]
    assert_close(loaded.predict(X, verbose=0), theirs.predict(X, verbose=0),
                 depth=network_depth(loaded))


def test_keras_global_pooling_with_keepdims_loads_in_tinynn(keras, tmp_path):
    keras.utils.set_random_seed(2)
    theirs = keras.Sequential([keras.Input(INPUT), keras.layers.AvgPool2D(2, padding="same"),
                               keras.layers.GlobalAvgPool2D(keepdims=True),
                               keras.layers.Flatten(), keras.layers.Dense(2)])
    theirs.save(tmp_path / "m.keras")
    loaded = tn.models.load_model(tmp_path / "m.keras")
    gap = loaded.layers[1]
    assert isinstance(gap, GlobalAveragePooling2D) and gap.keepdims
    assert loaded.layers[2].input_shape == (1, 1, 2)
    assert_close(loaded.predict(X, verbose=0), theirs.predict(X, verbose=0),
                 depth=network_depth(loaded))


@MODELS
def test_tinynn_keras_files_load_in_keras(keras, tmp_path, kind, padding):
    ours = tinynn_model(kind, padding)
    ours.compile(tn.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    ours.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    ours.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        config = json.loads(archive.read("config.json"))
    names = [entry["class_name"] for entry in config["config"]["layers"]]
    assert names[2] == ("AveragePooling2D" if kind == "average" else "GlobalAveragePooling2D")
    served = keras.saving.load_model(tmp_path / "m.keras")
    for keras_weight, weight in zip(served.get_weights(), ours.get_weights(), strict=True):
        np.testing.assert_array_equal(keras_weight, weight)
    assert_close(served.predict(X, verbose=0), ours.predict(X, verbose=0),
                 depth=network_depth(ours))


@pytest.mark.parametrize("make, match", [
    (lambda keras: keras.layers.AveragePooling2D(2, data_format="channels_first"),
     r"AveragePooling2D\) with data_format='channels_first'"),
    (lambda keras: keras.layers.GlobalAveragePooling2D(data_format="channels_first"),
     r"GlobalAveragePooling2D\) with .*'data_format': 'channels_first'.*tinynn uses "
     r"channels-last images"),
])
def test_keras_channels_first_pooling_is_refused_by_name(keras, tmp_path, make, match):
    keras.Sequential([keras.Input((2, 6, 6)), make(keras)]).save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedKerasFeatureError, match=match):
        tn.models.load_model(tmp_path / "m.keras")


# --- tinynn's own format ----------------------------------------------------------------------


@MODELS
def test_native_save_load_round_trip(tmp_path, kind, padding):
    model = tinynn_model(kind, padding, seed=3)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = tn.models.load_model(tmp_path / "m.npz")
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))
    np.testing.assert_array_equal(loaded.parameters, model.parameters)
