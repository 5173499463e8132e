"""Layers: ``Input``, ``Flatten``, ``Dense``, ``Activation``, ``Conv2D``, ``MaxPooling2D``
(alias ``MaxPool2D``) and ``Dropout``.

The registry: importing a layer's module registers its class (``@register``), and saved files
name classes through ``REGISTRY`` only (never by importing a name). A new layer is one module
here, imported below.
"""

from .activations import Activation
from .base import REGISTRY, Layer, register
from .conv import Conv2D
from .core import Dense, Flatten, Input, InputLayer
from .dropout import Dropout
from .pooling import MaxPool2D, MaxPooling2D

__all__ = ["REGISTRY", "Activation", "Conv2D", "Dense", "Dropout", "Flatten", "Input",
           "InputLayer", "Layer", "MaxPool2D", "MaxPooling2D", "register"]
