"""Plain-NumPy kernels: the readable ground truth for ``numba_kernels``.

Optimizer kernels update flat, contiguous 1-D buffers in place. Scalars are passed already
cast to the buffers' dtype so that both implementations compute in that dtype.
"""

import math

import numpy as np


def flush_subnormal(values) -> None:
    """Set the subnormal elements of ``values`` (magnitude below the dtype's smallest normal
    number) to zero, in place: the optimizers' state never decays into slow subnormals."""
    values[np.abs(values) < np.finfo(values.dtype).tiny] = 0


def sgd_update(params, grads, velocity, learning_rate, momentum, nesterov: bool) -> None:
    """Keras SGD in place. Buffers (P,); ``velocity`` unused when momentum is 0.

    v = momentum * v - lr * g (subnormal v flushed to 0);  w += v
    (nesterov: w += momentum * v - lr * g).
    """
    if momentum == 0:
        params -= learning_rate * grads
        return
    velocity *= momentum
    velocity -= learning_rate * grads
    flush_subnormal(velocity)
    if nesterov:
        params += momentum * velocity - learning_rate * grads
    else:
        params += velocity


def adam_update(params, grads, m, v, alpha, one_minus_beta_1, one_minus_beta_2, epsilon) -> None:
    """Keras Adam in place over buffers (P,), with alpha = lr sqrt(1 - b2^t) / (1 - b1^t).

    m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2) (subnormal m and v flushed to 0);
    w -= alpha m / (sqrt(v) + eps).
    """
    m += (grads - m) * one_minus_beta_1
    v += (grads * grads - v) * one_minus_beta_2
    flush_subnormal(m)
    flush_subnormal(v)
    params -= alpha * m / (np.sqrt(v) + epsilon)


def adamw_update(params, grads, m, v, v_hat, weight_decay, learning_rate, alpha,
                 one_minus_beta_1, one_minus_beta_2, epsilon, amsgrad: bool) -> None:
    """Keras AdamW in place over buffers (P,); ``v_hat`` unused unless ``amsgrad``.

    w -= w * weight_decay * lr;  then ``adam_update``'s m and v (subnormals flushed to 0);
    AMSGrad: v_hat = max(v_hat, v) takes v's place;  w -= m alpha / (sqrt(v) + eps).
    """
    params -= params * weight_decay * learning_rate
    m += (grads - m) * one_minus_beta_1
    v += (grads * grads - v) * one_minus_beta_2
    flush_subnormal(m)
    flush_subnormal(v)
    if amsgrad:
        np.maximum(v_hat, v, out=v_hat)
    params -= m * alpha / (np.sqrt(v_hat if amsgrad else v) + epsilon)


def rmsprop_update(params, grads, velocity, momentums, average_gradients, learning_rate, rho,
                   one_minus_rho, momentum, epsilon, centered: bool) -> None:
    """Keras RMSprop in place over buffers (P,); ``momentums`` unused when momentum is 0,
    ``average_gradients`` unless ``centered``. Subnormal state is flushed to 0.

    v = rho v + (1 - rho) g^2;  centered: a = rho a + (1 - rho) g, d = v - a^2 + eps, else
    d = v + eps;  step = lr g / sqrt(d);  momentum > 0: s = momentum s + step, w -= s,
    else w -= step.
    """
    velocity *= rho
    velocity += one_minus_rho * (grads * grads)
    flush_subnormal(velocity)
    if centered:
        average_gradients *= rho
        average_gradients += one_minus_rho * grads
        flush_subnormal(average_gradients)
        denominator = velocity - average_gradients * average_gradients + epsilon
    else:
        denominator = velocity + epsilon
    step = learning_rate * grads / np.sqrt(denominator)
    if momentum > 0:
        momentums *= momentum
        momentums += step
        flush_subnormal(momentums)
        step = momentums
    params -= step


def all_finite(values) -> bool:
    """True if no element of the 1-D buffer is NaN or infinite."""
    return bool(np.isfinite(values).all())


def relu_backward(a, da):
    """d(input) of ReLU from its output ``a`` and d(output) ``da`` (same shapes): da where
    a > 0, else 0. Returns a new array."""
    return np.where(a > 0, da, da.dtype.type(0))


