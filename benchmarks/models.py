"""The five benchmarked models, described once for every framework, and their FLOP counts.

A layer is a tuple: ``("flatten",)``, ``("dense", units, activation)``,
``("conv", filters, kernel_size, activation)`` (stride 1, 'same' padding), ``("pool", size)``
or ``("dropout", rate)``; a residual network adds ``("stem", filters)`` (3x3 convolution
without bias, BatchNormalization, ReLU, 2x2 max-pooling), ``("block", filters, stride)`` (He
et al.'s basic block: two 3x3 convolutions with BatchNormalization, a 1x1-projection shortcut
when the shape changes, added, then ReLU) and ``("gap",)`` (global average pooling), as
examples/resnet_fashion.py builds it. Standard library only: the workers import this before
any framework.
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
    ModelSpec("resnet", "ResNet", (28, 28, 1),
              (("stem", 32), ("block", 32, 1), ("block", 32, 1), ("block", 64, 2),
               ("block", 64, 1), ("gap",), ("dropout", 0.3), ("dense", 10, "softmax")),
              # examples/resnet_fashion.py's recipe (README); Keras: benchmarks/resnet_recipe.py
              "Adam", 0.001, 12, {"tinynn": 0.9319, "keras": 0.9237}),
)}


def is_graph(spec: ModelSpec) -> bool:
    """Whether the spec needs the functional API (residual blocks)."""
    return any(kind in ("stem", "block", "gap") for kind, *_ in spec.layers)


def keras_style_model(api, spec: ModelSpec, **model_arguments):
    """The spec as a model of a module with Keras's API (``tinynn`` or ``keras``): a
    Sequential of ``keras_style_layers``, or a functional ``Model`` for a residual network.
    ``model_arguments`` go to the model's constructor (tinynn's ``seed``)."""
    if not is_graph(spec):
        return api.Sequential(keras_style_layers(api.layers, spec), **model_arguments)
    layers = api.layers
    x = image = api.Input(spec.input_shape)
    for kind, *args in spec.layers:
        if kind == "stem":
            x = layers.Conv2D(args[0], 3, padding="same", use_bias=False)(x)
            x = layers.MaxPooling2D(2)(layers.Activation("relu")(layers.BatchNormalization()(x)))
        elif kind == "block":
            x = _block(layers, x, *args)
        elif kind == "gap":
            x = layers.GlobalAveragePooling2D()(x)
        elif kind == "dropout":
            x = layers.Dropout(args[0])(x)
        else:
            x = layers.Dense(args[0], activation=args[1])(x)
    return api.Model(image, x, **model_arguments)


def _block(layers, x, filters: int, stride: int):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.BatchNormalization()(
            layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x))
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    y = layers.Activation("relu")(layers.BatchNormalization()(y))
    y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(y))
    return layers.Activation("relu")(layers.add([y, shortcut]))


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
        elif kind == "stem":
            h, w, c = shape
            flops.append(2 * h * w * 9 * c * args[0])
            shape = (h // 2, w // 2, args[0])
        elif kind == "block":
            (h, w, c), (filters, stride) = shape, args
            oh, ow = -(-h // stride), -(-w // stride)
            flops.append(2 * oh * ow * 9 * c * filters)
            flops.append(2 * oh * ow * 9 * filters * filters)
            if stride != 1 or c != filters:
                flops.append(2 * oh * ow * c * filters)
            shape = (oh, ow, filters)
        elif kind == "gap":
            shape = (shape[2],)
    return flops


def train_flops(spec: ModelSpec) -> int:
    """FLOPs of one training step per image: forward, plus the weight gradient and the input
    gradient of every weighted layer (each as costly as its forward), except the first
    layer's input gradient, which no one needs. The CNN: 27.8 MFLOP forward, 82 training."""
    flops = forward_flops(spec)
    return 3 * sum(flops) - flops[0]
