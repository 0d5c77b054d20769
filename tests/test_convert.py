"""The converter (photos or tf_flowers to TFRecords), on real flower photos.

The photo folder is made from the real shards' JPEG bytes plus the original
sample photos, with the awkward files a teacher's folder really contains:
PNG, grayscale, CMYK, transparent, truncated, zero-byte, text named .jpg,
nested folders and non-ASCII names.
"""

import glob
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from flowers_tl import data, online, sources
from flowers_tl.tool import convert
from flowers_tl.data import CLASSES
from flowers_tl.errors import ConfigError, DataError, OutputExistsError
from flowers_tl.pictures import crop_fill, to_rgb

from conftest import TF_FLOWERS_LABELS, iter_records

PER_CLASS = 4  # real photos per class in the test folder
SIZE = 64


def real_records(pattern, count, shard_index=0):
    """The first `count` records of one real shard, as dicts (image bytes, class, label...)."""
    shard = sorted(glob.glob(pattern))[shard_index]
    return [record for _, record in zip(range(count), iter_records([shard]))]


def _save(picture, path, **options):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    picture.save(path, **options)


def make_photo_folder(root, pattern, samples_dir):
    """A class-per-folder photo tree from real photos, with every awkward file kind.

    Returns {file name: expected outcome} for the special files ("ok" or "skipped").
    """
    taken = {name: 0 for name in CLASSES}
    for record in real_records(pattern, 80):
        name = CLASSES[int(record["class"])]
        if taken[name] < PER_CLASS:
            path = os.path.join(root, name, f"real_{taken[name]}.jpg")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(record["image"])
            taken[name] += 1
    assert min(taken.values()) == PER_CLASS
    photo = Image.open(sorted(glob.glob(str(samples_dir / "daisy__*.jpg")))[0]).convert("RGB")
    special = {
        "daisy/original.jpg": "ok",
        "daisy/as_png.png": "ok",
        "dandelion/grayscale.jpg": "ok",
        "roses/cmyk.jpg": "ok",
        "roses/garden/2024/nested.jpg": "ok",
        "sunflowers/transparent.png": "ok",
        "tulips/tulipe_été_花.jpg": "ok",
        "tulips/truncated.jpg": "skipped",
        "tulips/zero_bytes.jpg": "skipped",
        "sunflowers/notes.jpg": "skipped",
        "sunflowers/README.txt": "skipped",
        "list.txt": "skipped",
    }
    _save(photo, os.path.join(root, "daisy/original.jpg"), quality=95)
    _save(photo, os.path.join(root, "daisy/as_png.png"))
    _save(photo.convert("L"), os.path.join(root, "dandelion/grayscale.jpg"))
    _save(photo.convert("CMYK"), os.path.join(root, "roses/cmyk.jpg"))
    _save(photo, os.path.join(root, "roses/garden/2024/nested.jpg"))
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    _save(rgba, os.path.join(root, "sunflowers/transparent.png"))
    _save(photo, os.path.join(root, "tulips/tulipe_été_花.jpg"))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG")
    with open(os.path.join(root, "tulips/truncated.jpg"), "wb") as handle:
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    open(os.path.join(root, "tulips/zero_bytes.jpg"), "wb").close()
    with open(os.path.join(root, "sunflowers/notes.jpg"), "w") as handle:
        handle.write("these are my notes, not a photo\n")
    with open(os.path.join(root, "sunflowers/README.txt"), "w") as handle:
        handle.write("photos taken in May\n")
    with open(os.path.join(root, "list.txt"), "w") as handle:  # not inside a class folder
        handle.write("daisy, roses\n")
    open(os.path.join(root, ".DS_Store"), "wb").close()  # hidden: ignored silently
    return special


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, real_data_pattern, samples_dir):
    root = tmp_path_factory.mktemp("photos")
    special = make_photo_folder(str(root), real_data_pattern, samples_dir)
    return root, special


@pytest.fixture(scope="module")
def converted(photo_folder, tmp_path_factory):
    root, _ = photo_folder
    output = tmp_path_factory.mktemp("converted") / "shards"
    report = convert.convert_folder(str(root), str(output), image_size=SIZE, shards=3, seed=7)
    return report, output


