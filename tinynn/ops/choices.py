"""Which implementation runs a kernel whose numba and NumPy versions give the same bits: the one
measured faster on this machine, at the shape it is called with.

Which is faster depends on the CPU and the shape, not only on the code: on a 2-core AMD EPYC
Zen 5, numba's ``im2col`` of a 1-channel 28x28 batch took 0.94 ms against NumPy's 0.54, while
at 32 channels it was 5.6x faster; on a Zen 3 its ``maxpool2d_forward`` measured 4.7x slower
than NumPy's, on the Zen 5 2.4x faster. So the first call of a ``TUNED`` kernel at a new shape
(every argument but the batch size; calls on less than ``MIN_MEASURED_BYTES`` run numba's)
times both implementations, alternately, ``REPEATS`` times each after a first call (numba's
compile or cache load), keeps the faster, and writes the choice to ``choices-<machine>.json``
in tinynn's numba cache directory, keyed by the CPU model, its flags, the numpy and numba
versions and the kernels' source, so that later processes on the same machine make the same
choice without measuring.

Only kernels whose twins are bitwise equal on finite values are chosen this way
(``tests/test_conv_kernels.py`` checks it), so a choice changes speed, never results, even
between processes that chose differently. ``TINYNN_KERNEL_CHOICE=numba`` or ``numpy`` fixes
every choice instead of measuring (and leaves the table alone); ``TINYNN_BACKEND=numpy`` makes
every kernel NumPy's.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

TUNED = ("im2col", "col2im", "maxpool2d_forward", "maxpool2d_backward")
REPEATS = 3
#: Calls on a smaller first argument run numba's version unmeasured and unrecorded: their times
#: are mostly overhead and noise, and a table of every tiny shape would only grow.
MIN_MEASURED_BYTES = 64 * 2**10
ENVIRONMENT_VARIABLE = "TINYNN_KERNEL_CHOICE"
CHOICES = ("measure", "numba", "numpy")


def machine_key() -> str:
    """A short hash of the CPU model and flags, the numpy and numba versions and the source
    of both implementations: what the timings depend on."""
    import numba
    import numpy

    here = Path(__file__).parent
    sources = [(here / name).read_bytes() for name in ("numba_kernels.py", "reference.py")]
    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.exists():
        lines = info.read_text(errors="replace").splitlines()
        cpu = "|".join(line.split(":", 1)[1].strip() for line in lines
                       if line.startswith(("model name", "flags")))[:4000] or cpu
    text = "|".join([cpu, numpy.__version__, numba.__version__])
    return hashlib.sha256(text.encode() + b"".join(sources)).hexdigest()[:16]


class KernelChoices:
    """The table of choices, ``{"<kernel>|<shape key>": "numba" or "numpy"}``, loaded from and
    saved to ``path`` (None: kept in memory only)."""

    def __init__(self, path: Path | None, mode: str = "measure"):
        if mode not in CHOICES:
            raise ImportError(f"{ENVIRONMENT_VARIABLE} expected one of {CHOICES}, got {mode!r}")
        self.path, self.mode = path, mode
        self.table: dict[str, str] = self._load() if mode == "measure" else {}
        self.kernels: dict[str, dict] = {}  # name -> {"numba": ..., "numpy": ...}

    def _load(self) -> dict[str, str]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            table = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # a damaged table is measured again
        return {key: value for key, value in table.items()
                if isinstance(key, str) and value in ("numba", "numpy")} \
            if isinstance(table, dict) else {}

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False,
                                             prefix=f".{self.path.name}.", suffix=".tmp") as f:
                json.dump(self.table, f, indent=1, sort_keys=True)
            os.replace(f.name, self.path)
        except OSError:
            pass  # a read-only cache: the choice holds for this process

    def dispatcher(self, name: str, numba_version, numpy_version):
        """``name``'s kernel: each call runs the implementation ``which`` names for it."""
        implementations = self.kernels[name] = {"numba": numba_version, "numpy": numpy_version}

        def kernel(*args, **kwargs):
            return implementations[self.which(name, args, kwargs)](*args, **kwargs)

        kernel.__name__ = kernel.__qualname__ = name
        kernel.__doc__ = numpy_version.__doc__
        kernel.implementations = implementations
        return kernel

    def which(self, name: str, args: tuple, kwargs: dict | None = None) -> str:
        """``"numba"`` or ``"numpy"``: what a call of kernel ``name`` on ``args`` runs. A fixed
        mode decides alone; otherwise calls too small to time run numba's, and a shape not in
        the table is measured (running the kernel) and recorded."""
        if self.mode != "measure":
            return self.mode
        if args[0].nbytes < MIN_MEASURED_BYTES:
            return "numba"
        key = f"{name}|{SHAPE_KEYS[name](*args)}"
        if key not in self.table:
            self.table[key] = _faster(self.kernels[name], args, kwargs or {})
            self._save()
        return self.table[key]


def _faster(implementations: dict, args: tuple, kwargs: dict) -> str:
    """The name of the implementation with the smallest of ``REPEATS`` alternated timings,
    after a first call of each (numba's compile or cache load, first touches)."""
    seconds = {name: [] for name in implementations}
    for function in implementations.values():
        function(*args, **kwargs)
    for _ in range(REPEATS):
        for name, function in implementations.items():
            start = time.perf_counter()
            function(*args, **kwargs)
            seconds[name].append(time.perf_counter() - start)
    return min(seconds, key=lambda name: min(seconds[name]))


#: Per tuned kernel: the arguments that select its implementation (all but the batch).
SHAPE_KEYS = {
    "im2col": lambda x, *window, **_: (x.shape[1:], x.dtype.str, window),
    "col2im": lambda dcols, x_shape, *window: (tuple(x_shape[1:]), dcols.dtype.str, window),
    "maxpool2d_forward": lambda x, *pool: (x.shape[1:], x.dtype.str, pool),
    "maxpool2d_backward": lambda dy, argmax, x_shape, *pool: (
        tuple(x_shape[1:]), dy.dtype.str, pool),
}
