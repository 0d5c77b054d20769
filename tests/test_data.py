"""The data module on shards the tests write themselves, and on the real shards."""

import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import jpeg_bytes, write_shard
from flowers_tl import data
from flowers_tl.errors import DataError


@pytest.fixture()
def small_shards(tmp_path):
    """5 shards named flowersNN-COUNT.tfrec, 4 records each, of mixed sizes and classes."""
    for shard in range(5):
        records = [{"image": jpeg_bytes(30 + 10 * i, 50, (40 * i, 100, 200)), "class": (shard + i) % 5}
                   for i in range(4)]
        write_shard(tmp_path / f"flowers{shard:02d}-4.tfrec", records)
    return str(tmp_path / "*.tfrec")


def test_schema_round_trip_resizes_to_static_shape(small_shards):
    dataset = data.load_dataset(data.list_shards(small_shards), image_size=64, ordered=True)
    assert dataset.element_spec[0].shape.as_list() == [64, 64, 3]
    images, labels = zip(*[(i.numpy(), int(l.numpy())) for i, l in dataset])
    assert len(images) == 20
    assert all(image.shape == (64, 64, 3) and image.dtype == np.float32 for image in images)
    assert 0 <= min(float(i.min()) for i in images) and max(float(i.max()) for i in images) <= 255
    assert sorted(set(labels)) == [0, 1, 2, 3, 4]
    # The solid colour survives decode + resize (JPEG is lossy: allow a few levels).
    np.testing.assert_allclose(images[0][32, 32], [0, 100, 200], atol=8)


def test_counts_come_from_names_or_from_records(tmp_path, small_shards):
    shards = data.list_shards(small_shards)
    assert data.count_images(shards) == 20
    unnamed = tmp_path / "other.tfrec"
    write_shard(unnamed, [{"image": jpeg_bytes(), "class": 1}] * 3)
    assert data.count_images([str(unnamed)]) == 3


@pytest.mark.parametrize("name", ["flowers99-99999.tfrec", "photos-20000000.tfrec", "flowers00-1.tfrec"])
def test_a_count_in_a_shard_name_is_never_reported_when_the_shard_holds_another(tmp_path, name):
    """A name claiming 99999 or 20 million records (or 1) for a shard of 3: counted, 3."""
    write_shard(tmp_path / name, [{"image": jpeg_bytes(), "class": 1}] * 3)
    assert data.count_images([str(tmp_path / name)]) == 3


def test_a_truncated_shard_without_a_count_in_its_name_is_named(tmp_path):
    """Used to be raw TensorFlow text ('{{function_node __wrapped__IteratorGetNext…}}')."""
    write_shard(tmp_path / "whole.tfrec", [{"image": jpeg_bytes(), "class": 1}] * 3)
    raw = (tmp_path / "whole.tfrec").read_bytes()
    (tmp_path / "cut.tfrec").write_bytes(raw[:-20])
    with pytest.raises(DataError) as refused:
        data.count_images([str(tmp_path / "cut.tfrec")])
    assert str(refused.value) == (
        f"shard '{tmp_path / 'cut.tfrec'}' is truncated or corrupted after record 2: the next record, at byte "
        f"{len(raw) * 2 // 3}, does not fit in its {len(raw) - 20} bytes. Copy or convert it again, or remove it "
        "from the pattern.")


def test_split_uses_first_shards_for_validation_without_overlap(small_shards):
    split = data.split_shards(small_shards, validation_shards=2)
    assert [os.path.basename(s) for s in split.validation_shards] == ["flowers00-4.tfrec", "flowers01-4.tfrec"]
    assert not set(split.validation_shards) & set(split.training_shards)
    assert len(split.training_shards) == 3
    assert (split.training_images, split.validation_images) == (12, 8)
    assert split.steps_per_epoch(5) == 2


@pytest.mark.parametrize("validation_shards", [0, 5, 9])
def test_split_rejects_impossible_validation_counts(small_shards, validation_shards):
    with pytest.raises(DataError, match="validation_shards"):
        data.split_shards(small_shards, validation_shards)


def test_no_match_and_folder_get_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no TFRecord file matches"):
        data.list_shards(str(tmp_path / "nothing-*.tfrec"))
    with pytest.raises(DataError, match="is a folder"):
        data.list_shards(str(tmp_path))


def test_environment_variable_overrides_default(monkeypatch, small_shards):
    monkeypatch.setenv("FLOWERS_TL_DATA", small_shards)
    assert data.data_pattern() == small_shards
    monkeypatch.delenv("FLOWERS_TL_DATA")
    assert data.data_pattern() == data.DEFAULT_DATA_PATTERN
    assert data.data_pattern("x/*.tfrec") == "x/*.tfrec"


def test_training_pipeline_is_one_epoch_long_shuffled_and_batched(small_shards):
    """One epoch of full batches, whose length Keras knows: `fit` needs no steps_per_epoch and cannot run forever."""
    split = data.split_shards(small_shards, validation_shards=1)
    training = data.get_training_dataset(split.training_shards, 32, batch_size=6, seed=3,
                                         drop_remainder=True)
    assert training.element_spec[0].shape.as_list() == [6, 32, 32, 3]
    assert int(training.cardinality()) == split.training_images // 6 == len(training)
    batches = list(training)  # ends by itself
    assert len(batches) == split.training_images // 6
    endless = data.get_training_dataset(split.training_shards, 32, batch_size=6, seed=3, endless=True)
    assert int(endless.cardinality()) == -1 and len(list(endless.take(5))) == 5  # for loops that count steps
    again = list(data.get_training_dataset(split.training_shards, 32, 6, seed=3, drop_remainder=True))
    for (a, la), (b, lb) in zip(batches, again):  # a seed makes the order repeatable
        np.testing.assert_array_equal(la.numpy(), lb.numpy())
    validation = data.get_validation_dataset(split.validation_shards, 32, batch_size=3)
    assert sum(int(x.shape[0]) for x, _ in validation) == 4


def test_real_shards_split_and_counts(real_data_pattern):
    split = data.split_shards(real_data_pattern)
    assert len(split.validation_shards) == 3 and len(split.training_shards) == 13
    assert split.training_images + split.validation_images == 3483
    image, label = next(iter(data.load_dataset(split.validation_shards[:1], 192)))
    assert image.shape == (192, 192, 3) and 0 <= int(label) < 5
    assert float(tf.math.reduce_std(image)) > 10  # a real photo, not a blank


def test_a_png_record_claiming_900_million_pixels_is_refused_by_name(tmp_path):
    """Records may hold PNG too (TensorFlow's JPEG decoder reads them): the header is checked first."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
    write_shard(tmp_path / "a-2.tfrec", [{"image": jpeg_bytes(), "class": 0}, {"image": bomb, "class": 1}])
    assert data.find_bad_record([str(tmp_path / "a-2.tfrec")], 32) == (
        f"record 2 of shard '{tmp_path / 'a-2.tfrec'}' is not a valid flowers record: 900000000 pixels, more than "
        "the 89 million a picture may have (a decompression bomb, or a scan far larger than a photo): make it "
        "smaller first. Records need 'image' (JPEG bytes) and 'class' (0..4); make shards with `flowers-tl convert`.")
