"""Saving and loading: round trips, file names, all-or-nothing loads, hostile files, atomic
writes, and bitwise resume in a fresh process (docs/guarantees.md, "Checkpoints")."""

import errno
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynn as tn
from tinynn.errors import CheckpointCorruptError, CheckpointError, CheckpointMismatchError
from tinynn.saving import FORMAT_VERSION, archive
from tinynn.testing import floatx

from .test_determinism import ROOT, SINGLE_THREADED
from .test_models import blobs, small_model

L = tn.layers


def trained(optimizer=None, epochs=1, **kwargs):
    """A small model after ``epochs`` of training, so weights, optimizer state and RNGs moved."""
    model = small_model(optimizer=optimizer or tn.optimizers.Adam(0.01), **kwargs)
    model.fit(*blobs(30, features=kwargs.get("inputs", (4,))[0]), epochs=epochs, batch_size=8,
              verbose=0)
    return model


def manifest_of(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return json.loads(f["manifest"].tobytes())


def rewrite(source, target, manifest=None, **entries):
    """Copy a checkpoint's entries to ``target`` with a new manifest and/or replaced entries."""
    with np.load(source, allow_pickle=False) as f:
        arrays = {key: f[key] for key in f.files}
    if manifest is not None:
        arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    arrays.update(entries)
    np.savez(target, **arrays)


def forge_header(source, target, key, shape):
    """Copy a checkpoint, giving entry ``key`` an .npy header that declares ``shape`` (the data
    and every zip checksum stay valid)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == f"{key}.npy":
                member = io.BytesIO(data)
                np.lib.format.read_magic(member)
                _, _, dtype = np.lib.format.read_array_header_1_0(member)
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(header, {
                    "shape": shape, "fortran_order": False, "descr": dtype.str})
                data = header.getvalue() + data[member.tell():]
            dst.writestr(info, data)


def state_of(model) -> dict:
    """Everything a load may change, as bytes and plain values."""
    return {"params": model.parameters.tobytes(),
            "optimizer": {k: v.tobytes() for k, v in model.optimizer.state.items()},
            "iterations": model.optimizer.iterations,
            "rngs": {k: r.bit_generator.state for k, r in model.rngs.items()}}


class Payload:
    """Unpickling this creates the marker file: proof that pickled code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# -- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", [tn.optimizers.Adam(0.01),
                                       tn.optimizers.SGD(0.05, momentum=0.9, nesterov=True)])
def test_save_load_model_round_trip_restores_everything(tmp_path, optimizer):
    model = trained(optimizer)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = tn.models.load_model(path)
    x, _ = blobs(12)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers]
    assert (loaded.name, loaded.seed, loaded.input_shape) == (model.name, model.seed,
                                                              model.input_shape)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.loss.get_config() == model.loss.get_config()
    assert loaded.metrics == model.metrics
    assert state_of(loaded) == state_of(model)
    assert os.listdir(tmp_path) == ["model.npz"]


def test_round_trip_covers_every_serializable_layer_type(tmp_path):
    image = tn.Input((6, 6, 2))
    h = L.RandomFlip()(L.RandomContrast(0.1)(L.RandomBrightness(0.1)(L.Rescaling(2.0)(image))))
    h = L.RandomZoom(0.1)(L.RandomRotation(0.1)(L.RandomTranslation(0.1, 0.2)(h)))
    h = L.RandomCrop(6, 6)(h)  # the same size: a resize that changes nothing
    h = L.Conv2D(3, 3, padding="same", activation="relu")(h)
    h = L.MaxPooling2D()(L.AveragePooling2D(3, strides=1, padding="same")(
        L.BatchNormalization(momentum=0.5)(h)))
    h = L.ZeroPadding2D(1)(L.GlobalAveragePooling2D(keepdims=True)(h))  # (3, 3, 3)
    h = L.Dropout(0.25)(L.Flatten()(L.Reshape((9, 3))(h)))
    a, b = L.Dense(4)(h), L.Dense(4)(h)
    merged = L.concatenate([L.add([a, b]), L.subtract([a, b]), L.multiply([a, b]),
                            L.average([a, b]), L.maximum([a, b]), L.minimum([a, b])])
    model = tn.Model(image, L.Activation("softmax")(L.Dense(4)(merged)), seed=3)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(10, 6, 6, 2)).astype(np.float32)
    model.fit(x, np.arange(10) % 4, epochs=1, verbose=0)
    assert {type(layer) for layer in model.layers} == set(L.REGISTRY.values())
    model.save(tmp_path / "cnn.npz")
    loaded = tn.models.load_model(tmp_path / "cnn.npz")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert state_of(loaded) == state_of(model)
    dropout = next(layer for layer in loaded.layers if isinstance(layer, L.Dropout))
    assert dropout.rng is loaded.rngs["dropout"]  # the restored Generator, in place


