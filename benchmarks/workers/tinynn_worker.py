"""tinynn worker: ``Sequential.fit`` as the examples call it, each epoch timed by a callback."""

from __future__ import annotations

import numpy as np

import tinynn as tn
from benchmarks.models import ModelSpec, keras_style_layers
from benchmarks.workers import common
from tinynn import ops


def main(spec: dict, model_spec: ModelSpec) -> dict:
    x_train, y_train, x_test, y_test = common.load_data(spec["data"], model_spec)
    model = tn.Sequential(keras_style_layers(tn.layers, model_spec), seed=spec["seed"])
    optimizer = getattr(tn.optimizers, model_spec.optimizer)(
        learning_rate=model_spec.learning_rate)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = common.epoch_timer(tn.callbacks.Callback)
    history = model.fit(x_train, y_train, batch_size=spec["batch_size"],
                        epochs=spec["epochs"], verbose=0, callbacks=[timer])
    batch = spec["inference_batch_size"]
    measured = common.inference(
        lambda x, y: model.evaluate(x, y, batch_size=batch, verbose=0)[0],
        lambda x: model.predict(x, batch_size=batch, verbose=0),
        x_test, y_test, y_test, batch)
    framework = {"version": tn.__version__, "numpy": np.__version__,
                 "kernels": {name: ops.implementation(name) for name in ops.KERNELS}}
    return common.result(timer.seconds, {**common.last_epoch(history.history), **measured},
                         model.count_params(), framework)


if __name__ == "__main__":
    common.run(main)
