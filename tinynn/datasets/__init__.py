"""Data sets: ``tinynn.datasets.fashion_mnist.load_data()``, as in ``keras.datasets``, and
``tinynn.datasets.csv_form.load_csv(path)`` for Fashion-MNIST CSV files.

Submodules are imported on first attribute access, so that
``python -m tinynn.datasets.fashion_mnist`` does not find itself already imported.
"""

import importlib

__all__ = ["csv_form", "fashion_mnist"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
