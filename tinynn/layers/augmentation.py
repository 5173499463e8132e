"""Keras 3's image preprocessing layers: ``Rescaling`` (always on) and the random augmentations
``RandomFlip``, ``RandomBrightness``, ``RandomContrast``, ``RandomTranslation``,
``RandomRotation`` and ``RandomZoom`` (active only in training, the identity in
``predict``/``evaluate``, left out of ONNX exports), and ``RandomCrop`` (a random crop in
training, a centered crop resized to the target otherwise). The three warps run ``ops.affine_warp``
(numba, NumPy twin), TensorFlow's sampling exactly: fill modes "reflect" (Keras's default),
"wrap", "constant" and "nearest", "bilinear" or "nearest" interpolation.

Images are NHWC. Each random layer draws one set of parameters per image from ``self.rng``
(the model's dropout Generator inside a model, so the same seed gives the same augmented
batches); tests fix the parameters to compare with Keras's ``transform_images``. Keras's
traps, kept for parity (docs/keras-parity.md):
- ``RandomFlip("horizontal_and_vertical")`` (the default) draws ONE flag per image for both
  flips: an image is flipped both ways or not at all (a 180-degree rotation), never one way.
- ``RandomContrast(0.2)`` stores ``factor=(0, 0.2)`` and draws contrast factors in [1, 1.2]:
  it never lowers contrast (give ``(0.2, 0.2)`` for [0.8, 1.2]).
- ``value_range`` defaults to (0, 255): for images scaled to [0, 1], pass ``(0, 1)`` or
  nothing is clipped where it should be.
- ``RandomZoom``: a positive factor zooms out (the image shrinks), a negative one zooms in.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from .. import ops
from ..errors import ArgumentError, ShapeError
from ..ops.reference import FILL_MODES
from ..validation import choice, non_negative_int, positive_int
from .base import Layer, register


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise ArgumentError(f"{what} expected a finite number, got {value!r}")
    return float(value)


def _factor(factor, bounds: tuple[float, float], what: str) -> tuple[float, float]:
    """Keras's ``_set_factor``: a pair, sorted; or a number f, as (max(-f, low), f)."""
    message = (f"{what} factor expected a number (or a list of two numbers) in the range "
               f"[{bounds[0]}, {bounds[1]}], got {factor!r}")
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2:
            raise ArgumentError(message)
        low, high = sorted(_number(f, f"{what} factor") for f in factor)
        if low > bounds[1] or high < bounds[0]:
            raise ArgumentError(message)
        return low, high
    value = _number(factor, f"{what} factor")
    if not bounds[0] <= value <= bounds[1]:
        raise ArgumentError(message)
    return max(-abs(value), bounds[0]), abs(value)


def _value_range(value_range, what: str) -> tuple[float, float]:
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
        raise ArgumentError(f"{what} value_range expected a pair (low, high), got "
                            f"{value_range!r}")
    low, high = (_number(v, f"{what} value_range") for v in value_range)
    return low, high


def _unclipped(z: np.ndarray, dy: np.ndarray, value_range: tuple) -> np.ndarray:
    """The gradient through ``clip(z, *value_range)``: ``dy`` where z lies in the range."""
    low, high = value_range
    return np.where((z >= low) & (z <= high), dy, dy.dtype.type(0))


@register
class Rescaling(Layer):
    """``x * scale + offset``, in training and inference alike (e.g. ``Rescaling(1 / 255)``).

    Input shape: (N, ...). Output shape: the same."""

    arguments = ("scale", "offset")
    keras_name = "Rescaling"

    def __init__(self, scale: float, offset: float = 0.0, name: str | None = None,
                 input_shape: tuple | None = None):
        super().__init__(name=name, input_shape=input_shape)
        self.scale = _number(scale, "Rescaling scale")
        self.offset = _number(offset, "Rescaling offset")

    def forward(self, x, training=False):
        self.check_input(x)
        return x * x.dtype.type(self.scale) + x.dtype.type(self.offset)

    def backward(self, dy):
        return dy * dy.dtype.type(self.scale)


