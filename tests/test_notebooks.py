"""Every course notebook runs end to end under nbval, offline, on the real data, in quick mode.

nbval runs in a fresh pytest process per notebook (a Jupyter kernel of this environment), on
copies in a temporary folder so that the saved model does not land in the repository. With
`--nbval-lax` only the cells tagged `nbval-check-output` have their outputs compared: the tests
tag the playground's check cells and write the verdict each must display (its plain text and its
coloured HTML), so nbval itself asserts "not attempted" on the playground as shipped and "Correct"
once it is filled in.
"""

import copy
import os
import pathlib
import re
import subprocess
import sys

import nbformat
import pytest

from flowers_tl import exercises, messages

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK_TIMEOUT_S = 900


def run_nbval(notebook, folder: pathlib.Path, name: str):
    """Write `notebook` to `folder/name` and run nbval on it; return the finished process."""
    path = folder / name
    nbformat.write(notebook, path)
    env = {**os.environ, "FLOWERS_TL_FAST": "1", "MPLBACKEND": "Agg", "KERAS_BACKEND": "tensorflow"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
         "-q", str(path)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=NOTEBOOK_TIMEOUT_S)


def assert_passed(result):
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


def expect_output(cell, verdict):
    """Make nbval compare what this cell displays with `verdict` (an exercises.Verdict)."""
    cell.metadata.setdefault("tags", []).append("nbval-check-output")
    cell.outputs = [nbformat.v4.new_output("display_data", data=verdict._repr_mimebundle_())]
    cell.execution_count = 1  # nbval only compares with cells that were run


def check_cells(notebook):
    """{exercise name: its check cell} (the generator names a check cell '<work cell id>-check')."""
    found = re.compile(r"ftl\.exercises\.(\w+)\.check\(")
    return {found.search(cell.source).group(1): cell for cell in notebook.cells if cell.id.endswith("-check")}


def filled_in(playground, solution):
    """The playground with the solution's code in each WORK REQUIRED cell."""
    notebook = copy.deepcopy(playground)
    solution_sources = {cell.id: cell.source for cell in solution.cells}
    for check in check_cells(notebook).values():
        work_cell_id = check.id[: -len("-check")]
        cell = next(cell for cell in notebook.cells if cell.id == work_cell_id)
        cell.source = solution_sources[work_cell_id]
    return notebook


# The solution notebooks run once, in test_quiet.py, which also fails on any log line in their outputs.


@pytest.mark.parametrize("path", ["notebooks/flowers_tl_playground.ipynb", "notebooks/ru/flowers_tl_playground.ipynb"])
def test_playground_as_shipped_runs_and_says_not_attempted(path, tmp_path, real_data_pattern, weights_path):
    notebook = nbformat.read(REPO / path, as_version=4)
    cells = check_cells(notebook)
    assert set(cells) == {"baseline_model", "baseline_fit", "transfer_model"}
    messages.set_language("ru" if "/ru/" in path else "en")  # the language the notebook chooses
    try:
        expected = exercises.Verdict(None, messages.say(exercises.NOT_ATTEMPTED))
    finally:
        messages.set_language("en")
    for cell in cells.values():
        expect_output(cell, expected)
    assert_passed(run_nbval(notebook, tmp_path, "playground.ipynb"))


def test_playground_filled_in_says_correct(tmp_path, real_data_pattern, weights_path):
    playground = nbformat.read(REPO / "notebooks/flowers_tl_playground.ipynb", as_version=4)
    solution = nbformat.read(REPO / "notebooks/flowers_tl_solution.ipynb", as_version=4)
    notebook = filled_in(playground, solution)
    assert not any("= ____" in cell.source for cell in notebook.cells)
    for name, cell in check_cells(notebook).items():
        exercise = exercises.EXERCISES[name]
        expect_output(cell, exercises.Verdict(True, exercises.CORRECT.format(what=exercise.what)))
    assert_passed(run_nbval(notebook, tmp_path, "playground_filled.ipynb"))


def test_nbval_notices_a_wrong_check_sentence(tmp_path, real_data_pattern, weights_path):
    """The check-output mechanism above can fail: a wrong expected sentence is reported."""
    notebook = nbformat.read(REPO / "notebooks/flowers_tl_playground.ipynb", as_version=4)
    keep = {"install", "imports", "config", "baseline", "baseline-check"}
    notebook.cells = [cell for cell in notebook.cells if cell.id in keep]
    expect_output(check_cells(notebook)["baseline_model"], exercises.Verdict(True, exercises.CORRECT.format(what="anything")))
    result = run_nbval(notebook, tmp_path, "wrong.ipynb")
    assert result.returncode != 0 and "Not attempted" in result.stdout
