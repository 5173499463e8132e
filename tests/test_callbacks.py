"""Callbacks: user subclasses, Keras's hooks and logs, EarlyStopping, CSVLogger,
LearningRateScheduler, History and ProgbarLogger."""

import csv
import io
import re

import numpy as np
import pytest

import tinynn as tn
from tinynn.errors import ArgumentError, TinyNNError
from tinynn.progress import ProgressBar
from tinynn.testing import assert_close, rounding_bound

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
    # History holds Python floats and the CSV their repr: they read back bitwise
    assert [float(r["loss"]) for r in rows] == history.history["loss"]
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


# -- Keras's hooks and logs for fit, evaluate and predict ----------------------------------------
HOOKS = ["on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
         "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
         "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
         "on_predict_batch_begin", "on_predict_batch_end"]


def recording_callback(base, stop_at=None):
    """A ``base`` subclass recording every hook as (hook, index, logs copy); with ``stop_at``
    (hook, index, flag), it sets ``model.<flag> = True`` at that hook."""
    def record(hook, indexed):
        def on_indexed(self, index, logs=None):
            self.events.append((hook, index, None if logs is None else dict(logs)))
            if stop_at is not None and stop_at[:2] == (hook, index):
                setattr(self.model, stop_at[2], True)

        def on_run(self, logs=None):
            self.events.append((hook, None, None if logs is None else dict(logs)))
        return on_indexed if indexed else on_run

    methods = {hook: record(hook, "batch" in hook or "epoch" in hook) for hook in HOOKS}
    recorder = type("Recording", (base,), methods)()
    recorder.events = []
    return recorder


def keras_depth(steps: int) -> int:
    """Roundings behind a value logged by ``keras_and_tinynn_pair``'s models after ``steps`` SGD
    steps, both sides (tinynn, Keras): per step, the forward (4-term dot product, bias, 3-way
    softmax, log: ~11) and the backward (3-row gradient sums, the update: ~5) carry into the
    weights; then the last forward (11) and a mean over at most 10 samples."""
    return 2 * (16 * steps + 11 + 10)


