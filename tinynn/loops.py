"""The step loops behind ``Sequential.fit``, ``evaluate`` and ``predict``.

Each loop walks an ``EpochIterator`` (one step per batch of the caller's ``batch_size``) and
calls the callbacks' hooks with Keras 3's names and logs. Inference (``test_loop``,
``predict_loop``) runs the layers forward with ``training=False`` only, so nothing is kept for a
backward pass and no gradient is computed; a step's batch is split into chunks of at most
``chunk_rows`` samples to bound the activations' memory, which changes neither the results nor
the number of steps.
"""

from __future__ import annotations

import math

import numpy as np

from . import ops
from .batching import EpochIterator, row_slices
from .errors import NonFiniteLossError
from .metrics import count_correct


class RunningLogs:
    """Per-sample means over the samples seen so far: ``loss`` (plus a constant ``penalty``,
    the regularization of fixed weights) and the accuracy metric named ``metric`` (if any)."""

    def __init__(self, metric: str | None, penalty: float = 0.0):
        self.metric = metric
        self.penalty = penalty
        self.loss_sum = 0.0
        self.correct = 0
        self.seen = 0

    def add(self, loss_sum: float, y: np.ndarray, out: np.ndarray) -> None:
        """Count a batch: targets ``y`` (N, ...), outputs ``out`` (N, K), summed loss."""
        self.seen += len(out)
        self.loss_sum += loss_sum
        if self.metric:
            self.correct += count_correct(y, out)

    def logs(self) -> dict:
        """``{"loss": mean, metric: accuracy}``."""
        logs = {"loss": self.loss_sum / self.seen + self.penalty}
        if self.metric:
            logs[self.metric] = self.correct / self.seen
        return logs


def train_epoch(model, batches: EpochIterator, epoch: int, guard, callbacks) -> dict:
    """One epoch of training steps; stops early after a step that set ``model.stop_training``.
    Raises NonFiniteLossError before applying a step whose loss or gradient is not finite.
    Returns the epoch's logs (per-sample means over the steps taken)."""
    running = RunningLogs(model.metrics[0] if model.metrics else None)
    for step, (x_batch, y_batch) in batches:
        callbacks.on_train_batch_begin(step)
        loss, out = model.compute_loss_and_gradients(x_batch, y_batch)
        check_finite_step(model, loss, epoch, step)
        with guard.critical():
            model.optimizer.apply(model.parameters, model.gradients)
        running.add(loss * len(x_batch), y_batch, out)
        callbacks.on_train_batch_end(step, running.logs())
        if model.stop_training:
            break
    return running.logs()


def test_loop(model, batches: EpochIterator, callbacks, chunk_rows: int) -> dict:
    """Loss (with the regularization penalty, as Keras) and metrics with training off, between
    ``on_test_begin`` and ``on_test_end``; stops early when ``model.stop_evaluating`` is set.
    Returns the logs."""
    model.stop_evaluating = False
    fused = model.fuses_softmax
    per_sample_loss = model.loss.logits_per_sample if fused else model.loss.per_sample
    running = RunningLogs(model.metrics[0] if model.metrics else None,
                          model.regularization_loss())
    callbacks.on_test_begin()
    for step, (x_batch, y_batch) in batches:
        callbacks.on_test_batch_begin(step)
        for rows in row_slices(len(x_batch), chunk_rows):
            out = model.forward(x_batch[rows], training=False, logits=fused)
            per_sample = per_sample_loss(y_batch[rows], out)
            running.add(float(np.sum(per_sample, dtype=np.float64)), y_batch[rows], out)
        callbacks.on_test_batch_end(step, running.logs())
        if model.stop_evaluating:
            break
    logs = running.logs()
    callbacks.on_test_end(logs)
    return logs


def predict_loop(model, batches: EpochIterator, callbacks, chunk_rows: int) -> int:
    """Fill the second array of ``batches`` (unshuffled, so its batches are views) with the
    outputs for the first, training off, between ``on_predict_begin`` and ``on_predict_end``;
    stops early when ``model.stop_predicting`` is set. Returns the number of rows filled."""
    model.stop_predicting = False
    filled = 0
    callbacks.on_predict_begin()
    for step, (x_batch, out_batch) in batches:
        callbacks.on_predict_batch_begin(step)
        for rows in row_slices(len(x_batch), chunk_rows):
            out_batch[rows] = model.forward(x_batch[rows], training=False, logits=False)
        filled += len(out_batch)
        callbacks.on_predict_batch_end(step, {"outputs": out_batch})
        if model.stop_predicting:
            break
    callbacks.on_predict_end()
    return filled


def check_finite_step(model, loss: float, epoch: int, step: int) -> None:
    """Raise NonFiniteLossError (before any update) for a NaN/inf loss or gradient."""
    what = None
    if not math.isfinite(loss):
        what = f"the loss is {loss}"
    elif not ops.all_finite(model.gradients):
        what = "a gradient is not finite"
    if what:
        raise NonFiniteLossError(
            f"training diverged at epoch {epoch + 1}, batch {step + 1}: {what}. The update "
            "was not applied; weights and optimizer state are those after the previous step "
            "(hint: lower the learning rate or check the inputs' scale)",
            epoch=epoch, batch=step)

