"""examples/serve_onnx.py, run as a user runs it, on a CNN exported by tinynn and test files in
IDX form (gzipped or not): it prints the accuracy tinynn's predict gives on the same images, its
throughput beside the benchmark's predict rows, and imports no tinynn."""

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinynn as tn

from .test_examples import ROOT

SCRIPT = ROOT / "examples" / "serve_onnx.py"
#: Runs the script as ``python SCRIPT ARGS...`` would, then says whether tinynn was imported.
RUNNER = ("import runpy, sys; sys.argv = sys.argv[1:]; "
          "runpy.run_path(sys.argv[0], run_name='__main__'); "
          "print('tinynn imported:', any(m.split('.')[0] == 'tinynn' for m in sys.modules))")
IMAGES, LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
BENCHMARK = {
    "settings": {"kind": "full", "test_images": 10_000, "inference_batch_size": 1000,
                 "threads": 2, "epochs": 3},
    "environment": {"date": "2026-11-22T04:44:48+00:00"},
    "results": [
        {"framework": "tinynn", "model": "cnn", "status": "ok", "predict_s": 4.0,
         "test_accuracy": 0.9059},
        {"framework": "keras", "model": "cnn", "status": "ok", "predict_s": 0.5,
         "test_accuracy": 0.9055},
        {"framework": "tinynn", "model": "task1", "status": "ok", "predict_s": 0.01,
         "test_accuracy": 0.8325},
        {"framework": "torch", "model": "cnn", "status": "skipped", "reason": "not installed"},
    ],
}


def write_idx(path, array: np.ndarray) -> None:
    """``array`` (uint8) as an IDX file, gzipped if ``path`` ends in .gz."""
    raw = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw += array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


@pytest.fixture(scope="module")
def served(onnx, onnxruntime, tmp_path_factory):
    """An exported CNN, 300 test images in gzipped IDX files (and plain ones elsewhere), and
    the accuracy tinynn's predict gives on the first 250 of them: labels agree with its
    predictions on about 60 % of the images."""
    directory = tmp_path_factory.mktemp("serve")
    model = tn.Sequential([tn.layers.Input((28, 28, 1)),
                           tn.layers.Conv2D(4, 3, activation="relu"), tn.layers.MaxPooling2D(2),
                           tn.layers.Flatten(), tn.layers.Dense(10, activation="softmax")],
                          seed=0)
    model.export(directory / "cnn.onnx", verbose=False)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (300, 28, 28)).astype(np.uint8)
    probabilities = model.predict((images * np.float32(1 / 255))[..., None], verbose=0)
    top2 = np.sort(probabilities, axis=1)[:, -2:]
    assert (top2[:, 1] - top2[:, 0]).min() > 1e-5  # no near-tie that rounding could flip
    predicted = probabilities.argmax(axis=1)
    labels = np.where(rng.random(300) < 0.6, predicted, (predicted + 1) % 10).astype(np.uint8)
    for kind, suffix in (("gz", ".gz"), ("plain", "")):
        (directory / kind).mkdir()
        write_idx(directory / kind / f"{IMAGES}{suffix}", images)
        write_idx(directory / kind / f"{LABELS}{suffix}", labels)
    (directory / "benchmark.json").write_text(json.dumps(BENCHMARK))
    return directory, float(np.mean(predicted[:250] == labels[:250]))


def serve(*args: str, cwd, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUNNER, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, **(env or {})})


def test_serving_prints_tinynns_accuracy_and_throughput_beside_the_benchmark(served):
    directory, accuracy = served
    result = serve("--model", directory / "cnn.onnx", "--data-dir", directory / "gz",
                   "--limit", "250", "--batch-size", "100",
                   "--benchmark", directory / "benchmark.json", cwd=directory)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 0.45 < accuracy < 0.75
    assert f"test accuracy {accuracy:.4f}\n" in out
    assert f"250 test images from {directory / 'gz'}, batch 100\n" in out
    assert "CPUExecutionProvider, 2 intra-op threads" in out  # the benchmark's thread count
    assert "input 'input' float32 (batch, 28, 28, 1)" in out  # the model's description
    speed = float(out.split(" images/s")[0].rsplit(", ", 1)[1].replace(",", ""))
    assert speed > 0
    assert ("CNN predict in the full benchmark run of 2026-11-22 "
            f"({directory / 'benchmark.json'}): 2 threads, 10,000 test images at batch 1000, "
            "its models trained 3 epochs:\n") in out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows == ["| runtime | images/s | test accuracy |",
                    f"| ONNX Runtime | {speed:,.0f} | {accuracy:.4f} |",
                    "| tinynn predict | 2,500 | 0.9059 |",
                    "| Keras predict | 20,000 | 0.9055 |"]
    assert out.endswith("tinynn imported: False\n")


def test_serving_finds_the_data_as_tinynn_does_and_runs_without_a_benchmark(served, tmp_path):
    directory, _ = served
    result = serve("--model", directory / "cnn.onnx", "--threads", "1", "--limit", "250",
                   "--benchmark", tmp_path / "absent.json", cwd=tmp_path,
                   env={"TINYNN_DATA": str(directory / "plain"),
                        "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert f"250 test images from {directory / 'plain'}, batch 1000\n" in result.stdout
    assert f"test accuracy {served[1]:.4f}\n" in result.stdout
    assert "1 intra-op threads" in result.stdout
    assert f"no benchmark results at {tmp_path / 'absent.json'}" in result.stdout


def test_serving_says_what_is_missing(served, tmp_path):
    directory, _ = served
    result = serve("--model", tmp_path / "none.onnx", cwd=tmp_path)
    assert result.returncode == 1
    assert "none.onnx not found: python examples/task3_cnn.py writes it" in result.stderr
    result = serve("--model", directory / "cnn.onnx", "--data-dir", tmp_path, cwd=tmp_path)
    assert result.returncode == 1
    assert f"are in none of: {tmp_path}; pass --data-dir" in result.stderr
