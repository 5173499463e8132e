"""``Callback``: the base class of every callback, with Keras 3's hook names.

``fit`` calls ``on_train_begin/end``, ``on_epoch_begin/end``, ``on_train_batch_begin/end`` (and,
while validating, the ``on_test_*`` hooks); ``evaluate`` calls ``on_test_begin/end`` and
``on_test_batch_begin/end``; ``predict`` calls ``on_predict_begin/end`` and
``on_predict_batch_begin/end``. Batch and epoch indices count from 0.

In data-parallel training (``tinynn.distribution``) every rank runs ``fit`` with the same global
logs. Callbacks that write output (progress, files) set ``rank_zero_only`` and run on rank 0
alone; every other callback runs on every rank, and prints with ``print_on_rank_zero``.
"""

from __future__ import annotations

from .distribution import active_communicator


class Callback:
    """Base class: every hook does nothing, except that ``on_train_batch_begin/end`` call
    ``on_batch_begin/end`` (Keras's older names). ``self.model`` is the model being run and
    ``self.params`` the run's ``{"verbose", "epochs", "steps", ...}``; set
    ``self.model.stop_training`` (or ``stop_evaluating``, ``stop_predicting``) to True to stop
    after the current batch."""

    #: Run on rank 0 only in data-parallel training: set by callbacks that print or write files
    #: (ProgbarLogger, ModelCheckpoint, CSVLogger) and must not run on the other ranks.
    rank_zero_only = False

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called by the default ``on_train_batch_begin``."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called by the default ``on_train_batch_end``."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Start of a training epoch; ``logs`` is empty."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """End of a training epoch; ``logs`` has its metrics, then ``val_`` ones."""

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Start of a training step; ``logs`` is empty."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """End of a training step; ``logs`` has the epoch's running metrics."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Start of an evaluation step (also while ``fit`` validates); ``logs`` is empty."""

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """End of an evaluation step; ``logs`` has the running metrics."""

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Start of a prediction step; ``logs`` is empty."""

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """End of a prediction step; ``logs["outputs"]`` is the step's output batch."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Start of ``fit``; ``logs`` is empty."""

    def on_train_end(self, logs: dict | None = None) -> None:
        """End of ``fit``; ``logs`` is the last epoch's (empty if no epoch ran)."""

    def on_test_begin(self, logs: dict | None = None) -> None:
        """Start of ``evaluate`` (or of a validation in ``fit``); ``logs`` is empty."""

    def on_test_end(self, logs: dict | None = None) -> None:
        """End of an evaluation; ``logs`` has its metrics."""

    def on_predict_begin(self, logs: dict | None = None) -> None:
        """Start of ``predict``; ``logs`` is empty."""

    def on_predict_end(self, logs: dict | None = None) -> None:
        """End of ``predict``; ``logs`` is empty."""


def print_on_rank_zero(*args) -> None:
    """``print(*args)`` on rank 0 only (every process when not training data-parallel): for
    messages of callbacks that run on every rank."""
    if active_communicator().rank == 0:
        print(*args)
