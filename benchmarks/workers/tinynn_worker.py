"""tinynn worker: ``fit`` as the examples call it, each epoch timed by a callback."""

from __future__ import annotations

import numpy as np

import tinynn as tn
from benchmarks.models import ModelSpec, keras_style_model
from benchmarks.workers import common
from tinynn import ops


def main(spec: dict, model_spec: ModelSpec) -> dict:
    model = keras_style_model(tn, model_spec, seed=spec["seed"])
    return common.train_keras_style(tn, model, spec, model_spec, lambda trained: {
        "version": tn.__version__, "numpy": np.__version__,
        "kernels": {name: ops.implementation(name) for name in ops.KERNELS}})


if __name__ == "__main__":
    common.run(main)
