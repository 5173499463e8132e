"""Export to ONNX: ``model.export("model.onnx", format="onnx")``, Keras 3's name and signature,
written with the ``onnx`` package alone (``pip install "tinynn[onnx]"``; no TensorFlow, no
tf2onnx). ONNX Runtime (servers, phones, browsers), OpenVINO and other runtimes read the file.

The file:

- One input ``"input"``, float32 (batch, *input_shape): images NHWC as tinynn takes them, e.g.
  (batch, 28, 28, 1), scaled as for training. One output ``"output"``, float32 (batch,
  *output_shape), e.g. (batch, 10) probabilities. The batch dimension is symbolic
  (``"batch"``), unless ``input_signature`` fixes it.
- Inference semantics: Dropout is left out; BatchNormalization applies its moving statistics.
- Default-domain opset 17 (``DEFAULT_OPSET``), which ONNX Runtime has run since 1.12, in the
  oldest IR version that carries it (8). ``opset_version`` (Keras's keyword) picks another from
  13 to 21; 21 is the newest that ONNX Runtime 1.18, the oldest the ``onnx`` extra allows, runs.
  The nodes are the same at every opset of that range.
- Weights are float32 initializers. A float64 model is exported in float32: each weight (and
  each BatchNormalization constant, computed in float64) is rounded once to float32, and the
  graph computes in float32, as Keras requires of models it exports to ONNX.

``onnx.checker.check_model(full_check=True)`` runs before anything is written, then the file is
written atomically (``atomic.atomic_write``): an error leaves an existing file untouched. What
each layer and activation becomes is described in ``layers.py``.
"""

from __future__ import annotations

import os
from numbers import Integral
from pathlib import Path

import numpy as np

from ...errors import ArgumentError, CheckpointError, MissingDependencyError, ShapeError
from ...registry import MODEL_CLASSES
from ..atomic import atomic_write
from ..checks import check_destination
from .graph import BATCH_DIM, INPUT_NAME, OUTPUT_NAME, Graph, Tensor, to_model_proto
from .layers import LAYERS, check_exportable, to_channels_last

DEFAULT_OPSET = 17
OPSETS = range(13, 22)
#: Keras 3's other export formats, and what to do instead.
OTHER_FORMATS = {
    "tf_saved_model": "tinynn writes no TensorFlow artifacts: save a .keras file "
                      "(model.save('model.keras')) and export it from Keras",
    "openvino": "OpenVINO reads ONNX files directly: export with format='onnx', then "
                "openvino.Core().read_model('model.onnx')",
    "litert": "tinynn writes no LiteRT artifacts: save a .keras file "
              "(model.save('model.keras')) and export it from Keras",
    "torch": "tinynn writes no PyTorch artifacts: export with format='onnx', which PyTorch's "
             "onnx tools read, or save a .keras file and export it from Keras",
}
_MAX_PROTO_BYTES = 2**31 - 1  # protobuf's limit for one message; tinynn writes no external data


