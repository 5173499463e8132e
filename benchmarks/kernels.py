"""Kernel micro-benchmarks (numba vs the NumPy reference, at the CNN's shapes) and NumPy's
float32 matmul GFLOP/s: the yardstick for the frameworks' achieved GFLOP/s.

    python -m benchmarks.kernels [--batch 32] [--repeat 20] [--params 3274634] [--no-kernels]

Prints one JSON line: ``{"matmul": [...], "kernels": [...]}``. Each kernel time is the median
of ``--repeat`` timings (matmul: 5) after a first call, timeit-style; numba's compile time is
the first call's excess over that median (``run.py`` points ``NUMBA_CACHE_DIR`` at an empty
directory, so it is a real compile, not a cache load). These numbers are what
``tinynn.ops.NUMBA_FASTER`` rests on; ``chosen`` is the implementation tinynn runs at that
shape on this machine (``tinynn.ops.choices`` measures the kernels whose twins agree bitwise).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable

import numpy as np

import tinynn.ops.numba_kernels as numba_kernels  # the numba twins, whatever TINYNN_BACKEND says
from tinynn import ops
from tinynn.ops import reference

SAME_5X5 = (5, 5, 1, 1, 2, 2, 2, 2)  # KH KW SH SW PT PB PL PR: Conv2D(..., 5, padding="same")
POOL_2X2 = (2, 2, 2, 2)  # PH PW SH SW: MaxPooling2D(2)
CNN_PARAMS = 3_274_634
# (label, m, k, n): the matmul m x k @ k x n; a large square one, the CNN's conv2 forward
# (batch 32: 32*14*14 rows, 5*5*32 columns, 64 filters) and the MLP's first Dense layer.
MATMULS = (("2048x2048 @ 2048x2048", 2048, 2048, 2048), ("6272x800 @ 800x64", 6272, 800, 64),
           ("32x784 @ 784x128", 32, 784, 128))


def time_calls(function: Callable, args: tuple, repeat: int) -> tuple[float, float]:
    """``(first call, median per call)`` in seconds: the median is over ``repeat`` timings,
    each of enough calls to last about 5 ms (as timeit does), after the first call."""
    def seconds_per_call(number: int) -> float:
        start = time.perf_counter()
        for _ in range(number):
            function(*args)
        return (time.perf_counter() - start) / number

    first = seconds_per_call(1)
    number = max(1, math.ceil(0.005 / max(seconds_per_call(1), 1e-9)))
    return first, statistics.median(seconds_per_call(number) for _ in range(repeat))


def matmul_gflops(repeat: int = 5) -> list[dict]:
    """NumPy float32 matmul speed at ``MATMULS``, in GFLOP/s (2 m k n FLOPs per product)."""
    rng = np.random.default_rng(0)
    rows = []
    for label, m, k, n in MATMULS:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        seconds = time_calls(np.matmul, (a, b), repeat)[1]
        rows.append({"shape": label, "gflops": 2 * m * k * n / seconds / 1e9})
    return rows


def cases(batch: int, params: int) -> list[tuple[str, str, tuple]]:
    """(kernel name, shape label, arguments) at the CNN's layer shapes and parameter count."""
    rng = np.random.default_rng(0)
    found = []
    for label, shape in (("conv1 x(N,28,28,1)", (batch, 28, 28, 1)),
                         ("conv2 x(N,14,14,32)", (batch, 14, 14, 32))):
        x = rng.standard_normal(shape, dtype=np.float32)
        cols = reference.im2col(x, *SAME_5X5)
        found += [("im2col", label, (x, *SAME_5X5)),
                  ("col2im", label, (cols, shape, *SAME_5X5))]
    for label, shape in (("pool1 x(N,28,28,32)", (batch, 28, 28, 32)),
                         ("pool2 x(N,14,14,64)", (batch, 14, 14, 64))):
        x = rng.standard_normal(shape, dtype=np.float32)
        y, argmax = reference.maxpool2d_forward(x, *POOL_2X2)
        found += [("maxpool2d_forward", label, (x, *POOL_2X2)),
                  ("maxpool2d_backward", label, (y, argmax, shape, *POOL_2X2))]
    w, g, m, v = (rng.standard_normal(params, dtype=np.float32) * 1e-3 for _ in range(4))
    v = np.abs(v)
    f32 = np.float32
    found += [("adam_update", f"P={params:,}", (w, g, m, v, f32(1e-3), f32(0.1), f32(1e-3),
                                                f32(1e-7))),
              ("sgd_update", f"P={params:,}", (w, g, m, f32(0.1), f32(0.0), False))]
    return found


def kernel_rows(batch: int, repeat: int, params: int) -> list[dict]:
    """One row per kernel and shape: median ms of each implementation, numba's compile s, and
    the implementation tinynn runs there (``tinynn.ops.choices``: measured on this machine)."""
    rows = []
    for name, label, args in cases(batch, params):
        numba_first, numba_s = time_calls(getattr(numba_kernels, name), args, repeat)
        numpy_s = time_calls(getattr(reference, name), args, repeat)[1]
        rows.append({"kernel": name, "shape": label, "numpy_ms": numpy_s * 1e3,
                     "numba_ms": numba_s * 1e3, "compile_s": max(numba_first - numba_s, 0.0),
                     "chosen": chosen(name, args)})
    return rows


def chosen(name: str, args: tuple) -> str:
    """The implementation ``tinynn.ops.<name>`` runs for ``args`` (measured if not known)."""
    if not hasattr(getattr(ops, name), "implementations"):
        return ops.implementation(name)
    return ops.KERNEL_CHOICES.which(name, args)


def blas_pools() -> list[dict]:
    """NumPy's BLAS thread pools as threadpoolctl sees them: library, version, the CPU kernel
    it runs (OpenBLAS's ``architecture``) and threads; empty without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{key: pool.get(key) for key in ("internal_api", "version", "architecture",
                                             "num_threads")}
            for pool in threadpool_info() if pool.get("user_api") == "blas"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="images per kernel call")
    parser.add_argument("--repeat", type=int, default=20, help="kernel timings per median")
    parser.add_argument("--params", type=int, default=CNN_PARAMS,
                        help="buffer size of the optimizer updates")
    parser.add_argument("--no-kernels", action="store_true", help="the matmul speed only")
    args = parser.parse_args(argv)
    results = {"matmul": matmul_gflops(), "blas_pools": blas_pools(),
               "kernels": [] if args.no_kernels else kernel_rows(args.batch, args.repeat,
                                                                 args.params)}
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
