"""Keras files: import weights and models from Keras 2 and 3, export models Keras 3 loads.

- ``load_weights(model, path)``: a ``.keras``, ``.weights.h5`` or legacy ``.h5`` file (Keras 2
  or 3) into a built tinynn model. The file's layers that hold weights are matched to the
  model's by position (Keras's own names, ``conv2d_3``, ``sequential_1/dense``..., vary with
  the session), and within a layer in Keras's order (trainable weights, then non-trainable
  ones: kernel, bias; gamma, beta, moving_mean, moving_variance); every shape is checked
  before anything is copied.
- ``load_model(path)``: a Sequential or functional model (models nested in it included, from
  Keras 3 files) built from a ``.keras`` or legacy ``.h5`` file's config (keras_config.py
  names what tinynn does not support), its weights and, with ``compile=True``, its compile
  settings and optimizer state when tinynn has them.
- ``save_model(model, "m.keras")`` and ``save_weights(model, "w.weights.h5")``: the files Keras
  3.15 writes for the same model (config, weights and optimizer state), which
  ``keras.saving.load_model`` and ``model.load_weights`` read.

Loads are all or nothing and writes atomic, as for tinynn's own format.
"""

from __future__ import annotations

import datetime
import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, UnsupportedKerasFeatureError
from ..interrupt import InterruptGuard
from ..registry import MODEL_CLASSES
from . import keras_config
from .atomic import atomic_write
from .checks import (
    check_destination,
    check_finite,
    check_matches,
    copy_weights,
    interpret,
)
from .keras_h5 import (
    CONFIG_NAME,
    METADATA_NAME,
    WEIGHTS_NAME,
    KerasFile,
    keras_class,
    layer_keys,
    write_weights,
)
from .limits import LoadLimits

KERAS_VERSION = "3.15.1"  # the Keras release whose files these are checked against
MATCH_HINT = ("tinynn matches the Keras layers that hold weights to the model's by position "
              "(and each layer's weights in Keras's order): build the same architecture, or "
              "build the model from the file with tinynn.models.load_model")


