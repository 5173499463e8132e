"""Checks shared by every file format: before writing (destination, finite weights) and
before loading (every name, shape and dtype against the model), and the final copy."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, CheckpointMismatchError, TinyNNError
from .archive import Specs

#: What model-building and compile code raises on a malformed config (loaders report these as
#: a damaged file).
CONFIG_ERRORS = (TinyNNError, TypeError, ValueError, KeyError, AttributeError, IndexError,
                 OverflowError, RecursionError)

REBUILD_HINT = ("build the model with the saved architecture (layer names come from the layer "
                "types and their order), or rebuild it with tinynn.models.load_model")


def check_destination(path: Path, overwrite: bool) -> None:
    """Refuse a directory, and an existing file (or link) when ``overwrite`` is False. A
    symbolic link is never followed: the atomic save replaces the link itself."""
    if path.is_dir() and not path.is_symlink():
        raise IsADirectoryError(f"cannot save to {str(path)!r}: it is a directory; give a file "
                                "path")
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(f"{str(path)!r} exists and overwrite=False")


def check_finite(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Refuse to save NaN or infinity: a file must load back."""
    for key, array in arrays.items():
        if not np.isfinite(array).all():
            raise CheckpointError(f"cannot save {str(path)!r}: {key} holds NaN or infinity, and "
                                  "a checkpoint must load back (hint: save before training "
                                  "diverged)")


def model_specs(model) -> Specs:
    """``{name: (shape, dtype)}`` of the model's weights, in Keras's order."""
    return {name: (w.shape, w.dtype) for name, w in model.named_weights().items()}


def check_matches(model, specs: Specs, path: Path, hint: str = REBUILD_HINT) -> None:
    """Raise CheckpointMismatchError listing every weight whose name, shape or dtype in
    ``specs`` (the file) differs from ``model``."""
    expected = model_specs(model)
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
    if dtypes:
        hint = f"call tinynn.config.set_floatx({dtypes.pop()!r}) before building the model"
    raise CheckpointMismatchError(
        f"checkpoint {str(path)!r} does not match model {model.name!r} "
        f"({len(problems)} difference{'s' * (len(problems) > 1)}); the model was not changed:\n"
        + "\n".join(f"  - {problem}" for problem in problems) + f"\nhint: {hint}")


def _describe(spec: tuple) -> str:
    shape, dtype = spec
    return f"{dtype} {tuple(shape)}"


def copy_weights(model, weights: dict[str, np.ndarray]) -> None:
    """Copy into the model's weight buffers (the layers' views stay valid)."""
    targets = model.named_weights()
    for name, array in weights.items():
        targets[name][...] = array.reshape(targets[name].shape)


def interpret(reader, what: str, function, *args):
    """``function(*args)``, with the errors of malformed content raised as ``reader``'s
    corrupt-file error (any reader with a ``corrupt(problem)`` method)."""
    try:
        return function(*args)
    except CheckpointError:
        raise
    except CONFIG_ERRORS as error:
        raise reader.corrupt(f"{what} is invalid ({type(error).__name__}: {error})") from error
