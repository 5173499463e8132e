"""Rescaling, RandomFlip, RandomBrightness and RandomContrast: Keras's numbers with the random
parameters fixed, gradients, training-only randomness from the model's seed, configs and Keras
files."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynn as tn
from tinynn.errors import ArgumentError, ShapeError
from tinynn.layers.augmentation import rotation_matrices, translation_matrices, zoom_matrices
from tinynn.ops import numba_kernels, reference
from tinynn.testing import assert_close, check_gradient, floatx

from .helpers import check_layer

L = tn.layers
RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 255, (5, 6, 7, 3)).astype(np.float32)


def built(layer, shape=(6, 7, 3)):
    layer.build(shape, np.random.default_rng(0))
    return layer


# -- Keras's numbers ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", L.RandomFlip.MODES)
def test_random_flip_is_keras_with_the_same_flags(keras, mode):
    flips = np.array([True, False, True, True, False])
    ours = built(L.RandomFlip(mode)).apply(IMAGES, flips)
    theirs = keras.layers.RandomFlip(mode).transform_images(
        IMAGES, {"flips": flips.reshape(-1, 1, 1, 1), "input_shape": IMAGES.shape})
    np.testing.assert_array_equal(ours, np.asarray(theirs))
    # Keras's trap, kept: one flag flips both ways at once
    if mode == "horizontal_and_vertical":
        np.testing.assert_array_equal(ours[0], IMAGES[0, ::-1, ::-1])


@pytest.mark.parametrize("factor, value_range", [(0.3, (0, 255)), ((-0.5, 0.2), (10, 200)),
                                                 (0.9, (0, 1))])
def test_random_brightness_is_keras_with_the_same_deltas(keras, factor, value_range):
    layer = built(L.RandomBrightness(factor, value_range=value_range))
    deltas = layer.draw(len(IMAGES), np.float32)
    low, high = value_range
    assert ((deltas >= layer.factor[0] * (high - low))
            & (deltas <= layer.factor[1] * (high - low))).all()
    theirs = keras.layers.RandomBrightness(factor, value_range=value_range).transform_images(
        IMAGES.copy(), {"rgb_delta": deltas.reshape(-1, 1, 1, 1)})
    assert_close(layer.apply(IMAGES, deltas), np.asarray(theirs), depth=2)
    assert list(layer.factor) == list(keras.layers.RandomBrightness(factor).factor)


@pytest.mark.parametrize("factor, value_range", [(0.2, (0, 255)), ((0.5, 0.5), (20, 230)),
                                                 ([0.1, 0.9], (0, 1))])
def test_random_contrast_is_keras_with_the_same_factors(keras, factor, value_range):
    layer = built(L.RandomContrast(factor, value_range=value_range))
    factors = layer.draw(len(IMAGES), np.float32)
    assert ((factors >= 1 - layer.factor[0]) & (factors <= 1 + layer.factor[1])).all()
    theirs = keras.layers.RandomContrast(factor, value_range=value_range).transform_images(
        IMAGES, {"contrast_factor": factors.reshape(-1, 1, 1, 1)})
    # the per-channel mean over 42 pixels, then a product and a sum, at the pixels' scale
    # (255) whatever the range clipped to
    assert_close(layer.apply(IMAGES, factors), np.asarray(theirs), depth=42 + 4, scale=255)
    # Keras's trap, kept: a single number f means factor (0, f): contrast never lowered
    assert L.RandomContrast(0.2).factor == (0.0, 0.2) == tuple(
        keras.layers.RandomContrast(0.2).factor)


def test_rescaling_is_keras(keras):
    ours = built(L.Rescaling(1 / 255, offset=-0.5))
    assert_close(ours.forward(IMAGES), np.asarray(keras.layers.Rescaling(1 / 255, -0.5)(IMAGES)),
                 depth=2)


# -- warps: TensorFlow's sampling ---------------------------------------------------------------
@pytest.mark.skipif(numba_kernels is None, reason="numba is not importable")
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 8),
                       st.integers(1, 3)),
       mode=st.sampled_from(reference.FILL_MODES), nearest=st.booleans(),
       shift=st.tuples(st.floats(-12, 12), st.floats(-12, 12)), angle=st.floats(-4, 4),
       seed=st.integers(0, 2**32 - 1))
def test_warp_kernels_sample_as_tensorflow(keras, shape, mode, nearest, shift, angle, seed):
    """Both twins against keras.ops.image.affine_transform (TensorFlow's
    ImageProjectiveTransformV3) for translations and rotations, every fill mode and both
    interpolations; and the backward of each is the adjoint of its forward."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, shape).astype(np.float32)
    n, height, width = shape[:3]
    transforms = np.concatenate([
        translation_matrices(np.full(n, shift[0]), np.full(n, shift[1])),
        rotation_matrices(np.full(n, angle), height, width)]).astype(np.float32)
    images = np.concatenate([images, images])
    theirs = np.asarray(keras.ops.image.affine_transform(
        images, np.pad(transforms, ((0, 0), (0, 2))), interpolation="nearest" if nearest
        else "bilinear", fill_mode=mode, fill_value=0.25))
    dy = rng.standard_normal(images.shape).astype(np.float32)
    for kernels in (reference, numba_kernels):
        index = reference.FILL_MODES.index(mode)
        got = kernels.affine_warp(images, transforms, nearest, index, 0.25, height, width)
        assert_close(got, theirs, depth=8)  # a blend of four reads with product weights
        dx = kernels.affine_warp_backward(dy, transforms, nearest, index, height, width)
        unfilled = kernels.affine_warp(images, transforms, nearest, index, 0.0, height, width)
        total = float(np.sum(unfilled.astype(np.float64) * dy))
        assert total == pytest.approx(float(np.sum(images.astype(np.float64) * dx)),
                                      abs=1e-4 * (1 + float(np.abs(dy).sum())))


