"""ONNX export (``model.export(path, format="onnx")``, tinynn/saving/onnx) against the real
runtime: ONNX Runtime's outputs equal ``model.predict`` for the report networks (Task 1, Task 2
at depths 3, 6 and 12, Task 3 with and without BatchNormalization, each trained two steps) and
for models using every layer, activation and setting, at batch sizes 1, 7 and 1000, on random
inputs and on real Fashion-MNIST test images; then the file's contract (names, dynamic batch,
opset, full checker, float32, atomic writes) and its errors.

Tolerance: |ORT - predict| <= depth * eps(float32) * max|predict| (``tinynn.testing.
assert_close``), ``depth`` counted from the model by ``roundings``: on each side, every layer's
reduction (a Dense or Conv2D fan-in, an average pool's window, a softmax's width: n terms, n
roundings by Higham's bound) plus ``ELEMENTWISE`` for its bias, normalization and activation,
twice for the two sides. Both compute in float32 but in different orders (ONNX Runtime's own
GEMM and convolution kernels, blocked differently on every CPU), so they differ by rounding,
measured at under 5 roundings of the output's scale; a layout or formula error differs by far
more.
"""

import functools
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinynn as tn
from tinynn import activations as A
from tinynn.datasets import fashion_mnist
from tinynn.errors import (
    ArgumentError,
    CheckpointError,
    MissingDependencyError,
    NotCompiledError,
    ShapeError,
)
from tinynn.layers import REGISTRY, InputLayer
from tinynn.saving.onnx import model_proto
from tinynn.saving.onnx.layers import ACTIVATIONS, LAYERS
from tinynn.testing import assert_close, floatx

L = tn.layers
BATCHES = (1, 7, 1000)
NETWORKS = ["task1", "task2-3", "task2-6", "task2-12", "task3", "task3-batch-norm"]


# -- models -------------------------------------------------------------------------------------
def every_layer_cnn() -> tn.Sequential:
    """Every layer class, on images then features, with strides, both paddings (odd totals
    too), no bias, BatchNormalization on channels, height, width and features, softmax over
    channels stored NCHW, and most activations."""
    return tn.Sequential([
        L.Input((16, 14, 3)),
        L.Conv2D(4, 3, padding="same", activation="elu"),
        L.BatchNormalization(),
        L.Activation("selu"),
        L.Conv2D(5, (3, 2), strides=(2, 1), use_bias=False, activation="gelu"),  # (7, 13, 5)
        L.BatchNormalization(axis=1, center=False),
        L.MaxPooling2D((2, 3), strides=(1, 2), padding="same"),  # (7, 7, 5), pads (0, 1, 1, 1)
        L.Activation("softmax"),
        L.AveragePooling2D(2, padding="same"),  # (4, 4, 5), pads (0, 1, 0, 1)
        L.Activation("silu"),
        L.BatchNormalization(axis=2, scale=False, epsilon=0.01),
        L.MaxPooling2D(2, strides=1),  # (3, 3, 5)
        L.AveragePooling2D(2, strides=1),  # (2, 2, 5)
        L.Dropout(0.3),
        L.Conv2D(6, 1, activation="swish"),
        L.GlobalAveragePooling2D(keepdims=True),  # (1, 1, 6)
        L.Activation("softplus"),
        L.Flatten(),
        L.Dense(8, activation="leaky_relu"),
        L.BatchNormalization(),
        L.Dense(7, activation="tanh"),
        L.Dense(6, activation="sigmoid", use_bias=False),
        L.Activation("relu"),
        L.Dense(5),
        L.Activation("linear"),
        L.Dense(4, activation="softmax"),
    ], seed=3)


def images_out() -> tn.Sequential:
    """NHWC layers before any convolution (Rescaling and the augmentations first), softmax as a
    Conv2D activation, and images as the output (transposed back to NHWC)."""
    return tn.Sequential([
        L.Input((9, 8, 2)),
        L.Rescaling(0.5, offset=0.25),
        L.RandomFlip(),  # the augmentations: the identity in inference, left out of the graph
        L.RandomContrast(0.2),
        L.RandomBrightness(0.1),
        L.RandomTranslation(0.1, 0.1),
        L.RandomRotation(0.1),
        L.RandomZoom(0.1),
        L.BatchNormalization(axis=2),
        L.Activation("softmax"),
        L.Activation("gelu"),
        L.Conv2D(3, 3, strides=2, padding="same", activation="softmax"),  # (5, 4, 3)
        L.MaxPooling2D(2, padding="same"),  # (3, 2, 3)
    ], seed=4)


