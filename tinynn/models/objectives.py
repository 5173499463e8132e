"""What ``compile`` sets for each output of a model, with Keras 3's forms and log names.

``loss``: one loss for every output, a list (one per output, None for none) or a dict by
output name; ``loss_weights``: a list or dict of floats (default 1); ``metrics``: for one
output a list (``["accuracy"]``), for several a dict by output name or a list with one entry
(a metric, a list of them, or None) per output. The loss a model minimises is
``sum(weight_i * loss_i)`` plus the regularization; logs are named as Keras 3.15 names them:
``loss`` and ``accuracy`` for one output; ``loss``, ``<output>_loss`` (unweighted) and
``<output>_accuracy`` for several.

A batch's logs are kept as one vector of sums over its samples (``sums``): the total loss,
then each output's loss (several outputs only), then each output's correct predictions per
accuracy metric. Sums add over batches and over data-parallel ranks.
"""

from __future__ import annotations

import numpy as np

from .. import losses
from ..errors import ArgumentError
from ..metrics import count_correct

METRIC_NAMES = ("accuracy", "acc")


class Objectives:
    """Per output (``names``): its loss (or None), weight and accuracy metric names."""

    def __init__(self, names: list[str], output_losses: list, weights: list[float],
                 metrics: list[list[str]]):
        self.names, self.losses, self.weights, self.metrics = names, output_losses, weights, \
            metrics
        self._log_names = self._names_of_logs()

    @classmethod
    def from_compile(cls, names: list[str], loss, loss_weights=None, metrics=None):
        """Parse ``compile``'s arguments for outputs ``names`` (Keras's forms, module
        docstring); ArgumentError naming what does not fit."""
        count = len(names)
        output_losses = [None if item is None else losses.get(item)
                         for item in _per_output(loss, names, "loss")]
        if all(item is None for item in output_losses):
            raise ArgumentError(f"compile expected a loss for at least one of the outputs "
                                f"{names}, got {loss!r}")
        weights = _per_output(1.0 if loss_weights is None else loss_weights, names,
                              "loss_weights", default=1.0)
        for weight in weights:
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise ArgumentError(f"compile loss_weights expected numbers, got {loss_weights!r}")
        if metrics is None:
            per_output = [[]] * count
        elif count == 1 and isinstance(metrics, (list, tuple)):
            per_output = [list(metrics)]  # one output: its list of metrics
        else:
            per_output = _per_output(metrics, names, "metrics", default=[])
        per_output = [[] if item is None else [item] if isinstance(item, str) else list(item)
                      for item in per_output]
        for item in (m for group in per_output for m in group):
            if item not in METRIC_NAMES:
                raise ArgumentError(f"unknown metric {item!r}: expected one of {METRIC_NAMES}")
        return cls(list(names), output_losses, [float(w) for w in weights], per_output)

    # -- log names and sums ---------------------------------------------------------------------
    @property
    def several(self) -> bool:
        return len(self.names) > 1

    def log_names(self) -> list[str]:
        """The keys of a step's logs, in Keras's order (evaluate returns them in it)."""
        return list(self._log_names)

    def _names_of_logs(self) -> list[str]:
        names = ["loss"]
        if self.several:
            names += [f"{name}_loss" for name, loss in zip(self.names, self.losses) if loss]
        return names + [self._metric_key(name, metric) for name, group in
                        zip(self.names, self.metrics) for metric in group]

    def _metric_key(self, name: str, metric: str) -> str:
        return f"{name}_{metric}" if self.several else metric

    def logs(self, sums: np.ndarray, seen: int, penalty: float = 0.0) -> dict:
        """Per-sample means of ``sums`` over ``seen`` samples; ``penalty`` (a constant
        regularization) is added to the total loss."""
        values = sums / seen
        logs = dict(zip(self._log_names, map(float, values)))
        logs["loss"] += penalty
        return logs

    def sums(self, y: list, outs: list, fused: list[bool]) -> np.ndarray:
        """The log sums of one batch (outputs in training or inference, logits where
        ``fused``): total weighted loss, each output's loss, correct counts."""
        per_output = [self._per_sample(loss, t, out, f) if loss else None
                      for loss, t, out, f in zip(self.losses, y, outs, fused)]
        return self.sums_from(per_output, y, outs)

    def sums_from(self, per_output: list, y: list, outs: list) -> np.ndarray:
        """``sums`` from per-sample losses already computed (None for an output without)."""
        totals = [float(np.sum(p, dtype=np.float64)) for p in per_output if p is not None]
        weights = [w for w, p in zip(self.weights, per_output) if p is not None]
        weighted = sum((w * t for w, t in zip(weights, totals)), 0.0)
        values = [weighted] + (totals if self.several else [])
        values += [_correct(t, out) for t, out, group in zip(y, outs, self.metrics)
                   for _ in group]
        return np.array(values, dtype=np.float64)

    def step_sums(self, loss: float, y: list, outs: list, fused: list[bool]) -> np.ndarray:
        """The log sums of a training step whose batch-mean total loss (regularization
        included) was ``loss``: each output's loss is computed again from its outputs only when
        there are several."""
        sums = (self.sums(y, outs, fused) if self.several
                else self.sums_from([None], y, outs))
        sums[0] = loss * len(y[0])
        return sums

    @staticmethod
    def _per_sample(loss, y, out, fused: bool):
        return loss.logits_per_sample(y, out) if fused else loss.per_sample(y, out)

    def per_sample_and_gradients(self, y: list, outs: list, fused: list[bool]) -> tuple:
        """Per-sample losses of each output (None where no loss), the weighted total (N,) and
        d(total mean loss)/d(output) of each output (zeros where no loss)."""
        per_output, douts = [], []
        for loss, weight, t, out, f in zip(self.losses, self.weights, y, outs, fused):
            if loss is None:
                per_output.append(None)
                douts.append(np.zeros_like(out))
                continue
            if f:
                per_sample, dout = loss.logits_per_sample_and_gradient(t, out)
            else:
                per_sample, dout = loss.per_sample(t, out), loss.gradient(t, out)
            per_output.append(per_sample)
            douts.append(dout if weight == 1.0 else dout * dout.dtype.type(weight))
        weighted = [p if w == 1.0 else p * w for p, w in zip(per_output, self.weights)
                    if p is not None]
        total = weighted[0] if len(weighted) == 1 else sum(weighted[1:], weighted[0])
        return per_output, total, douts

    def get_config(self) -> dict:
        """For tinynn's files: losses (configs or None), weights, metrics per output."""
        return {"losses": [None if loss is None else loss.get_config() for loss in self.losses],
                "loss_weights": list(self.weights), "metrics": [list(m) for m in self.metrics]}


def _correct(y: np.ndarray, out: np.ndarray) -> int:
    """``count_correct`` of targets the model prepared: integer labels (N,) need no checks."""
    if y.ndim == 1 and out.ndim == 2 and y.dtype.kind in "iu":
        return int(np.count_nonzero(out.argmax(axis=1) == y))
    return count_correct(y, out)


def _per_output(value, names: list[str], what: str, default=None) -> list:
    """``value`` for each output: a dict by output name (missing names get ``default``), a
    list or tuple of one entry per output (for one output, a one-entry list is accepted too),
    or one value for all of them."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ArgumentError(f"compile {what} names {unknown}, expected output names {names}")
        return [value.get(name, default) for name in names]
    if isinstance(value, (list, tuple)) and (len(names) > 1 or len(value) == 1):
        if len(value) != len(names):
            raise ArgumentError(f"compile {what} expected one entry per output {names}, got "
                                f"{len(value)}: {value!r}")
        return list(value)
    return [value] * len(names)
