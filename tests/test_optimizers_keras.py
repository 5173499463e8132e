"""RMSprop, AdamW and AMSGrad: Keras's formulas by hand, numba kernels vs NumPy twins (bitwise),
updates of one float32 variable bitwise equal to Keras 3's (TensorFlow), training steps against
Keras, optimizer state through ``.keras`` files both ways (and Keras 2's files) and through
tinynn's ``.npz``, argument checks.

Training against Keras (float32) is judged per tensor at its own scale (its largest entry):
weights, optimizer slots and losses after s steps may differ by 2 s R float32 roundings of that
scale (``keras_depth``), R the roundings of one step along a weight's longest chain (Higham's n
for an n-term sum: the forward and backward dot products and the weight gradient's sum over the
batch; R = 56 for the MLP, 2733 for the CNN), once for tinynn and once for Keras, whose BLAS may
block and order its sums differently on another CPU. Only that summation order may differ:
shapes, dtypes, iteration counts and the bitwise equalities above (the updates of one variable,
state read from files, numba against NumPy) may not. Measured: at most 7 roundings for the MLP's
weights, 13 for the CNN's, 20 for the slots. Every variant is first shown to move the weights,
and to differ from its neighbours by more than 20 times the MLP's bound, so a missing momentum,
centring, decay or AMSGrad term fails the comparison.
The learning rates keep 5 steps clear of chaotic amplification (a ReLU input within rounding of
zero switching a unit, which Adam turns into a full step): Adam with AMSGrad at 0.01 on the CNN
drifted to 3e-5 by step 5 that way; at 0.003 it stays at 6e-8.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynn as tn
from tinynn.errors import ArgumentError, UnsupportedKerasFeatureError
from tinynn.ops import reference
from tinynn.testing import assert_close, rounding_bound

numba_kernels = pytest.importorskip("tinynn.ops.numba_kernels")
opt = tn.optimizers
VARIANTS = {
    "rmsprop": lambda: opt.RMSprop(),
    "rmsprop-momentum": lambda: opt.RMSprop(momentum=0.9),
    "rmsprop-centered": lambda: opt.RMSprop(0.002, rho=0.8, centered=True),
    "rmsprop-centered-momentum": lambda: opt.RMSprop(momentum=0.5, centered=True, epsilon=1e-6),
    "adamw": lambda: opt.AdamW(0.01, weight_decay=0.5),
    "adamw-amsgrad": lambda: opt.AdamW(0.01, weight_decay=0.5, beta_2=0.5, amsgrad=True),
    "adam-amsgrad": lambda: opt.Adam(0.003, beta_2=0.5, amsgrad=True),
}
KERAS_SLOT_NAMES = {"m": "momentum", "v": "velocity", "v_hat": "velocity_hat",
                    "velocity": "velocity", "momentum": "momentum",
                    "average_gradient": "average_gradient"}


def built(optimizer, params):
    optimizer.build(params, {"w": (slice(0, params.size), params.shape)})
    return optimizer


def steps(optimizer, w0, gradients, dtype=np.float64):
    """Parameters after applying ``gradients`` (one list per step) from ``w0``."""
    params = np.array(w0, dtype=dtype)
    built(optimizer, params)
    for g in gradients:
        optimizer.apply(params, np.array(g, dtype=dtype))
    return params


# -- formulas by hand -----------------------------------------------------------------------------
def test_rmsprop_reproduces_the_keras_docstring_example():
    # keras.optimizers.RMSprop(0.1) on loss var1^2 / 2 from var1 = 10 gives 9.683772.
    params = steps(opt.RMSprop(learning_rate=0.1), [10.0], [[10.0]], np.float32)
    # a few float32 roundings of a step 30 times smaller than the result, the final subtraction
    # and the docstring's 7 printed digits (0.2 eps here)
    assert_close(params[0], 9.683772, depth=4, dtype=np.float32)


def test_rmsprop_first_steps_by_hand():
    lr, g1, g2 = 0.01, 0.5, -0.25
    v1, v2 = 0.1 * g1**2, 0.9 * 0.1 * g1**2 + 0.1 * g2**2
    plain = [1 - lr * g1 / math.sqrt(v1 + 1e-7)]
    plain.append(plain[0] - lr * g2 / math.sqrt(v2 + 1e-7))
    # each side (kernel, hand) rounds ~8 times per step (1 - rho, squares, sums, sqrt,
    # division, subtraction), over two steps
    depth = 2 * 2 * 8
    assert_close(steps(opt.RMSprop(lr), [1.0], [[g1], [g2]])[0], plain[1], depth=depth)

    s1 = lr * g1 / math.sqrt(v1 + 1e-7)
    s2 = 0.5 * s1 + lr * g2 / math.sqrt(v2 + 1e-7)
    momentum = steps(opt.RMSprop(lr, momentum=0.5), [1.0], [[g1], [g2]])[0]
    assert_close(momentum, 1 - s1 - s2, depth=depth)

    a1, a2 = 0.1 * g1, 0.9 * 0.1 * g1 + 0.1 * g2
    centered = 1 - lr * g1 / math.sqrt(v1 - a1**2 + 1e-7) - lr * g2 / math.sqrt(v2 - a2**2 + 1e-7)
    # centring subtracts a^2 = 0.1 v from v: no cancellation to speak of
    assert_close(steps(opt.RMSprop(lr, centered=True), [1.0], [[g1], [g2]])[0], centered,
                 depth=depth)


def test_rmsprop_state_is_keras_slots_in_keras_order():
    optimizer = opt.RMSprop(momentum=0.5, centered=True)
    params = steps(optimizer, [1.0, 2.0], [[0.5, -1.0]])
    assert optimizer.slots == ("velocity", "momentum", "average_gradient")
    # (1 - rho) * g (* g): 1 - 0.9 grows 0.9's rounding (eps / 2) 10 times, then 2 products
    assert_close(optimizer.state["velocity"], [0.025, 0.1], depth=8)
    assert_close(optimizer.state["average_gradient"], [0.05, -0.1], depth=8)
    # params = [1, 2] - momentum rounds once at the weights' scale (2); [1, 2] - params is exact
    assert_close(optimizer.state["momentum"], [1.0, 2.0] - params, depth=2, scale=2.0)
    assert opt.RMSprop().slots == ("velocity",)
    assert opt.RMSprop(momentum=0.5).slots == ("velocity", "momentum")


def test_adamw_decays_every_weight_before_the_adam_step():
    lr, wd, g = 0.01, 0.1, 0.5
    decayed = 2.0 - 2.0 * wd * lr  # 1.998
    alpha = lr * math.sqrt(1 - 0.999) / (1 - 0.9)
    m, v = 0.1 * g, 0.001 * g * g
    expected = decayed - alpha * m / (math.sqrt(v) + 1e-7)
    # each side rounds ~16 times in one AdamW step (alpha's powers, sqrt and divisions, the
    # decay, m, v, sqrt, division, subtractions)
    assert_close(steps(opt.AdamW(lr, weight_decay=wd), [2.0], [[g]])[0], expected,
                 depth=2 * 16)
    # a zero gradient leaves only the decay: w - w * wd * lr, 3 roundings, and 1.998's
    assert_close(steps(opt.AdamW(lr, weight_decay=wd), [2.0], [[0.0]])[0], 1.998, depth=4)


@pytest.mark.parametrize("make", [lambda: opt.Adam(0.01, beta_2=0.5, amsgrad=True),
                                  lambda: opt.AdamW(0.01, weight_decay=0.0, beta_2=0.5,
                                                  amsgrad=True)])
def test_amsgrad_steps_with_the_largest_second_moment_so_far(make):
    lr, g1, g2 = 0.01, 1.0, 0.1
    m1, v1 = 0.1 * g1, 0.5 * g1**2
    m2, v2 = 0.9 * m1 + 0.1 * g2, 0.5 * v1 + 0.5 * g2**2  # v2 = 0.255 < v_hat = 0.5
    w1 = 1 - lr * math.sqrt(1 - 0.5) / (1 - 0.9) * m1 / (math.sqrt(v1) + 1e-7)
    w2 = w1 - lr * math.sqrt(1 - 0.25) / (1 - 0.81) * m2 / (math.sqrt(v1) + 1e-7)
    optimizer = make()
    depth = 2 * 2 * 16  # each side rounds ~16 times per Adam step (see above), two steps
    assert_close(steps(optimizer, [1.0], [[g1], [g2]])[0], w2, depth=depth)
    assert optimizer.slots == ("m", "v", "v_hat")
    # two moving averages of squares, 3 roundings each, on each side
    assert_close([optimizer.state["v"][0], optimizer.state["v_hat"][0]], [v2, v1],
                 depth=2 * 2 * 3)
    plain = steps(opt.Adam(0.01, beta_2=0.5), [1.0], [[g1], [g2]])[0]
    # without AMSGrad the second step is larger: far outside the bound w2 was held to
    assert w2 - plain > 20 * rounding_bound(w2, np.float64, depth)


# -- kernels: numba vs NumPy ----------------------------------------------------------------------
def random_state(rng, size, dtype, positive=False):
    """Normal values with a quarter of them subnormal (and positive if asked)."""
    values = rng.standard_normal(size).astype(dtype)
    tiny = np.finfo(dtype).tiny
    subnormal = rng.random(size) < 0.25
    values[subnormal] = (rng.random(subnormal.sum()) * tiny).astype(dtype)
    return np.abs(values) if positive else values


def run_twins(kernel, buffers, scalars, steps_count, seed, dtype):
    """Apply ``kernel`` from both modules to copies of ``buffers`` (params first, then state)
    with the same gradients (a third of them exactly 0); return both results."""
    results = []
    for module in (reference, numba_kernels):
        copies = [b.copy() for b in buffers]
        grads_rng = np.random.default_rng(seed)
        for _ in range(steps_count):
            grads = grads_rng.standard_normal(buffers[0].size).astype(dtype)
            grads[grads_rng.random(grads.size) < 1 / 3] = 0
            getattr(module, kernel)(copies[0], grads, *copies[1:], *scalars)
        results.append(copies)
    return results


def assert_twins_equal_and_state_normal(results, dtype):
    tiny = np.finfo(dtype).tiny
    for ours, fast in zip(*results):
        np.testing.assert_array_equal(fast, ours)
    for state in results[1][1:]:
        assert not np.any((state != 0) & (np.abs(state) < tiny))


@given(size=st.integers(1, 300), seed=st.integers(0, 2**32 - 1), steps_count=st.integers(1, 3),
       dtype=st.sampled_from([np.float32, np.float64]), momentum=st.sampled_from([0.0, 0.9]),
       centered=st.booleans())
def test_rmsprop_update_numba_equals_numpy_reference(size, seed, steps_count, dtype, momentum,
                                                     centered):
    rng = np.random.default_rng(seed)
    average = random_state(rng, size, dtype) * dtype(0.1) if centered else np.zeros(0, dtype)
    velocity = random_state(rng, size, dtype, positive=True)
    if centered:
        velocity += average * average
    momentums = random_state(rng, size, dtype) if momentum else np.zeros(0, dtype)
    buffers = [rng.standard_normal(size).astype(dtype), velocity, momentums, average]
    scalars = (dtype(0.003), dtype(0.9), dtype(1 - 0.9), dtype(momentum), dtype(1e-7), centered)
    results = run_twins("rmsprop_update", buffers, scalars, steps_count, seed, dtype)
    assert_twins_equal_and_state_normal(results, dtype)


@given(size=st.integers(1, 300), seed=st.integers(0, 2**32 - 1), steps_count=st.integers(1, 3),
       dtype=st.sampled_from([np.float32, np.float64]), amsgrad=st.booleans(),
       weight_decay=st.sampled_from([0.0, 0.004, 0.5]))
def test_adamw_update_numba_equals_numpy_reference(size, seed, steps_count, dtype, amsgrad,
                                                   weight_decay):
    rng = np.random.default_rng(seed)
    # v_hat, a maximum of flushed v, never decays into subnormals
    v_hat = np.abs(rng.standard_normal(size if amsgrad else 0).astype(dtype))
    buffers = [rng.standard_normal(size).astype(dtype), random_state(rng, size, dtype),
               random_state(rng, size, dtype, positive=True), v_hat]
    scalars = (dtype(weight_decay), dtype(0.01), dtype(0.003), dtype(1 - 0.9),
               dtype(1 - 0.999), dtype(1e-7), amsgrad)
    results = run_twins("adamw_update", buffers, scalars, steps_count, seed, dtype)
    assert_twins_equal_and_state_normal(results, dtype)


def test_kernels_agree_across_parallel_blocks_and_flush_decayed_state():
    size = 3 * numba_kernels._BLOCK + 5
    rng = np.random.default_rng(0)
    tiny = np.finfo(np.float32).tiny
    velocity = np.full(size, 1.05 * tiny, np.float32)  # one step with g = 0: 0.945 tiny
    buffers = [rng.standard_normal(size).astype(np.float32), velocity, velocity.copy(),
               np.zeros(0, np.float32)]
    scalars = (np.float32(0.001), np.float32(0.9), np.float32(0.1), np.float32(0.9),
               np.float32(1e-7), False)
    results = run_twins("rmsprop_update", buffers, scalars, 1, 0, np.float32)
    assert_twins_equal_and_state_normal(results, np.float32)
    zero_gradient = results[1][1] == 0
    assert 0.2 < zero_gradient.mean() < 0.5  # the state of every zero gradient was flushed


def test_new_kernels_dispatch_to_numba():
    assert tn.ops.implementation("rmsprop_update") == "numba"
    assert tn.ops.implementation("adamw_update") == "numba"


# -- names, configs and arguments -----------------------------------------------------------------
def test_compile_by_name_gives_keras_defaults():
    for name, cls in [("rmsprop", opt.RMSprop), ("RMSprop", opt.RMSprop), ("adamw", opt.AdamW),
                      ("AdamW", opt.AdamW)]:
        model = tn.Sequential([tn.layers.Input((2,)), tn.layers.Dense(1)])
        model.compile(name, "mse")
        assert type(model.optimizer) is cls
    assert opt.RMSprop().get_config() == {"name": "rmsprop", "learning_rate": 0.001, "rho": 0.9,
                                        "momentum": 0.0, "epsilon": 1e-7, "centered": False}
    assert opt.AdamW().get_config() == {"name": "adamw", "learning_rate": 0.001,
                                      "weight_decay": 0.004, "beta_1": 0.9, "beta_2": 0.999,
                                      "epsilon": 1e-7, "amsgrad": False}
    assert opt.Adam().get_config()["amsgrad"] is False


@pytest.mark.parametrize("cls", ["RMSprop", "AdamW", "Adam"])
def test_defaults_and_argument_names_are_keras(keras, cls):
    ours = getattr(opt, cls)().get_config()
    theirs = getattr(keras.optimizers, cls)().get_config()
    # Keras keeps the rate in a float32 variable: one rounding (at most eps / 2), twice over
    assert_close(ours.pop("learning_rate"), theirs["learning_rate"], depth=2, dtype=np.float32)
    del ours["name"]
    assert ours == {key: theirs[key] for key in ours}


@pytest.mark.parametrize("make, match", [
    (lambda: opt.RMSprop(learning_rate=0), r"RMSprop learning_rate expected a finite number in "
                                         r"\(0, inf\], got 0"),
    (lambda: opt.RMSprop(rho=1.0), r"RMSprop rho expected a finite number in \[0, 1\), got 1.0"),
    (lambda: opt.RMSprop(rho=float("nan")), "RMSprop rho expected .* got nan"),
    (lambda: opt.RMSprop(momentum=-0.1), r"RMSprop momentum expected .*\[0, 1\), got -0.1"),
    (lambda: opt.RMSprop(epsilon=0.0), r"RMSprop epsilon expected .*\(0, inf\], got 0.0"),
    (lambda: opt.RMSprop(centered="yes"), "RMSprop centered expected True or False, got 'yes'"),
    (lambda: opt.AdamW(weight_decay=None), r"AdamW weight_decay expected a finite number in "
                                         r"\[0, inf\], got None"),
    (lambda: opt.AdamW(weight_decay=-0.1), "AdamW weight_decay expected .* got -0.1"),
    (lambda: opt.AdamW(beta_1=1.0), r"AdamW beta_1 expected .*\[0, 1\), got 1.0"),
    (lambda: opt.AdamW(beta_2=-0.5), "AdamW beta_2 expected .* got -0.5"),
    (lambda: opt.AdamW(epsilon=-1e-7), "AdamW epsilon expected .* got -1e-07"),
    (lambda: opt.AdamW(amsgrad=1), "AdamW amsgrad expected True or False, got 1"),
    (lambda: opt.Adam(amsgrad=None), "Adam amsgrad expected True or False, got None"),
    (lambda: opt.SGD(nesterov="no"), "SGD nesterov expected True or False, got 'no'"),
])
def test_bad_arguments_raise_argument_errors_naming_them(make, match):
    with pytest.raises(ArgumentError, match=match):
        make()


# -- Keras parity: training steps -----------------------------------------------------------------
INPUTS = {"dense": (8,), "cnn": (12, 12, 1)}


def stack(lib, arch: str) -> list:
    """A small MLP, or a small CNN shaped like Task 3's, in ``tinynn.layers`` or Keras."""
    if arch == "dense":
        return [lib.Dense(16, activation="relu"), lib.Dense(3, activation="softmax")]
    return [lib.Conv2D(4, 3, padding="same", activation="relu"), lib.MaxPooling2D(2),
            lib.Conv2D(8, 5, padding="same", activation="relu"), lib.MaxPooling2D(2),
            lib.Flatten(), lib.Dense(16, activation="relu"), lib.Dense(3, activation="softmax")]


