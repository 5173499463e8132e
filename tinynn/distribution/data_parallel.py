"""``DataParallel``, ``DeviceMesh``, ``set_distribution`` and ``distribution``, with Keras 3's
names and arguments (``keras.distribution``).

    tn.distribution.set_distribution(tn.distribution.DataParallel())
    model.fit(x, y, ...)          # unchanged: every rank passes the same global arrays

While a ``DataParallel`` is set, ``fit``, ``evaluate`` and ``predict`` run on every process of
the job (``mpiexec -n 4 python -m mpi4py script.py``) as one (see ``tinynn/distribution/__init__``
for what is coordinated). With one process it changes nothing.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from ..errors import ArgumentError
from .communicator import Communicator
from .processes import joined_communicator, list_devices

DEFAULT_BATCH_DIM_NAME = "batch"
_current: dict = {"distribution": None}


class DeviceMesh:
    """Devices arranged in a named grid, as Keras's ``DeviceMesh(shape, axis_names,
    devices=None)``; ``devices`` defaults to ``list_devices()`` (one per process)."""

    def __init__(self, shape, axis_names, devices=None):
        if not shape or not axis_names:
            raise ArgumentError("DeviceMesh expected a non-empty shape and axis_names, got "
                                f"shape={shape!r}, axis_names={axis_names!r}")
        if len(shape) != len(axis_names):
            raise ArgumentError("DeviceMesh expected as many axis_names as axes in shape, got "
                                f"shape={shape!r}, axis_names={axis_names!r}")
        devices = np.array(list_devices() if devices is None else devices)
        if math.prod(shape) != devices.size:
            raise ArgumentError(f"DeviceMesh shape {tuple(shape)} expected {math.prod(shape)} "
                                f"devices, got {devices.size}")
        self._shape = tuple(shape)
        self._axis_names = list(axis_names)
        self._devices = devices.reshape(self._shape)

    @property
    def shape(self) -> tuple:
        return self._shape

    @property
    def axis_names(self) -> list:
        return self._axis_names

    @property
    def devices(self) -> np.ndarray:
        return self._devices

    def __repr__(self):
        return f"<DeviceMesh shape={self.shape}, axis_names={self.axis_names}>"


class DataParallel:
    """Data parallelism across the job's processes, as Keras's ``DataParallel(device_mesh=None,
    devices=None, auto_shard_dataset=True)``: the model is replicated on every process, each
    global batch is split across them and their gradients averaged before every update.

    ``device_mesh`` (a ``DeviceMesh``) or ``devices`` (a list), when given, must hold every
    process's device (``list_devices()``) exactly once: a process cannot sit out, and each is
    one replica (the mesh's shape does not matter; its first axis names the batch axis).
    ``auto_shard_dataset`` must stay True: tinynn shards the arrays every rank passes to
    ``fit``, ``evaluate`` and ``predict`` itself. Creating one calls ``initialize``;
    ``communicator`` is its ``Communicator``.
    """

    def __init__(self, device_mesh=None, devices=None, auto_shard_dataset: bool = True):
        _check_auto_shard(auto_shard_dataset)
        if device_mesh is not None and devices is not None:
            raise ArgumentError("DataParallel expected device_mesh or devices, not both; got "
                                f"device_mesh={device_mesh!r}, devices={devices!r}")
        if device_mesh is None:
            devices = list_devices() if devices is None else list(devices)
            device_mesh = DeviceMesh((len(devices),), [DEFAULT_BATCH_DIM_NAME], devices)
        elif not isinstance(device_mesh, DeviceMesh):
            raise ArgumentError("DataParallel device_mesh expected a tinynn.distribution."
                                f"DeviceMesh, got {type(device_mesh).__name__}")
        _check_every_process_once(device_mesh)
        self._device_mesh = device_mesh
        self._batch_dim_name = device_mesh.axis_names[0]
        self.communicator = joined_communicator()

    @property
    def device_mesh(self) -> DeviceMesh:
        return self._device_mesh

    @property
    def batch_dim_name(self) -> str:
        return self._batch_dim_name

    @property
    def auto_shard_dataset(self) -> bool:
        return True

    @auto_shard_dataset.setter
    def auto_shard_dataset(self, value) -> None:
        _check_auto_shard(value)

    @property
    def num_processes(self) -> int:
        """Processes in the job."""
        return self.communicator.size

    @property
    def num_model_replicas(self) -> int:
        """One replica per process."""
        return self.communicator.size

    @property
    def data_shard_id(self) -> int:
        """This process's shard of each batch: its rank."""
        return self.communicator.rank

    @contextlib.contextmanager
    def scope(self):
        """Make this the current distribution inside a ``with`` block."""
        previous = distribution()
        set_distribution(self)
        try:
            yield
        finally:
            set_distribution(previous)

    def __repr__(self):
        return (f"<DataParallel num_processes={self.num_processes}, "
                f"device_mesh={self.device_mesh!r}>")


def _check_auto_shard(value) -> None:
    if value is not True:
        raise ArgumentError("DataParallel auto_shard_dataset expected True: every rank passes "
                            "the same global arrays and tinynn shards each batch; pre-sharded "
                            f"data is not supported, got {value!r}")


def _check_every_process_once(mesh: DeviceMesh) -> None:
    expected = list_devices()
    given = [str(device) for device in mesh.devices.ravel()]
    if sorted(given) != sorted(expected):
        raise ArgumentError(f"DataParallel expected every process's device once, {expected} "
                            f"(one per rank), got {given}")


def distribution() -> DataParallel | None:
    """The current distribution (None when training in one process)."""
    return _current["distribution"]


def set_distribution(value: DataParallel | None) -> None:
    """Make ``value`` (a ``DataParallel``, or None to turn data parallelism off) the current
    distribution of every ``fit``, ``evaluate`` and ``predict`` that follows."""
    if value is not None and not isinstance(value, DataParallel):
        raise ArgumentError("set_distribution expected a tinynn.distribution.DataParallel or "
                            f"None, got {type(value).__name__}")
    _current["distribution"] = value


def active_communicator() -> Communicator:
    """The current distribution's communicator, or this process alone without one."""
    current = distribution()
    return current.communicator if current is not None else Communicator()
