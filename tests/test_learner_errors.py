"""The short messages of the known learner mistakes, on the real errors Keras raises."""

import keras
import numpy as np
import pytest

import flowers_tl as ftl
from flowers_tl import learner_errors as le
from flowers_tl.exercises import ____


def raised(action) -> BaseException:
    with pytest.raises(Exception) as caught:
        action()
    return caught.value


def test_blank_used_as_a_value():
    error = raised(lambda: setattr(keras.layers.Flatten(), "trainable", ____))
    assert le.friendly_message(error) == le.BLANK_LEFT


def test_include_top_with_the_weights_file_without_top(weights_path):
    error = raised(lambda: keras.applications.MobileNetV2(input_shape=[96, 96, 3], include_top=True,
                                                          weights=weights_path))
    assert le.friendly_message(error) == le.WEIGHTS_WITHOUT_TOP


@pytest.mark.parametrize("input_shape", [[96, 96], [128, 128, 3]], ids=["no-channels", "other-size"])
def test_image_shape_mismatch_in_the_course_layers(input_shape):
    backbone = keras.applications.MobileNetV2(input_shape=[96, 96, 3], include_top=False, weights=None)
    error = raised(lambda: keras.Sequential([keras.Input(shape=input_shape), backbone]))
    assert le.friendly_message(error) == le.WRONG_IMAGE_SHAPE.format(shape=str((None, *input_shape)))


def test_one_hot_loss_on_integer_labels():
    model = keras.Sequential([keras.Input(shape=[4]), keras.layers.Dense(5, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    error = raised(lambda: model.fit(np.zeros((8, 4)), np.zeros(8, dtype="int64"), verbose=0))
    assert le.friendly_message(error) == le.LABELS_NOT_ONE_HOT


def test_check_before_its_variable_exists():
    assert le.friendly_message(NameError("name 'history' is not defined", name="history")) == \
        le.NOT_DEFINED.format(variable="history")
    assert le.friendly_message(NameError("name 'histroy' is not defined", name="histroy")) is None


def test_other_errors_keep_their_own_message():
    assert le.friendly_message(ValueError("something else")) is None
    assert le.friendly_message(KeyError("daisy")) is None


def test_russian_message():
    ftl.set_language("ru")
    try:
        assert le.friendly_message(ftl.exercises.BlankError("x")).startswith("В этой ячейке остался пропуск ____")
    finally:
        ftl.set_language("en")


def test_nothing_installed_outside_a_notebook():
    assert le.install_notebook_hooks() is False


def test_package_errors_and_the_stop_button_are_one_sentence():
    assert le.friendly_message(ftl.DataError("shard 'x' is corrupt")) == "shard 'x' is corrupt"
    assert le.friendly_message(KeyboardInterrupt()) == le.STOPPED


@pytest.mark.parametrize("make, kind, name", [
    (lambda: keras.layers.Dense(5, activation="softmx"), "activation function", "softmx"),
    (lambda: keras.Sequential([keras.Input([3]), keras.layers.Dense(2)]).compile(optimizer="adma"), "optimizer", "adma"),
], ids=["activation", "optimizer"])
def test_a_misspelt_keras_name_is_named(make, kind, name):
    assert le.friendly_message(raised(make)) == le.UNKNOWN_NAME.format(kind=kind, name=name)
