"""Run by tests/test_distribution.py, under ``mpiexec -n 2 python -m mpi4py`` and as one plain
process: the same script either way. Saves what this rank ends with to ``<out>/rank<r>.npz``
and ``<out>/rank<r>.json``.

1. A small CNN (Conv2D, MaxPooling2D, Dropout, Dense with an L2 penalty), SGD with momentum:
   2 epochs with shuffle=False and validation_split=0.2, then 1 epoch with shuffle=True. The
   211 training samples in batches of 15 give unequal shards (8 and 7) and a last batch of 1
   row, whose shard on rank 1 is empty. Each rank starts from another seed: rank 0's wins.
   Then evaluate and predict.
2. The same CNN with BatchNormalization, 1 epoch (compared across ranks only).
3. A callback that asks to stop on rank 1 alone, after batch 2: every rank stops there.
4. A graph of two inputs and two outputs (a shared layer, Dropout, weighted losses), 1 epoch,
   then evaluate and predict (compared across ranks and with one process).
"""

import json
import sys
from pathlib import Path

import numpy as np

import tinynn as tn

out = Path(sys.argv[1])
tn.distribution.set_distribution(tn.distribution.DataParallel())
rank = tn.distribution.rank()
L = tn.layers

data = np.random.default_rng(0)
x = data.random((264, 10, 10, 1), dtype=np.float32)
y = np.argsort(np.argsort(x.mean(axis=(1, 2, 3)))) * 3 // len(x)  # 3 balanced classes


def cnn(seed: int, batch_norm: bool = False) -> tn.Sequential:
    convolution = ([L.Conv2D(4, 3), L.BatchNormalization(), L.Activation("relu")] if batch_norm
                   else [L.Conv2D(4, 3, activation="relu")])
    model = tn.Sequential([L.Input((10, 10, 1)), *convolution, L.MaxPooling2D(2),
                           L.Dropout(0.3), L.Flatten(),
                           L.Dense(3, activation="softmax",
                                   kernel_regularizer=tn.regularizers.L2(1e-3))], seed=seed)
    model.compile(tn.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


class Steps(tn.callbacks.Callback):
    """Records the training steps this rank ran; with ``stop_after``, asks to stop after that
    batch on rank 1 only."""

    def __init__(self, stop_after: int | None = None):
        super().__init__()
        self.stop_after = stop_after
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(batch)
        if batch == self.stop_after and rank == 1:
            self.model.stop_training = True


model = cnn(seed=1 + rank)
unshuffled = model.fit(x, y, batch_size=15, epochs=2, shuffle=False, validation_split=0.2,
                       verbose=2, callbacks=[tn.callbacks.CSVLogger(out / f"log-rank{rank}.csv")])
after_unshuffled = model.parameters.copy()
shuffled = model.fit(x, y, batch_size=15, epochs=1, validation_split=0.2, verbose=0)
evaluated = model.evaluate(x, y, batch_size=25, verbose=0)
predicted = model.predict(x, batch_size=25, verbose=0)

batch_norm = cnn(seed=7 + rank, batch_norm=True)
batch_norm.fit(x, y, batch_size=15, epochs=1, verbose=0)

stopping, steps = cnn(seed=9), Steps(stop_after=2)
stopping.fit(x, y, batch_size=15, epochs=2, verbose=0, callbacks=[steps])


def graph(seed: int) -> tn.Model:
    image, side = tn.Input((10, 10, 1), name="image"), tn.Input((4,), name="side")
    shared = L.Dense(4, activation="tanh")
    h = L.Dropout(0.3)(L.Flatten()(L.Conv2D(2, 3, activation="relu")(image)))
    h = L.concatenate([h, shared(shared(side))])
    model = tn.Model([image, side], {"label": L.Dense(3, activation="softmax")(h),
                                     "size": L.Dense(1)(h)}, seed=seed)
    model.compile(tn.optimizers.SGD(0.05, momentum=0.9),
                  {"label": "sparse_categorical_crossentropy", "size": "mse"},
                  loss_weights={"size": 0.5}, metrics={"label": ["accuracy"]})
    return model


sides = data.random((264, 4), dtype=np.float32)
two = graph(seed=11 + rank)
graph_history = two.fit([x, sides], {"label": y, "size": x.mean(axis=(1, 2))}, batch_size=15,
                        epochs=1, shuffle=False, verbose=0)
graph_predicted = two.predict([x, sides], batch_size=25, verbose=0)

np.savez(out / f"rank{rank}.npz", unshuffled=after_unshuffled, shuffled=model.parameters,
         predicted=predicted, batch_norm=batch_norm.parameters,
         batch_norm_states=batch_norm.states, graph=two.parameters,
         graph_label=graph_predicted["label"], graph_size=graph_predicted["size"])
(out / f"rank{rank}.json").write_text(json.dumps({
    "world_size": tn.distribution.world_size(), "unshuffled": unshuffled.history,
    "shuffled": shuffled.history, "evaluated": evaluated, "steps": steps.seen,
    "graph": graph_history.history,
    "threads": tn.distribution.thread_counts()}))