def test_folder_report_counts_classes_and_names_skipped_files(photo_folder, converted):
    root, special = photo_folder
    report, _ = converted
    expected_ok = {name: PER_CLASS for name in CLASSES}
    for path, outcome in special.items():
        if outcome == "ok":
            expected_ok[path.split("/")[0]] += 1
    assert report.classes == CLASSES
    assert report.images_per_class == expected_ok
    skipped = {os.path.relpath(path, root).replace(os.sep, "/"): reason for path, reason in report.skipped}
    assert set(skipped) == {p for p, outcome in special.items() if outcome == "skipped"}
    assert "truncated" in skipped["tulips/truncated.jpg"]
    assert "zero-byte" in skipped["tulips/zero_bytes.jpg"]
    assert "not a picture" in skipped["sunflowers/notes.jpg"]
    assert "not a picture file name" in skipped["sunflowers/README.txt"]
    assert skipped["list.txt"] == "not inside a class folder"
    text = str(report)
    assert f"Wrote {report.images} images of {SIZE}x{SIZE} in 3 shards" in text
    assert "tulips/truncated.jpg" in text and "Skipped 5 files:" in text


def test_shards_follow_the_course_schema_and_names(converted):
    report, output = converted
    names = sorted(os.listdir(output))
    assert names == sorted(os.path.basename(s) for s in report.shards)  # nothing else left behind
    total = 0
    for shard in report.shards:
        count = int(re.fullmatch(r"flowers\d\d-(\d+)\.tfrec", os.path.basename(shard)).group(1))
        records = list(iter_records([shard]))
        assert len(records) == count
        total += count
        for record in records:
            cls = int(record["class"])
            assert record["label"].decode() == CLASSES[cls]
            assert list(record["size"]) == [SIZE, SIZE]
            assert list(record["one_hot_class"]) == [1.0 if i == cls else 0.0 for i in range(5)]
            assert len(record["source_sha256"]) == 64
            pixels = tf.io.decode_jpeg(record["image"]).numpy()
            assert pixels.shape == (SIZE, SIZE, 3)
    assert total == report.images
    filenames = {r["filename"].decode() for r in iter_records(report.shards)}
    assert "roses/garden/2024/nested.jpg" in filenames
    assert "tulips/tulipe_été_花.jpg" in filenames


