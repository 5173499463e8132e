"""Where one training step's time goes: per layer, forward and backward, and the GEMM floor.

    python -m benchmarks.profile [--steps 60] [--batch 32] [--model cnn]

Trains one of the benchmark's models (``--model``, by default the reports' CNN; random data of
Fashion-MNIST's shape: timing does not depend on the values) for ``--steps`` steps after a
warm-up and reports the median milliseconds of each layer's forward and backward, the loss, the
finite check and the optimizer update, the whole step, its minor page faults (fresh memory the
kernel had to map), and which algorithm each convolution used. For the CNN, the GEMM floor is
the time NumPy's BLAS alone needs for the matrix products of the same step, at the shapes the
im2col algorithm gives them: the work every algorithm must beat with fewer multiplications or
fewer passes over memory. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import numpy as np

import tinynn as tn
from benchmarks.models import MODELS, keras_style_model
from tinynn import loops


def log_wrapper(function, times: list):
    """``function`` with each call's milliseconds appended to ``times``."""
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        value = function(*args, **kwargs)
        times.append((time.perf_counter() - start) * 1e3)
        return value
    return wrapper


def time_method(target, method: str, times: list) -> None:
    """Replace ``target.<method>`` (on the instance) by a timed wrapper logging to ``times``."""
    setattr(target, method, log_wrapper(getattr(target, method), times))


def gemm_floor_ms(batch: int, repeat: int = 20) -> dict:
    """Median ms of each matrix product of one im2col CNN training step, timed alone."""
    rng = np.random.default_rng(0)
    rows1, rows2 = batch * 28 * 28, batch * 14 * 14
    shapes = {  # name: (m, k, n) of an (m, k) @ (k, n) product
        "conv2d forward": (rows1, 25, 32), "conv2d d(kernel)": (25, rows1, 32),
        "conv2d_1 forward": (rows2, 800, 64), "conv2d_1 d(kernel)": (800, rows2, 64),
        "conv2d_1 d(input)": (rows2, 64, 800), "dense forward": (batch, 3136, 1024),
        "dense d(kernel)": (3136, batch, 1024), "dense d(input)": (batch, 1024, 3136),
        "dense_1 (3 products)": (batch, 1024, 10)}
    found = {}
    for name, (m, k, n) in shapes.items():
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        out = np.empty((m, n), np.float32)
        np.matmul(a, b, out=out)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append((time.perf_counter() - start) * 1e3)
        found[name] = statistics.median(times) * (3 if name.startswith("dense_1") else 1)
    return {"products": found, "total_ms": sum(found.values()),
            "gflop": sum(2 * m * k * n for m, k, n in shapes.values()) / 1e9}


def profile_step(steps: int, batch: int, name: str = "cnn") -> dict:
    """Per-layer forward/backward medians (ms) of ``steps`` training steps of model ``name``."""
    spec = MODELS[name]
    model = keras_style_model(tn, spec, seed=0)
    model.compile(tn.optimizers.Adam(), "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((batch * (steps + 10), *spec.input_shape), dtype=np.float32)
    y = rng.integers(0, 10, len(x)).astype(np.uint8)
    model.fit(x[:batch * 10], y[:batch * 10], batch_size=batch, verbose=0)  # compile, warm up
    log: dict = {}
    for layer in model.layers:
        for method in ("forward", "backward", "forward_logits", "backward_logits"):
            if hasattr(layer, method):
                time_method(layer, method, log.setdefault((layer.name, method), []))
    for target, method in ((model.optimizer, "apply"), (model, "loss_and_output_gradient")):
        time_method(target, method, log.setdefault(method, []))
    check_finite_step = log_wrapper(loops.check_finite_step, log.setdefault("finite", []))
    step_ms, faults = [], []
    for step in range(steps):
        rows = slice((step + 10) * batch, (step + 11) * batch)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        loss, _ = model.compute_loss_and_gradients(x[rows], y[rows])
        check_finite_step(model, loss, 0, step)
        model.optimizer.apply(model.parameters, model.gradients)
        step_ms.append((time.perf_counter() - start) * 1e3)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    layers = []
    for layer in model.layers:
        forward = log.get((layer.name, "forward"), []) + log.get((layer.name, "forward_logits"),
                                                                 [])
        backward = log.get((layer.name, "backward"), []) + log.get(
            (layer.name, "backward_logits"), [])
        layers.append({"layer": layer.name, "type": type(layer).__name__,
                       "algorithm": getattr(layer, "algorithm_used", None),
                       "forward_ms": statistics.median(forward) if forward else 0.0,
                       "backward_ms": statistics.median(backward) if backward else 0.0})
    return {"batch": batch, "steps": steps, "layers": layers,
            "loss_ms": statistics.median(log["loss_and_output_gradient"]),
            "finite_check_ms": statistics.median(log["finite"]),
            "optimizer_ms": statistics.median(log["apply"]),
            "step_ms": statistics.median(step_ms),
            "page_faults_per_step": statistics.median(faults)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--model", choices=sorted(MODELS), default="cnn")
    args = parser.parse_args(argv)
    result = {"profile": profile_step(args.steps, args.batch, args.model)}
    if args.model == "cnn":
        result["gemm_floor"] = gemm_floor_ms(args.batch)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
