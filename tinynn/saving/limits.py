"""``LoadLimits``: how much a loader lets a file of unknown origin ask for (docs/security.md).

Every loader takes ``limits=LoadLimits(...)`` to raise one deliberately, for a file you trust
that goes beyond a default (HDF5 weights compressed more than 100-fold, say); the error that
refuses a file names the limit it hit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import ArgumentError


@dataclass(frozen=True)
class LoadLimits:
    """Bounds on what a file may declare, checked before anything is allocated.

    - ``max_expansion``: a zip member or HDF5 dataset, and the sum of the datasets a load looks
      at, may declare at most this many times the bytes it stores, once above
      ``expansion_floor_bytes`` (the decompression ratio, and so its time, is bounded);
    - ``max_config_bytes``: a ``.keras`` file's ``config.json`` and an ``.npz``'s manifest;
    - ``max_weights_per_layer``: the names in a legacy ``.h5`` layer's ``weight_names``;
    - ``max_optimizer_variables``: the names in a legacy ``.h5`` optimizer's ``weight_names``.
    """

    max_expansion: int = 100
    expansion_floor_bytes: int = 2**28
    max_config_bytes: int = 16 * 2**20
    max_weights_per_layer: int = 1000
    max_optimizer_variables: int = 100_000

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArgumentError(f"LoadLimits {field.name} expected a positive int, got "
                                    f"{value!r}")

    def too_expanded(self, declared: int, stored: int) -> bool:
        """Whether ``declared`` bytes are more than a file storing ``stored`` may declare."""
        return declared > self.expansion_floor_bytes and declared > self.max_expansion * max(
            stored, 1)

    @staticmethod
    def hint(name: str) -> str:
        """How to raise the limit ``name`` for a file you trust."""
        return f"for a file you trust, raise it with limits=LoadLimits({name}=...)"


def checked(limits) -> LoadLimits:
    """``limits``, or the defaults for None; ArgumentError for anything else."""
    if limits is None:
        return LoadLimits()
    if not isinstance(limits, LoadLimits):
        raise ArgumentError(f"limits expected a tinynn.saving.LoadLimits or None, got "
                            f"{type(limits).__name__}")
    return limits
