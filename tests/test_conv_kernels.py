"""Convolution and pooling kernels: numba vs NumPy twins, window definitions, hand numbers,
Keras's padding arithmetic, and the package without numba or with the JIT disabled.

The twins agree bitwise (they add in the same order); sums that other code adds in another order
are compared with ``tinynn.testing.assert_close``: ``depth`` roundings (Higham: a sum of n terms,
n roundings) at the scale of the summed terms' magnitudes.
"""

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinynn import ops
from tinynn.ops import choices, reference, shapes
from tinynn.testing import assert_close

try:
    numba_kernels = importlib.import_module("tinynn.ops.numba_kernels")
except ImportError:  # the package falls back to the reference; parity tests are skipped
    numba_kernels = None

ROOT = Path(__file__).resolve().parents[1]
IMPLEMENTATIONS = [reference] + ([numba_kernels] if numba_kernels is not None else [])
needs_numba = pytest.mark.skipif(numba_kernels is None, reason="numba is not importable")
by_implementation = pytest.mark.parametrize(
    "impl", IMPLEMENTATIONS, ids=lambda module: module.__name__.rsplit(".", 1)[-1])
CONV_KERNELS = ("im2col", "col2im", "maxpool2d_forward", "maxpool2d_backward")
DTYPES = st.sampled_from([np.float32, np.float64])


@st.composite
def conv_cases(draw, max_extra: int = 5):
    """(x, window) with window = (KH, KW, SH, SW, PT, PB, PL, PR) and at least one output."""
    kh, kw, sh, sw = (draw(st.integers(1, 4)) for _ in range(4))
    pt, pb, pl, pr = (draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, kh - pt - pb), max(1, kh - pt - pb) + max_extra))
    w = draw(st.integers(max(1, kw - pl - pr), max(1, kw - pl - pr) + max_extra))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, h, w, c)).astype(draw(DTYPES))
    return x, (kh, kw, sh, sw, pt, pb, pl, pr)


@st.composite
def pool_cases(draw, max_extra: int = 5):
    """(x, (PH, PW, SH, SW)); x drawn from few integer values, so windows hold ties."""
    ph, pw, sh, sw = (draw(st.integers(1, 3)) for _ in range(4))
    h, w = draw(st.integers(ph, ph + max_extra)), draw(st.integers(pw, pw + max_extra))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(-2, 3, (n, h, w, c)).astype(draw(DTYPES))
    return x, (ph, pw, sh, sw)


def output_size(x_shape, window) -> tuple[int, int]:
    _, h, w, _ = x_shape
    kh, kw, sh, sw, pt, pb, pl, pr = window
    return (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1


def im2col_by_definition(x, window):
    """cols[(n, oh, ow), (kh, kw, c)] = x[n, oh*SH - PT + kh, ow*SW - PL + kw, c], 0 outside."""
    n, h, w, c = x.shape
    kh_, kw_, sh, sw, pt, _, pl, _ = window
    oh_, ow_ = output_size(x.shape, window)
    cols = np.zeros((n, oh_, ow_, kh_, kw_, c), x.dtype)
    for i, oh, ow, kh, kw in np.ndindex(n, oh_, ow_, kh_, kw_):
        ih, iw = oh * sh - pt + kh, ow * sw - pl + kw
        if 0 <= ih < h and 0 <= iw < w:
            cols[i, oh, ow, kh, kw] = x[i, ih, iw]
    return cols.reshape(n * oh_ * ow_, kh_ * kw_ * c)  # (N, OH, OW, KH, KW, C) merged


# --- numba twins agree with the reference -----------------------------------------------------


@needs_numba
@given(case=conv_cases())
def test_im2col_numba_matches_reference_bitwise(case):
    x, window = case
    expected = reference.im2col(x, *window)
    got = numba_kernels.im2col(x, *window)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, expected, strict=True)
    workspace = np.full_like(expected, np.nan)
    assert numba_kernels.im2col(x, *window, out=workspace) is workspace
    np.testing.assert_array_equal(workspace, expected, strict=True)