def test_float64_model_round_trip(tmp_path, float64):
    model = trained()
    model.save(tmp_path / "m.npz")
    loaded = tn.models.load_model(tmp_path / "m.npz")
    assert loaded.parameters.dtype == np.float64 and state_of(loaded) == state_of(model)


def test_load_model_compile_false_and_uncompiled_models(tmp_path):
    model = trained()
    model.save(tmp_path / "m.npz")
    loaded = tn.models.load_model(tmp_path / "m.npz", compile=False)
    assert loaded.optimizer is None and loaded.loss is None
    np.testing.assert_array_equal(loaded.parameters, model.parameters)
    bare = tn.Sequential([L.Dense(2, input_shape=(3,))], seed=1)
    bare.save(tmp_path / "bare.npz")
    loaded = tn.models.load_model(tmp_path / "bare.npz")
    assert loaded.optimizer is None and manifest_of(tmp_path / "bare.npz")["compile"] is None
    np.testing.assert_array_equal(loaded.parameters, bare.parameters)


def test_include_optimizer_false_keeps_compile_settings_but_not_state(tmp_path):
    model = trained(tn.optimizers.Adam(0.02))
    model.save(tmp_path / "m.npz", include_optimizer=False)
    loaded = tn.models.load_model(tmp_path / "m.npz")
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == 0 and not loaded.optimizer.state["m"].any()
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        assert not [key for key in f.files if key.startswith("optimizer/")]


def test_weights_round_trip_copies_into_the_existing_buffer(tmp_path):
    model = trained()
    model.save_weights(tmp_path / "w.weights.npz")
    other = small_model(seed=9)
    other.build()
    kernel, buffer = other.layers[1].params["kernel"], other.parameters
    other.load_weights(tmp_path / "w.weights.npz")
    np.testing.assert_array_equal(other.parameters, model.parameters)
    assert other.parameters is buffer and np.shares_memory(kernel, buffer)  # never rebound
    assert other.optimizer.iterations == 0  # weights only: the optimizer is untouched
    assert manifest_of(tmp_path / "w.weights.npz")["kind"] == "weights"


def test_load_weights_reads_the_weights_of_a_full_model_file(tmp_path):
    model = trained()
    model.save(tmp_path / "m.npz")
    other = small_model(seed=9)
    other.load_weights(tmp_path / "m.npz")
    np.testing.assert_array_equal(other.parameters, model.parameters)


def test_file_is_a_versioned_npz_of_plain_arrays(tmp_path):
    model = trained()
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        assert int(f["format_version"]) == FORMAT_VERSION
        assert not any(f[key].dtype.hasobject for key in f.files)
        np.testing.assert_array_equal(f["param/dense/kernel"], model.layers[1].params["kernel"])
        np.testing.assert_array_equal(f["optimizer/m/dense/bias"],
                                      model.optimizer.state_for("dense/bias")["m"])
    manifest = manifest_of(tmp_path / "m.npz")
    assert manifest["weights"]["dense/kernel"] == {"shape": [4, 8], "dtype": "float32"}
    assert manifest["optimizer"] == {"iterations": 4, "slots": ["m", "v"]}