class RandomImageLayer(Layer):
    """Base of the random augmentations: NHWC input, per-image parameters drawn in training
    (``draw(n, dtype)``), applied by ``apply(x, parameters)`` and differentiated by
    ``gradient(dy, x, parameters)``; the identity otherwise."""

    uses_training_rng = True
    keras_fixed = {"data_format": "channels_last"}

    def __init__(self, seed: int | None = None, name: str | None = None,
                 input_shape: tuple | None = None):
        super().__init__(name=name, input_shape=input_shape)
        self.seed = None if seed is None else non_negative_int(seed, f"{type(self).__name__} "
                                                               "seed")
        self.rng: np.random.Generator | None = None

    def build(self, input_shape, rng):
        if len(input_shape) != 3:
            raise ShapeError(f"{type(self).__name__} expected images (N, height, width, "
                             f"channels), got (N, {', '.join(map(str, input_shape))})")
        super().build(input_shape, rng)

    def forward(self, x, training=False):
        self.check_input(x)
        if not training:
            return x
        if self.inference_gradients:  # the identity, differentiated
            self._cache["identity"] = True
            return x
        parameters = self.draw_for_batch(len(x), lambda rows: self.draw(rows, x.dtype))
        self._cache["x"], self._cache["parameters"] = x, parameters
        return self.apply(x, parameters)

    def backward(self, dy):
        if self._cache.pop("identity", False):
            return dy
        x, parameters = self.pop_cache("x", "parameters")
        return self.gradient(dy, x, parameters)

    def draw(self, n: int, dtype) -> np.ndarray:
        raise NotImplementedError

    def apply(self, x: np.ndarray, parameters: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def gradient(self, dy, x, parameters) -> np.ndarray:
        raise NotImplementedError


@register
class RandomFlip(RandomImageLayer):
    """Flip each image left-right (``"horizontal"``), top-bottom (``"vertical"``) or, by
    default, both at once with one draw per image (``"horizontal_and_vertical"``, as Keras:
    module docstring), with probability 1/2 each: a uniform draw u flips when u <= 0.5.

    Input shape: (N, H, W, C). Output shape: the same. Parameters: one flag per image."""

    arguments = ("mode", "seed")
    keras_name = "RandomFlip"
    MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode: str = "horizontal_and_vertical", seed: int | None = None,
                 name: str | None = None, input_shape: tuple | None = None):
        super().__init__(seed=seed, name=name, input_shape=input_shape)
        self.mode = choice(mode, "RandomFlip mode", self.MODES)

    def draw(self, n, dtype):
        return self.rng.random(n, dtype=dtype) <= 0.5

    def apply(self, x, flips):
        out = x.copy()
        flipped = x[flips]
        if self.mode != "vertical":
            flipped = flipped[:, :, ::-1]
        if self.mode != "horizontal":
            flipped = flipped[:, ::-1]
        out[flips] = flipped
        return out

    def gradient(self, dy, x, flips):
        return self.apply(dy, flips)  # a flip is its own inverse


@register
class RandomBrightness(RandomImageLayer):
    """Add ``delta * (high - low)`` to every pixel of an image, delta uniform in ``factor``
    (a number f: [-f, f]; a pair: as given; within [-1, 1]), then clip to ``value_range``.

    Input shape: (N, H, W, C). Output shape: the same. Parameters: one delta per image."""

    arguments = ("factor", "value_range", "seed")
    keras_name = "RandomBrightness"

    def __init__(self, factor, value_range=(0, 255), seed: int | None = None,
                 name: str | None = None, input_shape: tuple | None = None):
        super().__init__(seed=seed, name=name, input_shape=input_shape)
        self.factor = _factor(factor, (-1.0, 1.0), "RandomBrightness")
        self.value_range = tuple(sorted(_value_range(value_range, "RandomBrightness")))

    def draw(self, n, dtype):
        low, high = self.value_range
        deltas = self.rng.uniform(self.factor[0], self.factor[1], n) * (high - low)
        return deltas.astype(dtype)

    def apply(self, x, deltas):
        low, high = (x.dtype.type(v) for v in self.value_range)
        return np.clip(x + deltas[:, None, None, None], low, high)

    def gradient(self, dy, x, deltas):
        return _unclipped(x + deltas[:, None, None, None], dy, self.value_range)


