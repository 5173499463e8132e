"""summary(): the Keras 2 golden text (docs/keras-parity.md, "summary()")."""

import tinynn as tn
from tinynn.summary import LINE_LENGTH, format_row

GOLDEN_MLP = '''\
Model: "sequential"
_________________________________________________________________
 Layer (type)                Output Shape              Param #
=================================================================
 flatten (Flatten)           (None, 784)               0

 dense (Dense)               (None, 128)               100480

 dense_1 (Dense)             (None, 10)                1290
=================================================================
Total params: 101,770
Trainable params: 101,770
Non-trainable params: 0
_________________________________________________________________'''


def mlp(hidden: int) -> tn.Sequential:
    layers = [tn.layers.Flatten(input_shape=(28, 28))]
    layers += [tn.layers.Dense(128, activation="relu") for _ in range(hidden)]
    layers += [tn.layers.Dense(10, activation="softmax")]
    return tn.Sequential(layers, seed=0)


def summary_text(model) -> list[str]:
    lines = []
    model.summary(print_fn=lines.append)
    return lines


def test_summary_matches_keras_golden_text_for_task2_mlp():
    lines = summary_text(mlp(1))
    assert [line.rstrip() for line in lines] == GOLDEN_MLP.splitlines()


def test_summary_pads_table_lines_to_65_columns_like_keras():
    lines = summary_text(mlp(1))
    table = lines[2:-4]
    assert all(len(line) == LINE_LENGTH for line in table if line)


def test_summary_row_wraps_long_names_as_keras():
    # The two wrapped rows of the reports' CNN summary (docs/keras-parity.md, "summary()").
    assert [r.rstrip() for r in format_row(["max_pooling2d (MaxPooling2D)",
                                            "(None, 14, 14, 32)", "0"])] == [
        " max_pooling2d (MaxPooling2D  (None, 14, 14, 32)       0", " )"]
    assert [r.rstrip() for r in format_row(["max_pooling2d_1 (MaxPooling2D)",
                                            "(None, 7, 7, 64)", "0"])] == [
        " max_pooling2d_1 (MaxPooling  (None, 7, 7, 64)         0", " 2D)"]


def test_summary_total_params_of_the_reports_mlps():
    assert [mlp(k).count_params() for k in (1, 4, 10)] == [101_770, 151_306, 250_378]


def test_summary_names_layers_per_model_from_zero():
    first, second = mlp(1), mlp(1)
    assert [layer.name for layer in second.layers] == ["flatten", "dense", "dense_1"]
    assert [layer.name for layer in first.layers] == [layer.name for layer in second.layers]


# -- graphs ---------------------------------------------------------------------------------------
def two_inputs(lib):
    """Two inputs, a Dense layer called twice (shared), a concatenation: in tinynn or Keras."""
    L = lib.layers
    image, side = lib.Input((8, 8, 2), name="image"), lib.Input((5,), name="side")
    shared = L.Dense(5, name="dense")
    x = L.Flatten(name="flatten")(L.Conv2D(4, 3, padding="same", name="conv2d")(image))
    x = L.Concatenate(name="concatenate")([x, shared(shared(side))])
    return lib.Model([image, side], L.Dense(3, name="dense_1")(x), name="two_inputs")


def test_graph_summary_has_keras_2s_connected_to_column():
    lines = [line.rstrip() for line in summary_text(two_inputs(tn))]
    assert lines == GOLDEN_GRAPH.splitlines()


def test_a_functional_chain_keeps_three_columns_and_lists_its_input_layer():
    x = tn.Input((4,), name="features")
    model = tn.Model(x, tn.layers.Dense(2, name="out")(x), name="chain")
    lines = [line.rstrip() for line in summary_text(model)]
    assert lines[2] == " Layer (type)                Output Shape              Param #"
    assert lines[4] == " features (InputLayer)       [(None, 4)]               0"
    assert lines[6] == " out (Dense)                 (None, 2)                 10"


def keras3_table(keras, model) -> list[tuple]:
    """The rows of Keras 3's rich summary table: (name (type), shape, params, inputs)."""
    text = []
    model.summary(print_fn=lambda line, line_break=True: text.append(line))
    rows, cells = [], None
    for line in "".join(text).splitlines():
        if line.startswith("│"):
            parts = [part.strip() for part in line.strip("│").split("│")]
            cells = parts if cells is None else [f"{a} {b}".strip() for a, b in zip(cells, parts)]
        elif line[:1] in ("├", "└") and cells is not None:
            name, shape, params, inbound = cells
            rows.append((name, shape, int(params.replace(",", "")),
                         [] if inbound == "-" else inbound.replace(", ", ",").split(",")))
            cells = None
    return rows


def test_graph_summary_rows_are_keras_3s(keras, monkeypatch):
    """Keras 3 prints a rich table, tinynn tf.keras 2's text: their cells must agree (names,
    types, order, shapes, parameters and inputs); only the InputLayer's shape is written
    differently ([(None, ...)] in tf.keras 2)."""
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that rich wraps no cell
    model = two_inputs(tn)
    model.build()
    ours = [(name, shape, params, inbound) for name, shape, params, inbound
            in tn.summary.layer_table(model)]
    assert ours == keras3_table(keras, two_inputs(keras))


GOLDEN_GRAPH = '''\
Model: "two_inputs"
__________________________________________________________________________________________________
 Layer (type)                   Output Shape         Param #     Connected to
==================================================================================================
 image (InputLayer)             [(None, 8, 8, 2)]    0           []

 side (InputLayer)              [(None, 5)]          0           []

 conv2d (Conv2D)                (None, 8, 8, 4)      76          ['image[0][0]']

 dense (Dense)                  (None, 5)            30          ['side[0][0]',
                                                                  'dense[0][0]']

 flatten (Flatten)              (None, 256)          0           ['conv2d[0][0]']

 concatenate (Concatenate)      (None, 261)          0           ['flatten[0][0]',
                                                                  'dense[1][0]']

 dense_1 (Dense)                (None, 3)            786         ['concatenate[0][0]']
==================================================================================================
Total params: 892
Trainable params: 892
Non-trainable params: 0
__________________________________________________________________________________________________'''
