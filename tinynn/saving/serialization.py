"""Architecture, compile settings and RNG state as JSON-compatible dicts, and back.

Names read from a file are resolved only through fixed tables of tinynn's own classes: layers
through ``tinynn.layers.REGISTRY``, optimizers and losses through ``optimizers.get`` and
``losses.get``. Nothing is imported by a name read from a file, and a class outside these
tables (a user subclass) is refused when saving rather than silently saved as its base class.
Functions that read configs raise TinyNNError, TypeError, KeyError or ValueError on malformed
input; the loader turns those into CheckpointCorruptError.
"""

from __future__ import annotations

import numpy as np

from .. import layers, losses, optimizers
from ..errors import ArgumentError, CheckpointError, TinyNNError
from ..registry import MODEL_CLASSES

# -- architecture -------------------------------------------------------------------------------
#: How deep models may be nested in a model file (a model called as a layer of a model called as
#: a layer ...): deeper configs are refused before anything is built.
MAX_NESTING = 8


def model_config(model) -> dict:
    """``{"class_name": "Sequential" or "Functional", "config": {...}}`` for a built model.

    A functional config lists every layer (input layers included, in ``model.layers`` order)
    with its ``inbound_nodes``: one entry per call in this model, each the list of
    ``[layer name, node index, tensor index]`` of its inputs (node indices count the layer's
    calls in this model), and the ``input_layers`` and ``output_layers`` as such triples. A
    model called as a layer is an entry holding its own model config."""
    _check_registered(model.layers)
    if not is_graph_model(model):
        return {"class_name": "Sequential", "config": {
            "name": model.name, "seed": model.seed, "input_shape": list(model.input_shape),
            "layers": [_layer_config(layer) for layer in model.layers]}}
    index = node_indices(model)

    def ref(tensor) -> list:
        node = tensor.node
        return [node.layer.name, index[id(node)], 0]

    calls = {layer.name: [] for layer in model.layers}
    for node in [t.node for t in model.inputs] + model.nodes:
        if not node.is_input:
            calls[node.layer.name].append([ref(t) for t in node.inputs])
    return {"class_name": "Functional", "config": {
        "name": model.name, "seed": model.seed,
        "layers": [{**_layer_config(layer), "name": layer.name,
                    "inbound_nodes": calls[layer.name]} for layer in model.layers],
        "input_layers": [ref(t) for t in model.inputs],
        "output_layers": model.structured([ref(t) for t in model.outputs])}}


def _layer_config(layer) -> dict:
    """A layer's ``{"class_name", "config"}``; a nested model's is its model config."""
    if isinstance(layer, MODEL_CLASSES["Functional"]):
        return model_config(layer)
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def is_graph_model(model) -> bool:
    """Whether ``model`` is saved as a functional model (any model but a Sequential)."""
    return not isinstance(model, MODEL_CLASSES["Sequential"])


def _check_registered(model_layers: list) -> None:
    for layer in model_layers:
        if isinstance(layer, MODEL_CLASSES["Functional"]):
            continue  # its own layers are checked by its config
        if layers.REGISTRY.get(type(layer).__name__) is not type(layer):
            raise CheckpointError(
                f"cannot save layer {layer.name!r} of type {type(layer).__name__}: a model file "
                f"can name only registered layers {sorted(layers.REGISTRY)}; register the class "
                "(tinynn.layers.register), or save the weights alone with save_weights and "
                "rebuild the model in code")


def node_indices(model) -> dict[int, int]:
    """Each node's index among its layer's calls in this model (its position in file
    configs), by ``id(node)``."""
    counts: dict = {}
    index = {}
    for node in sorted([t.node for t in model.inputs] + model.nodes,
                       key=lambda n: (id(n.layer), n.index)):
        index[id(node)] = counts.get(node.layer, 0)
        counts[node.layer] = index[id(node)] + 1
    return index


