"""Keras files: tinynn reads what Keras 2 and Keras 3 write (.keras, .weights.h5, legacy .h5),
Keras 3 reads what tinynn writes, round trips are exact, and unsupported features, mismatched
models and hostile files get clear errors with the model unchanged.

Tests that need only h5py skip without it; those that run Keras skip without it; with
TINYNN_REQUIRE_KERAS=1 (CI) both fail instead (tests/conftest.py).
"""

import json
import struct
import sys
import zipfile

import numpy as np
import pytest

import tinynn as tn
from tests.helpers import rounding_depth
from tinynn.errors import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointMismatchError,
    MissingDependencyError,
    UnsupportedKerasFeatureError,
)
from tinynn.testing import assert_close

L = tn.layers
INPUT = (12, 12, 2)
X = np.random.default_rng(0).random((16, *INPUT), dtype=np.float32)
Y = np.arange(16) % 4


def every_layer(lib, rate=0.5) -> list:
    """One of each layer tinynn has, with non-default arguments, for ``tinynn.layers``,
    ``keras.layers`` or ``tf_keras.layers``."""
    return [lib.Conv2D(3, 3, strides=2, padding="same", activation="relu", use_bias=False),
            lib.MaxPooling2D(2, strides=1, padding="same"), lib.Activation("tanh"),
            lib.Flatten(), lib.Dropout(rate), lib.Dense(5, activation="sigmoid"),
            lib.Dense(4, activation="softmax")]


def tinynn_model(seed=0, trained=True, rate=0.5) -> tn.Sequential:
    model = tn.Sequential([L.Input(INPUT), *every_layer(L, rate)], seed=seed)
    model.compile(tn.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    if trained:
        model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    else:
        model.build()
    return model


def keras_model(keras, trained=True, rate=0.5):
    """The Keras 3 twin, created after other layers so that its names (conv2d_1, dense_2...)
    and the model's own (sequential_1...) differ from the defaults, as in a real session."""
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(1), keras.layers.Dense(1)])
    model = keras.Sequential([keras.Input(INPUT), *every_layer(keras.layers, rate)])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    if trained:
        model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    return model


def same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def adam_state(model) -> list:
    """Iterations, then m and v of every parameter, as plain values."""
    state = [model.optimizer.iterations]
    for name in model.layout:
        slots = model.optimizer.state_for(name)
        state += [slots["m"].copy(), slots["v"].copy()]
    return state


def keras_adam_state(optimizer) -> list:
    """The same from a Keras optimizer (iteration, learning rate, then m and v per variable)."""
    values = [v.numpy() for v in optimizer.variables]
    return [int(values[0]), *values[2:]] if len(values) % 2 == 0 else [int(values[0]),
                                                                        *values[1:]]


def same_state(a: list, b: list) -> bool:
    return a[0] == b[0] and same(a[1:], b[1:])


# -- tinynn's own Keras files (h5py only) ---------------------------------------------------------
def test_keras_file_holds_config_metadata_and_weights_in_keras3_layout(tmp_path, h5py):
    model = tinynn_model()
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        assert archive.namelist() == ["metadata.json", "config.json", "model.weights.h5"]
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
        config = json.loads(archive.read("config.json"))
        weights = archive.read("model.weights.h5")
    assert [entry["class_name"] for entry in config["config"]["layers"]] == [
        "InputLayer", "Conv2D", "MaxPooling2D", "Activation", "Flatten", "Dropout", "Dense",
        "Dense"]
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam"
    (tmp_path / "w.h5").write_bytes(weights)
    with h5py.File(tmp_path / "w.h5", "r") as f:
        assert sorted(f["layers"]) == ["activation", "conv2d", "dense", "dense_1", "dropout",
                                       "flatten", "max_pooling2d"]
        assert f["layers/dense_1/vars"].attrs["name"] == "dense_1"
        np.testing.assert_array_equal(f["layers/dense_1/vars/0"][()],
                                      model.layers[-1].params["kernel"])
        assert list(f["layers/conv2d/vars"]) == ["0"]  # use_bias=False: the kernel only
        assert len(f["optimizer/vars"]) == 2 + 2 * 5 and f["optimizer/vars/0"][()] == 2


