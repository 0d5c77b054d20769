"""Counting right and wrong answers: the confusion matrix, in numpy alone.

`training.evaluate` reports it and `plots.display_confusion_matrix` draws it; counting
needs neither TensorFlow nor matplotlib.
"""

import numpy as np


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class (`predictions`: classes or probabilities)."""
    predicted = np.asarray(predictions)
    if predicted.ndim == 2:
        predicted = predicted.argmax(axis=-1)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), predicted.astype(np.int64)), 1)
    return matrix
