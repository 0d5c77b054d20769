"""The commands with what a new user brings: their own classes, foreign models, many
pictures, refused arguments, output folders that cannot be written, and a cluster that never answers.

Everything is real: shards written by `convert` or by the tests, tiny Keras models built here,
the command line in this process (`cli.main`) or in a subprocess, real signals and sockets.
"""

import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
import zlib

import keras
import pytest
from PIL import Image

from conftest import jpeg_bytes, write_shard
from flowers_tl import data
from flowers_tl.tool import cli, cluster
from flowers_tl.errors import ConfigError, DataError
from test_bad_inputs import assert_clean_error, cli_error, run_cli, small_shards

OWN_CLASSES = ["my roses", "tab name", "été 花", "Tulips", "daisy", "sixth"]  # sorted by convert
TINY = ["--weights", "none", "--image-size", "32", "--epochs", "1", "--batch-size", "8"]


# ---------------------------------------------------------------- your own classes travel

def test_course_shards_name_the_course_classes(real_data_pattern):
    assert data.class_names(data.list_shards(real_data_pattern)) == data.CLASSES


@pytest.mark.parametrize("records, message", [
    ([(0, "cats"), (0, "dogs"), (1, "dogs")], r"class 0 has two labels in .* \('cats' and 'dogs'\)"),
    ([(0, "cats"), (2, "dogs")], r"'class' values of .* are 0, 2, not 0\.\.1"),
    ([(0, "cats"), (1, "")], r"class 1 of .* has no 'label' while other classes are named \(cats\)"),
    ([(0, "cats"), (1, "cats")], r"label 'cats' names two classes"),
    ([(0, "cats")], r"only one class \('cats'\) in the 1 shard in '.*'; a classifier needs at least 2"),
], ids=["two-labels", "gap", "unnamed", "same-name", "one-class"])
def test_inconsistent_class_names_are_refused_by_name(tmp_path, records, message):
    write_shard(tmp_path / "a-3.tfrec", [{"image": jpeg_bytes(), "class": c, "label": l} for c, l in records])
    with pytest.raises(DataError, match=message):
        data.class_names([str(tmp_path / "a-3.tfrec")])


def test_unlabelled_records_on_the_course_indices_mean_the_course_classes(tmp_path):
    shard = tmp_path / "a-2.tfrec"
    write_shard(shard, [{"image": jpeg_bytes(), "class": 0, "label": ""},
                        {"image": jpeg_bytes(), "class": 3, "label": "sunflowers"}])
    assert data.class_names([str(shard)]) == data.CLASSES


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    """Six photo folders of a teacher's own (two not the course's names) converted, trained, kept."""
    root = tmp_path_factory.mktemp("own")
    for index, name in enumerate(OWN_CLASSES):
        os.makedirs(root / "photos" / name)
        for number in range(6):
            Image.new("RGB", (40, 40), (index * 40, number * 30, 255 - index * 40)).save(
                root / "photos" / name / f"{number}.jpg")
    converted = run_cli("convert", "--folder", str(root / "photos"), "--output", str(root / "shards"),
                        "--image-size", "32", "--shards", "4")
    assert converted.returncode == 0, converted.stderr[-2000:]
    trained = run_cli("train", "--data", str(root / "shards" / "*.tfrec"), "--validation-shards", "1",
                      *TINY, "--output", str(root / "run"))
    assert trained.returncode == 0, trained.stderr[-3000:]
    return root, trained


