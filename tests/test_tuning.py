"""tinynn.tuning.run_sweep: serial and Dask sweeps return the same results, in the order of the
configurations; bad arguments, failing configurations, thread limits and the LocalCluster's life
cycle; the task 2 example's --lr-sweep on --scheduler local:2 against the serial one."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinynn as tn
from tinynn import tuning
from tinynn.errors import ArgumentError, MissingDependencyError, SweepError
from tinynn.tuning import Scheduler, parse_scheduler, run_sweep

from .conftest import require
from .test_examples import ROOT, run_example

CALLS = []  # what record() saw, in this process (serial sweeps)


def record(config):
    CALLS.append(config)
    return config


def double(config):
    return 2 * config


def fail_on_negative(config: int) -> int:
    CALLS.append(config)
    if config < 0:
        raise ValueError(f"negative configuration {config}")
    return config


def sleep_then_name(config: dict) -> str:
    time.sleep(config["sleep"])
    return config["name"]


def thread_facts(config=None) -> dict:
    """Where and with how many threads a configuration runs."""
    import numba
    from threadpoolctl import threadpool_info

    return {"pid": os.getpid(), "numba_threads": numba.get_num_threads(),
            "blas_threads": [lib["num_threads"] for lib in threadpool_info()
                             if lib["user_api"] == "blas"],
            "env": {name: os.environ.get(name) for name in tuning.SINGLE_THREADED_ENV}}


def record_facts_then_fail(config: tuple) -> None:
    path, fail = config
    Path(path).write_text(json.dumps(thread_facts()))
    if fail:
        raise RuntimeError("this configuration fails")
    time.sleep(1.0)


def train_tiny_mlp(config: dict) -> dict:
    """A few hundred samples, two epochs: the History, test numbers and a hash of the weights."""
    data = np.random.default_rng(0)
    x = data.normal(size=(400, 8, 8)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(int) + (x[:, 0, 0] > 0)
    model = tn.Sequential([tn.layers.Input((8, 8)), tn.layers.Flatten(),
                           tn.layers.Dense(config["units"], activation="relu"),
                           tn.layers.Dense(3, activation="softmax")], seed=config["seed"])
    model.compile(tn.optimizers.Adam(config["learning_rate"]), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, batch_size=32, validation_split=0.1, verbose=0)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    return {"history": history.history, "loss": loss, "accuracy": accuracy,
            "weights": hashlib.sha256(model.parameters.tobytes()).hexdigest()}


TINY_CONFIGS = [{"units": units, "learning_rate": lr, "seed": seed}
                for units, lr, seed in ((64, 1e-3, 0), (64, 1e-2, 0), (128, 1e-3, 1), (16, 0.1, 2))]


@pytest.fixture(scope="session")
def threadpoolctl():
    return require("threadpoolctl", "distributed")


@pytest.fixture(scope="module")
def client(dask_distributed, threadpoolctl):
    """One LocalCluster of 2 single-threaded worker processes for the module's Dask tests."""
    with tuning.dask_client("local:2") as client:
        yield client


def wait_until_gone(pids, seconds: float = 10.0) -> list:
    """The pids still alive after up to ``seconds``."""
    import psutil

    deadline = time.monotonic() + seconds
    while (alive := [pid for pid in pids if psutil.pid_exists(pid)]) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


# Scheduler strings.

@pytest.mark.parametrize("text, expected", [
    (None, Scheduler("serial")),
    ("none", Scheduler("serial")),
    ("local:1", Scheduler("local", n_workers=1)),
    ("local:16", Scheduler("local", n_workers=16)),
    ("tcp://127.0.0.1:8786", Scheduler("address", address="tcp://127.0.0.1:8786")),
    ("tcp://scheduler.example.org:9000",
     Scheduler("address", address="tcp://scheduler.example.org:9000")),
    ("tls://[::1]:8786", Scheduler("address", address="tls://[::1]:8786")),
])
def test_scheduler_strings_are_parsed(dask_distributed, text, expected):
    assert parse_scheduler(text) == expected