def tinynn_model(arch: str, optimizer, weights=None) -> tn.Sequential:
    model = tn.Sequential([tn.layers.Input(INPUTS[arch]), *stack(tn.layers, arch)], seed=0)
    model.compile(optimizer, "sparse_categorical_crossentropy")
    model.build()
    if weights is not None:
        model.set_weights(weights)
    return model


def keras_optimizer(keras, optimizer):
    """The Keras optimizer of the same class built from tinynn's config."""
    config = optimizer.get_config()
    del config["name"]
    return getattr(keras.optimizers, type(optimizer).__name__)(**config)


def keras_twin(keras, arch: str, optimizer, compiled=True):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input(INPUTS[arch]), *stack(keras.layers, arch)])
    if compiled:
        model.compile(keras_optimizer(keras, optimizer), "sparse_categorical_crossentropy")
    return model


BITWISE = {**VARIANTS, "adam": lambda: opt.Adam(0.01), "sgd": lambda: opt.SGD(0.1),
           "sgd-nesterov": lambda: opt.SGD(0.1, momentum=0.9, nesterov=True)}


@pytest.mark.parametrize("variant", BITWISE)
def test_updates_are_bitwise_keras_on_a_float32_variable(keras, variant):
    rng = np.random.default_rng(0)
    start = rng.standard_normal(1000).astype(np.float32)
    gradients = [rng.standard_normal(1000).astype(np.float32) * 0.5**k for k in range(6)]
    gradients[2][:100] = 0  # state decaying without a gradient
    ours = BITWISE[variant]()
    theirs, variable = keras_optimizer(keras, ours), keras.Variable(start)
    params = steps(ours, start, gradients, np.float32)
    for g in gradients:
        theirs.apply([g], [variable])
    np.testing.assert_array_equal(params, variable.numpy())
    assert np.abs(params - start).max() > 1e-3