def test_translation_and_rotation_are_keras_with_the_same_draws(keras):
    translation = built(L.RandomTranslation(0.2, (-0.3, 0.1), fill_mode="wrap"))
    transforms = translation.draw(len(IMAGES), np.float32)
    rows, columns = -transforms[:, 5], -transforms[:, 2]
    theirs = keras.layers.RandomTranslation(0.2, (-0.3, 0.1), fill_mode="wrap").transform_images(
        IMAGES, {"translations": np.stack([columns, rows], axis=1)})
    assert_close(translation.apply(IMAGES, transforms), np.asarray(theirs), depth=8, scale=255)
    assert (np.abs(rows) <= 0.2 * 6).all() and (columns >= -0.3 * 7).all()
    rotation = built(L.RandomRotation(0.1, fill_mode="constant", fill_value=7.0,
                                      interpolation="nearest"))
    matrices = rotation.draw(len(IMAGES), np.float32)
    angles = np.arctan2(matrices[:, 3], matrices[:, 0])
    assert (np.abs(angles) <= 0.1 * 2 * np.pi + 1e-6).all()
    keras_layer = keras.layers.RandomRotation(0.1, fill_mode="constant", fill_value=7.0,
                                              interpolation="nearest")
    expected = np.asarray(keras_layer._compute_affine_matrix(
        center_x=0.5, center_y=0.5, angle=np.rad2deg(angles).astype(np.float32),
        translate_x=np.zeros(5, np.float32), translate_y=np.zeros(5, np.float32),
        scale=np.ones(5, np.float32), shear_x=np.zeros(5, np.float32),
        shear_y=np.zeros(5, np.float32), height=6, width=7))
    assert_close(matrices, expected[:, :6], depth=8, scale=7)
    theirs = keras_layer.transform_images(IMAGES, {"rotation_matrix": np.pad(matrices,
                                                                              ((0, 0), (0, 2)))})
    np.testing.assert_array_equal(rotation.apply(IMAGES, matrices), np.asarray(theirs))
    zoom = built(L.RandomZoom((-0.3, 0.4), width_factor=0.2, fill_mode="reflect"))
    matrices = zoom.draw(len(IMAGES), np.float32)
    rows, columns = matrices[:, 4], matrices[:, 0]
    assert ((rows >= 0.7) & (rows <= 1.4) & (columns >= 0.8) & (columns <= 1.2)).all()
    keras_zoom = keras.layers.RandomZoom((-0.3, 0.4), width_factor=0.2)
    theirs = keras_zoom.transform_images(IMAGES, {"height_zoom": rows[:, None],
                                                  "width_zoom": columns[:, None]})
    assert_close(zoom.apply(IMAGES, matrices), np.asarray(theirs), depth=8, scale=255)
    same = built(L.RandomZoom(0.25)).draw(50, np.float32)
    np.testing.assert_array_equal(same[:, 0], same[:, 4])  # no width_factor: one zoom