def export(model, filepath, format: str = "onnx", verbose: bool | None = None,
           input_signature=None, **kwargs) -> None:
    """``Sequential.export``: write ``model`` to ``filepath`` as an ONNX file, atomically.

    ``format``: "onnx" (the only format tinynn writes, hence the default; Keras's default is
    "tf_saved_model"). ``verbose``: print what was written (None means True, as Keras).
    ``input_signature``: None (the model's input, dynamic batch) or a shape with the batch
    axis, e.g. ``(None, 28, 28, 1)`` or ``(1, 28, 28, 1)`` for a fixed batch, or an object with
    ``.shape`` (and optionally ``.dtype``, float32) such as ``keras.InputSpec``, alone or in a
    one-element list. ``opset_version`` (keyword): 13 to 21, default 17.

    Raises ArgumentError for another format, opset or an unexportable layer or activation
    (named), TypeError for other keywords or a path that is not one, IsADirectoryError and
    FileNotFoundError for a directory or a missing parent directory, ShapeError for an input
    signature the model cannot take, CheckpointError for non-finite weights,
    NotCompiledError for a model without an input shape, MissingDependencyError without onnx.
    Nothing is written when any is raised.
    """
    _check_format(format)
    opset = _opset(kwargs.pop("opset_version", None))
    if kwargs:
        raise TypeError(f"export() got unexpected keyword arguments {sorted(kwargs)}: "
                        "format='onnx' takes verbose, input_signature and opset_version")
    path = _destination(filepath)
    onnx = import_onnx()
    check_exportable(model.leaf_layers)
    batch = _batch_from_signature(model, input_signature)
    graph = build_graph(model)
    proto = to_model_proto(onnx, graph, opset, model.name, *_signature(model, batch))
    _check(onnx, proto, graph, model, path)
    with atomic_write(path) as file:
        file.write(proto.SerializeToString())
    if verbose is None or verbose:
        weights = sum(array.size for array in graph.weights.values())
        dtype = next(iter(model.named_weights().values()), np.zeros(0, np.float32)).dtype
        rounded = "" if dtype == np.float32 else f" (rounded from the model's {dtype})"
        print(f"Saved artifact at '{path}'.")
        print(f"ONNX opset {opset} (IR version {proto.ir_version}), {len(graph.nodes)} nodes, "
              f"{weights:,} float32 weights{rounded}; {_signature(model, batch)[2]}.")


def _check(onnx, proto, graph: Graph, model, path: Path) -> None:
    """Refuse non-finite float32 weights, a file over protobuf's 2 GB and, as a tinynn bug, a
    graph that ``onnx.checker`` (full check, with strict shape inference) refuses."""
    for key, array in graph.weights.items():
        if not np.isfinite(array).all():
            raise CheckpointError(f"cannot export {str(path)!r}: {key} holds NaN or infinity "
                                  "in float32; export a model whose weights are finite")
    if proto.ByteSize() > _MAX_PROTO_BYTES:
        raise ArgumentError(f"cannot export {str(path)!r}: the model takes {proto.ByteSize():,} "
                            "bytes, over the 2 GB protobuf limit of one ONNX file")
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise RuntimeError(f"the ONNX graph of model {model.name!r} fails onnx.checker "
                           f"(a tinynn bug: please report it); nothing was written: {error}"
                           ) from error


def import_onnx():
    """The ``onnx`` module, or MissingDependencyError saying how to install it."""
    try:
        import onnx
    except ImportError as error:
        raise MissingDependencyError(
            "exporting to ONNX needs the onnx package, which is not installed: "
            'pip install "tinynn[onnx]"') from error
    return onnx


def input_names(model) -> list[str]:
    """The ONNX graph's input names: ``"input"`` for one input, else the inputs' names."""
    return [INPUT_NAME] if len(model.inputs) == 1 else [t.name for t in model.inputs]


def build_graph(model) -> Graph:
    """The graph of a built ``model`` whose layers ``check_exportable`` accepts: its calls in
    order, each through its layer's exporter; a model called as a layer is inlined, its
    calls in place of its call (once per call: a nested model called twice is two copies)."""
    names = input_names(model)
    graph = Graph(tuple(names))
    inputs = [Tensor(name, t.sample_shape) for t, name in zip(model.inputs, names)]
    graph.finish(to_channels_last(graph, _calls(graph, model, inputs), "output"))
    return graph


def _calls(graph: Graph, model, inputs: list) -> Tensor:
    """Add ``model``'s calls on ``inputs`` (one Tensor per model input); returns its output."""
    values = {id(t): tensor for t, tensor in zip(model.inputs, inputs)}
    for node in model.nodes:
        layer, args = node.layer, [values[id(t)] for t in node.inputs]
        if isinstance(layer, MODEL_CLASSES["Functional"]):
            values[id(node.output)] = _calls(graph, layer, args)
        else:
            values[id(node.output)] = LAYERS[type(layer)](graph, layer,
                                                          args if layer.takes_list else args[0])
    return values[id(model.outputs[0])]


