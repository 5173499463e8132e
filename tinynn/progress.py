"""Keras-style progress display: a live bar (verbose=1) or one line per epoch (verbose=2),
drawn by the ``ProgbarLogger`` callback that ``fit``, ``evaluate`` and ``predict`` add.

    1688/1688 [==============================] - 3s 2ms/step - accuracy: 0.9103 - loss: 0.2395
"""

import sys
import time

from .callback_base import Callback
from .errors import ArgumentError


def resolve_verbose(verbose) -> int:
    """``"auto"`` -> 1 on a terminal, 2 otherwise (one line per epoch in logs)."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    if verbose not in (0, 1, 2):
        raise ArgumentError(f"verbose expected 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def format_logs(logs: dict) -> str:
    """``{"loss": 0.5}`` -> ``" - loss: 0.5000"`` (Keras's four decimals)."""
    return "".join(f" - {k}: {v:.4f}" for k, v in logs.items())


def _format_time_per_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class ProgressBar:
    """Progress over ``target`` steps; call ``update(step, logs)`` then ``finish(logs)``."""

    def __init__(self, target: int, verbose: int, width: int = 30, stream=None,
                 interval: float = 0.1):
        self.target = target
        self.verbose = verbose
        self.width = width
        self.stream = stream or sys.stdout
        self.interval = interval
        self.seen = 0
        self.start = time.perf_counter()
        self._last_draw = 0.0

    def update(self, step: int, logs: dict) -> None:
        """Redraw the bar after ``step`` steps (at most every ``interval`` seconds). A target
        of None (a generator of unknown length) shows ``step/Unknown``, as Keras does."""
        self.seen = step
        if self.verbose != 1:
            return
        now = time.perf_counter()
        if now - self._last_draw < self.interval and (self.target is None or
                                                      step < self.target):
            return
        self._last_draw = now
        elapsed = now - self.start
        if self.target is None:
            self.stream.write(f"\r{step}/Unknown - {elapsed:.0f}s{format_logs(logs)}")
        else:
            eta = elapsed / max(step, 1) * (self.target - step)
            self.stream.write(f"\r{self._bar(step)} - ETA: {eta:.0f}s{format_logs(logs)}")
        self.stream.flush()

    def finish(self, logs: dict) -> None:
        """Write the epoch's final line (both verbose 1 and 2)."""
        if self.verbose == 0:
            return
        if self.target is None:  # now known: the steps taken
            self.target = self.seen
        elapsed = time.perf_counter() - self.start
        per_step = _format_time_per_step(elapsed / max(self.target, 1))
        if self.verbose == 1:
            line = f"\r{self._bar(self.target)} - {elapsed:.0f}s {per_step}"
        else:
            line = f"{self.target}/{self.target} - {elapsed:.0f}s - {per_step}"
        self.stream.write(line + format_logs(logs) + "\n")
        self.stream.flush()

    def _bar(self, step: int) -> str:
        digits = len(str(self.target))
        done = int(self.width * step / max(self.target, 1))
        arrow = "=" * done if step >= self.target else "=" * max(done - 1, 0) + ">"
        return f"{step:>{digits}}/{self.target} [{arrow.ljust(self.width, '.')}]"


class ProgbarLogger(Callback):
    """Prints progress as Keras 3's ``ProgbarLogger``: one bar per training epoch (preceded by
    ``Epoch i/epochs`` when there are several), one per ``evaluate`` and per ``predict``; the
    validation inside ``fit`` is silent. The bar counts steps (``params["steps"]``) and, with
    verbose 2, prints only its final line. In data-parallel training, rank 0 alone prints."""

    rank_zero_only = True

    def __init__(self):
        super().__init__()
        self.verbose = 1
        self.epochs = 1
        self.target = None
        self.progbar = None
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        self.verbose = resolve_verbose(params["verbose"])
        self.epochs = params["epochs"]
        self.target = params["steps"]

    def on_train_begin(self, logs=None):
        self._called_in_fit = True

    def on_epoch_begin(self, epoch, logs=None):
        self._start_bar()
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self.progbar.update(batch + 1, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        self.progbar.finish(logs or {})

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._start_bar()

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self.progbar.update(batch + 1, logs or {})

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self.progbar.finish(logs or {})

    def on_predict_begin(self, logs=None):
        self._start_bar()

    def on_predict_batch_end(self, batch, logs=None):
        self.progbar.update(batch + 1, {})  # the outputs are not shown

    def on_predict_end(self, logs=None):
        self.progbar.finish({})

    def _start_bar(self) -> None:
        self.progbar = ProgressBar(self.target, self.verbose)
