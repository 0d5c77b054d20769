"""The command line on the real shards and weights: train, evaluate, predict, info."""

import json
import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "flowers_tl"]


def run_cli(*args, timeout=900):
    """Run `python -m flowers_tl ARGS` for real and return the completed process."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, real_data_pattern, weights_path):
    """One real `flowers-tl train` (192 px, 10 epochs, Flatten head) shared by the tests below."""
    output = tmp_path_factory.mktemp("run")
    result = run_cli("train", "--data", real_data_pattern, "--weights", weights_path,
                     "--image-size", 192, "--epochs", 10, "--seed", 7, "--output", output)
    assert result.returncode == 0, result.stderr[-3000:]
    return output, result


def test_train_reaches_course_accuracy_and_writes_outputs(trained_run):
    output, result = trained_run
    metrics = json.loads((output / "metrics.json").read_text())
    print(f"real-data train: val accuracy {metrics['final_val_accuracy']:.4f}, "
          f"{metrics['wall_time_s']} s (features {metrics['feature_time_s']} s)")
    assert metrics["final_val_accuracy"] >= 0.87
    assert metrics["fast_path"] is True
    assert len(metrics["val_accuracy_per_epoch"]) == 10
    assert (metrics["training_images"], metrics["validation_images"]) == (2829, 654)
    history = json.loads((output / "history.json").read_text())
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert (output / "curves.png").stat().st_size > 10_000
    assert (output / "model.keras").stat().st_size > 1_000_000
    assert "Epoch 10/10" in result.stderr  # Keras progress, one line per epoch: stderr, with the notes
    assert "Running on CPU with 1 replica" in result.stderr
    assert result.stdout.startswith("Validation accuracy ") and result.stdout.count("\n") == 1  # the result alone


def test_evaluate_matches_training_accuracy(trained_run, real_data_pattern):
    output, _ = trained_run
    result = run_cli("evaluate", output / "model.keras", "--data", real_data_pattern, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    metrics = json.loads((output / "metrics.json").read_text())
    assert report["images"] == 654
    assert report["accuracy"] == pytest.approx(metrics["final_val_accuracy"], abs=0.005)
    assert sum(map(sum, report["confusion_matrix"])) == 654
    assert set(report["per_class_accuracy"]) == {"daisy", "dandelion", "roses", "sunflowers", "tulips"}
    text = run_cli("evaluate", output / "model.keras", "--data", real_data_pattern)
    assert "confusion matrix" in text.stdout and "accuracy" in text.stdout


def test_predict_classifies_real_photos(trained_run, samples_dir):
    output, _ = trained_run
    photos = sorted(samples_dir.glob("*.jpg"))
    result = run_cli("predict", output / "model.keras", *photos, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stderr  # e.g. "Skipping variable loading for optimizer" on a compiled load
    predictions = json.loads(result.stdout)
    assert [p["image"] for p in predictions] == [str(p) for p in photos]
    right = sum(p["class"] == os.path.basename(p["image"]).split("__")[0] for p in predictions)
    assert right >= 4, predictions  # sample photos are named <class>__<file>.jpg
    assert all(0.2 <= p["probability"] <= 1.0 for p in predictions)


def test_existing_model_is_not_overwritten(trained_run, real_data_pattern):
    output, _ = trained_run
    before = (output / "model.keras").stat().st_mtime_ns
    result = run_cli("train", "--data", real_data_pattern, "--output", output, "--epochs", 1)
    assert result.returncode == 1
    assert "--overwrite" in result.stderr and "Traceback" not in result.stderr
    assert (output / "model.keras").stat().st_mtime_ns == before


def test_info_prints_versions_and_accelerator():
    result = run_cli("info")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "TensorFlow" in result.stdout and "Keras" in result.stdout
    assert "Running on CPU" in result.stdout
