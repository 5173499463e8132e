"""BatchNormalization: hand-computed forward and moving statistics, the Layer contract for a
stateful layer, its kernels (numba vs NumPy twins), its place in a model (summary, optimizer,
saving), and parity with Keras 3 (predictions, a training step, files both ways).

Float comparisons are judged at the scale of the compared values, with a depth of roundings
derived from the computation (``tinynn.testing.assert_close``). The numba reductions may differ
from their NumPy twins, and Keras's predictions and training step from tinynn's, by the order of
their sums only (float32 against Keras, on any CPU's BLAS: ``PREDICT_DEPTH`` and ``STEP_DEPTH``,
measured at most 2 roundings); dtypes, shapes, the element-wise kernels and weights read from
files are exact.
"""

import importlib
import json
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynn as tn
from tinynn.errors import ArgumentError, DTypeError, UnsupportedKerasFeatureError
from tinynn.layers import BatchNormalization
from tinynn.ops import reference
from tinynn.saving import keras_config
from tinynn.testing import assert_close, check_model_gradients, floatx

from .helpers import check_layer
from .test_keras_parity import strip_names

L = tn.layers
try:
    numba_kernels = importlib.import_module("tinynn.ops.numba_kernels")
except ImportError:
    numba_kernels = None

X = np.array([[1.0, 2.0], [3.0, 6.0]])  # per feature: mean (2, 4), biased variance (1, 4)


def built(layer: BatchNormalization, input_shape: tuple, **weights) -> BatchNormalization:
    """``layer`` built in float64 with the given weights (by key)."""
    with floatx("float64"):
        layer.build(input_shape, np.random.default_rng(0))
    for key, value in weights.items():
        layer.weights[key][...] = value
    return layer


# -- forward and moving statistics by hand ---------------------------------------------------
def test_training_normalizes_with_the_batch_statistics_by_hand():
    bn = built(BatchNormalization(), (2,), gamma=[2.0, 0.5], beta=[1.0, -1.0])
    y = bn.forward(X, training=True)
    a, b = 1 / np.sqrt(1 + 1e-3), 1 / np.sqrt(4 + 1e-3)
    # each side rounds ~10 times (moments, + epsilon, sqrt, division, products, sums), the
    # layer on terms (x * scale, shift) up to twice |y|
    assert_close(y, [[1 - 2 * a, -1 - 2 * 0.5 * b], [1 + 2 * a, -1 + 2 * 0.5 * b]],
                 depth=2 * 2 * 10)
    # moving = moving * 0.99 + batch * 0.01, from zeros and ones: 1 - 0.99 grows 0.99's
    # rounding (eps / 2) 100 times; a product, a sum and the hand values' rounding
    assert_close(bn.state["moving_mean"], [0.02, 0.04], depth=100 // 2 + 4)
    assert_close(bn.state["moving_variance"], [1.0, 1.03], depth=100 // 2 + 4)


def test_inference_normalizes_with_the_moving_statistics_and_keeps_them():
    bn = built(BatchNormalization(epsilon=0.01), (2,), gamma=[2.0, 0.5], beta=[1.0, -1.0],
               moving_mean=[1.0, -1.0], moving_variance=[3.0, 0.25])
    y = bn.forward(X, training=False)
    expected = np.array([[2 * 0 / np.sqrt(3.01) + 1, 0.5 * 3 / np.sqrt(0.26) - 1],
                         [2 * 2 / np.sqrt(3.01) + 1, 0.5 * 7 / np.sqrt(0.26) - 1]])
    # each side rounds ~8 times (+ epsilon, sqrt, division, products, sums), the layer on terms
    # (x * scale, shift) up to twice |y|
    assert_close(y, expected, depth=2 * 2 * 8)
    assert bn.state["moving_mean"].tolist() == [1.0, -1.0]
    assert bn.state["moving_variance"].tolist() == [3.0, 0.25]
    assert not bn.holds_cache


def test_the_batch_variance_is_biased_as_keras_3():
    bn = built(BatchNormalization(momentum=0.0, center=False, scale=False), (2,))
    bn.forward(X, training=True)
    # a 2-term mean and a mean of 2 squares on each side (exact here, as the next line says)
    assert_close(bn.state["moving_variance"], X.var(axis=0), depth=2 * 6)
    assert bn.state["moving_variance"].tolist() == [1.0, 4.0]


@pytest.mark.parametrize("axis, shape", [(-1, (3, 4, 2)), (1, (3, 4, 2)), (2, (3, 4, 2)),
                                         (-2, (5, 3))])
def test_moving_statistics_follow_keras_updates_over_several_steps(axis, shape):
    rng = np.random.default_rng(3)
    bn = built(BatchNormalization(axis=axis, momentum=0.9), shape)
    rank = len(shape) + 1
    channel = axis % rank
    others = tuple(i for i in range(rank) if i != channel)
    mean, variance = np.zeros(shape[channel - 1]), np.ones(shape[channel - 1])
    for step in range(4):
        x = rng.normal(step, 1 + step, (6, *shape))
        bn.forward(x, training=True)
        bn.release_cache()
        mean = mean * 0.9 + x.mean(axis=others) * (1 - 0.9)
        variance = variance * 0.9 + x.var(axis=others) * (1 - 0.9)
    # per step and side: a mean over n values (Higham: n roundings of their magnitude, up to
    # twice the moving statistics' scale here) and 3 in the update; 4 steps, both sides
    n = x.size // x.shape[channel]
    assert_close(bn.state["moving_mean"], mean, depth=2 * 4 * (2 * n + 3))
    assert_close(bn.state["moving_variance"], variance, depth=2 * 4 * (2 * n + 3))


def test_float32_in_float32_out_and_other_dtypes_refused():
    bn = BatchNormalization()
    bn.build((3,), np.random.default_rng(0))
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    y = bn.forward(x, training=True)
    assert y.dtype == np.float32 and bn.state["moving_mean"].dtype == np.float32
    assert bn.backward(np.ones_like(y)).dtype == np.float32
    with pytest.raises(DTypeError, match="expected float32 input, got float64"):
        bn.forward(x.astype(np.float64))


# -- the Layer contract and gradients --------------------------------------------------------
@pytest.mark.parametrize("center, scale", [(True, True), (True, False), (False, True),
                                           (False, False)])
@pytest.mark.parametrize("axis, shape", [(-1, (5,)), (-1, (3, 4, 2)), (1, (3, 4, 2))])
def test_layer_contract_and_gradients(axis, shape, center, scale, rng):
    layer = BatchNormalization(axis=axis, center=center, scale=scale)
    channels = (None, *shape)[axis]
    trainable = {key: rng.normal(0.5, 1.0, size=channels) for key, used in
                 (("gamma", scale), ("beta", center)) if used}
    check_layer(built(layer, shape, **trainable), shape, rng, stateful=True)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), batch=st.integers(1, 4),
       data=st.data())