BAD_ARGUMENTS = [
    ("fn not callable", lambda: run_sweep(3, [1]), "3"),
    ("no configurations", lambda: run_sweep(record, []), "[]"),
    ("a dict of lists", lambda: run_sweep(record, {"lr": [1, 2]}), "{'lr': [1, 2]}"),
    ("a string", lambda: run_sweep(record, "0.1,0.2"), "'0.1,0.2'"),
    ("not iterable", lambda: run_sweep(record, 5), "5"),
    ("local:0", lambda: run_sweep(record, [1], scheduler="local:0"), "'local:0'"),
    ("local:-2", lambda: run_sweep(record, [1], scheduler="local:-2"), "'local:-2'"),
    ("local:two", lambda: run_sweep(record, [1], scheduler="local:two"), "'local:two'"),
    ("local", lambda: run_sweep(record, [1], scheduler="local"), "'local'"),
    ("unknown form", lambda: run_sweep(record, [1], scheduler="gpu:2"), "'gpu:2'"),
    ("address without port", lambda: run_sweep(record, [1], scheduler="tcp://host"),
     "'tcp://host'"),
    ("port 0", lambda: run_sweep(record, [1], scheduler="tcp://host:0"), "'tcp://host:0'"),
    ("port too large", lambda: run_sweep(record, [1], scheduler="tcp://host:70000"),
     "'tcp://host:70000'"),
    ("http address", lambda: run_sweep(record, [1], scheduler="http://host:8786"),
     "'http://host:8786'"),
    ("an int", lambda: run_sweep(record, [1], scheduler=2), "2"),
    ("verbose", lambda: run_sweep(record, [1], verbose=2), "2"),
    ("dask_client none", lambda: tuning.dask_client("none").__enter__(), "'none'"),
]


@pytest.mark.parametrize("call, received", [case[1:] for case in BAD_ARGUMENTS],
                         ids=[case[0] for case in BAD_ARGUMENTS])
def test_a_bad_argument_is_refused_before_anything_runs(call, received):
    CALLS.clear()
    with pytest.raises(ArgumentError) as caught:
        call()
    message = str(caught.value)
    assert "expected" in message and received in message, message
    assert CALLS == []


def test_the_scheduler_message_lists_the_accepted_forms():
    with pytest.raises(ArgumentError, match=r"expected None, 'none', 'local:N', "
                                            r"'tcp://host:port', 'tls://host:port' or a "
                                            r"distributed.Client, got 'gpu:2'"):
        parse_scheduler("gpu:2")
    with pytest.raises(ArgumentError, match=r"expected N >= 1 worker processes, got 'local:0'"):
        parse_scheduler("local:0")


def test_without_the_extra_a_dask_scheduler_names_it_and_serial_sweeps_still_run(monkeypatch):
    for module in ("distributed", "threadpoolctl"):  # import <module> -> ImportError
        monkeypatch.setitem(sys.modules, module, None)
    for scheduler in ("local:2", "tcp://127.0.0.1:8786"):
        with pytest.raises(MissingDependencyError, match=r'pip install "tinynn\[distributed\]"'):
            run_sweep(double, [1], scheduler=scheduler)
    assert run_sweep(double, [1, 2], scheduler="none", verbose=0) == [2, 4]