# -- file names -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method, name, match", [
    ("save", "m.h5", r"reads legacy \.h5 files but writes .* \.keras and \.weights\.h5"),
    ("save_weights", "w.h5", r"reads legacy \.h5 files but writes"),
    ("save", "m.weights.h5", r"ends in \.weights\.h5, .* use save_weights"),
    ("save_weights", "m.keras", r"\.keras hold a whole model, written by model\.save")])
def test_keras_names_for_the_other_kind_of_file_are_refused(tmp_path, method, name, match):
    model = trained()
    with pytest.raises(CheckpointError, match=match):
        getattr(model, method)(tmp_path / name)
    with pytest.raises(CheckpointError, match=match):
        tn.callbacks.ModelCheckpoint(str(tmp_path / name),
                                     save_weights_only=method == "save_weights")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("method, name, match", [
    ("save", "m.weights.npz", r"weights-only files: use save_weights"),
    ("save", "m.bin", r"expected a path ending in \.npz \(tinynn\) or \.keras \(Keras\), got"),
    ("save", "model", r"expected a path ending in \.npz"),
    ("save_weights", "w.npz", r"ending in \.weights\.npz .* hold a whole model"),
    ("save_weights", "w.bin", r"expected a path ending in \.weights\.npz")])
def test_wrong_extensions_are_refused_with_the_right_one_named(tmp_path, method, name, match):
    with pytest.raises(CheckpointError, match=match):
        getattr(trained(), method)(tmp_path / name)
    assert os.listdir(tmp_path) == []


def test_overwrite_false_refuses_an_existing_file(tmp_path):
    model = trained()
    model.save(tmp_path / "m.npz")
    before = (tmp_path / "m.npz").read_bytes()
    model.fit(*blobs(10), epochs=1, verbose=0)
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save(tmp_path / "m.npz", overwrite=False)
    assert (tmp_path / "m.npz").read_bytes() == before


def test_missing_file_directory_and_weights_file_errors(tmp_path):
    model = trained()
    with pytest.raises(FileNotFoundError):
        tn.models.load_model(tmp_path / "absent.npz")
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="directory"):
        model.save(tmp_path / "dir.npz")
    model.save_weights(tmp_path / "w.weights.npz")
    with pytest.raises(CheckpointError, match=r"weights only: build .* model\.load_weights"):
        tn.models.load_model(tmp_path / "w.weights.npz")


# -- refusals leave the model untouched -----------------------------------------------------------
def test_checkpoint_of_another_architecture_lists_every_difference_model_unchanged(tmp_path):
    trained().save(tmp_path / "m.npz")  # dense (4, 8), dense_1 (8, 3)
    other = tn.Sequential([L.Input((4,)), L.Dense(9, activation="relu"), L.Dense(3),
                           L.Dense(3, activation="softmax")], seed=1)
    other.compile("adam", "sparse_categorical_crossentropy")
    other.fit(*blobs(10), epochs=1, verbose=0)
    before = state_of(other)
    with pytest.raises(CheckpointMismatchError) as info:
        other.load_weights(tmp_path / "m.npz")
    message = str(info.value)
    assert "5 differences" in message and "the model was not changed" in message
    for line in ["dense/kernel: float32 (4, 9) in the model, float32 (4, 8) in the file",
                 "dense/bias: float32 (9,) in the model, float32 (8,) in the file",
                 "dense_1/kernel: float32 (9, 3) in the model, float32 (8, 3) in the file",
                 "dense_2/kernel: float32 (3, 3) in the model, missing from the file",
                 "dense_2/bias: float32 (3,) in the model, missing from the file"]:
        assert line in message
    assert "dense_1/bias" not in message  # equal in both: not a difference
    assert state_of(other) == before


