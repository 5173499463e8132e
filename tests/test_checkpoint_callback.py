"""ModelCheckpoint: Keras 3's names, formatting and best-only rule; atomic writes under Ctrl-C."""

import os
import signal

import numpy as np
import pytest

import tinynn as tn
from tinynn.errors import CheckpointError, TinyNNError
from tinynn.saving import archive

from .test_callbacks import ScriptedLoss
from .test_models import blobs, small_model


class WeightsAtEpochEnd(tn.callbacks.Callback):
    """Records the parameter buffer at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.params_by_epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.params_by_epoch.append(self.model.parameters.copy())


class InterruptAt(tn.callbacks.Callback):
    """Sends a real SIGINT at the start of batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def fit(model, *callbacks, epochs=3, **kwargs):
    return model.fit(*blobs(20), epochs=epochs, batch_size=5, validation_split=0.2, verbose=0,
                     callbacks=list(callbacks), **kwargs)


def test_epoch_placeholders_name_one_loadable_file_per_epoch(tmp_path):
    model, record = small_model(), WeightsAtEpochEnd()
    fit(model, tn.callbacks.ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}-{loss:.2f}.npz"), record)
    names = sorted(os.listdir(tmp_path))
    assert [name[:8] for name in names] == ["ckpt-01-", "ckpt-02-", "ckpt-03-"]
    assert names[2] == f"ckpt-03-{model.history.history['loss'][2]:.2f}.npz"
    for name, params in zip(names, record.params_by_epoch):
        np.testing.assert_array_equal(tn.models.load_model(tmp_path / name).parameters, params)


def test_save_best_only_saves_strict_improvements(tmp_path):
    script = ScriptedLoss([3.0, 1.0, 1.0, 2.0, 0.5])
    record = WeightsAtEpochEnd()
    best = tn.callbacks.ModelCheckpoint(tmp_path / "best.npz", save_best_only=True, verbose=1)
    every = tn.callbacks.ModelCheckpoint(tmp_path / "e{epoch}.npz", save_best_only=True)
    model = small_model()
    fit(model, script, best, every, record, epochs=4)
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "e1.npz", "e2.npz"]
    assert best.best == 1.0 and best.mode == "min"
    np.testing.assert_array_equal(tn.models.load_model(tmp_path / "best.npz").parameters,
                                  record.params_by_epoch[1])
    fit(model, ScriptedLoss([0.9]), best, epochs=1)  # best carries over, as in Keras
    assert best.best == 0.9


def test_max_mode_threshold_and_verbose_messages(tmp_path, capsys):
    checkpoint = tn.callbacks.ModelCheckpoint(tmp_path / "m.weights.npz", monitor="val_accuracy",
                                              save_best_only=True, save_weights_only=True,
                                              initial_value_threshold=0.5, verbose=1)
    assert checkpoint.mode == "max" and checkpoint.best == 0.5
    checkpoint.set_model(small_model())
    checkpoint.model.build()
    for epoch, value in enumerate([0.4, 0.75, 0.7]):
        checkpoint.on_epoch_end(epoch, {"val_accuracy": value})
    out = capsys.readouterr().out
    assert "Epoch 1: val_accuracy did not improve from 0.50000" in out
    assert ("Epoch 2: val_accuracy improved from 0.50000 to 0.75000, saving model to "
            f"{tmp_path / 'm.weights.npz'}") in out
    assert "Epoch 3: val_accuracy did not improve from 0.75000" in out
    assert os.listdir(tmp_path) == ["m.weights.npz"]


def test_save_weights_only_writes_weights_files(tmp_path):
    model = small_model()
    fit(model, tn.callbacks.ModelCheckpoint(tmp_path / "sub" / "w{epoch}.weights.npz",
                                            save_weights_only=True), epochs=2)
    assert sorted(os.listdir(tmp_path / "sub")) == ["w1.weights.npz", "w2.weights.npz"]
    other = small_model(seed=4)
    other.load_weights(tmp_path / "sub" / "w2.weights.npz")
    np.testing.assert_array_equal(other.parameters, model.parameters)


def test_integer_save_freq_counts_batches_across_epochs(tmp_path):
    # 16 training samples in batches of 5: 4 batches per epoch; saves after batches 3, 6, 9, 12.
    fit(small_model(), tn.callbacks.ModelCheckpoint(tmp_path / "{epoch}-{batch}.npz",
                                                    save_freq=3))
    assert sorted(os.listdir(tmp_path)) == ["1-3.npz", "2-2.npz", "3-1.npz", "3-4.npz"]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"filepath": "m.weights.npz"}, CheckpointError, "weights-only"),
    ({"filepath": "m.npz", "save_weights_only": True}, CheckpointError, r"\.weights\.npz"),
    ({"filepath": "m.h5"}, CheckpointError, "reads legacy .h5 files but writes"),
    ({"filepath": "m.npz", "mode": "best"}, TinyNNError, "mode"),
    ({"filepath": "m.npz", "save_freq": 0}, TinyNNError, "save_freq"),
    ({"filepath": "m.npz", "save_freq": "batch"}, TinyNNError, "save_freq"),
    ({"filepath": "m.npz", "initial_value_threshold": float("nan")}, TinyNNError, "threshold")])
def test_bad_arguments_are_refused_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        tn.callbacks.ModelCheckpoint(**kwargs)


def test_unlogged_monitor_and_unknown_fields_are_refused_naming_the_choices(tmp_path):
    model = small_model()
    with pytest.raises(TinyNNError, match=r"monitor='val_acc' is not logged"):
        fit(model, tn.callbacks.ModelCheckpoint(tmp_path / "m.npz", monitor="val_acc",
                                                save_best_only=True))
    with pytest.raises(TinyNNError, match=r"KeyError: 'val_los'.*'epoch', 'loss', 'val_acc"):
        fit(model, tn.callbacks.ModelCheckpoint(tmp_path / "{val_los}.npz"))
    assert os.listdir(tmp_path) == []


def test_ctrl_c_during_fit_leaves_the_last_checkpoint_complete(tmp_path):
    model, record = small_model(), WeightsAtEpochEnd()
    with pytest.raises(KeyboardInterrupt):
        fit(model, tn.callbacks.ModelCheckpoint(tmp_path / "last.npz"), record,
            InterruptAt(epoch=2, batch=1))
    assert os.listdir(tmp_path) == ["last.npz"] and len(record.params_by_epoch) == 2
    loaded = tn.models.load_model(tmp_path / "last.npz")
    np.testing.assert_array_equal(loaded.parameters, record.params_by_epoch[1])
    assert loaded.optimizer.iterations == 8


def test_ctrl_c_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    savez, calls = np.savez, []

    def interrupted_on_second_write(file, *args, **kwargs):
        calls.append(file)
        savez(file, *args, **kwargs)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the file is written but not yet renamed
            file.write(b"never reached")
    monkeypatch.setattr(archive.np, "savez", interrupted_on_second_write)
    model, record = small_model(), WeightsAtEpochEnd()
    with pytest.raises(KeyboardInterrupt):
        fit(model, record, tn.callbacks.ModelCheckpoint(tmp_path / "last.npz"))
    assert os.listdir(tmp_path) == ["last.npz"] and len(calls) == 2
    np.testing.assert_array_equal(tn.models.load_model(tmp_path / "last.npz").parameters,
                                  record.params_by_epoch[0])
