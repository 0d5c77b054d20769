"""Shared test set-up: the real data, found the way a user's is; small TFRecords written by the tests.

Real data (the flowers shards and the MobileNetV2 no-top weights), in this order:
1. `FLOWERS_TL_DATA` / `FLOWERS_TL_WEIGHTS` when they are set and point at files;
2. `../shared/data` beside the clone, when present (this project's machines);
3. the course's online sources, fetched once and cached: the course bucket (else tensorflow-datasets'
   tf_flowers, `flowers_tl.sources`) in `~/.cache/flowers_tl`, Keras' weights in `~/.keras/models`.
When none can be had, the tests that need real data are skipped with one reason naming both
variables; with `FLOWERS_TL_REQUIRE_DATA=1` (CI, `.ci/run`) they fail instead.
"""

import functools
import glob
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
WEIGHTS_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/" + WEIGHTS_FILE
SHARED_DATA = SHARED / "flowers" / "tfrecords-jpeg-224x224" / "*.tfrec"
SHARED_WEIGHTS = SHARED / "mobilenet_v2" / WEIGHTS_FILE
SHARED_SAMPLES = SHARED / "flowers" / "samples"
REQUIRE_ENV_VARIABLE = "FLOWERS_TL_REQUIRE_DATA"
SKIPPED_KEY = pytest.StashKey()
NO_REAL_DATA = ("no real flowers data: set FLOWERS_TL_DATA (a glob of the course's .tfrec shards) and "
                "FLOWERS_TL_WEIGHTS (MobileNetV2's no-top .h5 file), or put them in ../shared/data, or run "
                "the tests once online to fetch and cache them (README, 'Tests'). Tried: {tried}")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["LANGUAGE"] = "en"  # the command line speaks the environment's language: the suite asserts its English


def _local_data():
    """(shard pattern, weights file) from the variables, else from ../shared/data; None where missing."""
    pattern = os.environ.get("FLOWERS_TL_DATA")
    weights = os.environ.get("FLOWERS_TL_WEIGHTS")
    if not (pattern and glob.glob(pattern)):
        pattern = str(SHARED_DATA) if glob.glob(str(SHARED_DATA)) else None
    if not (weights and os.path.isfile(weights)):
        weights = str(SHARED_WEIGHTS) if SHARED_WEIGHTS.is_file() else None
    return pattern, weights


def _online_data():
    """(shard pattern, weights file) fetched once from the course's online sources and cached."""
    import keras

    from flowers_tl import data, sources
    from flowers_tl.tool import convert

    shards = sources.find_shards(data.DEFAULT_DATA_PATTERN)  # the bucket, else tf_flowers (cached)
    if shards[0].startswith("gs://"):
        shards = _cached_copy(shards, os.path.join(os.path.dirname(convert.tf_flowers_cache_dir()), "bucket"))
    pattern = os.path.join(glob.escape(os.path.dirname(shards[0])), "*.tfrec")
    weights = keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models")
    return pattern, weights


def _cached_copy(shards, folder):
    """Local copies of the bucket's shards in `folder`, each copied once (temporary name, then renamed)."""
    import tensorflow as tf

    os.makedirs(folder, exist_ok=True)
    for shard in shards:
        local = os.path.join(folder, os.path.basename(shard))
        if not os.path.exists(local):
            tf.io.gfile.copy(shard, local + ".partial", overwrite=True)
            os.replace(local + ".partial", local)
    return sorted(os.path.join(folder, os.path.basename(shard)) for shard in shards)


@functools.lru_cache(maxsize=None)
def _resolve():
    """(shard pattern, weights file, None), or (None, None, the reason there is no real data); once."""
    pattern, weights = _local_data()
    if pattern and weights:
        return pattern, weights, None
    from flowers_tl import online

    if not online.is_online():
        return None, None, NO_REAL_DATA.format(tried="the variables, ../shared/data, and the network (offline)")
    try:
        pattern, weights = _online_data()
    except Exception as error:  # any failure to fetch: the same one reason
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        return None, None, NO_REAL_DATA.format(tried=f"the variables, ../shared/data, and the network ({first})")
    return pattern, weights, None


def _required() -> bool:
    """CI's `FLOWERS_TL_REQUIRE_DATA=1`: a missing copy of the real data fails the tests that need it."""
    return os.environ.get(REQUIRE_ENV_VARIABLE, "") not in ("", "0")


if all(_local_data()):  # found without the network: every test and subprocess sees the same copy
    os.environ["FLOWERS_TL_DATA"], os.environ["FLOWERS_TL_WEIGHTS"] = _local_data()


def pytest_collection_modifyitems(config, items):
    """Without real data (and not required), mark the tests that need it skipped, with one reason."""
    needing = [item for item in items if "real_data" in getattr(item, "fixturenames", ())]
    if not needing or _required():
        return
    reason = _resolve()[2]
    if reason:
        for item in needing:
            item.add_marker(pytest.mark.skip(reason=reason))
        config.stash[SKIPPED_KEY] = (len(needing), reason)


