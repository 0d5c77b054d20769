"""The course's solutions as ordinary Python: the single source of the solution notebooks' exercise cells.

Each function's body, without its docstring and its final `return`, is the code of one
WORK REQUIRED cell: tools/make_notebooks.py writes it into the solution notebook between
`#### SOLUTION START <exercise>` and `#### SOLUTION END`, `Exercise.solution()` prints it,
and `or_solution()` calls the function itself (no code kept as a string, no `exec`).
The parameters are the notebook's own variables the cell reads, under their notebook names.
"""

import ast
import inspect
import textwrap

from .messages import N_, say

MUST_RETURN = N_("solutions.{name} must end with `return <the exercise's variable>`")


def baseline_model(*, keras, accelerator, IMAGE_SIZE, CLASSES):
    """The first model: one Dense softmax layer on the flattened pixels."""
    with accelerator.scope():
        first_model = keras.Sequential([
            keras.Input(shape=[*IMAGE_SIZE, 3]),
            keras.layers.Rescaling(1 / 255),  # pixels [0, 255] -> [0, 1]
            keras.layers.Flatten(),
            keras.layers.Dense(len(CLASSES), activation="softmax"),
        ])
        first_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return first_model


def baseline_fit(*, ftl, split, IMAGE_SIZE, BATCH_SIZE, PACE, validation_dataset):
    """The first training, with the learner's own model.fit call."""
    model = ftl.exercises.baseline_model.or_solution()  # your first_model if it passed its check, else the course's
    training_dataset = ftl.get_training_dataset(split.training_shards, IMAGE_SIZE, BATCH_SIZE)  # one epoch
    history = model.fit(training_dataset, epochs=PACE.baseline_epochs, validation_data=validation_dataset)
    return history


def transfer_model(*, keras, ftl, accelerator, IMAGE_SIZE, CLASSES):
    """Transfer learning: a frozen pretrained MobileNetV2 with a Flatten and Dense softmax head."""
    with accelerator.scope():
        pretrained_model = keras.applications.MobileNetV2(
            input_shape=[*IMAGE_SIZE, 3], include_top=False, weights=ftl.resolve_weights())
        pretrained_model.trainable = False  # keep the ImageNet features as they are
        transfer_model = keras.Sequential([
            keras.Input(shape=[*IMAGE_SIZE, 3]),
            keras.layers.Rescaling(1 / 127.5, offset=-1),  # pixels [0, 255] -> [-1, 1], as MobileNetV2 expects
            pretrained_model,
            keras.layers.Flatten(),
            keras.layers.Dense(len(CLASSES), activation="softmax"),
        ])
        transfer_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return transfer_model


def cell_code(solution) -> str:
    """The notebook cell of `solution`: its body without the docstring and the final `return`."""
    lines = inspect.getsource(solution).splitlines(keepends=True)
    body = ast.parse("".join(lines)).body[0].body
    first = body[1] if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else body[0]
    if not isinstance(body[-1], ast.Return):
        raise ValueError(say(MUST_RETURN, name=solution.__name__))
    return textwrap.dedent("".join(lines[first.lineno - 1: body[-1].lineno - 1]))


def validation_share():
    """The last chapter: the share of each class's photos kept aside to measure the model."""
    VALIDATION_SHARE = 0.2  # a fifth of the photos: never trained on, they measure the model
    return VALIDATION_SHARE


def worst_class(*, scores):
    """The last chapter: reading the per-class accuracy of `ftl.evaluate`."""
    measured = {name: accuracy for name, accuracy in scores["per_class_accuracy"].items() if accuracy is not None}
    WORST_CLASS = min(measured, key=measured.get)  # the class with the lowest validation accuracy
    return WORST_CLASS
