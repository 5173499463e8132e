"""Benchmark tinynn against Keras and PyTorch on this machine.

    python benchmarks/run.py            # full: 54,000 training images, 3 epochs (20-30 min)
    python benchmarks/run.py --quick    # 6,000 training images, 2 epochs (a few minutes)

For each model (Task 1, MLP 3/6/12, CNN) the frameworks train back to back on the same data,
each in its own process with the same thread settings; the tables and chart show tinynn's
time over each peer's. Keras (``$KERAS_BACKEND``, TensorFlow by default) and PyTorch come with
the ``bench`` extra (``pip install -e '.[bench]'``); without them tinynn runs alone and the
table says so. Writes ``<out>/<kind>-<date>.{json,md,png}``; the full run (every default)
also writes ``latest.{json,md,png}``, the table README.md shows.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make the benchmarks package importable
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks.models import MODELS, train_flops  # noqa: E402
from benchmarks.workers.common import thread_env  # noqa: E402

FRAMEWORKS = ("tinynn", "keras", "torch")
TRAIN_IMAGES = 54_000  # Keras's validation_split=0.1 trains on the first 54,000 of 60,000
QUICK_TRAIN_IMAGES = 6_000
TEST_IMAGES = 10_000


def names(allowed) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated list of names from ``allowed``."""
    def parse(text: str) -> list[str]:
        chosen = [name.strip() for name in text.split(",") if name.strip()]
        if not chosen or set(chosen) - set(allowed):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of "
                                             f"{', '.join(allowed)}; got {text!r}")
        return chosen
    return parse


def positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_TRAIN_IMAGES:,} training images, 2 epochs")
    parser.add_argument("--frameworks", type=names(FRAMEWORKS), default=",".join(FRAMEWORKS),
                        help="comma-separated (default: %(default)s)")
    parser.add_argument("--models", type=names(MODELS), default=",".join(MODELS),
                        help="comma-separated (default: %(default)s)")
    parser.add_argument("--epochs", type=positive, help="default 3, or 2 with --quick")
    parser.add_argument("--limit", type=positive,
                        help="use the first N training and N test images")
    parser.add_argument("--threads", type=positive, default=2,
                        help="threads of every framework")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results",
                        help="directory for the JSON, markdown and PNG (default: %(default)s)")
    parser.add_argument("--no-kernels", action="store_true",
                        help="skip the kernel micro-benchmarks (NumPy's matmul is still timed)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one CNN training step per layer (benchmarks/profile.py)")
    parser.add_argument("--keep-blas-overrides", action="store_true",
                        help=f"keep {' and '.join(BLAS_OVERRIDES)} in the workers' environment")
    return parser.parse_args(argv)


def settings(args: argparse.Namespace) -> dict:
    """Every setting of the run; ``kind`` is "full" only when every default is kept."""
    defaults = (args.limit, args.epochs, args.models, args.frameworks) == (
        None, None, list(MODELS), list(FRAMEWORKS))  # --profile only adds a section
    kind = "quick" if args.quick else "full" if defaults else "custom"
    train = args.limit or (QUICK_TRAIN_IMAGES if args.quick else TRAIN_IMAGES)
    return {
        "kind": kind, "frameworks": args.frameworks,
        "models": {name: {**asdict(MODELS[name]), "train_flops_per_image": train_flops(
            MODELS[name])} for name in args.models},
        "epochs": args.epochs or (2 if args.quick else 3),
        "train_images": min(train, TRAIN_IMAGES),
        "test_images": min(args.limit or TEST_IMAGES, TEST_IMAGES),
        "batch_size": 32, "inference_batch_size": 1000, "seed": 0,
        "threads": args.threads, "thread_env": thread_env(args.threads),
        "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "tinynn_backend": os.environ.get("TINYNN_BACKEND", "numba"),
        "kernels": not args.no_kernels, "kernel_repeat": 10 if args.quick else 20,
        "profile": args.profile,
        "dropped_variables": [] if args.keep_blas_overrides else sorted(
            name for name in BLAS_OVERRIDES if name in os.environ),
    }


def environment() -> dict:
    """Date, CPU, cores, Python, library versions and NumPy's BLAS."""
    import tinynn

    def version(*dists: str) -> str | None:
        for dist in dists:
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
        return None

    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in
              (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
              if line.startswith("model name")]
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": models[0] if models else platform.processor() or platform.machine(),
        "cores": os.cpu_count(), "platform": platform.platform(),
        "versions": {"Python": platform.python_version(), "tinynn": tinynn.__version__,
                     "numpy": np.__version__, "numba": version("numba"),
                     "tensorflow": version("tensorflow", "tensorflow-cpu"),
                     "keras": version("keras"), "torch": version("torch")},
        "blas": f"{blas.get('name')} {blas.get('version')}",
    }


def write_data(path: Path, train_images: int, test_images: int) -> None:
    """The one copy of the data every worker loads: the first training and test images as
    float32 in [0, 1] (as the examples scale them) and uint8 labels."""
    from tinynn.datasets import fashion_mnist

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    scale = np.float32(1 / 255)
    np.savez(path, x_train=x_train[:train_images] * scale, y_train=y_train[:train_images],
             x_test=x_test[:test_images] * scale, y_test=y_test[:test_images])


