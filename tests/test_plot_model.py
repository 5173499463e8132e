"""plot_model and model_to_dot: the graph's boxes and arrows (one arrow per input of every
call, a shared layer's calls included), files in every format, and a clear error without
Graphviz. Rendering needs Graphviz's ``dot``: skipped without it, failed instead with
TINYNN_REQUIRE_GRAPHVIZ=1 (CI installs it)."""

import os
import re
import shutil

import numpy as np
import pytest

import tinynn as tn
from tinynn.errors import ArgumentError, MissingDependencyError

from .test_summary import two_inputs


@pytest.fixture
def graphviz():
    if shutil.which("dot") is None:
        if os.environ.get("TINYNN_REQUIRE_GRAPHVIZ") == "1":
            pytest.fail("TINYNN_REQUIRE_GRAPHVIZ=1 but Graphviz's dot is not installed")
        pytest.skip("Graphviz's dot is not installed")


def test_the_dot_text_has_a_box_per_layer_and_an_arrow_per_call_input():
    model = two_inputs(tn)
    text = tn.utils.model_to_dot(model, show_shapes=True)
    labels = dict(re.findall(r'  (n\d+) \[label="\{?([^|"\\]+)', text))
    assert list(labels.values()) == [f"{layer.name} ({type(layer).__name__})"
                                     for layer in model.layers]
    arrows = re.findall(r"  (n\d+) -> (n\d+);", text)
    names = [(labels[a], labels[b]) for a, b in arrows]
    assert ("dense (Dense)", "dense (Dense)") in names  # the shared layer's second call
    assert len(arrows) == sum(len(node.inputs) for node in model.nodes)
    assert "output: (None, 261)" in text and "input: (None, 256), (None, 5)" in text


def test_a_sequential_model_is_drawn_without_its_input_layer():
    model = tn.Sequential([tn.Input((4,)), tn.layers.Dense(3), tn.layers.Dense(2)])
    text = tn.utils.model_to_dot(model)
    assert text.count("[label=") == 2 and text.count("->") == 1


def test_a_dot_file_needs_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    path = tn.utils.plot_model(two_inputs(tn), tmp_path / "model.dot", rankdir="LR")
    assert path.read_text().startswith('digraph "two_inputs" {\n  graph [rankdir=LR')


def test_without_graphviz_an_image_is_refused_naming_it_and_nothing_is_written(tmp_path,
                                                                               monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match="needs Graphviz's dot program"):
        tn.utils.plot_model(two_inputs(tn), tmp_path / "model.png")
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ArgumentError, match=r"extensions .* got '.*model.gif'"):
        tn.utils.plot_model(two_inputs(tn), tmp_path / "model.gif")
    with pytest.raises(ArgumentError, match="rankdir expected one of"):
        tn.utils.model_to_dot(two_inputs(tn), rankdir="XY")


@pytest.mark.parametrize("name, magic", [("model.png", b"\x89PNG\r\n\x1a\n"),
                                         ("model.svg", b"<?xml"), ("model.pdf", b"%PDF")])
def test_images_are_drawn_by_graphviz(graphviz, tmp_path, name, magic):
    model = two_inputs(tn)
    path = tn.utils.plot_model(model, tmp_path / name, show_shapes=True, dpi=72)
    assert path.read_bytes().startswith(magic)
    if name.endswith(".svg"):
        svg = path.read_text()
        assert all(layer.name in svg for layer in model.layers)
        assert svg.count('class="edge"') == sum(len(node.inputs) for node in model.nodes)
    if name.endswith(".png"):
        assert np.frombuffer(path.read_bytes()[16:24], ">u4").min() > 50  # width, height


def siamese():
    """A functional encoder called twice and a Sequential head: two nested models."""
    layers = tn.layers
    a = tn.Input((5,), name="enc_in")
    encoder = tn.Model(a, layers.Dense(3, name="enc_out")(layers.Dense(4, name="enc_hidden")(a)),
                       name="encoder")
    head = tn.Sequential([layers.Input((3,)), layers.Dense(2, name="head_out")], name="head")
    x1, x2 = tn.Input((5,), name="x1"), tn.Input((5,), name="x2")
    diff = layers.subtract([encoder(x1), encoder(x2)], name="diff")
    return tn.Model([x1, x2], head(diff), name="siamese")


def test_nested_models_are_one_box_or_with_expand_nested_a_cluster_of_their_layers():
    model = siamese()
    model.build()
    flat = tn.utils.model_to_dot(model)
    assert "subgraph" not in flat and '"encoder (Model)"' in flat
    expanded = tn.utils.model_to_dot(model, expand_nested=True)
    clusters = re.findall(r'subgraph (\w+) \{\n\s+label="([^"]+)"', expanded)
    assert [label for _, label in clusters] == ["encoder (Model)", "head (Sequential)"]
    name_of = dict(re.findall(r'(\w+) \[label="(\w+) \(', expanded))  # box -> layer name
    arrows = re.findall(r"(\w+) -> (\w+);", expanded)
    assert sorted((name_of[a], name_of[b]) for a, b in arrows) == sorted([
        ("enc_in", "enc_hidden"), ("enc_hidden", "enc_out"),  # inside the encoder
        ("x1", "enc_in"), ("x2", "enc_in"),  # each call's input into the encoder's input
        ("enc_out", "diff"), ("enc_out", "diff"), ("diff", "head_out")])


def test_an_expanded_drawing_renders(graphviz, tmp_path):
    model = siamese()
    path = tn.utils.plot_model(model, tmp_path / "siamese.svg", expand_nested=True)
    svg = path.read_text()
    assert all(name in svg for name in ("enc_hidden", "enc_out", "head_out", "x1", "diff"))
