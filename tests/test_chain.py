"""A mistake stays where it was made: the course run as a chain of cells, with mistakes placed in it.

The solution notebook runs in quick mode in a real Jupyter kernel (nbclient), with one mistake
placed in each exercise cell of a run (mistakes of different exercises share a run: a notebook run
costs about a minute). For every run:
* no cell runs past CELL_TIMEOUT_S (nothing hangs);
* the mistake's own cell shows at most a few lines, and its check says what the mistake is, never
  "Correct"; a correct variant is always "Correct";
* every other cell runs without an error, and no cell shows a log line, a warning or a
  probability outside 0-100 %.
The Russian edition runs a subset. Two more runs: every check cell skipped, and sections run twice
and out of order.
"""

import copy
import os
import re

import nbclient
import nbformat
import pytest
from test_notebooks import REPO
from test_quiet import noise, output_text

from flowers_tl import exercises as ex
from flowers_tl import learner_errors as le
from flowers_tl import messages

CELL_TIMEOUT_S = 240  # the slowest cell of a quick run takes about 10 s
SHORT = 3  # lines a known mistake's error may show: the sentence, then where the full traceback is
PERCENT = re.compile(r"(-?\d+(?:\.\d+)?)\s?%")

BASELINE = ex.baseline_model.solution_code
FIT = ex.baseline_fit.solution_code
TRANSFER = ex.transfer_model.solution_code
FIT_CALL = "history = model.fit(training_dataset, epochs=PACE.baseline_epochs, validation_data=validation_dataset)"


def changed(code: str, old: str, new: str) -> str:
    assert old in code, old
    return code.replace(old, new)


# name: (exercise, the learner's cell, what the cell shows: None or (error message, fields),
#        what the check says: (message, fields) or (singular and plural, fields, count))
MISTAKES = {
    "no-rescaling": ("baseline_model",
                     changed(BASELINE, "        keras.layers.Rescaling(1 / 255),  # pixels [0, 255] -> [0, 1]\n", ""),
                     None, (ex.RAW_PIXELS, {"high": 255})),
    "relu-output": ("baseline_model", changed(BASELINE, 'activation="softmax"', 'activation="relu"'),
                    None, (ex.WRONG_ACTIVATION, {"activation": "relu"})),
    "one-hot-loss": ("baseline_model",
                     changed(BASELINE, '"sparse_categorical_crossentropy"', '"categorical_crossentropy"'),
                     None, (ex.LOSS_NOT_SPARSE, {"loss": "categorical_crossentropy"})),
    "no-metric": ("baseline_model", changed(BASELINE, ', metrics=["accuracy"]', ""), None, (ex.NO_ACCURACY, {})),
    "misspelt-activation": ("baseline_model", changed(BASELINE, '"softmax"', '"softmx"'),
                            (le.UNKNOWN_NAME, {"kind": (le.KIND_ACTIVATION, {}), "name": "softmx"}),
                            (le.NOT_DEFINED, {"variable": "first_model"})),
    "acc-metric": ("baseline_model", changed(BASELINE, '["accuracy"]', '["acc"]'), None, "correct"),
    "validated-on-training-photos": ("baseline_fit", changed(FIT, "validation_data=validation_dataset",
                                                             "validation_data=training_dataset"),
                                     None, (ex.VALIDATED_ON_OTHER_PHOTOS, "starts")),
    "no-validation": ("baseline_fit", changed(FIT, ", validation_data=validation_dataset", ""),
                      None, (ex.NO_VALIDATION, {})),
    "two-epochs": ("baseline_fit", changed(FIT, "epochs=PACE.baseline_epochs", "epochs=2"),
                   None, (ex.WRONG_EPOCHS, {"trained": 2, "epochs": 1}, 2)),
    "fit-not-kept": ("baseline_fit", changed(FIT, "history = model.fit(", "model.fit("),
                     None, (le.NOT_DEFINED, {"variable": "history"})),
    "too-many-steps": ("baseline_fit", changed(FIT, "validation_data=validation_dataset)",
                                               "validation_data=validation_dataset,\n"
                                               "                    steps_per_epoch=split.training_images)"),
                       None, (ex.WRONG_STEPS, "starts")),
    "steps-given": ("baseline_fit", changed(FIT, "validation_data=validation_dataset)",
                                            "validation_data=validation_dataset,\n"
                                            "                    steps_per_epoch=len(training_dataset))"),
                    None, "correct"),
    "no-flatten": ("transfer_model", changed(TRANSFER, "        keras.layers.Flatten(),\n", ""),
                   None, (ex.MISSING_FLATTEN, {"shape": "(None, 6, 6, 5)"})),
    "trainable-backbone": ("transfer_model", changed(TRANSFER, "trainable = False", "trainable = True"),
                           None, (ex.BACKBONE_TRAINABLE, {})),
    "logits-head": ("transfer_model", changed(TRANSFER, '(len(CLASSES), activation="softmax")', "(len(CLASSES))"),
                    None, (ex.WRONG_ACTIVATION, {"activation": "linear"})),
    "pooling-then-flatten": ("transfer_model", changed(TRANSFER, "        keras.layers.Flatten(),\n",
                                                       "        keras.layers.GlobalAveragePooling2D(),\n"
                                                       "        keras.layers.Flatten(),\n"),
                             None, (ex.NOT_THE_FLATTEN_HEAD, {"layers": "GlobalAveragePooling2D, Flatten, Dense"})),
    "include-top": ("transfer_model", changed(TRANSFER, "include_top=False", "include_top=True"),
                    (le.WEIGHTS_WITHOUT_TOP, {}), (le.NOT_DEFINED, {"variable": "transfer_model"})),
    "sparse-accuracy-metric": ("transfer_model", changed(TRANSFER, '["accuracy"]', '["sparse_categorical_accuracy"]'),
                               None, "correct"),
}
RUNS = {  # at most one mistake per exercise in a run
    "raw-pixels": ("no-rescaling", "validated-on-training-photos", "no-flatten"),
    "losses": ("one-hot-loss", "no-validation", "trainable-backbone"),
    "metrics": ("no-metric", "two-epochs", "logits-head"),
    "crashes": ("misspelt-activation", "fit-not-kept", "include-top"),
    "variants": ("acc-metric", "steps-given", "sparse-accuracy-metric"),
    "steps": ("relu-output", "too-many-steps", "pooling-then-flatten"),
}
RUSSIAN_RUNS = ("raw-pixels", "crashes")


