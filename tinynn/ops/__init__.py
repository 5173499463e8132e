"""Array kernels, and the one place that picks their implementation.

``TINYNN_BACKEND=numpy`` selects the NumPy reference for every kernel; ``numba`` (the default)
selects the numba version of each kernel listed in ``NUMBA_FASTER`` (those the kernel benchmark
shows faster) and falls back to the reference when numba is not installed. The kernels whose
two versions give the same bits (``choices.TUNED``: im2col, col2im, max pooling) run the one
measured faster on this machine at each shape (``choices``; ``TINYNN_KERNEL_CHOICE``).

numba's compiled code is cached under ``$NUMBA_CACHE_DIR``, by default
``$XDG_CACHE_HOME/tinynn/numba`` (outside the source tree, shared by every clone).

Shape letters used in kernel docstrings: N batch, H W input size, C channels, F filters,
KH KW kernel, SH SW strides, PH PW pool window, PT PB PL PR zero padding at the top, bottom,
left and right, OH OW output, P parameters. Images are NHWC throughout.

Threads: the kernels are parallel over images (or blocks of elements) with ``prange``, in
numba's pool (``NUMBA_NUM_THREADS``); the matrix products run in BLAS's pool. The two pools take
turns, but OpenBLAS's threads spin for about 0.1 s after each product and then fight numba's
for the cores: measured here, a BLAS product followed by a parallel Adam step took 24 ms, the
two alone 12 ms. ``OPENBLAS_THREAD_TIMEOUT=4`` makes them sleep at once (11.9 ms); ``import
tinynn`` sets it when NumPy is not imported yet (OpenBLAS reads it only when it loads), the
examples import tinynn first, and the benchmarks set it for their workers. Even so, a whole CNN
training step was faster with one numba thread (37-42 ms) than with one per core (50-58 ms), so
``import tinynn`` also sets ``NUMBA_NUM_THREADS=1`` unless it is set or numba is already loaded;
setting it higher before the import turns the parallel kernels on (with one thread they are
compiled serially: ``numba_kernels.parallel_kernel``), and makes OpenMP's threads wait
passively. Every parallel kernel writes disjoint elements per iteration, so results do not
depend on the thread count.
"""

import os
from pathlib import Path

from . import choices, reference

KERNELS = ("sgd_update", "adam_update", "adamw_update", "rmsprop_update", "all_finite",
           "relu_backward", "bias_activation", "sparse_softmax_crossentropy",
           "im2col", "col2im", "maxpool2d_forward", "maxpool2d_backward",
           "avgpool2d_forward", "avgpool2d_backward",
           "winograd_input_transform", "winograd_input_transform_backward",
           "winograd_output_transform", "winograd_output_transform_backward",
           "gelu", "gelu_backward",
           "batchnorm_moments", "batchnorm_scale_shift", "batchnorm_backward_sums",
           "batchnorm_input_gradient", "affine_warp", "affine_warp_backward")
NUMBA_FASTER = frozenset(KERNELS)


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

def _kernel_choices():
    """The per-machine table of ``choices.TUNED`` kernels' implementations (None without
    numba), its file beside numba's cache."""
    if numba_kernels is None:
        return None
    mode = os.environ.get(choices.ENVIRONMENT_VARIABLE, "measure").lower()
    path = Path(os.environ["NUMBA_CACHE_DIR"]) / f"choices-{choices.machine_key()}.json"
    return choices.KernelChoices(path, mode)


KERNEL_CHOICES = _kernel_choices()
for _name in KERNELS:
    if KERNEL_CHOICES is not None and _name in choices.TUNED:
        globals()[_name] = KERNEL_CHOICES.dispatcher(
            _name, getattr(numba_kernels, _name), getattr(reference, _name))
        continue
    _use_numba = numba_kernels is not None and _name in NUMBA_FASTER
    globals()[_name] = getattr(numba_kernels if _use_numba else reference, _name)


def implementation(name: str) -> str:
    """``"numba"`` or ``"numpy"``: which implementation ``tinynn.ops.<name>`` is; ``"chosen
    per shape"`` for a kernel whose implementation is measured per shape (``choices``)."""
    if hasattr(globals()[name], "implementations"):
        return "chosen per shape"
    return "numba" if globals()[name] is not getattr(reference, name) else "numpy"
