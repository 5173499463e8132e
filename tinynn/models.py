"""``Sequential``: a stack of layers trained as Keras trains it.

After ``build``, every trainable weight lives in one contiguous buffer (``model.parameters``)
and every gradient in a second one of the same layout (``model.gradients``); each layer's
``params[k]`` and ``grads[k]`` are views into them. An optimizer step is therefore one pass over
one buffer, and sees only trainable weights. Non-trainable weights (layer ``state``) live in a
third buffer (``model.states``).

Randomness: ``Sequential(seed=s)`` spawns three child Generators from ``SeedSequence(s)``, in this
order: weight initialisation, dropout masks, shuffling. With ``seed=None`` the seed is drawn from
the source that ``tinynn.set_random_seed`` resets. NumPy's global RNG is never used.
"""

from __future__ import annotations

import math

import numpy as np

from . import config, denormals, loops, losses, optimizers, saving
from .activations import Softmax
from .batching import EpochIterator
from .callbacks import CallbackList, History
from .distribution import active_communicator, replicas
from .errors import ArgumentError, NonFiniteLossError, NotCompiledError, ShapeError
from .interrupt import InterruptGuard
from .layers.base import Layer, snake_case
from .layers.core import Input
from .node import InputLayer, SymbolicTensor
from .progress import resolve_verbose
from .summary import summary_lines
from .validation import batch_size as check_batch_size
from .validation import float_array, non_negative_int, real_in_range, same_length

_ALIGN = 16  # parameter offsets are multiples of 16 elements (64 bytes in float32)
#: evaluate/predict split a step's batch into chunks so that one layer's input and output together
#: take at most this many bytes; results are the same as for the whole batch (inference is per
#: sample) and a step is still one batch of the caller's batch_size.
INFERENCE_ACTIVATION_BYTES = 128 * 2**20
_METRIC_NAMES = ("accuracy", "acc")


