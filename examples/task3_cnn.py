"""Task 3 of the reports: the convolutional network, layer for layer (tinynn's main job).

    Conv2D(32, 5x5, same, relu) -> MaxPooling2D(2) -> Conv2D(64, 5x5, same, relu)
    -> MaxPooling2D(2) -> Flatten -> Dense(1024, relu) -> Dropout(0.4) -> Dense(10, softmax)

3,274,634 parameters; Adam, sparse categorical cross-entropy, batch 32, validation_split 0.1,
20 epochs (report A: 91.29 %, report B: 91.51 %, Zalando's benchmark: 0.916). Prints the summary,
progress, test accuracy, confusion matrix and classification report; saves the curves, the
heatmap and the trained model under --out (``task3_model.npz``, and ``task3_model.onnx`` for
ONNX Runtime when the ``onnx`` extra is installed: examples/serve_onnx.py serves it).

``--batch-norm`` goes beyond the reports: it trains the reports' network and then the same
network with BatchNormalization after each convolution (Conv2D without activation ->
BatchNormalization -> ReLU), same seed and data, and prints and plots both side by side (test
accuracy, seconds per epoch, curves in ``task3_batch_norm.png``).

``--augment`` puts image augmentation in front of the network, active in training only:
RandomFlip("horizontal") (a garment mirrored left-right is still the same garment; upside down
it is not, so no vertical flips), RandomTranslation(0.1, 0.1) and RandomRotation(0.03, about
11 degrees), both filling with "constant" zeros, Fashion-MNIST's black background ("reflect",
Keras's default, would mirror parts of the garment into the margins). Files are named
``task3_augment_*``.

``--explain`` shows what the trained network does (``tinynn.visualize``): conv1's filters, the
feature maps of both convolutions for the first test image, the most confident mistakes on the
test set, saliency maps and conv2's Grad-CAM for the first four test images, and the accuracy
of each class (``<tag>_filters.png``, ``<tag>_conv1_maps.png``, ``<tag>_conv2_maps.png``,
``<tag>_misclassified.png``, ``<tag>_explanations.png``).
"""

from __future__ import annotations

from common import (
    Stopwatch,
    base_parser,
    data_parallel_if_launched,
    load_fashion_mnist,
    parse_args,
    report_test_results,
)

import tinynn as tn
from tinynn import visualize
from tinynn.datasets.fashion_mnist import CLASS_NAMES
from tinynn.errors import MissingDependencyError
from tinynn.plotting import plot_histories, plot_history


def build_cnn(dropout: float, seed: int, batch_norm: bool = False,
              augment: bool = False) -> tn.Sequential:
    """The reports' CNN; with ``batch_norm``, each convolution is followed by
    BatchNormalization and then its ReLU; with ``augment``, the augmentation layers of the
    module docstring come first."""
    layers = tn.layers
    augmentation = [layers.RandomFlip("horizontal"),
                    layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
                    layers.RandomRotation(0.03, fill_mode="constant")] if augment else []

    def convolution(filters: int) -> list:
        if not batch_norm:
            return [layers.Conv2D(filters, 5, padding="same", activation="relu")]
        return [layers.Conv2D(filters, 5, padding="same"), layers.BatchNormalization(),
                layers.Activation("relu")]

    return tn.Sequential([
        layers.Input((28, 28, 1)),
        *augmentation,
        *convolution(32),
        layers.MaxPooling2D(2),
        *convolution(64),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(1024, activation="relu"),
        layers.Dropout(dropout),
        layers.Dense(10, activation="softmax"),
    ], seed=seed)


