"""Output, names and the command line: usage errors before TensorFlow, output a script can parse,
odd class names and locales, and the library's own argument checks.

Everything is real: subprocesses under a C locale, folders with odd names, figures drawn headless.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from flowers_tl.tool import cli
from flowers_tl.errors import ConfigError, WrongTypeError

USAGE_ERRORS = [
    (["train", "--epochs", "0"], "argument --epochs: --epochs must be at least 1, got 0."),
    (["train", "--fine-tune-from", "20"], "argument --fine-tune-from: --fine-tune-from 20: MobileNetV2 has blocks 1..16"),
    (["train", "--fine-tune-epochs", "0"], "--fine-tune-epochs must be at least 1, got 0."),
    (["train", "--fine-tune-rate", "-1"], "--fine-tune-rate must be above 0, got -1.0."),
    (["train", "--image-size", "16"], "image size 16x16 is too small"),
    (["train", "--seed", "-5"], "--seed -5 must be between 0 and 4294967295"),
    (["train", "--validation-shards", "0"], "--validation-shards must be at least 1, got 0."),
    (["evaluate", "m.keras", "--top-losses", "0"], "--top-losses must be at least 1, got 0."),
    (["convert", "--folder", "x", "--output", "y", "--shards", "0"], "--shards must be at least 1, got 0."),
    (["convert", "--folder", "x", "--output", "y", "--image-size", "5000"], "image size 5000x5000 is too large"),
    (["train", "--epoch", "3"], "unrecognized arguments: --epoch 3"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
]


def run(arguments, env=None, timeout=120):
    """A subprocess with the environment changed by `env` (None values are removed); output as bytes."""
    environment = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run(arguments, capture_output=True, timeout=timeout, env=environment)


def run_python(code: str, env=None, timeout=60):
    """`python -c code` (see `run`)."""
    return run([sys.executable, "-c", code], env, timeout)


# ---------------------------------------------------------------- usage errors, at once and with status 2

def test_usage_errors_exit_2_at_once_before_tensorflow_is_imported():
    """Each case in a fresh interpreter whose KERAS_BACKEND is broken: a usage error must come from
    argparse (status 2, the command's own usage line), with TensorFlow never imported."""
    code = textwrap.dedent(f"""
        import contextlib, io, json, sys, time
        from flowers_tl.tool import cli
        results = []
        for arguments, _ in {USAGE_ERRORS!r}:
            err, start = io.StringIO(), time.perf_counter()
            with contextlib.redirect_stderr(err):
                try:
                    cli.main(arguments)
                    status = 0
                except SystemExit as end:
                    status = end.code
            results.append([status, err.getvalue(), time.perf_counter() - start])
        print(json.dumps([results, 'tensorflow' in sys.modules, 'keras' in sys.modules]))
    """)
    done = run_python(code, env={"KERAS_BACKEND": "nonsense"})
    results, tensorflow, keras = json.loads(done.stdout)
    assert not tensorflow and not keras
    for (arguments, message), (status, err, seconds) in zip(USAGE_ERRORS, results):
        assert status == 2, (arguments, err)
        assert err.startswith(f"usage: flowers-tl {arguments[0]} "), err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"flowers-tl {arguments[0]}: error: ") and message in last, err
        assert seconds < 1, (arguments, seconds)


def test_a_real_usage_error_in_a_subprocess_is_status_2():
    done = subprocess.run([sys.executable, "-m", "flowers_tl", "train", "--epochs", "0"], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, KERAS_BACKEND="nonsense"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1] == ("flowers-tl train: error: argument --epochs: --epochs must be at "
                                            "least 1, got 0.")


def test_every_parser_refuses_abbreviations_and_every_command_has_a_description():
    import argparse

    parser = cli._parser()
    commands = [p for action in parser._actions if isinstance(action, argparse._SubParsersAction)
                for p in action.choices.values()]
    assert not parser.allow_abbrev and all(not command.allow_abbrev for command in commands)
    names = sorted(command.prog.split()[-1] for command in commands)
    assert names == ["convert", "download", "evaluate", "info", "predict", "train"]
    for command in commands:
        assert command.description and command.description[0].isupper(), command.prog
        assert command.description.splitlines()[0].strip() in " ".join(command.format_help().split())


