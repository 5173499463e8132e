"""Hyper-parameter sweeps: one training function run over many configurations, serially or on Dask.

    def build_and_train(config: dict) -> dict:    # at a module's top level, so Dask can send it
        (x, y), (x_test, y_test) = load_my_data()
        model = build(config["depth"], seed=0)
        model.compile(tn.optimizers.Adam(config["learning_rate"]),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, epochs=5, validation_split=0.1, verbose=0)
        return {"history": history.history, "test": model.evaluate(x_test, y_test, verbose=0)}

    configs = [{"depth": d, "learning_rate": lr} for d in (3, 6) for lr in (1e-3, 1e-2)]
    results = tn.tuning.run_sweep(build_and_train, configs, scheduler="local:2")

``scheduler``: ``None`` or ``"none"`` runs the configurations one after another in this process;
``"local:N"`` on a Dask ``LocalCluster`` of N single-threaded worker processes that
``run_sweep`` starts and closes (no dashboard, nothing on port 8787, Dask's logs quiet);
``"tcp://host:port"`` (or ``tls://``) on an existing Dask cluster (``dask scheduler`` and
``dask worker tcp://host:8786 --nthreads 1``); a ``distributed.Client`` is used as it is and left
open. Dask comes with the ``distributed`` extra (``pip install "tinynn[distributed]"``) and is
imported only by a sweep that uses it.

Same numbers everywhere: each configuration runs with one BLAS thread (threadpoolctl, from the
same extra) and one numba thread, in this process as on a worker, and a ``LocalCluster``'s
workers start with ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and
``NUMBA_NUM_THREADS`` = 1. With the same seeds, a sweep on Dask therefore returns bitwise the
results of the serial sweep on the same machine (docs/guarantees.md, "Determinism"). Without
threadpoolctl the serial sweep leaves BLAS's threads as they are. The machine's cores are used
by running configurations side by side, one per worker, not by threads within one.

What travels: Dask pickles ``fn`` (with cloudpickle) and each configuration to the workers, and
``fn``'s return value back, so ``fn`` should return small plain data (``History.history``,
accuracies, seconds), not the model, and load its data itself rather than capture large arrays.
A function of the script being run (``__main__``) travels by value with what it uses from that
script; whatever it imports from other modules is imported by name on the Dask scheduler and
workers, which therefore need tinynn (and those modules) installed, or the modules registered
with ``cloudpickle.register_pickle_by_value`` (as examples/task2_mlp.py does with its helpers).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from .errors import ArgumentError, MissingDependencyError, SweepError
from .validation import choice

SINGLE_THREADED_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                       "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
_FORMS = "None, 'none', 'local:N', 'tcp://host:port', 'tls://host:port' or a distributed.Client"
_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):([0-9]{1,5})")
_LOCAL = re.compile(r"local:(-?[0-9]+)")


class Scheduler(NamedTuple):
    """A checked ``scheduler`` string: ``kind`` is "serial", "local" (a LocalCluster of
    ``n_workers``) or "address" (an existing cluster's scheduler at ``address``)."""

    kind: str
    n_workers: int = 0
    address: str = ""


def parse_scheduler(scheduler: str | None) -> Scheduler:
    """Check a ``scheduler`` argument without connecting anywhere.

    ``None``/``"none"`` -> ``Scheduler("serial")``; ``"local:2"`` -> ``Scheduler("local", 2)``;
    ``"tcp://10.0.0.5:8786"`` -> ``Scheduler("address", address="tcp://10.0.0.5:8786")``.
    Raises ArgumentError for any other value and MissingDependencyError when the form needs Dask
    and Dask is not installed.
    """
    if scheduler is not None and not isinstance(scheduler, str):
        raise ArgumentError(f"scheduler expected {_FORMS}, got {scheduler!r}")
    if scheduler is None or scheduler == "none":
        return Scheduler("serial")
    local, address = _LOCAL.fullmatch(scheduler), _ADDRESS.fullmatch(scheduler)
    if local:
        spec = Scheduler("local", n_workers=int(local.group(1)))
        if spec.n_workers < 1:
            raise ArgumentError(f"scheduler 'local:N' expected N >= 1 worker processes, "
                                f"got {scheduler!r}")
    elif address and 0 < int(address.group(3)) < 65536:
        spec = Scheduler("address", address=scheduler)
    else:
        raise ArgumentError(f"scheduler expected {_FORMS}, got {scheduler!r}")
    if importlib.util.find_spec("distributed") is None:
        _import_distributed(scheduler)
    return spec


def run_sweep(fn: Callable[[Any], Any], configs, scheduler=None, verbose: int = 1) -> list:
    """Run ``fn(config)`` for every configuration; returns the results in the order of ``configs``.

    Parameters
    ----------
    fn : a function of one configuration that builds and trains a model and returns small plain
        results (e.g. ``{"history": history.history, "test_accuracy": acc}``); on Dask it must be
        picklable (a module-level function, or a ``functools.partial`` of one).
    configs : a non-empty sequence of configurations, e.g. dicts of hyper-parameters.
    scheduler : None or "none" (serial, in this process), "local:N", "tcp://host:port",
        "tls://host:port", or a ``distributed.Client`` (see the module docstring).
    verbose : 1 prints one line per finished configuration (which one, how many of how many,
        seconds), in the order they finish; 0 prints nothing.

    Raises SweepError naming the first configuration that raised (its error is the
    ``__cause__``); the configurations still running are cancelled and a cluster started here
    is closed. Bad arguments raise ArgumentError before anything runs.
    """
    if not callable(fn):
        raise ArgumentError(f"run_sweep fn expected a callable taking one configuration, "
                            f"got {fn!r}")
    configs = _config_list(configs)
    choice(verbose, "run_sweep verbose", (0, 1))
    spec = None if _is_client(scheduler) else parse_scheduler(scheduler)
    if spec is not None and spec.kind == "serial":
        _say(verbose, f"sweep of {len(configs)} configurations, one after another in this process")
        return _run_serially(fn, configs, verbose)
    connection = contextlib.nullcontext(scheduler) if spec is None else dask_client(scheduler)
    with connection as client:
        _say(verbose, f"sweep of {len(configs)} configurations on {_describe(spec, client)}")
        return _run_on_dask(client, fn, configs, verbose)


@contextlib.contextmanager
def dask_client(scheduler: str) -> Iterator:
    """``with dask_client("local:2") as client:`` a ``distributed.Client`` for several sweeps.

    "local:N" starts a LocalCluster of N single-threaded worker processes (the variables of
    ``SINGLE_THREADED_ENV`` set before they start, no dashboard, nothing on port 8787, logs
    below ERROR silenced) and closes it on exit, also on error, putting back ``os.environ``
    (where Dask's Nanny writes those variables); "tcp://host:port" connects to an existing
    cluster and disconnects on exit.
    """
    spec = parse_scheduler(scheduler)
    if spec.kind == "serial":
        raise ArgumentError(f"dask_client scheduler expected 'local:N' or 'tcp://host:port', "
                            f"got {scheduler!r}")
    distributed = _import_distributed(scheduler)
    if spec.kind == "address":
        with distributed.Client(spec.address) as client:
            yield client
        return
    with _restored_environ():
        os.environ.update(SINGLE_THREADED_ENV)  # inherited by the worker processes
        # No dashboard; Dask's HTTP server (health, metrics) on a free port of localhost, so
        # that nothing takes port 8787 nor warns when it is taken.
        with distributed.LocalCluster(n_workers=spec.n_workers, threads_per_worker=1,
                                      processes=True, dashboard_address="127.0.0.1:0",
                                      scheduler_kwargs={"dashboard": False},
                                      silence_logs=logging.ERROR) as cluster, \
                distributed.Client(cluster) as client:
            yield client


def _run_config(fn: Callable[[Any], Any], config) -> tuple[Any, float]:
    """``(fn(config), seconds)`` with one BLAS and one numba thread in the calling thread
    (restored afterwards): what a sweep runs for each configuration, here or on a worker."""
    with _single_threaded():
        start = time.perf_counter()
        result = fn(config)
        return result, time.perf_counter() - start


def _run_serially(fn, configs: list, verbose: int) -> list:
    results = []
    for index, config in enumerate(configs):
        try:
            result, seconds = _run_config(fn, config)
        except Exception as error:
            raise _failed(index, configs, error) from error
        results.append(result)
        _report(verbose, len(results), configs, index, seconds)
    return results


def _run_on_dask(client, fn, configs: list, verbose: int) -> list:
    from distributed import as_completed

    futures = [client.submit(_run_config, fn, config, pure=False) for config in configs]
    position = {future.key: index for index, future in enumerate(futures)}
    results: list = [None] * len(configs)
    try:
        for done, future in enumerate(as_completed(futures), 1):
            index = position[future.key]
            try:
                results[index], seconds = future.result()
            except Exception as error:
                raise _failed(index, configs, error) from error
            _report(verbose, done, configs, index, seconds)
    except BaseException:
        client.cancel(futures)  # the configurations still queued or running
        raise
    return results


@contextlib.contextmanager
def _single_threaded() -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            stack.enter_context(threadpool_limits(limits=1))
        try:
            import numba
        except ImportError:
            pass
        else:
            stack.callback(numba.set_num_threads, numba.get_num_threads())
            numba.set_num_threads(1)  # numba's setting is per thread
        yield


@contextlib.contextmanager
def _restored_environ() -> Iterator[None]:
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


def _config_list(configs) -> list:
    if isinstance(configs, (str, bytes, Mapping)):
        raise ArgumentError(f"run_sweep configs expected a sequence of configurations (e.g. a "
                            f"list of dicts), got {type(configs).__name__} {configs!r}")
    try:
        configs = list(configs)
    except TypeError:
        raise ArgumentError(f"run_sweep configs expected a sequence of configurations, "
                            f"got {configs!r}") from None
    if not configs:
        raise ArgumentError("run_sweep configs expected at least one configuration, got []")
    return configs


def _is_client(scheduler) -> bool:
    if scheduler is None or isinstance(scheduler, str):
        return False
    distributed = sys.modules.get("distributed")  # imported wherever a Client exists
    return distributed is not None and isinstance(scheduler, distributed.Client)


def _import_distributed(scheduler):
    try:
        import distributed
    except ImportError as error:
        raise MissingDependencyError(
            f"a sweep on Dask (scheduler={scheduler!r}) needs dask.distributed, which is not "
            f"installed: pip install \"tinynn[distributed]\"") from error
    return distributed


def _describe(spec: Scheduler | None, client) -> str:
    if spec is not None and spec.kind == "local":
        return f"a Dask LocalCluster of {spec.n_workers} single-threaded worker processes"
    return f"the Dask cluster at {client.scheduler.address}"


def _failed(index: int, configs: list, error: BaseException) -> SweepError:
    message = (f"sweep configuration {index + 1} of {len(configs)} failed: {configs[index]!r} "
               f"raised {type(error).__name__}: {error}")
    return SweepError(message, index=index, config=configs[index])


def _report(verbose: int, done: int, configs: list, index: int, seconds: float) -> None:
    _say(verbose, f"sweep {done}/{len(configs)}: {configs[index]!r} done in {seconds:.1f} s")


def _say(verbose: int, line: str) -> None:
    if verbose:
        print(line, flush=True)
