"""Plain-NumPy kernels: the readable ground truth for ``numba_kernels``.

Optimizer kernels update flat, contiguous 1-D buffers in place. Scalars are passed already
cast to the buffers' dtype so that both implementations compute in that dtype.
"""

import numpy as np


def sgd_update(params, grads, velocity, learning_rate, momentum, nesterov: bool) -> None:
    """Keras SGD in place. Buffers (P,); ``velocity`` unused when momentum is 0.

    v = momentum * v - lr * g;  w += v  (nesterov: w += momentum * v - lr * g).
    """
    if momentum == 0:
        params -= learning_rate * grads
        return
    velocity *= momentum
    velocity -= learning_rate * grads
    if nesterov:
        params += momentum * velocity - learning_rate * grads
    else:
        params += velocity


def adam_update(params, grads, m, v, alpha, one_minus_beta_1, one_minus_beta_2, epsilon) -> None:
    """Keras Adam in place over buffers (P,), with alpha = lr sqrt(1 - b2^t) / (1 - b1^t).

    m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2);  w -= alpha m / (sqrt(v) + eps).
    """
    m += (grads - m) * one_minus_beta_1
    v += (grads * grads - v) * one_minus_beta_2
    params -= alpha * m / (np.sqrt(v) + epsilon)


def all_finite(values) -> bool:
    """True if no element of the 1-D buffer is NaN or infinite."""
    return bool(np.isfinite(values).all())


# -- convolution and pooling (NHWC) -------------------------------------------------------------
# Each kernel loops over the KH*KW (or PH*PW) window offsets and moves one strided slice of the
# whole batch per offset: few Python iterations, each a vectorised copy or sum.


def im2col(x, KH, KW, SH, SW, PT, PB, PL, PR, out=None):
    """Unfold every KH x KW window of the zero-padded ``x`` into one row.

    Input shape: x (N, H, W, C); PT PB PL PR are the zero rows/columns added at the top,
    bottom, left and right. Output shape: cols (N*OH*OW, KH*KW*C), rows in (n, oh, ow) order,
    columns in (kh, kw, c) order, so ``cols @ kernel.reshape(KH*KW*C, F)`` is the
    cross-correlation with a (KH, KW, C, F) kernel. ``out``: an optional C-contiguous buffer of
    that shape and x's dtype to write into (a reused workspace); returned.
    """
    N, H, W, C = x.shape
    OH = (H + PT + PB - KH) // SH + 1
    OW = (W + PL + PR - KW) // SW + 1
    if PT or PB or PL or PR:
        x = np.pad(x, ((0, 0), (PT, PB), (PL, PR), (0, 0)))  # (N, H+PT+PB, W+PL+PR, C)
    cols = np.empty((N * OH * OW, KH * KW * C), x.dtype) if out is None else out
    blocks = cols.reshape(N, OH, OW, KH, KW, C)  # a view: (N*OH*OW, KH*KW*C) split
    for kh in range(KH):
        for kw in range(KW):
            blocks[:, :, :, kh, kw, :] = x[:, kh:kh + SH * (OH - 1) + 1:SH,
                                           kw:kw + SW * (OW - 1) + 1:SW, :]
    return cols


def col2im(dcols, x_shape, KH, KW, SH, SW, PT, PB, PL, PR):
    """Adjoint of ``im2col``: add each row of ``dcols`` back onto its window; overlaps sum,
    gradients falling on the padding are dropped.

    Input shape: dcols (N*OH*OW, KH*KW*C); x_shape (N, H, W, C). Output shape: dx (N, H, W, C).
    Every position sums its contributions in (kh, kw) order, as ``numba_kernels.col2im`` does.
    """
    N, H, W, C = x_shape
    OH = (H + PT + PB - KH) // SH + 1
    OW = (W + PL + PR - KW) // SW + 1
    blocks = dcols.reshape(N, OH, OW, KH, KW, C)  # (N*OH*OW, KH*KW*C) split
    dx = np.zeros((N, H + PT + PB, W + PL + PR, C), dcols.dtype)
    for kh in range(KH):
        for kw in range(KW):
            dx[:, kh:kh + SH * (OH - 1) + 1:SH, kw:kw + SW * (OW - 1) + 1:SW, :] += (
                blocks[:, :, :, kh, kw, :])
    if PT or PB or PL or PR:
        dx = np.ascontiguousarray(dx[:, PT:PT + H, PL:PL + W, :])  # (N, H, W, C)
    return dx


def maxpool2d_forward(x, PH, PW, SH, SW):
    """Max over each PH x PW window (valid padding) and where it was.

    Input shape: x (N, H, W, C). Output shapes: y (N, OH, OW, C) with OH = (H - PH) // SH + 1;
    argmax (N, OH, OW, C) uint8, the flat row-major index kh * PW + kw of the maximum within its
    window (windows of at most 256 elements). Ties go to the first maximum in row-major order.
    Inputs must be finite: the twins treat NaN differently (models refuse non-finite data).
    """
    N, H, W, C = x.shape
    OH = (H - PH) // SH + 1
    OW = (W - PW) // SW + 1
    rows, cols = slice(0, SH * (OH - 1) + 1, SH), slice(0, SW * (OW - 1) + 1, SW)
    y = x[:, rows, cols, :].copy()  # (N, OH, OW, C): offset 0 of every window
    argmax = np.zeros((N, OH, OW, C), np.uint8)
    larger = np.empty((N, OH, OW, C), np.uint8)  # scratch, reused for every offset
    for k in range(1, PH * PW):
        kh, kw = divmod(k, PW)
        window = x[:, kh:kh + SH * (OH - 1) + 1:SH, kw:kw + SW * (OW - 1) + 1:SW, :]
        np.greater(window, y, out=larger.view(bool))  # strictly: a later equal value loses
        larger *= np.uint8(k)
        np.maximum(argmax, larger, out=argmax)  # k exceeds earlier offsets: argmax = k there
        np.maximum(window, y, out=y)  # keeps y on ties (its second operand), as numba does
    return y, argmax


def maxpool2d_backward(dy, argmax, x_shape, PH, PW, SH, SW):
    """Route each window's gradient to its argmax; overlapping windows (stride < pool) add up.

    Input shapes: dy and argmax (N, OH, OW, C); x_shape (N, H, W, C). Output shape: dx
    (N, H, W, C). Contributions are added in window-offset order, as in ``numba_kernels``.
    """
    _, OH, OW, _ = dy.shape
    dx = np.zeros(x_shape, dy.dtype)
    for k in range(PH * PW):
        kh, kw = divmod(k, PW)
        dx[:, kh:kh + SH * (OH - 1) + 1:SH, kw:kw + SW * (OW - 1) + 1:SW, :] += dy * (argmax == k)
    return dx