@register
class RandomContrast(RandomImageLayer):
    """Scale each image's deviations from its per-channel mean by c, uniform in
    [1 - factor[0], 1 + factor[1]] (a number f gives ``factor=(0, f)``, as Keras: module
    docstring), then clip to ``value_range``.

    Input shape: (N, H, W, C). Output shape: the same. Parameters: one c per image."""

    arguments = ("factor", "value_range", "seed")
    keras_name = "RandomContrast"

    def __init__(self, factor, value_range=(0, 255), seed: int | None = None,
                 name: str | None = None, input_shape: tuple | None = None):
        super().__init__(seed=seed, name=name, input_shape=input_shape)
        self.factor = _factor(factor, (0.0, 1.0), "RandomContrast")
        self.value_range = _value_range(value_range, "RandomContrast")

    def draw(self, n, dtype):
        return self.rng.uniform(1 - self.factor[0], 1 + self.factor[1], n).astype(dtype)

    def _contrasted(self, x, factors):
        mean = x.mean(axis=(1, 2), keepdims=True)
        return (x - mean) * factors[:, None, None, None] + mean

    def apply(self, x, factors):
        low, high = (x.dtype.type(v) for v in self.value_range)
        return np.clip(self._contrasted(x, factors), low, high)

    def gradient(self, dy, x, factors):
        dz = _unclipped(self._contrasted(x, factors), dy, self.value_range)
        c = factors[:, None, None, None]
        return dz * c + dz.mean(axis=(1, 2), keepdims=True) * (1 - c)


class RandomWarp(RandomImageLayer):
    """Base of the warps: per-image transforms ``(a0, a1, a2, b0, b1, b2)`` in float32
    (``transforms(n, height, width)``: output pixel (y, x) samples the input at row
    b0 x + b1 y + b2, column a0 x + a1 y + a2), applied by ``ops.affine_warp``."""

    INTERPOLATIONS = ("bilinear", "nearest")

    def __init__(self, fill_mode: str, interpolation: str, seed: int | None, fill_value: float,
                 name: str | None, input_shape: tuple | None):
        super().__init__(seed=seed, name=name, input_shape=input_shape)
        kind = type(self).__name__
        self.fill_mode = choice(fill_mode, f"{kind} fill_mode", FILL_MODES)
        self.interpolation = choice(interpolation, f"{kind} interpolation", self.INTERPOLATIONS)
        self.fill_value = _number(fill_value, f"{kind} fill_value")

    def draw(self, n, dtype):
        return self.transforms(n, *self.input_shape[:2]).astype(np.float32)

    def transforms(self, n: int, height: int, width: int) -> np.ndarray:
        raise NotImplementedError

    def _warp_arguments(self) -> tuple:
        return self.interpolation == "nearest", FILL_MODES.index(self.fill_mode)

    def apply(self, x, transforms):
        return ops.affine_warp(x, transforms, *self._warp_arguments(), self.fill_value,
                               *x.shape[1:3])

    def gradient(self, dy, x, transforms):
        return ops.affine_warp_backward(dy, transforms, *self._warp_arguments(), *x.shape[1:3])


@register
class RandomTranslation(RandomWarp):
    """Shift each image by dy = u * height rows and dx = v * width columns, u uniform in
    ``height_factor`` and v in ``width_factor`` (a number f: [-f, f]; a pair: as given; within
    [-1, 1]; positive moves the content down and right); the uncovered pixels by ``fill_mode``.

    Input shape: (N, H, W, C). Output shape: the same. Parameters: one transform per image."""

    arguments = ("height_factor", "width_factor", "fill_mode", "interpolation", "seed",
                 "fill_value")
    keras_name = "RandomTranslation"

    def __init__(self, height_factor, width_factor, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None,
                 fill_value: float = 0.0, name: str | None = None,
                 input_shape: tuple | None = None):
        super().__init__(fill_mode, interpolation, seed, fill_value, name, input_shape)
        self.height_factor, self.width_factor = height_factor, width_factor  # as Keras keeps them
        self.height_range = _symmetric(height_factor, "RandomTranslation height_factor")
        self.width_range = _symmetric(width_factor, "RandomTranslation width_factor")

    def transforms(self, n, height, width):
        rows = self.rng.uniform(*self.height_range, n) * height
        columns = self.rng.uniform(*self.width_range, n) * width
        return translation_matrices(rows, columns)


