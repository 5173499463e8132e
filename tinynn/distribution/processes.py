"""The processes of a data-parallel job: ``initialize`` (Keras's name), ``rank``, ``world_size``,
``list_devices`` and ``get_device_count``.

tinynn's devices are processes: ``mpiexec -n 4`` (or ``srun -n 4``) gives the devices
``"cpu:0"`` .. ``"cpu:3"``, one per rank, each using its share of its machine's cores.
"""

from __future__ import annotations

import sys
import time

from ..errors import ArgumentError, DistributedError
from .communicator import Communicator
from .launch import launched_world
from .mpi import MPICommunicator, mpi_running
from .threads import pin_threads, threads_per_process

_joined: dict = {"communicator": None, "threads": None}


def initialize(job_addresses=None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """Join the processes that ``mpiexec``/``srun`` started (a no-op for a lone process);
    called by ``DataParallel()``, so scripts need not call it. Idempotent.

    With several processes it imports mpi4py, sizes each process's BLAS and numba threads to
    its share of the machine's cores (``max(1, cores // ranks on this machine)``, never more
    than already set) and makes an uncaught exception on any rank end the whole job
    (MPI_Abort), as ``python -m mpi4py`` does. ``num_processes`` and ``process_id``, if given,
    must be what the launcher started; ``job_addresses`` cannot apply (MPI finds its processes
    itself) and must be None.
    """
    if job_addresses is not None:
        raise ArgumentError("initialize job_addresses expected None: MPI processes find each "
                            "other through their launcher (mpiexec or srun), got "
                            f"{job_addresses!r}")
    for name, value, actual in (("num_processes", num_processes, world_size()),
                                ("process_id", process_id, rank())):
        if value is not None and value != actual:
            raise ArgumentError(f"initialize {name} expected {actual} (as launched), got "
                                f"{value!r}")
    if _joined["communicator"] is None:
        _joined["communicator"] = _join()


def _join() -> Communicator:
    """The communicator of the launched processes; pins threads and arms MPI_Abort."""
    launched_size, _ = launched_world()
    if launched_size == 1 and not mpi_running():
        return Communicator()
    communicator = MPICommunicator()
    if communicator.size != launched_size and launched_size > 1:
        raise DistributedError(
            f"the launcher started {launched_size} processes but MPI sees "
            f"{communicator.size}: mpi4py uses another MPI library than this mpiexec/srun "
            f"({communicator.MPI.Get_library_version().splitlines()[0]}); launch with the "
            "mpiexec of that library (the mpich wheel's is next to python)")
    if communicator.size == 1:
        return Communicator()
    node = communicator.comm.Split_type(communicator.MPI.COMM_TYPE_SHARED)
    _joined["threads"] = pin_threads(threads_per_process(node.Get_size()))
    node.Free()
    _abort_on_uncaught_exception(communicator)
    return communicator


#: Seconds an uncaught exception's traceback gets to reach the launcher before MPI_Abort.
ABORT_GRACE_SECONDS = 1.0


def _abort_on_uncaught_exception(communicator: MPICommunicator) -> None:
    """After the usual traceback, an uncaught exception calls MPI_Abort, so that the other
    ranks do not wait for this one (``python -m mpi4py`` does the same for its scripts). The
    abort waits ``ABORT_GRACE_SECONDS`` first: it ends the launcher too, which would otherwise
    drop the traceback it has not yet forwarded (seen on a loaded machine)."""
    previous = sys.excepthook

    def hook(kind, value, traceback):
        previous(kind, value, traceback)
        sys.stderr.flush()
        time.sleep(ABORT_GRACE_SECONDS)
        communicator.abort(1)
    sys.excepthook = hook


def joined_communicator() -> Communicator:
    """The communicator of the job's processes (``initialize`` joins them first)."""
    initialize()
    return _joined["communicator"]


def world_size() -> int:
    """Number of processes training together: MPI's when initialized, else the launcher's
    (``mpiexec``/``srun`` environment), else 1. Works before ``initialize``."""
    return _world()[0]


def rank() -> int:
    """This process's rank, 0 .. world_size() - 1 (0 for a lone process). Works before
    ``initialize``."""
    return _world()[1]


def _world() -> tuple[int, int]:
    """``(world size, rank)``: the joined communicator's, else MPI's if it runs, else the
    launcher's environment's."""
    communicator = _joined["communicator"]
    if communicator is not None:
        return communicator.size, communicator.rank
    if mpi_running():
        world = sys.modules["mpi4py.MPI"].COMM_WORLD
        return world.Get_size(), world.Get_rank()
    return launched_world()


def thread_counts() -> dict | None:
    """The thread counts ``initialize`` set with several processes (``{"blas": n, "numba":
    n}``), else None."""
    return _joined["threads"]


def list_devices(device_type: str | None = None) -> list[str]:
    """Every process of the job as a device, ``["cpu:0", ..., "cpu:<world_size - 1>"]``.
    ``device_type``: None or ``"cpu"`` (tinynn runs on CPUs only)."""
    if device_type is not None and str(device_type).lower() != "cpu":
        raise ArgumentError(f"list_devices device_type expected None or 'cpu' (tinynn runs on "
                            f"CPUs), got {device_type!r}")
    return [f"cpu:{index}" for index in range(world_size())]


def get_device_count(device_type: str | None = None) -> int:
    """``len(list_devices(device_type))``: the number of processes."""
    return len(list_devices(device_type))
