"""What a hostile file system or model file cannot do: locks that outlive their process, links
planted where the tool writes, and `.keras` files whose layers would run code.

Everything is real: lock files and links on disk, a second process holding a lock, and a real
SavedModel whose serving function writes a file, wrapped in a real `TFSMLayer`.
"""

import os
import signal
import subprocess
import sys

import keras
import pytest
from PIL import Image

from flowers_tl.tool import cli, files
from flowers_tl.errors import OutputExistsError
from test_bad_inputs import assert_clean_error, cli_error, small_shards


# ---------------------------------------------------------------- locks die with their process

@pytest.mark.parametrize("pid", ["1", "own"], ids=["pid-1", "own-pid"])
def test_a_lock_file_left_with_a_live_pid_does_not_block(tmp_path, pid):
    """A killed run's lock file names a process id that lives again (pid 1 in a container, our own)."""
    (tmp_path / files.LOCK_NAME).write_text(f"{os.getpid() if pid == 'own' else pid}\n")
    with files.OutputClaim(str(tmp_path)):
        assert (tmp_path / files.LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / files.LOCK_NAME).exists()


def test_a_live_claim_is_refused_with_its_remedy(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from flowers_tl.tool import files\n"
         f"with files.OutputClaim({str(tmp_path)!r}):\n print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputExistsError) as refused:
            files.OutputClaim(str(tmp_path)).__enter__()
    finally:
        holder.kill()
        holder.wait()
    assert str(refused.value) == (f"'{tmp_path}' is being written by another run (process {holder.pid}, lock file "
                                  f"'{tmp_path / files.LOCK_NAME}'): wait for it to finish or stop it "
                                  f"(kill {holder.pid}), or choose another output folder.")
    with files.OutputClaim(str(tmp_path)):  # the holder was killed: its lock went with it
        pass


# ---------------------------------------------------------------- no write through a link

def test_the_safe_writer_replaces_a_planted_link_and_never_writes_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.symlink(victim, tmp_path / "out.png")
    os.symlink(tmp_path / "nowhere.txt", tmp_path / "log.csv")  # dangling
    files.write_text_atomically(str(tmp_path / "out.png"), "new")
    files.write_text_atomically(str(tmp_path / "log.csv"), "new")
    assert victim.read_text() == "precious\n" and not (tmp_path / "nowhere.txt").exists()
    for name in ("out.png", "log.csv"):
        assert not (tmp_path / name).is_symlink() and (tmp_path / name).read_text() == "new\n"
    assert sorted(os.listdir(tmp_path)) == ["log.csv", "out.png", "victim.txt"]  # no temporary file left


# ---------------------------------------------------------------- model files that would run code

@pytest.fixture(scope="module")
def code_running_models(tmp_path_factory):
    """(folder, marker path): .keras models that would run code when loaded, and the file the code writes.

    `tfsm.keras` wraps, in a real TFSMLayer, a real SavedModel whose serving function writes the
    marker file (Keras before 3.13.2 loaded and ran it); `lambda.keras` holds a Lambda layer;
    `foreign.keras` a layer class from this test module, which loading would import.
    """
    import keras
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("models")
    marker = folder / "written-by-the-model.txt"

    class WritesAFile(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
        def serve(self, pixels):
            tf.io.write_file(str(marker), "the model ran code")
            return {"probabilities": tf.nn.softmax(tf.reduce_mean(pixels, axis=[1, 2])[:, :1] * tf.ones([1, 5]))}

    module = WritesAFile()
    tf.saved_model.save(module, str(folder / "saved_model"), signatures={"serving_default": module.serve})
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.TFSMLayer(str(folder / "saved_model"), call_endpoint="serving_default")(inputs)
    keras.Model(inputs, outputs["probabilities"]).save(folder / "tfsm.keras")
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Lambda(lambda x: x * 2, name="lambda"),
                      keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5, activation="softmax")]
                     ).save(folder / "lambda.keras")
    keras.Sequential([keras.Input((32, 32, 3)), ForeignLayer(), keras.layers.GlobalAveragePooling2D(),
                      keras.layers.Dense(5, activation="softmax")]).save(folder / "foreign.keras")
    assert not marker.exists()  # building and saving ran nothing
    return folder, marker


@keras.saving.register_keras_serializable(package="outside")
class ForeignLayer(keras.layers.Layer):
    """A layer of a module that is neither Keras nor flowers_tl."""

    def call(self, inputs):
        return inputs


def photo(folder) -> str:
    path = folder / "photo.png"
    Image.new("RGB", (32, 32), (200, 40, 90)).save(path)
    return str(path)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_tfsm_layer_model_is_refused_by_name_and_runs_nothing(code_running_models, real_data_pattern,
                                                                 command, capsys):
    folder, marker = code_running_models
    model = str(folder / "tfsm.keras")
    arguments = [model, photo(folder)] if command == "predict" else [model, "--data", real_data_pattern]
    error = cli_error(capsys, command, *arguments)
    assert error == (f"flowers-tl {command}: error: model '{model}' holds a TFSMLayer layer 'tfsm_layer', which "
                     "runs code from outside the model file when it is loaded, so it was not loaded: flowers-tl "
                     "loads only Keras' own layers and its own. Load only models you trust, or train one with "
                     "`flowers-tl train`.")
    assert not marker.exists()


