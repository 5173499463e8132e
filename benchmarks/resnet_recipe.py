"""The ResNet of examples/resnet_fashion.py, trained by Keras (or tinynn) with the example's
whole recipe, for the README's accuracy comparison.

    python -m benchmarks.resnet_recipe --framework keras [--epochs 12] [--limit N]

The network is ``benchmarks.models.MODELS["resnet"]`` (a test checks it is the example's);
the recipe is the example's defaults: AdamW (learning rate 0.001, weight decay 0.004),
sparse categorical cross-entropy, batch 64, ``validation_split=0.1``, the learning rate ten
times smaller for the last quarter of the epochs, seed 0, Fashion-MNIST scaled to [0, 1].
Threads as in ``benchmarks/run.py``'s workers (set them in the environment before running:
``run.py`` documents the variables). Prints one JSON line: test accuracy and loss, training
seconds, and the History.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.models import MODELS, keras_style_model  # noqa: E402


def recipe_schedule(learning_rate: float, epochs: int):
    """The example's schedule: ``learning_rate``, divided by 10 for the last quarter."""
    drop_at = epochs - epochs // 4
    return lambda epoch, *_: learning_rate if epoch < drop_at else learning_rate / 10


def train(api, framework: str, epochs: int, limit: int | None) -> dict:
    """Build, compile and fit the ResNet with the recipe in ``api`` (keras or tinynn)."""
    from tinynn.datasets import fashion_mnist

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    scale = np.float32(1 / 255)
    x_train, x_test = x_train[:limit, ..., None] * scale, x_test[:limit, ..., None] * scale
    y_train, y_test = y_train[:limit], y_test[:limit]
    if framework == "keras":
        api.utils.set_random_seed(0)
        model = keras_style_model(api, MODELS["resnet"])
    else:
        model = keras_style_model(api, MODELS["resnet"], seed=0)
    model.compile(api.optimizers.AdamW(learning_rate=0.001, weight_decay=0.004),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    schedule = api.callbacks.LearningRateScheduler(recipe_schedule(0.001, epochs))
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=64, epochs=epochs, validation_split=0.1,
                        verbose=2, callbacks=[schedule])
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    return {"framework": framework, "epochs": epochs, "train_images": len(x_train),
            "test_accuracy": float(accuracy), "test_loss": float(loss),
            "training_seconds": seconds,
            "history": {key: [float(v) for v in values]
                        for key, values in history.history.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("keras", "tinynn"), default="keras")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--limit", type=int, help="the first N training and N test images")
    args = parser.parse_args(argv)
    if args.framework == "keras":
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras as api
    else:
        import tinynn as api
    print(json.dumps(train(api, args.framework, args.epochs, args.limit)), flush=True)


if __name__ == "__main__":
    main()
