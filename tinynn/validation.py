"""Argument and array checks shared by layers, losses, optimizers and the model.

Every check raises with what was checked, what was expected and what was received, and
never modifies its input.
"""

import math
from numbers import Integral, Real

import numpy as np

from .errors import ArgumentError, DTypeError, NonFiniteError, ShapeError

#: The longest layer, model or input name accepted: every name must fit the formats it is
#: saved in (zip member names, HDF5 object names), whoever gave it (docs/security.md).
MAX_NAME_CHARS = 256


def object_name(value, what: str) -> str:
    """Return ``value`` if it can name a layer, model or input in every file format: a
    non-empty str of at most ``MAX_NAME_CHARS`` characters, valid UTF-8, without ``/`` (a path
    separator in HDF5 and zip, refused by Keras too) and without control characters."""
    if not isinstance(value, str):
        raise ArgumentError(f"{what} expected a string, got {type(value).__name__} {value!r:.80}")
    problem = None
    if not value:
        problem = "it is empty"
    elif len(value) > MAX_NAME_CHARS:
        problem = f"it has {len(value)} characters, more than {MAX_NAME_CHARS}"
    elif "/" in value:
        problem = "it contains '/'"
    elif any(ord(char) < 32 or 127 <= ord(char) < 160 for char in value):
        problem = "it contains a control character"
    else:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            problem = "it is not valid Unicode (a lone surrogate)"
    if problem:
        raise ArgumentError(f"{what} expected a name that files can hold ({problem}), got "
                            f"{value!r:.80}")
    return value


def positive_int(value, name: str) -> int:
    """Return ``value`` as int if it is an integer > 0 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value <= 0:
        raise ArgumentError(f"{name} expected a positive integer, got {value!r}")
    return int(value)


def non_negative_int(value, name: str) -> int:
    """Return ``value`` as int if it is an integer >= 0 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ArgumentError(f"{name} expected a non-negative integer, got {value!r}")
    return int(value)


def int_tuple(value, length: int, name: str) -> tuple:
    """Return an int or a sequence of ints as a tuple of ``length`` positive ints."""
    if isinstance(value, Integral):
        items = (value,) * length
    else:
        items = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(items) != length:
        raise ArgumentError(f"{name} expected an int or {length} ints, got {value!r}")
    return tuple(positive_int(v, name) for v in items)


def real_in_range(value, name: str, low: float, high: float, *, low_open=False,
                  high_open=False) -> float:
    """Return ``value`` as float if it is a finite real within the given interval."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ArgumentError(f"{name} expected a finite number in {interval}, got {value!r}")
    return float(value)


def choice(value, name: str, options: tuple):
    """Return ``value`` if it is one of ``options``."""
    if value not in options:
        raise ArgumentError(f"{name} expected one of {options}, got {value!r}")
    return value


def float_array(x, dtype, name: str = "x") -> np.ndarray:
    """Return ``x`` as an array of ``dtype``, refusing complex, object, string and bool data.

    Integers (e.g. uint8 images) and other floats are cast explicitly to ``dtype``; an array
    already of ``dtype`` is returned as is (no copy). NaN and infinity are refused, naming the
    first offending sample and feature.
    """
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if kind not in "iuf":
        raise DTypeError(
            f"{name} expected real numbers (integer or float), got dtype {arr.dtype}"
            + (": convert booleans with .astype('float32') if intended" if kind == "b" else "")
        )
    arr = arr.astype(dtype, copy=False)
    if kind == "f":
        check_finite(arr, name)
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise NonFiniteError naming the first NaN/inf as (sample, feature index)."""
    if np.isfinite(arr).all():
        return
    bad = np.argwhere(~np.isfinite(arr))[0]
    feature = tuple(int(i) for i in bad[1:])
    raise NonFiniteError(
        f"{name} must be finite: sample {int(bad[0])}, feature index {feature} is "
        f"{arr[tuple(bad)].item()!r}"
    )


def same_length(x: np.ndarray, y: np.ndarray, xname: str = "x", yname: str = "y") -> None:
    """Raise ShapeError unless x and y have the same number of samples."""
    if len(x) != len(y):
        raise ShapeError(
            f"{xname} and {yname} must have the same number of samples, got {len(x)} and {len(y)}"
        )


def batch_size(value, default: int = 32) -> int:
    """Return a valid batch size (``None`` means ``default``)."""
    return default if value is None else positive_int(value, "batch_size")
