"""Element-wise activation functions with their backward passes.

Each activation's backward is written in terms of its *output* ``a`` (``relu'(z) = a > 0``,
``sigmoid' = a (1 - a)``...), so layers cache only their output. Softmax's backward is the
full Jacobian-vector product; the cheaper fused softmax + cross-entropy gradient lives in
``losses.py`` and is used by the model when the last layer is a softmax.
"""

import numpy as np

from . import ops
from .errors import ArgumentError


class Activation:
    """Base class. ``forward(z)`` may overwrite ``z`` (callers pass their own temporary)."""

    name = "linear"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return z

    def backward(self, a: np.ndarray, da: np.ndarray) -> np.ndarray:
        return da


class Linear(Activation):
    name = "linear"


class ReLU(Activation):
    name = "relu"

    def forward(self, z):
        return np.maximum(z, 0, out=z)

    def backward(self, a, da):
        return ops.relu_backward(np.ascontiguousarray(a), np.ascontiguousarray(da))


class Sigmoid(Activation):
    """1 / (1 + exp(-z)), evaluated as 0.5 (1 + tanh(z / 2)) so it never overflows."""

    name = "sigmoid"

    def forward(self, z):
        z *= 0.5
        np.tanh(z, out=z)
        z += 1
        z *= 0.5
        return z

    def backward(self, a, da):
        return da * a * (1 - a)


class Tanh(Activation):
    name = "tanh"

    def forward(self, z):
        return np.tanh(z, out=z)

    def backward(self, a, da):
        return da * (1 - a * a)


class Softmax(Activation):
    """Softmax over the last axis, shifted by the row maximum for stability."""

    name = "softmax"

    def forward(self, z):
        z -= z.max(axis=-1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=-1, keepdims=True)
        return z

    def backward(self, a, da):
        return a * (da - np.sum(da * a, axis=-1, keepdims=True))


_REGISTRY = {cls.name: cls for cls in (Linear, ReLU, Sigmoid, Tanh, Softmax)}


def get(identifier) -> Activation:
    """Return an Activation from a name, ``None`` (linear) or an Activation instance."""
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str) and identifier in _REGISTRY:
        return _REGISTRY[identifier]()
    raise ArgumentError(
        f"unknown activation {identifier!r}: expected one of {sorted(_REGISTRY)} or None"
    )
