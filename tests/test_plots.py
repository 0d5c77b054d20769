"""The course's plots: one epoch still shows, labels follow the chosen language, one accuracy everywhere."""

import numpy as np

import flowers_tl as ftl
from flowers_tl import plots
from flowers_tl.messages import catalogue

RUSSIAN = catalogue("ru").gettext


def test_one_epoch_of_training_curves_is_drawn_with_markers():
    figure = ftl.display_training_curves({"loss": [1.2], "val_loss": [1.3], "accuracy": [0.5], "val_accuracy": [0.4]})
    lines = [line for axes in figure.axes for line in axes.get_lines()]
    assert len(lines) == 4 and all(line.get_marker() == "o" for line in lines)
    assert [axes.get_title() for axes in figure.axes] == ["model loss", "model accuracy"]


def test_confusion_matrix_title_is_the_accuracy_of_the_same_predictions():
    labels = np.array([0, 1, 2, 3, 4, 4, 3])
    probabilities = np.eye(5)[[0, 1, 2, 3, 4, 3, 3]]
    figure = ftl.display_confusion_matrix(labels, probabilities)
    accuracy = float(np.mean(probabilities.argmax(axis=-1) == labels))
    assert figure.axes[0].get_title() == plots.CONFUSION_TITLE.format(accuracy=accuracy)


def test_plots_speak_russian():
    ftl.set_language("ru")
    try:
        figure = ftl.display_training_curves({"loss": [1.0, 0.8], "val_loss": [1.1, 0.9]}, metrics=("loss",))
        axes = figure.axes[0]
        assert axes.get_title() == RUSSIAN(plots.MODEL_METRIC).format(metric=RUSSIAN("loss"))
        assert axes.get_xlabel() == RUSSIAN(plots.EPOCH)
        assert [text.get_text() for text in axes.get_legend().get_texts()] == \
            [RUSSIAN(plots.TRAINING), RUSSIAN(plots.VALIDATION)]
    finally:
        ftl.set_language("en")


def test_accuracy_is_found_under_the_name_it_was_compiled_with():
    figure = ftl.display_training_curves({"loss": [1.0], "val_loss": [1.1], "acc": [0.5], "val_acc": [0.4]})
    assert [len(axes.get_lines()) for axes in figure.axes] == [2, 2]
    assert ftl.validation_accuracy({"val_sparse_categorical_accuracy": [0.3, 0.6]}) == [0.3, 0.6]


def test_what_is_not_a_probability_is_refused_by_name():
    """A model without softmax gives scores like -200 and 151: never drawn as "-200 %"."""
    logits = np.array([[151.0, -200.3, 3.0, 0.0, 1.0]])
    photo, heatmap = np.zeros((8, 8, 3)), np.zeros((8, 8))
    try:
        ftl.display_picture_prediction(photo, logits[0], heatmap)
    except ftl.ConfigError as error:
        assert str(error) == plots.check_probabilities.__globals__["NOT_PROBABILITIES"].format(
            what="The predictions", low=-200.3, high=151.0, total=-45.3)
    else:
        raise AssertionError("logits were drawn as probabilities")
    ftl.display_picture_prediction(photo, [0.1, 0.2, 0.3, 0.2, 0.2], heatmap)  # a distribution is drawn


def test_class_names_are_shown_in_the_chosen_language_and_the_data_keeps_its_own():
    ftl.set_language("ru")
    try:
        figure = ftl.display_confusion_matrix([0, 1], np.eye(5)[[0, 1]])
        assert [label.get_text() for label in figure.axes[0].get_xticklabels()] == \
            ["ромашка", "одуванчик", "розы", "подсолнухи", "тюльпаны"]
        own = ftl.display_confusion_matrix([0, 1], np.eye(2), classes=["loss", "épicéa"])
        assert [label.get_text() for label in own.axes[0].get_xticklabels()] == ["loss", "épicéa"]
    finally:
        ftl.set_language("en")
    assert ftl.CLASSES[2] == "roses"
