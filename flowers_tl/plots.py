"""Plots for the course: sample images, predictions, training curves, confusion matrix.

Every function draws on a new `matplotlib.figure.Figure` (no global pyplot state,
so it works headless and in tests) and returns it; in a notebook, a returned
figure is shown as the cell's output.
"""

from typing import Optional, Sequence

import numpy as np
from matplotlib.figure import Figure

from .data import CLASSES, images_and_labels
from .messages import say
from .scores import confusion_matrix

# Labels drawn on the plots (English; flowers_tl/messages.py holds their Russian)
TRAINING = "training"
VALIDATION = "validation"
EPOCH = "epoch"
MODEL_METRIC = "model {metric}"
PREDICTED = "predicted"
TRUE = "true"
CONFUSION_TITLE = "confusion matrix (accuracy {accuracy:.3f})"
METRIC_NAMES = {"loss": "loss", "accuracy": "accuracy"}

RIGHT_COLOR = "black"
WRONG_COLOR = "red"


def _image_grid(images, titles, colors, columns: int = 3) -> Figure:
    rows = int(np.ceil(len(images) / columns))
    figure = Figure(figsize=(3.2 * columns, 3.4 * rows), layout="constrained")
    for index, (image, title, color) in enumerate(zip(images, titles, colors)):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(np.clip(np.asarray(image), 0, 255).astype("uint8"))
        axes.set_title(title, color=color, fontsize=11)
        axes.axis("off")
    return figure


def display_9_images_from_dataset(dataset, classes: Sequence[str] = CLASSES) -> Figure:
    """The first 9 (image, class) pairs of a dataset (batched or not), titled with their class."""
    images, labels = images_and_labels(dataset, 9)
    return _image_grid(images, [classes[label] for label in labels], [RIGHT_COLOR] * len(images))


def display_9_images_with_predictions(images, predictions, labels,
                                      classes: Sequence[str] = CLASSES) -> Figure:
    """Images titled with the predicted class; wrong ones in red with the right answer.

    `predictions` may be class indices or probability rows (as `model.predict` returns).
    """
    predicted = np.asarray(predictions)
    if predicted.ndim == 2:
        predicted = predicted.argmax(axis=-1)
    titles, colors = [], []
    for guess, truth in zip(predicted[:9], np.asarray(labels)[:9]):
        if guess == truth:
            titles.append(classes[guess])
            colors.append(RIGHT_COLOR)
        else:
            titles.append(f"{classes[guess]} \u2260 {classes[truth]}")
            colors.append(WRONG_COLOR)
    return _image_grid(list(images)[:9], titles, colors)


def display_training_curves(history, metrics: Sequence[str] = ("loss", "accuracy")) -> Figure:
    """Training vs validation curves per epoch, one panel per metric.

    `history` is a Keras `History`, its `.history` dict, or a `TrainingResult`. Every epoch is
    marked with a dot, so that one epoch (quick mode) still shows.
    """
    curves = getattr(history, "history", history)
    figure = Figure(figsize=(6 * len(metrics), 4), layout="constrained")
    for index, metric in enumerate(metrics):
        axes = figure.add_subplot(1, len(metrics), index + 1)
        epochs = np.arange(1, len(curves[metric]) + 1)
        axes.plot(epochs, curves[metric], marker="o", label=say(TRAINING))
        if f"val_{metric}" in curves:
            axes.plot(epochs, curves[f"val_{metric}"], marker="o", label=say(VALIDATION))
        axes.set_xlabel(say(EPOCH))
        axes.set_title(say(MODEL_METRIC, metric=say(METRIC_NAMES.get(metric, metric))))
        axes.grid(alpha=0.3)
        axes.legend()
    return figure


def display_confusion_matrix(labels, predictions, classes: Sequence[str] = CLASSES,
                             title: Optional[str] = None) -> Figure:
    """Confusion matrix with counts in each cell; the diagonal holds the right answers.

    The default title gives the accuracy of these very predictions, so it equals
    `ftl.evaluate(model, shards)["accuracy"]` on the same photos.
    """
    matrix = confusion_matrix(labels, predictions, len(classes))
    figure = Figure(figsize=(6.5, 5.5), layout="constrained")
    axes = figure.add_subplot(1, 1, 1)
    shown = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(shown, ax=axes, shrink=0.8)
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel(say(PREDICTED))
    axes.set_ylabel(say(TRUE))
    threshold = matrix.max() / 2 if matrix.size else 0
    for row in range(len(classes)):
        for column in range(len(classes)):
            axes.text(column, row, str(matrix[row, column]), ha="center", va="center",
                      color="white" if matrix[row, column] > threshold else "black")
    accuracy = np.trace(matrix) / max(1, matrix.sum())
    axes.set_title(title or say(CONFUSION_TITLE, accuracy=accuracy))
    return figure
