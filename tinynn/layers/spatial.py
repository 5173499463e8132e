"""``Window2D``, the base of the layers that slide a 2-D window over images (Conv2D and the
poolings), with the input checks and window geometry they share.

Images are NHWC (channels last, as Keras's default): a batch is (N, H, W, C) and a layer's
``input_shape`` (batch excluded) is (H, W, C).
"""

import numpy as np

from ..errors import ShapeError
from ..ops.shapes import PADDINGS, conv_output_size, padding_amounts
from ..validation import choice, int_tuple
from .base import Layer


class Window2D(Layer):
    """A layer whose output pixel (i, j) reads a ``window_size`` window of its NHWC input at
    (i * SH, j * SW) after Keras's 'valid'/'same' padding.

    Subclasses set ``window_size`` (KH, KW), ``strides`` and ``padding`` in ``__init__``
    (through ``set_window``) and may override ``output_channels``. After ``build``:
    ``output_hw`` (OH, OW) and ``pads`` (PT, PB, PL, PR).
    """

    keras_fixed = {"data_format": "channels_last"}

    def set_window(self, window_size, strides, padding, what: str) -> None:
        """Check and store the window arguments (``what`` names them in errors, e.g.
        "Conv2D kernel_size"); ``strides=None`` means the window size, as Keras's poolings."""
        kind = type(self).__name__
        self.window_size = int_tuple(window_size, 2, f"{kind} {what}")
        self.strides = (self.window_size if strides is None
                        else int_tuple(strides, 2, f"{kind} strides"))
        self.padding = choice(padding.lower() if isinstance(padding, str) else padding,
                              f"{kind} padding", PADDINGS)

    def output_channels(self, channels: int) -> int:
        """Output channels for ``channels`` input channels (pooling keeps them)."""
        return channels

    def geometry(self, input_shape: tuple) -> tuple:
        """``((OH, OW), (PT, PB, PL, PR))`` for an (H, W, C) input; ShapeError if the window
        does not fit."""
        return window_geometry(self, tuple(input_shape), self.window_size, self.strides,
                               self.padding)

    def compute_output_shape(self, input_shape):
        (oh, ow), _ = self.geometry(input_shape)
        return (oh, ow, self.output_channels(input_shape[2]))

    def build(self, input_shape, rng):
        self.output_hw, self.pads = self.geometry(input_shape)
        super().build(input_shape, rng)


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"


def _rank_hint(shape: tuple) -> str:
    if len(shape) == 2:
        return ": add a channel axis, e.g. x[..., None]"
    return ": reshape the images to (N, H, W, C)"


def window_geometry(layer, input_shape: tuple, window: tuple, strides: tuple,
                    padding: str) -> tuple:
    """Check an (H, W, C) input shape against a sliding window and return its geometry.

    Returns ``((OH, OW), (PT, PB, PL, PR))``. Raises ShapeError for a rank other than 3 and for
    a window larger than the (padded) input.
    """
    if len(input_shape) != 3:
        raise ShapeError(f"{layer.describe()} expected NHWC input (N, H, W, C), got "
                         f"{_shape_text(input_shape)}{_rank_hint(input_shape)}")
    (pt, pb), (pl, pr) = (padding_amounts(input_shape[i], window[i], strides[i], padding)
                          for i in (0, 1))
    oh, ow = (conv_output_size(input_shape[i], window[i], strides[i], padding) for i in (0, 1))
    if oh < 1 or ow < 1:
        hint = ""
        if input_shape[0] < input_shape[2]:
            hint = ("; if these are channels-first images (C, H, W), tinynn expects NHWC: "
                    "x.transpose(0, 2, 3, 1)")
        raise ShapeError(
            f"{layer.describe()} window {window[0]}x{window[1]} is larger than its input "
            f"{_shape_text(input_shape)} with padding={padding!r}: use padding='same', a "
            f"smaller window or larger images{hint}")
    return (oh, ow), (pt, pb, pl, pr)


def check_images(layer, x: np.ndarray) -> None:
    """Raise ShapeError unless ``x`` is (N, *layer.input_shape), naming the likely mistake:
    a missing channel axis, channels-first (NCHW) images, or a different channel count."""
    if layer.input_shape is None:
        raise RuntimeError(f"{layer.describe()} was called before build(input_shape, rng)")
    expected = layer.input_shape
    if x.shape[1:] == expected:
        return
    got = x.shape[1:]
    message = f"{layer.describe()} expected NHWC input {_shape_text(expected)}, got {x.shape}"
    h, w, c = expected
    if len(got) != 3:
        message += _rank_hint(got)
    elif got == (c, h, w):
        message += (": this looks channels-first (NCHW); tinynn uses channels-last NHWC "
                    "images, e.g. x.transpose(0, 2, 3, 1)")
    elif got[:2] == (h, w):
        message += f": the layer was built for {c} input channels, got {got[2]}"
    raise ShapeError(message)