def said(message) -> str:
    """The sentence the learner reads in the current language: (text, fields) or (pair, fields, count)."""
    text, fields = message[:2]
    fields = {key: said(value) if isinstance(value, tuple) else value for key, value in fields.items()}
    return messages.say_n(*text, message[2], **fields) if isinstance(text, tuple) else messages.say(text, **fields)


def opening(text, language: str) -> str:
    """What a message says before its first field in `language` (the part every plural form shares)."""
    translations = messages.catalogue(language)
    forms = [translations.ngettext(*text, count) if isinstance(text, tuple) else translations.gettext(text)
             for count in (1, 2, 5)]
    return os.path.commonprefix([form.split("{")[0] for form in forms])


def solution_notebook(language: str):
    folder = "notebooks" if language == "en" else f"notebooks/{language}"
    path = f"{folder}/flowers_tl_solution.ipynb"
    return nbformat.read(REPO / path, as_version=4)


def with_mistakes(notebook, names):
    """The notebook with each named mistake in its exercise's cell (the solution block replaced)."""
    notebook = copy.deepcopy(notebook)
    for name in names:
        exercise, code, _, _ = MISTAKES[name]
        cell = next(cell for cell in notebook.cells if f"#### SOLUTION START {exercise}" in cell.source)
        cell.source = code
        cell.metadata["mistake"] = name
    return notebook


def run(notebook, tmp_path):
    """Execute every cell (errors kept as outputs, a cell past CELL_TIMEOUT_S fails the test)."""
    nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    return notebook


@pytest.fixture
def quick_mode(monkeypatch, real_data_pattern, weights_path):
    for name, value in {"FLOWERS_TL_FAST": "1", "MPLBACKEND": "Agg", "KERAS_BACKEND": "tensorflow"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)  # as on Colab: the package's own default


def errors(cell) -> list:
    return [output for output in cell.get("outputs", []) if output.output_type == "error"]


def first_sentence(cell) -> str:
    """The first line a cell prints or displays."""
    for output in cell.get("outputs", []):
        if output.output_type in ("stream", "display_data") and output_text(output).strip():
            return output_text(output).strip().splitlines()[0]
    return ""