def pytest_terminal_summary(terminalreporter, config):
    """Say once, at the end, why the real-data tests were skipped."""
    if SKIPPED_KEY in config.stash:
        count, reason = config.stash[SKIPPED_KEY]
        terminalreporter.write_line(f"{count} test(s) that need the real data were skipped: {reason}")


@pytest.fixture(scope="session")
def real_data():
    """(shard pattern, weights file) of the real data; sets both variables, so subprocesses use them too."""
    pattern, weights, reason = _resolve()
    if reason:
        if _required():
            pytest.fail(f"{REQUIRE_ENV_VARIABLE} is set and there is {reason}", pytrace=False)
        pytest.skip(reason)
    os.environ["FLOWERS_TL_DATA"], os.environ["FLOWERS_TL_WEIGHTS"] = pattern, weights
    return pattern, weights


@pytest.fixture(scope="session")
def real_data_pattern(real_data) -> str:
    """Glob of the real flowers shards."""
    return real_data[0]


@pytest.fixture(scope="session")
def weights_path(real_data) -> str:
    """Path of the real MobileNetV2 no-top ImageNet weights."""
    return real_data[1]


@pytest.fixture(scope="session")
def samples_dir(real_data_pattern, tmp_path_factory) -> pathlib.Path:
    """Flower photos named `<class>__<name>.jpg`: the five in ../shared, else one per class from the shards."""
    if SHARED_SAMPLES.is_dir():
        return SHARED_SAMPLES
    import tensorflow as tf

    from flowers_tl import data, records

    folder = tmp_path_factory.mktemp("samples")
    for serialized in tf.data.TFRecordDataset(data.list_shards(real_data_pattern)[:1]).as_numpy_iterator():
        record = records.decode(serialized, ("image", "class"))
        name = records.CLASSES[int(record["class"])]
        if not list(folder.glob(f"{name}__*.jpg")):
            (folder / f"{name}__sample.jpg").write_bytes(record["image"])
    return folder


def write_shard(path, records):
    """Write a TFRecord shard in the course's format (`flowers_tl.records`). `records`: dicts with
    image (JPEG bytes) and class (int), either of which may be left out, and optional label/size overrides."""
    import tensorflow as tf

    from flowers_tl.records import CLASSES, encode_fields

    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            fields = {key: record[key] for key in ("image", "class") if key in record}
            if "class" in record:
                cls = record["class"]
                label = record.get("label", CLASSES[cls] if 0 <= cls < len(CLASSES) else "unknown")
                fields["label"] = label.encode()
                fields["one_hot_class"] = [1.0 if i == cls else 0.0 for i in range(len(CLASSES))]
            fields["size"] = list(record.get("size", [0, 0]))
            writer.write(encode_fields(fields))


def jpeg_bytes(height=40, width=60, color=(200, 30, 60), mode="RGB"):
    """A small solid-color JPEG (mode 'L' gives a grayscale JPEG)."""
    import io

    from PIL import Image

    image = Image.new(mode, (width, height), color if mode == "RGB" else color[0])
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


TF_FLOWERS_LABELS = ["dandelion", "daisy", "tulips", "sunflowers", "roses"]  # tfds' own order of tf_flowers


def iter_records(shards):
    """Parsed records of `shards` as dicts of numpy values (`records.decode`), to check what was written."""
    import tensorflow as tf

    from flowers_tl.records import decode

    for record in tf.data.TFRecordDataset(list(shards)).as_numpy_iterator():
        yield decode(record)


PHOTO_CLASSES = {"daisy": 0, "rose": 2, "tulip": 4}  # a learner's folder names: course classes, not course names
PHOTOS_PER_CLASS = 30


@pytest.fixture(scope="session")
def photos_folder(real_data_pattern, tmp_path_factory) -> pathlib.Path:
    """A learner's photo folder made of real photos: one sub-folder per class (daisy, rose, tulip), 30
    JPEG files each, written as they are stored in the first shards of the real data."""
    import tensorflow as tf

    from flowers_tl import data, records

    folder = tmp_path_factory.mktemp("photos")
    wanted = {index: name for name, index in PHOTO_CLASSES.items()}
    written = {name: 0 for name in PHOTO_CLASSES}
    for name in PHOTO_CLASSES:
        (folder / name).mkdir()
    for serialized in tf.data.TFRecordDataset(data.list_shards(real_data_pattern)[:3]).as_numpy_iterator():
        record = records.decode(serialized, ("image", "class"))
        name = wanted.get(int(record["class"]))
        if name and written[name] < PHOTOS_PER_CLASS:
            (folder / name / f"{name}-{written[name]:02d}.jpg").write_bytes(record["image"])
            written[name] += 1
    assert min(written.values()) == PHOTOS_PER_CLASS
    return folder
