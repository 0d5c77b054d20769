"""A learner's run of the playground, in quick mode, with wrong, crashing and right answers.

The notebook's set-up cells run in a real Jupyter kernel, then each exercise is attempted several
times the way a learner would: a cell with a mistake, then the exercise's check cell. The test
asserts what the learner reads: no wrong or unfinished attempt is ever graded "Correct", each check
names the fix, and a known mistake that crashes the learner's cell shows a short message (the full
traceback is one `%tb` away), while an unknown error keeps IPython's usual traceback.
Both languages: the Russian run chooses ftl.set_language("ru") as the Russian edition does.
"""

import copy
import pathlib

import nbclient
import nbformat
import pytest

from flowers_tl import exercises as ex
from flowers_tl import learner_errors as le
from flowers_tl import messages

REPO = pathlib.Path(__file__).resolve().parents[1]
SET_UP = ["install", "imports", "versions", "config", "look"]
SHORT_TRACEBACK_LINES = 3

BASELINE = """with accelerator.scope():
    first_model = keras.Sequential([
        keras.Input(shape=[*IMAGE_SIZE, 3]),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Flatten(),
        keras.layers.Dense(len(CLASSES), activation={activation!r}),
    ])
    first_model.compile(optimizer="adam", loss={loss!r}, metrics=["accuracy"])"""
FIT = """model = ftl.exercises.baseline_model.or_solution()
training_dataset = ftl.get_training_dataset(split.training_shards, IMAGE_SIZE, BATCH_SIZE)
history = {model}.fit(training_dataset, {arguments})"""
TRANSFER = """with accelerator.scope():
    pretrained_model = keras.applications.MobileNetV2(
        input_shape={backbone_shape}, include_top={include_top}, weights=ftl.resolve_weights())
    pretrained_model.trainable = {trainable}
    transfer_model = keras.Sequential([
        keras.Input(shape={input_shape}),
        keras.layers.Rescaling(1 / 127.5, offset=-1),
        pretrained_model,
        keras.layers.Flatten(),
        keras.layers.Dense(len(CLASSES), activation="softmax"),
    ])
    transfer_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])"""


def transfer(backbone_shape="[*IMAGE_SIZE, 3]", include_top=False, trainable=False, input_shape="[*IMAGE_SIZE, 3]"):
    return TRANSFER.format(backbone_shape=backbone_shape, include_top=include_top, trainable=trainable,
                           input_shape=input_shape)


def attempts():
    """(exercise name, the learner's cell, the error it shows or None, what the check must print)."""
    baseline, fit, transfer_ = ex.baseline_model, ex.baseline_fit, ex.transfer_model
    sparse = "sparse_categorical_crossentropy"
    return [
        ("baseline_model", BASELINE.format(activation="relu", loss=sparse), None,
         (ex.WRONG_ACTIVATION, {"activation": "relu"})),
        ("baseline_model", BASELINE.format(activation="softmx", loss=sparse),  # a typo: Keras' error, named
         (le.UNKNOWN_NAME, {"kind": (le.KIND_ACTIVATION, {}), "name": "softmx"}), (ex.NOT_FINISHED, {})),
        ("baseline_model", BASELINE.format(activation="softmax", loss=sparse).replace(  # an error the course
            "with accelerator.scope():", "with accelerator.scope():\n    1 / 0"), "unknown",  # does not know
         (ex.NOT_FINISHED, {})),
        ("baseline_model", BASELINE.format(activation="softmax", loss="categorical_crossentropy"), None,
         (ex.LOSS_NOT_SPARSE, {"loss": "categorical_crossentropy"})),
        ("baseline_fit", FIT.format(model="first_model",  # the failed model itself, not the one handed on
                                    arguments="epochs=PACE.baseline_epochs, validation_data=validation_dataset"
                                    ).replace("model = ftl.exercises.baseline_model.or_solution()\n", ""),
         (le.LABELS_NOT_ONE_HOT, {}), (le.NOT_DEFINED, {"variable": "history"})),  # check: not there yet
        ("baseline_model", baseline.solution_code, None, (ex.CORRECT, {"what": baseline.what})),
        ("baseline_fit", FIT.format(model="model", arguments="epochs=PACE.baseline_epochs"), None,
         (ex.NO_VALIDATION, {})),
        ("baseline_fit", FIT.format(model="model", arguments="epochs=2, validation_data=validation_dataset"), None,
         (ex.WRONG_EPOCHS, {"trained": 2, "epochs": 1}, 2)),
        ("baseline_fit", fit.solution_code, None, (ex.CORRECT, {"what": fit.what})),
        ("transfer_model", transfer_.stub, None, (ex.NOT_ATTEMPTED, {})),
        ("transfer_model", transfer(trainable="____"), (le.BLANK_LEFT, {}), (ex.NOT_FINISHED, {})),
        ("transfer_model", transfer(include_top=True), (le.WEIGHTS_WITHOUT_TOP, {}), (ex.NOT_FINISHED, {})),
        ("transfer_model", transfer(input_shape="IMAGE_SIZE"), (le.WRONG_IMAGE_SHAPE, {"shape": "(None, 192, 192)"}),
         (ex.NOT_FINISHED, {})),
        ("transfer_model", transfer(trainable=True), None, (ex.BACKBONE_TRAINABLE, {})),
        ("train", "model = ftl.exercises.transfer_model.or_solution()\n"  # the course's model, saying so
                  "result = ftl.train(model, split, epochs=EPOCHS, accelerator=accelerator, verbose=0)",
         None, (ex.USING_COURSE_MODEL, {"why": (ex.WHY_INCORRECT, {})})),
        ("transfer_model", transfer_.solution_code, None, (ex.CORRECT, {"what": transfer_.what})),
    ]


