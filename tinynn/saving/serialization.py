"""Architecture, compile settings and RNG state as JSON-compatible dicts, and back.

Names read from a file are resolved only through fixed tables of tinynn's own classes: layers
through ``tinynn.layers.SERIALIZABLE``, optimizers and losses through ``optimizers.get`` and
``losses.get``. Nothing is imported by a name read from a file, and a class outside these
tables (a user subclass) is refused when saving rather than silently saved as its base class.
Functions that read configs raise TinyNNError, TypeError, KeyError or ValueError on malformed
input; the loader turns those into CheckpointCorruptError.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .. import layers, losses, optimizers
from ..errors import CheckpointError, TinyNNError

LAYER_TYPES = {cls.__name__: cls for cls in layers.SERIALIZABLE}


# -- architecture -------------------------------------------------------------------------------
def model_config(model) -> dict:
    """``{"class_name": "Sequential", "config": {...}}`` for a built model."""
    for layer in model.layers:
        if LAYER_TYPES.get(type(layer).__name__) is not type(layer):
            raise CheckpointError(
                f"cannot save layer {layer.name!r} of type {type(layer).__name__}: a model file "
                f"can name only tinynn's layers {sorted(LAYER_TYPES)}; save the weights alone "
                "with save_weights and rebuild the model in code")
    return {"class_name": "Sequential", "config": {
        "name": model.name, "seed": model.seed, "input_shape": list(model.input_shape),
        "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                   for layer in model.layers]}}


def model_from_config(config: dict, shapes: dict[str, tuple]):
    """Build the Sequential model ``config`` describes.

    ``shapes`` maps each parameter name the file declares to its shape: a layer that would
    create an undeclared parameter, or one of another shape, is refused before that parameter
    is allocated, so a config cannot make tinynn allocate more than the file holds.
    """
    from ..models import Sequential  # models imports saving: import at call time

    if config["class_name"] != "Sequential":
        raise TinyNNError(f"model class {config['class_name']!r}, expected 'Sequential'")
    config = config["config"]
    model = Sequential(name=config["name"], seed=config["seed"])
    model.add(layers.Input(tuple(config["input_shape"])))
    for entry in config["layers"]:
        cls = LAYER_TYPES.get(entry["class_name"])
        if cls is None:
            raise TinyNNError(f"unknown layer type {entry['class_name']!r}: expected one of "
                              f"tinynn's layers {sorted(LAYER_TYPES)}")
        model.add(cls.from_config(entry["config"]))
    with declared_weights_only(model.layers, shapes):
        model.build()
    return model


@contextlib.contextmanager
def declared_weights_only(model_layers: list, shapes: dict[str, tuple]):
    """While building, let ``layer.add_weight`` create only the parameters in ``shapes``."""
    def guard(layer):
        def add_weight(key, shape, initializer, rng):
            name, shape = f"{layer.name}/{key}", tuple(shape)
            if shapes.get(name) != shape:
                raise TinyNNError(
                    f"layer {layer.name!r} would create {name} of shape {shape}, but the file "
                    f"declares {shapes[name] if name in shapes else 'no such weight'}; refused "
                    "before allocating it")
            type(layer).add_weight(layer, key, shape, initializer, rng)
        return add_weight

    for layer in model_layers:
        layer.add_weight = guard(layer)
    try:
        yield
    finally:
        for layer in model_layers:
            del layer.add_weight


# -- compile settings ---------------------------------------------------------------------------
def compile_config(model) -> dict | None:
    """Optimizer and loss configs and the metrics, or None for an uncompiled model."""
    if model.optimizer is None or model.loss is None:
        return None
    return {"optimizer": _registered_config(optimizers.get, model.optimizer),
            "loss": _registered_config(losses.get, model.loss), "metrics": list(model.metrics)}


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
    """``(optimizer, loss, metrics)`` ready for ``model.compile``."""
    return (_from_config(optimizers.get, config["optimizer"]),
            _from_config(losses.get, config["loss"]), list(config["metrics"]))


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
        raise TinyNNError(f"RNG states for {sorted(states) if isinstance(states, dict) else states}"
                          f", expected {sorted(model.rngs)}")
    for name, rng in model.rngs.items():
        type(rng.bit_generator)(np.random.SeedSequence(0)).state = states[name]
    return states


def set_rng_states(model, states: dict[str, dict]) -> None:
    """Restore the model's Generators in place (layers hold references to them)."""
    for name, rng in model.rngs.items():
        rng.bit_generator.state = states[name]
