"""File-name rules. tinynn's format: ``.npz`` for whole models, ``.weights.npz`` for weights
only. Keras's: ``.keras`` for whole models, ``.weights.h5`` for weights only, both read and
written; legacy ``.h5`` files (``model.save("m.h5")`` in Keras 2 or 3, or Keras 2's
``save_weights("w.h5")``) are read only.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError

MODEL_SUFFIX = ".npz"
WEIGHTS_SUFFIX = ".weights.npz"
KERAS_MODEL_SUFFIX = ".keras"
KERAS_WEIGHTS_SUFFIX = ".weights.h5"
LEGACY_SUFFIX = ".h5"


def _as_path(filepath, caller: str) -> Path:
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"{caller} expected a file path (str or os.PathLike), got "
                        f"{type(filepath).__name__}")
    return Path(filepath)


def is_keras(path: Path) -> bool:
    """True for the names of Keras files (``.keras``, ``.h5``)."""
    return path.name.endswith((KERAS_MODEL_SUFFIX, LEGACY_SUFFIX))


def save_path(filepath, weights_only: bool, caller: str) -> Path:
    """``filepath`` as a Path if its extension suits the file to write, else CheckpointError.

    Placeholders such as ``{epoch:02d}`` may still be in the name (ModelCheckpoint checks its
    template before formatting it).
    """
    path = _as_path(filepath, caller)
    name = path.name
    if weights_only:
        if name.endswith((WEIGHTS_SUFFIX, KERAS_WEIGHTS_SUFFIX)):
            return path
        raise CheckpointError(
            f"{caller} expected a path ending in {WEIGHTS_SUFFIX} (tinynn) or "
            f"{KERAS_WEIGHTS_SUFFIX} (Keras), got {str(path)!r}" + _why_not(name, weights_only))
    suffix = next((s for s in (WEIGHTS_SUFFIX, KERAS_WEIGHTS_SUFFIX) if name.endswith(s)), None)
    if suffix:
        raise CheckpointError(
            f"{caller}: {str(path)!r} ends in {suffix}, the extension of weights-only files: use "
            f"save_weights for those, or a name like 'model{MODEL_SUFFIX}' or "
            f"'model{KERAS_MODEL_SUFFIX}' for the whole model")
    if name.endswith((MODEL_SUFFIX, KERAS_MODEL_SUFFIX)):
        return path
    raise CheckpointError(f"{caller} expected a path ending in {MODEL_SUFFIX} (tinynn) or "
                          f"{KERAS_MODEL_SUFFIX} (Keras), got {str(path)!r}"
                          + _why_not(name, weights_only))


def _why_not(name: str, weights_only: bool) -> str:
    """The reason a familiar but refused extension is refused."""
    if name.endswith(LEGACY_SUFFIX):
        return (": tinynn reads legacy .h5 files but writes Keras's current formats, "
                f"{KERAS_MODEL_SUFFIX} and {KERAS_WEIGHTS_SUFFIX}")
    if weights_only and name.endswith((MODEL_SUFFIX, KERAS_MODEL_SUFFIX)):
        return ": files ending in just .npz or .keras hold a whole model, written by model.save"
    return ""


def load_path(filepath, caller: str) -> Path:
    """``filepath`` as a Path; Keras names go to the Keras reader, any other name to tinynn's
    (the content decides)."""
    return _as_path(filepath, caller)
