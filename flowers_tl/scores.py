"""Counting right and wrong answers: the confusion matrix, in numpy alone.

`training.evaluate` reports it and `plots.display_confusion_matrix` draws it; counting
needs neither TensorFlow nor matplotlib.
"""

import numpy as np

from .messages import N_, say


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class (`predictions`: classes or probabilities)."""
    predicted = np.asarray(predictions)
    if predicted.ndim == 2:
        predicted = predicted.argmax(axis=-1)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), predicted.astype(np.int64)), 1)
    return matrix


# The names Keras logs an accuracy metric under, as compiled with metrics=[...]: "accuracy" and "acc"
# keep the name written; SparseCategoricalAccuracy() logs its class's name.
ACCURACY_NAMES = ("accuracy", "acc", "sparse_categorical_accuracy")

NO_ACCURACY = N_("no {metric} in this history (it holds {keys}): compile the model with metrics=['accuracy'], "
                 "and pass validation_data to fit")
PREDICTIONS = N_("The predictions")
NOT_PROBABILITIES = N_("{what} are not probabilities (values from {low:.3g} to {high:.3g}, rows adding up to "
                       "{total:.3g}): the model's last layer needs activation='softmax'.")


def accuracy_name(history: dict, validation: bool = False) -> str:
    """The key of the accuracy in a Keras history (`History.history` or `TrainingResult.history`).

    `model.fit` names each metric as it was compiled: metrics=["accuracy"] logs "accuracy" and
    "val_accuracy", metrics=["acc"] logs "acc" and "val_acc". KeyError naming the keys when the
    history holds no accuracy at all.
    """
    prefix = "val_" if validation else ""
    for name in ACCURACY_NAMES:
        if prefix + name in history:
            return prefix + name
    metric = prefix + "accuracy"
    raise KeyError(say(NO_ACCURACY, metric=metric, keys=sorted(history)))


def check_probabilities(probabilities, what: str = PREDICTIONS) -> np.ndarray:
    """`probabilities` as a float array, after checking each row is a probability distribution.

    A model that ends without softmax gives scores ("logits") such as -200 or 151: drawn as
    percentages they would read "-200 %". ConfigError (`NOT_PROBABILITIES`, translated) instead.
    """
    from .errors import ConfigError

    values = np.asarray(probabilities, dtype=np.float64)
    totals = values.sum(axis=-1)
    if values.size and (values.min() < -1e-3 or values.max() > 1 + 1e-3 or np.abs(totals - 1).max() > 1e-2):
        worst = totals.flat[int(np.abs(totals - 1).argmax())]
        raise ConfigError(say(NOT_PROBABILITIES, what=say(what), low=values.min(), high=values.max(), total=worst))
    return values


def validation_accuracy(history) -> list:
    """The validation accuracy after each epoch, from what `model.fit` or `ftl.train` returned.

    `history`: a Keras `History`, a `TrainingResult`, or their `.history` dict; the metric may
    have been compiled as "accuracy", "acc" or "sparse_categorical_accuracy" (`accuracy_name`).
    """
    values = getattr(history, "history", history)
    return [float(value) for value in values[accuracy_name(values, validation=True)]]