def batches(arch: str, count: int, seed=0) -> list:
    """``count`` batches of 16 with shrinking inputs (so the second moment decreases and
    AMSGrad's maximum matters)."""
    rng = np.random.default_rng(seed)
    return [((rng.standard_normal((16, *INPUTS[arch])) * 0.6**k).astype(np.float32),
             rng.integers(0, 3, 16)) for k in range(count)]


def train(model, data) -> None:
    for x, y in data:
        model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)


#: float32 roundings behind one weight in one training step, along its longest chain (Higham: n
#: for an n-term sum): the forward dot products, softmax's 3-term sum, the backward input
#: gradients, the weight gradient's sum over the batch (for the CNN's first kernel over 16 images
#: x 144 positions) and about 10 in the optimizer's update.
STEP_ROUNDINGS = {"dense": 8 + 16 + 3 + 3 + 16 + 10,
                  "cnn": 9 + 100 + 72 + 16 + 3 + 3 + 16 + 200 + 16 * 144 + 10}


def keras_depth(arch: str, steps_count: int) -> int:
    """The depth for weights, optimizer slots or a loss after ``steps_count`` training steps
    computed twice, by tinynn and by Keras."""
    return 2 * steps_count * STEP_ROUNDINGS[arch]


def assert_same(theirs: list, ours: list, depth: int) -> None:
    """Each weight tensor within ``depth`` float32 roundings at its own scale."""
    assert len(theirs) == len(ours)
    for keras_weight, weight in zip(theirs, ours):
        assert_close(weight, keras_weight, depth=depth, dtype=np.float32)


