"""AveragePooling2D (alias AvgPool2D): the mean of each window of NHWC images."""

from .. import ops
from .base import register
from .pooling import Pooling2D
from .spatial import check_images


@register("AvgPool2D")
class AveragePooling2D(Pooling2D):
    """Mean over each ``pool_size`` window moved by ``strides`` (default: ``pool_size``).

    Input shape: (N, H, W, C). Output shape: (N, OH, OW, C), Keras's 'valid'/'same'
    arithmetic. With 'same', a window overlapping the padding averages its in-image elements
    only (the padding is not counted, as Keras on TensorFlow), so a constant image pools to
    the same constant. Backward shares each window's gradient equally among those elements.
    """

    keras_name = "AveragePooling2D"

    def forward(self, x, training=False):
        check_images(self, x)
        y = ops.avgpool2d_forward(x, *self.pool_size, *self.strides, *self.pads)
        if training:
            self._cache["x_shape"] = x.shape
        return y

    def backward(self, dy):
        (x_shape,) = self.pop_cache("x_shape")
        return ops.avgpool2d_backward(dy, x_shape, *self.pool_size, *self.strides, *self.pads)


AvgPool2D = AveragePooling2D