def keras_and_tinynn_pair(keras):
    """The same Dense(3, softmax) on 4 features in Keras and tinynn, SGD(0.1), same weights."""
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        3, activation="softmax", kernel_initializer=keras.initializers.GlorotUniform(seed=1))])
    theirs.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                   metrics=["accuracy"])
    ours = tn.Sequential([tn.layers.Input((4,)), tn.layers.Dense(3, activation="softmax")])
    ours.compile(tn.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def run_recorded(model, base, x, y, stop_at=None):
    """fit (validating), evaluate and predict, each with a recording callback; returns the
    recorders' params and events."""
    runs = [lambda cb: model.fit(x, y, batch_size=3, epochs=2, validation_split=0.4,
                                 shuffle=False, verbose=0, callbacks=[cb]),
            lambda cb: model.evaluate(x, y, batch_size=4, verbose=0, callbacks=[cb]),
            lambda cb: model.predict(x, batch_size=4, verbose=0, callbacks=[cb])]
    recorded = []
    for run in runs:
        recorder = recording_callback(base, stop_at)
        run(recorder)
        recorded.append((dict(recorder.params), recorder.events))
    return recorded


def assert_same_events(ours, theirs, depth):
    """Same hooks in the same order with the same log keys; logged numbers equal to ``depth``
    roundings of float32."""
    assert [(hook, index) for hook, index, _ in ours] == [
        (hook, index) for hook, index, _ in theirs]
    for (hook, index, our_logs), (_, _, their_logs) in zip(ours, theirs):
        assert (our_logs is None) == (their_logs is None), hook
        assert list(our_logs) == list(their_logs), (hook, index)  # same keys, same order
        for key, value in our_logs.items():
            if key == "outputs":
                assert_close(value, their_logs[key], depth=depth, dtype=np.float32,
                             err_msg=f"{hook} {index}")
            else:
                bound = rounding_bound(their_logs[key], np.float32, depth)
                assert value == pytest.approx(their_logs[key], abs=bound), (hook, index, key)


@pytest.mark.parametrize("stop_at", [
    None, ("on_train_batch_end", 0, "stop_training"), ("on_test_batch_end", 0, "stop_evaluating"),
    ("on_predict_batch_end", 1, "stop_predicting")])
def test_callbacks_get_keras_hooks_params_and_logs_for_fit_evaluate_predict(keras, stop_at):
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    y = np.arange(10) % 3
    theirs, ours = keras_and_tinynn_pair(keras)
    keras_runs = run_recorded(theirs, keras.callbacks.Callback, x, y, stop_at)
    tinynn_runs = run_recorded(ours, tn.callbacks.Callback, x, y, stop_at)
    for (our_params, our_events), (their_params, their_events) in zip(tinynn_runs, keras_runs):
        assert {k: our_params[k] for k in their_params} == their_params
        assert_same_events(our_events, their_events, keras_depth(4))  # fit: 2 epochs of 2 steps
    assert our_params == {"verbose": 0, "epochs": 1, "steps": 3}
    assert tinynn_runs[0][0]["metrics"] == ["loss", "accuracy", "val_loss", "val_accuracy"]


def test_fit_validation_calls_the_test_hooks_between_the_last_step_and_epoch_end():
    recorder = recording_callback(tn.callbacks.Callback)
    small_model().fit(*blobs(10), epochs=1, batch_size=4, validation_split=0.3, verbose=0,
                      callbacks=[recorder])
    assert [hook for hook, _, _ in recorder.events] == [
        "on_train_begin", "on_epoch_begin", *["on_train_batch_begin", "on_train_batch_end"] * 2,
        "on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end",
        "on_epoch_end", "on_train_end"]
    assert recorder.events[-1][2] == recorder.events[-2][2]  # train_end gets the last epoch logs


def test_fit_adds_history_and_progbar_once_and_uses_the_ones_given(capsys):
    model = small_model()
    history, progbar = tn.callbacks.History(), tn.callbacks.ProgbarLogger()
    assert model.fit(*blobs(12), epochs=1, batch_size=6, verbose=2,
                     callbacks=[history, progbar]) is history
    assert model.history is history and history.epoch == [0]
    assert capsys.readouterr().out.count("2/2 - ") == 1  # one bar: the one given


def test_train_batch_hooks_call_the_older_batch_names():
    class Old(tn.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches = []

        def on_batch_end(self, batch, logs=None):
            self.batches.append((batch, sorted(logs)))
    old = Old()
    small_model().fit(*blobs(10), epochs=1, batch_size=4, verbose=0, callbacks=[old])
    assert old.batches == [(i, ["accuracy", "loss"]) for i in range(3)]


def test_batch_hooks_reach_only_the_callbacks_that_define_them(monkeypatch):
    """Logs are made only for a hook some callback defines (in its class, on the instance,
    or, for the train-batch hooks, Keras's older names); each such callback still gets them."""
    class Batches(tn.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            self.seen = sorted(logs)
    quiet, instance, batches = tn.callbacks.Callback(), tn.callbacks.Callback(), Batches()
    calls = []
    instance.on_train_batch_begin = lambda batch, logs=None: calls.append(batch)
    hooks = tn.callbacks.CallbackList([quiet, instance, batches], add_history=True)
    assert hooks.calls("on_train_batch_begin") and hooks.calls("on_test_batch_end")
    assert not hooks.calls("on_train_batch_end") and not hooks.calls("on_predict_batch_end")
    assert tn.callbacks.CallbackList([], add_progbar=True).calls("on_train_batch_end")
    made = []
    monkeypatch.setattr(tn.loops.RunningLogs, "logs",
                        lambda self: made.append(1) or {"loss": 0.0, "accuracy": 0.0})
    model = small_model()
    model.fit(*blobs(10), epochs=1, batch_size=4, verbose=0, callbacks=[instance, batches],
              validation_split=0.2)
    assert calls == [0, 1]
    assert batches.seen == ["accuracy", "loss"]
    # one validation step (test_batch_end), then the validation and the epoch's logs: no
    # train batch made logs nobody reads
    assert len(made) == 3


# -- ProgbarLogger output ------------------------------------------------------------------------
def mask_times(text):
    """Replace the elapsed time and time per step of each line by "T"."""
    return re.sub(r"\d+s - \d+(s|ms|us)/step", "T", text)


def split_numbers(text):
    """Progress text with every 4-decimal value replaced by "V", and those values."""
    return re.sub(r"\d+\.\d{4}", "V", text), [float(v) for v in re.findall(r"\d+\.\d{4}", text)]


def test_progbar_lines_are_keras_lines_for_fit_evaluate_predict(keras, capsys):
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    y = np.arange(10) % 3
    outputs = []
    for model in keras_and_tinynn_pair(keras):
        model.fit(x, y, batch_size=3, epochs=2, validation_split=0.4, shuffle=False, verbose=2)
        model.fit(x, y, batch_size=3, epochs=1, shuffle=False, verbose=2)
        model.evaluate(x, y, batch_size=4, verbose=2)
        model.predict(x, batch_size=4, verbose=2)
        outputs.append(split_numbers(mask_times(capsys.readouterr().out)))
    (ours, our_values), (theirs, their_values) = outputs
    assert ours == theirs
    # printed to 4 decimals: each side rounds by up to 0.5e-4, beyond the float32 roundings of
    # 8 SGD steps (2 epochs of 2 steps, then 1 of 4)
    assert our_values == pytest.approx(
        their_values, abs=1e-4 + rounding_bound(their_values, np.float32, keras_depth(8)))
    assert ours.splitlines() == [
        "Epoch 1/2", "2/2 - T - accuracy: V - loss: V - val_accuracy: V - val_loss: V",
        "Epoch 2/2", "2/2 - T - accuracy: V - loss: V - val_accuracy: V - val_loss: V",
        "4/4 - T - accuracy: V - loss: V", "3/3 - T - accuracy: V - loss: V", "3/3 - T"]


class Clock:
    """A stand-in for the ``time`` module whose clock advances one second per reading."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1.0
        return self.now


def test_progbar_verbose_1_draws_every_true_step_of_evaluate_and_predict(monkeypatch, capsys):
    monkeypatch.setattr(tn.progress, "time", Clock())
    monkeypatch.setattr(tn.models.model, "INFERENCE_ACTIVATION_BYTES", 2 * 12 * 4)  # 2 rows a chunk
    model = small_model()
    x, y = blobs(12)
    model.evaluate(x, y, batch_size=5, verbose=1)
    model.predict(x, batch_size=5, verbose=1)
    evaluated, predicted, _ = capsys.readouterr().out.split("\n")
    assert re.findall(r"\r(\d+)/(\d+) \[", evaluated) == [(str(i), "3") for i in (1, 2, 3, 3)]
    assert "\r1/3 [=========>....................] - ETA: 2s - accuracy: " in evaluated
    assert evaluated.split("\r")[-1].startswith("3/3 [==============================] - 4s 1s/step"
                                                " - accuracy: ")
    assert predicted.split("\r")[1:] == [
        "1/3 [=========>....................] - ETA: 2s",
        "2/3 [===================>..........] - ETA: 1s",
        "3/3 [==============================] - ETA: 0s",
        "3/3 [==============================] - 4s 1s/step"]


def test_fit_prints_no_epoch_line_for_a_single_epoch_as_keras(capsys):
    small_model().fit(*blobs(12), epochs=1, batch_size=5, verbose=2)
    assert re.fullmatch(r"3/3 - \d+s - \d+(ms|us)/step - accuracy: \d\.\d{4} - loss: \d\.\d{4}\n",
                        capsys.readouterr().out)


@pytest.mark.parametrize("verbose", [3, "yes", -1])
def test_bad_verbose_is_refused(verbose):
    model = small_model()
    with pytest.raises(ArgumentError, match=f"verbose expected 0, 1, 2 or 'auto', got {verbose!r}"):
        model.predict(np.ones((2, 4)), verbose=verbose)
