"""Strict reader for Fashion-MNIST in Kaggle's CSV form (``fashion-mnist_train.csv``, ...).

One row per image: 785 comma-separated integers, the label (0..9) first, then the 784 pixels
(0..255) row by row. An optional header row (every field holding a letter, e.g.
``label,pixel1,...``) is skipped. Line endings may be LF or CRLF. Any other content raises
:class:`~tinynn.errors.DatasetCorruptError` naming the file, the line (1-based, the header
counted) and the column (1 = label, 2 = pixel1, ...).

The text is parsed with NumPy, 1024 lines at a time: the 60,000-row file (133 MB) takes about
0.8 s and, besides the file's bytes and the arrays returned, a few tens of MB.
"""

import os
import re

import numpy as np

from tinynn.datasets import idx

COLUMNS = 785
_MAX_DIGITS = 3
_BLOCK_LINES = 1024
_COMMA, _NEWLINE, _ZERO, _NINE = ord(","), ord("\n"), ord("0"), ord("9")
RECOVERY_HINT = (
    "replace it with a good copy of Kaggle's file, or remove the two CSV files and run"
    " `make data` to use the official IDX files"
)


def corrupt(name: str, reason: str):
    """DatasetCorruptError for CSV file ``name``, with the CSV recovery hint."""
    return idx.corrupt(name, reason, RECOVERY_HINT)


def load_csv(
    path: str | os.PathLike, expected_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read a Fashion-MNIST CSV file: images (N, 28, 28) and labels (N,), both uint8.

    Parameters
    ----------
    path : str or PathLike
        The CSV file.
    expected_rows : int, optional
        Required number of data rows (60,000 / 10,000 for Kaggle's files); any number >= 1
        when None.

    Raises
    ------
    DatasetCorruptError
        Empty file, wrong column count, a field that is not an integer 0..255 (0..9 for the
        label), or the wrong number of rows; the message names file, line and column.
    """
    name = os.fspath(path)
    with open(name, "rb") as file:
        return parse_csv_bytes(file.read(), name, expected_rows)


def parse_csv_bytes(
    raw: bytes, name: str, expected_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse the bytes of a CSV file (see :func:`load_csv`); ``name`` is used in errors."""
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n")  # a stray \r stays, and is reported
    begin, first_line = _skip_header(raw, name)
    end = len(raw)
    while end > begin and raw[end - 1] == _NEWLINE:  # trailing empty lines are harmless
        end -= 1
    if end == begin:
        raise corrupt(name, f"expected rows of {COLUMNS} integers, got no data rows")
    if end == len(raw):
        raw += b"\n"  # every row, the last included, ends with a newline
    data = np.frombuffer(raw, np.uint8, count=end + 1 - begin, offset=begin)
    newlines = _newlines(data)  # (rows,)
    rows = len(newlines)
    images, labels = np.empty((rows, 28, 28), np.uint8), np.empty(rows, np.uint8)
    for top in range(0, rows, _BLOCK_LINES):
        bottom = min(top + _BLOCK_LINES, rows)
        block_begin = newlines[top - 1] + 1 if top else 0
        block = data[block_begin:newlines[bottom - 1] + 1]
        table = _parse_block(block, raw, begin + block_begin, first_line + top, name)
        labels[top:bottom] = table[:, 0]
        images[top:bottom] = table[:, 1:].reshape(-1, 28, 28)
    if expected_rows is not None and rows != expected_rows:
        raise corrupt(
            name, f"expected {expected_rows} data rows, got {rows}: the file is truncated or"
            " has extra rows (to read a subset on purpose, call"
            " tinynn.datasets.csv_form.load_csv(path))"
        )
    return images, labels


def _newlines(data: np.ndarray, step: int = 1 << 24) -> np.ndarray:
    """Positions of the newlines in ``data``, found 16 MB at a time to bound the memory."""
    parts = [np.flatnonzero(data[i:i + step] == _NEWLINE) + i for i in range(0, len(data), step)]
    return np.concatenate(parts)


def _skip_header(raw: bytes, name: str) -> tuple[int, int]:
    """Return the offset of the first data row (after an optional header) and its line number."""
    if not raw or raw.isspace():
        raise corrupt(name, f"expected rows of {COLUMNS} integers, got an empty file")
    end = raw.find(b"\n")
    end = len(raw) if end < 0 else end
    fields = raw[:end].split(b",")
    if not all(re.search(rb"[A-Za-z]", field) for field in fields):
        return 0, 1
    if len(fields) != COLUMNS:
        raise corrupt(name, f"line 1 (header): expected {COLUMNS} columns, got {len(fields)}")
    return min(end + 1, len(raw)), 2


def _parse_block(block: np.ndarray, raw: bytes, offset: int, first_line: int,
                 name: str) -> np.ndarray:
    """Parse whole lines into a (lines, 785) uint8 table.

    ``block`` is ``raw[offset:...]`` as uint8, ending with a newline; its first line is line
    number ``first_line`` of the file (for errors).
    """
    is_sep = (block == _COMMA) | (block == _NEWLINE)
    bad = ~is_sep & ((block < _ZERO) | (block > _NINE))
    if bad.any():
        raise _field_error(raw, offset, offset + int(bad.argmax()), first_line, name)
    ends = np.flatnonzero(is_sep)  # one separator after every field
    line_ends = np.flatnonzero(block[ends] == _NEWLINE)  # index of each line's last field
    counts = np.diff(line_ends, prepend=-1)
    wrong = np.flatnonzero(counts != COLUMNS)
    if wrong.size:
        line, got = first_line + int(wrong[0]), counts[wrong[0]]
        raise corrupt(name, f"line {line}: expected {COLUMNS} columns (label, pixels), got {got}")
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts
    odd = np.flatnonzero((lengths == 0) | (lengths > _MAX_DIGITS))
    if odd.size:
        raise _field_error(raw, offset, offset + int(starts[odd[0]]), first_line, name)
    values = np.zeros(len(ends), np.int16)
    last = len(block) - 1
    for k in range(_MAX_DIGITS):  # Horner's rule, one digit position at a time
        digit = block[np.minimum(starts + k, last)].astype(np.int16) - _ZERO
        values = np.where(lengths > k, values * 10 + digit, values)
    table = values.reshape(-1, COLUMNS)  # (lines, 785)
    too_big = (table > 255) | ((np.arange(COLUMNS) == 0) & (table > 9))
    if too_big.any():
        field = int(too_big.argmax())  # the first in reading order
        raise _field_error(raw, offset, offset + int(starts[field]), first_line, name)
    return table.astype(np.uint8)


def _field_error(raw: bytes, offset: int, pos: int, first_line: int, name: str):
    """DatasetCorruptError for the field holding byte ``pos`` of ``raw``, naming line and
    column; ``offset`` is where line ``first_line`` starts."""
    line_start = raw.rfind(b"\n", 0, pos) + 1
    line = first_line + raw.count(b"\n", offset, pos)
    column = raw.count(b",", line_start, pos) + 1
    field_start = max(raw.rfind(b",", line_start, pos) + 1, line_start)
    field_end = min(i for i in (raw.find(b",", pos), raw.find(b"\n", pos)) if i >= 0)
    text = raw[field_start:field_end].decode("utf-8", "replace")
    text = text if len(text) <= 20 else text[:20] + "..."
    expected = "a label 0..9" if column == 1 else "an integer pixel value 0..255"
    where = "label" if column == 1 else f"pixel{column - 1}"
    reason = f"line {line}, column {column} ({where}): expected {expected}, got {text!r}"
    return corrupt(name, reason)
