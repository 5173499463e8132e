"""InputLayer (and ``Input``, which makes one), Flatten and Dense."""

import numpy as np

from .. import activations, config, initializers, ops, regularizers
from ..errors import ArgumentError, DTypeError, ShapeError
from ..node import Node, SymbolicTensor
from ..validation import positive_int
from .base import Layer, register


class ActivationMixin:
    """For layers computing ``activation(linear(x))``.

    Subclasses implement ``linear_forward(x, training, relu)`` (``x @ kernel + bias``, passed
    through ReLU in the same pass over memory when ``relu``) and ``linear_backward(dz)``.
    Training caches the output ``a``, and the pre-activation ``z`` too when the activation's
    backward needs it (``needs_input``: gelu, silu). The model calls
    ``forward_logits``/``backward_logits`` on a softmax output layer to fuse softmax with
    cross-entropy (computed from logits, so logits of 1e4 stay finite).
    """

    activation: activations.Activation

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if isinstance(self.activation, activations.ReLU):
            a = self.linear_forward(x, training, relu=True)
        else:
            z = self.linear_forward(x, training)
            a = self.activation.forward(z)
            if training and self.activation.needs_input:
                self._cache["z"] = z
        if training:
            self._cache["a"] = a
        return a

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self.activation.needs_input:
            a, z = self.pop_cache("a", "z")
        else:
            (a,), z = self.pop_cache("a"), None
        return self.linear_backward(self.activation.backward(a, dy, z))

    def forward_logits(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The pre-activation output (logits), shape as ``forward``'s."""
        return self.linear_forward(x, training)

    def backward_logits(self, dz: np.ndarray) -> np.ndarray:
        """Backward from a gradient w.r.t. the logits; returns dx."""
        return self.linear_backward(dz)


@register
class InputLayer(Layer):
    """The layer behind a model input: it declares the shape of one sample (batch excluded)
    and passes its input through. ``Input(shape)`` makes one and returns its symbolic output.
    Functional models list it first among their layers (as Keras); Sequential models and
    ``summary`` tables of them do not."""

    keras_name = "InputLayer"

    def __init__(self, shape: tuple, name: str | None = None, batch_size: int | None = None,
                 dtype: str | None = None):
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        for dim in shape:
            positive_int(dim, "Input shape dimension")
        if batch_size is not None:
            positive_int(batch_size, "Input batch_size")
        if dtype is not None and dtype not in ("float32", "float64"):
            raise ArgumentError(f"Input dtype expected 'float32', 'float64' or None, got {dtype!r}")
        super().__init__(name=name, input_shape=shape)
        self.batch_size, self.dtype = batch_size, dtype
        self.input_shape, self.built = shape, True
        self.output_tensor = SymbolicTensor(shape, dtype or config.floatx(), self, 0, 0)
        self.inbound_nodes.append(Node.of_input(self, self.output_tensor))

    def forward(self, x, training=False):
        self.check_input(x)
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        return {"name": self.name, "shape": list(self.declared_input_shape)}


def Input(shape, batch_size: int | None = None, dtype: str | None = None,  # noqa: N802
          name: str | None = None) -> SymbolicTensor:
    """A symbolic model input for samples of ``shape`` (batch excluded), as ``keras.Input``:
    call layers on it, then ``Model(inputs, outputs)``; or put it first in a ``Sequential``.
    ``batch_size`` is recorded (batches of any size run), ``dtype`` defaults to floatx."""
    layer = InputLayer(shape, name=name or config.unique_name("input_layer"),
                       batch_size=batch_size, dtype=dtype)
    return layer.output_tensor


@register
class Flatten(Layer):
    """Reshape ``(N, d1, d2, ...)`` to ``(N, d1*d2*...)`` in C order (Keras's channels_last).

    Input shape: (N, *dims). Output shape: (N, prod(dims)). Returns a view when possible.
    """

    keras_name = "Flatten"
    keras_fixed = {"data_format": "channels_last"}
    keras_build_config = True

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        self.check_input(x)
        return x.reshape(len(x), -1)

    def backward(self, dy):
        return dy.reshape((len(dy), *self.input_shape))


@register
class Dense(ActivationMixin, Layer):
    """``activation(x @ kernel + bias)``.

    Input shape: (N, in). Output shape: (N, units). Parameters: ``kernel`` (in, units),
    ``bias`` (units,), penalized by ``kernel_regularizer``/``bias_regularizer`` if given
    (``tinynn.regularizers.get`` identifiers). Accepts only 2-D input: add ``Flatten()`` before
    it for images.
    """

    arguments = ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer",
                 "kernel_regularizer", "bias_regularizer")
    keras_name = "Dense"
    keras_fixed = {"kernel_constraint": None, "bias_constraint": None,
                   "quantization_config": None}
    keras_build_config = True

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None,
                 name: str | None = None, input_shape: tuple | None = None):
        super().__init__(name=name, input_shape=input_shape)
        self.units = positive_int(units, "Dense units")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def describe(self):
        return f"Dense {self.name!r} (units={self.units})"

    def compute_output_shape(self, input_shape):
        self._check_rank(input_shape)
        return (self.units,)

    def build(self, input_shape, rng):
        self._check_rank(input_shape)
        super().build(input_shape, rng)
        self.add_weight("kernel", (input_shape[0], self.units), self.kernel_initializer, rng,
                        regularizer=self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, rng,
                            regularizer=self.bias_regularizer)

    def _check_rank(self, input_shape):
        if len(input_shape) != 1:
            raise ShapeError(
                f"{self.describe()} expected input (N, features), got (N, "
                f"{', '.join(map(str, input_shape))}): add Flatten() first"
            )

    def linear_forward(self, x, training=False, relu=False):
        self.check_input(x, hint="add Flatten() first" if x.ndim > 2 else "")
        kernel = self.params["kernel"]
        if x.dtype != kernel.dtype:
            raise DTypeError(f"{self.describe()} expected {kernel.dtype} input, got {x.dtype}")
        z = add_bias(x @ kernel, self.params.get("bias"), relu)  # (N, in) @ (in, units)
        if training:
            self._cache["x"] = x
        return z

    def linear_backward(self, dz):
        (x,) = self.pop_cache("x")
        np.matmul(x.T, dz, out=self.grads["kernel"])  # (in, N) @ (N, units) -> (in, units)
        if self.use_bias:
            np.add.reduce(dz, axis=0, out=self.grads["bias"])
        if not self.compute_input_gradient:
            return None
        kernel = self.params["kernel"]
        if len(dz) <= SKINNY_ROWS and self.units >= WIDE_UNITS:
            # (in, units) @ (units, N), transposed back: OpenBLAS multiplies a few rows by a
            # transposed matrix about 30 % slower than it does the product the other way round
            # (the CNN's dense layer at batch 32: 1.16 against 1.67 ms, 2-core AMD EPYC)
            return np.ascontiguousarray(np.matmul(kernel, dz.T).T)
        return dz @ kernel.T  # (N, units) @ (units, in) -> (N, in)


SKINNY_ROWS, WIDE_UNITS = 32, 128  # where Dense's input gradient takes the transposed product


def add_bias(z: np.ndarray, bias: np.ndarray | None, relu: bool) -> np.ndarray:
    """In place on ``z`` (..., F): add ``bias`` (F,) if given, then ReLU if ``relu``; one pass
    over memory. Returns z."""
    if bias is not None:
        return ops.bias_activation(z, bias, relu)
    return np.maximum(z, 0, out=z) if relu else z
