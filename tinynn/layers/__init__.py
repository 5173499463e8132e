"""Layers: ``Input``, ``Flatten``, ``Dense``, ``Activation`` (convolution and pooling come next)."""

from .activations import Activation
from .base import Layer
from .core import Dense, Flatten, Input, InputLayer

__all__ = ["Activation", "Dense", "Flatten", "Input", "InputLayer", "Layer"]
