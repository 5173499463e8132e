"""``check_layer``: the whole Layer contract in one call, so each layer test is a line."""

import numpy as np

from tinynn.testing import check_layer_gradients, floatx


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a


def check_layer(layer, input_shape: tuple, rng: np.random.Generator, x=None) -> None:
    """Check ``layer`` against the Layer contract (ARCHITECTURE.md, "The Layer contract").

    Builds ``layer`` in float64 unless it is already built (so a test may set weights first,
    e.g. to keep ReLU pre-activations away from the kink), then checks: output shape ==
    ``compute_output_shape``; float64 in -> float64 out, and a float32 twin built from the
    config gives float32 out and the same numbers; config round trip; read-only ``x`` and
    ``dy`` are accepted and not mutated; parameters unchanged by forward/backward; ``grads``
    overwritten in place (same arrays); the forward cache released; numerical gradients of dx
    and every parameter with a random upstream gradient. ``x`` defaults to standard normal
    (batch 3); pass it for layers with kinks.
    """
    input_shape = tuple(input_shape)
    if not layer.built:
        with floatx("float64"):
            layer.build(input_shape, rng)
    assert all(p.dtype == np.float64 for p in layer.params.values())
    x = _read_only(rng.standard_normal((3, *input_shape)) if x is None else x)
    assert x.dtype == np.float64 and x.shape[1:] == input_shape
    x_before = x.copy()
    params_before = {k: p.copy() for k, p in layer.params.items()}
    grads_before = dict(layer.grads)

    # Inference writes no cache; training mode computes the same function.
    y_inference = layer.forward(x, training=False)
    assert not layer.holds_cache
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(y, y_inference)
    assert y.shape == (len(x), *layer.compute_output_shape(input_shape))
    assert y.dtype == np.float64
    dy = _read_only(rng.standard_normal(y.shape))
    dx = layer.backward(dy)
    assert dx.shape == x.shape and dx.dtype == np.float64
    assert not layer.holds_cache, "backward must release the forward cache"
    np.testing.assert_array_equal(x, x_before)
    for key, value in layer.params.items():
        np.testing.assert_array_equal(value, params_before[key], err_msg=f"{key} changed")
        assert layer.grads[key] is grads_before[key], f"grads[{key!r}] was rebound"
        assert layer.grads[key].shape == value.shape and layer.grads[key].dtype == np.float64

    # Config round trip, and a float32 twin with the same weights: float32 throughout.
    config = layer.get_config()
    twin = type(layer).from_config(config)
    assert twin.get_config() == config
    with floatx("float32"):
        twin.build(input_shape, np.random.default_rng(0))
    for key, value in layer.params.items():
        twin.params[key][...] = value
    y32 = twin.forward(_read_only(x.astype(np.float32)), training=True)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(y).max()))
    dx32 = twin.backward(_read_only(dy.astype(np.float32)))
    assert dx32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in twin.grads.values())

    check_layer_gradients(layer, x, rng=rng)
