"""Weight regularizers: Keras 3's identifiers, defaults, rounding and validation; penalties and
gradients against hand computations and central differences; the model adding both to its loss
and gradients; one SGD and Adam step, configs and ``.keras`` files against Keras 3 (TensorFlow
backend); tinynn's own files keeping them.

Against Keras (float32) penalties, losses, predictions and weights may differ by the order of
their sums only (tinynn's NumPy against TensorFlow's kernels, on any CPU): each is judged at its
own scale, within the float32 roundings of its computation on both sides (Higham's n for an
n-term sum: ``STEP_ROUNDINGS`` per training step, ``PENALTY_ROUNDINGS``, ``PREDICT_ROUNDINGS``);
measured at most 2 roundings. Configs, dtypes and tinynn's own files are exact.
"""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynn as tn
from tinynn.errors import ArgumentError, UnsupportedKerasFeatureError
from tinynn.regularizers import L1, L1L2, L2
from tinynn.saving import keras_config
from tinynn.testing import (
    assert_close,
    check_gradient,
    check_model_gradients,
    floatx,
    rounding_bound,
)

from .helpers import check_layer
from .test_keras_parity import strip_names

R = tn.regularizers
IDENTIFIERS = ["l1", "l2", "l1l2", "L1", "L2", "L1L2"]


# -- identifiers, defaults, validation ------------------------------------------------------------
def test_identifiers_give_keras_classes_and_defaults():
    assert R.get("l1") == R.get("L1") == L1(0.01)
    assert R.get("l2") == R.get("L2") == L2(0.01)
    assert R.get("l1l2") == R.get("L1L2") == L1L2(0.0, 0.0)  # Keras: "l1l2" has zero factors
    assert R.get(None) is None
    instance = L2(0.3)
    assert R.get(instance) is instance


def test_l1_keeps_its_factor_rounded_to_float32_as_keras():
    assert L1().l1 == L1(None).l1 == float(np.float32(0.01)) == 0.009999999776482582
    assert L1(0.1).get_config() == {"l1": 0.10000000149011612}
    assert L2(0.1).get_config() == {"l2": 0.1}  # L2 and L1L2 keep the Python float
    assert L1L2(0.1, 0.2).get_config() == {"l1": 0.1, "l2": 0.2}
    assert L2(None).l2 == 0.01 and L1L2(None, None).get_config() == {"l1": 0.0, "l2": 0.0}
    assert L1L2(l2=3).get_config() == {"l1": 0.0, "l2": 3.0}


def test_config_dicts_in_tinynn_and_keras_forms():
    assert R.serialize(L1L2(0.5, 0.25)) == {"class_name": "L1L2",
                                            "config": {"l1": 0.5, "l2": 0.25}}
    assert R.serialize(None) is None
    for regularizer in (L1(0.3), L2(0.2), L1L2(0.1, 0.4)):
        assert R.get(R.serialize(regularizer)) == regularizer
    keras_entry = {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.5},
                   "registered_name": None}
    assert R.get(keras_entry) == L2(0.5)
    assert R.get({"class_name": "l2", "config": {"l2": 0.5}}) == L2(0.5)
    assert R.get({"class_name": "L2"}) == R.get({"class_name": "L2", "config": {}}) == L2()
    assert R.get({"class_name": "L1L2", "config": {"l1": 0.1}}) == L1L2(0.1, 0.0)


@pytest.mark.parametrize("make, match", [
    (lambda: L2(-1), r"L2 factor l2 expected a finite number in \[0, inf\], got -1"),
    (lambda: L1(float("nan")), r"L1 factor l1 expected a finite number .* got nan"),
    (lambda: L1L2(l2=float("inf")), r"L1L2 factor l2 expected a finite number .* got inf"),
    (lambda: L1L2(l1="0.1"), r"L1L2 factor l1 expected a finite number .* got '0.1'"),
    (lambda: R.get("l3"), r"regularizer expected None, one of \['L1', 'L1L2', 'L2', 'l1', "
                          r"'l1l2', 'l2'\].* got 'l3'"),
    (lambda: R.get("l1_l2"), r"got 'l1_l2': Keras 3 has no 'l1_l2'; 'l1l2' is L1L2\(\) with "
                             r"zero factors"),
    (lambda: R.get("orthogonal_regularizer"), r"got 'orthogonal_regularizer'"),
    (lambda: R.get(0.01), r"Regularizer instance, got 0.01"),
    (lambda: R.get({"class_name": "L2", "config": {"l2": 0.1, "l1": 0.1}}),
     r"L2 config expected a dict with keys among \['l2'\], got \{'l2': 0.1, 'l1': 0.1\}"),
    (lambda: R.get({"class_name": "L2", "config": {"l2": -0.1}}), r"L2 factor l2 .* got -0.1"),
    (lambda: R.get({"class_name": "Orthogonal", "config": {}}), r"got \{'class_name'"),
    (lambda: tn.layers.Dense(2, kernel_regularizer="l3"), r"got 'l3'"),
    (lambda: tn.layers.Conv2D(2, 3, bias_regularizer=L2), r"got <class"),
])
def test_bad_values_are_refused_with_what_was_expected(make, match):
    with pytest.raises(ArgumentError, match=match):
        make()


