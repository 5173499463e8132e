"""The examples reproduce the reports' Keras models: given Keras's weights, tinynn predicts what
Keras 3 (TensorFlow backend) predicts, takes the same optimizer step and trains to the same
History, for Task 1, Task 2 (3, 6 and 12 layers) and Task 3.

Tolerances: both frameworks compute in the same dtype but sum in different orders (different
BLAS kernels on AVX2 and AVX-512 CPUs), so every comparison allows the roundings of both
implementations through the network (``helpers.rounding_depth``: about ``3 sqrt(n)`` epsilons
per sum of ``n`` terms, forward and, per training step, backward), scaled by the compared
values' magnitude. Formula errors are far larger: a step is shown to move the weights by more
than 10 bounds. Over a 2-epoch fit, float32 rounding differences are amplified chaotically in
the deep networks (a ReLU input within rounding of zero switches a unit; Adam turns tiny
gradient differences into full steps): tinynn in float32 and tinynn in float64 drift apart by
1e-3 on the 12-layer MLP and the CNN. The History comparison therefore runs both frameworks in
float64 (and in float32 for the shallow Task 1 and 3-layer networks, where rounding stays within
the per-step bound times the steps). Accuracies are counts: they must match exactly. Keras in
float64 computes Adam's bias corrections from beta_1 and beta_2 rounded to float32
(``ops.cast(0.999, "float64")`` passes through float32 in keras/src/optimizers/adam.py), so
there both optimizers get betas that float32 represents exactly.

Dropout is the one random layer: the fits use rate 0 for Task 3, and dropout itself is tested
by its statistics and by one training step with Keras's own mask injected into tinynn.
"""

import contextlib
import json

import numpy as np
import pytest

import tinynn as tn
from tests.helpers import rounding_depth
from tinynn.saving import keras_config
from tinynn.testing import assert_close, floatx, rounding_bound

ARCHITECTURES = ["task1", "task2-3", "task2-6", "task2-12", "task3"]
HIDDEN_LAYERS = {3: 1, 6: 4, 12: 10}  # the reports' depths -> Dense(128, relu) layers
BETAS = {"beta_1": float(np.float32(0.9)), "beta_2": float(np.float32(0.999))}


def tinynn_model(examples, arch: str, dropout: float = 0.0) -> tn.Sequential:
    """The example's model for ``arch``."""
    if arch == "task1":
        return examples.task1.build_model("softmax", seed=0)
    if arch.startswith("task2"):
        return examples.task2.build_mlp(int(arch.split("-")[1]), seed=0)
    return examples.task3.build_cnn(dropout, seed=0)


def keras_model(keras, arch: str, dropout: float = 0.0, dropout_seed=None):
    """The reports' Keras model for ``arch``, written as the reports write it."""
    layers = keras.layers
    if arch == "task1":
        stack = [keras.Input((28, 28)), layers.Flatten(), layers.Dense(100, activation="sigmoid"),
                 layers.Dense(10, activation="softmax")]
    elif arch.startswith("task2"):
        hidden = HIDDEN_LAYERS[int(arch.split("-")[1])]
        stack = [keras.Input((28, 28)), layers.Flatten(),
                 *[layers.Dense(128, activation="relu") for _ in range(hidden)],
                 layers.Dense(10, activation="softmax")]
    else:
        stack = [keras.Input((28, 28, 1)),
                 layers.Conv2D(32, 5, padding="same", activation="relu"), layers.MaxPooling2D(2),
                 layers.Conv2D(64, 5, padding="same", activation="relu"), layers.MaxPooling2D(2),
                 layers.Flatten(), layers.Dense(1024, activation="relu"),
                 layers.Dropout(dropout, seed=dropout_seed),
                 layers.Dense(10, activation="softmax")]
    return keras.Sequential(stack)


def images(arch: str, n: int, dtype="float32", seed=0):
    """``n`` random 8-bit images scaled to [0, 1] and random labels."""
    rng = np.random.default_rng(seed)
    shape = (28, 28, 1) if arch == "task3" else (28, 28)
    return (rng.integers(0, 256, (n, *shape)) / 255).astype(dtype), rng.integers(0, 10, n)