def test_the_library_uses_the_same_rules_with_its_own_argument_names():
    from flowers_tl import rules
    from flowers_tl.tool import convert

    with pytest.raises(ConfigError, match=r"^epochs must be at least 1, got 0\.$"):
        rules.at_least(0, "epochs")
    with pytest.raises(ConfigError, match=r"^shards must be at least 1, got 0\.$"):
        convert.convert_folder("anywhere", "out", shards=0)
    from flowers_tl import training

    with pytest.raises(ConfigError, match=r"^from_block 0: MobileNetV2 has blocks 1\.\.16 \(13 fine-tunes its top 4\)"):
        training.fine_tune(None, None, from_block=0)  # refused before the model is touched
    with pytest.raises(ConfigError, match=r"^learning_rate must be above 0, got 0\.0\.$"):
        training.fine_tune(None, None, learning_rate=0.0)


# ---------------------------------------------------------------- wrong types in Python

def test_wrong_types_name_the_argument(tmp_path):
    from flowers_tl import model as flowers_model, training
    from conftest import jpeg_bytes, write_shard
    import flowers_tl as ftl

    with pytest.raises(WrongTypeError, match=r"image_size must be a whole number of pixels such as 192, or a "
                                             r"\(height, width\) pair, got '96' \(a str\)"):
        flowers_model.build_model("96", weights="none")
    model = flowers_model.compile_model(flowers_model.build_model(32, weights="none"))
    with pytest.raises(WrongTypeError, match=r"split must be a DataSplit, .* got a ndarray: write "
                                             r"split = ftl.split_shards\(pattern\)"):
        training.train(model, np.zeros((4, 32, 32, 3)), epochs=1)
    for number in range(2):
        write_shard(tmp_path / f"s{number}-2.tfrec", [{"image": jpeg_bytes(), "class": c} for c in (0, 1)])
    split = ftl.split_shards(str(tmp_path / "*.tfrec"), validation_shards=1)
    with pytest.raises(WrongTypeError, match=r"epochs must be a whole number, got '3' \(a str\): write it "
                                             r"without quotes, e.g. epochs=3"):
        training.train(model, split, epochs="3")
    with pytest.raises(TypeError):  # a WrongTypeError is a TypeError too, for code that catches those
        training.train(model, split, epochs=1, batch_size=8.0)


# ---------------------------------------------------------------- output a script can parse

ODD_CLASSES = ["line\nbreak", "comma, name", "ромашка", "esc\x1b[31m"]
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "black": (0, 0, 0)}  # class 0..3


@pytest.fixture(scope="module")
def odd_model(tmp_path_factory):
    """A saved classifier whose class names hold a newline, a comma, Cyrillic and an escape code, made so
    a red picture is class 0, green 1, blue 2 and black 3 (its mean colour decides)."""
    import keras

    from flowers_tl.model import ClassProbabilities

    last = ClassProbabilities(4, class_names=ODD_CLASSES, activation="softmax")
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(), last])
    kernel = np.zeros((3, 4), "float32")
    kernel[0, 0] = kernel[1, 1] = kernel[2, 2] = 0.1
    last.set_weights([kernel, np.array([0, 0, 0, 1], "float32")])
    path = tmp_path_factory.mktemp("odd") / "odd.keras"
    model.save(path)
    return str(path)