def test_layer_contract_for_any_rank_and_axis(shape, batch, data):
    rank = len(shape) + 1
    axis = data.draw(st.sampled_from([*range(1, rank), *range(-rank + 1, 0)]))
    center, scale = data.draw(st.booleans()), data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    layer = BatchNormalization(axis=axis, center=center, scale=scale)
    x = rng.standard_normal((batch, *shape)) * 2 + 1
    check_layer(built(layer, tuple(shape)), tuple(shape), rng, x=x, stateful=True)


def test_model_gradients_through_two_batch_normalizations(float64, rng):
    model = tn.Sequential([L.Input((4, 4, 1)), L.Conv2D(2, 3, use_bias=False),
                           BatchNormalization(gamma_regularizer="l2"), L.Activation("tanh"),
                           L.Flatten(), L.Dense(3), BatchNormalization(beta_regularizer="l1"),
                           L.Dense(3, activation="softmax")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.build()
    for layer in (model.layers[1], model.layers[5]):
        for key in layer.params:
            layer.params[key][...] = rng.normal(0.5, 1.0, layer.params[key].shape)
    check_model_gradients(model, rng.standard_normal((6, 4, 4, 1)), np.arange(6) % 3, rng=rng)


def test_first_layer_skips_its_input_gradient_and_fills_the_same_grads(float64, rng):
    model = tn.Sequential([L.Input((4,)), BatchNormalization(), L.Dense(2)], seed=0)
    model.compile("sgd", "mse")
    x, y = model.prepare(rng.standard_normal((5, 4)), rng.standard_normal((5, 2)))
    out = model.forward(x, training=True)
    dout = model.loss_and_output_gradient(y, out)[1]
    assert model.backward(dout, input_gradient=True) is not None
    expected = model.gradients.copy()
    model.forward(x, training=True)
    assert model.backward(dout) is None
    np.testing.assert_array_equal(model.gradients, expected)


# -- arguments and errors --------------------------------------------------------------------
def test_defaults_are_keras_and_weights_come_in_keras_order():
    bn = BatchNormalization()
    assert (bn.axis, bn.momentum, bn.epsilon, bn.center, bn.scale) == (-1, 0.99, 1e-3, True,
                                                                       True)
    assert bn.beta_regularizer is None and bn.gamma_regularizer is None
    bn.build((4, 4, 8), np.random.default_rng(0))
    assert list(bn.weights) == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert list(bn.params) == ["gamma", "beta"] and bn.count_params() == 32
    assert [w.tolist() for w in bn.weights.values()] == [[1.0] * 8, [0.0] * 8, [0.0] * 8,
                                                         [1.0] * 8]
    assert BatchNormalization(axis=[3]).axis == 3  # tf.keras 2's form of one axis


@pytest.mark.parametrize("kwargs, match", [
    ({"axis": 0}, r"axis expected one non-zero int .* got 0"),
    ({"axis": [1, 2]}, r"single axis\), got \[1, 2\]"),
    ({"axis": "channels"}, r"got 'channels'"),
    ({"axis": True}, r"got True"),
    ({"momentum": 1.5}, r"momentum expected a finite number in \[0, 1\], got 1.5"),
    ({"epsilon": 0}, r"epsilon expected a finite number in \(0, inf\], got 0"),
    ({"center": "yes"}, r"center expected True or False, got 'yes'"),
    ({"scale": None}, r"scale expected True or False, got None"),
    ({"gamma_initializer": "nope"}, r"initializer.*got 'nope'|initializer 'nope'"),
    ({"beta_regularizer": "l3"}, r"regularizer.*got 'l3'"),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        BatchNormalization(**kwargs)


@pytest.mark.parametrize("axis, shape", [(3, (8,)), (-3, (8,)), (4, (2, 2, 3))])
def test_an_axis_outside_the_input_or_on_the_batch_is_refused(axis, shape):
    with pytest.raises(ArgumentError, match=rf"axis=.*-{len(shape)}\.\.-1 or 1\.\.{len(shape)}"
                       rf", got {axis}"):
        tn.Sequential([L.Input(shape), BatchNormalization(axis=axis)]).build()


# -- kernels: numba against the NumPy twins --------------------------------------------------
@pytest.mark.skipif(numba_kernels is None, reason="numba is not importable")
@given(rows=st.integers(1, 70), channels=st.integers(1, 9),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_numba_kernels_match_their_numpy_twins(rows, channels, dtype, seed):
    rng = np.random.default_rng(seed)
    x, dy = (rng.normal(3, 2, (rows, channels)).astype(dtype) for _ in range(2))
    a, b, c, d = (rng.standard_normal(channels).astype(dtype) for _ in range(4))
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    # the magnitudes of the summed terms, per output
    magnitudes = {"batchnorm_moments": (np.abs(x64).mean(axis=0),
                                        np.square(x64 - x64.mean(axis=0)).mean(axis=0)),
                  "batchnorm_backward_sums": (np.abs(dy64).sum(axis=0),
                                              np.abs(dy64 * (x64 - a)).sum(axis=0))}
    for name, args in [("batchnorm_moments", (x,)), ("batchnorm_backward_sums", (dy, x, a))]:
        for ours, theirs, magnitude in zip(getattr(numba_kernels, name)(*args),
                                           getattr(reference, name)(*args), magnitudes[name]):
            assert ours.dtype == dtype
            # both sum the rows in float64, in their own order (Higham: rows roundings of the
            # terms' magnitude each, a fortiori in dtype), then round once to dtype
            assert_close(ours, theirs, depth=2 * rows + 2, scale=magnitude.max(), err_msg=name)
    for name, args in [("batchnorm_scale_shift", (x, a, b)),
                       ("batchnorm_input_gradient", (dy, x, a, b, c, d))]:
        ours = getattr(numba_kernels, name)(*args)
        assert ours.dtype == dtype
        np.testing.assert_array_equal(ours, getattr(reference, name)(*args), err_msg=name)


@pytest.mark.parametrize("impl", [reference] + [numba_kernels] * (numba_kernels is not None),
                         ids=lambda module: module.__name__.rsplit(".", 1)[-1])
def test_kernels_by_hand(impl):
    x = np.array([[1.0, 2.0], [3.0, 6.0]], np.float32)
    mean, variance = impl.batchnorm_moments(x)
    assert mean.tolist() == [2, 4] and variance.tolist() == [1, 4]
    sums = impl.batchnorm_backward_sums(np.array([[1, 2], [3, 4]], np.float32), x, mean)
    assert [s.tolist() for s in sums] == [[4, 6], [2, 4]]  # sum(dy), sum(dy * (x - mean))
    assert impl.batchnorm_scale_shift(x, np.float32([2, -1]), np.float32([1, 0])).tolist() == [
        [3, -2], [7, -6]]
    one = np.ones(2, np.float32)
    assert impl.batchnorm_input_gradient(x, x, mean, 2 * one, one, 0.5 * one).tolist() == [
        [1, 4], [3, 8]]  # 2 * (dy - 1 - (x - mean) / 2) with dy = x


# -- in a model: summary, optimizer, saving ---------------------------------------------------
def small_model(seed=0, **bn) -> tn.Sequential:
    return tn.Sequential([L.Input((6, 6, 2)), L.Conv2D(64, 3, use_bias=False),
                          BatchNormalization(**bn), L.Activation("relu"), L.Flatten(),
                          L.Dense(5, activation="softmax")], seed=seed)


def test_summary_counts_moving_statistics_as_non_trainable():
    lines = []
    small_model().summary(print_fn=lines.append)
    row = next(line for line in lines if line.startswith(" batch_normalization (BatchN"))
    assert row.split()[-1] == "256"
    # conv2d 3*3*2*64 = 1152, batch_normalization 4*64 = 256, dense 4*4*64*5 + 5 = 5125.
    assert lines[-4:-1] == ["Total params: 6,533", "Trainable params: 6,405",
                            "Non-trainable params: 128"]


def test_summary_counts_match_keras(keras):
    def layers(lib):
        return [lib.Conv2D(8, 3), lib.BatchNormalization(center=False), lib.Flatten(),
                lib.Dense(16), lib.BatchNormalization(axis=1), lib.Dense(3)]
    ours = tn.Sequential([L.Input((6, 6, 3)), *layers(L)])
    theirs = keras.Sequential([keras.Input((6, 6, 3)), *layers(keras.layers)])
    ours.build()
    assert [layer.count_params() for layer in ours.layers] == [
        layer.count_params() for layer in theirs.layers]
    lines, keras_lines = [], []
    ours.summary(print_fn=lines.append)
    theirs.summary(print_fn=lambda line, **_: keras_lines.extend(line.splitlines()))
    pattern = re.compile(r"(Total|Trainable|Non-trainable) params: ([\d,]+)")
    totals = [m.groups() for m in map(pattern.search, keras_lines) if m]
    assert totals == [m.groups() for m in map(pattern.search, lines) if m]
    assert totals[2] == ("Non-trainable", "48")  # 2 * 8 + 2 * 16


def test_the_optimizer_sees_only_gamma_and_beta_and_never_moves_the_statistics(rng):
    model = small_model(momentum=1.0)  # the statistics then stay put in training too
    model.compile("adam", "sparse_categorical_crossentropy")
    model.build()
    bn = model.layers[1]
    assert [k for k in model.layout if k.startswith("batch_normalization")] == [
        "batch_normalization/gamma", "batch_normalization/beta"]
    assert list(model.state_layout) == ["batch_normalization/moving_mean",
                                        "batch_normalization/moving_variance"]
    assert all(np.shares_memory(s, model.states) for s in bn.state.values())
    gamma = bn.params["gamma"].copy()
    model.fit(rng.standard_normal((20, 6, 6, 2)), np.arange(20) % 5, batch_size=8, verbose=0)
    assert not np.array_equal(bn.params["gamma"], gamma)
    assert bn.state["moving_mean"].tolist() == [0.0] * 64
    assert bn.state["moving_variance"].tolist() == [1.0] * 64


def test_fit_updates_the_statistics_once_per_batch_and_evaluate_never(rng):
    model = tn.Sequential([L.Input((3,)), BatchNormalization(momentum=0.8), L.Dense(2)], seed=0)
    model.compile("sgd", "mse")
    x = rng.normal(2, 3, (10, 3)).astype(np.float32)
    y = rng.standard_normal((10, 2))
    model.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    mean, variance = np.zeros(3), np.ones(3)
    for batch in (x[:4], x[4:8], x[8:]):
        mean = mean * 0.8 + batch.mean(axis=0) * 0.2
        variance = variance * 0.8 + batch.var(axis=0) * 0.2
    state = model.layers[0].state
    # per batch: the layer rounds its float64 moments to float32 and the update ~5 times, the
    # hand computation rounds float32 4-row means ~10 times; 3 batches
    assert_close(state["moving_mean"], mean, depth=3 * (6 + 10))
    assert_close(state["moving_variance"], variance, depth=3 * (6 + 10))
    before = model.states.copy()
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.states, before)


def test_native_files_keep_the_moving_statistics(tmp_path, rng):
    model = small_model(gamma_regularizer="l2", momentum=0.5)
    model.compile("adam", "sparse_categorical_crossentropy")
    x = rng.standard_normal((16, 6, 6, 2)).astype(np.float32)
    model.fit(x, np.arange(16) % 5, batch_size=8, verbose=0)
    assert model.layers[1].state["moving_mean"].any()
    model.save(tmp_path / "m.npz")
    model.save_weights(tmp_path / "w.weights.npz")
    loaded = tn.models.load_model(tmp_path / "m.npz")
    assert loaded.layers[1].get_config() == model.layers[1].get_config()
    other = small_model(seed=3, gamma_regularizer="l2", momentum=0.5)
    other.load_weights(tmp_path / "w.weights.npz")
    for twin in (loaded, other):
        for a, b in zip(twin.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(twin.predict(x, verbose=0), model.predict(x, verbose=0))


# -- Keras parity ----------------------------------------------------------------------------
INPUT = (8, 8, 2)
#: float32 roundings behind one prediction of ``cnn`` (Higham: n for an n-term sum): the 18-term
#: convolution, 5 in each BatchNormalization, the 36-term and 8-term dense layers, and softmax's
#: exp, 3-term sum and division; computed twice, by tinynn and by Keras.
PREDICT_DEPTH = 2 * (18 + 5 + 36 + 5 + 8 + 5)
#: float32 roundings behind one weight after one training step of ``cnn`` on 16 images, along its
#: longest chain: the forward pass with batch statistics over 16 x 36 rows (mean and variance)
#: and over 16, the backward pass's input gradients and sums over the same rows, the first
#: kernel's gradient summed over 16 x 36 positions, and ~10 in Adam's update; computed twice.
STEP_DEPTH = 2 * ((18 + 2 * 576 + 5 + 36 + 2 * 16 + 5 + 8 + 5)
                  + (3 + 16 + 5 + 8 + 576 + 5 + 576 + 10))


def cnn(lib) -> list:
    """The parity CNN. No bias before a BatchNormalization (it would cancel out, and Adam
    would turn its rounding-noise gradient into full-size steps)."""
    return [lib.Conv2D(4, 3, use_bias=False), lib.BatchNormalization(), lib.Activation("relu"),
            lib.MaxPooling2D(2), lib.Flatten(), lib.Dense(8, use_bias=False),
            lib.BatchNormalization(), lib.Dense(3, activation="softmax")]


@pytest.fixture
def twins(keras):
    """The CNN in Keras and tinynn with the same weights: Keras's kernels, and random
    gamma, beta and moving statistics (beta below 0 so that ReLU cuts some of each channel:
    otherwise the next BatchNormalization cancels beta's gradient)."""
    rng = np.random.default_rng(0)
    theirs = keras.Sequential([keras.Input(INPUT), *cnn(keras.layers)])
    draw = {"gamma": lambda s: rng.uniform(0.5, 1.5, s), "beta": lambda s: rng.uniform(-1, 0, s),
            "moving_mean": lambda s: rng.uniform(-1, 0, s),
            "moving_variance": lambda s: rng.uniform(0.5, 1.5, s)}
    weights = [draw[v.name](v.shape).astype(np.float32) if v.name in draw else v.numpy()
               for v in theirs.weights]
    theirs.set_weights(weights)
    ours = tn.Sequential([L.Input(INPUT), *cnn(L)], seed=0)
    ours.build()
    ours.set_weights(weights)
    x = rng.standard_normal((16, *INPUT)).astype(np.float32)
    return ours, theirs, x, rng.integers(0, 3, 16)


def test_predictions_and_a_training_step_match_keras(twins, keras):
    ours, theirs, x, y = twins
    assert_close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), depth=PREDICT_DEPTH)
    ours.compile(tn.optimizers.Adam(), "sparse_categorical_crossentropy")
    theirs.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    before = ours.get_weights()
    ours.fit(x, y, batch_size=16, verbose=0)
    theirs.fit(x, y, batch_size=16, verbose=0)
    for (name, after), initial, keras_after in zip(ours.named_weights().items(), before,
                                                   theirs.get_weights()):
        assert_close(after, keras_after, depth=STEP_DEPTH, err_msg=name)
        assert not np.array_equal(after, initial), f"{name} did not change"


def test_layer_config_is_the_one_keras_writes(keras):
    def layers(lib, **regularizer):
        return [lib.BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5, center=False,
                                       moving_variance_initializer="zeros", **regularizer)]
    ours = tn.Sequential([L.Input((3, 4)), *layers(L, gamma_regularizer=tn.regularizers.L2(0.02))])
    theirs = keras.Sequential([keras.Input((3, 4)), *layers(
        keras.layers, gamma_regularizer=keras.regularizers.L2(0.02))])
    ours.build()
    keras_json = json.loads(json.dumps(keras.saving.serialize_keras_object(theirs)))
    assert strip_names(keras_config.model_config(ours)) == strip_names(keras_json)


def test_keras_files_load_into_tinynn_with_the_same_predictions(twins, tmp_path):
    ours, theirs, x, _ = twins
    theirs.save(tmp_path / "m.keras")
    theirs.save_weights(tmp_path / "w.weights.h5")
    expected = theirs.predict(x, verbose=0)
    loaded = tn.models.load_model(tmp_path / "m.keras")
    assert [type(layer).__name__ for layer in loaded.layers][1] == "BatchNormalization"
    other = tn.Sequential([L.Input(INPUT), *cnn(L)], seed=5)
    other.load_weights(tmp_path / "w.weights.h5")
    for model in (loaded, other):
        for a, b in zip(model.get_weights(), theirs.get_weights()):
            np.testing.assert_array_equal(a, b)
        assert_close(model.predict(x, verbose=0), expected, depth=PREDICT_DEPTH)


def test_tinynn_files_load_into_keras_with_the_same_predictions(twins, keras, tmp_path):
    ours, _, x, y = twins
    ours.compile(tn.optimizers.Adam(), "sparse_categorical_crossentropy")
    ours.fit(x, y, batch_size=8, verbose=0)
    ours.save(tmp_path / "m.keras")
    ours.save_weights(tmp_path / "w.weights.h5")
    expected = ours.predict(x, verbose=0)
    served = keras.saving.load_model(tmp_path / "m.keras")
    other = keras.Sequential([keras.Input(INPUT), *cnn(keras.layers)])
    other.load_weights(tmp_path / "w.weights.h5")
    for model in (served, other):
        for a, b in zip(model.get_weights(), ours.get_weights()):
            np.testing.assert_array_equal(a, b)
        assert_close(model.predict(x, verbose=0), expected, depth=PREDICT_DEPTH)


def test_keras2_files_with_the_axis_as_a_list_load(tf_keras, tmp_path):
    lib = tf_keras.layers
    model = tf_keras.Sequential([lib.InputLayer(INPUT), lib.Conv2D(3, 3), lib.BatchNormalization(),
                                 lib.Flatten(), lib.Dense(4), lib.BatchNormalization(),
                                 lib.Dense(2, activation="softmax")])
    model.compile(tf_keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((32, *INPUT)).astype(np.float32)
    model.fit(x, np.arange(32) % 2, verbose=0)
    model.save(tmp_path / "m.h5")
    assert model.get_config()["layers"][2]["config"]["axis"] == [3]  # (N, 6, 6, 3)
    loaded = tn.models.load_model(tmp_path / "m.h5")
    assert [layer.axis for layer in loaded.layers if isinstance(layer, BatchNormalization)] == [
        3, 1]
    # the 18-term convolution, 5 in each BatchNormalization, the 108-term and 4-term dense
    # layers and softmax over 2, computed twice
    assert_close(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                 depth=2 * (18 + 5 + 108 + 5 + 4 + 5))


def test_keras_renormalization_is_named_as_unsupported(keras, tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(renorm=True)])
    model.save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedKerasFeatureError, match="renorm=True"):
        tn.models.load_model(tmp_path / "m.keras")