def test_own_classes_travel_from_the_folders_into_the_model(own_run, capsys):
    root, trained = own_run
    assert f"Classes: {', '.join(sorted(OWN_CLASSES))} (read from the shards' labels)" in trained.stderr
    assert json.loads((root / "run" / "metrics.json").read_text())["classes"] == sorted(OWN_CLASSES)
    photo = str(root / "photos" / "été 花" / "0.jpg")
    assert cli.main(["predict", str(root / "run" / "model.keras"), photo, "--json"]) == 0  # TensorFlow
    assert json.loads(capsys.readouterr().out)[0]["class"] in OWN_CLASSES
    loads_under_jax = ("import json, sys, keras; from flowers_tl.model import class_names_of; "
                       "print(json.dumps(class_names_of(keras.saving.load_model(sys.argv[1], compile=False))))")
    result = subprocess.run([sys.executable, "-c", loads_under_jax, str(root / "run" / "model.keras")],
                            capture_output=True, text=True, timeout=300, env=dict(os.environ, KERAS_BACKEND="jax"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == sorted(OWN_CLASSES)


def test_evaluate_names_the_own_classes_and_shows_progress(own_run, capsys):
    root, _ = own_run
    assert cli.main(["evaluate", str(root / "run" / "model.keras"), "--data", str(root / "shards" / "*.tfrec"),
                     "--validation-shards", "1"]) == 0
    out, err = capsys.readouterr()
    assert "confusion matrix" in out and "été 花" in out and "tulips" not in out
    assert "9/9" in err and "9/9" not in out  # Keras' progress bar, on stderr


def test_a_model_of_other_classes_is_not_evaluated_on_the_course_shards(own_run, real_data_pattern, capsys):
    root, _ = own_run
    error = cli_error(capsys, "evaluate", str(root / "run" / "model.keras"), "--data", real_data_pattern)
    assert "knows the classes Tulips, daisy, my roses, sixth" in error and "hold daisy, dandelion, roses" in error


def test_model_file_has_the_permissions_of_the_other_outputs(own_run):
    root, _ = own_run
    modes = {name: stat.S_IMODE(os.stat(root / "run" / name).st_mode) for name in ("model.keras", "metrics.json")}
    assert modes["model.keras"] == modes["metrics.json"], modes


def test_a_course_model_saved_before_class_names_answers_with_the_course_classes(tmp_path, capsys):
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(5, activation="softmax")])
    model.save(tmp_path / "old.keras")
    Image.new("RGB", (50, 40), (200, 20, 20)).save(tmp_path / "red.png")
    assert cli.main(["predict", str(tmp_path / "old.keras"), str(tmp_path / "red.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["class"] in data.CLASSES


# ---------------------------------------------------------------- foreign models

def save(model, folder, name="foreign.keras"):
    path = folder / name
    model.save(path)
    return str(path)


def dense_model(inputs, units, activation="softmax"):
    return keras.Sequential([keras.Input(inputs), keras.layers.Flatten() if None not in inputs[:2]
                             else keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(units, activation=activation)])


@pytest.mark.parametrize("model, message", [
    (lambda: dense_model((32, 32, 3), 10), "has 10 outputs and carries no class names"),
    (lambda: dense_model((32, 32, 3), 1, "sigmoid"), "has 1 output and carries no class names"),
    (lambda: dense_model((28, 28), 5), "takes inputs of shape (28, 28), not colour pictures"),
    (lambda: keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Dense(5)]),
     "outputs shape (8, 8, 5), not one row of class probabilities"),
], ids=["ten-outputs", "one-sigmoid-output", "grayscale-input", "no-flatten"])
def test_foreign_models_are_named_by_what_does_not_match(tmp_path, capsys, model, message):
    path = save(model(), tmp_path)
    pattern = small_shards(str(tmp_path / "shards"))
    Image.new("RGB", (50, 40)).save(tmp_path / "p.png")
    assert message in cli_error(capsys, "predict", path, str(tmp_path / "p.png"))
    assert message in cli_error(capsys, "evaluate", path, "--data", pattern, "--validation-shards", "1")


def test_a_model_with_two_outputs_is_named(tmp_path, capsys):
    inputs = keras.Input((32, 32, 3))
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(5)(flat), keras.layers.Dense(2)(flat)])
    assert "has inputs: 1, outputs: 2" in cli_error(capsys, "predict", save(model, tmp_path), "x.png")


