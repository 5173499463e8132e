"""How Conv2D computes: im2col + one matrix product, or Winograd minimal filtering.

Both compute the same cross-correlation (Keras's Conv2D) with the same arguments; they differ in
rounding and speed. Conv2D picks one per layer shape (``choose``), or takes the one its
``algorithm`` argument or the ``TINYNN_CONV_ALGORITHM`` environment variable names.

- ``im2col``: unfold every KH x KW window into a row, ``cols @ kernel``; any stride and shape.
  Backward: ``cols^T @ dz`` for the kernel, ``dz @ kernel^T`` folded back (col2im) for the input.
  Both run chunk by chunk of samples (``CHUNK_BYTES`` of unfolded rows), so that the rows a
  product reads were just written and are still in cache; training keeps the input, not its
  unfolding, and unfolds it again in backward (unless one chunk holds the whole batch).
- ``winograd``: F(m x m, r x r) (``tinynn.ops.winograd``) for stride-1 square kernels: the
  forward product and both gradients become T*T = (m + r - 1)^2 independent matrix products in
  the transform domain, with 36 instead of 100 multiplications per 2x2 output tile for 5x5
  kernels; the tile transforms run in numba, the products in BLAS.

An algorithm object is made once per built layer and holds no data: a training ``forward``
returns, beside its output, what ``backward`` needs (the input, or the transformed input and
kernel), which the layer keeps in its cache until then.
"""

from __future__ import annotations

import os

import numpy as np

from .. import ops
from ..errors import ArgumentError
from ..ops import winograd

ALGORITHMS = ("auto", "im2col", "winograd")
ENVIRONMENT_VARIABLE = "TINYNN_CONV_ALGORITHM"
#: Output tile size m of Winograd F(m x m, r x r) per kernel size r. Measured at conv2 of the
#: reports' CNN (batch 32, transforms plus products of one step): m = 2, 3, 4 took 14.2, 13.4
#: and 15.2 ms, within the noise of each other; m = 2 has the smallest float32 error.
WINOGRAD_TILE = {3: 2, 5: 2}
#: Shapes (KH, KW, C) at which ``auto`` picks Winograd: those where it measured faster than
#: im2col over a whole training step. None yet: at conv2 of the reports' CNN (5x5, 32 -> 64,
#: batch 32) Winograd F(2x2, 5x5) took 8.2 ms forward and 13.8 ms backward against im2col's
#: 6.7 and 11.5 (``benchmarks/profile.py``, medians of 150 steps, 2026-11-30): it does 2.8x
#: fewer multiplications, but its transform-domain products (K = 32) run at half of BLAS's
#: speed and its four tile transforms cost more than the unfold they replace.
WINOGRAD_SHAPES: frozenset = frozenset()
#: Training and inference unfold (or transform) this many bytes of samples at a time, so that
#: no pass holds a whole batch's unfolding and the rows a product reads are still in cache.
#: Training, paired whole-process runs of 400 steps (medians of 5 pairs, wall time, AMD EPYC
#: Zen 5): keeping the ResNet's whole unfolded batch took 1.26x the time of 1 MiB chunks (and
#: 1.2x the peak memory); 2 MiB against 1 MiB: CNN 0.97x, ResNet 0.96x; 4 against 2 MiB: 0.98x,
#: 0.97x; 8 against 4 MiB: 1.01x, 1.14x (its larger buffers are fresh pages every step: 13x
#: the system time). Chunks too small make small products: at 1 MiB the CNN's conv2 unfolds
#: one 196-row sample at a time. Inference, ``predict`` on 10,000 images in batches of 1,000
#: (3 runs each, same machine): the CNN 1.44-1.49 s at 4 MiB against 1.73-1.77 s at 16 MiB
#: (the earlier inference chunk), the ResNet 2.93-3.58 s against 3.03-3.32 s.
CHUNK_BYTES = 4 * 2**20


