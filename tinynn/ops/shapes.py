"""Output sizes and padding of convolution and pooling windows (Keras's arithmetic, ints only).

One spatial axis at a time: ``size`` input length, ``kernel`` window length, ``stride`` step.

- ``"valid"``: no padding; out = floor((size - kernel) / stride) + 1 (< 1 when the window is
  larger than the input).
- ``"same"``: out = ceil(size / stride); total = max((out - 1) * stride + kernel - size, 0);
  before = total // 2 and after = total - before, so an odd total puts the extra pixel at the
  bottom/right (even kernels, or strides that do not divide the input).
"""

PADDINGS = ("valid", "same")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras's ``"same"`` padding ``(before, after)``: 28, 5, 1 -> (2, 2); 28, 4, 1 -> (1, 2)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def padding_amounts(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """``(before, after)`` for ``padding`` ``"valid"`` (always (0, 0)) or ``"same"``."""
    return same_padding(size, kernel, stride) if padding == "same" else (0, 0)


def conv_output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """Output length of a convolution or pooling window sliding over ``size`` positions."""
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1
