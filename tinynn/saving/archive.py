"""The checkpoint container: an ``.npz`` (zip) archive read without pickle, checked before use.

Entries: ``format_version`` (0-d int64), ``manifest`` (UTF-8 JSON as a uint8 vector) and one
float array per declared name, e.g. ``param/dense/kernel`` or ``optimizer/m/dense/kernel``.
The manifest declares every array's shape and dtype; a reader checks those against the model
and against each entry's ``.npy`` header and byte count before any array is read, so a small
file can never make tinynn allocate a large buffer. Entries are stored uncompressed, so an
array is never larger than the file that holds it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import CheckpointCorruptError, CheckpointError, TinyNNError
from .atomic import atomic_write
from .limits import LoadLimits
from .zipcheck import check_archive

FORMAT_VERSION = 1
FLOAT_DTYPES = ("float32", "float64")
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with entries; an empty zip
# What zipfile, numpy's .npy reader and json raise on damaged input (ValueError covers
# UnicodeDecodeError, JSONDecodeError and NumPy's refusal of pickled data).
_LOW_LEVEL_ERRORS = (zipfile.BadZipFile, ValueError, TypeError, EOFError, OSError, KeyError,
                     NotImplementedError, RecursionError, OverflowError)

Specs = dict[str, tuple[tuple, np.dtype]]  # name -> (shape, dtype)


def write_checkpoint(path: Path, manifest: str, arrays: dict[str, np.ndarray]) -> None:
    """Write the version, ``manifest`` (JSON text) and ``arrays`` to ``path`` atomically."""
    entries = {"format_version": np.asarray(FORMAT_VERSION, dtype=np.int64),
               "manifest": np.frombuffer(manifest.encode("utf-8"), dtype=np.uint8), **arrays}
    with atomic_write(path) as file:
        np.savez(file, allow_pickle=False, **entries)


class CheckpointReader:
    """An open checkpoint; use as a context manager.

    Attributes: ``path`` and ``manifest`` (a dict with ``"format": "tinynn"``).
    A missing or unreadable path raises the usual OSError; every problem with the content
    raises CheckpointCorruptError naming the file, and a format version newer than this tinynn
    reads raises CheckpointError naming both versions.
    """

    def __init__(self, path: Path, limits: LoadLimits | None = None):
        self.path = path
        self.limits = limits or LoadLimits()
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        try:
            self._size = os.fstat(self._file.fileno()).st_size
            with self.reading("the archive"):
                if self._file.read(4) not in _ZIP_MAGICS:
                    raise self.corrupt("it is not an .npz (zip) archive")
                self._file.seek(0)
                self._npz = np.load(self._file, allow_pickle=False)
                check_archive(self._npz.zip, self._file, self._size,
                              lambda name: name.endswith(".npy"), self.corrupt)
            self._check_version()
            self.manifest = self._read_manifest()
            self._check_members()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> CheckpointReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_npz", None) is not None:
            self._npz.close()
        self._file.close()

    # -- errors ---------------------------------------------------------------------------------
    def corrupt(self, problem: str) -> CheckpointCorruptError:
        """The error to raise for a content problem (returned, so callers ``raise`` it)."""
        return CheckpointCorruptError(
            f"checkpoint {str(self.path)!r} cannot be loaded: {problem} (the file is truncated, "
            "damaged or not a tinynn checkpoint; use another copy or save it again)")

    @contextlib.contextmanager
    def reading(self, what: str):
        """Turn low-level read errors into CheckpointCorruptError naming ``what``."""
        try:
            yield
        except TinyNNError:
            raise
        except _LOW_LEVEL_ERRORS as error:
            raise self.corrupt(f"reading {what} failed ({type(error).__name__}: {error})") \
                from error

    # -- entries --------------------------------------------------------------------------------
    def _info(self, key: str) -> zipfile.ZipInfo:
        try:
            info = self._npz.zip.getinfo(f"{key}.npy")
        except KeyError:
            raise self.corrupt(f"entry {key!r} is missing") from None
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise self.corrupt(f"entry {key!r} is compressed or encrypted; tinynn stores arrays "
                               "uncompressed")
        if info.header_offset + info.compress_size > self._size:
            raise self.corrupt(f"entry {key!r} extends past the end of the file")
        return info

    def header(self, key: str) -> tuple[tuple, np.dtype]:
        """Shape and dtype declared by an entry's ``.npy`` header, checked against its size."""
        info = self._info(key)
        with self.reading(f"entry {key!r}"), self._npz.zip.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version not in ((1, 0), (2, 0)):
                raise self.corrupt(f"entry {key!r} has .npy format {version}, expected 1.0 or 2.0")
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(member)
            header_size = member.tell()
        if not all(type(dim) is int and dim >= 0 for dim in shape):
            raise self.corrupt(f"entry {key!r} declares the shape {shape!r}, expected "
                               "non-negative integers")
        if dtype.hasobject:
            raise self.corrupt(f"entry {key!r} holds Python objects (dtype {dtype}); tinynn "
                               "checkpoints never contain pickled data")
        data_size = math.prod(shape) * dtype.itemsize
        if info.file_size != header_size + data_size:
            raise self.corrupt(f"entry {key!r} declares {dtype}{list(shape)} ({data_size} bytes) "
                               f"but holds {info.file_size - header_size} bytes")
        return shape, dtype

    def read(self, key: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
        """The array under ``key``, after checking its header declares ``shape`` and ``dtype``."""
        found = self.header(key)
        if found != (shape, dtype):
            raise self.corrupt(f"entry {key!r} holds {found[1]}{list(found[0])}, the manifest "
                               f"declares {dtype}{list(shape)}")
        with self.reading(f"entry {key!r}"):
            return self._npz[key]

    def check_entries(self, prefix: str, specs: Specs) -> None:
        """Check the header of every ``prefix/name`` entry against ``specs`` (nothing is read)."""
        for name, (shape, dtype) in specs.items():
            key = f"{prefix}/{name}"
            found = self.header(key)
            if found != (shape, dtype):
                raise self.corrupt(f"entry {key!r} holds {found[1]}{list(found[0])}, "
                                   f"the manifest declares {dtype}{list(shape)}")

    def read_floats(self, prefix: str, specs: Specs) -> dict[str, np.ndarray]:
        """Read every ``prefix/name`` entry of ``specs``; NaN or infinity is refused."""
        arrays = {}
        for name, (shape, dtype) in specs.items():
            key = f"{prefix}/{name}"
            array = self.read(key, shape, dtype)
            if not np.isfinite(array).all():
                raise self.corrupt(f"entry {key!r} holds NaN or infinity")
            arrays[name] = array
        return arrays

    # -- manifest -------------------------------------------------------------------------------
    def _check_version(self) -> None:
        shape, dtype = self.header("format_version")
        if shape != () or dtype.kind not in "iu":
            raise self.corrupt(f"format_version is {dtype}{list(shape)}, expected an integer")
        version = int(self.read("format_version", shape, dtype))
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint {str(self.path)!r} has format version {version}, but this tinynn "
                f"reads format versions up to {FORMAT_VERSION}: upgrade tinynn to load it")
        if version < 1:
            raise self.corrupt(f"format_version is {version}, expected 1 to {FORMAT_VERSION}")

    def _read_manifest(self) -> dict:
        shape, dtype = self.header("manifest")
        limit = self.limits.max_config_bytes
        if dtype != np.uint8 or len(shape) != 1 or shape[0] > limit:
            raise self.corrupt(f"the manifest is {dtype}{list(shape)}, expected at most "
                               f"max_config_bytes={limit} bytes of uint8; "
                               + self.limits.hint("max_config_bytes"))
        data = self.read("manifest", shape, dtype)
        with self.reading("the manifest"):
            manifest = json.loads(data.tobytes().decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != "tinynn":
            raise self.corrupt("the manifest does not describe a tinynn checkpoint")
        return manifest

    def _check_members(self) -> None:
        """Refuse an entry the manifest does not declare: the version, the manifest, and for
        each declared weight its ``param/`` entry and one per declared optimizer slot."""
        weights = self.manifest.get("weights")
        weights = weights if isinstance(weights, dict) else {}
        optimizer = self.manifest.get("optimizer")
        slots = optimizer.get("slots") if isinstance(optimizer, dict) else None
        slots = [slot for slot in slots if isinstance(slot, str)] if isinstance(slots, list) \
            else []
        for member in self._npz.zip.namelist():
            key = member[:-len(".npy")]
            if key.startswith("param/"):
                declared = key[len("param/"):] in weights
            elif key.startswith("optimizer/"):
                slot, _, name = key[len("optimizer/"):].partition("/")
                declared = slot in slots and name in weights
            else:
                declared = key in ("format_version", "manifest")
            if not declared:
                raise self.corrupt(f"entry {key!r} is not declared by the manifest")

    def specs(self, section: str = "weights") -> Specs:
        """The ``{name: (shape, dtype)}`` a manifest section declares, validated."""
        declared = self.manifest.get(section)
        if not isinstance(declared, dict):
            raise self.corrupt(f"the manifest has no {section!r} table")
        specs = {}
        for name, spec in declared.items():
            shape = spec.get("shape") if isinstance(spec, dict) else None
            dtype = spec.get("dtype") if isinstance(spec, dict) else None
            if (not isinstance(shape, list) or dtype not in FLOAT_DTYPES or not all(
                    type(dim) is int and dim >= 0 for dim in shape)):
                raise self.corrupt(f"the manifest's entry for {name!r} is {spec!r}, expected "
                                   f"{{'shape': [sizes], 'dtype': one of {FLOAT_DTYPES}}}")
            specs[name] = (tuple(shape), np.dtype(dtype))
        return specs
