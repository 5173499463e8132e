"""Conv2D: Keras's 2-D convolution (a cross-correlation) over NHWC images."""

import numpy as np

from .. import activations, initializers, regularizers
from ..errors import DTypeError
from ..validation import choice, positive_int
from . import conv_algorithms
from .base import register
from .core import ActivationMixin, add_bias
from .spatial import Window2D, check_images


@register
class Conv2D(ActivationMixin, Window2D):
    """``activation(cross_correlate(x, kernel) + bias)`` with Keras's arguments and padding.

    Input shape: (N, H, W, C). Output shape: (N, OH, OW, filters), where 'valid' gives
    OH = floor((H - KH) / SH) + 1 and 'same' gives OH = ceil(H / SH) with Keras's zero padding
    (the extra pixel of an odd total at the bottom/right). Parameters: ``kernel``
    (KH, KW, C, filters), ``bias`` (filters,), penalized by ``kernel_regularizer``/
    ``bias_regularizer`` if given (``tinynn.regularizers.get`` identifiers).

    ``algorithm`` (tinynn only): "im2col", "winograd" (stride 1, 3x3 or 5x5 kernels) or "auto"
    (the default: the one measured faster for the layer's shape, ``conv_algorithms.choose``;
    the environment variable ``TINYNN_CONV_ALGORITHM`` overrides "auto"). After ``build``,
    ``algorithm_used`` names the choice. Bias and ReLU are applied in the same pass that
    writes the output.
    """

    arguments = ("filters", "kernel_size", "strides", "padding", "activation", "use_bias",
                 "kernel_initializer", "bias_initializer", "kernel_regularizer",
                 "bias_regularizer")
    native_arguments = ("algorithm",)
    keras_name = "Conv2D"
    keras_fixed = {"data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
                   "activity_regularizer": None, "kernel_constraint": None,
                   "bias_constraint": None}
    keras_build_config = True

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 activation=None, use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 algorithm: str = "auto", name: str | None = None,
                 input_shape: tuple | None = None):
        super().__init__(name=name, input_shape=input_shape)
        self.filters = positive_int(filters, "Conv2D filters")
        self.set_window(kernel_size, strides, padding, "kernel_size")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.algorithm = choice(algorithm, "Conv2D algorithm", conv_algorithms.ALGORITHMS)
        self.algorithm_used: str | None = None
        self._algorithm = None

    @property
    def kernel_size(self) -> tuple:
        return self.window_size

    def output_channels(self, channels):
        return self.filters

    def build(self, input_shape, rng):
        super().build(input_shape, rng)
        kh, kw = self.kernel_size
        self.window = (kh, kw, *self.strides, *self.pads)  # im2col's KH KW SH SW PT PB PL PR
        self.add_weight("kernel", (kh, kw, input_shape[2], self.filters),
                        self.kernel_initializer, rng, regularizer=self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer, rng,
                            regularizer=self.bias_regularizer)
        self.algorithm_used = conv_algorithms.choose(self.algorithm, self.kernel_size,
                                                     self.strides, input_shape[2])

    def add_bias(self, z: np.ndarray, relu: bool) -> np.ndarray:
        """In place: z (..., F) plus the bias, then ReLU if ``relu``."""
        return add_bias(z, self.params.get("bias"), relu)

    def _compute(self):
        """The algorithm object, made on first use: ``params`` are final by then (the model
        moves them into its buffer after ``build``)."""
        if self._algorithm is None or self._algorithm.name != self.algorithm_used:
            self._algorithm = conv_algorithms.make(self.algorithm_used, self)
        return self._algorithm

    def linear_forward(self, x, training=False, relu=False):
        check_images(self, x)
        if x.dtype != self.params["kernel"].dtype:
            raise DTypeError(f"{self.describe()} expected {self.params['kernel'].dtype} input, "
                             f"got {x.dtype}")
        z, saved = self._compute().forward(np.ascontiguousarray(x), training, relu)
        if training:
            self._cache["saved"] = saved
        return z.reshape(len(x), *self.output_hw, self.filters)  # (N*OH*OW, F) -> NHWC

    def linear_backward(self, dz):
        (saved,) = self.pop_cache("saved")
        dz = np.ascontiguousarray(dz).reshape(-1, self.filters)  # (N, OH, OW, F) -> (.., F)
        if self.use_bias:
            np.add.reduce(dz, axis=0, out=self.grads["bias"])
        return self._compute().backward(dz, saved, self.compute_input_gradient)
