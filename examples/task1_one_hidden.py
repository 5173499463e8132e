"""Task 1 of the reports: one hidden layer of 100 sigmoid units and a softmax output.

    Flatten -> Dense(100, sigmoid) -> Dense(10, softmax), trained with SGD.

Defaults (mini-batch SGD) reach about 0.85 test accuracy in seconds. The reports' settings:
    --full-batch --epochs 2000 --lr 0.5                  report B: full-batch gradient descent
    --output-activation sigmoid --loss mse               report A: sigmoid outputs, L2 loss
Writes the loss curves, a learning-rate overlay and the confusion-matrix heatmap to --out.
"""

from __future__ import annotations

import numpy as np
from common import (
    Stopwatch,
    base_parser,
    data_parallel_if_launched,
    learning_rates,
    load_fashion_mnist,
    parse_args,
    report_test_results,
)

import tinynn as tn
from tinynn.errors import NonFiniteLossError
from tinynn.plotting import plot_histories, plot_history


def build_model(output_activation: str, seed: int) -> tn.Sequential:
    return tn.Sequential([
        tn.layers.Input((28, 28)),
        tn.layers.Flatten(),
        tn.layers.Dense(100, activation="sigmoid"),
        tn.layers.Dense(10, activation=output_activation),
    ], seed=seed)


def targets_for(args, labels):
    """Labels for cross-entropy; one-hot rows for the MSE loss (report A's L2 derivation)."""
    return np.eye(10, dtype=np.float32)[labels] if args.loss == "mse" else labels


def train(args, lr: float, x_train, y_train, verbose, show_summary: bool = False):
    """Train one model with learning rate ``lr``; returns (model, history, diverged)."""
    model = build_model(args.output_activation, args.seed)
    loss = "mse" if args.loss == "mse" else "sparse_categorical_crossentropy"
    model.compile(optimizer=tn.optimizers.SGD(learning_rate=lr), loss=loss,
                  metrics=["accuracy"])
    if show_summary:
        model.summary()
    batch_size = len(x_train) if args.full_batch else args.batch_size
    try:
        history = model.fit(x_train, targets_for(args, y_train), batch_size=batch_size,
                            epochs=args.epochs, validation_split=args.validation_split,
                            verbose=verbose)
    except NonFiniteLossError as error:
        print(f"lr={lr}: {error}")
        return model, error.history, True
    return model, history, False


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], epochs=20, batch_size=32, out="out/task1")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--full-batch", action="store_true",
                        help="one step per epoch over the whole training set (report B)")
    parser.add_argument("--output-activation", default="softmax", choices=("softmax", "sigmoid"))
    parser.add_argument("--loss", default="crossentropy", choices=("crossentropy", "mse"))
    parser.add_argument("--validation-split", type=float, default=0.1)
    parser.add_argument("--lr-sweep", default="0.01,0.1,1",
                        help="comma-separated learning rates overlaid in lr_sweep.png "
                             "('' to skip; the reports' high/good alpha: 0.05,0.5,5)")
    args = parse_args(parser)
    data_parallel_if_launched(args)

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(args.limit)
    with Stopwatch() as clock:
        model, history, diverged = train(args, args.lr, x_train, y_train, args.verbose,
                                         show_summary=True)
    print(f"trained {len(history.epoch)} epochs in {clock.seconds:.1f} s")
    if diverged:
        raise SystemExit(1)
    print(f"saved {plot_history(history, args.out / 'task1_curves.png', title='Task 1')}")
    report_test_results(model, x_test, y_test, args.out, "task1",
                        targets=targets_for(args, y_test))
    model.save(args.out / "task1_model.npz")
    print(f"saved {args.out / 'task1_model.npz'}")

    rates = learning_rates(args.lr_sweep)
    if rates:
        sweep = {}
        for lr in rates:
            print(f"-- learning-rate sweep: lr={lr}")
            _, run_history, run_diverged = train(args, lr, x_train, y_train, verbose=0)
            label = f"lr={lr}" + (" (diverged)" if run_diverged else "")
            sweep[label] = run_history
            last = run_history.history.get("loss", [float("nan")])[-1:] or [float("nan")]
            print(f"lr={lr}: final training loss {last[0]:.4f}")
        path = plot_histories(sweep, args.out / "task1_lr_sweep.png",
                              title="Task 1: learning rates")
        print(f"saved {path}")


if __name__ == "__main__":
    main()
