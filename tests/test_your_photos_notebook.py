"""The last chapter's notebooks, your own photos, run end to end on a real photo folder.

The folder (`photos_folder`: daisy, rose and tulip, 30 real photos each) is given as a learner's
through FLOWERS_TL_PHOTOS; the notebooks run in quick mode. The solution editions run with nbclient
and, as tests/test_quiet.py does for the course's notebook, no cell may show stderr, a log line or a
warning; their outputs are then read: the check's table, the exercises' verdicts, the files of the
top losses, and the printed `flowers-tl predict` command, which is run. The playground runs under
nbval as shipped, its check cells saying "not attempted".
"""

import os
import shlex
import subprocess
import sys

import nbformat
import pytest
from test_notebooks import REPO, assert_passed, check_cells, expect_output, run_nbval
from test_quiet import output_text, run_without_log_lines

from conftest import PHOTO_CLASSES, PHOTOS_PER_CLASS
from flowers_tl import exercises, messages, photo_checks


def in_language(language, text, **fields):
    """`text` said in `language` (the language the notebook chooses)."""
    messages.set_language(language)
    try:
        return messages.say(text, **fields)
    finally:
        messages.set_language("en")


def outputs_of(notebook):
    """{cell id: [(output type, its plain text, its html)]} of an executed notebook."""
    return {cell.id: [(output.output_type, output_text(output), output.get("data", {}).get("text/html", ""))
                      for output in cell.get("outputs", [])] for cell in notebook.cells}


@pytest.mark.parametrize("path", ["notebooks/flowers_tl_your_photos.ipynb", "notebooks/ru/flowers_tl_your_photos.ipynb"])
def test_the_notebook_runs_on_a_real_folder_without_log_lines(path, tmp_path, monkeypatch, capfd, photos_folder,
                                                              weights_path):
    language = "ru" if "/ru/" in path else "en"
    for name, value in {"FLOWERS_TL_FAST": "1", "MPLBACKEND": "Agg", "KERAS_BACKEND": "tensorflow",
                        "FLOWERS_TL_PHOTOS": str(photos_folder)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)  # as on Colab: the package's own default
    notebook = run_without_log_lines(REPO / path, tmp_path, capfd)

    outputs = outputs_of(notebook)
    (_, table, page), = outputs["photos-checked"]
    photos = len(PHOTO_CLASSES) * PHOTOS_PER_CLASS
    assert "<table>" in page and in_language(language, photo_checks.NO_PROBLEM, photos=photos, classes=3) in table
    for exercise in (exercises.validation_share, exercises.worst_class):
        (_, verdict, _), = outputs[f"photos-{'share' if exercise is exercises.validation_share else 'worst'}-check"]
        assert verdict == in_language(language, exercises.CORRECT,
                                      what=in_language(language, exercise.what))
    listed = outputs["photos-top-loss-files"][0][1].splitlines()
    assert len(listed) == 6
    for line in listed:
        number, path_shown = line.split(": ")[0].split(" ", 1)
        assert number.startswith("#") and path_shown.startswith(str(photos_folder)) and os.path.isfile(path_shown)
    command = outputs["photos-save"][0][1].strip().splitlines()[-1]
    assert command.startswith("flowers-tl predict my_photos_model.keras ")
    if language == "en":  # the command the learner is given classifies the photo with their classes
        arguments = shlex.split(command)[1:]
        result = subprocess.run([sys.executable, "-m", "flowers_tl", *arguments], cwd=tmp_path, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        picture, answer = result.stdout.strip().rsplit(": ", 1)
        assert picture == arguments[-1] and answer.split(" (")[0] in PHOTO_CLASSES


def test_the_playground_as_shipped_runs_and_says_not_attempted(tmp_path, monkeypatch, photos_folder, weights_path):
    monkeypatch.setenv("FLOWERS_TL_PHOTOS", str(photos_folder))
    notebook = nbformat.read(REPO / "notebooks/flowers_tl_your_photos_playground.ipynb", as_version=4)
    cells = check_cells(notebook)
    assert set(cells) == {"validation_share", "worst_class"}
    for cell in cells.values():
        expect_output(cell, exercises.Verdict(None, exercises.NOT_ATTEMPTED))
    assert_passed(run_nbval(notebook, tmp_path, "your_photos_playground.ipynb"))