def bias_activation(z, bias, relu: bool):
    """In place: z += bias (broadcast over the last axis of length F), then ReLU if ``relu``.
    Input shapes: z (..., F) C-contiguous, bias (F,). Returns z."""
    z += bias
    if relu:
        np.maximum(z, 0, out=z)
    return z


def sparse_softmax_crossentropy(logits, labels, with_gradient: bool):
    """Softmax cross-entropy from ``logits`` (N, K) and integer ``labels`` (N,) in [0, K), via
    log-sum-exp (logits of 1e4 stay finite). Returns new arrays: the per-sample losses (N,)
    and, if ``with_gradient``, d(mean loss)/d(logits) (N, K), else an empty (0, K)."""
    rows = np.arange(len(labels))
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    if not with_gradient:
        return -log_p[rows, labels], np.empty((0, logits.shape[1]), logits.dtype)
    dlogits = np.exp(log_p)
    dlogits[rows, labels] -= 1
    dlogits /= len(logits)
    return -log_p[rows, labels], dlogits


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


# -- Winograd F(m x m, r x r) transforms (stride-1 convolution; matrices from ops.winograd) ------
# Tiles: the output is cut into TH x TW tiles of m x m (TH = ceil(OH / m)); tile (th, tw) reads
# the T x T input patch whose top-left corner is (th*m - PT, tw*m - PL), zero outside the image
# (T = m + r - 1). Transform-domain arrays are (T*T, N*TH*TW, channels): one matrix per position
# of the tile, rows in (n, th, tw) order, so the convolution is T*T independent matrix products.


def _tiles(TH, TW, m, T):
    """Index arrays (TH, T) and (TW, T) of the input rows and columns each tile reads."""
    return (np.arange(TH)[:, None] * m + np.arange(T), np.arange(TW)[:, None] * m + np.arange(T))


def winograd_input_transform(x, BT, m, PT, PL, TH, TW):
    """V = BT d BT^T for every T x T input patch d of every channel.

    Input shapes: x (N, H, W, C); BT (T, T). Output shape: V (T*T, N*TH*TW, C).
    """
    N, H, W, C = x.shape
    T = BT.shape[0]
    rows, cols = _tiles(TH, TW, m, T)
    padded = np.zeros((N, TH * m + T - m, TW * m + T - m, C), x.dtype)  # zero beyond the image
    h, w = min(H, padded.shape[1] - PT), min(W, padded.shape[2] - PL)
    padded[:, PT:PT + h, PL:PL + w] = x[:, :h, :w]
    patches = padded[:, rows[:, :, None, None], cols[None, None, :, :]]  # (N, TH, T, TW, T, C)
    v = np.einsum("ai,nxiyjc,bj->abnxyc", BT, patches, BT)  # (T, T, N, TH, TW, C)
    return np.ascontiguousarray(v.reshape(T * T, N * TH * TW, C))


def winograd_input_transform_backward(dV, BT, x_shape, m, PT, PL, TH, TW):
    """Adjoint of ``winograd_input_transform``: dd = BT^T dV BT per patch, added back onto the
    image; overlapping patches sum, gradients falling on the padding are dropped.

    Input shapes: dV (T*T, N*TH*TW, C); x_shape (N, H, W, C). Output shape: dx (N, H, W, C).
    """
    N, H, W, C = x_shape
    T = BT.shape[0]
    dv = dV.reshape(T, T, N, TH, TW, C)  # (T*T, N*TH*TW, C) split
    dpatches = np.einsum("ai,abnxyc,bj->nxiyjc", BT, dv, BT)  # (N, TH, T, TW, T, C)
    padded = np.zeros((N, TH * m + T - m, TW * m + T - m, C), dV.dtype)
    for i in range(T):  # patch offsets: overlapping tiles are added one offset at a time
        for j in range(T):
            padded[:, i:i + TH * m:m, j:j + TW * m:m] += dpatches[:, :, i, :, j]
    h, w = min(H, padded.shape[1] - PT), min(W, padded.shape[2] - PL)
    dx = np.zeros(x_shape, dV.dtype)
    dx[:, :h, :w] = padded[:, PT:PT + h, PL:PL + w]
    return dx


