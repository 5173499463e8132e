"""Task 3 of the reports: the convolutional network, layer for layer (tinynn's main job).

    Conv2D(32, 5x5, same, relu) -> MaxPooling2D(2) -> Conv2D(64, 5x5, same, relu)
    -> MaxPooling2D(2) -> Flatten -> Dense(1024, relu) -> Dropout(0.4) -> Dense(10, softmax)

3,274,634 parameters; Adam, sparse categorical cross-entropy, batch 32, validation_split 0.1,
20 epochs (report A: 91.29 %, report B: 91.51 %, Zalando's benchmark: 0.916). Prints the summary,
progress, test accuracy, confusion matrix and classification report; saves the curves, the
heatmap and the trained model under --out.
"""

from __future__ import annotations

from common import Stopwatch, base_parser, load_fashion_mnist, parse_args, report_test_results

import tinynn as tn
from tinynn.plotting import plot_history


def build_cnn(dropout: float, seed: int) -> tn.Sequential:
    layers = tn.layers
    return tn.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(32, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(1024, activation="relu"),
        layers.Dropout(dropout),
        layers.Dense(10, activation="softmax"),
    ], seed=seed)


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], epochs=20, batch_size=32, out="out/task3")
    parser.add_argument("--dropout", type=float, default=0.4)
    parser.add_argument("--lr", type=float, default=0.001)
    args = parse_args(parser)

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(args.limit)
    x_train, x_test = x_train[..., None], x_test[..., None]  # (N, 28, 28) -> (N, 28, 28, 1)
    model = build_cnn(args.dropout, args.seed)
    model.compile(tn.optimizers.Adam(learning_rate=args.lr), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary()
    with Stopwatch() as clock:
        history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                            validation_split=0.1, verbose=args.verbose)
    epochs = len(history.epoch)
    print(f"trained {epochs} epochs in {clock.seconds:.0f} s "
          f"({clock.seconds / max(epochs, 1):.1f} s per epoch with validation), seed {args.seed}")
    print(f"saved {plot_history(history, args.out / 'task3_curves.png', title='Task 3: CNN')}")
    report_test_results(model, x_test, y_test, args.out, "task3")
    model.save(args.out / "task3_model.npz")
    print(f"saved {args.out / 'task3_model.npz'}")


if __name__ == "__main__":
    main()
