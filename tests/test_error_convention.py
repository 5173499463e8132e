"""The error convention, walked over the public API: every tinynn error is also the matching
built-in type, and an invalid argument value raises ``ArgumentError``, a ``ValueError`` (as Keras
raises ``ValueError``), whose message names the argument, what was expected and what was
received. A refused call changes nothing."""

import inspect

import numpy as np
import pytest

import tinynn as tn
from tinynn import errors
from tinynn.errors import ArgumentError, TinyNNError

L = tn.layers

#: (description, call, the received value the message must quote). Every case is a bad value.
BAD_ARGUMENTS = [
    ("Dense(0)", lambda: L.Dense(0), "0"),
    ("Dense(-3)", lambda: L.Dense(-3), "-3"),
    ("Dense(2.5)", lambda: L.Dense(2.5), "2.5"),
    ("Dense activation", lambda: L.Dense(2, activation="nope"), "'nope'"),
    ("Dense initializer", lambda: L.Dense(2, kernel_initializer="nope"), "'nope'"),
    ("Conv2D filters", lambda: L.Conv2D(0, 3), "0"),
    ("Conv2D kernel_size", lambda: L.Conv2D(4, (3, 3, 3)), "(3, 3, 3)"),
    ("Conv2D strides", lambda: L.Conv2D(4, 3, strides=0), "0"),
    ("Conv2D padding", lambda: L.Conv2D(4, 3, padding="full"), "'full'"),
    ("Conv2D algorithm", lambda: L.Conv2D(4, 3, algorithm="fft"), "'fft'"),
    ("MaxPooling2D pool_size", lambda: L.MaxPooling2D(0), "0"),
    ("MaxPooling2D padding", lambda: L.MaxPooling2D(padding="wide"), "'wide'"),
    ("MaxPooling2D window", lambda: L.MaxPooling2D((17, 17)), "(17, 17)"),
    ("Dropout(1.0)", lambda: L.Dropout(1.0), "1.0"),
    ("Dropout(-0.1)", lambda: L.Dropout(-0.1), "-0.1"),
    ("Dropout seed", lambda: L.Dropout(0.5, seed=-1), "-1"),
    ("Activation", lambda: L.Activation("nope"), "'nope'"),
    ("Input shape", lambda: L.Input((28, 0)), "0"),
    ("InputLayer batch_size", lambda: L.InputLayer((28,), batch_size=0), "0"),
    ("InputLayer dtype", lambda: L.InputLayer((28,), dtype="int8"), "'int8'"),
    ("Reshape target_shape", lambda: L.Reshape((-1, 0)), "(-1, 0)"),
    ("Rescaling scale", lambda: L.Rescaling("1/255"), "'1/255'"),
    ("RandomFlip mode", lambda: L.RandomFlip("diagonal"), "'diagonal'"),
    ("RandomFlip seed", lambda: L.RandomFlip(seed=-3), "-3"),
    ("RandomBrightness factor", lambda: L.RandomBrightness(2.0), "2.0"),
    ("RandomContrast value_range", lambda: L.RandomContrast(0.1, value_range=(0,)), "(0,)"),
    ("RandomTranslation fill_mode", lambda: L.RandomTranslation(0.1, 0.1, fill_mode="mirror"),
     "'mirror'"),
    ("RandomRotation interpolation", lambda: L.RandomRotation(0.1, interpolation="cubic"),
     "'cubic'"),
    ("RandomZoom height_factor", lambda: L.RandomZoom(1.5), "1.5"),
    ("RandomCrop height", lambda: L.RandomCrop(0, 4), "0"),
    ("ZeroPadding2D padding", lambda: L.ZeroPadding2D((1, 2, 3)), "(1, 2, 3)"),
    ("Concatenate axis", lambda: L.Concatenate(axis=0), "0"),
    ("Dense regularizer", lambda: L.Dense(2, kernel_regularizer="l3"), "'l3'"),
    ("BatchNormalization momentum", lambda: L.BatchNormalization(momentum=1.5), "1.5"),
    ("BatchNormalization epsilon", lambda: L.BatchNormalization(epsilon=0), "0"),
    ("BatchNormalization axes", lambda: L.BatchNormalization(axis=[1, 2]), "[1, 2]"),
    ("AveragePooling2D pool_size", lambda: L.AveragePooling2D(0), "0"),
    ("AveragePooling2D padding", lambda: L.AveragePooling2D(padding="full"), "'full'"),
    ("GlobalAveragePooling2D keepdims", lambda: L.GlobalAveragePooling2D(keepdims="yes"),
     "'yes'"),
    ("GlobalAveragePooling2D data_format",
     lambda: L.GlobalAveragePooling2D(data_format="channels_first"), "'channels_first'"),
    ("layer name", lambda: L.Dense(2, name=3), "3"),
    ("Adam learning_rate", lambda: tn.optimizers.Adam(learning_rate=0), "0"),
    ("Adam beta_1", lambda: tn.optimizers.Adam(beta_1=1.0), "1.0"),
    ("Adam epsilon", lambda: tn.optimizers.Adam(epsilon=-1e-7), "-1e-07"),
    ("SGD momentum", lambda: tn.optimizers.SGD(momentum=1.5), "1.5"),
    ("RMSprop rho", lambda: tn.optimizers.RMSprop(rho=1.0), "1.0"),
    ("RMSprop momentum", lambda: tn.optimizers.RMSprop(momentum=-0.1), "-0.1"),
    ("AdamW weight_decay", lambda: tn.optimizers.AdamW(weight_decay=-1), "-1"),
    ("L1", lambda: tn.regularizers.L1(-1.0), "-1.0"),
    ("activation names match as Keras's", lambda: tn.activations.get("Gelu"), "'Gelu'"),
    ("unknown optimizer", lambda: tn.optimizers.get("adamax2"), "'adamax2'"),
    ("unknown loss", lambda: tn.losses.get("hinge2"), "'hinge2'"),
    ("unknown activation", lambda: tn.activations.get("nope"), "'nope'"),
    ("unknown initializer", lambda: tn.initializers.get("nope"), "'nope'"),
    ("unknown regularizer", lambda: tn.regularizers.get("l3"), "'l3'"),
    ("negative L2", lambda: tn.regularizers.L2(-0.1), "-0.1"),
    ("Sequential seed", lambda: tn.Sequential(seed=-1), "-1"),
    ("set_floatx", lambda: tn.config.set_floatx("float16"), "'float16'"),
    ("set_random_seed", lambda: tn.set_random_seed(-5), "-5"),
    ("EarlyStopping patience", lambda: tn.callbacks.EarlyStopping(patience=-1), "-1"),
    ("ModelCheckpoint save_freq", lambda: tn.callbacks.ModelCheckpoint("m.npz", save_freq="x"),
     "'x'"),
    ("LearningRateScheduler", lambda: tn.callbacks.LearningRateScheduler(3), "3"),
    ("confusion_matrix num_classes",
     lambda: tn.metrics.confusion_matrix([0, 1], [0, 1], num_classes=0), "0"),
]


