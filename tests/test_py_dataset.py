"""fit, evaluate and predict on a PyDataset or a generator (tinynn.data_adapters), and
tn.utils.to_categorical / normalize."""

import threading
import warnings

import numpy as np
import pytest

import tinynn as tn
from tinynn.errors import ArgumentError, LabelError, ShapeError

L = tn.layers
RNG = np.random.default_rng(0)
X = RNG.standard_normal((100, 6)).astype(np.float32)
Y = RNG.integers(0, 3, 100)


class Batches(tn.utils.PyDataset):
    """Batches of ``batch`` rows of X and Y; records which indices were asked for."""

    def __init__(self, batch=16, fail_at=None, rows=100, **kwargs):
        super().__init__(**kwargs)
        self.batch, self.fail_at, self.rows = batch, fail_at, rows
        self.asked, self.events = [], []

    def __len__(self):
        return -(-self.rows // self.batch)

    def __getitem__(self, index):
        self.asked.append(index)
        if index == self.fail_at:
            raise RuntimeError(f"cannot read batch {index}")
        rows = slice(index * self.batch, min((index + 1) * self.batch, self.rows))
        return X[rows], Y[rows]

    def on_epoch_begin(self):
        self.events.append("begin")

    def on_epoch_end(self):
        self.events.append("end")


def model(seed=3) -> tn.Sequential:
    m = tn.Sequential([tn.layers.Input((6,)), tn.layers.Dense(8, activation="relu"),
                       tn.layers.Dropout(0.3), tn.layers.Dense(3, activation="softmax")],
                      seed=seed)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def generator(batch=16, limit=None):
    count = 0
    while limit is None or count < limit:
        for start in range(0, 100, batch):
            if limit is not None and count == limit:
                return
            count += 1
            yield X[start:start + batch], Y[start:start + batch]


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_fit_from_a_pydataset_is_bitwise_the_fit_from_arrays(workers):
    arrays, dataset = model(), model()
    expected = arrays.fit(X, Y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                          validation_data=(X[:40], Y[:40]))
    source = Batches(workers=workers, max_queue_size=3)
    got = dataset.fit(source, epochs=3, shuffle=False, verbose=0,
                      validation_data=Batches(batch=40, rows=40))
    np.testing.assert_array_equal(dataset.parameters, arrays.parameters)
    assert got.history == expected.history  # exact floats
    assert source.events == ["begin", "end"] * 3
    assert dataset.evaluate(Batches(workers=workers), verbose=0) == arrays.evaluate(
        X, Y, batch_size=16, verbose=0)
    np.testing.assert_array_equal(dataset.predict(Batches(workers=workers), verbose=0),
                                  arrays.predict(X, batch_size=16, verbose=0))


def test_shuffled_batch_order_comes_from_the_models_generator_whatever_the_workers():
    one, three = Batches(), Batches(workers=3)
    first, second = model(), model()
    first.fit(one, epochs=2, verbose=0)
    second.fit(three, epochs=2, verbose=0)
    np.testing.assert_array_equal(first.parameters, second.parameters)
    orders = [one.asked[:7], one.asked[7:]]
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(7))
    assert orders[0] != list(range(7)) and orders[0] != orders[1]  # drawn anew each epoch
    assert sorted(three.asked) == sorted(one.asked)


def test_a_worker_exception_stops_fit_with_it_and_leaves_no_thread():
    before = threading.active_count()
    trained = model()
    with pytest.raises(RuntimeError, match="cannot read batch 3"):
        trained.fit(Batches(fail_at=3, workers=3, max_queue_size=2), epochs=1, shuffle=False,
                    verbose=0)
    assert threading.active_count() == before
    assert not [t for t in threading.enumerate() if t.name.startswith("tinynn-pydataset")]