class Sequential:
    """A linear stack of layers.

    Parameters: ``layers`` (optional list, first may be ``Input``), ``name``, ``seed`` (int or
    None). Input shape: (N, *input_shape). Output shape: (N, *output_shape).
    """

    def __init__(self, layers: list[Layer] | None = None, name: str = "sequential",
                 seed: int | None = None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ArgumentError("Sequential seed expected a non-negative int or None, got "
                                f"{seed!r}")
        self.name = name
        self.seed = config.draw_seed() if seed is None else seed
        children = np.random.SeedSequence(self.seed).spawn(3)
        self.rngs = dict(zip(("init", "dropout", "shuffle"), map(np.random.default_rng, children)))
        self.layers: list[Layer] = []
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None
        self.built = False
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses.Loss | None = None
        self.metrics: list[str] = []
        self.history: History | None = None
        self.stop_training = self.stop_evaluating = self.stop_predicting = False
        self.parameters = self.gradients = self.states = None
        self.layout: dict[str, tuple[slice, tuple]] = {}
        self.state_layout: dict[str, tuple[slice, tuple]] = {}
        for layer in layers or []:
            self.add(layer)

    # -- construction --------------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append a layer (or an ``Input`` declaring the input shape) before the model is built."""
        if isinstance(layer, SymbolicTensor) and isinstance(layer.history[0], InputLayer):
            if self.layers:  # Sequential([tinynn.Input(shape), ...]), keras.io's idiom
                raise ArgumentError("Input must come first in a Sequential model")
            self.input_shape = layer.sample_shape
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expected a Layer, got {type(layer).__name__}")
        if self.built:
            raise RuntimeError(f"cannot add {layer!r} to the built model {self.name!r}: "
                              "add every layer before build, fit or summary")
        if isinstance(layer, Input) or (not self.layers and layer.declared_input_shape):
            if self.layers:
                raise ArgumentError("Input must come first in a Sequential model")
            self.input_shape = layer.declared_input_shape
            if isinstance(layer, Input):
                return
        if layer.name is None:
            layer.name = self._unique_name(snake_case(type(layer).__name__))
        elif any(other.name == layer.name for other in self.layers):
            raise ArgumentError(f"layer name {layer.name!r} is already used in {self.name!r}")
        self.layers.append(layer)

    def _unique_name(self, base: str) -> str:
        taken = {layer.name for layer in self.layers}
        name, i = base, 0
        while name in taken:
            i += 1
            name = f"{base}_{i}"
        return name

    def build(self, input_shape: tuple | None = None,
              weight_shapes: dict[str, list[tuple]] | None = None) -> None:
        """Create all weights. ``input_shape`` includes the batch axis, as in Keras
        (``model.build((None, 28, 28))``); without it, the declared input shape is used.

        ``weight_shapes`` (for loaders: ``{"dense": [(784, 10), (10,)], ...}``, each layer's
        weights in Keras's order) lets layers create only those weights, at those shapes: any
        other is refused before it is allocated, so a file's config cannot make tinynn allocate
        more than the file holds."""
        if input_shape is not None:
            shape = tuple(input_shape)[1:]
        elif self.input_shape is not None:
            shape = self.input_shape
        else:
            raise ShapeError(f"model {self.name!r} has no input shape: start it with "
                             "Input(shape), pass input_shape to its first layer, or call fit")
        if not self.layers:
            raise ArgumentError(f"model {self.name!r} has no layers to build")
        if self.built:
            if shape != self.input_shape:
                raise ShapeError(f"model {self.name!r} was built for inputs {self.input_shape}, "
                                 f"got {shape}")
            return
        self.output_shape = self._output_shape_for(shape)
        for layer in self.layers:
            if weight_shapes is not None:
                layer.weight_guard = _declared_only(layer.name,
                                                    weight_shapes.get(layer.name, []))
            try:
                layer.build(shape, self.rngs["init"])
            finally:
                layer.weight_guard = None
            if layer.uses_training_rng:
                layer.rng = self.rngs["dropout"]
            shape = layer.compute_output_shape(shape)
        self.input_shape = tuple(input_shape)[1:] if input_shape is not None else self.input_shape
        self._pack_parameters()
        self.built = True
        if self.optimizer is not None:
            self.optimizer.build(self.parameters, self.layout)

    def _output_shape_for(self, shape: tuple) -> tuple:
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def _pack_parameters(self) -> None:
        """Move every layer's trainable weights into one buffer (and point ``params``/``grads``
        at it and at the gradient buffer), and its non-trainable ones into another."""
        self.parameters, self.layout = _pack([(layer, layer.params) for layer in self.layers])
        self.gradients = np.zeros_like(self.parameters)
        for layer in self.layers:
            for key in layer.grads:
                where, shape = self.layout[f"{layer.name}/{key}"]
                layer.grads[key] = self.gradients[where].reshape(shape)
        self.states, self.state_layout = _pack([(layer, layer.state) for layer in self.layers])

    def named_weights(self) -> dict[str, np.ndarray]:
        """Every weight as ``{"layer/key": view}``, in Keras's order (layer by layer, each
        layer's trainable weights, then its non-trainable ones)."""
        return {f"{layer.name}/{key}": value for layer in self.layers
                for key, value in layer.weights.items()}

    def compile(self, optimizer, loss, metrics: list[str] | None = None) -> None:
        """Set the optimizer (name or instance), loss (name or instance) and metrics
        (``["accuracy"]``); the optimizer's state starts fresh."""
        optimizer = optimizers.get(optimizer)
        loss = losses.get(loss)
        metrics = list(metrics or [])
        for metric in metrics:
            if metric not in _METRIC_NAMES:
                raise ArgumentError(f"unknown metric {metric!r}: expected one of {_METRIC_NAMES}")
        self.optimizer, self.loss, self.metrics = optimizer, loss, metrics
        if self.built:
            self.optimizer.build(self.parameters, self.layout)

    # -- forward and backward -------------------------------------------------------------------
    @property
    def fuses_softmax(self) -> bool:
        """True when the loss is a cross-entropy on probabilities and the last layer is a
        softmax: then softmax and loss are computed together from the logits."""
        last = self.layers[-1]
        return (isinstance(self.loss, losses.Crossentropy) and not self.loss.from_logits
                and isinstance(getattr(last, "activation", None), Softmax)
                and hasattr(last, "forward_logits"))

    def forward(self, x: np.ndarray, training: bool = False, logits: bool = False) -> np.ndarray:
        """The model's output for prepared ``x`` (``prepare``); with ``logits``, the last
        layer's pre-softmax output. In training, layers keep what ``backward`` needs."""
        for layer in self.layers[:-1]:
            x = layer.forward(x, training=training)
        last = self.layers[-1]
        return last.forward_logits(x, training) if logits else last.forward(x, training)

    def backward(self, dout: np.ndarray, logits: bool = False, input_gradient: bool = False,
                 regularization: bool = True):
        """Fill every layer's grads from d(loss)/d(out), plus the regularizers' gradients if
        ``regularization`` (data-parallel ranks other than 0 leave them to rank 0). Returns
        d(loss)/d(input) when ``input_gradient``; otherwise None, and no layer computes a
        gradient nobody uses: the first layer with parameters skips its dx (for the CNN,
        conv1's col2im) and the parameter-free layers before it are not run backward at all."""
        first = 0 if input_gradient else next(
            (i for i, layer in enumerate(self.layers) if layer.params), len(self.layers) - 1)
        for i, layer in enumerate(self.layers):
            layer.compute_input_gradient = i > first or input_gradient
        last = self.layers[-1]
        grad = last.backward_logits(dout) if logits else last.backward(dout)
        for layer in reversed(self.layers[first:-1]):
            grad = layer.backward(grad)
        for layer in self.layers[:first]:
            layer.release_cache()  # their backward would only produce d(input)
        if regularization:
            self._add_regularization_gradients()
        return grad if input_gradient else None

    def release_caches(self) -> None:
        """Drop every layer's training-forward values (after a forward without backward)."""
        for layer in self.layers:
            layer.release_cache()

    def regularization_loss(self) -> float:
        """The sum of the regularizers' penalties on the current weights (Keras adds it to the
        loss it reports and differentiates)."""
        return float(sum(regularizer(layer.params[key]) for layer in self.layers
                         for key, regularizer in layer.regularizers.items()))

    def _add_regularization_gradients(self) -> None:
        for layer in self.layers:
            for key, regularizer in layer.regularizers.items():
                layer.grads[key] += regularizer.gradient(layer.params[key])

    def loss_and_output_gradient(self, y, out, logits: bool = False
                                 ) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample losses (N,) and d(mean loss)/d(out), without the regularization."""
        if logits:
            return self.loss.logits_per_sample_and_gradient(y, out)
        return self.loss.per_sample(y, out), self.loss.gradient(y, out)

    def compute_loss_and_gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """One forward/backward pass in training mode on prepared arrays; fills
        ``model.gradients``. Returns the batch-mean loss and the output (logits if fused)."""
        fused = self.fuses_softmax
        out = self.forward(x, training=True, logits=fused)
        with np.errstate(over="ignore", invalid="ignore"):  # a non-finite loss is raised by fit
            per_sample, dout = self.loss_and_output_gradient(y, out, fused)
        loss = float(np.mean(per_sample)) + self.regularization_loss()
        if math.isfinite(loss):
            self.backward(dout, fused)
        else:
            self.release_caches()
        return loss, out

    # -- input preparation ----------------------------------------------------------------------
    def prepare(self, x, y=None, name: str = "x"):
        """Validate and cast inputs (and targets) without changing the model; build it if needed.
        Returns x as floatx (N, *input_shape), and y ready for the loss (or None)."""
        x = float_array(x, config.floatx(), name)
        if x.ndim < 2:
            raise ShapeError(f"{name} expected shape (N, features...), got {x.shape}")
        if self.input_shape is not None and x.shape[1:] != self.input_shape:
            raise ShapeError(f"model {self.name!r} expects {name} of shape (N, "
                             f"{', '.join(map(str, self.input_shape))}), got {x.shape}"
                             + _layout_hint(x.shape[1:], self.input_shape)
                             + (" (its input size is fixed once built)" if self.built else ""))
        output_shape = self._output_shape_for(x.shape[1:])
        if y is not None:
            same_length(x, np.asarray(y), name, "y")
            y = self.loss.prepare_targets(y, (len(x), *output_shape))
        if not self.built:
            self.build((None, *x.shape[1:]))
        return x, y

    def _require_compiled(self, what: str) -> None:
        if self.optimizer is None or self.loss is None:
            raise NotCompiledError(f"{what} needs a compiled model: call model.compile(optimizer, "
                                   "loss, metrics) first")

    # -- training -------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1,
            verbose="auto", callbacks=None, validation_split: float = 0.0,
            validation_data=None, shuffle: bool = True, initial_epoch: int = 0) -> History:
        """Train for ``epochs`` epochs (Keras semantics). Returns the ``History``.

        Each epoch reshuffles the training part (``shuffle=True``), takes ceil(N / batch_size)
        steps (the last partial batch kept), and reports per-sample means of the training loss
        and metrics, then validation metrics with training off. ``callbacks`` get Keras's hooks;
        a ``History`` (always) and, unless ``verbose=0``, a ``ProgbarLogger`` are added to them.
        Under a ``tinynn.distribution.DataParallel``, every rank runs the same ``fit`` and
        each batch is split across them (see ``tinynn.distribution``).
        """
        self._require_compiled("fit")
        batch_size = check_batch_size(batch_size)
        epochs = non_negative_int(epochs, "epochs")
        initial_epoch = non_negative_int(initial_epoch, "initial_epoch")
        real_in_range(validation_split, "validation_split", 0, 1, high_open=True)
        verbose = resolve_verbose(verbose)
        x, y = self.prepare(x, y)
        if len(x) == 0:
            raise ShapeError("fit expected at least one sample, got x of shape "
                             f"{x.shape}")
        x_train, y_train, validation = self._split_validation(x, y, validation_split,
                                                              validation_data)
        comm = active_communicator()
        replicas.start(self, comm, "fit", _named_arrays(x_train, y_train, validation), {
            "batch_size": batch_size, "epochs": epochs, "initial_epoch": initial_epoch,
            "shuffle": bool(shuffle), "optimizer": self.optimizer.get_config(),
            "loss": type(self.loss).__name__, "metrics": self.metrics}, training=True)
        batches = EpochIterator((x_train, y_train), batch_size,
                                self.rngs["shuffle"] if shuffle else None)
        logged = ["loss", *self.metrics]
        logged += [f"val_{k}" for k in logged] if validation is not None else []
        callback_list = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                                     rank=comm.rank, model=self, verbose=verbose, epochs=epochs,
                                     steps=batches.num_batches, metrics=logged)
        self.stop_training = False
        callback_list.on_train_begin()
        epoch_logs = None
        with InterruptGuard() as guard, denormals.flush_to_zero():
            for epoch in range(initial_epoch, epochs):
                callback_list.on_epoch_begin(epoch)
                try:
                    epoch_logs = loops.train_epoch(self, batches, epoch, guard, callback_list,
                                                   comm)
                except NonFiniteLossError as error:
                    error.history = self.history
                    raise
                if validation is not None:
                    val_logs = loops.test_loop(self, EpochIterator(validation, batch_size),
                                               callback_list, self._inference_rows(), comm)
                    epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
                callback_list.on_epoch_end(epoch, epoch_logs)
                self.stop_training = replicas.agree_after_epoch(self, comm, self.stop_training)
                if self.stop_training:
                    break
        callback_list.on_train_end(epoch_logs)
        return self.history

    def _split_validation(self, x, y, validation_split, validation_data):
        """Training arrays and the validation pair (or None), as Keras: validation_data wins;
        otherwise the last N - floor(N * (1 - split)) samples, taken before any shuffling."""
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ArgumentError("validation_data expected a tuple (x_val, y_val), got "
                                  f"{type(validation_data).__name__}")
            x_val, y_val = self.prepare(*validation_data, name="x_val")
            if len(x_val) == 0:
                raise ShapeError("validation_data expected at least one sample, got 0")
            return x, y, (x_val, y_val)
        if validation_split == 0:
            return x, y, None
        split_at = int(math.floor(len(x) * (1.0 - validation_split)))
        if split_at == 0 or split_at == len(x):
            raise ShapeError(
                f"validation_split={validation_split} on {len(x)} samples leaves "
                f"{split_at} for training and {len(x) - split_at} for validation: both must "
                "be non-empty")
        return x[:split_at], y[:split_at], (x[split_at:], y[split_at:])

    # -- inference ------------------------------------------------------------------------------
    def evaluate(self, x=None, y=None, batch_size: int | None = None, verbose="auto",
                 callbacks=None, return_dict: bool = False):
        """Loss (with the regularization penalty) and metrics with training off, in
        ceil(N / batch_size) steps: ``[loss, accuracy]`` (or the loss alone without metrics; a
        dict with ``return_dict=True``). ``callbacks`` get the ``on_test_*`` hooks. Under a
        ``DataParallel``, every rank evaluates its shard of each batch with rank 0's weights
        and returns the global result."""
        self._require_compiled("evaluate")
        batch_size = check_batch_size(batch_size)
        verbose = resolve_verbose(verbose)
        x, y = self.prepare(x, y)
        if len(x) == 0:
            raise ShapeError(f"evaluate expected at least one sample, got x of shape {x.shape}")
        comm = active_communicator()
        replicas.start(self, comm, "evaluate", _named_arrays(x, y),
                       {"batch_size": batch_size, "loss": type(self.loss).__name__,
                        "metrics": self.metrics}, training=False)
        batches = EpochIterator((x, y), batch_size)
        callback_list = CallbackList(callbacks, add_progbar=verbose != 0, rank=comm.rank,
                                     model=self, verbose=verbose, epochs=1,
                                     steps=batches.num_batches)
        with denormals.flush_to_zero():
            logs = loops.test_loop(self, batches, callback_list, self._inference_rows(), comm)
        if return_dict:
            return dict(sorted(logs.items()))
        return [logs["loss"], *(logs[k] for k in self.metrics)] if self.metrics else logs["loss"]

    def predict(self, x, batch_size: int | None = None, verbose="auto",
                callbacks=None) -> np.ndarray:
        """Outputs for ``x`` in ceil(N / batch_size) steps, training off. Returns
        (N, *output_shape) in floatx. ``callbacks`` get the ``on_predict_*`` hooks. Under a
        ``DataParallel``, every rank predicts its shard of each batch with rank 0's weights and
        gathers the others', so every rank returns all N outputs."""
        batch_size = check_batch_size(batch_size)
        verbose = resolve_verbose(verbose)
        x, _ = self.prepare(x)
        comm = active_communicator()
        replicas.start(self, comm, "predict", _named_arrays(x), {"batch_size": batch_size},
                       training=False)
        out = np.empty((len(x), *self.output_shape), dtype=config.floatx())
        batches = EpochIterator((x, out), batch_size)
        callback_list = CallbackList(callbacks, add_progbar=verbose != 0, rank=comm.rank,
                                     model=self, verbose=verbose, epochs=1,
                                     steps=batches.num_batches)
        with denormals.flush_to_zero():
            filled = loops.predict_loop(self, batches, callback_list, self._inference_rows(),
                                        comm)
        return out if filled == len(out) else out[:filled]  # fewer if a callback stopped it

    def _inference_rows(self) -> int:
        """How many samples one inference forward takes at most: so many that no layer's input
        plus output exceeds ``INFERENCE_ACTIVATION_BYTES`` (e.g. ~1000 images for the reports'
        CNN), at least one."""
        shape, largest = self.input_shape, 0
        for layer in self.layers:
            output = layer.compute_output_shape(shape)
            largest = max(largest, math.prod(shape) + math.prod(output))
            shape = output
        per_sample = largest * np.dtype(config.floatx()).itemsize
        return max(1, INFERENCE_ACTIVATION_BYTES // max(per_sample, 1))

    # -- weights and description ----------------------------------------------------------------
    def require_built(self, what: str) -> None:
        """Build the model from its declared input shape if needed; NotCompiledError naming
        ``what`` if it has none."""
        if not self.built:
            if self.input_shape is None:
                raise NotCompiledError(f"{what} needs a built model: give an input shape "
                                       "(Input(shape) or input_shape=...) or call build/fit first")
            self.build()

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight in Keras's order (``named_weights``), Keras shapes."""
        self.require_built("get_weights")
        return [w.copy() for w in self.named_weights().values()]

    def set_weights(self, weights: list) -> None:
        """Copy ``weights`` (the order and shapes of ``get_weights``) into the model; all checked
        before anything is written."""
        self.require_built("set_weights")
        targets = self.named_weights()
        weights = list(weights)
        if len(weights) != len(targets):
            raise ShapeError(f"set_weights expected {len(targets)} arrays for model "
                             f"{self.name!r}, got {len(weights)}")
        arrays = []
        for (name, target), value in zip(targets.items(), weights):
            value = float_array(value, target.dtype, f"weights for {name}")
            if value.shape != target.shape:
                raise ShapeError(f"set_weights: {name} expected shape {target.shape}, "
                                 f"got {value.shape}")
            arrays.append(value)
        for target, value in zip(targets.values(), arrays):
            target[...] = value

    def count_params(self) -> int:
        """Total number of weights, trainable and non-trainable (as Keras counts)."""
        self.require_built("count_params")
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print) -> None:
        """Print the Keras 2 style summary table (line length 65)."""
        self.require_built("summary")
        for line in summary_lines(self):
            print_fn(line)

    # -- saving (tinynn.saving) -----------------------------------------------------------------
    def save(self, filepath, overwrite: bool = True, include_optimizer: bool = True) -> None:
        """Save architecture, weights, RNG state and (``include_optimizer``) optimizer state to
        one ``.npz`` file, atomically; ``tinynn.models.load_model`` reads it back. A name ending
        in ``.keras`` writes Keras 3's format instead (no RNG state), which Keras loads."""
        saving.save_model(self, filepath, include_optimizer=include_optimizer,
                          overwrite=overwrite)

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Save the weights alone to a ``.weights.npz`` (or Keras ``.weights.h5``) file,
        atomically."""
        saving.save_weights(self, filepath, overwrite=overwrite)

    def export(self, filepath, format: str = "onnx", verbose: bool | None = None,
               input_signature=None, **kwargs) -> None:
        """Export the model for inference to an ONNX file, atomically (Keras 3's ``export``;
        ``format="onnx"``, the only one tinynn writes, is the default). Needs the ``onnx``
        extra. Input ``"input"``: float32 (batch, *input_shape), images NHWC; output
        ``"output"``: float32 (batch, *output_shape). Dropout is left out, BatchNormalization
        uses its moving statistics, a float64 model is written in float32. ``verbose`` (None:
        True, as Keras) prints what was written; ``opset_version`` 13 to 21 (default 17); see
        ``tinynn.saving.onnx.export``."""
        from .saving.onnx import export
        export(self, filepath, format=format, verbose=verbose, input_signature=input_signature,
               **kwargs)

    def load_weights(self, filepath) -> None:
        """Load weights saved by ``save_weights`` or ``save``, or by Keras (``.keras``,
        ``.weights.h5``, legacy ``.h5``); all checked first, all or nothing."""
        saving.load_weights(self, filepath)


def load_model(filepath, compile: bool = True) -> Sequential:
    """Rebuild a model saved by ``model.save``, or by Keras in a ``.keras`` or legacy ``.h5``
    file (see ``tinynn.saving.load_model``)."""
    return saving.load_model(filepath, compile=compile)


def _named_arrays(x, y=None, validation=None) -> dict:
    """``{"x": x, "y": y, "x_val": ..., "y_val": ...}`` for the arrays given (the data every
    data-parallel rank must pass alike)."""
    arrays = {"x": x, "y": y, **dict(zip(("x_val", "y_val"), validation or ()))}
    return {name: array for name, array in arrays.items() if array is not None}


def _layout_hint(got: tuple, expected: tuple) -> str:
    """A hint for the two common image-layout slips: a missing channel axis, or NCHW data."""
    if len(expected) == 3 and got == expected[:2] and expected[2] == 1:
        return ": add the channel axis, e.g. x[..., None] (NHWC expected)"
    if len(expected) == 3 and got == (expected[2], *expected[:2]):
        return ": channels-first (NCHW) data given, NHWC expected: x.transpose(0, 2, 3, 1)"
    return ""


def _pack(entries: list[tuple[Layer, dict]]) -> tuple[np.ndarray, dict]:
    """Copy the arrays of each ``(layer, {key: array})`` into one floatx buffer, rebinding the
    dicts to views of it. Returns the buffer and its layout ``{"layer/key": (slice, shape)}``;
    offsets are aligned to ``_ALIGN`` elements."""
    layout, total = {}, 0
    for layer, arrays in entries:
        for key, value in arrays.items():
            layout[f"{layer.name}/{key}"] = (slice(total, total + value.size), value.shape)
            total += -(-value.size // _ALIGN) * _ALIGN
    buffer = np.zeros(total, dtype=config.floatx())
    for layer, arrays in entries:
        for key, value in arrays.items():
            where, shape = layout[f"{layer.name}/{key}"]
            buffer[where] = value.ravel()
            arrays[key] = buffer[where].reshape(shape)
    return buffer, layout


def _declared_only(layer_name: str, shapes: list[tuple]):
    """A ``Layer.weight_guard`` refusing any weight beyond ``shapes`` (in creation order) or of
    another shape."""
    created = []

    def guard(key: str, shape: tuple) -> None:
        declared = shapes[len(created)] if len(created) < len(shapes) else None
        if declared is None or tuple(declared) != tuple(shape):
            raise ArgumentError(
                f"layer {layer_name!r} would create {layer_name}/{key} of shape {shape}, but the "
                f"file declares {declared if declared is not None else 'no such weight'}; "
                "refused before allocating it")
        created.append(key)
    return guard
