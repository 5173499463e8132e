"""Activations: values against hand formulas and Keras 3 (TensorFlow backend), exact backward
passes (float64 gradient checks and hand derivatives at any magnitude), stability, the gelu
kernels' twins, Keras parity of models using them (predictions, an Adam step, .keras files
both ways), tinynn's own files, and identifier matching as Keras's ``get`` functions do it.

Tolerances: ``tinynn.testing.assert_close``, ``depth`` roundings of the working dtype at the
compared values' scale, ``depth`` derived from the computation (commented at each comparison).
An element-wise function sums nothing, so each value is judged at its own scale,
max(|value|, floor) (``assert_each_close``). The hand formulas' floor is |z| tiny / eps, |z| the
largest input whose exp is not 0: below the smallest normal number ``tiny`` results are
subnormal (steps of eps * tiny) or flushed to zero by vectorized math (an error up to tiny), and
silu and gelu multiply such an intermediate by |z|. Against Keras the floor is 1: TensorFlow
computes elu and selu as exp(z) - 1 (not expm1), losing up to one epsilon of the 1 near 0, and
flushes subnormal results to 0 (sigmoid(-90)); tinynn keeps both. In float64, TensorFlow rounds
two constants to float32: leaky_relu's slope (an op attribute, 0.2f: 1.5e-8 relative) and
gelu's 1/sqrt(2) (``math_ops.cast`` of a Python float goes through float32 in ``tf.nn.gelu``:
up to 5e-9 absolute); those two are judged as one float32 rounding. Derivatives are
output-based for elu, selu and sigmoid (a + 1, a (1 - a)), as TensorFlow's: exact to an epsilon
of the largest derivative, so they are judged at selu's SCALE * ALPHA times the largest upstream
gradient (``derivative_depth``). Whole models against Keras allow both implementations'
roundings through the network (``helpers.rounding_depth``).
"""

import math
import re

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinynn as tn
from tinynn import activations, ops
from tinynn.errors import ArgumentError
from tinynn.ops import reference
from tinynn.testing import assert_close, floatx, rounding_bound

from .helpers import check_layer, rounding_depth

L = tn.layers
NEW = ["elu", "selu", "gelu", "silu", "softplus", "leaky_relu"]
ELEMENTWISE = ["linear", "relu", "sigmoid", "tanh", *NEW]
ALL = [*ELEMENTWISE, "softmax"]
KINKED = ("relu", "leaky_relu", "elu", "selu")  # not differentiable (or C1 only) at 0
SCALE, ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
#: The hand formulas' smallest scale, |z| tiny / eps (module docstring), |z| = -log(eps tiny) the
#: largest input whose exp is not 0 (104 in float32, 745 in float64).
SUBNORMAL = {np.dtype(t): float(-np.log(np.finfo(t).smallest_subnormal) * np.finfo(t).tiny
                                / np.finfo(t).eps) for t in (np.float32, np.float64)}
#: A value from a hand formula: tinynn's at most four operations (an exp or erfc, a log1p, a
#: division, a multiply), each within two epsilons on any of NumPy's SIMD paths.
VALUE_DEPTH = 8


def derivative_depth(dtype) -> float:
    """A derivative times da: four roundings (two epsilons each), and silu's: s (1 + z (1 - s))
    (TensorFlow's form) where 1 - s inherits the rounding of s, eps / 2, which z multiplies until
    s rounds to 1 at z = -log(eps / 2) (17 in float32, 37 in float64)."""
    return 8 - math.log(np.finfo(dtype).eps / 2)


def assert_each_close(actual, desired, *, depth: float, dtype, floor: float) -> None:
    """``assert_close`` with each element at its own scale, max(|desired|, floor): an
    element-wise function rounds relative to each value, not to its neighbours' largest. The
    quotients are formed in float64, one more rounding in a float64 comparison."""
    desired = np.asarray(desired, np.float64)
    scale = np.maximum(np.abs(desired), floor)
    assert_close(np.asarray(actual, np.float64) / scale, desired / scale, depth=depth,
                 dtype=dtype, scale=1.0, err_msg="each value divided by max(|desired|, floor)")


