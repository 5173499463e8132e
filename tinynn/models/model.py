"""``Model``: a graph of layer calls trained as Keras trains it: tinynn's one engine.

``Model(inputs, outputs)`` is Keras's functional API; ``Sequential`` (sequential.py) is a chain
of the same graph. Forward runs the calls (``nodes``) in a deterministic topological order
(graph.py) and keeps each call's cache on its node, so a shared layer (one instance called at
several places) runs backward once per call with its own values. Backward walks the nodes in
reverse with a gradient table keyed by tensor: where a tensor feeds several calls their
gradients are added there, and nowhere else; a shared layer's gradients (each ``backward``
overwrites ``grads``) are summed over its calls by the engine. A call computes an input
gradient only when a parameter upstream (or the caller) needs it.

After ``build``, every trainable weight lives in one contiguous buffer (``model.parameters``)
and every gradient in a second one of the same layout (``model.gradients``); each layer's
``params[k]`` and ``grads[k]`` are views into them. An optimizer step is therefore one pass over
one buffer, and sees only trainable weights. Non-trainable weights (layer ``state``) live in a
third buffer (``model.states``). A model whose layers were built by another model (a
sub-model: feature extraction) shares that model's arrays: it predicts and computes gradients,
and training it is refused.

Randomness: ``seed=s`` spawns three child Generators from ``SeedSequence(s)``, in this order:
weight initialisation, dropout masks, shuffling. With ``seed=None`` the seed is drawn from the
source that ``tinynn.set_random_seed`` resets. NumPy's global RNG is never used.
"""

from __future__ import annotations

import math

import numpy as np

from .. import config, denormals, loops, losses, optimizers, saving
from ..activations import Softmax
from ..batching import ArrayGroup, EpochIterator, as_list, model_input
from ..callbacks import CallbackList, History
from ..data_adapters import DatasetBatches, is_dataset, kind_of, refuse_arguments
from ..distribution import active_communicator, replicas
from ..errors import ArgumentError, NonFiniteLossError, NotCompiledError, ShapeError
from ..interrupt import InterruptGuard
from ..layers.base import Layer
from ..layers.core import InputLayer
from ..node import Node, SymbolicTensor
from ..progress import resolve_verbose
from ..registry import register_model
from ..summary import summary_lines
from ..validation import batch_size as check_batch_size
from ..validation import (
    float_array,
    non_negative_int,
    object_name,
    real_in_range,
    same_length,
)
from .graph import graph_nodes, keras_layer_order, tensor_list
from .objectives import Objectives

_ALIGN = 16  # parameter offsets are multiples of 16 elements (64 bytes in float32)
#: evaluate/predict split a step's batch into chunks so that one layer's input and output together
#: take at most this many bytes; results are the same as for the whole batch (inference is per
#: sample) and a step is still one batch of the caller's batch_size.
INFERENCE_ACTIVATION_BYTES = 128 * 2**20