def test_keras_files_round_trip_exactly_in_tinynn(tmp_path, h5py):
    model = tinynn_model()
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "w.weights.h5")
    loaded = tn.models.load_model(tmp_path / "m.keras")
    assert same(loaded.get_weights(), model.get_weights())
    assert same_state(adam_state(loaded), adam_state(model))
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers]
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert (loaded.loss.get_config(), loaded.metrics) == (model.loss.get_config(), ["accuracy"])
    other = tinynn_model(seed=5, trained=False)
    buffer = other.parameters
    other.load_weights(tmp_path / "w.weights.h5")
    assert same(other.get_weights(), model.get_weights()) and other.parameters is buffer
    assert other.optimizer.iterations == 0  # weights only
    loaded.load_weights(tmp_path / "m.keras")  # load_weights reads a .keras file too
    assert same(loaded.get_weights(), model.get_weights())


def test_float64_models_and_uncompiled_models_round_trip(tmp_path, h5py, float64):
    model = tn.Sequential([L.Input((3,)), L.Dense(2)], seed=1, name="plain")
    model.save(tmp_path / "m.keras")
    loaded = tn.models.load_model(tmp_path / "m.keras")
    assert loaded.optimizer is None and loaded.name == "plain"
    assert loaded.parameters.dtype == np.float64 and same(loaded.get_weights(),
                                                          model.get_weights())
    with tn.testing.floatx("float32"):
        with pytest.raises(CheckpointMismatchError, match=r"set_floatx\('float64'\)"):
            tn.models.load_model(tmp_path / "m.keras")


def test_float32_keras_weights_load_into_a_float64_model(tmp_path, h5py):
    model = tinynn_model()
    model.save_weights(tmp_path / "w.weights.h5")
    with tn.testing.floatx("float64"):
        wide = tinynn_model(trained=False)
    wide.load_weights(tmp_path / "w.weights.h5")
    assert wide.parameters.dtype == np.float64
    assert same(wide.get_weights(), [w.astype(np.float64) for w in model.get_weights()])


def test_model_checkpoint_writes_keras_files(tmp_path, h5py):
    model = tinynn_model(trained=False)
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[
        tn.callbacks.ModelCheckpoint(str(tmp_path / "m-{epoch}.keras")),
        tn.callbacks.ModelCheckpoint(str(tmp_path / "w.weights.h5"), save_weights_only=True)])
    assert same(tn.models.load_model(tmp_path / "m-2.keras").get_weights(), model.get_weights())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-1.keras", "m-2.keras",
                                                          "w.weights.h5"]


def test_without_h5py_keras_files_ask_for_the_h5_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    model = tinynn_model(trained=False)
    calls = [lambda: model.save(tmp_path / "m.keras"),
             lambda: model.save_weights(tmp_path / "w.weights.h5"),
             lambda: model.load_weights(tmp_path / "m.keras")]
    (tmp_path / "m.keras").write_bytes(b"")
    for call in calls:
        with pytest.raises(MissingDependencyError, match=r'pip install "tinynn\[h5\]"'):
            call()
    assert isinstance(MissingDependencyError("x"), ImportError)
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


def test_weights_only_files_cannot_build_a_model(tmp_path, h5py):
    tinynn_model().save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(CheckpointError, match="holds weights only.*model.load_weights"):
        tn.models.load_model(tmp_path / "w.weights.h5")


# -- mismatches and unsupported features ----------------------------------------------------------
def test_another_architecture_lists_every_difference_and_leaves_the_model_unchanged(tmp_path,
                                                                                   h5py):
    tinynn_model().save(tmp_path / "m.keras")
    other = tn.Sequential([L.Input(INPUT), L.Conv2D(3, 3, strides=2, padding="same"),
                           L.Flatten(), L.Dense(4)], seed=2)
    other.build()
    before = other.parameters.copy()
    with pytest.raises(CheckpointMismatchError) as error:
        other.load_weights(tmp_path / "m.keras")
    message = str(error.value)
    assert "5 differences" in message and "conv2d/bias: float32 (3,) in the model, missing" \
        in message
    assert "dense/kernel: float32 (108, 4) in the model, float32 (108, 5) in the file" in message
    assert "dense_1/0: float32 (5, 4) in the file, not in the model" in message
    assert "by position" in message  # the hint says how layers are matched
    np.testing.assert_array_equal(other.parameters, before)


