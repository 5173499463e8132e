"""The step loops behind ``Sequential.fit``, ``evaluate`` and ``predict``.

Each loop walks an ``EpochIterator`` (one step per batch of the caller's ``batch_size``) and
calls the callbacks' hooks with Keras 3's names and logs. Inference (``test_loop``,
``predict_loop``) runs the layers forward with ``training=False`` only, so nothing is kept for a
backward pass and no gradient is computed; a step's batch is split into chunks of at most
``chunk_rows`` samples to bound the activations' memory, which changes neither the results nor
the number of steps.

Every loop takes a ``Communicator`` (``tinynn.distribution``): with one process it does nothing
and a training step is ``model.compute_loss_and_gradients`` on the whole batch; with several,
each step computes this rank's shard of the global batch and sums over the ranks
(``data_parallel_step``), so that every rank sees the global gradient, logs and predictions.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from . import ops
from .batching import EpochIterator, as_list, row_slices
from .distribution.communicator import Communicator
from .distribution.sharding import shard_rows, shard_sizes
from .errors import NonFiniteLossError


class RunningLogs:
    """Per-sample means over the samples seen so far of a model's log sums
    (``tinynn.models.objectives``: the loss, each output's loss, correct predictions), plus a
    constant ``penalty`` on the loss (the regularization of fixed weights)."""

    def __init__(self, objectives, penalty: float = 0.0):
        self.objectives = objectives
        self.penalty = penalty
        self.sums = np.zeros(len(objectives.log_names()))
        self.seen = 0

    def add(self, sums: np.ndarray, count: int) -> None:
        """Count ``count`` samples and their log sums."""
        self.seen += count
        self.sums += sums

    def logs(self) -> dict:
        """``{"loss": mean, ...}`` with Keras's names; empty before any sample."""
        if not self.seen:
            return {}
        return self.objectives.logs(self.sums, self.seen, self.penalty)


def train_epoch(model, batches: EpochIterator, epoch: int, guard, callbacks,
                comm: Communicator) -> dict:
    """One epoch of training steps; stops early after a step that set ``model.stop_training``
    (on any rank). Raises NonFiniteLossError before applying a step whose loss or gradient is
    not finite. Returns the epoch's logs (per-sample means over the steps taken)."""
    running = RunningLogs(model.objectives)
    for step, (x_batch, y_batch) in batches:
        callbacks.on_train_batch_begin(step)
        if comm.size == 1:
            loss, out = model.compute_loss_and_gradients(x_batch, y_batch)
            sums = model.objectives.step_sums(loss, as_list(y_batch), as_list(out),
                                              model.fused_outputs)
        else:
            sums = data_parallel_step(model, comm, x_batch, y_batch)
            loss = sums[0] / len(x_batch)
        check_finite_step(model, loss, epoch, step)
        with guard.critical():
            model.optimizer.apply(model.parameters, model.gradients)
        running.add(sums, len(x_batch))
        if callbacks.calls("on_train_batch_end"):
            callbacks.on_train_batch_end(step, running.logs())
        if comm.any(model.stop_training, what="the stop_training check"):
            model.stop_training = True
            break
    return running.logs()


def data_parallel_step(model, comm: Communicator, x_batch: np.ndarray,
                       y_batch: np.ndarray) -> np.ndarray:
    """This rank's part of a training step on a global batch of n samples: forward and
    backward on its shard of n_r samples with the output gradient weighted by n_r / n (and the
    regularizers' gradient on rank 0 only), then one in-place sum over the ranks of the flat
    gradient buffer, and of the states weighted the same way (BatchNormalization's moving
    statistics). Afterwards every rank holds the batch-mean gradient of the global batch.
    Returns the global log sums (the loss sum, regularization included, first)."""
    total = len(x_batch)
    rows = shard_rows(total, comm.size, comm.rank)
    count = rows.stop - rows.start
    sums = np.zeros(len(model.objectives.log_names()))
    with sharded_randomness(model, total, rows):
        if count:
            sums[:] = _shard_gradients(model, x_batch[rows], y_batch[rows], count / total,
                                       comm.rank == 0)
        else:  # nothing to compute, but the random layers' Generator advances like the others'
            _draw_randomness_only(model)
            model.gradients[...] = 0
    model.states *= model.states.dtype.type(count / total)
    comm.sum_in_place(model.gradients, model.states, sums, what="the gradient all-reduce")
    return sums


def _shard_gradients(model, x, y, weight: float, regularization: bool) -> np.ndarray:
    """Fill ``model.gradients`` with ``weight`` times the shard's batch-mean gradient (plus
    the regularizers' if ``regularization``). Returns the shard's log sums (its loss sum,
    regularization included, first); a non-finite loss skips the backward (the summed loss
    then stops every rank)."""
    fused = model.fused_outputs
    outs, ys = as_list(model.forward(x, training=True, logits=fused)), as_list(y)
    with np.errstate(over="ignore", invalid="ignore"):
        per_output, _, douts = model.objectives.per_sample_and_gradients(ys, outs, fused)
        sums = model.objectives.sums_from(per_output, ys, outs)
        sums[0] += model.regularization_loss() * len(x)
    if math.isfinite(sums[0]):
        douts = [dout * dout.dtype.type(weight) for dout in douts]
        model.backward(douts if len(douts) > 1 else douts[0], fused,
                       regularization=regularization)
    else:
        model.release_caches()
    return sums


@contextlib.contextmanager
def sharded_randomness(model, global_rows: int, rows: slice):
    """Within the block, layers with ``uses_training_rng`` draw for the whole global batch and
    keep ``rows`` (``Layer.batch_shard``)."""
    layers = [layer for layer in model.leaf_layers if layer.uses_training_rng]
    for layer in layers:
        layer.batch_shard = (global_rows, rows)
    try:
        yield
    finally:
        for layer in layers:
            layer.batch_shard = None


def _draw_randomness_only(model) -> None:
    """Run each random layer's training forward on an empty input (an empty shard)."""
    for layer in model.leaf_layers:
        if layer.uses_training_rng:
            layer.forward(np.zeros((0, *layer.input_shape), model.parameters.dtype),
                          training=True)
            layer.release_cache()


def test_loop(model, batches: EpochIterator, callbacks, chunk_rows: int,
              comm: Communicator) -> dict:
    """Loss (with the regularization penalty, as Keras) and metrics with training off, between
    ``on_test_begin`` and ``on_test_end``; each rank computes its shard of every batch and the
    sums are added over the ranks. Stops early when ``model.stop_evaluating`` is set (on any
    rank). Returns the logs."""
    model.stop_evaluating = False
    fused = model.fused_outputs
    running = RunningLogs(model.objectives, model.regularization_loss())
    callbacks.on_test_begin()
    for step, (x_batch, y_batch) in batches:
        callbacks.on_test_batch_begin(step)
        rows = shard_rows(len(x_batch), comm.size, comm.rank)
        x_shard, y_shard = x_batch[rows], y_batch[rows]
        sums = np.zeros(len(running.sums))
        for chunk in row_slices(len(x_shard), chunk_rows):
            outs = as_list(model.forward(x_shard[chunk], training=False, logits=fused))
            sums += model.objectives.sums(as_list(y_shard[chunk]), outs, fused)
        comm.sum_in_place(sums, what="the evaluation sums")
        running.add(sums, len(x_batch))
        if callbacks.calls("on_test_batch_end"):
            callbacks.on_test_batch_end(step, running.logs())
        if comm.any(model.stop_evaluating, what="the stop_evaluating check"):
            model.stop_evaluating = True
            break
    logs = running.logs()
    callbacks.on_test_end(logs)
    return logs


def predict_loop(model, batches: EpochIterator, callbacks, chunk_rows: int,
                 comm: Communicator) -> int:
    """Fill the second array of ``batches`` (unshuffled, so its batches are views) with the
    outputs for the first, training off, between ``on_predict_begin`` and ``on_predict_end``;
    each rank computes its shard of every batch and gathers the others'. Stops early when
    ``model.stop_predicting`` is set (on any rank). Returns the number of rows filled."""
    model.stop_predicting = False
    filled = 0
    callbacks.on_predict_begin()
    for step, (x_batch, out_batch) in batches:
        callbacks.on_predict_batch_begin(step)
        rows = shard_rows(len(x_batch), comm.size, comm.rank)
        x_shard, out_shard = x_batch[rows], out_batch[rows]
        for chunk in row_slices(len(x_shard), chunk_rows):
            out_shard[chunk] = model.forward(x_shard[chunk], training=False, logits=False)
        for part in as_list(out_batch):
            comm.gather_rows(part, shard_sizes(len(x_batch), comm.size),
                             what="gathering the predictions")
        filled += len(out_batch)
        callbacks.on_predict_batch_end(step, {"outputs": model.structured(as_list(out_batch))})
        if comm.any(model.stop_predicting, what="the stop_predicting check"):
            model.stop_predicting = True
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

