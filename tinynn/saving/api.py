"""``save_model``/``load_model`` and ``save_weights``/``load_weights``.

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

from ..errors import CheckpointError, CheckpointMismatchError, TinyNNError
from ..interrupt import InterruptGuard
from ..validation import non_negative_int
from . import serialization
from .archive import CheckpointReader, Specs, write_checkpoint
from .paths import load_path, save_path

# What the model-building and compile code raises on a malformed config.
_CONFIG_ERRORS = (TinyNNError, TypeError, ValueError, KeyError, AttributeError, IndexError,
                  OverflowError, RecursionError)


# -- saving -------------------------------------------------------------------------------------
def save_model(model, filepath: str | os.PathLike, include_optimizer: bool = True,
               overwrite: bool = True) -> None:
    """Save ``model`` to one ``.npz`` file, atomically.

    The file holds the architecture and compile settings (JSON), every weight, the state of the
    model's random generators and, with ``include_optimizer``, the optimizer state (its slots,
    e.g. Adam's m and v, and ``iterations``): enough to resume training bitwise. With
    ``overwrite=False`` an existing file is an error.
    """
    path = save_path(filepath, weights_only=False, caller="save_model")
    model._require_built("save")
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
    """Save the weights of ``model`` to a ``.weights.npz`` file, atomically."""
    path = save_path(filepath, weights_only=True, caller="save_weights")
    model._require_built("save_weights")
    _write(path, _manifest_base(model, "weights"), _parameter_arrays(model), overwrite)


def _manifest_base(model, kind: str) -> dict:
    from .. import __version__

    specs = {name: {"shape": list(shape), "dtype": str(dtype)}
             for name, (shape, dtype) in _model_specs(model).items()}
    return {"format": "tinynn", "kind": kind, "tinynn_version": __version__,
            "model_name": model.name, "weights": specs}


def _parameter_arrays(model) -> dict[str, np.ndarray]:
    return {f"param/{name}": model.parameters[where].reshape(shape)
            for name, (where, shape) in model.layout.items()}


def _optimizer_state(model) -> tuple[dict, dict[str, np.ndarray]]:
    optimizer = model.optimizer
    arrays = {}
    for name in model.layout:
        state = optimizer.state_for(name)
        arrays.update({f"optimizer/{slot}/{name}": state[slot] for slot in optimizer.slots})
    return {"iterations": optimizer.iterations, "slots": list(optimizer.slots)}, arrays


def _write(path, manifest: dict, arrays: dict[str, np.ndarray], overwrite: bool) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"cannot save to {str(path)!r}: it is a directory; give a file "
                                "path")
    if not overwrite and path.exists():
        raise FileExistsError(f"{str(path)!r} exists and overwrite=False")
    for key, array in arrays.items():
        if not np.isfinite(array).all():
            raise CheckpointError(f"cannot save {str(path)!r}: {key} holds NaN or infinity, and "
                                  "a checkpoint must load back (hint: save before training "
                                  "diverged)")
    try:
        text = json.dumps(manifest, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"cannot save {str(path)!r}: the model's config is not "
                              f"JSON-serialisable ({error})") from error
    write_checkpoint(path, text, arrays)


# -- loading ------------------------------------------------------------------------------------
def _model_specs(model) -> Specs:
    """``{name: (shape, dtype)}`` of the model's parameters, in layout order."""
    return {name: (shape, model.parameters.dtype) for name, (_, shape) in model.layout.items()}


def load_weights(model, filepath: str | os.PathLike) -> None:
    """Load weights saved by ``save_weights`` or ``save_model`` into ``model``, all or nothing.

    Every name, shape and dtype is checked first: CheckpointMismatchError lists each
    difference; a damaged file raises CheckpointCorruptError. Either way the model is unchanged.
    """
    path = load_path(filepath, caller="load_weights")
    model._require_built("load_weights")
    with CheckpointReader(path) as reader:
        if reader.manifest.get("kind") not in ("model", "weights"):
            raise reader.corrupt(f"unknown kind {reader.manifest.get('kind')!r}")
        specs = reader.specs()
        _check_matches(model, specs, reader)
        reader.check_entries("param", specs)
        weights = reader.read_floats("param", specs)
    with InterruptGuard() as guard, guard.critical():
        _copy_weights(model, weights)