def edit_config(source, target, edit) -> None:
    """Copy a .keras file with ``edit(config)`` applied to its config.json."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            dst.writestr(info, data)


def layer_config(index):
    return lambda config: config["config"]["layers"][index]["config"]


def set_option(index, key, value):
    return lambda config: layer_config(index)(config).__setitem__(key, value)


LAYER_NORM = {"module": "keras.layers", "class_name": "LayerNormalization",
              "config": {"name": "layer_normalization", "axis": -1}, "registered_name": None}


@pytest.mark.parametrize("edit, match", [
    (set_option(1, "dilation_rate", [2, 2]),
     r"Keras layer 'conv2d' \(Conv2D\) with dilation_rate=\[2, 2\] is not supported"),
    (set_option(1, "data_format", "channels_first"), r"data_format='channels_first'"),
    (set_option(7, "kernel_regularizer", {"class_name": "OrthogonalRegularizer",
                                          "config": {"factor": 0.01, "mode": "rows"}}),
     r"Keras layer 'dense_1' \(Dense\) with kernel_regularizer="),
    (set_option(6, "activation", "mish"), r"'dense' \(Dense\) with activation='mish'"),
    (set_option(6, "kernel_initializer", {"class_name": "Orthogonal", "config": {}}),
     r"kernel_initializer=.*Orthogonal"),
    (set_option(2, "padding", "causal"), r"MaxPooling2D.*padding"),
    (set_option(5, "noise_shape", [None, 1]), r"noise_shape=\[None, 1\]"),
    (set_option(6, "trainable", False), r"trainable=False"),
    (set_option(6, "dtype", {"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}),
     r"dtype 'mixed_float16'"),
    (set_option(6, "lora_rank", 4), r"lora_rank=4"),
    (set_option(6, "unheard_of", 1), r"argument unheard_of=1"),
    (lambda config: config["config"]["layers"].insert(3, LAYER_NORM),
     r"Keras layer 'layer_normalization' of type LayerNormalization is not supported"),
    (lambda config: config.__setitem__("class_name", "MySubclassedModel"),
     r"'MySubclassedModel' model is not supported by tinynn: tinynn builds Sequential and "
     r"functional models only"),
])
def test_unsupported_keras_layers_and_options_are_named(tmp_path, h5py, edit, match):
    tinynn_model().save(tmp_path / "m.keras")
    edit_config(tmp_path / "m.keras", tmp_path / "edited.keras", edit)
    with pytest.raises(UnsupportedKerasFeatureError, match=match):
        tn.models.load_model(tmp_path / "edited.keras")


@pytest.mark.parametrize("key, value, match", [
    ("optimizer", {"class_name": "Adamax", "config": {}}, "optimizer Adamax"),
    ("optimizer", "adamax", "optimizer 'adamax'"),
    ("optimizer", {"class_name": "Adam", "config": {"use_ema": True}}, "use_ema=True"),
    ("optimizer", {"class_name": "SGD", "config": {"learning_rate": {
        "class_name": "ExponentialDecay"}}}, "learning-rate schedule"),
    ("loss", "hinge", "loss 'hinge'"),
    ("loss", {"class_name": "CategoricalCrossentropy", "config": {"label_smoothing": 0.1}},
     "label_smoothing=0.1"),
    ("metrics", ["mae"], "metric 'mae'"),
    ("weighted_metrics", ["accuracy"], r"weighted_metrics=\['accuracy'\]")])
def test_unsupported_compile_settings_suggest_compile_false(tmp_path, h5py, key, value, match):
    model = tinynn_model()
    model.save(tmp_path / "m.keras")
    edit_config(tmp_path / "m.keras", tmp_path / "edited.keras",
                lambda config: config["compile_config"].__setitem__(key, value))
    with pytest.raises(UnsupportedKerasFeatureError, match=f"{match}.*compile=False"):
        tn.models.load_model(tmp_path / "edited.keras")
    loaded = tn.models.load_model(tmp_path / "edited.keras", compile=False)
    assert loaded.optimizer is None and same(loaded.get_weights(), model.get_weights())


def test_keras_loss_weights_scale_the_loss_of_a_one_output_model(tmp_path, h5py):
    model = tinynn_model()
    model.save(tmp_path / "m.keras")
    edit_config(tmp_path / "m.keras", tmp_path / "edited.keras",
                lambda config: config["compile_config"].__setitem__("loss_weights", [0.5]))
    loaded = tn.models.load_model(tmp_path / "edited.keras")
    assert loaded.objectives.weights == [0.5]
    full = model.evaluate(X, Y, verbose=0)[0] - model.regularization_loss()
    half = loaded.evaluate(X, Y, verbose=0)[0] - loaded.regularization_loss()
    assert half == pytest.approx(0.5 * full, rel=1e-6)


def write_legacy_weights(path, h5py, model) -> None:
    """``model``'s weights in Keras 2's legacy ``save_weights("w.h5")`` layout, written by hand
    with the list attributes split in chunks (``weight_names0``...), as Keras does for long
    lists."""
    with h5py.File(path, "w") as f:
        names = [layer.name.encode() for layer in model.layers]
        f.attrs["layer_names0"], f.attrs["layer_names1"] = names[:3], names[3:]
        for layer in model.layers:
            group = f.create_group(layer.name)
            weight_names = [f"{layer.name}/{key}:0".encode() for key in layer.params]
            group.attrs["weight_names"] = np.array(weight_names or [], dtype=object if
                                                   weight_names else np.float64)
            for name, value in zip(weight_names, layer.params.values()):
                group[name.decode()] = value


def test_legacy_layout_with_chunked_attributes_loads(tmp_path, h5py):
    model = tinynn_model()
    write_legacy_weights(tmp_path / "w.h5", h5py, model)
    other = tinynn_model(seed=4, trained=False)
    other.load_weights(tmp_path / "w.h5")
    assert same(other.get_weights(), model.get_weights())


def test_tf_keras_2_13_group_name_loads(tmp_path, h5py):
    model = tinynn_model()
    model.save_weights(tmp_path / "w.weights.h5")
    with h5py.File(tmp_path / "w.weights.h5", "r+") as f:
        f.move("layers", "_layer_checkpoint_dependencies")
    other = tinynn_model(seed=4, trained=False)
    other.load_weights(tmp_path / "w.weights.h5")
    assert same(other.get_weights(), model.get_weights())


def test_a_config_asking_for_more_than_the_file_holds_is_refused_before_allocating(tmp_path,
                                                                                  h5py):
    tinynn_model().save(tmp_path / "m.keras")
    edit_config(tmp_path / "m.keras", tmp_path / "big.keras", set_option(6, "units", 10**9))
    with pytest.raises(CheckpointCorruptError, match=r"refused before allocating"):
        tn.models.load_model(tmp_path / "big.keras")


# -- damaged and hostile files --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["m.keras", "w.weights.h5"])
def test_truncated_and_foreign_files_are_corrupt_and_the_model_unchanged(tmp_path, h5py, name):
    model = tinynn_model()
    (model.save if name.endswith(".keras") else model.save_weights)(tmp_path / name)
    data = (tmp_path / name).read_bytes()
    target = tinynn_model(seed=3, trained=False)
    before = target.parameters.copy()
    for cut in (0, 8, 100, len(data) // 3, len(data) // 2, len(data) - 200, len(data) - 1):
        (tmp_path / "cut" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "cut" / name).write_bytes(data[:cut])
        with pytest.raises(CheckpointCorruptError, match="cannot be loaded"):
            target.load_weights(tmp_path / "cut" / name)
    (tmp_path / "cut" / name).write_bytes(b"not a Keras file at all")
    with pytest.raises(CheckpointCorruptError, match="not a Keras model or weights file"):
        target.load_weights(tmp_path / "cut" / name)
    np.testing.assert_array_equal(target.parameters, before)
    with pytest.raises(FileNotFoundError):
        target.load_weights(tmp_path / "missing" / name)


def rewrite_weights(path, h5py, change) -> None:
    """Apply ``change(h5file)`` to a .weights.h5 file in place."""
    with h5py.File(path, "r+") as f:
        change(f)


def replace(f, path, value):
    del f[path]
    f[path] = value


@pytest.mark.parametrize("change, match", [
    (lambda f, h5py: replace(f, "layers/dense/vars/0", h5py.SoftLink("/layers/dense_1/vars/0")),
     "SoftLink"),
    (lambda f, h5py: replace(f, "layers/dense/vars/0", h5py.ExternalLink("other.h5", "/x")),
     "ExternalLink"),
    (lambda f, h5py: f["layers/dense_1/vars/1"].__setitem__(0, np.nan), "NaN or infinity"),
    (lambda f, h5py: replace(f, "layers/dense_1/vars/1", np.array(["a", "b"], dtype="S1")),
     "expected floats"),
    (lambda f, h5py: f.__delitem__("layers/dense_1/vars/0"), r"holds \['1'\]"),
    (lambda f, h5py: [f.__delitem__(key) for key in list(f)], "neither Keras 3 weights"),
    (lambda f, h5py: [f.__delitem__("layers/dense/vars/0"), f.create_dataset(
        "layers/dense/vars/0", shape=(2**27,), dtype=np.float32, chunks=(2**20,),
        compression="gzip")], r"declares 536870912 bytes but stores 0"),  # a shape bomb
])
def test_hostile_or_damaged_datasets_are_refused(tmp_path, h5py, change, match):
    model = tinynn_model()
    model.save_weights(tmp_path / "w.weights.h5")
    rewrite_weights(tmp_path / "w.weights.h5", h5py, lambda f: change(f, h5py))
    target = tinynn_model(seed=3, trained=False)
    before = target.parameters.copy()
    with pytest.raises(CheckpointCorruptError, match=match):
        target.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(target.parameters, before)


def test_data_stored_outside_the_file_is_never_read(tmp_path, h5py):
    model = tinynn_model()
    model.save_weights(tmp_path / "w.weights.h5")
    outside = tmp_path / "outside.bin"
    outside.write_bytes(np.ones(4, np.float32).tobytes())
    with h5py.File(tmp_path / "w.weights.h5", "r+") as f:
        del f["layers/dense_1/vars/1"]
        f.create_dataset("layers/dense_1/vars/1", shape=(4,), dtype=np.float32,
                         external=[(str(outside), 0, 16)])
    with pytest.raises(CheckpointCorruptError, match="keeps its data outside the file"):
        tinynn_model(trained=False).load_weights(tmp_path / "w.weights.h5")


def forge_declared_size(path, member: str, size: int) -> None:
    """Make the zip's central directory declare ``size`` bytes for ``member``."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + length] == member.encode():
            struct.pack_into("<I", data, at + 24, size)  # the uncompressed size
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("member, match", [
    ("model.weights.h5", "decompression bomb"), ("config.json", "declares .* bytes, more than")])