def choose(requested: str, kernel_size: tuple, strides: tuple, channels: int) -> str:
    """The algorithm a Conv2D uses: ``requested`` unless it is "auto", then the environment
    variable if set, then Winograd for the stride-1 shapes in ``WINOGRAD_SHAPES``, else
    im2col."""
    if requested == "auto":
        requested = os.environ.get(ENVIRONMENT_VARIABLE, "auto").lower()
        if requested not in ALGORITHMS:
            raise ArgumentError(f"{ENVIRONMENT_VARIABLE} expected one of {ALGORITHMS}, got "
                              f"{requested!r}")
    fits = strides == (1, 1) and kernel_size[0] == kernel_size[1] in WINOGRAD_TILE
    if requested == "winograd" and not fits:
        raise ArgumentError(f"algorithm='winograd' needs strides (1, 1) and a square kernel of "
                          f"size {sorted(WINOGRAD_TILE)}, got kernel_size={kernel_size}, "
                          f"strides={strides}: use algorithm='im2col' or 'auto'")
    if requested == "auto":
        return "winograd" if fits and (*kernel_size, channels) in WINOGRAD_SHAPES else "im2col"
    return requested


def make(name: str, layer) -> Im2col | Winograd:
    """The algorithm object for a built Conv2D ``layer``."""
    return (Winograd if name == "winograd" else Im2col)(layer)


