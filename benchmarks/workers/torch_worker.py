"""PyTorch worker: an equivalent ``nn.Sequential`` trained by a plain loop, with Keras's
initialisation (glorot uniform kernels, zero biases) and Keras's Adam epsilon (1e-7).

The softmax output layer is folded into ``CrossEntropyLoss`` (which takes logits) and applied
in ``predict``. Images are permuted to NCHW once, before any timing.
"""

from __future__ import annotations

import math
import time

import numpy as np

from benchmarks.models import ModelSpec, is_graph
from benchmarks.workers import common


def build(nn, spec: ModelSpec):
    """The spec as an ``nn.Sequential`` of logits, initialised as Keras does."""
    if is_graph(spec):
        return _initialised(nn, _resnet(nn, spec))
    activations = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
    shape = spec.input_shape
    if len(shape) == 3:
        shape = (shape[2], shape[0], shape[1])  # (H, W, C) -> (C, H, W)
    layers = []
    for kind, *args in spec.layers:
        if kind == "flatten":
            layers.append(nn.Flatten())
            shape = (math.prod(shape),)
        elif kind == "dense":
            layers.append(nn.Linear(shape[0], args[0]))
            shape = (args[0],)
        elif kind == "conv":
            layers.append(nn.Conv2d(shape[0], args[0], args[1], padding="same"))
            shape = (args[0], *shape[1:])
        elif kind == "pool":
            layers.append(nn.MaxPool2d(args[0]))
            shape = (shape[0], shape[1] // args[0], shape[2] // args[0])
        else:
            layers.append(nn.Dropout(args[0]))
        if kind in ("dense", "conv") and args[-1] in activations:  # softmax: in the loss
            layers.append(activations[args[-1]]())
    return _initialised(nn, nn.Sequential(*layers))


def _initialised(nn, model):
    """Glorot-uniform kernels and zero biases, as Keras initialises them."""
    for layer in model.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight)  # torch's fans for (F, C, KH, KW) = Keras's
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return model


def _resnet(nn, spec: ModelSpec):
    """The residual spec (benchmarks/models.py) as modules; BatchNormalization with Keras's
    epsilon 1e-3 and momentum 0.99 (torch's 0.01)."""

    def norm(channels):
        return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)

    class Block(nn.Module):
        def __init__(self, channels: int, filters: int, stride: int):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(channels, filters, 3, stride, 1, bias=False), norm(filters), nn.ReLU(),
                nn.Conv2d(filters, filters, 3, 1, 1, bias=False), norm(filters))
            self.shortcut = (nn.Sequential(nn.Conv2d(channels, filters, 1, stride, bias=False),
                                           norm(filters))
                             if stride != 1 or channels != filters else nn.Identity())

        def forward(self, x):
            return (self.body(x) + self.shortcut(x)).relu()

    channels, layers = spec.input_shape[2], []
    for kind, *args in spec.layers:
        if kind == "stem":
            layers += [nn.Conv2d(channels, args[0], 3, 1, 1, bias=False), norm(args[0]),
                       nn.ReLU(), nn.MaxPool2d(2)]
            channels = args[0]
        elif kind == "block":
            layers.append(Block(channels, *args))
            channels = args[0]
        elif kind == "gap":
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        elif kind == "dropout":
            layers.append(nn.Dropout(args[0]))
        else:
            layers.append(nn.Linear(channels, args[0]))  # softmax: in the loss
    return nn.Sequential(*layers)


def to_tensors(torch, x: np.ndarray, y: np.ndarray) -> tuple:
    """NHWC float32 images -> NCHW tensors (MLP inputs unchanged); labels -> int64."""
    if x.ndim == 4:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (N, H, W, C) -> (N, C, H, W)
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


def train(torch, model, optimizer, x, y, spec: dict) -> tuple[list[float], dict]:
    """Keras's loop by hand: reshuffle each epoch, step over batches (the last partial one
    kept), keep the running loss and accuracy. Returns each epoch's seconds and the last
    epoch's training loss and accuracy."""
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(spec["seed"])
    seconds = []
    model.train()
    for _ in range(spec["epochs"]):
        start = time.perf_counter()
        loss_sum, correct = 0.0, 0
        for rows in torch.randperm(len(x), generator=generator).split(spec["batch_size"]):
            optimizer.zero_grad()
            logits = model(x[rows])
            loss = loss_fn(logits, y[rows])
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(rows)
            correct += int((logits.argmax(1) == y[rows]).sum())
        seconds.append(time.perf_counter() - start)
    return seconds, {"train_loss": loss_sum / len(x), "train_accuracy": correct / len(x)}


def main(spec: dict, model_spec: ModelSpec) -> dict:
    try:
        import torch
    except ImportError as error:
        return common.skipped(error)
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    x_train, y_train, x_test, labels = common.load_data(spec["data"], model_spec)
    (x_train, y_train), (x_test, y_test) = (to_tensors(torch, x_train, y_train),
                                            to_tensors(torch, x_test, labels))
    model = build(torch.nn, model_spec)
    if model_spec.optimizer == "Adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=model_spec.learning_rate, eps=1e-7)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=model_spec.learning_rate)
    seconds, train_logs = train(torch, model, optimizer, x_train, y_train, spec)

    batch = spec["inference_batch_size"]
    model.eval()

    @torch.inference_mode()
    def evaluate(x, y) -> float:
        loss_sum = torch.nn.CrossEntropyLoss(reduction="sum")
        pairs = zip(x.split(batch), y.split(batch))
        return sum(float(loss_sum(model(xb), yb)) for xb, yb in pairs) / len(x)

    @torch.inference_mode()
    def predict(x) -> np.ndarray:
        return torch.cat([model(xb).softmax(1) for xb in x.split(batch)]).numpy()

    measured = common.inference(evaluate, predict, x_test, y_test, labels, batch)
    framework = {"version": torch.__version__, "threads": torch.get_num_threads(),
                 "interop_threads": torch.get_num_interop_threads()}
    params = sum(p.numel() for p in model.parameters()) + sum(  # + moving statistics, which
        b.numel() for n, b in model.named_buffers()                 # Keras counts as weights
        if n.endswith(("running_mean", "running_var")))
    return common.result(seconds, {**train_logs, **measured}, params, framework)


if __name__ == "__main__":
    common.run(main)
