"""How this process was started: the world size and rank a launcher (``mpiexec``, ``srun``)
announces in the environment, read without importing MPI.

Launchers and their variables, in the order they are trusted:

| launcher | size | rank |
|---|---|---|
| Open MPI's ``mpiexec`` | ``OMPI_COMM_WORLD_SIZE`` | ``OMPI_COMM_WORLD_RANK`` |
| MPICH's and Intel MPI's Hydra ``mpiexec``; ``srun --mpi=pmi2`` | ``PMI_SIZE`` | ``PMI_RANK`` |
| MVAPICH's ``mpirun_rsh`` | ``MV2_COMM_WORLD_SIZE`` | ``MV2_COMM_WORLD_RANK`` |
| Slurm's ``srun`` | ``SLURM_STEP_NUM_TASKS`` | ``SLURM_PROCID`` |

Hydra inside a Slurm allocation starts its proxies with ``srun``, so the ``PMI_*`` variables win
over Slurm's. Slurm's ``SLURM_NTASKS`` is not used: a batch script that runs ``python`` without
``srun`` has it too, but is one process.
"""

from __future__ import annotations

import os

from ..errors import ArgumentError

LAUNCHERS = (
    ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
    ("PMI_SIZE", "PMI_RANK"),
    ("MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK"),
    ("SLURM_STEP_NUM_TASKS", "SLURM_PROCID"),
)


def launched_world(environ=None) -> tuple[int, int]:
    """``(world size, rank)`` announced by the launcher, ``(1, 0)`` when none did. ArgumentError
    if a launcher's variables are not integers with 0 <= rank < size."""
    environ = os.environ if environ is None else environ
    for size_name, rank_name in LAUNCHERS:
        if size_name in environ and rank_name in environ:
            size, rank = (_integer(environ, name) for name in (size_name, rank_name))
            if not 0 <= rank < size:
                raise ArgumentError(f"the launcher's environment expected 0 <= {rank_name} < "
                                    f"{size_name}, got {rank_name}={rank}, {size_name}={size}")
            return size, rank
    return 1, 0


def _integer(environ, name: str) -> int:
    text = environ[name].strip()
    if not text.isdigit():
        raise ArgumentError(f"the launcher's environment expected {name} to be a non-negative "
                            f"integer, got {environ[name]!r}")
    return int(text)