def test_only_tinynn_regularizers_serialize():
    class Custom(L2):
        pass

    with pytest.raises(ArgumentError, match=r"cannot serialize Custom: a config can name only "
                                            r"tinynn's regularizers \['L1', 'L1L2', 'L2'\]"):
        R.serialize(Custom())


def test_identifiers_match_keras(keras):
    for identifier in IDENTIFIERS:
        assert R.get(identifier).get_config() == keras.regularizers.get(identifier).get_config()
    for factor in (0.01, 0.1, 0.3, 2):
        assert L1(factor).get_config() == keras.regularizers.L1(factor).get_config()
        assert L2(factor).get_config() == keras.regularizers.L2(factor).get_config()
    with pytest.raises(ValueError):
        keras.regularizers.get("l1_l2")  # refused by Keras 3 too


# -- penalties and gradients ----------------------------------------------------------------------
W = [[1.0, -2.0], [0.0, 3.0]]  # sum |w| = 6, sum w^2 = 14


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("regularizer, penalty, gradient", [
    (L1(0.5), 3.0, [[0.5, -0.5], [0.0, 0.5]]),  # sign(0) = 0, as TensorFlow's abs gradient
    (L2(0.25), 3.5, [[0.5, -1.0], [0.0, 1.5]]),
    (L1L2(0.5, 0.25), 6.5, [[1.0, -1.5], [0.0, 2.0]]),
    (L1L2(), 0.0, [[0.0, 0.0], [0.0, 0.0]]),
])
def test_penalty_and_gradient_by_hand(dtype, regularizer, penalty, gradient):
    w = np.array(W, dtype=dtype)
    value, grad = regularizer(w), regularizer.gradient(w)
    assert value == penalty and value.dtype == dtype
    np.testing.assert_array_equal(grad, gradient)
    assert grad.dtype == dtype and grad.shape == w.shape
    np.testing.assert_array_equal(w, W)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), seed=st.integers(0, 2**16),
       l1=st.floats(0, 2), l2=st.floats(0, 2))
def test_gradient_is_the_penalty_derivative(shape, seed, l1, l2):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=shape)
    w += np.where(w >= 0, 0.1, -0.1)  # away from L1's kink
    regularizer = L1L2(l1, l2)
    expected = l1 * np.abs(w).sum() + l2 * np.square(w).sum()
    # each side: two sums of w.size non-negative terms, two products and their sum (a subnormal
    # factor's roundings are covered by the bound's floor at the smallest normal number)
    assert_close(regularizer(w), expected, depth=2 * (w.size + 3))
    check_gradient(lambda: float(regularizer(w)), w, regularizer.gradient(w), "w", rng)


#: Factors float32 represents exactly: Keras on TensorFlow casts a factor to a float64 weight's
#: dtype through float32 (``ops.cast(0.01, "float64")`` is 0.009999999776482582), tinynn
#: directly, so in float64 the two agree within the roundings of the sums only for these (and
#: for L1, which keeps its factor rounded to float32 in both).
EXACT_FACTORS = ["l1", "L1", "l1l2", {"class_name": "L1", "config": {"l1": 0.3}},
                 {"class_name": "L2", "config": {"l2": 0.25}},
                 {"class_name": "L1L2", "config": {"l1": 0.375, "l2": 0.625}}]


@pytest.mark.parametrize("identifier, dtype", [
    *[(identifier, "float32") for identifier in IDENTIFIERS + EXACT_FACTORS[3:]],
    *[(identifier, "float64") for identifier in EXACT_FACTORS]])
