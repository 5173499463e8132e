"""``check_layer``: the whole Layer contract in one call, so each layer test is a line."""

import numpy as np

from tinynn.testing import assert_close, check_layer_gradients, floatx


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a


def check_layer(layer, input_shape: tuple, rng: np.random.Generator, x=None,
                stateful: bool = False) -> None:
    """Check ``layer`` against the Layer contract (docs/architecture.md, "The Layer contract").

    Builds ``layer`` in float64 unless it is already built (so a test may set weights first,
    e.g. to keep ReLU pre-activations away from the kink), then checks: output shape ==
    ``compute_output_shape``; float64 in -> float64 out, and a float32 twin built from the
    config gives float32 out and the same numbers; config round trip; read-only ``x`` and
    ``dy`` are accepted and not mutated; parameters unchanged by forward/backward; ``grads``
    overwritten in place (same arrays); the forward cache released; numerical gradients of dx
    and every parameter with a random upstream gradient. ``x`` defaults to standard normal
    (batch 3); pass it for layers with kinks.

    Non-trainable ``state`` is never changed by inference nor rebound. By default training mode
    must compute the same function as inference and leave ``state`` unchanged; with
    ``stateful=True`` (BatchNormalization) the training forward may differ and must update
    ``state`` in place, and the float32 twin, started from the same state, must update it to
    the same numbers.
    """
    input_shape = tuple(input_shape)
    if not layer.built:
        with floatx("float64"):
            layer.build(input_shape, rng)
    assert all(w.dtype == np.float64 for w in layer.weights.values())
    x = _read_only(rng.standard_normal((3, *input_shape)) if x is None else x)
    assert x.dtype == np.float64 and x.shape[1:] == input_shape
    x_before = x.copy()
    params_before = {k: p.copy() for k, p in layer.params.items()}
    grads_before = dict(layer.grads)
    state_arrays = dict(layer.state)
    state_before = {k: s.copy() for k, s in layer.state.items()}

    # Inference writes no cache nor state; training mode computes the same function and keeps
    # the state, unless the layer is stateful: then it updates the state (in place).
    y_inference = layer.forward(x, training=False)
    assert not layer.holds_cache
    _assert_state(layer, state_arrays, state_before)
    y = layer.forward(x, training=True)
    if stateful:
        _assert_state(layer, state_arrays)
        assert any(not np.array_equal(layer.state[k], state_before[k]) for k in state_before), (
            "a stateful layer's training forward must update its state")
    else:
        np.testing.assert_array_equal(y, y_inference)
        _assert_state(layer, state_arrays, state_before)
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
    for key, value in state_before.items():
        twin.state[key][...] = value
    y32 = twin.forward(_read_only(x.astype(np.float32)), training=True)
    assert y32.dtype == np.float32
    # Every output (or state) element is a sum over at most all of x's elements (a batch
    # statistic) of products with as many weights, each rounded to float32 once and summed
    # once (4 roundings per term), then an activation's own few (16 for exp, division, ...).
    depth = 4 * x.size + 16
    assert_close(y32, y, depth=depth, err_msg="float32 twin")
    for key, value in twin.state.items():
        assert value.dtype == np.float32
        assert_close(value, layer.state[key], depth=depth, err_msg=f"state {key}")
    dx32 = twin.backward(_read_only(dy.astype(np.float32)))
    assert dx32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in twin.grads.values())

    check_layer_gradients(layer, x, rng=rng)


def _assert_state(layer, arrays: dict, values: dict | None = None) -> None:
    """``layer.state`` holds the arrays ``arrays`` (updated in place, never rebound) and, if
    given, the ``values``."""
    assert layer.state.keys() == arrays.keys()
    for key, array in layer.state.items():
        assert array is arrays[key], f"state[{key!r}] was rebound"
        if values is not None:
            np.testing.assert_array_equal(array, values[key], err_msg=f"state {key} changed")


def rounding_depth(model, batch: int = 1, steps: int = 0, implementations: int = 2) -> float:
    """Roundings behind one prediction (``steps=0``), or one loss or weight after ``steps``
    training steps, of ``model`` (built), for ``assert_close(depth=...)`` against another
    implementation computing in the same dtype.

    Each kernel's sums are counted: its fan-in (forward) and, per training step, its fan-out
    (input gradient) and the batch times output positions (kernel gradient). A sum of ``n``
    terms rounded in any order errs by at most ``lambda * sqrt(n) * u`` with probability
    ``1 - 2 exp(-lambda^2 / 2)`` (Higham and Mary, SIAM J. Sci. Comput. 41(5), 2019); with
    lambda = 6 and ``u = eps / 2`` that is ``3 sqrt(n)`` epsilons. Each implementation
    contributes its own.
    """
    forward = backward = 0.0
    for layer in model.leaf_layers:  # nested models: their layers
        kernel = layer.params.get("kernel")
        if kernel is None:
            continue
        *window, fan_in_channels, units = kernel.shape
        taps = int(np.prod(window, dtype=np.int64))
        positions = int(np.prod(layer.compute_output_shape(layer.input_shape)[:-1],
                                dtype=np.int64))
        forward += 3 * np.sqrt(taps * fan_in_channels)
        backward += 3 * (np.sqrt(taps * units) + np.sqrt(batch * positions))
    return implementations * (forward + steps * (forward + backward))