#: Variables that make OpenBLAS use another CPU's kernel (and cache size) than its own choice.
#: Some machines set them for old OpenBLAS builds that miscompute on new CPUs; a current one
#: picks the right kernel itself, as it does in a user's process, so the workers run without
#: them unless --keep-blas-overrides. On an AVX-512 CPU, OPENBLAS_CORETYPE=Haswell halved
#: NumPy's float32 matmul speed (243 against 467 GFLOP/s at 2048^3, AMD EPYC Zen 5).
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def subprocess_env(config: dict, **extra: str) -> dict:
    """This environment without ``config``'s dropped variables, plus the thread variables,
    the repository on PYTHONPATH, quiet TF."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    kept = {k: v for k, v in os.environ.items() if k not in config["dropped_variables"]}
    return {**kept, **thread_env(config["threads"]), "PYTHONPATH": path,
            "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def run_module(module: str, args: list[str], stdin: str, env: dict) -> dict:
    """Run ``python -m module *args`` and parse its last stdout line as JSON; a crash
    becomes ``{"status": "failed", "reason": ...}``."""
    process = subprocess.run([sys.executable, "-m", module, *args], input=stdin, env=env,
                             cwd=ROOT, capture_output=True, text=True)
    lines = process.stdout.strip().splitlines()
    if process.returncode == 0 and lines:
        try:
            return json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    print(process.stderr[-3000:], file=sys.stderr)
    last = (process.stderr.strip().splitlines() or ["no output"])[-1]
    return {"status": "failed", "reason": f"exit code {process.returncode}: {last}"}


def median_seconds(function, repeat: int) -> float:
    """The median of ``repeat`` timed calls of ``function``, after two untimed ones."""
    function()
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def side_by_side_args(description: str, frameworks: tuple, repeat: int,
                      argv: list[str] | None) -> argparse.Namespace:
    """The command line of a side-by-side micro-benchmark (conv_passes.py, augmentation.py):
    ``--batch``, ``--repeat``, ``--threads``, ``--frameworks`` (checked, made a list) and the
    hidden ``--worker`` its own processes get."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frameworks", default=",".join(frameworks))
    parser.add_argument("--worker", choices=frameworks, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.frameworks = args.frameworks.split(",")
    if not set(args.frameworks) <= set(frameworks):
        parser.error(f"--frameworks expected names from {frameworks}, got "
                     f"{','.join(args.frameworks)!r}")
    return args


def side_by_side_worker(module: str, framework: str, args: argparse.Namespace) -> dict:
    """``python -m module --worker framework`` with the environment of this script's workers;
    a framework that cannot be imported, or crashes, gives ``{"status": ..., "reason": ...}``."""
    config = {"threads": args.threads, "dropped_variables": list(BLAS_OVERRIDES)}
    return run_module(module, ["--worker", framework, "--batch", str(args.batch),
                               "--repeat", str(args.repeat)], "", subprocess_env(config))


def measure_kernels(run: dict, scratch: Path) -> None:
    """NumPy's matmul GFLOP/s and (unless disabled) the kernel micro-benchmarks, in a process
    with the workers' threads and an empty numba cache (so compile times are real)."""
    config = run["settings"]
    args = ["--repeat", str(config["kernel_repeat"])] + ([] if config["kernels"] else
                                                         ["--no-kernels"])
    env = subprocess_env(config, NUMBA_CACHE_DIR=str(scratch / "numba"))
    found = run_module("benchmarks.kernels", args, "", env)
    if "matmul" in found:
        run.update(matmul=found["matmul"], kernels=found["kernels"],
                   blas_pools=found["blas_pools"])
    else:
        print(f"kernel benchmarks {found['reason']}", file=sys.stderr)


def measure(run: dict, model: str, framework: str, data: Path) -> dict:
    """Train and time one framework on one model in its own process; adds GFLOP/s."""
    config = run["settings"]
    spec = {"model": model, "data": str(data), **{key: config[key] for key in (
        "epochs", "batch_size", "inference_batch_size", "threads", "seed")}}
    env = subprocess_env(config, KERAS_BACKEND=config["keras_backend"])
    result = {"framework": framework, "model": model,
              **run_module(f"benchmarks.workers.{framework}_worker", [], json.dumps(spec), env)}
    if result["status"] == "ok":
        flops = config["models"][model]["train_flops_per_image"] * config["train_images"]
        result["gflops"] = flops / result["median_epoch_s"] / 1e9
    return result


def describe(result: dict) -> str:
    """One progress line."""
    head = f"{result['model']:6s} {result['framework']:7s}"
    if result["status"] != "ok":
        return f"{head} {result['status']}: {result['reason']}"
    return (f"{head} {result['median_epoch_s']:7.2f} s/epoch "
            f"(first {result['epoch_seconds'][0]:.2f}), evaluate {result['evaluate_s']:.2f} s, "
            f"predict {result['predict_s']:.2f} s, "
            f"test acc. {result['test_accuracy']:.4f}, peak {result['peak_rss_mb']:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = {"settings": settings(args), "environment": environment(), "matmul": [],
           "kernels": [], "results": []}
    config = run["settings"]
    print(f"{config['kind']} run: {config['train_images']:,} training images, "
          f"{config['epochs']} epochs, {config['threads']} threads", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data.npz"
        write_data(data, config["train_images"], config["test_images"])
        measure_kernels(run, Path(scratch))
        if config["profile"]:
            found = run_module("benchmarks.profile", [], "", subprocess_env(config))
            run["profile"] = found if "profile" in found else None
        for model in config["models"]:
            for framework in config["frameworks"]:
                run["results"].append(measure(run, model, framework, data))
                print(describe(run["results"][-1]), flush=True)
    run["ratios"] = report.ratios(run)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    paths = report.write(run, args.out, f"{config['kind']}-{stamp}")
    if config["kind"] == "full":
        for path in paths:
            shutil.copyfile(path, path.with_stem("latest"))
    print(report.markdown(run))
    print("wrote " + ", ".join(str(path) for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