def test_random_crop_is_keras_in_training_and_a_centered_resize_otherwise(keras):
    images = RNG.uniform(0, 255, (4, 9, 11, 2)).astype(np.float32)
    crop = built(L.RandomCrop(5, 6), images.shape[1:])
    got = crop.forward(images, training=True)
    (top, left) = crop.pop_cache("crop")[0][1]
    assert 0 <= top <= 4 and 0 <= left <= 5
    np.testing.assert_array_equal(got, images[:, top:top + 5, left:left + 6])  # one offset
    theirs = keras.layers.RandomCrop(5, 6).transform_images(images, (top, left), training=True)
    np.testing.assert_array_equal(got, np.asarray(theirs))
    # inference: the centered 9 x 10 window of aspect 5:6, resized as TensorFlow resizes
    window = images[:, 0:9, 0:10]
    expected = np.asarray(keras.ops.image.resize(window, (5, 6), interpolation="bilinear"))
    assert_close(crop.forward(images), expected, depth=8, scale=255)
    small = built(L.RandomCrop(12, 12), images.shape[1:])  # larger than the input: resized
    expected = np.asarray(keras.ops.image.resize(images[:, :, 1:10], (12, 12)))
    assert_close(small.forward(images, training=True), expected, depth=8, scale=255)
    assert small.pop_cache("resize")


# -- gradients, with the draws fixed ---------------------------------------------------------------
@pytest.mark.parametrize("make, parameters", [
    (lambda: L.RandomFlip("horizontal"), np.array([True, False, True])),
    (lambda: L.RandomFlip(), np.array([False, True, True])),
    (lambda: L.RandomBrightness(0.2, value_range=(-2, 2)), np.array([0.3, -0.2, 0.1])),
    (lambda: L.RandomContrast((0.4, 0.4), value_range=(-9, 9)), np.array([0.7, 1.3, 1.1])),
    (lambda: L.RandomTranslation(0.5, 0.5, fill_mode="constant", fill_value=0.3),
     translation_matrices(np.array([0.4, -1.3, 2.2]), np.array([1.7, 0.2, -0.6]))),
    (lambda: L.RandomRotation(0.5, fill_mode="reflect"),
     rotation_matrices(np.array([0.3, -1.1, 2.9]), 4, 5).astype(np.float32)),
    (lambda: L.RandomTranslation(0.5, 0.5, fill_mode="wrap", interpolation="nearest"),
     translation_matrices(np.array([0.4, -1.3, 2.2]), np.array([1.7, 0.2, -0.6]))),
    (lambda: L.RandomZoom(0.5, fill_mode="nearest"),
     zoom_matrices(np.array([0.6, 1.3, 1.1]), np.array([0.7, 1.45, 0.9]), 4, 5)
     .astype(np.float32)),
])
def test_random_layer_gradients_with_fixed_draws(make, parameters, monkeypatch):
    layer = make()
    with floatx("float64"):
        built(layer, (4, 5, 2))
    monkeypatch.setattr(layer, "draw", lambda n, dtype: parameters[:n].astype(
        parameters.dtype if parameters.dtype == bool or parameters.ndim > 1 else dtype))
    x = np.random.default_rng(1).uniform(-1, 1, (3, 4, 5, 2))
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(y, layer.apply(x, parameters))
    dy = np.random.default_rng(2).standard_normal(y.shape)
    dx = layer.backward(dy)
    step = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = x.copy()
        shifted[index] += step
        up = np.sum(layer.apply(shifted, parameters) * dy)
        shifted[index] -= 2 * step
        numeric[index] = (up - np.sum(layer.apply(shifted, parameters) * dy)) / (2 * step)
    np.testing.assert_allclose(dx, numeric, atol=1e-7)


@pytest.mark.parametrize("training", [True, False])
def test_random_crop_gradients_on_both_paths(training):
    layer = L.RandomCrop(3, 4)
    with floatx("float64"):
        built(layer, (5, 6, 2))
    x = np.random.default_rng(1).uniform(-1, 1, (2, 5, 6, 2))
    if not training:  # the resize path, in training because the image is not larger
        layer.height, layer.width = 3, 7
    state = layer.rng.bit_generator.state
    y = layer.forward(x, training=True)
    dy = np.random.default_rng(2).standard_normal(y.shape)
    dx = layer.backward(dy)
    def objective():
        layer.rng.bit_generator.state = state  # the same offset each time
        value = np.sum(layer.forward(x, training=True) * dy)
        layer.release_cache()
        return value
    check_gradient(objective, x, dx, "RandomCrop", np.random.default_rng(0))


def test_rescaling_meets_the_layer_contract():
    check_layer(L.Rescaling(0.25, offset=3.0), (4, 3), np.random.default_rng(0))


