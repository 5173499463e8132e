"""Run by tests/test_distribution.py under ``mpiexec -n 2 python -m mpi4py``: rank 1 fails in
the middle of ``fit``, by raising (argv[1] == "raise") or by never arriving at the next
collective (argv[1] == "hang"; rank 0's collective then times out)."""

import sys
import time

import numpy as np

import tinynn as tn

tn.distribution.set_distribution(tn.distribution.DataParallel())
how = sys.argv[1]


class FailOnRankOne(tn.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 1 and tn.distribution.rank() == 1:
            if how == "raise":
                raise RuntimeError("rank 1 fails on purpose")
            time.sleep(600)


x = np.random.default_rng(0).random((64, 4), dtype=np.float32)
model = tn.Sequential([tn.layers.Input((4,)), tn.layers.Dense(2, activation="softmax")], seed=0)
model.compile("sgd", "sparse_categorical_crossentropy")
model.fit(x, np.arange(64) % 2, batch_size=8, epochs=3, verbose=0, callbacks=[FailOnRankOne()])
print("training finished")  # never reached
