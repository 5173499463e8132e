"""The graph of a model: its calls (nodes) from the input tensors to the outputs, in a
deterministic topological order, and its layers in Keras's order.

``graph_nodes`` walks depth-first from the outputs and lists each call after the calls that
produce its inputs (inputs in call order, outputs in the order given): the order forward runs
them, so training is bitwise reproducible. ``keras_layer_order`` orders the layers as Keras 3's
``map_graph`` does (by decreasing depth, ties by first visit), the order Keras's files use.
"""

from __future__ import annotations

from ..errors import ArgumentError
from ..node import SymbolicTensor


def tensor_list(value, what: str) -> list[SymbolicTensor]:
    """``value`` (a tensor, a list or a dict of them) as a list; ArgumentError otherwise."""
    items = list(value.values()) if isinstance(value, dict) else (
        list(value) if isinstance(value, (list, tuple)) else [value])
    if not items or not all(isinstance(t, SymbolicTensor) for t in items):
        raise ArgumentError(f"Model {what} expected a symbolic tensor (tinynn.Input or a layer "
                            f"call's output), or a list or dict of them, got {value!r}")
    return items


def graph_nodes(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]) -> list:
    """The calls (nodes) from ``inputs`` to ``outputs``, each after its inputs' calls, input
    nodes excluded. ArgumentError for an output that needs a tensor not computed from
    ``inputs`` (naming it), an input that no output uses, or an input that is not an
    ``Input`` tensor."""
    for tensor in inputs:
        if not tensor.node.is_input:
            raise ArgumentError(f"Model inputs expected tinynn.Input tensors, got {tensor.name!r}"
                                f" made by layer {tensor.history[0].name!r}")
    given = {id(t) for t in inputs}
    order, done, used = [], set(), set()

    def visit(tensor: SymbolicTensor, consumer: str) -> None:
        if id(tensor) in given:
            used.add(id(tensor))
            return
        node = tensor.node
        if node.is_input:
            raise ArgumentError(f"graph disconnected: {consumer} needs input {tensor.name!r}, "
                                f"which is not among the model's inputs {[t.name for t in inputs]}")
        if id(node) in done:
            return
        for parent in node.inputs:
            visit(parent, f"layer {node.layer.name!r}")
        done.add(id(node))
        order.append(node)

    for tensor in outputs:
        visit(tensor, f"output {tensor.name!r}")
    unused = [t.name for t in inputs if id(t) not in used]
    if unused:
        raise ArgumentError(f"model inputs {unused} are not used by any output")
    return order


def keras_layer_order(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor],
                      nodes: list) -> list:
    """Every layer of the graph, input layers included, as Keras 3 orders ``model.layers``:
    by decreasing depth (the longest path to an output; a shared layer takes its deepest call),
    ties by the order a depth-first walk from the outputs first meets them."""
    first_seen: dict = {}  # Keras's walk meets a node's layer before its parents' layers
    members = {id(n) for n in nodes} | {id(t.node) for t in inputs}
    visited = set()

    def walk(node) -> None:
        if id(node) in visited or id(node) not in members:
            return
        first_seen.setdefault(node.layer, len(first_seen))
        for parent in node.parents:
            walk(parent)
        visited.add(id(node))

    for tensor in outputs:
        walk(tensor.node)
    node_depth: dict[int, int] = {}
    layer_depth: dict = {}
    for node in reversed([t.node for t in inputs] + nodes):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(node.layer, 0))
        layer_depth[node.layer] = node_depth[id(node)] = depth
        for parent in node.parents:
            if id(parent) in members:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    return sorted(layer_depth, key=lambda layer: (-layer_depth[layer], first_seen[layer]))