# -- hand formulas (Python floats, the math module) ---------------------------------------------
def _sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _phi(x):
    """The standard normal CDF, 0.5 (1 + erf(x / sqrt(2))) written with erfc (exact in the
    tails, where 1 + erf cancels). The argument is x times 1/sqrt(2) rounded, as tinynn
    computes it: in the tail erfc's relative condition number is 2 u^2 (up to 1600 here), so
    x / sqrt(2), rounded differently, would move the result by more than float64 rounding."""
    return 0.5 * math.erfc(-x * math.sqrt(0.5))


VALUES = {
    "linear": lambda x: x,
    "relu": lambda x: max(x, 0.0),
    "leaky_relu": lambda x: x if x > 0 else 0.2 * x,
    "elu": lambda x: x if x > 0 else math.expm1(x),
    "selu": lambda x: SCALE * (x if x > 0 else ALPHA * math.expm1(x)),
    "softplus": lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))),
    "sigmoid": _sigmoid,
    "tanh": math.tanh,
    "silu": lambda x: x * _sigmoid(x),
    "gelu": lambda x: x * _phi(x),
}
DERIVATIVES = {  # at the kink 0, TensorFlow's choices (ReluGrad, LeakyReluGrad, EluGrad)
    "linear": lambda x: 1.0,
    "relu": lambda x: 1.0 if x > 0 else 0.0,
    "leaky_relu": lambda x: 1.0 if x > 0 else 0.2,
    "elu": lambda x: math.exp(x) if x < 0 else 1.0,
    "selu": lambda x: SCALE * ALPHA * math.exp(x) if x < 0 else SCALE,
    "softplus": _sigmoid,
    "sigmoid": lambda x: _sigmoid(x) * _sigmoid(-x),
    "tanh": lambda x: 1 - math.tanh(x) ** 2,
    "silu": lambda x: _sigmoid(x) * (1 + x * _sigmoid(-x)),
    "gelu": lambda x: _phi(x) + x * math.exp(-0.5 * min(x * x, 1e4)) / math.sqrt(2 * math.pi),
}


def hand(table: dict, name: str, x: np.ndarray) -> np.ndarray:
    """``table[name]`` element-wise on x's values, in float64."""
    return np.vectorize(table[name], otypes=[np.float64])(x.astype(np.float64))


def forward_backward(name: str, z: np.ndarray, da: np.ndarray) -> tuple:
    """An Activation's output and d(input), called as the layers call it."""
    activation = activations.get(name)
    a = activation.forward(z.copy())
    return a, activation.backward(a, da, z if activation.needs_input else None)


def grid(dtype) -> np.ndarray:
    """-40..40 in steps of 0.01, and special values."""
    special = [0.0, -0.0, 1e-6, -1e-6, -1e-30, 88.0, -88.0, -100.0, 1e4, -1e4]
    return np.concatenate([np.linspace(-40, 40, 8001), special]).astype(dtype)


# -- values -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, x, expected", [
    ("elu", [-math.log(2), 0.0, 3.0], [-0.5, 0.0, 3.0]),
    ("selu", [-math.log(2), 2.0], [-0.5 * SCALE * ALPHA, 2 * SCALE]),
    ("softplus", [0.0, math.log(3), -math.log(3)], [math.log(2), math.log(4), math.log(4 / 3)]),
    ("silu", [math.log(3), 0.0], [0.75 * math.log(3), 0.0]),
    ("swish", [math.log(3)], [0.75 * math.log(3)]),
    ("gelu", [1.0, -1.0, 0.0], [0.8413447460685429, -0.15865525393145707, 0.0]),
    ("gelu", [-10.0], [-10 * 7.619853024160526e-24]),  # Phi(-10): the tail keeps its digits
    ("leaky_relu", [-5.0, 0.0, 2.0], [-1.0, 0.0, 2.0]),
    ("sigmoid", [-20.0], [2.0611536181902037e-09]),  # not rounded to 0 by 1 - tanh
])
def test_values_by_hand(name, x, expected):
    # Four operations (two epsilons each), and in gelu the argument's rounding (x / sqrt(2): an
    # epsilon) times erfc's condition number |x| phi(x) / Phi(x) < 1 + x^2 (101 at x = -10).
    depth = 8 + (1 + max(v * v for v in x) if name == "gelu" else 0)
    assert_close(getattr(activations, name)(np.array(x)), np.array(expected), depth=depth)


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_and_derivatives_match_hand_formulas_on_a_grid(name, dtype):
    z = grid(dtype)
    da = np.random.default_rng(0).standard_normal(z.shape).astype(dtype)
    a, dz = forward_backward(name, z, da)
    assert a.dtype == dz.dtype == dtype
    assert_hand_values_and_derivatives(name, z, da, a, dz)


