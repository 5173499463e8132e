"""Data-parallel training across MPI processes, with Keras 3's ``keras.distribution`` names.

    import tinynn as tn
    tn.distribution.set_distribution(tn.distribution.DataParallel())
    model.fit(x, y, batch_size=32, epochs=20)   # unchanged

    mpiexec -n 2 python -m mpi4py script.py     # or: srun -n 8 python -m mpi4py script.py

The same script runs with one process (where a ``DataParallel`` changes nothing) or N. Every
rank passes the same global arrays; while a ``DataParallel`` is set:

- **Steps.** Each global batch of n rows is split into contiguous shards (``shard_rows``, sizes
  differing by at most one). Each rank runs forward and backward on its shard with the output
  gradient weighted by n_r / n, then one in-place all-reduce (sum) of the flat float32 gradient
  buffer gives every rank the batch-mean gradient of the whole batch, an unequal last batch
  included; the regularizers' gradient is added once (by rank 0). Loss and accuracy sums go
  through a small float64 all-reduce, so callbacks and progress see the global metrics. A
  non-finite loss or gradient is found in the summed values, so every rank raises
  NonFiniteLossError at the same step.
- **Start.** ``fit`` checks that every rank was called like rank 0 (same model, arguments and
  data, by checksum), then copies rank 0's weights, optimizer state and Generators to every
  rank: with any seeds, all ranks shuffle alike and stay bitwise identical (checked by a
  checksum after every epoch). ``evaluate`` and ``predict`` check their call and take rank 0's
  weights the same way.
- **Dropout.** A layer with ``uses_training_rng`` learns the step's global batch through its
  ``batch_shard`` attribute, ``(global_rows, rows)``; Dropout draws the mask for the whole
  global batch and keeps its rows, so each sample gets the mask one process would give it.
- **BatchNormalization.** Batch statistics are the shard's (as Keras's default, non-synchronized
  BatchNormalization on several replicas), so training differs from one process; the moving
  statistics are averaged across ranks, weighted by n_r / n, after every step.
- **Validation and evaluate** shard each batch and sum the loss and accuracy over the ranks:
  the results equal one process's (up to summation order). **predict** shards each batch and
  gathers the outputs (``Allgatherv``), so every rank returns every prediction.
- **Callbacks.** Callbacks with ``rank_zero_only`` (ProgbarLogger, ModelCheckpoint,
  CSVLogger) run on rank 0 alone; the others (History, EarlyStopping,
  LearningRateScheduler, yours) run on every rank with the same global logs, and a stop
  requested on any rank stops every rank after the same batch.
- **Threads.** ``initialize`` limits each rank's BLAS and numba threads to its share of its
  machine's cores.
- **Failures.** Every collective has a deadline (``TINYNN_COLLECTIVE_TIMEOUT``, default 300 s)
  and raises DistributedError when it passes; an uncaught exception on any rank ends the
  whole job (``python -m mpi4py``, or the hook ``initialize`` installs): never a hang.

With W ranks the gradient sums run in another order than in one process, so weights agree with a
one-process run on the same global batches to about 1e-5 in float32, not bitwise; with the same
seed, W and thread counts, runs are bitwise reproducible.
"""

from .data_parallel import (
    DataParallel,
    DeviceMesh,
    active_communicator,
    distribution,
    set_distribution,
)
from .processes import (
    get_device_count,
    initialize,
    list_devices,
    rank,
    thread_counts,
    world_size,
)
from .sharding import shard_rows, shard_sizes, shard_weight

__all__ = [
    "DataParallel", "DeviceMesh", "active_communicator", "distribution", "get_device_count",
    "initialize", "list_devices", "rank", "set_distribution", "shard_rows", "shard_sizes",
    "shard_weight", "thread_counts", "world_size",
]