def pooled_features() -> tn.Sequential:
    """GlobalAveragePooling2D straight on the NHWC input, without keepdims."""
    return tn.Sequential([L.Input((7, 6, 4)), L.GlobalAveragePooling2D(),
                          L.BatchNormalization(), L.Dense(3, activation="softmax")], seed=5)


def dropout_only() -> tn.Sequential:
    """Nothing to compute in inference: the graph is one Identity."""
    return tn.Sequential([L.Input((5,)), L.Dropout(0.5)], seed=6)


def cropped() -> tn.Sequential:
    """RandomCrop's inference: a centered window of a non-square image resized (NCHW after it:
    a Conv2D follows)."""
    return tn.Sequential([L.Input((9, 8, 2)), L.RandomCrop(5, 6), L.Conv2D(3, 2),
                          L.RandomCrop(4, 4)], seed=7)


EVERY_LAYER = {"every_layer_cnn": every_layer_cnn, "images_out": images_out, "cropped": cropped,
               "pooled_features": pooled_features, "dropout_only": dropout_only}


def randomized(model: tn.Sequential, seed: int = 0) -> tn.Sequential:
    """``model`` built with random weights of moderate scale and non-trivial moving
    statistics (means N(0, 0.5), variances U(0.5, 2))."""
    rng = np.random.default_rng(seed)
    model.build()
    model.set_weights([rng.uniform(0.5, 2.0, w.shape) if name.endswith("moving_variance")
                       else rng.normal(0.0, 0.5, w.shape)
                       for name, w in model.named_weights().items()])
    return model


def trained(model: tn.Sequential, seed: int = 0) -> tn.Sequential:
    """``model`` after two Adam steps on random images, with BatchNormalization's moving
    statistics then set to non-trivial values."""
    rng = np.random.default_rng(seed)
    model.compile(tn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(random_images(model.input_shape, 64, rng), rng.integers(0, 10, 64),
              batch_size=32, verbose=0)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            layer.state["moving_mean"][...] = rng.normal(0.0, 0.5, layer.state["moving_mean"].shape)
            layer.state["moving_variance"][...] = rng.uniform(
                0.5, 2.0, layer.state["moving_variance"].shape)
    return model


def random_images(shape: tuple, n: int, rng) -> np.ndarray:
    """``n`` random 8-bit images scaled to [0, 1], float32."""
    return (rng.integers(0, 256, (n, *shape)) / 255).astype(np.float32)


def network(examples, name: str) -> tn.Sequential:
    if name == "task1":
        return examples.task1.build_model("softmax", seed=0)
    if name.startswith("task2"):
        return examples.task2.build_mlp(int(name.split("-")[1]), seed=0)
    return examples.task3.build_cnn(0.4, seed=0, batch_norm=name == "task3-batch-norm")


# -- rounding depth -----------------------------------------------------------------------------
#: Roundings of one layer beside its reduction, on either side: the bias, BatchNormalization's
#: folded scale and shift (ONNX Runtime) or its subtract, divide and multiply (tinynn), and the
#: activation function (a few ulps each for exp, tanh, erf).
ELEMENTWISE = 8


def roundings(model: tn.Sequential) -> int:
    """The depth of one output element of ``model``'s inference, both sides: per layer its
    reduction length (Dense or Conv2D fan-in, average pool window, global pool area, softmax
    width; Higham: n roundings for n terms) plus ``ELEMENTWISE``, summed over the layers, times 2
    for tinynn and ONNX Runtime. A float64 model against ONNX Runtime's float32: the float64
    side's roundings are negligible, but its weights and inputs are rounded to float32 once,
    one rounding per product term, in place of the second side's."""
    total = 0
    for layer in model.layers:
        if "kernel" in layer.params:
            total += int(np.prod(layer.params["kernel"].shape[:-1]))
        if isinstance(layer, L.AveragePooling2D):
            total += int(np.prod(layer.pool_size))
        if isinstance(layer, L.GlobalAveragePooling2D):
            total += int(np.prod(layer.input_shape[:2]))
        if isinstance(getattr(layer, "activation", None), A.Softmax):
            total += layer.compute_output_shape(layer.input_shape)[-1]
        total += ELEMENTWISE
    return 2 * total


# -- running ONNX Runtime -----------------------------------------------------------------------
def session(onnxruntime, source):
    """An ONNX Runtime CPU session on a file path or serialized model bytes."""
    source = source if isinstance(source, bytes) else str(source)
    return onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])