def test_zip_members_declaring_huge_sizes_are_refused_unread(tmp_path, h5py, member, match):
    """Compressed members (as Keras writes them) may expand 100-fold at most; a stored one
    (as tinynn writes them) must store what it declares."""
    tinynn_model().save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as src, zipfile.ZipFile(
            tmp_path / "deflated.keras", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    for name, expected in [("deflated.keras", match),
                           ("m.keras", f"member '{member}' declares 2147483648 bytes but "
                            "stores")]:
        forge_declared_size(tmp_path / name, member, 2**31)
        with pytest.raises(CheckpointCorruptError, match=expected):
            tn.models.load_model(tmp_path / name)


@pytest.mark.parametrize("member, content, match", [
    ("config.json", b"{not json", "config.json failed"),
    ("config.json", b"[1, 2]", "not a JSON object"),
    ("config.json", b'{"class_name": "Sequential", "config": {"layers": 3}}',
     "the model config is invalid"),
    ("model.weights.h5", None, "has no model.weights.h5"),
])
def test_damaged_archives_are_corrupt(tmp_path, h5py, member, content, match):
    tinynn_model().save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as src, zipfile.ZipFile(
            tmp_path / "bad.keras", "w") as dst:
        for info in src.infolist():
            if info.filename != member:
                dst.writestr(info, src.read(info))
            elif content is not None:
                dst.writestr(info, content)
    with pytest.raises(CheckpointCorruptError, match=match):
        tn.models.load_model(tmp_path / "bad.keras")


def test_failed_keras_save_keeps_the_previous_file(tmp_path, h5py, monkeypatch):
    from tinynn.saving import keras_format
    model = tinynn_model()
    model.save(tmp_path / "m.keras")
    before = (tmp_path / "m.keras").read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(keras_format.zipfile.ZipFile, "writestr", fail)
    with pytest.raises(OSError, match="No space"):
        model.save(tmp_path / "m.keras")
    assert (tmp_path / "m.keras").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]
    model.parameters[0] = np.nan
    with pytest.raises(CheckpointError, match="NaN or infinity"):
        model.save_weights(tmp_path / "w.weights.h5")
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


