"""Convolution and pooling kernels, NumPy reference vs numba, at the reports' CNN shapes.

    python benchmarks/conv_kernels.py [--repeat 30] [--json out.json]

Prints the best time of ``--repeat`` calls per kernel and shape (float32, batch 32): the numbers
behind ``tinynn.ops.NUMBA_FASTER``. Run it on an otherwise idle machine.
"""

import argparse
import json
import time

import numpy as np

from tinynn.ops import numba_kernels, reference

SAME_5X5 = (5, 5, 1, 1, 2, 2, 2, 2)  # KH KW SH SW PT PB PL PR: Conv2D(..., 5, padding="same")
POOL_2X2 = (2, 2, 2, 2)  # PH PW SH SW: MaxPooling2D(2)


def cases(rng: np.random.Generator) -> list[tuple[str, str, tuple]]:
    """(kernel name, shape label, arguments) at the CNN's layer shapes."""
    found = []
    for label, shape in (("conv1 x(32,28,28,1)", (32, 28, 28, 1)),
                         ("conv2 x(32,14,14,32)", (32, 14, 14, 32))):
        x = rng.standard_normal(shape, dtype=np.float32)
        cols = reference.im2col(x, *SAME_5X5)
        found += [("im2col", label, (x, *SAME_5X5)),
                  ("col2im", label, (cols, shape, *SAME_5X5))]
    for label, shape in (("pool1 x(32,28,28,32)", (32, 28, 28, 32)),
                         ("pool2 x(32,14,14,64)", (32, 14, 14, 64))):
        x = rng.standard_normal(shape, dtype=np.float32)
        y, argmax = reference.maxpool2d_forward(x, *POOL_2X2)
        found += [("maxpool2d_forward", label, (x, *POOL_2X2)),
                  ("maxpool2d_backward", label, (y, argmax, shape, *POOL_2X2))]
    return found


def best_ms(function, args: tuple, repeat: int) -> float:
    function(*args)  # compile (numba) and warm up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    rows = []
    print(f"{'kernel':20s} {'shape':22s} {'numpy ms':>9s} {'numba ms':>9s} {'speed-up':>9s}")
    for name, label, call_args in cases(np.random.default_rng(0)):
        numpy_ms = best_ms(getattr(reference, name), call_args, args.repeat)
        numba_ms = best_ms(getattr(numba_kernels, name), call_args, args.repeat)
        rows.append({"kernel": name, "shape": label, "numpy_ms": numpy_ms, "numba_ms": numba_ms})
        print(f"{name:20s} {label:22s} {numpy_ms:9.2f} {numba_ms:9.2f} "
              f"{numpy_ms / numba_ms:8.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