def run(ort_session, x: np.ndarray) -> np.ndarray:
    return ort_session.run(["output"], {"input": x})[0]


def assert_same_outputs(model, ort_session, x: np.ndarray, context: str = "",
                        batches: tuple = BATCHES) -> None:
    """ONNX Runtime equals ``model.predict`` on the first 1, 7 and 1000 (``batches``) samples
    of ``x``."""
    for n in batches:
        expected = model.predict(x[:n], batch_size=n, verbose=0)
        got = run(ort_session, np.asarray(x[:n], dtype=np.float32))
        assert got.dtype == np.float32 and got.shape == expected.shape
        assert_close(got, expected, depth=roundings(model), err_msg=f"batch {n} {context}")


@pytest.fixture(scope="module")
def exported(examples, onnxruntime, tmp_path_factory):
    """``exported(name)``: the report network ``name``, trained, and an ORT session on its
    exported file (each exported once per module)."""
    directory = tmp_path_factory.mktemp("onnx")

    @functools.cache
    def export(name: str):
        model = trained(network(examples, name))
        model.export(directory / f"{name}.onnx", verbose=False)
        return model, session(onnxruntime, directory / f"{name}.onnx")
    return export


@functools.cache
def _real_test_images(directory: str) -> np.ndarray:
    _, (x_test, _) = fashion_mnist.load_data(directory, download=False)
    return x_test[:max(BATCHES)] * np.float32(1 / 255)  # scaled as examples/common.py does


@pytest.fixture
def real_images(real_data_dir) -> np.ndarray:
    """The first 1000 Fashion-MNIST test images (1000, 28, 28), scaled as the examples do."""
    return _real_test_images(str(real_data_dir))


# -- parity -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NETWORKS)
def test_onnx_runtime_equals_predict_for_the_report_networks_on_random_images(exported, name):
    model, ort_session = exported(name)
    assert_same_outputs(model, ort_session,
                        random_images(model.input_shape, 1000, np.random.default_rng(1)))


@pytest.mark.parametrize("name", NETWORKS)
def test_onnx_runtime_equals_predict_for_the_report_networks_on_real_images(
        exported, name, real_images):
    model, ort_session = exported(name)
    assert_same_outputs(model, ort_session, real_images.reshape(-1, *model.input_shape))


@pytest.mark.parametrize("name", EVERY_LAYER)
def test_onnx_runtime_equals_predict_for_every_layer_and_activation(onnxruntime, tmp_path, name):
    """The whole model at batch sizes 1, 7 and 1000; and every prefix of it (its first k
    layers, random weights) at 7, so that each layer's own output is checked: deep in a
    random stack, the output depends little on the input (by 1e-5 for every_layer_cnn)."""
    x = np.random.default_rng(2).standard_normal((1000, *EVERY_LAYER[name]().input_shape))
    depth = len(EVERY_LAYER[name]().layers)
    for k in range(1, depth + 1):
        stack = EVERY_LAYER[name]()
        model = randomized(tn.Sequential([L.Input(stack.input_shape), *stack.layers[:k]]), k)
        model.export(tmp_path / "model.onnx", verbose=False)
        assert_same_outputs(model, session(onnxruntime, tmp_path / "model.onnx"), x,
                            f"up to layer {k}, {model.layers[-1].name!r}",
                            BATCHES if k == depth else (7,))


def test_the_every_layer_models_cover_every_exporter():
    """Every registered layer has an exporter and every activation of tinynn.activations has
    one (a newly registered class without one fails here), and the parity models use them all
    (InputLayer is the model's declaration, never one of its computing layers; the merge,
    Reshape and ZeroPadding2D layers are in tests/test_onnx_graph.py's graph)."""
    assert set(REGISTRY.values()) <= set(LAYERS)
    activation_classes = {value for value in vars(A).values()
                          if isinstance(value, type) and issubclass(value, A.Activation)}
    assert activation_classes <= set(ACTIVATIONS)
    from tests.test_onnx_graph import graph_model
    layers = [layer for build in EVERY_LAYER.values() for layer in build().layers]
    layers += graph_model().weighted_layers
    assert {type(layer) for layer in layers} == set(LAYERS) - {InputLayer}
    used = {type(layer.activation) for layer in layers if hasattr(layer, "activation")}
    assert used == set(ACTIVATIONS) - {A.Activation}  # the base class is Linear's identity


