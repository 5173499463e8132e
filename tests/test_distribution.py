"""tinynn.distribution: the shard-and-average arithmetic on simulated ranks in this process, the
dropout and callback coordination, launcher detection and argument checks; then real MPI jobs
(``mpiexec -n 2 python -m mpi4py``) against a one-process run, and jobs in which a rank fails;
last, the arithmetic of benchmarks/distributed.py's projection."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynn as tn
from tinynn import loops
from tinynn.callbacks import CallbackList
from tinynn.distribution import launch, mpi, replicas
from tinynn.distribution.communicator import Communicator
from tinynn.errors import ArgumentError, DistributedError, ShapeError
from tinynn.testing import assert_close, rounding_bound

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent / "mpi_scripts"
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   "NUMBA_NUM_THREADS": "1"}
LAUNCHER_VARIABLES = [name for pair in launch.LAUNCHERS for name in pair]


# -- shard arithmetic -----------------------------------------------------------------------------
@given(st.integers(0, 300), st.integers(1, 17))
def test_shards_are_contiguous_in_rank_order_and_differ_by_at_most_one_row(rows, world_size):
    shards = [tn.distribution.shard_rows(rows, world_size, rank) for rank in range(world_size)]
    assert shards[0].start == 0 and shards[-1].stop == rows
    assert all(a.stop == b.start for a, b in zip(shards, shards[1:]))
    sizes = tn.distribution.shard_sizes(rows, world_size)
    assert sizes == [s.stop - s.start for s in shards] and sum(sizes) == rows
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    if rows:
        weights = [tn.distribution.shard_weight(rows, world_size, r) for r in range(world_size)]
        # a division per weight, then their world_size-term sum
        bound = rounding_bound(1.0, np.float64, 2 * world_size)
        assert sum(weights) == pytest.approx(1.0, abs=bound) and weights[0] > 0


def test_shards_of_a_batch_smaller_than_the_world_are_empty_on_the_last_ranks():
    assert tn.distribution.shard_sizes(2, 4) == [1, 1, 0, 0]
    assert tn.distribution.shard_rows(2, 4, 3) == slice(2, 2)
    assert tn.distribution.shard_sizes(7, 3) == [3, 2, 2]


@pytest.mark.parametrize("args", [(5, 0, 0), (5, 2, 2), (5, 2, -1), (-1, 2, 0)])
def test_shard_rows_refuses_impossible_arguments(args):
    with pytest.raises(ArgumentError, match="expected num_rows >= 0 and 0 <= rank < world_size"):
        tn.distribution.shard_rows(*args)


class SimulatedRank(Communicator):
    """One rank of a simulated job in this process: records what it would sum over the ranks."""

    def __init__(self, size, rank):
        self.size, self.rank = size, rank
        self.summed = None

    def sum_in_place(self, *arrays, what):
        self.summed = [array.copy() for array in arrays]


def regularized_dropout_model(batch_norm=False):
    layers = tn.layers
    model = tn.Sequential([layers.Input((5,)),
                           layers.Dense(6, activation="tanh",
                                        kernel_regularizer=tn.regularizers.L2(0.05)),
                           *([layers.BatchNormalization(momentum=0.8)] if batch_norm else []),
                           layers.Dropout(0.4), layers.Dense(3, activation="softmax")], seed=3)
    model.compile(tn.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.build()
    return model


def simulate_ranks(world_size, x, y, batch_norm=False):
    """Every rank's ``data_parallel_step`` on the global batch, each on a fresh copy of the same
    model; returns the ranks' summed arrays and their models."""
    ranks, models = [], []
    for rank in range(world_size):
        model = regularized_dropout_model(batch_norm)
        x, y = model.prepare(x, y)
        ranks.append(SimulatedRank(world_size, rank))
        loops.data_parallel_step(model, ranks[-1], x, y)
        models.append(model)
    return [sum(parts) for parts in zip(*(rank.summed for rank in ranks))], models


