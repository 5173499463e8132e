"""Keras model and compile configs (JSON) to tinynn objects and back, through fixed tables.

Everything about a layer comes from its class (``tinynn.layers.Layer``): Keras class names
resolve through ``tinynn.layers.REGISTRY``, and a Keras argument is either one of the class's
``arguments`` (passed on, converting initializer and regularizer entries), or one tinynn has no
counterpart for, accepted only at the value that makes it a no-op (``NEUTRAL``, e.g.
``dilation_rate=(1, 1)``). Anything else, a layer tinynn does not have,
``Conv2D(dilation_rate=2)``, ``data_format="channels_first"``, an unknown argument, raises
UnsupportedKerasFeatureError naming the layer and the argument. A malformed config raises
KeyError, TypeError or ValueError (the loader reports a damaged file).

Writing produces the config Keras 3.15 writes for the same model (``model_config``): the
class's ``arguments`` in Keras's form, plus its ``keras_fixed`` entries.
"""

from __future__ import annotations

from .. import activations, initializers, layers, losses, optimizers, regularizers
from ..errors import CheckpointError, TinyNNError, UnsupportedKerasFeatureError
from ..layers.base import plain
from ..registry import MODEL_CLASSES
from ..validation import object_name


def keras_layers() -> dict[str, type]:
    """Keras class name (and alias) -> tinynn class, for every registered layer Keras has."""
    return {name: cls for name, cls in layers.REGISTRY.items()
            if cls.keras_name is not None and cls is not layers.InputLayer}


_INPUT_KEYS = ("batch_shape", "batch_input_shape")  # Keras 3, Keras 2

#: Keras arguments without a tinynn counterpart, and the values at which they change nothing
#: (besides each layer's ``keras_fixed``, whose values are accepted too).
NEUTRAL = {
    "trainable": (True,), "data_format": ("channels_last", None),
    "dilation_rate": ([1, 1], 1), "groups": (1,), "noise_shape": (None,),
    "activity_regularizer": (None,), "kernel_constraint": (None,), "bias_constraint": (None,),
    "quantization_config": (None,), "lora_rank": (None,), "lora_alpha": (None,),
    "sparse": (False,), "ragged": (False,), "optional": (False,),
}
_FLOAT_TYPES = ("float32", "float64")

#: Keras initializer classes <-> tinynn initializer names. The initializers' own configs (a
#: seed) are not kept: a loaded model's weights come from the file.
INITIALIZERS = {"GlorotUniform": "glorot_uniform", "HeUniform": "he_uniform",
                "HeNormal": "he_normal", "Zeros": "zeros", "Ones": "ones"}
_SEEDED = ("GlorotUniform", "HeUniform", "HeNormal")


# -- reading: layers ----------------------------------------------------------------------------
def _unsupported(what: str, hint: str = "") -> UnsupportedKerasFeatureError:
    return UnsupportedKerasFeatureError(f"{what} is not supported by tinynn"
                                        + (f": {hint}" if hint else ""))


FUNCTIONAL = ("Functional", "Model")  # Keras 3 and tf.keras 2.13+, older tf.keras


def is_functional(config: dict) -> bool:
    return config["class_name"] in FUNCTIONAL


def sequential_layers(config: dict) -> tuple[str, list[dict]]:
    """The model name and the layer entries of a Keras Sequential config."""
    if config["class_name"] != "Sequential":
        raise _unsupported(f"a Keras {config['class_name']!r} model",
                           "tinynn builds Sequential and functional models only")
    body = config["config"]
    if isinstance(body, list):  # Keras 2.0's form: the layer list itself
        return "sequential", body
    return str(body.get("name", "sequential")), list(body["layers"])


def layer_class_names(config: dict) -> list[str]:
    """The class names of a config's layers in the order Keras 3's weight files follow: a
    Sequential's without its InputLayer, a functional model's all of them."""
    if is_functional(config):
        return [entry["class_name"] for entry in config["config"]["layers"]]
    return [entry["class_name"] for entry in sequential_layers(config)[1]
            if entry["class_name"] != "InputLayer"]