def problems(notebook) -> list:
    """What breaks the chain: errors outside the mistakes' cells, long errors in them, noise, odd percentages."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in errors(cell):
            if "mistake" not in cell.metadata:
                found.append(f"[{cell.id}] {output.ename}: {output.evalue[:300]}")
            elif len(output.traceback) > SHORT:
                found.append(f"[{cell.id}] a {len(output.traceback)}-line error in the learner's cell")
        for output in cell.get("outputs", []):
            text = output_text(output)
            mistakes_warning = "mistake" in cell.metadata and len(text.strip().splitlines()) <= SHORT
            if output.get("name") == "stderr" and not mistakes_warning:  # Keras may warn of the mistake itself
                found.append(f"[{cell.id}] stderr: {text.strip()[:300]}")
            found += [f"[{cell.id}] {line[:300]}" for line in noise(text) if "mistake" not in cell.metadata]
            found += [f"[{cell.id}] {value}%" for value in PERCENT.findall(text) if not 0 <= float(value) <= 100]
    return found


def check_problems(notebook, names, language: str) -> list:
    """Each mistake's cell shows what it should, and its check says what it should (never Correct when wrong)."""
    found = []
    cells = notebook.cells
    messages.set_language(language)
    try:
        correct = said((ex.CORRECT, {"what": "@"})).split("@")[0]
        for name in names:
            exercise, _, error, check = MISTAKES[name]
            index = next(i for i, cell in enumerate(cells) if cell.metadata.get("mistake") == name)
            shown = errors(cells[index])
            if error is None and shown:
                found.append(f"{name}: the cell failed: {shown[0].evalue[:200]}")
            if error is not None and (len(shown) != 1 or not shown[0].traceback[0].endswith(": " + said(error))):
                lines = [output.traceback[:1] for output in shown]
                found.append(f"{name}: the cell shows {lines}, not {said(error)!r}")
            verdict = first_sentence(cells[index + 1])
            if check == "correct":
                if not verdict.startswith(correct):
                    found.append(f"{name}: a correct variant was told {verdict!r}")
                continue
            expected = opening(check[0], language) if check[1] == "starts" else said(check)
            if verdict.startswith(correct) or not verdict.startswith(expected):
                found.append(f"{name}: the check says {verdict!r}, not {expected!r}")
    finally:
        messages.set_language("en")
    return found


@pytest.mark.parametrize("run_name", RUNS)
def test_a_mistake_breaks_no_cell_below_it(run_name, quick_mode, tmp_path):
    notebook = run(with_mistakes(solution_notebook("en"), RUNS[run_name]), tmp_path)
    found = problems(notebook) + check_problems(notebook, RUNS[run_name], "en")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("run_name", RUSSIAN_RUNS)
def test_a_mistake_breaks_no_cell_below_it_in_russian(run_name, quick_mode, tmp_path):
    notebook = run(with_mistakes(solution_notebook("ru"), RUNS[run_name]), tmp_path)
    found = problems(notebook) + check_problems(notebook, RUNS[run_name], "ru")
    assert not found, "\n".join(found)


def test_every_mistake_is_placed_and_every_exercise_has_mistakes():
    placed = [name for names in RUNS.values() for name in names]
    assert sorted(placed) == sorted(MISTAKES) and len(placed) >= 12
    assert {MISTAKES[name][0] for name in placed} == {"baseline_model", "baseline_fit", "transfer_model"}
    for names in RUNS.values():
        assert len({MISTAKES[name][0] for name in names}) == len(names)


RERUN = ["transfer-check", "train", "summary", "baseline-check", "train", "curves", "transfer-check", "summary",
         "baseline-result", "baseline-train", "baseline-result", "predictions", "confusion", "final-accuracy"]


@pytest.fixture(scope="module")
def skipped_and_rerun(tmp_path_factory, real_data_pattern, weights_path):
    """The solution notebook with every check cell left out, then cells of its sections run again,
    out of order (RERUN, marked "rerun")."""
    mp = pytest.MonkeyPatch()
    for name, value in {"FLOWERS_TL_FAST": "1", "MPLBACKEND": "Agg", "KERAS_BACKEND": "tensorflow"}.items():
        mp.setenv(name, value)
    mp.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    try:
        source = solution_notebook("en")
        cells = {cell.id: cell for cell in source.cells}
        notebook = copy.deepcopy(source)
        notebook.cells = [cell for cell in notebook.cells if not cell.id.endswith("-check")]
        for number, cell_id in enumerate(RERUN):
            again = copy.deepcopy(cells[cell_id])
            again.id, again.metadata["rerun"] = f"rerun-{number}", cell_id
            notebook.cells.append(again)
        return run(notebook, tmp_path_factory.mktemp("rerun"))
    finally:
        mp.undo()


def test_skipping_every_check_cell_breaks_nothing(skipped_and_rerun):
    first_pass = copy.deepcopy(skipped_and_rerun)
    first_pass.cells = [cell for cell in first_pass.cells if "rerun" not in cell.metadata]
    assert not any(cell.id.endswith("-check") for cell in first_pass.cells)
    found = problems(first_pass)
    assert not found, "\n".join(found)


def test_running_sections_twice_and_out_of_order_breaks_nothing(skipped_and_rerun):
    rerun = [cell for cell in skipped_and_rerun.cells if "rerun" in cell.metadata]
    assert [cell.metadata["rerun"] for cell in rerun] == RERUN
    found = problems(skipped_and_rerun)
    assert not found, "\n".join(found)
    checks = [first_sentence(cell) for cell in rerun if cell.metadata["rerun"].endswith("-check")]
    assert checks and all(sentence.startswith("Correct") for sentence in checks), checks
