"""One ONNX exporter per layer class and per activation, in inference semantics.

A layer exporter is ``export(graph, layer, x) -> Tensor``: it appends the nodes computing the
built ``layer`` on the value ``x`` (a ``graph.Tensor``) and returns the result. ``LAYERS`` and
``ACTIVATIONS`` are keyed by exact class: a subclass (whose ``forward`` may differ) has no
exporter until it gets one here, and ``check_exportable`` names it.

What each becomes (NCHW: the graph holds the value channels first):

- Dense: Gemm (kernel (in, units) as is), then its activation.
- Conv2D: Conv on NCHW, kernel (KH, KW, C, F) transposed to (F, C, KH, KW), Keras's 'same'
  padding as explicit pads (extra pixel bottom/right), then its activation.
- MaxPooling2D, AveragePooling2D: MaxPool, AveragePool (count_include_pad=0: 'same' windows
  average their in-image elements only, as tinynn and TensorFlow do), on NCHW.
- GlobalAveragePooling2D: GlobalAveragePool on NCHW (N, C, 1, 1), then Flatten to (N, C)
  unless ``keepdims``.
- BatchNormalization: ``x * scale + shift`` (Mul, Add) with per-channel constants computed
  from the moving statistics exactly as tinynn's inference does (scale = gamma /
  sqrt(moving_variance + epsilon), shift = beta - moving_mean * scale); any axis.
- Flatten: back to NHWC if needed, then Flatten(axis=1): the C-order flattening of tinynn, so
  the following Dense needs no permuted weights.
- Dropout, InputLayer and the random augmentations (RandomFlip, RandomBrightness,
  RandomContrast, RandomTranslation, RandomRotation, RandomZoom): nothing (the identity in
  inference); Rescaling: Mul and Add; RandomCrop: its inference, the centered window (Slice)
  resized (Resize, linear, half-pixel centers).
- Reshape: back to NHWC if needed, then Reshape to (0: the batch, *target_shape).
- ZeroPadding2D: Pad with zeros, in whichever layout the value is.
- Add, Average, Maximum, Minimum: Sum, Mean, Max, Min over the inputs; Subtract: Sub;
  Multiply: Mul folded over the inputs; all in one layout (NCHW if any input is).
- Concatenate: the inputs in NHWC, then Concat on the layer's axis.
- Activations: Relu, Sigmoid, Tanh, Softmax (over the channels: axis 1 on NCHW values, else
  the last axis), Elu, Selu (Keras's alpha and scale), LeakyRelu (alpha 0.2), Softplus;
  gelu as 0.5 x (1 + erf(x / sqrt(2))) (Div, Erf, Add, Mul, Mul: the exact form, which ONNX
  Runtime fuses into one Gelu kernel); silu/swish as x * Sigmoid(x); linear as nothing.
"""

from __future__ import annotations

import math

import numpy as np

from ... import activations as A
from ...errors import ArgumentError
from ...layers import (
    Activation,
    Add,
    Average,
    AveragePooling2D,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    InputLayer,
    Maximum,
    MaxPooling2D,
    Minimum,
    Multiply,
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    Rescaling,
    Reshape,
    Subtract,
    ZeroPadding2D,
)
from .graph import Graph, Tensor


# -- layout -------------------------------------------------------------------------------------
def to_channels_first(graph: Graph, x: Tensor, prefix: str) -> Tensor:
    """``x`` as NCHW: a Transpose from NHWC unless it is already."""
    if x.channels_first:
        return x
    name = graph.node("Transpose", [x.name], f"{prefix}/to_nchw", perm=[0, 3, 1, 2])
    return Tensor(name, x.shape, channels_first=True)


def to_channels_last(graph: Graph, x: Tensor, prefix: str) -> Tensor:
    """``x`` in tinynn's layout (NHWC): a Transpose from NCHW unless it is already."""
    if not x.channels_first:
        return x
    name = graph.node("Transpose", [x.name], f"{prefix}/to_nhwc", perm=[0, 2, 3, 1])
    return Tensor(name, x.shape, channels_first=False)


# -- activations --------------------------------------------------------------------------------
def _identity(graph: Graph, x: Tensor, prefix: str) -> Tensor:
    return x


def _unary(op_type: str, **attributes):
    def export(graph: Graph, x: Tensor, prefix: str) -> Tensor:
        return x._replace(name=graph.node(op_type, [x.name], f"{prefix}/{op_type}",
                                          **attributes))
    return export


