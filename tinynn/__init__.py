"""tinynn: a small NumPy deep-learning framework with Keras's API and numba-fused hot loops.

    import tinynn as tn
    model = tn.Sequential([tn.layers.Input((28, 28)), tn.layers.Flatten(),
                           tn.layers.Dense(100, activation="sigmoid"),
                           tn.layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer=tn.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
"""

import os as _os
import sys as _sys

if "numpy" not in _sys.modules:  # OpenBLAS reads it once, when NumPy loads the library
    # BLAS threads sleep as soon as a product ends instead of spinning for ~0.1 s, so numba's
    # parallel kernels between two products get the cores (tinynn.ops: "Threads").
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
if "numba" not in _sys.modules:  # numba reads it once, when it starts its thread pool
    # One numba thread: BLAS's threads have the cores for the products, and waking a second
    # pool between them costs more than its kernels save (a CNN training step: 37-42 ms with
    # one numba thread, 50-53 ms with one per core; README, "Performance").
    _os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    if _os.environ["NUMBA_NUM_THREADS"] != "1":
        # numba's OpenMP threads otherwise spin between kernels on the cores BLAS's threads
        # need: a CNN training step took 110 ms with 2 numba threads, 16 ms with passive waits
        # or one thread (2-core AMD EPYC, 2026-12-08).
        _os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from . import (  # noqa: E402
    activations,
    callbacks,
    config,
    datasets,
    distribution,
    errors,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    saving,
    tuning,
    utils,
    visualize,
)
from .config import set_random_seed
from .layers import Input
from .models import Model, Sequential

__version__ = "0.1.0"

__all__ = [
    "Input", "Model", "Sequential", "activations", "callbacks", "config", "datasets",
    "distribution", "errors",
    "initializers", "layers", "losses", "metrics", "models", "optimizers", "regularizers",
    "saving", "set_random_seed", "tuning", "utils", "visualize",
]
