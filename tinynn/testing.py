"""Gradient checks for layers and whole models, shipped so users can check their own layers.

Central differences in float64 against the analytic backward, with a random (never all-ones)
upstream gradient. Small tensors are checked element by element; large ones along a few random
unit directions. Every parameter tensor, biases included, is checked. Generators attached to
the layer or model are rewound before every forward, so dropout-like layers see the same mask.

A mismatch raises ``AssertionError`` naming the tensor, the position or direction, and both values.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from . import config


@contextmanager
def floatx(dtype: str):
    """Temporarily set ``tinynn.config.floatx`` (``with floatx("float64"): ...``)."""
    previous = config.floatx()
    config.set_floatx(dtype)
    try:
        yield
    finally:
        config.set_floatx(previous)


def _generators(obj) -> list[np.random.Generator]:
    """Generators directly attached to ``obj`` (or in its ``rngs`` dict)."""
    found = [v for v in vars(obj).values() if isinstance(v, np.random.Generator)]
    found += [v for v in getattr(obj, "rngs", {}).values() if isinstance(v, np.random.Generator)]
    return found


class _Rewinder:
    """Restores the states of some Generators to a snapshot."""

    def __init__(self, generators):
        self.saved = [(g, g.bit_generator.state) for g in generators]

    def __call__(self):
        for generator, state in self.saved:
            generator.bit_generator.state = state


def check_gradient(objective, value: np.ndarray, analytic: np.ndarray, name: str,
                   rng: np.random.Generator, *, eps: float = 1e-6, rtol: float = 1e-5,
                   atol: float = 1e-8, full_limit: int = 400, directions: int = 6) -> None:
    """Compare ``analytic`` with central differences of ``objective()`` w.r.t. ``value``.

    ``value`` is perturbed in place and restored. Tensors with at most ``full_limit`` elements
    are checked element-wise, others along ``directions`` random unit directions.
    """
    if value.dtype != np.float64:
        raise TypeError(f"gradient checks need float64 tensors, {name} is {value.dtype}")

    original = value.copy()

    def directional(direction):  # writes value[...]: the caller's array, restored exactly
        value[...] = original + eps * direction
        plus = objective()
        value[...] = original - eps * direction
        minus = objective()
        value[...] = original
        return (plus - minus) / (2 * eps)

    if value.size <= full_limit:
        probes = []
        for index in np.ndindex(value.shape):
            unit = np.zeros_like(value)
            unit[index] = 1.0
            probes.append((f"element {index}", unit))
    else:
        probes = []
        for i in range(directions):
            direction = rng.standard_normal(value.shape)
            probes.append((f"random direction {i}", direction / np.linalg.norm(direction)))
    for label, direction in probes:
        numeric = directional(direction)
        exact = float(np.sum(analytic * direction))
        if abs(numeric - exact) > atol + rtol * max(abs(numeric), abs(exact)):
            raise AssertionError(f"gradient of {name} wrong at {label}: analytic {exact!r}, "
                                 f"numerical {numeric!r}")


def check_layer_gradients(layer, x, *, rng: np.random.Generator | None = None,
                          **tolerances) -> None:
    """Check ``layer.backward`` (dx and every ``grads[k]``) against central differences.

    ``x`` is (N, *input_shape) float64, or a list of such arrays for a layer that takes
    several inputs (``Add``, ``Concatenate``...). An unbuilt ``layer`` is built in float64 from
    ``x``'s shapes first, as calling it would; a built one must be float64. The objective is
    ``sum(forward(x) * dy)`` with a random upstream gradient ``dy``.
    """
    rng = rng or np.random.default_rng(0)
    inputs = [np.array(a, dtype=np.float64) for a in (x if layer.takes_list else [x])]
    if not layer.built:
        shapes = [a.shape[1:] for a in inputs]
        with floatx("float64"):
            layer.build(shapes if layer.takes_list else shapes[0], np.random.default_rng(0))
    x = inputs if layer.takes_list else inputs[0]
    rewind = _Rewinder(_generators(layer))
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dxs = dx if layer.takes_list else [dx]
    analytic = {k: g.copy() for k, g in layer.grads.items()}
    scale = max(1.0, abs(float(np.sum(y * dy))))
    tolerances.setdefault("atol", 1e-8 * scale)

    def objective():
        rewind()
        out = float(np.sum(layer.forward(x, training=True) * dy))
        layer.release_cache()
        return out

    rewind()
    name = layer.name or type(layer).__name__
    for i, (value, grad) in enumerate(zip(inputs, dxs)):
        label = f"{name} input {i}" if layer.takes_list else f"{name} input"
        check_gradient(objective, value, grad, label, rng, **tolerances)
    for key, grad in analytic.items():
        check_gradient(objective, layer.params[key], grad, f"{name}/{key}", rng, **tolerances)


def check_model_gradients(model, x: np.ndarray, y, *, rng: np.random.Generator | None = None,
                          **tolerances) -> None:
    """Check a compiled float64 model's gradients of the mean loss (for several outputs, the
    weighted sum of theirs) w.r.t. every input and every parameter, through its losses
    (including the fused softmax + cross-entropy)."""
    rng = rng or np.random.default_rng(0)
    x, y = model.prepare(x, y)
    several = hasattr(x, "arrays")  # an ArrayGroup of several inputs
    inputs = [np.array(a, dtype=np.float64) for a in (x.arrays if several else [x])]
    if several:
        x.arrays = inputs
    else:
        x = inputs[0]
    rewind = _Rewinder(_generators(model) + [g for layer in model.layers
                                             for g in _generators(layer)])
    fused = model.fused_outputs
    out = model.forward(x, training=True, logits=fused)
    _, dout = model.loss_and_output_gradient(y, out, fused)
    grads_by_key = {}
    input_grads = model.backward(dout, fused, input_gradient=True)
    input_grads = input_grads if several else [input_grads]
    for layer in model.layers:
        for key, grad in layer.grads.items():
            grads_by_key[(layer, key)] = grad.copy()
    tolerances.setdefault("atol", 1e-9)

    def objective():
        rewind()
        out = model.forward(x, training=True, logits=fused)
        model.release_caches()
        per_sample = model.loss_and_output_gradient(y, out, fused)[0]
        return float(np.mean(per_sample)) + model.regularization_loss()

    rewind()
    for i, (value, grad) in enumerate(zip(inputs, input_grads)):
        check_gradient(objective, value, grad, f"model input {i}" if several else "model input",
                       rng, **tolerances)
    for (layer, key), grad in grads_by_key.items():
        check_gradient(objective, layer.params[key], grad, f"{layer.name}/{key}", rng,
                       **tolerances)


def rounding_bound(desired, dtype, depth: float, scale: float | None = None) -> float:
    """The absolute error allowed after ``depth`` roundings in ``dtype``: ``depth * eps * scale``.

    ``scale`` defaults to ``max(|desired|)``, the size of the compared values, so an element near
    zero is judged by the rounding of its neighbours, not by a relative error it cannot have.
    ``depth`` counts the roundings behind one compared element: Higham's bound for a sum or dot
    product of ``n`` terms is ``n * eps`` (relative to the sum of the terms' magnitudes), and
    stages in a row add up. Two independent computations of one value (tinynn against Keras)
    each contribute theirs.
    """
    eps = float(np.finfo(dtype).eps)
    if scale is None:
        scale = float(np.max(np.abs(desired), initial=0.0))
    return depth * eps * max(scale, float(np.finfo(dtype).tiny))


def _working_dtype(actual, desired):
    """The coarser floating dtype of the two (float32 if either is float32)."""
    dtypes = [np.asarray(a).dtype for a in (actual, desired)]
    floats = [d for d in dtypes if np.issubdtype(d, np.floating)]
    return max(floats, key=lambda d: np.finfo(d).eps) if floats else np.dtype(np.float64)


def assert_close(actual, desired, *, depth: float, dtype=None, scale: float | None = None,
                 err_msg: str = "") -> None:
    """Assert ``|actual - desired| <= depth * eps(dtype) * scale`` element-wise, shapes equal.

    The bound is :func:`rounding_bound`: scaled by the compared values' magnitude (``scale``,
    default ``max(|desired|)``) and by ``depth``, the roundings one element goes through.
    ``dtype`` is the precision the values were computed in; by default the coarser of the two
    arrays' (a float32 result against a float64 hand computation is judged in float32).
    NaN must match NaN, as in ``np.testing.assert_allclose``.
    """
    shapes = np.shape(actual), np.shape(desired)
    assert shapes[0] == shapes[1], f"shapes differ: {shapes[0]} (actual), {shapes[1]} (desired)"
    dtype = np.dtype(dtype) if dtype is not None else _working_dtype(actual, desired)
    bound = rounding_bound(desired, dtype, depth, scale)
    note = f"bound {bound:.3g} = {depth} roundings of {dtype} at scale " \
           f"{bound / depth / float(np.finfo(dtype).eps):.3g}"
    np.testing.assert_allclose(actual, desired, rtol=0, atol=bound,
                               err_msg=f"{err_msg} ({note})" if err_msg else note)