@pytest.mark.parametrize("rows, world_size", [(7, 3), (12, 4), (2, 3), (1, 2), (9, 1)])
def test_weighted_shard_gradients_sum_to_the_whole_batch_gradient(float64, rows, world_size):
    """Simulated ranks against the whole batch in one process. May differ: the summation order
    (per-shard sums, then the sum over ranks), so the gradients and the summed loss by float64
    rounding, bounded by the depth below. May not: the count of correct predictions, and every
    rank's dropout generator, which drew the whole batch's masks, ends in the whole batch's
    state exactly, empty shard or not."""
    data = np.random.default_rng(rows)
    x, y = data.normal(size=(rows, 5)), np.arange(rows) % 3
    whole = regularized_dropout_model()
    loss, out = whole.compute_loss_and_gradients(*whole.prepare(x, y))
    (gradients, _, sums), models = simulate_ranks(world_size, x, y)
    # either side: the forward's 5- and 6-term dot products, tanh and 3-way softmax (~16), then
    # the backward's sums over the batch's rows (split by shard, or not) and the shard weights
    assert_close(gradients, whole.gradients, depth=2 * (16 + rows + world_size))
    assert sums[0] == pytest.approx(loss * rows, rel=1e-12)  # regularization counted once
    assert sums[1] == tn.metrics.count_correct(y, out)
    for model in models:  # every rank drew the whole batch's dropout masks, empty shard or not
        assert model.rngs["dropout"].bit_generator.state == \
            whole.rngs["dropout"].bit_generator.state
        assert all(layer.batch_shard is None for layer in model.layers)


def test_moving_means_weighted_by_shard_sum_to_the_whole_batch_update(float64):
    """Three simulated ranks against the whole batch of 7: the moving means may differ by the
    summation order of the batch mean (per shard, weighted, then over ranks), bounded by the
    depth below; nothing else is compared."""
    data = np.random.default_rng(0)
    x, y = data.normal(size=(7, 5)), np.arange(7) % 3
    whole = regularized_dropout_model(batch_norm=True)
    whole.compute_loss_and_gradients(*whole.prepare(x, y))
    (_, states, _), _ = simulate_ranks(3, x, y, batch_norm=True)
    where, _ = whole.state_layout["batch_normalization/moving_mean"]
    # either side: the 7-row mean (7), the shard weights and the 3-rank sum (3 + 3), the
    # momentum update (3)
    assert_close(states[where], whole.states[where], depth=2 * (7 + 3 + 3 + 3))


def test_dropout_keeps_the_rows_of_the_whole_batch_mask(rng):
    """A shard's Dropout (as on simulated ranks) against the whole batch's: nothing may differ,
    the shard's outputs and input gradients are the whole batch's rows bitwise, and the
    generator ends in the same state."""
    layer = tn.layers.Dropout(0.5)
    layer.build((6,), rng)
    x, dy = rng.normal(size=(7, 6)), rng.normal(size=(7, 6))
    start = layer.rng.bit_generator.state
    whole = layer.forward(x, training=True)
    whole_dx = layer.backward(dy)
    end = layer.rng.bit_generator.state
    for rows in (*[tn.distribution.shard_rows(7, 3, r) for r in range(3)], slice(7, 7)):
        layer.rng.bit_generator.state = start
        layer.batch_shard = (7, rows)
        np.testing.assert_array_equal(layer.forward(x[rows], training=True), whole[rows])
        np.testing.assert_array_equal(layer.backward(dy[rows]), whole_dx[rows])
        assert layer.rng.bit_generator.state == end
    with pytest.raises(ShapeError, match=r"expected 3 rows \(rows 0:3 of a global batch of 7\), "
                                         r"got 2"):
        layer.batch_shard = (7, slice(0, 3))
        layer.forward(x[:2], training=True)


def test_dropout_inside_a_nested_model_draws_the_whole_batch_from_the_outer_generator(rng):
    """A model nested in another, with Dropout: its Dropout draws from the calling model's
    generator (saved in its files), and on a shard (as on a rank) keeps the whole batch's rows
    of the mask. Nothing may differ: the same draws, the same arithmetic per row."""
    inner_input = tn.Input((6,))
    inner = tn.Model(inner_input, tn.layers.Dropout(0.5)(tn.layers.Dense(6)(inner_input)),
                     seed=5)
    x_in = tn.Input((6,))
    outer = tn.Model(x_in, tn.layers.Dense(2)(inner(x_in)), seed=1)
    outer.build()
    dropout = inner.layers[-1]
    assert dropout.rng is outer.rngs["dropout"]
    x = rng.normal(size=(7, 6)).astype(np.float32)
    start = outer.rngs["dropout"].bit_generator.state
    whole = outer.forward(x, training=True)
    outer.release_caches()
    for rows in [tn.distribution.shard_rows(7, 3, r) for r in range(3)]:
        outer.rngs["dropout"].bit_generator.state = start
        with loops.sharded_randomness(outer, 7, rows):
            assert dropout.batch_shard == (7, rows)
            np.testing.assert_array_equal(outer.forward(x[rows], training=True), whole[rows])
        outer.release_caches()
        assert dropout.batch_shard is None