def functional_graph(config: dict, depth: int = 0) -> tuple[str, list, list, list[tuple]]:
    """``(name, input tensors, output tensors, entries)`` for a Keras functional config (Keras
    3's ``__keras_tensor__`` nodes or Keras 2's node lists): every layer made from its entry,
    its calls replayed in passes (``serialization.replay_calls``). ``entries``: ``(Keras class
    name, layer, None)`` in the config's order, input layers included; a model called as a
    layer is ``(class name, model, its own entries)`` (``nested_model``)."""
    from .serialization import replay_calls

    body = config["config"]
    made = []

    def make(entry: dict) -> layers.Layer:
        keras = entry["keras"]
        if keras["class_name"] in (*FUNCTIONAL, "Sequential"):
            layer, children = nested_model(keras, depth + 1)
        else:
            layer, children = _functional_layer(keras), None
        made.append((keras["class_name"], layer, children))
        return layer

    entries = [{"name": entry["name"], "keras": entry,
                "inbound_nodes": [_call_refs(entry["name"], node)
                                  for node in entry["inbound_nodes"]]}
               for entry in body["layers"]]
    outputs_refs = body["output_layers"]
    legacy = any(isinstance(node, list) for entry in body["layers"]
                 for node in entry["inbound_nodes"])
    nested = [entry["name"] for entry in body["layers"]
              if entry["class_name"] in (*FUNCTIONAL, "Sequential")]
    if legacy and nested:  # Keras 2 counts a nested model's own graph as its call 0
        raise _unsupported(f"models {nested} nested in a Keras 2 functional config",
                           "load the file in Keras 3 and save it as a .keras file")
    if legacy and len(outputs_refs) == 1:  # Keras 2 lists even a single output
        outputs_refs = outputs_refs[0]
    inputs, outputs = replay_calls(entries, _ref_list(body["input_layers"]), outputs_refs, make)
    return str(body.get("name", "functional")), inputs, outputs, made


def nested_model(entry: dict, depth: int) -> tuple:
    """``(model, entries)`` for a model entry inside another model's config, ``depth`` models
    deep (at most ``serialization.MAX_NESTING``)."""
    from .serialization import check_nesting

    check_nesting(depth)
    if entry["class_name"] == "Sequential":
        name, input_shape, entries = model_layers(entry, depth)
        model = MODEL_CLASSES["Sequential"](
            [layers.Input(input_shape), *(layer for _, layer, _ in entries)], name=name)
        return model, entries
    name, inputs, outputs, entries = functional_graph(entry, depth)
    return MODEL_CLASSES["Functional"](inputs, outputs, name=name), entries


def _functional_layer(entry: dict) -> layers.Layer:
    class_name, options = entry["class_name"], dict(entry["config"])
    options.setdefault("name", entry["name"])
    if class_name != "InputLayer":
        return _layer(class_name, options)
    shape = next((options.pop(key) for key in _INPUT_KEYS if key in options), None)
    _check_neutral("InputLayer", options, ("name", "dtype", "shape"))
    if shape is None and "shape" in options:
        shape = [None, *options["shape"]]
    if shape is None:
        raise KeyError(f"InputLayer {entry['name']!r} has no batch_shape")
    return layers.InputLayer(_input_shape(shape), name=options["name"])


def _call_refs(name: str, node) -> list[list]:
    """The ``[layer, node index, tensor index]`` of one call's inputs, from Keras 3's
    ``{"args": [...], "kwargs": {}}`` or Keras 2's ``[[layer, node, tensor, kwargs], ...]``."""
    if isinstance(node, dict):
        if any(value is not None for value in node.get("kwargs", {}).values()):  # mask=None
            raise _unsupported(f"layer {name!r} called with arguments {node['kwargs']!r}")
        args = node["args"]
        if len(args) != 1:
            raise _unsupported(f"layer {name!r} called with {len(args)} positional arguments")
        tensors = args[0] if isinstance(args[0], list) else [args[0]]
        for tensor in tensors:
            if tensor.get("class_name") != "__keras_tensor__":
                raise _unsupported(f"layer {name!r} called on {tensor.get('class_name')!r}")
        return [list(tensor["config"]["keras_history"]) for tensor in tensors]
    refs = []
    for ref in node:
        if len(ref) > 3 and any(value is not None for value in ref[3].values()):
            raise _unsupported(f"layer {name!r} called with arguments {ref[3]!r}")
        refs.append(list(ref[:3]))
    return refs


def _ref_list(value) -> list[list]:
    """``input_layers``/``output_layers`` as a list of refs (Keras 3 writes one tensor as a
    flat ``[name, 0, 0]``, several as a list or dict of them)."""
    if isinstance(value, dict):
        value = list(value.values())
    if value and isinstance(value[0], str):
        return [value]
    return list(value)