def train(args, data, batch_norm: bool) -> dict:
    """Train and test one variant; returns its history, test accuracy and seconds per epoch."""
    (x_train, y_train), (x_test, y_test) = data
    tag = ("task3_augment" if args.augment else "task3") + ("_batch_norm" if batch_norm else "")
    model = build_cnn(args.dropout, args.seed, batch_norm, args.augment)
    model.compile(tn.optimizers.Adam(learning_rate=args.lr), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary()
    with Stopwatch() as clock:
        history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                            validation_split=0.1, verbose=args.verbose)
    epochs = len(history.epoch)
    per_epoch = clock.seconds / max(epochs, 1)
    print(f"trained {epochs} epochs in {clock.seconds:.0f} s "
          f"({per_epoch:.1f} s per epoch with validation), seed {args.seed}")
    title = ("Task 3: CNN" + (" with augmentation" if args.augment else "")
             + (" with BatchNormalization" if batch_norm else ""))
    print(f"saved {plot_history(history, args.out / f'{tag}_curves.png', title=title)}")
    accuracy = report_test_results(model, x_test, y_test, args.out, tag)
    if args.explain:
        explain(model, x_test, y_test, args.out, tag)
    model.save(args.out / f"{tag}_model.npz")
    print(f"saved {args.out / f'{tag}_model.npz'}")
    try:  # the same network for ONNX Runtime, next to the .npz (examples/serve_onnx.py)
        model.export(args.out / f"{tag}_model.onnx", format="onnx")
    except MissingDependencyError:
        print('no ONNX export: pip install -e ".[onnx]" adds the onnx package it needs')
    return {"history": history, "accuracy": accuracy, "per_epoch": per_epoch}


def explain(model, x_test, y_test, out, tag: str) -> None:
    """Write the figures of ``--explain`` and print the accuracy of each class."""
    convolutions = [layer for layer in model.layers if isinstance(layer, tn.layers.Conv2D)]
    paths = [visualize.plot_filters(convolutions[0], out / f"{tag}_filters.png",
                                    title="conv1's 32 filters (5x5)")]
    for number, layer in enumerate(convolutions[:2], start=1):
        paths.append(visualize.plot_feature_maps(
            model, layer, x_test[0], out / f"{tag}_conv{number}_maps.png",
            title=f"conv{number}'s feature maps for the first test image "
                  f"({CLASS_NAMES[y_test[0]]})"))
    paths.append(visualize.plot_misclassified(model, x_test, y_test,
                                              out / f"{tag}_misclassified.png",
                                              class_names=CLASS_NAMES))
    paths.append(visualize.plot_explanations(model, convolutions[1], x_test[:4],
                                             out / f"{tag}_explanations.png",
                                             class_names=CLASS_NAMES))
    predicted = model.predict(x_test, batch_size=1000, verbose=0).argmax(axis=1)
    for name, accuracy in zip(CLASS_NAMES, visualize.per_class_accuracy(
            y_test, predicted, len(CLASS_NAMES))):
        print(f"{name:>12}: {accuracy:.4f}")
    for path in paths:
        print(f"saved {path}")


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], epochs=20, batch_size=32, out="out/task3")
    parser.add_argument("--dropout", type=float, default=0.4)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--batch-norm", action="store_true",
                        help="also train the network with BatchNormalization and compare")
    parser.add_argument("--explain", action="store_true",
                        help="write filters, feature maps and mistakes (module docstring)")
    parser.add_argument("--augment", action="store_true",
                        help="flip, shift and rotate the training images (module docstring)")
    args = parse_args(parser)
    data_parallel_if_launched(args)

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(args.limit)
    data = ((x_train[..., None], y_train), (x_test[..., None], y_test))  # (N, 28, 28, 1) NHWC
    results = {"reports' CNN": train(args, data, batch_norm=False)}
    if not args.batch_norm:
        return
    results["with BatchNormalization"] = train(args, data, batch_norm=True)
    print("| variant | test accuracy | s per epoch |\n|---|---|---|")
    for name, result in results.items():
        print(f"| {name} | {result['accuracy']:.4f} | {result['per_epoch']:.1f} |")
    path = plot_histories({name: result["history"] for name, result in results.items()},
                          args.out / "task3_batch_norm.png", metrics=("loss", "accuracy"),
                          title="Task 3: the reports' CNN and with BatchNormalization")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
