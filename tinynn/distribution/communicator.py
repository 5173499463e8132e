"""``Communicator``: the collectives ``fit``, ``evaluate`` and ``predict`` use, for one process.

The training loops call these on every run; with one process each is a no-op (sums and
broadcasts of one value are the value itself), so a run without a distribution executes exactly
the single-process code. ``tinynn.distribution.mpi.MPICommunicator`` implements them across MPI
ranks. Every collective must be called by every rank in the same order with arrays of the same
shapes; ``what`` names it in timeout errors.
"""

from __future__ import annotations

import numpy as np


class Communicator:
    """This process alone: ``size`` 1, ``rank`` 0."""

    size = 1
    rank = 0

    def sum_in_place(self, *arrays: np.ndarray, what: str) -> None:
        """Replace each (contiguous) array by its element-wise sum over the processes."""

    def max_in_place(self, array: np.ndarray, what: str) -> None:
        """Replace a float64 array by its element-wise maximum over the processes."""

    def broadcast_in_place(self, *arrays: np.ndarray, what: str) -> None:
        """Overwrite each (contiguous) array with rank 0's."""

    def broadcast_json(self, value, what: str):
        """Rank 0's ``value`` (anything ``json`` encodes), on every process."""
        return value

    def gather_rows(self, rows: np.ndarray, counts: list[int], what: str) -> None:
        """``rows`` (N, ...) holds rank r's ``counts[r]`` rows at their place (ranks in order,
        contiguous); afterwards every process holds every rank's rows."""

    def any(self, flag: bool, what: str) -> bool:
        """True on every process if ``flag`` is true on any."""
        return bool(flag)
