"""See inside a trained network: feature maps, Conv2D filters, saliency maps (and SmoothGrad),
Grad-CAM, misclassified images and per-class accuracy, as arrays (to plot your own way) and as
PNG figures.

Saliency and Grad-CAM differentiate the network's inference function with tinynn's own
backward pass (``inference_gradients``): a class score is the output layer's pre-softmax
value when it ends in softmax, its output otherwise.

The ``plot_*`` functions draw with matplotlib as ``tinynn.plotting`` does (the Agg backend
unless pyplot is already imported), write the PNG (creating its directory), close the figure
and return the path. Grids show each tile scaled to [0, 1] by its own minimum and maximum
(``tile_grid``), with one blank pixel between tiles.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import numpy as np

from .errors import ArgumentError, ShapeError
from .plotting import _pyplot, _save


def feature_maps(model, layer, images: np.ndarray) -> np.ndarray:
    """The output of ``layer`` (a layer of ``model``, or its name) for ``images``
    (N, *input_shape): (N, *the layer's output shape), computed by a sub-model of ``model``
    that shares its weights, in inference mode."""
    from .models import Model
    layer = model.get_layer(layer) if isinstance(layer, str) else layer
    probe = Model(model.inputs, layer.output, name=f"{model.name}_to_{layer.name}")
    return probe.predict(images, verbose=0)


@contextlib.contextmanager
def inference_gradients(model):
    """Within the block, a ``forward(training=True)`` of ``model``'s layers computes what
    inference computes (no dropout or augmentation draws, BatchNormalization's moving
    statistics left unchanged) and keeps what ``backward`` needs."""
    layers = list({id(layer): layer for layer in model.leaf_layers}.values())  # shared: once
    for layer in layers:
        layer.inference_gradients = True
    try:
        yield
    finally:
        for layer in layers:
            del layer.inference_gradients  # back to the class's False


def saliency(model, images: np.ndarray, classes=None) -> np.ndarray:
    """d(class score)/d(input) for each image (N, *input_shape): the score of ``classes`` (an
    int, or one per image; by default each image's predicted class). Signed; take its
    absolute value (and maximum over channels) for the usual map. Fills the model's gradient
    buffer as a side effect, never its weights."""
    x, _ = model.prepare(images)
    logits = _logit_flag(model)
    with inference_gradients(model):
        scores = model.forward(x, training=True, logits=logits)
        dscores = _one_hot(scores, classes)
        return model.backward(dscores, logits, input_gradient=True, regularization=False)


def smooth_grad(model, images: np.ndarray, classes=None, samples: int = 25,
                noise_level: float = 0.15, seed: int = 0) -> np.ndarray:
    """SmoothGrad: the mean ``saliency`` of ``samples`` copies of each image plus Gaussian
    noise of standard deviation ``noise_level`` times the image's value range, drawn from a
    Generator seeded with ``seed`` (the same seed, the same map). Classes default to the
    predictions on the clean images."""
    images = np.asarray(images, dtype=np.float64)
    if classes is None:
        classes = model.predict(images.astype(model.parameters.dtype), verbose=0).argmax(axis=1)
    rng = np.random.default_rng(seed)
    spread = np.ptp(images.reshape(len(images), -1), axis=1).reshape(-1, *[1] * (images.ndim - 1))
    total = 0.0
    for _ in range(samples):
        noisy = images + rng.standard_normal(images.shape) * noise_level * spread
        total = total + saliency(model, noisy.astype(model.parameters.dtype), classes)
    return total / samples


def grad_cam(model, layer, images: np.ndarray, classes=None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al.): for each image, ReLU(sum over channels k of alpha_k A_k),
    A the output (N, h, w, K) of ``layer`` (an image layer of a chain model, or its name) and
    alpha_k the mean over (h, w) of d(class score)/dA_k. Returns (N, h, w), not rescaled."""
    layer = model.get_layer(layer) if isinstance(layer, str) else layer
    chain = [node.layer for node in model.nodes
             if type(node.layer).__name__ != "InputLayer"]
    if not model._is_chain() or layer not in chain:
        raise ArgumentError(f"grad_cam expected a layer of a chain model (Sequential), got "
                            f"{layer.name!r} in {model.name!r}")
    head = chain[chain.index(layer) + 1:]
    activations = feature_maps(model, layer, images)
    if activations.ndim != 4:
        raise ShapeError(f"grad_cam expected a layer with image outputs (N, h, w, K), got "
                         f"{activations.shape}")
    logits = _logit_flag(model)
    with inference_gradients(model):
        h = activations
        for i, step in enumerate(head):
            last = i == len(head) - 1
            h = step.forward_logits(h, True) if last and logits else step.forward(h, True)
        gradient = _one_hot(h, classes)
        for i, step in reversed(list(enumerate(head))):
            step.compute_input_gradient = True
            last = i == len(head) - 1
            gradient = (step.backward_logits(gradient) if last and logits
                        else step.backward(gradient))
    weights = gradient.mean(axis=(1, 2), keepdims=True)  # alpha_k: (N, 1, 1, K)
    return np.maximum((weights * activations).sum(axis=-1), 0)


def _logit_flag(model) -> bool:
    """Whether the (single) output is a softmax layer that can give its logits."""
    if len(model.outputs) != 1:
        raise ArgumentError(f"saliency and grad_cam expected a model with one output, "
                            f"{model.name!r} has {len(model.outputs)}")
    last = model.outputs[0].history[0]
    return type(getattr(last, "activation", None)).__name__ == "Softmax" and hasattr(
        last, "forward_logits")


def _one_hot(scores: np.ndarray, classes) -> np.ndarray:
    """d(sum of each row's class score)/d(scores): 1 at each row's class, 0 elsewhere."""
    chosen = scores.argmax(axis=1) if classes is None else np.broadcast_to(
        np.asarray(classes), (len(scores),))
    if not ((0 <= chosen) & (chosen < scores.shape[1])).all():
        raise ArgumentError(f"classes expected indices in [0, {scores.shape[1]}), got "
                            f"{classes!r}")
    dscores = np.zeros_like(scores)
    dscores[np.arange(len(scores)), chosen] = 1
    return dscores


def tile_grid(tiles: np.ndarray, columns: int = 8) -> np.ndarray:
    """Tiles (K, h, w) side by side in rows of ``columns``: a (rows * (h + 1) - 1,
    columns * (w + 1) - 1) array, each tile scaled to [0, 1] by its own minimum and maximum (a
    constant tile becomes 0), NaN between tiles and in unused places."""
    tiles = np.asarray(tiles, dtype=np.float64)
    if tiles.ndim != 3 or not len(tiles):
        raise ShapeError(f"tile_grid expected tiles (K, height, width), got shape {tiles.shape}")
    count, height, width = tiles.shape
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    grid = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), np.nan)
    for index, tile in enumerate(tiles):
        low, span = tile.min(), np.ptp(tile)
        top, left = (index // columns) * (height + 1), (index % columns) * (width + 1)
        grid[top:top + height, left:left + width] = (tile - low) / span if span else 0.0
    return grid


def filter_grid(layer, channel: int | None = None, columns: int = 8) -> np.ndarray:
    """The kernels of a Conv2D ``layer`` as a ``tile_grid``, one tile per filter: the weights
    of input ``channel``, or their mean over the input channels when None."""
    kernel = layer.params.get("kernel") if hasattr(layer, "params") else None
    if kernel is None or kernel.ndim != 4:
        raise ArgumentError(f"filter_grid expected a built Conv2D layer, got {layer!r}")
    weights = kernel.mean(axis=2) if channel is None else kernel[:, :, channel, :]
    return tile_grid(np.moveaxis(weights, -1, 0), columns)


def misclassified(model, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """The samples ``model`` gets wrong, most confident mistakes first: their indices in ``x``,
    predicted classes and the probability given to them. ``y``: class labels (N,)."""
    probabilities = model.predict(x, verbose=0)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(y).reshape(-1))
    confidence = probabilities[wrong, predicted[wrong]]
    order = np.argsort(-confidence, kind="stable")
    return wrong[order], predicted[wrong][order], confidence[order]


def per_class_accuracy(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(num_classes,) accuracy of the samples of each true class (NaN for a class absent
    from ``y_true``), from class labels ``y_true`` and ``y_pred`` (N,)."""
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    totals = np.bincount(y_true, minlength=num_classes).astype(np.float64)
    correct = np.bincount(y_true[y_true == y_pred], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, correct / totals, np.nan)


def plot_feature_maps(model, layer, image: np.ndarray, path: str | os.PathLike,
                      columns: int = 8, title: str | None = None) -> Path:
    """The channels of ``layer``'s output for one ``image`` (*input_shape), as a grid."""
    maps = feature_maps(model, layer, image[None])[0]
    if maps.ndim != 3:
        raise ShapeError(f"plot_feature_maps expected a layer with image outputs (H, W, C), "
                         f"got {maps.shape}")
    name = layer if isinstance(layer, str) else layer.name
    return _show_grid(tile_grid(np.moveaxis(maps, -1, 0), columns), path,
                      title or f"feature maps of {name!r}")


def plot_filters(layer, path: str | os.PathLike, channel: int | None = None,
                 columns: int = 8, title: str | None = None) -> Path:
    """A Conv2D layer's filters as a grid (``filter_grid``)."""
    return _show_grid(filter_grid(layer, channel, columns), path,
                      title or f"filters of {layer.name!r}")


def plot_misclassified(model, x: np.ndarray, y, path: str | os.PathLike,
                       class_names: list[str] | None = None, count: int = 16,
                       columns: int = 4, title: str | None = None) -> Path:
    """The ``count`` most confident mistakes on ``x`` (images (N, H, W), (N, H, W, 1) or RGB
    (N, H, W, 3)), each titled with its true and predicted class and the predicted
    probability."""
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[-1] in (1, 3))):
        raise ShapeError(f"plot_misclassified expected images (N, H, W), (N, H, W, 1) or "
                         f"(N, H, W, 3), got {x.shape}")
    indices, predicted, confidence = misclassified(model, x, y)
    shown = min(count, len(indices))
    rows = max(1, math.ceil(shown / columns))
    plt = _pyplot()
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows),
                             squeeze=False)
    try:
        names = class_names or [str(k) for k in range(int(np.max(predicted, initial=0)) + 1)]
        for ax in axes.flat:
            ax.axis("off")
        for ax, index, guess, p in zip(axes.flat, indices[:shown], predicted, confidence):
            ax.imshow(np.squeeze(x[index]), cmap="gray")
            ax.set_title(f"{names[int(np.asarray(y).reshape(-1)[index])]}\n-> {names[guess]} "
                         f"({p:.0%})", fontsize=8)
        return _save(fig, path, title or f"{len(indices)} misclassified of {len(x)}")
    finally:
        plt.close(fig)