def test_penalty_matches_keras(keras, dtype, identifier):
    w = np.random.default_rng(0).normal(size=(5, 7)).astype(dtype)
    ours = R.get(identifier)(w)
    theirs = np.asarray(keras.regularizers.get(identifier)(keras.ops.convert_to_tensor(w)))
    assert ours.dtype == theirs.dtype == dtype
    # each side: two sums of 35 non-negative terms in its own order, the factors and their sum
    assert_close(ours, theirs, depth=2 * (35 + 3))


# -- layers and the model -------------------------------------------------------------------------
def test_layers_take_keras_arguments_and_register_their_weights(rng):
    dense = tn.layers.Dense(3, kernel_regularizer="l2", bias_regularizer={"class_name": "L1"})
    assert dense.kernel_regularizer == L2() and dense.bias_regularizer == L1()
    dense.build((4,), rng)
    assert dense.regularizers == {"kernel": L2(), "bias": L1()}
    config = dense.get_config()
    assert config["kernel_regularizer"] == {"class_name": "L2", "config": {"l2": 0.01}}
    assert type(dense).from_config(config).bias_regularizer == L1()
    conv = tn.layers.Conv2D(2, 3, use_bias=False, kernel_regularizer=L1L2(0.1, 0.2),
                            bias_regularizer="l1")
    conv.build((5, 5, 1), rng)
    assert conv.regularizers == {"kernel": L1L2(0.1, 0.2)}  # no bias, so no bias penalty
    plain = tn.layers.Dense(2)
    plain.build((3,), rng)
    assert plain.regularizers == {} and plain.get_config()["bias_regularizer"] is None


@pytest.mark.parametrize("layer, input_shape", [
    (tn.layers.Dense(3, activation="tanh", kernel_regularizer=L1L2(0.1, 0.2),
                     bias_regularizer="l1"), (4,)),
    (tn.layers.Conv2D(2, 3, padding="same", kernel_regularizer="l2",
                      bias_regularizer=L2(0.5)), (5, 5, 2)),
])
def test_layers_with_regularizers_keep_the_layer_contract(layer, input_shape, rng):
    check_layer(layer, input_shape, rng)


def regularized_cnn(seed=0) -> tn.Sequential:
    return tn.Sequential([
        tn.layers.Input((6, 6, 2)),
        tn.layers.Conv2D(3, 3, activation="tanh", kernel_regularizer=L1(0.2),
                         bias_regularizer=L2(0.3)),
        tn.layers.Flatten(),
        tn.layers.Dense(4, activation="softmax", kernel_regularizer=L1L2(0.1, 0.2),
                        bias_regularizer=L1L2(l1=0.3, l2=0.1))], seed=seed)


def test_model_gradients_include_the_penalties(float64):
    model = regularized_cnn()
    model.compile(tn.optimizers.SGD(), "sparse_categorical_crossentropy")
    model.build()
    rng = np.random.default_rng(3)
    for weight in model.named_weights().values():
        weight[...] = rng.normal(size=weight.shape) * 0.5
    x = rng.normal(size=(5, 6, 6, 2))
    y = np.arange(5) % 4
    conv, dense = model.layers[0].params, model.layers[2].params
    penalty = (float(np.float32(0.2)) * np.abs(conv["kernel"]).sum()
               + 0.3 * np.square(conv["bias"]).sum() + 0.1 * np.abs(dense["kernel"]).sum()
               + 0.2 * np.square(dense["kernel"]).sum() + 0.3 * np.abs(dense["bias"]).sum()
               + 0.1 * np.square(dense["bias"]).sum())
    # each side: sums of at most 192 non-negative terms, their factors and 6 penalties added
    assert_close(model.regularization_loss(), penalty, depth=2 * (192 + 7))
    assert penalty > 1
    check_model_gradients(model, x, y, rng=rng)


# -- Keras parity ---------------------------------------------------------------------------------
def mlp(lib) -> list:
    """A small regularized MLP in tinynn (``lib=tn``) or Keras (``lib=keras``)."""
    reg = lib.regularizers
    return [lib.layers.Input((5,)),
            lib.layers.Dense(8, activation="relu", kernel_regularizer="l1",
                             bias_regularizer=reg.L2(0.05)),
            lib.layers.Dense(3, activation="softmax", kernel_regularizer=reg.L1L2(0.01, 0.02),
                             bias_regularizer="L1")]