def model_layers(config: dict, depth: int = 0) -> tuple[str, tuple, list[tuple]]:
    """``(name, input_shape, entries)`` for a Sequential config: ``(Keras class name, tinynn
    layer, None)``, or for a model among its layers ``(class name, model, its entries)``; the
    input shape excludes the batch axis."""
    name, entries = sequential_layers(config)
    input_shape = None
    built = []
    for entry in entries:
        class_name, options = entry["class_name"], dict(entry["config"])
        shape = next((options.pop(key) for key in _INPUT_KEYS if key in options), None)
        if shape is not None and input_shape is None:
            input_shape = _input_shape(shape)
        if class_name == "InputLayer":
            _check_neutral("InputLayer", options, ("name", "dtype", "shape"))
            input_shape = input_shape or _input_shape([None, *options.get("shape", [])])
        elif class_name in (*FUNCTIONAL, "Sequential"):
            built.append((class_name, *nested_model(entry, depth + 1)))
        else:
            built.append((class_name, _layer(class_name, options), None))
    input_shape = input_shape or _build_input_shape(config)
    if input_shape is None:
        raise _unsupported("a model without an input shape", "it was never built, so it has "
                           "no weights: save it after building it")
    return name, input_shape, built


def _input_shape(batch_shape) -> tuple:
    shape = tuple(batch_shape)[1:]
    if not shape or not all(type(dim) is int and dim > 0 for dim in shape):
        raise _unsupported(f"input shape {list(batch_shape)}", "every dimension but the batch "
                           "axis must be a known size")
    return shape


def _build_input_shape(config: dict) -> tuple | None:
    shape = config.get("build_config", {}).get("input_shape")
    if shape is None and isinstance(config["config"], dict):
        shape = config["config"].get("build_input_shape")
    return None if shape is None else _input_shape(shape)


def _layer(class_name: str, options: dict) -> layers.Layer:
    name = options.get("name")
    if name is not None:
        object_name(name, f"a {class_name} layer's name")
    known = keras_layers()
    if class_name not in known:
        raise _unsupported(f"Keras layer {name!r} of type {class_name}", "tinynn has the "
                           f"layers {', '.join(sorted(known))} (and InputLayer)")
    cls = known[class_name]
    taken = cls.arguments
    where = f"Keras layer {name!r} ({class_name})"
    _check_neutral(where, options, ("name", "dtype", *taken), cls.keras_fixed)
    kwargs = {key: _argument(where, key, options[key]) for key in taken if key in options}
    try:
        return cls(name=name, **kwargs)
    except TinyNNError as error:
        raise _unsupported(f"{where} with {kwargs}", str(error)) from error


def _check_neutral(where: str, options: dict, taken: tuple, fixed: dict | None = None) -> None:
    """Refuse a dtype tinynn lacks, and every option not ``taken`` unless it is at a no-op
    value: the one the layer's ``keras_fixed`` writes, or one listed in ``NEUTRAL``."""
    neutral = {**NEUTRAL, **{key: (value, *NEUTRAL.get(key, ()))
                             for key, value in (fixed or {}).items()}}
    dtype = options.get("dtype")
    if isinstance(dtype, dict):  # a DTypePolicy (Keras 3) or Policy (Keras 2)
        dtype = dtype["config"]["name"]
    if dtype is not None and dtype not in _FLOAT_TYPES:
        raise _unsupported(f"{where} with dtype {dtype!r}", f"tinynn computes in one of "
                           f"{_FLOAT_TYPES}, set by tinynn.config.set_floatx")
    for key, value in options.items():
        if key in taken:
            continue
        if key not in neutral:
            raise _unsupported(f"{where} argument {key}={value!r}")
        if value not in neutral[key]:
            raise _unsupported(f"{where} with {key}={value!r}",
                               f"tinynn supports only {key}={neutral[key][0]!r}")


def _argument(where: str, key: str, value):
    """A Keras argument's value as tinynn takes it."""
    if key == "activation":
        try:
            activations.get(value if isinstance(value, (str, type(None))) else repr(value))
        except TinyNNError as error:
            raise _unsupported(f"{where} with activation={value!r}", str(error)) from error
    if key.endswith("_initializer"):
        return _initializer(where, key, value)
    if key.endswith("_regularizer"):
        try:
            return regularizers.get(value)
        except TinyNNError as error:
            raise _unsupported(f"{where} with {key}={value!r}", str(error)) from error
    return value