def transferred_pair(keras, examples, arch, tmp_path, dropout=0.0, dropout_seed=None):
    """A Keras model initialised by Keras, and the example's model loading its weights file."""
    keras.utils.set_random_seed(1)
    theirs = keras_model(keras, arch, dropout, dropout_seed)
    theirs.save_weights(tmp_path / "keras.weights.h5")
    ours = tinynn_model(examples, arch, dropout)
    ours.build()
    ours.load_weights(tmp_path / "keras.weights.h5")
    return theirs, ours


def optimizers(keras, name: str, **kwargs) -> tuple:
    """The same optimizer in Keras and tinynn: ``"adam"`` (default arguments) or ``"sgd"``
    (Task 1's learning rate 0.1)."""
    if name == "sgd":
        return keras.optimizers.SGD(0.1), tn.optimizers.SGD(0.1)
    return keras.optimizers.Adam(**kwargs), tn.optimizers.Adam(**kwargs)


def compile_both(theirs, ours, optimizer_pair) -> None:
    keras_optimizer, tinynn_optimizer = optimizer_pair
    theirs.compile(keras_optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    ours.compile(tinynn_optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])


def assert_same_weights(theirs, ours, depth: float) -> None:
    for keras_weight, weight in zip(theirs.get_weights(), ours.get_weights(), strict=True):
        assert_close(weight, keras_weight, depth=depth)


@contextlib.contextmanager
def both_in(keras, dtype: str):
    """Keras's and tinynn's floatx set to ``dtype`` for the block (Keras's global dtype
    policy too: once used, it no longer follows ``set_floatx``)."""
    before = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        with floatx(dtype):
            yield
    finally:
        keras.config.set_floatx(before[0])
        keras.config.set_dtype_policy(before[1])


# -- architecture and inference -------------------------------------------------------------------
def strip_names(config: dict) -> list:
    """A Sequential config's layers without their session-dependent names."""
    layers = [dict(entry, config=dict(entry["config"])) for entry in config["config"]["layers"]]
    for entry in layers:
        entry["config"].pop("name")
        if isinstance(entry["config"].get("dtype"), dict):
            entry["config"]["dtype"].pop("shared_object_id", None)
    return layers


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_examples_are_the_reports_keras_models_layer_for_layer(keras, examples, arch):
    theirs = keras_model(keras, arch, dropout=0.4)
    ours = tinynn_model(examples, arch, dropout=0.4)
    ours.build()
    keras_json = json.loads(json.dumps(keras.saving.serialize_keras_object(theirs)))  # tuples
    assert strip_names(keras_config.model_config(ours)) == strip_names(keras_json)
    assert ours.count_params() == theirs.count_params()


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_keras_weights_give_keras_predictions(keras, examples, tmp_path, arch):
    theirs, ours = transferred_pair(keras, examples, arch, tmp_path)
    x, y = images(arch, 48)
    depth = rounding_depth(ours)
    assert_close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), depth=depth)
    compile_both(theirs, ours, optimizers(keras, "adam"))
    loss, accuracy = ours.evaluate(x, y, verbose=0)
    keras_loss, keras_accuracy = theirs.evaluate(x, y, verbose=0)
    assert_close(loss, keras_loss, depth=depth + 48, dtype=np.float32)  # + the mean's sum
    assert accuracy == pytest.approx(keras_accuracy, abs=0.5 / len(x))  # the same count


# -- training -------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch, optimizer", [(arch, "adam") for arch in ARCHITECTURES]
                         + [("task1", "sgd")])
def test_one_optimizer_step_gives_keras_weights(keras, examples, tmp_path, arch, optimizer):
    theirs, ours = transferred_pair(keras, examples, arch, tmp_path)
    compile_both(theirs, ours, optimizers(keras, optimizer))
    before = ours.get_weights()
    x, y = images(arch, 32)
    keras_loss = theirs.train_on_batch(x, y)[0]
    history = ours.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    depth = rounding_depth(ours, batch=32, steps=1)
    assert_close(history.history["loss"][0], keras_loss, depth=depth, dtype=np.float32)
    assert_same_weights(theirs, ours, depth)
    moved = max(np.abs(a - b).max() for a, b in zip(ours.get_weights(), before))
    # the step was taken (Adam: about the learning rate, 1e-3), by far more than the bound
    assert moved > 10 * max(rounding_bound(w, np.float32, depth) for w in before)


class InjectedMask:
    """A stand-in for Dropout's Generator whose draws keep exactly the units of ``keep``."""

    def __init__(self, keep: np.ndarray):
        self.keep = keep

    def random(self, shape, dtype):
        assert shape == self.keep.shape
        return self.keep.astype(dtype)  # 1 >= rate: kept; 0 < rate: dropped