def cnn(lib) -> list:
    """A small regularized CNN in tinynn or Keras."""
    reg = lib.regularizers
    return [lib.layers.Input((6, 6, 2)),
            lib.layers.Conv2D(3, 3, padding="same", activation="relu",
                              kernel_regularizer=reg.L2(0.02), bias_regularizer="l1"),
            lib.layers.Conv2D(2, 3, strides=2, activation="tanh",
                              kernel_regularizer=reg.L1L2(0.01, 0.03),
                              bias_regularizer=reg.L2(0.05)),
            lib.layers.Flatten(),
            lib.layers.Dense(4, activation="softmax", kernel_regularizer="l2",
                             bias_regularizer=reg.L1L2(l1=0.02))]


def twins(keras, build) -> tuple:
    """tinynn's model (non-zero biases) and Keras's with the same weights, and a batch."""
    ours = tn.Sequential(build(tn), seed=0)
    ours.build()
    rng = np.random.default_rng(1)
    for layer in ours.layers:
        if "bias" in layer.params:
            layer.params["bias"][...] = rng.normal(size=layer.params["bias"].shape) * 0.3
    theirs = keras.Sequential(build(keras))
    theirs.set_weights(ours.get_weights())
    x = rng.normal(size=(8, *ours.input_shape)).astype(np.float32)
    return ours, theirs, x, np.arange(8) % ours.layers[-1].units


def keras_penalty(model) -> float:
    return float(sum(float(loss) for loss in model.losses))


#: float32 roundings behind one weight in one training step, along its longest chain (Higham: n
#: for an n-term sum): the forward dot products, softmax's sum, the backward input gradients, the
#: weight gradient's sum over the batch of 8 (for the CNN's first kernel over 8 images x 36
#: positions), the penalty's gradient and ~10 in the optimizer's update.
STEP_ROUNDINGS = {"mlp": 5 + 8 + 3 + 3 + 8 + 2 + 10,
                  "cnn": 18 + 27 + 8 + 4 + 4 + 18 + 8 * 36 + 2 + 10}
#: float32 roundings of the penalty: the largest kernel's sum (40 terms in the MLP, 54 in the
#: CNN), its factor and the sum of the layers' penalties.
PENALTY_ROUNDINGS = {"mlp": 40 + 1 + 4, "cnn": 54 + 1 + 6}
#: float32 roundings of one prediction of the CNN: its 18-, 27- and 8-term dot products, tanh and
#: softmax's exp, 4-term sum and division.
PREDICT_ROUNDINGS = 18 + 27 + 8 + 1 + 4 + 2


def keras_depth(build, steps_count: int) -> int:
    """The depth for weights after ``steps_count`` training steps, computed by tinynn and Keras."""
    return 2 * steps_count * STEP_ROUNDINGS[build.__name__]


def loss_depth(build, steps_count: int) -> int:
    """The depth for a loss after ``steps_count`` training steps: one more forward pass and the
    penalty, computed by tinynn and Keras."""
    return keras_depth(build, steps_count + 1) + 2 * PENALTY_ROUNDINGS[build.__name__]


@pytest.mark.parametrize("build", [mlp, cnn])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_steps_match_keras(keras, build, optimizer):
    ours, theirs, x, y = twins(keras, build)
    assert_close(ours.regularization_loss(), keras_penalty(theirs),
                 depth=2 * PENALTY_ROUNDINGS[build.__name__], dtype=np.float32)
    pair = ((keras.optimizers.SGD(0.1), tn.optimizers.SGD(0.1)) if optimizer == "sgd"
            else (keras.optimizers.Adam(0.01), tn.optimizers.Adam(0.01)))
    theirs.compile(pair[0], "sparse_categorical_crossentropy")
    ours.compile(pair[1], "sparse_categorical_crossentropy")
    for step in range(2):  # the second Adam step weighs the penalty gradient against the first
        penalty = ours.regularization_loss()
        keras_loss = float(theirs.train_on_batch(x, y, return_dict=True)["loss"])
        history = ours.fit(x, y, batch_size=len(x), shuffle=False, verbose=0)
        depth = loss_depth(build, step)
        assert_close(history.history["loss"][0], keras_loss, depth=depth, dtype=np.float32)
        # a loss without the penalty would fail that comparison
        assert penalty > 20 * rounding_bound(keras_loss, np.float32, depth)
        for keras_weight, weight in zip(theirs.get_weights(), ours.get_weights(), strict=True):
            assert_close(weight, keras_weight, depth=keras_depth(build, step + 1),
                         dtype=np.float32)
    # evaluate adds the penalty too (Keras's test_step calls the same compute_loss)
    assert_close(ours.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0),
                 depth=loss_depth(build, 2), dtype=np.float32)