def differ_beyond_the_bound(a: list, b: list, depth: int) -> bool:
    """Whether weights ``a`` and ``b`` differ, in some tensor, by 20 times what ``assert_same``
    allows at ``depth``: then either in place of the other fails the comparison."""
    return any(np.abs(x - y).max() > 20 * rounding_bound(
        x, np.float32, depth, scale=max(np.abs(x).max(), np.abs(y).max())) for x, y in zip(a, b))


def test_every_variant_moves_the_weights_differently():
    data = batches("dense", 5)
    initial = tinynn_model("dense", "sgd")
    start = initial.get_weights()
    final = {}
    depth = keras_depth("dense", 5)  # the bound test_one_and_five_steps_give_keras_weights uses
    for name, make in VARIANTS.items():
        model = tinynn_model("dense", make(), start)
        train(model, data)
        final[name] = model.get_weights()
        assert np.abs(model.parameters - initial.parameters).max() > 1e-3
    names = list(final)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert differ_beyond_the_bound(final[a], final[b], depth), (a, b)
    for variant, plain in [("adamw", opt.Adam(0.01)),
                           ("adam-amsgrad", opt.Adam(0.003, beta_2=0.5))]:
        model = tinynn_model("dense", plain, start)
        train(model, data)
        assert differ_beyond_the_bound(final[variant], model.get_weights(), depth), variant


