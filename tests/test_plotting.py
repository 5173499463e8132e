"""Tests for tinynn.plotting: PNG files written, figures closed, lazy import, clear errors."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")  # tests run headless whatever the environment says
import matplotlib.pyplot as plt  # noqa: E402

from tinynn.errors import DTypeError, ShapeError  # noqa: E402
from tinynn.plotting import plot_confusion_matrix, plot_histories, plot_history  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO_ROOT = Path(__file__).resolve().parents[1]
HISTORY = {
    "loss": [1.2, 0.7, 0.5, 0.4],
    "accuracy": [0.55, 0.74, 0.81, 0.84],
    "val_loss": [1.0, 0.8, 0.6, 0.6],
    "val_accuracy": [0.6, 0.7, 0.78, 0.8],
}
CM = np.array([[50, 2, 0], [5, 40, 5], [0, 1, 60]])


def _assert_png_and_closed(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 5_000  # a real figure, not an empty canvas
    assert plt.get_fignums() == []


@pytest.fixture(autouse=True)
def _no_figures_before():
    plt.close("all")


# --- plot_history ---------------------------------------------------------------------------


def test_plot_history_writes_png_and_creates_parent_dirs(tmp_path):
    path = tmp_path / "nested" / "dirs" / "history.png"
    assert plot_history(HISTORY, path, title="Task 2") == path
    _assert_png_and_closed(path)


def test_plot_history_accepts_object_with_history_attribute_and_str_path(tmp_path):
    path = plot_history(SimpleNamespace(history=HISTORY), str(tmp_path / "h.png"))
    _assert_png_and_closed(path)


def test_plot_history_loss_only_single_epoch(tmp_path):
    _assert_png_and_closed(plot_history({"loss": [0.9]}, tmp_path / "one.png"))


# --- plot_histories -------------------------------------------------------------------------


def test_plot_histories_overlays_learning_rates(tmp_path):
    runs = {
        "lr=0.05": HISTORY,
        "lr=0.5": {"loss": [1.0, 0.5, 0.45, 0.44], "val_loss": [1.0, 0.6, 0.5, 0.5]},
        "lr=5": {"loss": [1.0, 40.0, np.inf, np.nan]},  # a diverged run still plots
    }
    path = plot_histories(runs, tmp_path / "alpha.png", title="high alpha / good alpha")
    _assert_png_and_closed(path)


def test_plot_histories_two_metric_panels_and_str_metric(tmp_path):
    runs = {"1 hidden": HISTORY, "3 hidden": SimpleNamespace(history=HISTORY)}
    _assert_png_and_closed(plot_histories(runs, tmp_path / "a.png", metrics=("loss", "accuracy")))
    _assert_png_and_closed(plot_histories(runs, tmp_path / "b.png", metrics="val_accuracy"))


# --- plot_confusion_matrix ------------------------------------------------------------------


@pytest.mark.parametrize("normalize", [False, True])
def test_plot_confusion_matrix_writes_png(tmp_path, normalize):
    path = tmp_path / "cm.png"
    names = ["T-shirt/top", "Trouser", "Pullover"]
    assert plot_confusion_matrix(CM, path, class_names=names, normalize=normalize) == path
    _assert_png_and_closed(path)


def test_plot_confusion_matrix_float_and_all_zero_row(tmp_path):
    cm = np.array([[0.0, 0.0], [0.25, 0.75]])
    _assert_png_and_closed(plot_confusion_matrix(cm, tmp_path / "f.png", normalize=True))


def test_plot_confusion_matrix_does_not_mutate_input(tmp_path):
    cm = CM.copy()
    cm.setflags(write=False)
    plot_confusion_matrix(cm, tmp_path / "cm.png", normalize=True)
    np.testing.assert_array_equal(cm, CM)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("history", [{}, SimpleNamespace(history={})])
def test_empty_history_is_shape_error(tmp_path, history):
    with pytest.raises(ShapeError, match=r"history expected a non-empty dict of per-epoch values"):
        plot_history(history, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_history_curves_must_be_non_empty_numbers(tmp_path):
    with pytest.raises(ShapeError, match=r"history\['val_loss'\] expected a non-empty 1-D"):
        plot_history({"loss": [1.0], "val_loss": []}, tmp_path / "x.png")
    with pytest.raises(DTypeError, match=r"history\['loss'\] expected numbers, got dtype <U"):
        plot_history({"loss": ["high", "low"]}, tmp_path / "x.png")


def test_plot_histories_errors(tmp_path):
    with pytest.raises(ShapeError, match=r"at least one run in histories, got none"):
        plot_histories({}, tmp_path / "x.png")
    with pytest.raises(ShapeError, match=r"at least one metric name, got none"):
        plot_histories({"a": HISTORY}, tmp_path / "x.png", metrics=())
    with pytest.raises(ShapeError, match=r"histories\['b'\] expected a non-empty dict"):
        plot_histories({"a": HISTORY, "b": {}}, tmp_path / "x.png")
    with pytest.raises(ShapeError, match=r"metric 'f1' in at least one history, got keys \["):
        plot_histories({"a": HISTORY}, tmp_path / "x.png", metrics="f1")
    assert plt.get_fignums() == []


@pytest.mark.parametrize("cm", [np.zeros((2, 3)), np.zeros(4), np.zeros((0, 0))])
def test_confusion_matrix_must_be_square(tmp_path, cm):
    with pytest.raises(ShapeError, match=r"cm expected a square \(K, K\) array"):
        plot_confusion_matrix(cm, tmp_path / "x.png")


def test_confusion_matrix_class_names_and_dtype_checked(tmp_path):
    with pytest.raises(ShapeError, match=r"class_names expected 3 names .*, got 2"):
        plot_confusion_matrix(CM, tmp_path / "x.png", class_names=["a", "b"])
    with pytest.raises(DTypeError, match=r"cm expected an integer or float array, got dtype bool"):
        plot_confusion_matrix(np.eye(2, dtype=bool), tmp_path / "x.png")


def test_figure_closed_when_saving_fails(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        plot_history(HISTORY, blocker / "history.png")
    assert plt.get_fignums() == []


# --- backend handling -----------------------------------------------------------------------


def _run_python(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_matplotlib_imported_lazily_and_agg_selected(tmp_path):
    code = (
        "import sys\n"
        "import tinynn.plotting as p\n"
        "print('matplotlib' in sys.modules)\n"
        f"p.plot_history({{'loss': [1.0, 0.5]}}, {str(tmp_path / 'h.png')!r})\n"
        "import matplotlib\n"
        "print(matplotlib.get_backend().lower())\n"
    )
    assert _run_python(code).split() == ["False", "agg"]


def test_backend_in_use_is_left_alone(tmp_path):
    code = (
        "import matplotlib\n"
        "matplotlib.use('svg')\n"
        "import matplotlib.pyplot\n"
        "import tinynn.plotting as p\n"
        f"p.plot_history({{'loss': [1.0, 0.5]}}, {str(tmp_path / 'h.png')!r})\n"
        "print(matplotlib.get_backend())\n"
    )
    assert _run_python(code) == "svg"
