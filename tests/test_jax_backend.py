"""The course on the Keras JAX backend, with 2 real JAX devices on the CPU.

Today's Colab TPU runtime ships JAX, not TensorFlow, so the course must run with
KERAS_BACKEND=jax (TensorFlow stays, for tf.data only). The backend is chosen when
Keras is first imported, so the JAX side runs in one subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=2: `flowers-tl train`, `evaluate`
and `predict` (through `cli.main`, as the console script calls it), the plain image
path, and the exercise checks. The same small real-data run is then trained on the
TensorFlow backend in this process and the accuracies are compared.

Measured here (64 px, GAP head, 30 epochs, 654 training / 218 validation images,
global batch 32): TensorFlow 0.734, 0.743, 0.743 (seeds 1-3); JAX on 2 devices
0.702, 0.734 (seeds 1-2). Runs differ by up to 0.041 (9 images), from the head's
random start and the shuffling, which differ between backends. The tolerance is
0.07 (15 of 218 images); the features both backends compute are compared much more
tightly, so a real backend difference cannot hide in that tolerance.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import flowers_tl as ftl
from flowers_tl import data as flowers_data
from flowers_tl.frozen import extract_features
from flowers_tl.training import train

IMAGE_SIZE = 64
EPOCHS = 30
SEED = 1
GLOBAL_BATCH = 32
ACCURACY_TOLERANCE = 0.07
JAX_TIMEOUT_S = 600

JAX_SCRIPT = r"""
import contextlib, io, json, os, sys
import jax, keras, numpy as np
import flowers_tl as ftl
from flowers_tl import data as flowers_data
from flowers_tl.tool import cli
from flowers_tl.frozen import extract_features
from flowers_tl.training import train

out, pattern, odd_pattern, image_size, epochs, seed, batch = sys.argv[1:8]
samples = sys.argv[8:]
report = {"backend": keras.backend.backend(), "jax_devices": len(jax.devices())}

def run_cli(argv):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = cli.main(argv)
    return status, buffer.getvalue()

model_dir = os.path.join(out, "run")
report["train_status"], _ = run_cli([
    "train", "--data", pattern, "--validation-shards", "1", "--image-size", image_size,
    "--epochs", epochs, "--batch-size", batch, "--head", "gap", "--seed", seed,
    "--output", model_dir])
model_path = os.path.join(model_dir, "model.keras")
status, text = run_cli(["evaluate", model_path, "--data", pattern, "--validation-shards", "1", "--json"])
report["evaluate_status"], report["evaluate"] = status, json.loads(text)
status, text = run_cli(["predict", model_path, *samples, "--json"])
report["predict_status"], report["predict"] = status, json.loads(text)

# The trained model's features of the first validation images, to compare with TensorFlow's.
model = keras.saving.load_model(model_path)
extractor = keras.Sequential([keras.Input(model.input_shape[1:]), *model.layers[:2]])
split = ftl.split_shards(pattern, 1)
features, _ = extract_features(
    extractor, flowers_data.load_dataset(split.validation_shards, int(image_size), ordered=True).take(32), 32)
np.save(os.path.join(out, "features.npy"), features)

# DataParallel really holds the model: variables replicated on both devices, batches split.
accelerator = ftl.detect_accelerator(verbose=False)
report["distribution"] = type(keras.distribution.distribution()).__name__
odd = ftl.split_shards(odd_pattern, 1)  # 217 validation images: not divisible by 2 devices
report["odd_validation_images"] = odd.validation_images
for fast in (False, True):
    with accelerator.scope():
        small = ftl.build_model(32, head="gap")
        ftl.compile_model(small, accelerator=accelerator)
    result = train(small, odd, epochs=2, batch_size=8, accelerator=accelerator, seed=0, fast=fast,
                   verbose=0)
    kernel = small.layers[-1].kernel.value
    report["fast" if fast else "images"] = {
        "fast_path": result.fast_path, "val_loss": result.history["val_loss"],
        "kernel_devices": len(kernel.sharding.device_set),
        "kernel_replicated": bool(kernel.sharding.is_fully_replicated)}
# Fine-tuning the top blocks on cached activations, on both devices; the saved model agrees.
tuned = ftl.fine_tune(small, odd, from_block=15, epochs=2, batch_size=8, accelerator=accelerator,
                      seed=0, verbose=0)
small.save(os.path.join(out, "tuned.keras"))
report["fine_tune"] = {
    "frozen_until": tuned.frozen_until, "val_accuracy": tuned.final_val_accuracy,
    "evaluate": ftl.evaluate(keras.saving.load_model(os.path.join(out, "tuned.keras")),
                             odd.validation_shards)["accuracy"],
    "kernel_devices": len(small.layers[1].get_layer("block_16_project").kernel.value.sharding.device_set)}