def test_converted_pictures_keep_their_content_and_class(photo_folder, converted):
    """Each record's pixels match its source photo crop-filled, and its class is its folder's."""
    root, _ = photo_folder
    report, _ = converted
    for record in iter_records(report.shards):
        relative = record["filename"].decode()
        assert CLASSES[int(record["class"])] == relative.split("/")[0]
        source = os.path.join(str(root), relative)
        with open(source, "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == record["source_sha256"].decode()
        if relative == "sunflowers/transparent.png":
            continue  # transparent parts become white, compared below
        expected = np.asarray(crop_fill(to_rgb(Image.open(source)), SIZE), np.float32)
        got = tf.io.decode_jpeg(record["image"]).numpy().astype(np.float32)
        assert np.abs(got - expected).mean() < 12, relative  # JPEG noise; another photo gives ~50


def test_transparent_and_cmyk_pictures_become_sensible_rgb(converted):
    report, _ = converted
    by_name = {r["filename"].decode(): r for r in iter_records(report.shards)}
    transparent = tf.io.decode_jpeg(by_name["sunflowers/transparent.png"]["image"]).numpy()
    assert transparent[:2].mean() > 240  # fully transparent top rows -> white, not black
    cmyk = tf.io.decode_jpeg(by_name["roses/cmyk.jpg"]["image"]).numpy().astype(float)
    rgb = tf.io.decode_jpeg(by_name["roses/garden/2024/nested.jpg"]["image"]).numpy().astype(float)
    assert np.abs(cmyk - rgb).mean() < 25  # same photo, colors kept (not inverted)


def test_converted_shards_feed_the_training_pipeline(converted):
    report, output = converted
    split = data.split_shards(str(output / "*.tfrec"), validation_shards=1)
    assert split.training_images + split.validation_images == report.images
    images, labels = data.images_and_labels(
        data.load_dataset(split.training_shards + split.validation_shards, 32, ordered=True), 1000)
    assert images.shape == (report.images, 32, 32, 3)
    assert np.bincount(labels, minlength=5).tolist() == [report.images_per_class[c] for c in CLASSES]


def test_same_seed_same_shards_other_seed_other_order(photo_folder, tmp_path):
    root, _ = photo_folder
    first = convert.convert_folder(str(root), str(tmp_path / "a"), image_size=32, shards=2, seed=1)
    again = convert.convert_folder(str(root), str(tmp_path / "b"), image_size=32, shards=2, seed=1)
    other = convert.convert_folder(str(root), str(tmp_path / "c"), image_size=32, shards=2, seed=2)

    def order(report):
        return [r["filename"] for r in iter_records(report.shards)]

    assert order(first) == order(again)
    assert order(first) != order(other)
    assert sorted(order(first)) == sorted(order(other))


def test_existing_shards_are_kept_unless_overwrite(photo_folder, tmp_path):
    root, _ = photo_folder
    output = tmp_path / "out"
    first = convert.convert_folder(str(root), str(output), image_size=32, shards=4)
    before = {p: open(p, "rb").read() for p in first.shards}
    with pytest.raises(OutputExistsError, match=r"already holds 4 \.tfrec files; pass --overwrite"):
        convert.convert_folder(str(root), str(output), image_size=32, shards=2)
    assert {p: open(p, "rb").read() for p in first.shards} == before
    second = convert.convert_folder(str(root), str(output), image_size=32, shards=2, overwrite=True)
    assert sorted(glob.glob(str(output / "*.tfrec"))) == sorted(second.shards)
    assert len(second.shards) == 2


def test_empty_class_folder_is_an_error_and_writes_nothing(photo_folder, tmp_path):
    source = tmp_path / "photos"
    for name in ("daisy", "roses"):
        (source / name).mkdir(parents=True)
    (source / "daisy" / "a.jpg").write_bytes((photo_folder[0] / "daisy" / "real_0.jpg").read_bytes())
    (source / "roses" / "notes.txt").write_text("nothing here yet")
    with pytest.raises(DataError, match=r"class folder '.*roses' has no picture file"):
        convert.convert_folder(str(source), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_class_with_only_broken_files_writes_nothing(photo_folder, tmp_path):
    """Failing after some shards were written leaves no shard and no temporary file."""
    source = tmp_path / "photos"
    (source / "daisy").mkdir(parents=True)
    (source / "tulips").mkdir()
    for index in range(3):
        (source / "daisy" / f"{index}.jpg").write_bytes((photo_folder[0] / "daisy" / "real_0.jpg").read_bytes())
    (source / "tulips" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    output = tmp_path / "out"
    with pytest.raises(DataError, match=r"no usable picture for class \['tulips'\].*broken\.jpg"):
        convert.convert_folder(str(source), str(output), shards=3)
    assert os.listdir(output) == []


def test_subset_of_course_flowers_keeps_course_numbers_custom_names_are_sorted(photo_folder, tmp_path):
    source = tmp_path / "photos"
    photo = (photo_folder[0] / "daisy" / "real_0.jpg").read_bytes()
    for name in ("roses", "tulips"):
        (source / name).mkdir(parents=True)
        (source / name / "x.jpg").write_bytes(photo)
    report = convert.convert_folder(str(source), str(tmp_path / "a"), image_size=32, shards=1)
    assert {int(r["class"]) for r in iter_records(report.shards)} == {2, 4}
    assert "no photos of ['daisy', 'dandelion', 'sunflowers']" in str(report)

    custom = tmp_path / "custom"
    for name in ("pommes", "Äpfel", "cerises"):
        (custom / name).mkdir(parents=True)
        (custom / name / "x.jpg").write_bytes(photo)
    report = convert.convert_folder(str(custom), str(tmp_path / "b"), image_size=32, shards=1)
    assert report.classes == sorted(["pommes", "Äpfel", "cerises"])
    labels = {r["label"].decode(): int(r["class"]) for r in iter_records(report.shards)}
    assert labels == {name: index for index, name in enumerate(report.classes)}
    assert "build the model with num_classes=3" in str(report)


@pytest.mark.parametrize("kwargs, message", [
    ({"image_size": 16}, r"image size 16x16 is too small: MobileNetV2 needs at least 32x32"),
    ({"shards": 0}, r"shards must be at least 1, got 0"),
    ({"image_size": "96"}, r"image_size must be a whole number, got '96' \(a str\)"),
])
def test_bad_converter_arguments(photo_folder, tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        convert.convert_folder(str(photo_folder[0]), str(tmp_path / "out"), **kwargs)


def test_missing_or_flat_folder(tmp_path):
    with pytest.raises(DataError, match=r"photo folder '.*nowhere' does not exist"):
        convert.convert_folder(str(tmp_path / "nowhere"), str(tmp_path / "out"))
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match=r"has 0 class sub-folders; it needs at least 2"):
        convert.convert_folder(str(flat), str(tmp_path / "out"))


def test_killed_conversion_leaves_no_shard(photo_folder, tmp_path):
    """SIGKILL in the middle of a real `flowers-tl convert`: no .tfrec file (complete or not) appears."""
    source = tmp_path / "many"
    real = sorted(glob.glob(str(photo_folder[0] / "*" / "real_*.jpg")))
    for index in range(400):
        path = real[index % len(real)]
        target = source / os.path.basename(os.path.dirname(path)) / f"{index}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(open(path, "rb").read())
    output = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "flowers_tl", "convert", "--folder", str(source), "--output", str(output),
         "--shards", "8", "--image-size", "192"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not glob.glob(str(output / ".partial-*")) and time.monotonic() < deadline:
            assert process.poll() is None, "conversion ended before it could be interrupted"
            time.sleep(0.01)
        time.sleep(0.3)  # well inside the conversion: some shards complete, one in progress
        assert process.poll() is None, "conversion ended before it could be interrupted"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert glob.glob(str(output / ".partial-*")), "the kill came before any shard was started"
    assert glob.glob(str(output / "*.tfrec")) == []
    with pytest.raises(DataError, match="no TFRecord file matches"):
        data.list_shards(str(output / "*.tfrec"))


# ---------------------------------------------------------------- tf_flowers

def tfds_like_dataset(records, decoded=False):
    """A tf.data.Dataset shaped like tfds' tf_flowers: {"image", "label"} in tfds' label order."""
    tfds_labels = [TF_FLOWERS_LABELS.index(CLASSES[int(r["class"])]) for r in records]
    if decoded:
        images = [tf.io.decode_jpeg(r["image"]).numpy() for r in records]
        return tf.data.Dataset.from_generator(
            lambda: ({"image": image, "label": label} for image, label in zip(images, tfds_labels)),
            output_signature={"image": tf.TensorSpec([None, None, 3], tf.uint8),
                              "label": tf.TensorSpec([], tf.int64)})
    return tf.data.Dataset.from_tensor_slices(
        {"image": [r["image"] for r in records], "label": tfds_labels})


@pytest.mark.parametrize("decoded", [False, True], ids=["jpeg-bytes", "pixel-arrays"])
def test_tf_flowers_labels_map_to_course_classes(real_data_pattern, tmp_path, decoded):
    records = real_records(real_data_pattern, 40, shard_index=5)
    assert len({int(r["class"]) for r in records}) == 5
    dataset = tfds_like_dataset(records, decoded)
    report = convert.convert_labeled_dataset(dataset, TF_FLOWERS_LABELS, str(tmp_path),
                                             image_size=48, shards=4, seed=3, source="tf_flowers")
    assert report.classes == CLASSES
    expected = np.bincount([int(r["class"]) for r in records], minlength=5).tolist()
    assert [report.images_per_class[c] for c in CLASSES] == expected
    # every output image is a real photo of the class the course gives it
    originals = [(tf.image.resize(tf.io.decode_jpeg(r["image"]), [48, 48], antialias=True).numpy(),
                  int(r["class"])) for r in records]
    for record in iter_records(report.shards):
        cls = int(record["class"])
        assert record["label"].decode() == CLASSES[cls]
        got = tf.io.decode_jpeg(record["image"]).numpy().astype(np.float32)
        distances = [np.abs(got - pixels).mean() for pixels, _ in originals]
        assert originals[int(np.argmin(distances))][1] == cls  # the closest real photo has that class


def test_tf_flowers_unknown_label_and_bad_image_are_skipped(real_data_pattern, tmp_path):
    records = real_records(real_data_pattern, 6)
    images = [r["image"] for r in records] + [b"not a jpeg", records[0]["image"]]
    labels = [TF_FLOWERS_LABELS.index(CLASSES[int(r["class"])]) for r in records] + [0, 9]
    dataset = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
    report = convert.convert_labeled_dataset(dataset, TF_FLOWERS_LABELS, str(tmp_path),
                                             image_size=32, shards=2, source="tf_flowers")
    assert report.images == 6
    assert report.skipped == [("tf_flowers record 6", "not a picture (unknown file format)"),
                              ("tf_flowers record 7", "label 9 is outside 0..4")]


@pytest.fixture
def offline(monkeypatch):
    """The real probe of `online.is_online`, aimed at a port that refuses: offline, whatever the machine."""
    monkeypatch.setattr(online, "HOST", ("127.0.0.1", 9))
    monkeypatch.delenv(online.OFFLINE_ENV_VARIABLE, raising=False)
    online.is_online.cache_clear()
    yield
    online.is_online.cache_clear()


def test_tf_flowers_offline_is_a_clear_error(tmp_path, monkeypatch, offline):
    """Offline, tensorflow-datasets cannot fetch tf_flowers: one message in seconds, not minutes of retries."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    started = time.monotonic()
    with pytest.raises(DataError, match=r"could not load tensorflow-datasets' tf_flowers: you are offline"
                                        r".*FLOWERS_TL_DATA.*convert --folder") as caught:
        convert.convert_tf_flowers(str(tmp_path / "out"), data_dir=str(tmp_path / "tfds"))
    assert "FLOWERS_TL_WEIGHTS" not in str(caught.value)  # data only: `evaluate` needs no weights
    assert time.monotonic() - started < 15
    assert not glob.glob(str(tmp_path / "out" / "*.tfrec"))


def test_unreachable_course_bucket_falls_back_to_cached_tf_flowers(real_data_pattern, tmp_path, monkeypatch,
                                                                   offline, capsys):
    """Offline, the default pattern (gs://flowers-public) is replaced by the cached tf_flowers shards."""
    monkeypatch.setenv(convert.CACHE_ENV_VARIABLE, str(tmp_path))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    cache = convert.tf_flowers_cache_dir()
    assert cache == os.path.join(str(tmp_path), "tf_flowers_192")
    records = real_records(real_data_pattern, 12)
    convert.convert_labeled_dataset(tfds_like_dataset(records), TF_FLOWERS_LABELS, cache,
                                    image_size=192, shards=4, source="tf_flowers")
    # Without the "finished" marker the cache is not trusted: it is made again (which needs tfds).
    started = time.monotonic()
    with pytest.raises(DataError, match="could not load tensorflow-datasets' tf_flowers: you are offline"):
        sources.find_shards(data.DEFAULT_DATA_PATTERN)
    assert time.monotonic() - started < 15
    with open(os.path.join(cache, "conversion.json"), "w") as handle:
        handle.write("{}")
    shards = sources.find_shards(data.DEFAULT_DATA_PATTERN)
    assert shards == sorted(glob.glob(os.path.join(cache, "*.tfrec"))) and len(shards) == 4
    assert data.count_images(shards) == 12
    note = capsys.readouterr()
    assert "Note: the course bucket gs://flowers-public" in note.err and "Note" not in note.out
