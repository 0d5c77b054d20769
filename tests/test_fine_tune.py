"""Fine-tuning the top of MobileNetV2 on activations computed once, against fine-tuning on photos.

`train()` cuts the model where its frozen part ends: after the backbone when only the
head learns, or at the end of the last frozen block when the top blocks learn
(`fine_tune`). These tests use the real weights and real photos.
"""

import numpy as np
import pytest

import flowers_tl as ftl
from flowers_tl import model as flowers_model
from flowers_tl.errors import ConfigError
from flowers_tl.frozen import FrozenPart, cut_points

SIZE = 96  # small photos keep fine-tuning on photos, the slow reference, short


@pytest.fixture(scope="module")
def small_split(real_data_pattern):
    """Three real shards (654 photos): one for validation, two for training."""
    return ftl.split_shards(real_data_pattern.replace("*.tfrec", "flowers0[0-2]-*.tfrec"), 1)


def gap_model(weights_path):
    model = ftl.build_model(SIZE, head="gap", dropout=0.2, feature_flip=False, weights=weights_path)
    return ftl.compile_model(model, learning_rate=1e-3)


def test_mobilenet_v2_can_be_cut_at_the_end_of_each_block(weights_path):
    backbone = flowers_model.load_backbone(SIZE, weights_path)
    names = {backbone.layers[index].name for index in cut_points(backbone)}
    assert {"block_2_add", "block_5_add", "block_9_add", "block_12_add", "block_15_add"} <= names
    # Inside a residual block two tensors flow (the block's path and its shortcut): no cut.
    assert not {"block_11_expand", "block_11_depthwise", "block_14_project_BN"} & names


@pytest.mark.parametrize("from_block, cut", [(13, "block_12_add"), (11, "block_10_project_BN"),
                                             (16, "block_15_add")])
def test_frozen_part_ends_before_the_first_block_that_learns(weights_path, from_block, cut):
    model = gap_model(weights_path)
    assert FrozenPart.of(model).cut == model.layers[1].name  # only the head learns
    flowers_model.unfreeze_top(model, from_block)
    frozen = FrozenPart.of(model)
    assert frozen.cut == cut
    pixels = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    split_output = frozen.upper.predict_on_batch(frozen.lower.predict_on_batch(pixels))
    np.testing.assert_allclose(split_output, model.predict_on_batch(pixels), atol=1e-5)
    assert {id(w) for w in frozen.upper.trainable_weights} == {id(w) for w in model.trainable_weights}


def test_unfreeze_top_keeps_batch_normalization_and_lower_blocks_frozen(weights_path):
    model = gap_model(weights_path)
    backbone = flowers_model.unfreeze_top(model, 13).layers[1]
    assert backbone.get_layer("block_13_expand").trainable
    assert backbone.get_layer("Conv_1").trainable
    assert not backbone.get_layer("block_12_project").trainable
    assert not any(layer.trainable for layer in backbone.layers if "BN" in layer.name or "bn" in layer.name)
    with pytest.raises(ConfigError, match="from_block=17.*1..16"):
        flowers_model.unfreeze_top(model, 17)


def test_one_step_on_activations_equals_one_step_on_photos(weights_path, small_split, tmp_path):
    """One SGD step of the upper part on float16 activations moves the weights as one step on photos."""
    import keras

    model = ftl.build_model(SIZE, head="gap", dropout=0.0, feature_flip=False, weights=weights_path)
    flowers_model.unfreeze_top(model, 13)
    model.save(tmp_path / "start.keras")
    twin = keras.saving.load_model(tmp_path / "start.keras")
    images, labels = ftl.data.images_and_labels(ftl.get_validation_dataset(small_split.validation_shards, SIZE), 16)
    frozen = FrozenPart.of(model)
    activations = frozen.lower.predict_on_batch(images).astype(np.float16).astype(np.float32)
    for network, inputs in ((frozen.upper, activations), (twin, images)):
        network.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        network.train_on_batch(inputs, labels)
    start = keras.saving.load_model(tmp_path / "start.keras")
    for name in ("block_13_expand", "block_16_project", "Conv_1"):
        moved = model.layers[1].get_layer(name).kernel.numpy() - start.layers[1].get_layer(name).kernel.numpy()
        reference = twin.layers[1].get_layer(name).kernel.numpy() - start.layers[1].get_layer(name).kernel.numpy()
        assert np.abs(reference).max() > 0
        # float16 activations (and float sums in another order) shift the step a little: measured
        # 2.2 % of its size for block_13_expand, which reads them directly, less further up.
        assert np.linalg.norm(moved - reference) <= 0.05 * np.linalg.norm(reference), name