def _symmetric(factor, what: str, low_open: bool = False) -> tuple[float, float]:
    """Keras's translation and zoom factors: a pair, sorted, or a number f as (-|f|, |f|);
    every value in [-1, 1] ((-1, 1] with ``low_open``)."""
    pair = isinstance(factor, (tuple, list))
    values = list(factor) if pair else [factor]
    interval = f"{'(' if low_open else '['}-1.0, 1.0]"
    message = f"{what} expected a number (or a list of two numbers) in {interval}, got {factor!r}"
    if pair and len(values) != 2:
        raise ArgumentError(message)
    numbers = [_number(value, what) for value in values]
    if any(v > 1 or v < -1 or (low_open and v == -1) for v in numbers):
        raise ArgumentError(message)
    return tuple(sorted(numbers)) if pair else (-abs(numbers[0]), abs(numbers[0]))


def translation_matrices(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(N, 6) transforms shifting images by ``rows`` down and ``columns`` right."""
    ones, zeros = np.ones_like(rows), np.zeros_like(rows)
    return np.stack([ones, zeros, -columns, zeros, ones, -rows], axis=1)


@register
class RandomRotation(RandomWarp):
    """Rotate each image about its center by an angle uniform in ``factor`` turns (a number f:
    [-f, f] times 360 degrees; a pair: as given; positive is counter-clockwise); the uncovered
    pixels by ``fill_mode``.

    Input shape: (N, H, W, C). Output shape: the same. Parameters: one transform per image."""

    arguments = ("factor", "fill_mode", "interpolation", "seed", "fill_value")
    keras_name = "RandomRotation"

    def __init__(self, factor, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0, name: str | None = None,
                 input_shape: tuple | None = None):
        super().__init__(fill_mode, interpolation, seed, fill_value, name, input_shape)
        self.factor = _factor(factor, (-1.0, 1.0), "RandomRotation")

    def transforms(self, n, height, width):
        degrees = self.rng.uniform(self.factor[0] * 360.0, self.factor[1] * 360.0, n)
        return rotation_matrices(np.deg2rad(degrees), height, width)


def rotation_matrices(angles: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, 6) transforms rotating (height, width) images by ``angles`` (radians) about their
    center ((width - 1) / 2, (height - 1) / 2), as Keras's ``_compute_affine_matrix``."""
    cos, sin = np.cos(angles), np.sin(angles)
    cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
    a0, a1, b0, b1 = cos, -sin, sin, cos
    return np.stack([a0, a1, cx - cx * a0 - cy * a1, b0, b1, cy - cx * b0 - cy * b1], axis=1)


@register
class RandomZoom(RandomWarp):
    """Scale each image about its center: rows by z = 1 + u, u uniform in ``height_factor``,
    columns by 1 + v, v uniform in ``width_factor`` (the same z when it is None); a number f
    means [-f, f], every value in (-1, 1]. Positive values zoom out, negative ones in (as
    Keras); the uncovered pixels by ``fill_mode``.

    Input shape: (N, H, W, C). Output shape: the same. Parameters: one transform per image."""

    arguments = ("height_factor", "width_factor", "fill_mode", "interpolation", "seed",
                 "fill_value")
    keras_name = "RandomZoom"

    def __init__(self, height_factor, width_factor=None, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None,
                 fill_value: float = 0.0, name: str | None = None,
                 input_shape: tuple | None = None):
        super().__init__(fill_mode, interpolation, seed, fill_value, name, input_shape)
        self.height_factor, self.width_factor = height_factor, width_factor  # as Keras keeps them
        self.height_range = _symmetric(height_factor, "RandomZoom height_factor", low_open=True)
        self.width_range = None if width_factor is None else _symmetric(
            width_factor, "RandomZoom width_factor", low_open=True)

    def transforms(self, n, height, width):
        rows = 1 + self.rng.uniform(*self.height_range, n)
        columns = rows if self.width_range is None else 1 + self.rng.uniform(
            *self.width_range, n)
        return zoom_matrices(rows, columns, height, width)


def zoom_matrices(rows: np.ndarray, columns: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, 6) transforms scaling (height, width) images about their center, by ``rows`` and
    ``columns`` (above 1: zooming out), as Keras's ``_get_zoom_matrix``."""
    zeros = np.zeros_like(rows)
    return np.stack([columns, zeros, (width - 1) / 2 * (1 - columns), zeros, rows,
                     (height - 1) / 2 * (1 - rows)], axis=1)


@register
class RandomCrop(RandomImageLayer):
    """Crop images to (``height``, ``width``). In training, when the input is larger, at an
    offset uniform over the possible ones, one offset for the whole batch (as Keras draws
    it). Otherwise, and in inference, the largest centered window of the target's aspect
    ratio is resized to the target (bilinear, half-pixel centers, as TensorFlow's resize):
    Keras 3.15 documents this but returns the input uncropped in inference, a shape its next
    layer refuses (docs/keras-parity.md).

    Input shape: (N, H, W, C). Output shape: (N, height, width, C)."""

    arguments = ("height", "width", "seed")
    keras_name = "RandomCrop"

    def __init__(self, height: int, width: int, seed: int | None = None,
                 name: str | None = None, input_shape: tuple | None = None):
        super().__init__(seed=seed, name=name, input_shape=input_shape)
        self.height = positive_int(height, "RandomCrop height")
        self.width = positive_int(width, "RandomCrop width")

    def compute_output_shape(self, input_shape):
        return (self.height, self.width, input_shape[-1])

    def forward(self, x, training=False):
        self.check_input(x)
        H, W = x.shape[1:3]
        if training and not self.inference_gradients and H > self.height and W > self.width:
            starts = self.draw_for_batch(len(x), lambda rows: self.draw(rows, x.dtype))
            self._cache["crop"] = (x.shape, starts[0]) if len(x) else (x.shape, (0, 0))
            top, left = self._cache["crop"][1]
            return x[:, top:top + self.height, left:left + self.width].copy()
        (top, left, rows, columns), transform = self.resize_window(H, W)
        window = np.ascontiguousarray(x[:, top:top + rows, left:left + columns])
        transforms = np.tile(transform, (len(x), 1))
        if training:
            self._cache["resize"] = (x.shape, (top, left, rows, columns), transforms)
        return ops.affine_warp(window, transforms, False, NEAREST, 0.0, self.height, self.width)

    def backward(self, dy):
        if "crop" in self._cache:
            (shape, (top, left)), = self.pop_cache("crop")
            dx = np.zeros(shape, dy.dtype)
            dx[:, top:top + self.height, left:left + self.width] = dy
            return dx
        (shape, (top, left, rows, columns), transforms), = self.pop_cache("resize")
        dx = np.zeros(shape, dy.dtype)
        dx[:, top:top + rows, left:left + columns] = ops.affine_warp_backward(
            dy, transforms, False, NEAREST, rows, columns)
        return dx

    def draw(self, n, dtype):
        """One offset (top, left) for the whole batch, repeated per image."""
        top = int(self.rng.integers(0, self.input_shape[0] - self.height + 1))
        left = int(self.rng.integers(0, self.input_shape[1] - self.width + 1))
        return np.tile(np.array([top, left]), (n, 1))

    def resize_window(self, H: int, W: int) -> tuple[tuple, np.ndarray]:
        """The centered window of the target's aspect ratio in an (H, W) image, as (top, left,
        rows, columns) (Keras's arithmetic), and the (6,) transform that resizes it to the
        target: row = (y + 1/2) * rows / height - 1/2 inside the window, likewise columns,
        clamped to the window's edges."""
        rows = max(min(H, int(W * self.height / self.width)), 1)
        columns = max(min(W, int(H * self.width / self.height)), 1)
        top, left = int((H - rows) / 2), int((W - columns) / 2)
        row_scale, column_scale = rows / self.height, columns / self.width
        transform = np.array([column_scale, 0, 0.5 * column_scale - 0.5, 0, row_scale,
                              0.5 * row_scale - 0.5], np.float32)
        return (top, left, rows, columns), transform


NEAREST = FILL_MODES.index("nearest")  # a resize reads clamped coordinates (the edge pixels)
