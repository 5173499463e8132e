"""The five benchmarked models, described once for every framework, and their FLOP counts.

A layer is a tuple: ``("flatten",)``, ``("dense", units, activation)``,
``("conv", filters, kernel_size, activation)`` (stride 1, 'same' padding), ``("pool", size)``
or ``("dropout", rate)``. Standard library only: the workers import this before any framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """One benchmarked network, its optimizer, and the examples' accuracy at full length."""

    name: str
    title: str
    input_shape: tuple[int, ...]
    layers: tuple[tuple, ...]
    optimizer: str  # "SGD" or "Adam": the class name in tinynn, Keras and torch.optim
    learning_rate: float
    full_epochs: int  # the reports' epoch count
    full_accuracy: dict[str, float]  # framework -> test accuracy after full_epochs (examples)


def _mlp(name: str, depth: int, hidden: int, tinynn: float, keras: float) -> ModelSpec:
    dense = tuple(("dense", 128, "relu") for _ in range(hidden))
    return ModelSpec(name, f"MLP {depth}-layer", (28, 28),
                     (("flatten",), *dense, ("dense", 10, "softmax")), "Adam", 0.001, 10,
                     {"tinynn": tinynn, "keras": keras})


# full_accuracy: tinynn from the examples' runs in README.md (seed 0), Keras from
# docs/keras-parity.md, "The reports' models".
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("task1", "Task 1", (28, 28),
              (("flatten",), ("dense", 100, "sigmoid"), ("dense", 10, "softmax")),
              "SGD", 0.1, 20, {"tinynn": 0.8695}),  # examples/task1_one_hidden.py defaults
    _mlp("mlp3", 3, 1, tinynn=0.8814, keras=0.8795),
    _mlp("mlp6", 6, 4, tinynn=0.8747, keras=0.8670),
    _mlp("mlp12", 12, 10, tinynn=0.8770, keras=0.8607),
    ModelSpec("cnn", "CNN", (28, 28, 1),
              (("conv", 32, 5, "relu"), ("pool", 2), ("conv", 64, 5, "relu"), ("pool", 2),
               ("flatten",), ("dense", 1024, "relu"), ("dropout", 0.4),
               ("dense", 10, "softmax")),
              "Adam", 0.001, 20, {"tinynn": 0.9164, "keras": 0.9141}),
)}


def keras_style_layers(layers_module, spec: ModelSpec) -> list:
    """The spec as layers of a module with Keras's layer API: ``tinynn.layers`` or
    ``keras.layers`` (the same code builds both), ``Input`` first."""
    built = [layers_module.Input(spec.input_shape)]
    for kind, *args in spec.layers:
        if kind == "flatten":
            built.append(layers_module.Flatten())
        elif kind == "dense":
            built.append(layers_module.Dense(args[0], activation=args[1]))
        elif kind == "conv":
            built.append(layers_module.Conv2D(args[0], args[1], padding="same",
                                              activation=args[2]))
        elif kind == "pool":
            built.append(layers_module.MaxPooling2D(args[0]))
        else:
            built.append(layers_module.Dropout(args[0]))
    return built


def forward_flops(spec: ModelSpec) -> list[int]:
    """Multiply-add FLOPs (2 per multiply-add) of each weighted layer's forward pass for one
    image, in layer order. Activations, pooling and biases are left out (a few percent)."""
    shape, flops = spec.input_shape, []
    for kind, *args in spec.layers:
        if kind == "flatten":
            shape = (math.prod(shape),)
        elif kind == "dense":
            flops.append(2 * shape[0] * args[0])
            shape = (args[0],)
        elif kind == "conv":
            h, w, c = shape  # 'same', stride 1: the output keeps h x w
            flops.append(2 * h * w * args[1] * args[1] * c * args[0])
            shape = (h, w, args[0])
        elif kind == "pool":
            shape = (shape[0] // args[0], shape[1] // args[0], shape[2])
    return flops


def train_flops(spec: ModelSpec) -> int:
    """FLOPs of one training step per image: forward, plus the weight gradient and the input
    gradient of every weighted layer (each as costly as its forward), except the first
    layer's input gradient, which no one needs. The CNN: 27.8 MFLOP forward, 82 training."""
    flops = forward_flops(spec)
    return 3 * sum(flops) - flops[0]