def test_extra_weights_in_the_file_and_renamed_layers_are_listed(tmp_path):
    trained().save_weights(tmp_path / "w.weights.npz")
    other = tn.Sequential([L.Input((4,)), L.Dense(8, name="hidden"), L.Dense(3, name="out")],
                          seed=1)
    before = other.get_weights()
    with pytest.raises(CheckpointMismatchError) as info:
        other.load_weights(tmp_path / "w.weights.npz")
    assert "hidden/kernel: float32 (4, 8) in the model, missing from the file" in str(info.value)
    assert "dense_1/bias: float32 (3,) in the file, not in the model" in str(info.value)
    assert "8 differences" in str(info.value)
    assert all(np.array_equal(a, b) for a, b in zip(other.get_weights(), before))


def test_float64_checkpoint_into_float32_model_names_the_dtype(tmp_path):
    with floatx("float64"):
        trained().save(tmp_path / "m.npz")
    for load in [small_model().load_weights, tn.models.load_model]:
        with pytest.raises(CheckpointMismatchError, match=r"float64 \(4, 8\) in the file"
                                                          r"(.|\n)*set_floatx\('float64'\)"):
            load(tmp_path / "m.npz")


def test_unknown_layer_type_in_a_file_is_refused_never_imported(tmp_path):
    trained().save(tmp_path / "m.npz")
    manifest = manifest_of(tmp_path / "m.npz")
    manifest["model"]["config"]["layers"][0]["class_name"] = "os.system"
    rewrite(tmp_path / "m.npz", tmp_path / "evil.npz", manifest)
    with pytest.raises(CheckpointCorruptError, match=r"unknown layer type 'os.system'"):
        tn.models.load_model(tmp_path / "evil.npz")


def test_custom_layer_classes_are_refused_at_save_but_weights_save(tmp_path):
    class MyDense(L.Dense):
        pass

    model = tn.Sequential([L.Input((3,)), MyDense(2)], seed=0)
    with pytest.raises(CheckpointError, match="type MyDense: .* save_weights"):
        model.save(tmp_path / "m.npz")
    model.save_weights(tmp_path / "m.weights.npz")
    assert os.listdir(tmp_path) == ["m.weights.npz"]


def test_declared_sizes_are_checked_before_allocating(tmp_path):
    trained().save(tmp_path / "m.npz")
    manifest = manifest_of(tmp_path / "m.npz")
    manifest["model"]["config"]["layers"][1]["config"]["units"] = 10**9  # 16 GB of kernel
    rewrite(tmp_path / "m.npz", tmp_path / "big_config.npz", manifest)
    manifest = manifest_of(tmp_path / "m.npz")
    manifest["weights"]["dense/kernel"]["shape"] = [4, 10**9]
    rewrite(tmp_path / "m.npz", tmp_path / "big_manifest.npz", manifest)
    forge_header(tmp_path / "m.npz", tmp_path / "forged.npz", "param/dense/kernel",
                 (10**6, 10**6))
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointCorruptError, match="refused before allocating"):
            tn.models.load_model(tmp_path / "big_config.npz")
        with pytest.raises(CheckpointCorruptError, match=r"holds float32\[4, 8\], the manifest "
                                                         r"declares float32\[4, 1000000000\]"):
            tn.models.load_model(tmp_path / "big_manifest.npz")
        with pytest.raises(CheckpointCorruptError, match=r"declares float32\[1000000, 1000000\] "
                                                         r"\(4000000000000 bytes\) but holds 128"):
            tn.models.load_model(tmp_path / "forged.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


# -- hostile and damaged files --------------------------------------------------------------------
def test_a_pickle_disguised_as_a_checkpoint_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "evil.npz").write_bytes(pickle.dumps(Payload(marker)))
    np.save(tmp_path / "evil_npy.npy", np.array([Payload(marker)], dtype=object))
    os.replace(tmp_path / "evil_npy.npy", tmp_path / "evil_npy.npz")
    trained().save(tmp_path / "m.npz")
    rewrite(tmp_path / "m.npz", tmp_path / "evil_entry.npz",
            **{"param/dense/kernel": np.array([Payload(marker)], dtype=object)})
    np.savez(tmp_path / "evil_manifest.npz", format_version=np.int64(1),
             manifest=np.array([Payload(marker)], dtype=object))
    for name in ["evil.npz", "evil_npy.npz", "evil_entry.npz", "evil_manifest.npz"]:
        with pytest.raises(CheckpointCorruptError):
            tn.models.load_model(tmp_path / name)
        with pytest.raises(CheckpointCorruptError):
            small_model().load_weights(tmp_path / name)
    with pytest.raises(CheckpointCorruptError, match="Python objects"):
        tn.models.load_model(tmp_path / "evil_entry.npz")
    assert not marker.exists()


