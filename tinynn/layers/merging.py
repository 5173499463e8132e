"""Merge layers, which take a list of tensors: Add, Subtract, Multiply, Average, Maximum,
Minimum and Concatenate, and their functional forms (``add([a, b])`` is ``Add()([a, b])``).

A merge layer's ``build``, ``compute_output_shape`` and ``forward`` take lists (one entry per
input, batch excluded in shapes), and ``backward(dy)`` returns a list of gradients in the same
order. The graph engine (``tinynn.models.Model``) passes lists to layers with
``takes_list = True``.
"""

import numpy as np

from ..errors import ArgumentError, ShapeError
from .base import Layer, register


class Merge(Layer):
    """Element-wise merge of inputs of one shape. Subclasses define ``combine(xs)`` and
    ``gradients(xs, y, dy)``; ``backward`` needs the inputs (and output) kept by a training
    forward."""

    takes_list = True
    keras_build_config = True
    #: Exactly this many inputs (Subtract: 2), or None: at least one.
    input_count: int | None = None

    def compute_output_shape(self, input_shape):
        shapes = _shape_list(self, input_shape)
        if self.input_count is not None and len(shapes) != self.input_count:
            raise ShapeError(f"{self.describe()} expected exactly {self.input_count} inputs, got "
                             f"{len(shapes)}")
        if any(shape != shapes[0] for shape in shapes):
            raise ShapeError(f"{self.describe()} expected inputs of one shape, got shapes "
                             f"{', '.join(map(_text, shapes))}")
        return shapes[0]

    def build(self, input_shape, rng):
        _build_list(self, input_shape)

    def forward(self, xs, training=False):
        xs = _check_inputs(self, xs)
        y = self.combine(xs)
        if training:
            self._cache["xs"], self._cache["y"] = xs, y
        return y

    def backward(self, dy):
        xs, y = self.pop_cache("xs", "y")
        return self.gradients(xs, y, dy)


@register
class Add(Merge):
    """The sum of the inputs. Shapes: (N, *s) each -> (N, *s)."""

    keras_name = "Add"

    def combine(self, xs):
        return _reduce(np.add, xs)

    def gradients(self, xs, y, dy):
        return [dy] * len(xs)


@register
class Subtract(Merge):
    """``a - b`` of exactly two inputs. Shapes: (N, *s) each -> (N, *s)."""

    keras_name = "Subtract"
    input_count = 2

    def combine(self, xs):
        return xs[0] - xs[1]

    def gradients(self, xs, y, dy):
        return [dy, -dy]


@register
class Multiply(Merge):
    """The element-wise product of the inputs. Shapes: (N, *s) each -> (N, *s)."""

    keras_name = "Multiply"

    def combine(self, xs):
        return _reduce(np.multiply, xs)

    def gradients(self, xs, y, dy):
        return [dy * _reduce(np.multiply, xs[:i] + xs[i + 1:]) if len(xs) > 1 else dy
                for i in range(len(xs))]


@register
class Average(Merge):
    """The mean of the inputs. Shapes: (N, *s) each -> (N, *s)."""

    keras_name = "Average"

    def combine(self, xs):
        return _reduce(np.add, xs) / np.asarray(len(xs), dtype=xs[0].dtype)

    def gradients(self, xs, y, dy):
        share = dy / np.asarray(len(xs), dtype=dy.dtype)
        return [share] * len(xs)


class _Extremum(Merge):
    """Maximum or Minimum (``combine_with``: np.maximum or np.minimum): the gradient goes to the
    first input holding the extremum (``pick``: np.argmax or np.argmin), as TensorFlow's
    pairwise gradient sends ties to the left operand."""

    def combine(self, xs):
        return _reduce(self.combine_with, xs)

    def gradients(self, xs, y, dy):
        chosen = self.pick(np.stack(xs), axis=0)
        return [np.where(chosen == i, dy, np.zeros((), dy.dtype)) for i in range(len(xs))]


@register
class Maximum(_Extremum):
    """The element-wise maximum of the inputs. Shapes: (N, *s) each -> (N, *s)."""

    keras_name = "Maximum"
    combine_with, pick = staticmethod(np.maximum), staticmethod(np.argmax)


@register
class Minimum(_Extremum):
    """The element-wise minimum of the inputs. Shapes: (N, *s) each -> (N, *s)."""

    keras_name = "Minimum"
    combine_with, pick = staticmethod(np.minimum), staticmethod(np.argmin)


