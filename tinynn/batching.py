"""The batches of ``fit``, ``evaluate`` and ``predict``: one step is one batch of the caller's
``batch_size`` (the last one partial), so a run takes ceil(N / batch_size) steps, as Keras's.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class EpochIterator:
    """Batches of same-length arrays, one pass per ``iter()``.

    ``arrays``: arrays of N samples each (axis 0). ``shuffle_rng``: a Generator to draw a new
    order (``shuffle_rng.permutation(N)``) at the start of each pass; without it, samples go in
    order and every batch is a view (so writing into a batch of an output array fills it).
    Iterating yields ``(step, batch)``: the step index from 0 and a tuple of the arrays' rows
    for this step, shapes (batch_size, ...), the last one (N mod batch_size, ...) if not 0.
    """

    def __init__(self, arrays: tuple[np.ndarray, ...], batch_size: int,
                 shuffle_rng: np.random.Generator | None = None):
        self.arrays = arrays
        self.num_samples = len(arrays[0])
        self.batch_size = batch_size
        self.shuffle_rng = shuffle_rng

    @property
    def num_batches(self) -> int:
        """Steps per pass: ceil(N / batch_size)."""
        return -(-self.num_samples // self.batch_size)

    def __iter__(self) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        order = (self.shuffle_rng.permutation(self.num_samples)
                 if self.shuffle_rng is not None else None)
        for step, rows in enumerate(row_slices(self.num_samples, self.batch_size)):
            if order is not None:
                rows = order[rows]
            yield step, tuple(array[rows] for array in self.arrays)


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