def test_task3_step_with_keras_dropout_mask_gives_keras_weights(keras, examples, tmp_path):
    rate, seed = 0.4, 7
    theirs, ours = transferred_pair(keras, examples, "task3", tmp_path, rate, seed)
    # A fresh Dropout with the same seed draws the mask Keras's first training step draws.
    mask = np.asarray(keras.layers.Dropout(rate, seed=seed)(
        np.ones((32, 1024), np.float32), training=True))
    assert 0.3 < (mask == 0).mean() < 0.5
    dropout = next(layer for layer in ours.layers if isinstance(layer, tn.layers.Dropout))
    dropout.rng = InjectedMask(mask != 0)
    compile_both(theirs, ours, optimizers(keras, "adam"))
    x, y = images("task3", 32)
    keras_loss = theirs.train_on_batch(x, y)[0]
    history = ours.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    depth = rounding_depth(ours, batch=32, steps=1)
    assert_close(history.history["loss"][0], keras_loss, depth=depth, dtype=np.float32)
    assert_same_weights(theirs, ours, depth)


def test_dropout_statistics_and_scaling_match_keras(keras):
    rate, x = 0.4, np.ones((400, 500), np.float32)
    layer = tn.layers.Dropout(rate, seed=3)
    layer.build(x.shape[1:], np.random.default_rng(0))
    ours = layer.forward(x, training=True)
    theirs = np.asarray(keras.layers.Dropout(rate, seed=3)(x, training=True))
    sigma = np.sqrt(rate * (1 - rate) / x.size)
    for out in (ours, theirs):
        assert abs((out == 0).mean() - rate) < 5 * sigma
        assert out.dtype == np.float32 and abs(out.mean() - 1) < 5 * sigma / (1 - rate)
    assert set(np.unique(ours)) == set(np.unique(theirs))  # 0 and the same 1 / (1 - rate)
    dy = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy), dy * ours)
    np.testing.assert_array_equal(layer.forward(x), x)  # inference: the identity, as Keras
    np.testing.assert_array_equal(keras.layers.Dropout(rate)(x, training=False), x)


def two_epochs(keras, examples, tmp_path, arch, optimizer, **kwargs) -> tuple:
    """Keras's and tinynn's History and models after 2 epochs on 1,001 samples, batch 32,
    validation_split 0.1, no shuffling, from the same weights."""
    theirs, ours = transferred_pair(keras, examples, arch, tmp_path)
    compile_both(theirs, ours, optimizers(keras, optimizer, **kwargs))
    x, y = images(arch, 1001, dtype=keras.config.floatx())
    fit = dict(batch_size=32, epochs=2, validation_split=0.1, shuffle=False, verbose=0)
    keras_history = theirs.fit(x, y, **fit).history
    history = ours.fit(x, y, **fit).history
    assert sorted(history) == sorted(keras_history) == ["accuracy", "loss", "val_accuracy",
                                                         "val_loss"]
    steps = 2 * -(-900 // 32)
    depth = rounding_depth(ours, batch=32, steps=steps)
    for key, values in keras_history.items():
        if key.endswith("accuracy"):  # counts out of 900 (train) or 101 (validation) samples
            assert history[key] == pytest.approx(values, abs=0.5 / 900), key
        else:
            assert_close(np.array(history[key]), np.array(values), depth=depth,
                         dtype=ours.parameters.dtype, err_msg=key)
    return theirs, ours, depth


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_two_epoch_history_matches_keras_in_float64(keras, examples, tmp_path, arch):
    optimizer, kwargs = ("sgd", {}) if arch == "task1" else ("adam", BETAS)
    with both_in(keras, "float64"):
        theirs, ours, depth = two_epochs(keras, examples, tmp_path, arch, optimizer, **kwargs)
    assert theirs.get_weights()[0].dtype == ours.parameters.dtype == np.float64
    assert_same_weights(theirs, ours, depth)


@pytest.mark.parametrize("arch, optimizer", [("task1", "sgd"), ("task2-3", "adam")])
def test_two_epoch_history_matches_keras_in_float32_for_shallow_networks(keras, examples,
                                                                          tmp_path, arch,
                                                                          optimizer):
    two_epochs(keras, examples, tmp_path, arch, optimizer)