# -- callbacks, launchers, arguments --------------------------------------------------------------
def test_rank_zero_only_callbacks_run_on_rank_zero_alone(tmp_path):
    early, scheduler = tn.callbacks.EarlyStopping(), tn.callbacks.LearningRateScheduler(
        lambda epoch: 0.1)
    writers = [tn.callbacks.CSVLogger(tmp_path / "log.csv"),
               tn.callbacks.ModelCheckpoint(tmp_path / "model.npz")]
    given = [early, scheduler, *writers]
    on_rank_zero = CallbackList(given, add_history=True, add_progbar=True, rank=0)
    on_rank_one = CallbackList(given, add_history=True, add_progbar=True, rank=1)
    assert [type(c).__name__ for c in on_rank_zero.callbacks] == [
        "EarlyStopping", "LearningRateScheduler", "CSVLogger", "ModelCheckpoint", "History",
        "ProgbarLogger"]
    assert on_rank_one.callbacks == [early, scheduler, on_rank_one.history]
    assert [c.rank_zero_only for c in (tn.callbacks.ProgbarLogger(), *writers)] == [True] * 3
    assert not any(c.rank_zero_only for c in (early, scheduler, tn.callbacks.History()))


@pytest.mark.parametrize("environ, expected", [
    ({}, (1, 0)),
    ({"PMI_SIZE": "4", "PMI_RANK": "3"}, (4, 3)),  # MPICH's Hydra
    ({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"}, (2, 1)),  # Open MPI
    ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "5"}, (8, 5)),  # srun
    ({"SLURM_NTASKS": "8", "SLURM_PROCID": "0"}, (1, 0)),  # a batch script, not srun
    ({"SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "1", "PMI_SIZE": "4", "PMI_RANK": "2"},
     (4, 2)),  # Hydra inside an allocation: its proxies were started by srun
])
def test_the_launcher_announces_world_size_and_rank(environ, expected):
    assert launch.launched_world(environ) == expected


@pytest.mark.parametrize("environ, message", [
    ({"PMI_SIZE": "2", "PMI_RANK": "2"}, "expected 0 <= PMI_RANK < PMI_SIZE, got PMI_RANK=2"),
    ({"PMI_SIZE": "two", "PMI_RANK": "0"}, "expected PMI_SIZE to be a non-negative integer, "
                                           "got 'two'"),
])
def test_a_broken_launcher_environment_is_refused(environ, message):
    with pytest.raises(ArgumentError, match=message):
        launch.launched_world(environ)


def test_one_process_without_a_launcher(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert (tn.distribution.world_size(), tn.distribution.rank()) == (1, 0)
    assert tn.distribution.list_devices() == ["cpu:0"] == tn.distribution.list_devices("CPU")
    assert tn.distribution.get_device_count() == 1
    strategy = tn.distribution.DataParallel()
    assert (strategy.num_processes, strategy.data_shard_id, strategy.batch_dim_name) == (
        1, 0, "batch")
    assert strategy.device_mesh.shape == (1,) and strategy.auto_shard_dataset is True
    assert tn.distribution.distribution() is None
    with strategy.scope():
        assert tn.distribution.distribution() is strategy
    assert tn.distribution.distribution() is None


@pytest.mark.parametrize("call, message", [
    (lambda: tn.distribution.DataParallel(auto_shard_dataset=False),
     "auto_shard_dataset expected True.*got False"),
    (lambda: tn.distribution.DataParallel(devices=["cpu:0", "cpu:1"]),
     r"expected every process's device once, \['cpu:0'\].*got \['cpu:0', 'cpu:1'\]"),
    (lambda: tn.distribution.DataParallel(device_mesh="mesh"),
     "device_mesh expected a tinynn.distribution.DeviceMesh, got str"),
    (lambda: tn.distribution.DataParallel(tn.distribution.DeviceMesh((1,), ["batch"]),
                                          devices=["cpu:0"]),
     "expected device_mesh or devices, not both"),
    (lambda: tn.distribution.DeviceMesh((2,), ["batch"]), r"expected 2 devices, got 1"),
    (lambda: tn.distribution.initialize(job_addresses="10.0.0.1:1234"),
     "job_addresses expected None.*got '10.0.0.1:1234'"),
    (lambda: tn.distribution.initialize(num_processes=2), "num_processes expected 1.*got 2"),
    (lambda: tn.distribution.initialize(process_id=1), "process_id expected 0.*got 1"),
    (lambda: tn.distribution.list_devices("gpu"), "expected None or 'cpu'.*got 'gpu'"),
    (lambda: tn.distribution.set_distribution("data"),
     "expected a tinynn.distribution.DataParallel or None, got str"),
])
def test_arguments_that_cannot_apply_are_refused(call, message, monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ArgumentError, match=message):
        call()
    assert tn.distribution.distribution() is None


@pytest.mark.parametrize("text, seconds", [(None, 300.0), ("2.5", 2.5), ("inf", float("inf"))])
def test_collective_timeout_comes_from_the_environment(text, seconds):
    environ = {} if text is None else {mpi.TIMEOUT_VARIABLE: text}
    assert mpi.collective_timeout(environ) == seconds


@pytest.mark.parametrize("text", ["0", "-1", "soon", "nan"])
def test_a_bad_collective_timeout_is_refused(text):
    with pytest.raises(ArgumentError, match=f"TINYNN_COLLECTIVE_TIMEOUT expected a positive "
                                            f"number of seconds or 'inf', got '{text}'"):
        mpi.collective_timeout({mpi.TIMEOUT_VARIABLE: text})


def test_one_process_data_parallel_trains_bitwise_as_without(monkeypatch):
    """DataParallel in a one-process world against no strategy: nothing may differ (no shard, no
    all-reduce, the same summation order), History and weights are bitwise equal."""
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    x, y = np.random.default_rng(0).normal(size=(50, 5)).astype(np.float32), np.arange(50) % 3
    plain, parallel = regularized_dropout_model(), regularized_dropout_model()
    history = plain.fit(x, y, batch_size=7, epochs=2, validation_split=0.2, verbose=0)
    with tn.distribution.DataParallel().scope():
        assert parallel.fit(x, y, batch_size=7, epochs=2, validation_split=0.2,
                            verbose=0).history == history.history
    np.testing.assert_array_equal(parallel.parameters, plain.parameters)


class OtherRankZero(Communicator):
    """Rank 1 of a simulated job whose rank 0 broadcasts ``reference`` and whose end-of-epoch
    maximum includes another checksum."""

    size, rank = 2, 1

    def __init__(self, reference=None, other_checksum=None):
        self.reference, self.other_checksum = reference, other_checksum

    def broadcast_json(self, value, what):
        return self.reference

    def max_in_place(self, array, what):
        array[:2] = np.maximum(array[:2], [self.other_checksum, -self.other_checksum])


def test_a_rank_called_differently_from_rank_zero_is_refused_before_anything_changes():
    model = regularized_dropout_model()
    x = np.zeros((4, 5), np.float32)
    mine = replicas.describe_call(model, "fit", {"x": x}, {"batch_size": 32})
    theirs = {**mine, "batch_size": 16, "x": [[5, 5], "float32", 123]}
    before = model.parameters.copy()
    with pytest.raises(DistributedError, match=r"fit \(starting on every rank\): rank 1 was called"
                                               r" differently from rank 0 \(batch_size: rank 0 "
                                               r"16, rank 1 32; x: rank 0 \[\[5, 5\]"):
        replicas.start(model, OtherRankZero(theirs), "fit", {"x": x}, {"batch_size": 32},
                       training=True)
    np.testing.assert_array_equal(model.parameters, before)


def test_replicas_whose_weights_drift_apart_are_caught_after_the_epoch():
    model = regularized_dropout_model()
    same = replicas.checksum(model.parameters, model.states)
    assert replicas.agree_after_epoch(model, OtherRankZero(other_checksum=same), True) is True
    with pytest.raises(DistributedError, match="the ranks' weights differ after this epoch"):
        replicas.agree_after_epoch(model, OtherRankZero(other_checksum=same ^ 1), False)


def fake_packages(directory: Path, **errors: str) -> Path:
    """Packages whose import raises ``errors[name]``, shadowing installed ones on PYTHONPATH."""
    for name, error in errors.items():
        (directory / name).mkdir(parents=True)
        (directory / name / "__init__.py").write_text(f"raise {error}\n")
    return directory


def test_mpi4py_is_imported_only_by_a_job_of_several_processes_and_named_if_absent(tmp_path):
    check = ("import sys, tinynn as tn\n"
             "assert 'mpi4py' not in sys.modules, 'import tinynn imported mpi4py'\n"
             "tn.distribution.set_distribution(tn.distribution.DataParallel())\n"
             "assert 'mpi4py' not in sys.modules, 'a lone DataParallel imported mpi4py'\n"
             "print(tn.distribution.world_size())\n")
    clean = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    alone = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                           timeout=120, env={**clean, "PYTHONPATH": str(ROOT)})
    assert alone.returncode == 0 and alone.stdout == "1\n", alone.stderr
    before_mpi = subprocess.run(  # rank and world size from the launcher, before MPI starts
        [sys.executable, "-c", "import sys, tinynn as tn; d = tn.distribution; print(d.rank(), "
         "d.world_size(), d.list_devices(), 'mpi4py' in sys.modules)"],
        capture_output=True, text=True, timeout=120,
        env={**clean, "PMI_SIZE": "3", "PMI_RANK": "2", "PYTHONPATH": str(ROOT)})
    assert before_mpi.stdout == "2 3 ['cpu:0', 'cpu:1', 'cpu:2'] False\n", before_mpi.stderr
    fakes = fake_packages(tmp_path, mpi4py="ImportError('No module named mpi4py')")
    launched = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=120,
        env={**clean, "PMI_SIZE": "2", "PMI_RANK": "0",
             "PYTHONPATH": os.pathsep.join([str(fakes), str(ROOT)])})
    assert launched.returncode != 0
    assert ("MissingDependencyError: data-parallel training across processes needs mpi4py and an "
            "MPI library, which are not installed (No module named mpi4py): pip install "
            "\"tinynn[distributed]\"") in launched.stderr