def model_from_config(config: dict, shapes: dict[str, tuple]):
    """Build the Sequential or functional model ``config`` describes.

    ``shapes`` maps each weight name the file declares (``"dense/kernel"``, in Keras's order)
    to its shape: a layer that would create an undeclared weight, or one of another shape, is
    refused before that weight is allocated (``Model.build``'s ``weight_shapes``).
    """
    model = _unbuilt_model(config, depth=0)
    by_layer: dict[str, list[tuple]] = {}
    for name, shape in shapes.items():
        by_layer.setdefault(name.rsplit("/", 1)[0], []).append(tuple(shape))
    model.build(weight_shapes=by_layer)
    return model


def _unbuilt_model(config: dict, depth: int):
    """The model ``config`` describes, its graph made but no weight allocated; ``depth``
    counts the models it is nested in."""
    Model, Sequential = MODEL_CLASSES["Functional"], MODEL_CLASSES["Sequential"]
    kind = config["class_name"]
    if kind not in ("Sequential", "Functional"):
        raise ArgumentError(f"model class {kind!r}, expected 'Sequential' or 'Functional'")
    check_nesting(depth)
    config = config["config"]

    def make(entry: dict):
        return _layer_from_entry(entry, depth)

    if kind == "Sequential":
        model = Sequential(name=config["name"], seed=config["seed"])
        model.add(layers.Input(tuple(config["input_shape"])))
        for entry in config["layers"]:
            model.add(make(entry))
        return model
    inputs, outputs = replay_calls(config["layers"], config["input_layers"],
                                   config["output_layers"], make)
    return Model(inputs, outputs, name=config["name"], seed=config["seed"])


def check_nesting(depth: int) -> None:
    """ArgumentError for a model config nested ``depth`` models deep, past ``MAX_NESTING``."""
    if depth > MAX_NESTING:
        raise ArgumentError(f"models nested more than {MAX_NESTING} deep in the model config")


def _layer_from_entry(entry: dict, depth: int):
    if entry["class_name"] in ("Sequential", "Functional"):  # a model called as a layer
        return _unbuilt_model(entry, depth + 1)
    cls = layers.REGISTRY.get(entry["class_name"])
    if cls is None:
        raise ArgumentError(f"unknown layer type {entry['class_name']!r}: expected one of "
                            f"tinynn's layers {sorted(layers.REGISTRY)}")
    return cls.from_config(entry["config"])


def replay_calls(entries: list, input_refs: list, output_refs: list, make_layer) -> tuple:
    """Recreate a functional graph from its layer entries (each with ``name`` and
    ``inbound_nodes``: per call, its inputs as ``[layer, node, tensor]``): make each layer with
    ``make_layer(entry)`` and call it on the tensors its calls name, in passes, each layer's
    calls in order. Returns the input and output tensors ``input_refs``/``output_refs`` name.
    ArgumentError for a duplicate name, a reference to a missing call, or calls that can never
    run (a cycle)."""
    made, pending, produced = {}, [], {}
    for entry in entries:
        name = entry["name"]
        if name in made:
            raise ArgumentError(f"two layers named {name!r} in the model config")
        layer = made[name] = make_layer(entry)
        if layer.name != name:
            raise ArgumentError(f"layer entry {name!r} holds a layer named {layer.name!r}")
        if isinstance(layer, layers.InputLayer):
            produced[(name, 0)] = layer.output_tensor
        pending.extend((layer, k, calls) for k, calls in enumerate(entry["inbound_nodes"]))
    while pending:
        waiting = []
        for layer, k, calls in pending:
            refs = [tuple(ref[:2]) for ref in calls]
            if (layer.name, k - 1) in produced or k == 0 and (layer.name, 0) not in produced:
                if refs and all(ref in produced for ref in refs):
                    tensors = [produced[ref] for ref in refs]
                    produced[(layer.name, k)] = layer(tensors if layer.takes_list else
                                                      _single(tensors, layer))
                    continue
            waiting.append((layer, k, calls))
        if len(waiting) == len(pending):
            missing = sorted({tuple(ref[:2]) for _, _, calls in waiting for ref in calls
                              if tuple(ref[:2]) not in produced})
            raise ArgumentError(f"the model config's calls cannot all run: calls of "
                                f"{sorted({layer.name for layer, _, _ in waiting})} wait for "
                                f"{missing}")
        pending = waiting
    return ([_produced(produced, ref, "input_layers") for ref in input_refs],
            _structure(output_refs, lambda ref: _produced(produced, ref, "output_layers")))