def said(message):
    """The sentence the learner reads, in the language of the run (fields translated too).

    `message`: (text, fields), or (singular and plural, fields, the count they agree with)."""
    text, fields = message[:2]
    fields = {key: said(value) if isinstance(value, tuple) else messages.translate(value)
              if key == "what" else value for key, value in fields.items()}
    if isinstance(text, tuple):
        return messages.say_n(*text, message[2], **fields)
    return messages.say(text, **fields)


def learner_notebook(language: str):
    """The playground's set-up cells, then every attempt followed by its exercise's check cell."""
    playground = nbformat.read(REPO / "notebooks/flowers_tl_playground.ipynb", as_version=4)
    cells = {cell.id: cell for cell in playground.cells}
    notebook = copy.deepcopy(playground)
    notebook.cells = [copy.deepcopy(cells[name]) for name in SET_UP]
    notebook.cells[1].source = notebook.cells[1].source.replace('language="en"', f'language="{language}"')
    for index, (name, source, _, _) in enumerate(attempts()):
        notebook.cells.append(nbformat.v4.new_code_cell(source, id=f"attempt-{index}"))
        if name in ex.EXERCISES:
            notebook.cells.append(nbformat.v4.new_code_cell(ex.EXERCISES[name].check_call(), id=f"check-{index}"))
    return notebook


def errors(cell) -> list:
    return [output for output in cell.outputs if output.output_type == "error"]


def first_line(cell) -> str:
    """What a cell says first: its first printed or displayed sentence, or the short message of its error."""
    for output in cell.outputs:
        text = output.text if output.output_type == "stream" else output.get("data", {}).get("text/plain", "")
        if output.output_type in ("stream", "display_data") and text.strip():
            return text.splitlines()[0]
        if output.output_type == "error" and len(output.traceback) <= SHORT_TRACEBACK_LINES:
            return output.traceback[0].split(": ", 1)[1]
    return ""


@pytest.mark.parametrize("language", ["en", "ru"])
def test_learner_run_never_grades_a_wrong_or_unfinished_attempt_correct(language, tmp_path, monkeypatch,
                                                                         real_data_pattern, weights_path):
    monkeypatch.setenv("FLOWERS_TL_FAST", "1")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    notebook = learner_notebook(language)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    cells = {cell.id: cell for cell in notebook.cells}
    for name in SET_UP:
        assert not errors(cells[name]), f"set-up cell {name} failed: {errors(cells[name])}"
    messages.set_language(language)
    try:
        expected = [(index, said(error) if isinstance(error, tuple) else error, said(check) if check else None)
                    for index, (_, _, error, check) in enumerate(attempts())]
        correct_start = said((ex.CORRECT, {"what": "@"})).split("@")[0]
    finally:
        messages.set_language("en")
    for index, error, check in expected:
        attempt = cells[f"attempt-{index}"]
        shown = errors(attempt)
        if error is None:
            assert not shown, f"attempt {index} failed: {shown}"
        elif error == "unknown":  # an error the course does not know: IPython's full traceback, unchanged
            assert len(shown) == 1 and len(shown[0].traceback) > SHORT_TRACEBACK_LINES
        else:
            assert len(shown) == 1 and len(shown[0].traceback) <= SHORT_TRACEBACK_LINES, shown
            assert shown[0].traceback[0].endswith(": " + error)
            assert "%tb" in shown[0].traceback[-1]
        if check is not None:
            check_cell = cells.get(f"check-{index}", attempt)  # no check cell: what the cell itself says
            sentence = first_line(check_cell)
            assert sentence == check, f"attempt {index}: {check_cell.outputs}"
            if not check.startswith(correct_start):
                assert not sentence.startswith(correct_start)
