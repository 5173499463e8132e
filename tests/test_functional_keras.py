"""Functional models and Keras files, against real Keras: a residual CNN (BatchNormalization,
a 1x1 projection shortcut), a two-input model and a shared layer go from Keras 3 to tinynn
and back (.keras and .weights.h5), with Keras's layer names, order and weights; Keras 2's
functional files load too.

Tolerances: both sides compute in float32 in different summation orders
(``helpers.rounding_depth``, docs/keras-parity.md "Tolerances")."""

import numpy as np
import pytest

import tinynn as tn
from tests.helpers import rounding_depth
from tinynn.errors import UnsupportedKerasFeatureError
from tinynn.testing import assert_close

RNG = np.random.default_rng(0)
IMAGES = RNG.standard_normal((16, 8, 8, 2)).astype(np.float32)
LABELS = np.arange(16) % 3
SIDE = RNG.standard_normal((16, 5)).astype(np.float32)


def residual(lib, extra_input: bool = False):
    """The same graph in Keras 3, tf.keras 2 or tinynn (``lib``: its module with ``Input``,
    ``Model`` and ``layers``): conv, BatchNormalization, a projection shortcut added back, a
    Dense layer called twice (shared), and optionally a second input concatenated."""
    L = lib.layers
    image = lib.Input((8, 8, 2), name="image")
    h = L.Conv2D(4, 3, padding="same", activation="relu")(image)
    h = L.BatchNormalization()(h)
    h = L.Activation("relu")(L.add([h, L.Conv2D(4, 1)(image)]))
    h = L.GlobalAveragePooling2D()(L.MaxPooling2D()(h))
    inputs = [image]
    if extra_input:
        side = lib.Input((5,), name="side")
        h = L.concatenate([h, L.Dense(3, activation="tanh")(side)])
        inputs.append(side)
    shared = L.Dense(7, activation="relu")
    h = shared(L.Dense(7)(h))
    h = shared(h)
    out = L.Dense(3, activation="softmax")(h)
    return lib.Model(inputs if extra_input else image, out)


def data(extra_input: bool):
    return [IMAGES, SIDE] if extra_input else IMAGES


@pytest.mark.parametrize("extra_input", [False, True])
def test_keras3_functional_file_loads_with_keras_layers_and_trains_alike(keras, tmp_path,
                                                                          extra_input):
    keras.utils.set_random_seed(3)
    theirs = residual(keras, extra_input)
    theirs.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    theirs.fit(data(extra_input), LABELS, batch_size=8, epochs=1, verbose=0)
    theirs.save(tmp_path / "k.keras")
    ours = tn.models.load_model(tmp_path / "k.keras")
    assert type(ours) is tn.Model
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    assert [type(layer).__name__ for layer in ours.layers] == [
        type(layer).__name__ for layer in theirs.layers]
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = data(extra_input)
    assert_close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                 depth=rounding_depth(ours))
    theirs.train_on_batch(x, LABELS)
    ours.fit(x, LABELS, batch_size=16, epochs=1, shuffle=False, verbose=0)
    depth = rounding_depth(ours, batch=16, steps=1) + 16 * 8 * 8  # + BN's batch statistics
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        assert_close(a, b, depth=depth)


@pytest.mark.parametrize("extra_input", [False, True])
def test_tinynn_functional_file_loads_in_keras_and_trains_alike(keras, tmp_path, extra_input):
    ours = residual(tn, extra_input)
    ours.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = data(extra_input)
    ours.fit(x, LABELS, batch_size=8, epochs=1, verbose=0)
    ours.save(tmp_path / "t.keras")
    ours.save_weights(tmp_path / "t.weights.h5")
    theirs = keras.saving.load_model(tmp_path / "t.keras")
    assert [layer.name for layer in theirs.layers] == [layer.name for layer in ours.layers]
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert_close(theirs.predict(x, verbose=0), ours.predict(x, verbose=0),
                 depth=rounding_depth(ours))
    twin = residual(keras, extra_input)  # Keras's own architecture takes the weights file
    twin.load_weights(tmp_path / "t.weights.h5")
    for a, b in zip(ours.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    theirs.train_on_batch(x, LABELS)
    ours.fit(x, LABELS, batch_size=16, epochs=1, shuffle=False, verbose=0)
    depth = rounding_depth(ours, batch=16, steps=1) + 16 * 8 * 8
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        assert_close(a, b, depth=depth)


def test_keras_weights_file_loads_into_the_same_tinynn_graph(keras, tmp_path):
    keras.utils.set_random_seed(5)
    theirs = residual(keras, True)
    theirs.save_weights(tmp_path / "k.weights.h5")
    ours = residual(tn, True)
    ours.build()
    ours.load_weights(tmp_path / "k.weights.h5")
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["m.h5", "m.keras"])
def test_keras2_functional_files_load(tf_keras, tmp_path, name):
    theirs = residual(tf_keras, True)
    theirs.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    theirs.fit(data(True), LABELS, batch_size=8, epochs=1, verbose=0)
    theirs.save(tmp_path / name)
    ours = tn.models.load_model(tmp_path / name)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert_close(ours.predict(data(True), verbose=0), theirs.predict(data(True), verbose=0),
                 depth=rounding_depth(ours))


