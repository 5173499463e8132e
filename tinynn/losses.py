"""Losses with Keras's names, reductions and numbers.

A loss maps targets and predictions of a batch to per-sample losses (the model reports their
mean, weighted by batch size over an epoch) and gives the gradient of the *batch mean* w.r.t.
the predictions. Cross-entropies also work from logits: with a softmax output layer the model
fuses softmax and cross-entropy, whose gradient w.r.t. the logits is ``(p - onehot) / N``;
this avoids the softmax Jacobian and stays finite for logits of 1e4.
"""

import numpy as np

from . import config, ops
from .errors import ArgumentError, LabelError, ShapeError


class Loss:
    """Base class. Subclasses implement ``prepare_targets``, ``per_sample`` and ``gradient``."""

    name = "loss"
    from_logits = False

    def __call__(self, y_true, y_pred) -> float:
        """Mean loss over the batch (Keras's "sum_over_batch_size")."""
        y_pred = np.asarray(y_pred)
        return float(np.mean(self.per_sample(self.prepare_targets(y_true, y_pred.shape), y_pred)))

    def prepare_targets(self, y, output_shape: tuple) -> np.ndarray:
        """Validate targets against the model's output shape ``(N, K)``; return them ready."""
        raise NotImplementedError

    def per_sample(self, y: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """Loss of each sample, shape (N,)."""
        raise NotImplementedError

    def gradient(self, y: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """Gradient of the batch-mean loss w.r.t. ``y_pred``, shape of ``y_pred``."""
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name}


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log(softmax(z)) over the last axis via log-sum-exp. Shape (N, K) -> (N, K)."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


class Crossentropy(Loss):
    """Shared math; subclasses differ only in how targets are given (labels or one-hot)."""

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def one_hot(self, y: np.ndarray, num_classes: int, dtype) -> np.ndarray:
        raise NotImplementedError

    def logits_per_sample_and_gradient(self, y, logits) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample loss (N,) and d(mean loss)/d(logits) (N, K), both from logits."""
        log_p = log_softmax(logits)
        target = self.one_hot(y, logits.shape[-1], logits.dtype)
        losses = -np.sum(target * log_p, axis=-1)
        dlogits = np.exp(log_p)
        dlogits -= target
        dlogits /= len(logits)
        return losses, dlogits

    def logits_per_sample(self, y, logits) -> np.ndarray:
        """Per-sample loss (N,) from logits (N, K), whatever ``from_logits`` says: the loss of a
        softmax output layer computed from its logits, without the gradient."""
        return -np.sum(self.one_hot(y, logits.shape[-1], logits.dtype) * log_softmax(logits),
                       axis=-1)

    def per_sample(self, y, y_pred):
        if self.from_logits:
            return self.logits_per_sample(y, y_pred)
        p, _ = self._clipped(y_pred)
        return -np.sum(self.one_hot(y, y_pred.shape[-1], y_pred.dtype) * np.log(p), axis=-1)

    def gradient(self, y, y_pred):
        if self.from_logits:
            return self.logits_per_sample_and_gradient(y, y_pred)[1]
        # Keras: p = clip(o / sum(o), eps, 1 - eps); L = -sum(t log p). Chain rule through both.
        p, inside = self._clipped(y_pred)
        target = self.one_hot(y, y_pred.shape[-1], y_pred.dtype)
        dp = np.where(inside, -target / p, 0).astype(y_pred.dtype) / len(y_pred)
        total = np.sum(y_pred, axis=-1, keepdims=True)
        return (dp - np.sum(dp * y_pred, axis=-1, keepdims=True) / total) / total

    @staticmethod
    def _clipped(y_pred):
        eps = config.epsilon()
        p = y_pred / np.sum(y_pred, axis=-1, keepdims=True)
        return np.clip(p, eps, 1 - eps), (p > eps) & (p < 1 - eps)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class SparseCategoricalCrossentropy(Crossentropy):
    """Cross-entropy with integer labels, shape (N,) or (N, 1), values in [0, K)."""

    name = "sparse_categorical_crossentropy"

    def prepare_targets(self, y, output_shape):
        y = np.asarray(y)
        num_classes = output_shape[-1]
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise LabelError(
                f"{self.name} expected integer labels of shape (N,), got shape {y.shape}"
                + (": for one-hot targets use categorical_crossentropy"
                   if y.ndim == 2 and y.shape[1] == num_classes else "")
            )
        check_target_count(y, output_shape, self.name)
        return check_class_labels(y, num_classes, self.name)

    def one_hot(self, y, num_classes, dtype):
        target = np.zeros((len(y), num_classes), dtype=dtype)
        target[np.arange(len(y)), y] = 1
        return target

    def logits_per_sample_and_gradient(self, y, logits):
        # Same math as the base class without building the one-hot matrix, in one pass.
        return self._from_logits(y, logits, with_gradient=True)

    def logits_per_sample(self, y, logits):
        # The training step's numbers: a batch evaluated gives the loss it was trained with.
        return self._from_logits(y, logits, with_gradient=False)[0]

    def _from_logits(self, y, logits, with_gradient: bool) -> tuple:
        """``ops.sparse_softmax_crossentropy`` on logits (N, K) and labels (N,)."""
        if logits.ndim != 2:
            raise ShapeError(f"{self.name} expected logits (N, K), got shape {logits.shape}")
        return ops.sparse_softmax_crossentropy(logits, np.asarray(y), with_gradient)


class CategoricalCrossentropy(Crossentropy):
    """Cross-entropy with one-hot (or probability) target rows, shape (N, K)."""

    name = "categorical_crossentropy"

    def prepare_targets(self, y, output_shape):
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != output_shape[-1]:
            raise LabelError(
                f"{self.name} expected one-hot targets of shape (N, {output_shape[-1]}), "
                f"got shape {y.shape}"
                + (": for integer labels use sparse_categorical_crossentropy"
                   if y.ndim == 1 else "")
            )
        check_target_count(y, output_shape, self.name)
        if y.dtype.kind not in "iuf":
            raise LabelError(f"{self.name} expected numeric one-hot targets, got dtype {y.dtype}")
        valid = np.isfinite(y).all(axis=1) & (y >= 0).all(axis=1) & (y <= 1).all(axis=1)
        valid &= np.abs(y.sum(axis=1) - 1) <= 1e-3
        if not valid.all():
            row = int(np.argmin(valid))
            raise LabelError(
                f"{self.name} expected one-hot rows (values in [0, 1] summing to 1), "
                f"row {row} is {y[row].tolist()}"
            )
        return y

    def one_hot(self, y, num_classes, dtype):
        return y.astype(dtype, copy=False)


class MeanSquaredError(Loss):
    """mean((y_pred - y)**2) over the last axis, then over the batch. Targets: shape of y_pred."""

    name = "mean_squared_error"

    def prepare_targets(self, y, output_shape):
        y = np.asarray(y)
        if y.ndim == 1 and tuple(output_shape[1:]) == (1,):
            y = y[:, None]  # (N,) targets for a single output unit
        if y.shape[1:] != tuple(output_shape[1:]):
            raise ShapeError(
                f"{self.name} expected targets of shape (N, "
                f"{', '.join(map(str, output_shape[1:]))}) like the model's output, got "
                f"{y.shape}: targets must match exactly (no broadcasting)"
            )
        check_target_count(y, output_shape, self.name)
        if y.dtype.kind not in "iuf":
            raise LabelError(f"{self.name} expected numeric targets, got dtype {y.dtype}")
        if not np.isfinite(y).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(y))[0])
            raise LabelError(f"{self.name} targets must be finite, y{list(bad)} is {y[bad]}")
        return y

    def per_sample(self, y, y_pred):
        diff = y_pred - y.astype(y_pred.dtype, copy=False)
        return np.mean((diff * diff).reshape(len(diff), -1), axis=-1)

    def gradient(self, y, y_pred):
        return (2.0 / y_pred.size) * (y_pred - y.astype(y_pred.dtype, copy=False))


def check_target_count(y: np.ndarray, output_shape: tuple, who: str) -> None:
    """Raise ShapeError unless there is one target per prediction (no silent broadcasting)."""
    if len(y) != output_shape[0]:
        raise ShapeError(f"{who} expected targets for {output_shape[0]} samples like the "
                         f"predictions, got {len(y)}")


def check_class_labels(y: np.ndarray, num_classes: int, who: str) -> np.ndarray:
    """Return labels (N,) as intp after checking they are integral and in [0, num_classes)."""
    if y.dtype.kind not in "iuf":
        raise LabelError(f"{who} expected integer class labels, got dtype {y.dtype}")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.argmax(bad))
            raise LabelError(f"{who} expected integral labels, label {i} is {y[i].item()!r}")
    out_of_range = (y < 0) | (y >= num_classes)
    if out_of_range.any():
        i = int(np.argmax(out_of_range))
        raise LabelError(
            f"{who} expected labels in [0, {num_classes - 1}] for {num_classes} outputs, "
            f"label {i} is {y[i].item()!r}"
        )
    return y.astype(np.intp, copy=False)


#: The strings ``keras.losses.get`` accepts for these losses (case-sensitive): function names,
#: class names, and Keras's aliases "mse" and "MSE".
_ALIASES = {name: cls for cls in (SparseCategoricalCrossentropy, CategoricalCrossentropy,
                                  MeanSquaredError) for name in (cls.name, cls.__name__)}
_ALIASES |= {"mse": MeanSquaredError, "MSE": MeanSquaredError}


def get(identifier) -> Loss:
    """Return a Loss from a Keras name (``"mse"``, ``"MeanSquaredError"``...) or a Loss
    instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier in _ALIASES:
        return _ALIASES[identifier]()
    raise ArgumentError(f"unknown loss {identifier!r}: expected one of {sorted(_ALIASES)} "
                      "or a Loss instance")
