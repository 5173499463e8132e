"""Same seed, same machine, one BLAS and one numba thread: bitwise identical training."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   "NUMBA_NUM_THREADS": "1"}

TRAIN = """
import hashlib, json, os, sys
import numpy as np
import tinynn as tn
global_state = np.random.get_state()
data = np.random.default_rng(0)
x = data.normal(size=(300, 6, 6)).astype(np.float32)
y = (x.sum(axis=(1, 2)) > 0).astype(int) + (x[:, 0, 0] > 0)
model = tn.Sequential([tn.layers.Input((6, 6)), tn.layers.Flatten(),
                       tn.layers.Dense(16, activation="relu"),
                       tn.layers.Dense(3, activation="softmax")], seed=int(sys.argv[1]))
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x, y, epochs=3, batch_size=32, validation_split=0.1, verbose=0)
after = np.random.get_state()
untouched = (after[0] == global_state[0] and np.array_equal(after[1], global_state[1])
             and after[2:] == global_state[2:])
print(json.dumps({"weights": hashlib.sha256(model.parameters.tobytes()).hexdigest(),
                  "history": history.history, "global_rng_untouched": bool(untouched),
                  "parallel": tn.ops.adam_update.targetoptions.get("parallel", False),
                  "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}))
"""


def train_in_subprocess(seed: int, numba_threads: int = 1) -> dict:
    env = {**os.environ, **SINGLE_THREADED, "PYTHONPATH": str(ROOT),
           "NUMBA_NUM_THREADS": str(numba_threads)}
    env.pop("OMP_WAIT_POLICY", None)
    result = subprocess.run([sys.executable, "-c", TRAIN, str(seed)], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_same_seed_gives_bitwise_identical_weights_and_history():
    """Two processes on this machine, same seed, 1 BLAS and 1 numba thread each. May differ:
    nothing computed (only the pids and timings). May not: the weights (compared by hash) and
    every History value, bitwise, nor the global NumPy generator's state (untouched)."""
    first, second = train_in_subprocess(11), train_in_subprocess(11)
    assert first["weights"] == second["weights"]
    assert first["history"] == second["history"]  # exact float equality, every epoch
    assert first["global_rng_untouched"] and second["global_rng_untouched"]


def test_another_seed_gives_other_weights():
    """Two processes, seeds 11 and 12: the weights must differ (their hashes)."""
    assert train_in_subprocess(11)["weights"] != train_in_subprocess(12)["weights"]



def test_parallel_kernels_give_the_serial_kernels_bits():
    """With one numba thread the kernels are compiled serially, with two in parallel
    (``numba_kernels.parallel_kernel``): the same weights and History, bitwise."""
    serial, parallel = train_in_subprocess(11), train_in_subprocess(11, numba_threads=2)
    assert not serial["parallel"] and parallel["parallel"]
    # several numba threads wait passively (spinning, they starve BLAS's threads)
    assert parallel["omp_wait_policy"] == "passive" and serial["omp_wait_policy"] is None
    assert serial["weights"] == parallel["weights"]
    assert serial["history"] == parallel["history"]