def pictures(folder, sizes=None):
    """One picture per colour in `folder` (a Cyrillic name), 40x40 unless `sizes` says otherwise."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, colour in COLOURS.items():
        path = folder / f"{name}.png"
        Image.new("RGB", (sizes or {}).get(name, (40, 40)), colour).save(path)
        paths.append(str(path))
    return paths


C_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": None}


def test_predict_under_a_c_locale_answers_one_line_per_photo_with_odd_class_names(odd_model, tmp_path):
    photos = pictures(tmp_path / "фото")
    done = run([sys.executable, "-m", "flowers_tl", "predict", odd_model, *photos], env=C_LOCALE)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = done.stdout.decode("ascii").splitlines()
    folder = f"{tmp_path}/\\u0444\\u043e\\u0442\\u043e"  # фото, escaped: the C locale's ASCII cannot show it
    answers = [re.fullmatch(r"(.*): (.*) \(\d+\.\d%\)", line).groups() for line in lines]
    assert answers == [(f"{folder}/red.png", '"line\\nbreak"'), (f"{folder}/green.png", '"comma, name"'),
                       (f"{folder}/blue.png", "\\u0440\\u043e\\u043c\\u0430\\u0448\\u043a\\u0430"),
                       (f"{folder}/black.png", '"esc\\x1b[31m"')]


def test_predict_json_is_one_document_and_notes_go_to_stderr(odd_model, tmp_path):
    """A tiny picture and a 4000x20 panorama each get a note, on stderr; stdout parses as one JSON document."""
    photos = pictures(tmp_path / "p", sizes={"green": (5, 5), "blue": (4000, 20)})
    done = subprocess.run([sys.executable, "-m", "flowers_tl", "predict", odd_model, *photos, "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    answers = json.loads(done.stdout)
    assert [row["class"] for row in answers] == ODD_CLASSES
    assert (f"Note: '{photos[2]}' is 4000x20 pixels, far from square: only its central 20x20 square is used "
            "(the model sees square pictures); crop the part that matters to a square first.") in done.stderr
    assert f"Note: '{photos[1]}' is only 5x5 pixels" in done.stderr


# ---------------------------------------------------------------- convert: names, locales, shard counts

def photo_folder(root, classes, photos=3):
    """`root/<class>/<n>.jpg`, small distinct photos for each class name."""
    from PIL import Image

    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for number in range(photos):
            Image.new("RGB", (40, 40), (index * 60, number * 70, 90)).save(root / name / f"{number}.jpg")
    return root


def test_convert_under_a_c_locale_keeps_cyrillic_names_and_says_why_it_wrote_fewer_shards(tmp_path):
    from conftest import iter_records

    photo_folder(tmp_path / "фото", ["ромашка", "роза"])
    done = run([sys.executable, "-m", "flowers_tl", "convert", "--folder", str(tmp_path / "фото"), "--output",
                str(tmp_path / "shards"), "--image-size", "32", "--shards", "16"], env=C_LOCALE)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    report = done.stdout.decode("ascii")
    assert "\\u0440\\u043e\\u043c\\u0430\\u0448\\u043a\\u0430" in report  # ромашка, escaped for ASCII
    assert ("Note: wrote 6 shards, not the 16 asked for: every shard holds at least one photo, and there are "
            "only 6.") in report
    records = list(iter_records(sorted(str(p) for p in (tmp_path / "shards").glob("*.tfrec"))))
    assert {r["label"].decode() for r in records} == {"ромашка", "роза"}
    assert {r["filename"].decode().split("/")[0] for r in records} == {"ромашка", "роза"}


@pytest.mark.parametrize("names, message", [
    (["daisy", "line\nbreak"], "class folder 'line\\nbreak' in '{root}' has a control or invisible character in "
                               "its name (U+000A)"),
    (["daisy", "zero\u200bwidth"], "class folder 'zero\\u200bwidth' in '{root}' has a control or invisible "
                                   "character in its name (U+200B)"),
    (["\u00e9t\u00e9", "e\u0301te\u0301"], "class folders 'e\\u0301te\\u0301' and '\\xe9t\\xe9' in '{root}' differ "
                                          "only in Unicode normalisation"),
    (["roses", "roses "], "class folders 'roses' and 'roses ' in '{root}' differ only"),
    (["Tulips", "tulips"], "class folders 'Tulips' and 'tulips' in '{root}' differ only"),
], ids=["newline", "zero-width", "nfc-nfd", "space", "case"])
def test_convert_refuses_class_folders_whose_names_print_wrongly_or_alike(tmp_path, names, message):
    root = photo_folder(tmp_path / "photos", names)
    done = run([sys.executable, "-m", "flowers_tl", "convert", "--folder", str(root), "--output",
                str(tmp_path / "shards"), "--image-size", "32"])
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert err.strip().splitlines()[-1].startswith("flowers-tl convert: error: " + message.format(root=root)), err
    assert not (tmp_path / "shards").exists()


HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)  # an ISO media file's first box
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>\n'


def test_heic_and_svg_pictures_are_named_with_what_to_do(odd_model, tmp_path):
    """By content (an iPhone photo renamed .jpg) and by name, in `predict` and in `convert`."""
    (tmp_path / "IMG_1.heic").write_bytes(HEIC)
    (tmp_path / "renamed.jpg").write_bytes(HEIC)
    (tmp_path / "logo.svg").write_bytes(SVG)
    paths = [str(tmp_path / name) for name in ("IMG_1.heic", "renamed.jpg", "logo.svg")]
    done = run([sys.executable, "-m", "flowers_tl", "predict", odd_model, *paths])
    skipped = [line for line in done.stderr.decode().splitlines() if "skipped" in line]
    assert done.returncode == 1
    assert skipped == [f"flowers-tl predict: skipped: '{path}': {kind} picture, not supported here: "
                       "convert it to JPEG or PNG first" for path, kind in zip(paths, ["HEIC", "HEIC", "SVG"])]
    root = photo_folder(tmp_path / "photos", ["daisy", "roses"])
    (root / "daisy" / "IMG_2.HEIC").write_bytes(HEIC)
    (root / "roses" / "drawing.svg").write_bytes(SVG)
    from flowers_tl.tool import convert

    report = convert.convert_folder(str(root), str(tmp_path / "shards"), image_size=32, shards=1)
    assert sorted(report.skipped) == [
        (str(root / "daisy" / "IMG_2.HEIC"), "HEIC picture, not supported here: convert it to JPEG or PNG first"),
        (str(root / "roses" / "drawing.svg"), "SVG picture, not supported here: convert it to JPEG or PNG first")]


# ---------------------------------------------------------------- evaluate and train: what goes where

OFFLINE_NO_DATA = {"FLOWERS_TL_OFFLINE": "1", "FLOWERS_TL_DATA": None, "FLOWERS_TL_WEIGHTS": None}


def test_evaluate_offline_asks_only_for_the_data(odd_model, tmp_path):
    """`evaluate` loads a saved model: offline, with no data set, it names FLOWERS_TL_DATA, not the weights."""
    done = run([sys.executable, "-m", "flowers_tl", "evaluate", odd_model],
               env={**OFFLINE_NO_DATA, "TFDS_DATA_DIR": str(tmp_path / "tfds"), "FLOWERS_TL_CACHE": str(tmp_path)})
    last = done.stderr.decode().strip().splitlines()[-1]
    assert done.returncode == 1
    assert last.startswith("flowers-tl evaluate: error: could not load tensorflow-datasets' tf_flowers: you are "
                           "offline") and "FLOWERS_TL_DATA" in last, last
    assert "FLOWERS_TL_WEIGHTS" not in last


@pytest.fixture(scope="module")
def course_model(tmp_path_factory):
    """Small course-format shards and an untrained 32 px course model saved beside them."""
    from flowers_tl import model as flowers_model
    from test_bad_inputs import small_shards

    folder = tmp_path_factory.mktemp("course")
    pattern = small_shards(str(folder / "shards"))
    flowers_model.build_model(32, weights="none").save(folder / "model.keras")
    return pattern, str(folder / "model.keras")


def evaluate_in_a_terminal(model, pattern, env):
    """`evaluate` with stdout and stderr on a real pseudo-terminal; everything it wrote there."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "flowers_tl", "evaluate", model, "--data", pattern],
                               stdout=follower, stderr=follower, env={**os.environ, **env})
    os.close(follower)
    written = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        written += chunk
    assert process.wait(timeout=120) == 0, written[-2000:]
    os.close(leader)
    return written


