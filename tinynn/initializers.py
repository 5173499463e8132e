"""Weight initializers with Keras's names, fan rules and formulas.

An initializer is called as ``init(shape, dtype, rng)`` and returns a new array; ``rng`` is the
model's init Generator, so initial weights depend only on the model seed.
"""

from math import prod, sqrt

import numpy as np

from .errors import ArgumentError


def compute_fans(shape: tuple) -> tuple[int, int]:
    """Keras's fan rule: 2-D (a, b) -> (a, b); conv (kh, kw, in, out) -> (in*kh*kw, out*kh*kw)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: subclasses implement ``sample(shape, rng) -> float64 array``."""

    name = "initializer"

    def __call__(self, shape: tuple, dtype, rng: np.random.Generator) -> np.ndarray:
        return self.sample(tuple(shape), rng).astype(dtype, copy=False)

    def sample(self, shape: tuple, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class Zeros(Initializer):
    name = "zeros"

    def sample(self, shape, rng):
        return np.zeros(shape)


class Ones(Initializer):
    name = "ones"

    def sample(self, shape, rng):
        return np.ones(shape)


class GlorotUniform(Initializer):
    """U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out))."""

    name = "glorot_uniform"

    def sample(self, shape, rng):
        fan_in, fan_out = compute_fans(shape)
        limit = sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)


class HeUniform(Initializer):
    """U(-limit, limit) with limit = sqrt(6 / fan_in)."""

    name = "he_uniform"

    def sample(self, shape, rng):
        fan_in, _ = compute_fans(shape)
        limit = sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, size=shape)


class HeNormal(Initializer):
    """Truncated normal (cut at 2 std, as Keras) with std = sqrt(2 / fan_in)."""

    name = "he_normal"

    def sample(self, shape, rng):
        fan_in, _ = compute_fans(shape)
        std = sqrt(2.0 / fan_in) / 0.87962566103423978  # Keras's truncation correction
        values = rng.standard_normal(size=shape)
        outside = np.abs(values) > 2.0
        while outside.any():  # redraw until every value lies within 2 std
            values[outside] = rng.standard_normal(size=int(outside.sum()))
            outside = np.abs(values) > 2.0
        return values * std


#: The strings ``keras.initializers.get`` accepts for these initializers (case-sensitive):
#: class names, their snake_case forms, and Keras's aliases "zero" and "one".
_REGISTRY = {name: cls for cls in (Zeros, Ones, GlorotUniform, HeUniform, HeNormal)
             for name in (cls.name, cls.__name__)} | {"zero": Zeros, "one": Ones}


def get(identifier) -> Initializer:
    """Return an Initializer from a Keras name (``"glorot_uniform"``, ``"GlorotUniform"``) or
    an Initializer instance."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str) and identifier in _REGISTRY:
        return _REGISTRY[identifier]()
    raise ArgumentError(
        f"unknown initializer {identifier!r}: expected one of {sorted(_REGISTRY)} "
        "or an Initializer instance"
    )
