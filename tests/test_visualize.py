"""tinynn.visualize: the arrays against hand computations, the figures as PNG files."""

import numpy as np
import pytest

import tinynn as tn
from tinynn import visualize
from tinynn.errors import ArgumentError, ShapeError
from tinynn.testing import check_gradient, floatx

L = tn.layers


def small_cnn(seed=0):
    model = tn.Sequential([L.Input((6, 6, 2)), L.Conv2D(3, 3, activation="relu", name="conv"),
                           L.MaxPooling2D(2), L.Flatten(), L.Dense(3, activation="softmax")],
                          seed=seed)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.build()
    return model


IMAGES = np.random.default_rng(0).standard_normal((5, 6, 6, 2)).astype(np.float32)


def test_feature_maps_are_the_layers_own_outputs():
    model = small_cnn()
    got = visualize.feature_maps(model, "conv", IMAGES)
    np.testing.assert_array_equal(got, model.get_layer("conv").forward(IMAGES))
    pooled = visualize.feature_maps(model, model.layers[1], IMAGES)
    np.testing.assert_array_equal(pooled, model.layers[1].forward(got))


def test_tile_grid_scales_each_tile_and_leaves_gaps():
    tiles = np.stack([np.arange(6.0).reshape(2, 3), np.full((2, 3), 7.0),
                      -np.arange(6.0).reshape(2, 3)])
    grid = visualize.tile_grid(tiles, columns=2)
    assert grid.shape == (2 * 3 - 1, 2 * 4 - 1)
    np.testing.assert_allclose(grid[0:2, 0:3], np.arange(6.0).reshape(2, 3) / 5)
    np.testing.assert_array_equal(grid[0:2, 4:7], 0.0)  # a constant tile
    np.testing.assert_allclose(grid[3:5, 0:3], (5 - np.arange(6.0).reshape(2, 3)) / 5)
    assert np.isnan(grid[2]).all() and np.isnan(grid[:, 3]).all() and np.isnan(grid[3:, 4:]).all()
    with pytest.raises(ShapeError, match=r"expected tiles \(K, height, width\), got shape"):
        visualize.tile_grid(np.zeros((2, 3)))


def test_filter_grid_shows_each_filter_of_a_channel_or_their_mean():
    conv = small_cnn().get_layer("conv")
    kernel = conv.params["kernel"].astype(np.float64)  # (3, 3, 2, 3)
    grid = visualize.filter_grid(conv, channel=1, columns=3)
    for f in range(3):
        tile = kernel[:, :, 1, f]
        np.testing.assert_allclose(grid[0:3, 4 * f:4 * f + 3],
                                   (tile - tile.min()) / np.ptp(tile), atol=1e-6)
    mean = kernel.mean(axis=2)[:, :, 2]
    np.testing.assert_allclose(visualize.filter_grid(conv)[0:3, 8:11],
                               (mean - mean.min()) / np.ptp(mean), atol=1e-6)
    with pytest.raises(ArgumentError, match="expected a built Conv2D layer"):
        visualize.filter_grid(L.Flatten())


def test_misclassified_lists_the_most_confident_mistakes_first():
    model = small_cnn()
    labels = np.array([0, 1, 2, 0, 1])
    probabilities = model.predict(IMAGES, verbose=0)
    predicted = probabilities.argmax(axis=1)
    indices, guesses, confidence = visualize.misclassified(model, IMAGES, labels)
    expected = [i for i in range(5) if predicted[i] != labels[i]]
    assert sorted(indices.tolist()) == expected
    np.testing.assert_array_equal(guesses, predicted[indices])
    np.testing.assert_array_equal(confidence, probabilities[indices, predicted[indices]])
    assert (np.diff(confidence) <= 0).all()


def test_per_class_accuracy_by_hand():
    accuracy = visualize.per_class_accuracy([0, 0, 1, 1, 1, 3], [0, 1, 1, 1, 0, 3], 4)
    np.testing.assert_allclose(accuracy[[0, 1, 3]], [0.5, 2 / 3, 1.0])
    assert np.isnan(accuracy[2])