@given(size=st.tuples(st.integers(3, 9), st.integers(3, 9)),
       window=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=st.sampled_from(["valid", "same"]),
       kind=st.sampled_from([L.Conv2D, L.MaxPooling2D, L.AveragePooling2D]))
def test_window_geometry_matches_onnx_runtime(onnxruntime, size, window, strides, padding, kind):
    assume(padding == "same" or (size[0] >= window[0] and size[1] >= window[1]))
    layer = (kind(3, window, strides, padding) if kind is L.Conv2D
             else kind(window, strides, padding))
    model = randomized(tn.Sequential([L.Input((*size, 2)), layer]))
    x = np.random.default_rng(0).standard_normal((5, *size, 2)).astype(np.float32)
    ort_session = session(onnxruntime, model_proto(model).SerializeToString())
    assert_close(run(ort_session, x), model.predict(x, verbose=0), depth=roundings(model))


@pytest.mark.parametrize("opset", [13, 21])
def test_every_opset_of_the_range_runs_the_same_graph(onnx, onnxruntime, tmp_path, opset):
    model = randomized(every_layer_cnn())
    model.export(tmp_path / "model.onnx", verbose=False, opset_version=opset)
    proto = onnx.load(tmp_path / "model.onnx")
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", opset)]
    onnx.checker.check_model(proto, full_check=True)
    x = np.random.default_rng(2).standard_normal((7, *model.input_shape)).astype(np.float32)
    ort_session = session(onnxruntime, tmp_path / "model.onnx")
    assert_close(run(ort_session, x), model.predict(x, verbose=0), depth=roundings(model))


# -- the file -----------------------------------------------------------------------------------
def test_the_file_names_its_input_and_output_with_a_dynamic_batch_and_passes_the_checker(
        examples, onnx, onnxruntime, tmp_path):
    model = network(examples, "task3")
    model.export(tmp_path / "cnn.onnx", verbose=False)
    proto = onnx.load(tmp_path / "cnn.onnx")
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    assert proto.ir_version == 8 and proto.producer_name == "tinynn"
    (graph_input,), (graph_output,) = proto.graph.input, proto.graph.output
    for value, dims in ((graph_input, ["batch", 28, 28, 1]), (graph_output, ["batch", 10])):
        tensor_type = value.type.tensor_type
        assert tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert [d.dim_param or d.dim_value for d in tensor_type.shape.dim] == dims
    assert (graph_input.name, graph_output.name) == ("input", "output")
    assert {t.data_type for t in proto.graph.initializer} == {onnx.TensorProto.FLOAT}
    # Dropout is gone; one transpose into NCHW for the convolutions, one back before Flatten.
    assert [node.op_type for node in proto.graph.node] == [
        "Transpose", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Transpose",
        "Flatten", "Gemm", "Relu", "Gemm", "Softmax"]
    ort_session = session(onnxruntime, tmp_path / "cnn.onnx")
    assert [(i.name, i.shape, i.type) for i in ort_session.get_inputs()] == [
        ("input", ["batch", 28, 28, 1], "tensor(float)")]
    assert [(o.name, o.shape) for o in ort_session.get_outputs()] == [("output", ["batch", 10])]


def test_batch_normalization_is_folded_from_its_moving_statistics(examples, onnx, tmp_path):
    model = trained(network(examples, "task3-batch-norm"))
    model.export(tmp_path / "cnn.onnx", verbose=False)
    proto = onnx.load(tmp_path / "cnn.onnx")
    assert [node.op_type for node in proto.graph.node][:6] == [
        "Transpose", "Conv", "Mul", "Add", "Relu", "MaxPool"]
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    layer = model.layers[1]
    state = layer.state
    scale = layer.params["gamma"] / np.sqrt(state["moving_variance"] + np.float32(1e-3))
    # scale: the exporter's add, sqrt, reciprocal and multiply against this add, sqrt, divide
    assert_close(weights["batch_normalization/scale"].ravel(), scale, depth=4 + 3)
    # shift: both scales' 7, then a multiply and a subtract on either side
    assert_close(weights["batch_normalization/shift"].ravel(),
                 layer.params["beta"] - state["moving_mean"] * scale, depth=7 + 2 * 2)