@needs_numba
@given(case=conv_cases())
def test_col2im_numba_matches_reference(case):
    x, window = case
    oh, ow = output_size(x.shape, window)
    rng = np.random.default_rng(0)
    dcols = rng.standard_normal((len(x) * oh * ow, window[0] * window[1] * x.shape[3]))
    dcols = dcols.astype(x.dtype)
    expected = reference.col2im(dcols, x.shape, *window)
    got = numba_kernels.col2im(dcols, x.shape, *window)
    # Both add each position's terms in (kh, kw) order, so they agree bitwise.
    np.testing.assert_array_equal(got, expected, strict=True)


@needs_numba
@given(case=pool_cases())
def test_maxpool2d_numba_matches_reference_bitwise(case):
    x, pool = case
    y, argmax = reference.maxpool2d_forward(x, *pool)
    y_fast, argmax_fast = numba_kernels.maxpool2d_forward(x, *pool)
    np.testing.assert_array_equal(y_fast, y, strict=True)
    np.testing.assert_array_equal(argmax_fast, argmax, strict=True)
    dy = np.random.default_rng(0).standard_normal(y.shape).astype(x.dtype)
    np.testing.assert_array_equal(numba_kernels.maxpool2d_backward(dy, argmax, x.shape, *pool),
                                  reference.maxpool2d_backward(dy, argmax, x.shape, *pool),
                                  strict=True)


def test_conv_kernels_are_chosen_per_shape_when_numba_is_importable():
    if os.environ.get("TINYNN_BACKEND") is not None:
        pytest.skip("TINYNN_BACKEND is set")
    expected = "numpy" if numba_kernels is None else "chosen per shape"
    assert [ops.implementation(name) for name in CONV_KERNELS] == [expected] * 4


# --- choosing between the twins by measurement ------------------------------------------------
def slow_and_fast(calls: list):
    """Two implementations of one kernel, the "numba" one 20 ms slower, both logging calls."""
    def slow(x, *window):
        calls.append("numba")
        time.sleep(0.02)
        return x + 1

    def fast(x, *window):
        calls.append("numpy")
        return x + 1

    return slow, fast


def test_the_faster_twin_is_chosen_once_per_shape_and_remembered_on_disk(tmp_path):
    calls = []
    table = choices.KernelChoices(tmp_path / "choices-test.json")
    kernel = table.dispatcher("im2col", *slow_and_fast(calls))
    x = np.zeros((4, 3, 3, 1))
    kernel(x, 2, 2, 1, 1, 0, 0, 0, 0)  # too small to measure: numba's, nothing recorded
    assert calls == ["numba"] and table.table == {}
    calls.clear()
    x = np.zeros((1000, 3, 3, 1))  # 72 KB
    assert kernel(x, 2, 2, 1, 1, 0, 0, 0, 0).tolist() == (x + 1).tolist()
    assert calls.count("numba") == 1 + choices.REPEATS  # a first call, then the timed ones
    calls.clear()
    kernel(np.zeros((2000, 3, 3, 1)), 2, 2, 1, 1, 0, 0, 0, 0)  # another batch, the same shape
    assert calls == ["numpy"]
    saved = json.loads((tmp_path / "choices-test.json").read_text())
    assert saved == {"im2col|((3, 3, 1), '<f8', (2, 2, 1, 1, 0, 0, 0, 0))": "numpy"}
    calls.clear()
    again = choices.KernelChoices(tmp_path / "choices-test.json").dispatcher(
        "im2col", *slow_and_fast(calls))
    again(x, 2, 2, 1, 1, 0, 0, 0, 0)  # a later process: no measuring
    assert calls == ["numpy"]


@pytest.mark.parametrize("mode", ["numba", "numpy"])
def test_a_fixed_choice_measures_nothing_and_leaves_the_table_alone(tmp_path, mode):
    calls = []
    path = tmp_path / "c.json"
    path.write_text('{"im2col|x": "numba"}')  # another process's measurements
    kernel = choices.KernelChoices(path, mode).dispatcher("im2col", *slow_and_fast(calls))
    kernel(np.zeros((1000, 3, 3, 1)), 2, 2, 1, 1, 0, 0, 0, 0)
    kernel(np.zeros((2, 3, 3, 1)), 2, 2, 1, 1, 0, 0, 0, 0)  # small calls too
    assert calls == [mode, mode]
    assert path.read_text() == '{"im2col|x": "numba"}'


