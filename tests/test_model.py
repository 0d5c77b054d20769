"""The model: real MobileNetV2 weights, preprocessing inside, heads, weight resolution."""

import numpy as np
import pytest

from flowers_tl import model as flowers_model
from flowers_tl.errors import ConfigError, WeightsError


def test_default_model_is_frozen_backbone_flatten_softmax(weights_path):
    model = flowers_model.build_model(96, weights=weights_path)
    names = [layer.name for layer in model.layers]
    assert names[0] == "pixels_to_minus1_1"
    backbone = model.layers[1]
    assert backbone.name.startswith("mobilenetv2") and not backbone.trainable
    assert not backbone.trainable_weights
    assert "flatten" in names and model.layers[-1].units == 5
    assert model.output_shape == (None, 5)
    # Only the head trains: 3x3x1280 features at 96 px -> 11520*5 + 5 weights.
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 11520 * 5 + 5


def test_preprocessing_maps_pixels_to_minus_one_one(weights_path):
    model = flowers_model.build_model(64, weights=weights_path, head="gap")
    rescale = model.layers[0]
    out = np.asarray(rescale(np.array([[[[0.0, 127.5, 255.0]]]], dtype="float32")))
    np.testing.assert_allclose(out.ravel(), [-1.0, 0.0, 1.0], atol=1e-6)


def test_real_weights_are_loaded_not_random(weights_path):
    real = flowers_model.load_backbone(96, weights_path)
    random = flowers_model.load_backbone(96, "none")
    first_real = real.get_layer("Conv1").get_weights()[0]
    first_random = random.get_layer("Conv1").get_weights()[0]
    assert first_real.shape == first_random.shape == (3, 3, 3, 32)
    assert not np.allclose(first_real, first_random)
    # The same file loads to the same numbers every time.
    np.testing.assert_array_equal(first_real, flowers_model.load_backbone(96, weights_path)
                                  .get_layer("Conv1").get_weights()[0])


def test_weights_resolution_order(monkeypatch, weights_path):
    monkeypatch.setenv("FLOWERS_TL_WEIGHTS", weights_path)
    assert flowers_model.resolve_weights() == weights_path
    assert flowers_model.resolve_weights("imagenet") == "imagenet"
    assert flowers_model.resolve_weights("none") is None
    monkeypatch.delenv("FLOWERS_TL_WEIGHTS")
    assert flowers_model.resolve_weights() == "imagenet"


def test_bad_arguments_get_clear_errors(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        flowers_model.resolve_weights(str(tmp_path / "missing.h5"))
    with pytest.raises(ConfigError, match="at least 32x32"):
        flowers_model.build_model(16, weights="none")
    with pytest.raises(ConfigError, match="head must be one of"):
        flowers_model.build_model(64, weights="none", head="dense")


def test_square_root_features_save_and_load(weights_path, tmp_path):
    import keras

    model = flowers_model.build_model(64, weights=weights_path, square_root=True)
    assert model.layers[2].name == "feature_square_root"
    features = np.array([[0.0, 0.25, 4.0]], dtype="float32")
    np.testing.assert_allclose(np.asarray(model.layers[2](features)), [[0.001, 0.5, 2.0]], atol=1e-3)
    model.save(tmp_path / "sqrt.keras")
    reloaded = keras.saving.load_model(tmp_path / "sqrt.keras")
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(reloaded.predict_on_batch(pixels), model.predict_on_batch(pixels), atol=1e-6)


def test_flip_test_averages_each_photo_with_its_mirror(weights_path, real_data_pattern):
    """A model that only sees the left half of a photo: with test-time flips it sees both halves."""
    import flowers_tl as ftl

    model = ftl.compile_model(flowers_model.build_model(64, weights=weights_path, head="gap"))
    shard = ftl.list_shards(real_data_pattern)[:1]
    plain = ftl.evaluate(model, shard)
    flipped = ftl.evaluate(model, shard, flip_test=True)
    assert plain["images"] == flipped["images"] == 218
    assert plain["confusion_matrix"] != flipped["confusion_matrix"]  # another prediction for some photos
