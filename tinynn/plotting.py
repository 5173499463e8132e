"""Training curves, run overlays and confusion-matrix heatmaps, saved as PNG files.

matplotlib is imported on the first plot, not with tinynn. If ``matplotlib.pyplot`` has not been
imported yet, the non-interactive "Agg" backend is selected first, so plotting works on servers
without a display; a later ``plt.show()`` in the same process then shows nothing (import pyplot
before plotting, or call ``plt.switch_backend``, to keep an interactive backend). A backend
already in use is left alone. Every function writes the PNG (creating parent directories),
closes its figure, also on error, and returns the path.
"""

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .errors import DTypeError, ShapeError

_VAL_PREFIX = "val_"
_MAX_EPOCHS_WITH_MARKERS = 50  # dots show isolated finite points of a diverged run


def plot_history(history, path: str | os.PathLike, title: str | None = None) -> Path:
    """Plot each metric of one run per epoch: a panel per metric, e.g. loss and accuracy.

    Parameters
    ----------
    history : dict[str, sequence of float] or an object with such a ``.history`` dict
        Keras's ``History.history`` layout, e.g. ``{"loss": [...], "accuracy": [...],
        "val_loss": [...], "val_accuracy": [...]}``; ``val_<m>`` is drawn dashed in the
        panel of ``<m>``. Epochs are numbered 1..E on the x axis.
    path : where to write the PNG.
    title : figure title, optional.
    """
    curves = _curves(history, "history")
    metrics = list(dict.fromkeys(_base_name(key) for key in curves))
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    try:
        for ax, metric in zip(axes[0], metrics):
            for key, style in ((metric, "-"), (_VAL_PREFIX + metric, "--")):
                if key in curves:
                    _plot_curve(ax, curves[key], style, label=key)
            _decorate(ax, metric)
        return _save(fig, path, title)
    finally:
        plt.close(fig)


def plot_histories(
    histories: Mapping[str, object],
    path: str | os.PathLike,
    metrics: str | Sequence[str] = ("loss",),
    title: str | None = None,
) -> Path:
    """Overlay several runs, e.g. learning rates or depths: one panel per metric.

    Parameters
    ----------
    histories : dict[str, history]
        Run name -> history (as in :func:`plot_history`), e.g. ``{"lr=0.05": h1, "lr=5": h2}``.
        Each run has its own colour: training solid, validation (``val_<metric>``) dashed.
    path : where to write the PNG.
    metrics : metric name or names, e.g. ``"loss"`` or ``("loss", "accuracy")``.
        Runs without a metric are skipped in its panel; a metric no run has is an error.
    title : figure title, optional.
    """
    if not histories:
        raise ShapeError("plot_histories expected at least one run in histories, got none")
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    if not metrics:
        raise ShapeError("plot_histories expected at least one metric name, got none")
    runs = {name: _curves(history, f"histories[{name!r}]") for name, history in histories.items()}
    _check_metrics_present(runs, metrics)
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    try:
        for ax, metric in zip(axes[0], metrics):
            for i, (name, curves) in enumerate(runs.items()):
                for key, style, label in (
                    (metric, "-", name),
                    (_VAL_PREFIX + metric, "--", f"{name} (val)"),
                ):
                    if key in curves:
                        _plot_curve(ax, curves[key], style, label=label, color=f"C{i % 10}")
            _decorate(ax, metric)
        return _save(fig, path, title)
    finally:
        plt.close(fig)


