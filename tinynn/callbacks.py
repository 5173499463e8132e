"""Callbacks: hooks into ``fit``, ``evaluate`` and ``predict`` with Keras 3's method names
(``Callback``, in ``tinynn.callback_base``), ``CallbackList``, ``History``, ``ProgbarLogger``,
``EarlyStopping``, ``ModelCheckpoint``, ``CSVLogger`` and ``LearningRateScheduler``.

Subclass ``Callback`` and override any of its hooks. ``self.model`` is the model being run;
set ``self.model.stop_training = True`` to stop training after the current batch.
"""

from __future__ import annotations

import csv
import inspect
import math
import os
import warnings
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from .callback_base import Callback, print_on_rank_zero
from .errors import ArgumentError
from .progress import ProgbarLogger
from .saving.paths import save_path
from .validation import choice, non_negative_int, positive_int, real_in_range


class History(Callback):
    """Records epoch logs: ``history["loss"][i]`` is epoch ``epoch[i]``'s training loss. ``fit``
    always adds one (unless given one) and returns it; it is also ``model.history``."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        self.model.history = self


class CallbackList(Callback):
    """Calls each hook on every callback in order, as Keras 3's ``CallbackList``.

    ``add_history`` / ``add_progbar`` append a ``History`` / ``ProgbarLogger`` unless
    ``callbacks`` holds one; ``params`` (``verbose``, ``epochs``, ``steps``, ...) go to every
    callback. On a data-parallel ``rank`` other than 0, callbacks with ``rank_zero_only`` are
    left out. Each hook hands its callbacks one dict: the logs sorted by name with numbers as
    floats (Keras's ``pythonify_logs``), so a callback's change to it is seen by the next ones.
    """

    def __init__(self, callbacks=None, add_history: bool = False, add_progbar: bool = False,
                 rank: int = 0, model=None, **params):
        super().__init__()
        callbacks = list(callbacks or [])
        self.history = next((c for c in callbacks if isinstance(c, History)), None)
        if self.history is None and add_history:
            self.history = History()
            callbacks.append(self.history)
        if add_progbar and not any(isinstance(c, ProgbarLogger) for c in callbacks):
            callbacks.append(ProgbarLogger())
        self.callbacks = [c for c in callbacks if rank == 0 or not c.rank_zero_only]
        self._takers: dict[str, list] = {}  # hook: the callbacks that override it
        if model is not None:
            self.set_model(model)
        self.set_params(params)

    def set_model(self, model) -> None:
        super().set_model(model)
        if self.history is not None:
            model.history = self.history
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        if params:
            for callback in self.callbacks:
                callback.set_params(params)

    def calls(self, hook: str) -> bool:
        """Whether some callback does something on ``hook``: overrides it (or, for
        ``on_train_batch_begin/end``, Keras's older ``on_batch_begin/end``). The loops compute
        a step's logs only when a callback will read them."""
        if hook not in self._takers:
            self._takers[hook] = [c for c in self.callbacks if _overrides(c, hook)]
        return bool(self._takers[hook])

    def _call(self, hook: str, *index, logs) -> None:
        if not self.calls(hook):
            return
        logs = _plain_logs(logs)
        for callback in self._takers[hook]:
            getattr(callback, hook)(*index, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs=logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs=logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs=logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs=logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs=logs)


_OLDER_NAMES = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}


def _overrides(callback, hook: str) -> bool:
    """Whether ``callback`` (a Callback, or any object with the hooks) has its own ``hook``."""
    if not isinstance(callback, Callback):
        return True
    names = (hook, _OLDER_NAMES[hook]) if hook in _OLDER_NAMES else (hook,)
    return any(name in vars(callback) or getattr(type(callback), name) is not
               getattr(Callback, name) for name in names)


def _plain_logs(logs: dict | None) -> dict:
    """A new dict of ``logs`` sorted by name, NumPy and Python numbers as floats (arrays, such
    as predict's ``outputs``, unchanged)."""
    return {key: float(value) if isinstance(value, (Real, np.generic)) else value
            for key, value in sorted((logs or {}).items())}


def _check_monitor(callback_name: str, monitor: str, params: dict) -> None:
    """Refuse a monitor that fit will never log (checked before the first epoch)."""
    available = params.get("metrics")
    if available is not None and monitor not in available:
        raise ArgumentError(f"{callback_name} monitor={monitor!r} is not logged by this fit: "
                          f"expected one of {available}")


def _resolve_mode(callback_name: str, mode: str, monitor: str) -> str:
    """``"auto"`` -> ``"max"`` for accuracy-like monitors, else ``"min"`` (Keras's rule)."""
    choice(mode, f"{callback_name} mode", ("auto", "min", "max"))
    if mode != "auto":
        return mode
    return "max" if monitor.endswith(("acc", "accuracy", "auc")) else "min"


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights=True`` the weights of the best epoch are restored when training
    stops early (Keras 3 behaviour). ``best``, ``best_epoch``, ``stopped_epoch`` are readable.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__()
        self.monitor = monitor
        self.min_delta = abs(real_in_range(min_delta, "EarlyStopping min_delta", -math.inf,
                                           math.inf))
        self.patience = non_negative_int(patience, "EarlyStopping patience")
        self.start_from_epoch = non_negative_int(start_from_epoch,
                                                 "EarlyStopping start_from_epoch")
        self.mode = _resolve_mode("EarlyStopping", mode, monitor)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)

    def _improves(self, value: float, reference: float) -> bool:
        if self.mode == "max":
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def on_train_begin(self, logs=None):
        _check_monitor("EarlyStopping", self.monitor, self.params)
        self.wait = 0
        self.stopped_epoch = 0
        self.best = -math.inf if self.mode == "max" else math.inf
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)
                if self.verbose:
                    print_on_rank_zero(f"Restoring model weights from the end of the best "
                                       f"epoch: {self.best_epoch + 1}.")

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print_on_rank_zero(f"Epoch {self.stopped_epoch + 1}: early stopping")