def test_fine_tuning_on_activations_agrees_with_fine_tuning_on_photos(weights_path, small_split, tmp_path):
    """The same layers, the same start, trained both ways: the same accuracy within noise.

    Measured here (96 px, 436 training / 218 validation photos, 2 epochs from block 13,
    flips off, 4 runs): on photos 0.729-0.784, on activations 0.734-0.771; the same
    path differs by up to 0.055 between runs (thread scheduling, shuffling), so the
    tolerance is 0.07 (15 photos). `test_one_step_...` compares the two exactly.
    """
    import keras

    model = gap_model(weights_path)
    ftl.train(model, small_split, epochs=3, batch_size=32, seed=1, verbose=0)
    model.save(tmp_path / "head.keras")
    twin = keras.saving.load_model(tmp_path / "head.keras")
    lower_before = model.layers[1].get_layer("block_12_project").kernel.numpy().copy()
    top_before = model.layers[1].get_layer("block_16_project").kernel.numpy().copy()

    cached = ftl.fine_tune(model, small_split, from_block=13, epochs=2, flip=False, seed=2, verbose=0)
    photos = ftl.fine_tune(twin, small_split, from_block=13, epochs=2, flip=False, seed=2, verbose=0,
                           fast=False)
    print(f"\nfine-tuned on activations {cached.history['val_accuracy']} in {cached.wall_time_s:.1f} s, "
          f"on photos {photos.history['val_accuracy']} in {photos.wall_time_s:.1f} s")
    assert cached.fast_path and cached.frozen_until == "block_12_add" and not photos.fast_path
    assert abs(cached.final_val_accuracy - photos.final_val_accuracy) <= 0.07
    assert abs(cached.history["val_loss"][-1] - photos.history["val_loss"][-1]) <= 0.15
    np.testing.assert_array_equal(model.layers[1].get_layer("block_12_project").kernel.numpy(), lower_before)
    assert not np.allclose(model.layers[1].get_layer("block_16_project").kernel.numpy(), top_before)

    model.save(tmp_path / "tuned.keras")  # a full model that takes photos, scored as in training
    reloaded = keras.saving.load_model(tmp_path / "tuned.keras")
    score = ftl.evaluate(reloaded, small_split.validation_shards)["accuracy"]
    assert abs(score - cached.final_val_accuracy) <= 0.005


def test_cli_trains_the_head_then_fine_tunes_and_saves_the_full_model(small_split, tmp_path, capsys):
    import json

    from flowers_tl.tool import cli

    pattern = small_split.validation_shards[0].rsplit("/", 1)[0] + "/flowers0[0-2]-*.tfrec"
    assert cli.main(["train", "--data", pattern, "--validation-shards", "1", "--image-size", str(SIZE),
                     "--head", "gap", "--epochs", "2", "--fine-tune-from", "15", "--fine-tune-epochs", "2",
                     "--seed", "3", "--output", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["frozen_until"] == "block_14_add" and metrics["fine_tune_from"] == 15
    assert len(metrics["val_accuracy_per_epoch"]) == 4  # 2 head epochs, then 2 fine-tuning epochs
    assert metrics["val_accuracy_per_epoch"][1] == metrics["head_val_accuracy"]
    assert not (tmp_path / "run" / "backup").exists()
    capsys.readouterr()
    assert cli.main(["evaluate", str(tmp_path / "run" / "model.keras"), "--data", pattern,
                     "--validation-shards", "1", "--json"]) == 0
    score = json.loads(capsys.readouterr().out)["accuracy"]
    assert abs(score - metrics["final_val_accuracy"]) <= 0.005


def test_fine_tuning_needs_a_pretrained_network():
    import keras

    plain = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(5)])
    with pytest.raises(ConfigError, match="holds no pretrained network"):
        flowers_model.unfreeze_top(plain, 13)


def test_the_one_pass_over_the_frozen_part_shows_progress_only_when_verbose(real_data_pattern, capsys):
    """verbose: a sentence and a Keras progress bar before the epochs; verbose=0: not a line.

    A second training on the same frozen part and photos (a new Rescaling layer, another name)
    reads the cache: no pass, no bar.
    """
    import keras

    from flowers_tl.frozen import ACTIVATIONS, FEATURE_PASS

    split = ftl.split_shards(real_data_pattern.replace("*.tfrec", "flowers0[0-1]-*.tfrec"), 1)

    convolution = keras.layers.Conv2D(4, 3, strides=4, trainable=False)

    def tiny_model():  # a new head on the same frozen weights, as in the notebook's experiments
        model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255), convolution,
                                  keras.layers.Flatten(), keras.layers.Dense(5, activation="softmax")])
        return ftl.compile_model(model, learning_rate=1e-3)

    ACTIVATIONS.clear()
    ftl.train(tiny_model(), split, epochs=1, batch_size=32, verbose=0)
    assert capsys.readouterr().out == ""
    ACTIVATIONS.clear()
    ftl.train(tiny_model(), split, epochs=1, batch_size=32, verbose=2)
    shown = capsys.readouterr().out.splitlines()
    images = split.training_images + split.validation_images
    assert shown[0] == FEATURE_PASS.format(images=images)
    batches = -(-split.training_images // 32) + -(-split.validation_images // 32)  # the two sets batched apart
    assert shown[1].startswith(f"{batches}/{batches} ") and "/batch" in shown[1]
    assert len(shown) == 3 and "val_accuracy" in shown[2]  # then the epoch's line
    ftl.train(tiny_model(), split, epochs=1, batch_size=32, verbose=2)
    shown = capsys.readouterr().out.splitlines()
    assert len(shown) == 1 and "val_accuracy" in shown[0]  # the cache: no second pass, no bar
    ACTIVATIONS.clear()
