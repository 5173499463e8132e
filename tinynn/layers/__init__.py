"""Layers: ``Input``, ``Flatten``, ``Dense``, ``Activation``, ``Conv2D``, ``MaxPooling2D``
(alias ``MaxPool2D``), ``AveragePooling2D`` (alias ``AvgPool2D``), ``GlobalAveragePooling2D``
(alias ``GlobalAvgPool2D``), ``Dropout``, ``BatchNormalization``, the merge layers, ``Reshape``,
``ZeroPadding2D``, ``Rescaling`` and the augmentations ``RandomFlip``, ``RandomBrightness``,
``RandomContrast``, ``RandomTranslation``, ``RandomRotation``, ``RandomZoom`` and
``RandomCrop``.

The registry: importing a layer's module registers its class (``@register``), and saved files
name classes through ``REGISTRY`` only (never by importing a name). A new layer is one module
here, imported below.
"""

from .activations import Activation
from .augmentation import (
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    Rescaling,
)
from .average_pooling2d import AveragePooling2D, AvgPool2D
from .base import REGISTRY, Layer, register
from .conv import Conv2D
from .core import Dense, Flatten, Input, InputLayer
from .dropout import Dropout
from .global_average_pooling2d import GlobalAveragePooling2D, GlobalAvgPool2D
from .merging import (
    Add,
    Average,
    Concatenate,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    maximum,
    minimum,
    multiply,
    subtract,
)
from .normalization import BatchNormalization
from .pooling import MaxPool2D, MaxPooling2D
from .reshaping import Reshape, ZeroPadding2D

__all__ = ["REGISTRY", "Activation", "Add", "Average", "AveragePooling2D", "AvgPool2D",
           "BatchNormalization", "Concatenate", "Conv2D", "Dense", "Dropout", "Flatten",
           "GlobalAveragePooling2D", "GlobalAvgPool2D", "Input", "InputLayer", "Layer",
           "MaxPool2D", "MaxPooling2D", "Maximum", "Minimum", "Multiply", "RandomBrightness",
           "RandomContrast", "RandomCrop", "RandomFlip", "RandomRotation", "RandomTranslation",
           "RandomZoom", "Rescaling",
           "Reshape", "Subtract",
           "ZeroPadding2D", "add", "average", "concatenate", "maximum", "minimum", "multiply",
           "register", "subtract"]