def winograd_output_transform(M, AT, bias, relu: bool, y) -> None:
    """Write y = AT M AT^T per tile plus ``bias``, cropped to OH x OW, then ReLU if ``relu``.

    Input shapes: M (T*T, N*TH*TW, F) with TH = ceil(OH / m); AT (m, T); bias (F,); y, the
    C-contiguous output (N, OH, OW, F), written in place.
    """
    N, OH, OW, F = y.shape
    m, T = AT.shape
    TH, TW = -(-OH // m), -(-OW // m)
    mt = M.reshape(T, T, N, TH, TW, F)  # (T*T, N*TH*TW, F) split
    tiles = np.einsum("ia,abnxyf,jb->nxiyjf", AT, mt, AT)  # (N, TH, m, TW, m, F)
    y[...] = tiles.reshape(N, TH * m, TW * m, F)[:, :OH, :OW]
    bias_activation(y, bias, relu)


def winograd_output_transform_backward(dy, AT, TH, TW):
    """Adjoint of ``winograd_output_transform`` (without the bias): dM = AT^T dy AT per tile,
    dy zero beyond OH x OW.

    Input shapes: dy (N, OH, OW, F); AT (m, T). Output shape: dM (T*T, N*TH*TW, F).
    """
    N, OH, OW, F = dy.shape
    m, T = AT.shape
    padded = np.zeros((N, TH * m, TW * m, F), dy.dtype)
    padded[:, :OH, :OW] = dy
    tiles = padded.reshape(N, TH, m, TW, m, F)
    dm = np.einsum("ia,nxiyjf,jb->abnxyf", AT, tiles, AT)  # (T, T, N, TH, TW, F)
    return np.ascontiguousarray(dm.reshape(T * T, N * TH * TW, F))


# -- average pooling (NHWC; padding is excluded from each window's count) ----------------------


def _avgpool2d_counts(H, W, PH, PW, SH, SW, PT, PB, PL, PR, dtype):
    """How many in-image elements each PH x PW window holds: (OH, OW) in ``dtype``, the
    divisor of each window's sum (padding is never counted, as TensorFlow's avg_pool)."""
    OH = (H + PT + PB - PH) // SH + 1
    OW = (W + PL + PR - PW) // SW + 1
    top, left = np.arange(OH) * SH - PT, np.arange(OW) * SW - PL
    rows = np.minimum(top + PH, H) - np.maximum(top, 0)
    cols = np.minimum(left + PW, W) - np.maximum(left, 0)
    return np.outer(rows, cols).astype(dtype)


def avgpool2d_forward(x, PH, PW, SH, SW, PT, PB, PL, PR):
    """Mean of the in-image elements of each PH x PW window of ``x`` padded by PT PB PL PR.

    Input shape: x (N, H, W, C). Output shape: y (N, OH, OW, C) with
    OH = (H + PT + PB - PH) // SH + 1. Each window is summed in row-major (kh, kw) order from
    zero, then divided by its count (``_avgpool2d_counts``), as ``numba_kernels`` does.
    """
    N, H, W, C = x.shape
    counts = _avgpool2d_counts(H, W, PH, PW, SH, SW, PT, PB, PL, PR, x.dtype)
    OH, OW = counts.shape
    if PT or PB or PL or PR:
        x = np.pad(x, ((0, 0), (PT, PB), (PL, PR), (0, 0)))  # (N, H+PT+PB, W+PL+PR, C)
    total = np.zeros((N, OH, OW, C), x.dtype)
    for kh in range(PH):
        for kw in range(PW):
            total += x[:, kh:kh + SH * (OH - 1) + 1:SH, kw:kw + SW * (OW - 1) + 1:SW, :]
    return total / counts[:, :, None]


def avgpool2d_backward(dy, x_shape, PH, PW, SH, SW, PT, PB, PL, PR):
    """Adjoint of ``avgpool2d_forward``: each window's gradient divided by its count and added
    to its in-image elements; overlapping windows sum in (kh, kw) order.

    Input shapes: dy (N, OH, OW, C); x_shape (N, H, W, C). Output shape: dx (N, H, W, C).
    """
    N, H, W, C = x_shape
    _, OH, OW, _ = dy.shape
    share = dy / _avgpool2d_counts(H, W, PH, PW, SH, SW, PT, PB, PL, PR, dy.dtype)[:, :, None]
    dx = np.zeros((N, H + PT + PB, W + PL + PR, C), dy.dtype)
    for kh in range(PH):
        for kw in range(PW):
            dx[:, kh:kh + SH * (OH - 1) + 1:SH, kw:kw + SW * (OW - 1) + 1:SW, :] += share
    return np.ascontiguousarray(dx[:, PT:PT + H, PL:PL + W, :])


# -- GELU (Keras's exact form, approximate=False) -----------------------------------------------
_erfc = np.frompyfunc(math.erfc, 1, 1)
_SQRT_HALF = 0.7071067811865476  # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)
_DENSITY_CUTOFF = 40.0  # exp(-x^2 / 2) is 0 in float64 beyond; clipping avoids x^2 overflow


def _phi(x):
    """The standard normal CDF 0.5 (1 + erf(x / sqrt(2))) of a float64 array, as
    0.5 erfc(-x / sqrt(2)) (no cancellation for x < 0)."""
    return 0.5 * np.asarray(_erfc(-x * _SQRT_HALF), dtype=np.float64)


def gelu(z):
    """x Phi(x) element-wise, computed in float64 and returned in z's dtype (rounded once).
    Input shape: any; output: a new array of the same shape."""
    x = z.astype(np.float64)
    return (x * _phi(x)).astype(z.dtype)


def gelu_backward(z, da):
    """d(input) of GELU from its input ``z`` and d(output) ``da`` (same shapes):
    da (Phi(z) + z phi(z)), phi the standard normal density; computed in float64, returned in
    da's dtype as a new array."""
    x = z.astype(np.float64)
    t = np.minimum(np.abs(x), _DENSITY_CUTOFF)
    density = _INV_SQRT_2PI * np.exp(-0.5 * t * t)
    return (da.astype(np.float64) * (_phi(x) + x * density)).astype(da.dtype)


# -- batch normalization (channels last: rows x (M, C), C-contiguous) --------------------------
# Sums are accumulated in float64 and returned in the input's dtype.


def batchnorm_moments(x):
    """Per-channel mean and biased variance (mean of squared deviations from the mean) of the
    rows x (M, C). Returns (mean, variance), each (C,) in x's dtype."""
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=0)
    variance = np.square(x64 - mean).mean(axis=0)
    return mean.astype(x.dtype), variance.astype(x.dtype)