@register
class Concatenate(Layer):
    """Join the inputs along ``axis`` (counted with the batch axis, as Keras: -1 is the last;
    0, the batch axis, is refused). Shapes: (N, *s_i) with equal sizes except on ``axis`` ->
    the sizes on ``axis`` added."""

    arguments = ("axis",)
    keras_name = "Concatenate"
    keras_build_config = True
    takes_list = True

    def __init__(self, axis: int = -1, name: str | None = None):
        super().__init__(name=name)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or axis == 0:
            raise ArgumentError("Concatenate axis expected a non-zero int (0 is the batch axis),"
                                f" got {axis!r}")
        self.axis = int(axis)

    def _sample_axis(self, rank: int) -> int:
        """The axis within a sample's shape of ``rank`` dimensions."""
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= axis < rank:
            raise ShapeError(f"{self.describe()} has axis={self.axis}, outside inputs of shape "
                             f"(N, {', '.join(['...'] * rank)}) of rank {rank + 1}")
        return axis

    def compute_output_shape(self, input_shape):
        shapes = _shape_list(self, input_shape)
        if any(len(shape) != len(shapes[0]) for shape in shapes):
            raise ShapeError(f"{self.describe()} expected inputs of one rank, got shapes "
                             f"{', '.join(map(_text, shapes))}")
        axis = self._sample_axis(len(shapes[0]))
        others = [shape[:axis] + shape[axis + 1:] for shape in shapes]
        if any(other != others[0] for other in others):
            raise ShapeError(f"{self.describe()} expected inputs of equal sizes except on axis "
                             f"{self.axis}, got shapes {', '.join(map(_text, shapes))}")
        return (*shapes[0][:axis], sum(shape[axis] for shape in shapes), *shapes[0][axis + 1:])

    def build(self, input_shape, rng):
        _build_list(self, input_shape)

    def forward(self, xs, training=False):
        xs = _check_inputs(self, xs)
        return np.concatenate(xs, axis=1 + self._sample_axis(len(self.input_shape[0])))

    def backward(self, dy):
        axis = 1 + self._sample_axis(len(self.input_shape[0]))
        ends = np.cumsum([shape[axis - 1] for shape in self.input_shape])[:-1]
        return [np.ascontiguousarray(part) for part in np.split(dy, ends, axis=axis)]


def _build_list(layer, input_shape) -> None:
    """Check the input shapes (a list) and record them: a weightless merge's build."""
    layer.compute_output_shape(input_shape)
    layer.input_shape = [tuple(shape) for shape in input_shape]
    layer.built = True


def _text(shape) -> str:
    return "(" + ", ".join(["None", *map(str, shape)]) + ")"


def _shape_list(layer, input_shape) -> list[tuple]:
    """``input_shape`` as a non-empty list of shape tuples, or a ShapeError naming the layer."""
    if not isinstance(input_shape, (list, tuple)) or not input_shape or not all(
            isinstance(shape, (list, tuple)) for shape in input_shape):
        raise ShapeError(f"{layer.describe()} expected a list of at least one input, got "
                         f"{input_shape!r}")
    return [tuple(shape) for shape in input_shape]


def _check_inputs(layer, xs) -> list[np.ndarray]:
    """The list of input arrays, checked against the built shapes and one batch size."""
    if layer.input_shape is None:
        raise RuntimeError(f"{layer.describe()} was called before build(input_shape, rng)")
    if not isinstance(xs, (list, tuple)) or len(xs) != len(layer.input_shape):
        raise ShapeError(f"{layer.describe()} expected a list of {len(layer.input_shape)} "
                         f"arrays, got {type(xs).__name__}"
                         + (f" of {len(xs)}" if isinstance(xs, (list, tuple)) else ""))
    for i, (x, shape) in enumerate(zip(xs, layer.input_shape)):
        if x.shape[1:] != shape or len(x) != len(xs[0]):
            raise ShapeError(f"{layer.describe()} expected input {i} of shape "
                             f"(N={len(xs[0])}, {', '.join(map(str, shape))}), got {x.shape}")
    return list(xs)


def _reduce(ufunc, xs):
    out = xs[0].copy() if len(xs) == 1 else ufunc(xs[0], xs[1])
    for x in xs[2:]:
        ufunc(out, x, out=out)
    return out


def _functional(cls):
    def call(inputs, **kwargs):
        return cls(**kwargs)(inputs)
    call.__name__ = cls.__name__.lower()
    call.__doc__ = f"``{cls.__name__}(**kwargs)(inputs)``, Keras's functional form."
    return call


add, subtract, multiply, average, maximum, minimum, concatenate = map(
    _functional, (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate))