@pytest.mark.parametrize("call, received", [case[1:] for case in BAD_ARGUMENTS],
                         ids=[case[0] for case in BAD_ARGUMENTS])
def test_a_bad_argument_value_is_a_value_error_naming_expected_and_received(call, received):
    with pytest.raises(ArgumentError) as caught:
        call()
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert "expected" in message and received in message, message


def test_every_registered_layer_with_arguments_is_walked():
    walked = {description.split()[0].split("(")[0] for description, *_ in BAD_ARGUMENTS}
    classes = {cls.__name__ for cls in L.REGISTRY.values()}
    # Flatten and the element-wise merges take no argument but their name
    assert classes - walked == {"Flatten", "Add", "Subtract", "Multiply", "Average", "Maximum",
                                "Minimum"}


def compiled_model() -> tn.Sequential:
    model = tn.Sequential([L.Input((4,)), L.Dense(3, activation="softmax")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


MODEL_CALLS = [
    ("fit batch_size=0", lambda m, x, y: m.fit(x, y, batch_size=0, verbose=0), "0"),
    ("fit epochs=-1", lambda m, x, y: m.fit(x, y, epochs=-1, verbose=0), "-1"),
    ("fit validation_split=1", lambda m, x, y: m.fit(x, y, validation_split=1.0, verbose=0),
     "1.0"),
    ("fit initial_epoch", lambda m, x, y: m.fit(x, y, initial_epoch=-2, verbose=0), "-2"),
    ("evaluate batch_size", lambda m, x, y: m.evaluate(x, y, batch_size=-4, verbose=0), "-4"),
    ("predict batch_size", lambda m, x, y: m.predict(x, batch_size=0, verbose=0), "0"),
    ("compile metric", lambda m, x, y: m.compile("adam", "mse", metrics=["f1"]), "'f1'"),
    ("compile loss", lambda m, x, y: m.compile("adam", "nope"), "'nope'"),
    ("compile optimizer", lambda m, x, y: m.compile("nope", "mse"), "'nope'"),
]


@pytest.mark.parametrize("call, received", [case[1:] for case in MODEL_CALLS],
                         ids=[case[0] for case in MODEL_CALLS])
def test_a_refused_model_call_is_a_value_error_and_changes_nothing(call, received):
    model = compiled_model()
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    y = np.arange(8) % 3
    model.build((None, 4))
    before = [w.copy() for w in model.get_weights()]
    optimizer, loss = model.optimizer, model.loss
    with pytest.raises(ArgumentError) as caught:
        call(model, x, y)
    assert isinstance(caught.value, ValueError)
    assert "expected" in str(caught.value) and received in str(caught.value)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert (model.optimizer, model.loss) == (optimizer, loss)


def test_every_error_class_is_also_a_built_in_exception():
    classes = [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
               if issubclass(obj, TinyNNError) and obj is not TinyNNError]
    assert ArgumentError in classes and len(classes) >= 15
    for cls in classes:
        if cls.__subclasses__():  # a family's base (DatasetError): its members are checked
            continue
        built_in = [base for base in cls.__mro__
                    if base.__module__ == "builtins" and base not in (object, BaseException,
                                                                        Exception)]
        assert built_in, f"{cls.__name__} is not also a built-in exception type"


def test_no_module_raises_the_bare_base_class():
    import pathlib
    root = pathlib.Path(tn.__file__).parent
    offenders = [f"{path.relative_to(root)}:{i}" for path in root.rglob("*.py")
                 for i, line in enumerate(path.read_text().splitlines(), 1)
                 if "raise TinyNNError(" in line]
    assert not offenders, f"bare TinyNNError raised at {offenders}: use a specific error type"
