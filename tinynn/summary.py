"""``model.summary()`` text, exactly as tf.keras 2.9+ prints it (line length 65).

Columns end at 45 %, 85 % and 100 % of the line; a field too long for its column is wrapped onto
further lines (Keras cuts at the column width minus two spaces), and rows are separated by a
blank line. Every line is padded to the full line length, as Keras pads it.
"""

LINE_LENGTH = 65
_POSITIONS = tuple(int(LINE_LENGTH * p) for p in (0.45, 0.85, 1.0))  # (29, 55, 65)


def format_row(fields: list[str]) -> list[str]:
    """Lay out one table row over as many lines as its longest field needs."""
    left = [str(f) for f in fields]
    lines = []
    while any(left):
        line = ""
        for col, end in enumerate(_POSITIONS):
            start = _POSITIONS[col - 1] if col else 0
            space = 2 if col != len(_POSITIONS) - 1 else 0
            cutoff = end - start - space
            piece = left[col][:cutoff]
            if col == 0:
                line += " "
            line += piece + " " * space
            left[col] = left[col][cutoff:]
            line += " " * (end - len(line))
        lines.append(line)
    return lines


def summary_lines(model) -> list[str]:
    """The summary of a built Sequential model as a list of lines."""
    lines = [f'Model: "{model.name}"', "_" * LINE_LENGTH]
    lines += format_row(["Layer (type)", "Output Shape", "Param #"])
    lines.append("=" * LINE_LENGTH)
    shape = model.input_shape
    for i, layer in enumerate(model.layers):
        shape = layer.compute_output_shape(shape)
        lines += format_row([f"{layer.name} ({type(layer).__name__})",
                             str((None, *shape)), str(layer.count_params())])
        lines.append("=" * LINE_LENGTH if i == len(model.layers) - 1 else "")
    total = model.count_params()
    trainable = sum(p.size for layer in model.layers for p in layer.params.values())
    lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", "_" * LINE_LENGTH]
    return lines
