"""SGD, RMSprop, Adam and AdamW with Keras's formulas and defaults, updating flat buffers in place.

A model hands its optimizer one contiguous parameter buffer and the matching gradient buffer
(``build``), then calls ``apply`` once per step: a single fused kernel pass updates every
parameter. Per-parameter state (SGD velocity, Adam m and v...) lives in flat buffers of the same
layout, so ``state_for(key)`` can return views, and saving or restoring state is a copy.

Scalars are computed as Keras computes them with variables of the parameters' dtype: Python
floats such as ``1 - rho`` are evaluated in double precision, then cast to that dtype. With
float32 parameters, every update is bitwise the one Keras 3 (TensorFlow backend) makes.
"""

import math

import numpy as np

from . import ops
from .errors import ArgumentError
from .validation import real_in_range


def _flag(value, name: str) -> bool:
    """Return ``value`` if it is a bool (NumPy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{name} expected True or False, got {value!r}")
    return bool(value)


class Optimizer:
    """Base class.

    Attributes: ``learning_rate`` (float, may be changed between steps), ``iterations`` (steps
    applied so far). ``slots`` names the state buffers (e.g. ``("m", "v")``);
    ``keras_slot_groups`` says how Keras orders them in its files (see that property).
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

    @property
    def keras_slot_groups(self) -> tuple:
        """The slots grouped as Keras creates its variables: group after group, each group's
        slots interleaved parameter by parameter (Adam: m and v of the first kernel, of its
        bias, ...; RMSprop: every velocity, then every momentum). Default: one slot a group."""
        return tuple((slot,) for slot in self.slots)

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
        self.nesterov = _flag(nesterov, "SGD nesterov")
        self.slots = ("velocity",) if self.momentum else ()

    def apply(self, params, grads):
        dtype = params.dtype.type
        velocity = self.state.get("velocity", params[:0])
        ops.sgd_update(params, grads, velocity, dtype(self.learning_rate), dtype(self.momentum),
                       self.nesterov)
        self.iterations += 1

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False), as
    Keras: v = rho v + (1 - rho) g^2;  centered: a = rho a + (1 - rho) g, d = v - a^2 + eps,
    else d = v + eps;  step = lr g / sqrt(d);  momentum > 0: s = momentum s + step, w -= s,
    else w -= step. Slots: velocity, then momentum (momentum > 0), then average_gradient
    (centered), Keras's names and order."""

    name = "rmsprop"

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False):
        super().__init__(learning_rate)
        self.rho = real_in_range(rho, "RMSprop rho", 0, 1, high_open=True)
        self.momentum = real_in_range(momentum, "RMSprop momentum", 0, 1, high_open=True)
        self.epsilon = real_in_range(epsilon, "RMSprop epsilon", 0, math.inf, low_open=True)
        self.centered = _flag(centered, "RMSprop centered")
        self.slots = ("velocity", *("momentum",) * (self.momentum > 0),
                      *("average_gradient",) * self.centered)

    def apply(self, params, grads):
        dtype = params.dtype.type
        unused = params[:0]
        ops.rmsprop_update(params, grads, self.state["velocity"],
                           self.state.get("momentum", unused),
                           self.state.get("average_gradient", unused),
                           dtype(self.learning_rate), dtype(self.rho), dtype(1 - self.rho),
                           dtype(self.momentum), dtype(self.epsilon), self.centered)
        self.iterations += 1

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adam(Optimizer):
    """Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False), as
    Keras: with t = iterations + 1, alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t),
    m += (g - m)(1 - beta_1), v += (g^2 - v)(1 - beta_2), w -= alpha m / (sqrt(v) + epsilon)
    (epsilon outside the bias correction, unlike PyTorch). AMSGrad: v_hat = max(v_hat, v)
    replaces v in the step. Slots m and v (interleaved per parameter in Keras's files), then
    v_hat."""

    name = "adam"
    weight_decay = 0.0  # AdamW's decoupled weight decay; Adam has none

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False):
        super().__init__(learning_rate)
        kind = type(self).__name__
        self.beta_1 = real_in_range(beta_1, f"{kind} beta_1", 0, 1, high_open=True)
        self.beta_2 = real_in_range(beta_2, f"{kind} beta_2", 0, 1, high_open=True)
        self.epsilon = real_in_range(epsilon, f"{kind} epsilon", 0, math.inf, low_open=True)
        self.amsgrad = _flag(amsgrad, f"{kind} amsgrad")
        self.slots = ("m", "v", *("v_hat",) * self.amsgrad)

    @property
    def keras_slot_groups(self):
        return (("m", "v"), *(("v_hat",),) * self.amsgrad)

    def apply(self, params, grads):
        dtype = params.dtype.type
        t = self.iterations + 1
        beta_1, beta_2, one = dtype(self.beta_1), dtype(self.beta_2), dtype(1)
        alpha = dtype(self.learning_rate) * np.sqrt(one - beta_2 ** t) / (one - beta_1 ** t)
        moments = (self.state["m"], self.state["v"])
        scalars = (dtype(alpha), dtype(1 - self.beta_1), dtype(1 - self.beta_2),
                   dtype(self.epsilon))
        if self.amsgrad or self.weight_decay:
            ops.adamw_update(params, grads, *moments, self.state.get("v_hat", params[:0]),
                             dtype(self.weight_decay), dtype(self.learning_rate), *scalars,
                             self.amsgrad)
        else:
            ops.adam_update(params, grads, *moments, *scalars)
        self.iterations += 1

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """AdamW(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
    amsgrad=False), as Keras: before Adam's step, every parameter (biases included) decays,
    w -= w * weight_decay * lr."""

    name = "adamw"

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad)
        self.weight_decay = real_in_range(weight_decay, "AdamW weight_decay", 0, math.inf)

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.weight_decay}


_REGISTRY = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def get(identifier) -> Optimizer:
    """Return an Optimizer from a name in any case (``"adam"``, ``"Adam"``, ``"SGD"``: Keras
    lower-cases the names of its optimizers) or an Optimizer instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _REGISTRY:
        return _REGISTRY[identifier.lower()]()
    raise ArgumentError(f"unknown optimizer {identifier!r}: expected one of {sorted(_REGISTRY)} "
                      "(in any case) or an Optimizer instance")
