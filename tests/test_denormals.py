"""Flush-to-zero (tinynn.denormals): inside fit, evaluate and predict, subnormal numbers are read
and produced as zero, in the calling thread and in BLAS's threads; outside, NumPy keeps IEEE
subnormals; TINYNN_FLUSH_DENORMALS=0 turns it off."""

import os
import subprocess
import sys

import numpy as np
import pytest

import tinynn as tn
from tinynn import denormals

pytestmark = pytest.mark.skipif(not denormals.supported(), reason="x86-64 only (MXCSR)")
SUBNORMAL = 1e-40  # float32


def products() -> dict:
    """What this thread computes now: a subnormal product, a subnormal input, and a 600 x 600
    matrix product (split over BLAS's threads) whose terms are all subnormal."""
    a = np.full((600, 600), 1e-20, np.float32)
    return {"flushing": denormals.flushing_denormals(),
            "scalar": float(np.float32(1e-30) * np.float32(1e-10)),
            "input": float(np.float32(SUBNORMAL) + np.float32(0)),
            "gemm_nonzero_rows": int(np.count_nonzero((a @ a)[:, 0]))}


def test_flush_to_zero_covers_the_block_and_blas_threads_then_restores_ieee():
    before = products()
    with denormals.flush_to_zero():
        inside = products()
    after = products()
    assert inside == {"flushing": True, "scalar": 0.0, "input": 0.0, "gemm_nonzero_rows": 0}
    for outside in (before, after):
        assert outside["flushing"] is False
        assert outside["scalar"] == pytest.approx(SUBNORMAL, rel=1e-3)
        assert outside["input"] == pytest.approx(SUBNORMAL, rel=1e-3)
        assert outside["gemm_nonzero_rows"] == 600  # 600 terms of 1e-40: 6e-38, normal


class Probe(tn.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(denormals.flushing_denormals())

    on_test_batch_end = on_predict_batch_end = on_train_batch_end


def tiny_model() -> tn.Sequential:
    model = tn.Sequential([tn.layers.Input((3,)), tn.layers.Dense(2, activation="softmax")],
                          seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_fit_evaluate_and_predict_run_flushed_and_leave_the_mode_as_it_was():
    model, x, y = tiny_model(), np.ones((4, 3), np.float32), np.array([0, 1, 0, 1])
    probe = Probe()
    model.fit(x, y, batch_size=2, verbose=0, callbacks=[probe])
    model.evaluate(x, y, batch_size=2, verbose=0, callbacks=[probe])
    model.predict(x, batch_size=2, verbose=0, callbacks=[probe])
    assert probe.seen == [True] * 6
    assert not denormals.flushing_denormals()


def test_the_environment_variable_keeps_ieee_subnormals():
    code = ("import tinynn.denormals as d, numpy as np\n"
            "with d.flush_to_zero():\n"
            "    print(d.flushing_denormals(), float(np.float32(1e-30) * np.float32(1e-10)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True,
                          env={**os.environ, "TINYNN_FLUSH_DENORMALS": "0"})
    flushing, value = done.stdout.split()
    assert flushing == "False" and float(value) == pytest.approx(SUBNORMAL, rel=1e-3)