def batchnorm_scale_shift(x, scale, shift):
    """x * scale + shift per channel: x (M, C), scale and shift (C,). Returns a new (M, C)."""
    return x * scale + shift


def batchnorm_backward_sums(dy, x, mean):
    """Per-channel sum(dy) and sum(dy * (x - mean)) over the rows: dy and x (M, C), mean (C,).
    Returns both (C,) in dy's dtype."""
    dy64 = dy.astype(np.float64)
    centered = x.astype(np.float64) - mean
    return dy64.sum(axis=0).astype(dy.dtype), (dy64 * centered).sum(axis=0).astype(dy.dtype)


def batchnorm_input_gradient(dy, x, mean, scale, dy_mean, slope):
    """dx = scale * (dy - dy_mean - (x - mean) * slope) per channel: dy and x (M, C), the rest
    (C,). Returns a new (M, C)."""
    return scale * (dy - dy_mean - (x - mean) * slope)


# -- affine warps (NHWC; TensorFlow's ImageProjectiveTransform semantics) -----------------------
# Output pixel (y, x) of image n samples the input at (b0 x + b1 y + b2, a0 x + a1 y + a2)
# (row, column), from ``transforms[n] = (a0, a1, a2, b0, b1, b2)``, computed in float32. Each
# coordinate is first mapped by the fill mode (FILL_MODES): "constant" leaves it (reads outside
# the image give ``fill``), "nearest" clamps it, "reflect" mirrors it about the edges
# (d c b a | a b c d | d c b a), "wrap" repeats the image; then "nearest" interpolation reads
# the pixel at the coordinate rounded half away from zero, "bilinear" blends the four around it.
FILL_MODES = ("constant", "nearest", "reflect", "wrap")


