"""A Russian learner reads the course's errors in Russian: real calls that go wrong on the notebook's path.

Each call is one a learner makes (a folder given as the data pattern, too many validation shards, training
an uncompiled model...); with `ftl.set_language("ru")` the error it raises says, in Russian, what is wrong
and what to write instead. The English sentences are asserted by the tests of each module.
"""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import flowers_tl as ftl
from conftest import jpeg_bytes, write_shard
from flowers_tl import data, explain, model as flowers_model, scores, training
from flowers_tl.tool import cli
from flowers_tl.errors import ConfigError, DataError

SIZE = 32


@pytest.fixture
def russian():
    ftl.set_language("ru")
    yield
    ftl.set_language("en")


@pytest.fixture(scope="module")
def uncompiled():
    """The course's model at 32x32, random weights (no file to read): built, never compiled."""
    return flowers_model.build_model(SIZE, weights="none")


def shards_in_russian(count: int) -> str:
    """'N шард', 'N шарда' or 'N шардов': the form of «шард» that agrees with `count`."""
    if count % 10 == 1 and count % 100 != 11:
        return f"{count} шард"
    if count % 10 in (2, 3, 4) and count % 100 not in (12, 13, 14):
        return f"{count} шарда"
    return f"{count} шардов"


def test_a_folder_given_as_the_pattern(russian, tmp_path):
    with pytest.raises(DataError) as error:
        data.list_shards(str(tmp_path))
    assert str(error.value) == (f"'{tmp_path}' — это папка, а не шаблон файлов. "
                                f"Укажите шаблон вида '{os.path.join(tmp_path, '*.tfrec')}'.")


def test_a_pattern_that_matches_nothing(russian, tmp_path):
    pattern = str(tmp_path / "nothing" / "*.tfrec")
    with pytest.raises(DataError, match=f"^под шаблон '{re.escape(pattern)}' не подходит ни один файл TFRecord. "
                                        "Проверьте путь или задайте FLOWERS_TL_DATA"):
        data.list_shards(pattern)


def test_an_empty_shard(russian, tmp_path):
    (tmp_path / "flowers00-0.tfrec").write_bytes(b"")
    with pytest.raises(DataError, match=r"пуст \(0 байт\) — возможно, копирование прервалось"):
        data.list_shards(str(tmp_path / "*.tfrec"))


def test_too_many_validation_shards_agree_with_their_number(russian, real_data_pattern):
    count = len(data.list_shards(real_data_pattern))
    with pytest.raises(DataError) as error:
        data.split_shards(real_data_pattern, validation_shards=count)
    assert str(error.value) == (f"validation_shards={count}, а нужно от 1 до {count - 1}: в '{real_data_pattern}' "
                                f"{shards_in_russian(count)}, и хотя бы один нужен для обучения.")


def test_shards_whose_classes_disagree_are_named_in_russian(russian, tmp_path):
    write_shard(tmp_path / "a-2.tfrec", [{"image": jpeg_bytes(), "class": 0, "label": "cats"},
                                         {"image": jpeg_bytes(), "class": 0, "label": "dogs"}])
    with pytest.raises(DataError, match=f"^у класса 0 в папке '{re.escape(str(tmp_path))}' \\(1 шард\\) две метки "
                                        r"\('cats' и 'dogs'\)"):
        data.class_names([str(tmp_path / "a-2.tfrec")])


def test_training_an_uncompiled_model(russian, uncompiled):
    with pytest.raises(ConfigError, match=r"^модель не скомпилирована: сначала вызовите model\.compile\("):
        training.train(uncompiled, None, epochs=1)


def test_photos_of_another_size(russian, uncompiled):
    with pytest.raises(ConfigError) as error:
        explain.explain_predictions(uncompiled, np.zeros((1, 64, 64, 3)))
    assert str(error.value).startswith(f"фото формы (1, 64, 64, 3) не подходят модели, которая принимает "
                                       f"[N, {SIZE}, {SIZE}, 3]: загрузите их в размере")


def test_zero_top_losses(russian, uncompiled):
    with pytest.raises(ConfigError, match="^count должно быть не меньше 1, а получено 0"):
        explain.top_losses(uncompiled, [], count=0)


def test_unfreezing_a_block_that_does_not_exist(russian, uncompiled):
    backbone = flowers_model.find_backbone(uncompiled).name
    with pytest.raises(ConfigError) as error:
        flowers_model.unfreeze_top(uncompiled, 20)
    assert str(error.value) == (f"from_block=20: в '{backbone}' нет блока 20; выберите блок от 1 до 16 "
                                "(при 13 дообучаются 4 верхних блока).")


def test_a_model_without_mobilenet(russian):
    plain = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(5, activation="softmax")])
    with pytest.raises(ConfigError, match="^в модели нет предобученной сети"):
        flowers_model.find_backbone(plain)
    with pytest.raises(ConfigError, match=f"^в модели '{re.escape(plain.name)}' нет предобученной сети"):
        explain.explain_predictions(plain, np.zeros((1, SIZE, SIZE, 3)))