@pytest.mark.parametrize("arch", ["dense", "cnn"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_one_and_five_steps_give_keras_weights(keras, arch, variant):
    theirs = keras_twin(keras, arch, VARIANTS[variant]())
    ours = tinynn_model(arch, VARIANTS[variant](), theirs.get_weights())
    data = batches(arch, 5)
    for step, (x, y) in enumerate(data):
        keras_loss = float(theirs.train_on_batch(x, y))
        loss = ours.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history["loss"]
        # the loss of step k: the weights after k steps, and one more forward pass
        assert_close(loss[0], keras_loss, depth=keras_depth(arch, step + 1), dtype=np.float32)
        if step in (0, 4):
            assert_same(theirs.get_weights(), ours.get_weights(), keras_depth(arch, step + 1))
    assert ours.optimizer.iterations == int(theirs.optimizer.iterations) == 5


# -- optimizer state in files ---------------------------------------------------------------------
def keras_order(model) -> list[tuple[str, str]]:
    """(parameter, slot) pairs in the order Keras stores them: Adam's m and v interleaved per
    parameter, every other slot parameter after parameter, slot after slot."""
    slots = model.optimizer.slots
    groups = [(slot,) for slot in slots]
    if slots[:2] == ("m", "v"):
        groups[:2] = [("m", "v")]
    return [(name, slot) for group in groups for name in model.layout for slot in group]


def assert_keras_holds_our_state(keras_optimizer, model) -> None:
    """Keras's optimizer variables (iteration, learning rate, slots) equal tinynn's state."""
    variables = keras_optimizer.variables
    assert int(variables[0].numpy()) == model.optimizer.iterations
    # the float32 variable holds the rate rounded once (at most eps / 2), twice over
    assert_close(float(variables[1].numpy()), model.optimizer.learning_rate, depth=2,
                 dtype=np.float32)
    order = keras_order(model)
    assert len(variables) == 2 + len(order)
    for variable, (name, slot) in zip(variables[2:], order):
        assert variable.path.endswith(f"{name.split('/')[1]}_{KERAS_SLOT_NAMES[slot]}")
        np.testing.assert_array_equal(variable.numpy(), model.optimizer.state_for(name)[slot])


def assert_keras_holds_our_state_close(keras_optimizer, model, depth: int) -> None:
    """Each slot within ``depth`` float32 roundings at its own scale (the largest entry of that
    slot for that parameter): its entries near zero are judged by their neighbours' rounding."""
    assert int(keras_optimizer.variables[0].numpy()) == model.optimizer.iterations
    for variable, (name, slot) in zip(keras_optimizer.variables[2:], keras_order(model)):
        assert_close(variable.numpy(), model.optimizer.state_for(name)[slot], depth=depth,
                     err_msg=f"{name} {slot}")


@pytest.mark.parametrize("variant", VARIANTS)
def test_keras_loads_tinynn_optimizer_state_and_trains_on_identically(keras, tmp_path, variant):
    model = tinynn_model("cnn", VARIANTS[variant]())
    data = batches("cnn", 5)
    train(model, data[:3])
    model.save(tmp_path / "m.keras")
    served = keras.saving.load_model(tmp_path / "m.keras")
    assert type(served.optimizer).__name__ == type(model.optimizer).__name__
    config = served.optimizer.get_config()
    for key, value in model.optimizer.get_config().items():
        if key not in ("name", "learning_rate"):
            assert config[key] == value
    assert_keras_holds_our_state(served.optimizer, model)
    for x, y in data[3:]:
        served.train_on_batch(x, y)
    train(model, data[3:])
    # the first 3 steps are shared (Keras starts from tinynn's exact state): 2 steps apart
    assert_same(served.get_weights(), model.get_weights(), keras_depth("cnn", 2))
    assert_keras_holds_our_state_close(served.optimizer, model, keras_depth("cnn", 2))


@pytest.mark.parametrize("variant", VARIANTS)
def test_tinynn_loads_keras_optimizer_state_and_trains_on_identically(keras, tmp_path, variant):
    theirs = keras_twin(keras, "cnn", VARIANTS[variant]())
    data = batches("cnn", 5)
    for x, y in data[:3]:
        theirs.train_on_batch(x, y)
    theirs.save(tmp_path / "k.keras")
    loaded = tn.models.load_model(tmp_path / "k.keras")
    expected = VARIANTS[variant]().get_config()
    config = loaded.optimizer.get_config()
    assert type(loaded.optimizer) is type(VARIANTS[variant]())
    # read from Keras's float32 variable: one rounding (at most eps / 2), twice over
    assert_close(config.pop("learning_rate"), expected.pop("learning_rate"), depth=2,
                 dtype=np.float32)
    assert {k: v for k, v in config.items() if k != "name"} == {
        k: v for k, v in expected.items() if k != "name"}
    assert_keras_holds_our_state(theirs.optimizer, loaded)
    for x, y in data[3:]:
        theirs.train_on_batch(x, y)
    train(loaded, data[3:])
    assert_same(theirs.get_weights(), loaded.get_weights(), keras_depth("cnn", 2))  # 2 steps apart


def test_keras_weight_decay_on_rmsprop_is_named_as_unsupported(keras, tmp_path):
    theirs = keras_twin(keras, "dense", None, compiled=False)
    theirs.compile(keras.optimizers.RMSprop(weight_decay=0.1), "sparse_categorical_crossentropy")
    theirs.save(tmp_path / "k.keras")
    with pytest.raises(UnsupportedKerasFeatureError, match="RMSprop optimizer argument "
                                                           "weight_decay=0.1"):
        tn.models.load_model(tmp_path / "k.keras")


@pytest.mark.parametrize("variant", VARIANTS)
def test_native_files_resume_training_bitwise(tmp_path, variant):
    model = tinynn_model("dense", VARIANTS[variant]())
    data = batches("dense", 5)
    train(model, data[:2])
    model.save(tmp_path / "m.npz")
    loaded = tn.models.load_model(tmp_path / "m.npz")
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    train(model, data[2:])
    train(loaded, data[2:])
    np.testing.assert_array_equal(loaded.parameters, model.parameters)
    assert loaded.optimizer.slots == model.optimizer.slots
    for slot in model.optimizer.slots:
        np.testing.assert_array_equal(loaded.optimizer.state[slot], model.optimizer.state[slot])
    assert loaded.optimizer.iterations == model.optimizer.iterations == 5


KERAS2_SLOT_NAMES = {"m": "m", "v": "v", "v_hat": "vhat", "velocity": "velocity",
                     "momentum": "momentum", "average_gradient": "average_gradient"}


@pytest.mark.parametrize("name", ["m.keras", "m.h5"])
@pytest.mark.parametrize("variant", ["rmsprop-centered-momentum", "adamw-amsgrad"])
def test_keras2_files_load_with_their_optimizer_state(tmp_path, tf_keras, name, variant):
    ours = VARIANTS[variant]()
    config = ours.get_config()
    del config["name"]
    optimizer = getattr(tf_keras.optimizers, type(ours).__name__)(**config)
    model = tf_keras.Sequential([tf_keras.layers.InputLayer(INPUTS["dense"]),
                                 *stack(tf_keras.layers, "dense")])
    model.compile(optimizer, "sparse_categorical_crossentropy")
    for x, y in batches("dense", 2):
        model.train_on_batch(x, y)
    model.save(tmp_path / name)
    loaded = tn.models.load_model(tmp_path / name)
    assert type(loaded.optimizer) is type(ours) and loaded.optimizer.iterations == 2
    assert loaded.optimizer.get_config()["epsilon"] == ours.epsilon
    variables, order = optimizer.variables[1:], keras_order(loaded)  # after the iteration
    assert len(variables) == len(order)
    for variable, (param, slot) in zip(variables, order):
        assert f"/{KERAS2_SLOT_NAMES[slot]}/" in variable.name
        assert param.split("/")[1] in variable.name
        np.testing.assert_array_equal(variable.numpy(), loaded.optimizer.state_for(param)[slot])
