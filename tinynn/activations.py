"""Element-wise activation functions with Keras's names and formulas, and their backward passes.

Two forms: classes (``GELU()``), which layers hold and call forward/backward on, and plain
functions (``gelu(x)``), NumPy counterparts of ``keras.activations.*`` computing the same
values in the input's dtype. ``get`` maps either form, a Keras name or None to an instance.

Backward contract: ``backward(a, da)`` is written in terms of the *output* ``a``
(``relu'(z) = a > 0``, ``sigmoid' = a (1 - a)``...), so layers cache only their output and
``forward(z)`` may overwrite ``z`` (callers pass their own temporary). An activation whose
derivative needs the pre-activation (gelu, silu) sets ``needs_input``: its ``forward``
leaves ``z`` unchanged, layers cache ``z`` too and call ``backward(a, da, z)``. Softmax's
backward is the full Jacobian-vector product; the cheaper fused softmax + cross-entropy
gradient lives in ``losses.py``. All forms stay finite for any finite input (no overflow
warnings), in float32 and float64.
"""

import numpy as np

from . import config, ops
from .errors import ArgumentError

SELU_ALPHA = 1.6732632423543772848170429916717  # Keras's constants
SELU_SCALE = 1.0507009873554804934193349852946
LEAKY_RELU_SLOPE = 0.2  # Keras 3's default negative_slope of leaky_relu


