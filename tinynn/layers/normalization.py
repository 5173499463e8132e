"""BatchNormalization: Keras's batch normalization, a layer with non-trainable state."""

import math
from numbers import Integral

import numpy as np

from .. import initializers, ops, regularizers
from ..errors import ArgumentError, DTypeError
from ..validation import real_in_range
from .base import Layer, register


@register
class BatchNormalization(Layer):
    """Normalize each channel (the entries along ``axis``) to zero mean and unit variance, then
    scale by ``gamma`` and shift by ``beta``, as Keras 3 does.

    Training (``forward(x, training=True)``): ``gamma * (x - mean) / sqrt(var + epsilon) +
    beta`` with the batch's mean and biased variance over every axis but ``axis``; then the
    moving statistics are updated in place, ``moving = moving * momentum + batch * (1 -
    momentum)``, the variance biased too (Keras 3; tf.keras 2's fused kernel used the unbiased
    one). Inference: the same formula with ``moving_mean`` and ``moving_variance``.

    Input shape: (N, ...) of any rank, e.g. (N, F) or NHWC images (N, H, W, C); ``axis`` is
    one int counted on that shape, batch axis included (-1, the default, is channels last; the
    batch axis itself is refused; a one-element list, as tf.keras 2 writes it, is that int).
    Output shape: the input's. Weights, Keras's order, each (C,) for C channels: ``gamma`` (if
    ``scale``) and ``beta`` (if ``center``), trainable, with optional regularizers;
    ``moving_mean`` and ``moving_variance``, non-trainable (``state``), never touched by an
    optimizer. Sums are accumulated in float64; outputs and gradients keep the input dtype.
    """

    arguments = ("axis", "momentum", "epsilon", "center", "scale", "beta_initializer",
                 "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer",
                 "beta_regularizer", "gamma_regularizer")
    keras_name = "BatchNormalization"
    keras_fixed = {"beta_constraint": None, "gamma_constraint": None, "synchronized": False,
                   "renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99}
    keras_build_config = True

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, name: str | None = None,
                 input_shape: tuple | None = None):
        super().__init__(name=name, input_shape=input_shape)
        if isinstance(axis, (list, tuple)) and len(axis) == 1:
            axis = axis[0]  # tf.keras 2 writes its axis as a list, e.g. [3]
        if isinstance(axis, bool) or not isinstance(axis, Integral) or axis == 0:
            raise ArgumentError("BatchNormalization axis expected one non-zero int (an input "
                                "axis other than the batch axis, e.g. -1 for channels last; "
                                f"tinynn normalizes over a single axis), got {axis!r}")
        self.axis = int(axis)
        self.momentum = real_in_range(momentum, "BatchNormalization momentum", 0, 1)
        self.epsilon = real_in_range(epsilon, "BatchNormalization epsilon", 0, math.inf,
                                     low_open=True)
        self.center = _flag(center, "center")
        self.scale = _flag(scale, "scale")
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.channel_axis: int | None = None

    def describe(self):
        return f"BatchNormalization {self.name!r} (axis={self.axis})"

    def _resolve_axis(self, input_shape: tuple) -> int:
        """``axis`` as a positive index into (N, *input_shape); ArgumentError if it is out of
        range or the batch axis."""
        rank = len(input_shape) + 1
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis < rank:
            dims = ", ".join(["N", *map(str, input_shape)])
            raise ArgumentError(f"{self.describe()} expected an axis of its input ({dims}) "
                                f"other than the batch axis: -{rank - 1}..-1 or 1..{rank - 1}, "
                                f"got {self.axis}")
        return axis

    def compute_output_shape(self, input_shape):
        self._resolve_axis(input_shape)
        return tuple(input_shape)

    def build(self, input_shape, rng):
        self.channel_axis = self._resolve_axis(input_shape)
        super().build(input_shape, rng)
        shape = (input_shape[self.channel_axis - 1],)
        if self.scale:
            self.add_weight("gamma", shape, self.gamma_initializer, rng,
                            regularizer=self.gamma_regularizer)
        if self.center:
            self.add_weight("beta", shape, self.beta_initializer, rng,
                            regularizer=self.beta_regularizer)
        self.add_weight("moving_mean", shape, self.moving_mean_initializer, rng,
                        trainable=False)
        self.add_weight("moving_variance", shape, self.moving_variance_initializer, rng,
                        trainable=False)

    # -- channels-last rows --------------------------------------------------------------------
    def _rows(self, x: np.ndarray) -> np.ndarray:
        """``x`` as C-contiguous rows (M, C), channels last: a view of ``x`` when ``axis`` is
        its last axis, a transposed copy otherwise."""
        if self.channel_axis != x.ndim - 1:
            x = np.moveaxis(x, self.channel_axis, -1)  # (N, ..., C)
        return np.ascontiguousarray(x).reshape(-1, x.shape[-1])  # -> (M, C)

    def _unrows(self, rows: np.ndarray, shape: tuple) -> np.ndarray:
        """Rows (M, C) back to an array of ``shape`` (the input's), channels at ``axis``."""
        moved = [*shape[:self.channel_axis], *shape[self.channel_axis + 1:],
                 shape[self.channel_axis]]
        out = rows.reshape(moved)  # (M, C) -> (N, ..., C)
        if self.channel_axis != len(shape) - 1:
            out = np.moveaxis(out, -1, self.channel_axis)  # channels back at ``axis``
        return out

    # -- forward and backward ------------------------------------------------------------------
    def forward(self, x, training=False):
        self.check_input(x)
        moving_mean, moving_variance = self.state["moving_mean"], self.state["moving_variance"]
        if x.dtype != moving_mean.dtype:
            raise DTypeError(f"{self.describe()} expected {moving_mean.dtype} input, got "
                             f"{x.dtype}")
        rows = self._rows(x)
        batch_statistics = training and not self.inference_gradients
        if batch_statistics:
            mean, variance = ops.batchnorm_moments(rows)
            self._update_moving_statistics(mean, variance)
        else:
            mean, variance = moving_mean, moving_variance
        inv_std = 1 / np.sqrt(variance + x.dtype.type(self.epsilon))
        scale = self._scale(inv_std)
        shift = -mean * scale  # tf.nn.batch_normalization's form: x * scale + shift
        if self.center:
            shift += self.params["beta"]
        y = ops.batchnorm_scale_shift(rows, scale, shift)
        if training:
            self._cache.update(rows=rows, mean=mean, inv_std=inv_std, batch=batch_statistics)
        return self._unrows(y, x.shape)

    def _scale(self, inv_std: np.ndarray) -> np.ndarray:
        """gamma / sqrt(var + epsilon) (C,), or 1 / sqrt(var + epsilon) without ``scale``."""
        return inv_std * self.params["gamma"] if self.scale else inv_std

    def _update_moving_statistics(self, mean: np.ndarray, variance: np.ndarray) -> None:
        """moving = moving * momentum + batch * (1 - momentum), in place, as Keras computes it
        (both factors rounded to the weights' dtype)."""
        dtype = mean.dtype.type
        for key, batch in (("moving_mean", mean), ("moving_variance", variance)):
            moving = self.state[key]
            moving *= dtype(self.momentum)
            moving += batch * dtype(1.0 - self.momentum)

    def backward(self, dy):
        """With x_hat = (x - mean) / std and M rows per channel: dbeta = sum(dy), dgamma =
        sum(dy * x_hat), dx = gamma / std * (dy - dbeta / M - x_hat * dgamma / M)."""
        rows, mean, inv_std, batch = self.pop_cache("rows", "mean", "inv_std", "batch")
        dy_rows = self._rows(dy)
        sum_dy, sum_dy_centered = ops.batchnorm_backward_sums(dy_rows, rows, mean)
        if self.center:
            self.grads["beta"][...] = sum_dy
        if self.scale:
            np.multiply(sum_dy_centered, inv_std, out=self.grads["gamma"])
        if not self.compute_input_gradient:
            return None
        count = len(rows) if batch else math.inf  # moving statistics: constants of x
        dx = ops.batchnorm_input_gradient(dy_rows, rows, mean, self._scale(inv_std),
                                          sum_dy / count,
                                          sum_dy_centered * (inv_std * inv_std) / count)
        return self._unrows(dx, dy.shape)


def _flag(value, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"BatchNormalization {what} expected True or False, got {value!r}")
    return bool(value)
