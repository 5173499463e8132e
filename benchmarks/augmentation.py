"""What image augmentation adds to a CNN training step, in tinynn and in Keras.

    python -m benchmarks.augmentation [--batch 32] [--repeat 100] [--threads 2]
        [--frameworks tinynn,keras]

Each framework runs in its own process (the environment of ``benchmarks/run.py``'s workers)
and times, on the same batch of Fashion-MNIST-shaped images (28x28x1, values in [0, 1)), the
training-mode call of the stack RandomTranslation(0.1, 0.1) -> RandomFlip("horizontal") ->
RandomRotation(0.05): tinynn's forward and backward (the gradient flows through the warps when a
layer before them has parameters; at a model's input it is skipped), Keras's call (TensorFlow
backend, eager, as ``fit`` runs the layers on CPU). It also times one training step of the
reports' CNN without augmentation in the same process, so the overhead is a ratio measured side
by side. Medians of ``--repeat`` calls after warm-up. Prints a markdown table and one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import run  # noqa: E402
from benchmarks.models import MODELS, keras_style_model  # noqa: E402

FRAMEWORKS = ("tinynn", "keras")


def median_ms(function, repeat: int) -> float:
    return run.median_seconds(function, repeat) * 1e3


def stack(api) -> list:
    layers = api.layers
    return [layers.RandomTranslation(0.1, 0.1), layers.RandomFlip("horizontal"),
            layers.RandomRotation(0.05)]


def time_tinynn(batch: int, repeat: int) -> dict:
    import tinynn as tn
    rng = np.random.default_rng(0)
    images = rng.random((batch, 28, 28, 1), dtype=np.float32)
    augment = tn.Sequential([tn.layers.Input((28, 28, 1)), *stack(tn)], seed=0)
    augment.build()

    def forward():
        augment.forward(images, training=True)
        augment.release_caches()

    def forward_backward():
        out = augment.forward(images, training=True)
        augment.backward(out, input_gradient=True)
    return {"augmentation forward": median_ms(forward, repeat),
            "augmentation forward + backward": median_ms(forward_backward, repeat),
            "CNN step": cnn_step_ms(tn, batch, repeat)}


def time_keras(batch: int, repeat: int) -> dict:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    rng = np.random.default_rng(0)
    images = rng.random((batch, 28, 28, 1), dtype=np.float32)
    augment = keras.Sequential([keras.Input((28, 28, 1)), *stack(keras)])
    return {"augmentation forward": median_ms(lambda: augment(images, training=True), repeat),
            "CNN step": cnn_step_ms(keras, batch, repeat)}


def cnn_step_ms(api, batch: int, repeat: int) -> float:
    """One training step of the reports' CNN (``train_on_batch``), median ms."""
    model = keras_style_model(api, MODELS["cnn"], **({"seed": 0} if api.__name__ == "tinynn"
                                                     else {}))
    model.compile(api.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    x = rng.random((batch, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    if hasattr(model, "train_on_batch"):  # Keras
        return median_ms(lambda: model.train_on_batch(x, y), repeat)
    x, y = model.prepare(x, y)  # tinynn: what fit does for one batch

    def step():
        model.compute_loss_and_gradients(x, y)
        model.optimizer.apply(model.parameters, model.gradients)
    return median_ms(step, repeat)


def table(results: dict) -> list[str]:
    """Markdown rows: the stack's training forward (all a model runs when the augmentation is
    its input), tinynn's forward + backward, and the step's time."""
    lines = ["| framework | augmentation forward, ms | forward / CNN step | forward + backward, "
             "ms | CNN step, ms |", "|---|---|---|---|---|"]
    for framework, found in results.items():
        if "status" in found:
            lines.append(f"| {framework} | {found['status']}: {found['reason']} | | | |")
            continue
        both = found.get("augmentation forward + backward")
        lines.append(f"| {framework} | {found['augmentation forward']:.2f} | "
                     f"{found['augmentation forward'] / found['CNN step']:.1%} | "
                     f"{'-' if both is None else f'{both:.2f}'} | {found['CNN step']:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = run.side_by_side_args(__doc__.splitlines()[0], FRAMEWORKS, 100, argv)
    if args.worker:
        timer = time_tinynn if args.worker == "tinynn" else time_keras
        print(json.dumps(timer(args.batch, args.repeat)), flush=True)
        return
    results = {f: run.side_by_side_worker("benchmarks.augmentation", f, args)
               for f in args.frameworks}
    print("\n".join(table(results)))
    print(json.dumps({"batch": args.batch, "threads": args.threads, "results": results}))


if __name__ == "__main__":
    main()
