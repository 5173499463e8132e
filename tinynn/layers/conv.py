"""Conv2D: Keras's 2-D convolution (a cross-correlation) over NHWC images, as im2col + matmul."""

import numpy as np

from .. import activations, ops
from ..errors import DTypeError
from ..ops.shapes import PADDINGS
from ..validation import choice, int_tuple, positive_int
from .base import Layer
from .core import ActivationMixin, _initializer_name
from .spatial import check_images, window_geometry

#: Inference unfolds (im2col) this many bytes of windows at a time, a chunk of whole samples,
#: so that ``predict`` on a large batch never holds the full (N*OH*OW, KH*KW*C) matrix. Chunks
#: that stay in cache are also faster: predicting 1,000 images with the reports' CNN took 265 ms
#: at 16 MiB, 290 ms at 32 MiB and 365 ms at 64 MiB (8 MiB: slightly faster on an idle machine,
#: much slower under CPU contention, where every small BLAS call waits for its threads).
INFERENCE_COLS_BYTES = 16 * 2**20


class Conv2D(ActivationMixin, Layer):
    """``activation(cross_correlate(x, kernel) + bias)`` with Keras's arguments and padding.

    Input shape: (N, H, W, C). Output shape: (N, OH, OW, filters), where 'valid' gives
    OH = floor((H - KH) / SH) + 1 and 'same' gives OH = ceil(H / SH) with Keras's zero padding
    (the extra pixel of an odd total at the bottom/right). Parameters: ``kernel``
    (KH, KW, C, filters), ``bias`` (filters,).

    Training unfolds the batch into ``cols`` (N*OH*OW, KH*KW*C), computes ``cols @ kernel``
    and keeps ``cols`` for backward, which then reuses it for d(cols); inference unfolds chunks
    of samples of at most ``INFERENCE_COLS_BYTES`` into one buffer and keeps nothing. (A
    workspace kept across training steps measured no faster than a fresh ``cols`` per step.)
    """

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 activation=None, use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", name: str | None = None,
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

    def _kernel_matrix(self) -> np.ndarray:
        return self.params["kernel"].reshape(-1, self.filters)  # (KH, KW, C, F) -> (KH*KW*C, F)

    def _inference_linear(self, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """``im2col(x) @ kernel + bias`` (N*OH*OW, F), a chunk of samples at a time."""
        per_sample = self.output_hw[0] * self.output_hw[1]
        budget = INFERENCE_COLS_BYTES // (per_sample * kernel.shape[0] * x.itemsize)
        chunk = max(1, min(budget, len(x)))  # samples per im2col
        z = np.empty((len(x) * per_sample, self.filters), x.dtype)
        cols = np.empty((chunk * per_sample, kernel.shape[0]), x.dtype)
        for start in range(0, len(x), chunk):
            part = x[start:start + chunk]
            rows = slice(start * per_sample, (start + len(part)) * per_sample)
            unfolded = ops.im2col(part, *self.window, out=cols[:len(part) * per_sample])
            np.matmul(unfolded, kernel, out=z[rows])  # (rows, KH*KW*C) @ (KH*KW*C, F)
            if self.use_bias:
                z[rows] += self.params["bias"]
        return z

    def linear_forward(self, x, training=False):
        check_images(self, x)
        if x.dtype != self.params["kernel"].dtype:
            raise DTypeError(f"{self.describe()} expected {self.params['kernel'].dtype} input, "
                             f"got {x.dtype}")
        kernel = self._kernel_matrix()
        if not training:
            z = self._inference_linear(x, kernel)
        else:
            cols = ops.im2col(x, *self.window)
            z = cols @ kernel  # (N*OH*OW, KH*KW*C) @ (KH*KW*C, F) -> (N*OH*OW, F)
            if self.use_bias:
                z += self.params["bias"]
            self._cache["cols"] = cols
        return z.reshape(len(x), *self.output_hw, self.filters)  # (N*OH*OW, F) -> NHWC

    def linear_backward(self, dz):
        (cols,) = self.pop_cache("cols")
        n = len(dz)
        dz = dz.reshape(-1, self.filters)  # (N, OH, OW, F) -> (N*OH*OW, F)
        kernel = self._kernel_matrix()
        dkernel = self.grads["kernel"].reshape(kernel.shape)  # a view: (KH*KW*C, F)
        np.matmul(cols.T, dz, out=dkernel)  # (KH*KW*C, N*OH*OW) @ (N*OH*OW, F)
        if self.use_bias:
            np.sum(dz, axis=0, out=self.grads["bias"])
        if not self.compute_input_gradient:
            return None
        dcols = np.matmul(dz, kernel.T, out=cols)  # (N*OH*OW, F) @ (F, KH*KW*C), into cols
        return ops.col2im(dcols, (n, *self.input_shape), *self.window)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "activation": self.activation.name,
                "use_bias": self.use_bias,
                "kernel_initializer": _initializer_name(self.kernel_initializer),
                "bias_initializer": _initializer_name(self.bias_initializer)}