# -- real MPI jobs --------------------------------------------------------------------------------
def mpiexec_command(processes: int) -> list[str]:
    """``mpiexec -n <processes> python -m mpi4py``, with the mpiexec next to this Python (the
    mpich wheel's) or on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        message = "no mpiexec next to Python or on PATH (pip install -e \".[distributed]\")"
        if os.environ.get("TINYNN_REQUIRE_DISTRIBUTED") == "1":
            pytest.fail(f"TINYNN_REQUIRE_DISTRIBUTED=1 but {message}")
        pytest.skip(message)
    return [found, "-n", str(processes), sys.executable, "-m", "mpi4py"]


def run_job(command: list[str], *args, timeout=180, cwd=None, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or ROOT,
                          env={**environ, **SINGLE_THREADED, "PYTHONPATH": str(ROOT), **env})


@pytest.fixture(scope="module")
def trained(mpi4py, tmp_path_factory):
    """tests/mpi_scripts/train_small_models.py run by 2 MPI ranks and by one plain process:
    ``{"two": ..., "one": ...}``, each with ``dir``, ``stdout`` and, per rank, ``arrays``
    (npz) and ``logs`` (json)."""
    runs = {}
    for name, command in (("two", mpiexec_command(2)), ("one", [sys.executable])):
        out = tmp_path_factory.mktemp(f"trained-{name}")
        result = run_job(command, SCRIPTS / "train_small_models.py", out)
        assert result.returncode == 0, result.stdout + result.stderr
        ranks = sorted(out.glob("rank*.npz"))
        runs[name] = {"dir": out, "stdout": result.stdout,
                      "arrays": [dict(np.load(path)) for path in ranks],
                      "logs": [json.loads(path.with_suffix(".json").read_text())
                               for path in ranks]}
    return runs


def test_two_ranks_hold_bitwise_identical_weights_and_logs(trained):
    """The 2 ranks of one job against each other: nothing may differ. Both start from rank 0's
    broadcast weights and apply the same all-reduced sums, so their weights, moving statistics,
    predictions, logs and stopping steps are bitwise identical; both ran with 1 BLAS and 1
    numba thread."""
    rank0, rank1 = trained["two"]["arrays"]
    for key in rank0:
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=key)
    logs0, logs1 = trained["two"]["logs"]
    assert logs0["world_size"] == logs1["world_size"] == 2
    keys = ("unshuffled", "shuffled", "evaluated", "steps", "graph")
    assert {key: logs0[key] for key in keys} == {key: logs1[key] for key in keys}
    assert logs0["threads"] == {"blas": 1, "numba": 1}


#: Either run's roundings at the weights' scale after its 45 SGD steps (3 epochs of 15 batches):
#: per step, the gradient's rounding (summed in another order: shards of 8 and 7 rows, then the
#: all-reduce) enters scaled by the learning rate, momentum 0.9 carries it into ~10 updates,
#: and the velocity and weight updates round once each: ~12 a step, on both sides.
TRAINED_DEPTH = 2 * 45 * 12
#: ... and a prediction's: the trained weights, then either side's forward (9- and 64-term dot
#: products, biases, ReLU, 3-way softmax: ~80).
PREDICTED_DEPTH = TRAINED_DEPTH + 2 * 80
#: ... and a logged loss or accuracy: a mean over at most 211 samples (all-reduced in 2 parts).
LOGGED_DEPTH = PREDICTED_DEPTH + 2 * 211


def test_two_ranks_train_evaluate_and_predict_like_one_process(trained):
    """2 MPI ranks against one plain process, both single-threaded. May differ: the summation
    order of every batch's gradient and loss (per-rank shards, then the all-reduce), so weights,
    predictions and logged losses by float32 rounding, bounded by the depths above. May not:
    shapes, dtypes, log keys, epochs and accuracies beyond that rounding (no prediction flips),
    and the shuffled run differs from the unshuffled one."""
    (one,), (two, _) = trained["one"]["arrays"], trained["two"]["arrays"]
    depths = {"unshuffled": TRAINED_DEPTH, "shuffled": TRAINED_DEPTH,
              "predicted": PREDICTED_DEPTH, "graph": TRAINED_DEPTH,
              "graph_label": PREDICTED_DEPTH, "graph_size": PREDICTED_DEPTH}
    for key, depth in depths.items():
        assert (two[key].shape, two[key].dtype) == (one[key].shape, one[key].dtype) and \
            one[key].dtype == np.float32, key
        assert_close(two[key], one[key], depth=depth, err_msg=key)
    assert not np.array_equal(two["unshuffled"], two["shuffled"])
    (one_logs,), (two_logs, _) = trained["one"]["logs"], trained["two"]["logs"]
    assert one_logs["world_size"] == 1
    assert sorted(two_logs["graph"]) == ["label_accuracy", "label_loss", "loss", "size_loss"]
    for run in ("unshuffled", "shuffled", "graph"):
        assert one_logs[run].keys() == two_logs[run].keys()
        for key, values in one_logs[run].items():
            assert_close(two_logs[run][key], values, depth=LOGGED_DEPTH, dtype=np.float32,
                         err_msg=f"{run} {key}")
    assert_close(two_logs["evaluated"], one_logs["evaluated"], depth=LOGGED_DEPTH,
                 dtype=np.float32, err_msg="evaluated")


def test_a_stop_asked_on_one_rank_stops_every_rank_after_the_same_batch(trained):
    """2 ranks against each other and against one process: the steps run may not differ between
    the ranks (both stop after batch 2); the lone process never stops."""
    assert [logs["steps"] for logs in trained["two"]["logs"]] == [[0, 1, 2]] * 2
    assert len(trained["one"]["logs"][0]["steps"]) == 2 * 18  # rank 0 alone never stops


def test_rank_zero_alone_prints_progress_and_writes_the_csv_log(trained):
    out, stdout = trained["two"]["dir"], trained["two"]["stdout"]
    assert stdout.count("Epoch 1/2") == 1 and stdout.count("Epoch 2/2") == 1
    assert stdout.count("15/15 - ") == 2  # one line per epoch: 15 steps of 15 samples
    assert (out / "log-rank0.csv").read_text().startswith(
        "epoch,accuracy,loss,val_accuracy,val_loss\n0,")
    assert not (out / "log-rank1.csv").exists()


def test_a_rank_that_raises_ends_the_job_with_its_error(mpi4py):
    result = run_job(mpiexec_command(2), SCRIPTS / "fail_on_one_rank.py", "raise", timeout=120)
    assert result.returncode != 0
    assert "RuntimeError: rank 1 fails on purpose" in result.stderr
    assert "training finished" not in result.stdout


def test_a_rank_that_stops_answering_ends_the_job_at_the_collective_timeout(mpi4py):
    result = run_job(mpiexec_command(2), SCRIPTS / "fail_on_one_rank.py", "hang", timeout=120,
                     TINYNN_COLLECTIVE_TIMEOUT="3")
    assert result.returncode != 0
    assert ("DistributedError: the stop_training check did not complete within 3 s on rank 0 "
            "of 2: another rank is stuck, has died or has left the training loop") in \
        result.stderr
    assert "training finished" not in result.stdout


def test_task1_example_trains_data_parallel_and_prints_once(mpi4py, real_data_dir, tmp_path):
    result = run_job(mpiexec_command(2), ROOT / "examples" / "task1_one_hidden.py", "--limit",
                     "600", "--epochs", "2", "--lr-sweep", "", "--verbose", "2", "--out",
                     tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "data-parallel training on 2 processes (1 blas, 1 numba threads each)\n" in out
    assert out.count("Total params: 79,510") == 1 and out.count("Epoch 2/2") == 1
    assert out.count("test accuracy") == 1 and "weighted avg" in out
    assert (tmp_path / "task1_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert tn.models.load_model(tmp_path / "task1_model.npz").count_params() == 79_510


# -- the benchmark's projection -------------------------------------------------------------------
def test_the_benchmark_projects_a_ring_all_reduce_against_the_compute_it_saves():
    from benchmarks.distributed import projection, ring_allreduce_seconds
    gradient = 4 * 3_274_634  # the CNN's float32 gradient: 13.1 MB
    # 2 (N - 1) latencies + 2 (N - 1) / N of the buffer at 1.25 GB/s
    assert ring_allreduce_seconds(gradient, 1, 10, 50) == 0
    assert ring_allreduce_seconds(gradient, 2, 10, 50) == pytest.approx(1e-4 + gradient / 1.25e9)
    assert ring_allreduce_seconds(gradient, 8, 10, 50) == pytest.approx(
        14 * 50e-6 + 1.75 * gradient / 1.25e9)
    step_ms = {batch: 5.0 + batch for batch in (8, 16, 32, 64)}  # 5 ms + 1 ms per image
    found = projection(step_ms, 3_274_634, 54_000, 10, 50)
    rows = {(row["global_batch"], row["machines"]): row for row in found["rows"]}
    assert set(rows) == {(32, 1), (32, 2), (32, 4), (64, 1), (64, 2), (64, 4), (64, 8)}
    two = rows[64, 2]  # t(32) + the all-reduce, against t(64), 844 steps an epoch
    allreduce_ms = 1e3 * ring_allreduce_seconds(gradient, 2, 10, 50)
    assert two["allreduce_ms"] == pytest.approx(allreduce_ms)
    assert two["epoch_s"] == pytest.approx(844 * (37 + allreduce_ms) / 1e3)
    assert two["speedup"] == pytest.approx(69 / (37 + allreduce_ms))
    # t(B) = 5 + B ms: N = 2 at B = 32 costs t(16) + 10.6 = 31.6 ms < t(32) = 37 ms; N = 8
    # first fits at B = 64 (t(8) + 19.0 = 32 < 69); N = 16 needs t(4), not measured
    assert found["break_even"] == {"2": 32, "4": 32, "8": 64, "16": None}
    assert rows[32, 1]["speedup"] == pytest.approx(1.0)