def assert_hand_values_and_derivatives(name, z, da, a, dz) -> None:
    dtype = z.dtype
    assert_each_close(a, hand(VALUES, name, z), depth=VALUE_DEPTH, dtype=dtype,
                      floor=SUBNORMAL[dtype])
    # Output-based derivatives (elu, selu, sigmoid: a + 1, a (1 - a)) are exact to one
    # epsilon of the largest derivative, as TensorFlow's (EluGrad, SeluGrad, SigmoidGrad).
    assert_close(dz, hand(DERIVATIVES, name, z) * da.astype(np.float64),
                 depth=derivative_depth(dtype), dtype=dtype,
                 scale=SCALE * ALPHA * float(np.abs(da).max()))


def test_gelu_is_kerass_exact_erf_form():
    x = np.linspace(-5, 5, 1001)
    erf = np.vectorize(math.erf)
    # 1 + erf cancels for x < 0: an epsilon of 1 (times |x| / 2), at the scale of gelu(5) = 5
    assert_close(activations.gelu(x), 0.5 * x * (1 + erf(x / math.sqrt(2))), depth=4)


def test_softmax_function_rows_sum_to_one():
    x = np.array([[0.0, math.log(2), math.log(3)], [1e4, 0.0, -1e4]])
    # log 2, log 3 rounded, exp of the shifted inputs, a sum of 3, a division
    assert_close(activations.softmax(x), np.array([[1 / 6, 2 / 6, 3 / 6], [1, 0, 0]]), depth=8)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_functions_compute_kerass_values(keras, name, dtype):
    x = grid(dtype)
    x = np.resize(x, (len(x) // 8 + 1) * 8).reshape(-1, 8) if name == "softmax" else x
    ours = getattr(activations, name)(x)
    theirs = np.asarray(getattr(keras.activations, name)(x))
    assert ours.dtype == theirs.dtype == dtype
    if name == "softmax":  # an exp, a sum of 8 and a division on each side
        assert_close(ours, theirs, depth=2 * 10)
    elif dtype == "float64" and name in ("gelu", "leaky_relu"):  # a constant in float32 in TF
        assert_each_close(ours, theirs, depth=1, dtype=np.float32, floor=1.0)
    else:  # up to four operations on each side (Eigen's exp, tanh, log1p), two epsilons each
        assert_each_close(ours, theirs, depth=2 * 8, dtype=dtype, floor=1.0)


def test_functions_keep_their_input_and_its_dtype():
    x = np.array([-1.0, 0.5], np.float32)
    for name in ALL:
        out = getattr(activations, name)(x)
        assert out.dtype == np.float32 and out is not x
    np.testing.assert_array_equal(x, [-1.0, 0.5])
    assert activations.relu([1, -2]).dtype == np.float32  # lists and integers: floatx
    assert activations.gelu(np.arange(3)).dtype == np.float32
    with floatx("float64"):
        assert activations.silu([0.5]).dtype == np.float64
    assert activations.swish is activations.silu
    with pytest.raises(ArgumentError, match="expected a float32 or float64 array, got dtype "
                                            "float16"):
        activations.elu(np.zeros(2, np.float16))


# -- stability ----------------------------------------------------------------------------------
LIMITS = {  # name: (value at +big, value at -big, derivative at +big, derivative at -big)
    "linear": (None, None, 1, 1), "relu": (None, 0, 1, 0), "leaky_relu": (None, None, 1, 0.2),
    "elu": (None, -1, 1, 0), "selu": (None, -SCALE * ALPHA, SCALE, 0), "softplus": (None, 0, 1, 0),
    "sigmoid": (1, 0, 0, 0), "tanh": (1, -1, 0, 0), "silu": (None, 0, 1, 0),
    "gelu": (None, 0, 1, 0),
}


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("dtype, big", [(np.float32, 1e4), (np.float32, 1e37),
                                        (np.float64, 1e4), (np.float64, 1e300)])
def test_large_magnitudes_give_finite_limits_without_warnings(name, dtype, big):
    z = np.array([big, -big], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a, dz = forward_backward(name, z, np.ones_like(z))
    assert a.dtype == dz.dtype == dtype and np.isfinite(a).all() and np.isfinite(dz).all()
    high, low, d_high, d_low = LIMITS[name]
    expected = [z[0] * SCALE if name == "selu" else z[0] if high is None else high,
                z[1] * (0.2 if name == "leaky_relu" else 1) if low is None else low]
    floor = SUBNORMAL[np.dtype(dtype)]  # the limits within a rounding of each side
    assert_each_close(a, expected, depth=2, dtype=dtype, floor=floor)
    assert_each_close(dz, [d_high, d_low], depth=2, dtype=dtype, floor=floor)


element_sets = {
    np.float32: st.one_of(st.floats(-30, 30, width=32), st.floats(-2.0**100, 2.0**100, width=32)),
    np.float64: st.one_of(st.floats(-30, 30), st.floats(-1e300, 1e300)),
}


@given(name=st.sampled_from(ELEMENTWISE), dtype=st.sampled_from([np.float32, np.float64]),
       data=st.data())
def test_any_shape_and_magnitude_matches_hand_formulas(name, dtype, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=5))
    z = data.draw(hnp.arrays(dtype, shape, elements=element_sets[dtype]))
    da = data.draw(hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32)))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a, dz = forward_backward(name, z, da)
    assert a.shape == dz.shape == shape and a.dtype == dz.dtype == dtype
    assert_hand_values_and_derivatives(name, z, da, a, dz)


