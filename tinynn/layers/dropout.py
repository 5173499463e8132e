"""Dropout: inverted dropout, active only in training."""

import numpy as np

from ..validation import non_negative_int, real_in_range
from .base import Layer, register


@register
class Dropout(Layer):
    """Zero each input with probability ``rate`` and scale the rest by 1 / (1 - rate)
    (Keras's inverted dropout), so inference is the identity.

    Input shape: (N, ...). Output shape: the same. Active only when ``training=True``;
    otherwise (and always for ``rate=0``) the input itself is returned. Masks are drawn from
    ``self.rng``: inside a ``Sequential`` the model's dropout Generator (``seed`` is then
    unused: the model's seed decides), standalone a Generator seeded with ``seed`` at build.
    With ``batch_shard = (global_rows, rows)`` (data-parallel training, see ``Layer``), the
    mask is drawn for the whole global batch and its ``rows`` applied: x must have that many.
    """

    arguments = ("rate", "seed")
    keras_name = "Dropout"
    keras_fixed = {"noise_shape": None}
    uses_training_rng = True

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None):
        super().__init__(name=name)
        self.rate = real_in_range(rate, "Dropout rate", 0, 1, high_open=True)
        self.seed = None if seed is None else non_negative_int(seed, "Dropout seed")
        self.rng: np.random.Generator | None = None

    def forward(self, x, training=False):
        self.check_input(x)
        if not training:
            return x
        mask = None
        if self.rate > 0 and not self.inference_gradients:
            keep = self._uniform(x) >= self.rate  # P(keep) = 1 - rate
            mask = keep * x.dtype.type(1 / (1 - self.rate))  # 0 or 1 / (1 - rate), x's dtype
            x = x * mask
        self._cache["mask"] = mask
        return x

    def _uniform(self, x):
        """Uniform [0, 1) numbers shaped like ``x`` (``Layer.draw_for_batch``)."""
        return self.draw_for_batch(len(x), lambda rows: self.rng.random(
            (rows, *x.shape[1:]), dtype=x.dtype))

    def backward(self, dy):
        (mask,) = self.pop_cache("mask")
        return dy if mask is None else dy * mask
