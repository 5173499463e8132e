"""``PyDataset`` (Keras 3's ``keras.utils.PyDataset``, alias ``Sequence``): batches computed
by Python code, for data that is not one array in memory.

Subclass it, call ``super().__init__(**kwargs)``, and implement ``__len__`` (the number of
batches) and ``__getitem__(index)`` (batch ``index``: ``x``, ``(x,)``, or ``(x, y)``);
optionally ``on_epoch_begin`` and ``on_epoch_end``. ``fit``, ``evaluate`` and ``predict`` take
one directly (``tinynn.data_adapters``): with ``workers`` > 1, that many threads compute the
next batches (at most ``max_queue_size`` ahead) while the model trains, and the batches still
arrive in index order, so the result does not depend on the number of workers.
"""

from __future__ import annotations

import warnings

from ..errors import ArgumentError


class PyDataset:
    """Base class of datasets computed batch by batch (module docstring).

    ``workers``: threads computing batches ahead (1: in the training thread, as it is
    asked for). ``use_multiprocessing``: not supported by tinynn (True raises; threads share
    the model's memory and NumPy releases the GIL). ``max_queue_size``: batches computed ahead
    at most.
    """

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _settings_or_warn(self) -> None:
        """Keras's defaults, with Keras's warning, for a subclass that skipped our __init__."""
        missing = [name for name in ("_workers", "_use_multiprocessing", "_max_queue_size")
                   if not hasattr(self, name)]
        if missing:
            self._workers = getattr(self, "_workers", 1)
            self._use_multiprocessing = getattr(self, "_use_multiprocessing", False)
            self._max_queue_size = getattr(self, "_max_queue_size", 10)
            warnings.warn("Your `PyDataset` class should call `super().__init__(**kwargs)` in "
                          "its constructor. `**kwargs` can include `workers`, "
                          "`use_multiprocessing`, `max_queue_size`. Do not pass these arguments "
                          "to `fit()`, as they will be ignored.", stacklevel=3)

    @property
    def workers(self) -> int:
        self._settings_or_warn()
        return self._workers

    @workers.setter
    def workers(self, value: int) -> None:
        self._workers = value

    @property
    def use_multiprocessing(self) -> bool:
        self._settings_or_warn()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        self._use_multiprocessing = value

    @property
    def max_queue_size(self) -> int:
        self._settings_or_warn()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value: int) -> None:
        self._max_queue_size = value

    def __getitem__(self, index: int):
        """Batch ``index``: ``x``, ``(x,)`` or ``(x, y)``."""
        raise NotImplementedError

    @property
    def num_batches(self) -> int | None:
        """The number of batches (``len(self)``)."""
        if hasattr(self, "__len__"):
            return len(self)
        raise ArgumentError(f"{type(self).__name__} expected a __len__ (the number of "
                            "batches); tinynn does not train on infinite PyDatasets: give fit "
                            "a generator and steps_per_epoch instead")

    def on_epoch_begin(self) -> None:
        """Called at the start of every pass over the dataset."""

    def on_epoch_end(self) -> None:
        """Called at the end of every pass over the dataset."""


Sequence = PyDataset  # Keras's older name
