"""Train from a folder of PNG images, as with your own pictures: no array in memory.

    python examples/image_folder.py [--limit 6000] [--epochs 3] [--workers 2]

Writes the first ``--limit`` Fashion-MNIST training images as PNG files, one subdirectory per
class (``out/image_folder/images/T-shirt_top/00017.png``...), so it runs offline; then reads
them back batch by batch with ``tn.utils.image_dataset_from_directory`` (a PyDataset whose
``--workers`` threads decode the next batches while the model trains; ``class_names`` keeps
Fashion-MNIST's label order, not the folders' alphabetical one), 10 % for validation,
and trains a small CNN that starts with ``Rescaling(1 / 255)``. The test images come from the
usual arrays. Prints the progress and the test accuracy, and saves the curves.
"""

from __future__ import annotations

from common import base_parser, load_fashion_mnist, parse_args, report_test_results
from PIL import Image

import tinynn as tn
from tinynn.datasets.fashion_mnist import CLASS_NAMES
from tinynn.plotting import plot_history

FOLDERS = [name.replace("/", "_") for name in CLASS_NAMES]  # "T-shirt/top" is no file name


def write_pngs(images, labels, directory) -> None:
    """One grayscale PNG per image under ``directory/<class name>/``."""
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = directory / FOLDERS[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255).round().astype("uint8")).save(folder / f"{index:05d}.png")


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], epochs=3, batch_size=32,
                         out="out/image_folder")
    parser.add_argument("--workers", type=int, default=2)
    parser.set_defaults(limit=6000)
    args = parse_args(parser)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(args.limit)
    write_pngs(x_train, y_train, args.out / "images")
    train, validation = tn.utils.image_dataset_from_directory(  # labels in Fashion-MNIST's
        args.out / "images", class_names=FOLDERS, color_mode="grayscale", image_size=(28, 28),
        batch_size=args.batch_size, validation_split=0.1, subset="both", seed=args.seed,
        workers=args.workers)
    layers = tn.layers
    model = tn.Sequential([
        layers.Input((28, 28, 1)), layers.Rescaling(1 / 255),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dropout(0.3), layers.Dense(10, activation="softmax"),
    ], seed=args.seed)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, epochs=args.epochs, validation_data=validation,
                        verbose=args.verbose)
    print(f"saved {plot_history(history, args.out / 'image_folder_curves.png')}")
    # the arrays are in [0, 1]; the model rescales 0-255 pixels as its folder gave them
    report_test_results(model, x_test[..., None] * 255, y_test, args.out, "image_folder")


if __name__ == "__main__":
    main()