@pytest.mark.parametrize("build", [mlp, cnn])
def test_keras_config_is_what_keras_writes(keras, build):
    ours, theirs, _, _ = twins(keras, build)
    keras_json = json.loads(json.dumps(keras.saving.serialize_keras_object(theirs)))
    assert strip_names(keras_config.model_config(ours)) == strip_names(keras_json)
    entries = [layer["config"]["bias_regularizer"]
               for layer in keras_config.model_config(ours)["config"]["layers"][1:]
               if "bias_regularizer" in layer["config"]]
    assert {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.05},
            "registered_name": None} in entries


def test_keras_file_loads_with_its_regularizers(keras, tmp_path):
    _, theirs, x, _ = twins(keras, cnn)
    theirs.save(tmp_path / "keras.keras")
    loaded = tn.models.load_model(tmp_path / "keras.keras")
    expected = [(L2(0.02), L1()), (L1L2(0.01, 0.03), L2(0.05)), (L2(), L1L2(l1=0.02))]
    with_weights = [layer for layer in loaded.layers if layer.params]
    assert [(layer.kernel_regularizer, layer.bias_regularizer)
            for layer in with_weights] == expected
    assert_close(loaded.regularization_loss(), keras_penalty(theirs),
                 depth=2 * PENALTY_ROUNDINGS["cnn"], dtype=np.float32)
    assert_close(loaded.predict(x, verbose=0), theirs.predict(x, verbose=0),
                 depth=2 * PREDICT_ROUNDINGS)


def test_keras2_file_loads_with_its_regularizers(tf_keras, tmp_path):
    reg = tf_keras.regularizers
    theirs = tf_keras.Sequential([tf_keras.layers.Dense(
        3, input_shape=(4,), kernel_regularizer=reg.l1_l2(0.01, 0.02), bias_regularizer="l2")])
    theirs.save(tmp_path / "keras2.h5")
    loaded = tn.models.load_model(tmp_path / "keras2.h5", compile=False)
    f32 = [float(np.float32(factor)) for factor in (0.01, 0.02)]  # Keras 2 keeps them so
    assert loaded.layers[0].kernel_regularizer == L1L2(*f32)
    assert loaded.layers[0].bias_regularizer == L2(f32[0])
    # the kernel's two 12-term sums, the factors and three penalties added, on each side
    assert_close(loaded.regularization_loss(), keras_penalty(theirs), depth=2 * (12 + 2 + 3),
                 dtype=np.float32)


def test_tinynn_keras_file_loads_in_keras_with_its_regularizers(keras, tmp_path):
    ours, _, _, _ = twins(keras, cnn)
    ours.save(tmp_path / "tinynn.keras")
    theirs = keras.models.load_model(tmp_path / "tinynn.keras")
    for layer, keras_layer in zip(ours.layers, theirs.layers, strict=True):
        for key in ("kernel_regularizer", "bias_regularizer"):
            ours_value = getattr(layer, key, None)
            theirs_value = getattr(keras_layer, key, None)
            assert (None if theirs_value is None else (type(theirs_value).__name__,
                    theirs_value.get_config())) == (
                None if ours_value is None else (type(ours_value).__name__,
                                                 ours_value.get_config()))
    assert_close(keras_penalty(theirs), ours.regularization_loss(),
                 depth=2 * PENALTY_ROUNDINGS["cnn"], dtype=np.float32)


def test_unsupported_keras_regularizer_is_named(keras, tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        4, kernel_regularizer=keras.regularizers.OrthogonalRegularizer(0.1))])
    model.save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedKerasFeatureError,
                       match=r"Keras layer 'dense.*' \(Dense\) with kernel_regularizer=.*"
                             r"OrthogonalRegularizer.* is not supported by tinynn"):
        tn.models.load_model(tmp_path / "m.keras")


# -- tinynn's files -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_native_file_keeps_the_regularizers(tmp_path, dtype):
    with floatx(dtype):
        model = regularized_cnn(seed=4)
        model.compile(tn.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
        model.build()
        model.save(tmp_path / "model.npz")
        loaded = tn.models.load_model(tmp_path / "model.npz")
    pairs = [(layer.regularizers, twin.regularizers)
             for layer, twin in zip(model.layers, loaded.layers, strict=True)]
    assert all(ours == theirs for ours, theirs in pairs)
    assert loaded.layers[0].kernel_regularizer == L1(0.2)
    assert loaded.regularization_loss() == model.regularization_loss() > 0