def test_a_model_without_a_head_to_explain(russian):
    backbone = flowers_model.load_backbone(SIZE, weights="none")
    headless = keras.Sequential([keras.Input((SIZE, SIZE, 3)), backbone], name="headless")
    with pytest.raises(ConfigError, match=f"^модель 'headless' заканчивается на '{re.escape(backbone.name)}': "
                                          "у неё нет классифицирующей головы"):
        explain.explain_predictions(headless, np.zeros((1, SIZE, SIZE, 3)))


def test_a_wrong_head_and_a_single_class(russian):
    with pytest.raises(ConfigError, match=r"^аргумент head должен быть одним из \('flatten', 'gap'\), а не 'dense'"):
        flowers_model.build_model(SIZE, weights="none", head="dense")
    with pytest.raises(ConfigError, match="^аргумент num_classes должен быть не меньше 2, а он равен 1"):
        flowers_model.build_model(SIZE, weights="none", num_classes=1)


def test_a_history_without_accuracy(russian):
    with pytest.raises(KeyError, match=r"в этой истории нет val_accuracy \(в ней есть \['loss'\]\)"):
        scores.accuracy_name({"loss": [1.0]}, validation=True)


def test_english_again_after_russian(uncompiled):
    ftl.set_language("ru")
    ftl.set_language("en")
    with pytest.raises(ConfigError, match=r"^the model is not compiled: call model\.compile\("):
        training.train(uncompiled, None, epochs=1)


# ---------------------------------------------------------------- the command line: the environment's language

@pytest.fixture
def russian_environment(monkeypatch):
    """LANGUAGE=ru, as a Russian user's shell may have it; English again afterwards."""
    monkeypatch.setenv("LANGUAGE", "ru")
    yield
    ftl.set_language("en")


def cli_error(capsys, *args):
    """The real command line in this process: its one error line (exit status 1)."""
    assert cli.main(list(args)) == 1
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_the_command_line_says_a_missing_model_in_russian(russian_environment, capsys, tmp_path):
    missing = str(tmp_path / "missing.keras")
    assert cli_error(capsys, "evaluate", missing) == (
        f"flowers-tl evaluate: ошибка: файла модели '{missing}' нет (обучите модель командой `flowers-tl train`)")


def test_the_command_line_says_a_missing_photo_folder_in_russian(russian_environment, capsys, tmp_path):
    folder = str(tmp_path / "photos")
    assert cli_error(capsys, "convert", "--folder", folder, "--output", str(tmp_path / "out")) == (
        f"flowers-tl convert: ошибка: папка с фотографиями '{folder}' не существует. Укажите папку, где на каждый "
        "класс своя подпапка с фотографиями, например photos/daisy/*.jpg, photos/roses/*.jpg.")


@pytest.mark.parametrize("count, files", [
    (1, "1 файл"), (3, "3 файла"), (5, "5 файлов"), (21, "21 файл"), (12, "12 файлов")])
def test_the_command_line_counts_existing_shards_in_russian(russian_environment, capsys, tmp_path, count, files):
    output = tmp_path / "out"
    output.mkdir()
    for number in range(count):
        (output / f"flowers{number:02}-1.tfrec").write_bytes(b"")
    photos = tmp_path / "photos"
    for name in ("daisy", "roses"):
        (photos / name).mkdir(parents=True)
        (photos / name / "a.jpg").write_bytes(jpeg_bytes())
    assert cli_error(capsys, "convert", "--folder", str(photos), "--output", str(output)) == (
        f"flowers-tl convert: ошибка: в '{output}' уже есть {files} .tfrec; передайте --overwrite (overwrite=True) "
        "для замены или выберите другую выходную папку.")


def test_lang_ru_in_a_fresh_process_gives_russian_and_c_gives_english():
    """The usual gettext lookup (LANGUAGE, LC_ALL, LC_MESSAGES, LANG): a Russian locale, then the C locale."""
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES")}
    said = {}
    for lang in ("ru_RU.UTF-8", "C.UTF-8"):
        done = subprocess.run([sys.executable, "-m", "flowers_tl", "info"], capture_output=True, text=True, timeout=120,
                              env={**environment, "LANG": lang, "KERAS_BACKEND": "theano", "PYTHONIOENCODING": "utf-8"})
        assert done.returncode == 1
        said[lang] = done.stderr.strip().splitlines()[-1]
    assert said["ru_RU.UTF-8"].startswith("flowers-tl info: ошибка: KERAS_BACKEND='theano' — не бэкенд Keras: задайте")
    assert said["C.UTF-8"].startswith("flowers-tl info: error: KERAS_BACKEND='theano' is not a Keras backend: set it")
