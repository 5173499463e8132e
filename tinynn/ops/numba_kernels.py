"""numba ``@njit`` twins of ``reference``: same signatures, same results.

Each kernel is one pass over memory (the NumPy versions make several, with temporaries).
Compiled code is cached on disk (``NUMBA_CACHE_DIR``, set by ``tinynn.ops``).
"""

import math
import types

import numba
import numpy as np
from numba import njit, prange

# The optimizers flush subnormal state to zero (as TensorFlow's kernels run with flush-to-zero):
# with ReLU, many gradients are exactly 0, Adam's m then decays by 0.9 per step into subnormal
# numbers within about 700 steps, and arithmetic on subnormals is about 100x slower. Measured on
# the reports' CNN: 92 ms per step once they appeared, 44 ms with them flushed.
#
# Parallel kernels split their work into blocks (of elements, or of images) with ``prange`` and
# run each block through a sequential ``_``-prefixed kernel on 1-D views or one image: numba
# vectorizes those plain loops, not the loop bodies of ``prange`` itself (measured for Adam:
# 2.3 ms sequential, 15.3 ms as one prange loop, 1.1 ms as prange over blocks on 2 threads).
_BLOCK = 1 << 16  # elements per block of the element-wise kernels


def parallel_kernel(function):
    """``njit(parallel=True)`` when numba has several threads; otherwise compiled serially
    (``prange`` is then ``range``), which gives the same bits without the cost of launching
    numba's thread pool on every call: 1.5 us of the 2.5 us a ReLU backward on a (32, 128)
    batch took with one thread, 7 % of a 12-layer MLP's training step (README, "Performance").
    The serial twin gets its own name in numba's on-disk cache, which does not key on
    ``parallel``."""
    if numba.config.NUMBA_NUM_THREADS > 1:
        return njit(cache=True, parallel=True)(function)
    serial = types.FunctionType(function.__code__, function.__globals__,
                                function.__name__, function.__defaults__, function.__closure__)
    serial.__qualname__ = f"{function.__qualname__}_serial"
    serial.__doc__, serial.__module__ = function.__doc__, function.__module__
    return njit(cache=True)(serial)


@njit(cache=True, inline="always")
def _smallest_normal(values):
    """The smallest positive normal number of the array's float dtype."""
    return values.dtype.type(1.1754943508222875e-38 if values.itemsize == 4
                             else 2.2250738585072014e-308)


@njit(cache=True, inline="always")
def _flushed(value, tiny):
    """``value``, or zero if it is subnormal. The zero is ``tiny - tiny``, of the array's dtype:
    a literal 0 (an int64) would make numba unify float32 to float64, and compute the rest of
    the update in float64."""
    return tiny - tiny if abs(value) < tiny else value


@njit(cache=True, error_model="numpy")
def _sgd_span(params, grads, velocity, learning_rate, momentum, nesterov):
    if momentum == 0:
        for i in range(params.size):
            params[i] -= learning_rate * grads[i]
        return
    tiny = _smallest_normal(params)
    for i in range(params.size):
        vel = velocity[i] * momentum
        vel -= learning_rate * grads[i]
        vel = _flushed(vel, tiny)
        velocity[i] = vel
        if nesterov:
            params[i] += momentum * vel - learning_rate * grads[i]
        else:
            params[i] += vel