def _softmax(graph: Graph, x: Tensor, prefix: str) -> Tensor:
    axis = 1 if x.channels_first else -1  # tinynn's softmax runs over the channels-last axis
    return x._replace(name=graph.node("Softmax", [x.name], f"{prefix}/Softmax", axis=axis))


def _gelu(graph: Graph, x: Tensor, prefix: str) -> Tensor:
    """0.5 x (1 + erf(x / sqrt(2)))."""
    z = graph.node("Div", [x.name, graph.scalar(math.sqrt(2.0))], f"{prefix}/gelu_div")
    z = graph.node("Erf", [z], f"{prefix}/gelu_erf")
    z = graph.node("Add", [z, graph.scalar(1.0)], f"{prefix}/gelu_add")
    z = graph.node("Mul", [x.name, z], f"{prefix}/gelu_mul")
    return x._replace(name=graph.node("Mul", [z, graph.scalar(0.5)], f"{prefix}/gelu"))


def _silu(graph: Graph, x: Tensor, prefix: str) -> Tensor:
    """x * sigmoid(x)."""
    sigmoid = graph.node("Sigmoid", [x.name], f"{prefix}/silu_sigmoid")
    return x._replace(name=graph.node("Mul", [x.name, sigmoid], f"{prefix}/silu"))


ACTIVATIONS = {
    A.Activation: _identity,  # the base class is the identity, as Linear
    A.Linear: _identity,
    A.ReLU: _unary("Relu"),
    A.LeakyReLU: _unary("LeakyRelu", alpha=A.LEAKY_RELU_SLOPE),
    A.ELU: _unary("Elu", alpha=1.0),
    A.SELU: _unary("Selu", alpha=A.SELU_ALPHA, gamma=A.SELU_SCALE),
    A.Softplus: _unary("Softplus"),
    A.Sigmoid: _unary("Sigmoid"),
    A.Tanh: _unary("Tanh"),
    A.SiLU: _silu,
    A.GELU: _gelu,
    A.Softmax: _softmax,
}


def activation(graph: Graph, layer, x: Tensor) -> Tensor:
    """``layer.activation`` applied to ``x``."""
    return ACTIVATIONS[type(layer.activation)](graph, x, layer.name)


# -- layers -------------------------------------------------------------------------------------
def _pass_through(graph: Graph, layer, x: Tensor) -> Tensor:
    return x


def _rescaling(graph: Graph, layer: Rescaling, x: Tensor) -> Tensor:
    y = graph.node("Mul", [x.name, graph.scalar(layer.scale)], f"{layer.name}/Mul")
    return x._replace(name=graph.node("Add", [y, graph.scalar(layer.offset)],
                                      f"{layer.name}/Add"))


def _random_crop(graph: Graph, layer: RandomCrop, x: Tensor) -> Tensor:
    """Inference: the centered window (a Slice, when smaller than the image) resized to the
    target (Resize: linear, half-pixel centers, as the layer's warp), in NCHW."""
    x = to_channels_first(graph, x, layer.name)
    height, width, channels = x.shape
    (top, left, rows, columns), _ = layer.resize_window(height, width)
    name = x.name
    if (rows, columns) != (height, width):
        name = graph.node("Slice", [name, graph.ints(f"{layer.name}/starts", [top, left]),
                                    graph.ints(f"{layer.name}/ends", [top + rows, left + columns]),
                                    graph.ints(f"{layer.name}/axes", [2, 3])],
                          f"{layer.name}/Slice")
    shape = graph.node("Shape", [name], f"{layer.name}/Shape")
    batch_channels = graph.node("Slice", [shape, graph.ints(f"{layer.name}/zero", [0]),
                                          graph.ints(f"{layer.name}/two", [2])],
                                f"{layer.name}/batch_channels")
    sizes = graph.node("Concat", [batch_channels, graph.ints(f"{layer.name}/size",
                                                             [layer.height, layer.width])],
                       f"{layer.name}/sizes", axis=0)
    y = graph.node("Resize", [name, "", "", sizes], f"{layer.name}/Resize", mode="linear",
                   coordinate_transformation_mode="half_pixel")
    return Tensor(y, layer.compute_output_shape((height, width, channels)),
                  channels_first=True)


def _dense(graph: Graph, layer: Dense, x: Tensor) -> Tensor:
    inputs = [x.name, graph.weight(f"{layer.name}/kernel", layer.params["kernel"])]
    if layer.use_bias:
        inputs.append(graph.weight(f"{layer.name}/bias", layer.params["bias"]))
    z = graph.node("Gemm", inputs, f"{layer.name}/Gemm")  # (N, in) @ (in, units) + (units,)
    return activation(graph, layer, Tensor(z, (layer.units,)))


