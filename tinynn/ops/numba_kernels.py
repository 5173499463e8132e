"""numba ``@njit`` twins of ``reference``: same signatures, same results.

Each kernel is one pass over memory (the NumPy versions make several, with temporaries).
Compiled code is cached on disk (``NUMBA_CACHE_DIR``, set by ``tinynn.ops``).
"""

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def sgd_update(params, grads, velocity, learning_rate, momentum, nesterov):
    if momentum == 0:
        for i in range(params.size):
            params[i] -= learning_rate * grads[i]
        return
    for i in range(params.size):
        vel = velocity[i] * momentum
        vel -= learning_rate * grads[i]
        velocity[i] = vel
        if nesterov:
            params[i] += momentum * vel - learning_rate * grads[i]
        else:
            params[i] += vel


@njit(cache=True, error_model="numpy")
def adam_update(params, grads, m, v, alpha, one_minus_beta_1, one_minus_beta_2, epsilon):
    for i in range(params.size):
        g = grads[i]
        mi = m[i] + (g - m[i]) * one_minus_beta_1
        vi = v[i] + (g * g - v[i]) * one_minus_beta_2
        m[i] = mi
        v[i] = vi
        params[i] -= alpha * mi / (np.sqrt(vi) + epsilon)


@njit(cache=True, error_model="numpy")
def all_finite(values):
    for i in range(values.size):
        if not np.isfinite(values[i]):
            return False
    return True


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
