"""``Graph``: an ONNX graph under construction, held as plain Python data (nodes, float32
weights) until ``to_model_proto`` turns it into an ``onnx.ModelProto``; and ``Tensor``, a value
of the graph with its layout.

tinynn's images are NHWC; ONNX's Conv and pooling operators take NCHW. A ``Tensor`` therefore
records its shape as tinynn sees it (batch excluded, channels last) and whether the graph holds
it channels first; the layer exporters transpose only where a layer needs the other layout.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

INPUT_NAME = "input"
OUTPUT_NAME = "output"
BATCH_DIM = "batch"  # the symbolic (dynamic) batch dimension of the input and the output


class Tensor(NamedTuple):
    """A value of the graph: its ``name``, its ``shape`` in tinynn's terms (batch excluded,
    channels last) and whether the graph stores it ``channels_first`` (NCHW)."""

    name: str
    shape: tuple
    channels_first: bool = False


class Node(NamedTuple):
    op_type: str
    inputs: list
    output: str
    attributes: dict


class Graph:
    """Nodes in execution order, one output each, and named float32 initializers."""

    def __init__(self, input_names: tuple[str, ...] = (INPUT_NAME,)):
        self.nodes: list[Node] = []
        self.weights: dict[str, np.ndarray] = {}
        self.input_names = tuple(input_names)
        self._taken = {*input_names, OUTPUT_NAME}

    def _unique(self, name: str) -> str:
        candidate, i = name, 0
        while candidate in self._taken:
            i += 1
            candidate = f"{name}_{i}"
        self._taken.add(candidate)
        return candidate

    def weight(self, name: str, array: np.ndarray) -> str:
        """Add ``array``, cast to float32, as an initializer; returns its (unique) name. A float64
        value beyond float32's range becomes infinite, which ``export`` then refuses."""
        name = self._unique(name)
        with np.errstate(over="ignore"):
            self.weights[name] = np.ascontiguousarray(array, dtype=np.float32)
        return name

    def ints(self, name: str, values) -> str:
        """Add ``values`` as an int64 initializer (a shape or pads operand); returns its name."""
        name = self._unique(name)
        self.weights[name] = np.asarray(values, dtype=np.int64)
        return name

    def scalar(self, value: float) -> str:
        """The name of a float32 scalar constant, shared by every node that uses ``value``."""
        name = f"constant/{value!r}"
        if name not in self.weights:
            self._taken.add(name)
            self.weights[name] = np.array(value, dtype=np.float32)
        return name

    def node(self, op_type: str, inputs: list[str], name: str, **attributes) -> str:
        """Append a node; returns the name of its output (also the node's name)."""
        output = self._unique(name)
        self.nodes.append(Node(op_type, list(inputs), output, attributes))
        return output

    def finish(self, result: Tensor) -> None:
        """Make ``result`` the graph output ``OUTPUT_NAME``: rename the node that computes it,
        or add an Identity when the model computes nothing (e.g. only Dropout)."""
        if result.name in self.input_names:
            self.nodes.append(Node("Identity", [result.name], OUTPUT_NAME, {}))
            return
        last = self.nodes[-1]
        if last.output != result.name:
            raise RuntimeError(f"ONNX export: the output {result.name!r} is not computed by the "
                               "last node")
        self.nodes[-1] = last._replace(output=OUTPUT_NAME)


def to_model_proto(onnx, graph: Graph, opset: int, name: str, input_dims: list,
                   output_dims: list, signature: str):
    """The ``onnx.ModelProto`` of ``graph`` (``onnx`` is the imported module) for the model
    ``name``: inputs ``graph.input_names`` and output ``OUTPUT_NAME``, float32 of
    ``input_dims`` (one list of dims per input) and ``output_dims`` (a string is a symbolic
    dimension) described by ``signature``;
    default-domain ``opset``, in the oldest IR version that carries it (opset 17: IR 8), so
    older runtimes read the file too."""
    from ... import __version__

    helper, float32 = onnx.helper, onnx.TensorProto.FLOAT
    doc = f"tinynn model {name!r}: {signature}; inference only"
    nodes = [helper.make_node(node.op_type, node.inputs, [node.output], name=node.output,
                              **node.attributes) for node in graph.nodes]
    initializers = [onnx.numpy_helper.from_array(array, key)
                    for key, array in graph.weights.items()]
    body = helper.make_graph(nodes, name,
                             [helper.make_tensor_value_info(input, float32, dims)
                              for input, dims in zip(graph.input_names, input_dims)],
                             [helper.make_tensor_value_info(OUTPUT_NAME, float32, output_dims)],
                             initializer=initializers, doc_string=doc)
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(body, opset_imports=opsets,
                             ir_version=helper.find_min_ir_version_for(opsets),
                             producer_name="tinynn", producer_version=__version__,
                             doc_string=doc)
