"""Keras worker: the same layers and ``fit`` call as tinynn's, on ``$KERAS_BACKEND``
(TensorFlow by default, the reports' stack)."""

from __future__ import annotations

import os

from benchmarks.models import ModelSpec, keras_style_model
from benchmarks.workers import common


def set_backend_threads(backend: str, threads: int) -> dict:
    """Size the backend's thread pools (before Keras touches it); returns what was set."""
    if backend == "tensorflow":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        return {"tensorflow": tf.__version__,
                "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}
    if backend == "torch":
        import torch
        torch.set_num_threads(threads)
        return {"torch": torch.__version__, "threads": torch.get_num_threads()}
    return {"threads": "not set for this backend"}


def main(spec: dict, model_spec: ModelSpec) -> dict:
    backend = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        threads = set_backend_threads(backend, spec["threads"])
        import keras
    except ImportError as error:
        return common.skipped(error)
    keras.utils.set_random_seed(spec["seed"])
    model = keras_style_model(keras, model_spec)
    return common.train_keras_style(keras, model, spec, model_spec, lambda trained: {
        "version": keras.__version__, "backend": backend,
        "jit_compile": bool(trained.jit_compile), **threads})

if __name__ == "__main__":
    common.run(main)