def plot_confusion_matrix(
    cm,
    path: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    normalize: bool = False,
    title: str | None = None,
) -> Path:
    """Heatmap of a confusion matrix with the value written in each cell.

    Parameters
    ----------
    cm : array (K, K)
        Rows are true labels, columns predicted labels (see ``metrics.confusion_matrix``).
    path : where to write the PNG.
    class_names : K tick labels, optional; defaults to ``0..K-1``.
    normalize : bool
        Divide each row by its sum (the per-class recall on the diagonal); all-zero rows stay 0.
    title : defaults to "Confusion matrix" (with "(normalized)" when normalizing).
    """
    values = _check_confusion_matrix(cm, class_names)
    k = len(values)
    names = [str(i) for i in range(k)] if class_names is None else [str(n) for n in class_names]
    if normalize:
        row_sums = values.sum(axis=1, keepdims=True)  # (K, 1)
        values = np.divide(values, row_sums, out=np.zeros(values.shape), where=row_sums > 0)
    fmt = ".2f" if values.dtype.kind == "f" else "d"
    plt = _pyplot()
    side = max(4.0, 0.6 * k + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    try:
        image = ax.imshow(values, cmap="Blues")
        fig.colorbar(image, ax=ax)
        ticks = np.arange(k)
        ax.set_xticks(ticks, names, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(ticks, names)
        ax.set_xlabel("Predicted label")
        ax.set_ylabel("True label")
        threshold = values.max() / 2
        for (i, j), value in np.ndenumerate(values):
            color = "white" if value > threshold else "black"
            ax.text(j, i, format(value, fmt), ha="center", va="center", color=color)
        default_title = "Confusion matrix (normalized)" if normalize else "Confusion matrix"
        return _save(fig, path, title or default_title)
    finally:
        plt.close(fig)


def _pyplot():
    """Import pyplot, selecting the Agg backend first unless pyplot is already imported."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curves(history, name: str) -> dict[str, np.ndarray]:
    """Validate a history (dict or object with ``.history``) into 1-D float arrays per key."""
    data = getattr(history, "history", history)
    if not isinstance(data, Mapping) or not data:
        raise ShapeError(
            f"{name} expected a non-empty dict of per-epoch values like "
            f"{{'loss': [...], 'val_loss': [...]}}, got {data!r}"
        )
    curves = {}
    for key, values in data.items():
        curve = np.asarray(values)
        if curve.dtype.kind not in "iuf":
            raise DTypeError(f"{name}[{key!r}] expected numbers, got dtype {curve.dtype}")
        if curve.ndim != 1 or curve.size == 0:
            raise ShapeError(
                f"{name}[{key!r}] expected a non-empty 1-D sequence (one value per epoch), "
                f"got shape {curve.shape}"
            )
        curves[str(key)] = curve.astype(np.float64)
    return curves


def _check_metrics_present(runs: dict[str, dict], metrics: tuple[str, ...]) -> None:
    available = sorted({key for curves in runs.values() for key in curves})
    for metric in metrics:
        if not any(key in available for key in (metric, _VAL_PREFIX + metric)):
            raise ShapeError(
                f"plot_histories expected metric {metric!r} in at least one history, "
                f"got keys {available}"
            )


def _check_confusion_matrix(cm, class_names) -> np.ndarray:
    values = np.asarray(cm)
    if values.dtype.kind not in "iuf":
        raise DTypeError(f"cm expected an integer or float array, got dtype {values.dtype}")
    if values.ndim != 2 or values.shape[0] != values.shape[1] or values.size == 0:
        raise ShapeError(f"cm expected a square (K, K) array with K >= 1, got shape {values.shape}")
    if class_names is not None and len(class_names) != len(values):
        raise ShapeError(
            f"class_names expected {len(values)} names (one per row of cm), got {len(class_names)}"
        )
    return values


def _base_name(key: str) -> str:
    return key.removeprefix(_VAL_PREFIX)


def _plot_curve(ax, curve: np.ndarray, style: str, **kwargs) -> None:
    epochs = np.arange(1, len(curve) + 1)
    marker = "." if len(curve) <= _MAX_EPOCHS_WITH_MARKERS else None
    ax.plot(epochs, curve, style, marker=marker, **kwargs)


def _decorate(ax, metric: str) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    ax.legend()


def _save(fig, path: str | os.PathLike, title: str | None) -> Path:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path
