"""benchmarks/: a tiny end-to-end run, the report's tables and ratios, kernels, model specs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tinynn as tn
from benchmarks import report, run
from benchmarks.models import MODELS, forward_flops, keras_style_model, train_flops

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def fake_packages(directory: Path, **errors: str) -> Path:
    """Packages whose import raises ``errors[name]``, shadowing installed ones on PYTHONPATH."""
    for name, error in errors.items():
        (directory / name).mkdir(parents=True)
        (directory / name / "__init__.py").write_text(f"raise {error}\n")
    return directory


def test_benchmark_tiny_run_writes_json_table_and_plot(real_data_dir, tmp_path):
    fakes = fake_packages(tmp_path / "fakes", torch="ImportError('No module named torch')",
                          tensorflow="RuntimeError('broken install (fake)')")
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--models", "task1,cnn",
         "--limit", "128", "--epochs", "2", "--no-kernels", "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(fakes), "KERAS_BACKEND": "tensorflow",
             "OPENBLAS_L2_SIZE": "512"})  # dropped for the workers (run.BLAS_OVERRIDES)
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in out.iterdir())
    assert [Path(name).suffix for name in files] == [".json", ".md", ".png"]
    assert all(name.startswith("custom-") for name in files)  # latest.* is for full runs only
    saved = json.loads((out / files[0]).read_text())
    assert saved["settings"]["train_images"] == 128 and saved["settings"]["epochs"] == 2
    assert saved["settings"]["thread_env"]["OPENBLAS_NUM_THREADS"] == "2"
    assert {"date", "cpu", "cores", "versions", "blas"} <= saved["environment"].keys()
    assert [m["gflops"] > 0 for m in saved["matmul"]] == [True] * 3
    assert "OPENBLAS_L2_SIZE" in saved["settings"]["dropped_variables"]
    assert all(pool["architecture"] and pool["num_threads"] == 2
               for pool in saved["blas_pools"]) and saved["blas_pools"]
    report = (out / files[1]).read_text()
    assert "kernel)" in report and "Workers ran without" in report
    assert saved["kernels"] == [] and saved["ratios"] == []
    by_key = {(r["framework"], r["model"]): r for r in saved["results"]}
    assert len(by_key) == 6
    for model in ("task1", "cnn"):
        ours = by_key["tinynn", model]
        assert ours["status"] == "ok" and ours["params"] == PARAMS[model]
        assert len(ours["epoch_seconds"]) == 2 and ours["median_epoch_s"] > 0
        for key in ("evaluate_s", "predict_s", "peak_rss_mb", "gflops"):
            assert ours[key] > 0, key
        assert 0 <= ours["test_accuracy"] <= 1
        assert ours["thread_env"]["NUMBA_NUM_THREADS"] == "1"
        assert ours["thread_env"]["OPENBLAS_THREAD_TIMEOUT"] == "4"
        assert by_key["torch", model]["status"] == "skipped"  # reported, not a crash
        assert by_key["torch", model]["reason"] == "not installed (No module named torch)"
        assert by_key["keras", model]["status"] == "failed"  # the run goes on
        assert "RuntimeError: broken install (fake)" in by_key["keras", model]["reason"]
    table = (out / files[1]).read_text()
    assert "| Task 1 | tinynn | " in table and "| CNN | PyTorch | skipped |" in table
    assert "| CNN | Keras | failed |" in table and "no ratios" in table
    assert "Not measured: PyTorch, not installed (No module named torch)." in table
    assert table in result.stdout + "\n"
    assert (out / files[2]).read_bytes()[:8] == PNG


def fake_run(peers=("keras", "torch")) -> dict:
    """A run dict as run.py writes it: tinynn takes 1 s per epoch, Keras 4 s, PyTorch 2 s."""
    results = []
    for framework, seconds in (("tinynn", 1.0), ("keras", 4.0), ("torch", 2.0)):
        if framework != "tinynn" and framework not in peers:
            results.append({"framework": framework, "model": "cnn", "status": "skipped",
                            "reason": "not installed (fake)"})
            continue
        results.append({"framework": framework, "model": "cnn", "status": "ok",
                        "epoch_seconds": [3 * seconds, seconds], "median_epoch_s": seconds,
                        "evaluate_s": seconds / 4, "predict_s": seconds / 5,
                        "peak_rss_mb": 300.0, "test_accuracy": 0.9, "gflops": 50 / seconds})
    return {"settings": {"kind": "quick", "models": {"cnn": {"title": "CNN", "full_epochs": 20,
                                                              "full_accuracy": {"tinynn": 0.91}}},
                         "threads": 2, "thread_env": {"OMP_NUM_THREADS": "2"},
                         "train_images": 6000, "test_images": 10000, "batch_size": 32,
                         "inference_batch_size": 1000, "epochs": 2,
                         "keras_backend": "tensorflow"},
            "environment": {"date": "2026-11-22T10:00:00+00:00", "cpu": "Test CPU", "cores": 2,
                            "versions": {"numpy": "2.0", "torch": None}, "blas": "openblas"},
            "matmul": [{"shape": "2048x2048 @ 2048x2048", "gflops": 100.0}],
            "kernels": [{"kernel": "im2col", "shape": "conv2", "numpy_ms": 2.0, "numba_ms": 0.5,
                         "compile_s": 0.4}],
            "results": results}


def test_report_ratios_divide_tinynn_time_by_each_peers():
    ratios = {(r["peer"], r["metric"]): r["ratio"] for r in report.ratios(fake_run())}
    assert ratios == {("keras", "epoch"): 0.25, ("keras", "predict"): 0.25,
                      ("torch", "epoch"): 0.5, ("torch", "predict"): 0.5}
    assert report.ratios(fake_run(peers=())) == []


def test_report_markdown_tables_are_well_formed(tmp_path):
    run_dict = fake_run(peers=("keras",))
    run_dict["ratios"] = report.ratios(run_dict)
    text = report.markdown(run_dict)
    assert "| CNN | 0.25 | 0.25 |" in text  # epoch and predict vs Keras; PyTorch skipped
    assert "| CNN | tinynn | 1.00 | 3.00 | 0.25 | 0.20 | 300 | 0.9000 | 0.9100 (20 ep.) | " \
           "50.0 (50%) |" in text
    assert "| CNN | PyTorch | skipped |" in text
    assert "| im2col | conv2 | 2.000 | 0.500 | 4.0x | 0.40 |" in text
    assert "Not measured: PyTorch, not installed (fake)." in text
    assert "Test CPU" in text and "the second epoch" in text and "torch None" not in text
    for block in text.split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        assert len({row.count("|") for row in rows}) <= 1, block  # same column count
    paths = report.write(run_dict, tmp_path, "x")
    assert [p.name for p in paths] == ["x.json", "x.md", "x.png"]
    assert json.loads(paths[0].read_text()) == run_dict and paths[2].read_bytes()[:8] == PNG


def test_report_without_peers_says_so_and_still_plots(tmp_path):
    run_dict = fake_run(peers=())
    run_dict["ratios"] = []
    assert "tinynn alone, no ratios" in report.markdown(run_dict)
    assert report.plot(run_dict, tmp_path / "p.png").read_bytes()[:8] == PNG


def test_kernels_benchmark_runs_at_a_tiny_size(capsys):
    pytest.importorskip("numba")
    from benchmarks import kernels
    rows = kernels.kernel_rows(batch=1, repeat=1, params=64)
    assert {r["kernel"] for r in rows} == {"im2col", "col2im", "maxpool2d_forward",
                                          "maxpool2d_backward", "adam_update", "sgd_update"}
    assert all(r["numpy_ms"] > 0 and r["numba_ms"] > 0 and r["compile_s"] >= 0 for r in rows)
    assert {r["chosen"] for r in rows} <= {"numba", "numpy"}
    kernels.main(["--no-kernels"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["kernels"] == [] and len(printed["matmul"]) == len(kernels.MATMULS)


def test_run_settings_full_only_with_every_default():
    assert run.settings(run.parse_args([]))["kind"] == "full"
    quick = run.settings(run.parse_args(["--quick"]))
    assert (quick["kind"], quick["train_images"], quick["epochs"]) == ("quick", 6000, 2)
    custom = run.settings(run.parse_args(["--models", "cnn", "--limit", "99999"]))
    assert (custom["kind"], custom["train_images"], custom["test_images"]) == (
        "custom", 54_000, 10_000)
    for bad in (["--frameworks", "tinynn,jax"], ["--epochs", "0"], ["--limit", "-5"]):
        with pytest.raises(SystemExit):
            run.parse_args(bad)


def test_workers_run_without_blas_kernel_overrides_unless_kept(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "512")
    dropped = run.subprocess_env(run.settings(run.parse_args([])))
    assert "OPENBLAS_CORETYPE" not in dropped and "OPENBLAS_L2_SIZE" not in dropped
    assert dropped["OPENBLAS_NUM_THREADS"] == "2"
    kept = run.subprocess_env(run.settings(run.parse_args(["--keep-blas-overrides"])))
    assert (kept["OPENBLAS_CORETYPE"], kept["OPENBLAS_L2_SIZE"]) == ("Haswell", "512")


PARAMS = {"task1": 79_510, "mlp3": 101_770, "mlp6": 151_306, "mlp12": 250_378,
          "cnn": 3_274_634, "resnet": 170_794}


@pytest.mark.parametrize("name", list(MODELS))
def test_model_specs_build_the_reports_networks(name):
    model = keras_style_model(tn, MODELS[name], seed=0)
    model.build()
    assert model.count_params() == PARAMS[name]


def test_the_resnet_spec_is_the_examples_network(examples):
    spec_model = keras_style_model(tn, MODELS["resnet"], seed=0)
    example = examples.resnet.build_resnet(0)
    assert [type(layer) for layer in spec_model.layers] == [type(layer)
                                                            for layer in example.layers]
    assert [layer.output.shape for layer in spec_model.layers] == [
        layer.output.shape for layer in example.layers]


def test_model_flops_match_the_anchors():
    assert forward_flops(MODELS["cnn"]) == [1_254_400, 20_070_400, 6_422_528, 20_480]
    assert train_flops(MODELS["cnn"]) == 3 * 27_767_808 - 1_254_400  # about 82 MFLOP
    assert train_flops(MODELS["mlp3"]) == 3 * (2 * 784 * 128 + 2 * 128 * 10) - 2 * 784 * 128
    conv = [2 * 28 * 28 * 9 * 32, *[2 * 14 * 14 * 9 * 32 * 32] * 4,  # stem, 2 blocks at 32
            2 * 7 * 7 * 9 * 32 * 64, 2 * 7 * 7 * 9 * 64 * 64, 2 * 7 * 7 * 32 * 64,  # stride 2
            *[2 * 7 * 7 * 9 * 64 * 64] * 2, 2 * 64 * 10]
    assert forward_flops(MODELS["resnet"]) == conv


@pytest.mark.parametrize("name", list(MODELS))
def test_torch_twin_has_the_same_parameters_and_outputs(name):
    torch = pytest.importorskip("torch")
    from benchmarks.workers import torch_worker
    model = torch_worker.build(torch.nn, MODELS[name])
    shape = (2, 1, 28, 28) if name in ("cnn", "resnet") else (2, 28, 28)
    assert model(torch.zeros(shape)).shape == (2, 10)
    moving = sum(b.numel() for n, b in model.named_buffers()  # BatchNormalization's, which
                 if n.endswith(("running_mean", "running_var")))  # Keras counts as weights
    assert sum(p.numel() for p in model.parameters()) + moving == PARAMS[name]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    assert all(not b.any() for b in biases)  # Keras's zero biases


def test_step_profile_times_every_layer_and_the_step():
    from benchmarks.profile import profile_step

    found = profile_step(steps=3, batch=4)
    assert [entry["layer"] for entry in found["layers"]] == [
        "conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "flatten", "dense", "dropout",
        "dense_1"]
    assert all(entry["forward_ms"] > 0 for entry in found["layers"])
    assert found["layers"][0]["algorithm"] == "im2col"
    assert found["step_ms"] >= found["optimizer_ms"] > 0 and found["finite_check_ms"] > 0


def test_resnet_recipe_schedule_drops_tenfold_for_the_last_quarter():
    from benchmarks.resnet_recipe import recipe_schedule
    rates = [recipe_schedule(0.001, 12)(epoch) for epoch in range(12)]
    assert rates == [0.001] * 9 + [0.0001] * 3


@pytest.mark.parametrize("framework", ["tinynn", "keras"])
def test_resnet_recipe_trains_the_examples_network_in_each_framework(framework, request,
                                                                     real_data_dir):
    from benchmarks.resnet_recipe import train
    api = tn if framework == "tinynn" else request.getfixturevalue("keras")
    found = train(api, framework, epochs=1, limit=128)
    assert (found["framework"], found["epochs"], found["train_images"]) == (framework, 1, 128)
    assert 0 <= found["test_accuracy"] <= 1 and found["training_seconds"] > 0
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= found["history"].keys()


def test_conv_passes_times_tinynn_and_tabulates_gflops_and_ratios():
    from benchmarks import conv_passes
    found = conv_passes.worker("tinynn", batch=2, repeat=1)
    assert list(found) == list(conv_passes.SHAPES)
    assert all(found[name][kind] > 0 for name in found for kind in conv_passes.PASSES)
    peer = {name: {kind: found[name][kind] / 2 for kind in conv_passes.PASSES}
            for name in found}  # twice as fast
    lines = conv_passes.table({"tinynn": found, "torch": peer,
                               "tensorflow": {"status": "skipped", "reason": "no"}}, batch=2)
    assert lines[0] == ("| convolution | pass | tinynn GFLOP/s | torch GFLOP/s "
                        "| tinynn / torch time |")
    assert len(lines) == 2 + len(conv_passes.SHAPES) * len(conv_passes.PASSES)
    assert all(line.endswith("| 2.00 |") for line in lines[2:])
    h, w, c, f, k = conv_passes.SHAPES["CNN conv2 (5x5, 32 -> 64, 14x14)"]
    assert conv_passes.flops(32, (h, w, c, f, k)) == 2 * 32 * 14 * 14 * 25 * 32 * 64


def test_augmentation_benchmark_times_tinynn_and_tabulates_the_share_of_a_step():
    from benchmarks import augmentation
    found = augmentation.time_tinynn(batch=2, repeat=1)
    assert set(found) == {"augmentation forward", "augmentation forward + backward", "CNN step"}
    assert all(value > 0 for value in found.values())
    lines = augmentation.table({"tinynn": {"augmentation forward": 1.0,
                                           "augmentation forward + backward": 3.0,
                                           "CNN step": 20.0},
                                "keras": {"status": "skipped", "reason": "no"}})
    assert lines[2] == "| tinynn | 1.00 | 5.0% | 3.00 | 20.00 |"
    assert lines[3] == "| keras | skipped: no | | | |"


def test_side_by_side_benchmarks_share_one_checked_command_line(capsys):
    from benchmarks import run
    args = run.side_by_side_args("x", ("tinynn", "keras"), 7, ["--frameworks", "keras"])
    assert (args.frameworks, args.repeat, args.batch, args.threads) == (["keras"], 7, 32, 2)
    with pytest.raises(SystemExit):
        run.side_by_side_args("x", ("tinynn", "keras"), 7, ["--frameworks", "tinynn,jax"])
    assert "--frameworks expected names from ('tinynn', 'keras'), got 'tinynn,jax'" in \
        capsys.readouterr().err
