"""Weight regularizers with Keras 3's names, defaults, validation and formulas.

A regularizer maps a weight to a penalty that the model adds to its loss (``L1``:
``l1 * sum(|w|)``, ``L2``: ``l2 * sum(w^2)``, ``L1L2``: both), and gives the penalty's gradient,
which the model adds to the weight's gradient after ``backward``. Layers take them as
``kernel_regularizer=``/``bias_regularizer=``: None, an instance, a config dict, or one of
Keras's identifiers "l1", "l2", "l1l2", "L1", "L2", "L1L2" (with the class defaults, so
"l1l2" has zero factors; Keras 3 has no "l1_l2").

As in Keras, a factor of None means the default, factors must be finite and >= 0, ``L1`` keeps
its factor rounded to float32 (Keras stores it as a float32 tensor: ``L1(0.01).l1`` is
0.009999999776482582), and the penalty is computed in the weight's dtype with the factors cast
to it.
"""

import inspect
import math

import numpy as np

from .errors import ArgumentError
from .validation import real_in_range


class Regularizer:
    """Base class: ``regularizer(w)`` is the penalty (a NumPy scalar of ``w``'s dtype) and
    ``regularizer.gradient(w)`` its gradient (an array of ``w``'s shape and dtype)."""

    def __call__(self, w: np.ndarray) -> np.floating:
        raise NotImplementedError

    def gradient(self, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> "Regularizer":
        return cls(**config)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


def _factor(value, owner: str, name: str, default: float) -> float:
    """Keras's check: None means ``default``; otherwise a finite real >= 0, as a float."""
    if value is None:
        return default
    return real_in_range(value, f"{owner} factor {name}", 0, math.inf)


def _penalty(w: np.ndarray, l1: float, l2: float) -> np.floating:
    """``l1 * sum(|w|) + l2 * sum(w^2)`` in ``w``'s dtype; a term with a zero factor is skipped."""
    cast = w.dtype.type
    total = cast(0)
    if l1:
        total += cast(l1) * np.sum(np.abs(w))
    if l2:
        total += cast(l2) * np.sum(np.square(w))
    return total


def _penalty_gradient(w: np.ndarray, l1: float, l2: float) -> np.ndarray:
    """``l1 * sign(w) + 2 * l2 * w`` in ``w``'s dtype (the subgradient 0 where w == 0, as
    TensorFlow's, JAX's and PyTorch's ``abs``)."""
    cast = w.dtype.type
    grad = np.zeros_like(w)
    if l1:
        grad += cast(l1) * np.sign(w)
    if l2:
        grad += cast(2 * l2) * w
    return grad


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w^2)``; both factors default to 0 (as Keras's, also for the
    identifier "l1l2")."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _factor(l1, "L1L2", "l1", 0.0)
        self.l2 = _factor(l2, "L1L2", "l2", 0.0)

    def __call__(self, w):
        return _penalty(w, self.l1, self.l2)

    def gradient(self, w):
        return _penalty_gradient(w, self.l1, self.l2)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1 * sum(|w|)`` (default ``l1=0.01``, kept rounded to float32 as Keras keeps it)."""

    def __init__(self, l1: float = 0.01):
        self.l1 = float(np.float32(_factor(l1, "L1", "l1", 0.01)))

    def __call__(self, w):
        return _penalty(w, self.l1, 0.0)

    def gradient(self, w):
        return _penalty_gradient(w, self.l1, 0.0)

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(w^2)`` (default ``l2=0.01``)."""

    def __init__(self, l2: float = 0.01):
        self.l2 = _factor(l2, "L2", "l2", 0.01)

    def __call__(self, w):
        return _penalty(w, 0.0, self.l2)

    def gradient(self, w):
        return _penalty_gradient(w, 0.0, self.l2)

    def get_config(self):
        return {"l2": self.l2}


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
#: The identifiers Keras 3's ``regularizers.get`` takes for these classes: the class names and
#: their snake_case forms.
_IDENTIFIERS = {**_CLASSES, "l1": L1, "l2": L2, "l1l2": L1L2}


def serialize(regularizer: Regularizer | None) -> dict | None:
    """``{"class_name": "L2", "config": {"l2": 0.01}}`` (or None), which ``get`` reads."""
    if regularizer is None:
        return None
    if _CLASSES.get(type(regularizer).__name__) is not type(regularizer):
        raise ArgumentError(f"cannot serialize {type(regularizer).__name__}: a config can name "
                            f"only tinynn's regularizers {sorted(_CLASSES)}")
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


def get(identifier) -> Regularizer | None:
    """A Regularizer from None, an instance, one of Keras's identifiers (``"l1"``, ``"l2"``,
    ``"l1l2"``, ``"L1"``, ``"L2"``, ``"L1L2"``: the class with its defaults) or a config dict
    (``serialize``'s or Keras's ``{"module", "class_name", "config", "registered_name"}``; a
    missing config means the defaults)."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier in _IDENTIFIERS:
        return _IDENTIFIERS[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _IDENTIFIERS:
        return _from_dict(_IDENTIFIERS[identifier["class_name"]], identifier.get("config", {}))
    hint = (": Keras 3 has no 'l1_l2'; 'l1l2' is L1L2() with zero factors, use "
            "L1L2(l1=0.01, l2=0.01)" if identifier == "l1_l2" else "")
    raise ArgumentError(f"regularizer expected None, one of {sorted(_IDENTIFIERS)}, a config "
                        "dict such as {'class_name': 'L2', 'config': {'l2': 0.01}} or a "
                        f"Regularizer instance, got {identifier!r}{hint}")


def _from_dict(cls: type, config) -> Regularizer:
    accepted = list(inspect.signature(cls).parameters)
    if not isinstance(config, dict) or not set(config) <= set(accepted):
        raise ArgumentError(f"{cls.__name__} config expected a dict with keys among {accepted}, "
                            f"got {config!r}")
    return cls.from_config(config)
