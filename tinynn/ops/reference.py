"""Plain-NumPy kernels: the readable ground truth for ``numba_kernels``.

Optimizer kernels update flat, contiguous 1-D buffers in place. Scalars are passed already
cast to the buffers' dtype so that both implementations compute in that dtype.
"""

import numpy as np


def sgd_update(params, grads, velocity, learning_rate, momentum, nesterov: bool) -> None:
    """Keras SGD in place. Buffers (P,); ``velocity`` unused when momentum is 0.

    v = momentum * v - lr * g;  w += v  (nesterov: w += momentum * v - lr * g).
    """
    if momentum == 0:
        params -= learning_rate * grads
        return
    velocity *= momentum
    velocity -= learning_rate * grads
    if nesterov:
        params += momentum * velocity - learning_rate * grads
    else:
        params += velocity


def adam_update(params, grads, m, v, alpha, one_minus_beta_1, one_minus_beta_2, epsilon) -> None:
    """Keras Adam in place over buffers (P,), with alpha = lr sqrt(1 - b2^t) / (1 - b1^t).

    m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2);  w -= alpha m / (sqrt(v) + eps).
    """
    m += (grads - m) * one_minus_beta_1
    v += (grads * grads - v) * one_minus_beta_2
    params -= alpha * m / (np.sqrt(v) + epsilon)


def all_finite(values) -> bool:
    """True if no element of the 1-D buffer is NaN or infinite."""
    return bool(np.isfinite(values).all())
