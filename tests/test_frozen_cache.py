"""The fast path's activations on disk: the same accuracy as in memory, chosen under a real memory
limit, in a private folder that `clear()` and the end of the process remove."""

import json
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import flowers_tl as ftl
from flowers_tl import activation_file, memory
from flowers_tl.errors import ConfigError
from flowers_tl.frozen import ACTIVATIONS

SEEDS = (1, 2, 3, 4)
# Measured on this split (4 shards, 96 px, Flatten head, 3 epochs, batch 32), 8 seeds each:
# in memory 0.780 mean (0.743..0.812, standard deviation 0.027); on disk 0.772 (0.743..0.812,
# 0.022). One run's spread is about 0.025, so the means of 4 runs differ by 0.025 * sqrt(2/4)
# = 0.018 (one standard deviation) by chance alone: 0.055 is three of them. A disk path that
# mixed up photos and labels scores about 0.25 (chance among 5 classes).
SAME_ACCURACY = 0.055


def four_shards(pattern: str):
    return ftl.split_shards(pattern.replace("*.tfrec", "flowers0[0-3]-*.tfrec"), 1)


def mean_accuracy(split, place: str, monkeypatch) -> float:
    """The mean final validation accuracy of SEEDS trainings with the activations in `place`."""
    monkeypatch.setenv(memory.PLACE_ENV_VARIABLE, place)
    ACTIVATIONS.clear()
    accuracies = []
    for seed in SEEDS:
        model = ftl.compile_model(ftl.build_model(96), learning_rate=1e-3)
        result = ftl.train(model, split, epochs=3, batch_size=32, seed=seed, verbose=0)
        accuracies.append(result.final_val_accuracy)
        assert (ACTIVATIONS.folder_on_disk is not None) == (place == "disk")
    ACTIVATIONS.clear()
    return float(np.mean(accuracies))


def test_activations_on_disk_train_as_well_as_in_memory(real_data_pattern, monkeypatch):
    split = four_shards(real_data_pattern)
    in_memory = mean_accuracy(split, "memory", monkeypatch)
    on_disk = mean_accuracy(split, "disk", monkeypatch)
    assert in_memory > 0.6 and abs(on_disk - in_memory) <= SAME_ACCURACY, (in_memory, on_disk)


# A frozen convolution with 256 channels at half the size of a 64 px photo: 31x31x256 float16,
# 492 KB a photo, 430 MB for the 872 photos, cheap to compute. The limit leaves this process
# 1000 MB of data (VmData: the heap, private mappings and threads' stacks) beyond what it holds
# before training: in memory the activations would need three times 430 MB at the peak, so they
# must go to disk. (With 600 MB the pass still fits, but training's parallel reads sometimes
# did not: the margin covers TensorFlow's threads and prefetched batches.)
LOW_LIMIT_RUN = textwrap.dedent("""
    import json, os, resource, sys
    import keras
    import flowers_tl as ftl
    from flowers_tl.frozen import ACTIVATIONS

    split = ftl.split_shards(sys.argv[1], 1)
    model = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(256, 3, strides=2, trainable=False),
                              keras.layers.Flatten(), keras.layers.Dense(5, activation="softmax")])
    ftl.compile_model(model, learning_rate=1e-3)
    data = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmData:"))
    resource.setrlimit(resource.RLIMIT_DATA, (data + 1000 * 2**20, resource.getrlimit(resource.RLIMIT_DATA)[1]))
    result = ftl.train(model, split, epochs=2, batch_size=32, verbose=0)
    folder = ACTIVATIONS.folder_on_disk
    print("RESULT " + json.dumps({"folder": folder, "files": sorted(os.listdir(folder)) if folder else [],
                                  "epochs": len(result.history["val_accuracy"])}))
""")


def test_a_real_memory_limit_sends_the_activations_to_disk(real_data_pattern, tmp_path):
    pattern = real_data_pattern.replace("*.tfrec", "flowers0[0-3]-*.tfrec")
    environment = dict(os.environ, TMPDIR=str(tmp_path))
    environment.pop(memory.PLACE_ENV_VARIABLE, None)  # auto: the limit decides
    done = subprocess.run([sys.executable, "-c", LOW_LIMIT_RUN, pattern], capture_output=True, text=True,
                          env=environment, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    note = [line for line in done.stderr.splitlines() if line.startswith("Note: the activations of 872 photos")]
    assert note and result["folder"] in note[0] and "on disk" in note[0]
    assert result["folder"].startswith(str(tmp_path)) and result["files"] == ["training.npy", "validation.npy"]
    assert result["epochs"] == 2
    assert not os.path.exists(result["folder"])  # removed when the process ended


def test_the_file_is_private_and_clear_removes_it(real_data_pattern, monkeypatch, tmp_path):
    monkeypatch.setenv(memory.PLACE_ENV_VARIABLE, "disk")
    split = ftl.split_shards(real_data_pattern.replace("*.tfrec", "flowers0[0-1]-*.tfrec"), 1)
    cache = type(ACTIVATIONS)(folder=str(tmp_path))
    model = ftl.compile_model(ftl.build_model(96), learning_rate=1e-3)
    ftl.train(model, split, epochs=1, batch_size=32, verbose=0)  # the course's cache
    ACTIVATIONS.clear()
    lower = ftl.frozen.FrozenPart.of(model).lower
    train_x, train_y, val_x, val_y = cache.get(lower, split, 96)
    folder = cache.folder_on_disk
    assert os.path.dirname(folder) == str(tmp_path)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    for activations, labels, name in ((train_x, train_y, "training.npy"), (val_x, val_y, "validation.npy")):
        path = os.path.join(folder, name)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        stored = np.load(path, mmap_mode="r")  # a plain .npy file, as many rows as labels
        assert stored.shape == (len(labels), 3, 3, 1280) and stored.dtype == np.float16
        assert np.array_equal(stored[:5], activations.read(0, 5))
    expected = lower.predict_on_batch(np.stack([image for image, _ in
                                                ftl.data.load_dataset(split.validation_shards, 96, ordered=True)
                                                .take(4).as_numpy_iterator()]))
    np.testing.assert_allclose(val_x.read(0, 4).astype(np.float32), expected, rtol=2e-3, atol=2e-3)
    cache.clear()
    assert not os.path.exists(folder) and cache.folder_on_disk is None


def test_no_write_follows_a_symbolic_link(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        activation_file.ActivationFolder(1000, 1, str(link))
    assert list(target.iterdir()) == []
    folder = activation_file.ActivationFolder(1000, 1, str(tmp_path))
    victim = target / "victim"
    victim.write_text("keep")
    os.symlink(victim, os.path.join(folder.path, "training.npy"))
    with pytest.raises(FileExistsError):
        folder.new_file("training.npy", (4,), 10)
    assert victim.read_text() == "keep"
    folder.remove()
    assert not os.path.exists(folder.path)


def test_the_place_setting_is_checked(monkeypatch):
    monkeypatch.setenv(memory.PLACE_ENV_VARIABLE, "ssd")
    with pytest.raises(ConfigError, match=f"{memory.PLACE_ENV_VARIABLE}='ssd'.*auto, memory, disk"):
        memory.place_for(10, 1)
    monkeypatch.setenv(memory.PLACE_ENV_VARIABLE, "memory")
    with pytest.raises(ConfigError, match="set FLOWERS_TL_ACTIVATIONS=auto"):
        memory.place_for(2**62, 10**9)
    monkeypatch.delenv(memory.PLACE_ENV_VARIABLE)
    assert memory.place_for(10, 1) == "memory" and memory.place_for(2**62, 10**9) == "disk"