def test_a_call_with_a_training_argument_is_named_as_unsupported(keras, tmp_path):
    x = keras.Input((4,), name="x")
    out = keras.layers.Dropout(0.5, name="always")(x, training=True)
    keras.Model(x, keras.layers.Dense(2)(out)).save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedKerasFeatureError, match="layer 'always' called with"):
        tn.models.load_model(tmp_path / "m.keras")


def two_heads(lib, as_dict: bool):
    """Keras's functional-guide shape in small: a trunk, a softmax head and a linear head."""
    L = lib.layers
    x = lib.Input((6,), name="features")
    h = L.Dense(8, activation="tanh", name="trunk")(x)
    priority = L.Dense(3, activation="softmax", name="priority")(h)
    score = L.Dense(2, name="score")(L.Concatenate(name="joined")([h, x]))
    return lib.Model(x, {"p": priority, "s": score} if as_dict else [priority, score])


@pytest.mark.parametrize("as_dict", [False, True])
def test_several_outputs_train_as_keras_with_keras_history_names(keras, tmp_path, as_dict):
    """Batches of 10 that divide the 30 training and 10 validation samples: with a smaller
    last batch Keras 3.15's per-output losses are not per-sample means of the epoch (its total
    is; docs/keras-parity.md, "Functional models"), tinynn's are."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    labels, targets = rng.integers(0, 3, 40), rng.standard_normal((40, 2)).astype(np.float32)
    y = {"p": labels, "s": targets} if as_dict else [labels, targets]
    keras.utils.set_random_seed(2)
    theirs = two_heads(keras, as_dict)
    theirs.save_weights(tmp_path / "k.weights.h5")
    ours = two_heads(tn, as_dict)
    ours.build()
    ours.load_weights(tmp_path / "k.weights.h5")
    losses = ["sparse_categorical_crossentropy", "mse"]
    settings = dict(loss=dict(zip("ps", losses)) if as_dict else losses,
                    loss_weights={"p": 1.0, "s": 0.5} if as_dict else [1.0, 0.5],
                    metrics={"p": ["accuracy"]} if as_dict else [["accuracy"], []])
    theirs.compile("adam", **settings)
    ours.compile("adam", **settings)
    fit = dict(batch_size=10, epochs=2, validation_split=0.25, shuffle=False, verbose=0)
    keras_history = theirs.fit(x, y, **fit).history
    history = ours.fit(x, y, **fit).history
    assert sorted(history) == sorted(keras_history)
    depth = rounding_depth(ours, batch=10, steps=2 * 3)
    for key, values in keras_history.items():
        if key.endswith("accuracy"):
            assert history[key] == pytest.approx(values, abs=0.5 / 30), key  # the same counts
        else:
            assert_close(np.array(history[key]), np.array(values), depth=depth,
                         dtype=np.float32, err_msg=key)
    ours.save(tmp_path / "t.keras")
    served = keras.saving.load_model(tmp_path / "t.keras")  # with its compile settings
    assert served.compiled and served.get_compile_config()["loss_weights"] == \
        settings["loss_weights"]
    predicted, expected = served.predict(x, verbose=0), ours.predict(x, verbose=0)
    for a, b in zip(predicted.values() if as_dict else predicted,
                    expected.values() if as_dict else expected):
        assert_close(a, b, depth=rounding_depth(ours))
    back = tn.models.load_model(tmp_path / "t.keras")
    assert back.objectives.weights == [1.0, 0.5] and back.output_names == ours.output_names


def siamese(lib):
    """A functional convolutional encoder called on two images and a Sequential head on their
    difference, in Keras 3 or tinynn: models nested in a model."""
    L = lib.layers
    patch = lib.Input((8, 8, 2), name="patch")
    encoder = lib.Model(patch, L.GlobalAveragePooling2D()(L.BatchNormalization()(
        L.Conv2D(4, 3, padding="same", activation="relu")(patch))), name="encoder")
    head = lib.Sequential([lib.Input((4,)), L.Dense(5, activation="tanh"),
                           L.Dense(3, activation="softmax")], name="head")
    left, right = lib.Input((8, 8, 2), name="left"), lib.Input((8, 8, 2), name="right")
    return lib.Model([left, right], head(L.subtract([encoder(left), encoder(right)])),
                     name="siamese")


PAIR = [IMAGES, IMAGES[::-1].copy()]


def test_keras3_nested_models_load_as_nested_models_with_their_weights(keras, tmp_path):
    keras.utils.set_random_seed(7)
    theirs = siamese(keras)
    theirs.compile("adam", "sparse_categorical_crossentropy")
    theirs.fit(PAIR, LABELS, batch_size=8, epochs=1, verbose=0)  # moving statistics move
    theirs.save(tmp_path / "k.keras")
    theirs.save_weights(tmp_path / "k.weights.h5")
    ours = tn.models.load_model(tmp_path / "k.keras")
    assert [type(layer).__name__ for layer in ours.layers] == [
        "InputLayer", "InputLayer", "Model", "Subtract", "Sequential"]
    assert len(ours.get_layer("encoder").inbound_nodes) == 2
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert_close(ours.predict(PAIR, verbose=0), theirs.predict(PAIR, verbose=0),
                 depth=rounding_depth(ours))
    twin = siamese(tn)  # built in code, the weights file into it
    twin.build()
    twin.load_weights(tmp_path / "k.weights.h5")
    for a, b in zip(twin.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_tinynn_nested_models_load_in_keras_as_nested_models(keras, tmp_path):
    ours = siamese(tn)
    ours.compile("adam", "sparse_categorical_crossentropy")
    ours.fit(PAIR, LABELS, batch_size=8, epochs=1, verbose=0)
    ours.save(tmp_path / "t.keras")
    ours.save_weights(tmp_path / "t.weights.h5")
    theirs = keras.saving.load_model(tmp_path / "t.keras")
    assert [type(layer).__name__ for layer in theirs.layers] == [
        "InputLayer", "InputLayer", "Functional", "Subtract", "Sequential"]
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert_close(theirs.predict(PAIR, verbose=0), ours.predict(PAIR, verbose=0),
                 depth=rounding_depth(ours))
    twin = siamese(keras)  # Keras's own architecture takes the weights file
    twin.load_weights(tmp_path / "t.weights.h5")
    for a, b in zip(ours.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    again = tn.models.load_model(tmp_path / "t.keras")  # and back into tinynn
    np.testing.assert_array_equal(again.predict(PAIR, verbose=0), ours.predict(PAIR, verbose=0))


def test_keras2_legacy_h5_with_nested_models_is_refused_by_name(tf_keras, tmp_path):
    siamese(tf_keras).save(tmp_path / "nested.h5")
    with pytest.raises(UnsupportedKerasFeatureError,
                       match=r"models \['encoder', 'head'\] nested in a Keras 2 functional"):
        tn.models.load_model(tmp_path / "nested.h5")


def test_keras2_legacy_weights_into_a_nested_tinynn_model_are_refused_by_name(tf_keras,
                                                                             tmp_path):
    siamese(tf_keras).save_weights(tmp_path / "nested.h5")
    ours = siamese(tn)
    ours.build()
    before = ours.get_weights()
    with pytest.raises(UnsupportedKerasFeatureError, match="nested models in Keras 2's legacy"):
        ours.load_weights(tmp_path / "nested.h5")
    for a, b in zip(ours.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_a_keras_config_nesting_models_too_deep_is_refused():
    from tinynn.saving import keras_config, serialization
    model = tn.Sequential([tn.Input((3,)), tn.layers.Dense(2)])
    for _ in range(serialization.MAX_NESTING + 1):
        x = tn.Input((3,))
        model = tn.Model(x, model(x))
    model.build()
    config = keras_config.model_config(model)  # written fine: the limit is on reading
    with pytest.raises(tn.errors.ArgumentError,
                       match=f"nested more than {serialization.MAX_NESTING} deep"):
        keras_config.functional_graph(config)
