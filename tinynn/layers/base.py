"""The Layer contract every tinynn layer follows, and the registry of layer classes.

A layer is built once for a fixed input shape (batch axis excluded), owns named weights and
maps ``forward``/``backward`` over a batch. Weights are trainable (``params``, each with a
gradient of the same shape in ``grads``) or non-trainable (``state``, e.g. BatchNormalization's
moving statistics: updated by ``forward(training=True)``, never by an optimizer). When a layer
is part of a ``Sequential`` model, ``params[k]``, ``grads[k]`` and ``state[k]`` are views into
the model's contiguous buffers: ``backward`` writes gradients *into* ``grads[k]`` (overwriting,
never accumulating, never rebinding), and optimizers update ``params`` in place.

A layer class also describes itself, so the model, ``summary``, saving (tinynn's and Keras's
formats) and the optimizer need no list of layer names: ``arguments`` (its constructor
arguments, which ``get_config`` writes and Keras files map one to one), ``keras_name`` and
``keras_fixed`` (what Keras writes for arguments tinynn has no counterpart for). ``register``
adds a class to ``REGISTRY``, the only table a saved file's class names are resolved through.
"""

import inspect
import re

import numpy as np

from .. import activations, config, initializers, regularizers
from ..errors import ArgumentError, ShapeError
from ..initializers import get as get_initializer
from ..node import Node, SymbolicTensor
from ..validation import float_array, object_name

#: Layer classes by name (tinynn's and Keras's class names, and aliases): the only classes a
#: saved file may name. Filled by ``register``.
REGISTRY: dict[str, type] = {}


def register(cls_or_alias, *aliases: str):
    """Class decorator: add the class to ``REGISTRY`` under its name, its Keras name and
    ``aliases`` (``@register`` or ``@register("MaxPool2D")``)."""
    if isinstance(cls_or_alias, str):
        return lambda cls: register(cls, cls_or_alias, *aliases)
    cls = cls_or_alias
    for name in {cls.__name__, cls.keras_name or cls.__name__, *aliases}:
        REGISTRY[name] = cls
    return cls


def plain(value):
    """A constructor argument as JSON: tuples as lists, activations and initializers by name,
    regularizers as ``{"class_name", "config"}``."""
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if isinstance(value, (activations.Activation, initializers.Initializer)):
        return value.name
    if isinstance(value, regularizers.Regularizer):
        return regularizers.serialize(value)
    return value


