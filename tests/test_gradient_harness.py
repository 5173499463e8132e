"""The gradient-check harness: it passes correct layers and models and catches broken ones."""

import numpy as np
import pytest

from tinynn.layers import Activation, Dense, Flatten, Input
from tinynn.losses import CategoricalCrossentropy
from tinynn.models import Sequential
from tinynn.testing import check_gradient, check_layer_gradients, check_model_gradients, floatx


class BiasMean(Dense):
    """Bias gradient averaged over the batch instead of summed."""

    def linear_backward(self, dz):
        dx = super().linear_backward(dz)
        self.grads["bias"][...] = dz.mean(axis=0)
        return dx


class KernelTransposed(Dense):
    """Kernel gradient dz.T @ x (units, in): the right shape only for a square kernel."""

    def linear_backward(self, dz):
        x = self._cache["x"]
        dx = super().linear_backward(dz)
        self.grads["kernel"][...] = dz.T @ x
        return dx


class KernelHalved(Dense):
    def linear_backward(self, dz):
        dx = super().linear_backward(dz)
        self.grads["kernel"] *= 0.5
        return dx


class InputUntransposed(Dense):
    """dx = dz @ kernel (the kernel not transposed; square kernel)."""

    def linear_backward(self, dz):
        super().linear_backward(dz)
        return dz @ self.params["kernel"]


class UnitsReversed(Dense):
    """Upstream gradient mis-routed across units; invisible to an all-ones dy."""

    def linear_backward(self, dz):
        return super().linear_backward(dz[:, ::-1])


class SigmoidWrongDerivative(Dense):
    """sigmoid' taken as a (1 + a) instead of a (1 - a)."""

    def backward(self, dy):
        (a,) = self.pop_cache("a")
        return self.linear_backward(dy * a * (1 + a))


def built(cls, rng, units=3, n_in=3, activation=None):
    layer = cls(units, activation=activation, name="broken")
    with floatx("float64"):
        layer.build((n_in,), rng)
    layer.params["bias"][...] = rng.standard_normal(units)
    return layer


@pytest.mark.parametrize("cls, activation, tensor", [
    (BiasMean, None, "broken/bias"),
    (KernelTransposed, None, "broken/kernel"),
    (KernelHalved, "tanh", "broken/kernel"),
    (InputUntransposed, None, "broken input"),
    (UnitsReversed, None, "broken input"),
    (SigmoidWrongDerivative, "sigmoid", "broken input"),
])
def test_harness_catches_broken_backward(cls, activation, tensor, rng):
    layer = built(cls, rng, activation=activation)
    x = rng.standard_normal((4, 3))
    with pytest.raises(AssertionError, match=f"gradient of {tensor} wrong at element"):
        check_layer_gradients(layer, x, rng=rng)


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "softmax"])
def test_harness_passes_correct_dense(activation, rng):
    layer = built(Dense, rng, activation=activation)
    x = rng.standard_normal((4, 3))
    assert np.abs(layer.forward_logits(x)).min() >= 1e-3  # away from ReLU's kink
    check_layer_gradients(layer, x, rng=rng)


def test_harness_random_directions_for_large_tensors(rng):
    layer = built(Dense, rng, units=30, n_in=20)  # kernel of 600 > 400 elements
    check_layer_gradients(layer, rng.standard_normal((25, 20)), rng=rng)
    broken = built(KernelHalved, rng, units=30, n_in=20)
    with pytest.raises(AssertionError, match="broken/kernel wrong at random direction 0"):
        check_layer_gradients(broken, rng.standard_normal((25, 20)), rng=rng)


def test_all_ones_upstream_gradient_would_miss_misrouting(rng):
    layer = built(UnitsReversed, rng)
    x = rng.standard_normal((4, 3))
    # Check with dy = ones, i.e. objective sum(y): the reversed units go unnoticed...
    layer.forward(x, training=True)
    dx = layer.backward(np.ones((4, 3)))
    check_gradient(lambda: float(np.sum(layer.forward(x))), x, dx, "x", rng)
    # ... but the harness's random upstream gradient catches them.
    with pytest.raises(AssertionError, match="broken input"):
        check_layer_gradients(layer, x, rng=rng)


def test_check_gradient_restores_the_tensor_exactly(rng):
    value = rng.standard_normal((3, 2))
    before = value.copy()
    check_gradient(lambda: float(np.sum(np.sin(value))), value, np.cos(value), "sin", rng)
    np.testing.assert_array_equal(value, before)


def test_check_gradient_refuses_float32(rng):
    value = np.zeros(3, np.float32)
    with pytest.raises(TypeError, match="need float64 tensors, w is float32"):
        check_gradient(lambda: 0.0, value, value, "w", rng)


# --- whole models -----------------------------------------------------------------------------


def make_model(*last, hidden=Dense, seed=0):
    return Sequential([Input((2, 3)), Flatten(), hidden(5, activation="relu"),
                       Dense(4, activation="tanh"), *last], seed=seed)


def data(rng, n=6):
    return rng.standard_normal((n, 2, 3)), rng.integers(0, 3, n)


def assert_relu_away_from_kink(model, x):
    relu = model.layers[1]
    assert np.abs(relu.forward_logits(model.layers[0].forward(x))).min() >= 1e-3


@pytest.mark.parametrize("last, loss, targets, fused", [
    (lambda: [Dense(3, activation="softmax")], "sparse_categorical_crossentropy", "labels", True),
    (lambda: [Dense(3, activation="softmax")], "categorical_crossentropy", "one_hot", True),
    (lambda: [Dense(3), Activation("softmax")], "categorical_crossentropy", "one_hot", True),
    (lambda: [Dense(3, activation="sigmoid")], "categorical_crossentropy", "one_hot", False),
    (lambda: [Dense(3)], CategoricalCrossentropy(from_logits=True), "one_hot", False),
    (lambda: [Dense(3, activation="sigmoid")], "mse", "one_hot", False),
], ids=["sparse-fused", "categorical-fused", "activation-layer-fused", "ce-on-sigmoid",
        "ce-from-logits", "mse-on-sigmoid"])
def test_model_gradients(last, loss, targets, fused, float64, rng):
    model = make_model(*last())
    model.compile("sgd", loss)
    x, labels = data(rng)
    y = labels if targets == "labels" else np.eye(3)[labels]
    model.build((None, 2, 3))
    assert model.fuses_softmax is fused
    assert_relu_away_from_kink(model, x)
    check_model_gradients(model, x, y, rng=rng)
    # ... and the loss it differentiates is the model's loss on its predictions.
    loss, _ = model.compute_loss_and_gradients(*model.prepare(x, y))
    assert loss == pytest.approx(model.loss(y, model.predict(x, verbose=0)), rel=1e-12)


@pytest.mark.parametrize("broken", [BiasMean, KernelHalved, UnitsReversed])
def test_model_gradients_catch_a_broken_layer(broken, float64, rng):
    model = make_model(Dense(3, activation="softmax"), hidden=broken)
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = data(rng)
    model.build((None, 2, 3))
    assert_relu_away_from_kink(model, x)
    with pytest.raises(AssertionError, match="gradient of .* wrong"):
        check_model_gradients(model, x, y, rng=rng)
