"""``image_dataset_from_directory``: Keras's folder-of-images loader, as a ``PyDataset``.

A directory with one subdirectory per class (``main/cat/1.png``, ``main/dog/7.jpg``...)
becomes batches ``(images, labels)``: images float32 (batch, height, width, channels) with
values 0-255 as Keras gives them, resized to ``image_size`` (bilinear, by Pillow, which
matplotlib already depends on: results may differ from TensorFlow's resize in the last bits),
labels as ``label_mode`` says. Files are read when their batch is asked for, so a folder
larger than memory trains (``workers`` threads read ahead).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import config
from ..errors import ArgumentError, MissingDependencyError
from ..validation import choice, positive_int
from .arrays import to_categorical
from .py_dataset import PyDataset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
COLOR_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}
LABEL_MODES = ("int", "categorical", "binary", None)


class ImageFolder(PyDataset):
    """Batches of ``paths`` read as images (module docstring); ``class_names`` as Keras's
    dataset has them. ``labels``: int class indices, or None."""

    def __init__(self, paths: list[Path], labels, class_names: list[str], label_mode,
                 color_mode: str, batch_size: int, image_size: tuple[int, int], **kwargs):
        super().__init__(**kwargs)
        self.paths, self.labels, self.class_names = paths, labels, class_names
        self.label_mode, self.color_mode = label_mode, color_mode
        self.batch_size, self.image_size = batch_size, image_size

    def __len__(self) -> int:
        return math.ceil(len(self.paths) / self.batch_size)

    def __getitem__(self, index: int):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        images = np.stack([self._read(path) for path in self.paths[rows]])
        if self.labels is None:
            return images
        labels = self.labels[rows]
        if self.label_mode == "categorical":
            return images, to_categorical(labels, len(self.class_names)).astype(np.float32)
        if self.label_mode == "binary":
            return images, labels.astype(np.float32)[:, None]
        return images, labels

    def _read(self, path: Path) -> np.ndarray:
        image = _pillow().open(path).convert(COLOR_MODES[self.color_mode])
        height, width = self.image_size
        if image.size != (width, height):
            image = image.resize((width, height), _pillow().Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.float32)
        return array[..., None] if array.ndim == 2 else array


def _pillow():
    try:
        from PIL import Image
    except ImportError as error:
        raise MissingDependencyError("image_dataset_from_directory reads images with Pillow, "
                                     "which is not installed: pip install pillow") from error
    return Image


def image_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                 class_names=None, color_mode: str = "rgb",
                                 batch_size: int = 32, image_size=(256, 256),
                                 shuffle: bool = True, seed: int | None = None,
                                 validation_split: float | None = None,
                                 subset: str | None = None, verbose: bool = True, **kwargs):
    """Keras's arguments and defaults (``labels`` "inferred" or None; ``label_mode`` "int",
    "categorical", "binary" or None; ``color_mode`` "grayscale", "rgb" or "rgba";
    ``validation_split`` with ``subset`` "training", "validation" or "both", the last files
    after the shuffle going to validation). ``kwargs`` (``workers``, ``max_queue_size``) go to
    the PyDataset. Returns an ``ImageFolder`` (a pair of them for ``subset="both"``)."""
    root = Path(directory)
    if not root.is_dir():
        raise ArgumentError(f"image_dataset_from_directory expected a directory, got "
                            f"{str(directory)!r}")
    choice(labels, "labels", ("inferred", None))
    label_mode = choice(label_mode, "label_mode", LABEL_MODES) if labels else None
    choice(color_mode, "color_mode", tuple(COLOR_MODES))
    batch_size = positive_int(batch_size, "batch_size")
    image_size = tuple(positive_int(v, "image_size") for v in image_size)
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    if class_names is not None:
        if sorted(class_names) != folders:
            raise ArgumentError(f"class_names expected the subdirectories {folders}, got "
                                f"{list(class_names)}")
        folders = list(class_names)
    paths, indices = [], []
    for index, name in enumerate(folders):
        found = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in
                       IMAGE_EXTENSIONS and p.is_file())
        paths += found
        indices += [index] * len(found)
    if label_mode == "binary" and len(folders) != 2:
        raise ArgumentError(f"label_mode='binary' expected 2 classes, got {len(folders)}: "
                            f"{folders}")
    if verbose:
        print(f"Found {len(paths)} files belonging to {len(folders)} classes.")
    if validation_split and shuffle and seed is None:
        raise ArgumentError("If using `validation_split` and shuffling the data, you must "
                            "provide a `seed` argument, to make sure that there is no overlap "
                            "between the training and validation subset.")
    order = np.arange(len(paths))
    if shuffle:  # tinynn's seed source without a seed: NumPy's global generator is left alone
        order = np.random.default_rng(seed if seed is not None else config.draw_seed()
                                      ).permutation(len(paths))
    paths, indices = [paths[i] for i in order], np.asarray(indices, dtype=np.int64)[order]
    settings = dict(class_names=folders, label_mode=label_mode, color_mode=color_mode,
                    batch_size=batch_size, image_size=image_size, **kwargs)

    def subset_of(rows: slice, what: str) -> ImageFolder:
        if verbose and what:
            print(f"Using {len(paths[rows])} files for {what}.")
        return ImageFolder(paths[rows], indices[rows] if labels else None, **settings)
    if not validation_split:
        if subset is not None:
            raise ArgumentError("subset needs a validation_split")
        return subset_of(slice(None), "")
    choice(subset, "subset", ("training", "validation", "both"))
    split = len(paths) - int(validation_split * len(paths))
    training, validation = slice(0, split), slice(split, None)
    if subset == "both":
        return subset_of(training, "training"), subset_of(validation, "validation")
    return subset_of(training if subset == "training" else validation, subset)
