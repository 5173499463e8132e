"""Shared parts of the report examples: data, evaluation printout and plots, and data-parallel
training when started by ``mpiexec`` or ``srun``."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import tempfile
import time
from pathlib import Path

import tinynn as tn  # before NumPy: it sets OpenBLAS's thread timeout, read when NumPy loads it

# isort: split
import numpy as np

from tinynn.datasets import fashion_mnist
from tinynn.metrics import classification_report, confusion_matrix
from tinynn.plotting import plot_confusion_matrix


def base_parser(description: str, *, epochs: int, batch_size: int, out: str):
    """Flags every example shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N training and N test images (quick runs)")
    parser.add_argument("--out", type=Path, default=Path(out), help="directory for plots/models")
    parser.add_argument("--verbose", type=int, default=None, choices=(0, 1, 2),
                        help="progress: 1 bar, 2 one line per epoch (default: bar on a terminal)")
    return parser


def parse_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the flags; ``verbose`` becomes "auto" when not given, ``--out`` is created."""
    args = parser.parse_args()
    args.verbose = "auto" if args.verbose is None else args.verbose
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def data_parallel_if_launched(args: argparse.Namespace) -> None:
    """When ``mpiexec -n N`` or ``srun -n N`` started this example (N > 1), train data-parallel
    across the N processes: every fit, evaluate and predict is then shared by the ranks
    (``tinynn.distribution``). Rank 0 alone prints and keeps files: the other ranks' standard
    output goes to /dev/null and their ``--out`` to a temporary directory deleted at exit."""
    if tn.distribution.world_size() == 1:
        return
    tn.distribution.set_distribution(tn.distribution.DataParallel())
    rank = tn.distribution.rank()
    if rank == 0:
        threads = ", ".join(f"{count} {pool}" for pool, count in
                            (tn.distribution.thread_counts() or {}).items())
        print(f"data-parallel training on {tn.distribution.world_size()} processes"
              + (f" ({threads} threads each)" if threads else ""))
        return
    scratch = tempfile.TemporaryDirectory(prefix=f"tinynn-rank{rank}-")
    atexit.register(scratch.cleanup)
    args.out = Path(scratch.name)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the rest of the process)


def learning_rates(text: str) -> list[float]:
    """``"0.05,0.5,5"`` -> ``[0.05, 0.5, 5.0]``; an empty string gives no rates."""
    return [float(rate) for rate in text.split(",") if rate.strip()]


def load_fashion_mnist(limit: int | None = None):
    """Fashion-MNIST scaled to [0, 1] float32: x (N, 28, 28), y (N,) uint8 labels."""
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    if limit is not None:
        x_train, y_train, x_test, y_test = (x_train[:limit], y_train[:limit],
                                            x_test[:limit], y_test[:limit])
    scale = np.float32(1 / 255)
    return (x_train * scale, y_train), (x_test * scale, y_test)


def report_test_results(model: tn.Model, x_test, y_test, out: Path, tag: str,
                        targets=None) -> float:
    """Print test loss/accuracy, the confusion matrix and the classification report; save the
    heatmap as ``out/<tag>_confusion_matrix.png``. ``targets`` are what the loss expects when
    not the labels ``y_test`` (e.g. one-hot rows for MSE). Returns the test accuracy."""
    targets = y_test if targets is None else targets
    loss, accuracy = model.evaluate(x_test, targets, batch_size=1000, verbose=0)
    print(f"test loss {loss:.4f} - test accuracy {accuracy:.4f}")
    predicted = model.predict(x_test, batch_size=1000, verbose=0).argmax(axis=1)
    cm = confusion_matrix(y_test, predicted, num_classes=10)
    print("confusion matrix (rows: true label, columns: predicted label)")
    print(cm)
    print(classification_report(y_test, predicted, target_names=fashion_mnist.CLASS_NAMES,
                                digits=4))
    path = plot_confusion_matrix(cm, out / f"{tag}_confusion_matrix.png",
                                 class_names=fashion_mnist.CLASS_NAMES,
                                 title=f"{tag}: test accuracy {accuracy:.4f}")
    print(f"saved {path}")
    return accuracy


class Stopwatch:
    """``with Stopwatch() as sw: ...``; then ``sw.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
