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