# -- gelu kernels: numba and NumPy twins --------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (7,), (3, 4, 5), (200_003,)])  # the last: several blocks
def test_gelu_kernels_twins_agree(dtype, shape):
    numba_kernels = pytest.importorskip("tinynn.ops.numba_kernels")
    rng = np.random.default_rng(1)
    z = np.asarray(rng.standard_normal(shape) * 10, dtype)
    da = np.asarray(rng.standard_normal(shape), dtype)
    pairs = [(numba_kernels.gelu(z), reference.gelu(z)),
             (numba_kernels.gelu_backward(z, da), reference.gelu_backward(z, da))]
    for ours, twin in pairs:
        assert ours.dtype == twin.dtype == dtype and ours.shape == twin.shape == shape
    # Both compute in float64 and round once to dtype: z Phi(z) with the same erfc (three
    # roundings a side); da (Phi(z) + z phi(z)) with erfc and exp from two libraries (eight a
    # side), judged at its terms' scale (Phi <= 1, |z phi| <= 1/4: they cancel at z = -0.75).
    assert_each_close(*pairs[0], depth=6, dtype=dtype, floor=SUBNORMAL[np.dtype(dtype)])
    assert_close(*pairs[1], depth=16, scale=1.25 * float(np.abs(da).max(initial=0.0)))
    assert "gelu" in ops.KERNELS and "gelu_backward" in ops.KERNELS


# -- the Layer contract and float64 gradient checks ---------------------------------------------
@pytest.mark.parametrize("name", [*ALL, "swish"])
@pytest.mark.parametrize("shape", [(5,), (3, 2, 2)])
def test_activation_layer_contract_and_gradients(name, shape):
    rng = np.random.default_rng(3)
    x = 2 * rng.standard_normal((3, *shape))
    x = np.where(np.abs(x) < 1e-3, 0.5, x)  # away from the kinks
    check_layer(L.Activation(name), shape, rng, x=x)


@given(units=st.integers(1, 5), n_in=st.integers(1, 5), batch=st.integers(1, 4),
       activation=st.sampled_from([*ALL, activations.gelu, activations.silu, activations.elu]),
       seed=st.integers(0, 2**32 - 1))
