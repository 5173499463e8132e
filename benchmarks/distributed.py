"""Data-parallel training of the reports' CNN with MPI: epoch time with 1 and 2 processes on this
machine, the all-reduce time of its 3,274,634-parameter gradient, and a projection of epoch time
on N machines over a network.

    python benchmarks/distributed.py                   # 54,000 images, 2 epochs (about 10 min)
    python benchmarks/distributed.py --limit 640 --epochs 1 --repeat 5 --steps 3   # a check

Each run is the fit of ``benchmarks/workers`` (Adam, batch 32, no validation, each epoch timed)
under ``tinynn.distribution.DataParallel``: one plain process, then ``mpiexec -n P python -m
mpi4py`` (the ``distributed`` extra). Every process gets ``thread_env(cores // P)``, so the
processes together use the machine's cores once. The 1-process run also times one training step
at several batch sizes; a run of several processes times the in-place all-reduce (sum) of a
float32 buffer the size of the gradient, as ``fit`` calls it and as a blocking MPI_Allreduce.

The projection (``projection``): N machines like this one, one process each, train with a global
batch B split in N; a step costs the measured compute of a B/N batch plus a ring all-reduce of
the S-byte gradient, 2 (N - 1) a + 2 (N - 1) / N * S / b (latency a, bandwidth b), since tinynn
reduces after the backward pass, without overlap. Writes
``<out>/distributed-<date>.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script (or by mpi4py): make benchmarks importable
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.models import MODELS, keras_style_layers  # noqa: E402
from benchmarks.workers.common import epoch_timer, load_data, thread_env  # noqa: E402

TRAIN_IMAGES = 54_000
STEP_BATCHES = (4, 8, 16, 32, 64, 128, 256, 512, 1024)
MACHINES = (1, 2, 4, 8, 16)
GLOBAL_BATCHES = (32, 64, 128, 256, 512, 1024)


# -- the projection ---------------------------------------------------------------------------
def ring_allreduce_seconds(size_bytes: int, machines: int, bandwidth_gbit: float,
                           latency_us: float) -> float:
    """A ring all-reduce of ``size_bytes`` over ``machines``: 2 (N - 1) steps, each sending
    1/N of the buffer, 2 (N - 1) * latency + 2 (N - 1) / N * bytes / bandwidth. 0 for one."""
    if machines == 1:
        return 0.0
    bytes_per_second = bandwidth_gbit * 1e9 / 8
    return (2 * (machines - 1) * latency_us * 1e-6
            + 2 * (machines - 1) / machines * size_bytes / bytes_per_second)


def projection(step_ms: dict[int, float], params: int, train_images: int,
               bandwidth_gbit: float, latency_us: float) -> dict:
    """Epoch time on N machines for each global batch B whose share B / N was measured
    (``step_ms``: batch -> ms of one training step in one process), and where scaling pays.

    Returns ``rows`` (B, N, ms of compute and of all-reduce per step, epoch seconds, speedup
    over one machine at the same B), ``step_ms`` and ``break_even``: per N, the smallest
    global batch of the rows at which N machines beat one (None if none does). Measured steps
    are used as they are, not a fit: per image, a step costs more at large batches than at
    small ones here."""
    size_bytes = 4 * params  # float32
    rows = []
    for batch in GLOBAL_BATCHES:
        if batch not in step_ms:
            continue
        steps = math.ceil(train_images / batch)
        single = steps * step_ms[batch] / 1e3
        for machines in MACHINES:
            local = batch // machines
            if batch % machines or local not in step_ms:
                continue
            allreduce = ring_allreduce_seconds(size_bytes, machines, bandwidth_gbit, latency_us)
            epoch = steps * (step_ms[local] / 1e3 + allreduce)
            rows.append({"global_batch": batch, "machines": machines, "local_batch": local,
                         "compute_ms": step_ms[local], "allreduce_ms": allreduce * 1e3,
                         "epoch_s": epoch, "speedup": single / epoch})
    break_even = {str(machines): min((row["global_batch"] for row in rows
                                      if row["machines"] == machines and row["speedup"] > 1),
                                     default=None) for machines in MACHINES[1:]}
    return {"rows": rows, "break_even": break_even,
            "step_ms": {str(batch): ms for batch, ms in sorted(step_ms.items())}}


# -- the worker (one MPI rank) ----------------------------------------------------------------
def threads_in_use() -> dict:
    """This process's BLAS and numba thread counts."""
    import numba
    from threadpoolctl import ThreadpoolController
    blas = ThreadpoolController().select(user_api="blas").lib_controllers
    return {"blas": blas[0].num_threads if blas else None, "numba": numba.get_num_threads()}


