"""TPU settings are chosen from the accelerator object, and train() really uses them.

No TPU here: the tests describe one (`Accelerator(kind="TPU", replicas=8, ...)`)
and check the decisions, then run `train()` on the CPU with those decisions.
"""

import glob
import os

import keras
import numpy as np
import pytest

import flowers_tl as ftl
from flowers_tl.accelerator import (TPU_STEPS_PER_EXECUTION, Accelerator, TrainingSettings,
                                    training_settings, use_precision)
from flowers_tl.data import get_training_dataset, split_shards
from flowers_tl.frozen import whole_batches
from flowers_tl.training import train

TPU_TF = Accelerator(kind="TPU", replicas=8, backend="tensorflow")
TPU_JAX = Accelerator(kind="TPU", replicas=8, backend="jax")


def test_tpu_settings_on_tensorflow():
    settings = training_settings(TPU_TF, batch_size=16)
    assert settings == TrainingSettings(global_batch_size=128, steps_per_execution=50,
                                        drop_remainder=True, batch_multiple=1,
                                        precision_policy="float32")
    assert TPU_STEPS_PER_EXECUTION == 50


def test_tpu_settings_on_jax_split_batches_over_devices():
    settings = training_settings(TPU_JAX, batch_size=16, mixed_precision=True)
    assert settings.global_batch_size == 128
    assert settings.steps_per_execution == 50
    assert settings.drop_remainder
    assert settings.batch_multiple == 8
    assert settings.precision_policy == "mixed_bfloat16"


@pytest.mark.parametrize("accelerator", [
    None,
    Accelerator(kind="CPU", replicas=1, backend="tensorflow"),
    Accelerator(kind="GPU", replicas=2, backend="tensorflow"),
])
def test_no_tpu_keeps_keras_defaults(accelerator):
    settings = training_settings(accelerator, batch_size=16, mixed_precision=True)
    replicas = accelerator.replicas if accelerator else 1
    assert settings.global_batch_size == 16 * replicas
    assert settings.steps_per_execution == 1
    assert not settings.drop_remainder
    assert settings.precision_policy == "float32", "bfloat16 only pays off on a TPU"


def test_jax_on_several_cpu_devices_needs_even_batches():
    settings = training_settings(Accelerator(kind="CPU", replicas=2, backend="jax"), 8)
    assert (settings.global_batch_size, settings.batch_multiple) == (16, 2)
    assert not settings.drop_remainder


def test_bad_batch_size_is_a_config_error():
    with pytest.raises(ftl.ConfigError, match="batch_size must be at least 1, got 0"):
        training_settings(TPU_TF, batch_size=0)


def test_compile_model_uses_the_accelerators_steps_per_execution():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="softmax")])
    assert ftl.compile_model(model, accelerator=TPU_TF).steps_per_execution == 50
    assert ftl.compile_model(model).steps_per_execution == 1


def test_tpu_pipeline_has_static_batch_shapes(real_data_pattern):
    settings = training_settings(TPU_TF, batch_size=4)
    shards = sorted(glob.glob(real_data_pattern))[:1]
    dataset = get_training_dataset(shards, 64, settings.global_batch_size,
                                   drop_remainder=settings.drop_remainder)
    images, labels = dataset.element_spec
    assert images.shape.as_list() == [32, 64, 64, 3]
    assert labels.shape.as_list() == [32]


def test_mixed_bfloat16_keeps_the_softmax_in_float32(weights_path):
    use_precision(training_settings(TPU_TF, mixed_precision=True))
    try:
        model = ftl.build_model(32, weights=weights_path)
        backbone, softmax = model.layers[1], model.layers[-1]
        assert backbone.dtype_policy.compute_dtype == "bfloat16"
        assert softmax.dtype_policy.name == "float32"
        probabilities = model.predict_on_batch(np.full((2, 32, 32, 3), 128.0, np.float32))
        assert np.asarray(probabilities).dtype == np.float32
        np.testing.assert_allclose(np.asarray(probabilities).sum(axis=-1), 1.0, rtol=1e-5)
    finally:
        use_precision(training_settings(None))
    assert keras.mixed_precision.global_policy().name == "float32"


class _CountBatchEnds(keras.callbacks.Callback):
    """Records the step index Keras reports after each call into the device."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(batch)


@pytest.mark.parametrize("fast", [True, False], ids=["features", "images"])
def test_train_uses_tpu_settings(real_data_pattern, weights_path, fast):
    """On the CPU, train() with a TPU-like accelerator: full batches, 50 steps per call."""
    pattern = os.path.join(os.path.dirname(real_data_pattern), "flowers0[0-2]-*.tfrec")
    split = split_shards(pattern, validation_shards=1)
    model = ftl.build_model(64, head="gap", weights=weights_path)
    ftl.compile_model(model, accelerator=TPU_TF)
    counter = _CountBatchEnds()
    train(model, split, epochs=1, batch_size=4, accelerator=TPU_TF, seed=0, fast=fast,
          callbacks=[counter], verbose=0)
    # With 1 step per execution Keras would report 13 steps; with 50 it makes one call
    # for the whole epoch (numbered 49 by Keras 3.15, 0 by Keras 3.10).
    assert len(counter.steps) == 1, counter.steps


def test_features_are_cut_to_whole_batches():
    features, labels = np.zeros((45, 3)), np.arange(45)
    kept_features, kept_labels = whole_batches(features, labels, 16)
    assert kept_features.shape == (32, 3) and kept_labels.tolist() == list(range(32))
    assert len(whole_batches(features, labels, 1)[1]) == 45