def _window(layer) -> dict:
    """Kernel, strides and explicit pads of a ``Window2D`` layer, as ONNX attributes."""
    top, bottom, left, right = layer.pads
    return {"kernel_shape": list(layer.window_size), "strides": list(layer.strides),
            "pads": [top, left, bottom, right]}  # ONNX: the starts of H and W, then their ends


def _conv2d(graph: Graph, layer: Conv2D, x: Tensor) -> Tensor:
    x = to_channels_first(graph, x, layer.name)
    kernel = layer.params["kernel"].transpose(3, 2, 0, 1)  # (KH, KW, C, F) -> (F, C, KH, KW)
    inputs = [x.name, graph.weight(f"{layer.name}/kernel", kernel)]
    if layer.use_bias:
        inputs.append(graph.weight(f"{layer.name}/bias", layer.params["bias"]))
    z = graph.node("Conv", inputs, f"{layer.name}/Conv", **_window(layer))
    return activation(graph, layer, Tensor(z, layer.compute_output_shape(x.shape), True))


def _max_pooling2d(graph: Graph, layer: MaxPooling2D, x: Tensor) -> Tensor:
    x = to_channels_first(graph, x, layer.name)
    y = graph.node("MaxPool", [x.name], f"{layer.name}/MaxPool", **_window(layer))
    return Tensor(y, layer.compute_output_shape(x.shape), True)


def _average_pooling2d(graph: Graph, layer: AveragePooling2D, x: Tensor) -> Tensor:
    x = to_channels_first(graph, x, layer.name)
    y = graph.node("AveragePool", [x.name], f"{layer.name}/AveragePool", count_include_pad=0,
                   **_window(layer))
    return Tensor(y, layer.compute_output_shape(x.shape), True)


def _global_average_pooling2d(graph: Graph, layer: GlobalAveragePooling2D, x: Tensor) -> Tensor:
    x = to_channels_first(graph, x, layer.name)
    y = graph.node("GlobalAveragePool", [x.name], f"{layer.name}/GlobalAveragePool")
    shape = layer.compute_output_shape(x.shape)
    if layer.keepdims:
        return Tensor(y, shape, True)  # (N, C, 1, 1): tinynn's (N, 1, 1, C) channels first
    return Tensor(graph.node("Flatten", [y], f"{layer.name}/Flatten", axis=1), shape)


def _batch_normalization(graph: Graph, layer: BatchNormalization, x: Tensor) -> Tensor:
    mean, variance = layer.state["moving_mean"], layer.state["moving_variance"]
    inv_std = 1 / np.sqrt(variance + variance.dtype.type(layer.epsilon))
    scale = inv_std * layer.params["gamma"] if layer.scale else inv_std
    shift = -mean * scale
    if layer.center:
        shift += layer.params["beta"]
    axis = layer.channel_axis  # on (N, *shape), channels last
    if x.channels_first:
        axis = {1: 2, 2: 3, 3: 1}[axis]  # H, W, C of NHWC -> their axes in NCHW
    shape = [1] * len(x.shape)
    shape[axis - 1] = len(scale)  # broadcasts over (N, ...) along ``axis``
    scaled = graph.node("Mul", [x.name, graph.weight(f"{layer.name}/scale",
                                                     scale.reshape(shape))], f"{layer.name}/Mul")
    shifted = graph.node("Add", [scaled, graph.weight(f"{layer.name}/shift",
                                                      shift.reshape(shape))], f"{layer.name}/Add")
    return x._replace(name=shifted)


def _flatten(graph: Graph, layer: Flatten, x: Tensor) -> Tensor:
    x = to_channels_last(graph, x, layer.name)
    y = graph.node("Flatten", [x.name], f"{layer.name}/Flatten", axis=1)  # (N, ...) -> (N, -1)
    return Tensor(y, layer.compute_output_shape(x.shape))


def _activation_layer(graph: Graph, layer: Activation, x: Tensor) -> Tensor:
    return activation(graph, layer, x)


def _reshape(graph: Graph, layer: Reshape, x: Tensor) -> Tensor:
    x = to_channels_last(graph, x, layer.name)
    shape = graph.ints(f"{layer.name}/shape", [0, *layer.target_shape])  # 0: keep the batch
    y = graph.node("Reshape", [x.name, shape], f"{layer.name}/Reshape")
    return Tensor(y, layer.compute_output_shape(x.shape))


