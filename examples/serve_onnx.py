"""Serve the Task 3 CNN with ONNX Runtime alone: NumPy and onnxruntime, no tinynn, no TensorFlow.

    pip install -e ".[onnx]"
    python examples/task3_cnn.py        # trains; writes out/task3/task3_model.onnx
    python examples/serve_onnx.py       # classifies the 10,000 Fashion-MNIST test images

The test images and labels (IDX files, gzipped or not) are read from --data-dir, or else from
the first of $TINYNN_DATA, the tinynn cache ($XDG_CACHE_HOME/tinynn/datasets/fashion-mnist,
by default ~/.cache/...) and /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist)
that holds both: tinynn's places, in its order. They are scaled as the example trained on them
(uint8 * float32(1/255), NHWC (N, 28, 28, 1)) and classified in batches of --batch-size. The
script prints the test accuracy and images per second, beside the predict throughput of tinynn
and Keras (and PyTorch) on the same 10,000 test images, read from the benchmark's results
(benchmarks/results/latest.json; their models are the benchmark's, trained for fewer epochs).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "latest.json"
TEST_FILES = {"images": ("t10k-images-idx3-ubyte", 3), "labels": ("t10k-labels-idx1-ubyte", 1)}
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
PEERS = {"tinynn": "tinynn predict", "keras": "Keras predict", "torch": "PyTorch predict"}


def data_dirs(data_dir: Path | None) -> list[Path]:
    """Where the test files are looked for: ``data_dir`` alone if given, else tinynn's places."""
    if data_dir is not None:
        return [data_dir]
    env, xdg = os.environ.get("TINYNN_DATA", ""), os.environ.get("XDG_CACHE_HOME", "")
    cache = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return ([Path(env).expanduser()] if env else []) + [
        cache / "tinynn" / "datasets" / "fashion-mnist", SYSTEM_DIR]


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes: 00 00 08 <ndim>, big-endian uint32 dims, the data."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    start = 4 + 4 * ndim
    if len(raw) < start or raw[:4] != bytes([0, 0, 8, ndim]):
        sys.exit(f"{path}: not an IDX file of {ndim}-D unsigned bytes")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    if len(raw) - start != math.prod(dims):
        sys.exit(f"{path}: expected {math.prod(dims)} bytes of data for shape {dims}, got "
                 f"{len(raw) - start}")
    return np.frombuffer(raw, np.uint8, offset=start).reshape(dims)


def load_test_set(data_dir: Path | None, limit: int | None):
    """x (N, 28, 28, 1) float32 in [0, 1], labels (N,) and the directory they came from."""
    searched = data_dirs(data_dir)
    for directory in searched:
        found = {key: next((p for p in (directory / f"{name}.gz", directory / name)
                            if p.is_file()), None) for key, (name, _) in TEST_FILES.items()}
        if all(found.values()):
            break
    else:
        sys.exit("Fashion-MNIST test files (t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, .gz "
                 f"or not) are in none of: {', '.join(map(str, searched))}; pass --data-dir, or "
                 "get them with `make data`")
    images, labels = (read_idx(found[key], ndim)[:limit] for key, (_, ndim) in TEST_FILES.items())
    if len(images) != len(labels):
        sys.exit(f"{len(images)} test images but {len(labels)} labels in {directory}")
    scale = np.float32(1 / 255)  # as examples/common.py: the scaling the model was trained on
    return (images * scale)[..., None], labels, directory


def benchmark(path: Path) -> tuple[str, list[tuple]]:
    """A description of the benchmark run and its CNN predict rows (name, images/s, accuracy);
    no rows when ``path`` holds no results."""
    if not path.is_file():
        return f"no benchmark results at {path} (python benchmarks/run.py writes them)", []
    run = json.loads(path.read_text())
    settings, images = run["settings"], run["settings"]["test_images"]
    rows = [(PEERS[r["framework"]], images / r["predict_s"], r["test_accuracy"])
            for r in run["results"] if r["model"] == "cnn" and r["status"] == "ok"
            and r["framework"] in PEERS]
    date = run["environment"]["date"][:10]
    return (f"CNN predict in the {settings['kind']} benchmark run of {date} ({path}): "
            f"{settings['threads']} threads, {images:,} test images at batch "
            f"{settings['inference_batch_size']}, its models trained "
            f"{settings['epochs']} epochs"), rows


def benchmark_threads(path: Path) -> int:
    """The benchmark's thread count (so the numbers compare), or 0 (ONNX Runtime's default)."""
    return json.loads(path.read_text())["settings"]["threads"] if path.is_file() else 0


def classify(session, x: np.ndarray, batch_size: int) -> tuple[np.ndarray, float]:
    """Outputs for ``x`` in batches, and the seconds they took (after one warm-up batch)."""
    name = session.get_inputs()[0].name
    session.run(None, {name: x[:batch_size]})
    start = time.perf_counter()
    outputs = [session.run(None, {name: x[i:i + batch_size]})[0]
               for i in range(0, len(x), batch_size)]
    seconds = time.perf_counter() - start
    return np.concatenate(outputs), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("out/task3/task3_model.onnx"))
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="directory of the test IDX files (default: tinynn's places)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX Runtime intra-op threads (default: the benchmark's, else "
                             "0, ONNX Runtime's choice of one per physical core)")
    parser.add_argument("--limit", type=int, default=None, help="the first N test images only")
    parser.add_argument("--benchmark", type=Path, default=BENCHMARK)
    args = parser.parse_args()
    try:
        import onnxruntime as ort
    except ImportError:
        sys.exit('serve_onnx.py needs onnxruntime: pip install -e ".[onnx]"')
    if not args.model.is_file():
        sys.exit(f"{args.model} not found: python examples/task3_cnn.py writes it (with the "
                 "onnx extra installed), or pass --model")
    threads = benchmark_threads(args.benchmark) if args.threads is None else args.threads
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(args.model), options, providers=["CPUExecutionProvider"])
    x, labels, directory = load_test_set(args.data_dir, args.limit)

    probabilities, seconds = classify(session, x, args.batch_size)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    speed = len(x) / seconds
    print(f"model {args.model}: {session.get_modelmeta().description}")
    print(f"ONNX Runtime {ort.__version__}, CPUExecutionProvider, "
          f"{threads or 'default'} intra-op threads")
    print(f"{len(x):,} test images from {directory}, batch {args.batch_size}")
    print(f"test accuracy {accuracy:.4f}")
    print(f"predict {seconds:.3f} s, {speed:,.0f} images/s")
    about, rows = benchmark(args.benchmark)
    print(f"\n{about}:")
    print("| runtime | images/s | test accuracy |\n|---|---|---|")
    for name, images_per_second, peer_accuracy in [("ONNX Runtime", speed, accuracy), *rows]:
        print(f"| {name} | {images_per_second:,.0f} | {peer_accuracy:.4f} |")


if __name__ == "__main__":
    main()
