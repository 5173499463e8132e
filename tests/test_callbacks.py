"""Callbacks: user subclasses, EarlyStopping, CSVLogger, LearningRateScheduler, progress."""

import csv
import io

import numpy as np
import pytest

import tinynn as tn
from tinynn.errors import TinyNNError
from tinynn.progress import ProgressBar

from .test_models import assert_same_weights, blobs, small_model


class Recorder(tn.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(f"epoch_begin {epoch}")

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(f"batch_end {batch}")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(f"epoch_end {epoch} {sorted(logs)}")

    def on_train_end(self, logs=None):
        self.events.append("train_end")


def test_callback_subclass_sees_every_hook_in_order():
    recorder = Recorder()
    model = small_model()
    model.fit(*blobs(10), epochs=2, batch_size=6, validation_split=0.2, verbose=0,
              callbacks=[recorder])
    keys = "['accuracy', 'loss', 'val_accuracy', 'val_loss']"
    assert recorder.events == [
        "train_begin", "epoch_begin 0", "batch_end 0", "batch_end 1", f"epoch_end 0 {keys}",
        "epoch_begin 1", "batch_end 0", "batch_end 1", f"epoch_end 1 {keys}", "train_end"]
    assert recorder.model is model and recorder.params["epochs"] == 2


class ScriptedLoss(tn.callbacks.Callback):
    """Overwrites val_loss with a scripted sequence, so EarlyStopping sees known values."""

    def __init__(self, values):
        super().__init__()
        self.values = values
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]
        self.weights.append(self.model.get_weights())


def test_early_stopping_stops_after_patience_and_restores_best_weights():
    script = ScriptedLoss([1.0, 0.5, 0.7, 0.6, 0.55, 0.4])
    stopper = tn.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    model = small_model()
    history = model.fit(*blobs(20), epochs=6, validation_split=0.2, verbose=0,
                        callbacks=[script, stopper])
    assert history.epoch == [0, 1, 2, 3, 4]  # epoch 1 is best; 2, 3, 4 do not improve
    assert stopper.stopped_epoch == 4 and stopper.best_epoch == 1 and stopper.best == 0.5
    assert_same_weights(model.get_weights(), script.weights[1])
    assert not all(np.array_equal(a, b) for a, b in zip(script.weights[4], script.weights[1]))


def test_early_stopping_min_delta_and_max_mode_for_accuracy():
    stopper = tn.callbacks.EarlyStopping(monitor="val_accuracy", min_delta=0.1, patience=1)
    assert stopper.mode == "max"
    stopper.set_model(small_model())
    stopper.set_params({"metrics": ["loss", "accuracy", "val_loss", "val_accuracy"]})
    stopper.on_train_begin()
    stopper.model.stop_training = False
    for epoch, value in enumerate([0.5, 0.55, 0.58]):  # +0.05 steps: not improvements
        stopper.on_epoch_end(epoch, {"val_accuracy": value})
        if stopper.model.stop_training:
            break
    assert stopper.stopped_epoch == 1 and stopper.best == 0.5


def test_early_stopping_unknown_monitor_is_refused_before_training():
    model = small_model()
    stopper = tn.callbacks.EarlyStopping(monitor="val_los")
    with pytest.raises(TinyNNError, match=r"monitor='val_los' is not logged .* 'val_loss'"):
        model.fit(*blobs(10), epochs=2, validation_split=0.2, verbose=0, callbacks=[stopper])
    assert model.optimizer.iterations == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"patience": -1}, "patience"), ({"mode": "best"}, "mode"), ({"min_delta": float("nan")},
                                                                  "min_delta")])
def test_early_stopping_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(TinyNNError, match=match):
        tn.callbacks.EarlyStopping(**kwargs)


def test_csv_logger_writes_one_row_per_epoch_with_sorted_keys(tmp_path):
    path = tmp_path / "log.csv"
    model = small_model()
    history = model.fit(*blobs(10), epochs=3, validation_split=0.2, verbose=0,
                        callbacks=[tn.callbacks.CSVLogger(path)])
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["loss"]) for r in rows] == pytest.approx(history.history["loss"])
    model.fit(*blobs(10), epochs=4, initial_epoch=3, validation_split=0.2, verbose=0,
              callbacks=[tn.callbacks.CSVLogger(path, append=True)])
    rows = list(csv.DictReader(path.open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]  # appended without a second header


def test_learning_rate_scheduler_sets_and_logs_the_rate():
    model = small_model()
    scheduler = tn.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch)
    history = model.fit(*blobs(10), epochs=3, verbose=0, callbacks=[scheduler])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])
    assert model.optimizer.learning_rate == pytest.approx(0.025)
    epoch_only = tn.callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))
    history = model.fit(*blobs(10), epochs=2, verbose=0, callbacks=[epoch_only])
    assert history.history["learning_rate"] == pytest.approx([0.01, 0.02])


def test_learning_rate_scheduler_refuses_a_bad_rate_naming_it():
    model = small_model()
    scheduler = tn.callbacks.LearningRateScheduler(lambda epoch: -1.0)
    with pytest.raises(TinyNNError, match="learning_rate expected .* got -1.0"):
        model.fit(*blobs(10), epochs=1, verbose=0, callbacks=[scheduler])


def test_progress_bar_verbose_1_draws_a_keras_style_bar():
    stream = io.StringIO()
    bar = ProgressBar(4, verbose=1, width=8, stream=stream, interval=0)
    bar.update(2, {"loss": 0.5})
    bar.finish({"loss": 0.25, "accuracy": 0.75})
    text = stream.getvalue()
    assert "\r2/4 [===>....] - ETA: " in text and " - loss: 0.5000" in text
    last = text.split("\r")[-1]
    assert last.startswith("4/4 [========] - ") and last.endswith(
        "/step - loss: 0.2500 - accuracy: 0.7500\n")
