"""The report examples run end to end on a small subset of the real data."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tinynn as tn

ROOT = Path(__file__).resolve().parents[1]


def run_example(script: str, *args: str, tmp_path: Path) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--out",
                             str(tmp_path), "--verbose", "2", *args],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_task1_example_trains_and_writes_its_plots(real_data_dir, tmp_path):
    out = run_example("task1_one_hidden.py", "--limit", "2000", "--epochs", "3",
                      "--lr-sweep", "0.1,5", tmp_path=tmp_path)
    assert "Total params: 79,510" in out and "Epoch 3/3" in out
    accuracy = float(out.split("test accuracy ")[1].split()[0])
    assert 0.5 < accuracy <= 1.0
    assert "weighted avg" in out and "Ankle boot" in out
    for name in ("task1_curves.png", "task1_lr_sweep.png", "task1_confusion_matrix.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = tn.models.load_model(tmp_path / "task1_model.npz")
    assert model.count_params() == 79_510


@pytest.mark.parametrize("flags", [["--full-batch", "--lr", "0.5"],
                                   ["--output-activation", "sigmoid", "--loss", "mse"]])
def test_task1_example_report_variants_run(real_data_dir, tmp_path, flags):
    out = run_example("task1_one_hidden.py", "--limit", "500", "--epochs", "2",
                      "--lr-sweep", "", *flags, tmp_path=tmp_path)
    assert "test accuracy" in out


def test_task2_example_trains_every_depth_and_writes_table_and_plots(real_data_dir, tmp_path):
    out = run_example("task2_mlp.py", "--limit", "1000", "--epochs", "1", "--seeds", "2",
                      "--lr-sweep", "0.001,0.01", tmp_path=tmp_path)
    for total in ("101,770", "151,306", "250,378"):
        assert f"Total params: {total}" in out and f"| {total} |" in out
    assert tn.models.load_model(tmp_path / "task2_depth12_model.npz").count_params() == 250_378
    table = (tmp_path / "task2_results.md").read_text()
    assert table.count("\n") == 5 and table.startswith("| depth | params |")
    for name in ("task2_depths.png", "task2_lr_sweep.png", "task2_depth3_confusion_matrix.png",
                 "task2_depth12_confusion_matrix.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_task3_example_smoke_run_on_a_small_subset(real_data_dir, tmp_path):
    out = run_example("task3_cnn.py", "--limit", "320", "--epochs", "1", tmp_path=tmp_path)
    assert "Total params: 3,274,634" in out and "test accuracy" in out
    assert (tmp_path / "task3_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "task3_confusion_matrix.png").exists()
    assert tn.models.load_model(tmp_path / "task3_model.npz").count_params() == 3_274_634


def test_task3_batch_norm_variant_trains_both_networks_and_compares(real_data_dir, tmp_path):
    out = run_example("task3_cnn.py", "--limit", "256", "--epochs", "1", "--batch-norm",
                      tmp_path=tmp_path)
    assert "Total params: 3,274,634" in out
    assert "Non-trainable params: 192" in out  # moving mean and variance of 32 + 64 channels
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[0] == "| variant | test accuracy | s per epoch |"
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| reports' CNN",
                                                          "| with BatchNormalization"]
    for row in rows[1:]:
        accuracy, seconds = (float(cell) for cell in row.strip(" |").split(" | ")[1:])
        assert 0.0 <= accuracy <= 1.0 and seconds > 0
    assert (tmp_path / "task3_batch_norm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = tn.models.load_model(tmp_path / "task3_batch_norm_model.npz")
    assert model.count_params() == 3_274_634 + 4 * (32 + 64)


def test_task3_augment_variant_puts_training_only_augmentation_first(real_data_dir, tmp_path):
    out = run_example("task3_cnn.py", "--limit", "256", "--epochs", "1", "--augment",
                      tmp_path=tmp_path)
    assert "Total params: 3,274,634" in out and "test accuracy" in out
    model = tn.models.load_model(tmp_path / "task3_augment_model.npz")
    assert [type(layer).__name__ for layer in model.layers[:3]] == [
        "RandomFlip", "RandomTranslation", "RandomRotation"]
    assert model.layers[0].mode == "horizontal" and model.layers[1].fill_mode == "constant"
    assert (tmp_path / "task3_augment_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_folder_example_trains_from_the_pngs_it_wrote(real_data_dir, tmp_path):
    out = run_example("image_folder.py", "--limit", "200", "--epochs", "1", tmp_path=tmp_path)
    assert "Found 200 files belonging to 10 classes." in out and "test accuracy" in out
    assert sorted(p.name for p in (tmp_path / "images").iterdir())[:2] == ["Ankle boot", "Bag"]
    assert len(list((tmp_path / "images").rglob("*.png"))) == 200
    assert (tmp_path / "image_folder_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_task3_explain_writes_filters_feature_maps_and_mistakes(real_data_dir, tmp_path):
    out = run_example("task3_cnn.py", "--limit", "256", "--epochs", "1", "--explain",
                      tmp_path=tmp_path)
    assert "Ankle boot: " in out and "T-shirt/top: " in out  # per-class accuracy
    for name in ("task3_filters.png", "task3_conv1_maps.png", "task3_conv2_maps.png",
                 "task3_misclassified.png", "task3_explanations.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