def plot_explanations(model, layer, images: np.ndarray, path: str | os.PathLike,
                      class_names: list[str] | None = None, title: str | None = None) -> Path:
    """One row per image (N <= 8): the image, its saliency map (the absolute gradient's
    maximum over channels) and its Grad-CAM for ``layer`` laid over it, for the predicted
    class (named in the row's title with its probability). Images that are neither gray nor
    RGB are shown as the mean of their channels."""
    if len(images) > 8:
        raise ShapeError(f"plot_explanations expected at most 8 images, got {len(images)}")
    probabilities = model.predict(images, verbose=0)
    predicted = probabilities.argmax(axis=1)
    maps = np.abs(saliency(model, images, predicted)).max(axis=-1)
    cams = grad_cam(model, layer, images, predicted)
    names = class_names or [str(k) for k in range(probabilities.shape[1])]
    layer_name = layer if isinstance(layer, str) else layer.name
    plt = _pyplot()
    fig, axes = plt.subplots(len(images), 3, figsize=(7.5, 2.6 * len(images)), squeeze=False)
    try:
        for row, (image, heat, cam, guess) in enumerate(zip(images, maps, cams, predicted)):
            picture = np.squeeze(image)
            if picture.ndim == 3 and picture.shape[-1] != 3:  # not RGB: the channels' mean
                picture = picture.mean(axis=-1)
            height, width = picture.shape[:2]
            axes[row, 0].imshow(picture, cmap="gray")
            axes[row, 0].set_title(f"{names[guess]} ({probabilities[row, guess]:.0%})",
                                   fontsize=9)
            axes[row, 1].imshow(heat, cmap="hot")
            axes[row, 1].set_title("saliency", fontsize=9)
            axes[row, 2].imshow(picture, cmap="gray")
            axes[row, 2].imshow(cam, cmap="jet", alpha=0.5, extent=(-0.5, width - 0.5,
                                                                     height - 0.5, -0.5))
            axes[row, 2].set_title(f"Grad-CAM ({layer_name})", fontsize=9)
            for ax in axes[row]:
                ax.axis("off")
        return _save(fig, path, title)
    finally:
        plt.close(fig)


def _show_grid(grid: np.ndarray, path, title: str) -> Path:
    plt = _pyplot()
    width = min(10.0, max(3.0, grid.shape[1] / 24))  # inches, the grid's aspect kept
    fig, ax = plt.subplots(figsize=(width, width * grid.shape[0] / grid.shape[1] + 0.5))
    try:
        ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0, vmax=1)
        ax.axis("off")
        return _save(fig, path, title)
    finally:
        plt.close(fig)