def snake_case(name: str) -> str:
    """``MaxPooling2D`` -> ``max_pooling2d`` (Keras's default layer names)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class Layer:
    """Base class. Subclasses override ``build``, ``compute_output_shape``, ``forward`` and
    ``backward``, and declare ``arguments`` (then ``get_config`` needs no override).

    Attributes: ``params``/``grads`` (trainable weights and their gradients), ``state``
    (non-trainable weights), all dicts of arrays with Keras's names, shapes and order;
    ``input_shape`` (batch excluded, set by ``build``), ``built``, ``name``.
    """

    #: Constructor arguments (besides ``name`` and ``input_shape``), each stored under its own
    #: name: ``get_config`` writes them and Keras configs map to them one to one.
    arguments: tuple[str, ...] = ()
    #: tinynn's own arguments, absent from Keras configs, written by ``get_config`` only when
    #: they differ from their default (Conv2D's ``algorithm``).
    native_arguments: tuple[str, ...] = ()
    #: Keras's class name, or None for a layer Keras has no counterpart of.
    keras_name: str | None = None
    #: Config entries Keras writes for arguments tinynn does not have, at their no-op values.
    keras_fixed: dict = {}
    #: Whether Keras stores a ``build_config`` (the input shape) for this layer.
    keras_build_config = False
    #: Layers that draw random numbers in training (Dropout, the augmentations) set this and
    #: have a ``seed``: ``build`` gives them ``rng``, a Generator seeded with it, which a model
    #: replaces by its dropout Generator.
    uses_training_rng = False
    #: For layers with ``uses_training_rng``: set by data-parallel training around a training
    #: forward that computes only some rows of a global batch, as ``(global_rows, rows)`` (a
    #: slice; possibly empty, with an empty input). Such a layer draws its random numbers for
    #: all ``global_rows`` and keeps ``rows``, so that every rank's Generator advances alike
    #: and each sample gets the randomness one process would give it. None: the whole batch.
    batch_shard: tuple[int, slice] | None = None
    #: Set by ``tinynn.visualize.inference_gradients`` around a ``forward(training=True)``
    #: whose ``backward`` must differentiate the inference function: layers that act
    #: differently in training (Dropout, BatchNormalization, the augmentations) then compute
    #: what inference computes, and still keep what ``backward`` needs.
    inference_gradients = False
    #: The model sets this to False on its first layer with parameters: its ``backward`` then
    #: only fills ``grads`` and returns None instead of d(input), which nobody would use.
    compute_input_gradient = True
    #: If set (by whoever builds the layer, e.g. a loader), called as ``weight_guard(key,
    #: shape)`` before ``add_weight`` allocates anything; it raises to refuse the weight.
    weight_guard = None

    def __init__(self, name: str | None = None, input_shape: tuple | None = None):
        if name is not None:
            object_name(name, f"{type(self).__name__} name")
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.regularizers: dict[str, object] = {}
        self.built = False
        self.input_shape = None
        self.declared_input_shape = None if input_shape is None else tuple(input_shape)
        self._cache: dict[str, np.ndarray] = {}
        self.inbound_nodes: list = []

    # -- calls: symbolic (a graph node) or eager -------------------------------------------------
    #: Layers whose forward takes a list of arrays (merge layers) set this.
    takes_list = False

    def __call__(self, inputs):
        """On symbolic tensors (``tinynn.Input``, other layers' outputs): record a node and
        return its symbolic output, checking shapes now. On arrays: build (once, from the
        first call's shape) and run in inference mode, as Keras's ``Dense(3)(x)``."""
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        symbolic = [isinstance(item, SymbolicTensor) for item in items]
        if any(symbolic):
            if not all(symbolic):
                raise ArgumentError(f"{self.describe()} was called on a mix of symbolic "
                                    "tensors and arrays: pass symbolic tensors only")
            if self.takes_list != isinstance(inputs, (list, tuple)):
                raise ArgumentError(
                    f"{self.describe()} expected " + ("a list of tensors" if self.takes_list
                                                      else "one tensor")
                    + f", got {type(inputs).__name__}"
                    + (f" of {len(items)}" if isinstance(inputs, (list, tuple)) else ""))
            if self.name is None:
                self.name = config.unique_name(snake_case(type(self).__name__))
            node = Node(self, items)
            self.inbound_nodes.append(node)
            return node.output
        arrays = [float_array(item, config.floatx(), f"{self.describe()} input")
                  for item in items]
        if not self.built:
            shapes = [a.shape[1:] for a in arrays]
            self.build(shapes if self.takes_list else shapes[0],
                       np.random.default_rng(config.draw_seed()))
        return self.forward(arrays if self.takes_list else arrays[0], training=False)

    @property
    def input(self):
        """The symbolic input of the layer's first call (a list for ``takes_list`` layers)."""
        node = self._first_node("input")
        return node.inputs if self.takes_list else node.inputs[0]

    @property
    def output(self):
        """The symbolic output of the layer's first call."""
        return self._first_node("output").output

    def _first_node(self, what: str):
        if not self.inbound_nodes:
            raise AttributeError(f"{self.describe()} has no {what}: it was never called on a "
                                 "symbolic tensor (tinynn.Input or another layer's output)")
        return self.inbound_nodes[0]

    # -- contract ----------------------------------------------------------------------------
    def build(self, input_shape: tuple, rng: np.random.Generator) -> None:
        """Create the weights for inputs of shape ``(N, *input_shape)``."""
        self.input_shape = tuple(input_shape)
        self.built = True
        if self.uses_training_rng:
            self.rng = np.random.default_rng(self.seed)

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
        config.update({key: plain(getattr(self, key)) for key in self.arguments})
        defaults = inspect.signature(type(self)).parameters
        config.update({key: plain(getattr(self, key)) for key in self.native_arguments
                       if getattr(self, key) != defaults[key].default})
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**config)

    @property
    def weights(self) -> dict[str, np.ndarray]:
        """Every weight, trainable ones first (Keras's order, e.g. gamma, beta, moving_mean,
        moving_variance)."""
        return {**self.params, **self.state}

    def count_params(self) -> int:
        """Number of weights, trainable and non-trainable (as Keras counts)."""
        return int(sum(p.size for p in self.weights.values()))

    def release_cache(self) -> None:
        """Drop what ``forward(training=True)`` kept for ``backward``."""
        self._cache.clear()

    @property
    def holds_cache(self) -> bool:
        """Whether a training forward's values are waiting for ``backward``."""
        return bool(self._cache)

    # -- helpers for subclasses --------------------------------------------------------------
    def add_weight(self, key: str, shape: tuple, initializer, rng: np.random.Generator,
                   trainable: bool = True, regularizer=None) -> None:
        """Create ``params[key]`` (and a zero ``grads[key]``) or, if not ``trainable``,
        ``state[key]``, in floatx from ``initializer``. A ``regularizer`` (trainable weights
        only) adds its penalty to the model's loss."""
        shape = tuple(shape)
        if self.weight_guard is not None:
            self.weight_guard(key, shape)
        value = get_initializer(initializer)(shape, config.floatx(), rng)
        if not trainable:
            self.state[key] = value
            return
        self.params[key] = value
        self.grads[key] = np.zeros_like(value)
        if regularizer is not None:
            self.regularizers[key] = regularizer

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

    def draw_for_batch(self, n: int, draw):
        """``draw(n)`` (random numbers for this call's n samples); in data-parallel training
        (``batch_shard``) drawn for the whole global batch and this shard's rows kept, so the
        samples get the numbers one process would give them."""
        if self.batch_shard is None:
            return draw(n)
        global_rows, rows = self.batch_shard
        if rows.stop - rows.start != n:
            raise ShapeError(f"{self.describe()} expected {rows.stop - rows.start} rows (rows "
                             f"{rows.start}:{rows.stop} of a global batch of {global_rows}), "
                             f"got {n}")
        return draw(global_rows)[rows]

    def pop_cache(self, *keys: str) -> tuple:
        """Return and release cached forward values; error if forward(training=True) was not run."""
        cache = self._cache
        try:
            return tuple([cache.pop(k) for k in keys])
        except KeyError:
            raise RuntimeError(
                f"{self.describe()}.backward called without a preceding forward(training=True)"
            ) from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"