def _initializer(where: str, key: str, value) -> str:
    if isinstance(value, str) and value in INITIALIZERS.values():
        return value
    class_name = value.get("class_name") if isinstance(value, dict) else None
    if class_name not in INITIALIZERS:
        raise _unsupported(f"{where} with {key}={value!r}", f"tinynn has {sorted(INITIALIZERS)}")
    return INITIALIZERS[class_name]


# -- reading: compile settings ------------------------------------------------------------------
_ADAM_ARGUMENTS = ("learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad")
_OPTIMIZERS = {"Adam": (optimizers.Adam, _ADAM_ARGUMENTS),
               "AdamW": (optimizers.AdamW, (*_ADAM_ARGUMENTS, "weight_decay")),
               "RMSprop": (optimizers.RMSprop,
                           ("learning_rate", "rho", "momentum", "epsilon", "centered")),
               "SGD": (optimizers.SGD, ("learning_rate", "momentum", "nesterov"))}
_OPTIMIZER_NEUTRAL = {
    "weight_decay": (None, 0, 0.0), "clipnorm": (None,),
    "global_clipnorm": (None,), "clipvalue": (None,), "use_ema": (False,),
    "loss_scale_factor": (None,),
    "gradient_accumulation_steps": (None,), "is_legacy_optimizer": (False,),
    "decay": (0, 0.0)}
# no effect without their feature (tf.keras's RMSprop writes ema_overwrite_frequency=100)
_OPTIMIZER_IGNORED = ("name", "ema_momentum", "ema_overwrite_frequency", "jit_compile")
_LOSSES = {"SparseCategoricalCrossentropy": losses.SparseCategoricalCrossentropy,
           "CategoricalCrossentropy": losses.CategoricalCrossentropy,
           "MeanSquaredError": losses.MeanSquaredError}
_LOSS_NEUTRAL = {"reduction": ("sum_over_batch_size", "auto", None), "ignore_class": (None,),
                 "label_smoothing": (0, 0.0), "axis": (-1,)}
_ACCURACY = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy")


def compile_arguments(config: dict) -> tuple:
    """``(optimizer, loss, metrics, loss_weights)`` for ``model.compile`` from a Keras 3
    ``compile_config`` or a legacy ``training_config``; for several outputs the loss, metrics
    and loss weights keep Keras's list or dict form."""
    if config.get("weighted_metrics"):
        raise _unsupported(f"compile setting weighted_metrics={config['weighted_metrics']!r}")
    default = "rmsprop"  # what Keras compiles with when the config names no optimizer
    optimizer = config.get("optimizer", config.get("optimizer_config", default))
    loss, metrics = config["loss"], config.get("metrics") or []
    if isinstance(loss, dict) and "class_name" not in loss:  # by output name
        loss = {key: None if value is None else _loss(value) for key, value in loss.items()}
    elif isinstance(loss, list):
        loss = [None if value is None else _loss(value) for value in loss]
    else:
        loss = _loss(loss)
    if isinstance(metrics, dict):
        metrics = {key: _metrics(value if isinstance(value, list) else [value])
                   for key, value in metrics.items()}
    elif isinstance(loss, (list, dict)) and metrics and all(
            isinstance(value, list) or value is None for value in metrics):
        metrics = [_metrics(value or []) for value in metrics]
    else:
        metrics = _metrics(metrics)
    return _optimizer(optimizer), loss, metrics, config.get("loss_weights")


def _optimizer(value) -> optimizers.Optimizer:
    if isinstance(value, str):
        try:
            return optimizers.get(value)
        except TinyNNError as error:
            raise _unsupported(f"the Keras optimizer {value!r}", str(error)) from error
    class_name = value["class_name"].removeprefix("Custom>")  # tf.keras 2.11+'s legacy tag
    if class_name not in _OPTIMIZERS:
        raise _unsupported(f"the Keras optimizer {class_name}",
                           f"tinynn has {sorted(_OPTIMIZERS)}")
    cls, taken = _OPTIMIZERS[class_name]
    options = dict(value["config"])
    for key, option in options.items():
        if key in taken or key in _OPTIMIZER_IGNORED:
            continue
        if option not in _OPTIMIZER_NEUTRAL.get(key, ()):
            raise _unsupported(f"{class_name} optimizer argument {key}={option!r}")
    if isinstance(options.get("learning_rate"), dict):
        raise _unsupported(f"{class_name} with a learning-rate schedule",
                           "use tinynn.callbacks.LearningRateScheduler")
    return cls(**{key: options[key] for key in taken if key in options})


