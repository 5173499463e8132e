"""Batches from a ``PyDataset`` or a Python generator, for ``fit``, ``evaluate`` and
``predict``: the same interface as ``batching.EpochIterator`` (``num_batches``, and iterating
yields ``(step, batch)``), each batch checked and cast by ``model.prepare``.

- A ``PyDataset`` gives ``len(dataset)`` batches per pass (``steps``: the first ones), in index
  order or, with a shuffle Generator, in an order drawn from it (the model's, as for arrays).
  With ``workers`` > 1 a thread pool computes up to ``max_queue_size`` batches ahead; they are
  used in order, so results do not depend on ``workers``. An exception in a worker stops the
  pass with that exception once the pool has stopped; no thread is left running.
- A generator (any iterator) is read on across passes: a pass takes ``steps`` batches, or all
  that are left. When it runs out early, a warning says so (as Keras's) and ``exhausted`` is
  set: ``fit`` then stops.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import warnings
from collections.abc import Iterator

import numpy as np

from . import config
from .batching import ArrayGroup
from .errors import ArgumentError, ShapeError
from .utils.py_dataset import PyDataset

OUT_OF_DATA = ("Your input ran out of data; interrupting training. Make sure that your dataset "
               "or generator can generate at least `steps_per_epoch * epochs` batches.")


def is_dataset(x) -> bool:
    """Whether ``x`` is a PyDataset or an iterator (a generator), not arrays."""
    return isinstance(x, PyDataset) or (hasattr(x, "__next__") and hasattr(x, "__iter__"))


def kind_of(x) -> str:
    return "PyDataset" if isinstance(x, PyDataset) else "generator"


def refuse_arguments(x, **given) -> None:
    """Keras's error for arguments that a PyDataset or generator must carry itself."""
    for name, value in given.items():
        if value is not None:
            raise ArgumentError(f"When providing `x` as a {kind_of(x)}, `{name}` should not be "
                                f"passed. Instead, the {name} should be included as part of the "
                                f"{kind_of(x)}.")


class DatasetBatches:
    """The batches of ``source`` (module docstring) for ``model``; ``role`` is "fit",
    "evaluate" (batches of ``(x, y)``) or "predict" (``x`` alone, or the first of a tuple;
    each yielded batch is ``(x, out)`` with ``out`` a new array the loop fills, kept in
    ``outputs``)."""

    def __init__(self, model, source, role: str, steps: int | None = None,
                 shuffle_rng: np.random.Generator | None = None):
        self.model, self.source, self.role = model, source, role
        self.shuffle_rng = shuffle_rng
        self.exhausted = False
        self.outputs: list = []
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                                  or steps < 1):
            raise ArgumentError(f"steps expected a positive int or None, got {steps!r}")
        if isinstance(source, PyDataset):
            if source.use_multiprocessing:
                raise ArgumentError("PyDataset use_multiprocessing=True is not supported by "
                                    "tinynn: use workers=N threads (NumPy releases the GIL)")
            length = source.num_batches
            if not isinstance(length, int) or length < 1:
                raise ShapeError(f"{type(source).__name__} has length {length!r}: a PyDataset "
                                 "must hold at least one batch")
            self.num_batches = length if steps is None else min(steps, length)
        else:
            self._iterator = iter(source)
            self.num_batches = steps

    def __iter__(self) -> Iterator[tuple[int, tuple]]:
        raw = (self._dataset_batches() if isinstance(self.source, PyDataset)
               else self._generator_batches())
        for step, (index, batch) in enumerate(raw):
            yield step, self._prepared(index, batch)

    # -- sources ------------------------------------------------------------------------------
    def _dataset_batches(self):
        dataset = self.source
        order = (self.shuffle_rng.permutation(len(dataset)) if self.shuffle_rng is not None
                 else np.arange(len(dataset)))[:self.num_batches].tolist()
        dataset.on_epoch_begin()
        if dataset.workers > 1:
            yield from _prefetched(dataset, order, dataset.workers, dataset.max_queue_size)
        else:
            for index in order:
                yield index, dataset[index]
        dataset.on_epoch_end()

    def _generator_batches(self):
        steps = itertools.count() if self.num_batches is None else range(self.num_batches)
        taken = 0
        for index in steps:
            try:
                batch = next(self._iterator)
            except StopIteration:
                if self.num_batches is not None or taken == 0:
                    self.exhausted = True
                    if self.role == "fit":
                        warnings.warn(OUT_OF_DATA, stacklevel=2)
                return
            taken += 1
            yield index, batch

    # -- one batch ----------------------------------------------------------------------------
    def _prepared(self, index: int, batch) -> tuple:
        """``(x, y)`` checked and cast (``model.prepare``, errors naming the batch), or for
        predict ``(x, out)``."""
        if isinstance(batch, np.ndarray) or isinstance(batch, dict):
            batch = (batch,)
        if not isinstance(batch, (tuple, list)) or len(batch) not in (1, 2, 3):
            raise ArgumentError(f"batch {index} of the {kind_of(self.source)} expected x, (x,) "
                                f"or (x, y), got {type(batch).__name__}")
        if len(batch) == 3:
            raise ArgumentError(f"batch {index} of the {kind_of(self.source)} holds sample "
                                "weights (x, y, sample_weight), which tinynn does not support")
        name = f"x of batch {index}"
        if self.role == "predict":
            x, _ = self.model.prepare(batch[0], name=name)
            outs = [np.empty((len(x), *t.sample_shape), dtype=config.floatx())
                    for t in self.model.outputs]
            self.outputs.append(outs)
            return x, outs[0] if len(outs) == 1 else ArrayGroup(outs)
        if len(batch) != 2:
            raise ArgumentError(f"batch {index} of the {kind_of(self.source)} expected (x, y) "
                                f"for {self.role}, got {len(batch)} item")
        return self.model.prepare(batch[0], batch[1], name=name)


def _prefetched(dataset: PyDataset, order: list[int], workers: int, ahead: int):
    """``(index, dataset[index])`` for ``order``, computed by ``workers`` threads at most
    ``ahead`` batches ahead, yielded in order. The pool is shut down (its running batches
    finished, the queued ones cancelled) however the loop ends."""
    ahead = max(1, ahead)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                 thread_name_prefix="tinynn-pydataset")
    pending: dict[int, concurrent.futures.Future] = {}
    try:
        for position, index in enumerate(order):
            for later in order[position:position + ahead]:
                if later not in pending:
                    pending[later] = pool.submit(dataset.__getitem__, later)
            yield index, pending.pop(index).result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
