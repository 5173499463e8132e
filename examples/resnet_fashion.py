"""A small residual network on Fashion-MNIST: why tinynn builds graphs, not only stacks.

    stem: Conv2D(32, 3x3) -> BatchNormalization -> ReLU -> MaxPooling2D(2)        (14, 14, 32)
    2 blocks at 32 channels, identity shortcuts                                    (14, 14, 32)
    1 block to 64 channels, stride 2, 1x1-projection shortcut, then 1 identity     (7, 7, 64)
    GlobalAveragePooling2D -> Dropout(0.3) -> Dense(10, softmax)

A block is Conv2D(3x3) -> BatchNormalization -> ReLU -> Conv2D(3x3) -> BatchNormalization, added
to its shortcut (``tn.layers.add``), then ReLU (He et al., 2016). AdamW (weight decay 0.004,
Keras's default), sparse categorical cross-entropy, batch 64, validation_split 0.1; the
learning rate drops tenfold for the last quarter of the epochs. Without weight decay and
dropout the network fits the training set (accuracy 0.9999 by epoch 24) at 0.928 on the test
set. Prints the summary, progress, test accuracy, confusion matrix and
classification report; saves the curves, the heatmap, the model (``resnet_model.npz``, also
``.keras`` and ``.onnx`` when h5py and onnx are installed) under --out.
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
from tinynn.errors import MissingDependencyError
from tinynn.plotting import plot_history


def block(x, filters: int, stride: int = 1):
    """One residual block; a 1x1 convolution projects the shortcut when the shape changes."""
    layers = tn.layers
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.BatchNormalization()(
            layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x))
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    y = layers.Activation("relu")(layers.BatchNormalization()(y))
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    return layers.Activation("relu")(layers.add([y, shortcut]))


def build_resnet(seed: int) -> tn.Model:
    layers = tn.layers
    image = tn.Input((28, 28, 1), name="image")
    x = layers.Conv2D(32, 3, padding="same", use_bias=False)(image)
    x = layers.MaxPooling2D(2)(layers.Activation("relu")(layers.BatchNormalization()(x)))
    for filters, stride in ((32, 1), (32, 1), (64, 2), (64, 1)):
        x = block(x, filters, stride)
    x = layers.Dropout(0.3)(layers.GlobalAveragePooling2D()(x))
    return tn.Model(image, layers.Dense(10, activation="softmax")(x), name="resnet", seed=seed)


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], epochs=12, batch_size=64, out="out/resnet")
    parser.add_argument("--lr", type=float, default=0.001)
    args = parse_args(parser)
    data_parallel_if_launched(args)

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(args.limit)
    x_train, x_test = x_train[..., None], x_test[..., None]  # (N, 28, 28, 1) NHWC
    model = build_resnet(args.seed)
    model.compile(tn.optimizers.AdamW(learning_rate=args.lr, weight_decay=0.004),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    drop_at = args.epochs - args.epochs // 4
    schedule = tn.callbacks.LearningRateScheduler(
        lambda epoch: args.lr if epoch < drop_at else args.lr / 10)
    with Stopwatch() as clock:
        history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                            validation_split=0.1, verbose=args.verbose, callbacks=[schedule])
    epochs = len(history.epoch)
    print(f"trained {epochs} epochs in {clock.seconds:.0f} s "
          f"({clock.seconds / max(epochs, 1):.1f} s per epoch with validation), seed {args.seed}")
    path = plot_history(history, args.out / "resnet_curves.png",
                        title="A small ResNet on Fashion-MNIST")
    print(f"saved {path}")
    report_test_results(model, x_test, y_test, args.out, "resnet")
    model.save(args.out / "resnet_model.npz")
    print(f"saved {args.out / 'resnet_model.npz'}")
    for suffix, extra in ((".keras", "keras"), (".onnx", "onnx")):
        try:
            if suffix == ".keras":
                model.save(args.out / f"resnet_model{suffix}")
            else:
                model.export(args.out / f"resnet_model{suffix}", verbose=False)
            print(f"saved {args.out / f'resnet_model{suffix}'}")
        except MissingDependencyError:
            print(f'no {suffix} file: pip install -e ".[{extra}]" adds what it needs')


if __name__ == "__main__":
    main()
