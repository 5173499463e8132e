"""Weight regularizers with Keras's names, defaults and formulas.

A regularizer maps a weight to a penalty that the model adds to its loss (``L1``:
``l1 * sum(|w|)``, ``L2``: ``l2 * sum(w^2)``, ``L1L2``: both), and gives the penalty's gradient,
which the model adds to the weight's gradient after ``backward``. Layers take them as
``kernel_regularizer=``/``bias_regularizer=`` (a name such as ``"l2"``, a config dict or an
instance), as Keras layers do.
"""

import math

import numpy as np

from .errors import ArgumentError
from .validation import real_in_range


class Regularizer:
    """Base class: ``penalty = regularizer(w)`` (a float) and ``regularizer.gradient(w)``
    (an array like ``w``)."""

    def __call__(self, w: np.ndarray) -> float:
        raise NotImplementedError

    def gradient(self, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


def _factor(value, name: str) -> float:
    return real_in_range(value, f"{name} factor", 0, math.inf)


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w^2)`` (Keras: both default to 0)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _factor(l1, "l1")
        self.l2 = _factor(l2, "l2")

    def __call__(self, w):
        w = np.asarray(w)
        total = 0.0
        if self.l1:
            total += self.l1 * float(np.sum(np.abs(w), dtype=np.float64))
        if self.l2:
            total += self.l2 * float(np.sum(np.square(w), dtype=np.float64))
        return total

    def gradient(self, w):
        grad = np.zeros_like(w)
        if self.l1:
            grad += w.dtype.type(self.l1) * np.sign(w)
        if self.l2:
            grad += w.dtype.type(2 * self.l2) * w
        return grad

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|w|)`` (Keras's default ``l1=0.01``)."""

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(w^2)`` (Keras's default ``l2=0.01``)."""

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_NAMES = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}


def serialize(regularizer: Regularizer | None) -> dict | None:
    """``{"class_name": "L2", "config": {"l2": 0.01}}`` (or None), which ``get`` reads."""
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


def get(identifier) -> Regularizer | None:
    """A Regularizer from None, an instance, a name (``"l1"``, ``"l2"``, ``"l1_l2"`` or a class
    name, with Keras's defaults) or a ``serialize``/Keras config dict."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        cls = _CLASSES.get(identifier) or _NAMES.get(identifier.lower())
        if cls is not None:
            return cls()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        config = identifier.get("config") or {}
        if not isinstance(config, dict):
            raise ArgumentError(f"regularizer config expected a dict, got {config!r}")
        return _CLASSES[identifier["class_name"]](**config)
    raise ArgumentError(f"unknown regularizer {identifier!r}: expected None, one of "
                        f"{sorted(_NAMES)}, a config dict with class_name in {sorted(_CLASSES)}, "
                        "or a Regularizer instance")