@register_model("Functional")
class Model:
    """A model of layer calls from ``inputs`` (a symbolic tensor from ``tinynn.Input``, or a
    list or dict of them) to ``outputs`` (one symbolic tensor).

    ``x`` is an array (one input), or a list in input order or a dict by input name. Output:
    (N, *outputs.shape[1:]). ``layers`` lists every layer, input layers first, in Keras's order.
    """

    def __init__(self, inputs=None, outputs=None, name: str = "functional",
                 seed: int | None = None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ArgumentError(f"{type(self).__name__} seed expected a non-negative int or "
                                f"None, got {seed!r}")
        self.name = object_name(name, f"{type(self).__name__} name")
        self.seed = config.draw_seed() if seed is None else seed
        children = np.random.SeedSequence(self.seed).spawn(3)
        self.rngs = dict(zip(("init", "dropout", "shuffle"), map(np.random.default_rng, children)))
        self.inputs: list = []
        self.outputs: list = []
        self.nodes: list = []
        self._graph_layers: list[Layer] = []
        self.input_shape = None
        self.output_shape: tuple | None = None
        self.built = False
        self.shares_weights = False
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses.Loss | None = None
        self.metrics: list[str] = []
        self.objectives: Objectives | None = None
        self.output_keys: list[str] | None = None  # outputs given as a dict: its keys
        self.outputs_as_list = False  # outputs given as a list (or dict): predict returns one
        self.inbound_nodes: list = []  # its calls as a layer of another model
        self._memo: dict = {}
        self.history: History | None = None
        self.stop_training = self.stop_evaluating = self.stop_predicting = False
        self.parameters = self.gradients = self.states = None
        self.layout: dict[str, tuple[slice, tuple]] = {}
        self.state_layout: dict[str, tuple[slice, tuple]] = {}
        if inputs is not None or outputs is not None:
            if isinstance(outputs, dict):
                self.output_keys = [object_name(str(key), "output name") for key in outputs]
            self.outputs_as_list = isinstance(outputs, (list, tuple, dict))
            self._set_graph(tensor_list(inputs, "inputs"), tensor_list(outputs, "outputs"))

    # -- the graph -----------------------------------------------------------------------------
    def _set_graph(self, inputs: list, outputs: list) -> None:
        self.inputs, self.outputs = inputs, outputs
        self._memo: dict = {}  # what forward and backward derive from the graph, once
        self.nodes = graph_nodes(inputs, outputs)
        self._graph_layers = keras_layer_order(inputs, outputs, self.nodes)
        seen = set()
        for layer in self._graph_layers:
            if layer.name in seen:
                raise ArgumentError(f"model {self.name!r} has two layers named {layer.name!r}: "
                                    "layer names must be unique")
            seen.add(layer.name)
        leaves = [layer.name for layer in self.leaf_layers]
        twice = sorted({name for name in leaves if leaves.count(name) > 1})
        if twice:  # the weight buffers, files and optimizer slots name weights by layer
            raise ArgumentError(f"model {self.name!r} and the models it calls have several "
                                f"layers named {twice}: layer names must be unique across "
                                "nested models too")
        shapes = [t.sample_shape for t in inputs]
        self.input_shape = shapes[0] if len(shapes) == 1 else shapes
        shapes = [t.sample_shape for t in outputs]
        self.output_shape = shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_names(self) -> list[str]:
        """The outputs' names in logs and in ``loss``/``metrics`` dicts: the keys of the dict
        the outputs were given as, else the names of the layers that make them."""
        if self.output_keys is not None:
            return list(self.output_keys)
        return [t.name for t in self.outputs] if self.outputs else ["output"]

    @property
    def layers(self) -> list[Layer]:
        """Every layer, input layers included, in Keras's order."""
        return list(self._graph_layers)

    @property
    def weighted_layers(self) -> list[Layer]:
        """The layers that compute (input layers excluded), in ``layers`` order."""
        return [layer for layer in self.layers if not isinstance(layer, InputLayer)]

    @property
    def leaf_layers(self) -> list[Layer]:
        """The computing layers with each nested model's in its place: what the buffers hold."""
        leaves = []
        for layer in self.weighted_layers:
            leaves += layer.leaf_layers if isinstance(layer, Model) else [layer]
        return leaves

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer named ``name``, or at ``index`` in ``layers``."""
        every = self.layers
        if (name is None) == (index is None):
            raise ArgumentError("get_layer expected exactly one of name or index")
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int) or not (
                    -len(every) <= index < len(every)):
                raise ArgumentError(f"get_layer index expected an int in [{-len(every)}, "
                                    f"{len(every)}) for model {self.name!r}, got {index!r}")
            return every[index]
        for layer in every:
            if layer.name == name:
                return layer
        raise ArgumentError(f"get_layer expected the name of a layer of model {self.name!r} "
                            f"({[layer.name for layer in every]}), got {name!r}")

    def build(self, input_shape=None, weight_shapes: dict[str, list[tuple]] | None = None) -> None:
        """Build every layer not built yet, with the model's initialisation Generator, in graph
        order, and pack the weights into the model's flat buffers.

        ``weight_shapes`` (for loaders: ``{"dense": [(784, 10), (10,)], ...}``, each layer's
        weights in Keras's order) lets layers create only those weights, at those shapes: any
        other is refused before it is allocated, so a file's config cannot make tinynn allocate
        more than the file holds. If a layer was built before (by another model), the model
        shares its arrays instead of packing its own (``shares_weights``)."""
        if self.built:
            return
        already = [layer for layer in self.weighted_layers
                   if not isinstance(layer, Model) and layer.built and layer.weights]
        for node in self.nodes:
            layer = node.layer
            if isinstance(layer, Model):  # it builds its own layers, with its own seed
                layer.build(weight_shapes=weight_shapes)
            elif not layer.built:
                if weight_shapes is not None:
                    layer.weight_guard = _declared_only(layer.name,
                                                        weight_shapes.get(layer.name, []))
                shapes = [t.sample_shape for t in node.inputs]
                try:
                    layer.build(shapes if layer.takes_list else shapes[0], self.rngs["init"])
                finally:
                    layer.weight_guard = None
            if not already:  # one Generator per model: a nested model's layers draw from it
                for leaf in layer.leaf_layers if isinstance(layer, Model) else [layer]:
                    if leaf.uses_training_rng:
                        leaf.rng = self.rngs["dropout"]
        self.shares_weights = bool(already)
        if not self.shares_weights:
            self._pack_parameters()
            for nested in self.weighted_layers:  # their weights now live in this model's
                if isinstance(nested, Model):     # buffers: they predict, this model trains
                    nested.shares_weights = True
                    nested.parameters = nested.gradients = nested.states = None
        self.built = True
        if self.optimizer is not None and not self.shares_weights:
            self.optimizer.build(self.parameters, self.layout)

    def _pack_parameters(self) -> None:
        """Move every layer's trainable weights into one buffer (and point ``params``/``grads``
        at it and at the gradient buffer), and its non-trainable ones into another."""
        layers = self.leaf_layers
        self.parameters, self.layout = _pack([(layer, layer.params) for layer in layers])
        self.gradients = np.zeros_like(self.parameters)
        for layer in layers:
            for key in layer.grads:
                where, shape = self.layout[f"{layer.name}/{key}"]
                layer.grads[key] = self.gradients[where].reshape(shape)
        self.states, self.state_layout = _pack([(layer, layer.state) for layer in layers])

    def named_weights(self) -> dict[str, np.ndarray]:
        """Every weight as ``{"layer/key": view}``, in Keras's order (layer by layer, each
        layer's trainable weights, then its non-trainable ones)."""
        return self._leaf_arrays("weights")

    def compile(self, optimizer, loss, metrics=None, loss_weights=None) -> None:
        """Set the optimizer (name or instance), the loss (name or instance; for several
        outputs one for all, a list or a dict by output name), the metrics (``["accuracy"]``;
        for several outputs a dict or one entry per output) and ``loss_weights`` (a list or
        dict; the minimised loss is their weighted sum). The optimizer's state starts fresh."""
        optimizer = optimizers.get(optimizer)
        objectives = Objectives.from_compile(self.output_names, loss, loss_weights, metrics)
        self.optimizer, self.objectives = optimizer, objectives
        several = objectives.several
        self.loss = None if several else objectives.losses[0]
        self.metrics = [] if several else objectives.metrics[0]
        if self.built and not self.shares_weights:
            self.optimizer.build(self.parameters, self.layout)

    # -- called as a layer of another model ------------------------------------------------------
    uses_training_rng = False
    batch_shard = None
    compute_input_gradient = True
    declared_input_shape = None
    regularizers: dict = {}  # a nested model's regularizers are counted through its layers

    def __call__(self, inputs):
        """On symbolic tensors: a call of this model as a layer (a node of the calling graph);
        on arrays: ``predict``."""
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if not all(isinstance(item, SymbolicTensor) for item in items):
            return self.predict(inputs, verbose=0)
        self._graph_for_call(items)
        if len(self.outputs) != 1:
            raise ArgumentError(f"model {self.name!r} has {len(self.outputs)} outputs: only a "
                                "model of one output can be called as a layer")
        node = Node(self, items)
        self.inbound_nodes.append(node)
        return node.output

    def _graph_for_call(self, inputs: list) -> None:
        """Make the graph a call on symbolic ``inputs`` needs (a Sequential makes its chain)."""

    @property
    def takes_list(self) -> bool:
        return len(self.inputs) > 1

    @property
    def input(self):
        """The model's input tensor (a list for several), as Keras's ``model.input``."""
        return self.inputs if len(self.inputs) > 1 else self.inputs[0]

    @property
    def output(self):
        """The model's output tensor (a list for several), as Keras's ``model.output``."""
        return self.outputs if len(self.outputs) > 1 else self.outputs[0]

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in (input_shape if self.takes_list else [input_shape])]
        expected = [t.sample_shape for t in self.inputs]
        if shapes != expected:
            raise ShapeError(f"model {self.name!r} called as a layer expected inputs of shapes "
                             f"{expected}, got {shapes}")
        return self.outputs[0].sample_shape

    def describe(self) -> str:
        return f"model {self.name!r}"

    @property
    def params(self) -> dict:
        return self._leaf_arrays("params")

    @property
    def grads(self) -> dict:
        return self._leaf_arrays("grads")

    @property
    def state(self) -> dict:
        return self._leaf_arrays("state")

    @property
    def weights(self) -> dict:
        return self._leaf_arrays("weights")

    def _leaf_arrays(self, kind: str) -> dict[str, np.ndarray]:
        """``{"layer/key": array}`` of one kind (params, grads, state or weights) over
        ``leaf_layers``, layer by layer."""
        return {f"{layer.name}/{key}": value for layer in self.leaf_layers
                for key, value in getattr(layer, kind).items()}

    @property
    def _cache(self) -> dict:
        """Its calls' training caches (on its nodes, or on its layers for a chain), so that a
        calling model can keep them apart per call of this model."""
        caches = {id(node): node.cache for node in self.nodes if node.cache}
        for layer in self.weighted_layers:
            if layer._cache:
                caches[("layer", id(layer))] = layer._cache
        return caches

    @_cache.setter
    def _cache(self, caches: dict) -> None:
        for node in self.nodes:
            node.cache = caches.get(id(node), {})
        for layer in self.weighted_layers:
            layer._cache = caches.get(("layer", id(layer)), {})

    @property
    def holds_cache(self) -> bool:
        return any(node.cache for node in self.nodes) or any(
            layer.holds_cache for layer in self.leaf_layers)

    def release_cache(self) -> None:
        self.release_caches()

    # -- forward and backward -------------------------------------------------------------------
    @property
    def fused_outputs(self) -> list[bool]:
        """Per output: True when its loss is a cross-entropy on probabilities and its layer a
        softmax that no other call reads: softmax and loss are then computed together from the
        logits."""
        key = ("fused", self.objectives)
        if key not in self._memo:
            read = self._consumers()
            losses_ = self.objectives.losses if self.objectives else [None] * len(self.outputs)
            self._memo[key] = [
                isinstance(loss, losses.Crossentropy) and not loss.from_logits
                and isinstance(getattr(t.history[0], "activation", None), Softmax)
                and hasattr(t.history[0], "forward_logits") and id(t) not in read
                for t, loss in zip(self.outputs, losses_)]
        return self._memo[key]

    @property
    def fuses_softmax(self) -> bool:
        """``fused_outputs`` of a one-output model (any of them for several)."""
        return any(self.fused_outputs) if self.outputs else False

    def forward(self, x, training: bool = False, logits: bool = False) -> np.ndarray:
        """The model's output for prepared ``x`` (``prepare``: an array, or an ``ArrayGroup``);
        with ``logits``, the output layer's pre-softmax values. In training, each call keeps
        what its ``backward`` needs, on its node (on its layer, for a chain)."""
        if self._is_chain():  # the same calls, without the tensor table
            *body, last = self.nodes
            for node in body:
                x = node.layer.forward(x, training=training)
            if id(last) in self._logit_nodes(logits):
                return last.layer.forward_logits(x, training)
            return last.layer.forward(x, training=training)
        values = {id(t): a for t, a in zip(self.inputs, as_list(x))}
        remaining, kept = dict(self._consumers()), {id(t) for t in self.outputs}
        as_logits = self._logit_nodes(logits)
        for node in self.nodes:
            layer = node.layer
            args = [values[id(t)] for t in node.inputs]
            arg = args if layer.takes_list else args[0]
            if id(node) in as_logits:
                out = layer.forward_logits(arg, training)
            else:
                out = layer.forward(arg, training=training)
            if training:
                node.cache, layer._cache = layer._cache, {}
            values[id(node.output)] = out
            for t in node.inputs:  # drop what no later call reads
                remaining[id(t)] -= 1
                if not remaining[id(t)] and id(t) not in kept:
                    del values[id(t)]
        outs = [values[id(t)] for t in self.outputs]
        return outs if len(outs) > 1 else outs[0]

    def _logit_nodes(self, logits) -> set[int]:
        """The calls to run as logits: those of the outputs ``logits`` flags (a bool for
        every output, or a list)."""
        flags = tuple(logits) if isinstance(logits, list) else (bool(logits),) * len(self.outputs)
        key = ("logits", flags)
        if key not in self._memo:
            self._memo[key] = {id(t.node) for t, flag in zip(self.outputs, flags) if flag}
        return self._memo[key]

    def _is_chain(self) -> bool:
        """Whether the graph is a chain: one input, every call on the previous call's output,
        no layer called twice. Forward and backward then run the calls in a plain loop and
        each call's cache stays on its layer."""
        if "chain" not in self._memo:
            previous, seen, chain = self.inputs[0], set(), len(self.inputs) == 1
            for node in self.nodes:
                layer = node.layer
                if (not chain or len(node.inputs) != 1 or node.inputs[0] is not previous
                        or id(layer) in seen or isinstance(layer, Model)):
                    chain = False
                    break
                seen.add(id(layer))
                previous = node.output
            self._memo["chain"] = chain and len(self.outputs) == 1 \
                and previous is self.outputs[0]
        return self._memo["chain"]

    def _consumers(self) -> dict[int, int]:
        """How many calls read each tensor (by id), computed once per graph."""
        if "consumers" not in self._memo:
            counts: dict[int, int] = {}
            for node in self.nodes:
                for t in node.inputs:
                    counts[id(t)] = counts.get(id(t), 0) + 1
            self._memo["consumers"] = counts
        return self._memo["consumers"]

    def backward(self, dout: np.ndarray, logits: bool = False, input_gradient: bool = False,
                 regularization: bool = True):
        """Fill every layer's grads from d(loss)/d(out), plus the regularizers' gradients if
        ``regularization`` (data-parallel ranks other than 0 leave them to rank 0). Returns
        d(loss)/d(input) (a list for several inputs) when ``input_gradient``; otherwise None,
        and no call computes a gradient nobody uses: for a chain, the first layer with
        parameters skips its dx (for the CNN, conv1's col2im) and the parameter-free layers
        before it are not run backward at all."""
        needs = self._tensors_needing_gradients(input_gradient)
        if self._is_chain():
            grad = self._chain_backward(as_list(dout)[0], needs, self._logit_nodes(logits))
            if regularization:
                self._add_regularization_gradients()
            return grad if input_gradient else None
        table: dict = {}
        for t, g in zip(self.outputs, as_list(dout)):
            table[id(t)] = table[id(t)] + g if id(t) in table else g
        as_logits = self._logit_nodes(logits)
        done: set = set()
        for node in reversed(self.nodes):
            layer = node.layer
            layer._cache, node.cache = node.cache, {}
            dy = table.pop(id(node.output), None)
            wanted = [id(t) in needs for t in node.inputs]
            if dy is None or not (layer.params or any(wanted)):
                layer.release_cache()  # its backward would only produce an unused gradient
                continue
            layer.compute_input_gradient = any(wanted)
            earlier = {k: g.copy() for k, g in layer.grads.items()} if layer in done else {}
            if isinstance(layer, Model):  # a nested model: its regularizers are this one's
                dx = layer.backward(dy, input_gradient=layer.compute_input_gradient,
                                    regularization=False)
            elif id(node) in as_logits:
                dx = layer.backward_logits(dy)
            else:
                dx = layer.backward(dy)
            for key, value in earlier.items():  # a shared layer: sum over its calls
                layer.grads[key] += value
            done.add(layer)
            if dx is None:
                continue
            for t, g, want in zip(node.inputs, dx if layer.takes_list else [dx], wanted):
                if want:
                    table[id(t)] = table[id(t)] + g if id(t) in table else g
        if regularization:
            self._add_regularization_gradients()
        if not input_gradient:
            return None
        grads = [table.get(id(t)) for t in self.inputs]
        batch = len(as_list(dout)[0])
        grads = [np.zeros((batch, *t.sample_shape), as_list(dout)[0].dtype) if g is None else g
                 for t, g in zip(self.inputs, grads)]  # an input no parameter-free path reads
        return grads[0] if len(grads) == 1 else grads

    def _chain_backward(self, grad, needs: set[int], as_logits: set[int]):
        """``backward`` for a chain: each call from the last; the calls before the first that
        needs its input's gradient only release their caches."""
        for i in range(len(self.nodes) - 1, -1, -1):
            node = self.nodes[i]
            layer, wanted = node.layer, id(node.inputs[0]) in needs
            if not (layer.params or wanted):  # nothing before it has parameters either
                for earlier in self.nodes[:i + 1]:
                    earlier.layer.release_cache()
                return None
            layer.compute_input_gradient = wanted
            grad = layer.backward_logits(grad) if id(node) in as_logits else layer.backward(grad)
        return grad

    def _tensors_needing_gradients(self, input_gradient: bool) -> set[int]:
        """Tensors whose gradient some parameter (or the caller) needs: the inputs if asked,
        and the output of every call with parameters or with such an input."""
        key = ("needs", input_gradient, self.built)
        if key not in self._memo:
            needs = {id(t) for t in self.inputs} if input_gradient else set()
            for node in self.nodes:
                if node.layer.params or any(id(t) in needs for t in node.inputs):
                    needs.add(id(node.output))
            self._memo[key] = needs
        return self._memo[key]

    def release_caches(self) -> None:
        """Drop every call's training-forward values (after a forward without backward)."""
        for node in self.nodes:
            node.cache = {}
        for layer in self.leaf_layers:
            layer.release_cache()

    def regularization_loss(self) -> float:
        """The sum of the regularizers' penalties on the current weights (Keras adds it to the
        loss it reports and differentiates)."""
        return float(sum(regularizer(layer.params[key])
                         for layer, key, regularizer in self._regularized()))

    def _add_regularization_gradients(self) -> None:
        for layer, key, regularizer in self._regularized():
            layer.grads[key] += regularizer.gradient(layer.params[key])

    def _regularized(self) -> list[tuple]:
        """``(layer, key, regularizer)`` of every penalized weight (kept once built: each
        training step asks twice)."""
        if "regularized" in self._memo:
            return self._memo["regularized"]
        found = [(layer, key, regularizer) for layer in self.leaf_layers
                 for key, regularizer in layer.regularizers.items()]
        if self.built:
            self._memo["regularized"] = found
        return found

    def loss_and_output_gradient(self, y, out, logits=False) -> tuple:
        """Per-sample losses (N,) (the weighted sum over outputs) and d(mean loss)/d(out) (a
        list for several outputs), without the regularization. ``logits``: a bool for every
        output or a list (``fused_outputs``)."""
        outs = as_list(out)
        flags = logits if isinstance(logits, list) else [bool(logits)] * len(outs)
        _, total, douts = self.objectives.per_sample_and_gradients(as_list(y), outs, flags)
        return total, (douts if len(douts) > 1 else douts[0])

    def compute_loss_and_gradients(self, x, y) -> tuple[float, np.ndarray]:
        """One forward/backward pass in training mode on prepared arrays; fills
        ``model.gradients``. Returns the batch-mean loss (regularization included) and the
        output (logits where fused; a list for several outputs)."""
        fused = self.fused_outputs
        out = self.forward(x, training=True, logits=fused)
        with np.errstate(over="ignore", invalid="ignore"):  # a non-finite loss is raised by fit
            total, dout = self.loss_and_output_gradient(y, out, fused)
            loss = float(np.mean(total)) + self.regularization_loss()
        if math.isfinite(loss):
            self.backward(dout, fused)
        else:
            self.release_caches()
        return loss, out

    # -- input preparation ----------------------------------------------------------------------
    def prepare(self, x, y=None, name: str = "x"):
        """Validate and cast inputs (an array, a list in input order or a dict by input name)
        and targets without changing the model; build it if needed. Returns x as floatx (an
        array, or an ``ArrayGroup`` for several inputs) and y ready for the loss (or None)."""
        arrays = self._input_arrays(x, name)
        for array, tensor in zip(arrays, self.inputs):
            if array.ndim < 2 or array.shape[1:] != tensor.sample_shape:
                raise ShapeError(f"model {self.name!r} expects {name} for input {tensor.name!r}"
                                 f" of shape (N, {', '.join(map(str, tensor.sample_shape))}), "
                                 f"got {array.shape}")
            same_length(arrays[0], array, f"{name}[{self.inputs[0].name!r}]",
                        f"{name}[{tensor.name!r}]")
        if y is not None:
            y = self._targets(y, len(arrays[0]), name)
        if not self.built:
            self.build()
        return (arrays[0] if len(arrays) == 1 else ArrayGroup(arrays)), y

    def _targets(self, y, count: int, name: str):
        """``y`` (an array; for several outputs a list in output order or a dict by output
        name) ready for each output's loss: an array, or an ``ArrayGroup``. An output without
        a loss needs no target (None); its entry becomes an empty column."""
        names = self.output_names
        if len(names) == 1:
            if isinstance(y, (list, tuple)) and len(y) == 1 and isinstance(y[0], np.ndarray):
                y = y[0]
            same_length(np.empty(count), np.asarray(y), name, "y")
            return self.objectives.losses[0].prepare_targets(y, (count, *self.outputs[0]
                                                                 .sample_shape))
        if isinstance(y, ArrayGroup):
            return y
        if isinstance(y, dict):
            unknown = sorted(set(y) - set(names))
            if unknown:
                raise ArgumentError(f"model {self.name!r} expected y keyed by its output names "
                                    f"{names}, got keys {sorted(y)}")
            y = [y.get(key) for key in names]
        if not isinstance(y, (list, tuple)) or len(y) != len(names):
            raise ArgumentError(f"model {self.name!r} has {len(names)} outputs {names}: y "
                                f"expected a list of as many arrays or a dict by output name, "
                                f"got {type(y).__name__}")
        prepared = []
        for key, tensor, loss, target in zip(names, self.outputs, self.objectives.losses, y):
            if loss is None:
                prepared.append(np.zeros((count, 0), np.float32))
                continue
            if target is None:
                raise ArgumentError(f"output {key!r} has a loss but y gives it no target")
            same_length(np.empty(count), np.asarray(target), name, f"y[{key!r}]")
            prepared.append(loss.prepare_targets(target, (count, *tensor.sample_shape)))
        return ArrayGroup(prepared)

    def _input_arrays(self, x, name: str) -> list[np.ndarray]:
        names = [t.name for t in self.inputs]
        if isinstance(x, ArrayGroup):
            x = x.arrays
        if isinstance(x, dict):
            if sorted(x) != sorted(names):
                raise ArgumentError(f"model {self.name!r} expected {name} keyed by its input "
                                    f"names {names}, got keys {sorted(x)}")
            x = [x[n] for n in names]
        elif len(self.inputs) == 1 and not (isinstance(x, (list, tuple)) and len(x) == 1
                                            and isinstance(x[0], np.ndarray)):
            x = [x]  # one input: x is its data (a nested list too), or [array] as Keras takes
        elif not isinstance(x, (list, tuple)):
            x = [x]
        if len(x) != len(self.inputs):
            raise ArgumentError(f"model {self.name!r} expected {len(self.inputs)} arrays for "
                                f"its inputs {names}, got {len(x)}")
        return [model_input(a, config.floatx(), name if len(x) == 1 else f"{name}[{n!r}]")
                for a, n in zip(x, names)]

    def _require_compiled(self, what: str) -> None:
        if self.optimizer is None or self.objectives is None:
            raise NotCompiledError(f"{what} needs a compiled model: call model.compile(optimizer, "
                                   "loss, metrics) first")

    def _require_own_weights(self, what: str) -> None:
        if self.shares_weights:
            raise ArgumentError(f"{what} needs a model that owns its weights, but {self.name!r} "
                                "uses layers built by another model (a sub-model, or a model "
                                "nested in another): train that model instead")

    # -- training -------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1,
            verbose="auto", callbacks=None, validation_split: float = 0.0,
            validation_data=None, shuffle: bool = True, initial_epoch: int = 0,
            steps_per_epoch: int | None = None, validation_steps: int | None = None) -> History:
        """Train for ``epochs`` epochs (Keras semantics). Returns the ``History``.

        ``x`` and ``y`` are arrays, or ``x`` is a ``tinynn.utils.PyDataset`` or a generator of
        ``(x, y)`` batches (``tinynn.data_adapters``; ``steps_per_epoch`` batches per epoch,
        ``validation_data`` of any of these kinds, ``validation_steps``). With arrays, each
        epoch reshuffles the training part (``shuffle=True``; a PyDataset's batch order;
        ``"batch"``: the order of batches of consecutive rows, for memmaps) and takes
        ceil(N / batch_size) steps (the last partial batch kept). A NumPy memmap as ``x`` is
        read batch by batch, never loaded whole. Logs are per-sample
        means of the training loss and metrics, then validation metrics with training off.
        ``callbacks`` get Keras's hooks; a ``History`` (always) and, unless ``verbose=0``, a
        ``ProgbarLogger`` are added to them. Under a ``tinynn.distribution.DataParallel``,
        every rank runs the same ``fit`` on arrays and each batch is split across them (see
        ``tinynn.distribution``).
        """
        self._require_compiled("fit")
        self._require_own_weights("fit")
        batch_size = check_batch_size(batch_size)
        epochs = non_negative_int(epochs, "epochs")
        initial_epoch = non_negative_int(initial_epoch, "initial_epoch")
        real_in_range(validation_split, "validation_split", 0, 1, high_open=True)
        verbose = resolve_verbose(verbose)
        if not (isinstance(shuffle, (bool, np.bool_)) or shuffle == "batch"):
            raise ArgumentError(f"shuffle expected True, False or 'batch', got {shuffle!r}")
        comm = active_communicator()
        if is_dataset(x):
            refuse_arguments(x, y=y)
            if validation_split:
                raise ArgumentError(f"`validation_split` is only supported for NumPy arrays, "
                                    f"got x as a {kind_of(x)}: pass validation_data instead")
            _arrays_only(comm, "fit")
            batches = DatasetBatches(self, x, "fit", steps_per_epoch,
                                     self.rngs["shuffle"] if shuffle else None)
            validation = self._validation_batches(validation_data, batch_size,
                                                  validation_steps)
        else:
            if steps_per_epoch is not None:
                raise ArgumentError("steps_per_epoch is for a PyDataset or a generator; with "
                                    "arrays an epoch is ceil(N / batch_size) steps")
            x, y = self.prepare(x, y)
            if len(x) == 0:
                raise ShapeError("fit expected at least one sample, got x of shape "
                                 f"{x.shape}")
            if is_dataset(validation_data):  # validation_data wins over validation_split
                _arrays_only(comm, "fit")
                x_train, y_train, pair = x, y, None
                validation = self._validation_batches(validation_data, batch_size,
                                                      validation_steps)
            else:
                x_train, y_train, pair = self._split_validation(x, y, validation_split,
                                                                validation_data)
                validation = None if pair is None else EpochIterator(pair, batch_size)
            replicas.start(self, comm, "fit", _named_arrays(x_train, y_train, pair), {
                "batch_size": batch_size, "epochs": epochs, "initial_epoch": initial_epoch,
                "shuffle": shuffle if shuffle == "batch" else bool(shuffle),
                "optimizer": self.optimizer.get_config(),
                "loss": self.objectives.get_config()}, training=True)
            batches = EpochIterator((x_train, y_train), batch_size,
                                    self.rngs["shuffle"] if shuffle else None,
                                    by_batch=shuffle == "batch")
        logged = self.objectives.log_names()
        logged += [f"val_{k}" for k in logged] if validation is not None else []
        callback_list = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                                     rank=comm.rank, model=self, verbose=verbose, epochs=epochs,
                                     steps=batches.num_batches, metrics=logged)
        self.stop_training = False
        callback_list.on_train_begin()
        epoch_logs = None
        with InterruptGuard() as guard, denormals.flush_to_zero():
            for epoch in range(initial_epoch, epochs):
                callback_list.on_epoch_begin(epoch)
                try:
                    epoch_logs = loops.train_epoch(self, batches, epoch, guard, callback_list,
                                                   comm)
                except NonFiniteLossError as error:
                    error.history = self.history
                    raise
                if not epoch_logs:  # a generator that had run out: no step in this epoch
                    break
                if validation is not None:
                    val_logs = loops.test_loop(self, validation, callback_list,
                                               self._inference_rows(), comm)
                    epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
                self.stop_training |= batches.exhausted
                callback_list.on_epoch_end(epoch, epoch_logs)
                self.stop_training = replicas.agree_after_epoch(self, comm, self.stop_training)
                if self.stop_training:
                    break
        callback_list.on_train_end(epoch_logs)
        return self.history

    def _validation_batches(self, validation_data, batch_size: int, steps: int | None):
        """The batches of ``validation_data`` (arrays, a PyDataset or a generator), or None."""
        if validation_data is None:
            return None
        if is_dataset(validation_data):
            return DatasetBatches(self, validation_data, "evaluate", steps)
        return EpochIterator(self._validation_pair(validation_data), batch_size)

    def _validation_pair(self, validation_data) -> tuple:
        """``validation_data``, a tuple ``(x_val, y_val)``, checked and prepared."""
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ArgumentError("validation_data expected a tuple (x_val, y_val), got "
                                f"{type(validation_data).__name__}")
        x_val, y_val = self.prepare(*validation_data, name="x_val")
        if len(x_val) == 0:
            raise ShapeError("validation_data expected at least one sample, got 0")
        return x_val, y_val

    def _split_validation(self, x, y, validation_split, validation_data):
        """Training arrays and the validation pair (or None), as Keras: validation_data wins;
        otherwise the last N - floor(N * (1 - split)) samples, taken before any shuffling."""
        if validation_data is not None:
            return x, y, self._validation_pair(validation_data)
        if validation_split == 0:
            return x, y, None
        split_at = int(math.floor(len(x) * (1.0 - validation_split)))
        if split_at == 0 or split_at == len(x):
            raise ShapeError(
                f"validation_split={validation_split} on {len(x)} samples leaves "
                f"{split_at} for training and {len(x) - split_at} for validation: both must "
                "be non-empty")
        return x[:split_at], y[:split_at], (x[split_at:], y[split_at:])

    # -- inference ------------------------------------------------------------------------------
    def evaluate(self, x=None, y=None, batch_size: int | None = None, verbose="auto",
                 callbacks=None, return_dict: bool = False, steps: int | None = None):
        """Loss (with the regularization penalty) and metrics with training off, in
        ceil(N / batch_size) steps (or over a PyDataset's or generator's ``(x, y)`` batches,
        ``steps`` of them if given): ``[loss, accuracy]`` (or the loss alone without metrics;
        a dict with ``return_dict=True``). ``callbacks`` get the ``on_test_*`` hooks. Under a
        ``DataParallel``, every rank evaluates its shard of each batch with rank 0's weights
        and returns the global result."""
        self._require_compiled("evaluate")
        batch_size = check_batch_size(batch_size)
        verbose = resolve_verbose(verbose)
        comm = active_communicator()
        if is_dataset(x):
            refuse_arguments(x, y=y)
            _arrays_only(comm, "evaluate")
            batches = DatasetBatches(self, x, "evaluate", steps)
        else:
            x, y = self.prepare(x, y)
            if len(x) == 0:
                raise ShapeError(f"evaluate expected at least one sample, got x of shape "
                                 f"{x.shape}")
            replicas.start(self, comm, "evaluate", _named_arrays(x, y),
                           {"batch_size": batch_size, "loss": self.objectives.get_config()},
                           training=False)
            batches = EpochIterator((x, y), batch_size)
        callback_list = CallbackList(callbacks, add_progbar=verbose != 0, rank=comm.rank,
                                     model=self, verbose=verbose, epochs=1,
                                     steps=batches.num_batches)
        with denormals.flush_to_zero():
            logs = loops.test_loop(self, batches, callback_list, self._inference_rows(), comm)
        if not logs:
            raise ShapeError(f"evaluate got no batches from the {kind_of(x)}")
        if return_dict:
            return dict(sorted(logs.items()))
        names = self.objectives.log_names()
        return [logs[k] for k in names] if len(names) > 1 else logs["loss"]

    def predict(self, x, batch_size: int | None = None, verbose="auto",
                callbacks=None, steps: int | None = None) -> np.ndarray:
        """Outputs for ``x`` in ceil(N / batch_size) steps (or for each batch of a PyDataset or
        generator, ``steps`` of them if given; a batch's x alone or first), training off.
        Returns (N, *output_shape) in floatx; for outputs given as a list or dict, a list or
        dict of such arrays. ``callbacks`` get the ``on_predict_*`` hooks. Under a
        ``DataParallel``, every rank predicts its shard of each batch with rank 0's weights and
        gathers the others', so every rank returns all N outputs."""
        batch_size = check_batch_size(batch_size)
        verbose = resolve_verbose(verbose)
        comm = active_communicator()
        if is_dataset(x):
            return self._predict_batches(DatasetBatches(self, x, "predict", steps), verbose,
                                         callbacks, comm)
        x, _ = self.prepare(x)
        replicas.start(self, comm, "predict", _named_arrays(x), {"batch_size": batch_size},
                       training=False)
        outs = [np.empty((len(x), *t.sample_shape), dtype=config.floatx())
                for t in self.outputs]
        out = outs[0] if len(outs) == 1 else ArrayGroup(outs)
        batches = EpochIterator((x, out), batch_size)
        callback_list = CallbackList(callbacks, add_progbar=verbose != 0, rank=comm.rank,
                                     model=self, verbose=verbose, epochs=1,
                                     steps=batches.num_batches)
        with denormals.flush_to_zero():
            filled = loops.predict_loop(self, batches, callback_list, self._inference_rows(),
                                        comm)
        outs = [o if filled == len(o) else o[:filled] for o in outs]  # fewer: a callback stopped
        return self.structured(outs)

    def _predict_batches(self, batches: DatasetBatches, verbose, callbacks, comm):
        """``predict`` over a PyDataset's or generator's batches: each filled in its own
        arrays, concatenated at the end."""
        _arrays_only(comm, "predict")
        callback_list = CallbackList(callbacks, add_progbar=verbose != 0, rank=comm.rank,
                                     model=self, verbose=verbose, epochs=1,
                                     steps=batches.num_batches)
        with denormals.flush_to_zero():
            loops.predict_loop(self, batches, callback_list, self._inference_rows(), comm)
        if not batches.outputs:
            raise ShapeError(f"predict got no batches from the {kind_of(batches.source)}")
        return self.structured([np.concatenate(parts) for parts in zip(*batches.outputs)])

    def structured(self, items: list):
        """``items`` (one per output) in the structure the outputs were given in: one item, a
        list, or a dict by ``output_keys``."""
        if self.output_keys is not None:
            return dict(zip(self.output_keys, items))
        return list(items) if self.outputs_as_list else items[0]

    def _inference_rows(self) -> int:
        """How many samples one inference forward takes at most: so many that no call's inputs
        plus output exceed ``INFERENCE_ACTIVATION_BYTES`` (e.g. ~1000 images for the reports'
        CNN), at least one."""
        largest = max(sum(math.prod(t.sample_shape) for t in (*node.inputs, node.output))
                      for node in self.nodes)
        per_sample = largest * np.dtype(config.floatx()).itemsize
        return max(1, INFERENCE_ACTIVATION_BYTES // max(per_sample, 1))

    # -- weights and description ----------------------------------------------------------------
    def require_built(self, what: str) -> None:
        """Build the model from its declared input shape if needed; NotCompiledError naming
        ``what`` if it has none."""
        if not self.built:
            if self.input_shape is None:
                raise NotCompiledError(f"{what} needs a built model: give an input shape "
                                       "(Input(shape) or input_shape=...) or call build/fit first")
            self.build()

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight in Keras's order (``named_weights``), Keras shapes."""
        self.require_built("get_weights")
        return [w.copy() for w in self.named_weights().values()]

    def set_weights(self, weights: list) -> None:
        """Copy ``weights`` (the order and shapes of ``get_weights``) into the model; all checked
        before anything is written."""
        self.require_built("set_weights")
        targets = self.named_weights()
        weights = list(weights)
        if len(weights) != len(targets):
            raise ShapeError(f"set_weights expected {len(targets)} arrays for model "
                             f"{self.name!r}, got {len(weights)}")
        arrays = []
        for (name, target), value in zip(targets.items(), weights):
            value = float_array(value, target.dtype, f"weights for {name}")
            if value.shape != target.shape:
                raise ShapeError(f"set_weights: {name} expected shape {target.shape}, "
                                 f"got {value.shape}")
            arrays.append(value)
        for target, value in zip(targets.values(), arrays):
            target[...] = value

    def count_params(self) -> int:
        """Total number of weights, trainable and non-trainable (as Keras counts)."""
        self.require_built("count_params")
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print) -> None:
        """Print the Keras 2 style summary table (line length 65)."""
        self.require_built("summary")
        for line in summary_lines(self):
            print_fn(line)

    # -- saving (tinynn.saving) -----------------------------------------------------------------
    def save(self, filepath, overwrite: bool = True, include_optimizer: bool = True) -> None:
        """Save architecture, weights, RNG state and (``include_optimizer``) optimizer state to
        one ``.npz`` file, atomically; ``tinynn.models.load_model`` reads it back. A name ending
        in ``.keras`` writes Keras 3's format instead (no RNG state), which Keras loads."""
        saving.save_model(self, filepath, include_optimizer=include_optimizer,
                          overwrite=overwrite)

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Save the weights alone to a ``.weights.npz`` (or Keras ``.weights.h5``) file,
        atomically."""
        saving.save_weights(self, filepath, overwrite=overwrite)

    def export(self, filepath, format: str = "onnx", verbose: bool | None = None,
               input_signature=None, **kwargs) -> None:
        """Export the model for inference to an ONNX file, atomically (Keras 3's ``export``;
        ``format="onnx"``, the only one tinynn writes, is the default). Needs the ``onnx``
        extra. Input ``"input"``: float32 (batch, *input_shape), images NHWC; output
        ``"output"``: float32 (batch, *output_shape). Dropout is left out, BatchNormalization
        uses its moving statistics, a float64 model is written in float32. ``verbose`` (None:
        True, as Keras) prints what was written; ``opset_version`` 13 to 21 (default 17); see
        ``tinynn.saving.onnx.export``."""
        from ..saving.onnx import export
        export(self, filepath, format=format, verbose=verbose, input_signature=input_signature,
               **kwargs)

    def load_weights(self, filepath, limits=None) -> None:
        """Load weights saved by ``save_weights`` or ``save``, or by Keras (``.keras``,
        ``.weights.h5``, legacy ``.h5``); all checked first, all or nothing. ``limits``: a
        ``tinynn.saving.LoadLimits`` to raise a bound for a file you trust."""
        saving.load_weights(self, filepath, limits)


def load_model(filepath, compile: bool = True, limits=None) -> Model:
    """Rebuild a model saved by ``model.save``, or by Keras in a ``.keras`` or legacy ``.h5``
    file (see ``tinynn.saving.load_model``); ``limits``: a ``tinynn.saving.LoadLimits``."""
    return saving.load_model(filepath, compile=compile, limits=limits)


def _arrays_only(comm, call: str) -> None:
    """Data-parallel calls split arrays by rows; a PyDataset or generator is refused."""
    if comm.size > 1:
        raise ArgumentError(f"data-parallel {call} takes arrays (each rank keeps its rows of "
                            "every batch), not a PyDataset or generator")


def _named_arrays(x, y=None, validation=None) -> dict:
    """``{"x": x, "y": y, "x_val": ..., "y_val": ...}`` for the arrays given, an ``ArrayGroup``
    as one entry per array (``"x[0]"``, ...): the data every data-parallel rank must pass
    alike."""
    arrays = {"x": x, "y": y, **dict(zip(("x_val", "y_val"), validation or ()))}
    named = {}
    for name, value in arrays.items():
        if isinstance(value, ArrayGroup):
            named.update({f"{name}[{i}]": array for i, array in enumerate(value.arrays)})
        elif value is not None:
            named[name] = value
    return named


def _layout_hint(got: tuple, expected: tuple) -> str:
    """A hint for the two common image-layout slips: a missing channel axis, or NCHW data."""
    if len(expected) == 3 and got == expected[:2] and expected[2] == 1:
        return ": add the channel axis, e.g. x[..., None] (NHWC expected)"
    if len(expected) == 3 and got == (expected[2], *expected[:2]):
        return ": channels-first (NCHW) data given, NHWC expected: x.transpose(0, 2, 3, 1)"
    return ""


def _pack(entries: list[tuple[Layer, dict]]) -> tuple[np.ndarray, dict]:
    """Copy the arrays of each ``(layer, {key: array})`` into one floatx buffer, rebinding the
    dicts to views of it. Returns the buffer and its layout ``{"layer/key": (slice, shape)}``;
    offsets are aligned to ``_ALIGN`` elements."""
    layout, total = {}, 0
    for layer, arrays in entries:
        for key, value in arrays.items():
            layout[f"{layer.name}/{key}"] = (slice(total, total + value.size), value.shape)
            total += -(-value.size // _ALIGN) * _ALIGN
    buffer = np.zeros(total, dtype=config.floatx())
    for layer, arrays in entries:
        for key, value in arrays.items():
            where, shape = layout[f"{layer.name}/{key}"]
            buffer[where] = value.ravel()
            arrays[key] = buffer[where].reshape(shape)
    return buffer, layout


def _declared_only(layer_name: str, shapes: list[tuple]):
    """A ``Layer.weight_guard`` refusing any weight beyond ``shapes`` (in creation order) or of
    another shape."""
    created = []

    def guard(key: str, shape: tuple) -> None:
        declared = shapes[len(created)] if len(created) < len(shapes) else None
        if declared is None or tuple(declared) != tuple(shape):
            raise ArgumentError(
                f"layer {layer_name!r} would create {layer_name}/{key} of shape {shape}, but the "
                f"file declares {declared if declared is not None else 'no such weight'}; "
                "refused before allocating it")
        created.append(key)
    return guard
