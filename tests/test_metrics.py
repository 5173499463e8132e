"""Tests for tinynn.metrics: hand-computed examples, sklearn's text layout, properties, errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinynn.errors import DTypeError, LabelError, ShapeError, TinyNNError
from tinynn.metrics import accuracy, classification_report, confusion_matrix, count_correct

# sklearn's documented example: class 1 is predicted once but never correctly.
DOC_TRUE = [0, 1, 2, 2, 2]
DOC_PRED = [0, 0, 2, 2, 1]
DOC_NAMES = ["class 0", "class 1", "class 2"]
DOC_REPORT = """\
              precision    recall  f1-score   support

     class 0       0.50      1.00      0.67         1
     class 1       0.00      0.00      0.00         1
     class 2       1.00      0.67      0.80         3

    accuracy                           0.60         5
   macro avg       0.50      0.56      0.49         5
weighted avg       0.70      0.60      0.61         5
"""

# Class 2 occurs once and is never predicted: its precision is 0/0 -> 0.0.
NEVER_TRUE = [0, 0, 1, 1, 2]
NEVER_PRED = [0, 0, 0, 1, 0]


def _one_hot(labels, k):
    return np.eye(k)[labels]


# --- accuracy -------------------------------------------------------------------------------


def test_accuracy_sparse_and_column_labels():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1], [0.0, 0.4, 0.6]])
    # argmax per row: 0, 2, 1, 2 -> rows 0, 2 and 3 right.
    assert accuracy([0, 1, 1, 2], scores) == 0.75
    assert accuracy(np.array([[0], [1], [1], [2]]), scores) == 0.75


def test_accuracy_one_hot_and_probability_targets():
    scores = np.array([[2.0, -1.0], [0.5, 1.5], [3.0, 0.0]])  # predicts 0, 1, 0
    assert accuracy(_one_hot([0, 1, 1], 2), scores) == pytest.approx(2 / 3)
    assert accuracy([[0.7, 0.3], [0.4, 0.6], [0.1, 0.9]], scores) == pytest.approx(2 / 3)


def test_accuracy_ties_go_to_lowest_class():
    assert accuracy([0, 1], [[0.5, 0.5], [0.5, 0.5]]) == 0.5


def test_accuracy_returns_python_float():
    assert type(accuracy([0], [[1.0, 0.0]])) is float


def test_count_correct_counts_argmax_hits_and_allows_empty_batches():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])  # predicts 0, 1, 0
    assert count_correct([0, 0, 0], scores) == 2
    assert count_correct(_one_hot([1, 1, 0], 2), scores) == 2
    assert type(count_correct([0], scores[:1])) is int
    assert count_correct(np.zeros(0), np.zeros((0, 2))) == 0


# --- confusion_matrix -----------------------------------------------------------------------


def test_confusion_matrix_doc_example():
    expected = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 2]])
    cm = confusion_matrix(DOC_TRUE, DOC_PRED)
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64


def test_confusion_matrix_never_predicted_class_has_empty_column():
    expected = np.array([[2, 0, 0], [1, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(confusion_matrix(NEVER_TRUE, NEVER_PRED), expected)


def test_confusion_matrix_size_defaults_to_largest_label_in_either_array():
    # Label 3 occurs only in y_pred; labels 1 and 2 nowhere: rows and columns still run 0..3.
    expected = np.array([[1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(confusion_matrix([0, 0], [0, 3]), expected)


def test_confusion_matrix_num_classes_pads_with_zeros():
    cm = confusion_matrix([1, 0], [1, 1], num_classes=4)
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[1, 1] = expected[0, 1] = 1
    np.testing.assert_array_equal(cm, expected)


def test_confusion_matrix_accepts_column_vectors_and_integral_floats():
    cm = confusion_matrix(np.array([[0.0], [1.0], [1.0]]), np.array([0, 0, 1], dtype=np.uint8))
    np.testing.assert_array_equal(cm, [[1, 0], [1, 1]])


def test_confusion_matrix_empty_input():
    assert confusion_matrix([], []).shape == (0, 0)
    np.testing.assert_array_equal(confusion_matrix([], [], num_classes=2), np.zeros((2, 2)))


# --- classification_report ------------------------------------------------------------------


def test_classification_report_text_matches_sklearn_doc_example():
    assert classification_report(DOC_TRUE, DOC_PRED, target_names=DOC_NAMES) == DOC_REPORT


def test_classification_report_text_widens_name_column_and_honours_digits():
    # Column width = len("ankle boot (long)") = 17 > len("weighted avg"); hand-computed values:
    # sandal p=2/4 r=2/2 f1=4/6; ankle boot p=1/1 r=1/2 f1=2/3; bag never predicted: 0, 0, 0.
    # macro f1 = (2/3 + 2/3 + 0) / 3 = 0.444; weighted f1 = (2 * 2/3 + 2 * 2/3 + 0) / 5 = 0.533.
    expected = """\
                   precision    recall  f1-score   support

           sandal      0.500     1.000     0.667         2
