"""See inside a trained network: feature maps, Conv2D filters, misclassified images and
per-class accuracy, as arrays (to plot your own way) and as PNG figures.

The ``plot_*`` functions draw with matplotlib as ``tinynn.plotting`` does (the Agg backend
unless pyplot is already imported), write the PNG (creating its directory), close the figure
and return the path. Grids show each tile scaled to [0, 1] by its own minimum and maximum
(``tile_grid``), with one blank pixel between tiles.
"""

from __future__ import annotations

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