# -- randomness in training only, from the model's seed ------------------------------------------
def augmented_model(seed):
    model = tn.Sequential([L.Input((6, 7, 3)), L.Rescaling(1 / 255), L.RandomFlip(),
                           L.RandomContrast(0.3, value_range=(0, 1)),
                           L.RandomBrightness(0.2, value_range=(0, 1)), L.Flatten(),
                           L.Dense(3, activation="softmax")], seed=seed)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_augmentation_is_seeded_by_the_model_and_absent_in_inference():
    y = np.arange(5) % 3
    first, second, other = augmented_model(1), augmented_model(1), augmented_model(2)
    for model in (first, second, other):
        model.fit(IMAGES, y, batch_size=5, epochs=3, verbose=0)
    np.testing.assert_array_equal(first.parameters, second.parameters)
    assert not np.array_equal(first.parameters, other.parameters)
    plain = tn.Sequential([L.Input((6, 7, 3)), L.Rescaling(1 / 255), L.Flatten(),
                           L.Dense(3, activation="softmax")], seed=1)
    plain.build()
    plain.set_weights(first.get_weights())
    np.testing.assert_array_equal(first.predict(IMAGES, verbose=0),
                                  plain.predict(IMAGES, verbose=0))
    for layer in first.layers[1:4]:
        assert layer.forward(IMAGES, training=False) is IMAGES


def test_arguments_are_checked_with_keras_messages():
    with pytest.raises(ArgumentError, match=r"RandomContrast factor expected a number \(or a "
                                            r"list of two numbers\) in the range \[0.0, 1.0\], "
                                            r"got 1.5"):
        L.RandomContrast(1.5)
    with pytest.raises(ArgumentError, match=r"RandomBrightness factor expected .*\[-1.0, 1.0\]"):
        L.RandomBrightness((0.1, 0.2, 0.3))
    with pytest.raises(ArgumentError, match=r"RandomZoom height_factor expected a number \(or "
                                            r"a list of two numbers\) in \(-1.0, 1.0\], got -1"):
        L.RandomZoom(-1)
    with pytest.raises(ArgumentError, match="RandomFlip mode expected one of"):
        L.RandomFlip("diagonal")
    with pytest.raises(ShapeError, match=r"RandomFlip expected images \(N, height, width, "
                                         r"channels\), got \(N, 5\)"):
        tn.Sequential([L.Input((5,)), L.RandomFlip()]).build()


# -- files -----------------------------------------------------------------------------------------
def test_configs_round_trip_and_keras_files_load(keras, tmp_path):
    model = augmented_model(0)
    model.build()
    model.save(tmp_path / "m.npz")
    loaded = tn.models.load_model(tmp_path / "m.npz")
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers]
    theirs = keras.Sequential([keras.Input((6, 7, 3)), keras.layers.Rescaling(1 / 255),
                               keras.layers.RandomTranslation(0.1, (-0.2, 0.2),
                                                              fill_mode="nearest"),
                               keras.layers.RandomRotation(0.05, interpolation="nearest"),
                               keras.layers.RandomZoom(0.1, (-0.2, 0.1), fill_mode="wrap"),
                               keras.layers.RandomFlip("horizontal", seed=4),
                               keras.layers.RandomCrop(6, 7),
                               keras.layers.RandomContrast(0.3, value_range=(0, 1)),
                               keras.layers.RandomBrightness((-0.1, 0.2), value_range=(0, 1)),
                               keras.layers.Flatten(), keras.layers.Dense(3)])
    theirs.save(tmp_path / "k.keras")
    ours = tn.models.load_model(tmp_path / "k.keras")
    names = ["Rescaling", "RandomTranslation", "RandomRotation", "RandomZoom", "RandomFlip",
             "RandomCrop", "RandomContrast", "RandomBrightness"]
    assert [type(layer).__name__ for layer in ours.layers[:8]] == names
    assert ours.layers[1].width_range == (-0.2, 0.2) and ours.layers[1].fill_mode == "nearest"
    assert ours.layers[2].factor == (-0.05, 0.05) and ours.layers[2].interpolation == "nearest"
    assert ours.layers[3].width_range == (-0.2, 0.1) and ours.layers[3].fill_mode == "wrap"
    assert ours.layers[4].mode == "horizontal" and ours.layers[4].seed == 4
    assert (ours.layers[5].height, ours.layers[5].width) == (6, 7)
    assert ours.layers[7].factor == (-0.1, 0.2) and ours.layers[7].value_range == (0.0, 1.0)
    assert_close(ours.predict(IMAGES, verbose=0), np.asarray(theirs.predict(IMAGES, verbose=0)),
                 depth=6 * 7 * 3 + 4)
    ours.save(tmp_path / "back.keras")
    again = keras.saving.load_model(tmp_path / "back.keras")
    assert [type(layer).__name__ for layer in again.layers[:8]] == names
    assert tuple(again.layers[6].factor) == (0, 0.3)
    assert again.layers[1].width_lower == -0.2 and list(again.layers[2].factor) == [-0.05, 0.05]