def test_foreign_npz_newer_version_and_non_finite_weights(tmp_path):
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    with pytest.raises(CheckpointCorruptError, match="'format_version' is missing"):
        tn.models.load_model(tmp_path / "foreign.npz")
    trained().save(tmp_path / "m.npz")
    rewrite(tmp_path / "m.npz", tmp_path / "future.npz", format_version=np.int64(7))
    with pytest.raises(CheckpointError, match=r"format version 7, .* up to 1: upgrade") as info:
        tn.models.load_model(tmp_path / "future.npz")
    assert not isinstance(info.value, CheckpointCorruptError)
    kernel = np.full((4, 8), np.nan, dtype=np.float32)
    rewrite(tmp_path / "m.npz", tmp_path / "nan.npz", **{"param/dense/kernel": kernel})
    with pytest.raises(CheckpointCorruptError, match="dense/kernel' holds NaN"):
        small_model().load_weights(tmp_path / "nan.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        np.savez_compressed(tmp_path / "zipped.npz", **{k: f[k] for k in f.files})
    with pytest.raises(CheckpointCorruptError, match="compressed"):
        tn.models.load_model(tmp_path / "zipped.npz")


def test_saving_non_finite_weights_is_refused(tmp_path):
    model = trained()
    model.parameters[0] = np.inf
    with pytest.raises(CheckpointError, match="dense/kernel holds NaN or infinity"):
        model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small trained model and the bytes of its checkpoint."""
    model = trained(hidden=3, inputs=(2,))
    path = tmp_path_factory.mktemp("saved") / "m.npz"
    model.save(path)
    return model, path.read_bytes()


def test_truncated_files_are_corrupt_at_every_cut(tmp_path, saved):
    _, data = saved
    path = tmp_path / "cut.npz"
    for size in sorted({0, 1, 3, 4, 30, 100, len(data) // 2, len(data) - 22, len(data) - 1,
                        *range(0, len(data), 151)}):
        path.write_bytes(data[:size])
        with pytest.raises(CheckpointCorruptError, match="cut.npz"):
            tn.models.load_model(path)


@settings(max_examples=60)
@given(st.binary(max_size=2000), st.booleans())
def test_random_bytes_are_corrupt(tmp_path_factory, data, zip_magic):
    path = tmp_path_factory.mktemp("random") / "r.npz"
    path.write_bytes((b"PK\x03\x04" if zip_magic else b"") + data)
    with pytest.raises(CheckpointCorruptError):
        tn.models.load_model(path)


@settings(max_examples=150)
@given(st.data())
def test_any_flipped_byte_is_corrupt_or_loads_identically(tmp_path_factory, saved, data):
    model, original = saved
    position = data.draw(st.integers(0, len(original) - 1))
    flipped = bytearray(original)
    flipped[position] ^= data.draw(st.integers(1, 255))
    path = tmp_path_factory.mktemp("flip") / "f.npz"
    path.write_bytes(bytes(flipped))
    try:
        loaded = tn.models.load_model(path)
    except CheckpointCorruptError:
        return
    assert state_of(loaded) == state_of(model)  # the byte was in a field nothing depends on


# -- atomic writes --------------------------------------------------------------------------------
def failing_savez(error):
    """A stand-in for np.savez that writes part of the file, then fails with ``error``."""
    def savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a checkpoint")
        if error != "SIGINT":
            raise error
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered mid-write
        for _ in range(10**6):
            file.write(b"more bytes")
        raise AssertionError("SIGINT was not delivered")
    return savez


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), "SIGINT"])
@pytest.mark.parametrize("method", ["save", "save_weights"])
def test_failed_save_keeps_the_previous_file_and_no_temporary(tmp_path, monkeypatch, error,
                                                              method):
    model = trained()
    path = tmp_path / ("m.npz" if method == "save" else "m.weights.npz")
    getattr(model, method)(path)
    before = path.read_bytes()
    model.fit(*blobs(10), epochs=1, verbose=0)
    monkeypatch.setattr(archive.np, "savez", failing_savez(error))
    with pytest.raises(OSError if error != "SIGINT" else KeyboardInterrupt):
        getattr(model, method)(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]
    monkeypatch.undo()
    small_model().load_weights(path)  # still loads


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_failure_at_fsync_or_replace_keeps_the_previous_file(tmp_path, monkeypatch, step):
    model = trained()
    model.save(tmp_path / "m.npz")
    before = (tmp_path / "m.npz").read_bytes()
    model.fit(*blobs(10), epochs=1, verbose=0)

    def fail(*args):
        raise OSError(errno.EIO, f"{step} failed")
    monkeypatch.setattr(f"tinynn.saving.atomic.os.{step}", fail)
    with pytest.raises(OSError, match=f"{step} failed"):
        model.save(tmp_path / "m.npz")
    assert (tmp_path / "m.npz").read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(archive.np, "savez", failing_savez(OSError(errno.ENOSPC, "full")))
    with pytest.raises(OSError):
        trained().save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# -- resume bitwise in a fresh process ------------------------------------------------------------
RESUME = """
import hashlib, json, sys
import numpy as np
import tinynn as tn
mode, path = sys.argv[1], sys.argv[2]
data = np.random.default_rng(0)
x = data.normal(size=(200, 6, 6)).astype(np.float32)
y = (x.sum(axis=(1, 2)) > 0).astype(int) + (x[:, 0, 0] > 0)
fit = dict(batch_size=16, validation_split=0.1, verbose=0)
if mode in ("straight", "first"):
    L = tn.layers
    model = tn.Sequential([L.Input((6, 6)), L.Flatten(), L.Dense(16, activation="relu"),
                           L.Dropout(0.3), L.Dense(3, activation="softmax")], seed=5)
    model.compile(tn.optimizers.Adam(0.003), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=2 if mode == "straight" else 1, **fit)
    if mode == "first":
        model.save(path, include_optimizer=sys.argv[3] == "with_optimizer")
else:
    model = tn.models.load_model(path)
    history = model.fit(x, y, epochs=2, initial_epoch=1, **fit)
print(json.dumps({"weights": hashlib.sha256(model.parameters.tobytes()).hexdigest(),
                  "history": history.history, "epochs": history.epoch}))
"""


def run(*args) -> dict:
    env = {**os.environ, **SINGLE_THREADED, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", RESUME, *map(str, args)], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_resume_in_a_fresh_process_equals_training_straight_through_bitwise(tmp_path):
    straight = run("straight", "-")
    first = run("first", tmp_path / "ckpt.npz", "with_optimizer")
    resumed = run("resume", tmp_path / "ckpt.npz")
    assert resumed["weights"] == straight["weights"]
    assert resumed["epochs"] == [1] and first["epochs"] == [0]
    for key, values in straight["history"].items():  # exact float equality
        assert [first["history"][key][0], resumed["history"][key][0]] == values
    # The check can fail: without the optimizer state the second epoch differs.
    run("first", tmp_path / "fresh.npz", "without_optimizer")
    assert run("resume", tmp_path / "fresh.npz")["weights"] != straight["weights"]
