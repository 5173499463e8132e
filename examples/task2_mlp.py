"""Task 2 of the reports: multi-layer perceptrons of 3, 6 and 12 layers.

    Flatten -> Dense(128, relu) x k -> Dense(10, softmax),  k = 1, 4, 10

trained as report B trains them with Keras: Adam, sparse categorical cross-entropy, batch 32,
10 epochs, validation_split 0.1. Prints each network's summary, progress, test loss and accuracy,
confusion matrix and classification report; writes the curves of all depths on shared axes and
a results table (markdown) to --out.

--lr-sweep 0.0001,0.001,0.01 also sweeps Adam's learning rate on every --depth (with --depth
all: each of 3, 6, 12 layers with each rate), through tinynn.tuning.run_sweep: one after another
here by default, on a Dask LocalCluster of N worker processes with --scheduler local:N, or on an
existing Dask cluster with --scheduler tcp://host:8786 (pip install "tinynn[distributed]"). It
prints one table (final loss, validation and test accuracy, seconds), names the best
configuration by final validation accuracy, and overlays the validation curves of every
configuration in task2_lr_sweep.png, the training curves in task2_lr_sweep_training.png; every
scheduler gives the same numbers.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time

from common import (
    base_parser,
    data_parallel_if_launched,
    learning_rates,
    load_fashion_mnist,
    parse_args,
    report_test_results,
)

import tinynn as tn
from tinynn.errors import ArgumentError, MissingDependencyError
from tinynn.plotting import plot_histories
from tinynn.tuning import parse_scheduler, run_sweep

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


def sweep_run(config: dict, args: argparse.Namespace) -> dict:
    """One configuration of the sweep ({"depth", "learning_rate"}), here or on a Dask worker:
    loads the data, trains and tests; returns plain numbers (History dict, test loss and
    accuracy, training seconds)."""
    data = load_fashion_mnist(args.limit)
    x_test, y_test = data[1]
    model, history, epoch_seconds = train(config["depth"], args.seed, config["learning_rate"],
                                          args, data, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    return {"history": history.history, "test_loss": loss, "test_accuracy": accuracy,
            "seconds": sum(epoch_seconds)}


def sweep_table(configs: list[dict], results: list[dict]) -> str:
    lines = ["| depth | learning rate | final loss | validation accuracy | test accuracy | "
             "seconds |", "|---|---|---|---|---|---|"]
    for config, result in zip(configs, results):
        history = result["history"]
        lines.append(f"| {config['depth']} | {config['learning_rate']:g} | "
                     f"{history['loss'][-1]:.4f} | {history['val_accuracy'][-1]:.4f} | "
                     f"{result['test_accuracy']:.4f} | {result['seconds']:.2f} |")
    return "\n".join(lines)


def send_common_by_value() -> None:
    """Dask's scheduler and workers import tinynn but not this directory's common.py: send its
    functions with the tasks (by value), as Dask does with this script's own functions."""
    import cloudpickle  # comes with Dask

    cloudpickle.register_pickle_by_value(sys.modules["common"])


def lr_sweep(depths: list[int], rates: list[float], args: argparse.Namespace) -> None:
    """Every depth with every learning rate on --scheduler: table, overlay plots, best."""
    configs = [{"depth": depth, "learning_rate": lr} for depth in depths for lr in rates]
    if args.scheduler != "none":
        send_common_by_value()
    results = run_sweep(functools.partial(sweep_run, args=args), configs,
                        scheduler=args.scheduler)
    names = [f"{c['depth']} layers, lr={c['learning_rate']:g}" for c in configs]
    histories = {name: result["history"] for name, result in zip(names, results)}
    training = {name: {key: history[key] for key in ("loss", "accuracy")}
                for name, history in histories.items()}
    for runs, metrics, file, part in (
            (histories, ("val_loss", "val_accuracy"), "task2_lr_sweep.png", "validation"),
            (training, ("loss", "accuracy"), "task2_lr_sweep_training.png", "training")):
        path = plot_histories(runs, args.out / file, metrics,
                              title=f"Task 2: Adam learning rates, {part} curves")
        print(f"saved {path}")
    table = sweep_table(configs, results)
    (args.out / "task2_lr_sweep.md").write_text(table + "\n")
    print(table)
    best = max(range(len(configs)), key=lambda i: results[i]["history"]["val_accuracy"][-1])
    print(f"best by final validation accuracy: {names[best]} (validation accuracy "
          f"{results[best]['history']['val_accuracy'][-1]:.4f}, test accuracy "
          f"{results[best]['test_accuracy']:.4f})")


def scheduler_flag(text: str) -> str:
    """--scheduler's value, checked before anything trains."""
    try:
        parse_scheduler(text)
    except (ArgumentError, MissingDependencyError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], epochs=10, batch_size=32, out="out/task2")
    parser.add_argument("--depth", default="all", choices=("3", "6", "12", "all"))
    parser.add_argument("--seeds", type=int, default=1, help="runs per depth (seeds seed..)")
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--lr-sweep", default="",
                        help="comma-separated Adam learning rates tried on every --depth, "
                             "e.g. 0.0001,0.001,0.01")
    parser.add_argument("--scheduler", default="none", type=scheduler_flag,
                        help="where the --lr-sweep runs: none (here, one after another), "
                             "local:N (a Dask LocalCluster of N worker processes) or "
                             "tcp://host:port (an existing Dask cluster)")
    args = parse_args(parser)
    data_parallel_if_launched(args)
    rates = learning_rates(args.lr_sweep)
    if args.scheduler != "none" and not rates:
        parser.error("--scheduler runs the --lr-sweep configurations: give --lr-sweep too")
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
    table = results_table(rows)
    (args.out / "task2_results.md").write_text(table + "\n")
    print(table)
    if rates:
        lr_sweep(depths, rates, args)


if __name__ == "__main__":
    main()
