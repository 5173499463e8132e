"""Keeping the replicas of a model identical across ranks.

When ``fit``, ``evaluate`` or ``predict`` starts, every rank checks that it was called like rank
0 (same model layout, same arguments, same data: shapes and CRC-32 checksums), then takes rank
0's weights, non-trainable state and, for ``fit``, optimizer state and Generators ("init",
"dropout", "shuffle"): every rank then shuffles and draws dropout masks as rank 0, whatever its
own seed. During ``fit`` all ranks apply the same averaged gradient, so they stay bitwise
identical; ``agree_after_epoch`` checks it with a checksum after every epoch.
"""

from __future__ import annotations

import json
import zlib

import numpy as np

from ..errors import DistributedError
from .communicator import Communicator


def checksum(*arrays: np.ndarray) -> int:
    """CRC-32 of the arrays' bytes, in order."""
    value = 0
    for array in arrays:
        value = zlib.crc32(np.ascontiguousarray(array), value)
    return value


def describe_call(model, call: str, arrays: dict, settings: dict) -> dict:
    """What every rank must pass identically to ``call``, as JSON-ready values: the model's
    weight layout, each array's shape, dtype and checksum, and ``settings``."""
    return json.loads(json.dumps({
        "call": call,
        "weights": [[name, list(shape)] for layout in (model.layout, model.state_layout)
                    for name, (_, shape) in layout.items()],
        **{name: [list(array.shape), str(array.dtype), checksum(array)]
           for name, array in arrays.items()},
        **settings}))


def start(model, comm: Communicator, call: str, arrays: dict, settings: dict,
          training: bool) -> None:
    """Check the call against rank 0's (``describe_call``), then copy rank 0's weights and
    state into this rank's model; with ``training``, also its optimizer state and Generators.
    Raises DistributedError on every rank if any rank's call differs. No-op for one process."""
    if comm.size == 1:
        return
    what = f"{call} (starting on every rank)"
    _agree(comm, describe_call(model, call, arrays, settings), what)
    optimizer = model.optimizer if training else None
    slots = [optimizer.state[slot] for slot in sorted(optimizer.state)] if optimizer else []
    comm.broadcast_in_place(model.parameters, model.states, *slots, what=what)
    if not training:
        return
    shared = comm.broadcast_json({"iterations": optimizer.iterations,
                                  "rngs": {name: rng.bit_generator.state
                                           for name, rng in model.rngs.items()}}, what)
    optimizer.iterations = shared["iterations"]
    for name, state in shared["rngs"].items():
        model.rngs[name].bit_generator.state = state


def _agree(comm: Communicator, mine: dict, what: str) -> None:
    reference = comm.broadcast_json(mine, what)
    differences = [key for key in sorted(set(reference) | set(mine))
                   if reference.get(key) != mine.get(key)]
    disagreeing = np.array([1.0 if differences else 0.0])
    comm.sum_in_place(disagreeing, what=what)
    if differences:
        details = "; ".join(f"{key}: rank 0 {_short(reference.get(key))}, rank {comm.rank} "
                            f"{_short(mine.get(key))}" for key in differences)
        raise DistributedError(f"{what}: rank {comm.rank} was called differently from rank 0 "
                               f"({details}); every rank must run the same script on the same "
                               "data ([shape, dtype, CRC-32] for arrays)")
    if disagreeing[0]:
        raise DistributedError(f"{what}: {int(disagreeing[0])} rank(s) were called differently "
                               "from rank 0 (their errors say how); every rank must run the "
                               "same script on the same data")


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def agree_after_epoch(model, comm: Communicator, stop: bool) -> bool:
    """Whether any rank's callbacks stopped training (then all stop); DistributedError on every
    rank if the ranks' weights or states are no longer bitwise identical."""
    if comm.size == 1:
        return bool(stop)
    value = float(checksum(model.parameters, model.states))
    found = np.array([value, -value, 1.0 if stop else 0.0])
    comm.max_in_place(found, what="the end-of-epoch check")
    if found[0] != -found[1]:
        raise DistributedError("the ranks' weights differ after this epoch (CRC-32 "
                               f"{int(found[0])} and {int(-found[1])}): a callback or user code "
                               "changed the model on some ranks only")
    return bool(found[2] > 0)