def test_dense_contract_and_gradients(units, n_in, batch, activation, seed):
    rng = np.random.default_rng(seed)
    layer = L.Dense(units, activation=activation)
    with floatx("float64"):
        layer.build((n_in,), rng)
    layer.params["bias"][...] = rng.standard_normal(units)
    x = 2 * rng.standard_normal((batch, n_in))
    if layer.activation.name in KINKED:
        assume(np.abs(layer.forward_logits(x)).min() >= 1e-3)
    check_layer(layer, (n_in,), rng, x=x)


@pytest.mark.parametrize("name", NEW)
def test_conv2d_gradients(name):
    rng = np.random.default_rng(5)
    layer = L.Conv2D(3, 3, padding="same", activation=name)
    with floatx("float64"):
        layer.build((5, 5, 2), rng)
    layer.params["bias"][...] = rng.standard_normal(3)
    x = rng.standard_normal((2, 5, 5, 2))
    if name in KINKED:
        assert np.abs(layer.forward_logits(x)).min() >= 1e-3
    check_layer(layer, (5, 5, 2), rng, x=x)


def test_only_activations_needing_the_input_cache_it(rng):
    for name, keys in (("gelu", {"a", "z", "x"}), ("silu", {"a", "z", "x"}),
                       ("softplus", {"a", "x"}), ("elu", {"a", "x"})):
        layer = L.Dense(2, activation=name)
        layer.build((3,), rng)
        layer.forward(np.ones((1, 3), np.float32), training=True)
        assert set(layer._cache) == keys, name
        layer.backward(np.ones((1, 2), np.float32))
        assert not layer.holds_cache


def test_dense_relu_keeps_the_fused_bias_relu_pass(rng, monkeypatch):
    calls = []
    fused = ops.bias_activation
    monkeypatch.setattr(ops, "bias_activation",
                        lambda z, bias, relu: calls.append(relu) or fused(z, bias, relu))
    monkeypatch.setattr(activations.ReLU, "forward", lambda self, z: pytest.fail("unfused"))
    layer = L.Dense(2, activation="relu")
    layer.build((3,), rng)
    layer.params["bias"][...] = [1, -1]
    np.testing.assert_array_equal(layer.forward(np.zeros((1, 3), np.float32)), [[1, 0]])
    assert calls == [True]


# -- identifiers --------------------------------------------------------------------------------
def test_get_maps_functions_names_and_instances():
    for name in ALL:
        function = getattr(activations, name)
        assert type(activations.get(function)) is type(activations.get(name))
        assert activations.get(function).name == name
    assert activations.get(activations.swish).name == activations.get("swish").name == "silu"
    gelu = activations.GELU()
    assert activations.get(gelu) is gelu
    assert L.Dense(2, activation=activations.gelu).get_config()["activation"] == "gelu"
    assert L.Activation(activations.swish).get_config()["activation"] == "silu"
    for foreign in (np.tanh, lambda x: x, "GELU", 3):
        with pytest.raises(ArgumentError, match=r"unknown activation .*: expected one of "
                                                r"\[.*'gelu'.*'swish'.*\], None"):
            activations.get(foreign)


