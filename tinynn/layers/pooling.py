"""MaxPooling2D (alias MaxPool2D): the maximum of each window of NHWC images, and
``Pooling2D``, the base of the 2-D pooling layers."""

import numpy as np

from .. import ops
from ..errors import ArgumentError
from .base import register
from .spatial import Window2D, check_images


class Pooling2D(Window2D):
    """A pooling layer: ``pool_size`` windows moved by ``strides`` (default: ``pool_size``, as
    Keras), 'valid' or 'same' padding. Input shape: (N, H, W, C). Output shape:
    (N, OH, OW, C) with Keras's 'valid'/'same' arithmetic."""

    arguments = ("pool_size", "strides", "padding")
    keras_fixed = {"data_format": "channels_last"}

    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid",
                 name: str | None = None, input_shape: tuple | None = None):
        super().__init__(name=name, input_shape=input_shape)
        self.set_window(pool_size, strides, padding, "pool_size")

    @property
    def pool_size(self) -> tuple:
        return self.window_size

    def padded_shape(self, n: int) -> tuple:
        """The shape (N, H + PT + PB, W + PL + PR, C) of a padded batch of ``n`` images."""
        h, w, c = self.input_shape
        pt, pb, pl, pr = self.pads
        return (n, h + pt + pb, w + pl + pr, c)

    def pad(self, x: np.ndarray, value: float) -> np.ndarray:
        """``x`` (N, H, W, C) padded with ``value`` to ``padded_shape`` (x itself if no
        padding)."""
        if not any(self.pads):
            return x
        pt, pb, pl, pr = self.pads
        return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=value)

    def unpad(self, dx: np.ndarray) -> np.ndarray:
        """The (N, H, W, C) interior of a padded-shape gradient."""
        if not any(self.pads):
            return dx
        h, w, _ = self.input_shape
        pt, _, pl, _ = self.pads
        return dx[:, pt:pt + h, pl:pl + w, :]


@register("MaxPool2D")
class MaxPooling2D(Pooling2D):
    """Max over each window. 'same' pads with -inf, so padding never wins a window. Backward
    sends each window's gradient to its maximum only; for tied maxima (e.g. zeros after ReLU)
    that is the first in row-major window order, where the true gradient is not defined.
    Windows may hold at most 256 elements (the argmax is stored as uint8).
    """

    keras_name = "MaxPooling2D"
    max_window = 256

    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid",
                 name: str | None = None, input_shape: tuple | None = None):
        super().__init__(pool_size, strides, padding, name=name, input_shape=input_shape)
        if self.pool_size[0] * self.pool_size[1] > self.max_window:
            raise ArgumentError(f"MaxPooling2D pool_size expected at most {self.max_window} "
                                f"elements per window, got {self.pool_size}")

    def forward(self, x, training=False):
        check_images(self, x)
        y, argmax = ops.maxpool2d_forward(self.pad(x, -np.inf), *self.pool_size, *self.strides)
        if training:
            self._cache["argmax"] = argmax
        return y

    def backward(self, dy):
        (argmax,) = self.pop_cache("argmax")
        return self.unpad(ops.maxpool2d_backward(dy, argmax, self.padded_shape(len(dy)),
                                                 *self.pool_size, *self.strides))


MaxPool2D = MaxPooling2D