@parallel_kernel
def sgd_update(params, grads, velocity, learning_rate, momentum, nesterov):
    for block in prange((params.size + _BLOCK - 1) // _BLOCK):
        lo, hi = block * _BLOCK, min(params.size, (block + 1) * _BLOCK)
        state = velocity[lo:hi] if momentum != 0 else velocity
        _sgd_span(params[lo:hi], grads[lo:hi], state, learning_rate, momentum, nesterov)


@njit(cache=True, error_model="numpy")
def _adam_span(params, grads, m, v, alpha, one_minus_beta_1, one_minus_beta_2, epsilon):
    tiny = _smallest_normal(params)
    for i in range(params.size):
        g = grads[i]
        mi = m[i] + (g - m[i]) * one_minus_beta_1
        vi = v[i] + (g * g - v[i]) * one_minus_beta_2
        mi = _flushed(mi, tiny)
        vi = _flushed(vi, tiny)
        m[i] = mi
        v[i] = vi
        params[i] -= alpha * mi / (np.sqrt(vi) + epsilon)


@parallel_kernel
def adam_update(params, grads, m, v, alpha, one_minus_beta_1, one_minus_beta_2, epsilon):
    for block in prange((params.size + _BLOCK - 1) // _BLOCK):
        lo, hi = block * _BLOCK, min(params.size, (block + 1) * _BLOCK)
        _adam_span(params[lo:hi], grads[lo:hi], m[lo:hi], v[lo:hi], alpha, one_minus_beta_1,
                   one_minus_beta_2, epsilon)




@njit(cache=True, error_model="numpy")
def _adamw_span(params, grads, m, v, v_hat, weight_decay, learning_rate, alpha,
                one_minus_beta_1, one_minus_beta_2, epsilon, amsgrad):
    tiny = _smallest_normal(params)
    for i in range(params.size):
        w = params[i] - params[i] * weight_decay * learning_rate
        g = grads[i]
        mi = _flushed(m[i] + (g - m[i]) * one_minus_beta_1, tiny)
        vi = _flushed(v[i] + (g * g - v[i]) * one_minus_beta_2, tiny)
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vi = max(v_hat[i], vi)
            v_hat[i] = vi
        params[i] = w - mi * alpha / (np.sqrt(vi) + epsilon)


@parallel_kernel
def adamw_update(params, grads, m, v, v_hat, weight_decay, learning_rate, alpha,
                 one_minus_beta_1, one_minus_beta_2, epsilon, amsgrad):
    for block in prange((params.size + _BLOCK - 1) // _BLOCK):
        lo, hi = block * _BLOCK, min(params.size, (block + 1) * _BLOCK)
        _adamw_span(params[lo:hi], grads[lo:hi], m[lo:hi], v[lo:hi], v_hat[lo:hi], weight_decay,
                    learning_rate, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, amsgrad)


@njit(cache=True, error_model="numpy")
def _rmsprop_span(params, grads, velocity, momentums, average_gradients, learning_rate, rho,
                  one_minus_rho, momentum, epsilon, centered):
    tiny = _smallest_normal(params)
    for i in range(params.size):
        g = grads[i]
        vel = _flushed(rho * velocity[i] + one_minus_rho * (g * g), tiny)
        velocity[i] = vel
        if centered:
            avg = _flushed(rho * average_gradients[i] + one_minus_rho * g, tiny)
            average_gradients[i] = avg
            step = learning_rate * g / np.sqrt(vel - avg * avg + epsilon)
        else:
            step = learning_rate * g / np.sqrt(vel + epsilon)
        if momentum > 0:
            step = _flushed(momentum * momentums[i] + step, tiny)
            momentums[i] = step
        params[i] -= step


@parallel_kernel
def rmsprop_update(params, grads, velocity, momentums, average_gradients, learning_rate, rho,
                   one_minus_rho, momentum, epsilon, centered):
    for block in prange((params.size + _BLOCK - 1) // _BLOCK):
        lo, hi = block * _BLOCK, min(params.size, (block + 1) * _BLOCK)
        _rmsprop_span(params[lo:hi], grads[lo:hi], velocity[lo:hi], momentums[lo:hi],
                      average_gradients[lo:hi], learning_rate, rho, one_minus_rho, momentum,
                      epsilon, centered)


@njit(cache=True, fastmath={"reassoc"})
def _sum_times_zero(values):
    # x * 0 is 0 for finite x and NaN for NaN or +-inf: a branch-free, vectorized reduction.
    total = values.dtype.type(0)
    for i in range(values.size):
        total += values[i] * 0
    return total


@parallel_kernel
def all_finite(values):
    blocks = (values.size + _BLOCK - 1) // _BLOCK
    sums = np.empty(blocks, values.dtype)
    for block in prange(blocks):
        sums[block] = _sum_times_zero(values[block * _BLOCK:(block + 1) * _BLOCK])
    return _sum_times_zero(sums) == 0


@njit(cache=True)
def _relu_backward_span(a, da, out):
    for i in range(out.size):
        out[i] = da[i] if a[i] > 0 else 0


@parallel_kernel
def relu_backward(a, da):
    out = np.empty_like(da)
    flat_a, flat_da, flat_out = a.reshape(-1), da.reshape(-1), out.reshape(-1)
    for block in prange((flat_out.size + _BLOCK - 1) // _BLOCK):
        lo, hi = block * _BLOCK, min(flat_out.size, (block + 1) * _BLOCK)
        _relu_backward_span(flat_a[lo:hi], flat_da[lo:hi], flat_out[lo:hi])
    return out


@njit(cache=True)
def _bias_activation_rows(rows, bias, relu):
    for row in range(rows.shape[0]):
        out = rows[row]
        for f in range(bias.size):
            value = out[f] + bias[f]
            out[f] = max(value, 0) if relu else value


@parallel_kernel
def bias_activation(z, bias, relu):
    rows = z.reshape(-1, bias.size)
    per_block = max(1, _BLOCK // bias.size)
    for block in prange((rows.shape[0] + per_block - 1) // per_block):
        _bias_activation_rows(rows[block * per_block:(block + 1) * per_block], bias, relu)
    return z


@njit(cache=True, error_model="numpy")
def sparse_softmax_crossentropy(logits, labels, with_gradient):
    rows, classes = logits.shape
    losses = np.empty(rows, logits.dtype)
    dlogits = np.empty((rows if with_gradient else 0, classes), logits.dtype)
    count = logits.dtype.type(rows)
    for i in range(rows):
        row = logits[i]
        top = row.max()
        total = top - top
        for j in range(classes):
            total += np.exp(row[j] - top)
        log_total = np.log(total)
        losses[i] = log_total - (row[labels[i]] - top)
        if with_gradient:
            out = dlogits[i]
            for j in range(classes):
                out[j] = np.exp((row[j] - top) - log_total)
            out[labels[i]] -= 1
            for j in range(classes):
                out[j] /= count
    return losses, dlogits


# -- convolution and pooling (NHWC) -------------------------------------------------------------
# Zero padding is handled by index tests (no padded copy). Summation orders follow the
# reference, so all four kernels give bitwise the same results as their NumPy twins.


@njit(cache=True)
def im2col(x, KH, KW, SH, SW, PT, PB, PL, PR, out=None):
    N, H, W, C = x.shape
    OH = (H + PT + PB - KH) // SH + 1
    OW = (W + PL + PR - KW) // SW + 1
    if out is None:
        cols = np.empty((N * OH * OW, KH * KW * C), x.dtype)
    else:
        cols = out
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                row = (n * OH + oh) * OW + ow
                for kh in range(KH):
                    ih = oh * SH - PT + kh
                    for kw in range(KW):
                        iw = ow * SW - PL + kw
                        col = (kh * KW + kw) * C
                        if 0 <= ih < H and 0 <= iw < W:
                            for c in range(C):
                                cols[row, col + c] = x[n, ih, iw, c]
                        else:
                            for c in range(C):
                                cols[row, col + c] = 0
    return cols


@njit(cache=True)
def col2im(dcols, x_shape, KH, KW, SH, SW, PT, PB, PL, PR):
    N, H, W, C = x_shape
    OH = (H + PT + PB - KH) // SH + 1
    OW = (W + PL + PR - KW) // SW + 1
    dx = np.zeros((N, H, W, C), dcols.dtype)
    for kh in range(KH):  # window offsets outermost: each position sums in (kh, kw) order
        for kw in range(KW):
            col = (kh * KW + kw) * C
            for n in range(N):
                for oh in range(OH):
                    ih = oh * SH - PT + kh
                    if ih < 0 or ih >= H:
                        continue
                    for ow in range(OW):
                        iw = ow * SW - PL + kw
                        if iw < 0 or iw >= W:
                            continue
                        row = (n * OH + oh) * OW + ow
                        for c in range(C):
                            dx[n, ih, iw, c] += dcols[row, col + c]
    return dx


@njit(cache=True)
def maxpool2d_forward(x, PH, PW, SH, SW):
    N, H, W, C = x.shape
    OH = (H - PH) // SH + 1
    OW = (W - PW) // SW + 1
    y = np.empty((N, OH, OW, C), x.dtype)
    argmax = np.zeros((N, OH, OW, C), np.uint8)
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                for c in range(C):
                    y[n, oh, ow, c] = x[n, oh * SH, ow * SW, c]
                for k in range(1, PH * PW):
                    ih = oh * SH + k // PW
                    iw = ow * SW + k % PW
                    for c in range(C):
                        value = x[n, ih, iw, c]
                        if value > y[n, oh, ow, c]:
                            y[n, oh, ow, c] = value
                            argmax[n, oh, ow, c] = k
    return y, argmax


@njit(cache=True)
def maxpool2d_backward(dy, argmax, x_shape, PH, PW, SH, SW):
    N, OH, OW, C = dy.shape
    dx = np.zeros(x_shape, dy.dtype)
    for k in range(PH * PW):  # offsets outermost: overlapping windows add up in offset order
        kh, kw = k // PW, k % PW
        for n in range(N):
            for oh in range(OH):
                for ow in range(OW):
                    for c in range(C):
                        if argmax[n, oh, ow, c] == k:
                            dx[n, oh * SH + kh, ow * SW + kw, c] += dy[n, oh, ow, c]
    return dx


# -- Winograd transforms (layouts and tiles as in reference) -------------------------------------
# One tile row (TW tiles of one image) at a time, so that most arithmetic runs over contiguous
# TW*C (or TW*F) runs instead of one tile's C values: short loops cost more in overhead than in
# arithmetic. The patches of neighbouring tiles overlap; their row transform is computed once
# across the padded width and stored by phase, ``phased[i, w % m, w // m]`` for padded column
# w, so the column transform of every tile at offset k reads one contiguous run,
# ``phased[i, k % m, k // m:]``. Zeros of the matrices are skipped. Inner loops run over 1-D
# views: numba vectorizes those, not multi-dimensional indexing.


@njit(cache=True, inline="always")
def _axpy(coef, src, dst):
    """dst += coef * src over 1-D arrays of equal length."""
    for e in range(dst.size):
        dst[e] += coef * src[e]


@njit(cache=True)
def _input_transform_image(x, n, BT, m, PT, PL, TH, TW, V):
    _, H, W, C = x.shape
    T = BT.shape[0]
    Q = TW + (T - 1) // m  # phased columns per phase
    run = TW * C
    phased = np.empty((T, m, Q, C), x.dtype)
    for th in range(TH):
        phased[:] = 0
        for i in range(T):
            for k in range(T):
                coef = BT[i, k]
                ih = th * m - PT + k
                if coef == 0 or ih < 0 or ih >= H:
                    continue
                for w in range(max(0, -PL), min(W, Q * m - PL)):
                    _axpy(coef, x[n, ih, w], phased[i, (w + PL) % m, (w + PL) // m])
        start = (n * TH + th) * run
        for i in range(T):
            for j in range(T):
                out = V[i * T + j, start:start + run]
                out[:] = 0
                for k in range(T):
                    coef = BT[j, k]
                    if coef != 0:
                        src = phased[i, k % m].ravel()
                        _axpy(coef, src[(k // m) * C:(k // m) * C + run], out)


@parallel_kernel
def winograd_input_transform(x, BT, m, PT, PL, TH, TW):
    N, _, _, C = x.shape
    T = BT.shape[0]
    V = np.empty((T * T, N * TH * TW * C), x.dtype)  # (T*T, N*TH*TW, C) flattened
    for n in prange(N):
        _input_transform_image(x, n, BT, m, PT, PL, TH, TW, V)
    return V.reshape(T * T, N * TH * TW, C)


@njit(cache=True)
def _input_transform_backward_image(dV2, n, BT, m, PT, PL, TH, TW, dx):
    _, H, W, C = dx.shape
    T = BT.shape[0]
    Q = TW + (T - 1) // m
    run = TW * C
    phased = np.empty((T, m, Q, C), dx.dtype)
    for th in range(TH):
        phased[:] = 0
        start = (n * TH + th) * run
        for i in range(T):
            for j in range(T):
                src = dV2[i * T + j, start:start + run]
                for k in range(T):
                    coef = BT[j, k]
                    if coef != 0:
                        dst = phased[i, k % m].ravel()
                        _axpy(coef, src, dst[(k // m) * C:(k // m) * C + run])
        for i in range(T):
            for k in range(T):
                coef = BT[i, k]
                ih = th * m - PT + k
                if coef == 0 or ih < 0 or ih >= H:
                    continue
                for w in range(max(0, -PL), min(W, Q * m - PL)):
                    _axpy(coef, phased[i, (w + PL) % m, (w + PL) // m], dx[n, ih, w])


@parallel_kernel
def winograd_input_transform_backward(dV, BT, x_shape, m, PT, PL, TH, TW):
    N, H, W, C = x_shape
    T = BT.shape[0]
    dV2 = dV.reshape(T * T, N * TH * TW * C)
    dx = np.zeros((N, H, W, C), dV.dtype)
    for n in prange(N):
        _input_transform_backward_image(dV2, n, BT, m, PT, PL, TH, TW, dx)
    return dx


@njit(cache=True)
def _output_transform_image(M2, n, AT, bias, relu, y):
    _, OH, OW, F = y.shape
    m, T = AT.shape
    TH, TW = -(-OH // m), -(-OW // m)
    run = TW * F
    cols = np.empty((T, m, run), y.dtype)  # the column transform of one tile row
    tiles = np.empty((m, m, TW, F), y.dtype)  # its output tiles
    for th in range(TH):
        start = (n * TH + th) * run
        cols[:] = 0
        for a in range(T):
            for j in range(m):
                for b in range(T):
                    coef = AT[j, b]
                    if coef != 0:
                        _axpy(coef, M2[a * T + b, start:start + run], cols[a, j])
        tiles[:] = 0
        for i in range(m):
            for a in range(T):
                coef = AT[i, a]
                if coef != 0:
                    for j in range(m):
                        _axpy(coef, cols[a, j], tiles[i, j].ravel())
        for i in range(min(m, OH - th * m)):
            for tw in range(TW):
                for j in range(min(m, OW - tw * m)):
                    out, tile = y[n, th * m + i, tw * m + j], tiles[i, j, tw]
                    for f in range(F):
                        value = tile[f] + bias[f]
                        out[f] = max(value, 0) if relu else value


@parallel_kernel
def winograd_output_transform(M, AT, bias, relu, y):
    T = AT.shape[1]
    M2 = M.reshape(T * T, M.shape[1] * M.shape[2])
    for n in prange(y.shape[0]):
        _output_transform_image(M2, n, AT, bias, relu, y)


@njit(cache=True)
def _output_transform_backward_image(dy, n, AT, TH, TW, dM):
    _, OH, OW, F = dy.shape
    m, T = AT.shape
    run = TW * F
    tiles = np.empty((m, m, TW, F), dy.dtype)
    cols = np.empty((T, m, run), dy.dtype)
    for th in range(TH):
        tiles[:] = 0
        for i in range(min(m, OH - th * m)):
            for tw in range(TW):
                for j in range(min(m, OW - tw * m)):
                    tiles[i, j, tw] = dy[n, th * m + i, tw * m + j]
        cols[:] = 0
        for a in range(T):
            for i in range(m):
                coef = AT[i, a]
                if coef != 0:
                    for j in range(m):
                        _axpy(coef, tiles[i, j].ravel(), cols[a, j])
        start = (n * TH + th) * run
        for a in range(T):
            for b in range(T):
                out = dM[a * T + b, start:start + run]
                out[:] = 0
                for j in range(m):
                    coef = AT[j, b]
                    if coef != 0:
                        _axpy(coef, cols[a, j], out)


@parallel_kernel
def winograd_output_transform_backward(dy, AT, TH, TW):
    N, _, _, F = dy.shape
    m, T = AT.shape
    dM = np.empty((T * T, N * TH * TW * F), dy.dtype)
    for n in prange(N):
        _output_transform_backward_image(dy, n, AT, TH, TW, dM)
    return dM.reshape(T * T, N * TH * TW, F)


# -- average pooling (layouts and counts as in reference) ----------------------------------------
# Windows are clipped to the image instead of reading a padded copy; sums run in the reference's
# (kh, kw) order from zero and are divided by the same counts, so results are bitwise equal.


@njit(cache=True, inline="always")
def _clipped(start, size, limit):
    """The in-image part [lo, hi) of the window [start, start + size) of an axis of ``limit``."""
    return max(start, 0), min(start + size, limit)


@njit(cache=True)
def _avgpool_forward_image(x, n, PH, PW, SH, SW, PT, PL, y):
    _, H, W, C = x.shape
    _, OH, OW, _ = y.shape
    for oh in range(OH):
        h0, h1 = _clipped(oh * SH - PT, PH, H)
        for ow in range(OW):
            w0, w1 = _clipped(ow * SW - PL, PW, W)
            out = y[n, oh, ow]
            out[:] = 0
            for ih in range(h0, h1):
                for iw in range(w0, w1):
                    row = x[n, ih, iw]
                    for c in range(C):
                        out[c] += row[c]
            count = y.dtype.type((h1 - h0) * (w1 - w0))
            for c in range(C):
                out[c] /= count


@parallel_kernel
def avgpool2d_forward(x, PH, PW, SH, SW, PT, PB, PL, PR):
    N, H, W, C = x.shape
    OH = (H + PT + PB - PH) // SH + 1
    OW = (W + PL + PR - PW) // SW + 1
    y = np.empty((N, OH, OW, C), x.dtype)
    for n in prange(N):
        _avgpool_forward_image(x, n, PH, PW, SH, SW, PT, PL, y)
    return y


@njit(cache=True)
def _avgpool_backward_image(dy, n, PH, PW, SH, SW, PT, PL, dx):
    _, H, W, C = dx.shape
    _, OH, OW, _ = dy.shape
    for kh in range(PH):  # offsets outermost: each position sums in (kh, kw) order
        for kw in range(PW):
            for oh in range(OH):
                ih = oh * SH - PT + kh
                if ih < 0 or ih >= H:
                    continue
                h0, h1 = _clipped(oh * SH - PT, PH, H)
                for ow in range(OW):
                    iw = ow * SW - PL + kw
                    if iw < 0 or iw >= W:
                        continue
                    w0, w1 = _clipped(ow * SW - PL, PW, W)
                    count = dx.dtype.type((h1 - h0) * (w1 - w0))
                    grad, target = dy[n, oh, ow], dx[n, ih, iw]
                    for c in range(C):
                        target[c] += grad[c] / count


@parallel_kernel
def avgpool2d_backward(dy, x_shape, PH, PW, SH, SW, PT, PB, PL, PR):
    dx = np.zeros(x_shape, dy.dtype)
    for n in prange(x_shape[0]):
        _avgpool_backward_image(dy, n, PH, PW, SH, SW, PT, PL, dx)
    return dx


# -- GELU (Keras's exact form, approximate=False) -----------------------------------------------
# Each element is computed in float64 and rounded once when stored, in either dtype, as in the
# reference. 1 + erf(x / sqrt(2)) is written erfc(-x / sqrt(2)): no cancellation for x < 0.
_SQRT_HALF = 0.7071067811865476  # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)
_DENSITY_CUTOFF = 40.0  # exp(-x^2 / 2) is 0 in float64 beyond; clipping avoids x^2 overflow


@njit(cache=True)
def _gelu_span(z, out):
    for i in range(out.size):
        x = float(z[i])
        out[i] = 0.5 * x * math.erfc(-x * _SQRT_HALF)


@parallel_kernel
def gelu(z):
    out = np.empty_like(z)
    flat_z, flat_out = z.reshape(-1), out.reshape(-1)
    for block in prange((flat_out.size + _BLOCK - 1) // _BLOCK):
        lo, hi = block * _BLOCK, min(flat_out.size, (block + 1) * _BLOCK)
        _gelu_span(flat_z[lo:hi], flat_out[lo:hi])
    return out


@njit(cache=True)
def _gelu_backward_span(z, da, out):
    for i in range(out.size):
        x = float(z[i])
        t = min(abs(x), _DENSITY_CUTOFF)
        density = _INV_SQRT_2PI * math.exp(-0.5 * t * t)
        out[i] = float(da[i]) * (0.5 * math.erfc(-x * _SQRT_HALF) + x * density)


@parallel_kernel
def gelu_backward(z, da):
    out = np.empty_like(da)
    flat_z, flat_da, flat_out = z.reshape(-1), da.reshape(-1), out.reshape(-1)
    for block in prange((flat_out.size + _BLOCK - 1) // _BLOCK):
        lo, hi = block * _BLOCK, min(flat_out.size, (block + 1) * _BLOCK)
        _gelu_backward_span(flat_z[lo:hi], flat_da[lo:hi], flat_out[lo:hi])
    return out


# -- batch normalization (channels last: rows x (M, C), C-contiguous) --------------------------
# Parallel over blocks of rows; each block sums into its own float64 row of ``partial``, and the
# blocks are added in order, so results do not depend on the thread count.


@njit(cache=True)
def _sum_rows(x, out):
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[c] += x[i, c]


@njit(cache=True)
def _squared_deviation_rows(x, mean, out):
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            deviation = np.float64(x[i, c]) - mean[c]
            out[c] += deviation * deviation


@njit(cache=True, inline="always")
def _row_blocks(x):
    """(rows per block, number of blocks) for the rows x (M, C)."""
    rows = max(1, _BLOCK // max(1, x.shape[1]))
    return rows, (x.shape[0] + rows - 1) // rows


@parallel_kernel
def batchnorm_moments(x):
    rows, blocks = _row_blocks(x)
    partial = np.zeros((blocks, x.shape[1]))
    for block in prange(blocks):
        _sum_rows(x[block * rows:(block + 1) * rows], partial[block])
    mean = partial.sum(axis=0) / x.shape[0]
    partial[:] = 0
    for block in prange(blocks):
        _squared_deviation_rows(x[block * rows:(block + 1) * rows], mean, partial[block])
    variance = partial.sum(axis=0) / x.shape[0]
    return mean.astype(x.dtype), variance.astype(x.dtype)


@njit(cache=True)
def _scale_shift_rows(x, scale, shift, out):
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[i, c] = x[i, c] * scale[c] + shift[c]


@parallel_kernel
def batchnorm_scale_shift(x, scale, shift):
    out = np.empty_like(x)
    rows, blocks = _row_blocks(x)
    for block in prange(blocks):
        span = slice(block * rows, (block + 1) * rows)
        _scale_shift_rows(x[span], scale, shift, out[span])
    return out


@njit(cache=True)
def _backward_sum_rows(dy, x, mean, sum_dy, sum_dy_centered):
    for i in range(dy.shape[0]):
        for c in range(dy.shape[1]):
            g = np.float64(dy[i, c])
            sum_dy[c] += g
            sum_dy_centered[c] += g * (np.float64(x[i, c]) - mean[c])


@parallel_kernel
def batchnorm_backward_sums(dy, x, mean):
    rows, blocks = _row_blocks(dy)
    partial = np.zeros((2, blocks, dy.shape[1]))
    mean64 = mean.astype(np.float64)
    for block in prange(blocks):
        span = slice(block * rows, (block + 1) * rows)
        _backward_sum_rows(dy[span], x[span], mean64, partial[0, block], partial[1, block])
    return partial[0].sum(axis=0).astype(dy.dtype), partial[1].sum(axis=0).astype(dy.dtype)


@njit(cache=True)
def _input_gradient_rows(dy, x, mean, scale, dy_mean, slope, out):
    for i in range(dy.shape[0]):
        for c in range(dy.shape[1]):
            out[i, c] = scale[c] * (dy[i, c] - dy_mean[c] - (x[i, c] - mean[c]) * slope[c])


@parallel_kernel
def batchnorm_input_gradient(dy, x, mean, scale, dy_mean, slope):
    out = np.empty_like(dy)
    rows, blocks = _row_blocks(dy)
    for block in prange(blocks):
        span = slice(block * rows, (block + 1) * rows)
        _input_gradient_rows(dy[span], x[span], mean, scale, dy_mean, slope, out[span])
    return out


# -- affine warps (see reference.py for the semantics) ------------------------------------------
@njit(cache=True, inline="always")
def _mapped(c, length, mode):
    if mode == 0:
        return c
    if length <= 1:
        return c - c
    top = np.float32(length - 1)
    if mode == 2:
        size2 = np.float32(2 * length)
        if c < 0:
            if c < -size2:
                c = size2 * np.float32(np.trunc(-c / size2)) + c
            c = c + size2 if c < -length else -c - np.float32(1)
        elif c > top:
            c = c - size2 * np.float32(np.trunc(c / size2))
            if c >= length:
                c = size2 - c - np.float32(1)
    elif mode == 3:
        period = np.float32(length)
        if c < 0:
            c = c + period * (np.float32(np.trunc(-c / top)) + np.float32(1))
        elif c > top:
            c = c - period * np.float32(np.trunc(c / top))
    return min(max(c, np.float32(0)), top)


@njit(cache=True, inline="always")
def _inside(r, c, H, W):
    return 0 <= r < H and 0 <= c < W


@njit(cache=True, inline="always")
def _scatter_source(dx, r, c, weight, dy):
    H, W = dx.shape[0], dx.shape[1]
    if 0 <= r < H and 0 <= c < W:
        for k in range(dy.size):
            dx[r, c, k] += weight * dy[k]


@njit(cache=True, inline="always")
def _coordinates(transform, y, x, W, H, mode):
    fx, fy = np.float32(x), np.float32(y)
    column = np.float32(transform[0]) * fx + np.float32(transform[1]) * fy + \
        np.float32(transform[2])
    row = np.float32(transform[3]) * fx + np.float32(transform[4]) * fy + \
        np.float32(transform[5])
    return _mapped(row, H, mode), _mapped(column, W, mode)


@njit(cache=True, inline="always")
def _round_half_away(c):
    return np.int64(np.sign(c) * np.floor(abs(c) + np.float32(0.5)))


@njit(cache=True)
def _warp_image(image, transform, nearest, mode, fill, out):
    H, W, C = image.shape
    one = np.float32(1)
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            row, column = _coordinates(transform, y, x, W, H, mode)
            if nearest:
                r, c = _round_half_away(row), _round_half_away(column)
                inside = _inside(r, c, H, W)
                for k in range(C):
                    out[y, x, k] = image[r, c, k] if inside else fill
                continue
            r0, c0 = np.floor(row), np.floor(column)
            dr, dc = row - r0, column - c0
            r, c = np.int64(r0), np.int64(c0)
            w00, w01 = (one - dr) * (one - dc), (one - dr) * dc
            w10, w11 = dr * (one - dc), dr * dc
            in00, in01 = _inside(r, c, H, W), _inside(r, c + 1, H, W)
            in10, in11 = _inside(r + 1, c, H, W), _inside(r + 1, c + 1, H, W)
            for k in range(C):
                total = w00 * (image[r, c, k] if in00 else fill)
                total += w01 * (image[r, c + 1, k] if in01 else fill)
                total += w10 * (image[r + 1, c, k] if in10 else fill)
                out[y, x, k] = total + w11 * (image[r + 1, c + 1, k] if in11 else fill)


@parallel_kernel
def affine_warp(images, transforms, nearest, mode, fill, height, width):
    out = np.empty((images.shape[0], height, width, images.shape[3]), images.dtype)
    fill = images.dtype.type(fill)
    for n in prange(images.shape[0]):
        _warp_image(images[n], transforms[n], nearest, mode, fill, out[n])
    return out


@njit(cache=True)
def _warp_image_backward(dy, transform, nearest, mode, dx):
    H, W = dx.shape[0], dx.shape[1]
    one = np.float32(1)
    for y in range(dy.shape[0]):
        for x in range(dy.shape[1]):
            row, column = _coordinates(transform, y, x, W, H, mode)
            if nearest:
                _scatter_source(dx, _round_half_away(row), _round_half_away(column), one,
                                dy[y, x])
                continue
            r0, c0 = np.floor(row), np.floor(column)
            dr, dc = row - r0, column - c0
            r, c = np.int64(r0), np.int64(c0)
            _scatter_source(dx, r, c, (one - dr) * (one - dc), dy[y, x])
            _scatter_source(dx, r, c + 1, (one - dr) * dc, dy[y, x])
            _scatter_source(dx, r + 1, c, dr * (one - dc), dy[y, x])
            _scatter_source(dx, r + 1, c + 1, dr * dc, dy[y, x])


@parallel_kernel
def affine_warp_backward(dy, transforms, nearest, mode, height, width):
    dx = np.zeros((dy.shape[0], height, width, dy.shape[3]), dy.dtype)
    for n in prange(dy.shape[0]):
        _warp_image_backward(dy[n], transforms[n], nearest, mode, dx[n])
    return dx
