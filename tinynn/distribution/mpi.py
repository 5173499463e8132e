"""``MPICommunicator``: the collectives of ``Communicator`` across MPI ranks, each with a deadline.

mpi4py (and an MPI library: the ``mpich`` wheel of the ``distributed`` extra, or a system MPI)
is imported here only, when a distribution needs it; ``import tinynn`` never imports it.

Every collective is nonblocking (``Iallreduce``, ``Ibcast``, ``Iallgatherv``) and completed by
polling ``Testall``: continuously for the first ``SPIN_SECONDS`` (MPI progresses a collective
only inside its calls, so a busy wait is what a blocking call would do), then every
``SLEEP_SECONDS``, until the deadline ``TINYNN_COLLECTIVE_TIMEOUT`` (seconds, default 300,
``inf`` for none). A collective that misses it raises ``DistributedError``: another rank is stuck,
died without taking the job down, or left the training loop. An uncaught exception then ends
the whole job (``python -m mpi4py``, or the hook ``initialize`` installs), never a hang.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

from ..errors import ArgumentError, DistributedError, MissingDependencyError
from .communicator import Communicator

TIMEOUT_VARIABLE = "TINYNN_COLLECTIVE_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
SPIN_SECONDS = 1.0
SLEEP_SECONDS = 1e-3


def load_mpi():
    """mpi4py's ``MPI`` module (initializing MPI); MissingDependencyError if absent."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise MissingDependencyError(
            "data-parallel training across processes needs mpi4py and an MPI library, which "
            f"are not installed ({error}): pip install \"tinynn[distributed]\"") from error
    return MPI


def mpi_running() -> bool:
    """Whether this process already runs MPI (e.g. under ``python -m mpi4py``), without
    importing mpi4py."""
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized()


def collective_timeout(environ=None) -> float:
    """Seconds a collective may wait for the other ranks: ``$TINYNN_COLLECTIVE_TIMEOUT``
    (a positive number or ``inf``), by default ``DEFAULT_TIMEOUT``."""
    environ = os.environ if environ is None else environ
    text = environ.get(TIMEOUT_VARIABLE)
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not seconds > 0:
        raise ArgumentError(f"{TIMEOUT_VARIABLE} expected a positive number of seconds or "
                            f"'inf', got {text!r}")
    return seconds


class MPICommunicator(Communicator):
    """Every rank of ``MPI.COMM_WORLD`` (or of ``comm``)."""

    def __init__(self, comm=None, timeout: float | None = None):
        self.MPI = load_mpi()
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.size = self.comm.Get_size()
        self.rank = self.comm.Get_rank()
        self.timeout = collective_timeout() if timeout is None else timeout

    def sum_in_place(self, *arrays, what):
        self._wait([self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
                    for array in arrays if array.size], what)

    def max_in_place(self, array, what):
        self._wait([self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self.MPI.MAX)], what)

    def broadcast_in_place(self, *arrays, what):
        self._wait([self.comm.Ibcast(array, root=0) for array in arrays if array.size], what)

    def broadcast_json(self, value, what):
        encoded = json.dumps(value).encode() if self.rank == 0 else b""
        length = np.array([len(encoded)], dtype=np.int64)
        self.broadcast_in_place(length, what=what)
        buffer = np.frombuffer(encoded, np.uint8).copy() if self.rank == 0 else np.empty(
            int(length[0]), np.uint8)
        self.broadcast_in_place(buffer, what=what)
        return json.loads(buffer.tobytes().decode())

    def gather_rows(self, rows, counts, what):
        from mpi4py.util.dtlib import from_numpy_dtype

        per_row = math.prod(rows.shape[1:])
        sizes = [count * per_row for count in counts]
        offsets = np.cumsum([0, *sizes[:-1]]).tolist()
        flat = rows.reshape(-1)  # a view: ``rows`` is contiguous
        self._wait([self.comm.Iallgatherv(self.MPI.IN_PLACE, [flat, sizes, offsets,
                                                              from_numpy_dtype(flat.dtype)])],
                   what)

    def any(self, flag, what):
        value = np.array([1.0 if flag else 0.0])
        self.max_in_place(value, what)
        return bool(value[0] > 0)

    def abort(self, code: int = 1) -> None:
        """End every rank of the job (MPI_Abort)."""
        self.comm.Abort(code)

    def _wait(self, requests: list, what: str) -> None:
        """Complete ``requests`` or raise DistributedError at the deadline (see the module)."""
        testall = self.MPI.Request.Testall
        start = time.monotonic()
        try:
            while not testall(requests):
                waited = time.monotonic() - start
                if waited > self.timeout:
                    raise DistributedError(
                        f"{what} did not complete within {self.timeout:g} s on rank "
                        f"{self.rank} of {self.size}: another rank is stuck, has died or has "
                        f"left the training loop (raise {TIMEOUT_VARIABLE} if it is only slow)")
                if waited > SPIN_SECONDS:
                    time.sleep(SLEEP_SECONDS)
        except self.MPI.Exception as error:
            raise DistributedError(f"{what} failed on rank {self.rank} of {self.size}: "
                                   f"{error}") from error