def test_evaluate_writes_no_colour_codes_into_files_or_under_no_color(course_model):
    pattern, model = course_model
    done = run([sys.executable, "-m", "flowers_tl", "evaluate", model, "--data", pattern])
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"\x1b[" not in done.stdout + done.stderr
    assert b"12/12" in done.stderr  # the bar, as one plain line
    assert b"\x1b[" in evaluate_in_a_terminal(model, pattern, {"TERM": "xterm"})  # a terminal keeps its colours
    assert b"\x1b[" not in evaluate_in_a_terminal(model, pattern, {"TERM": "xterm", "NO_COLOR": "1"})


def test_train_prints_notes_on_stderr_and_an_exact_feature_pass_bar(tmp_path):
    """33 training photos and 1 validation photo: batches of 32 make 2 + 1 (the bar showed 3/2);
    stdout holds the result line alone."""
    from conftest import jpeg_bytes, write_shard

    write_shard(tmp_path / "a00-1.tfrec", [{"image": jpeg_bytes(color=(0, 0, 250)), "class": 0}])
    write_shard(tmp_path / "a01-33.tfrec", [{"image": jpeg_bytes(color=(i * 7, 250 - i * 7, 0)), "class": i % 2}
                                            for i in range(33)])
    done = run([sys.executable, "-m", "flowers_tl", "train", "--data", str(tmp_path / "*.tfrec"),
                "--validation-shards", "1", "--weights", "none", "--image-size", "32", "--epochs", "1",
                "--batch-size", "8", "--output", str(tmp_path / "run")], timeout=300)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err[-2000:]
    assert re.fullmatch(r"Validation accuracy \S+ \(best \S+\) in \S+ s; model, metrics and curves in .*/run/\n", out)
    assert "Running on CPU" in err or "Running on GPU" in err
    assert "Running the frozen layers once over 34 photos" in err
    bars = re.findall(r"^(\d+)/(\d+) - .*batch$", err, re.MULTILINE)
    assert bars == [("3", "3")], err


