"""Fashion-MNIST, loaded like ``keras.datasets.fashion_mnist.load_data``; downloaded if missing.

The data is looked up in the ``path`` argument, or else in ``$TINYNN_DATA``, the cache directory
(:func:`cache_dir`) and ``/usr/share/datasets/fashion-mnist`` (Debian package
``dataset-fashion-mnist``). A directory counts if it holds the four IDX files (``.gz`` or
uncompressed), or else Kaggle's two CSV files (``fashion-mnist_train.csv``, ``_test.csv``).
IDX files whose decompressed size is the official one must also have the official SHA-256.

When no directory is found (and ``path`` was not given), the missing IDX files are downloaded
into :func:`cache_dir` from :data:`MIRRORS`, verified before they get their final names
(:mod:`tinynn.datasets.download`). A broken file in the cache is downloaded again, once.
``python -m tinynn.datasets.fashion_mnist --check`` prints the data directory (exit 0) or the
instructions (exit 1); ``--download`` downloads into the cache first if nothing is found.
"""

import argparse
import hashlib
import os
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tinynn.datasets.csv_form import load_csv
from tinynn.datasets.download import download_file
from tinynn.datasets.idx import RECOVERY_HINT, corrupt, parse_idx_bytes, read_idx_bytes
from tinynn.errors import (
    ChecksumMismatchError,
    DatasetCorruptError,
    DatasetError,
    DatasetNotFoundError,
)

CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
IMAGE_SHAPE = (28, 28)
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
# Keras's mirror first (https); the official one is plain http: the pinned SHA-256 makes it safe.
MIRRORS = [
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
]
TIMEOUT = 30.0  # seconds for connecting and for each read
CSV_FILES = {"train": "fashion-mnist_train.csv", "test": "fashion-mnist_test.csv"}
CSV_ROWS = {"train": 60_000, "test": 10_000}
DOWNLOAD_HINT = (
    "check the network connection and proxy settings (https_proxy, http_proxy) and retry; or"
    " install the Debian package dataset-fashion-mnist, or set TINYNN_DATA to a directory"
    " holding the four IDX files or the two Kaggle CSV files"
)


class FileSpec(NamedTuple):
    """One official file: base name (without ``.gz``), IDX ndim, decompressed size and SHA-256."""

    name: str
    ndim: int
    size: int
    sha256: str


