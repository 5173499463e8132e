"""Tests of tinynn.datasets: strict IDX parsing, Fashion-MNIST lookup, checks and hashes."""

import gzip
import hashlib
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinynn.datasets import fashion_mnist as fm
from tinynn.datasets.idx import parse_idx_bytes, read_idx, read_idx_bytes
from tinynn.errors import (
    ChecksumMismatchError,
    DatasetCorruptError,
    DatasetNotFoundError,
)

REPO = Path(__file__).resolve().parents[1]


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX: header ``00 00 08 ndim``, big-endian dims, data."""
    header = struct.pack(f">4B{array.ndim}I", 0, 0, 8, array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def gz(raw: bytes) -> bytes:
    return gzip.compress(raw, mtime=0)


def edit(data: bytes, index: int, change=lambda byte: byte ^ 0xFF) -> bytes:
    """Return ``data`` with byte ``index`` replaced by ``change(byte)`` (default: flip all bits)."""
    out = bytearray(data)
    out[index] = change(out[index])
    return bytes(out)


def file_path(directory: Path, key: str, compressed: bool = True) -> Path:
    return directory / (fm.FILES[key].name + (".gz" if compressed else ""))


def random_split(n_train: int = 6, n_test: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Small random data set: images (n, 28, 28) uint8, labels (n,) uint8 in 0..9."""
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_dataset(directory: Path, compressed: bool = True, **kwargs) -> dict[str, np.ndarray]:
    """Write the four IDX files of ``random_split(**kwargs)`` into ``directory``; return them."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = random_split(**kwargs)
    for key, array in arrays.items():
        raw = idx_bytes(array)
        file_path(directory, key, compressed).write_bytes(gz(raw) if compressed else raw)
    return arrays


def assert_loaded(result, arrays: dict[str, np.ndarray]) -> None:
    (x_train, y_train), (x_test, y_test) = result
    loaded = dict(zip(fm.FILES, (x_train, y_train, x_test, y_test)))
    for key, array in arrays.items():
        assert loaded[key].dtype == np.uint8 and loaded[key].flags.writeable
        assert loaded[key].shape == array.shape
        np.testing.assert_array_equal(loaded[key], array)


# --- lookup --------------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [True, False], ids=["gz", "plain"])
def test_load_via_path(tmp_path: Path, compressed: bool):
    arrays = write_dataset(tmp_path / "data", compressed=compressed)
    assert_loaded(fm.load_data(tmp_path / "data"), arrays)
    assert_loaded(fm.load_data(str(tmp_path / "data")), arrays)


def test_load_via_env(places, monkeypatch):
    arrays = write_dataset(places["env"])
    monkeypatch.setenv("TINYNN_DATA", str(places["env"]))
    assert_loaded(fm.load_data(), arrays)


def test_load_via_xdg_cache(places):
    arrays = write_dataset(places["cache"])
    assert fm.cache_dir() == places["cache"]
    assert_loaded(fm.load_data(), arrays)


@pytest.mark.parametrize("xdg", [None, "", "relative/cache"])
def test_cache_dir_defaults_to_home(monkeypatch, tmp_path, xdg):
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    assert fm.cache_dir() == tmp_path / ".cache" / "tinynn" / "datasets" / "fashion-mnist"


def test_search_order(places, monkeypatch):
    sizes = {"env": 3, "cache": 4, "system": 5}
    for place, n in sizes.items():
        write_dataset(places[place], n_train=n)
    monkeypatch.setenv("TINYNN_DATA", str(places["env"]))
    assert fm.data_dirs() == [places["env"], places["cache"], places["system"]]
    for place, n in sizes.items():
        assert fm.find_data_dir() == places[place]
        assert len(fm.load_data()[0][0]) == n
        file_path(places[place], "test_labels").unlink()  # now incomplete: skipped


def test_incomplete_directory_is_skipped(places, monkeypatch):
    write_dataset(places["env"])
    file_path(places["env"], "train_labels").unlink()
    arrays = write_dataset(places["system"], seed=1)
    monkeypatch.setenv("TINYNN_DATA", str(places["env"]))
    assert_loaded(fm.load_data(), arrays)


def test_explicit_path_missing_files_does_not_fall_back(places, tmp_path):
    write_dataset(places["cache"])
    given_dir = tmp_path / "given"
    write_dataset(given_dir)
    file_path(given_dir, "test_labels").unlink()
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte") as info:
        fm.load_data(given_dir)
    assert str(given_dir) in str(info.value)
    assert "train-images" not in str(info.value)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        fm.load_data(tmp_path / "nowhere")


def test_not_found_message_lists_places_and_remedies(places, monkeypatch):
    write_dataset(places["env"])
    file_path(places["env"], "train_images").unlink()
    monkeypatch.setenv("TINYNN_DATA", str(places["env"]))
    with pytest.raises(FileNotFoundError) as info:  # DatasetNotFoundError is one
        fm.load_data(download=False)
    message = str(info.value)
    assert isinstance(info.value, DatasetNotFoundError)
    for place in places.values():
        assert str(place) in message
    assert "missing train-images-idx3-ubyte.gz" in message
    assert "make data" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "TINYNN_DATA" in message


def test_not_found_message_says_env_unset(places):
    with pytest.raises(DatasetNotFoundError, match=r"\$TINYNN_DATA: not set"):
        fm.find_data_dir()


def test_check_command(places, monkeypatch, capsys):
    assert fm.main(["--check"]) == 1
    assert "make data" in capsys.readouterr().err
    write_dataset(places["system"])
    assert fm.main(["--check"]) == 0
    assert capsys.readouterr().out.strip() == str(places["system"])


def test_check_command_as_module(tmp_path):
    write_dataset(tmp_path)
    env = {**os.environ, "TINYNN_DATA": str(tmp_path), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-W", "error", "-m", "tinynn.datasets.fashion_mnist", "--check"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, str(tmp_path), "")


# --- broken files --------------------------------------------------------------------------

# name -> (file to break, function of the good IDX bytes returning the bytes written to the .gz,
#          the reason the message must give)
BROKEN_BYTES = {
    "empty": ("train_labels", lambda raw: b"", "got an empty file"),
    "not_gzip": ("train_labels", lambda raw: raw, "expected a valid gzip stream"),
    "truncated_gzip": (
        "train_images", lambda raw: gz(raw)[: len(gz(raw)) // 2], "got EOFError: Compressed file"
    ),
    "crc_flip": ("test_images", lambda raw: edit(gz(raw), -8), "CRC check failed"),
    "length_flip": ("test_labels", lambda raw: edit(gz(raw), -4), "Incorrect length"),
    "deflate_flip": ("train_images", lambda raw: edit(gz(raw), 40), "expected a valid gzip"),
    "bad_block_type": (
        "test_images", lambda raw: edit(gz(raw), 10, lambda b: b | 0b110), "invalid block type"
    ),
    "header_short": ("test_labels", lambda raw: gz(raw[:3]), "expected a 4-byte IDX header"),
    "dims_short": ("train_images", lambda raw: gz(raw[:10]), "-byte header for 3 dims"),
    "bad_magic": ("train_images", lambda raw: gz(b"\x01" + raw[1:]), "magic bytes 0-1 = 00 00"),
    "bad_dtype": ("test_labels", lambda raw: gz(raw[:2] + b"\x0d" + raw[3:]), "dtype code 0x08"),
    "short_body": ("test_images", lambda raw: gz(raw[:-1]), "truncated body"),
    "trailing_bytes": ("train_labels", lambda raw: gz(raw + b"\x00"), "trailing bytes"),
}

# name -> (file to break, function of the good array returning the array written instead, reason)
BROKEN_ARRAYS = {
    "wrong_ndim": ("train_images", lambda a: a.reshape(len(a), -1), "expected 3 dimensions"),
    "count_mismatch": ("test_labels", lambda a: a[:-1], "expected as many labels as images"),
    "label_10": (
        "train_labels", lambda a: np.where(np.arange(len(a)) == 2, 10, a), "expected labels 0..9"
    ),
    "not_28x28": ("test_images", lambda a: a[:, :, :27], "expected 28x28 images"),
}


def assert_corrupt_names(directory: Path, target: Path, reason: str) -> None:
    """load_data raises DatasetCorruptError naming the file, the reason and how to recover."""
    with pytest.raises(DatasetCorruptError) as info:
        fm.load_data(directory)
    assert isinstance(info.value, ValueError)
    assert str(target) in str(info.value)
    assert reason in str(info.value)
    assert "make data" in str(info.value)


@pytest.mark.parametrize("kind", BROKEN_BYTES)
def test_broken_file_bytes(tmp_path: Path, kind: str):
    key, damage, reason = BROKEN_BYTES[kind]
    arrays = write_dataset(tmp_path)
    target = file_path(tmp_path, key)
    target.write_bytes(damage(idx_bytes(arrays[key])))
    assert_corrupt_names(tmp_path, target, reason)


@pytest.mark.parametrize("kind", BROKEN_ARRAYS)
def test_broken_file_content(tmp_path: Path, kind: str):
    key, damage, reason = BROKEN_ARRAYS[kind]
    arrays = write_dataset(tmp_path)
    target = file_path(tmp_path, key)
    target.write_bytes(gz(idx_bytes(damage(arrays[key]).astype(np.uint8))))
    assert_corrupt_names(tmp_path, target, reason)


def test_plain_file_holding_gzip_is_rejected(tmp_path: Path):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(gz(idx_bytes(np.arange(5, dtype=np.uint8))))
    with pytest.raises(DatasetCorruptError, match="magic bytes 0-1 = 00 00, got 1f 8b"):
        read_idx(path)


# --- checksums -----------------------------------------------------------------------------


@pytest.mark.parametrize("key, n", [("train_labels", 60_000), ("test_labels", 10_000)])
def test_official_size_with_wrong_hash(tmp_path: Path, key: str, n: int):
    write_dataset(tmp_path)
    target = file_path(tmp_path, key)
    raw = idx_bytes(np.random.default_rng(0).integers(0, 10, n, dtype=np.uint8))
    assert len(raw) == fm.FILES[key].size
    target.write_bytes(gz(raw))
    with pytest.raises(ChecksumMismatchError) as info:
        fm.load_data(tmp_path)
    message = str(info.value)
    assert str(target) in message and fm.FILES[key].sha256 in message
    assert hashlib.sha256(raw).hexdigest() in message
    with pytest.raises(DatasetCorruptError, match="expected as many labels"):
        fm.load_data(tmp_path, verify=False)  # hash skipped: the count check catches it


def test_other_sizes_are_not_official():
    raw = idx_bytes(np.zeros(7, dtype=np.uint8))
    assert fm.verify_bytes(raw, "train_labels", "x") is False


# --- properties ----------------------------------------------------------------------------

SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6)


@given(array=hnp.arrays(np.uint8, SHAPES), compressed=st.booleans())
def test_idx_round_trip(array: np.ndarray, compressed: bool):
    raw = idx_bytes(array)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("x-idx.gz" if compressed else "x-idx")
        path.write_bytes(gz(raw) if compressed else raw)
        out = read_idx(path, expected_ndim=array.ndim)
    assert out.dtype == np.uint8 and out.shape == array.shape and out.flags.writeable
    np.testing.assert_array_equal(out, array)
    assert parse_idx_bytes(bytearray(raw), "x").shape == array.shape


GOOD = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
GOOD_GZ = gz(idx_bytes(GOOD))


@given(
    cut=st.integers(0, len(GOOD_GZ) - 1),
    index=st.integers(0, len(GOOD_GZ) - 1),
    mask=st.integers(1, 255),
    truncate=st.booleans(),
)
def test_damaged_gzip_never_leaks_other_errors(cut: int, index: int, mask: int, truncate: bool):
    damaged = bytearray(GOOD_GZ[:cut] if truncate else GOOD_GZ)
    if not truncate:
        damaged[index] ^= mask
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "damaged-idx3-ubyte.gz"
        path.write_bytes(damaged)
        try:
            out = read_idx(path, expected_ndim=3)
        except DatasetCorruptError as exc:
            assert str(path) in str(exc)
            return
    assert not truncate  # only unchecked gzip header fields (mtime, OS...) may change silently
    np.testing.assert_array_equal(out, GOOD)


# --- the real files ------------------------------------------------------------------------


def test_real_data(real_data_dir: Path):
    (x_train, y_train), (x_test, y_test) = fm.load_data(real_data_dir)
    assert (x_train.shape, y_train.shape) == ((60_000, 28, 28), (60_000,))
    assert (x_test.shape, y_test.shape) == ((10_000, 28, 28), (10_000,))
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), [1000] * 10)
    for key in fm.FILES:
        options = [file_path(real_data_dir, key, compressed) for compressed in (True, False)]
        path = next(p for p in options if p.is_file())
        assert fm.verify_bytes(read_idx_bytes(path), key, str(path)), f"{path} is not official"
    assert len(fm.CLASS_NAMES) == 10
