"""An interrupted `flowers-tl train` resumes where it stopped (Keras BackupAndRestore)."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import pytest

from flowers_tl import data, model as flowers_model, training
from flowers_tl.tool import cli

EPOCHS = 4


def train_command(pattern, output, *extra):
    """A small real training: 3 real shards, 96 px, the plain path so epochs take seconds."""
    return [sys.executable, "-m", "flowers_tl", "train", "--data", pattern, "--validation-shards", "1",
            "--image-size", "96", "--epochs", str(EPOCHS), "--batch-size", "32", "--no-fast",
            "--seed", "1", "--output", str(output), *extra]


def backed_up_epochs(output) -> int:
    try:
        with open(os.path.join(output, "backup", "training_metadata.json")) as handle:
            return json.load(handle)["epoch"]
    except (OSError, ValueError):
        return 0


def test_killed_training_resumes_and_ends_like_an_uninterrupted_run(real_data_pattern, tmp_path):
    pattern = real_data_pattern.replace("*.tfrec", "flowers0[0-2]-*.tfrec")
    reference = subprocess.run(train_command(pattern, tmp_path / "reference"), capture_output=True,
                               text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr[-2000:]

    output = tmp_path / "interrupted"
    process = subprocess.Popen(train_command(pattern, output), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while backed_up_epochs(output) < 2 and time.monotonic() < deadline:
            assert process.poll() is None, "training ended before it could be interrupted"
            time.sleep(0.05)
        assert process.poll() is None, "training ended before it could be interrupted"
    finally:
        process.send_signal(signal.SIGKILL)  # like a closed laptop or a preempted runtime
        process.wait()
    assert not (output / "model.keras").exists()
    stopped_at = backed_up_epochs(output)
    assert 2 <= stopped_at < EPOCHS

    resumed = subprocess.run(train_command(pattern, output), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming the interrupted run" in resumed.stderr  # a note: stderr
    assert f"Epoch {stopped_at + 1}/{EPOCHS}" in resumed.stderr  # Keras' progress: stderr too
    assert f"Epoch 1/{EPOCHS}" not in resumed.stderr  # it did not start over
    assert (output / "model.keras").is_file() and not (output / "backup").exists()

    metrics = json.loads((output / "metrics.json").read_text())
    expected = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    assert metrics["epochs"] == EPOCHS and len(metrics["val_accuracy_per_epoch"]) == EPOCHS
    # the epochs before the kill are the reference run's own (same seed), the rest comparable
    assert metrics["val_accuracy_per_epoch"][:stopped_at] == expected["val_accuracy_per_epoch"][:stopped_at]
    assert abs(metrics["final_val_accuracy"] - expected["final_val_accuracy"]) < 0.1  # 218 photos: noisy
    print(f"killed after epoch {stopped_at}; resumed final val accuracy "
          f"{metrics['final_val_accuracy']:.4f}, uninterrupted {expected['final_val_accuracy']:.4f}")


def test_resume_with_other_settings_is_refused(real_data_pattern, tmp_path, capsys):
    """A backup made at 64 px (with a checkpoint that opens), resumed at 96 px: refused by name."""
    import h5py

    from flowers_tl.tool import runs

    backup = tmp_path / "run" / "backup"
    backup.mkdir(parents=True)
    command = ["train", "--data", real_data_pattern, "--validation-shards", "1", "--image-size", "96",
               "--batch-size", "32", "--seed", "1", "--output", str(tmp_path / "run")]
    args = cli._parser().parse_args(command)
    settings = runs.inputs(args, cli.RESUME_SETTINGS, data.list_shards(real_data_pattern))
    (backup / "settings.json").write_text(json.dumps({**settings, "image_size": 64}))
    h5py.File(backup / "latest.weights.h5", "w").close()
    (backup / "training_metadata.json").write_text('{"epoch": 1}')
    assert cli.main(command) == 1
    assert ("holds an interrupted run made with other image_size; run the same command again to resume "
            "it, or delete that folder") in capsys.readouterr().err


class StopAfterEpoch(keras.callbacks.Callback):
    """Raise after a given epoch, as an interruption would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt


def test_fast_path_resumes_too(real_data_pattern, weights_path, tmp_path):
    """`training.train` passes callbacks to the head's fit on the fast path: BackupAndRestore works there."""
    split = data.split_shards(real_data_pattern.replace("*.tfrec", "flowers0[0-1]-*.tfrec"), 1)

    def fresh_model():
        model = flowers_model.build_model(64, weights=weights_path)
        return flowers_model.compile_model(model)

    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        training.train(fresh_model(), split, epochs=5, batch_size=32, seed=3, verbose=0,
                       callbacks=[keras.callbacks.BackupAndRestore(backup), StopAfterEpoch(2)])
    epochs_run = keras.callbacks.History()
    result = training.train(fresh_model(), split, epochs=5, batch_size=32, seed=3, verbose=0,
                            callbacks=[keras.callbacks.BackupAndRestore(backup), epochs_run])
    assert result.fast_path
    assert epochs_run.epoch == [2, 3, 4]  # the two finished epochs were not run again
    assert result.final_val_accuracy > 0.5
    assert not os.path.exists(backup)  # Keras removes it when training ends