def time_allreduce(comm, size: int, repeat: int) -> dict:
    """Median and minimum ms of an in-place sum of ``size`` float32 over the ranks: through
    ``comm.sum_in_place`` (as fit) and a blocking MPI_Allreduce, after a tiny sum that lines up
    the ranks."""
    from mpi4py import MPI
    buffer, line_up = np.empty(size, np.float32), np.zeros(1)
    reduce = {"tinynn": lambda: comm.sum_in_place(buffer, what="the timed all-reduce"),
              "mpi_allreduce": lambda: MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, buffer)}
    times = {name: [] for name in reduce}
    for _ in range(repeat):
        for name, call in reduce.items():
            buffer.fill(1.0)
            comm.sum_in_place(line_up, what="lining up the ranks")
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {"bytes": buffer.nbytes, "repeat": repeat,
            **{f"{name}_ms": statistics.median(ms) for name, ms in times.items()},
            **{f"{name}_min_ms": min(ms) for name, ms in times.items()}}


def time_steps(model, batches: list[int], steps: int) -> dict[int, float]:
    """Median ms of ``steps`` training steps (forward, backward, finite check, Adam) at each
    batch size, after 3 warm-up steps, on random images."""
    from tinynn import loops
    data = np.random.default_rng(0)
    found = {}
    for batch in batches:
        x, y = model.prepare(data.random((batch, *model.input_shape), dtype=np.float32),
                             data.integers(0, 10, batch))
        times = []
        for step in range(steps + 3):
            start = time.perf_counter()
            loss, _ = model.compute_loss_and_gradients(x, y)
            loops.check_finite_step(model, loss, 0, step)
            model.optimizer.apply(model.parameters, model.gradients)
            times.append((time.perf_counter() - start) * 1e3)
        found[batch] = statistics.median(times[3:])
    return found


