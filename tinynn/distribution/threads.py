"""Thread pools sized per process, so that ranks sharing a machine do not oversubscribe it.

Each of the L ranks on a machine gets max(1, C // L) of its C usable cores for BLAS (through
threadpoolctl, imported here only) and for numba's parallel kernels. A pool is only ever made
smaller: a count set lower by the user (``OMP_NUM_THREADS``, ``NUMBA_NUM_THREADS``, ...) stays.
"""

from __future__ import annotations

import os

from ..errors import MissingDependencyError


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_process(local_processes: int, cores: int | None = None) -> int:
    """max(1, cores // local_processes)."""
    return max(1, (usable_cores() if cores is None else cores) // max(1, local_processes))


def pin_threads(threads: int) -> dict[str, int]:
    """Limit every BLAS pool and numba's pool to at most ``threads``. Returns the resulting
    counts, ``{"blas": ..., "numba": ...}`` (a pool absent from this process is left out)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError as error:
        raise MissingDependencyError(
            "sizing the BLAS threads of each data-parallel process needs threadpoolctl, which "
            f"is not installed ({error}): pip install \"tinynn[distributed]\"") from error
    counts = {}
    for library in ThreadpoolController().select(user_api="blas").lib_controllers:
        library.set_num_threads(min(library.num_threads, threads))
        counts["blas"] = min(counts.get("blas", threads), library.num_threads)
    try:
        import numba
    except ImportError:
        return counts
    numba.set_num_threads(min(numba.get_num_threads(), threads))
    counts["numba"] = numba.get_num_threads()
    return counts