FILES = {
    "train_images": FileSpec(
        "train-images-idx3-ubyte", 3, 47_040_016,
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train_labels": FileSpec(
        "train-labels-idx1-ubyte", 1, 60_008,
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "test_images": FileSpec(
        "t10k-images-idx3-ubyte", 3, 7_840_016,
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "test_labels": FileSpec(
        "t10k-labels-idx1-ubyte", 1, 10_008,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}


def cache_dir() -> Path:
    """Return ``$XDG_CACHE_HOME/tinynn/datasets/fashion-mnist`` (default ``~/.cache/...``)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "tinynn" / "datasets" / "fashion-mnist"


def data_dirs() -> list[Path]:
    """Return the directories searched when no ``path`` is given, in order."""
    env = os.environ.get("TINYNN_DATA", "")
    return ([Path(env).expanduser()] if env else []) + [cache_dir(), SYSTEM_DIR]


def _locate_files(directory: Path) -> tuple[dict[str, Path], list[str]]:
    """Split the four IDX files into those in ``directory`` (key -> path) and missing keys."""
    found, missing = {}, []
    for key, spec in FILES.items():
        candidates = [directory / f"{spec.name}.gz", directory / spec.name]
        present = [p for p in candidates if p.is_file()]
        if present:
            found[key] = present[0]
        else:
            missing.append(key)
    return found, missing


def _has_csv(directory: Path) -> bool:
    return all((directory / name).is_file() for name in CSV_FILES.values())


def _is_complete(directory: Path) -> bool:
    """True if ``directory`` holds the four IDX files or the two CSV files."""
    return not _locate_files(directory)[1] or _has_csv(directory)


def _status(directory: Path) -> str:
    """Describe why ``directory`` does not hold the data set."""
    if not directory.is_dir():
        return "does not exist" if not directory.exists() else "is not a directory"
    missing = ", ".join(f"{FILES[key].name}.gz" for key in _locate_files(directory)[1])
    missing_csv = ", ".join(n for n in CSV_FILES.values() if not (directory / n).is_file())
    return f"missing {missing} (or, for the CSV form, {missing_csv})"


def _not_found_message() -> str:
    env = os.environ.get("TINYNN_DATA")
    labels = (["$TINYNN_DATA"] if env else []) + ["cache", "Debian package"]
    places = [f"  {d} ({label}): {_status(d)}" for d, label in zip(data_dirs(), labels)]
    if not env:
        places.insert(0, "  $TINYNN_DATA: not set")
    names = ", ".join(f"{spec.name}.gz" for spec in FILES.values())
    return "\n".join([
        "Fashion-MNIST not found; searched, in order:",
        *places,
        f"A directory counts if it holds all four files (.gz or uncompressed): {names};"
        f" or Kaggle's {' and '.join(CSV_FILES.values())}.",
        "To fix, do one of:",
        "  - run `make data` (Debian package as root, else a verified download)",
        "  - download a verified copy: python -m tinynn.datasets.fashion_mnist --download"
        f" (or load_data() without download=False) puts it in {cache_dir()}",
        f"  - on Debian/Ubuntu: apt-get install dataset-fashion-mnist (installs {SYSTEM_DIR})",
        "  - set TINYNN_DATA to a directory holding the four files or the two CSV files",
    ])


def find_data_dir(path: str | os.PathLike | None = None) -> Path:
    """Return the first complete directory (IDX or CSV form): ``path``, else :func:`data_dirs`.

    Raises
    ------
    DatasetNotFoundError
        ``path`` lacks files (named; no fallback), or no searched directory is complete
        (the message lists every place searched and what to do).
    """
    if path is not None:
        directory = Path(path).expanduser()
        if not _is_complete(directory):
            raise DatasetNotFoundError(
                f"Fashion-MNIST: path={os.fspath(path)!r} {_status(directory)} (searched only there"
                " because path was given); put the four files there (.gz or not) or the two CSV"
                " files, or omit path to search $TINYNN_DATA, the cache and the Debian package"
                " directory (and download if nothing is found)"
            )
        return directory
    for directory in data_dirs():
        if _is_complete(directory):
            return directory
    raise DatasetNotFoundError(_not_found_message())


def verify_bytes(raw: bytes, key: str, name: str) -> bool:
    """Check decompressed bytes against the official file ``FILES[key]``.

    Returns True if ``raw`` is the official file, False if its size differs (a user's own file).

    Raises
    ------
    ChecksumMismatchError
        The size is the official one but the SHA-256 differs: a corrupted genuine file.
    """
    spec = FILES[key]
    if len(raw) != spec.size:
        return False
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.sha256:
        raise ChecksumMismatchError(
            f"{name}: has the official decompressed size of {spec.name} ({spec.size} bytes) but"
            f" not its SHA-256: expected {spec.sha256}, got {digest}; the copy is corrupted: to"
            f" recover, {RECOVERY_HINT}"
        )
    return True


def download_data(directory: str | os.PathLike | None = None) -> Path:
    """Download the official IDX files missing from ``directory`` (default: :func:`cache_dir`).

    Each file is fetched from :data:`MIRRORS` in turn and verified (decompressed size and
    SHA-256) before it gets its final name; progress goes to stderr. Returns the directory.

    Raises
    ------
    DownloadError, ChecksumMismatchError
        No mirror delivered a verified copy of some file (see
        :func:`tinynn.datasets.download.download_file`); files already verified stay.
    """
    directory = cache_dir() if directory is None else Path(directory)
    missing = _locate_files(directory)[1]
    if missing:
        directory.mkdir(parents=True, exist_ok=True)
        print(f"Fashion-MNIST: downloading {len(missing)} file(s) into {directory}",
              file=sys.stderr)
    for key in missing:
        _download(key, directory)
    return directory


def _download(key: str, directory: Path) -> Path:
    """Download ``FILES[key]`` as ``directory/<name>.gz``, verified."""
    spec = FILES[key]
    name = f"{spec.name}.gz"
    return download_file(
        [mirror + name for mirror in MIRRORS], directory / name, spec.size, spec.sha256,
        timeout=TIMEOUT, hint=DOWNLOAD_HINT,
    )


def _find_or_download(path: str | os.PathLike | None, download: bool) -> Path:
    """:func:`find_data_dir`; when it finds nothing (and ``path`` is None), download."""
    try:
        return find_data_dir(path)
    except DatasetNotFoundError:
        if path is not None or not download:
            raise
    return download_data()


def _read_checked(path: Path, key: str, verify: bool) -> np.ndarray:
    raw = read_idx_bytes(path)
    if verify:
        verify_bytes(raw, key, str(path))
    return parse_idx_bytes(raw, str(path), FILES[key].ndim)


def _read(path: Path, key: str, verify: bool, repair: bool) -> np.ndarray:
    """Read one IDX file; with ``repair``, a corrupt one is downloaded again, once."""
    try:
        return _read_checked(path, key, verify)
    except (ChecksumMismatchError, DatasetCorruptError) as exc:
        if not repair:
            raise
        print(f"Fashion-MNIST: {path} is broken ({type(exc).__name__}); downloading it again",
              file=sys.stderr)
    return _read_checked(_download(key, path.parent), key, verify)


def _check_split(
    images: np.ndarray, labels: np.ndarray, image_path: Path, label_path: Path
) -> None:
    """Check 28x28 images, equal counts and labels in 0..9; errors name the offending file."""
    if images.shape[1:] != IMAGE_SHAPE:
        raise corrupt(str(image_path), f"expected 28x28 images, got {images.shape[1:]}")
    if len(images) != len(labels):
        raise corrupt(
            str(label_path), f"expected as many labels as images in {image_path.name}"
            f" ({len(images)}), got {len(labels)}"
        )
    bad = np.flatnonzero(labels >= len(CLASS_NAMES))
    if bad.size:
        raise corrupt(
            str(label_path), f"expected labels 0..{len(CLASS_NAMES) - 1}, got {labels[bad[0]]}"
            f" at index {bad[0]} ({bad.size} bad labels)"
        )


def load_data(
    path: str | os.PathLike | None = None, verify: bool = True, download: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load Fashion-MNIST as ``keras.datasets.fashion_mnist.load_data`` does.

    Parameters
    ----------
    path : str or PathLike, optional
        Directory holding the four IDX files, or else Kaggle's two CSV files (which must have
        the full :data:`CSV_ROWS`). Default: search :func:`data_dirs`.
    verify : bool
        Check the SHA-256 of IDX files whose decompressed size is the official one.
    download : bool
        When ``path`` is None and no copy is found, download a verified one into
        :func:`cache_dir`, and download a broken file in the cache again (once). With False,
        the network is never used.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        Writeable uint8 arrays of shapes (60000, 28, 28), (60000,), (10000, 28, 28), (10000,)
        for the official files.

    Raises
    ------
    DatasetNotFoundError, DatasetCorruptError, ChecksumMismatchError, DownloadError
    """
    directory = _find_or_download(path, download)
    files, missing = _locate_files(directory)
    if missing:  # a complete directory without the IDX files holds the CSV pair
        train, test = (load_csv(directory / CSV_FILES[s], CSV_ROWS[s]) for s in ("train", "test"))
        return train, test
    repair = download and path is None and directory == cache_dir()
    arrays = {key: _read(p, key, verify, repair) for key, p in files.items()}
    for split in ("train", "test"):
        images_key, labels_key = f"{split}_images", f"{split}_labels"
        _check_split(arrays[images_key], arrays[labels_key], files[images_key], files[labels_key])
    return (
        (arrays["train_images"], arrays["train_labels"]),
        (arrays["test_images"], arrays["test_labels"]),
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: print the data directory (exit 0) or what went wrong (exit 1).

    ``--check`` only looks; ``--download`` downloads a verified copy into the cache first when
    no copy is found (as ``make data`` does off Debian).
    """
    parser = argparse.ArgumentParser(
        prog="python -m tinynn.datasets.fashion_mnist",
        description="Locate Fashion-MNIST, or download it into the cache.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--check", action="store_true",
        help="print the data directory and exit 0, or print what to do and exit 1",
    )
    action.add_argument(
        "--download", action="store_true",
        help="like --check, but download a verified copy into the cache if none is found",
    )
    args = parser.parse_args(argv)
    try:
        print(_find_or_download(None, args.download))
    except DatasetError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