def test_plots_write_png_files(tmp_path):
    model = small_cnn()
    gray = tn.Sequential([L.Input((6, 6, 1)), L.Flatten(), L.Dense(3, activation="softmax")],
                         seed=1)
    gray.build()
    paths = [visualize.plot_feature_maps(model, "conv", IMAGES[0], tmp_path / "maps.png"),
             visualize.plot_filters(model.get_layer("conv"), tmp_path / "f" / "filters.png"),
             visualize.plot_misclassified(gray, IMAGES[..., :1], np.array([0, 1, 2, 0, 1]),
                                          tmp_path / "wrong.png", class_names=["a", "b", "c"])]
    paths.append(visualize.plot_explanations(model, "conv", IMAGES[:3], tmp_path / "why.png"))
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ShapeError, match="expected at most 8 images, got 9"):
        visualize.plot_explanations(model, "conv", np.zeros((9, 6, 6, 2), np.float32),
                                    tmp_path / "many.png")
    with pytest.raises(ShapeError, match="expected a layer with image outputs"):
        visualize.plot_feature_maps(model, model.layers[2], IMAGES[0], tmp_path / "x.png")
    with pytest.raises(ShapeError, match=r"expected images .* got \(5, 6, 6, 2\)"):
        visualize.plot_misclassified(model, IMAGES, np.zeros(5, int), tmp_path / "y.png")


# -- gradients of the inference function -----------------------------------------------------------
def regularized_model():
    """Conv, BatchNormalization, Dropout and a softmax output, trained a little in float64 so
    that the moving statistics are not the initial ones."""
    with floatx("float64"):
        model = tn.Sequential([L.Input((5, 5, 1)), L.Conv2D(3, 3, activation="tanh"),
                               L.BatchNormalization(), L.Flatten(), L.Dropout(0.5),
                               L.Dense(3, activation="softmax")], seed=2)
        model.compile("adam", "sparse_categorical_crossentropy")
        x = np.random.default_rng(3).standard_normal((16, 5, 5, 1))
        model.fit(x, np.arange(16) % 3, epochs=2, batch_size=8, verbose=0)
    return model, x[:2]


def test_saliency_is_the_gradient_of_the_inference_logit(float64):
    model, x = regularized_model()
    moving = model.get_layer("batch_normalization").state["moving_mean"].copy()
    got = visualize.saliency(model, x, classes=[2, 0])
    np.testing.assert_array_equal(got, visualize.saliency(model, x, classes=[2, 0]))
    np.testing.assert_array_equal(moving, model.get_layer("batch_normalization")
                                  .state["moving_mean"])  # inference: statistics unchanged
    def score():  # the inference logits of class 2 for image 0 and class 0 for image 1
        logits = model.forward(x, training=False, logits=True)
        return logits[0, 2] + logits[1, 0]
    check_gradient(score, x, got, "saliency", np.random.default_rng(0))
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    np.testing.assert_array_equal(visualize.saliency(model, x),
                                  visualize.saliency(model, x, classes=predicted))
    with pytest.raises(ArgumentError, match=r"classes expected indices in \[0, 3\)"):
        visualize.saliency(model, x, classes=3)


def test_smooth_grad_averages_noisy_saliency_reproducibly(float64):
    model, x = regularized_model()
    np.testing.assert_allclose(visualize.smooth_grad(model, x, samples=3, noise_level=0.0),
                               visualize.saliency(model, x), atol=1e-12)
    first = visualize.smooth_grad(model, x, samples=4, seed=5)
    np.testing.assert_array_equal(first, visualize.smooth_grad(model, x, samples=4, seed=5))
    assert not np.allclose(first, visualize.smooth_grad(model, x, samples=4, seed=6))


def test_grad_cam_by_hand_on_a_small_model(float64):
    with floatx("float64"):
        model = tn.Sequential([L.Input((5, 5, 1)), L.Conv2D(2, 3, activation="relu",
                                                           name="conv"),
                               L.Flatten(), L.Dense(3, activation="softmax")], seed=4)
        model.build()
    x = np.random.default_rng(5).standard_normal((3, 5, 5, 1))
    activations = model.get_layer("conv").forward(x)  # (3, 3, 3, 2)
    kernel = model.layers[-1].params["kernel"]  # (18, 3): d(logit c)/d(flattened A)
    classes = np.array([0, 2, 1])
    expected = np.empty((3, 3, 3))
    for n, c in enumerate(classes):
        alpha = kernel[:, c].reshape(3, 3, 2).mean(axis=(0, 1))
        expected[n] = np.maximum((activations[n] * alpha).sum(axis=-1), 0)
    np.testing.assert_allclose(visualize.grad_cam(model, "conv", x, classes), expected,
                               atol=1e-12)
    with pytest.raises(ShapeError, match="grad_cam expected a layer with image outputs"):
        visualize.grad_cam(model, model.layers[1], x)