#: Keras's object for an identifier as a name comparable with tinynn's (None: refused).
IDENTITY = {
    "activations": lambda obj: getattr(obj, "__name__", None) or obj.name,
    "initializers": lambda obj: type(obj).__name__,
    "losses": lambda obj: getattr(obj, "name", None) or obj.__name__,
    "optimizers": lambda obj: type(obj).__name__,
}
#: What tinynn has, by that name.
TINYNN_HAS = {
    "activations": set(ALL),
    "initializers": {"Zeros", "Ones", "GlorotUniform", "HeUniform", "HeNormal"},
    "losses": {"sparse_categorical_crossentropy", "categorical_crossentropy",
               "mean_squared_error"},
    "optimizers": {"SGD", "Adam", "RMSprop", "AdamW"},
}
CANDIDATES = {
    "activations": ["relu", "ReLU", "Relu", "swish", "Swish", "silu", "SiLU", "gelu", "GELU",
                    "leaky_relu", "LeakyReLU", "elu", "ELU", "selu", "softplus", "Softplus",
                    "sigmoid", "tanh", "softmax", "linear", "Linear", "hard_swish", "mish",
                    "keras.activations.relu", " relu"],
    "initializers": ["zeros", "Zeros", "zero", "ZEROS", "Zero", "ones", "Ones", "one",
                     "glorot_uniform", "GlorotUniform", "glorotuniform", "Glorot_Uniform",
                     "he_uniform", "HeUniform", "he_normal", "HeNormal", "heNormal",
                     "glorot_normal", "keras.initializers.Zeros", "zeros "],
    "losses": ["mse", "MSE", "Mse", "mean_squared_error", "MeanSquaredError",
               "meansquarederror", "sparse_categorical_crossentropy",
               "SparseCategoricalCrossentropy", "Sparse_Categorical_Crossentropy",
               "categorical_crossentropy", "CategoricalCrossentropy",
               "CATEGORICAL_CROSSENTROPY", "crossentropy", "mae", "keras.losses.MeanSquaredError"],
    "optimizers": ["adam", "Adam", "ADAM", "aDaM", "sgd", "SGD", "Sgd", "rmsprop", "RMSprop",
                   "adamw", "AdamW", "adagrad", "adam ", "keras.optimizers.Adam", "Adam>"],
}


def keras_identity(keras, module: str, name: str):
    try:
        return IDENTITY[module](getattr(keras, module).get(name))
    except ValueError:
        return None


@pytest.mark.parametrize("module, name", [(module, name) for module, names in CANDIDATES.items()
                                          for name in names])
def test_get_accepts_exactly_the_strings_keras_accepts(keras, module, name):
    expected = keras_identity(keras, module, name)
    get = getattr(tn, module).get
    if expected in TINYNN_HAS[module]:
        assert IDENTITY[module](get(name)) == expected
        return
    kind = {"activations": "activation", "initializers": "initializer", "losses": "loss",
            "optimizers": "optimizer"}[module]
    with pytest.raises(ArgumentError, match=rf"unknown {kind} {re.escape(repr(name))}: "
                                            r"expected one of \[.+\]"):
        get(name)


def test_identifier_candidates_hold_accepted_and_refused_names(keras):
    for module, names in CANDIDATES.items():
        accepted = [keras_identity(keras, module, name) in TINYNN_HAS[module] for name in names]
        assert any(accepted) and not all(accepted), module


# -- Keras parity: models -----------------------------------------------------------------------
def random_weights(model, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()]


def parity_pair(keras, stack, input_shape: tuple, seed: int = 0) -> tuple:
    """The same model in Keras and tinynn, with the same random weights (biases included)."""
    theirs = keras.Sequential([keras.Input(input_shape), *stack(keras.layers)])
    ours = tn.Sequential([L.Input(input_shape), *stack(L)])
    ours.build()
    theirs.set_weights(random_weights(theirs, seed))
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def check_prediction_and_adam_step(keras, theirs, ours, x, y) -> None:
    assert_close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                 depth=rounding_depth(ours))
    theirs.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    ours.compile(tn.optimizers.Adam(), "sparse_categorical_crossentropy")
    before = ours.get_weights()
    keras_loss = theirs.train_on_batch(x, y)
    loss = ours.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    depth = rounding_depth(ours, batch=len(x), steps=1)
    assert_close(loss.history["loss"][0], float(np.ravel(keras_loss)[0]), depth=depth + len(x),
                 dtype=np.float32)  # + the mean's sum
    for weight, keras_weight, start in zip(ours.get_weights(), theirs.get_weights(), before,
                                           strict=True):
        assert_close(weight, keras_weight, depth=depth)
        # the step was taken (Adam: about the learning rate, 1e-3), by far more than the bound
        assert np.abs(weight - start).max() > 5 * rounding_bound(start, np.float32, depth)


@pytest.mark.parametrize("name", [*NEW, "swish"])
def test_dense_model_predicts_and_steps_as_keras(keras, name):
    def stack(layers):
        return [layers.Dense(16, activation=name), layers.Dense(16, activation=name),
                layers.Dense(3, activation="softmax")]
    theirs, ours = parity_pair(keras, stack, (6,))
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (32, 6)).astype(np.float32)
    check_prediction_and_adam_step(keras, theirs, ours, x, rng.integers(0, 3, 32))


