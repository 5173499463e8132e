"""GlobalAveragePooling2D (alias GlobalAvgPool2D): the mean of each channel over the image."""

import numpy as np

from ..errors import ArgumentError, ShapeError
from .base import Layer, register
from .spatial import check_images

DATA_FORMATS = (None, "channels_last")


@register("GlobalAvgPool2D")
class GlobalAveragePooling2D(Layer):
    """Mean over the height and width of NHWC images, per image and channel.

    Input shape: (N, H, W, C). Output shape: (N, C), or (N, 1, 1, C) with ``keepdims=True``.
    ``data_format`` is Keras's: None or "channels_last" (tinynn's images are channels-last;
    both are stored as "channels_last", as Keras writes it). Backward spreads each gradient
    evenly, dy / (H * W), over the image.
    """

    arguments = ("data_format", "keepdims")
    keras_name = "GlobalAveragePooling2D"

    def __init__(self, data_format: str | None = None, keepdims: bool = False,
                 name: str | None = None, input_shape: tuple | None = None):
        super().__init__(name=name, input_shape=input_shape)
        if data_format not in DATA_FORMATS:
            raise ArgumentError(
                f"GlobalAveragePooling2D data_format expected one of {DATA_FORMATS}, got "
                f"{data_format!r}: tinynn uses channels-last images (N, H, W, C); transpose "
                "channels-first ones with x.transpose(0, 2, 3, 1)")
        if not isinstance(keepdims, (bool, np.bool_)):
            raise ArgumentError(f"GlobalAveragePooling2D keepdims expected True or False, got "
                                f"{keepdims!r}")
        self.data_format = "channels_last"
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            shown = "(" + ", ".join(["N", *map(str, input_shape)]) + ")"
            raise ShapeError(f"{self.describe()} expected NHWC input (N, H, W, C), got {shown}"
                             + (": add a channel axis, e.g. x[..., None]"
                                if len(input_shape) == 2 else ""))
        channels = input_shape[2]
        return (1, 1, channels) if self.keepdims else (channels,)

    def build(self, input_shape, rng):
        self.compute_output_shape(input_shape)
        super().build(input_shape, rng)

    def forward(self, x, training=False):
        check_images(self, x)
        if training:
            self._cache["x_shape"] = x.shape
        return x.mean(axis=(1, 2), keepdims=self.keepdims)

    def backward(self, dy):
        (x_shape,) = self.pop_cache("x_shape")
        n, h, w, c = x_shape
        dx = np.empty(x_shape, dy.dtype)
        dx[...] = dy.reshape(n, 1, 1, c) / dy.dtype.type(h * w)
        return dx


GlobalAvgPool2D = GlobalAveragePooling2D
