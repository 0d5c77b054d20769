"""Plots for the course: sample images, predictions, training curves, confusion matrix.

Every function draws on a new `matplotlib.figure.Figure` (no global pyplot state,
so it works headless and in tests) and returns it; in a notebook, a returned
figure is shown as the cell's output.
"""

from typing import Optional, Sequence

import numpy as np
from matplotlib.figure import Figure

from .data import CLASSES, images_and_labels
from .messages import N_, class_name, say
from .scores import accuracy_name, check_probabilities, confusion_matrix

# Labels drawn on the plots (English; flowers_tl/messages.py holds their Russian)
TRAINING = N_("training")
VALIDATION = N_("validation")
EPOCH = N_("epoch")
MODEL_METRIC = N_("model {metric}")
PREDICTED = N_("predicted")
TRUE = N_("true")
CONFUSION_TITLE = N_("confusion matrix (accuracy {accuracy:.3f})")
METRIC_NAMES = {"loss": N_("loss"), "accuracy": N_("accuracy")}
WHERE_IT_LOOKS = N_("where it looks for {predicted}")
TOP_LOSS_TITLE = N_("#{index} true: {true}\npredicted: {predicted} ({probability:.0%})")  # evaluate's list: #N
LOSS_TITLE = N_("loss {loss:.2f}")
TOP_LOSSES_TITLE = N_("the {count} validation photos with the highest loss")
YOUR_PHOTO = N_("your photo")
FINE_TUNING_STARTS = N_("fine-tuning starts")
PROBABILITY = N_("probability")

RIGHT_COLOR = "black"
WRONG_COLOR = "red"
# a heatmap over a photo: enough heat to see where, enough photo to see what
HEAT_STYLE = {"cmap": "jet", "alpha": 0.45, "vmin": 0.0, "vmax": 1.0}


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
    return _image_grid(images, [class_name(classes[label]) for label in labels], [RIGHT_COLOR] * len(images))


def display_9_images_with_predictions(images, predictions, labels,
                                      classes: Sequence[str] = CLASSES) -> Figure:
    """Images titled with the predicted class; wrong ones in red with the right answer.

    `predictions` may be class indices or probability rows (as `model.predict` returns).
    """
    predicted = np.asarray(predictions)
    if predicted.ndim == 2:
        predicted = predicted.argmax(axis=-1)
    titles, colors = zip(*(_prediction_title(int(guess), int(truth), classes)
                           for guess, truth in zip(predicted[:9], np.asarray(labels)[:9])))
    return _image_grid(list(images)[:9], titles, colors)


def display_training_curves(history, metrics: Sequence[str] = ("loss", "accuracy"),
                            fine_tune_start: Optional[int] = None) -> Figure:
    """Training vs validation curves per epoch, one panel per metric.

    `history` is a Keras `History`, its `.history` dict, or a `TrainingResult`. Every epoch is
    marked with a dot, so that one epoch (quick mode) still shows. "accuracy" is found under
    whatever name the model was compiled with ("acc", "sparse_categorical_accuracy").
    `fine_tune_start`: for the head's epochs followed by fine-tuning's on one axis, the first
    fine-tuning epoch (1-based, the head's epochs + 1), marked with a dashed vertical line and a
    legend entry.
    """
    curves = getattr(history, "history", history)
    figure = Figure(figsize=(6 * len(metrics), 4), layout="constrained")
    for index, name in enumerate(metrics):
        metric = accuracy_name(curves) if name == "accuracy" and name not in curves else name
        axes = figure.add_subplot(1, len(metrics), index + 1)
        epochs = np.arange(1, len(curves[metric]) + 1)
        axes.plot(epochs, curves[metric], marker="o", label=say(TRAINING))
        if f"val_{metric}" in curves:
            axes.plot(epochs, curves[f"val_{metric}"], marker="o", label=say(VALIDATION))
        if fine_tune_start is not None:  # between the head's last epoch and fine-tuning's first
            axes.axvline(fine_tune_start - 0.5, color="gray", linestyle="--", label=say(FINE_TUNING_STARTS))
        axes.set_xlabel(say(EPOCH))
        axes.set_title(say(MODEL_METRIC, metric=say(METRIC_NAMES.get(name, name))))
        axes.grid(alpha=0.3)
        axes.legend()
    return figure


def display_confusion_matrix(labels, predictions, classes: Sequence[str] = CLASSES,
                             title: Optional[str] = None) -> Figure:
    """Confusion matrix with counts in each cell; the diagonal holds the right answers.

    The default title gives the accuracy of these very predictions, so it equals
    `ftl.evaluate(model, shards)["accuracy"]` on the same photos.
    """
    return display_confusion_counts(confusion_matrix(labels, predictions, len(classes)), classes, title)


def display_confusion_counts(matrix, classes: Sequence[str] = CLASSES, title: Optional[str] = None) -> Figure:
    """The confusion matrix drawn from its counts (row: true class, column: predicted), as
    `ftl.evaluate(...)["confusion_matrix"]` gives them; the default title gives their accuracy."""
    matrix = np.asarray(matrix, dtype=np.int64)
    figure = Figure(figsize=(6.5, 5.5), layout="constrained")
    axes = figure.add_subplot(1, 1, 1)
    shown = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(shown, ax=axes, shrink=0.8)
    names = [class_name(name) for name in classes]
    axes.set_xticks(range(len(classes)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), names)
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


def _prediction_title(guess: int, truth: int, classes: Sequence[str]):
    """(title, color): the predicted class; a wrong one in red with the right answer."""
    if guess == truth:
        return class_name(classes[guess]), RIGHT_COLOR
    return f"{class_name(classes[guess])} \u2260 {class_name(classes[truth])}", WRONG_COLOR


