"""Conv2D: Keras's 2-D convolution (a cross-correlation) over NHWC images."""

import numpy as np

from .. import activations
from ..errors import DTypeError
from ..ops.shapes import PADDINGS
from ..validation import choice, int_tuple, positive_int
from . import conv_algorithms
from .base import Layer
from .core import ActivationMixin, _initializer_name, add_bias
from .spatial import check_images, window_geometry


class Conv2D(ActivationMixin, Layer):
    """``activation(cross_correlate(x, kernel) + bias)`` with Keras's arguments and padding.

    Input shape: (N, H, W, C). Output shape: (N, OH, OW, filters), where 'valid' gives
    OH = floor((H - KH) / SH) + 1 and 'same' gives OH = ceil(H / SH) with Keras's zero padding
    (the extra pixel of an odd total at the bottom/right). Parameters: ``kernel``
    (KH, KW, C, filters), ``bias`` (filters,).

    ``algorithm`` (tinynn only): "im2col", "winograd" (stride 1, 3x3 or 5x5 kernels) or "auto"
    (the default: the one measured faster for the layer's shape, ``conv_algorithms.choose``;
    the environment variable ``TINYNN_CONV_ALGORITHM`` overrides "auto"). After ``build``,
    ``algorithm_used`` names the choice. Bias and ReLU are applied in the same pass that
    writes the output.
    """

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 activation=None, use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", algorithm: str = "auto", name: str | None = None,
                 input_shape: tuple | None = None):
        super().__init__(name=name, input_shape=input_shape)
        self.filters = positive_int(filters, "Conv2D filters")
        self.kernel_size = int_tuple(kernel_size, 2, "Conv2D kernel_size")
        self.strides = int_tuple(strides, 2, "Conv2D strides")
        self.padding = choice(padding.lower() if isinstance(padding, str) else padding,
                              "Conv2D padding", PADDINGS)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.algorithm = choice(algorithm, "Conv2D algorithm", conv_algorithms.ALGORITHMS)
        self.algorithm_used: str | None = None
        self._algorithm = None

    def _geometry(self, input_shape: tuple) -> tuple:
        return window_geometry(self, tuple(input_shape), self.kernel_size, self.strides,
                               self.padding)

    def compute_output_shape(self, input_shape):
        (oh, ow), _ = self._geometry(input_shape)
        return (oh, ow, self.filters)

    def build(self, input_shape, rng):
        self.output_hw, pads = self._geometry(input_shape)
        super().build(input_shape, rng)
        kh, kw = self.kernel_size
        self.window = (kh, kw, *self.strides, *pads)  # im2col's KH KW SH SW PT PB PL PR
        self.add_weight("kernel", (kh, kw, input_shape[2], self.filters),
                        self.kernel_initializer, rng)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer, rng)
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
            np.sum(dz, axis=0, out=self.grads["bias"])
        return self._compute().backward(dz, saved, self.compute_input_gradient)

    def get_config(self):
        config = {**super().get_config(), "filters": self.filters,
                  "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                  "padding": self.padding, "activation": self.activation.name,
                  "use_bias": self.use_bias,
                  "kernel_initializer": _initializer_name(self.kernel_initializer),
                  "bias_initializer": _initializer_name(self.bias_initializer)}
        if self.algorithm != "auto":
            config["algorithm"] = self.algorithm
        return config