def _loss(value) -> losses.Loss:
    if isinstance(value, str):
        try:
            return losses.get(value)
        except TinyNNError as error:
            raise _unsupported(f"the Keras loss {value!r}", str(error)) from error
    if not isinstance(value, dict) or value.get("class_name") not in _LOSSES:
        raise _unsupported(f"the Keras loss {value!r}", f"tinynn has {sorted(_LOSSES)}")
    options = dict(value["config"])
    for key, option in options.items():
        if key not in ("name", "from_logits") and option not in _LOSS_NEUTRAL.get(key, ()):
            raise _unsupported(f"loss argument {key}={option!r}")
    cls = _LOSSES[value["class_name"]]
    return cls(from_logits=options.get("from_logits", False)) if issubclass(
        cls, losses.Crossentropy) else cls()


def _metrics(values: list) -> list[str]:
    flat = []
    for value in values:  # Keras 2 nests a list per output
        flat += value if isinstance(value, list) else [value]
    names = [value["config"]["name"] if isinstance(value, dict) else value for value in flat]
    for name in names:
        if name not in _ACCURACY:
            raise _unsupported(f"the metric {name!r}", "tinynn has accuracy")
    return ["accuracy"] * bool(names)


# -- writing ------------------------------------------------------------------------------------
def model_config(model) -> dict:
    """The ``config.json`` Keras 3.15 writes for the same Sequential or functional model (with
    the compile settings if the model is compiled)."""
    from .serialization import is_graph_model
    if is_graph_model(model):
        return _functional_config(model)
    dtype = _dtype(model)
    batch_shape = [None, *model.input_shape]
    entries = [_entry("InputLayer", {"batch_shape": batch_shape, "dtype": dtype,
                                     "sparse": False, "ragged": False, "name": "input_layer",
                                     "optional": False})]
    shape = model.input_shape
    for layer in model.layers:
        entries.append(_nested_entry(layer) if isinstance(layer, MODEL_CLASSES["Functional"])
                       else _layer_entry(layer, shape, dtype))
        shape = layer.compute_output_shape(shape)
    config = {"module": "keras", "class_name": "Sequential",
              "config": {"name": model.name, "trainable": True, "dtype": _policy(dtype),
                         "layers": entries, "build_input_shape": batch_shape},
              "registered_name": None, "build_config": {"input_shape": batch_shape}}
    if model.optimizer is not None and model.objectives is not None:
        config["compile_config"] = compile_config(model)
    return config


def _functional_config(model) -> dict:
    """Keras 3's functional config: every layer with its calls in this model, each call's
    inputs as ``__keras_tensor__`` entries naming ``[layer, node index, tensor index]``."""
    from .serialization import node_indices

    dtype = _dtype(model)
    index = node_indices(model)
    calls: dict[str, list] = {layer.name: [] for layer in model.layers}
    for node in model.nodes:
        calls[node.layer.name].append(node)

    def tensor(t) -> dict:
        return {"class_name": "__keras_tensor__", "config": {
            "shape": list(t.shape), "dtype": dtype,
            "keras_history": [t.history[0].name, index[id(t.node)], 0]}}

    entries = []
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            entry = _entry("InputLayer", {"batch_shape": [None, *layer.input_shape],
                                          "dtype": dtype, "sparse": False, "ragged": False,
                                          "name": layer.name, "optional": False})
        elif isinstance(layer, MODEL_CLASSES["Functional"]):
            entry = _nested_entry(layer)
        else:
            node = calls[layer.name][0]
            shapes = [list(t.shape) for t in node.inputs]
            entry = _layer_entry(layer, None, dtype)
            if layer.keras_build_config:
                entry["build_config"] = {"input_shape": shapes if layer.takes_list
                                         else shapes[0]}
        entry["name"] = layer.name
        entry["inbound_nodes"] = [
            {"args": [[tensor(t) for t in node.inputs] if layer.takes_list
                      else tensor(node.inputs[0])], "kwargs": {}}
            for node in calls[layer.name]]
        entries.append(entry)

    def refs(tensors: list) -> list:
        return [[t.history[0].name, index[id(t.node)], 0] for t in tensors]

    inputs = refs(model.inputs)
    config = {"module": "keras.src.models.functional", "class_name": "Functional",
              "config": {"name": model.name, "trainable": True, "layers": entries,
                         "input_layers": inputs[0] if len(inputs) == 1 else inputs,
                         "output_layers": model.structured(refs(model.outputs))},
              "registered_name": "Functional", "build_config": {"input_shape": None}}
    if model.optimizer is not None and model.objectives is not None:
        config["compile_config"] = compile_config(model)
    return config