def test_which_names_the_choice_of_small_and_measured_calls(tmp_path):
    table = choices.KernelChoices(tmp_path / "c.json")
    table.dispatcher("im2col", *slow_and_fast([]))
    assert table.which("im2col", (np.zeros((2, 3, 3, 1)), 2, 2, 1, 1, 0, 0, 0, 0)) == "numba"
    assert table.table == {}  # too small: not measured
    big = (np.zeros((1000, 3, 3, 1)), 2, 2, 1, 1, 0, 0, 0, 0)
    assert table.which("im2col", big) == "numpy" and len(table.table) == 1


def test_a_damaged_table_is_measured_again_and_a_bad_mode_is_named(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{not json")
    assert choices.KernelChoices(path).table == {}
    path.write_text('{"im2col|x": "fortran", "im2col|y": "numpy"}')
    assert choices.KernelChoices(path).table == {"im2col|y": "numpy"}
    with pytest.raises(ImportError, match=r"TINYNN_KERNEL_CHOICE expected one of "
                                          r"\('measure', 'numba', 'numpy'\), got 'fast'"):
        choices.KernelChoices(path, "fast")


@needs_numba
def test_the_dispatched_kernels_give_both_twins_bits():
    rng = np.random.default_rng(0)
    for shape in ((300, 9, 9, 1), (300, 9, 9, 8)):  # large enough to be measured
        x = rng.standard_normal(shape).astype(np.float32)
        window = (3, 3, 1, 1, 1, 1, 1, 1)
        for module in (numba_kernels, reference):
            np.testing.assert_array_equal(ops.im2col(x, *window),
                                          module.im2col(x, *window), strict=True)
        y, argmax = ops.maxpool2d_forward(x, 2, 2, 2, 2)
        for module in (numba_kernels, reference):
            theirs = module.maxpool2d_forward(x, 2, 2, 2, 2)
            np.testing.assert_array_equal(y, theirs[0], strict=True)
            np.testing.assert_array_equal(argmax, theirs[1], strict=True)
    key = choices.machine_key()
    assert len(key) == 16 and key == choices.machine_key()


# --- each implementation against the definitions ----------------------------------------------


@by_implementation
@given(case=conv_cases(max_extra=3))
def test_im2col_matches_window_definition(impl, case):
    x, window = case
    np.testing.assert_array_equal(impl.im2col(x, *window), im2col_by_definition(x, window),
                                  strict=True)


@by_implementation
@given(case=conv_cases(max_extra=3))
def test_col2im_is_adjoint_of_im2col(impl, case):
    x, window = case
    x = x.astype(np.float64)
    cols = impl.im2col(x, *window)
    c = np.random.default_rng(1).standard_normal(cols.shape)
    dx = impl.col2im(c, x.shape, *window)
    assert dx.shape == x.shape
    # dx: sums of at most KH * KW terms; the products; the totals, sums of n terms (Higham: n
    # roundings at the scale of the terms' magnitudes; im2col only copies)
    n = max(cols.size, x.size)
    scale = max(np.sum(np.abs(cols * c)), np.sum(np.abs(x * dx)))
    assert_close(np.sum(cols * c), np.sum(x * dx), depth=window[0] * window[1] + 1 + n,
                 scale=scale)


@by_implementation
@given(case=pool_cases(max_extra=3))
def test_maxpool2d_matches_window_definition(impl, case):
    x, (ph, pw, sh, sw) = case
    y, argmax = impl.maxpool2d_forward(x, ph, pw, sh, sw)
    n, oh_, ow_, c = y.shape
    assert (oh_, ow_) == ((x.shape[1] - ph) // sh + 1, (x.shape[2] - pw) // sw + 1)
    assert y.dtype == x.dtype and argmax.dtype == np.uint8
    dy = np.random.default_rng(0).standard_normal(y.shape).astype(x.dtype)
    dx = np.zeros_like(x)
    for i, oh, ow, ch in np.ndindex(n, oh_, ow_, c):
        window = x[i, oh * sh:oh * sh + ph, ow * sw:ow * sw + pw, ch].ravel()  # row-major
        first = int(np.argmax(window))  # NumPy's argmax returns the first maximum
        assert y[i, oh, ow, ch] == window[first] and argmax[i, oh, ow, ch] == first
        dx[i, oh * sh + first // pw, ow * sw + first % pw, ch] += dy[i, oh, ow, ch]
    # Each side sums at most k = PH * PW routed dy values, in its own order (Higham: k roundings
    # at the scale of their magnitudes' sum, at most k max|dy|).
    k = ph * pw
    assert_close(impl.maxpool2d_backward(dy, argmax, x.shape, ph, pw, sh, sw), dx, depth=2 * k,
                 scale=k * float(np.abs(dy).max()))


# --- hand-computed examples -------------------------------------------------------------------


@by_implementation
def test_im2col_by_hand(impl):
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    np.testing.assert_array_equal(impl.im2col(x, 2, 2, 1, 1, 0, 0, 0, 0),
                                  [[1, 2, 4, 5], [2, 3, 5, 6], [4, 5, 7, 8], [5, 6, 8, 9]])
    # Keras 'same' for a 2x2 kernel pads one row/column after (bottom/right) only.
    np.testing.assert_array_equal(impl.im2col(x, 2, 2, 2, 2, 0, 1, 0, 1),
                                  [[1, 2, 4, 5], [3, 0, 6, 0], [7, 8, 0, 0], [9, 0, 0, 0]])


@by_implementation
def test_im2col_orders_columns_kh_kw_c(impl):
    x = np.arange(8.0).reshape(1, 2, 2, 2)  # x[0, h, w, c] = 4h + 2w + c
    np.testing.assert_array_equal(impl.im2col(x, 2, 2, 1, 1, 0, 0, 0, 0),
                                  [[0, 1, 2, 3, 4, 5, 6, 7]])


@by_implementation
def test_col2im_sums_overlapping_windows_by_hand(impl):
    dcols = np.ones((4, 4))  # 3x3 input, 2x2 windows, stride 1: the centre is in all four
    dx = impl.col2im(dcols, (1, 3, 3, 1), 2, 2, 1, 1, 0, 0, 0, 0)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    padded = impl.col2im(np.ones((9, 9)), (1, 3, 3, 1), 3, 3, 1, 1, 1, 1, 1, 1)  # 'same'
    np.testing.assert_array_equal(padded[0, :, :, 0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])


@by_implementation
def test_maxpool2d_ties_go_to_first_max_in_row_major_order(impl):
    x = np.array([[3.0, 1.0, 0.0, 2.0],
                  [3.0, 3.0, 2.0, 2.0]]).reshape(1, 2, 4, 1)  # two 2x2 windows, both tied
    y, argmax = impl.maxpool2d_forward(x, 2, 2, 2, 2)
    assert y.ravel().tolist() == [3.0, 2.0] and argmax.ravel().tolist() == [0, 1]
    dx = impl.maxpool2d_backward(np.array([10.0, 20.0]).reshape(1, 1, 2, 1), argmax, x.shape,
                                 2, 2, 2, 2)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[10, 0, 0, 20], [0, 0, 0, 0]])


@by_implementation
def test_maxpool2d_backward_accumulates_overlapping_windows(impl):
    x = np.array([0.0, 5.0, 1.0]).reshape(1, 1, 3, 1)  # 1x2 windows, stride 1: both pick 5
    y, argmax = impl.maxpool2d_forward(x, 1, 2, 1, 1)
    assert y.ravel().tolist() == [5.0, 5.0] and argmax.ravel().tolist() == [1, 0]
    dx = impl.maxpool2d_backward(np.array([2.0, 3.0]).reshape(1, 1, 2, 1), argmax, x.shape,
                                 1, 2, 1, 1)
    assert dx.ravel().tolist() == [0.0, 5.0, 0.0]


@by_implementation
def test_conv_kernels_keep_float32(impl):
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 3)).astype(np.float32)
    window = (3, 3, 1, 1, 1, 1, 1, 1)
    cols = impl.im2col(x, *window)
    y, argmax = impl.maxpool2d_forward(x, 2, 2, 2, 2)
    dx = impl.maxpool2d_backward(y, argmax, x.shape, 2, 2, 2, 2)
    assert [a.dtype for a in (cols, impl.col2im(cols, x.shape, *window), y, dx)] == [
        np.float32] * 4


