"""Task 2 of the reports: multi-layer perceptrons of 3, 6 and 12 layers.

    Flatten -> Dense(128, relu) x k -> Dense(10, softmax),  k = 1, 4, 10

trained as report B trains them with Keras: Adam, sparse categorical cross-entropy, batch 32,
10 epochs, validation_split 0.1. Prints each network's summary, progress, test loss and accuracy,
confusion matrix and classification report; writes the curves of all depths on shared axes,
an optional learning-rate comparison, and a results table (markdown) to --out.
"""

from __future__ import annotations

import statistics
import time

from common import base_parser, learning_rates, load_fashion_mnist, parse_args, report_test_results

import tinynn as tn
from tinynn.plotting import plot_histories

HIDDEN_LAYERS = {3: 1, 6: 4, 12: 10}  # the reports' depth (counting Flatten and output) -> k


def build_mlp(depth: int, seed: int) -> tn.Sequential:
    layers = [tn.layers.Input((28, 28)), tn.layers.Flatten()]
    layers += [tn.layers.Dense(128, activation="relu") for _ in range(HIDDEN_LAYERS[depth])]
    layers += [tn.layers.Dense(10, activation="softmax")]
    return tn.Sequential(layers, seed=seed)


class EpochTimer(tn.callbacks.Callback):
    """Wall-clock seconds of each epoch (training and validation)."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def train(depth, seed, lr, args, data, verbose, show_summary=False):
    """Train one MLP; returns (model, history, epoch seconds)."""
    (x_train, y_train), _ = data
    model = build_mlp(depth, seed)
    model.compile(tn.optimizers.Adam(learning_rate=lr), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    if show_summary:
        model.summary()
    timer = EpochTimer()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                        validation_split=0.1, verbose=verbose, callbacks=[timer])
    return model, history, timer.seconds


def results_table(rows: list[dict]) -> str:
    lines = ["| depth | params | test accuracy (median) | per seed | seconds per epoch (median) |",
             "|---|---|---|---|---|"]
    for row in rows:
        per_seed = ", ".join(f"{a:.4f}" for a in row["accuracies"])
        lines.append(f"| {row['depth']} | {row['params']:,} | "
                     f"{statistics.median(row['accuracies']):.4f} | {per_seed} | "
                     f"{row['epoch_seconds']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], epochs=10, batch_size=32, out="out/task2")
    parser.add_argument("--depth", default="all", choices=("3", "6", "12", "all"))
    parser.add_argument("--seeds", type=int, default=1, help="runs per depth (seeds seed..)")
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--lr-sweep", default="",
                        help="comma-separated Adam learning rates compared on the first depth, "
                             "e.g. 0.0001,0.001,0.01")
    args = parse_args(parser)
    depths = sorted(HIDDEN_LAYERS) if args.depth == "all" else [int(args.depth)]
    data = load_fashion_mnist(args.limit)
    x_test, y_test = data[1]

    rows, curves = [], {}
    for depth in depths:
        accuracies, seconds = [], []
        for run in range(args.seeds):
            seed = args.seed + run
            print(f"== {depth}-layer network, seed {seed}")
            model, history, epoch_seconds = train(depth, seed, args.lr, args, data, args.verbose,
                                                  show_summary=run == 0)
            seconds += epoch_seconds
            if run == 0:
                curves[f"{depth} layers"] = history
                accuracies.append(report_test_results(model, x_test, y_test, args.out,
                                                      f"task2_depth{depth}"))
                model.save(args.out / f"task2_depth{depth}_model.npz")
            else:
                loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
                print(f"test loss {loss:.4f} - test accuracy {accuracy:.4f}")
                accuracies.append(accuracy)
        rows.append({"depth": depth, "params": model.count_params(), "accuracies": accuracies,
                     "epoch_seconds": statistics.median(seconds)})

    path = plot_histories(curves, args.out / "task2_depths.png", ("loss", "accuracy"),
                          title="Task 2: depths (training solid, validation dashed)")
    print(f"saved {path}")
    rates = learning_rates(args.lr_sweep)
    if rates:
        sweep = {f"lr={lr}": train(depths[0], args.seed, lr, args, data, verbose=0)[1]
                 for lr in rates}
        path = plot_histories(sweep, args.out / "task2_lr_sweep.png", ("loss", "accuracy"),
                              title=f"Task 2: Adam learning rates, {depths[0]} layers")
        print(f"saved {path}")
    table = results_table(rows)
    (args.out / "task2_results.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
