"""Tests for tinynn.losses: hand numbers, Keras clipping, gradient checks, label errors."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinynn import losses
from tinynn.errors import LabelError, ShapeError, TinyNNError
from tinynn.losses import CategoricalCrossentropy, MeanSquaredError, SparseCategoricalCrossentropy
from tinynn.ops import numba_kernels, reference
from tinynn.testing import assert_close, check_gradient, rounding_bound

# A 2x3 example: softmax(LOGITS) == PROBS, rows [1, 2, 3] / 6 and [3, 2, 1] / 6.
LOGITS = np.log([[1.0, 2, 3], [3, 2, 1]])
PROBS = np.array([[1.0, 2, 3], [3, 2, 1]]) / 6
LABELS = np.array([2, 1])  # -> per-sample losses ln 2 and ln 3
ONE_HOT = np.eye(3)[LABELS]
EXPECTED = [math.log(2), math.log(3)]


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --- hand-computed numbers --------------------------------------------------------------------


@pytest.mark.parametrize("loss, y", [(SparseCategoricalCrossentropy, LABELS),
                                     (SparseCategoricalCrossentropy, LABELS[:, None]),
                                     (CategoricalCrossentropy, ONE_HOT)])
@pytest.mark.parametrize("from_logits, pred", [(True, LOGITS), (False, PROBS),
                                               (False, PROBS * 6)])  # Keras renormalises rows
def test_crossentropy_by_hand(loss, y, from_logits, pred):
    fn = loss(from_logits=from_logits)
    # log-softmax or renormalise-and-log over 3 classes (3-term sums, exp, log: ~8 roundings),
    # the targets' 3-term sum, np.log's LOGITS and PROBS and math.log's EXPECTED
    assert_close(fn.per_sample(fn.prepare_targets(y, pred.shape), pred), EXPECTED, depth=16)
    assert fn(y, pred) == pytest.approx(math.log(6) / 2, rel=1e-12)


def test_categorical_crossentropy_soft_targets_by_hand():
    soft = np.array([[0.5, 0, 0.5], [0, 0.25, 0.75]])
    # -(0.5 ln 1/6 + 0.5 ln 1/2) = 0.5 ln 12;  -(0.25 ln 1/3 + 0.75 ln 1/6)
    expected = [0.5 * math.log(12), 0.25 * math.log(3) + 0.75 * math.log(6)]
    fn = CategoricalCrossentropy()
    # PROBS's divisions, renormalising (3-term sum, divide), log, the 3-term target sum; and
    # the hand formula's logs, products and sum
    assert_close(fn.per_sample(soft, PROBS), expected, depth=16)


def test_mse_by_hand():
    y_true = np.array([[0.0, 1], [2, 3]])
    y_pred = np.array([[1.0, 1], [0, 0]])
    # diffs [[1, 0], [-2, -3]] -> per sample (1 + 0) / 2 and (4 + 9) / 2
    fn = MeanSquaredError()
    np.testing.assert_array_equal(fn.per_sample(y_true, y_pred), [0.5, 6.5])
    assert fn(y_true, y_pred) == 3.5
    np.testing.assert_array_equal(fn.gradient(y_true, y_pred), [[0.5, 0], [-1, -1.5]])


def test_mse_single_output_accepts_flat_targets():
    assert MeanSquaredError()([1.0, 3.0], np.array([[2.0], [1.0]])) == 2.5


@pytest.mark.parametrize("loss, y", [(SparseCategoricalCrossentropy(), [0]),
                                     (CategoricalCrossentropy(), [[1, 0, 0]])])
def test_crossentropy_clips_zero_probability_like_keras(loss, y):
    p = np.array([[0.0, 0.5, 0.5]])
    assert loss(y, p) == pytest.approx(-math.log(1e-7), rel=1e-12)  # 16.118...
    assert np.isfinite(loss.gradient(loss.prepare_targets(y, p.shape), p)).all()
    # a certain, correct prediction costs -log(1 - 1e-7), not 0
    # 1 - 1e-7 is rounded at the scale of 1 (and log1p(-1e-7) at 1e-7): log keeps that absolute
    # error, which is a relative 1e-9 of the result, not a rounding of it
    assert loss(y, np.array([[1.0, 0, 0]])) == pytest.approx(
        -math.log1p(-1e-7), abs=rounding_bound(1.0, np.float64, 2))


@pytest.mark.parametrize("loss, y", [(SparseCategoricalCrossentropy, [1]),
                                     (CategoricalCrossentropy, [[0, 1, 0]])])
def test_crossentropy_from_huge_logits_is_finite(loss, y):
    logits = np.array([[1e4, -1e4, 0.0]])
    fn = loss(from_logits=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert fn(y, logits) == 2e4
        assert fn([[1, 0, 0]] if loss is CategoricalCrossentropy else [0], logits) == 0.0
        np.testing.assert_array_equal(fn.gradient(fn.prepare_targets(y, (1, 3)), logits),
                                      [[1.0, -1.0, 0.0]])


@pytest.mark.parametrize("loss, y", [(SparseCategoricalCrossentropy(), LABELS),
                                     (CategoricalCrossentropy(), ONE_HOT),
                                     (SparseCategoricalCrossentropy(from_logits=True), LABELS),
                                     (MeanSquaredError(), PROBS)])
def test_loss_gradient_keeps_float32(loss, y):
    pred = PROBS.astype(np.float32)
    y = loss.prepare_targets(y, pred.shape)
    assert loss.gradient(y, pred).dtype == np.float32
    assert loss.per_sample(y, pred).dtype == np.float32


# --- gradient checks (float64, central differences) -------------------------------------------


def _targets(kind, rng, n, k):
    labels = rng.integers(0, k, n)
    if kind == "sparse":
        return labels
    if kind == "one_hot":
        return np.eye(k)[labels]
    if kind == "soft":
        return rng.dirichlet(np.ones(k), n)
    return rng.standard_normal((n, k))  # mse


CASES = [
    (lambda: SparseCategoricalCrossentropy(), "sparse", "probs"),
    (lambda: SparseCategoricalCrossentropy(from_logits=True), "sparse", "logits"),
    (lambda: CategoricalCrossentropy(), "one_hot", "probs"),
    (lambda: CategoricalCrossentropy(), "soft", "probs"),
    (lambda: CategoricalCrossentropy(from_logits=True), "soft", "logits"),
    (lambda: MeanSquaredError(), "mse", "logits"),
]


@pytest.mark.parametrize("make, target_kind, pred_kind", CASES)
@given(n=st.integers(1, 4), k=st.integers(2, 5), seed=st.integers(0, 2**32 - 1))
def test_loss_gradient_matches_central_differences(make, target_kind, pred_kind, n, k, seed):
    rng = np.random.default_rng(seed)
    loss = make()
    y = loss.prepare_targets(_targets(target_kind, rng, n, k), (n, k))
    # Probabilities unnormalised (the loss renormalises) and inside the clip range.
    pred = rng.uniform(0.1, 1, (n, k)) if pred_kind == "probs" else 3 * rng.standard_normal((n, k))
    check_gradient(lambda: float(np.mean(loss.per_sample(y, pred))), pred,
                   loss.gradient(y, pred), loss.name, rng)


@pytest.mark.parametrize("make, target_kind", [(SparseCategoricalCrossentropy, "sparse"),
                                               (CategoricalCrossentropy, "one_hot"),
                                               (CategoricalCrossentropy, "soft")])
@given(n=st.integers(1, 4), k=st.integers(2, 5), seed=st.integers(0, 2**32 - 1))
def test_fused_logits_gradient(make, target_kind, n, k, seed):
    rng = np.random.default_rng(seed)
    loss = make()
    y = loss.prepare_targets(_targets(target_kind, rng, n, k), (n, k))
    logits = 3 * rng.standard_normal((n, k))
    per_sample, dlogits = loss.logits_per_sample_and_gradient(y, logits)
    onehot = np.eye(k)[y] if target_kind == "sparse" else y
    # Either side's softmax (or exp of the log-softmax): the k-term sum, exp, log, subtract,
    # divide; then the target's subtraction and / n: 2 (k + 8) for both. The scale is p / n's,
    # 1 / n, not that of the difference p - target, which can cancel.
    assert_close(dlogits, (softmax(logits) - onehot) / n, depth=2 * (k + 8), scale=1 / n)
    # Losses are sums of target * log p, whose roundings are at the scale of log p: at most the
    # logits' range plus log k, however small the loss.
    log_scale = float(np.ptp(logits)) + math.log(k)
    # the same log-softmax; at most the k-term target sums differ
    assert_close(per_sample, make(from_logits=True).per_sample(y, logits), depth=2 * k,
                 scale=log_scale)
    # our softmax (k + 2), renormalised (k + 1) and logged against the log-softmax (k + 4), each
    # summed against the target (k)
    assert_close(per_sample, make().per_sample(y, softmax(logits)), depth=4 * k + 7,
                 scale=log_scale)
    check_gradient(lambda: float(np.mean(loss.logits_per_sample_and_gradient(y, logits)[0])),
                   logits, dlogits, "fused", rng)


def test_mse_gradient_on_multidimensional_outputs(rng):
    loss = MeanSquaredError()
    pred, y = rng.standard_normal((2, 3, 2, 2))
    check_gradient(lambda: loss(y, pred), pred, loss.gradient(y, pred), "mse", rng)


# --- label and target errors ------------------------------------------------------------------

SPARSE = SparseCategoricalCrossentropy()
CATEGORICAL = CategoricalCrossentropy()


@pytest.mark.parametrize("labels, message", [
    ([0, -1], r"labels in \[0, 2\] for 3 outputs, label 1 is .*-1"),
    ([3, 0], r"labels in \[0, 2\] for 3 outputs, label 0 is .*3"),
    ([0, 1.5], r"integral labels, label 1 is .*1\.5"),
    ([0, float("nan")], r"integral labels, label 1 is .*nan"),
    ([0, np.inf], r"integral labels, label 1 is .*inf"),
    (np.array([True, False]), r"integer class labels, got dtype bool"),
    (["a", "b"], r"integer class labels, got dtype <U1"),
    (np.eye(3)[[0, 1]], r"shape \(N,\), got shape \(2, 3\): for one-hot targets use "
                        r"categorical_crossentropy"),
])
def test_sparse_crossentropy_rejects_bad_labels(labels, message):
    with pytest.raises(LabelError, match=message):
        SPARSE(labels, PROBS)


def test_sparse_crossentropy_accepts_integral_floats():
    assert SPARSE([2.0, 1.0], PROBS) == pytest.approx(math.log(6) / 2)


@pytest.mark.parametrize("targets, message", [
    ([2, 1], r"shape \(N, 3\), got shape \(2,\): for integer labels use "
             r"sparse_categorical_crossentropy"),
    (np.eye(4)[[0, 1]], r"shape \(N, 3\), got shape \(2, 4\)$"),
    ([[1, 0, 0], [1, 1, 0]], r"one-hot rows .*row 1 is \[1, 1, 0\]"),
    ([[1.5, -0.5, 0], [1, 0, 0]], r"row 0 is \[1\.5, -0\.5, 0\.0\]"),
    ([[1, 0, 0], [0, np.nan, 1]], r"row 1 is \[0\.0, nan, 1\.0\]"),
    ([[0, 0, 0], [1, 0, 0]], r"row 0 is"),
])
def test_categorical_crossentropy_rejects_bad_targets(targets, message):
    with pytest.raises(LabelError, match=message):
        CATEGORICAL(targets, PROBS)


@pytest.mark.parametrize("loss, y", [(SPARSE, [0]), (CATEGORICAL, [[1, 0, 0]]),
                                     (MeanSquaredError(), np.zeros((1, 3)))])
def test_loss_rejects_target_count_mismatch(loss, y):
    with pytest.raises(ShapeError, match="targets for 2 samples like the predictions, got 1"):
        loss(y, PROBS)


@pytest.mark.parametrize("y", [np.zeros((2, 1)), np.zeros(2), np.zeros((2, 3, 1)),
                               np.zeros((2, 4))])
def test_mse_rejects_targets_that_would_broadcast(y):
    with pytest.raises(ShapeError, match=r"targets of shape \(N, 3\) .*no broadcasting"):
        MeanSquaredError()(y, PROBS)


def test_mse_rejects_non_finite_targets():
    with pytest.raises(LabelError, match=r"finite, y\[1, 2\] is nan"):
        MeanSquaredError()([[0, 0, 0], [0, 0, np.nan]], PROBS)


def test_label_errors_are_value_errors():
    with pytest.raises(ValueError):
        SPARSE([-1, 0], PROBS)


# --- lookup -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, cls", [("mse", MeanSquaredError),
                                       ("mean_squared_error", MeanSquaredError),
                                       ("categorical_crossentropy", CategoricalCrossentropy),
                                       ("sparse_categorical_crossentropy",
                                        SparseCategoricalCrossentropy)])
def test_losses_get_by_name(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls and not loss.from_logits


def test_losses_get_passes_instances_through():
    loss = CategoricalCrossentropy(from_logits=True)
    assert losses.get(loss) is loss
    assert loss.get_config() == {"name": "categorical_crossentropy", "from_logits": True}


@pytest.mark.parametrize("name", ["hinge", "Mse", None, 3])
def test_losses_get_unknown_name(name):
    with pytest.raises(TinyNNError, match=rf"unknown loss {name!r}: expected one of .*'mse'"):
        losses.get(name)


@pytest.mark.skipif(numba_kernels is None, reason="numba is not importable")
@given(n=st.integers(1, 6), k=st.integers(1, 12), spread=st.sampled_from([1.0, 30.0, 1e4]),
       dtype=st.sampled_from([np.float32, np.float64]),
       label_dtype=st.sampled_from([np.int32, np.int64]), seed=st.integers(0, 2**32 - 1))
def test_fused_sparse_kernel_matches_its_numpy_twin(n, k, spread, dtype, label_dtype, seed):
    """numba's one-pass kernel against the NumPy reference: same dtypes, values within the
    log-softmax's rounding (k-term sums, exp, log), finite even for logits of 1e4."""
    rng = np.random.default_rng(seed)
    logits = (spread * rng.standard_normal((n, k))).astype(dtype)
    labels = rng.integers(0, k, n).astype(label_dtype)
    fast_losses, fast_grad = numba_kernels.sparse_softmax_crossentropy(logits, labels, True)
    ref_losses, ref_grad = reference.sparse_softmax_crossentropy(logits, labels, True)
    for kernel in (numba_kernels, reference):  # the losses alone: the same, and no gradient
        losses, nothing = kernel.sparse_softmax_crossentropy(logits, labels, False)
        np.testing.assert_array_equal(losses, fast_losses if kernel is numba_kernels
                                      else ref_losses, strict=True)
        assert nothing.shape == (0, k) and nothing.dtype == dtype
    assert fast_losses.dtype == fast_grad.dtype == ref_grad.dtype == dtype
    assert np.isfinite(fast_losses).all() and np.isfinite(fast_grad).all()
    assert_close(fast_grad, ref_grad, depth=2 * (k + 8), scale=1 / n)
    assert_close(fast_losses, ref_losses, depth=2 * (k + 8),
                 scale=float(np.ptp(logits)) + math.log(k) + 1)


def test_sparse_logits_gradient_refuses_other_ranks():
    with pytest.raises(ShapeError, match=r"expected logits \(N, K\), got shape \(2, 3, 4\)"):
        SparseCategoricalCrossentropy().logits_per_sample_and_gradient(
            np.zeros(2, int), np.zeros((2, 3, 4)))