class Activation:
    """Base class: the identity. Shapes: ``forward`` (...) -> (...), ``backward`` likewise."""

    name = "linear"
    #: Whether ``backward`` needs the pre-activation ``z`` (then ``forward`` keeps it intact).
    needs_input = False

    def forward(self, z: np.ndarray) -> np.ndarray:
        return z

    def backward(self, a: np.ndarray, da: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        return da


class Linear(Activation):
    name = "linear"


class ReLU(Activation):
    """max(z, 0)."""

    name = "relu"

    def forward(self, z):
        return np.maximum(z, 0, out=z)

    def backward(self, a, da, z=None):
        return ops.relu_backward(np.ascontiguousarray(a), np.ascontiguousarray(da))


class LeakyReLU(Activation):
    """z for z > 0, else 0.2 z (Keras 3's ``leaky_relu`` with its default slope)."""

    name = "leaky_relu"

    def forward(self, z):
        return np.multiply(z, LEAKY_RELU_SLOPE, out=z, where=z < 0)

    def backward(self, a, da, z=None):
        return np.where(a > 0, da, da * LEAKY_RELU_SLOPE)


class ELU(Activation):
    """z for z > 0, else exp(z) - 1 (alpha 1.0, Keras's default)."""

    name = "elu"

    def forward(self, z):
        return np.expm1(z, out=z, where=z < 0)

    def backward(self, a, da, z=None):
        return np.where(a < 0, da * (a + 1), da)  # exp(z) = a + 1 where z < 0


class SELU(Activation):
    """scale z for z > 0, else scale alpha (exp(z) - 1), with Keras's scale and alpha."""

    name = "selu"

    def forward(self, z):
        negative = z < 0
        np.expm1(z, out=z, where=negative)
        np.multiply(z, SELU_SCALE * SELU_ALPHA, out=z, where=negative)
        return np.multiply(z, SELU_SCALE, out=z, where=~negative)

    def backward(self, a, da, z=None):
        # scale alpha exp(z) = a + scale alpha where z < 0
        return np.where(a < 0, da * (a + SELU_SCALE * SELU_ALPHA), da * SELU_SCALE)


class Softplus(Activation):
    """log(1 + exp(z)), as log(exp(0) + exp(z)) without overflow."""

    name = "softplus"

    def forward(self, z):
        return np.logaddexp(z, 0, out=z)

    def backward(self, a, da, z=None):
        # softplus' = sigmoid(z) = 1 - exp(-a): exact in terms of the output, no overflow.
        return da * -np.expm1(-a)


def stable_sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-z)) in z's dtype, as exp(min(z, 0)) / (1 + exp(-|z|)): no exponential
    of a positive number (no overflow), and full relative precision for z < 0 (sigmoid(-20)
    stays 2e-9, where 1 + tanh(z / 2) would cancel to 0). Written into ``out`` (which may be
    z itself) or a new array."""
    numerator = np.minimum(z, 0)
    np.exp(numerator, out=numerator)
    denominator = np.abs(z, out=out)
    np.negative(denominator, out=denominator)
    np.exp(denominator, out=denominator)
    denominator += 1
    return np.divide(numerator, denominator, out=denominator)


class Sigmoid(Activation):
    """1 / (1 + exp(-z))."""

    name = "sigmoid"

    def forward(self, z):
        return stable_sigmoid(z, out=z)

    def backward(self, a, da, z=None):
        return da * a * (1 - a)


class Tanh(Activation):
    name = "tanh"

    def forward(self, z):
        return np.tanh(z, out=z)

    def backward(self, a, da, z=None):
        return da * (1 - a * a)


class SiLU(Activation):
    """z sigmoid(z) (Keras's ``silu``, alias ``swish``)."""

    name = "silu"
    needs_input = True

    def forward(self, z):
        a = stable_sigmoid(z)
        a *= z
        return a

    def backward(self, a, da, z=None):
        s = stable_sigmoid(z)
        return da * s * (1 + z * (1 - s))  # TensorFlow's form of silu'


class GELU(Activation):
    """z Phi(z) = 0.5 z (1 + erf(z / sqrt(2))), Keras's exact form (``approximate=False``)."""

    name = "gelu"
    needs_input = True

    def forward(self, z):
        return ops.gelu(np.require(z, requirements="C"))  # C order, and 0-d stays 0-d

    def backward(self, a, da, z=None):
        return ops.gelu_backward(np.require(z, requirements="C"), np.require(da, requirements="C"))


class Softmax(Activation):
    """Softmax over the last axis, shifted by the row maximum for stability."""

    name = "softmax"

    def forward(self, z):
        z -= z.max(axis=-1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=-1, keepdims=True)
        return z

    def backward(self, a, da, z=None):
        return a * (da - np.sum(da * a, axis=-1, keepdims=True))


# -- function forms -----------------------------------------------------------------------------
def _float_copy(x) -> np.ndarray:
    """``x`` as a new array: float32 and float64 keep their dtype; Python numbers, lists and
    integer arrays become floatx (as Keras converts them)."""
    if isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind not in "biu":
        if x.dtype not in (np.float32, np.float64):
            raise ArgumentError(f"activations expected a float32 or float64 array, got dtype "
                                f"{x.dtype}")
        return np.array(x)
    return np.array(x, dtype=config.floatx())


def _apply(cls: type, x) -> np.ndarray:
    return cls().forward(_float_copy(x))


def linear(x):
    """x (a float copy)."""
    return _apply(Linear, x)


def relu(x):
    """max(x, 0)."""
    return _apply(ReLU, x)


def leaky_relu(x):
    """x for x > 0, else 0.2 x."""
    return _apply(LeakyReLU, x)


def elu(x):
    """x for x > 0, else exp(x) - 1."""
    return _apply(ELU, x)


def selu(x):
    """1.0507 x for x > 0, else 1.0507 * 1.6733 (exp(x) - 1)."""
    return _apply(SELU, x)


def softplus(x):
    """log(1 + exp(x))."""
    return _apply(Softplus, x)


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return _apply(Sigmoid, x)


def tanh(x):
    """tanh(x)."""
    return _apply(Tanh, x)


def silu(x):
    """x sigmoid(x)."""
    return _apply(SiLU, x)


swish = silu


def gelu(x):
    """0.5 x (1 + erf(x / sqrt(2)))."""
    return _apply(GELU, x)


def softmax(x):
    """exp(x) / sum(exp(x)) over the last axis."""
    return _apply(Softmax, x)


# -- identifiers --------------------------------------------------------------------------------
#: Keras's names (case-sensitive, as ``keras.activations.get``) -> class; ``swish`` is
#: Keras's alias of ``silu`` (configs write "silu" for both).
_BY_NAME = {cls.name: cls for cls in (Linear, ReLU, LeakyReLU, ELU, SELU, Softplus, Sigmoid,
                                      Tanh, SiLU, GELU, Softmax)} | {"swish": SiLU}
_BY_FUNCTION = {linear: Linear, relu: ReLU, leaky_relu: LeakyReLU, elu: ELU, selu: SELU,
                softplus: Softplus, sigmoid: Sigmoid, tanh: Tanh, silu: SiLU, gelu: GELU,
                softmax: Softmax}


def get(identifier) -> Activation:
    """Return an Activation from a Keras name (``"gelu"``, ``"swish"``...), ``None`` (linear),
    a function of this module (``tinynn.activations.gelu``) or an Activation instance."""
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if callable(identifier) and identifier in _BY_FUNCTION:
        return _BY_FUNCTION[identifier]()
    raise ArgumentError(
        f"unknown activation {identifier!r}: expected one of {sorted(_BY_NAME)}, None, an "
        "Activation or one of the functions of tinynn.activations"
    )