def _zero_padding2d(graph: Graph, layer: ZeroPadding2D, x: Tensor) -> Tensor:
    (top, bottom), (left, right) = layer.padding
    pads = ([0, 0, top, left, 0, 0, bottom, right] if x.channels_first  # N C H W starts, ends
            else [0, top, left, 0, 0, bottom, right, 0])                # N H W C
    y = graph.node("Pad", [x.name, graph.ints(f"{layer.name}/pads", pads)],
                   f"{layer.name}/Pad")
    return x._replace(name=y, shape=layer.compute_output_shape(x.shape))


def _one_layout(graph: Graph, xs: list[Tensor], prefix: str) -> list[Tensor]:
    """The inputs of a merge in one layout: channels first if any image among them is."""
    to = to_channels_first if any(x.channels_first for x in xs) else to_channels_last
    return [to(graph, x, f"{prefix}/input_{i}") for i, x in enumerate(xs)]


def _variadic(op_type: str):
    """Add (Sum), Average (Mean), Maximum (Max), Minimum (Min): one n-ary ONNX operator."""
    def export(graph: Graph, layer, xs: list[Tensor]) -> Tensor:
        xs = _one_layout(graph, xs, layer.name)
        y = graph.node(op_type, [x.name for x in xs], f"{layer.name}/{op_type}")
        return xs[0]._replace(name=y)
    return export


def _pairwise(op_type: str):
    """Subtract (Sub), Multiply (Mul, folded left over the inputs)."""
    def export(graph: Graph, layer, xs: list[Tensor]) -> Tensor:
        xs = _one_layout(graph, xs, layer.name)
        name = xs[0].name
        for x in xs[1:]:
            name = graph.node(op_type, [name, x.name], f"{layer.name}/{op_type}")
        return xs[0]._replace(name=name)
    return export


def _concatenate(graph: Graph, layer: Concatenate, xs: list[Tensor]) -> Tensor:
    xs = [to_channels_last(graph, x, f"{layer.name}/input_{i}") for i, x in enumerate(xs)]
    axis = 1 + layer._sample_axis(len(xs[0].shape))  # on (N, *shape)
    y = graph.node("Concat", [x.name for x in xs], f"{layer.name}/Concat", axis=axis)
    return Tensor(y, layer.compute_output_shape([x.shape for x in xs]))


LAYERS = {
    InputLayer: _pass_through,
    Dropout: _pass_through,
    RandomFlip: _pass_through,  # the random augmentations are the identity in inference
    RandomBrightness: _pass_through,
    RandomContrast: _pass_through,
    RandomTranslation: _pass_through,
    RandomRotation: _pass_through,
    RandomZoom: _pass_through,
    RandomCrop: _random_crop,
    Rescaling: _rescaling,
    Dense: _dense,
    Conv2D: _conv2d,
    MaxPooling2D: _max_pooling2d,
    AveragePooling2D: _average_pooling2d,
    GlobalAveragePooling2D: _global_average_pooling2d,
    BatchNormalization: _batch_normalization,
    Flatten: _flatten,
    Activation: _activation_layer,
    Reshape: _reshape,
    ZeroPadding2D: _zero_padding2d,
    Add: _variadic("Sum"),
    Average: _variadic("Mean"),
    Maximum: _variadic("Max"),
    Minimum: _variadic("Min"),
    Subtract: _pairwise("Sub"),
    Multiply: _pairwise("Mul"),
    Concatenate: _concatenate,
}


def check_exportable(layers: list) -> None:
    """ArgumentError naming the first layer, or layer activation, without an exporter."""
    for layer in layers:
        if type(layer) not in LAYERS:
            raise ArgumentError(
                f"cannot export layer {layer.name!r} of class {type(layer).__name__} to ONNX: "
                f"tinynn has ONNX exporters for {sorted(cls.__name__ for cls in LAYERS)} only "
                "(any other class, a subclass too, needs its own in tinynn/saving/onnx/layers.py)")
        kind = type(getattr(layer, "activation", None))
        if hasattr(layer, "activation") and kind not in ACTIVATIONS:
            raise ArgumentError(
                f"cannot export layer {layer.name!r} ({type(layer).__name__}) to ONNX: its "
                f"activation {kind.__name__} has no ONNX exporter; exportable activations: "
                f"{sorted({cls.name for cls in ACTIVATIONS})} (tinynn.activations)")
