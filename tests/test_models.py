"""Sequential: construction, flat buffers, fit/evaluate/predict semantics (docs/keras-parity.md),
faults during training, refusals that change nothing, seeding."""

import os
import signal

import numpy as np
import pytest

import tinynn as tn
from tinynn.batching import EpochIterator
from tinynn.errors import (
    DTypeError,
    LabelError,
    NonFiniteError,
    NonFiniteLossError,
    NotCompiledError,
    ShapeError,
    TinyNNError,
)
from tinynn.testing import assert_close, rounding_bound

#: Roundings behind one float32 output of ``small_model``'s forward (default sizes): the 4-term
#: dot product, bias and tanh (6), the 8-term dot product and bias (9), a 3-way softmax (5).
FORWARD = 6 + 9 + 5
#: ... and behind one per-sample loss: FORWARD and the log (or a log-softmax instead).
LOSS = FORWARD + 2


def small_model(seed=0, hidden=8, inputs=(4,), output="softmax",
                loss="sparse_categorical_crossentropy", optimizer=None):
    model = tn.Sequential([tn.layers.Input(inputs), tn.layers.Flatten(),
                           tn.layers.Dense(hidden, activation="tanh"),
                           tn.layers.Dense(3, activation=output)], seed=seed)
    model.compile(optimizer or tn.optimizers.SGD(0.1), loss, metrics=["accuracy"])
    return model


