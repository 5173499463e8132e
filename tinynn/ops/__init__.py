"""Array kernels, and the one place that picks their implementation.

``TINYNN_BACKEND=numpy`` selects the NumPy reference for every kernel; ``numba`` (the default)
selects the numba version of each kernel listed in ``NUMBA_FASTER`` (those the kernel benchmark
shows faster) and falls back to the reference when numba is not installed.

numba's compiled code is cached under ``$NUMBA_CACHE_DIR``, by default
``$XDG_CACHE_HOME/tinynn/numba`` (outside the source tree, shared by every clone).

Shape letters used in kernel docstrings: N batch, H W input size, C channels, F filters,
KH KW kernel, SH SW strides, PH PW pool window, PT PB PL PR zero padding at the top, bottom,
left and right, OH OW output, P parameters. Images are NHWC throughout.

Threads: every numba kernel is single-threaded (no ``prange``). The matrix products run in
BLAS, which uses the cores; a second thread pool oversubscribes them (calibration on the
2-core machine: a CNN training step took 84 ms with 2 BLAS + 2 numba threads, 43 ms with
2 BLAS threads and single-threaded kernels).
"""

import os
from pathlib import Path

from . import reference

KERNELS = ("sgd_update", "adam_update", "all_finite", "im2col", "col2im", "maxpool2d_forward",
           "maxpool2d_backward")
NUMBA_FASTER = frozenset({"sgd_update", "adam_update", "all_finite", "im2col", "col2im",
                          "maxpool2d_forward", "maxpool2d_backward"})


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return str(Path(base) / "tinynn" / "numba")


def _load_numba():
    os.environ.setdefault("NUMBA_CACHE_DIR", _cache_dir())
    try:
        from . import numba_kernels
    except ImportError:
        return None
    return numba_kernels


BACKEND = os.environ.get("TINYNN_BACKEND", "numba")
if BACKEND not in ("numba", "numpy"):
    raise ImportError(f"TINYNN_BACKEND expected 'numba' or 'numpy', got {BACKEND!r}")
numba_kernels = _load_numba() if BACKEND == "numba" else None

for _name in KERNELS:
    _use_numba = numba_kernels is not None and _name in NUMBA_FASTER
    globals()[_name] = getattr(numba_kernels if _use_numba else reference, _name)


def implementation(name: str) -> str:
    """``"numba"`` or ``"numpy"``: which implementation ``tinynn.ops.<name>`` is."""
    return "numba" if globals()[name] is not getattr(reference, name) else "numpy"
