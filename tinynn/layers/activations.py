"""The ``Activation`` layer: an element-wise activation as its own layer."""

import numpy as np

from .. import activations
from .base import Layer, register
from .core import ActivationMixin


@register
class Activation(ActivationMixin, Layer):
    """``Activation("gelu")``, ``Activation(tinynn.activations.gelu)``: any identifier
    ``tinynn.activations.get`` accepts. Input and output shapes are equal; no parameters."""

    arguments = ("activation",)
    keras_name = "Activation"

    def __init__(self, activation, name: str | None = None, input_shape: tuple | None = None):
        super().__init__(name=name, input_shape=input_shape)
        self.activation = activations.get(activation)

    def linear_forward(self, x, training=False, relu=False):
        self.check_input(x)
        if relu:
            return np.maximum(x, 0)
        return x.copy()  # the activation works in place: never on the caller's array

    def linear_backward(self, dz):
        return dz
