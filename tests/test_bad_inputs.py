"""Every bad input a learner can give gets one clear message (docs/errors.md lists them).

Each test feeds the bad input for real: through the command line (a subprocess:
exit status 2, a one-line message, no traceback) or through the public API.
"""

import glob
import io
import os
import shutil
import subprocess
import sys

import keras
import pytest
from PIL import Image

from conftest import jpeg_bytes, write_shard
from flowers_tl import data, model as flowers_model, training
from flowers_tl.tool import cli, files
from flowers_tl.errors import ConfigError, DataError, WeightsError


def run_cli(*args, env=None, timeout=120):
    """`python -m flowers_tl ARGS` in a subprocess."""
    environment = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "flowers_tl", *args], capture_output=True, text=True,
                          timeout=timeout, env=environment)


def assert_clean_error(result, command, *fragments):
    """Exit status 1 (a runtime error), no traceback, and the last stderr line is the one-line message."""
    assert result.returncode == 1, (result.stdout[-1000:], result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"flowers-tl {command}: error: "), last
    for fragment in fragments:
        assert fragment in last, last


def cli_error(capsys, *args):
    """Run the real CLI in this process; return its one-line error (exit status must be 1)."""
    assert cli.main(list(args)) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"flowers-tl {args[0]}: error: ")
    return error


def small_shards(folder, count=4, records=4):
    """`count` valid little shards of distinct pictures in `folder`, named like the course's."""
    os.makedirs(folder, exist_ok=True)
    for index in range(count):
        write_shard(os.path.join(folder, f"flowers{index:02d}-{records}.tfrec"),
                    [{"image": jpeg_bytes(color=(index * 50, i * 60, 90)), "class": i % 5}
                     for i in range(records)])
    return os.path.join(folder, "*.tfrec")


@pytest.fixture(scope="module")
def tiny_model():
    """A compiled 32 px model with random backbone weights (fast to build)."""
    return flowers_model.compile_model(flowers_model.build_model(32, weights="none"))


# ---------------------------------------------------------------- data patterns

def test_local_pattern_matching_nothing(tmp_path, capsys):
    error = cli_error(capsys, "train", "--data", str(tmp_path / "nothing" / "*.tfrec"),
                      "--output", str(tmp_path / "o"))
    assert "no TFRecord file matches" in error and "nothing/*.tfrec" in error and "FLOWERS_TL_DATA" in error


def test_gs_pattern_offline_fails_fast_and_clearly(tmp_path):
    result = run_cli("train", "--data", "gs://flowers-public/nothing-here/*.tfrec", "--output",
                     str(tmp_path / "o"), timeout=90)  # no hang: a hang fails this test
    assert_clean_error(result, "train", "cannot list 'gs://flowers-public/nothing-here/*.tfrec'",
                       "Check the network")


def test_folder_given_instead_of_pattern(tmp_path, capsys):
    folder = os.path.dirname(small_shards(str(tmp_path / "shards")))
    error = cli_error(capsys, "train", "--data", folder, "--output", str(tmp_path / "o"))
    assert f"'{folder}' is a folder, not a file pattern" in error and "*.tfrec" in error


def test_unreadable_shard(tmp_path):
    pattern = small_shards(str(tmp_path), count=3)
    os.symlink(str(tmp_path / "gone.tfrec"), str(tmp_path / "flowers03-4.tfrec"))  # points nowhere
    with pytest.raises(DataError, match=r"shard '.*flowers03-4.tfrec' cannot be read \(No such file"):
        data.split_shards(pattern)


def test_empty_shard(tmp_path):
    pattern = small_shards(str(tmp_path))
    open(tmp_path / "flowers01-4.tfrec", "wb").close()
    with pytest.raises(DataError, match=r"shard '.*flowers01-4.tfrec' is empty \(0 bytes\)"):
        data.split_shards(pattern)


def test_too_few_shards_for_validation(tmp_path):
    pattern = small_shards(str(tmp_path), count=2)
    with pytest.raises(DataError, match=r"validation_shards=3 must be between 1 and 1"):
        data.split_shards(pattern, 3)


# ---------------------------------------------------------------- broken shards