# -- saving -------------------------------------------------------------------------------------
def save_model(model, path: Path, include_optimizer: bool = True,
               overwrite: bool = True) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` file: config (with the compile settings of a
    compiled model), weights and, with ``include_optimizer``, the optimizer state."""
    model.require_built("save")
    config = keras_config.model_config(model)
    state = optimizer_variables(model) if include_optimizer and "compile_config" in config \
        else None
    weights = _weights_h5(model, path, overwrite, state)
    metadata = {"keras_version": KERAS_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    with atomic_write(path) as file, zipfile.ZipFile(file, "w") as archive:
        archive.writestr(METADATA_NAME, json.dumps(metadata))
        archive.writestr(CONFIG_NAME, json.dumps(config))
        archive.writestr(WEIGHTS_NAME, weights)


def save_weights(model, path: Path, overwrite: bool = True) -> None:
    """Write the weights of ``model`` as a Keras 3 ``.weights.h5`` file."""
    model.require_built("save_weights")
    weights = _weights_h5(model, path, overwrite, None)
    with atomic_write(path) as file:
        file.write(weights)


def _weights_h5(model, path: Path, overwrite: bool, state: list | None) -> bytes:
    """The weights (and optimizer ``state``) as the bytes of Keras 3's HDF5 file."""
    check_destination(path, overwrite)
    check_finite(path, model.named_weights())
    buffer = io.BytesIO()
    write_weights(buffer, model, model.optimizer and model.optimizer.name, state)
    return buffer.getvalue()


def optimizer_variables(model) -> list[np.ndarray]:
    """The optimizer's variables in Keras 3's order: iterations, learning rate, then the
    slots of each parameter (``keras_slot_groups``: Adam's m and v of the first kernel, of its
    bias, ...; RMSprop's every velocity, then every momentum...)."""
    optimizer, dtype = model.optimizer, model.parameters.dtype
    arrays = [np.asarray(optimizer.iterations, dtype=np.int64),
              np.asarray(optimizer.learning_rate, dtype=dtype)]
    return arrays + [optimizer.state_for(name)[slot] for name, slot in _slot_order(model)]


def _slot_order(model) -> list[tuple[str, str]]:
    """``(parameter, slot)`` pairs in the order of Keras's optimizer variables."""
    return [(name, slot) for group in model.optimizer.keras_slot_groups
            for name in model.layout for slot in group]


# -- loading ------------------------------------------------------------------------------------
def load_weights(model, path: Path, limits: LoadLimits | None = None) -> None:
    """Load a Keras file's weights into ``model``, all or nothing (module docstring)."""
    model.require_built("load_weights")
    with KerasFile(path, limits) as source, source.reading("the file"):
        if source.config and not _has_nested(model):
            classes = interpret(source, "the model config", keras_config.layer_class_names,
                                source.config)
            entries = [(name, layer, None) for name, layer in zip(classes, model.layers)]
        else:  # the model's own classes name the file's groups
            entries = _model_entries(model)
        weights = _read_matching(model, source, entries)
    with InterruptGuard() as guard, guard.critical():
        copy_weights(model, weights)


def load_model(path: Path, compile: bool = True, limits: LoadLimits | None = None):
    """Build the Sequential model a ``.keras`` or legacy ``.h5`` file describes, with its
    weights and, with ``compile=True``, its compile settings and optimizer state."""
    with KerasFile(path, limits) as source, source.reading("the file"):
        if source.config is None:
            raise CheckpointError(f"{str(path)!r} holds weights only: build the model in code, "
                                  "then call model.load_weights on it")
        model, entries = _model(source)
        weights = _read_matching(model, source, entries)
        state = _compile(source, model) if compile and source.compile_config else None
    copy_weights(model, weights)
    if state is not None:
        _set_optimizer_state(model, *state)
    return model


def _model(source: KerasFile) -> tuple:
    """The Sequential or functional model the file's config describes, built (``_build``),
    and its ``[(Keras class name, layer), ...]`` in the order the file's weights follow."""
    from .. import layers
    Model, Sequential = MODEL_CLASSES["Functional"], MODEL_CLASSES["Sequential"]

    if keras_config.is_functional(source.config):
        name, inputs, outputs, entries = interpret(source, "the model config",
                                                   keras_config.functional_graph, source.config)
        model = interpret(source, "the model config", Model, inputs, outputs, name)
    else:
        name, input_shape, entries = interpret(source, "the model config",
                                                keras_config.model_layers, source.config)
        model = interpret(source, "the model config", lambda: Sequential(
            [layers.Input(input_shape), *(layer for _, layer, _ in entries)], name=name))
    _build(source, model, entries)
    return model, entries


def _build(source: KerasFile, model, entries: list) -> None:
    """Build ``model`` so that a layer can create only the weights the file holds for it (a
    config cannot make tinynn allocate more than the file stores)."""
    leaves = _leaves(source, entries)
    found = {layer.name: layer.arrays for layer in source.weighted_layers(
        [path for path, _ in leaves])}
    shapes = {layer.name: [tuple(array.shape) for array in found.get(path, [])]
              for path, layer in leaves}
    interpret(source, "the model config", model.build, None, shapes)


def _has_nested(model) -> bool:
    return any(isinstance(layer, MODEL_CLASSES["Functional"]) for layer in model.layers)


def _model_entries(model) -> list[tuple]:
    """``(Keras class name, layer, nested entries or None)`` for the layers of a tinynn model."""
    return [(keras_class(layer), layer, _model_entries(layer)
             if isinstance(layer, MODEL_CLASSES["Functional"]) else None)
            for layer in model.layers]


def _leaves(source: KerasFile, entries: list, prefix: str = "") -> list[tuple]:
    """``(where the file keeps its weights, layer)`` for every layer of ``entries``, a nested
    model's layers in its place: Keras 3 groups by class (``dense_1``, and
    ``functional/layers/dense`` inside a nested model), legacy files by layer name."""
    if source.layout != "keras3":
        if any(children is not None for _, _, children in entries):
            raise UnsupportedKerasFeatureError(
                f"{str(source.path)!r}: weights of nested models in Keras 2's legacy layout are "
                "not supported by tinynn: save them from Keras 3 as a .weights.h5 file")
        return [(layer.name, layer) for _, layer, _ in entries]
    leaves = []
    for key, (_, layer, children) in zip(layer_keys([name for name, _, _ in entries]),
                                          entries):
        if children is None:
            leaves.append((prefix + key, layer))
        else:
            leaves += _leaves(source, children, f"{prefix}{key}/layers/")
    return leaves


def _read_matching(model, source: KerasFile, entries: list) -> dict[str, np.ndarray]:
    """The file's arrays under the model's parameter names (the file's layers that hold
    weights matched in order to those of ``entries``, nested models' layers in their place),
    after checking that every one matches (CheckpointMismatchError lists each difference)."""
    dtype = model.parameters.dtype
    leaves = _leaves(source, entries)
    targets = [layer for _, layer in leaves if layer.weights]
    specs, datasets = {}, {}
    for i, file_layer in enumerate(source.weighted_layers([path for path, _ in leaves])):
        keys = list(targets[i].weights) if i < len(targets) else []
        for j, dataset in enumerate(file_layer.arrays):
            name = (f"{targets[i].name}/{keys[j]}" if j < len(keys)
                    else f"{file_layer.name}/{j}")
            castable = np.can_cast(dataset.dtype, dtype, "safe")
            specs[name] = (tuple(dataset.shape), dtype if castable else dataset.dtype)
            datasets[name] = dataset
    check_matches(model, specs, source.path, MATCH_HINT)
    return {name: source.read(dataset, dtype) for name, dataset in datasets.items()}


def _compile(source: KerasFile, model) -> tuple | None:
    """Compile ``model`` with the file's settings; return its optimizer state as
    ``(iterations, learning_rate or None, {slot: {name: array}})``, or None if it has none
    that fits tinynn's optimizer."""
    try:
        arguments = interpret(source, "the compile settings", keras_config.compile_arguments,
                               source.compile_config)
    except UnsupportedKerasFeatureError as error:
        raise UnsupportedKerasFeatureError(
            f"{error}; load the model with compile=False and compile it in tinynn") from error
    interpret(source, "the compile settings", model.compile, *arguments)
    arrays = source.optimizer_arrays()
    return None if arrays is None else _optimizer_state(source, model, arrays)


def _optimizer_state(source: KerasFile, model, arrays: list) -> tuple | None:
    """Keras 3's (and tf.keras's) optimizer variables as tinynn's optimizer state: iterations,
    the learning rate (Keras 3 only), then the slots of each parameter (``_slot_order``)."""
    optimizer, dtype = model.optimizer, model.parameters.dtype
    slots = _slot_order(model)
    leading = len(arrays) - len(slots)
    shapes = [tuple(array.shape) for array in arrays[leading:]]
    if leading not in (1, 2) or shapes != [model.layout[name][1] for name, _ in slots]:
        warnings.warn(f"the optimizer state in {str(source.path)!r} ({len(arrays)} variables) "
                      f"does not fit tinynn's {type(optimizer).__name__} for this model; "
                      "training will start with a fresh optimizer state", stacklevel=4)
        return None
    iterations = source.scalar(arrays[0])
    if not isinstance(iterations, int) or iterations < 0:
        raise source.corrupt(f"the optimizer's iteration count is {iterations!r}")
    learning_rate = source.scalar(arrays[1]) if leading == 2 else None
    if learning_rate is not None and not learning_rate > 0:
        raise source.corrupt(f"the optimizer's learning rate is {learning_rate!r}")
    rounded = arrays[1].dtype.type if leading == 2 else None
    if rounded and rounded(learning_rate) == rounded(optimizer.learning_rate):
        learning_rate = None  # the compiled rate, stored rounded: keep its exact value
    state: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in optimizer.slots}
    for (name, slot), dataset in zip(slots, arrays[leading:]):
        state[slot][name] = source.read(dataset, dtype)
    return iterations, learning_rate, state


def _set_optimizer_state(model, iterations: int, learning_rate: float | None,
                         state: dict) -> None:
    optimizer = model.optimizer
    for slot, arrays in state.items():
        for name, array in arrays.items():
            optimizer.state_for(name)[slot][...] = array
    optimizer.iterations = iterations
    if learning_rate is not None:
        optimizer.learning_rate = learning_rate