def test_a_float64_model_is_exported_in_float32(onnx, onnxruntime, tmp_path, capsys):
    with floatx("float64"):
        model = randomized(every_layer_cnn())
        model.export(tmp_path / "model.onnx")
        x = np.random.default_rng(2).standard_normal((7, *model.input_shape))
        expected = model.predict(x, verbose=0)
    assert expected.dtype == np.float64
    proto = onnx.load(tmp_path / "model.onnx")
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {t.data_type for t in proto.graph.initializer} == {onnx.TensorProto.FLOAT}
    assert "float32 weights (rounded from the model's float64)" in capsys.readouterr().out
    got = run(session(onnxruntime, tmp_path / "model.onnx"), x.astype(np.float32))
    assert_close(got, expected, depth=roundings(model))


def test_verbose_prints_the_artifact_and_its_signature_as_keras_does(examples, tmp_path,
                                                                       capsys, onnx):
    model = network(examples, "task1")
    model.export(tmp_path / "task1.onnx")  # verbose=None means True, as in Keras
    assert capsys.readouterr().out == (
        f"Saved artifact at '{tmp_path / 'task1.onnx'}'.\n"
        "ONNX opset 17 (IR version 8), 5 nodes, 79,510 float32 weights; input 'input' float32 "
        "(batch, 28, 28), output 'output' float32 (batch, 10).\n")
    model.export(tmp_path / "task1.onnx", verbose=False)
    assert capsys.readouterr().out == ""


def test_input_signature_fixes_the_batch_or_keeps_it_dynamic(onnxruntime, tmp_path):
    model = randomized(pooled_features())
    model.export(tmp_path / "fixed.onnx", verbose=False, input_signature=(7, 7, 6, 4))
    ort_session = session(onnxruntime, tmp_path / "fixed.onnx")
    assert ort_session.get_inputs()[0].shape == [7, 7, 6, 4]
    assert ort_session.get_outputs()[0].shape == [7, 3]
    x = np.random.default_rng(0).standard_normal((7, 7, 6, 4)).astype(np.float32)
    assert_close(run(ort_session, x), model.predict(x, verbose=0), depth=roundings(model))
    spec = SimpleNamespace(shape=(None, 7, 6, 4), dtype="float32")  # as keras.InputSpec
    for signature in (spec, [spec], (None, 7, 6, 4)):
        model.export(tmp_path / "dynamic.onnx", verbose=False, input_signature=signature)
        assert session(onnxruntime, tmp_path / "dynamic.onnx").get_inputs()[0].shape == [
            "batch", 7, 6, 4]


def test_input_signature_builds_an_unbuilt_model_and_is_checked(onnx, tmp_path):
    model = tn.Sequential([L.Dense(3)])
    with pytest.raises(ShapeError, match=r"does not match model 'sequential', which takes "
                                         r"\(None, 4\)"):
        tn.Sequential([L.Input((4,)), L.Dense(3)]).export(tmp_path / "m.onnx",
                                                          input_signature=(None, 5))
    for bad in [(None,), (0, 4), (None, 4.0), (None, True), "x", 4]:
        with pytest.raises(ArgumentError, match="expected a shape with the batch axis"):
            model.export(tmp_path / "m.onnx", input_signature=bad)
    with pytest.raises(ArgumentError, match="expected dtype float32.*'float64'"):
        model.export(tmp_path / "m.onnx",
                     input_signature=SimpleNamespace(shape=(None, 4), dtype="float64"))
    assert not model.built and not (tmp_path / "m.onnx").exists()
    model.export(tmp_path / "m.onnx", verbose=False, input_signature=(None, 4))
    assert model.built and model.input_shape == (4,)
    assert onnx.load(tmp_path / "m.onnx").graph.output[0].type.tensor_type.shape.dim[1] \
        .dim_value == 3