# The notebook exercise checks, on the course's solution model.
from flowers_tl import exercises
model = exercises.transfer_model.or_solution(exercises.____, accelerator, (int(image_size),) * 2)
report["exercise"] = str(exercises.transfer_model.evaluate(model, accelerator))
json.dump(report, open(os.path.join(out, "report.json"), "w"))
"""


@pytest.fixture(scope="module")
def subset(real_data_pattern):
    """4 real shards: the first for validation (218 photos), 3 for training (654)."""
    folder = os.path.dirname(real_data_pattern)
    return {"pattern": os.path.join(folder, "flowers0[0-3]-*.tfrec"),
            "odd_pattern": os.path.join(folder, "flowers1[12]-*.tfrec")}


@pytest.fixture(scope="module")
def jax_run(subset, samples_dir, tmp_path_factory):
    """Run the JAX side once; return its report and the folder it wrote."""
    out = tmp_path_factory.mktemp("jax")
    env = dict(os.environ, KERAS_BACKEND="jax",
               XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    samples = sorted(str(path) for path in samples_dir.glob("*.jpg"))
    command = [sys.executable, "-c", JAX_SCRIPT, str(out), subset["pattern"], subset["odd_pattern"],
               str(IMAGE_SIZE), str(EPOCHS), str(SEED), str(GLOBAL_BATCH // 2), *samples]
    completed = subprocess.run(command, env=env, capture_output=True, text=True,
                               timeout=JAX_TIMEOUT_S)
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    return report, metrics, out


def test_jax_train_runs_data_parallel_on_two_devices(jax_run):
    report, metrics, _ = jax_run
    assert report["backend"] == "jax" and report["jax_devices"] == 2
    assert report["train_status"] == 0
    assert metrics["replicas"] == 2
    assert metrics["accelerator"] == "Running on CPU with 2 replicas (Keras backend: jax)"
    assert metrics["fast_path"] is True
    assert report["distribution"] == "DataParallel"
    print(f"\nJAX, 2 devices: val accuracy {metrics['final_val_accuracy']:.4f}, "
          f"train wall {metrics['wall_time_s']} s (features {metrics['feature_time_s']} s)")


def test_jax_evaluate_and_predict(jax_run):
    report, metrics, _ = jax_run
    assert report["evaluate_status"] == 0 and report["predict_status"] == 0
    evaluation = report["evaluate"]
    assert evaluation["images"] == 218
    # The saved full model (backbone + head) agrees with the fast path's validation score.
    assert abs(evaluation["accuracy"] - metrics["final_val_accuracy"]) <= 2 / 218
    predictions = report["predict"]
    assert len(predictions) == 5
    right = sum(os.path.basename(p["image"]).startswith(p["class"] + "__") for p in predictions)
    assert right >= 3, predictions
    assert all(0.2 <= p["probability"] <= 1.0 for p in predictions)


@pytest.mark.parametrize("path", ["images", "fast"])
def test_jax_trains_with_batches_split_over_devices(jax_run, path):
    """Both training paths, with 217 validation images (odd, so one is left out)."""
    report, _, _ = jax_run
    assert report["odd_validation_images"] % 2 == 1
    run = report[path]
    assert run["fast_path"] is (path == "fast")
    assert run["kernel_devices"] == 2 and run["kernel_replicated"]
    first, second = run["val_loss"]
    assert second < first, "validation loss should fall from epoch 1 to epoch 2"


def test_jax_fine_tunes_on_cached_activations(jax_run):
    """Blocks 15-16 learn on activations cut after block 14; the saved model gives the same score."""
    report, _, _ = jax_run
    tuned = report["fine_tune"]
    assert tuned["frozen_until"] == "block_14_add"
    assert tuned["kernel_devices"] == 2
    # The run's last validation score leaves one image out (217 on 2 devices); evaluate sees all.
    assert abs(tuned["evaluate"] - tuned["val_accuracy"]) <= 2.5 / 217


def test_exercise_checks_work_under_jax(jax_run):
    report, _, _ = jax_run
    assert report["exercise"].startswith("Correct"), report["exercise"]


def test_jax_reaches_the_tensorflow_accuracy(jax_run, subset, weights_path):
    """Same run on the TensorFlow backend (this process): same features, same accuracy within noise."""
    _, metrics, out = jax_run
    split = flowers_data.split_shards(subset["pattern"], 1)
    keras.utils.set_random_seed(SEED)  # before building, as `flowers-tl train` does
    model = ftl.build_model(IMAGE_SIZE, head="gap", weights=weights_path)
    ftl.compile_model(model)
    result = train(model, split, epochs=EPOCHS, batch_size=GLOBAL_BATCH, seed=SEED, cosine_decay=True,
                   verbose=0)  # as `flowers-tl train` does
    jax_accuracy, tf_accuracy = metrics["final_val_accuracy"], result.final_val_accuracy
    print(f"\nvalidation accuracy: TensorFlow {tf_accuracy:.4f}, JAX (2 devices) {jax_accuracy:.4f}")
    assert tf_accuracy > 0.6 and jax_accuracy > 0.6
    assert abs(jax_accuracy - tf_accuracy) <= ACCURACY_TOLERANCE

    extractor = keras.Sequential([keras.Input(model.input_shape[1:]), *model.layers[:2]])
    tf_features, _ = extract_features(
        extractor, flowers_data.load_dataset(split.validation_shards, IMAGE_SIZE, ordered=True).take(32), 32)
    jax_features = np.load(out / "features.npy")
    assert jax_features.shape == tf_features.shape
    np.testing.assert_allclose(jax_features.astype(np.float32), tf_features.astype(np.float32),
                               rtol=0.02, atol=0.02)
