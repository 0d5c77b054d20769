"""Fuzzing the TFRecord reader and the converter: random bytes and random small pictures.

Property: nothing hangs and nothing fails except with the documented DataError
(see docs/errors.md). Example counts are modest so the file runs in seconds.
"""

import io
import os
import tempfile

import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from conftest import write_shard
from flowers_tl import data
from flowers_tl.tool import convert
from flowers_tl.errors import DataError

FUZZ = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "LA", "I"]
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp"}


@st.composite
def picture_files(draw):
    """(file name, bytes) of a random small picture in a random mode and format, or random bytes."""
    if draw(st.integers(0, 4)) == 0:
        return "random.jpg", draw(st.binary(max_size=300))
    mode = draw(st.sampled_from(MODES))
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    pixels = draw(st.binary(min_size=width * height * 4, max_size=width * height * 4))
    picture = Image.frombytes("RGBA", (width, height), pixels).convert(mode)
    buffer = io.BytesIO()
    try:
        picture.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):  # this format cannot store this mode: store PNG
        buffer = io.BytesIO()
        picture.convert("RGBA").save(buffer, format="PNG")
        fmt = "PNG"
    raw = buffer.getvalue()
    if draw(st.booleans()):  # sometimes cut the file short
        raw = raw[: draw(st.integers(0, len(raw)))]
    return f"picture{FORMATS[fmt]}", raw


def read_all(shards):
    """Iterate the course pipeline over `shards`, as training does (errors become DataError)."""
    with data.reading(shards, 24):
        return sum(1 for _ in data.load_dataset(shards, 24, ordered=True))


def _only_documented_errors(shards):
    """Read `shards` both ways; they must agree, and fail only with the documented messages."""
    problem = data.find_bad_record(shards, 24)
    try:
        count = read_all(shards)
    except DataError as error:
        assert problem is not None and str(error) == problem
        return None
    assert problem is None
    return count


@FUZZ
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=5))
def test_random_bytes_as_records(records):
    with tempfile.TemporaryDirectory() as folder:
        shard = os.path.join(folder, "flowers00-1.tfrec")
        with tf.io.TFRecordWriter(shard) as writer:
            for record in records:
                writer.write(record)
        _only_documented_errors([shard])


@FUZZ
@given(st.binary(min_size=1, max_size=400))
def test_random_bytes_as_a_shard_file(raw):
    with tempfile.TemporaryDirectory() as folder:
        shard = os.path.join(folder, "flowers00-1.tfrec")
        with open(shard, "wb") as handle:
            handle.write(raw)
        assert data.list_shards(os.path.join(folder, "*.tfrec")) == [shard]
        _only_documented_errors([shard])


@FUZZ
@given(st.lists(st.tuples(picture_files(), st.integers(-3, 8),
                          st.sampled_from([None, "daisy", "roses", "tulips", "other"])),
                min_size=1, max_size=4))
def test_random_pictures_and_classes_in_records(items):
    with tempfile.TemporaryDirectory() as folder:
        shard = os.path.join(folder, "flowers00-1.tfrec")
        records = []
        for (_, raw), cls, label in items:
            record = {"image": raw, "class": cls}
            if label is not None:
                record["label"] = label
            records.append(record)
        write_shard(shard, records)
        count = _only_documented_errors([shard])
        if count is not None:
            assert count == len(items)
            assert all(0 <= cls <= 4 for _, cls, _ in items)


@FUZZ
@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # the corrupt pictures it is fed, said by PIL
@given(st.lists(picture_files(), min_size=1, max_size=4), st.lists(picture_files(), min_size=1, max_size=4))
def test_converter_on_random_pictures(first_class, second_class):
    with tempfile.TemporaryDirectory() as folder:
        for name, files in (("daisy", first_class), ("roses", second_class)):
            os.makedirs(os.path.join(folder, "photos", name))
            for index, (file_name, raw) in enumerate(files):
                with open(os.path.join(folder, "photos", name, f"{index}_{file_name}"), "wb") as handle:
                    handle.write(raw)
        output = os.path.join(folder, "out")
        try:
            report = convert.convert_folder(os.path.join(folder, "photos"), output, image_size=32, shards=2)
        except DataError as error:
            assert "no usable picture" in str(error)
            assert not [f for f in os.listdir(output) if f.endswith(".tfrec") or f.startswith(".partial")]
            return
        assert report.images + len(report.skipped) == len(first_class) + len(second_class)
        assert read_all(report.shards) == report.images