def blobs(n=60, seed=0, features=4):
    """Three separable classes: x (n, features) float32, y (n,) int."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, features)).astype(np.float32) * 0.3 + y[:, None]
    return x, y


def snapshot(model):
    return [w.copy() for w in model.get_weights()]


def assert_same_weights(a, b):
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


# -- construction and buffers -----------------------------------------------------------------
def test_model_params_and_grads_are_views_into_one_flat_buffer():
    model = small_model()
    model.build()
    for layer in model.layers:
        for key in layer.params:
            assert np.shares_memory(layer.params[key], model.parameters)
            assert np.shares_memory(layer.grads[key], model.gradients)
    assert model.parameters.dtype == np.float32 and model.parameters.flags.c_contiguous


def test_model_backward_writes_gradients_in_place_without_rebinding():
    model = small_model()
    x, y = blobs(12)
    model.build()
    before = {k: id(g) for layer in model.layers for k, g in layer.grads.items()}
    model.compute_loss_and_gradients(*model.prepare(x, y))
    after = {k: id(g) for layer in model.layers for k, g in layer.grads.items()}
    assert before == after and np.abs(model.gradients).sum() > 0


def test_model_get_weights_in_keras_order_and_shapes():
    model = small_model()
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(4, 8), (8,), (8, 3), (3,)]


def test_model_set_weights_round_trip_and_refusal_changes_nothing():
    model, other = small_model(seed=1), small_model(seed=2)
    other.set_weights(model.get_weights())
    assert_same_weights(other.get_weights(), model.get_weights())
    before = snapshot(other)
    bad = model.get_weights()
    bad[2] = np.zeros((3, 8), np.float32)
    with pytest.raises(ShapeError, match=r"dense_1/kernel expected shape \(8, 3\), got \(3, 8\)"):
        other.set_weights(bad)
    with pytest.raises(ShapeError, match="expected 4 arrays"):
        other.set_weights(bad[:3])
    assert_same_weights(other.get_weights(), before)


# -- fit semantics --------------------------------------------------------------------------------
def test_fit_learns_separable_data_and_history_has_keras_keys():
    model = small_model()
    x, y = blobs(90)
    history = model.fit(x, y, epochs=30, batch_size=8, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.epoch == list(range(30))
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["val_accuracy"][-1] >= 0.9
    assert model.history is history


def count_batches(model, monkeypatch):
    sizes = []
    original = model.compute_loss_and_gradients

    def spy(x, y):
        sizes.append(len(x))
        return original(x, y)
    monkeypatch.setattr(model, "compute_loss_and_gradients", spy)
    return sizes


def test_fit_takes_1688_steps_with_last_batch_of_16_for_54000_samples(monkeypatch):
    model = tn.Sequential([tn.layers.Dense(1, input_shape=(1,))], seed=0)
    model.compile("sgd", "mse")
    sizes = count_batches(model, monkeypatch)
    x = np.zeros((54_000, 1), np.float32)
    model.fit(x, x, batch_size=32, epochs=1, verbose=0)
    assert len(sizes) == 1688 and sizes[-1] == 16 and set(sizes[:-1]) == {32}


def test_fit_batch_size_larger_than_n_gives_one_partial_batch(monkeypatch):
    model = small_model()
    sizes = count_batches(model, monkeypatch)
    model.fit(*blobs(10), batch_size=64, epochs=1, verbose=0)
    assert sizes == [10]


def test_fit_validation_split_takes_the_last_samples_before_shuffling():
    x, y = blobs(1001)
    split = small_model(seed=3)
    h_split = split.fit(x, y, epochs=2, validation_split=0.1, verbose=0)
    explicit = small_model(seed=3)
    h_explicit = explicit.fit(x[:900], y[:900], epochs=2, validation_data=(x[900:], y[900:]),
                              verbose=0)
    assert int(np.floor(1001 * (1 - 0.1))) == 900  # so the last 101 samples validate
    assert h_split.history == h_explicit.history
    assert_same_weights(split.get_weights(), explicit.get_weights())


def test_fit_epoch_loss_is_the_per_sample_mean_not_the_mean_of_batch_means(monkeypatch):
    model = small_model()
    x, y = blobs(10)
    monkeypatch.setattr(model.optimizer, "apply", lambda params, grads: None)  # frozen weights
    history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    per_sample = model.evaluate(x, y, batch_size=10, verbose=0)[0]
    batch_means = np.mean([model.evaluate(x[s:s + 4], y[s:s + 4], verbose=0)[0]
                           for s in (0, 4, 8)])
    # both sides' losses (batches of 4 and of 10: other BLAS calls) and their 10-sample means
    bound = rounding_bound(per_sample, np.float32, 2 * (LOSS + 10))
    assert history.history["loss"][0] == pytest.approx(per_sample, abs=bound)
    assert abs(per_sample - batch_means) > bound


def test_fit_initial_epoch_continues_numbering():
    model = small_model()
    history = model.fit(*blobs(12), epochs=3, initial_epoch=1, verbose=0)
    assert history.epoch == [1, 2]


def test_fit_shuffles_training_part_from_model_generator_only():
    state = np.random.get_state()
    a, b = small_model(seed=5), small_model(seed=5)
    x, y = blobs(40)
    ha = a.fit(x, y, epochs=3, batch_size=4, verbose=0)
    hb = b.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert ha.history == hb.history
    assert_same_weights(a.get_weights(), b.get_weights())
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]


def test_fit_prints_one_line_per_epoch_with_verbose_2(capsys):
    small_model().fit(*blobs(12), epochs=2, batch_size=5, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert lines[1].startswith("3/3 - ") and " - loss: " in lines[1] and " - accuracy: " in lines[1]


def test_fit_verbose_0_is_silent(capsys):
    small_model().fit(*blobs(12), epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


# -- evaluate and predict -----------------------------------------------------------------------
def test_evaluate_matches_a_hand_computation_of_crossentropy_and_accuracy():
    model = small_model()
    x, y = blobs(9)
    loss, accuracy = model.evaluate(x, y, batch_size=4, verbose=0)
    w1, b1, w2, b2 = model.get_weights()
    z = np.tanh(x.astype(np.float64) @ w1 + b1) @ w2 + b2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(9), y]))  # float64: its roundings are negligible
    # one float32 side: the per-sample losses and their 9-sample mean
    assert loss == pytest.approx(expected, abs=rounding_bound(expected, np.float32, LOSS + 9))
    assert accuracy == np.mean(p.argmax(1) == y)
    assert_close(model.predict(x, batch_size=2, verbose=0), p, depth=FORWARD)  # one float32 side


def test_evaluate_without_metrics_returns_the_loss_and_return_dict_names_it():
    model = tn.Sequential([tn.layers.Dense(1, input_shape=(2,))], seed=0)
    model.compile("sgd", "mse")
    x = np.ones((3, 2), np.float32)
    loss = model.evaluate(x, np.zeros((3, 1)), verbose=0)
    assert isinstance(loss, float)
    assert model.evaluate(x, np.zeros((3, 1)), verbose=0, return_dict=True) == {"loss": loss}


def test_predict_on_zero_samples_returns_empty_output():
    model = small_model()
    assert model.predict(np.zeros((0, 4), np.float32), verbose=0).shape == (0, 3)


def test_predict_casts_float64_input_down_and_never_upcasts():
    model = small_model()
    out = model.predict(np.ones((2, 4), np.float64), verbose=0)
    assert out.dtype == np.float32 and model.parameters.dtype == np.float32


def test_uint8_images_are_cast_explicitly():
    model = small_model(inputs=(2, 2))
    out = model.predict(np.full((3, 2, 2), 255, np.uint8), verbose=0)
    assert out.dtype == np.float32 and out.shape == (3, 3)


def test_float64_models_via_set_floatx(float64):
    model = small_model()
    model.fit(*blobs(12), epochs=1, verbose=0)
    assert model.parameters.dtype == np.float64
    assert model.predict(np.ones((1, 4), np.float32), verbose=0).dtype == np.float64


# -- faults during training -------------------------------------------------------------------
class WeightRecorder(tn.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        self.weights = snapshot(self.model)
        self.state = {k: v.copy() for k, v in self.model.optimizer.state.items()}


def test_fit_nan_loss_is_caught_before_the_update_with_partial_history():
    model = small_model(output="linear", loss="mse", optimizer="adam")
    x = np.ones((12, 4), np.float32)
    y = np.zeros((12, 3), np.float32)
    y[5] = 1e30  # (1e30)^2 overflows float32: the loss of the batch holding sample 5 is inf
    recorder = WeightRecorder()
    model.fit(x[:4], y[:4], epochs=1, verbose=0)
    with pytest.raises(NonFiniteLossError, match="epoch 2, batch 3") as caught:
        model.fit(x, y, epochs=2, batch_size=2, shuffle=False, initial_epoch=1, verbose=0,
                  callbacks=[recorder])
    error = caught.value
    assert (error.epoch, error.batch) == (1, 2)
    assert error.history is model.history and error.history.epoch == []
    assert_same_weights(model.get_weights(), recorder.weights)
    assert all(np.array_equal(model.optimizer.state[k], v) for k, v in recorder.state.items())
    assert model.optimizer.iterations == 1 + 2


def test_fit_nan_gradient_is_caught_before_the_update(monkeypatch):
    model = small_model()
    x, y = blobs(8)
    model.build()
    original = model.compute_loss_and_gradients

    def poisoned(xb, yb):
        loss, out = original(xb, yb)
        model.gradients[3] = np.nan
        return loss, out
    monkeypatch.setattr(model, "compute_loss_and_gradients", poisoned)
    before = snapshot(model)
    with pytest.raises(NonFiniteLossError, match="gradient is not finite"):
        model.fit(x, y, epochs=1, verbose=0)
    assert_same_weights(model.get_weights(), before)


def test_fit_ctrl_c_during_an_update_finishes_the_update_then_raises(monkeypatch):
    model = small_model()
    x, y = blobs(20)
    model.fit(x, y, epochs=1, batch_size=5, verbose=0)
    apply = model.optimizer.apply
    calls = []

    def interrupted_apply(params, grads):
        calls.append(params.copy())
        os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of the step
        apply(params, grads)
    monkeypatch.setattr(model.optimizer, "apply", interrupted_apply)
    iterations = model.optimizer.iterations
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=3, batch_size=5, verbose=0)
    assert len(calls) == 1 and model.optimizer.iterations == iterations + 1
    assert not np.array_equal(calls[0], model.parameters)  # the step was applied whole
    assert model.history.epoch == []  # partial History kept on the model
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- refusals -------------------------------------------------------------------------------------
def test_fit_before_compile_is_refused():
    model = tn.Sequential([tn.layers.Dense(2, input_shape=(3,))])
    with pytest.raises(NotCompiledError, match="compile"):
        model.fit(np.ones((2, 3)), np.zeros(2), verbose=0)


def test_second_fit_with_another_input_size_is_refused():
    model = tn.Sequential([tn.layers.Dense(3, activation="softmax")], seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(np.ones((4, 5), np.float32), np.zeros(4), verbose=0)
    with pytest.raises(ShapeError, match=r"expects x of shape \(N, 5\), got \(4, 6\)"):
        model.fit(np.ones((4, 6), np.float32), np.zeros(4), verbose=0)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"batch_size": 0}, TinyNNError, "batch_size expected a positive integer, got 0"),
    ({"batch_size": 2.5}, TinyNNError, "batch_size"),
    ({"batch_size": True}, TinyNNError, "batch_size"),
    ({"validation_split": 1.0}, TinyNNError, r"validation_split expected .* \[0, 1\)"),
    ({"validation_split": -0.1}, TinyNNError, "validation_split"),
    ({"validation_split": 1e-17}, ShapeError, "0 for validation"),
    ({"validation_split": 0.95}, ShapeError, "leaves 0 for training"),
    ({"epochs": -1}, TinyNNError, "epochs"),
])
def test_fit_bad_arguments_are_refused_and_change_nothing(kwargs, error, match):
    model = small_model()
    x, y = blobs(12)
    before = snapshot(model)
    with pytest.raises(error, match=match):
        model.fit(x, y, verbose=0, **kwargs)
    assert_same_weights(model.get_weights(), before)
    assert model.optimizer.iterations == 0


@pytest.mark.parametrize("x, y, error, match", [
    (np.ones((5, 4)), np.zeros(4), ShapeError, "same number of samples, got 5 and 4"),
    (np.ones((0, 4)), np.zeros(0), ShapeError, "at least one sample"),
    (np.ones((3, 4), complex), np.zeros(3), DTypeError, "complex"),
    (np.ones((3, 4), bool), np.zeros(3), DTypeError, "bool"),
    (np.array([["a"] * 4] * 3), np.zeros(3), DTypeError, "<U1"),
    (np.where(np.eye(3, 4) > 0, np.nan, 1.0), np.zeros(3), NonFiniteError,
     r"sample 0, feature index \(0,\)"),
    (np.ones((3, 4)), np.array([0, -1, 2]), LabelError, "label 1 is -1"),
    (np.ones((3, 4)), np.array([0, 3, 2]), LabelError, r"labels in \[0, 2\]"),
    (np.ones((3, 4)), np.array([0, 1.5, 2]), LabelError, "integral"),
    (np.ones((3, 4)), np.array([0, np.nan, 2]), LabelError, "integral"),
    (np.ones((3, 4)), np.eye(3), LabelError, "categorical_crossentropy"),
    (np.ones((3, 5)), np.zeros(3), ShapeError, r"expects x of shape \(N, 4\), got \(3, 5\)"),
])
def test_fit_bad_data_is_refused_with_clear_errors_and_changes_nothing(x, y, error, match):
    model = small_model()
    before = snapshot(model)
    with pytest.raises(error, match=match):
        model.fit(x, y, verbose=0)
    assert_same_weights(model.get_weights(), before)


def test_unbuilt_model_refusing_bad_labels_stays_unbuilt():
    model = tn.Sequential([tn.layers.Dense(3, activation="softmax")], seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(LabelError):
        model.fit(np.ones((2, 4)), np.array([0, 7]), verbose=0)
    assert not model.built


def test_dense_on_images_without_flatten_hints_flatten():
    model = tn.Sequential([tn.layers.Input((28, 28)), tn.layers.Dense(10)])
    with pytest.raises(ShapeError, match=r"Dense 'dense' \(units=10\) expected input \(N, "
                                         r"features\), got \(N, 28, 28\): add Flatten\(\) first"):
        model.build()


def test_compile_refuses_unknown_names():
    model = small_model()
    with pytest.raises(TinyNNError, match="unknown loss 'hinge'"):
        model.compile("sgd", "hinge")
    with pytest.raises(TinyNNError, match="unknown metric 'auc'"):
        model.compile("sgd", "mse", metrics=["auc"])


# -- seeding --------------------------------------------------------------------------------------
def test_same_seed_same_initial_weights_other_seed_different():
    assert_same_weights(small_model(seed=7).get_weights(), small_model(seed=7).get_weights())
    assert not np.array_equal(small_model(seed=7).get_weights()[0],
                              small_model(seed=8).get_weights()[0])


def test_set_random_seed_makes_unseeded_models_reproducible():
    tn.set_random_seed(42)
    first = [small_model(seed=None).get_weights()[0] for _ in range(2)]
    tn.set_random_seed(42)
    second = [small_model(seed=None).get_weights()[0] for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not np.array_equal(first[0], first[1])


def test_training_backward_skips_the_unused_input_gradient_with_the_same_parameter_gradients(
        monkeypatch):
    model = small_model()
    x, y = model.prepare(*blobs(12))
    calls = []
    first_dense = model.layers[1]
    original = type(first_dense).linear_backward

    def spy(self, dz):
        dx = original(self, dz)
        calls.append((self.name, dx is None))
        return dx
    monkeypatch.setattr(type(first_dense), "linear_backward", spy)
    model.compute_loss_and_gradients(x, y)  # training: the first Dense's dx is never needed
    skipped = model.gradients.copy()
    assert calls == [("dense_1", False), ("dense", True)]
    fused = model.fuses_softmax
    out = model.forward(x, training=True, logits=fused)
    dout = model.loss_and_output_gradient(y, out, fused)[1]
    dx = model.backward(dout, fused, input_gradient=True)
    assert dx.shape == x.shape and calls[-1] == ("dense", False)
    np.testing.assert_array_equal(model.gradients, skipped)


# -- one batch iterator for fit, evaluate and predict -----------------------------------------
def test_epoch_iterator_steps_are_ceil_n_over_batch_size_with_the_last_partial():
    x = np.arange(10)
    batches = EpochIterator((x, -x), 4)
    assert batches.num_batches == 3
    steps = list(batches)
    assert [step for step, _ in steps] == [0, 1, 2]
    assert [batch[0].tolist() for _, batch in steps] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(np.array_equal(b, -a) and np.shares_memory(a, x) for _, (a, b) in steps)
    assert EpochIterator((np.zeros((0, 2)),), 4).num_batches == 0


def test_epoch_iterator_draws_one_permutation_per_pass_from_its_generator():
    x = np.arange(7)
    batches = EpochIterator((x,), 3, np.random.default_rng(5))
    expected = np.random.default_rng(5)
    for _ in range(2):
        order = expected.permutation(7)
        assert [b[0].tolist() for _, b in batches] == [order[:3].tolist(), order[3:6].tolist(),
                                                        order[6:].tolist()]


#: The batches (sample indices) of the seeded fit below, recorded from the fit loop before it
#: used EpochIterator: one permutation of the 40 training samples per epoch, batches of 8.
SHUFFLED_BATCHES_SEED_11 = [
    [39, 33, 36, 34, 15, 20, 30, 11], [16, 27, 12, 0, 8, 35, 13, 14],
    [7, 19, 24, 37, 38, 3, 17, 9], [25, 31, 6, 5, 28, 23, 29, 4],
    [22, 32, 26, 21, 10, 1, 2, 18], [9, 21, 31, 38, 36, 10, 4, 6],
    [18, 11, 29, 13, 26, 16, 32, 2], [17, 35, 8, 37, 19, 25, 22, 15],
    [5, 20, 39, 33, 34, 7, 24, 28], [30, 3, 27, 23, 0, 1, 12, 14],
    [11, 14, 13, 0, 2, 34, 26, 22], [35, 4, 6, 28, 12, 30, 25, 19],
    [5, 24, 31, 33, 9, 17, 36, 29], [23, 15, 7, 39, 21, 16, 8, 27],
    [3, 37, 18, 10, 20, 32, 1, 38]]


def dropout_model(seed):
    model = tn.Sequential([tn.layers.Input((4,)), tn.layers.Dense(8, activation="tanh"),
                           tn.layers.Dropout(0.25), tn.layers.Dense(3, activation="softmax")],
                          seed=seed)
    model.compile(tn.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_seeded_fit_shuffles_in_the_recorded_order(monkeypatch):
    model = dropout_model(11)
    x = np.arange(50, dtype=np.float32)[:, None] * np.ones(4, np.float32)
    seen = []
    original = model.compute_loss_and_gradients

    def spy(x_batch, y_batch):
        seen.append(x_batch[:, 0].astype(int).tolist())
        return original(x_batch, y_batch)
    monkeypatch.setattr(model, "compute_loss_and_gradients", spy)
    model.fit(x, np.arange(50) % 3, batch_size=8, epochs=3, validation_split=0.2, verbose=0)
    assert seen == SHUFFLED_BATCHES_SEED_11
    assert model.rngs["shuffle"].integers(1 << 30) == 237336382  # nothing else drawn from it


def reference_fit(model, x, y, batch_size, epochs, validation_split):
    """The fit loop as it was before EpochIterator, on the model's public seams: a permutation
    per epoch from the shuffle Generator, steps of batch_size, per-sample means; validation by
    the fused loss in one chunk. Returns the history."""
    x, y = model.prepare(x, y)
    split = int(np.floor(len(x) * (1 - validation_split)))
    (x_train, y_train), (x_val, y_val) = (x[:split], y[:split]), (x[split:], y[split:])
    history = {"accuracy": [], "loss": [], "val_accuracy": [], "val_loss": []}
    for _ in range(epochs):
        order = model.rngs["shuffle"].permutation(len(x_train))
        loss_sum, correct, seen = 0.0, 0, 0
        for start in range(0, len(x_train), batch_size):
            rows = order[start:start + batch_size]
            loss, out = model.compute_loss_and_gradients(x_train[rows], y_train[rows])
            model.optimizer.apply(model.parameters, model.gradients)
            seen += len(rows)
            loss_sum += loss * len(rows)
            correct += tn.metrics.count_correct(y_train[rows], out)
        logits = model.forward(x_val, training=False, logits=True)
        per_sample = model.loss.logits_per_sample_and_gradient(y_val, logits)[0]
        history["loss"].append(loss_sum / seen)
        history["accuracy"].append(correct / seen)
        history["val_loss"].append(float(np.sum(per_sample, dtype=np.float64)) / len(x_val))
        history["val_accuracy"].append(tn.metrics.count_correct(y_val, logits) / len(x_val))
    return history


def test_seeded_fit_is_bitwise_the_fit_loop_from_before():
    x, y = blobs(50)
    model, reference = dropout_model(11), dropout_model(11)
    history = model.fit(x, y, batch_size=7, epochs=4, validation_split=0.2, verbose=0)
    assert history.history == reference_fit(reference, x, y, 7, 4, 0.2)  # exact floats
    assert_same_weights(model.get_weights(), reference.get_weights())
    prepared = model.prepare(x)[0]
    np.testing.assert_array_equal(model.predict(x, batch_size=7, verbose=0), np.concatenate(
        [reference.forward(prepared[start:start + 7]) for start in range(0, 50, 7)]))


def memory_capped(monkeypatch, rows):
    """Cap inference at ``rows`` samples per forward of small_model (its largest layer input
    plus output is the first Dense's 4 + 8 = 12 float32 per sample)."""
    monkeypatch.setattr(tn.models.model, "INFERENCE_ACTIVATION_BYTES", rows * 12 * 4)


def forward_sizes(model, monkeypatch):
    sizes = []
    original = model.forward

    def spy(x, training=False, logits=False):
        sizes.append((len(x), training))
        return original(x, training, logits)
    monkeypatch.setattr(model, "forward", spy)
    return sizes


class StepCounter(tn.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = []

    def on_test_batch_end(self, batch, logs=None):
        self.steps.append(batch)

    def on_predict_batch_end(self, batch, logs=None):
        self.steps.append(batch)


@pytest.mark.parametrize("run", ["evaluate", "predict"])
def test_a_step_is_one_user_batch_split_into_memory_capped_chunks(monkeypatch, capsys, run):
    model = small_model()
    x, y = blobs(12)
    expected = model.predict(x, batch_size=12, verbose=0)
    loss = model.evaluate(x, y, batch_size=12, verbose=0)
    memory_capped(monkeypatch, 2)
    sizes, counter = forward_sizes(model, monkeypatch), StepCounter()
    if run == "evaluate":
        # both sides' losses (chunks of 2 and 1 against one batch of 12) and 12-sample means
        assert model.evaluate(x, y, batch_size=5, verbose=2, callbacks=[counter]) == \
            pytest.approx(loss, abs=rounding_bound(loss[0], np.float32, 2 * (LOSS + 12)))
    else:
        assert_close(model.predict(x, batch_size=5, verbose=2, callbacks=[counter]), expected,
                     depth=2 * FORWARD)  # both sides' forward, in chunks of 2 and 1 against 12
    assert counter.steps == [0, 1, 2]  # ceil(12 / 5), not ceil(12 / 2)
    assert sizes == [(2, False), (2, False), (1, False)] * 2 + [(2, False)]
    assert capsys.readouterr().out.startswith("3/3 - ")


def test_predict_chunks_cap_memory_like_before_whatever_the_batch_size(monkeypatch):
    model = small_model()
    memory_capped(monkeypatch, 3)
    sizes = forward_sizes(model, monkeypatch)
    model.predict(np.ones((10, 4), np.float32), batch_size=1000, verbose=0)
    assert sizes == [(3, False)] * 3 + [(1, False)]


def conv_model():
    model = tn.Sequential([tn.layers.Input((6, 6, 1)), tn.layers.Conv2D(2, 3, activation="relu"),
                           tn.layers.MaxPooling2D(), tn.layers.Dropout(0.5), tn.layers.Flatten(),
                           tn.layers.Dense(3, activation="softmax")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_evaluate_and_predict_run_forward_only_and_keep_nothing_for_backward(monkeypatch):
    model = conv_model()
    x = np.random.default_rng(0).random((9, 6, 6, 1), dtype=np.float32)
    y = np.arange(9) % 3
    model.build()

    def no_gradient(*args, **kwargs):
        raise AssertionError("a gradient was computed")
    for layer in model.layers:
        monkeypatch.setattr(layer, "backward", no_gradient)
    monkeypatch.setattr(model.loss, "gradient", no_gradient)
    monkeypatch.setattr(model.loss, "logits_per_sample_and_gradient", no_gradient)
    sizes = forward_sizes(model, monkeypatch)
    loss, _ = model.evaluate(x, y, batch_size=4, verbose=0)
    model.predict(x, batch_size=4, verbose=0)
    assert {training for _, training in sizes} == {False}
    assert not any(layer.holds_cache for layer in model.layers)
    probabilities = model.predict(x, verbose=0).astype(np.float64)
    expected = -np.mean(np.log(probabilities[np.arange(9), y]))
    # either side's forward (9- and 8-term dot products, biases, 3-way softmax or log-softmax,
    # log: 9 + 8 + 2 + 7; batches of 4 against 9), and evaluate's 9-sample mean
    assert loss == pytest.approx(expected, abs=rounding_bound(expected, np.float32,
                                                              2 * (9 + 8 + 2 + 7) + 9))


def test_evaluate_adds_the_regularization_penalty_as_keras():
    model = tn.Sequential([tn.layers.Input((2,)), tn.layers.Dense(
        1, kernel_initializer="ones", kernel_regularizer=tn.regularizers.L2(0.5))], seed=0)
    model.compile("sgd", "mse")
    x, y = np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(4.0 + 0.5 * 2)  # Keras: 5.0


def test_callbacks_can_stop_evaluate_and_predict_after_a_step():
    class StopAtFirst(tn.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            self.model.stop_evaluating = True

        def on_predict_batch_end(self, batch, logs=None):
            self.model.stop_predicting = True
    model = small_model()
    x, y = blobs(10)
    partial = model.evaluate(x, y, batch_size=4, verbose=0, callbacks=[StopAtFirst()])
    whole = model.evaluate(x[:4], y[:4], verbose=0)
    # both sides' losses and 4-sample means
    assert partial == pytest.approx(whole, abs=rounding_bound(whole[0], np.float32, 2 * (LOSS + 4)))
    out = model.predict(x, batch_size=4, verbose=0, callbacks=[StopAtFirst()])
    np.testing.assert_array_equal(out, model.predict(x[:4], verbose=0))
