"""Global numeric settings and the tinynn-level seed source.

``floatx`` is the dtype new parameters are created in (Keras's ``keras.config.floatx``);
``epsilon`` is Keras's fuzz factor 1e-7. Randomness never touches NumPy's global RNG: models
draw their seeds from a private Generator that :func:`set_random_seed` resets.
"""

import numpy as np

from .errors import ArgumentError

_FLOATX = "float32"
_EPSILON = 1e-7
_VALID_FLOATX = ("float32", "float64")
_seed_source = np.random.default_rng()


def floatx() -> str:
    """Return the default float dtype name, ``"float32"`` unless changed."""
    return _FLOATX


def set_floatx(value: str) -> None:
    """Set the default float dtype for parameters and inputs: ``"float32"`` or ``"float64"``."""
    global _FLOATX
    if value not in _VALID_FLOATX:
        raise ArgumentError(f"set_floatx expected one of {_VALID_FLOATX}, got {value!r}")
    _FLOATX = value


def epsilon() -> float:
    """Return the fuzz factor used in numeric expressions (1e-7, as Keras)."""
    return _EPSILON


def set_random_seed(seed: int) -> None:
    """Reset the seed source that models built with ``seed=None`` draw from.

    After ``set_random_seed(s)``, the sequence of models created with ``seed=None`` is
    reproducible. NumPy's global RNG is not touched.
    """
    global _seed_source
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ArgumentError(f"set_random_seed expected a non-negative int, got {seed!r}")
    _seed_source = np.random.default_rng(int(seed))


def draw_seed() -> int:
    """Draw a fresh model seed from the tinynn-level seed source."""
    return int(_seed_source.integers(0, 2**63 - 1))


_name_counts: dict[str, int] = {}


def unique_name(base: str) -> str:
    """``base``, then ``base_1``, ``base_2``, ... on later calls (Keras's automatic layer and
    input names in functional models)."""
    count = _name_counts.get(base, 0)
    _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"

