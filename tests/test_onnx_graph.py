"""ONNX export of functional models: two inputs, merges of values stored NCHW and NHWC,
Reshape, ZeroPadding2D and Concatenate, checked against ONNX Runtime for the whole model and
for the sub-model ending at every call (feature extraction through the same weights).

Tolerance: both sides compute in float32 in different orders: the rounding depth of every
sum on the path (fan-ins, pooling areas) and a few roundings per element-wise step, for each
side (docs/keras-parity.md "Tolerances")."""

import numpy as np
import pytest

import tinynn as tn
from tinynn.testing import assert_close

L = tn.layers
ELEMENTWISE = 8  # roundings of a bias, an activation, a merge


def graph_model() -> tn.Model:
    """Every merge layer on convolution outputs (stored NCHW) and on the NHWC input, padding,
    reshaping and concatenation, and a second input of features."""
    image, side = tn.Input((7, 6, 3), name="image"), tn.Input((4,), name="side")
    a = L.Conv2D(3, 3, padding="same", activation="relu")(image)
    b = L.ZeroPadding2D(((1, 1), (0, 0)))(L.Conv2D(3, (3, 1))(image))  # (5, 6) -> (7, 6)
    c = L.Conv2D(3, 1, activation="tanh")(image)
    merged = [L.add([a, b, c]), L.subtract([a, image]), L.multiply([a, b, c]),
              L.average([image, c]), L.maximum([a, b]), L.minimum([b, image])]
    x = L.Reshape((42, 18))(L.concatenate(merged))
    x = L.concatenate([L.Flatten()(x), L.Dense(5, activation="relu")(side)])
    return tn.Model([image, side], L.Dense(3, activation="softmax")(x), name="graph", seed=7)


def inputs(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"image": rng.standard_normal((n, 7, 6, 3)).astype(np.float32),
            "side": rng.standard_normal((n, 4)).astype(np.float32)}


def depth(model: tn.Model) -> int:
    """Both sides' roundings along the longest path: every layer's reduction and its
    element-wise steps (Higham: n roundings for n terms)."""
    total = 0
    for layer in model.weighted_layers:
        kernel = layer.params.get("kernel")
        total += (int(np.prod(kernel.shape[:-1])) if kernel is not None else 0) + ELEMENTWISE
    return 2 * total


def used_inputs(model: tn.Model, tensor) -> list:
    """The model inputs ``tensor`` is computed from, in the model's order."""
    seen, stack = set(), [tensor]
    while stack:
        t = stack.pop()
        if id(t) not in seen:
            seen.add(id(t))
            stack.extend(t.node.inputs)
    return [t for t in model.inputs if id(t) in seen]


def run(onnxruntime, path, feeds: dict) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], feeds)[0]


def test_a_two_input_graph_runs_in_onnx_runtime_as_in_tinynn(onnxruntime, tmp_path):
    model = graph_model()
    model.build()
    model.export(tmp_path / "graph.onnx", verbose=False)
    for n in (1, 7, 200):
        feeds = inputs(n, n)
        assert_close(run(onnxruntime, tmp_path / "graph.onnx", feeds),
                     model.predict(feeds, verbose=0), depth=depth(model))


def test_the_sub_model_ending_at_every_call_exports_and_matches(onnxruntime, tmp_path):
    model = graph_model()
    model.build()
    feeds = inputs(7)
    for layer in model.weighted_layers:
        needed = used_inputs(model, layer.output)
        sub = tn.Model(needed, layer.output)
        sub.export(tmp_path / "sub.onnx", verbose=False)
        assert sub.shares_weights == any(bool(other.weights) for other in sub.weighted_layers)
        names = ["input"] if len(needed) == 1 else [t.name for t in needed]
        sub_feeds = {name: feeds[t.name] for name, t in zip(names, needed)}
        expected = sub.predict([feeds[t.name] for t in needed], verbose=0)
        assert_close(run(onnxruntime, tmp_path / "sub.onnx", sub_feeds), expected,
                     depth=depth(model), err_msg=layer.name)


def test_input_signature_is_refused_for_several_inputs(onnx, tmp_path):
    model = graph_model()
    model.build()
    with pytest.raises(tn.errors.ArgumentError, match="models of one input; model 'graph' has 2"):
        model.export(tmp_path / "g.onnx", input_signature=(None, 7, 6, 3))
    assert not (tmp_path / "g.onnx").exists()


def test_nested_models_are_inlined_once_per_call_and_match(onnxruntime, tmp_path):
    """A convolutional encoder (functional) called on two images and a Sequential head: the
    export inlines each call, and ONNX Runtime gives tinynn's predictions to rounding."""
    patch = tn.Input((6, 6, 2), name="patch")
    encoder = tn.Model(patch, L.GlobalAveragePooling2D()(
        L.Conv2D(4, 3, padding="same", activation="relu")(patch)), name="encoder", seed=1)
    head = tn.Sequential([L.Input((4,)), L.Dense(5, activation="tanh", name="head_hidden"),
                          L.Dense(3, activation="softmax", name="head_out")], name="head",
                         seed=2)
    left, right = tn.Input((6, 6, 2), name="left"), tn.Input((6, 6, 2), name="right")
    model = tn.Model([left, right], head(L.subtract([encoder(left), encoder(right)])),
                     name="siamese", seed=0)
    model.build()
    model.export(tmp_path / "siamese.onnx", verbose=False)
    rng = np.random.default_rng(3)
    feeds = {name: rng.standard_normal((9, 6, 6, 2)).astype(np.float32)
             for name in ("left", "right")}
    expected = model.predict([feeds["left"], feeds["right"]], verbose=0)
    # the longest path: the 18-term convolution, the 36-term mean, 4 and 5 terms in the head
    assert_close(run(onnxruntime, tmp_path / "siamese.onnx", feeds), expected,
                 depth=2 * (18 + 36 + 4 + 5 + 4 * ELEMENTWISE))
    import onnx
    graph = onnx.load(str(tmp_path / "siamese.onnx")).graph
    assert sum(node.op_type == "Conv" for node in graph.node) == 2  # one per encoder call
