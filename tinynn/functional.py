"""``Model(inputs, outputs)``: Keras's functional API over any directed acyclic graph of layer
calls, trained by the same loops as ``Sequential`` (it is a ``Sequential`` whose forward and
backward walk the graph).

The graph: ``nodes`` in a deterministic topological order (depth-first from the outputs, inputs
of a node in call order), so training stays bitwise reproducible. Forward runs the nodes in
that order and keeps each call's cache on its node, so a shared layer (one instance called at
several places) runs backward once per call with the right values. Backward walks the nodes in
reverse: the gradient of a tensor that feeds several calls is the sum of what they send back,
added in one place (the gradient table), and a shared layer's parameter gradients are summed
over its calls. Layers stay unaware of the graph.
"""

from __future__ import annotations

import numpy as np

from . import config, losses
from .activations import Softmax
from .errors import ArgumentError, ShapeError
from .models import INFERENCE_ACTIVATION_BYTES, Sequential
from .node import InputLayer, SymbolicTensor
from .validation import float_array, same_length


class InputBatch:
    """The arrays of a model with several inputs, sliced together by rows (``len``, ``[rows]``),
    so the batch loops treat them as one array."""

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, rows) -> InputBatch:
        return InputBatch([a[rows] for a in self.arrays])


class Model(Sequential):
    """A model of layer calls from ``inputs`` (a symbolic tensor from ``tinynn.Input``, or a
    list) to ``outputs`` (one symbolic tensor). ``x`` is an array (one input), or a list or a
    dict by input name (several). Output shape: (N, *outputs.shape[1:])."""

    def __init__(self, inputs, outputs, name: str = "functional", seed: int | None = None):
        super().__init__(name=name, seed=seed)
        self.inputs = _tensor_list(inputs, "inputs")
        outputs_list = _tensor_list(outputs, "outputs")
        if len(outputs_list) != 1:
            raise ArgumentError(f"Model {name!r} expected one output tensor, got "
                                f"{len(outputs_list)}: several outputs are not supported yet")
        self.outputs = outputs_list
        self.nodes = graph_nodes(self.inputs, self.outputs)
        self.layers = list(dict.fromkeys(node.layer for node in self.nodes))
        _check_unique_names([t.history[0] for t in self.inputs] + self.layers, name)
        shapes = [t.sample_shape for t in self.inputs]
        self.input_shape = shapes[0] if len(shapes) == 1 else shapes
        self.output_shape = self.outputs[0].sample_shape

    def add(self, layer) -> None:
        raise ArgumentError(f"Model {self.name!r} is defined by its inputs and outputs: "
                            "layers cannot be added to it")

    def build(self, input_shape=None, weight_shapes=None) -> None:
        """Build every layer not yet built, with the model's initialisation Generator, in
        graph order; pack the weights into the model's flat buffers."""
        if self.built:
            return
        for node in self.nodes:
            layer = node.layer
            if not layer.built:
                shapes = [t.sample_shape for t in node.inputs]
                layer.build(shapes if layer.takes_list else shapes[0], self.rngs["init"])
            if layer.uses_training_rng:
                layer.rng = self.rngs["dropout"]
        self._pack_parameters()
        self.built = True
        if self.optimizer is not None:
            self.optimizer.build(self.parameters, self.layout)

    def _output_shape_for(self, shape):
        return self.output_shape

    def _inference_rows(self) -> int:
        """Samples per inference forward: all the graph's tensors of that many samples fit in
        ``INFERENCE_ACTIVATION_BYTES`` (a bound: the forward frees tensors once used)."""
        per_sample = sum(int(np.prod(t.sample_shape)) for node in self.nodes
                         for t in (*node.inputs, node.output))
        return max(1, INFERENCE_ACTIVATION_BYTES
                   // max(per_sample * np.dtype(config.floatx()).itemsize, 1))

    @property
    def fuses_softmax(self) -> bool:
        """As ``Sequential``'s, for the layer of the output's call (the last node)."""
        last = self.nodes[-1].layer
        return (isinstance(self.loss, losses.Crossentropy) and not self.loss.from_logits
                and isinstance(getattr(last, "activation", None), Softmax)
                and hasattr(last, "forward_logits"))

    # -- forward and backward ---------------------------------------------------------------
    def forward(self, x, training: bool = False, logits: bool = False):
        """The output for prepared ``x`` (an array, or an ``InputBatch`` for several inputs);
        with ``logits``, the output layer's pre-softmax values."""
        arrays = x.arrays if isinstance(x, InputBatch) else [x]
        values = {id(t): a for t, a in zip(self.inputs, arrays)}
        uses = self._consumer_counts()
        last = self.nodes[-1]
        for node in self.nodes:
            layer = node.layer
            args = [values[id(t)] for t in node.inputs]
            arg = args if layer.takes_list else args[0]
            if logits and node is last:
                out = layer.forward_logits(arg, training)
            else:
                out = layer.forward(arg, training=training)
            if training:
                node.cache, layer._cache = layer._cache, {}
            values[id(node.output)] = out
            for t in node.inputs:  # free what no later call reads
                uses[id(t)] -= 1
                if uses[id(t)] == 0 and t not in self.outputs:
                    values.pop(id(t), None)
        return values[id(self.outputs[0])]

    def _consumer_counts(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for node in self.nodes:
            for t in node.inputs:
                counts[id(t)] = counts.get(id(t), 0) + 1
        return counts

    def backward(self, dout, logits: bool = False, input_gradient: bool = False,
                 regularization: bool = True):
        """Fill every layer's grads from d(loss)/d(output), walking the nodes in reverse; a
        tensor feeding several calls gets the sum of their gradients, and a shared layer's
        grads are summed over its calls. Returns d(loss)/d(input) (a list for several
        inputs) when ``input_gradient``; otherwise None, and no call computes an input
        gradient nobody uses."""
        needs = self._tensors_needing_gradients(input_gradient)
        table = {id(self.outputs[0]): dout}
        seen: set = set()
        last = self.nodes[-1]
        for node in reversed(self.nodes):
            layer = node.layer
            layer._cache, node.cache = getattr(node, "cache", {}), {}
            dy = table.pop(id(node.output), None)
            wanted = [id(t) in needs for t in node.inputs]
            if dy is None or not (layer.params or any(wanted)):
                layer.release_cache()
                continue
            layer.compute_input_gradient = any(wanted)
            earlier = {k: g.copy() for k, g in layer.grads.items()} if layer in seen else {}
            dx = layer.backward_logits(dy) if logits and node is last else layer.backward(dy)
            for key, value in earlier.items():
                layer.grads[key] += value
            seen.add(layer)
            if dx is None:
                continue
            for t, g, want in zip(node.inputs, dx if layer.takes_list else [dx], wanted):
                if want:
                    table[id(t)] = table[id(t)] + g if id(t) in table else g
        for layer in self.layers:
            if layer not in seen:
                for g in layer.grads.values():
                    g[...] = 0
        if regularization:
            self._add_regularization_gradients()
        if not input_gradient:
            return None
        grads = [table.get(id(t), np.zeros((len(dout), *t.sample_shape), dout.dtype))
                 for t in self.inputs]
        return grads[0] if len(grads) == 1 else grads

    def _tensors_needing_gradients(self, input_gradient: bool) -> set[int]:
        """Tensors whose gradient some parameter (or the caller) needs: the inputs if asked,
        and every output of a call with parameters or with such an input."""
        needs = {id(t) for t in self.inputs} if input_gradient else set()
        for node in self.nodes:
            if node.layer.params or any(id(t) in needs for t in node.inputs):
                needs.add(id(node.output))
        return needs

    def release_caches(self) -> None:
        for node in self.nodes:
            node.cache = {}
        super().release_caches()

    # -- input preparation ------------------------------------------------------------------
    def prepare(self, x, y=None, name: str = "x"):
        """Validate and cast inputs (an array, a list in input order or a dict by input name)
        and targets; build the model if needed. Returns x (an array, or an ``InputBatch``) and
        y ready for the loss."""
        arrays = self._input_arrays(x, name)
        for array, tensor in zip(arrays, self.inputs):
            if array.ndim < 2 or array.shape[1:] != tensor.sample_shape:
                raise ShapeError(f"model {self.name!r} expects input {tensor.name!r} of shape "
                                 f"(N, {', '.join(map(str, tensor.sample_shape))}), got "
                                 f"{array.shape}")
            same_length(arrays[0], array, self.inputs[0].name, tensor.name)
        if y is not None:
            same_length(arrays[0], np.asarray(y), name, "y")
            y = self.loss.prepare_targets(y, (len(arrays[0]), *self.output_shape))
        if not self.built:
            self.build()
        return (arrays[0] if len(arrays) == 1 else InputBatch(arrays)), y

    def _input_arrays(self, x, name: str) -> list[np.ndarray]:
        names = [t.name for t in self.inputs]
        if isinstance(x, InputBatch):
            x = x.arrays
        if isinstance(x, dict):
            unknown = sorted(set(x) - set(names))
            missing = [n for n in names if n not in x]
            if unknown or missing:
                raise ArgumentError(f"model {self.name!r} expected {name} keyed by its input "
                                    f"names {names}, got keys {sorted(x)}")
            x = [x[n] for n in names]
        elif not isinstance(x, (list, tuple)):
            x = [x]
        if len(x) != len(self.inputs):
            raise ArgumentError(f"model {self.name!r} expected {len(self.inputs)} input "
                                f"array(s) for {names}, got {len(x)}")
        return [float_array(a, config.floatx(), f"{name}[{n!r}]") for a, n in zip(x, names)]

    def count_params(self) -> int:
        self.require_built("count_params")
        return sum(layer.count_params() for layer in self.layers)

    def get_layer(self, name: str | None = None, index: int | None = None):
        """The layer named ``name`` or at ``index`` (input layers first, as Keras lists
        them)."""
        every = [t.history[0] for t in self.inputs] + self.layers
        if (name is None) == (index is None):
            raise ArgumentError("get_layer expected exactly one of name or index")
        if index is not None:
            if not -len(every) <= index < len(every):
                raise ArgumentError(f"get_layer index {index} is out of range for model "
                                    f"{self.name!r} of {len(every)} layers")
            return every[index]
        for layer in every:
            if layer.name == name:
                return layer
        raise ArgumentError(f"no layer named {name!r} in model {self.name!r}; its layers: "
                            f"{[layer.name for layer in every]}")

    def save(self, *args, **kwargs):
        raise ArgumentError(f"saving functional model {self.name!r} is not supported yet: "
                            "save its weights with save_weights to a .weights.npz file")

    def export(self, *args, **kwargs):
        raise ArgumentError(f"exporting functional model {self.name!r} to ONNX is not "
                            "supported yet: only Sequential models are exported")


def _tensor_list(value, what: str) -> list[SymbolicTensor]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(t, SymbolicTensor) for t in items):
        raise ArgumentError(f"Model {what} expected a symbolic tensor (tinynn.Input or a layer "
                            f"call's output) or a list of them, got {value!r}")
    return items


def graph_nodes(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]) -> list:
    """The calls from ``inputs`` to ``outputs`` in a deterministic topological order (each
    node after the nodes of its inputs). Refuses an output that needs a tensor not computed
    from ``inputs`` (naming it) and an input that no output uses."""
    given = {id(t) for t in inputs}
    order, state = [], {}
    used_inputs = set()

    def visit(tensor: SymbolicTensor, consumer: str) -> None:
        if id(tensor) in given:
            used_inputs.add(id(tensor))
            return
        layer = tensor.history[0]
        if isinstance(layer, InputLayer):
            raise ArgumentError(f"graph disconnected: {consumer} needs input {tensor.name!r}, "
                                "which is not among the model's inputs "
                                f"{[t.name for t in inputs]}")
        node = tensor.node
        if state.get(id(node)) == "done":
            return
        state[id(node)] = "visiting"
        for parent in node.inputs:
            visit(parent, f"layer {layer.name!r}")
        state[id(node)] = "done"
        order.append(node)

    for tensor in outputs:
        visit(tensor, f"output {tensor.name!r}")
    unused = [t.name for t in inputs if id(t) not in used_inputs]
    if unused:
        raise ArgumentError(f"model inputs {unused} are not used by any output")
    return order


def _check_unique_names(layers: list, model_name: str) -> None:
    seen = set()
    for layer in layers:
        if layer.name in seen:
            raise ArgumentError(f"model {model_name!r} has two layers named {layer.name!r}: "
                                "layer names must be unique")
        seen.add(layer.name)
