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


# -- architecture -------------------------------------------------------------------------------
def model_config(model) -> dict:
    """``{"class_name": "Sequential", "config": {...}}`` for a built model."""
    for layer in model.layers:
        if layers.REGISTRY.get(type(layer).__name__) is not type(layer):
            raise CheckpointError(
                f"cannot save layer {layer.name!r} of type {type(layer).__name__}: a model file "
                f"can name only registered layers {sorted(layers.REGISTRY)}; register the class "
                "(tinynn.layers.register), or save the weights alone with save_weights and "
                "rebuild the model in code")
    return {"class_name": "Sequential", "config": {
        "name": model.name, "seed": model.seed, "input_shape": list(model.input_shape),
        "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                   for layer in model.layers]}}


def model_from_config(config: dict, shapes: dict[str, tuple]):
    """Build the Sequential model ``config`` describes.

    ``shapes`` maps each weight name the file declares (``"dense/kernel"``, in Keras's order)
    to its shape: a layer that would create an undeclared weight, or one of another shape, is
    refused before that weight is allocated (``Sequential.build``'s ``weight_shapes``).
    """
    from ..models import Sequential  # models imports saving: import at call time

    if config["class_name"] != "Sequential":
        raise ArgumentError(f"model class {config['class_name']!r}, expected 'Sequential'")
    config = config["config"]
    model = Sequential(name=config["name"], seed=config["seed"])
    model.add(layers.Input(tuple(config["input_shape"])))
    for entry in config["layers"]:
        cls = layers.REGISTRY.get(entry["class_name"])
        if cls is None:
            raise ArgumentError(f"unknown layer type {entry['class_name']!r}: expected one of "
                                f"tinynn's layers {sorted(layers.REGISTRY)}")
        model.add(cls.from_config(entry["config"]))
    by_layer: dict[str, list[tuple]] = {}
    for name, shape in shapes.items():
        by_layer.setdefault(name.rsplit("/", 1)[0], []).append(tuple(shape))
    model.build(weight_shapes=by_layer)
    return model


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
        got = sorted(states) if isinstance(states, dict) else states
        raise ArgumentError(f"RNG states for {got}, expected {sorted(model.rngs)}")
    for name, rng in model.rngs.items():
        type(rng.bit_generator)(np.random.SeedSequence(0)).state = states[name]
    return states


def set_rng_states(model, states: dict[str, dict]) -> None:
    """Restore the model's Generators in place (layers hold references to them)."""
    for name, rng in model.rngs.items():
        rng.bit_generator.state = states[name]