def test_a_generator_runs_steps_per_epoch_batches_and_stops_when_it_runs_out(capsys):
    trained = model()
    history = trained.fit(generator(), steps_per_epoch=7, epochs=3, verbose=0,
                          validation_data=generator(batch=50), validation_steps=2)
    assert len(history.history["loss"]) == 3 and "val_loss" in history.history
    short = model()
    with pytest.warns(UserWarning, match="Your input ran out of data; interrupting training"):
        history = short.fit(generator(limit=10), steps_per_epoch=7, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 2  # 7 steps, then the 3 left, then none
    unknown = model()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = unknown.fit(generator(limit=5), epochs=2, verbose=2)
    assert len(history.history["loss"]) == 1
    assert "5/5 - " in capsys.readouterr().out  # the length learnt from the pass


def test_predict_and_evaluate_take_generators_and_steps():
    trained = model()
    trained.fit(X, Y, epochs=1, verbose=0)
    expected = trained.predict(X[:48], batch_size=16, verbose=0)
    only_x = (x for x, _ in generator())
    np.testing.assert_array_equal(trained.predict(only_x, steps=3, verbose=0), expected)
    np.testing.assert_array_equal(trained.predict(generator(), steps=3, verbose=0), expected)
    assert trained.evaluate(generator(limit=7), verbose=0) == trained.evaluate(
        X, Y, batch_size=16, verbose=0)
    with pytest.raises(ShapeError, match="predict got no batches from the generator"):
        trained.predict(iter([]), verbose=0)


def test_bad_datasets_and_arguments_get_clear_errors():
    trained = model()
    with pytest.raises(ShapeError, match="Batches has length 0: a PyDataset must hold at least "
                                         "one batch"):
        trained.fit(Batches(rows=0), verbose=0)

    class Wrong(Batches):
        def __getitem__(self, index):
            x, y = super().__getitem__(index)
            return (x[:, :5] if index == 2 else x), y
    with pytest.raises(ShapeError, match=r"expects x of batch 2 .*of shape \(N, 6\), got "
                                         r"\(16, 5\)"):
        trained.fit(Wrong(), shuffle=False, verbose=0)
    with pytest.raises(ArgumentError, match="When providing `x` as a PyDataset, `y` should not "
                                            "be passed"):
        trained.fit(Batches(), Y, verbose=0)
    with pytest.raises(ArgumentError, match="`validation_split` is only supported for NumPy "
                                            "arrays, got x as a generator"):
        trained.fit(generator(), steps_per_epoch=2, validation_split=0.2, verbose=0)
    with pytest.raises(ArgumentError, match="steps_per_epoch is for a PyDataset or a generator"):
        trained.fit(X, Y, steps_per_epoch=3, verbose=0)
    with pytest.raises(ArgumentError, match="use_multiprocessing=True is not supported"):
        trained.fit(Batches(use_multiprocessing=True), verbose=0)
    with pytest.raises(ArgumentError, match="holds sample weights"):
        trained.fit(iter([(X, Y, np.ones(100))]), verbose=0)


def test_a_subclass_that_skips_super_init_gets_keras_warning_and_defaults():
    class Lazy(tn.utils.PyDataset):
        def __init__(self):  # no super().__init__()
            self.length = 1

        def __len__(self):
            return self.length

        def __getitem__(self, index):
            return X, Y
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model().fit(Lazy(), verbose=0)
    assert any("should call `super().__init__(**kwargs)`" in str(w.message) for w in caught)
    assert tn.utils.Sequence is tn.utils.PyDataset


# -- to_categorical and normalize ------------------------------------------------------------------
def test_to_categorical_by_hand_and_its_errors():
    np.testing.assert_array_equal(tn.utils.to_categorical([0, 2, 1]),
                                  [[1, 0, 0], [0, 0, 1], [0, 1, 0]], strict=False)
    column = tn.utils.to_categorical(np.array([[1], [0]]), num_classes=4)
    assert column.shape == (2, 4) and column.dtype == np.float64
    assert tn.utils.to_categorical(np.zeros((2, 3), int), 2).shape == (2, 3, 2)
    with pytest.raises(LabelError, match=r"expected labels in \[0, 3\), got 3"):
        tn.utils.to_categorical([0, 3], num_classes=3)
    with pytest.raises(LabelError, match="values with fractions"):
        tn.utils.to_categorical([0.5])
    with pytest.raises(ArgumentError, match="num_classes expected a positive int, got 0"):
        tn.utils.to_categorical([0], num_classes=0)


def test_normalize_by_hand():
    got = tn.utils.normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(got, [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(tn.utils.normalize(np.array([[1.0, 3.0]]), axis=0, order=1),
                               [[1.0, 1.0]])
    with pytest.raises(ArgumentError, match="Argument `order` must be an int >= 1"):
        tn.utils.normalize(np.ones(2), order=0)


def test_to_categorical_and_normalize_give_keras_numbers(keras):
    labels = np.array([[2], [0], [1], [2]])
    got, expected = tn.utils.to_categorical(labels), keras.utils.to_categorical(labels)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    x = RNG.standard_normal((5, 4))
    np.testing.assert_array_equal(tn.utils.normalize(x, axis=1, order=3),
                                  keras.utils.normalize(x, axis=1, order=3))


def test_graph_models_take_dict_batches_of_several_inputs():
    left, right = tn.Input((6,), name="left"), tn.Input((6,), name="right")
    joined = tn.layers.Concatenate()([tn.layers.Dense(4)(left), tn.layers.Dense(4)(right)])
    graph = tn.Model([left, right], tn.layers.Dense(3, activation="softmax")(joined), seed=0)
    graph.compile("adam", "sparse_categorical_crossentropy")
    batches = [({"left": X[i:i + 20], "right": X[i:i + 20] * 2}, Y[i:i + 20])
               for i in range(0, 100, 20)]
    history = graph.fit(iter(batches), epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1
    got = graph.predict(iter(b[0] for b in batches), verbose=0)
    np.testing.assert_array_equal(got, graph.predict({"left": X, "right": X * 2}, batch_size=20,
                                                     verbose=0))


# -- memmaps and shuffle="batch" -------------------------------------------------------------------
def test_a_memmap_trains_batch_by_batch_as_the_same_array_in_memory(tmp_path, monkeypatch):
    """x saved as uint8 and opened with mmap_mode="r": fit, evaluate and predict read it one
    batch at a time (never the whole file) and give the bits of the array loaded and cast."""
    pixels = RNG.integers(0, 256, (100, 6), dtype=np.uint8)
    np.save(tmp_path / "x.npy", pixels)
    on_disk = np.load(tmp_path / "x.npy", mmap_mode="r")
    read_rows = []
    original = tn.batching.DiskArray.read

    def spy(self, rows=slice(None)):
        batch = original(self, rows)
        read_rows.append(len(batch))
        return batch
    monkeypatch.setattr(tn.batching.DiskArray, "read", spy)
    disk, memory = model(), model()
    kwargs = dict(batch_size=16, epochs=2, validation_split=0.2, verbose=0)
    got = disk.fit(on_disk, Y, shuffle="batch", **kwargs)
    expected = memory.fit(pixels.astype(np.float32), Y, shuffle="batch", **kwargs)
    assert got.history == expected.history
    np.testing.assert_array_equal(disk.parameters, memory.parameters)
    assert max(read_rows) == 16 and sum(read_rows) == 2 * 100  # each epoch: 80 + 20 rows
    np.testing.assert_array_equal(disk.predict(on_disk, batch_size=16, verbose=0),
                                  memory.predict(pixels.astype(np.float32), batch_size=16,
                                                 verbose=0))


def test_shuffle_batch_permutes_batches_of_consecutive_rows():
    seen = []
    trained = model()
    original = trained.compute_loss_and_gradients

    def spy(x, y):
        seen.append(x[:, 0].copy())
        return original(x, y)
    trained.compute_loss_and_gradients = spy
    trained.fit(X, Y, batch_size=16, epochs=1, shuffle="batch", verbose=0)
    starts = [int(np.flatnonzero(X[:, 0] == batch[0])[0]) for batch in seen]
    assert sorted(starts) == list(range(0, 100, 16)) and starts != sorted(starts)
    for start, batch in zip(starts, seen):
        np.testing.assert_array_equal(batch, X[start:start + 16, 0])
    with pytest.raises(ArgumentError, match="shuffle expected True, False or 'batch', got 'rows'"):
        trained.fit(X, Y, shuffle="rows", verbose=0)


def test_utils_set_random_seed_is_tinynns_and_leaves_numpy_alone():
    before = np.random.get_state()
    weights = []
    for _ in range(2):
        tn.utils.set_random_seed(5)
        built = tn.Sequential([tn.layers.Input((3,)), tn.layers.Dense(2)])
        built.build()
        weights.append(built.parameters.copy())
    np.testing.assert_array_equal(*weights)
    after = np.random.get_state()
    assert after[0] == before[0] and np.array_equal(after[1], before[1])


# -- image_dataset_from_directory ------------------------------------------------------------------
def write_images(root, counts: dict, size=(5, 4), mode="L"):
    from PIL import Image
    rng = np.random.default_rng(7)
    written = {}
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (size[1], size[0], *((3,) if mode == "RGB" else ())),
                                  dtype=np.uint8)
            Image.fromarray(pixels, mode).save(root / name / f"{i}.png")
            written[str(root / name / f"{i}.png")] = pixels
    (root / next(iter(counts)) / "notes.txt").write_text("not an image")  # skipped
    return written


def test_image_dataset_from_directory_reads_labels_batches_and_splits(tmp_path, capsys):
    written = write_images(tmp_path, {"b_dog": 3, "a_cat": 4})
    data = tn.utils.image_dataset_from_directory(tmp_path, color_mode="grayscale",
                                                 image_size=(4, 5), batch_size=3, seed=1)
    assert "Found 7 files belonging to 2 classes." in capsys.readouterr().out
    assert data.class_names == ["a_cat", "b_dog"] and len(data) == 3
    images, labels = zip(*(data[i] for i in range(len(data))))
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert images.shape == (7, 4, 5, 1) and images.dtype == np.float32
    for path, image, label in zip(data.paths, images, labels):
        np.testing.assert_array_equal(image[..., 0], written[str(path)])  # no resize: exact
        assert data.class_names[label] == path.parent.name
    ordered = tn.utils.image_dataset_from_directory(
        tmp_path, class_names=["b_dog", "a_cat"], label_mode="categorical", shuffle=False,
        image_size=(2, 2), color_mode="rgb", verbose=False)
    x, y = ordered[0]
    assert x.shape == (7, 2, 2, 3) and y.shape == (7, 2)
    np.testing.assert_array_equal(y[0], [1, 0])  # unshuffled: b_dog's first file, class 0
    train, validation = tn.utils.image_dataset_from_directory(
        tmp_path, validation_split=0.3, subset="both", seed=3, image_size=(4, 5),
        verbose=False)
    assert len(train.paths) == 5 and len(validation.paths) == 2
    assert not set(train.paths) & set(validation.paths)
    with pytest.raises(ArgumentError, match="you must provide a `seed` argument"):
        tn.utils.image_dataset_from_directory(tmp_path, validation_split=0.2,
                                              subset="training")
    with pytest.raises(ArgumentError, match=r"class_names expected the subdirectories "
                                            r"\['a_cat', 'b_dog'\]"):
        tn.utils.image_dataset_from_directory(tmp_path, class_names=["cat", "dog"])


def test_a_model_trains_from_an_image_folder_with_workers(tmp_path):
    write_images(tmp_path, {"a": 20, "b": 20}, size=(6, 6))
    data = tn.utils.image_dataset_from_directory(tmp_path, color_mode="grayscale",
                                                 image_size=(6, 6), batch_size=8, seed=0,
                                                 workers=2, verbose=False)
    model = tn.Sequential([L.Input((6, 6, 1)), L.Rescaling(1 / 255), L.Flatten(),
                           L.Dense(2, activation="softmax")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(data, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert model.predict(data, verbose=0).shape == (40, 2)


def test_split_dataset_follows_keras_sizes_on_arrays():
    left, right = tn.utils.split_dataset(X, left_size=0.8)
    np.testing.assert_array_equal(left, X[:80])
    np.testing.assert_array_equal(right, X[80:])
    (x_left, y_left), (x_right, y_right) = tn.utils.split_dataset((X, Y), right_size=30,
                                                                  shuffle=True, seed=2)
    assert len(x_left) == len(y_left) == 70 and len(x_right) == 30
    rows = [int(np.flatnonzero((X == row).all(axis=1))[0]) for row in x_right]
    assert rows == np.random.default_rng(2).permutation(100)[70:].tolist()  # seed 2's order
    np.testing.assert_array_equal(y_right, Y[rows])  # pairs kept together
    halves = tn.utils.split_dataset([X, Y], left_size=0.25, right_size=0.5)
    assert isinstance(halves[0], list) and len(halves[0][0]) == 25 and len(halves[1][0]) == 50
    with pytest.raises(ArgumentError, match="The sum of `left_size` and `right_size` is "
                                            "greater than 1"):
        tn.utils.split_dataset(X, left_size=0.7, right_size=0.5)
    with pytest.raises(ArgumentError, match=r"`left_size` should be either a positive integer "
                                            r"smaller than 100"):
        tn.utils.split_dataset(X, left_size=100)
    with pytest.raises(ArgumentError, match="expected left_size or right_size"):
        tn.utils.split_dataset(X)


def test_keras_simple_mnist_convnet_runs_with_tinynn_as_keras():
    """keras.io's "Simple MNIST convnet", its code as written with ``import tinynn as keras``
    (random digits-shaped data instead of the MNIST download, 2 epochs on 256 images)."""
    import tinynn as keras
    from tinynn import layers
    num_classes, input_shape = 10, (28, 28, 1)
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (256, 28, 28)).astype("float32") / 255
    y_train = rng.integers(0, 10, 256)
    x_train = np.expand_dims(x_train, -1)
    y_train = keras.utils.to_categorical(y_train, num_classes)
    model = keras.Sequential([
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=128, epochs=2, validation_split=0.1, verbose=0)
    score = model.evaluate(x_train, y_train, verbose=0)
    assert len(score) == 2 and 0 <= score[1] <= 1
    assert model.count_params() == 34_826  # the tutorial's summary: 34,826 parameters
