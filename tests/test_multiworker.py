"""Training beyond one machine: MultiWorkerMirroredStrategy driven by TF_CONFIG.

Two worker processes on 127.0.0.1 (free ports, bounded run time) each call the command line's
`tool.cluster.choose_accelerator()`, which reads TF_CONFIG and picks MultiWorkerMirroredStrategy,
and train the course model on real shards with `train()`, which runs its own
training loop there (Keras 3's `model.fit` fails under that strategy). Each worker
reads its own training shard; gradients are summed over both workers at every
step, so both must finish with identical weights. The two workers run once per
module; each writes what it saw and its final trainable weights to files.
"""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

RUN_TIMEOUT_S = 240
IMAGE_SIZE = 96

WORKER_SCRIPT = r"""
import json, os, sys, time
import keras
import numpy as np
import tensorflow as tf
import flowers_tl as ftl
from flowers_tl.tool import cluster
from flowers_tl.training import train

out, pattern, image_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
accelerator = cluster.choose_accelerator()
split = ftl.split_shards(pattern, validation_shards=1)
shards_read = []
read_training_shards = ftl.data.get_training_dataset


def get_training_dataset(shards, *args, **kwargs):  # records which shards this worker reads
    shards_read.extend(shards)
    return read_training_shards(shards, *args, **kwargs)


ftl.data.get_training_dataset = get_training_dataset


class StepCounter(keras.callbacks.Callback):
    steps = 0

    def on_train_batch_end(self, batch, logs=None):
        StepCounter.steps += 1


# The cluster formed: an all-reduce over both workers sums 1 + 2.
summed = accelerator.strategy.reduce(
    "SUM", accelerator.strategy.run(lambda: tf.constant(float(index + 1))), axis=None)
json.dump({"strategy": type(accelerator.strategy).__name__, "replicas": accelerator.replicas,
           "describe": accelerator.describe(), "all_reduce_sum": float(summed),
           "global_batch": accelerator.global_batch_size(16)},
          open(os.path.join(out, f"cluster{index}.json"), "w"))

with accelerator.scope():
    model = ftl.build_model(image_size, head="gap", dropout=0.0, feature_flip=False)
    ftl.compile_model(model, learning_rate=1e-3, accelerator=accelerator)  # learns in 26 steps
initial = [np.array(w) for w in model.trainable_weights]
start = time.perf_counter()
result = train(model, split, epochs=2, batch_size=16, accelerator=accelerator, seed=7,
               callbacks=[StepCounter()], verbose=0)
final = [np.array(w) for w in model.trainable_weights]
np.savez(os.path.join(out, f"weights{index}.npz"), *final)
json.dump({"strategy": type(accelerator.strategy).__name__, "replicas": accelerator.replicas,
           "describe": accelerator.describe(), "fast_path": result.fast_path,
           "steps": StepCounter.steps, "history": result.history,
           "changed": any(not np.array_equal(a, b) for a, b in zip(initial, final)),
           "shards_read": shards_read, "training_shards": split.training_shards,
           "training_images": split.training_images, "seconds": time.perf_counter() - start},
          open(os.path.join(out, f"report{index}.json"), "w"))
"""


def free_ports(count):
    """Ports the OS reports free on 127.0.0.1 (sockets held together so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run_two_workers(out, pattern):
    """Start 2 workers, wait for both (killing both on failure or timeout); True if both succeeded."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes, logs = [], []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), KERAS_BACKEND="tensorflow")
        log = open(out / f"worker{index}.log", "w")
        logs.append(log)
        processes.append(subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, str(out), pattern, str(IMAGE_SIZE)],
            env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
    return all(process.returncode == 0 for process in processes)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory, real_data_pattern):
    """Run the 2 workers once on 3 real shards: 1 for validation (218 photos), 2 for training."""
    out = tmp_path_factory.mktemp("multiworker")
    pattern = os.path.join(os.path.dirname(real_data_pattern), "flowers0[0-2]-*.tfrec")
    finished = run_two_workers(out, pattern)
    logs = "\n".join((out / f"worker{i}.log").read_text()[-3000:] for i in range(2))
    return out, finished, logs


def read_files(out, name, logs):
    """Both workers' JSON files `name{0,1}.json`."""
    paths = [out / f"{name}{index}.json" for index in range(2)]
    assert all(path.exists() for path in paths), f"a worker did not write {name}:\n{logs}"
    return [json.loads(path.read_text()) for path in paths]


def test_tf_config_forms_a_two_worker_cluster_on_loopback(two_workers):
    out, _, logs = two_workers
    for cluster in read_files(out, "cluster", logs):
        assert cluster["strategy"] == "CollectiveAllReduceStrategy"  # MultiWorkerMirroredStrategy's class
        assert cluster["replicas"] == 2
        assert cluster["describe"] == "Running on CPU with 2 replicas (Keras backend: tensorflow)"
        assert cluster["global_batch"] == 32
        assert cluster["all_reduce_sum"] == 3.0


def test_two_workers_train_on_their_own_shards_to_identical_weights(two_workers):
    out, finished, logs = two_workers
    assert finished, f"a worker failed or timed out:\n{logs}"
    reports = read_files(out, "report", logs)
    weights = [np.load(out / f"weights{index}.npz") for index in range(2)]
    first, second = ([w[key] for key in sorted(w.files)] for w in weights)
    assert first and len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    # Each worker read one of the two training shards, and not the other's.
    assert [len(report["shards_read"]) for report in reports] == [1, 1]
    assert sorted(reports[0]["shards_read"] + reports[1]["shards_read"]) == \
        sorted(reports[0]["training_shards"])
    steps = reports[0]["training_images"] // 32  # per epoch, global batch 2 x 16
    for report in reports:
        assert report["fast_path"] is False
        assert report["changed"], "training did not change the weights"
        assert report["steps"] == 2 * steps
        assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(report["history"])  # as fit
        assert all(len(values) == 2 for values in report["history"].values())
    assert reports[0]["history"] == reports[1]["history"]  # reduced over both workers
    history = reports[0]["history"]
    assert history["loss"][1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.4  # 5 classes: chance is 0.2
    print(f"\n2 workers x 1 replica, {reports[0]['steps']} steps, "
          f"accuracy {history['accuracy'][-1]:.3f}, val accuracy {history['val_accuracy'][-1]:.3f}, "
          f"{max(r['seconds'] for r in reports):.1f} s training")
