"""``plot_model``: a model's graph drawn as Keras's ``keras.utils.plot_model`` draws it.

``model_to_dot`` writes the graph in Graphviz's DOT language (one box per layer, labelled
"name (Class)" and, with ``show_shapes``, its input and output shapes; one arrow per input of
every call, so a shared layer has several). ``plot_model`` renders it with Graphviz's ``dot``
program to PNG, SVG, PDF or JPEG (by the file's extension), or writes the DOT text for a
``.dot`` file; Keras returns a pydot object from ``model_to_dot``, tinynn the DOT text.
``expand_nested`` draws each model called as a layer as a dashed cluster of its layers.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import ArgumentError, MissingDependencyError
from ..registry import MODEL_CLASSES
from ..saving.atomic import atomic_write
from ..validation import choice

FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "dot")


def model_to_dot(model, show_shapes: bool = False, show_dtype: bool = False,
                 show_layer_names: bool = True, rankdir: str = "TB", dpi: int = 200,
                 show_layer_activations: bool = False, show_trainable: bool = False,
                 expand_nested: bool = False) -> str:
    """The DOT source of ``model``'s graph (built first if needed). With ``expand_nested``, a
    model called as a layer is drawn as a cluster of its own layers, arrows going into its
    input layers and out of its output layer."""
    choice(rankdir, "plot_model rankdir", ("TB", "LR"))
    model.require_built("plot_model")
    lines = [f'digraph "{_escape(model.name)}" {{', f"  graph [rankdir={rankdir}, dpi={dpi}];",
             '  node [shape=record, fontname="Helvetica"];']
    label = _labeller(show_shapes, show_dtype, show_layer_names, show_layer_activations,
                      show_trainable)
    _draw(model, "n", label, expand_nested, lines, "  ")
    return "\n".join([*lines, "}"]) + "\n"


def _labeller(show_shapes, show_dtype, show_layer_names, show_layer_activations,
              show_trainable):
    """``label(layer, nodes)``: a layer's record label from its calls ``nodes``."""
    def label(layer, nodes) -> str:
        title = [f"{layer.name} ({type(layer).__name__})" if show_layer_names
                 else type(layer).__name__]
        if show_layer_activations and hasattr(layer, "activation"):
            title.append(f"activation: {layer.activation.name}")
        if show_trainable:
            title.append(f"trainable: {'yes' if layer.params else 'no'}")
        fields = ["\\n".join(map(_escape, title))]
        if show_shapes and nodes:
            inputs = ", ".join(str(t.shape) for t in nodes[0].inputs) or str(nodes[0].output.shape)
            fields.append(f"{{input: {_escape(inputs)}|output: "
                          f"{_escape(str(nodes[0].output.shape))}}}")
        if show_dtype and nodes:
            fields.append(f"dtype: {nodes[0].output.dtype}")
        return "{" + "|".join(fields) + "}" if len(fields) > 1 else fields[0]
    return label


def _draw(model, prefix: str, label, expand_nested: bool, lines: list, indent: str) -> dict:
    """Append ``model``'s boxes and arrows to ``lines`` (box names start with ``prefix``).
    Returns, by ``id(layer)``, ``(boxes taking each input, box giving the output)``."""
    producers: dict = {}
    for node in [t.node for t in model.inputs] + model.nodes:
        producers.setdefault(id(node.layer), []).append(node)
    ports = {}
    for i, layer in enumerate(model.layers):
        box = f"{prefix}{i}"
        if expand_nested and isinstance(layer, MODEL_CLASSES["Functional"]):
            lines += [f"{indent}subgraph cluster_{box} {{",
                      f'{indent}  label="{_escape(layer.name)} ({type(layer).__name__})"; '
                      "style=dashed;"]
            inner = _draw(layer, f"{box}_", label, expand_nested, lines, indent + "  ")
            lines.append(f"{indent}}}")
            entries = [inner[id(t.history[0])][1] if id(t.history[0]) in inner
                       else inner[id(layer.nodes[0].layer)][0][0] for t in layer.inputs]
            ports[id(layer)] = (entries, inner[id(layer.outputs[0].history[0])][1])
        else:
            lines.append(f'{indent}{box} [label="{label(layer, producers.get(id(layer), []))}"];')
            ports[id(layer)] = ([box], box)
    for node in model.nodes:
        for position, tensor in enumerate(node.inputs):
            source = tensor.history[0]
            if id(source) not in ports:
                continue  # a Sequential lists, hence draws, no input layer, as Keras
            entries = ports[id(node.layer)][0]
            lines.append(f"{indent}{ports[id(source)][1]} -> "
                         f"{entries[min(position, len(entries) - 1)]};")
    return ports


def plot_model(model, to_file: str = "model.png", show_shapes: bool = False,
               show_dtype: bool = False, show_layer_names: bool = True, rankdir: str = "TB",
               expand_nested: bool = False, dpi: int = 200, show_layer_activations: bool = False,
               show_trainable: bool = False) -> Path:
    """Draw ``model`` to ``to_file`` (``.png``, ``.svg``, ``.pdf``, ``.jpg`` through Graphviz's
    ``dot``; ``.dot``: the DOT text), atomically. Returns the path. MissingDependencyError,
    naming Graphviz, when ``dot`` is needed and not installed; nothing is written then."""
    path = Path(to_file)
    extension = path.suffix.lstrip(".").lower()
    if extension not in FORMATS:
        raise ArgumentError(f"plot_model to_file expected one of the extensions {FORMATS}, "
                            f"got {str(path)!r}")
    source = model_to_dot(model, show_shapes, show_dtype, show_layer_names, rankdir, dpi,
                          show_layer_activations, show_trainable, expand_nested)
    data = source.encode() if extension == "dot" else _render(source, extension)
    with atomic_write(path) as file:
        file.write(data)
    return path


def _render(source: str, extension: str) -> bytes:
    dot = shutil.which("dot")
    if dot is None:
        raise MissingDependencyError(
            "plot_model needs Graphviz's dot program, which is not installed: apt-get install "
            "graphviz (Debian, Ubuntu), brew install graphviz (macOS), or https://graphviz.org; "
            "or save to a .dot file, which needs nothing")
    kind = "jpeg" if extension == "jpg" else extension
    result = subprocess.run([dot, f"-T{kind}"], input=source.encode(), capture_output=True,
                            timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"Graphviz's dot failed to draw the model: "
                           f"{result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def _escape(text: str) -> str:
    """Text for a record label: Graphviz's special characters escaped."""
    for special in ("\\", '"', "{", "}", "|", "<", ">"):
        text = text.replace(special, "\\" + special)
    return text
