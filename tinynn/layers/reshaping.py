"""Reshape and ZeroPadding2D: layers that move values without arithmetic."""

import math

import numpy as np

from ..errors import ArgumentError, ShapeError
from ..validation import non_negative_int
from .base import Layer, register
from .spatial import check_images


@register
class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (C order, as Keras); one entry may be -1.

    Input shape: (N, *dims). Output shape: (N, *target_shape), with -1 resolved so the sizes
    agree. Returns a view when possible; backward reshapes the gradient back.
    """

    arguments = ("target_shape",)
    keras_name = "Reshape"
    keras_build_config = True

    def __init__(self, target_shape, name: str | None = None, input_shape: tuple | None = None):
        super().__init__(name=name, input_shape=input_shape)
        target = (target_shape,) if isinstance(target_shape, int) else tuple(target_shape)
        if not target or any(isinstance(d, bool) or not isinstance(d, (int, np.integer))
                             or (d < 1 and d != -1) for d in target) or target.count(-1) > 1:
            raise ArgumentError("Reshape target_shape expected positive ints with at most one "
                                f"-1, got {target_shape!r}")
        self.target_shape = tuple(int(d) for d in target)

    def compute_output_shape(self, input_shape):
        size = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        if (size % known if -1 in self.target_shape else size != known):
            raise ShapeError(f"{self.describe()} cannot reshape inputs of shape "
                             f"{tuple(input_shape)} ({size} values) to {self.target_shape}")
        return tuple(size // known if d == -1 else d for d in self.target_shape)

    def build(self, input_shape, rng):
        self.compute_output_shape(input_shape)
        super().build(input_shape, rng)

    def forward(self, x, training=False):
        self.check_input(x)
        return x.reshape(len(x), *self.compute_output_shape(self.input_shape))

    def backward(self, dy):
        return dy.reshape(len(dy), *self.input_shape)


def _padding_pairs(padding) -> tuple:
    """Keras's ZeroPadding2D ``padding``: an int, (rows, cols) or ((top, bottom), (left,
    right)); returns the last form."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        padding = non_negative_int(padding, "ZeroPadding2D padding")
        return (padding, padding), (padding, padding)
    try:
        pairs = tuple(padding)
        if len(pairs) != 2:
            raise TypeError
        pairs = tuple((p, p) if isinstance(p, (int, np.integer)) else tuple(p) for p in pairs)
        if any(len(pair) != 2 for pair in pairs):
            raise TypeError
        return tuple(tuple(non_negative_int(v, "ZeroPadding2D padding") for v in pair)
                     for pair in pairs)
    except (TypeError, ArgumentError):
        raise ArgumentError("ZeroPadding2D padding expected an int, a pair of ints or a pair of "
                            f"pairs of non-negative ints, got {padding!r}") from None


@register
class ZeroPadding2D(Layer):
    """Add rows and columns of zeros around NHWC images.

    ``padding``: an int (all four sides), ``(rows, cols)`` (symmetric) or ``((top, bottom),
    (left, right))``. Input shape: (N, H, W, C). Output shape: (N, top + H + bottom, left + W +
    right, C). Backward crops the gradient.
    """

    arguments = ("padding",)
    keras_name = "ZeroPadding2D"
    keras_fixed = {"data_format": "channels_last"}
    keras_build_config = True

    def __init__(self, padding=(1, 1), name: str | None = None, input_shape: tuple | None = None):
        super().__init__(name=name, input_shape=input_shape)
        self.padding = _padding_pairs(padding)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.describe()} expected images (N, H, W, C), got inputs of "
                             f"shape (N, {', '.join(map(str, input_shape))})")
        (top, bottom), (left, right) = self.padding
        h, w, c = input_shape
        return top + h + bottom, left + w + right, c

    def forward(self, x, training=False):
        check_images(self, x)
        (top, bottom), (left, right) = self.padding
        return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))

    def backward(self, dy):
        (top, _), (left, _) = self.padding
        h, w, _ = self.input_shape
        return np.ascontiguousarray(dy[:, top:top + h, left:left + w])