class Im2col:
    """``cols @ kernel`` over the unfolded windows (see the module docstring)."""

    name = "im2col"

    def __init__(self, layer):
        self.layer = layer

    def _chunks(self, n: int) -> list[slice]:
        """Ranges of the n samples, each at most ``CHUNK_BYTES`` of unfolded rows."""
        kernel = self.layer.params["kernel"]
        per_sample = self.layer.output_hw[0] * self.layer.output_hw[1]
        chunk = max(1, min(CHUNK_BYTES // (per_sample * kernel[..., 0].nbytes), n))
        return [slice(start, min(start + chunk, n)) for start in range(0, n, chunk)]

    def _unfold(self, x: np.ndarray, samples: slice, buffer: np.ndarray | None) -> np.ndarray:
        """The unfolded rows (chunk rows, KH*KW*C) of ``x[samples]``, written into ``buffer``
        (made for the first chunk, the largest, when None) and returned."""
        layer = self.layer
        rows = (samples.stop - samples.start) * layer.output_hw[0] * layer.output_hw[1]
        if buffer is None:
            buffer = np.empty((rows, layer.params["kernel"][..., 0].size), x.dtype)
        return ops.im2col(x[samples], *layer.window, out=buffer[:rows])

    def forward(self, x: np.ndarray, training: bool, relu: bool) -> tuple:
        """(N, H, W, C) -> (z (N*OH*OW, F) with bias (and ReLU) applied, saved for backward:
        the input, and its unfolding if one chunk held it all)."""
        layer = self.layer
        kernel = layer.params["kernel"].reshape(-1, layer.filters)  # (KH*KW*C, F)
        per_sample = layer.output_hw[0] * layer.output_hw[1]
        z = np.empty((len(x) * per_sample, layer.filters), x.dtype)
        chunks, cols = self._chunks(len(x)), None
        for samples in chunks:
            rows = slice(samples.start * per_sample, samples.stop * per_sample)
            cols = self._unfold(x, samples, cols)
            np.matmul(cols, kernel, out=z[rows])
            layer.add_bias(z[rows], relu)
        if not training:
            return z, None
        return z, (x, cols if len(chunks) == 1 else None)  # one chunk: keep it, unfolded

    def backward(self, dz: np.ndarray, saved: tuple, input_gradient: bool):
        """dz (N*OH*OW, F) -> fills grads; returns dx (N, H, W, C) if ``input_gradient``."""
        layer, (x, unfolded) = self.layer, saved
        kernel = layer.params["kernel"].reshape(-1, layer.filters)
        dkernel = layer.grads["kernel"].reshape(kernel.shape)
        per_sample = layer.output_hw[0] * layer.output_hw[1]
        dx = np.empty((len(x), *layer.input_shape), x.dtype) if input_gradient else None
        chunks, cols = self._chunks(len(x)), unfolded
        for i, samples in enumerate(chunks):
            rows = slice(samples.start * per_sample, samples.stop * per_sample)
            if unfolded is None:  # unfold again, into the previous chunk's rows
                cols = self._unfold(x, samples, cols)
            if i == 0:
                np.matmul(cols.T, dz[rows], out=dkernel)
            else:
                dkernel += cols.T @ dz[rows]
            if input_gradient:
                dcols = np.matmul(dz[rows], kernel.T, out=cols)  # into the unfolded rows
                dx[samples] = ops.col2im(dcols, (samples.stop - samples.start,
                                                 *layer.input_shape), *layer.window)
        return dx


class Winograd:
    """F(m x m, r x r) Winograd convolution (see the module docstring).

    Shapes: T = m + r - 1; the output is cut into TH x TW tiles of m x m; transform-domain
    arrays are (T*T, N*TH*TW, channels); the kernel's transform U is (T*T, C, F).
    """

    name = "winograd"

    def __init__(self, layer):
        self.layer = layer
        r = layer.kernel_size[0]
        self.m = WINOGRAD_TILE[r]
        dtype = layer.params["kernel"].dtype
        self.AT, self.G, self.BT = (a.astype(dtype) for a in winograd.matrices(self.m, r))
        self.tile = self.m + r - 1
        oh, ow = layer.output_hw
        self.tiles_hw = (-(-oh // self.m), -(-ow // self.m))  # TH, TW
        _, _, _, _, self.PT, _, self.PL, _ = layer.window

    def kernel_transform(self) -> np.ndarray:
        """U = G g G^T for every (input channel, filter): (KH, KW, C, F) -> (T*T, C, F)."""
        kernel = self.layer.params["kernel"]
        rows = np.tensordot(self.G, kernel, axes=(1, 0))  # (T, KW, C, F)
        u = np.tensordot(self.G, rows, axes=(1, 1))  # (T_b, T_a, C, F)
        return np.ascontiguousarray(u.transpose(1, 0, 2, 3)).reshape(self.tile ** 2,
                                                                      *kernel.shape[2:])

    def _convolve(self, x: np.ndarray, U: np.ndarray, relu: bool, y: np.ndarray):
        """Write one chunk's output into y (N, OH, OW, F); return its transform V."""
        layer = self.layer
        TH, TW = self.tiles_hw
        V = ops.winograd_input_transform(x, self.BT, self.m, self.PT, self.PL, TH, TW)
        M = np.matmul(V, U)  # (T*T, N*TH*TW, C) @ (T*T, C, F)
        bias = layer.params.get("bias")
        if bias is None:
            bias = np.zeros(layer.filters, x.dtype)
        ops.winograd_output_transform(M, self.AT, bias, relu, y)
        return V

    def forward(self, x: np.ndarray, training: bool, relu: bool) -> tuple:
        """(N, H, W, C) -> (z (N*OH*OW, F) with bias (and ReLU) applied, saved for backward)."""
        layer = self.layer
        U = self.kernel_transform()
        y = np.empty((len(x), *layer.output_hw, layer.filters), x.dtype)
        if training:
            return y.reshape(-1, layer.filters), (self._convolve(x, U, relu, y), U)
        TH, TW = self.tiles_hw
        per_sample = self.tile ** 2 * TH * TW * (x.shape[3] + layer.filters) * x.itemsize
        chunk = max(1, min(CHUNK_BYTES // per_sample, len(x)))
        for start in range(0, len(x), chunk):
            self._convolve(x[start:start + chunk], U, relu, y[start:start + chunk])
        return y.reshape(-1, layer.filters), None

    def backward(self, dz: np.ndarray, saved: tuple, input_gradient: bool):
        """dz (N*OH*OW, F) -> fills grads; returns dx (N, H, W, C) if ``input_gradient``."""
        layer, (V, U) = self.layer, saved
        TH, TW = self.tiles_hw
        dy = dz.reshape(-1, *layer.output_hw, layer.filters)  # (N, OH, OW, F)
        dM = ops.winograd_output_transform_backward(dy, self.AT, TH, TW)  # (T*T, tiles, F)
        dU = np.matmul(V.transpose(0, 2, 1), dM)  # (T*T, C, tiles) @ (T*T, tiles, F)
        dU = dU.reshape(self.tile, self.tile, *dU.shape[1:])  # (T_a, T_b, C, F)
        rows = np.tensordot(self.G, dU, axes=(0, 0))  # (KH, T_b, C, F): G^T dU
        dkernel = np.tensordot(self.G, rows, axes=(0, 1))  # (KW, KH, C, F): ... G
        layer.grads["kernel"][...] = dkernel.transpose(1, 0, 2, 3)
        if not input_gradient:
            return None
        dV = np.matmul(dM, U.transpose(0, 2, 1))  # (T*T, tiles, F) @ (T*T, F, C)
        return ops.winograd_input_transform_backward(dV, self.BT, (len(dy), *layer.input_shape),
                                                     self.m, self.PT, self.PL, TH, TW)
