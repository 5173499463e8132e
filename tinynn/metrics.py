"""Classification metrics: accuracy (and count_correct), confusion matrix, sklearn-style report.

Labels are class indices ``0..K-1``, given as ``(N,)`` or ``(N, 1)`` arrays of ints or
integral floats. Every function validates before computing (lengths, dtypes, negative,
non-integral or out-of-range labels) and never writes into the arrays it is given.
"""

from collections.abc import Sequence
from numbers import Integral

import numpy as np

from .errors import ArgumentError, DTypeError, LabelError, ShapeError

_HEADERS = ("precision", "recall", "f1-score", "support")
_LONGEST_HEADING = "weighted avg"


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose highest score is the true class (Keras's ``"accuracy"``).

    Parameters
    ----------
    y_true : array (N,) or (N, 1) of class labels, or (N, K) one-hot / probability rows
        (reduced by argmax). ``(N, 1)`` is always read as labels.
    y_pred : array (N, K)
        Scores, probabilities or logits; the prediction is the argmax of each row, as
        ``np.argmax``: ties go to the lowest class index and a NaN counts as the maximum.

    Returns
    -------
    float in [0, 1].
    """
    truth, predicted = _true_and_predicted(y_true, y_pred)
    _check_not_empty(len(truth), "accuracy")
    return float(np.mean(truth == predicted))


def count_correct(y_true, y_pred) -> int:
    """Number of samples whose highest score is the true class: ``accuracy * N``.

    Takes the same inputs as :func:`accuracy` and also accepts N = 0; the model sums it over
    batches.
    """
    truth, predicted = _true_and_predicted(y_true, y_pred)
    return int(np.count_nonzero(truth == predicted))


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Count matrix ``cm[i, j]`` = number of samples of true class i predicted as class j.

    Equal to ``sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(K))``; without
    ``labels`` sklearn keeps only the labels that occur, here rows and columns always run over
    ``0..K-1``.

    Parameters
    ----------
    y_true : array (N,) or (N, 1) of true class labels.
    y_pred : array (N,) or (N, 1) of predicted class labels, not scores: pass
        ``scores.argmax(axis=1)``.
    num_classes : int, optional
        K; labels must lie in ``[0, K)``. Defaults to the largest label in either array + 1.

    Returns
    -------
    cm : int64 array (K, K); rows are true labels, columns predicted labels.
    """
    k = None if num_classes is None else _check_num_classes(num_classes)
    truth = _as_labels(y_true, "y_true", k)
    predicted = _as_labels(y_pred, "y_pred", k)
    _check_same_length(truth, predicted)
    if k is None:
        k = int(max(truth.max(initial=-1), predicted.max(initial=-1))) + 1
    counts = np.bincount(truth * k + predicted, minlength=k * k)  # (K*K,)
    return counts.reshape(k, k).astype(np.int64, copy=False)


def classification_report(
    y_true,
    y_pred,
    target_names: Sequence[str] | None = None,
    digits: int = 2,
    output_dict: bool = False,
) -> str | dict:
    """Per-class precision, recall, F1 and support, laid out as scikit-learn's report.

    Rows follow the classes, then ``accuracy``, ``macro avg`` (unweighted mean over classes)
    and ``weighted avg`` (mean weighted by support). A ratio with a zero denominator
    (a class never predicted, or never present) is 0.0, sklearn's default without the warning.

    Parameters
    ----------
    y_true, y_pred : arrays (N,) or (N, 1) of true and predicted class labels.
    target_names : sequence of K str, optional
        Name of class i at position i; the report then has exactly K rows (classes absent from
        both arrays get zeros) and labels must lie in ``[0, K)``. Without names the rows are the
        labels occurring in either array, named ``str(label)``, as sklearn.
    digits : int
        Decimal places in the text report (the dict keeps full precision).
    output_dict : bool
        Return sklearn's nested dict instead of text: ``{name: {"precision", "recall",
        "f1-score", "support"}, "accuracy": float, "macro avg": {...}, "weighted avg": {...}}``,
        scores as float and supports as int.

    Returns
    -------
    str (ending in a newline) or dict.
    """
    if isinstance(digits, bool) or not isinstance(digits, Integral) or digits < 0:
        raise ArgumentError(f"classification_report expected digits >= 0 (an int), got {digits!r}")
    if target_names is not None and len(target_names) == 0:
        raise ShapeError("classification_report expected one target name per class, got none")
    k = None if target_names is None else len(target_names)
    cm = confusion_matrix(y_true, y_pred, num_classes=k)
    _check_not_empty(int(cm.sum()), "classification_report")
    if target_names is None:
        labels = np.flatnonzero(cm.sum(axis=0) + cm.sum(axis=1))  # the labels that occur
        cm = cm[np.ix_(labels, labels)]
        target_names = [str(label) for label in labels]
    report = _report_dict(cm, [str(name) for name in target_names])
    return report if output_dict else _format_report(report, digits)


def _report_dict(cm: np.ndarray, names: list[str]) -> dict:
    """sklearn's report dict from a (K, K) confusion matrix and K class names."""
    tp = np.diag(cm).astype(np.float64)  # (K,)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)  # (K,) each
    scores = {
        "precision": _safe_divide(tp, predicted),
        "recall": _safe_divide(tp, support),
        "f1-score": _safe_divide(2 * tp, predicted + support),  # 2tp / (2tp + fp + fn)
    }
    report: dict = {
        name: {**{key: float(value[i]) for key, value in scores.items()}, "support": int(n)}
        for i, (name, n) in enumerate(zip(names, support))
    }
    total = int(support.sum())
    report["accuracy"] = float(tp.sum() / total)
    report["macro avg"] = {key: float(value.mean()) for key, value in scores.items()}
    report["weighted avg"] = {
        key: float(np.average(value, weights=support)) for key, value in scores.items()
    }
    report["macro avg"]["support"] = report["weighted avg"]["support"] = total
    return report


def _format_report(report: dict, digits: int) -> str:
    """sklearn's text layout: right-aligned name column, then 9-wide columns one space apart."""
    width = max(*(len(name) for name in report), len(_LONGEST_HEADING), digits)
    total = report["weighted avg"]["support"]
    lines = [_report_line("", _HEADERS, width), "\n"]
    for name, row in report.items():
        if name == "accuracy":
            cells = ("", "", f"{row:.{digits}f}", str(total))
            lines += ["\n", _report_line(name, cells, width)]
        else:
            cells = tuple(f"{row[key]:.{digits}f}" for key in _HEADERS[:3])
            lines.append(_report_line(name, (*cells, str(row["support"])), width))
    return "".join(lines)


def _report_line(name: str, cells: Sequence[str], width: int) -> str:
    return f"{name:>{width}} " + "".join(f" {cell:>9}" for cell in cells) + "\n"


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ratio, 0.0 where the denominator is 0."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _as_numeric(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "iuf":
        raise DTypeError(f"{name} expected an integer or float array, got dtype {array.dtype}")
    return array


def _true_and_predicted(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Validate accuracy's inputs; return true and predicted class indices, (N,) each."""
    scores = _as_numeric(y_pred, "y_pred")
    if scores.ndim != 2 or scores.shape[1] == 0:
        raise ShapeError(
            f"y_pred expected scores of shape (N, K) with K >= 1, got shape {scores.shape}; "
            "for integer predicted labels use confusion_matrix or classification_report"
        )
    truth = _true_classes(y_true, scores.shape[1])
    _check_same_length(truth, scores)
    return truth, scores.argmax(axis=1)


def _true_classes(y_true, k: int) -> np.ndarray:
    """(N,) class indices from sparse labels or from finite one-hot / probability rows (N, K)."""
    array = _as_numeric(y_true, "y_true")
    if array.ndim == 2 and array.shape[1] == k and k > 1:
        bad_rows = np.flatnonzero(~np.isfinite(array).all(axis=1))
        if bad_rows.size:
            i = int(bad_rows[0])
            raise LabelError(f"y_true[{i}] expected a finite one-hot row, got {array[i].tolist()}")
        return array.argmax(axis=1)
    if array.ndim == 2 and array.shape[1] != 1:
        raise ShapeError(
            f"y_true expected labels (N,) or (N, 1), or one-hot rows (N, {k}) matching y_pred, "
            f"got shape {array.shape}"
        )
    return _as_labels(array, "y_true", k)


def _as_labels(values, name: str, num_classes: int | None) -> np.ndarray:
    """Validate class labels, (N,) or (N, 1), and return them as an int64 (N,) copy."""
    labels = _as_numeric(values, name)
    if not (labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] == 1)):
        raise ShapeError(
            f"{name} expected class labels of shape (N,) or (N, 1), got shape {labels.shape}"
        )
    labels = labels.reshape(-1)
    bad = labels < 0
    if labels.dtype.kind == "f":
        bad |= ~np.isfinite(labels) | (labels != np.round(labels))
    if num_classes is not None:
        bad |= labels >= num_classes
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        expected = (
            "a non-negative integer class label"
            if num_classes is None
            else f"an integer class label in [0, {num_classes})"
        )
        raise LabelError(f"{name}[{i}] expected {expected}, got {labels[i].item()!r}")
    return labels.astype(np.int64)


def _check_num_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 1:
        raise ArgumentError(f"num_classes expected a positive int, got {num_classes!r}")
    return int(num_classes)


def _check_same_length(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    if len(y_true) != len(y_pred):
        raise ShapeError(
            f"y_true and y_pred expected the same number of samples, got {len(y_true)} "
            f"in y_true and {len(y_pred)} in y_pred"
        )


def _check_not_empty(n: int, caller: str) -> None:
    if n == 0:
        raise ShapeError(f"{caller} expected at least one sample, got 0")