# --- Keras's output size and padding arithmetic ----------------------------------------------


@pytest.mark.parametrize("size, kernel, stride, out, before, after", [
    (28, 5, 1, 28, 2, 2),   # the reports' CNN
    (14, 5, 1, 14, 2, 2),
    (28, 3, 1, 28, 1, 1),
    (28, 4, 1, 28, 1, 2),   # even kernel: the extra pixel goes bottom/right
    (28, 2, 1, 28, 0, 1),
    (28, 2, 2, 14, 0, 0),
    (7, 2, 2, 4, 0, 1),     # stride not dividing the input
    (5, 3, 2, 3, 1, 1),
    (6, 3, 2, 3, 0, 1),
    (28, 3, 3, 10, 1, 1),
    (10, 1, 3, 4, 0, 0),
    (3, 5, 1, 3, 2, 2),     # kernel larger than the input
])
def test_same_padding_matches_keras_table(size, kernel, stride, out, before, after):
    assert shapes.conv_output_size(size, kernel, stride, "same") == out
    assert shapes.same_padding(size, kernel, stride) == (before, after)
    assert shapes.padding_amounts(size, kernel, stride, "same") == (before, after)


@pytest.mark.parametrize("size, kernel, stride, out", [
    (28, 5, 1, 24), (28, 2, 2, 14), (7, 2, 2, 3), (5, 3, 2, 2), (6, 3, 2, 2), (28, 3, 3, 9),
    (5, 5, 1, 1), (4, 5, 1, 0),
])
def test_valid_output_size_matches_keras_table(size, kernel, stride, out):
    assert shapes.conv_output_size(size, kernel, stride, "valid") == out
    assert shapes.padding_amounts(size, kernel, stride, "valid") == (0, 0)


