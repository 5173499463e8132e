"""The functional API (issue 20, first part): symbolic Input and layer calls, Model over a DAG
(fan-out, a shared layer, several inputs), merge layers, Reshape and ZeroPadding2D: values by
hand, whole-model gradients in float64 against central differences, training through the same
loops as Sequential, and clear errors for bad graphs."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynn as tn
from tinynn.errors import ArgumentError, ShapeError
from tinynn.testing import assert_close, check_layer_gradients, check_model_gradients, floatx

from .helpers import check_layer

L = tn.layers


def test_a_layer_call_on_a_symbolic_tensor_records_a_node_and_on_an_array_runs_eagerly():
    x = tn.Input((4,), name="features")
    dense = L.Dense(3, name="projection")
    y = dense(x)
    assert x.shape == (None, 4) and y.shape == (None, 3) and y.dtype == "float32"
    assert dense.input is x and dense.output is y and len(dense.inbound_nodes) == 1
    eager = L.Dense(2)
    out = eager(np.ones((5, 4)))
    assert out.shape == (5, 2) and out.dtype == np.float32 and eager.built
    assert_close(out, np.ones((5, 4), np.float32) @ eager.params["kernel"] + eager.params["bias"],
                 depth=8)


def test_sequential_accepts_a_symbolic_input_first():
    model = tn.Sequential([tn.Input(shape=(28, 28, 1)), L.Flatten(), L.Dense(3)])
    model.build()
    assert model.input_shape == (28, 28, 1) and model.output_shape == (3,)


@pytest.mark.parametrize("cls, expected", [
    (L.Add, lambda a, b: a + b), (L.Subtract, lambda a, b: a - b),
    (L.Multiply, lambda a, b: a * b), (L.Average, lambda a, b: (a + b) / 2),
    (L.Maximum, np.maximum), (L.Minimum, np.minimum)])
def test_merge_layers_compute_keras_values(cls, expected):
    a, b = np.array([[1.0, -2.0, 3.0]]), np.array([[0.5, 4.0, 3.0]])
    np.testing.assert_array_equal(cls()([a, b]), expected(a, b).astype(np.float32))


def test_maximum_sends_a_tie_to_the_first_input_as_tensorflow():
    layer = L.Maximum()
    layer.build([(2,), (2,)], np.random.default_rng(0))
    layer.forward([np.array([[1.0, 2.0]]), np.array([[1.0, 3.0]])], training=True)
    da, db = layer.backward(np.array([[5.0, 7.0]]))
    np.testing.assert_array_equal(da, [[5.0, 0.0]])
    np.testing.assert_array_equal(db, [[0.0, 7.0]])


def test_concatenate_joins_on_the_axis_and_refuses_the_batch_axis():
    a, b = np.ones((2, 3, 2)), np.zeros((2, 3, 4))
    assert L.Concatenate()([a, b]).shape == (2, 3, 6)
    assert L.Concatenate(axis=1)([a, a]).shape == (2, 6, 2)
    with pytest.raises(ArgumentError, match="non-zero int"):
        L.Concatenate(axis=0)
    with pytest.raises(ShapeError, match=r"equal sizes except on axis -1, got shapes "
                                         r"\(None, 3, 2\), \(None, 4, 4\)"):
        L.concatenate([tn.Input((3, 2)), tn.Input((4, 4))])


def test_add_of_shapes_that_differ_names_both_shapes():
    with pytest.raises(ShapeError, match=r"one shape, got shapes \(None, 3\), \(None, 4\)"):
        L.add([tn.Input((3,)), tn.Input((4,))])


def test_reshape_and_zero_padding_meet_the_layer_contract(rng):
    check_layer(L.Reshape((-1, 2)), (3, 4), rng)
    check_layer(L.ZeroPadding2D(((1, 2), (0, 3))), (3, 4, 2), rng)
    assert L.ZeroPadding2D(2).get_config()["padding"] == [[2, 2], [2, 2]]
    with pytest.raises(ShapeError, match=r"cannot reshape inputs of shape \(3, 4\) \(12 values\)"):
        L.Reshape((5,)).compute_output_shape((3, 4))
    with pytest.raises(ArgumentError, match="at most one -1"):
        L.Reshape((-1, -1))


def residual_model(seed=0):
    """Conv + 1x1 projection shortcut, a Dense layer shared by two calls, a concatenation."""
    x = tn.Input((6, 6, 2), name="image")
    h = L.Conv2D(3, 3, padding="same", activation="relu")(x)
    h = L.add([h, L.Conv2D(3, 1)(x)])
    f = L.Flatten()(L.ZeroPadding2D(1)(h))
    shared = L.Dense(4, activation="tanh")
    a = shared(L.Dense(4)(f))
    b = shared(a)  # the same weights, called twice
    c = L.concatenate([L.maximum([a, b]), L.average([a, b])])
    return tn.Model(x, L.Dense(3, activation="softmax")(c), seed=seed)


def test_graph_gradients_fan_out_shared_layer_and_merges_match_finite_differences():
    with floatx("float64"):
        model = residual_model()
        model.compile("adam", "sparse_categorical_crossentropy")
        rng = np.random.default_rng(0)
        check_model_gradients(model, rng.standard_normal((5, 6, 6, 2)), rng.integers(0, 3, 5))


def test_two_inputs_by_list_or_dict_and_their_gradients():
    with floatx("float64"):
        first, second = tn.Input((3,), name="a"), tn.Input((4,), name="b")
        z = L.concatenate([L.Dense(2)(first), L.Dense(2)(second)])
        out = L.Dense(1)(L.subtract([z, L.multiply([z, z])]))
        model = tn.Model([first, second], out, seed=1)
        model.compile("sgd", "mse")
        rng = np.random.default_rng(2)
        a, b = rng.standard_normal((7, 3)), rng.standard_normal((7, 4))
        t = rng.standard_normal((7, 1))
        check_model_gradients(model, [a, b], t)
        np.testing.assert_array_equal(model.predict([a, b], verbose=0),
                                      model.predict({"b": b, "a": a}, verbose=0))
        with pytest.raises(ArgumentError, match=r"keyed by its input names \['a', 'b'\]"):
            model.predict({"a": a, "c": b}, verbose=0)


def test_a_graph_model_trains_through_the_sequential_loops_and_is_reproducible():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((40, 6, 6, 2)).astype(np.float32), rng.integers(0, 3, 40)
    results = []
    for _ in range(2):
        model = residual_model(seed=5)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
        results.append((history.history, model.get_weights()))
    assert results[0][0]["loss"][-1] < results[0][0]["loss"][0]
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)


def test_bad_graphs_get_clear_errors():
    x, other = tn.Input((3,), name="x"), tn.Input((3,), name="other")
    y = L.Dense(2)(L.add([x, other]))
    with pytest.raises(ArgumentError, match=r"graph disconnected: .* needs input 'other'"):
        tn.Model(x, y)
    with pytest.raises(ArgumentError, match=r"inputs \['unused'\] are not used"):
        tn.Model([x, other, tn.Input((2,), name="unused")], y)
    with pytest.raises(ArgumentError, match="two layers named 'twin'"):
        tn.Model(x, L.Dense(1, name="twin")(L.Dense(1, name="twin")(x)))
    with pytest.raises(ArgumentError, match="a list of tensors"):
        L.Add()(x)
    with pytest.raises(ShapeError):
        L.Conv2D(2, 3)(x)  # images expected, a vector given


def test_a_graph_model_saved_to_npz_loads_and_resumes_bitwise(tmp_path):
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((24, 6, 6, 2)).astype(np.float32), rng.integers(0, 3, 24)
    model = residual_model(seed=2)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "graph.npz")
    loaded = tn.models.load_model(tmp_path / "graph.npz")
    assert type(loaded) is tn.Model
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert [len(layer.inbound_nodes) for layer in loaded.layers] == [
        len(layer.inbound_nodes) for layer in model.layers]  # the shared Dense: two calls
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_get_layer_by_name_and_index():
    model = residual_model()
    assert model.get_layer(index=0).name == "image"
    assert isinstance(model.layers[0], L.InputLayer)
    assert model.layers[0].output is model.inputs[0]
    assert model.get_layer(name=model.layers[0].name) is model.layers[0]
    with pytest.raises(ArgumentError, match=r"the name of a layer of model .*, got 'nope'"):
        model.get_layer("nope")


# -- several outputs ------------------------------------------------------------------------------
def two_outputs(seed=0, as_dict=False):
    """A shared trunk with a softmax head "priority" (3 classes) and a linear head "score"."""
    x = tn.Input((6,), name="features")
    h = L.Dense(8, activation="tanh")(x)
    priority = L.Dense(3, activation="softmax", name="priority")(h)
    score = L.Dense(2, name="score")(L.concatenate([h, x]))
    outputs = {"p": priority, "s": score} if as_dict else [priority, score]
    return tn.Model(x, outputs, seed=seed)


def two_output_data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 6)), rng.integers(0, 3, n), rng.standard_normal((n, 2)))


def test_several_outputs_train_on_the_weighted_sum_with_keras_names():
    x, labels, targets = two_output_data()
    model = two_outputs()
    model.compile("adam", ["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5],
                  metrics=[["accuracy"], []])
    history = model.fit(x, [labels, targets], batch_size=8, epochs=2, validation_split=0.25,
                        verbose=0)
    assert sorted(history.history) == ["loss", "priority_accuracy", "priority_loss",
                                       "score_loss", "val_loss", "val_priority_accuracy",
                                       "val_priority_loss", "val_score_loss"]
    logs = model.evaluate(x, [labels, targets], verbose=0, return_dict=True)
    probabilities, scores = model.predict(x, verbose=0)
    by_hand = {"priority_loss": -np.mean(np.log(probabilities[np.arange(20), labels])),
               "score_loss": np.mean((scores - targets) ** 2),
               "priority_accuracy": np.mean(probabilities.argmax(1) == labels)}
    by_hand["loss"] = by_hand["priority_loss"] + 0.5 * by_hand["score_loss"]
    for key, value in by_hand.items():
        assert_close(logs[key], value, depth=64, dtype=np.float32, err_msg=key)
    assert model.evaluate(x, [labels, targets], verbose=0) == [
        logs["loss"], logs["priority_loss"], logs["score_loss"], logs["priority_accuracy"]]


def test_outputs_given_as_a_dict_take_dicts_and_predict_one():
    x, labels, targets = two_output_data()
    model = two_outputs(as_dict=True)
    model.compile("sgd", {"p": "sparse_categorical_crossentropy", "s": "mse"},
                  loss_weights={"s": 0.2}, metrics={"p": "accuracy"})
    history = model.fit(x, {"p": labels, "s": targets}, epochs=1, verbose=0)
    assert sorted(history.history) == ["loss", "p_accuracy", "p_loss", "s_loss"]
    predicted = model.predict(x, verbose=0)
    assert list(predicted) == ["p", "s"] and predicted["s"].shape == (20, 2)
    with pytest.raises(ArgumentError, match=r"compile loss names \['q'\], expected output names"):
        model.compile("sgd", {"q": "mse"})
    with pytest.raises(ArgumentError, match=r"metrics expected one entry per output"):
        model.compile("sgd", "mse", metrics=["accuracy"])


def test_several_weighted_outputs_gradients_match_finite_differences():
    with floatx("float64"):
        model = two_outputs(seed=3)
        model.compile("sgd", ["sparse_categorical_crossentropy", "mse"], loss_weights=[0.7, 1.9])
        x, labels, targets = two_output_data(9, 1)
        check_model_gradients(model, x, [labels, targets])


def test_several_outputs_save_to_npz_with_their_compile_settings(tmp_path):
    x, labels, targets = two_output_data()
    model = two_outputs(as_dict=True)
    model.compile("adam", {"p": "sparse_categorical_crossentropy", "s": "mse"},
                  loss_weights={"p": 1.0, "s": 0.3}, metrics={"p": ["accuracy"]})
    model.fit(x, {"p": labels, "s": targets}, batch_size=5, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = tn.models.load_model(tmp_path / "m.npz")
    assert loaded.output_names == ["p", "s"] and loaded.objectives.weights == [1.0, 0.3]
    for key in ("p", "s"):
        np.testing.assert_array_equal(loaded.predict(x, verbose=0)[key],
                                      model.predict(x, verbose=0)[key])
    first = model.fit(x, {"p": labels, "s": targets}, batch_size=5, epochs=1, verbose=0)
    again = loaded.fit(x, {"p": labels, "s": targets}, batch_size=5, epochs=1, verbose=0)
    assert first.history == again.history  # bitwise resumption


# -- every new layer: gradients, configs, Keras's numbers -----------------------------------------
MERGES = [L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum]


@pytest.mark.parametrize("cls", MERGES)
def test_merge_layer_gradients_match_finite_differences_unbuilt(cls, rng):
    count = 2 if cls is L.Subtract else 3
    inputs = [rng.standard_normal((4, 3, 2)) for _ in range(count)]
    layer = cls()
    check_layer_gradients(layer, inputs, rng=rng)  # built from the inputs, in float64
    assert layer.built and layer.input_shape == [(3, 2)] * count
    assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


@pytest.mark.parametrize("axis, shapes", [(-1, [(3, 2), (3, 5)]), (1, [(1, 4), (3, 4)]),
                                          (-3, [(2, 2, 3), (4, 2, 3)])])
def test_concatenate_gradients_and_config(axis, shapes, rng):
    layer = L.Concatenate(axis=axis)
    check_layer_gradients(layer, [rng.standard_normal((3, *shape)) for shape in shapes], rng=rng)
    assert layer.get_config() == {"name": None, "axis": axis}


def test_reshape_and_padding_gradients_from_unbuilt_layers(rng):
    check_layer_gradients(L.Reshape((2, -1)), rng.standard_normal((3, 4, 3)), rng=rng)
    check_layer_gradients(L.ZeroPadding2D((1, 2)), rng.standard_normal((2, 3, 4, 2)), rng=rng)


@pytest.mark.parametrize("make", [
    lambda lib: lib.layers.Add(), lambda lib: lib.layers.Subtract(),
    lambda lib: lib.layers.Multiply(), lambda lib: lib.layers.Average(),
    lambda lib: lib.layers.Maximum(), lambda lib: lib.layers.Minimum(),
    lambda lib: lib.layers.Concatenate(axis=1)])
def test_merge_layers_compute_what_keras_computes(keras, make, rng):
    inputs = [rng.standard_normal((5, 3, 4)).astype(np.float32) for _ in range(2)]
    ours, theirs = make(tn), make(keras)
    assert_close(ours(inputs), np.asarray(theirs(inputs)), depth=2)
    config = {k: v for k, v in theirs.get_config().items() if k not in ("name", "trainable",
                                                                       "dtype")}
    assert config == {k: v for k, v in ours.get_config().items() if k != "name"}


@pytest.mark.parametrize("make, shape", [
    (lambda lib: lib.layers.Reshape((6, -1)), (4, 3, 2)),
    (lambda lib: lib.layers.ZeroPadding2D(((1, 0), (2, 3))), (3, 4, 2)),
    (lambda lib: lib.layers.ZeroPadding2D(2), (3, 4, 2))])
def test_reshape_and_padding_compute_what_keras_computes(keras, make, shape, rng):
    x = rng.standard_normal((5, *shape)).astype(np.float32)
    ours, theirs = make(tn), make(keras)
    np.testing.assert_array_equal(ours(x), np.asarray(theirs(x)))
    keras_config = {k: v for k, v in theirs.get_config().items()
                    if k not in ("name", "trainable", "dtype", "data_format")}
    ours_config = {k: v for k, v in ours.get_config().items() if k != "name"}
    assert json.loads(json.dumps(keras_config)) == ours_config  # tuples as lists


# -- random graphs --------------------------------------------------------------------------------
@st.composite
def random_graphs(draw):
    """A model over a random DAG of Dense calls (some layers shared), element-wise merges and
    concatenations, with one or two outputs."""
    width = draw(st.integers(2, 4))
    x = tn.Input((width,), name="x")
    tensors, denses = [x], []
    for _ in range(draw(st.integers(2, 7))):
        kind = draw(st.sampled_from(["dense", "shared", "merge", "concat"]))
        a, b = (tensors[draw(st.integers(0, len(tensors) - 1))] for _ in range(2))
        if kind == "shared" and denses:
            tensors.append(denses[draw(st.integers(0, len(denses) - 1))](a))
        elif kind == "merge":
            tensors.append(draw(st.sampled_from(MERGES))()([a, b]))
        elif kind == "concat":
            tensors.append(L.Dense(width, activation="tanh")(L.concatenate([a, b])))
        else:
            denses.append(L.Dense(width, activation=draw(st.sampled_from(
                ["tanh", "sigmoid", None]))))
            tensors.append(denses[-1](a))
    outputs = [L.Dense(3, activation="softmax")(tensors[-1])]
    if draw(st.booleans()):
        outputs.append(L.Dense(2)(tensors[draw(st.integers(1, len(tensors) - 1))]))
    return tn.Model(x, outputs if len(outputs) > 1 else outputs[0], seed=draw(st.integers(0, 9)))


@given(data=st.data())
def test_random_graphs_gradients_match_finite_differences(data):
    with floatx("float64"):
        model = data.draw(random_graphs())
        several = len(model.outputs) > 1
        model.compile("sgd", ["sparse_categorical_crossentropy", "mse"] if several
                      else "sparse_categorical_crossentropy",
                      loss_weights=[1.0, 0.5] if several else None)
        rng = np.random.default_rng(data.draw(st.integers(0, 99)))
        x = rng.standard_normal((5, model.input_shape[0]))
        labels = rng.integers(0, 3, 5)
        y = [labels, rng.standard_normal((5, 2))] if several else labels
        check_model_gradients(model, x, y)


def test_keras_faq_feature_extraction_shares_the_weights_of_a_sequential_model():
    """``Model(model.inputs, [layer.output for layer in model.layers])``, Keras's FAQ idiom:
    every layer's output for the same input, computed with the trained model's own arrays."""
    model = tn.Sequential([tn.Input((5,)), L.Dense(4, activation="tanh"), L.Dense(3),
                           L.Activation("softmax")], seed=1)
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    model.fit(x, np.arange(6) % 3, epochs=1, verbose=0)
    extractor = tn.Model(model.inputs, [layer.output for layer in model.layers])
    hidden, logits, probabilities = extractor.predict(x, verbose=0)
    np.testing.assert_array_equal(probabilities, model.predict(x, verbose=0))
    dense = model.layers[0]
    assert_close(hidden, np.tanh(x @ dense.params["kernel"] + dense.params["bias"]), depth=16)
    assert extractor.shares_weights and model.layers[0].params["kernel"].base is not None
    model.fit(x, np.arange(6) % 3, epochs=1, verbose=0)  # the owner trains on ...
    np.testing.assert_array_equal(extractor.predict(x, verbose=0)[2], model.predict(x, verbose=0))
    extractor.compile("sgd", "mse")
    with pytest.raises(ArgumentError, match="uses layers built by another model"):
        extractor.fit(x, [hidden, logits, probabilities], verbose=0)


def test_callbacks_watch_an_outputs_logs_and_a_refused_fit_changes_nothing(tmp_path):
    x, labels, targets = two_output_data(40)
    model = two_outputs(as_dict=True)
    model.compile("adam", {"p": "sparse_categorical_crossentropy", "s": "mse"},
                  metrics={"p": ["accuracy"]})
    stop = tn.callbacks.EarlyStopping(monitor="val_p_accuracy", patience=0, mode="max")
    log = tn.callbacks.CSVLogger(tmp_path / "log.csv")
    history = model.fit(x, {"p": labels, "s": targets}, epochs=30, validation_split=0.25,
                        verbose=0, callbacks=[stop, log])
    assert len(history.epoch) < 30 and "val_p_accuracy" in history.history
    assert (tmp_path / "log.csv").read_text().splitlines()[0] == \
        "epoch,loss,p_accuracy,p_loss,s_loss,val_loss,val_p_accuracy,val_p_loss,val_s_loss"
    before = model.get_weights()
    with pytest.raises(ArgumentError, match=r"expected y keyed by its output names \['p', 's'\]"):
        model.fit(x, {"p": labels, "size": targets}, epochs=1, verbose=0)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_the_savers_never_import_the_models():
    """tinynn.models imports tinynn.saving (model.save); the savers reach the model classes
    through tinynn.registry, so there is no import cycle between the two packages."""
    import ast
    from pathlib import Path
    root = Path(tn.__file__).parent
    for path in (root / "saving").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                names = {alias.name for alias in node.names}
                assert "models" not in module.split(".") and "models" not in names, (path, module)


# -- models as layers -----------------------------------------------------------------------------
def encoder(name="encoder"):
    a = tn.Input((5,), name=f"{name}_in")
    return tn.Model(a, L.Dense(3, activation="tanh")(L.Dense(4, activation="tanh")(a)),
                    name=name, seed=4)


def test_a_model_called_twice_as_a_layer_shares_its_weights_and_gradients():
    with floatx("float64"):
        shared = encoder()
        x1, x2 = tn.Input((5,), name="x1"), tn.Input((5,), name="x2")
        out = L.Dense(2, activation="softmax")(L.subtract([shared(x1), shared(x2)]))
        siamese = tn.Model([x1, x2], out, name="siamese", seed=0)
        siamese.compile("sgd", "sparse_categorical_crossentropy")
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
        check_model_gradients(siamese, [a, b], np.arange(6) % 2)
    assert [type(layer).__name__ for layer in siamese.layers] == [
        "InputLayer", "InputLayer", "Model", "Subtract", "Dense"]
    assert siamese.count_params() == shared.count_params() + 8 == 47
    rows = {row[0]: row for row in tn.summary.layer_table(siamese)}
    assert rows["encoder (Model)"][3] == ["x1[0][0]", "x2[0][0]"]


def test_a_trained_model_nested_in_another_keeps_its_weights_and_trains_there():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 5)).astype(np.float32)
    inner = encoder("pretrained")
    inner.compile("adam", "mse")
    inner.fit(x, np.tanh(x[:, :3]), epochs=2, verbose=0)
    before = inner.predict(x, verbose=0)
    outer_input = tn.Input((5,), name="features")
    encoded = inner(outer_input)
    outer = tn.Model(outer_input, L.Dense(2)(encoded), name="head", seed=1)
    outer.compile("adam", "mse")
    features = tn.Model(outer.inputs, encoded)  # the nested model's call, in the outer graph
    np.testing.assert_array_equal(features.predict(x, verbose=0), before)  # values copied
    outer.fit(x, np.zeros((20, 2), np.float32), epochs=1, verbose=0)
    after = inner.predict(x, verbose=0)
    assert not np.array_equal(after, before)  # trained inside the outer model
    np.testing.assert_array_equal(features.predict(x, verbose=0), after)
    with pytest.raises(ArgumentError, match="a model nested in another"):
        inner.fit(x, np.tanh(x[:, :3]), epochs=1, verbose=0)


def siamese_with_a_sequential_head(seed=0) -> tn.Model:
    """A functional encoder called twice, and a Sequential called on their difference."""
    shared = encoder()
    head = tn.Sequential([L.Input((3,)), L.Dense(4, activation="relu", name="head_hidden"),
                          L.Dropout(0.25, name="head_dropout"),
                          L.Dense(2, activation="softmax", name="head_out")], name="head",
                         seed=seed + 1)
    x1, x2 = tn.Input((5,), name="x1"), tn.Input((5,), name="x2")
    return tn.Model([x1, x2], head(L.subtract([shared(x1), shared(x2)])), name="siamese",
                    seed=seed)


def test_nested_models_save_to_npz_and_load_with_their_structure_and_resume_bitwise(tmp_path):
    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal((16, 5)).astype(np.float32) for _ in range(2))
    y = rng.integers(0, 2, 16)
    model = siamese_with_a_sequential_head()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit([a, b], y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "siamese.npz")
    loaded = tn.models.load_model(tmp_path / "siamese.npz")
    assert [(type(layer).__name__, layer.name) for layer in loaded.layers] == [
        ("InputLayer", "x1"), ("InputLayer", "x2"), ("Model", "encoder"),
        ("Subtract", model.layers[3].name), ("Sequential", "head")]
    encoder_ = loaded.get_layer("encoder")
    assert len(encoder_.inbound_nodes) == 2 and encoder_.seed == 4  # one model, two calls
    assert [layer.name for layer in loaded.get_layer("head").layers] == [
        "head_hidden", "head_dropout", "head_out"]
    np.testing.assert_array_equal(loaded.predict([a, b], verbose=0),
                                  model.predict([a, b], verbose=0))
    model.fit([a, b], y, batch_size=8, epochs=1, verbose=0)
    loaded.fit([a, b], y, batch_size=8, epochs=1, verbose=0)
    for ours, theirs in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)


def test_layer_names_must_be_unique_across_nested_models():
    x = tn.Input((5,), name="features")
    inner = encoder("inner")
    name = inner.layers[1].name
    with pytest.raises(ArgumentError, match=rf"several layers named \['{name}'\].*unique "
                       "across nested models"):
        tn.Model(x, L.Dense(2, name=name)(inner(x)))


def test_a_model_file_nesting_models_too_deep_is_refused():
    from tinynn.saving import serialization
    config = serialization.model_config(encoder("level"))
    for _ in range(serialization.MAX_NESTING + 1):  # wrap it as a layer of a model, again
        layer = {**config, "name": config["config"]["name"],
                 "inbound_nodes": [[["outer_in", 0, 0]]]}
        config = {"class_name": "Functional", "config": {
            "name": f"wrap{_}", "seed": 0, "layers": [
                {"class_name": "InputLayer", "name": "outer_in", "inbound_nodes": [],
                 "config": tn.Input((5,), name="outer_in").history[0].get_config()},
                layer], "input_layers": [["outer_in", 0, 0]],
            "output_layers": [config["config"]["name"], 0, 0]}}
    with pytest.raises(ArgumentError, match=f"nested more than {serialization.MAX_NESTING} deep"):
        serialization.model_from_config(config, {})