def _mapped(c, length: int, mode: int):
    """Coordinates ``c`` (float32 array) mapped into [0, length - 1] by fill mode ``mode``."""
    if mode == 0:
        return c
    if length <= 1:
        return np.zeros_like(c)
    top = np.float32(length - 1)
    if mode == 2:
        size2 = np.float32(2 * length)
        below = np.where(c < -size2, size2 * np.trunc(-c / size2) + c, c)
        below = np.where(below < -length, below + size2, -below - 1)
        above = c - size2 * np.trunc(c / size2)
        above = np.where(above >= length, size2 - above - 1, above)
        c = np.where(c < 0, below, np.where(c > top, above, c))
    elif mode == 3:
        period = np.float32(length)
        below = c + period * (np.trunc(-c / top) + 1)
        above = c - period * np.trunc(c / top)
        c = np.where(c < 0, below, np.where(c > top, above, c))
    return np.clip(c, np.float32(0), top).astype(np.float32)


def _sources(transform, H: int, W: int, nearest: bool, mode: int, out_shape: tuple):
    """For every pixel of an output of ``out_shape`` (height, width), its source pixels in an
    (H, W) input and their weights: a list of (rows, columns, weights), each of ``out_shape``;
    rows or columns outside the input are to be read as ``fill``."""
    a0, a1, a2, b0, b1, b2 = (np.float32(v) for v in transform[:6])
    y, x = np.meshgrid(np.arange(out_shape[0], dtype=np.float32),
                       np.arange(out_shape[1], dtype=np.float32), indexing="ij")
    columns = _mapped(a0 * x + a1 * y + a2, W, mode)
    rows = _mapped(b0 * x + b1 * y + b2, H, mode)
    if nearest:
        return [(_round_half_away(rows), _round_half_away(columns), None)]
    r0, c0 = np.floor(rows), np.floor(columns)
    dr, dc = rows - r0, columns - c0
    one = np.float32(1)
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
    return [(r0, c0, (one - dr) * (one - dc)), (r0, c0 + 1, (one - dr) * dc),
            (r0 + 1, c0, dr * (one - dc)), (r0 + 1, c0 + 1, dr * dc)]


def _round_half_away(c):
    return (np.sign(c) * np.floor(np.abs(c) + np.float32(0.5))).astype(np.int64)


def affine_warp(images, transforms, nearest: bool, mode: int, fill, height: int, width: int):
    """Warp each image by its transform (section comment) into a (height, width) output. Input
    shapes: images (N, H, W, C), transforms (N, 6+). ``mode``: an index of FILL_MODES. Output:
    a new (N, height, width, C) array."""
    N, H, W, C = images.shape
    out = np.empty((N, height, width, C), images.dtype)
    for n in range(N):
        total = np.zeros((height, width, C), images.dtype)
        for rows, columns, weights in _sources(transforms[n], H, W, nearest, mode,
                                               (height, width)):
            inside = (rows >= 0) & (rows < H) & (columns >= 0) & (columns < W)
            values = np.where(inside[..., None], images[n][np.clip(rows, 0, H - 1),
                                                          np.clip(columns, 0, W - 1)],
                              images.dtype.type(fill))
            total = values if weights is None else total + weights[..., None] * values
        out[n] = total
    return out


def affine_warp_backward(dy, transforms, nearest: bool, mode: int, height: int, width: int):
    """d(input) (N, height, width, C) of ``affine_warp`` from d(output) ``dy`` (N, OH, OW, C):
    each output gradient added back to the pixels it was read from, with their weights (fill
    reads get nothing)."""
    N, OH, OW, C = dy.shape
    H, W = height, width
    dx = np.zeros((N, H, W, C), dy.dtype)
    for n in range(N):
        for rows, columns, weights in _sources(transforms[n], H, W, nearest, mode, (OH, OW)):
            inside = (rows >= 0) & (rows < H) & (columns >= 0) & (columns < W)
            contribution = dy[n] if weights is None else weights[..., None] * dy[n]
            np.add.at(dx[n], (rows[inside], columns[inside]), contribution[inside])
    return dx