ankle boot (long)      1.000     0.500     0.667         2
              bag      0.000     0.000     0.000         1

         accuracy                          0.600         5
        macro avg      0.500     0.500     0.444         5
     weighted avg      0.600     0.600     0.533         5
"""
    names = ["sandal", "ankle boot (long)", "bag"]
    assert classification_report(NEVER_TRUE, NEVER_PRED, target_names=names, digits=3) == expected


def test_classification_report_dict_never_predicted_class():
    report = classification_report(NEVER_TRUE, NEVER_PRED, output_dict=True)
    assert list(report) == ["0", "1", "2", "accuracy", "macro avg", "weighted avg"]
    expected_rows = {
        "0": (2 / 4, 2 / 2, 4 / 6, 2),
        "1": (1 / 1, 1 / 2, 2 / 3, 2),
        "2": (0.0, 0.0, 0.0, 1),
        "macro avg": (1.5 / 3, 1.5 / 3, 4 / 9, 5),
        "weighted avg": (3 / 5, 3 / 5, 8 / 15, 5),
    }
    for name, (precision, recall, f1, support) in expected_rows.items():
        row = report[name]
        assert row["precision"] == pytest.approx(precision)
        assert row["recall"] == pytest.approx(recall)
        assert row["f1-score"] == pytest.approx(f1)
        assert row["support"] == support and type(row["support"]) is int
    assert report["accuracy"] == pytest.approx(3 / 5)


def test_classification_report_without_names_lists_only_occurring_labels():
    # As sklearn: labels 1 and 2 occur nowhere, so there are rows for 0 and 3 only.
    # 0: tp=1, predicted 1, support 2 -> p=1, r=0.5; 3: tp=1, predicted 2, support 1 -> p=0.5, r=1.
    report = classification_report([0, 0, 3], [0, 3, 3], output_dict=True)
    assert list(report) == ["0", "3", "accuracy", "macro avg", "weighted avg"]
    assert (report["0"]["precision"], report["0"]["recall"]) == (1.0, 0.5)
    assert (report["3"]["precision"], report["3"]["recall"]) == (0.5, 1.0)


def test_classification_report_names_keep_absent_classes_in_macro_avg():
    # Class "c" occurs nowhere: zeros, support 0, and it still counts in the macro mean.
    # Class "b" is predicted once but never true: recall 0/0 -> 0.0, precision 0/1 = 0.
    report = classification_report([0, 0], [0, 1], target_names="abc", output_dict=True)
    assert report["c"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0}
    assert report["b"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0}
    assert report["macro avg"]["recall"] == pytest.approx(0.5 / 3)
    assert report["weighted avg"]["recall"] == pytest.approx(0.5)


# --- properties -----------------------------------------------------------------------------


@st.composite
def labels_and_scores(draw):
    """(K, y_true (N,), scores (N, K)) with 1 <= K <= 6 and 1 <= N <= 40."""
    k = draw(st.integers(1, 6))
    n = draw(st.integers(1, 40))
    y_true = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    scores = draw(arrays(np.float64, (n, k), elements=st.floats(-10, 10)))
    return k, y_true, scores


@given(labels_and_scores())
def test_confusion_matrix_counts_every_sample_once(case):
    k, y_true, scores = case
    y_pred = scores.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, num_classes=k)
    expected = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        expected[t, p] += 1
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == len(y_true)
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(y_true, minlength=k))


@given(labels_and_scores())
def test_confusion_matrix_trace_matches_accuracy(case):
    k, y_true, scores = case
    cm = confusion_matrix(y_true, scores.argmax(axis=1), num_classes=k)
    expected = np.trace(cm) / len(y_true)
    assert accuracy(y_true, scores) == pytest.approx(expected)
    assert accuracy(y_true[:, None], scores) == pytest.approx(expected)
    if k > 1:
        assert accuracy(_one_hot(y_true, k), scores) == pytest.approx(expected)


@given(labels_and_scores(), st.integers(1, 8))
def test_count_correct_summed_over_batches_is_accuracy_times_n(case, batch_size):
    k, y_true, scores = case
    batches = range(0, len(y_true), batch_size)
    correct = sum(
        count_correct(y_true[i:i + batch_size], scores[i:i + batch_size]) for i in batches
    )
    assert correct == round(accuracy(y_true, scores) * len(y_true))


@given(labels_and_scores())
def test_classification_report_weighted_recall_is_accuracy(case):
    k, y_true, scores = case
    report = classification_report(y_true, scores.argmax(axis=1), output_dict=True)
    assert report["accuracy"] == pytest.approx(accuracy(y_true, scores))
    assert report["weighted avg"]["recall"] == pytest.approx(report["accuracy"])
    assert report["weighted avg"]["support"] == len(y_true)


@given(labels_and_scores())
def test_metrics_do_not_mutate_inputs(case):
    k, y_true, scores = case
    y_pred = scores.argmax(axis=1)
    originals = [a.copy() for a in (y_true, scores, y_pred)]
    for a in (y_true, scores, y_pred):
        a.setflags(write=False)
    accuracy(y_true, scores)
    count_correct(y_true, scores)
    confusion_matrix(y_true, y_pred)
    classification_report(y_true, y_pred)
    for before, after in zip(originals, (y_true, scores, y_pred)):
        np.testing.assert_array_equal(before, after)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: confusion_matrix([0, 1, 1, 0, 1], [0, 1, 1, 0]),
        lambda: classification_report([0, 1, 1, 0, 1], [0, 1, 1, 0]),
        lambda: accuracy([0, 1, 1, 0, 1], np.eye(2)[[0, 1, 1, 0]]),
    ],
)
def test_length_mismatch_names_both_lengths(call):
    with pytest.raises(ShapeError, match=r"samples, got 5 in y_true and 4 in y_pred"):
        call()


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        ([0, 1, -1, 2], [0, 1, 1, 2], r"y_true\[2\] expected a non-negative integer .* got -1"),
        ([0, 1, 1, 2], [0, 1.5, 1, 2], r"y_pred\[1\] expected .* got 1\.5"),
        ([0, np.nan, 1], [0, 1, 1], r"y_true\[1\] expected .* got nan"),
        ([0, 1, np.inf], [0, 1, 1], r"y_true\[2\] expected .* got inf"),
    ],
)
def test_invalid_labels_name_first_offending_index_and_value(y_true, y_pred, message):
    with pytest.raises(LabelError, match=message):
        confusion_matrix(y_true, y_pred)
    with pytest.raises(LabelError, match=message):
        classification_report(y_true, y_pred)


def test_negative_label_message_shows_value():
    with pytest.raises(LabelError, match=r"got -1$"):
        confusion_matrix([0, -1, -2], [0, 0, 0])


def test_label_out_of_range_names_the_range():
    in_range = r"expected an integer class label in \[0, {}\), got {}"
    with pytest.raises(LabelError, match=r"y_pred\[1\] " + in_range.format(3, 3)):
        confusion_matrix([0, 1], [0, 3], num_classes=3)
    with pytest.raises(LabelError, match=r"y_true\[0\] " + in_range.format(2, 2)):
        accuracy([2, 0], [[0.1, 0.9], [0.8, 0.2]])
    with pytest.raises(LabelError, match=r"in \[0, 2\), got 2"):
        classification_report([0, 2], [0, 1], target_names=["a", "b"])


@pytest.mark.parametrize("labels", [[True, False], ["a", "b"], [1 + 0j, 0j]])
def test_non_numeric_labels_are_dtype_errors(labels):
    with pytest.raises(DTypeError, match=r"y_true expected an integer or float array, got dtype"):
        confusion_matrix(labels, [0, 1])


def test_accuracy_rejects_bad_shapes():
    with pytest.raises(ShapeError, match=r"y_pred expected scores of shape \(N, K\).* \(3,\)"):
        accuracy([0, 1, 1], [0, 1, 1])
    with pytest.raises(ShapeError, match=r"one-hot rows \(N, 4\) .*, got shape \(2, 3\)"):
        accuracy(np.eye(3)[:2], np.eye(4)[:2])
    with pytest.raises(ShapeError, match=r"expected at least one sample, got 0"):
        accuracy(np.zeros(0), np.zeros((0, 3)))


def test_accuracy_nan_score_counts_as_row_maximum_like_keras():
    assert accuracy([0, 1], [[1.0, 0.0], [np.nan, 1.0]]) == 0.5


def test_accuracy_rejects_non_finite_one_hot_rows():
    with pytest.raises(LabelError, match=r"y_true\[1\] expected a finite one-hot row, got \[nan"):
        accuracy([[1.0, 0.0], [np.nan, 1.0]], np.eye(2))


def test_confusion_matrix_rejects_bad_label_shape_and_num_classes():
    with pytest.raises(ShapeError, match=r"shape \(N,\) or \(N, 1\), got shape \(2, 2\)"):
        confusion_matrix(np.eye(2), [0, 1])
    for bad in (0, -1, 2.0, True):
        with pytest.raises(TinyNNError, match=rf"num_classes expected a positive int, got {bad!r}"):
            confusion_matrix([0], [0], num_classes=bad)


def test_classification_report_rejects_bad_arguments():
    with pytest.raises(TinyNNError, match=r"digits >= 0 \(an int\), got -1"):
        classification_report([0], [0], digits=-1)
    with pytest.raises(ShapeError, match=r"one target name per class, got none"):
        classification_report([0], [0], target_names=[])
    with pytest.raises(ShapeError, match=r"at least one sample, got 0"):
        classification_report([], [])


def test_errors_are_catchable_as_builtin_types():
    with pytest.raises(ValueError):
        confusion_matrix([0, -1], [0, 0])
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0])
    with pytest.raises(TypeError):
        confusion_matrix(["a"], [0])
