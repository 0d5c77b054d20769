"""The course's plots: one epoch still shows, labels follow the chosen language, one accuracy everywhere."""

import numpy as np

import flowers_tl as ftl
from flowers_tl import plots
from flowers_tl.messages import RUSSIAN


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
        assert axes.get_title() == RUSSIAN[plots.MODEL_METRIC].format(metric=RUSSIAN["loss"])
        assert axes.get_xlabel() == RUSSIAN[plots.EPOCH]
        assert [text.get_text() for text in axes.get_legend().get_texts()] == \
            [RUSSIAN[plots.TRAINING], RUSSIAN[plots.VALIDATION]]
    finally:
        ftl.set_language("en")
