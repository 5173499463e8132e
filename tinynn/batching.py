"""The batches of ``fit``, ``evaluate`` and ``predict``: one step is one batch of the caller's
``batch_size`` (the last one partial), so a run takes ceil(N / batch_size) steps, as Keras's.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .errors import DTypeError
from .validation import float_array


class EpochIterator:
    """Batches of same-length arrays, one pass per ``iter()``.

    ``arrays``: arrays of N samples each (axis 0), ``DiskArray`` included. ``shuffle_rng``: a
    Generator to draw a new order (``shuffle_rng.permutation(N)``) at the start of each pass,
    or with ``by_batch`` (``fit(shuffle="batch")``) an order of the batches, each batch then
    being consecutive rows; without it, samples go in order and every batch is a view (so
    writing into a batch of an output array fills it). Iterating yields ``(step, batch)``: the
    step index from 0 and a tuple of the arrays' rows for this step, shapes (batch_size, ...),
    the last one (N mod batch_size, ...) if not 0.
    """

    exhausted = False  # arrays never run out (DatasetBatches' generators may)

    def __init__(self, arrays: tuple[np.ndarray, ...], batch_size: int,
                 shuffle_rng: np.random.Generator | None = None, by_batch: bool = False):
        self.arrays = arrays
        self.num_samples = len(arrays[0])
        self.batch_size = batch_size
        self.shuffle_rng = shuffle_rng
        self.by_batch = by_batch

    @property
    def num_batches(self) -> int:
        """Steps per pass: ceil(N / batch_size)."""
        return -(-self.num_samples // self.batch_size)

    def __iter__(self) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        slices = list(row_slices(self.num_samples, self.batch_size))
        if self.shuffle_rng is not None and self.by_batch:
            slices = [slices[i] for i in self.shuffle_rng.permutation(len(slices))]
        order = (self.shuffle_rng.permutation(self.num_samples)
                 if self.shuffle_rng is not None and not self.by_batch else None)
        for step, rows in enumerate(slices):
            if order is not None:
                rows = order[rows]
            yield step, tuple(take(array, rows) for array in self.arrays)


def take(array, rows):
    """``array[rows]`` as the arrays a step computes with: a ``DiskArray``'s rows read and
    cast, each array of an ``ArrayGroup`` likewise."""
    if isinstance(array, DiskArray):
        return array.read(rows)
    if isinstance(array, ArrayGroup):
        return ArrayGroup([take(a, rows) for a in array.arrays])
    return array[rows]


class DiskArray:
    """A NumPy memmap used as a model input without loading it: slicing stays lazy, and
    ``read(rows)`` (one batch) reads those rows, casts them to ``dtype`` and refuses NaN or
    infinity, so a file larger than memory trains (``fit(shuffle="batch")`` reads each batch
    as consecutive rows). ``shape``, ``ndim``, ``dtype`` and ``len`` are those of the cast
    array."""

    def __init__(self, memmap: np.ndarray, dtype, name: str):
        self.memmap, self.dtype, self.name = memmap, np.dtype(dtype), name
        self.shape, self.ndim = memmap.shape, memmap.ndim

    def __len__(self) -> int:
        return len(self.memmap)

    def __getitem__(self, rows) -> DiskArray:
        return DiskArray(self.memmap[rows], self.dtype, self.name)

    def read(self, rows=slice(None)) -> np.ndarray:
        return float_array(np.array(self.memmap[rows]), self.dtype, self.name)

    def __array__(self, dtype=None, copy=None):
        array = self.read()
        return array if dtype is None else array.astype(dtype)


def model_input(x, dtype, name: str = "x"):
    """``float_array(x, dtype, name)``, except that a NumPy memmap (e.g. ``np.load(path,
    mmap_mode="r")``) becomes a ``DiskArray``, read, cast and checked batch by batch
    instead of loaded."""
    if isinstance(x, np.memmap):
        if x.dtype.kind not in "iuf":
            raise DTypeError(f"{name} expected real numbers (integer or float), got dtype "
                             f"{x.dtype}")
        return DiskArray(x, dtype, name)
    return float_array(x, dtype, name)


def row_slices(num_rows: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` rows covering ``num_rows`` rows: how a step is
    split into batches, and an inference batch into chunks that fit in memory."""
    for start in range(0, num_rows, size):
        yield slice(start, min(num_rows, start + size))


class ArrayGroup:
    """The arrays of a model's several inputs, targets or outputs, sliced together by rows
    (``len``, ``[rows]``, ``[rows] = values``), so the batch loops treat them as one array."""

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = list(arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, rows) -> ArrayGroup:
        return ArrayGroup([a[rows] for a in self.arrays])

    def __setitem__(self, rows, values: list[np.ndarray]) -> None:
        for array, value in zip(self.arrays, values):
            array[rows] = value


def as_list(value) -> list:
    """An ``ArrayGroup``'s arrays, a list as it is, or ``[value]``."""
    if isinstance(value, ArrayGroup):
        return value.arrays
    return value if isinstance(value, list) else [value]