@pytest.mark.parametrize("inputs", [(None, None, 3), (48, 64, 3)], ids=["any-size", "other-size"])
def test_models_of_other_input_sizes_are_used_at_their_size(tmp_path, capsys, inputs):
    path = save(dense_model(inputs, 5), tmp_path)  # no MobileNetV2 inside either
    pattern = small_shards(str(tmp_path / "shards"))
    assert cli.main(["evaluate", path, "--data", pattern, "--all-shards", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)  # only the report: notes go to stderr
    assert report["images"] == 16 and report["classes"] == data.CLASSES
    Image.new("RGB", (50, 40), (10, 200, 10)).save(tmp_path / "green.png")
    assert cli.main(["predict", path, str(tmp_path / "green.png")]) == 0
    said = capsys.readouterr()
    assert f"{tmp_path / 'green.png'}: " in said.out
    assert ("accepts any picture size; using 192x192" in said.err) == (inputs[0] is None)


def test_a_truncated_model_file_and_a_folder_are_named_for_what_they_are(tmp_path, capsys):
    path = save(dense_model((32, 32, 3), 5), tmp_path, "model.keras")
    whole = open(path, "rb").read()
    (tmp_path / "cut.keras").write_bytes(whole[: len(whole) // 2])
    error = cli_error(capsys, "predict", str(tmp_path / "cut.keras"), "x.png")
    assert f"its {len(whole) // 2} bytes are not a zip archive" in error and "does not exist" not in error
    error = cli_error(capsys, "predict", str(tmp_path), "x.png")
    assert f"'{tmp_path}' is a folder, not a .keras file: give '{path}'" in error


# ---------------------------------------------------------------- predict over many pictures

def png_claiming(width, height):
    """A PNG header that claims width x height pixels (no pixel data): a decompression bomb to PIL."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))


def test_one_bad_picture_does_not_lose_the_others(tmp_path, samples_dir):
    model = save(dense_model((32, 32, 3), 5), tmp_path)
    photos = sorted(str(p) for p in samples_dir.glob("*.jpg"))[:2]
    (tmp_path / "bomb.png").write_bytes(png_claiming(30000, 30000))
    (tmp_path / "folder.jpg").mkdir()
    result = run_cli("predict", model, photos[0], str(tmp_path / "bomb.png"), str(tmp_path / "folder.jpg"),
                     photos[1])
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    answered = [line.split(": ")[0] for line in result.stdout.splitlines()]
    assert answered == photos
    skipped = [line for line in result.stderr.splitlines() if line.startswith("flowers-tl predict: skipped: ")]
    assert len(skipped) == 2
    assert "bomb.png" in skipped[0] and "decompression bomb" in skipped[0]
    assert "folder.jpg" in skipped[1]


# ---------------------------------------------------------------- a refused command blocks nothing

@pytest.mark.parametrize("arguments, code, message", [
    (["--epochs", "-1"], 2, "argument --epochs: --epochs must be at least 1, got -1."),
    (["--batch-size", "-3"], 2, "argument --batch-size: --batch-size must be at least 1, got -3."),
    (["--seed", "-1"], 2, "--seed -1 must be between 0 and 4294967295"),
    (["--seed", str(2**40)], 2, f"--seed {2**40} must be between 0 and 4294967295"),
    (["--fine-tune-from", "20"], 2, "--fine-tune-from 20: MobileNetV2 has blocks 1..16"),
    (["--fine-tune-from", "13", "--fine-tune-rate", "0"], 2, "--fine-tune-rate must be above 0"),
    (["--image-size", "100000"], 2, "image size 100000x100000 is too large: the largest that fits is 1024x1024"),
    (["--batch-size", "100000000", "--no-fast"], 1, "training at 32x32 with 100000000 photos per step needs about"),
], ids=["epochs", "batch-size", "seed-negative", "seed-huge", "fine-tune-block", "fine-tune-rate",
        "image-size", "batch-too-big"])
def test_refused_arguments_leave_nothing_behind(tmp_path, capsys, arguments, code, message):
    """Usage errors (2) are argparse's, said while the arguments are read; the memory check (1) needs the data."""
    pattern = small_shards(str(tmp_path / "shards"))
    output = tmp_path / "run"
    command = ["train", "--data", pattern, "--validation-shards", "1", *TINY, "--output", str(output), *arguments]
    if code == 2:
        with pytest.raises(SystemExit) as end:
            cli.main(command)
        assert end.value.code == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
    else:
        error = cli_error(capsys, *command)
    assert message in error
    assert not output.exists()


def test_the_corrected_command_runs_after_a_refused_one(tmp_path, capsys):
    pattern = small_shards(str(tmp_path / "shards"))
    common = ["train", "--data", pattern, "--validation-shards", "1", "--weights", "none", "--image-size", "32",
              "--output", str(tmp_path / "run"), "--epochs", "1"]
    cli_error(capsys, *common, "--batch-size", "100000000", "--no-fast")
    assert cli.main([*common, "--batch-size", "4"]) == 0
    assert "interrupted run" not in capsys.readouterr().err
    assert (tmp_path / "run" / "model.keras").is_file()


def test_too_large_a_batch_says_what_fits(tmp_path, capsys):
    pattern = small_shards(str(tmp_path / "shards"))
    error = cli_error(capsys, "train", "--data", pattern, "--validation-shards", "1", *TINY,
                      "--output", str(tmp_path / "run"), "--batch-size", "100000000", "--no-fast")
    fits = int(error.split("use --batch-size ")[1].split()[0])
    assert 8 <= fits < 100000000
    # the fast path feeds MobileNetV2 small batches whatever --batch-size says: no refusal
    assert cli.main(["train", "--data", pattern, "--validation-shards", "1", *TINY, "--output", str(tmp_path / "fast"),
                     "--batch-size", "100000000"]) == 0


# ---------------------------------------------------------------- output folders

def test_output_under_a_regular_file(tmp_path, capsys):
    pattern = small_shards(str(tmp_path / "shards"))
    (tmp_path / "notes.txt").write_text("a file")
    error = cli_error(capsys, "train", "--data", pattern, "--validation-shards", "1", *TINY,
                      "--output", str(tmp_path / "notes.txt" / "run"))
    assert f"as --output: a part of that path is a file ('{tmp_path / 'notes.txt'}')" in error


def test_output_that_cannot_be_written(tmp_path, capsys):
    pattern = small_shards(str(tmp_path / "shards"))
    # sysfs refuses new folders to everyone, root included (chmod would not stop root)
    error = cli_error(capsys, "train", "--data", pattern, "--validation-shards", "1", *TINY,
                      "--output", "/sys/flowers_tl_run")
    assert "cannot use '/sys/flowers_tl_run' as --output: it is not writable" in error


def test_a_full_disk_during_train_is_named_and_leaves_no_partial_file(tmp_path):
    """RLIMIT_FSIZE makes every write past 2 MB fail with EFBIG, as a full disk fails with ENOSPC
    (Python ignores SIGXFSZ): the 9 MB model and checkpoints cannot be written, the small files can."""
    import resource

    pattern = small_shards(str(tmp_path / "shards"))
    output = tmp_path / "run"
    limit = 2 * 2**20
    result = subprocess.run(
        [sys.executable, "-m", "flowers_tl", "train", "--data", pattern, "--validation-shards", "1", *TINY,
         "--output", str(output)], capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert_clean_error(result, "train", f"could not write the run into '{output}'", "File too large")
    leftovers = [os.path.join(folder, name) for folder, _, names in os.walk(output) for name in names]
    assert not [path for path in leftovers if "partial" in path or path.endswith("model.keras")], leftovers


# ---------------------------------------------------------------- TF_CONFIG

@pytest.mark.parametrize("tf_config, problem", [
    ("not json", "is not valid JSON"),
    ('["worker"]', "is a JSON list, not an object"),
    ('{"cluster": ["a:1"]}', "has a 'cluster' that is not an object"),
    ('{"cluster": {"worker": "127.0.0.1:1"}}', "lists 'worker' as \"127.0.0.1:1\", not a list"),
    ('{"cluster": {"worker": ["localhost", "b:2"]}}', "lists 'worker' as [\"localhost\", \"b:2\"], not a list"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}}', "has no 'task' whose 'type' is one of ['worker']"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "has task index 2, but 'worker' lists 2 addresses"),
], ids=["not-json", "list", "cluster-list", "addresses-string", "no-port", "no-task", "index"])
def test_a_malformed_tf_config_is_refused_by_name(monkeypatch, tf_config, problem):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ConfigError) as raised:
        cluster.choose_accelerator(verbose=False)
    assert str(raised.value).startswith(f"TF_CONFIG {problem}") and "unset TF_CONFIG" in str(raised.value)


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cluster_env(timeout: str):
    """An environment whose TF_CONFIG names this worker and a silent one, and that silent address."""
    workers = [f"127.0.0.1:{closed_port()}", f"127.0.0.1:{closed_port()}"]
    config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 0}}
    return dict(os.environ, TF_CONFIG=json.dumps(config), FLOWERS_TL_WORKER_TIMEOUT=timeout,
                KERAS_BACKEND="tensorflow"), workers[1]


