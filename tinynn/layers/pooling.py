"""MaxPooling2D (alias MaxPool2D): the maximum of each window of NHWC images."""

import numpy as np

from .. import ops
from ..errors import TinyNNError
from ..ops.shapes import PADDINGS
from ..validation import choice, int_tuple
from .base import Layer
from .spatial import check_images, window_geometry

_MAX_WINDOW = 256  # the argmax of a window is stored as uint8


class MaxPooling2D(Layer):
    """Max over PH x PW windows moved by ``strides`` (default: ``pool_size``, as Keras).

    Input shape: (N, H, W, C). Output shape: (N, OH, OW, C) with Keras's 'valid'/'same'
    arithmetic; 'same' pads with -inf, so padding never wins a window. Backward sends each
    window's gradient to its maximum only; for tied maxima (e.g. zeros after ReLU) that is the
    first in row-major window order, where the true gradient is not defined. Windows may hold at
    most 256 elements.
    """

    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid",
                 name: str | None = None, input_shape: tuple | None = None):
        super().__init__(name=name, input_shape=input_shape)
        self.pool_size = int_tuple(pool_size, 2, "MaxPooling2D pool_size")
        if self.pool_size[0] * self.pool_size[1] > _MAX_WINDOW:
            raise TinyNNError(f"MaxPooling2D pool_size expected at most {_MAX_WINDOW} elements "
                              f"per window, got {self.pool_size}")
        self.strides = (self.pool_size if strides is None
                        else int_tuple(strides, 2, "MaxPooling2D strides"))
        self.padding = choice(padding.lower() if isinstance(padding, str) else padding,
                              "MaxPooling2D padding", PADDINGS)

    def _geometry(self, input_shape: tuple) -> tuple:
        return window_geometry(self, tuple(input_shape), self.pool_size, self.strides,
                               self.padding)

    def compute_output_shape(self, input_shape):
        (oh, ow), _ = self._geometry(input_shape)
        return (oh, ow, input_shape[2])

    def build(self, input_shape, rng):
        _, self.pads = self._geometry(input_shape)
        super().build(input_shape, rng)

    def _padded_shape(self, n: int) -> tuple:
        h, w, c = self.input_shape
        pt, pb, pl, pr = self.pads
        return (n, h + pt + pb, w + pl + pr, c)

    def forward(self, x, training=False):
        check_images(self, x)
        pt, pb, pl, pr = self.pads
        if any(self.pads):
            x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)),  # (N, H+PT+PB, W+PL+PR, C)
                       constant_values=-np.inf)
        y, argmax = ops.maxpool2d_forward(x, *self.pool_size, *self.strides)
        if training:
            self._cache["argmax"] = argmax
        return y

    def backward(self, dy):
        (argmax,) = self.pop_cache("argmax")
        dx = ops.maxpool2d_backward(dy, argmax, self._padded_shape(len(dy)), *self.pool_size,
                                    *self.strides)
        if any(self.pads):
            h, w, _ = self.input_shape
            pt, _, pl, _ = self.pads
            dx = dx[:, pt:pt + h, pl:pl + w, :]  # (N, H+PT+PB, W+PL+PR, C) -> (N, H, W, C)
        return dx

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


MaxPool2D = MaxPooling2D
