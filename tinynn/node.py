"""Symbolic tensors and nodes: the records a functional model is built from.

``Input(shape)`` returns a ``SymbolicTensor``; calling a layer on symbolic tensors records a
``Node`` (one per call: a shared layer has several) and returns symbolic outputs, whose
``history`` names the node that made them. No array is computed until a ``Model`` runs.
"""

from __future__ import annotations

from . import config
from .validation import positive_int


class SymbolicTensor:
    """A placeholder for a batch of arrays: ``shape`` (batch first, None), ``dtype``, ``name``
    and ``history`` = (layer, node_index, tensor_index), the call that produced it."""

    def __init__(self, shape: tuple, dtype: str, name: str, history: tuple):
        self.shape = (None, *shape)
        self.dtype = dtype
        self.name = name
        self.history = history

    @property
    def node(self) -> Node:
        layer, node_index, _ = self.history
        return layer.inbound_nodes[node_index]

    @property
    def sample_shape(self) -> tuple:
        """The shape without the batch axis."""
        return self.shape[1:]

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype} name={self.name!r}>"


class Node:
    """One call of ``layer``: its input tensors (a list; ``takes_list`` layers get it whole,
    others its one entry) and its output tensor."""

    def __init__(self, layer, inputs: list[SymbolicTensor]):
        self.layer = layer
        self.inputs = list(inputs)
        self.index = len(layer.inbound_nodes)
        shapes = [t.sample_shape for t in inputs]
        shape = layer.compute_output_shape(shapes if layer.takes_list else shapes[0])
        dtype = inputs[0].dtype if inputs else config.floatx()
        name = layer.name if not self.index else f"{layer.name}_{self.index}"
        self.output = SymbolicTensor(tuple(shape), dtype, name, (layer, self.index, 0))
        layer.inbound_nodes.append(self)

    @property
    def parents(self) -> list[Node]:
        """The nodes that produced this node's inputs."""
        return [t.node for t in self.inputs]


class InputLayer:
    """The layer behind an ``Input`` tensor: no weights, no computation. Keras lists it in a
    functional model's layers; Sequential models skip it."""

    keras_name = "InputLayer"
    takes_list = False

    def __init__(self, shape: tuple, dtype: str | None, name: str):
        self.shape = tuple(shape)
        self.dtype = dtype or config.floatx()
        self.name = name
        self.inbound_nodes: list[Node] = []
        self.params, self.state = {}, {}

    def get_config(self) -> dict:
        return {"name": self.name, "shape": list(self.shape)}


def Input(shape, batch_size: int | None = None, dtype: str | None = None,  # noqa: N802
          name: str | None = None) -> SymbolicTensor:
    """A symbolic input of samples of ``shape`` (batch excluded), as Keras's ``keras.Input``.
    ``batch_size``, if given, is recorded and checked to be positive; batches of any size run."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    for dim in shape:
        positive_int(dim, "Input shape dimension")
    if batch_size is not None:
        positive_int(batch_size, "Input batch_size")
    layer = InputLayer(shape, dtype, name or config.unique_name("input_layer"))
    tensor = SymbolicTensor(shape, layer.dtype, layer.name, (layer, 0, 0))
    layer.inbound_nodes.append(_InputNode(layer, tensor))
    return tensor


class _InputNode:
    """The node of an InputLayer: no inputs, its tensor as output."""

    def __init__(self, layer: InputLayer, tensor: SymbolicTensor):
        self.layer, self.inputs, self.output, self.index = layer, [], tensor, 0
        self.parents = []
