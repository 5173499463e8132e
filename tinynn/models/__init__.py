"""Models: ``Model`` (Keras's functional API: a graph of layer calls, tinynn's one engine),
``Sequential`` (a chain of it) and ``load_model``."""

from . import model
from .model import Model, load_model
from .sequential import Sequential

__all__ = ["Model", "Sequential", "load_model", "model"]
