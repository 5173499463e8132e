"""One convolution's three passes (forward, input gradient, kernel gradient) in tinynn,
TensorFlow and PyTorch, at the shapes of the reports' CNN and of the ResNet, in GFLOP/s.

    python -m benchmarks.conv_passes [--batch 32] [--repeat 20] [--threads 2]
        [--frameworks tinynn,tensorflow,torch]

Each framework runs in its own process with ``--threads`` threads (the variables of
``benchmarks/run.py``'s workers) and times its own operations on the same float32 arrays:
tinynn's ``Conv2D`` as it trains (its algorithm, chunking and kernel choices included),
TensorFlow's ``tf.nn.conv2d`` and its ``Conv2DBackpropInput``/``Conv2DBackpropFilter`` ops
(NHWC, oneDNN), PyTorch's ``conv2d`` and ``torch.nn.grad.conv2d_input``/``conv2d_weight``
(channels-last tensors). A pass's time is the median of ``--repeat`` calls after two warm-up
calls; GFLOP/s counts 2 * N * OH * OW * KH * KW * C * F per pass. tinynn's passes are timed
inside its training forward/backward: the kernel gradient is a backward without the input
gradient (after a training forward, whose median is subtracted), the input gradient the median
difference of a backward with and one without it, timed in pairs.
Prints a markdown table and one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import run  # noqa: E402

# name: (H, W, C, F, K): a stride-1 "same" convolution with a K x K kernel
SHAPES = {"CNN conv1 (5x5, 1 -> 32, 28x28)": (28, 28, 1, 32, 5),
          "CNN conv2 (5x5, 32 -> 64, 14x14)": (14, 14, 32, 64, 5),
          "ResNet block conv (3x3, 32 -> 32, 14x14)": (14, 14, 32, 32, 3),
          "ResNet block conv (3x3, 64 -> 64, 7x7)": (7, 7, 64, 64, 3)}
PASSES = ("forward", "input gradient", "kernel gradient")
FRAMEWORKS = ("tinynn", "tensorflow", "torch")


def flops(batch: int, shape: tuple) -> float:
    h, w, c, f, k = shape
    return 2.0 * batch * h * w * k * k * c * f


def arrays(batch: int, shape: tuple) -> tuple:
    """x (N, H, W, C), kernel (K, K, C, F) and dy (N, H, W, F), float32, seeded."""
    h, w, c, f, k = shape
    rng = np.random.default_rng(0)
    return (rng.standard_normal((batch, h, w, c), dtype=np.float32),
            rng.standard_normal((k, k, c, f), dtype=np.float32) * 0.1,
            rng.standard_normal((batch, h, w, f), dtype=np.float32))


def time_tinynn(batch: int, shape: tuple, repeat: int) -> dict:
    import tinynn as tn

    x, kernel, dy = arrays(batch, shape)
    layer = tn.layers.Conv2D(shape[3], shape[4], padding="same", use_bias=False)
    layer(x[:1])
    layer.params["kernel"][...] = kernel

    def forward():
        layer.forward(x, training=True)
        layer.release_cache()

    def backward(input_gradient: bool):
        layer.compute_input_gradient = input_gradient
        layer.forward(x, training=True)
        return layer.backward(dy)

    forward_s = run.median_seconds(forward, repeat)
    kernel_only, extra = [], []  # paired: a backward without, then with, the input gradient
    for _ in range(repeat + 2):
        without, with_input = (_seconds(backward, flag) for flag in (False, True))
        kernel_only.append(without)
        extra.append(with_input - without)
    return {"forward": forward_s, "input gradient": max(statistics.median(extra[2:]), 1e-9),
            "kernel gradient": max(statistics.median(kernel_only[2:]) - forward_s, 1e-9),
            "version": tn.__version__}


def _seconds(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def time_tensorflow(batch: int, shape: tuple, repeat: int) -> dict:
    import tensorflow as tf

    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    x, kernel, dy = (tf.constant(a) for a in arrays(batch, shape))
    strides = [1, 1, 1, 1]
    passes = {
        "forward": lambda: tf.nn.conv2d(x, kernel, strides, "SAME").numpy(),
        "input gradient": lambda: tf.raw_ops.Conv2DBackpropInput(
            input_sizes=x.shape, filter=kernel, out_backprop=dy, strides=strides,
            padding="SAME").numpy(),
        "kernel gradient": lambda: tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=kernel.shape, out_backprop=dy, strides=strides,
            padding="SAME").numpy()}
    return {**{name: run.median_seconds(run, repeat) for name, run in passes.items()},
            "version": tf.__version__}


def time_torch(batch: int, shape: tuple, repeat: int) -> dict:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    x, kernel, dy = arrays(batch, shape)
    channels_last = torch.channels_last
    x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=channels_last)
    dy = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(memory_format=channels_last)
    weight = torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous(
        memory_format=channels_last)
    pad = shape[4] // 2
    functional, grad = torch.nn.functional, torch.nn.grad
    with torch.no_grad():
        passes = {
            "forward": lambda: functional.conv2d(x, weight, padding=pad),
            "input gradient": lambda: grad.conv2d_input(x.shape, weight, dy, padding=pad),
            "kernel gradient": lambda: grad.conv2d_weight(x, weight.shape, dy, padding=pad)}
        found = {name: run.median_seconds(run, repeat) for name, run in passes.items()}
    return {**found, "version": torch.__version__}


def worker(framework: str, batch: int, repeat: int) -> dict:
    timer = {"tinynn": time_tinynn, "tensorflow": time_tensorflow, "torch": time_torch}[framework]
    return {name: timer(batch, shape, repeat) for name, shape in SHAPES.items()}


def table(results: dict, batch: int) -> list[str]:
    """Markdown rows: per shape and pass, each framework's GFLOP/s and tinynn's time ratio."""
    ok = [f for f in FRAMEWORKS if f in results and "status" not in results[f]]
    lines = ["| convolution | pass | " + " | ".join(f"{f} GFLOP/s" for f in ok)
             + "".join(f" | tinynn / {f} time" for f in ok if f != "tinynn") + " |",
             "|---|---|" + "---|" * (2 * len(ok) - ("tinynn" in ok))]
    for name, shape in SHAPES.items():
        for kind in PASSES:
            seconds = {f: results[f][name][kind] for f in ok}
            cells = [f"{flops(batch, shape) / seconds[f] / 1e9:.1f}" for f in ok]
            if "tinynn" in ok:
                cells += [f"{seconds['tinynn'] / seconds[f]:.2f}" for f in ok if f != "tinynn"]
            lines.append(f"| {name} | {kind} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = run.side_by_side_args(__doc__.splitlines()[0], FRAMEWORKS, 20, argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.batch, args.repeat)), flush=True)
        return
    results = {f: run.side_by_side_worker("benchmarks.conv_passes", f, args)
               for f in args.frameworks}
    print("\n".join(table(results, args.batch)))
    for framework, found in results.items():
        if "status" in found:
            print(f"\n{framework}: {found['status']} ({found['reason']})")
    print(json.dumps({"batch": args.batch, "threads": args.threads, "results": results}))


if __name__ == "__main__":
    main()
