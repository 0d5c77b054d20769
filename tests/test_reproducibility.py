"""Same seed, same result; training never sees a validation photo (checked by content)."""

import glob
import hashlib
import json

import numpy as np
from conftest import iter_records

from flowers_tl import data
from flowers_tl.tool import cli

SMALL_RUN = ["--validation-shards", "1", "--image-size", "96", "--epochs", "3", "--batch-size", "32"]


def small_pattern(real_data_pattern):
    """Three real shards (654 photos): one for validation, two for training."""
    return real_data_pattern.replace("*.tfrec", "flowers0[0-2]-*.tfrec")


def train_metrics(pattern, output, seed):
    assert cli.main(["train", "--data", pattern, "--seed", str(seed), "--output", str(output),
                     *SMALL_RUN]) == 0
    with open(output / "metrics.json") as handle:
        return json.load(handle)


def test_same_seed_same_metrics_other_seed_differs(real_data_pattern, tmp_path):
    pattern = small_pattern(real_data_pattern)
    first = train_metrics(pattern, tmp_path / "a", seed=1)
    again = train_metrics(pattern, tmp_path / "b", seed=1)
    other = train_metrics(pattern, tmp_path / "c", seed=2)
    assert first["val_accuracy_per_epoch"] == again["val_accuracy_per_epoch"]
    history = [json.loads((tmp_path / name / "history.json").read_text()) for name in "abc"]
    assert history[0]["loss"] == history[1]["loss"]  # bit-for-bit, on this machine
    assert history[0]["loss"] != history[2]["loss"]
    assert first["final_val_accuracy"] > 0.6 and other["final_val_accuracy"] > 0.6  # both learned


def _content_keys(shards):
    """sha256 of each record's JPEG bytes, and each record's source_sha256 (the original file)."""
    images, sources = [], []
    for record in iter_records(shards):
        images.append(hashlib.sha256(record["image"]).hexdigest())
        sources.append(record["source_sha256"].decode())
    return images, sources


def _pixel_keys(dataset):
    return [hashlib.sha256(image.tobytes()).hexdigest() for image, _ in dataset.as_numpy_iterator()]


def test_training_never_sees_a_validation_photo(real_data_pattern):
    split = data.split_shards(real_data_pattern)
    assert not set(split.training_shards) & set(split.validation_shards)
    validation_images, validation_sources = _content_keys(split.validation_shards)
    training_images, training_sources = _content_keys(split.training_shards)
    # The photo collection itself holds duplicates: the same original in a validation and a
    # training shard. Shards alone cannot keep them apart; the pipeline must.
    duplicated = [i for i, key in enumerate(training_sources) if key in set(validation_sources)]
    assert [i for i, key in enumerate(training_images) if key in set(validation_images)] == duplicated
    print(f"{len(duplicated)} training record(s) duplicate a validation photo")

    seen = data.load_dataset(split.training_shards, 32, ordered=True,
                             exclude_shards=split.validation_shards)
    seen_keys = _pixel_keys(seen)
    validation_keys = set(_pixel_keys(data.load_dataset(split.validation_shards, 32, ordered=True)))
    assert len(seen_keys) == split.training_images - len(duplicated)
    assert not set(seen_keys) & validation_keys


def test_the_plain_training_pipeline_excludes_validation_photos(tmp_path, real_data_pattern):
    """`get_training_dataset` (used by `fast=False`) drops a validation photo copied into training."""
    import tensorflow as tf

    validation = sorted(glob.glob(real_data_pattern))[0]
    records = [r for _, r in zip(range(3), tf.data.TFRecordDataset(validation).as_numpy_iterator())]
    copy = tmp_path / "training-3.tfrec"
    with tf.io.TFRecordWriter(str(copy)) as writer:
        for record in records:
            writer.write(record)
    own = tmp_path / "own-1.tfrec"
    other = sorted(glob.glob(real_data_pattern))[5]
    with tf.io.TFRecordWriter(str(own)) as writer:
        writer.write(next(tf.data.TFRecordDataset(other).as_numpy_iterator()))
    dataset = data.get_training_dataset([str(copy), str(own)], 32, batch_size=4, seed=0,
                                        exclude_shards=[validation])
    images, _ = next(dataset.as_numpy_iterator())
    assert len({hashlib.sha256(image.tobytes()).hexdigest() for image in images}) == 1
    assert np.array_equal(images[0], images[1])  # only the photo that is not a validation photo