class ModelCheckpoint(Callback):
    """Save the model (or its weights) during fit, as Keras 3's ``ModelCheckpoint``.

    ``filepath`` is formatted with ``epoch`` (1-based), ``batch`` (1-based, for an integer
    ``save_freq``) and the logs, e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``; it must end in
    ``.npz`` or ``.keras`` (``model.save``) or, with ``save_weights_only``, ``.weights.npz`` or
    ``.weights.h5``. Every write is atomic: after Ctrl-C or a crash, the last checkpoint on disk
    is complete and loads.
    ``save_best_only`` saves only when ``monitor`` improves strictly on ``best`` (which starts
    at ``initial_value_threshold``, else +-inf); ``mode`` as EarlyStopping's. ``save_freq`` is
    ``"epoch"`` or a number of batches. In data-parallel training, rank 0 alone saves.
    """

    rank_zero_only = True

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq="epoch",
                 initial_value_threshold: float | None = None):
        super().__init__()
        self.save_weights_only = bool(save_weights_only)
        save_path(filepath, self.save_weights_only, "ModelCheckpoint")
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.mode = _resolve_mode("ModelCheckpoint", mode, monitor)
        if save_freq != "epoch" and not isinstance(save_freq, Integral):
            raise ArgumentError(f"ModelCheckpoint save_freq expected 'epoch' or a number of "
                              f"batches, got {save_freq!r}")
        self.save_freq = save_freq if save_freq == "epoch" else positive_int(
            save_freq, "ModelCheckpoint save_freq")
        if initial_value_threshold is None:
            self.best = -math.inf if self.mode == "max" else math.inf
        else:
            self.best = real_in_range(initial_value_threshold,
                                      "ModelCheckpoint initial_value_threshold", -math.inf,
                                      math.inf)
        self._current_epoch = 0
        self._batches_since_save = 0
        self._last_batch = -1

    def on_train_begin(self, logs=None):
        if self.save_best_only:
            _check_monitor("ModelCheckpoint", self.monitor, self.params)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        # Batches are numbered from 0 in each epoch: a smaller number starts a new epoch.
        self._batches_since_save += batch + 1 if batch <= self._last_batch else (
            batch - self._last_batch)
        self._last_batch = batch
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._current_epoch, batch, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _save(self, epoch: int, batch: int | None, logs: dict) -> None:
        path = self._format_path(epoch, batch, logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"ModelCheckpoint can save the best model only when "
                              f"{self.monitor} is logged; skipping", stacklevel=2)
                return
            if not (current > self.best if self.mode == "max" else current < self.best):
                if self.verbose:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from "
                          f"{self.best:.5f}")
                return
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        elif self.verbose:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)

    def _format_path(self, epoch: int, batch: int | None, logs: dict) -> str:
        fields = {"epoch": epoch + 1, **({} if batch is None else {"batch": batch + 1}), **logs}
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError, ValueError) as error:
            raise ArgumentError(f"ModelCheckpoint cannot format filepath {self.filepath!r} "
                              f"({type(error).__name__}: {error}): the fields available are "
                              f"{sorted(fields)}") from error


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` then the logs' keys in sorted order, as Keras.

    The file is flushed after every row, so it is complete up to the last finished epoch. In
    data-parallel training, rank 0 alone writes it.
    """

    rank_zero_only = True

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = Path(filename)
        self.separator = separator
        self.append = bool(append)
        self._file = None
        self._writer = None
        self._keys = None

    def on_train_begin(self, logs=None):
        has_rows = self.append and self.filename.exists() and self.filename.stat().st_size > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._keys = None if not has_rows else []
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._writer is None:
            keys = sorted(logs)
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *keys],
                                          delimiter=self.separator)
            if self._keys is None:
                self._writer.writeheader()
            self._keys = keys
        self._writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self._keys}})
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self):
        if getattr(self, "_file", None) is not None:
            self._file.close()


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at each epoch start to ``schedule(epoch, lr)``
    (or ``schedule(epoch)``); the rate used is logged as ``learning_rate``."""

    def __init__(self, schedule, verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise ArgumentError(f"LearningRateScheduler expected a callable schedule, got "
                              f"{schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        try:
            inspect.signature(schedule).bind(0, 0.1)
            self._takes_lr = True
        except TypeError:
            self._takes_lr = False

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if self._takes_lr:
            lr = self.schedule(epoch, optimizer.learning_rate)
        else:  # a schedule of the epoch only, as Keras allows
            lr = self.schedule(epoch)
        optimizer.learning_rate = lr  # validated by the optimizer: finite and > 0
        if self.verbose:
            print_on_rank_zero(f"Epoch {epoch + 1}: LearningRateScheduler setting learning "
                               f"rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)