def test_offline_the_local_224_weights_serve_any_image_size(weights_path, tmp_path):
    """Keras would look for its `_96_` file; offline, the 224 file in $KERAS_HOME/models/ is used, said in a note,
    and the backbone holds exactly those weights."""
    import shutil

    (tmp_path / "models").mkdir()
    shutil.copy(weights_path, tmp_path / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
    code = ("import numpy as np; from flowers_tl import model\n"
            "local = model.load_backbone(96, weights='imagenet')\n"
            f"given = model.load_backbone(96, weights={weights_path!r})\n"
            "print(all(np.array_equal(a, b) for a, b in zip(local.get_weights(), given.get_weights())))")
    done = run_python(code, env={"KERAS_HOME": str(tmp_path), "FLOWERS_TL_OFFLINE": "1"}, timeout=120)
    assert done.stdout.decode().strip() == "True", done.stderr.decode()[-2000:]
    assert (f"Note: offline, and Keras' 'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5' is not in "
            f"{tmp_path}/models; using '{tmp_path}/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_"
            "no_top.h5' (the 224 weights load at any image size).") in done.stderr.decode()


def test_without_any_weights_offline_the_message_names_the_file_for_that_size(tmp_path):
    unreachable = "http://127.0.0.1:9"  # Keras' download fails at once, online or not
    done = run_python("from flowers_tl import model; model.load_backbone(160, weights='imagenet')",
                      env={"KERAS_HOME": str(tmp_path), "FLOWERS_TL_OFFLINE": "1", "HTTPS_PROXY": unreachable,
                           "https_proxy": unreachable}, timeout=120)
    message = done.stderr.decode()
    assert "Keras' own file for this size is 'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5'" \
        in message
    assert "give --weights (weights= in Python) or set FLOWERS_TL_WEIGHTS" in message


# ---------------------------------------------------------------- figures, drawn headless

def test_fine_tuning_curves_mark_where_fine_tuning_starts():
    """3 head epochs then 2 of fine-tuning on one axis: a dashed line between epochs 3 and 4, in the legend,
    in the chosen language; without fine-tuning, no line."""
    import flowers_tl as ftl
    from flowers_tl import plots

    history = {"loss": [1.0, 0.8, 0.7, 0.5, 0.4], "val_loss": [1.1, 0.9, 0.8, 0.6, 0.6],
               "accuracy": [0.5, 0.6, 0.7, 0.8, 0.9], "val_accuracy": [0.4, 0.5, 0.6, 0.7, 0.8]}
    for language, label in (("en", "fine-tuning starts"), ("ru", "начало дообучения")):
        ftl.set_language(language)
        try:
            figure = plots.display_training_curves(history, fine_tune_start=4)
        finally:
            ftl.set_language("en")
        for axes in figure.axes:
            marks = [line for line in axes.get_lines() if line.get_label() == label]
            assert len(marks) == 1 and list(marks[0].get_xdata()) == [3.5, 3.5]
            assert label in [text.get_text() for text in axes.get_legend().get_texts()]
    plain = plots.display_training_curves(history)
    assert all(len(axes.get_lines()) == 2 for axes in plain.axes)


def test_the_top_loss_figure_draws_the_numbers_the_text_list_uses():
    from flowers_tl import explain, plots

    photo = np.zeros((32, 32, 3), "float32")
    worst = [explain.TopLoss(photo, 0, 1, 0.9, 0.05, 3.0, index=17), explain.TopLoss(photo, 2, 3, 0.8, 0.1, 2.3, index=4)]
    figure = plots.display_top_losses(worst)
    titles = [axes.get_title() for axes in figure.axes]
    assert titles == ["#17 true: daisy\npredicted: dandelion (90%)", "#4 true: roses\npredicted: sunflowers (80%)"]
