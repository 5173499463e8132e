"""Strict reader for IDX files (the MNIST / Fashion-MNIST container), plain or gzipped.

An IDX file is a 4-byte header ``00 00 <dtype> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then ``prod(dims)`` bytes of data. Only dtype 0x08 (unsigned byte) is supported.
Every fault (empty file, bad or truncated gzip, bad header, wrong length) raises
:class:`~tinynn.errors.DatasetCorruptError` naming the file, what was expected and got, and how
to recover; gzip's own exceptions never leak.
"""

import gzip
import math
import os
import struct
import zlib

import numpy as np

from tinynn.errors import DatasetCorruptError

RECOVERY_HINT = (
    "delete the file and re-run `make data`, or set TINYNN_DATA to a directory holding good copies"
)
_UBYTE_CODE = 0x08


def corrupt(name: str, reason: str, hint: str = RECOVERY_HINT) -> DatasetCorruptError:
    """The DatasetCorruptError for file ``name``: ``"<name>: <reason>; to recover, <hint>"``."""
    return DatasetCorruptError(f"{name}: {reason}; to recover, {hint}")


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """Return the IDX bytes of ``path``, gunzipped in one go if the name ends in ``.gz``.

    Raises
    ------
    DatasetCorruptError
        The file is empty, not gzip, a truncated gzip, or fails gzip's CRC or length check.
    OSError
        The file cannot be opened (missing, permissions): not a content problem.
    """
    name = os.fspath(path)
    with open(name, "rb") as f:
        raw = f.read()
    if not raw:
        raise corrupt(name, "expected an IDX file, got an empty file (0 bytes)")
    if not name.endswith(".gz"):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, zlib.error, OSError) as exc:  # BadGzipFile is an OSError
        reason = f"expected a valid gzip stream, got {type(exc).__name__}: {exc}"
        raise corrupt(name, reason) from exc


def parse_idx_bytes(raw: bytes, name: str, expected_ndim: int | None = None) -> np.ndarray:
    """Parse decompressed IDX bytes into a writeable uint8 array of the header's shape.

    Parameters
    ----------
    raw : bytes
        The whole decompressed file. If it is a ``bytearray`` the result shares its memory;
        otherwise the data is copied once so that the result is writeable.
    name : str
        File name used in error messages.
    expected_ndim : int, optional
        Required number of dimensions (3 for images, 1 for labels).

    Returns
    -------
    np.ndarray
        uint8 array of shape ``dims`` read from the header.
    """
    if len(raw) < 4:
        raise corrupt(name, f"expected a 4-byte IDX header, got {len(raw)} bytes in total")
    if raw[0] != 0 or raw[1] != 0:
        raise corrupt(name, f"expected IDX magic bytes 0-1 = 00 00, got {raw[:2].hex(' ')}")
    if raw[2] != _UBYTE_CODE:
        raise corrupt(name, f"expected IDX dtype code 0x08 (unsigned byte), got {raw[2]:#04x}")
    ndim = raw[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise corrupt(name, f"expected {expected_ndim} dimensions in the IDX header, got {ndim}")
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        reason = f"expected a {offset}-byte header for {ndim} dims, got {len(raw)} bytes"
        raise corrupt(name, reason)
    dims = struct.unpack(f">{ndim}I", raw[4:offset])
    count = math.prod(dims)
    body = len(raw) - offset
    if body != count:
        kind = "truncated body" if body < count else "trailing bytes"
        raise corrupt(name, f"{kind}: expected {count} data bytes for shape {dims}, got {body}")
    array = np.frombuffer(raw, dtype=np.uint8, count=count, offset=offset).reshape(dims)
    return array if array.flags.writeable else array.copy()


def read_idx(path: str | os.PathLike, expected_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) as a writeable uint8 array (see `parse_idx_bytes`)."""
    return parse_idx_bytes(read_idx_bytes(path), os.fspath(path), expected_ndim)