def _structure(refs, make):
    """``make`` applied to each ``[layer, node, tensor]`` of ``refs``, kept in its structure:
    one ref (Keras's form for a single tensor), a list or a dict of them."""
    if isinstance(refs, dict):
        return {key: make(ref) for key, ref in refs.items()}
    if refs and isinstance(refs[0], str):
        return make(refs)
    return [make(ref) for ref in refs]


def _single(tensors: list, layer):
    if len(tensors) != 1:
        raise ArgumentError(f"layer {layer.name!r} takes one input, the config gives "
                            f"{len(tensors)}")
    return tensors[0]


def _produced(produced: dict, ref, what: str):
    key = tuple(ref[:2])
    if key not in produced:
        raise ArgumentError(f"{what} names {list(key)}, which no call in the config produces")
    return produced[key]


# -- compile settings ---------------------------------------------------------------------------
def compile_config(model) -> dict | None:
    """Optimizer and loss configs and the metrics, or None for an uncompiled model. For several
    outputs: a loss config (or None) per output, their ``loss_weights`` and metrics lists."""
    if model.optimizer is None or model.objectives is None:
        return None
    config = {"optimizer": _registered_config(optimizers.get, model.optimizer)}
    objectives = model.objectives
    if not objectives.several:
        return {**config, "loss": _registered_config(losses.get, objectives.losses[0]),
                "metrics": list(objectives.metrics[0])}
    return {**config, "loss": [None if loss is None else _registered_config(losses.get, loss)
                               for loss in objectives.losses],
            "loss_weights": list(objectives.weights),
            "metrics": [list(group) for group in objectives.metrics]}


def _registered_config(get, obj) -> dict:
    config = obj.get_config()
    try:
        known = type(get(config["name"])) is type(obj)
    except TinyNNError:
        known = False
    if not known:
        raise CheckpointError(
            f"cannot save the compile settings: {type(obj).__name__} is not one of tinynn's "
            "optimizers or losses; compile with a built-in one, or save with save_weights")
    return config


def compile_from_config(config: dict) -> tuple:
    """``(optimizer, loss, metrics, loss_weights)`` ready for ``model.compile``."""
    loss = config["loss"]
    if isinstance(loss, list):
        loss = [None if item is None else _from_config(losses.get, item) for item in loss]
    else:
        loss = _from_config(losses.get, loss)
    return (_from_config(optimizers.get, config["optimizer"]), loss, list(config["metrics"]),
            config.get("loss_weights"))


def _from_config(get, config: dict):
    kwargs = dict(config)
    return type(get(kwargs.pop("name")))(**kwargs)


# -- random state -------------------------------------------------------------------------------
def rng_states(model) -> dict:
    """The bit-generator state of each of the model's Generators (PCG64: big ints, JSON-safe)."""
    return {name: rng.bit_generator.state for name, rng in model.rngs.items()}


def checked_rng_states(model, states: dict) -> dict[str, dict]:
    """``states`` after trying each on a scratch bit generator of the model's kind."""
    if not isinstance(states, dict) or set(states) != set(model.rngs):
        got = sorted(states) if isinstance(states, dict) else states
        raise ArgumentError(f"RNG states for {got}, expected {sorted(model.rngs)}")
    for name, rng in model.rngs.items():
        type(rng.bit_generator)(np.random.SeedSequence(0)).state = states[name]
    return states


def set_rng_states(model, states: dict[str, dict]) -> None:
    """Restore the model's Generators in place (layers hold references to them)."""
    for name, rng in model.rngs.items():
        rng.bit_generator.state = states[name]
