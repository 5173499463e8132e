"""Keras worker: the same layers and ``fit`` call as tinynn's, on ``$KERAS_BACKEND``
(TensorFlow by default, the reports' stack)."""

from __future__ import annotations

import os

from benchmarks.models import ModelSpec, keras_style_layers
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
    x_train, y_train, x_test, y_test = common.load_data(spec["data"], model_spec)
    model = keras.Sequential(keras_style_layers(keras.layers, model_spec))
    optimizer = getattr(keras.optimizers, model_spec.optimizer)(
        learning_rate=model_spec.learning_rate)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = common.epoch_timer(keras.callbacks.Callback)
    history = model.fit(x_train, y_train, batch_size=spec["batch_size"],
                        epochs=spec["epochs"], verbose=0, callbacks=[timer])
    batch = spec["inference_batch_size"]
    measured = common.inference(
        lambda x, y: model.evaluate(x, y, batch_size=batch, verbose=0)[0],
        lambda x: model.predict(x, batch_size=batch, verbose=0),
        x_test, y_test, y_test, batch)
    framework = {"version": keras.__version__, "backend": backend,
                 "jit_compile": bool(model.jit_compile), **threads}
    return common.result(timer.seconds, {**common.last_epoch(history.history), **measured},
                         model.count_params(), framework)


if __name__ == "__main__":
    common.run(main)