def _dtype(model) -> str:
    """The model's float dtype: its weights' (a nested model's live in the caller's buffers),
    or its input's for a model without weights."""
    weights = list(model.named_weights().values())
    return str(weights[0].dtype) if weights else model.inputs[0].dtype


def _nested_entry(model) -> dict:
    """A model called as a layer: its own config, without compile settings (Keras's form)."""
    config = model_config(model)
    config.pop("compile_config", None)
    return config


def _entry(class_name: str, config: dict, module: str = "keras.layers") -> dict:
    return {"module": module, "class_name": class_name, "config": config,
            "registered_name": None}


def _policy(dtype: str) -> dict:
    return _entry("DTypePolicy", {"name": dtype}, module="keras")


def _layer_entry(layer, input_shape: tuple, dtype: str) -> dict:
    class_name = layer.keras_name
    if keras_layers().get(class_name) is not type(layer):
        raise CheckpointError(
            f"cannot save layer {layer.name!r} of type {type(layer).__name__} in the Keras "
            f"format, which names only Keras's layers {sorted(keras_layers())}; save the "
            "weights alone with save_weights and rebuild the model in code")
    config = {"name": layer.name, "trainable": True, "dtype": _policy(dtype),
              **{key: _keras_value(getattr(layer, key)) for key in layer.arguments},
              **layer.keras_fixed}
    entry = _entry(class_name, config)
    if layer.keras_build_config and input_shape is not None:
        entry["build_config"] = {"input_shape": [None, *input_shape]}
    return entry


def _keras_value(value):
    """A layer argument as Keras writes it: initializers and regularizers as Keras entries
    (``{"module", "class_name", "config", "registered_name"}``), the rest plain."""
    if isinstance(value, initializers.Initializer):
        return _initializer_entry(value)
    if isinstance(value, regularizers.Regularizer):
        return _entry(**regularizers.serialize(value), module="keras.regularizers")
    return plain(value)


def _initializer_entry(initializer) -> dict:
    name = initializer.name
    class_name = {value: key for key, value in INITIALIZERS.items()}[name]
    config = ({"seed": None, "input_axes": None, "output_axes": None}
              if class_name in _SEEDED else {})
    return _entry(class_name, config, module="keras.initializers")


def compile_config(model) -> dict:
    """Keras 3's ``compile_config`` for tinynn's optimizer, losses and metrics (for several
    outputs: lists, or dicts when the outputs were given as a dict)."""
    optimizer, objectives = model.optimizer, model.objectives
    for loss in objectives.losses:
        if type(optimizer) not in [cls for cls, _ in _OPTIMIZERS.values()] or (
                loss is not None and type(loss) not in (*_LOSSES.values(),)):
            raise CheckpointError(
                f"cannot save the compile settings in the Keras format: "
                f"{type(optimizer).__name__} and {type(loss).__name__} must be tinynn's "
                f"{', '.join(sorted(_OPTIMIZERS))} and one of its losses; compile with "
                "built-in ones, or save with save_weights")
    options = optimizer.get_config()
    if objectives.several:
        loss = model.structured([None if item is None else _loss_entry(item)
                                 for item in objectives.losses])
        weights = model.structured(list(objectives.weights))
        metrics = model.structured([list(group) for group in objectives.metrics])
    else:
        loss, weights = _loss_entry(objectives.losses[0]), None
        metrics = list(objectives.metrics[0])
    return {"optimizer": _entry(type(optimizer).__name__, options, module="keras.optimizers"),
            "loss": loss, "loss_weights": weights, "metrics": metrics,
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1,
            "jit_compile": False}


def _loss_entry(loss: losses.Loss):
    if not loss.from_logits:
        return loss.name
    class_name = {cls: name for name, cls in _LOSSES.items()}[type(loss)]
    return _entry(class_name, {"name": loss.name, "reduction": "sum_over_batch_size",
                               "from_logits": True}, module="keras.losses")