def worker(spec: dict) -> dict | None:
    """Train as ``spec`` says on this rank; rank 0 returns the result, the others None."""
    import tinynn as tn
    tn.distribution.set_distribution(tn.distribution.DataParallel())
    comm = tn.distribution.active_communicator()
    model_spec = MODELS["cnn"]
    x_train, y_train, _, _ = load_data(spec["data"], model_spec)
    model = tn.Sequential(keras_style_layers(tn.layers, model_spec), seed=spec["seed"])
    model.compile(tn.optimizers.Adam(learning_rate=model_spec.learning_rate),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = epoch_timer(tn.callbacks.Callback)
    history = model.fit(x_train, y_train, batch_size=spec["batch_size"], epochs=spec["epochs"],
                        verbose=0, callbacks=[timer])
    result = {"status": "ok", "processes": comm.size, "epoch_seconds": timer.seconds,
              "median_epoch_s": statistics.median(timer.seconds[1:] or timer.seconds),
              "train_loss": history.history["loss"][-1],
              "train_accuracy": history.history["accuracy"][-1],
              "threads": threads_in_use(), "params": model.count_params()}
    if comm.size > 1:
        result["allreduce"] = time_allreduce(comm, model.parameters.size, spec["repeat"])
    else:
        result["step_ms"] = time_steps(model, spec["step_batches"], spec["steps"])
    return result if comm.rank == 0 else None


# -- the driver -------------------------------------------------------------------------------
def mpiexec() -> str:
    """The mpiexec next to this Python (the mpich wheel's), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        raise SystemExit("no mpiexec next to Python or on PATH: pip install -e \".[distributed]\"")
    return found


def launch(processes: int, spec: dict, scratch: Path, threads: int) -> dict:
    """Run the worker in ``processes`` processes (one: a plain process, no MPI); the last line
    of rank 0's output is its result, a crash ``{"status": "failed", "reason": ...}``."""
    path = scratch / f"spec-{processes}.json"
    path.write_text(json.dumps(spec))
    prefix = [sys.executable] if processes == 1 else [
        mpiexec(), "-n", str(processes), sys.executable, "-m", "mpi4py"]
    env = {**os.environ, **thread_env(threads), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([*prefix, str(Path(__file__).resolve()), "--worker", str(path)],
                          env=env, cwd=ROOT, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        return {**json.loads(lines[-1]), "threads_per_process": threads}
    print(done.stderr[-3000:], file=sys.stderr)
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"status": "failed", "processes": processes,
            "reason": f"exit code {done.returncode}: {last}"}


def markdown(run: dict) -> str:
    """The run as markdown: measured epochs, all-reduce, step times, projection."""
    config, env = run["settings"], run["environment"]
    lines = [f"# Data-parallel CNN training ({env['date']})", "",
             f"{env['cpu']}, {env['cores']} cores; {config['train_images']:,} training images, "
             f"batch {config['batch_size']}, {config['epochs']} epochs (median of the epochs "
             "after the first).", "",
             "| processes | threads each | s per epoch | speedup |", "|---|---|---|---|"]
    single = next((r["median_epoch_s"] for r in run["results"]
                   if r["status"] == "ok" and r["processes"] == 1), None)
    for result in run["results"]:
        if result["status"] != "ok":
            lines.append(f"| {result['processes']} | - | {result['status']}: "
                         f"{result['reason']} | - |")
            continue
        speedup = f"{single / result['median_epoch_s']:.2f}x" if single else "-"
        lines.append(f"| {result['processes']} | {result['threads_per_process']} | "
                     f"{result['median_epoch_s']:.1f} | {speedup} |")
    for result in run["results"]:
        if "allreduce" in result:
            reduce = result["allreduce"]
            lines += ["", f"All-reduce of the {reduce['bytes'] / 1e6:.1f} MB float32 gradient "
                      f"between {result['processes']} local processes (median of "
                      f"{reduce['repeat']}): {reduce['tinynn_ms']:.1f} ms as fit calls it "
                      f"(Iallreduce, polled), {reduce['mpi_allreduce_ms']:.1f} ms as a blocking "
                      "MPI_Allreduce."]
    projected = run.get("projection")
    if projected:
        lines += ["", f"Projection to N machines like this one, {config['bandwidth_gbit']:g} "
                  f"Gbit/s and {config['latency_us']:g} us per message; one training step "
                  "measured here (ms at batch size): " + ", ".join(
                      f"{batch}: {ms:.1f}" for batch, ms in sorted(
                          (int(b), ms) for b, ms in projected["step_ms"].items()))
                  + ". Epoch seconds (speedup):", ""]
        cells = {(r["global_batch"], r["machines"]): f"{r['epoch_s']:.0f} ({r['speedup']:.2f}x)"
                 for r in projected["rows"]}
        lines += ["| global batch | " + " | ".join(f"N={n}" for n in MACHINES) + " |",
                  "|---|" + "---|" * len(MACHINES)]
        lines += [f"| {batch} | " + " | ".join(cells.get((batch, n), "-") for n in MACHINES)
                  + " |" for batch in GLOBAL_BATCHES]
        lines += ["", "Smallest global batch of the table at which N machines beat one: "
                  + ", ".join(f"N={n}: {b if b else 'none'}"
                              for n, b in projected["break_even"].items()) + "."]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--processes", default="1,2",
                        help="comma-separated process counts (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=TRAIN_IMAGES, help="training images")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=50, help="all-reduces timed")
    parser.add_argument("--steps", type=int, default=20, help="steps timed per batch size")
    parser.add_argument("--bandwidth-gbit", type=float, default=10.0)
    parser.add_argument("--latency-us", type=float, default=50.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = worker(json.loads(args.worker.read_text()))
        if result is not None:
            print(json.dumps(result), flush=True)
        return 0
    from benchmarks.run import environment, write_data
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    config = {"train_images": min(args.limit, TRAIN_IMAGES), "epochs": args.epochs,
              "batch_size": 32, "seed": 0, "repeat": args.repeat, "steps": args.steps,
              "step_batches": list(STEP_BATCHES), "bandwidth_gbit": args.bandwidth_gbit,
              "latency_us": args.latency_us, "cores": cores,
              "processes": [int(p) for p in args.processes.split(",")]}
    run = {"settings": config, "environment": environment(), "results": []}
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data.npz"
        write_data(data, config["train_images"], 0)
        for processes in config["processes"]:
            spec = {**config, "data": str(data)}
            run["results"].append(launch(processes, spec, Path(scratch),
                                         max(1, cores // processes)))
            print(json.dumps(run["results"][-1])[:300], flush=True)
    single = next((r for r in run["results"] if r["status"] == "ok" and "step_ms" in r), None)
    if single:
        step_ms = {int(batch): ms for batch, ms in single["step_ms"].items()}
        run["projection"] = projection(step_ms, single["params"], TRAIN_IMAGES,
                                       args.bandwidth_gbit, args.latency_us)
    stem = f"distributed-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(run, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(run))
    print(markdown(run))
    print(f"wrote {args.out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
