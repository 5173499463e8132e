"""``save_model``/``load_model`` and ``save_weights``/``load_weights``.

Paths ending in ``.keras`` or ``.h5`` go to the Keras format (keras_format.py); the rest is
tinynn's ``.npz`` format, described here.

Saving refuses what could not be loaded back (non-finite weights, layers or optimizers outside
tinynn's tables) before writing anything, then writes atomically. Loading checks every name,
shape and dtype against the model and every entry against the manifest before reading an
array, reads everything, and only then writes into the model, with Ctrl-C held off during that
copy: a refused or interrupted load leaves the model exactly as it was.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..errors import CheckpointError
from ..interrupt import InterruptGuard
from ..validation import non_negative_int
from . import keras_format, serialization
from .archive import CheckpointReader, Specs, write_checkpoint
from .checks import (
    check_destination,
    check_finite,
    check_matches,
    copy_weights,
    interpret,
    model_specs,
)
from .limits import LoadLimits, checked
from .paths import is_keras, load_path, save_path


# -- saving -------------------------------------------------------------------------------------
def save_model(model, filepath: str | os.PathLike, include_optimizer: bool = True,
               overwrite: bool = True) -> None:
    """Save ``model`` to one ``.npz`` file (or ``.keras``, see keras_format.py), atomically.

    The file holds the architecture and compile settings (JSON), every weight, the state of the
    model's random generators and, with ``include_optimizer``, the optimizer state (its slots,
    e.g. Adam's m and v, and ``iterations``): enough to resume training bitwise. With
    ``overwrite=False`` an existing file is an error.
    """
    path = save_path(filepath, weights_only=False, caller="save_model")
    if is_keras(path):
        return keras_format.save_model(model, path, include_optimizer, overwrite)
    model.require_built("save")
    arrays = _parameter_arrays(model)
    compiled = serialization.compile_config(model)
    manifest = {**_manifest_base(model, "model"), "model": serialization.model_config(model),
                "compile": compiled, "optimizer": None,
                "rng": serialization.rng_states(model)}
    if include_optimizer and compiled is not None:
        manifest["optimizer"], slots = _optimizer_state(model)
        arrays.update(slots)
    _write(path, manifest, arrays, overwrite)


def save_weights(model, filepath: str | os.PathLike, overwrite: bool = True) -> None:
    """Save the weights of ``model`` to a ``.weights.npz`` (or Keras ``.weights.h5``) file,
    atomically."""
    path = save_path(filepath, weights_only=True, caller="save_weights")
    if is_keras(path):
        return keras_format.save_weights(model, path, overwrite)
    model.require_built("save_weights")
    _write(path, _manifest_base(model, "weights"), _parameter_arrays(model), overwrite)


def _manifest_base(model, kind: str) -> dict:
    from .. import __version__

    specs = {name: {"shape": list(shape), "dtype": str(dtype)}
             for name, (shape, dtype) in model_specs(model).items()}
    return {"format": "tinynn", "kind": kind, "tinynn_version": __version__,
            "model_name": model.name, "weights": specs}


def _parameter_arrays(model) -> dict[str, np.ndarray]:
    return {f"param/{name}": weight for name, weight in model.named_weights().items()}


def _optimizer_state(model) -> tuple[dict, dict[str, np.ndarray]]:
    optimizer = model.optimizer
    arrays = {}
    for name in model.layout:
        state = optimizer.state_for(name)
        arrays.update({f"optimizer/{slot}/{name}": state[slot] for slot in optimizer.slots})
    return {"iterations": optimizer.iterations, "slots": list(optimizer.slots)}, arrays


def _write(path, manifest: dict, arrays: dict[str, np.ndarray], overwrite: bool) -> None:
    check_destination(path, overwrite)
    check_finite(path, arrays)
    try:
        text = json.dumps(manifest, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"cannot save {str(path)!r}: the model's config is not "
                              f"JSON-serialisable ({error})") from error
    write_checkpoint(path, text, arrays)


# -- loading ------------------------------------------------------------------------------------
def load_weights(model, filepath: str | os.PathLike, limits: LoadLimits | None = None) -> None:
    """Load weights saved by ``save_weights`` or ``save_model`` (or a Keras file, see
    keras_format.py) into ``model``, all or nothing.

    Every name, shape and dtype is checked first: CheckpointMismatchError lists each
    difference; a damaged file raises CheckpointCorruptError. Either way the model is unchanged.
    ``limits``: what the file may ask for (``LoadLimits``; docs/security.md).
    """
    path = load_path(filepath, caller="load_weights")
    limits = checked(limits)
    if is_keras(path):
        return keras_format.load_weights(model, path, limits)
    model.require_built("load_weights")
    with CheckpointReader(path, limits) as reader, reader.reading("the file"):
        if reader.manifest.get("kind") not in ("model", "weights"):
            raise reader.corrupt(f"unknown kind {reader.manifest.get('kind')!r}")
        specs = reader.specs()
        check_matches(model, specs, path)
        reader.check_entries("param", specs)
        weights = reader.read_floats("param", specs)
    with InterruptGuard() as guard, guard.critical():
        copy_weights(model, weights)


def load_model(filepath: str | os.PathLike, compile: bool = True,
               limits: LoadLimits | None = None):
    """Rebuild the model saved by ``save_model``: architecture, weights, RNG state and, with
    ``compile=True`` and when saved, its compile settings and optimizer state. ``.keras`` and
    legacy ``.h5`` files are read by keras_format.py. ``limits``: what the file may ask for
    (``LoadLimits``; docs/security.md).

    Raises CheckpointCorruptError for damaged or foreign files, CheckpointError for a weights-only
    file or a newer format version.
    """
    path = load_path(filepath, caller="load_model")
    limits = checked(limits)
    if is_keras(path):
        return keras_format.load_model(path, compile=compile, limits=limits)
    with CheckpointReader(path, limits) as reader, reader.reading("the file"):
        kind = reader.manifest.get("kind")
        if kind == "weights":
            raise CheckpointError(f"{str(path)!r} holds weights only: build the model in code, "
                                  "then call model.load_weights on it")
        if kind != "model":
            raise reader.corrupt(f"unknown kind {kind!r}")
        specs = reader.specs()
        reader.check_entries("param", specs)
        model = interpret(reader, "the model config", serialization.model_from_config,
                           reader.manifest.get("model"),
                           {name: shape for name, (shape, _) in specs.items()})
        check_matches(model, specs, path)
        weights = reader.read_floats("param", specs)
        rng = interpret(reader, "the RNG state", serialization.checked_rng_states, model,
                         reader.manifest.get("rng"))
        slots, iterations = _read_compiled(reader, model, specs) if compile else ({}, None)
    copy_weights(model, weights)
    for slot, arrays in slots.items():
        for name, array in arrays.items():
            model.optimizer.state_for(name)[slot][...] = array
    if iterations is not None:
        model.optimizer.iterations = iterations
    serialization.set_rng_states(model, rng)
    return model


def _read_compiled(reader: CheckpointReader, model, specs: Specs) -> tuple[dict, int | None]:
    """Compile ``model`` as saved (if it was) and read the optimizer state (if saved): returns
    ``({slot: {name: array}}, iterations)``, or ``({}, None)`` without optimizer state."""
    compiled = reader.manifest.get("compile")
    if compiled is None:
        return {}, None
    interpret(reader, "the compile settings",
               lambda: model.compile(*serialization.compile_from_config(compiled)))
    state = reader.manifest.get("optimizer")
    if state is None:
        return {}, None
    iterations, names = interpret(reader, "the optimizer state", lambda: (
        non_negative_int(state["iterations"], "iterations"), list(state["slots"])))
    if names != list(model.optimizer.slots):
        raise reader.corrupt(f"the optimizer state has slots {names}, "
                             f"{type(model.optimizer).__name__} uses {list(model.optimizer.slots)}")
    trainable = {name: spec for name, spec in specs.items() if name in model.layout}
    for slot in names:
        reader.check_entries(f"optimizer/{slot}", trainable)
    return ({slot: reader.read_floats(f"optimizer/{slot}", trainable) for slot in names},
            iterations)