def test_lambda_and_foreign_modules_are_refused_by_name(code_running_models, capsys):
    folder, _ = code_running_models
    error = cli_error(capsys, "predict", str(folder / "lambda.keras"), photo(folder))
    assert f"model '{folder / 'lambda.keras'}' holds a Lambda layer 'lambda'" in error
    error = cli_error(capsys, "predict", str(folder / "foreign.keras"), photo(folder))
    assert f"model '{folder / 'foreign.keras'}' names 'ForeignLayer' from the module 'test_security'" in error


def test_the_course_model_passes_the_check(tmp_path, capsys):
    from flowers_tl import model as flowers_model

    path = tmp_path / "model.keras"
    flowers_model.compile_model(flowers_model.build_model(32, weights="none", head="gap", square_root=True)).save(path)
    assert cli.main(["predict", str(path), photo(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'photo.png'}: ")


def test_a_zip_without_a_config_is_not_loaded(tmp_path, capsys):
    import zipfile

    path = tmp_path / "notes.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    error = cli_error(capsys, "predict", str(path), photo(tmp_path))
    assert error == (f"flowers-tl predict: error: '{path}' is not a Keras model saved by flowers-tl: its config.json "
                     "cannot be read (missing); save the model again with model.save('model.keras').")


def test_a_legacy_h5_model_is_named_with_what_to_do(tmp_path, capsys):
    path = tmp_path / "old.h5"
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                      keras.layers.Dense(5, activation="softmax")]).save(path)
    error = cli_error(capsys, "predict", str(path), photo(tmp_path))
    assert error == (f"flowers-tl predict: error: '{path}' is a legacy HDF5 (.h5) Keras model; flowers-tl loads "
                     f"only .keras files. If you trust it, convert it once in Python: keras.saving.load_model("
                     f"'{path}').save('model.keras'), then give model.keras.")


# ---------------------------------------------------------------- pictures: no link followed, no answer lost

@pytest.fixture(scope="module")
def course_model(tmp_path_factory):
    """A saved 32 px course model (random backbone: fast) and little shards to evaluate it on."""
    from flowers_tl import model as flowers_model

    folder = tmp_path_factory.mktemp("course")
    path = folder / "model.keras"
    flowers_model.compile_model(flowers_model.build_model(32, weights="none")).save(path)
    return str(path), small_shards(str(folder / "shards"), count=2, records=4)


def planted_link(folder, name):
    """A link at folder/name pointing at a file the tool must never overwrite; the victim's path."""
    os.makedirs(folder, exist_ok=True)
    victim = folder.parent / f"victim-{name}"
    victim.write_text("precious\n")
    os.symlink(victim, folder / name)
    return victim


def test_predict_explain_replaces_a_planted_link(course_model, tmp_path, capsys):
    model, _ = course_model
    victim = planted_link(tmp_path / "explained", "photo.png")
    assert cli.main(["predict", model, photo(tmp_path), "--explain", str(tmp_path / "explained")]) == 0
    assert victim.read_text() == "precious\n"
    drawn = tmp_path / "explained" / "photo.png"
    assert not drawn.is_symlink() and drawn.read_bytes().startswith(b"\x89PNG")
    assert capsys.readouterr().out.endswith(f" -> {drawn}\n")


def test_evaluate_top_losses_replaces_a_planted_link(course_model, tmp_path, capsys):
    model, shards = course_model
    victim = planted_link(tmp_path / "worst", "top_losses.png")
    assert cli.main(["evaluate", model, "--data", shards, "--validation-shards", "1", "--top-losses", "2",
                     "--output-dir", str(tmp_path / "worst")]) == 0
    assert victim.read_text() == "precious\n"
    assert (tmp_path / "worst" / "top_losses.png").read_bytes().startswith(b"\x89PNG")


def limited_file_size(limit):
    """preexec_fn: every write past `limit` bytes fails with EFBIG, as a full disk fails (Python ignores SIGXFSZ)."""
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_picture_that_cannot_be_written_keeps_the_printed_results(course_model, tmp_path, command):
    model, shards = course_model
    out = tmp_path / "pictures"
    arguments = ([model, photo(tmp_path), "--explain", str(out)] if command == "predict" else
                 [model, "--data", shards, "--validation-shards", "1", "--top-losses", "2", "--output-dir", str(out)])
    result = subprocess.run([sys.executable, "-m", "flowers_tl", command, *arguments], capture_output=True,
                            text=True, timeout=300, preexec_fn=limited_file_size(4096))
    picture = out / ("photo.png" if command == "predict" else "top_losses.png")
    assert_clean_error(result, command, f"cannot write '{picture}': File too large. Choose another output folder")
    first = f"{tmp_path / 'photo.png'}: " if command == "predict" else "4 images, accuracy "
    assert result.stdout.startswith(first), result.stdout
    assert os.listdir(out) == []  # no picture, no temporary file


def test_sigterm_during_predict_keeps_every_answer_already_computed(course_model, tmp_path):
    model, _ = course_model
    pictures = [photo(tmp_path)] * 2000
    process = subprocess.Popen([sys.executable, "-m", "flowers_tl", "predict", model, *pictures],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stdout.readline()  # printed at once, not at the end
    process.send_signal(signal.SIGTERM)
    rest, stderr = process.communicate(timeout=60)
    assert first.startswith(f"{pictures[0]}: ") and process.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == "flowers-tl predict: interrupted"
    answered = [first, *rest.splitlines()]
    assert 1 <= len(answered) < len(pictures) and all(line.startswith(f"{pictures[0]}: ") for line in answered)
