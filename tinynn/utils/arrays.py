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


def split_dataset(dataset, left_size=None, right_size=None, shuffle: bool = False,
                  seed: int | None = None):
    """Split an array, or a tuple or list of same-length arrays, into a left and a right part of
    the same structure, as ``keras.utils.split_dataset`` (which returns tf.data datasets):
    ``left_size``/``right_size`` an int (samples) or a float in (0, 1) (a fraction, rounded),
    None for the complement of the other. With ``shuffle``, the samples are permuted first by
    a Generator seeded with ``seed`` (tinynn's seed source without one)."""
    arrays = [np.asarray(a) for a in dataset] if isinstance(dataset, (tuple, list)) \
        else [np.asarray(dataset)]
    total = len(arrays[0])
    if any(len(a) != total for a in arrays):
        raise ArgumentError(f"split_dataset expected arrays of the same length, got "
                            f"{[len(a) for a in arrays]}")
    left, right = _split_sizes(left_size, right_size, total)
    order = np.arange(total)
    if shuffle:
        from ..config import draw_seed
        order = np.random.default_rng(draw_seed() if seed is None else seed).permutation(total)
    parts = [[a[order[:left]] for a in arrays], [a[order[left:left + right]] for a in arrays]]
    if isinstance(dataset, (tuple, list)):
        return tuple(type(dataset)(part) for part in parts)
    return parts[0][0], parts[1][0]


def _split_sizes(left, right, total: int) -> tuple[int, int]:
    """Keras's rules for the two sizes (``_rescale_dataset_split_sizes``)."""
    sizes = []
    for value, side in ((left, "left"), (right, "right")):
        if value is None:
            sizes.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, (Integral, float)):
            raise ArgumentError(f"`{side}_size` expected an int, a float or None, got "
                                f"{value!r}")
        if (isinstance(value, Integral) and not 0 < value < total) or (
                isinstance(value, float) and not 0 < value < 1):
            raise ArgumentError(f"`{side}_size` should be either a positive integer smaller "
                                f"than {total}, or a float within the range `[0, 1]`. "
                                f"Received: {side}_size={value}")
        sizes.append(round(value * total) if isinstance(value, float) else int(value))
    if sizes == [None, None]:
        raise ArgumentError("split_dataset expected left_size or right_size")
    if isinstance(left, float) and isinstance(right, float) and left + right > 1:
        raise ArgumentError("The sum of `left_size` and `right_size` is greater than 1. It "
                            "must be less than or equal to 1.")
    left, right = (total - sizes[1] if sizes[0] is None else sizes[0],
                   total - sizes[0] if sizes[1] is None else sizes[1])
    if left + right > total or not left or not right:
        raise ArgumentError(f"split_dataset of {total} samples into {left} and {right}: both "
                            f"must be non-empty and at most {total} together")
    return left, right