@given(size=st.integers(1, 64), kernel=st.integers(1, 9), stride=st.integers(1, 5))
def test_same_padding_windows_cover_the_input(size, kernel, stride):
    before, after = shapes.same_padding(size, kernel, stride)
    out = shapes.conv_output_size(size, kernel, stride, "same")
    assert out == -(-size // stride) and 0 <= after - before <= 1
    # Padding is only added to fit the last window exactly, and never fills a whole window.
    assert before + after == 0 or (out - 1) * stride + kernel == size + before + after
    assert before + after < kernel


# --- the package without numba, and the numba sources run as Python -----------------------------

KERNEL_SELECTION = ["tests/test_conv_kernels.py", "-k", "not in_subprocess",
                    "tests/test_conv_layers.py::test_conv_net_model_gradients_match_numerical"]
WITHOUT_NUMBA = ("import sys; sys.modules['numba'] = None; import pytest; "
                 "sys.exit(pytest.main(sys.argv[1:]))")


def run_pytest(code: str, env_extra: dict) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYPOTHESIS_PROFILE": "ci", **env_extra}
    env.pop("TINYNN_BACKEND", None)
    result = subprocess.run([sys.executable, "-c", code, "-q", "-p", "no:cacheprovider",
                             *KERNEL_SELECTION], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_conv_kernels_pass_without_numba_in_subprocess():
    out = run_pytest(WITHOUT_NUMBA, {})
    assert " passed" in out and "skipped" in out  # the numba parity tests are skipped


def test_conv_kernels_pass_with_jit_disabled_in_subprocess():
    out = run_pytest("import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))",
                     {"NUMBA_DISABLE_JIT": "1"})
    assert " passed" in out and "skipped" not in out
