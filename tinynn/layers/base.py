"""The Layer contract every tinynn layer follows.

A layer is built once for a fixed input shape (batch axis excluded), owns named parameters and
gradients of the same shapes, and maps ``forward``/``backward`` over a batch. When a layer is part
of a ``Sequential`` model, ``params[k]`` and ``grads[k]`` are views into the model's contiguous
parameter and gradient buffers: ``backward`` writes gradients *into* ``grads[k]`` (overwriting,
never accumulating, never rebinding), and optimizers update ``params`` in place.
"""

import re

import numpy as np

from .. import config
from ..errors import ShapeError
from ..initializers import get as get_initializer


def snake_case(name: str) -> str:
    """``MaxPooling2D`` -> ``max_pooling2d`` (Keras's default layer names)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class Layer:
    """Base class. Subclasses override ``build``, ``compute_output_shape``, ``forward``,
    ``backward`` and ``get_config`` as needed.

    Attributes: ``params``/``grads`` (dicts of arrays, Keras names and shapes), ``input_shape``
    (batch excluded, set by ``build``), ``built``, ``name``.
    """

    #: Layers that draw random numbers in training (Dropout) set this; the model then assigns its
    #: dropout Generator to ``layer.rng`` after ``build``.
    uses_training_rng = False
    #: The model sets this to False on its first layer with parameters: its ``backward`` then
    #: only fills ``grads`` and returns None instead of d(input), which nobody would use.
    compute_input_gradient = True

    def __init__(self, name: str | None = None, input_shape: tuple | None = None):
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.built = False
        self.input_shape = None
        self.declared_input_shape = None if input_shape is None else tuple(input_shape)
        self._cache: dict[str, np.ndarray] = {}

    # -- contract ----------------------------------------------------------------------------
    def build(self, input_shape: tuple, rng: np.random.Generator) -> None:
        """Create parameters for inputs of shape ``(N, *input_shape)``."""
        self.input_shape = tuple(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Output shape (batch excluded) for an input shape (batch excluded)."""
        return tuple(input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        """Constructor arguments as a JSON-compatible dict (Keras's names)."""
        config = {"name": self.name}
        if self.declared_input_shape is not None:
            config["input_shape"] = list(self.declared_input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**config)

    def count_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    # -- helpers for subclasses --------------------------------------------------------------
    def add_weight(self, key: str, shape: tuple, initializer, rng: np.random.Generator) -> None:
        """Create ``params[key]`` in floatx from ``initializer`` and a zero ``grads[key]``."""
        value = get_initializer(initializer)(shape, config.floatx(), rng)
        self.params[key] = value
        self.grads[key] = np.zeros_like(value)

    def check_input(self, x: np.ndarray, hint: str = "") -> None:
        """Raise ShapeError unless ``x`` is ``(N, *input_shape)``."""
        if self.input_shape is None:
            raise RuntimeError(f"{self.describe()} was called before build(input_shape, rng)")
        if x.shape[1:] != self.input_shape:
            expected = "(" + ", ".join(["N", *map(str, self.input_shape)]) + ")"
            raise ShapeError(
                f"{self.describe()} expected input {expected}, got {x.shape}"
                + (f": {hint}" if hint else "")
            )

    def describe(self) -> str:
        """Short description used in error messages, e.g. ``Dense 'dense' (units=10)``."""
        return f"{type(self).__name__} {self.name!r}"

    def pop_cache(self, *keys: str) -> tuple:
        """Return and release cached forward values; error if forward(training=True) was not run."""
        if not all(k in self._cache for k in keys):
            raise RuntimeError(
                f"{self.describe()}.backward called without a preceding forward(training=True)"
            )
        return tuple(self._cache.pop(k) for k in keys)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"