def test_import_tinynn_imports_neither_dask_nor_threadpoolctl():
    code = ("import sys, tinynn; print(sorted(m for m in ('dask', 'distributed', 'threadpoolctl')"
            " if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# Serial sweeps.

def test_serial_sweep_returns_results_in_order_and_prints_one_line_per_configuration(capsys):
    assert run_sweep(double, [3, 1, 2]) == [6, 2, 4]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "sweep of 3 configurations, one after another in this process"
    assert [line.split(" done in ")[0] for line in lines[1:]] == [
        "sweep 1/3: 3", "sweep 2/3: 1", "sweep 3/3: 2"]
    assert all(line.endswith(" s") for line in lines[1:])
    assert run_sweep(double, (c for c in [5]), scheduler="none", verbose=0) == [10]
    assert capsys.readouterr().out == ""


def test_a_failing_configuration_is_named_and_stops_a_serial_sweep():
    CALLS.clear()
    with pytest.raises(SweepError) as caught:
        run_sweep(fail_on_negative, [1, -2, 3], verbose=0)
    error = caught.value
    assert str(error) == ("sweep configuration 2 of 3 failed: -2 raised ValueError: negative "
                          "configuration -2")
    assert (error.index, error.config) == (1, -2)
    assert isinstance(error.__cause__, ValueError) and isinstance(error, RuntimeError)
    assert CALLS == [1, -2]  # the third never ran


def test_serial_configurations_run_single_threaded_and_the_limits_are_restored(threadpoolctl):
    import numba

    before = (numba.get_num_threads(), threadpoolctl.threadpool_info())
    facts = run_sweep(thread_facts, [0], verbose=0)[0]
    assert facts["pid"] == os.getpid()
    assert facts["numba_threads"] == 1
    assert facts["blas_threads"] and set(facts["blas_threads"]) == {1}
    assert (numba.get_num_threads(), threadpoolctl.threadpool_info()) == before


# Sweeps on Dask.

def test_dask_sweep_equals_the_serial_sweep_bitwise(client):
    """The sweep on 2 Dask worker processes against the serial sweep in this process, on this
    machine. May differ: where and when each configuration runs (the pid, the finishing order).
    May not: anything computed. Both run every configuration with 1 BLAS and 1 numba thread,
    so the summation order is the same and every History value, loss, accuracy and weight hash
    is bitwise equal, in the order of the configurations."""
    serial = run_sweep(train_tiny_mlp, TINY_CONFIGS, verbose=0)
    on_dask = run_sweep(train_tiny_mlp, TINY_CONFIGS, scheduler=client, verbose=0)
    assert on_dask == serial  # every History value, loss, accuracy and weight hash exactly
    assert len({result["weights"] for result in serial}) == len(TINY_CONFIGS)


def test_dask_results_come_back_in_config_order_and_progress_in_finishing_order(client, capsys):
    configs = [{"name": "slow", "sleep": 2.0}, {"name": "fast", "sleep": 0.0}]
    assert run_sweep(sleep_then_name, configs, scheduler=client) == ["slow", "fast"]
    lines = capsys.readouterr().out.splitlines()
    address = client.scheduler.address
    assert lines[0] == f"sweep of 2 configurations on the Dask cluster at {address}"
    assert lines[1].startswith("sweep 1/2: {'name': 'fast', 'sleep': 0.0} done in ")
    assert lines[2].startswith("sweep 2/2: {'name': 'slow', 'sleep': 2.0} done in ")


def test_workers_are_single_threaded_processes_and_port_8787_stays_free(client):
    """What makes a worker's results bitwise equal to the serial sweep's: 1 BLAS and 1 numba
    thread, set before NumPy loaded; only the pid may differ from this process."""
    facts = run_sweep(thread_facts, [0, 1, 2, 3], scheduler=client, verbose=0)
    assert os.getpid() not in {fact["pid"] for fact in facts}
    assert len({fact["pid"] for fact in facts}) <= 2
    for fact in facts:
        assert fact["numba_threads"] == 1 and set(fact["blas_threads"]) == {1}
        assert fact["env"] == tuning.SINGLE_THREADED_ENV  # set before NumPy and numba loaded
    assert set(client.nthreads().values()) == {1} and len(client.nthreads()) == 2
    http_port = client.scheduler_info()["services"]["dashboard"]  # health and metrics only
    assert http_port != 8787 and not client.dashboard_link.endswith(":8787/status")


def test_a_failing_configuration_on_dask_is_named_and_the_client_stays_usable(client):
    with pytest.raises(SweepError) as caught:
        run_sweep(fail_on_negative, [1, -2, 3], scheduler=client, verbose=0)
    assert str(caught.value) == ("sweep configuration 2 of 3 failed: -2 raised ValueError: "
                                 "negative configuration -2")
    assert (caught.value.index, caught.value.config) == (1, -2)
    assert isinstance(caught.value.__cause__, ValueError)
    assert client.status == "running"
    assert run_sweep(double, [1, 2], scheduler=client, verbose=0) == [2, 4]


def test_an_address_connects_to_the_existing_cluster_and_leaves_it_running(client, capsys):
    address = client.scheduler.address
    assert run_sweep(double, [1, 2, 3], scheduler=address) == [2, 4, 6]
    assert capsys.readouterr().out.startswith(
        f"sweep of 3 configurations on the Dask cluster at {address}\n")
    assert client.status == "running" and len(client.nthreads()) == 2


def test_local_scheduler_starts_single_threaded_workers_and_stops_them(dask_distributed,
                                                                        threadpoolctl, capsys):
    environ = dict(os.environ)
    facts = run_sweep(thread_facts, [0, 1, 2], scheduler="local:2")
    out = capsys.readouterr().out
    assert out.startswith("sweep of 3 configurations on a Dask LocalCluster of 2 single-threaded "
                          "worker processes\n")
    assert sorted(line.split(":")[0] for line in out.splitlines()[1:]) == [
        "sweep 1/3", "sweep 2/3", "sweep 3/3"]
    pids = {fact["pid"] for fact in facts}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert all(fact["numba_threads"] == 1 and set(fact["blas_threads"]) == {1} for fact in facts)
    assert wait_until_gone(pids) == []
    assert dict(os.environ) == environ  # Dask's Nanny wrote into it; put back


def test_a_failure_on_a_local_cluster_closes_it(dask_distributed, threadpoolctl, tmp_path):
    environ = dict(os.environ)
    configs = [(str(tmp_path / "ok.json"), False), (str(tmp_path / "fails.json"), True)]
    with pytest.raises(SweepError, match=r"sweep configuration 2 of 2 failed: \('/.*fails\.json', "
                                         r"True\) raised RuntimeError: this configuration fails"):
        run_sweep(record_facts_then_fail, configs, scheduler="local:2", verbose=0)
    pids = {json.loads((tmp_path / name).read_text())["pid"]
            for name in ("ok.json", "fails.json") if (tmp_path / name).exists()}
    assert pids and os.getpid() not in pids
    assert wait_until_gone(pids) == []
    assert dict(os.environ) == environ


# The task 2 example.

SWEEP_HEADER = ("| depth | learning rate | final loss | validation accuracy | test accuracy | "
                "seconds |")


def sweep_rows(out: str) -> list[list[str]]:
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    return [line.strip(" |").split(" | ") for line in lines[lines.index(SWEEP_HEADER) + 1:]]


def test_task2_sweep_on_two_dask_workers_matches_the_serial_sweep(real_data_dir, dask_distributed,
                                                                   tmp_path):
    """examples/task2_mlp.py's --lr-sweep on 2 Dask worker processes (--scheduler local:2)
    against its serial sweep (in the example's own process), on this machine. May differ: the
    seconds column, the line naming the scheduler and the order of the progress lines. May not:
    the depths, learning rates, final losses and accuracies printed, nor the best
    configuration's line: both sweeps run single-threaded, so the runs are bitwise equal and
    their text is the same."""
    flags = ["--limit", "400", "--epochs", "1", "--depth", "all", "--lr-sweep", "0.001,0.01"]
    outputs, rows = {}, {}
    for scheduler in ("local:2", "none"):
        out_dir = tmp_path / scheduler.replace(":", "")
        out_dir.mkdir()
        outputs[scheduler] = run_example("task2_mlp.py", *flags, "--scheduler", scheduler,
                                         tmp_path=out_dir)
        rows[scheduler] = sweep_rows(outputs[scheduler])
        for name in ("task2_lr_sweep.png", "task2_lr_sweep_training.png"):
            assert (out_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out_dir / "task2_lr_sweep.md").read_text().splitlines()[0] == SWEEP_HEADER
    assert ("sweep of 6 configurations on a Dask LocalCluster of 2 single-threaded worker "
            "processes") in outputs["local:2"]
    assert "sweep of 6 configurations, one after another in this process" in outputs["none"]
    for out in outputs.values():
        assert all(f"sweep {i}/6: {{'depth': " in out for i in range(1, 7))

    # Every depth with every learning rate, in that order.
    assert [row[:2] for row in rows["none"]] == [[depth, lr] for depth in ("3", "6", "12")
                                                 for lr in ("0.001", "0.01")]
    assert [row[:5] for row in rows["local:2"]] == [row[:5] for row in rows["none"]]
    for row in rows["none"]:
        loss, val_accuracy, test_accuracy, seconds = (float(cell) for cell in row[2:])
        # seconds are printed to 2 decimals: a fast configuration shows 0.00
        assert loss > 0 and 0 <= val_accuracy <= 1 and 0 <= test_accuracy <= 1 and seconds >= 0

    best = [next(line for line in out.splitlines() if line.startswith("best "))
            for out in outputs.values()]
    assert best[0] == best[1]
    winner = max(rows["none"], key=lambda row: float(row[3]))
    assert best[0] == (f"best by final validation accuracy: {winner[0]} layers, lr={winner[1]} "
                       f"(validation accuracy {winner[3]}, test accuracy {winner[4]})")


@pytest.mark.parametrize("flags, message", [
    (["--scheduler", "local:0", "--lr-sweep", "0.01"],
     "argument --scheduler: scheduler 'local:N' expected N >= 1 worker processes, got 'local:0'"),
    (["--scheduler", "tcp://nowhere", "--lr-sweep", "0.01"],
     "argument --scheduler: scheduler expected None, 'none', 'local:N'"),
    (["--scheduler", "local:2"],
     "--scheduler runs the --lr-sweep configurations: give --lr-sweep too"),
])
def test_task2_refuses_a_bad_scheduler_before_training(dask_distributed, tmp_path, flags, message):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "task2_mlp.py"), "--out",
                             str(tmp_path), *flags], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []
