"""SGD and Adam with Keras's formulas and defaults, updating flat buffers in place.

A model hands its optimizer one contiguous parameter buffer and the matching gradient buffer
(``build``), then calls ``apply`` once per step: a single fused kernel pass updates every
parameter. Per-parameter state (SGD velocity, Adam m and v) lives in flat buffers of the same
layout, so ``state_for(key)`` can return views, and saving or restoring state is a copy.
"""

import math

import numpy as np

from . import ops
from .errors import ArgumentError
from .validation import real_in_range


class Optimizer:
    """Base class.

    Attributes: ``learning_rate`` (float, may be changed between steps), ``iterations`` (steps
    applied so far). ``slots`` names the state buffers (e.g. ``("m", "v")``).
    """

    name = "optimizer"
    slots: tuple = ()

    def __init__(self, learning_rate: float):
        self.learning_rate = learning_rate
        self.iterations = 0
        self.state: dict[str, np.ndarray] = {}
        self._layout: dict[str, tuple[slice, tuple]] = {}

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = real_in_range(value, f"{type(self).__name__} learning_rate", 0,
                                            math.inf, low_open=True)

    def build(self, params: np.ndarray, layout: dict[str, tuple[slice, tuple]]) -> None:
        """Allocate zeroed state buffers like ``params`` (P,). ``layout`` maps a parameter key
        (``"dense/kernel"``) to its slice of the buffer and its shape."""
        self.state = {slot: np.zeros_like(params) for slot in self.slots}
        self._layout = dict(layout)
        self.iterations = 0

    def state_for(self, key: str) -> dict[str, np.ndarray]:
        """Views of the state of one parameter, e.g. ``{"m": ..., "v": ...}`` for Adam."""
        if key not in self._layout:
            raise ArgumentError(f"unknown parameter {key!r}: expected one of {list(self._layout)}")
        where, shape = self._layout[key]
        return {slot: buf[where].reshape(shape) for slot, buf in self.state.items()}

    def apply(self, params: np.ndarray, grads: np.ndarray) -> None:
        """Update ``params`` (P,) in place from ``grads`` (P,); then ``iterations += 1``."""
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name, "learning_rate": self.learning_rate}


class SGD(Optimizer):
    """SGD(learning_rate=0.01, momentum=0.0, nesterov=False), as Keras:
    v = momentum * v - lr * g;  w += v  (nesterov: w += momentum * v - lr * g)."""

    name = "sgd"

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False):
        super().__init__(learning_rate)
        self.momentum = real_in_range(momentum, "SGD momentum", 0, 1, high_open=True)
        self.nesterov = bool(nesterov)
        self.slots = ("velocity",) if self.momentum else ()

    def apply(self, params, grads):
        dtype = params.dtype.type
        velocity = self.state.get("velocity", params[:0])
        ops.sgd_update(params, grads, velocity, dtype(self.learning_rate), dtype(self.momentum),
                       self.nesterov)
        self.iterations += 1

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7), as Keras: with
    t = iterations + 1, alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t),
    m += (g - m)(1 - beta_1), v += (g^2 - v)(1 - beta_2), w -= alpha m / (sqrt(v) + epsilon).
    (Epsilon is added outside the bias correction, unlike PyTorch.)"""

    name = "adam"
    slots = ("m", "v")

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7):
        super().__init__(learning_rate)
        self.beta_1 = real_in_range(beta_1, "Adam beta_1", 0, 1, high_open=True)
        self.beta_2 = real_in_range(beta_2, "Adam beta_2", 0, 1, high_open=True)
        self.epsilon = real_in_range(epsilon, "Adam epsilon", 0, math.inf, low_open=True)

    def apply(self, params, grads):
        dtype = params.dtype.type
        t = self.iterations + 1
        # Computed in the parameters' dtype, as Keras does with float32 variables.
        beta_1, beta_2 = dtype(self.beta_1), dtype(self.beta_2)
        one = dtype(1)
        alpha = dtype(self.learning_rate) * np.sqrt(one - beta_2 ** t) / (one - beta_1 ** t)
        ops.adam_update(params, grads, self.state["m"], self.state["v"], dtype(alpha),
                        one - beta_1, one - beta_2, dtype(self.epsilon))
        self.iterations += 1

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


_REGISTRY = {"sgd": SGD, "adam": Adam}


def get(identifier) -> Optimizer:
    """Return an Optimizer from a name (``"adam"``, ``"sgd"``) or an Optimizer instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _REGISTRY:
        return _REGISTRY[identifier.lower()]()
    raise ArgumentError(f"unknown optimizer {identifier!r}: expected one of {sorted(_REGISTRY)} "
                      "or an Optimizer instance")