def load_model(filepath: str | os.PathLike, compile: bool = True):
    """Rebuild the model saved by ``save_model``: architecture, weights, RNG state and, with
    ``compile=True`` and when saved, its compile settings and optimizer state.

    Raises CheckpointCorruptError for damaged or foreign files, CheckpointError for a weights-only
    file or a newer format version.
    """
    path = load_path(filepath, caller="load_model")
    with CheckpointReader(path) as reader:
        kind = reader.manifest.get("kind")
        if kind == "weights":
            raise CheckpointError(f"{str(path)!r} holds weights only: build the model in code, "
                                  "then call model.load_weights on it")
        if kind != "model":
            raise reader.corrupt(f"unknown kind {kind!r}")
        specs = reader.specs()
        reader.check_entries("param", specs)
        model = _interpret(reader, "the model config", serialization.model_from_config,
                           reader.manifest.get("model"),
                           {name: shape for name, (shape, _) in specs.items()})
        _check_matches(model, specs, reader)
        weights = reader.read_floats("param", specs)
        rng = _interpret(reader, "the RNG state", serialization.checked_rng_states, model,
                         reader.manifest.get("rng"))
        slots, iterations = _read_compiled(reader, model, specs) if compile else ({}, None)
    _copy_weights(model, weights)
    for slot, arrays in slots.items():
        for name, array in arrays.items():
            model.optimizer.state_for(name)[slot][...] = array
    if iterations is not None:
        model.optimizer.iterations = iterations
    serialization.set_rng_states(model, rng)
    return model


def _interpret(reader: CheckpointReader, what: str, function, *args):
    """``function(*args)``, with errors from malformed content raised as corrupt-file errors."""
    try:
        return function(*args)
    except CheckpointError:
        raise
    except _CONFIG_ERRORS as error:
        raise reader.corrupt(f"{what} is invalid ({type(error).__name__}: {error})") from error


def _read_compiled(reader: CheckpointReader, model, specs: Specs) -> tuple[dict, int | None]:
    """Compile ``model`` as saved (if it was) and read the optimizer state (if saved): returns
    ``({slot: {name: array}}, iterations)``, or ``({}, None)`` without optimizer state."""
    compiled = reader.manifest.get("compile")
    if compiled is None:
        return {}, None
    _interpret(reader, "the compile settings",
               lambda: model.compile(*serialization.compile_from_config(compiled)))
    state = reader.manifest.get("optimizer")
    if state is None:
        return {}, None
    iterations, names = _interpret(reader, "the optimizer state", lambda: (
        non_negative_int(state["iterations"], "iterations"), list(state["slots"])))
    if names != list(model.optimizer.slots):
        raise reader.corrupt(f"the optimizer state has slots {names}, "
                             f"{type(model.optimizer).__name__} uses {list(model.optimizer.slots)}")
    for slot in names:
        reader.check_entries(f"optimizer/{slot}", specs)
    return {slot: reader.read_floats(f"optimizer/{slot}", specs) for slot in names}, iterations


def _check_matches(model, specs: Specs, reader: CheckpointReader) -> None:
    """Raise CheckpointMismatchError listing every parameter whose name, shape or dtype in
    ``specs`` (the file) differs from ``model``."""
    expected = _model_specs(model)
    problems = []
    for name, spec in expected.items():
        if name not in specs:
            problems.append(f"{name}: {_describe(spec)} in the model, missing from the file")
        elif specs[name] != spec:
            problems.append(f"{name}: {_describe(spec)} in the model, {_describe(specs[name])} "
                            "in the file")
    problems += [f"{name}: {_describe(spec)} in the file, not in the model"
                 for name, spec in specs.items() if name not in expected]
    if not problems:
        return
    dtypes = {str(dtype) for _, dtype in specs.values()} - {str(model.parameters.dtype)}
    hint = (f"call tinynn.config.set_floatx({dtypes.pop()!r}) before building the model"
            if dtypes else "build the model with the saved architecture (layer names come from "
            "the layer types and their order), or rebuild it with tinynn.models.load_model")
    raise CheckpointMismatchError(
        f"checkpoint {str(reader.path)!r} does not match model {model.name!r} "
        f"({len(problems)} difference{'s' * (len(problems) > 1)}); the model was not changed:\n"
        + "\n".join(f"  - {problem}" for problem in problems) + f"\nhint: {hint}")


def _describe(spec: tuple) -> str:
    shape, dtype = spec
    return f"{dtype} {tuple(shape)}"


def _copy_weights(model, weights: dict[str, np.ndarray]) -> None:
    """Copy into the model's parameter buffer (the layers' views stay valid)."""
    for name, array in weights.items():
        where, _ = model.layout[name]
        model.parameters[where] = array.ravel()

