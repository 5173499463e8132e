"""Layers: ``Input``, ``Flatten``, ``Dense``, ``Activation``, ``Conv2D``, ``MaxPooling2D``
(alias ``MaxPool2D``) and ``Dropout``."""

from .activations import Activation
from .base import Layer
from .conv import Conv2D
from .core import Dense, Flatten, Input, InputLayer
from .dropout import Dropout
from .pooling import MaxPool2D, MaxPooling2D

#: The layer classes a saved model may name. ``tinynn.saving`` resolves class names read from
#: a file through this table only (never by importing a name): add every new layer here.
SERIALIZABLE = (Input, Flatten, Dense, Activation, Conv2D, MaxPooling2D, Dropout)

__all__ = ["SERIALIZABLE", "Activation", "Conv2D", "Dense", "Dropout", "Flatten", "Input",
           "InputLayer", "Layer", "MaxPool2D", "MaxPooling2D"]