def _show_photo(axes, photo) -> None:
    axes.imshow(np.clip(np.asarray(photo), 0, 255).astype("uint8"))
    axes.axis("off")


def overlay_heatmap(photo, heatmap, axes=None) -> Figure:
    """A photo (pixels [0, 255]) under its heatmap ([H, W] in [0, 1]): red where the model looks.

    Draws on `axes` when given (to compose bigger figures), else on a new figure.
    """
    if axes is None:
        axes = Figure(figsize=(4, 4), layout="constrained").add_subplot(1, 1, 1)
    _show_photo(axes, photo)
    axes.imshow(np.asarray(heatmap), **HEAT_STYLE)
    return axes.figure


def display_9_images_with_heatmaps(images, predictions, labels, heatmaps,
                                   classes: Sequence[str] = CLASSES) -> Figure:
    """Up to 9 photos under their heatmaps, titled like `display_9_images_with_predictions`.

    `predictions`: class indices or probability rows; `heatmaps`: [N, H, W] in [0, 1]
    (`ftl.explain_predictions(model, images).heatmaps`).
    """
    predicted = np.asarray(predictions)
    if predicted.ndim == 2:
        predicted = predicted.argmax(axis=-1)
    count = min(9, len(predicted))
    figure = Figure(figsize=(9.6, 3.4 * int(np.ceil(count / 3))), layout="constrained")
    for index in range(count):
        axes = figure.add_subplot(int(np.ceil(count / 3)), 3, index + 1)
        overlay_heatmap(images[index], heatmaps[index], axes)
        title, color = _prediction_title(int(predicted[index]), int(labels[index]), classes)
        axes.set_title(title, color=color, fontsize=11)
    return figure


def display_top_losses(losses, classes: Sequence[str] = CLASSES, columns: int = 3) -> Figure:
    """The photos the model gets most wrong (`ftl.top_losses`): photo, its number (#N, as `evaluate
    --top-losses` lists it), true and predicted class, probability, and, when computed, the heatmap
    of the predicted class next to it."""
    pair = 2 if any(item.heatmap is not None for item in losses) else 1
    rows = max(1, int(np.ceil(len(losses) / columns)))
    figure = Figure(figsize=(3.0 * columns * pair, 3.5 * rows), layout="constrained")
    for index, item in enumerate(losses):
        axes = figure.add_subplot(rows, columns * pair, index * pair + 1)
        _show_photo(axes, item.photo)
        axes.set_title(say(TOP_LOSS_TITLE, index=item.index, true=class_name(classes[item.true_class]),
                           predicted=class_name(classes[item.predicted_class]), probability=item.probability),
                       color=WRONG_COLOR if item.true_class != item.predicted_class else RIGHT_COLOR,
                       fontsize=10)
        if pair == 2:
            heat_axes = figure.add_subplot(rows, columns * pair, index * pair + 2)
            if item.heatmap is not None:
                overlay_heatmap(item.photo, item.heatmap, heat_axes)
            heat_axes.axis("off")
            heat_axes.set_title(say(LOSS_TITLE, loss=item.loss), fontsize=10)
    figure.suptitle(say(TOP_LOSSES_TITLE, count=len(losses)))
    return figure


def display_picture_prediction(photo, probabilities, heatmap,
                               classes: Sequence[str] = CLASSES) -> Figure:
    """One photo (yours): the photo, the bar chart of the class probabilities, and the heatmap
    of the predicted class. ConfigError when `probabilities` are not probabilities (a model without softmax)."""
    probabilities = check_probabilities(probabilities)
    best = int(probabilities.argmax())
    figure = Figure(figsize=(12, 3.8), layout="constrained")
    photo_axes, bar_axes, heat_axes = (figure.add_subplot(1, 3, index) for index in (1, 2, 3))
    _show_photo(photo_axes, photo)
    photo_axes.set_title(say(YOUR_PHOTO))
    colors = ["tab:red" if index == best else "tab:blue" for index in range(len(classes))]
    bar_axes.barh(range(len(classes)), probabilities, color=colors)
    bar_axes.set_yticks(range(len(classes)), [class_name(name) for name in classes])
    bar_axes.invert_yaxis()  # the first class on top, as in the list
    bar_axes.set_xlim(0, 1)
    bar_axes.set_xlabel(say(PROBABILITY))
    for index, value in enumerate(probabilities):
        bar_axes.text(min(value + 0.02, 0.85), index, f"{value:.1%}", va="center")
    overlay_heatmap(photo, heatmap, heat_axes)
    heat_axes.set_title(say(WHERE_IT_LOOKS, predicted=class_name(classes[best])))
    return figure


def display_photos_per_class(photos_per_class, per_class: int = 6, size: int = 128) -> Figure:
    """A row of up to `per_class` photos for each class, the row titled with the class and its count.

    `photos_per_class`: {class name: photo paths}, e.g. `ftl.check_photos(folder).photos`. The photos
    are shown as the model will see them: upright, cropped to a square (`pictures.load_picture`).
    """
    from .pictures import load_picture

    rows = max(1, len(photos_per_class))
    figure = Figure(figsize=(1.7 * per_class, 1.9 * rows), layout="constrained")
    for row, (name, paths) in enumerate(photos_per_class.items()):
        for column, path in enumerate(list(paths)[:per_class]):
            axes = figure.add_subplot(rows, per_class, row * per_class + column + 1)
            _show_photo(axes, load_picture(path, size, notes=None))
            if column == 0:
                axes.set_title(f"{class_name(name)} ({len(paths)})", loc="left", fontsize=11)
    return figure