def model_proto(model, opset: int = DEFAULT_OPSET, batch: int | None = None):
    """The ``onnx.ModelProto`` of a built, exportable ``model`` (what ``export`` writes, before
    its checks); ``batch`` fixes the batch dimension (None: symbolic ``"batch"``)."""
    check_exportable(model.leaf_layers)
    return to_model_proto(import_onnx(), build_graph(model), opset, model.name,
                          *_signature(model, batch))


def _signature(model, batch: int | None) -> tuple[list, list, str]:
    """Input dims, output dims and their description, e.g. "input 'input' float32
    (batch, 28, 28, 1), output 'output' float32 (batch, 10)"."""
    dim = BATCH_DIM if batch is None else batch
    inputs = [[dim, *t.sample_shape] for t in model.inputs]
    output = [dim, *model.output_shape]
    text = ", ".join(f"{kind} {name!r} float32 ({', '.join(map(str, shape))})"
                     for kind, name, shape in zip(
                         ["input"] * len(inputs) + ["output"],
                         [*input_names(model), OUTPUT_NAME], [*inputs, output]))
    return inputs, output, text


def _check_format(format) -> None:
    if format == "onnx":
        return
    hint = OTHER_FORMATS.get(format, "Keras's other formats are " + ", ".join(OTHER_FORMATS))
    raise ArgumentError(f"Unrecognized format={format!r}: tinynn exports format='onnx' only; "
                        f"{hint}")


def _opset(opset_version) -> int:
    if opset_version is None:
        return DEFAULT_OPSET
    if (isinstance(opset_version, bool) or not isinstance(opset_version, Integral)
            or opset_version not in OPSETS):
        raise ArgumentError(f"export opset_version expected an int from {OPSETS.start} to "
                            f"{OPSETS.stop - 1} (default {DEFAULT_OPSET}), got {opset_version!r}")
    return int(opset_version)


def _destination(filepath) -> Path:
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"export expected a file path (str or os.PathLike), got "
                        f"{type(filepath).__name__}")
    path = Path(filepath)
    check_destination(path, overwrite=True)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot export to {str(path)!r}: the directory "
                                f"{str(path.parent)!r} does not exist")
    return path


def _batch_from_signature(model, input_signature) -> int | None:
    """Check ``input_signature`` against the model (building it if needed, from the signature
    or its declared input, as ``predict`` would); returns the fixed batch size or None."""
    if input_signature is None:
        model.require_built("export")
        return None
    if len(model.inputs) > 1:
        raise ArgumentError(f"export input_signature is for models of one input; model "
                            f"{model.name!r} has {len(model.inputs)}: export without it")
    spec = input_signature
    if isinstance(spec, (list, tuple)) and len(spec) == 1 and hasattr(spec[0], "shape"):
        spec = spec[0]
    dtype = getattr(spec, "dtype", None)
    if dtype is not None and getattr(dtype, "name", dtype) != "float32":
        raise ArgumentError(f"export input_signature expected dtype float32 (the ONNX graph "
                            f"takes float32 input), got {dtype!r}")
    try:
        dims = tuple(getattr(spec, "shape", spec))
    except TypeError:
        dims = ()
    batch, shape = (dims[0], dims[1:]) if dims else (None, ())
    if (len(dims) < 2 or not all(_positive_int(d) for d in shape)
            or not (batch is None or _positive_int(batch))):
        raise ArgumentError("export input_signature expected a shape with the batch axis, "
                            f"e.g. (None, 28, 28, 1), got {input_signature!r}")
    shape = tuple(int(d) for d in shape)
    expected = model.input_shape
    if expected is not None and shape != expected:
        raise ShapeError(f"export input_signature {dims} does not match model {model.name!r}, "
                         f"which takes (None, {', '.join(map(str, expected))})")
    if not model.built:
        model.build((None, *shape))
    return None if batch is None else int(batch)


def _positive_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and value > 0
