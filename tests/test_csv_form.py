"""Tests of the Kaggle CSV form: strict parsing, errors naming file, line and column."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_datasets import assert_loaded, random_split, write_dataset
from tinynn.datasets import csv_form
from tinynn.datasets import fashion_mnist as fm
from tinynn.datasets.csv_form import load_csv, parse_csv_bytes
from tinynn.errors import DatasetCorruptError, DatasetNotFoundError

REPO = Path(__file__).resolve().parents[1]
HEADER = "label," + ",".join(f"pixel{i}" for i in range(1, 785))


def csv_lines(images: np.ndarray, labels: np.ndarray, header: bool = True) -> list[str]:
    """One string per line, Kaggle's layout: label, then the 784 pixels."""
    rows = np.column_stack([labels, images.reshape(len(images), -1)])
    return ([HEADER] if header else []) + [",".join(map(str, row)) for row in rows.tolist()]


def join(lines: list[str], newline: str = "\n", final: bool = True) -> bytes:
    return (newline.join(lines) + (newline if final else "")).encode()


def write_csv_dir(directory: Path, n_train: int = 6, n_test: int = 4) -> dict[str, np.ndarray]:
    """Write fashion-mnist_train.csv / _test.csv of ``random_split``; return the arrays."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = random_split(n_train, n_test)
    for split, name in fm.CSV_FILES.items():
        lines = csv_lines(arrays[f"{split}_images"], arrays[f"{split}_labels"])
        (directory / name).write_bytes(join(lines))
    return arrays


@pytest.fixture(params=[2, 1024], ids=["blocks_of_2", "blocks_of_1024"])
def block_lines(request, monkeypatch):
    """Parse in blocks of 2 lines too, so that line numbers across blocks are checked."""
    monkeypatch.setattr(csv_form, "_BLOCK_LINES", request.param)


@pytest.fixture
def kaggle_rows(monkeypatch):
    monkeypatch.setattr(fm, "CSV_ROWS", {"train": 6, "test": 4})


# --- good files ----------------------------------------------------------------------------


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("ending", ["", "\n", "\n\n\n"], ids=["none", "one", "blank_lines"])
def test_load_csv_round_trip(tmp_path, block_lines, header, newline, ending):
    arrays = random_split(5, 1)
    lines = csv_lines(arrays["train_images"], arrays["train_labels"], header)
    path = tmp_path / "x.csv"
    path.write_bytes(join(lines, newline, final=False) + ending.replace("\n", newline).encode())
    images, labels = load_csv(path, expected_rows=5)
    assert images.dtype == labels.dtype == np.uint8 and images.flags.writeable
    np.testing.assert_array_equal(images, arrays["train_images"])
    np.testing.assert_array_equal(labels, arrays["train_labels"])


def test_load_data_reads_the_csv_pair(tmp_path, kaggle_rows):
    arrays = write_csv_dir(tmp_path)
    assert_loaded(fm.load_data(tmp_path), arrays)
    assert_loaded(fm.load_data(str(tmp_path), download=False), arrays)


def test_load_data_finds_csv_via_env(places, monkeypatch, kaggle_rows):
    arrays = write_csv_dir(places["env"])
    monkeypatch.setenv("TINYNN_DATA", str(places["env"]))
    assert fm.find_data_dir() == places["env"]
    assert_loaded(fm.load_data(), arrays)


def test_idx_files_win_over_csv(tmp_path, kaggle_rows):
    write_csv_dir(tmp_path)
    arrays = write_dataset(tmp_path, n_train=3, seed=5)
    assert_loaded(fm.load_data(tmp_path), arrays)


def test_one_csv_file_is_not_enough(tmp_path):
    write_csv_dir(tmp_path)
    (tmp_path / fm.CSV_FILES["test"]).unlink()
    with pytest.raises(DatasetNotFoundError, match="fashion-mnist_test.csv"):
        fm.load_data(tmp_path)


@given(n=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), header=st.booleans())
def test_parse_csv_round_trip_property(n, seed, header):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    out_images, out_labels = parse_csv_bytes(join(csv_lines(images, labels, header)), "x.csv")
    np.testing.assert_array_equal(out_images, images)
    np.testing.assert_array_equal(out_labels, labels)


SMALL = random_split(3, 1)
GOOD = join(csv_lines(SMALL["train_images"], SMALL["train_labels"]))


@given(index=st.integers(0, len(GOOD) - 1), byte=st.integers(0, 255), cut=st.booleans())
def test_damaged_csv_never_leaks_other_errors(index, byte, cut):
    damaged = GOOD[:index] if cut else GOOD[:index] + bytes([byte]) + GOOD[index + 1:]
    try:
        images, labels = parse_csv_bytes(damaged, "x.csv", expected_rows=3)
    except DatasetCorruptError as exc:
        assert "x.csv" in str(exc)
        return
    assert images.shape == (3, 28, 28) and labels.max() <= 9  # only a digit became a digit


# --- broken files --------------------------------------------------------------------------


def set_field(lines: list[str], line: int, column: int, text: str) -> list[str]:
    """Replace field ``column`` (1-based) of line ``line`` (1-based, header = line 1)."""
    fields = lines[line - 1].split(",")
    fields[column - 1] = text
    return lines[: line - 1] + [",".join(fields)] + lines[line:]


# name -> (change to the lines, phrase the message must hold); lines 2..6 are the 5 rows
BROKEN_CSV = {
    "too_few_columns": (lambda L: [*L[:2], L[2].rsplit(",", 1)[0], *L[3:]],
                        "line 3: expected 785 columns (label, pixels), got 784"),
    "too_many_columns": (lambda L: [*L[:3], L[3] + ",0", *L[4:]],
                         "line 4: expected 785 columns (label, pixels), got 786"),
    "trailing_comma": (lambda L: [*L[:5], L[5] + ","], "line 6: expected 785 columns"),
    "blank_line": (lambda L: [*L[:3], "", *L[3:]], "line 4: expected 785 columns (label, pixels),"
                   " got 1"),
    "truncated_last_line": (lambda L: [*L[:5], L[5][: len(L[5]) // 2]],
                            "line 6: expected 785 columns"),
    "float_pixel": (lambda L: set_field(L, 5, 10, "0.5"),
                    "line 5, column 10 (pixel9): expected an integer pixel value 0..255,"
                    " got '0.5'"),
    "negative_pixel": (lambda L: set_field(L, 2, 785, "-1"), "line 2, column 785 (pixel784):"),
    "pixel_256": (lambda L: set_field(L, 6, 2, "256"), "line 6, column 2 (pixel1): expected an"
                  " integer pixel value 0..255, got '256'"),
    "label_10": (lambda L: set_field(L, 4, 1, "10"),
                 "line 4, column 1 (label): expected a label 0..9, got '10'"),
    "label_letters": (lambda L: set_field(L, 3, 1, "Bag"), "line 3, column 1 (label):"),
    "empty_field": (lambda L: set_field(L, 3, 400, ""), "line 3, column 400 (pixel399):"
                    " expected an integer pixel value 0..255, got ''"),
    "four_digits": (lambda L: set_field(L, 2, 7, "0255"), "line 2, column 7 (pixel6)"),
    "space": (lambda L: set_field(L, 5, 3, " 7"), "line 5, column 3 (pixel2)"),
    "quoted": (lambda L: set_field(L, 5, 3, '"7"'), "line 5, column 3 (pixel2)"),
    "stray_cr": (lambda L: set_field(L, 6, 9, "1\r2"), "line 6, column 9 (pixel8)"),
    "short_header": (lambda L: [L[0].rsplit(",", 1)[0], *L[1:]],
                     "line 1 (header): expected 785 columns, got 784"),
    "bad_first_row": (lambda L: set_field(L[1:], 1, 9, "x"), "line 1, column 9 (pixel8)"),
    "header_only": (lambda L: L[:1], "got no data rows"),
    "empty": (lambda L: [], "got an empty file"),
}


@pytest.mark.parametrize("kind", BROKEN_CSV)
def test_broken_csv(tmp_path, block_lines, kind):
    change, phrase = BROKEN_CSV[kind]
    arrays = random_split(5, 1)
    path = tmp_path / "fashion-mnist_train.csv"
    path.write_bytes(join(change(csv_lines(arrays["train_images"], arrays["train_labels"]))))
    with pytest.raises(DatasetCorruptError) as info:
        load_csv(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith(f"{path}: ") and phrase in message and "make data" in message


@pytest.mark.parametrize("split, drop", [("train", 1), ("test", 1), ("test", -1)])
def test_csv_row_count_must_match(tmp_path, kaggle_rows, split, drop):
    arrays = write_csv_dir(tmp_path)
    path = tmp_path / fm.CSV_FILES[split]
    lines = csv_lines(arrays[f"{split}_images"], arrays[f"{split}_labels"])
    path.write_bytes(join(lines[:-drop] if drop > 0 else lines + lines[1:2]))
    expected = fm.CSV_ROWS[split]
    with pytest.raises(DatasetCorruptError) as info:
        fm.load_data(tmp_path)
    assert str(path) in str(info.value)
    assert f"expected {expected} data rows, got {expected - drop}" in str(info.value)


def test_kaggle_row_counts():
    assert fm.CSV_ROWS == {"train": 60_000, "test": 10_000}


def test_checks_survive_python_O(tmp_path):
    """No check relies on assert: under ``python -O`` broken files are still refused."""
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_bytes(join(set_field([HEADER, ",".join(["0"] * 785)], 2, 1, "12")))
    bad_idx = tmp_path / "bad-idx1-ubyte"
    bad_idx.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x00")
    script = (
        "import sys\n"
        "from tinynn.datasets.csv_form import load_csv\n"
        "from tinynn.datasets.idx import read_idx\n"
        "from tinynn.errors import DatasetCorruptError\n"
        "for check in (lambda: load_csv(sys.argv[1]), lambda: read_idx(sys.argv[2])):\n"
        "    try:\n"
        "        check()\n"
        "    except DatasetCorruptError as exc:\n"
        "        print(type(exc).__name__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-O", "-c", script, str(bad_csv), str(bad_idx)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.split() == ["DatasetCorruptError"] * 2, done.stderr
