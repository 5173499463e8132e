"""``Sequential``: a linear stack of layers, run as a chain of ``Model``'s graph.

Once the input shape is known (an ``Input`` first, ``input_shape=`` on the first layer,
``build`` or the first ``fit``/``predict``), ``build`` calls each layer on the previous one's
symbolic output, as Keras 3's Sequential builds a Functional; from then on forward, backward,
``fit``, ``evaluate`` and ``predict`` are ``Model``'s. ``layers`` lists the stack without its
input layer, as Keras does.
"""

from __future__ import annotations

import numpy as np

from .. import config
from ..batching import model_input
from ..errors import ArgumentError, ShapeError
from ..layers.base import Layer, snake_case
from ..layers.core import Input, InputLayer
from ..node import SymbolicTensor
from ..registry import register_model
from ..validation import same_length
from .model import Model, _layout_hint


@register_model("Sequential")
class Sequential(Model):
    """A linear stack of layers.

    Parameters: ``layers`` (optional list, first may be ``Input(shape)``), ``name``, ``seed``
    (int or None). Input shape: (N, *input_shape). Output shape: (N, *output_shape).
    """

    def __init__(self, layers: list[Layer] | None = None, name: str = "sequential",
                 seed: int | None = None):
        super().__init__(name=name, seed=seed)
        self._stack: list[Layer] = []
        self._input: SymbolicTensor | None = None
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list[Layer]:
        """The stack's layers, in order (no input layer, as Keras's Sequential)."""
        return list(self._stack)

    @property
    def weighted_layers(self) -> list[Layer]:
        return self.layers

    # -- construction --------------------------------------------------------------------------
    def add(self, layer) -> None:
        """Append a layer, or declare the input shape with ``Input(shape)`` (first only),
        before the model is built."""
        if isinstance(layer, InputLayer):
            layer = layer.output_tensor
        if isinstance(layer, SymbolicTensor):
            if not layer.node.is_input:
                raise ArgumentError("Sequential.add expected a Layer or an Input tensor, got "
                                    f"the output of layer {layer.history[0].name!r}")
            if self._stack:
                raise ArgumentError("Input must come first in a Sequential model")
            self._input, self.input_shape = layer, layer.sample_shape
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expected a Layer, got {type(layer).__name__}")
        if self.built:
            raise RuntimeError(f"cannot add {layer!r} to the built model {self.name!r}: "
                               "add every layer before build, fit or summary")
        if not self._stack and layer.declared_input_shape:
            self.input_shape = layer.declared_input_shape
        if layer.name is None:
            layer.name = self._unique_name(snake_case(type(layer).__name__))
        elif any(other.name == layer.name for other in self._stack):
            raise ArgumentError(f"layer name {layer.name!r} is already used in {self.name!r}")
        self._stack.append(layer)

    def _unique_name(self, base: str) -> str:
        taken = {layer.name for layer in self._stack}
        name, i = base, 0
        while name in taken:
            i += 1
            name = f"{base}_{i}"
        return name

    def build(self, input_shape: tuple | None = None,
              weight_shapes: dict[str, list[tuple]] | None = None) -> None:
        """Create all weights. ``input_shape`` includes the batch axis, as in Keras
        (``model.build((None, 28, 28))``); without it, the declared input shape is used.
        ``weight_shapes``: see ``Model.build``. Every shape is checked before any weight is
        allocated."""
        if input_shape is not None:
            shape = tuple(input_shape)[1:]
        elif self.input_shape is not None:
            shape = self.input_shape
        else:
            raise ShapeError(f"model {self.name!r} has no input shape: start it with "
                             "Input(shape), pass input_shape to its first layer, or call fit")
        if not self._stack:
            raise ArgumentError(f"model {self.name!r} has no layers to build")
        if self.built:
            if shape != self.input_shape:
                raise ShapeError(f"model {self.name!r} was built for inputs {self.input_shape}, "
                                 f"got {shape}")
            return
        self._make_graph(shape)
        super().build(weight_shapes=weight_shapes)

    def _make_graph(self, shape: tuple) -> None:
        """The chain of layer calls on inputs of ``shape`` (once; no weight is made)."""
        if self.inputs:
            if self.inputs[0].sample_shape != shape:
                raise ShapeError(f"model {self.name!r} takes inputs of shape "
                                 f"{self.inputs[0].sample_shape}, got {shape}")
            return
        self._output_shape_for(shape)  # shape errors before any node is recorded
        x = self._input if self._input is not None and self._input.sample_shape == shape \
            else Input(shape)
        inputs = [x]
        for layer in self._stack:
            x = layer(x)
        self._set_graph(inputs, [x])

    def _graph_for_call(self, inputs: list) -> None:
        if len(inputs) == 1:
            self._make_graph(inputs[0].sample_shape)

    def _output_shape_for(self, shape: tuple) -> tuple:
        for layer in self._stack:
            shape = layer.compute_output_shape(shape)
        return shape

    def prepare(self, x, y=None, name: str = "x"):
        """Validate and cast inputs (and targets) without changing the model; build it if
        needed. Returns x as floatx (N, *input_shape), and y ready for the loss (or None)."""
        x = model_input(x, config.floatx(), name)
        if x.ndim < 2:
            raise ShapeError(f"{name} expected shape (N, features...), got {x.shape}")
        if self.input_shape is not None and x.shape[1:] != self.input_shape:
            raise ShapeError(f"model {self.name!r} expects {name} of shape (N, "
                             f"{', '.join(map(str, self.input_shape))}), got {x.shape}"
                             + _layout_hint(x.shape[1:], self.input_shape)
                             + (" (its input size is fixed once built)" if self.built else ""))
        output_shape = self._output_shape_for(x.shape[1:])
        if y is not None:
            same_length(x, np.asarray(y), name, "y")
            y = self.loss.prepare_targets(y, (len(x), *output_shape))
        if not self.built:
            self.build((None, *x.shape[1:]))
        return x, y