def test_an_unbuilt_model_is_built_from_its_declared_input_or_refused(onnx, tmp_path):
    with pytest.raises(NotCompiledError, match="export needs a built model"):
        tn.Sequential([L.Dense(3)]).export(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    model = tn.Sequential([L.Input((4,)), L.Dense(3)])
    model.export(tmp_path / "m.onnx", verbose=False)
    assert model.built and (tmp_path / "m.onnx").exists()


def test_export_changes_nothing_in_the_model(tmp_path, onnx):
    model = randomized(every_layer_cnn())
    x = np.random.default_rng(0).standard_normal((3, *model.input_shape)).astype(np.float32)
    before, predicted = model.get_weights(), model.predict(x, verbose=0)
    model.export(tmp_path / "m.onnx", verbose=False)
    for after, weight in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(after, weight)
    np.testing.assert_array_equal(model.predict(x, verbose=0), predicted)


def test_export_replaces_an_existing_file_atomically(onnx, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")
    randomized(pooled_features()).export(path, verbose=False)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file left


# -- errors -------------------------------------------------------------------------------------
class Doubling(tn.layers.Layer):
    """An unregistered layer, without an exporter."""

    def forward(self, x, training=False):
        return 2 * x


class ScaledDense(L.Dense):
    """A subclass of a registered layer: its forward may differ, so it has no exporter."""


class Cube(A.Activation):
    name = "cube"

    def forward(self, z):
        return z ** 3


@pytest.mark.parametrize("layer, message", [
    (Doubling(name="double"), "cannot export layer 'double' of class Doubling to ONNX"),
    (ScaledDense(2, name="scaled"), "cannot export layer 'scaled' of class ScaledDense"),
    (L.Dense(2, activation=Cube(), name="cubed"),
     r"cannot export layer 'cubed' \(Dense\) to ONNX: its activation Cube has no ONNX exporter"),
])
def test_a_layer_or_activation_without_exporter_is_refused_naming_it(onnx, tmp_path, layer,
                                                                      message):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")
    model = tn.Sequential([L.Input((4,)), L.Dense(3), layer])
    with pytest.raises(ArgumentError, match=message):
        model.export(path)
    assert not model.built  # refused before the model was built
    assert path.read_bytes() == b"previous" and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("format, hint", [
    ("foo", "Keras's other formats are tf_saved_model, openvino, litert, torch"),
    ("tf_saved_model", r"model.save\('model.keras'\)"),
    ("openvino", r"openvino.Core\(\).read_model\('model.onnx'\)"),
    ("ONNX", "Keras's other formats"),
])
def test_other_formats_are_refused_naming_the_supported_one(tmp_path, format, hint):
    with pytest.raises(ArgumentError, match=f"Unrecognized format='{format}': tinynn exports "
                                            f"format='onnx' only; .*{hint}"):
        randomized(pooled_features()).export(tmp_path / "m.onnx", format=format)
    assert not (tmp_path / "m.onnx").exists()


def test_unknown_keywords_and_opsets_are_refused(tmp_path):
    model = randomized(pooled_features())
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['jax2tf_kwargs'\]"):
        model.export(tmp_path / "m.onnx", jax2tf_kwargs={})
    for bad in (12, 22, "17", True, 17.0):
        with pytest.raises(ArgumentError, match="opset_version expected an int from 13 to 21 "
                                                rf"\(default 17\), got {bad!r}"):
            model.export(tmp_path / "m.onnx", opset_version=bad)
    assert not (tmp_path / "m.onnx").exists()


def test_bad_paths_are_refused(tmp_path):
    model = randomized(pooled_features())
    with pytest.raises(IsADirectoryError, match="it is a directory"):
        model.export(tmp_path)
    with pytest.raises(FileNotFoundError, match="the directory '.*missing' does not exist"):
        model.export(tmp_path / "missing" / "m.onnx")
    with pytest.raises(TypeError, match="expected a file path .* got int"):
        model.export(3)
    assert list(tmp_path.iterdir()) == []


def test_non_finite_weights_are_refused_and_nothing_is_written(onnx, tmp_path):
    model = randomized(pooled_features())
    model.layers[-1].params["kernel"][0, 0] = np.nan
    with pytest.raises(CheckpointError, match="dense/kernel holds NaN or infinity in float32"):
        model.export(tmp_path / "m.onnx")
    with floatx("float64"):  # finite in float64, infinite once rounded to float32
        model = randomized(pooled_features())
        model.layers[-1].params["bias"][1] = 1e300
        with pytest.raises(CheckpointError, match="dense/bias holds NaN or infinity"):
            model.export(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_checker_failure_is_an_error_and_writes_nothing(onnx, tmp_path, monkeypatch):
    def refuse(proto, full_check=False):
        raise onnx.checker.ValidationError("refused for the test")
    monkeypatch.setattr(onnx.checker, "check_model", refuse)
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="fails onnx.checker .*refused for the test"):
        randomized(pooled_features()).export(path)
    assert path.read_bytes() == b"previous" and len(list(tmp_path.iterdir())) == 1


def test_without_onnx_export_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "tinynn\[onnx\]"'):
        randomized(pooled_features()).export(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
