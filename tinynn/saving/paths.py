"""File-name rules: ``.npz`` for whole models, ``.weights.npz`` for weights only.

Names ending in ``.keras`` or ``.h5`` (``.weights.h5`` included) are reserved for the Keras
format, which tinynn does not read or write yet; they are refused with a clear message rather
than written in another format under a misleading name.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError

MODEL_SUFFIX = ".npz"
WEIGHTS_SUFFIX = ".weights.npz"
KERAS_SUFFIXES = (".keras", ".h5")


def _as_path(filepath, caller: str) -> Path:
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"{caller} expected a file path (str or os.PathLike), got "
                        f"{type(filepath).__name__}")
    path = Path(filepath)
    if path.name.endswith(KERAS_SUFFIXES):
        raise CheckpointError(
            f"{caller}: {str(path)!r} names the Keras format (.keras, .h5), which tinynn will "
            f"support in a later version; use a name ending in {MODEL_SUFFIX} for a whole model "
            f"or {WEIGHTS_SUFFIX} for weights only")
    return path


def save_path(filepath, weights_only: bool, caller: str) -> Path:
    """``filepath`` as a Path if its extension suits the file to write, else CheckpointError.

    Placeholders such as ``{epoch:02d}`` may still be in the name (ModelCheckpoint checks its
    template before formatting it).
    """
    path = _as_path(filepath, caller)
    name = path.name
    if weights_only and not name.endswith(WEIGHTS_SUFFIX):
        raise CheckpointError(
            f"{caller} expected a path ending in {WEIGHTS_SUFFIX} (weights only), got "
            f"{str(path)!r}" + (": files ending in just .npz hold a whole model, written by "
                                "model.save" if name.endswith(MODEL_SUFFIX) else ""))
    if not weights_only and name.endswith(WEIGHTS_SUFFIX):
        raise CheckpointError(
            f"{caller}: {str(path)!r} ends in {WEIGHTS_SUFFIX}, the extension of weights-only "
            f"files: use save_weights for those, or a name like 'model{MODEL_SUFFIX}' for the "
            "whole model")
    if not name.endswith(MODEL_SUFFIX):
        raise CheckpointError(f"{caller} expected a path ending in {MODEL_SUFFIX}, got "
                              f"{str(path)!r}")
    return path


def load_path(filepath, caller: str) -> Path:
    """``filepath`` as a Path; any name but the reserved Keras ones (the content decides)."""
    return _as_path(filepath, caller)