def test_a_worker_that_never_answers_ends_the_wait_with_a_message(tmp_path):
    env, silent = cluster_env("2")
    pattern = small_shards(str(tmp_path / "shards"))
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "flowers_tl", "train", "--data", pattern, *TINY,
                             "--validation-shards", "1", "--output", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=120, env=env)
    assert f"Waiting up to 2 s for the other workers named in TF_CONFIG: {silent}" in result.stderr  # a note
    assert result.stdout == ""
    assert_clean_error(result, "train", f"the workers {silent} named in TF_CONFIG did not answer within 2 s",
                       "FLOWERS_TL_WORKER_TIMEOUT")
    assert time.monotonic() - start < 60
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_end_the_wait(tmp_path, signum):
    env, _ = cluster_env("600")
    process = subprocess.Popen([sys.executable, "-m", "flowers_tl", "train", "--data", "unused", *TINY,
                                "--output", str(tmp_path / "run")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = iter(process.stderr.readline, "")  # notes go to stderr; TensorFlow may say something first
        line = next(line for line in lines if line.startswith("Waiting up to 600 s") or "Traceback" in line)
        assert line.startswith("Waiting up to 600 s"), line
        process.send_signal(signum)
        start = time.monotonic()
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert time.monotonic() - start < 10
    assert process.returncode == 130 and err.strip().splitlines()[-1] == "flowers-tl train: interrupted"


@pytest.mark.parametrize("value", ["soon", "-5", "inf"])
def test_a_wait_that_is_not_a_number_of_seconds(monkeypatch, value):
    env, _ = cluster_env(value)
    monkeypatch.setenv("TF_CONFIG", env["TF_CONFIG"])
    monkeypatch.setenv("FLOWERS_TL_WORKER_TIMEOUT", value)
    with pytest.raises(ConfigError, match=f"FLOWERS_TL_WORKER_TIMEOUT='{value}' is not a number of seconds"):
        cluster.wait_for_workers()
