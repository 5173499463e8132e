"""What the workers share: the spec in, the data, timing and memory, the result line out.

A worker runs as ``python -m benchmarks.workers.<framework>_worker`` with a JSON spec on stdin
and prints one JSON line, its result, last on stdout. ``run.py`` starts it with
``thread_env(threads)`` in its environment, so every thread pool is sized before NumPy or the
framework is imported. Spec keys: ``model`` (a ``MODELS`` name), ``data`` (an ``.npz`` from
``run.py``), ``epochs``, ``batch_size``, ``inference_batch_size``, ``threads``, ``seed``.

Every framework is measured the same way: ``fit`` (or a plain loop) over the training images
with no validation, each epoch timed; then ``evaluate`` and ``predict`` on the test images,
each timed after a one-batch warm-up call (Keras traces its functions on the first call).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from benchmarks.models import MODELS, ModelSpec

BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables for a worker: BLAS and OpenMP pools of ``threads``; numba's of 1.
    OPENBLAS_THREAD_TIMEOUT=4 makes OpenBLAS's threads sleep as soon as a product ends instead
    of spinning beside the kernels that run between products (tinynn's CNN step: 42 ms
    without, 37 ms with it). A second numba thread measured no faster over the whole step
    (37.5 vs 39.1 ms, medians of 3 runs; README "Performance"), so numba keeps one."""
    return {**dict.fromkeys(BLAS_VARIABLES, str(threads)), "NUMBA_NUM_THREADS": "1",
            "OPENBLAS_THREAD_TIMEOUT": "4"}


def load_data(path: str, spec: ModelSpec) -> tuple[np.ndarray, ...]:
    """``x_train, y_train, x_test, y_test``: float32 images shaped ``(N, *spec.input_shape)``
    and uint8 labels."""
    with np.load(path) as arrays:
        x_train, y_train, x_test, y_test = (arrays[k] for k in ("x_train", "y_train",
                                                                 "x_test", "y_test"))
    return (x_train.reshape(-1, *spec.input_shape), y_train,
            x_test.reshape(-1, *spec.input_shape), y_test)


def epoch_timer(callback_base: type):
    """A callback (a subclass of tinynn's or Keras's ``Callback``) whose ``seconds`` list gets
    the wall-clock time of each epoch."""

    class EpochTimer(callback_base):
        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    return EpochTimer()


def timed(function: Callable, *args):
    """``(seconds, function(*args))``."""
    start = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - start, value


def last_epoch(history: dict) -> dict:
    """The last epoch's training loss and accuracy from a Keras-style ``History.history``."""
    return {"train_loss": float(history["loss"][-1]),
            "train_accuracy": float(history["accuracy"][-1])}


def inference(evaluate: Callable, predict: Callable, x, y, labels: np.ndarray,
              batch_size: int) -> dict:
    """Time ``evaluate(x, y) -> loss`` and ``predict(x) -> probabilities`` (NumPy) on the test
    images, each after a warm-up call on the first batch; ``labels`` give the accuracy."""
    evaluate(x[:batch_size], y[:batch_size])
    predict(x[:batch_size])
    evaluate_s, loss = timed(evaluate, x, y)
    predict_s, probabilities = timed(predict, x)
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == labels))
    return {"evaluate_s": evaluate_s, "predict_s": predict_s, "test_loss": float(loss),
            "test_accuracy": accuracy}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (``ru_maxrss``: KB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def result(epoch_seconds: list[float], measured: dict, params: int, framework: dict) -> dict:
    """The worker's result: ``status`` ok, the measurements, parameters, peak memory, the
    thread variables in effect and ``framework_info`` (version, thread settings)."""
    return {"status": "ok", "epoch_seconds": epoch_seconds,
            "median_epoch_s": statistics.median(epoch_seconds[1:] or epoch_seconds),
            **measured, "params": int(params), "peak_rss_mb": peak_rss_mb(),
            "thread_env": {name: os.environ.get(name)
                           for name in (*BLAS_VARIABLES, "NUMBA_NUM_THREADS",
                                        "OPENBLAS_THREAD_TIMEOUT")},
            "framework_info": framework}


def train_keras_style(api, model, spec: dict, model_spec: ModelSpec,
                      describe: Callable[[object], dict]) -> dict:
    """Compile, fit (each epoch timed) and measure inference of a ``model`` of a
    Keras-style ``api`` (``keras`` or ``tinynn``: the same names and arguments). Returns the
    worker's result; ``describe(model)`` gives its framework entry, read after training."""
    x_train, y_train, x_test, y_test = load_data(spec["data"], model_spec)
    optimizer = getattr(api.optimizers, model_spec.optimizer)(
        learning_rate=model_spec.learning_rate)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = epoch_timer(api.callbacks.Callback)
    history = model.fit(x_train, y_train, batch_size=spec["batch_size"],
                        epochs=spec["epochs"], verbose=0, callbacks=[timer])
    batch = spec["inference_batch_size"]
    measured = inference(
        lambda x, y: model.evaluate(x, y, batch_size=batch, verbose=0)[0],
        lambda x: model.predict(x, batch_size=batch, verbose=0),
        x_test, y_test, y_test, batch)
    return result(timer.seconds, {**last_epoch(history.history), **measured},
                  model.count_params(), describe(model))


def skipped(error: ImportError) -> dict:
    """The result of a worker whose framework cannot be imported."""
    return {"status": "skipped", "reason": f"not installed ({error})"}


def run(main: Callable[[dict, ModelSpec], dict]) -> None:
    """Read the spec from stdin, call ``main(spec, model_spec)``, print its result line."""
    spec = json.load(sys.stdin)
    print(json.dumps(main(spec, MODELS[spec["model"]])), flush=True)
