"""Symbolic tensors and nodes: the records a model's graph is made of.

``tinynn.Input(shape)`` returns a ``SymbolicTensor``; calling a layer on symbolic tensors
records a ``Node`` (one per call: a shared layer has several, in ``layer.inbound_nodes``) and
returns its symbolic output, whose ``history`` names that call. No array is computed until a
model runs the graph (``tinynn.models``).
"""

from __future__ import annotations


class SymbolicTensor:
    """A placeholder for a batch: ``shape`` (batch axis first, None), ``dtype``, ``name``, and
    ``history`` = (layer, node_index, tensor_index), the call that produces it."""

    def __init__(self, shape: tuple, dtype: str, layer, node_index: int, tensor_index: int = 0):
        self.shape = (None, *shape)
        self.dtype = dtype
        self.history = (layer, node_index, tensor_index)
        self.name = layer.name if node_index == 0 else f"{layer.name}_{node_index}"

    @property
    def node(self) -> Node:
        """The call that produces this tensor."""
        layer, node_index, _ = self.history
        return layer.inbound_nodes[node_index]

    @property
    def sample_shape(self) -> tuple:
        """The shape without the batch axis."""
        return self.shape[1:]

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype} name={self.name!r}>"


class Node:
    """One call of ``layer`` on ``inputs`` (a list of tensors: ``takes_list`` layers get the
    list, the others its one entry), producing ``output``. An InputLayer's node has no
    inputs. ``cache`` holds the call's training-forward values between forward and backward."""

    def __init__(self, layer, inputs: list[SymbolicTensor], output: SymbolicTensor | None = None):
        self.layer = layer
        self.inputs = list(inputs)
        self.index = len(layer.inbound_nodes)
        self.cache: dict = {}
        if output is None:
            shapes = [t.sample_shape for t in self.inputs]
            shape = layer.compute_output_shape(shapes if layer.takes_list else shapes[0])
            output = SymbolicTensor(tuple(shape), self.inputs[0].dtype, layer, self.index)
        self.output = output

    @classmethod
    def of_input(cls, layer, tensor: SymbolicTensor) -> Node:
        return cls(layer, [], tensor)

    @property
    def is_input(self) -> bool:
        return not self.inputs

    @property
    def parents(self) -> list[Node]:
        """The calls that produce this call's inputs."""
        return [t.node for t in self.inputs]
