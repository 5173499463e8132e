"""``to_categorical`` and ``normalize``, as Keras 3's ``keras.utils`` computes them for NumPy
arrays (the same shapes, dtypes and numbers), with errors for input Keras would mis-handle."""

from __future__ import annotations

from numbers import Integral

import numpy as np

from ..errors import ArgumentError, LabelError


def to_categorical(x, num_classes: int | None = None) -> np.ndarray:
    """One-hot rows for integer class labels: shape ``x.shape + (num_classes,)`` (a trailing
    axis of 1 dropped first, as Keras does), float64 as Keras returns for NumPy input.
    ``num_classes`` defaults to ``max(x) + 1``. E.g. ``to_categorical([0, 2])`` is
    ``[[1, 0, 0], [0, 0, 1]]``."""
    labels = np.asarray(x)
    if labels.dtype.kind == "f" and not np.array_equal(labels, np.round(labels)):
        raise LabelError(f"to_categorical expected integer class labels, got {labels.dtype} "
                         "values with fractions")
    if labels.dtype.kind not in "iuf":
        raise LabelError(f"to_categorical expected integer class labels, got dtype "
                         f"{labels.dtype}")
    labels = labels.astype(np.int64)
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = labels.reshape(-1)
    if num_classes is None:
        num_classes = int(flat.max()) + 1 if flat.size else 0
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 1:
        raise ArgumentError(f"to_categorical num_classes expected a positive int, got "
                            f"{num_classes!r}")
    bad = (flat < 0) | (flat >= num_classes)
    if bad.any():
        raise LabelError(f"to_categorical expected labels in [0, {num_classes}), got "
                         f"{int(flat[np.flatnonzero(bad)[0]])}")
    categorical = np.zeros((flat.size, int(num_classes)))
    categorical[np.arange(flat.size), flat] = 1
    return categorical.reshape(*shape, int(num_classes))


def normalize(x, axis: int = -1, order: int = 2) -> np.ndarray:
    """``x`` divided by its ``order``-norm along ``axis`` (all-zero slices left as they are),
    a new array of ``x``'s shape, as ``keras.utils.normalize`` (which, for ``axis=0``, divides
    by the norms laid along the last axis instead: docs/keras-parity.md)."""
    if isinstance(order, bool) or not isinstance(order, Integral) or order < 1:
        raise ArgumentError(f"Argument `order` must be an int >= 1. Received: order={order!r}")
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, -1 if axis is None else axis)  # Keras: axis 0 as -1
