"""Input checks and window geometry shared by the image layers (Conv2D, MaxPooling2D).

Images are NHWC (channels last, as Keras's default): a batch is (N, H, W, C) and a layer's
``input_shape`` (batch excluded) is (H, W, C).
"""

import numpy as np

from ..errors import ShapeError
from ..ops.shapes import conv_output_size, padding_amounts


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
