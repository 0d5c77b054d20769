"""Shared test set-up: offline real data, small TFRecords written by the tests themselves."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DEFAULT_DATA = SHARED / "flowers" / "tfrecords-jpeg-224x224" / "*.tfrec"
DEFAULT_WEIGHTS = SHARED / "mobilenet_v2" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"

# Offline by configuration: the same variables a user sets (see README "Offline or local data").
os.environ.setdefault("FLOWERS_TL_DATA", str(DEFAULT_DATA))
os.environ.setdefault("FLOWERS_TL_WEIGHTS", str(DEFAULT_WEIGHTS))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def real_data_pattern() -> str:
    """Glob of the real flowers shards (skips nothing: a missing copy fails loudly)."""
    pattern = os.environ["FLOWERS_TL_DATA"]
    import glob

    assert glob.glob(pattern), f"real shards not found at {pattern}; see README 'Offline or local data'"
    return pattern


@pytest.fixture(scope="session")
def weights_path() -> str:
    """Path of the real MobileNetV2 no-top ImageNet weights."""
    path = os.environ["FLOWERS_TL_WEIGHTS"]
    assert os.path.isfile(path), f"weights not found at {path}"
    return path


@pytest.fixture(scope="session")
def samples_dir() -> pathlib.Path:
    """Five original flower photos, one per class."""
    return SHARED / "flowers" / "samples"


def write_shard(path, records):
    """Write a TFRecord shard in the course schema. `records`: iterable of dicts with
    image (JPEG bytes), class (int) and optional label/size/one_hot_class overrides."""
    import tensorflow as tf

    from flowers_tl.data import CLASSES

    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            features = {}
            if "image" in record:
                features["image"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[record["image"]]))
            if "class" in record:
                cls = record["class"]
                features["class"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[cls]))
                label = record.get("label", CLASSES[cls] if 0 <= cls < len(CLASSES) else "unknown")
                features["label"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()]))
                one_hot = [1.0 if i == cls else 0.0 for i in range(len(CLASSES))]
                features["one_hot_class"] = tf.train.Feature(float_list=tf.train.FloatList(value=one_hot))
            size = record.get("size", [0, 0])
            features["size"] = tf.train.Feature(int64_list=tf.train.Int64List(value=size))
            example = tf.train.Example(features=tf.train.Features(feature=features))
            writer.write(example.SerializeToString())


def jpeg_bytes(height=40, width=60, color=(200, 30, 60), mode="RGB"):
    """A small solid-color JPEG (mode 'L' gives a grayscale JPEG)."""
    import io

    from PIL import Image

    image = Image.new(mode, (width, height), color if mode == "RGB" else color[0])
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()