@pytest.mark.parametrize("name", ["gelu", "silu", "selu"])
def test_conv2d_model_predicts_and_steps_as_keras(keras, name):
    def stack(layers):
        return [layers.Conv2D(4, 3, padding="same", activation=name), layers.Flatten(),
                layers.Dense(3, activation="softmax")]
    theirs, ours = parity_pair(keras, stack, (6, 6, 2))
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (16, 6, 6, 2)).astype(np.float32)
    check_prediction_and_adam_step(keras, theirs, ours, x, rng.integers(0, 3, 16))


# -- files --------------------------------------------------------------------------------------
def mixed_stack(layers, functions) -> list:
    """Every new activation, as names and as functions (``keras.activations`` or
    ``tinynn.activations``), in Dense and Activation layers."""
    return [layers.Dense(8, activation="elu"), layers.Dense(8, activation="selu"),
            layers.Dense(8, activation=functions.gelu), layers.Dense(8, activation="swish"),
            layers.Activation("softplus"), layers.Dense(8, activation=functions.leaky_relu),
            layers.Activation(functions.silu), layers.Dense(3, activation="softmax")]


WRITTEN = ["elu", "selu", "gelu", "silu", "softplus", "leaky_relu", "silu", "softmax"]
X = np.random.default_rng(7).normal(0, 2, (20, 6)).astype(np.float32)
Y = np.arange(20) % 3


def activation_names(model) -> list:
    return [layer.activation.name for layer in model.layers]


def test_keras_file_with_these_activations_loads_in_tinynn(keras, tmp_path):
    model = keras.Sequential([keras.Input((6,)), *mixed_stack(keras.layers, keras.activations)])
    model.set_weights(random_weights(model, 3))
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    model.train_on_batch(X, Y)  # with an optimizer state, which tinynn loads too
    model.save(tmp_path / "m.keras")
    loaded = tn.models.load_model(tmp_path / "m.keras")
    assert activation_names(loaded) == WRITTEN
    assert_close(loaded.predict(X, verbose=0), model.predict(X, verbose=0),
                 depth=rounding_depth(loaded))


def test_keras2_file_naming_swish_loads_in_tinynn(tf_keras, tmp_path):
    names = ["elu", "selu", "gelu", "swish", "softplus", "leaky_relu"]  # Keras 2 writes "swish"
    model = tf_keras.Sequential([tf_keras.layers.InputLayer((6,)),
                                 *[tf_keras.layers.Dense(8, activation=name) for name in names],
                                 tf_keras.layers.Dense(3, activation="softmax")])
    model.set_weights(random_weights(model, 4))
    model.save(tmp_path / "m.keras")
    loaded = tn.models.load_model(tmp_path / "m.keras")
    assert activation_names(loaded) == [*WRITTEN[:3], "silu", "softplus", "leaky_relu", "softmax"]
    assert_close(loaded.predict(X, verbose=0), model.predict(X, verbose=0),
                 depth=rounding_depth(loaded))


def test_tinynn_file_with_these_activations_loads_in_keras(keras, tmp_path):
    model = tn.Sequential([L.Input((6,)), *mixed_stack(L, activations)], seed=0)
    model.compile(tn.optimizers.Adam(), "sparse_categorical_crossentropy")
    model.fit(X, Y, batch_size=10, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    served = keras.saving.load_model(tmp_path / "m.keras")
    assert [layer.get_config()["activation"] for layer in served.layers] == WRITTEN
    assert_close(served.predict(X, verbose=0), model.predict(X, verbose=0),
                 depth=rounding_depth(model))
    twin = keras.Sequential([keras.Input((6,)), *mixed_stack(keras.layers, keras.activations)])
    assert [layer.get_config()["activation"] for layer in twin.layers] == WRITTEN


def test_names_and_functions_round_trip_through_npz(tmp_path):
    model = tn.Sequential([L.Input((6,)), *mixed_stack(L, activations)], seed=1)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(X, Y, batch_size=10, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = tn.models.load_model(tmp_path / "m.npz")
    assert activation_names(loaded) == WRITTEN
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))
