"""Output, names and the command line: usage errors before TensorFlow, output a script can parse,
odd class names and locales, and the library's own argument checks.

Everything is real: subprocesses under a C locale, folders with odd names, figures drawn headless.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from flowers_tl import cli
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
    (["convert", "--folder", "x", "--output", "y", "--image-size", "5000"], "image size 5000 is too large"),
    (["train", "--epoch", "3"], "unrecognized arguments: --epoch 3"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
]


def run_python(code: str, env=None, timeout=60):
    """`python -c code` with the environment changed by `env` (None values are removed)."""
    environment = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=timeout, env=environment)


# ---------------------------------------------------------------- usage errors, at once and with status 2

def test_usage_errors_exit_2_at_once_before_tensorflow_is_imported():
    """Each case in a fresh interpreter whose KERAS_BACKEND is broken: a usage error must come from
    argparse (status 2, the command's own usage line), with TensorFlow never imported."""
    code = textwrap.dedent(f"""
        import contextlib, io, json, sys, time
        from flowers_tl import cli
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
    assert sorted(command.prog.split()[-1] for command in commands) == ["convert", "evaluate", "info", "predict",
                                                                        "train"]
    for command in commands:
        assert command.description and command.description[0].isupper(), command.prog
        assert command.description.splitlines()[0].strip() in " ".join(command.format_help().split())


def test_the_library_uses_the_same_rules_with_its_own_argument_names():
    from flowers_tl import convert, rules

    with pytest.raises(ConfigError, match=r"^epochs must be at least 1, got 0\.$"):
        rules.at_least(0, "epochs")
    with pytest.raises(ConfigError, match=r"^shards must be at least 1, got 0\.$"):
        convert.convert_folder("anywhere", "out", shards=0)


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
