"""numba ``@njit`` twins of ``reference``: same signatures, same results.

Each kernel is one pass over memory (the NumPy versions make several, with temporaries).
Compiled code is cached on disk (``NUMBA_CACHE_DIR``, set by ``tinynn.ops``).
"""

import numpy as np
from numba import njit


@njit(cache=True)
def sgd_update(params, grads, velocity, learning_rate, momentum, nesterov):
    if momentum == 0:
        for i in range(params.size):
            params[i] -= learning_rate * grads[i]
        return
    for i in range(params.size):
        vel = velocity[i] * momentum
        vel -= learning_rate * grads[i]
        velocity[i] = vel
        if nesterov:
            params[i] += momentum * vel - learning_rate * grads[i]
        else:
            params[i] += vel


@njit(cache=True)
def adam_update(params, grads, m, v, alpha, one_minus_beta_1, one_minus_beta_2, epsilon):
    for i in range(params.size):
        g = grads[i]
        mi = m[i] + (g - m[i]) * one_minus_beta_1
        vi = v[i] + (g * g - v[i]) * one_minus_beta_2
        m[i] = mi
        v[i] = vi
        params[i] -= alpha * mi / (np.sqrt(vi) + epsilon)


@njit(cache=True)
def all_finite(values):
    for i in range(values.size):
        if not np.isfinite(values[i]):
            return False
    return True