def real_subset(real_data_pattern, folder, count=3):
    """Copies of the first `count` real shards (so they can be damaged)."""
    os.makedirs(folder, exist_ok=True)
    for shard in sorted(glob.glob(real_data_pattern))[:count]:
        shutil.copy(shard, folder)
    return sorted(glob.glob(os.path.join(folder, "*.tfrec")))


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "plain-path"])
def test_truncated_shard_in_the_middle_stops_training_by_name(real_data_pattern, tmp_path, capsys, fast):
    shards = real_subset(real_data_pattern, str(tmp_path))
    broken = shards[-1]  # a training shard, read after the good ones
    size = os.path.getsize(broken)
    with open(broken, "r+b") as handle:
        handle.truncate(size // 2)
    args = ["train", "--data", str(tmp_path / "*.tfrec"), "--validation-shards", "1", "--weights", "none",
            "--image-size", "32", "--epochs", "1", "--output", str(tmp_path / "out")]
    error = cli_error(capsys, *args, *([] if fast else ["--no-fast"]))
    assert f"shard '{broken}' is truncated or corrupted after record" in error
    assert not os.path.exists(tmp_path / "out" / "model.keras")  # no model trained on half the data


def test_corrupted_bytes_in_a_shard_name_it(real_data_pattern, tmp_path, tiny_model):
    shards = real_subset(real_data_pattern, str(tmp_path), count=2)
    with open(shards[1], "r+b") as handle:
        handle.seek(os.path.getsize(shards[1]) // 2)
        handle.write(b"\0" * 64)
    with pytest.raises(DataError, match=rf"shard '{shards[1]}' is truncated or corrupted after record \d+ "
                                        r"\(corrupted record at \d+\)"):
        training.evaluate(tiny_model, shards)


def test_files_that_are_not_tfrecords(tmp_path, tiny_model, samples_dir):
    fake = tmp_path / "flowers00-1.tfrec"
    fake.write_bytes(next(samples_dir.glob("*.jpg")).read_bytes())  # a JPEG named .tfrec
    with pytest.raises(DataError, match=rf"'{fake}' is not a TFRecord file: its first record cannot be read"):
        training.evaluate(tiny_model, [str(fake)])


# ---------------------------------------------------------------- wrong schema

@pytest.mark.parametrize("record, message", [
    ({"class": 1}, r"record 2 of shard '.*' is not a valid flowers record: Feature: image .* is required"),
    ({"image": jpeg_bytes()}, r"record 2 of shard .*: Feature: class .* is required"),
    ({"image": jpeg_bytes(), "class": 5}, r"record 2 of shard .*: record 'class' is outside 0\.\.4"),
    ({"image": jpeg_bytes(), "class": -1}, r"record 2 of shard .*: record 'class' is outside 0\.\.4"),
    ({"image": jpeg_bytes(), "class": 1, "label": "daisy"},
     r"record 2 of shard .*: record 'label' is 'daisy' but its 'class' 1 is 'dandelion'"),
    ({"image": b"\x89PNG not really", "class": 1}, r"record 2 of shard .*: Unknown image file format"),
], ids=["no-image", "no-class", "class-too-big", "class-negative", "label-disagrees", "image-not-jpeg"])
def test_records_with_the_wrong_schema(tmp_path, tiny_model, record, message):
    shard = tmp_path / "flowers00-2.tfrec"
    good = {"image": jpeg_bytes(), "class": 0}
    write_shard(shard, [good, record])
    with pytest.raises(DataError, match=message):
        training.evaluate(tiny_model, [str(shard)])


def test_wrong_schema_stops_training(tmp_path, tiny_model):
    pattern = small_shards(str(tmp_path))
    write_shard(tmp_path / "flowers02-4.tfrec", [{"image": jpeg_bytes(), "class": 9}] * 4)
    with pytest.raises(DataError, match=r"record 1 of shard '.*flowers02-4.tfrec'.*'class' is outside 0\.\.4"):
        training.train(tiny_model, data.split_shards(pattern, 1), epochs=1, batch_size=4, verbose=0)


def test_training_shards_that_only_repeat_validation_photos(tmp_path, tiny_model):
    pattern = small_shards(str(tmp_path), count=2)
    shutil.copy(tmp_path / "flowers00-4.tfrec", tmp_path / "flowers01-4.tfrec")  # a copy, renamed
    with pytest.raises(DataError, match=r"no image to compute features for: .* every training photo is "
                                        r"also a validation photo"):
        training.train(tiny_model, data.split_shards(pattern, 1), epochs=1, batch_size=4, verbose=0)


def test_mixed_sizes_and_grayscale_records_simply_work(tmp_path, tiny_model):
    shard = tmp_path / "flowers00-4.tfrec"
    write_shard(shard, [{"image": jpeg_bytes(40, 60), "class": 0},
                        {"image": jpeg_bytes(300, 100), "class": 1},
                        {"image": jpeg_bytes(50, 50, mode="L"), "class": 2, "label": "roses"},
                        {"image": jpeg_bytes(17, 230, color=(10, 200, 30)), "class": 4, "label": "custom"}])
    images, labels = data.images_and_labels(data.load_dataset([str(shard)], 48, ordered=True), 4)
    assert images.shape == (4, 48, 48, 3) and labels.tolist() == [0, 1, 2, 4]
    assert abs(images[2].std(axis=-1)).max() < 1.0  # grayscale -> three equal channels
    assert training.evaluate(tiny_model, [str(shard)])["images"] == 4


# ---------------------------------------------------------------- photos for predict

def photo_kinds(folder, samples_dir):
    """Every kind of picture file a learner may try: {name: usable?}."""
    photo = Image.open(sorted(samples_dir.glob("roses__*.jpg"))[0])
    photo.save(folder / "flower.png")
    photo.convert("L").save(folder / "grayscale.jpg")
    photo.convert("CMYK").save(folder / "cmyk.jpg")
    photo.convert("RGBA").save(folder / "transparent.png")
    photo.save(folder / "rose_été_花.jpg")
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[:2000])
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a photo")
    return {"flower.png": True, "grayscale.jpg": True, "cmyk.jpg": True, "transparent.png": True,
            "rose_été_花.jpg": True, "truncated.jpg": False, "zero.jpg": False, "notes.jpg": False,
            "missing.jpg": False}


def test_predict_takes_every_picture_kind_and_names_the_bad_ones(tmp_path, samples_dir, tiny_model):
    model_path = tmp_path / "model.keras"
    tiny_model.save(model_path)
    kinds = photo_kinds(tmp_path, samples_dir)
    result = run_cli("predict", str(model_path), *[str(tmp_path / name) for name in kinds])
    assert result.returncode == 1 and "Traceback" not in result.stderr  # 1: some files were skipped
    for name, usable in kinds.items():
        path = str(tmp_path / name)
        if usable:
            assert any(line.startswith(f"{path}: ") and "%" in line for line in result.stdout.splitlines()), name
        else:
            assert "flowers-tl predict: skipped: " in result.stderr and path in result.stderr, name
    assert "zero.jpg': empty (zero-byte) file" in result.stderr
    assert "missing.jpg': cannot be read: No such file" in result.stderr
    assert "truncated.jpg': truncated or corrupt picture" in result.stderr


def test_evaluate_a_file_that_is_not_a_model(tmp_path, capsys, real_data_pattern):
    not_model = tmp_path / "model.keras"
    not_model.write_text("not a model")
    error = cli_error(capsys, "evaluate", str(not_model), "--data", real_data_pattern)
    assert f"'{not_model}' is not a Keras model saved by flowers-tl" in error
    error = cli_error(capsys, "predict", str(tmp_path / "nope.keras"), str(tmp_path / "x.jpg"))
    assert "model file" in error and "does not exist" in error


# ---------------------------------------------------------------- convert from the command line

def test_convert_empty_class_folder_and_existing_output(tmp_path, samples_dir):
    (tmp_path / "photos" / "daisy").mkdir(parents=True)
    (tmp_path / "photos" / "roses").mkdir()
    shutil.copy(next(samples_dir.glob("daisy__*.jpg")), tmp_path / "photos" / "daisy")
    result = run_cli("convert", "--folder", str(tmp_path / "photos"), "--output", str(tmp_path / "out"))
    assert_clean_error(result, "convert", "class folder", "roses' has no picture file")


def test_convert_into_a_folder_with_shards(tmp_path, capsys, samples_dir):
    for name in ("daisy", "roses"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        shutil.copy(next(samples_dir.glob(f"{name}__*.jpg")), tmp_path / "photos" / name)
    small_shards(str(tmp_path / "out"), count=1)
    error = cli_error(capsys, "convert", "--folder", str(tmp_path / "photos"), "--output", str(tmp_path / "out"))
    assert "already holds 1 .tfrec file; pass --overwrite" in error


# ---------------------------------------------------------------- weights

def test_imagenet_weights_offline(tmp_path, real_data_pattern):
    """An empty Keras cache and no network: the download fails, and the message names both remedies."""
    result = run_cli("train", "--data", real_data_pattern, "--weights", "imagenet", "--output", str(tmp_path / "o"),
                     env={"KERAS_HOME": str(tmp_path / "keras_home")}, timeout=180)
    assert_clean_error(result, "train", "could not download the ImageNet MobileNetV2 weights (are you offline?)",
                       "FLOWERS_TL_WEIGHTS", "$KERAS_HOME/models/")


def test_weights_path_that_does_not_exist(tmp_path):
    with pytest.raises(WeightsError, match=r"weights file '.*nothing.h5' does not exist\. Give --weights imagenet "
                                            r"\(weights='imagenet' in Python\)"):
        flowers_model.build_model(32, weights=str(tmp_path / "nothing.h5"))


def test_weights_of_another_width_or_architecture(tmp_path):
    half = tmp_path / "mobilenet_v2_0.5.h5"
    keras.applications.MobileNetV2(alpha=0.5, weights=None, include_top=False, input_shape=(96, 96, 3)).save(half)
    other = tmp_path / "dense.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).save(other)
    text = tmp_path / "text.h5"
    text.write_text("not weights")
    for path, reason in [(half, "Shape mismatch"), (other, "Layer count mismatch"), (text, "file signature")]:
        with pytest.raises(WeightsError, match=rf"weights file '{path}' does not fit MobileNetV2 "
                                               rf"\(alpha 1\.0, no top\): .*{reason}.*_1\.0_224_no_top\.h5"):
            flowers_model.build_model(32, weights=str(path))


# ---------------------------------------------------------------- learner mistakes

@pytest.mark.parametrize("option, value, message", [
    ("--image-size", "16", "image size 16x16 is too small: MobileNetV2 needs at least 32x32"),
    ("--batch-size", "0", "--batch-size must be at least 1, got 0."),
    ("--epochs", "0", "--epochs must be at least 1, got 0."),
    ("--validation-shards", "0", "--validation-shards must be at least 1, got 0."),
])
def test_bad_training_arguments(tmp_path, capsys, option, value, message):
    """A usage error (exit status 2, argparse's line naming the option), and nothing is written."""
    with pytest.raises(SystemExit) as end:
        cli.main(["train", "--weights", "none", "--output", str(tmp_path / "o"), option, value])
    assert end.value.code == 2
    assert f"flowers-tl train: error: argument {option}: {message}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_uncompiled_model_and_bad_head():
    model = flowers_model.build_model(32, weights="none")
    with pytest.raises(ConfigError, match=r"the model is not compiled: call model.compile\("):
        training.train(model, None, epochs=1)
    with pytest.raises(ConfigError, match=r"head must be one of \('flatten', 'gap'\), got 'dense'"):
        flowers_model.build_model(32, weights="none", head="dense")


# ---------------------------------------------------------------- output folders

def test_existing_model_is_never_overwritten_without_the_flag(tmp_path, real_data_pattern):
    output = tmp_path / "run"
    output.mkdir()
    (output / "model.keras").write_bytes(b"my precious model")
    result = run_cli("train", "--data", real_data_pattern, "--output", str(output))
    assert_clean_error(result, "train", f"'{output / 'model.keras'}' exists; pass --overwrite")
    assert (output / "model.keras").read_bytes() == b"my precious model"


def test_output_that_is_a_file(tmp_path, capsys):
    pattern = small_shards(str(tmp_path / "shards"))
    (tmp_path / "taken").write_text("a file")
    error = cli_error(capsys, "train", "--data", pattern, "--weights", "none", "--image-size", "32",
                      "--output", str(tmp_path / "taken"))
    assert f"cannot use '{tmp_path / 'taken'}' as --output: it is a file." in error


@keras.saving.register_keras_serializable("flowers_tl_tests")
class FailsWhileSaving(keras.layers.Layer):
    """A layer whose weights cannot be written: Keras fails in the middle of writing the file."""

    def call(self, inputs):
        return inputs

    def save_own_variables(self, store):
        raise OSError("disk full (simulated by a layer that cannot save)")


def test_interrupted_save_keeps_the_old_model(tmp_path):
    path = str(tmp_path / "model.keras")
    good = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with files.written_atomically(path, suffix=".keras") as partial:  # how `train` saves its model
        good.save(partial)
    before = open(path, "rb").read()
    failing = keras.Sequential([keras.Input((4,)), FailsWhileSaving()])
    with pytest.raises(files.CannotWrite, match=r"model\.keras': disk full"):
        with files.written_atomically(path, suffix=".keras") as partial:
            failing.save(partial)
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["model.keras"]  # no partial file left behind
    keras.saving.load_model(path)