# -- with Keras 3 ---------------------------------------------------------------------------------
def strip_ids(value):
    """A config without Keras's in-memory ``shared_object_id``s."""
    if isinstance(value, dict):
        return {k: strip_ids(v) for k, v in value.items() if k != "shared_object_id"}
    return [strip_ids(v) for v in value] if isinstance(value, list) else value


def test_config_json_is_the_one_keras_writes(tmp_path, keras):
    from tinynn.saving import keras_config
    ours = keras_config.model_config(tinynn_model())
    twin = keras_model(keras)
    theirs = strip_ids(json.loads(json.dumps(keras.saving.serialize_keras_object(twin))))
    for entry, keras_entry in zip(ours["config"]["layers"], theirs["config"]["layers"]):
        entry["config"]["name"] = keras_entry["config"]["name"]  # Keras's session names
    ours["config"]["name"] = twin.name
    assert ours["config"] == theirs["config"]
    assert ours["build_config"] == theirs["build_config"]
    assert ours["compile_config"]["loss"] == twin.get_compile_config()["loss"]


def test_keras_loads_tinynn_files_with_the_same_weights_optimizer_and_predictions(tmp_path,
                                                                                  keras):
    model = tinynn_model(rate=0.0)  # Keras draws its own dropout masks: none, to go on training
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "w.weights.h5")
    served = keras.saving.load_model(tmp_path / "m.keras")
    assert same(served.get_weights(), model.get_weights())
    assert same_state(keras_adam_state(served.optimizer), adam_state(model))
    assert_close(served.predict(X, verbose=0), model.predict(X, verbose=0),
                 depth=rounding_depth(model))
    twin = keras_model(keras, trained=False, rate=0.0)
    twin.load_weights(tmp_path / "w.weights.h5")
    assert same(twin.get_weights(), model.get_weights())
    # Training goes on in Keras as it would have in tinynn.
    served.fit(X, Y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    model.fit(X, Y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    depth = rounding_depth(model, batch=16, steps=1)
    for a, b in zip(served.get_weights(), model.get_weights()):
        assert_close(b, a, depth=depth)


def test_keras_resumes_sgd_with_momentum_from_tinynn_state(tmp_path, keras):
    model = tn.Sequential([L.Input(INPUT), *every_layer(L, rate=0.0)], seed=1)
    model.compile(tn.optimizers.SGD(0.05, momentum=0.9, nesterov=True), "mse")
    targets = np.eye(4, dtype=np.float32)[Y]
    model.fit(X, targets, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    served = keras.saving.load_model(tmp_path / "m.keras")
    velocities = [v.numpy() for v in served.optimizer.variables[2:]]
    assert same(velocities, [model.optimizer.state_for(name)["velocity"]
                             for name in model.layout])
    served.fit(X, targets, batch_size=16, epochs=1, shuffle=False, verbose=0)
    model.fit(X, targets, batch_size=16, epochs=1, shuffle=False, verbose=0)
    depth = rounding_depth(model, batch=16, steps=1)
    for a, b in zip(served.get_weights(), model.get_weights()):
        assert_close(b, a, depth=depth)
    loaded = tn.models.load_model(tmp_path / "m.keras")
    assert loaded.optimizer.get_config() == {"name": "sgd", "learning_rate": 0.05,
                                             "momentum": 0.9, "nesterov": True}


@pytest.mark.parametrize("name", ["m.keras", "w.weights.h5", "m.h5"])
def test_tinynn_to_keras_to_tinynn_is_exact(tmp_path, keras, name):
    model = tinynn_model()
    model.save(tmp_path / "first.keras")
    served = keras.saving.load_model(tmp_path / "first.keras")
    (served.save_weights if name.endswith(".weights.h5") else served.save)(tmp_path / name)
    back = tinynn_model(seed=7, trained=False)
    back.load_weights(tmp_path / name)
    assert same(back.get_weights(), model.get_weights())
    if name != "w.weights.h5":
        loaded = tn.models.load_model(tmp_path / name)
        assert same(loaded.get_weights(), model.get_weights())
        assert same_state(adam_state(loaded), adam_state(model))
        assert loaded.optimizer.learning_rate == pytest.approx(0.01, rel=1e-7)


# -- files written by Keras 3 and Keras 2 ---------------------------------------------------------
@pytest.fixture(scope="module")
def keras3_files(tmp_path_factory, keras):
    """A trained Keras 3 model saved in every format Keras 3 writes, with its outputs."""
    folder = tmp_path_factory.mktemp("keras3")
    model = keras_model(keras)
    model.save(folder / "m.keras")
    model.save_weights(folder / "w.weights.h5")
    model.save(folder / "m.h5")  # legacy; after .keras (it drops the optimizer from the config)
    return folder, model.predict(X, verbose=0), model.get_weights(), keras_adam_state(
        model.optimizer)


@pytest.fixture(scope="module")
def keras2_files(tmp_path_factory, tf_keras):
    """The same from Keras 2 (tf.keras 2.21), in every format it writes."""
    folder = tmp_path_factory.mktemp("keras2")
    tf_keras.Sequential([tf_keras.layers.Dense(1, input_shape=(3,))])  # names: conv2d_1...
    model = tf_keras.Sequential([tf_keras.layers.InputLayer(INPUT),
                                 *every_layer(tf_keras.layers)])
    model.compile(tf_keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    model.save(folder / "m.keras")
    model.save_weights(folder / "w.weights.h5")
    model.save(folder / "m.h5")
    model.save_weights(folder / "w.h5")
    return folder, model.predict(X, verbose=0), model.get_weights(), keras_adam_state(
        model.optimizer)


def check_loads(folder, predictions, weights, state, name) -> None:
    model = tinynn_model(seed=9, trained=False)
    model.load_weights(folder / name)
    assert same(model.get_weights(), weights)
    depth = rounding_depth(model)
    assert_close(model.predict(X, verbose=0), predictions, depth=depth)
    if "weights" in name or name == "w.h5":
        return
    loaded = tn.models.load_model(folder / name)
    assert same(loaded.get_weights(), weights)
    assert_close(loaded.predict(X, verbose=0), predictions, depth=depth)
    assert type(loaded.optimizer) is tn.optimizers.Adam and loaded.metrics == ["accuracy"]
    assert same_state(adam_state(loaded), state)


@pytest.mark.parametrize("name", ["m.keras", "w.weights.h5", "m.h5"])
def test_keras3_files_load_with_matching_predictions(keras3_files, name):
    check_loads(*keras3_files, name)


@pytest.mark.parametrize("name", ["m.keras", "w.weights.h5", "m.h5", "w.h5"])
def test_keras2_files_load_with_matching_predictions(keras2_files, name):
    check_loads(*keras2_files, name)


def test_keras_names_and_paths_in_files_do_not_matter(keras3_files, h5py):
    folder = keras3_files[0]
    with h5py.File(folder / "m.h5", "r") as f:  # Keras's session names, inside the paths too
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in f["model_weights"].attrs["layer_names"]]
        assert names != ["conv2d", "max_pooling2d", "activation", "flatten", "dropout",
                         "dense", "dense_1"]
        model_name = json.loads(f.attrs["model_config"])["config"]["name"]
        assert f"model_weights/{names[-1]}/{model_name}/{names[-1]}/kernel" in f
    assert [layer.name for layer in tn.models.load_model(folder / "m.h5").layers] == names


def test_real_keras_files_with_unsupported_features_are_named(tmp_path, keras):
    cases = [(keras.layers.LayerNormalization(), "of type LayerNormalization"),
             (keras.layers.Conv2D(2, 3, dilation_rate=2), r"dilation_rate=\[2, 2\]"),
             (keras.layers.Dense(3, kernel_regularizer=keras.regularizers.OrthogonalRegularizer()),
              "kernel_regularizer=")]
    for layer, match in cases:
        model = keras.Sequential([keras.Input(INPUT), layer])
        model.save(tmp_path / "m.keras")
        with pytest.raises(UnsupportedKerasFeatureError, match=match):
            tn.models.load_model(tmp_path / "m.keras")
