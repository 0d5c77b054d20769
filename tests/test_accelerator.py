"""The accelerator on the CPU, including a real MirroredStrategy over 2 logical CPU devices.

Logical devices must be configured before TensorFlow initialises, so the
multi-device checks run in a fresh subprocess.
"""

import json
import os
import subprocess
import sys

import pytest

from flowers_tl.accelerator import Accelerator, detect_accelerator
from flowers_tl.tool.cluster import cluster_size

MIRRORED_SCRIPT = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
import flowers_tl as ftl
from flowers_tl.training import train

accelerator = ftl.detect_accelerator()
pattern = sys.argv[1]
split = ftl.split_shards(pattern, validation_shards=1)
report = {"strategy": type(accelerator.strategy).__name__, "replicas": accelerator.replicas,
          "kind": accelerator.kind, "describe": accelerator.describe(),
          "global_batch": accelerator.global_batch_size(16)}
with accelerator.scope():
    model = ftl.build_model(32, head="gap", dropout=0.0, feature_flip=False)
    ftl.compile_model(model, accelerator=accelerator)
before = model.layers[-1].kernel.numpy().copy()
result = train(model, split, epochs=1, batch_size=16, accelerator=accelerator, seed=3, fast=False,
               verbose=0)
kernel = model.layers[-1].kernel
copies = [v.numpy() for v in kernel.value.values]  # one copy per logical device
report.update(changed=bool(np.abs(copies[0] - before).max() > 0),
              copies=len(copies), copies_equal=all(np.array_equal(copies[0], c) for c in copies),
              val_accuracy=result.final_val_accuracy)
print("REPORT " + json.dumps(report))
"""


def test_one_cpu_is_the_default(capsys):
    accelerator = detect_accelerator()
    assert (accelerator.kind, accelerator.replicas) == ("CPU", 1)
    assert accelerator.global_batch_size(64) == 64
    assert capsys.readouterr().out.strip().endswith("Running on CPU with 1 replica (Keras backend: tensorflow)")


def test_describe_names_kind_replicas_and_backend():
    assert Accelerator("TPU", 8, "jax").describe() == "Running on TPU with 8 replicas (Keras backend: jax)"


@pytest.mark.parametrize("tf_config, workers", [
    (None, 0), ("", 0),
    ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}', 2),
    ('{"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "task": {"type": "chief", "index": 0}}', 3),
])
def test_tf_config_cluster_size(monkeypatch, tf_config, workers):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    assert cluster_size() == workers


def test_mirrored_strategy_over_two_logical_cpus_trains(real_data_pattern):
    pattern = os.path.join(os.path.dirname(real_data_pattern), "flowers1[12]-*.tfrec")
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    env.pop("TF_CONFIG", None)
    completed = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, pattern], env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
    line = [l for l in completed.stdout.splitlines() if l.startswith("REPORT ")][-1]
    report = json.loads(line[len("REPORT "):])
    assert report["strategy"] == "MirroredStrategy"
    assert (report["kind"], report["replicas"]) == ("CPU", 2)
    assert report["describe"] == "Running on CPU with 2 replicas (Keras backend: tensorflow)"
    assert report["global_batch"] == 32, "the global batch doubles with 2 replicas"
    assert report["copies"] == 2 and report["copies_equal"], "each device holds the same weights"
    assert report["changed"], "a training step changed the weights"
