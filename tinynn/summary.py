"""``model.summary()`` text, as tf.keras 2.9 to 2.12 print it.

Columns end at fixed positions (45 %, 85 % and 100 % of a 65-character line; for a graph that
is not a chain, 33 %, 55 %, 67 % and 100 % of 98 characters, with a fourth column, "Connected
to"); a field too long for its column is wrapped onto further lines (Keras cuts at the column
width minus two spaces, or just after a "),", "},", "]," or "'," that fits), and rows are
separated by a blank line. Every line is padded to the full line length, as Keras pads it.
"""

from __future__ import annotations

LINE_LENGTH = 65
_POSITIONS = tuple(int(LINE_LENGTH * p) for p in (0.45, 0.85, 1.0))  # (29, 55, 65)
GRAPH_LINE_LENGTH = 98
_GRAPH_POSITIONS = tuple(int(GRAPH_LINE_LENGTH * p) for p in (0.33, 0.55, 0.67, 1.0))
_BREAKS = ("),", "},", "],", "',")


def format_row(fields: list[str], positions: tuple = _POSITIONS) -> list[str]:
    """Lay out one table row over as many lines as its longest field needs."""
    left = [str(f) for f in fields]
    lines = []
    while any(left):
        line = ""
        for col, end in enumerate(positions):
            start = positions[col - 1] if col else 0
            space = 2 if col != len(positions) - 1 else 0
            cutoff = end - start - space
            piece = left[col][:cutoff]
            breaks = [piece.find(mark) + len(mark) for mark in _BREAKS if piece.find(mark) >= 0]
            if breaks:
                cutoff = min(breaks)
                piece = piece[:cutoff]
            if col == 0:
                line += " "
            line += piece + " " * space
            left[col] = left[col][cutoff:]
            line += " " * (end - len(line))
        lines.append(line)
    return lines


def summary_lines(model) -> list[str]:
    """The summary of a built model as a list of lines."""
    chain = _is_chain(model)
    length, positions = ((LINE_LENGTH, _POSITIONS) if chain
                         else (GRAPH_LINE_LENGTH, _GRAPH_POSITIONS))
    header = ["Layer (type)", "Output Shape", "Param #"] + ([] if chain else ["Connected to"])
    lines = [f'Model: "{model.name}"', "_" * length, *format_row(header, positions),
             "=" * length]
    rows = _rows(model, chain)
    for i, row in enumerate(rows):
        lines += format_row(row, positions)
        lines.append("=" * length if i == len(rows) - 1 else "")
    total = model.count_params()
    trainable = sum(p.size for layer in model.layers for p in layer.params.values())
    lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", "_" * length]
    return lines


def _is_chain(model) -> bool:
    """Keras's "sequential-like": one input, every call on one tensor that nothing else reads,
    and no layer called twice."""
    if not model.nodes:  # a Sequential not yet built never gets here (summary builds it)
        return True
    consumed = [id(t) for node in model.nodes for t in node.inputs]
    layers = [node.layer for node in model.nodes]
    return (len(model.inputs) == 1 and all(len(node.inputs) == 1 for node in model.nodes)
            and len(consumed) == len(set(consumed)) and len(layers) == len(set(layers)))


def _rows(model, chain: bool) -> list[list]:
    """The table rows: name (type), output shape (an InputLayer's as tf.keras 2 lists it, in
    brackets), parameters and, for a graph, the calls' inputs."""
    rows = []
    for name, shape, params, inbound in layer_table(model):
        if shape.startswith("(") and name.endswith("(InputLayer)"):
            shape = f"[{shape}]"
        rows.append([name, shape, str(params)] + ([] if chain else [str(inbound)]))
    return rows


def layer_table(model) -> list[tuple[str, str, int, list[str]]]:
    """Per layer of ``model.layers``: ``"name (Type)"``, the output shape (``"multiple"`` for a
    layer whose calls give different shapes), the parameter count, and the inputs of its calls
    in this model as ``"layer[node][tensor]"`` (node indices count calls within the model)."""
    from .saving.serialization import node_indices

    index = node_indices(model)
    calls: dict = {layer.name: [] for layer in model.layers}
    for node in [t.node for t in model.inputs] + model.nodes:
        if node.layer.name in calls:  # a Sequential lists no InputLayer
            calls[node.layer.name].append(node)
    table = []
    for layer in model.layers:
        nodes = calls[layer.name]
        shapes = {tuple(node.output.shape) for node in nodes}
        shape = str(next(iter(shapes))) if len(shapes) == 1 else "multiple"
        inbound = [f"{t.history[0].name}[{index[id(t.node)]}][0]"
                   for node in nodes for t in node.inputs]
        table.append((f"{layer.name} ({type(layer).__name__})", shape, layer.count_params(),
                      inbound))
    return table
