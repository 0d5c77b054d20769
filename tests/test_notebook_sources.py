"""The committed notebooks are exactly what tools/make_notebooks.py generates from the solution.

Fast: nothing is executed here (tests/test_notebooks.py runs the notebooks).
"""

import io
import json
import pathlib
import re
import subprocess
import sys
import tokenize

import nbformat
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import make_notebooks  # noqa: E402

NOTEBOOKS = ["notebooks/flowers_tl_solution.ipynb", "notebooks/flowers_tl_playground.ipynb",
             "notebooks/ru/flowers_tl_solution.ipynb", "notebooks/ru/flowers_tl_playground.ipynb",
             "notebooks/flowers_tl_your_photos.ipynb", "notebooks/flowers_tl_your_photos_playground.ipynb",
             "notebooks/ru/flowers_tl_your_photos.ipynb", "notebooks/ru/flowers_tl_your_photos_playground.ipynb"]
# (solution, playground) of each course: the course, and its last chapter on your own photos
EDITIONS = [("flowers_tl_solution.ipynb", "flowers_tl_playground.ipynb"),
            ("flowers_tl_your_photos.ipynb", "flowers_tl_your_photos_playground.ipynb")]
BADGE = re.compile(r"https://colab\.research\.google\.com/github/([\w.-]+)/([\w.-]+)/blob/main/(\S+?\.ipynb)\)")


@pytest.fixture(scope="module")
def generated():
    return make_notebooks.generate()


def read(path):
    return nbformat.read(REPO / path, as_version=4)


def code_cells(notebook):
    return [(cell.id, cell.source) for cell in notebook.cells if cell.cell_type == "code"]


def code_without_words(source: str) -> list:
    """The code's tokens with every comment and string left out: what must not change between editions."""
    source = "\n".join(line for line in source.splitlines() if not line.startswith("%"))  # IPython magics
    words = {tokenize.COMMENT, tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
    return [token.string for token in tokenize.generate_tokens(io.StringIO(source).readline)
            if token.type not in words]


def english_words(source: str) -> list:
    """Comments and printed text of a code cell that read as English sentences (three words or more)."""
    texts = [token.string for token in tokenize.generate_tokens(io.StringIO(
        "\n".join(line for line in source.splitlines() if not line.startswith("%"))).readline)
        if token.type in {tokenize.COMMENT, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}]
    return [text for text in texts if re.search(r"[A-Za-z]+ [a-z]+ [a-z]+ ", text) and not text.startswith("####")]


def test_generator_writes_exactly_the_committed_notebooks(generated):
    assert sorted(generated) == sorted(NOTEBOOKS)
    for path, text in generated.items():
        assert (REPO / path).read_text(encoding="utf-8") == text, \
            f"{path} is out of date: run python tools/make_notebooks.py"


def test_check_mode_fails_on_a_stale_notebook(tmp_path, monkeypatch):
    """--check exits 0 on the committed tree and 1 once a generated file is edited."""
    for path in NOTEBOOKS:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text((REPO / path).read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(make_notebooks, "REPO", tmp_path)
    assert make_notebooks.main(["--check"]) == 0
    stale = tmp_path / "notebooks/ru/flowers_tl_playground.ipynb"
    stale.write_text(stale.read_text(encoding="utf-8").replace("____", "None", 1), encoding="utf-8")
    assert make_notebooks.main(["--check"]) == 1


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_committed_without_outputs_and_with_python3_kernel(path):
    notebook = read(path)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path}: cell {cell.id} has outputs"
    ids = [cell.id for cell in notebook.cells]
    assert len(ids) == len(set(ids)), f"{path}: duplicate cell ids"


@pytest.mark.parametrize("name", [name for pair in EDITIONS for name in pair])
def test_russian_edition_has_the_same_code_and_translated_markdown(name):
    english = read(f"notebooks/{name}")
    russian = read(f"notebooks/ru/{name}")
    assert [(i, code_without_words(c)) for i, c in code_cells(russian)] == \
        [(i, code_without_words(c)) for i, c in code_cells(english)]
    left_in_english = {i: english_words(c) for i, c in code_cells(russian) if english_words(c)}
    assert not left_in_english, f"code comments or printed text not translated: {left_in_english}"
    assert [c.id for c in russian.cells] == [c.id for c in english.cells]
    for en_cell, ru_cell in zip(english.cells, russian.cells):
        if en_cell.cell_type == "markdown" and en_cell.id != make_notebooks.BADGE_CELL:
            assert en_cell.source != ru_cell.source
            assert re.search("[а-яё]", ru_cell.source), f"cell {ru_cell.id} is not in Russian"


def test_every_translation_is_used():
    texts = json.loads((REPO / "notebooks/i18n/ru.json").read_text(encoding="utf-8"))
    ids = {cell.id for solution, _ in EDITIONS for cell in read(f"notebooks/{solution}").cells}
    assert {key for key in texts if not key.startswith("edition:")} - {make_notebooks.CODE_KEY} <= ids


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_colab_badge_points_at_the_notebook_itself(path):
    badges = [BADGE.search(cell.source) for cell in read(path).cells if cell.cell_type == "markdown"]
    badges = [badge for badge in badges if badge]
    assert len(badges) == 1
    owner, repository, target = badges[0].groups()
    assert (owner, repository) == (make_notebooks.OWNER, make_notebooks.REPOSITORY)
    assert target == path and (REPO / target).is_file()


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_install_cell_pins_the_release_from_the_owner(path):
    install = next(cell for cell in read(path).cells if cell.id == "install")
    assert make_notebooks.install_url() in install.source
    assert "ON_COLAB or ON_KAGGLE" in install.source


@pytest.mark.parametrize("solution_name, playground_name, exercise_names, solved", [
    (*EDITIONS[0], {"baseline_model", "baseline_fit", "transfer_model"}, "include_top=False"),
    (*EDITIONS[1], {"validation_share", "worst_class"}, "VALIDATION_SHARE = 0.2")])
def test_playground_keeps_no_solution_and_checks_every_exercise(solution_name, playground_name, exercise_names, solved):
    solution, playground = read(f"notebooks/{solution_name}"), read(f"notebooks/{playground_name}")
    solution_text = "\n".join(source for _, source in code_cells(solution))
    playground_text = "\n".join(source for _, source in code_cells(playground))
    names = re.findall(r"#### SOLUTION START (\w+)", solution_text)
    assert set(names) == exercise_names
    assert solved in solution_text
    assert "SOLUTION" not in playground_text and solved not in playground_text
    for name in names:
        assert f"ftl.exercises.{name}.check()\n" in playground_text  # the check finds the variable itself
        assert f"ftl.exercises.{name}.check()\n" in solution_text  # the solution shows "Correct"
    assert playground_text.count("# WORK REQUIRED:") == len(names)


def test_solution_blocks_are_written_from_the_solution_functions():
    """flowers_tl/solutions.py is the single source: an edit of the block in the notebook is written over."""
    from flowers_tl import solutions

    notebook = make_notebooks.normalised(read(NOTEBOOKS[0]))
    cell = next(cell for cell in notebook.cells if cell.id == "transfer")
    cell.source = cell.source.replace("include_top=False", "include_top=True")
    generated = {cell.id: cell.source for cell in make_notebooks.with_check_cells(notebook, stubs=False).cells}
    assert "include_top=True" not in generated["transfer"]
    for cell_id, name in (("baseline", "baseline_model"), ("baseline-train", "baseline_fit"), ("transfer", "transfer_model")):
        block = f"#### SOLUTION START {name}\n" + solutions.cell_code(getattr(solutions, name)) + "#### SOLUTION END"
        assert block in generated[cell_id]
        assert block in next(source for i, source in code_cells(read(NOTEBOOKS[0])) if i == cell_id)


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_title_cells_keep_their_form_view(path):
    """Colab folds a `#@title` cell into a form only with `cellView: form`; the generator keeps it."""
    titled = [cell for cell in read(path).cells if cell.cell_type == "code" and cell.source.startswith("#@title")]
    assert len(titled) >= 3
    for cell in titled:
        assert cell.metadata.get("cellView") == "form", f"{path}: cell {cell.id}"
    others = [cell for cell in read(path).cells if "cellView" in cell.metadata and cell not in titled]
    assert not others


def test_gap_experiment_changes_only_the_pooling(weights_path):
    """The GlobalAveragePooling model is the exercise's model with Flatten swapped: the same layers
    otherwise (no dropout, no flips), the same optimizer and learning rate, loss and metrics."""
    import keras

    import flowers_tl as ftl
    from flowers_tl import solutions

    source = next(source for i, source in code_cells(read(NOTEBOOKS[0])) if i == "gap")
    accelerator = ftl.detect_accelerator(verbose=False)
    namespace = {"keras": keras, "ftl": ftl, "accelerator": accelerator, "IMAGE_SIZE": [96, 96],
                 "CLASSES": ftl.CLASSES}
    exec(source.split("gap = ftl.train(")[0], namespace)  # the cell up to its training
    gap = namespace["gap_model"]
    flatten = solutions.transfer_model(keras=keras, ftl=ftl, accelerator=accelerator, IMAGE_SIZE=[96, 96],
                                       CLASSES=ftl.CLASSES)
    kinds = [type(layer).__name__ for layer in flatten.layers]
    assert [type(layer).__name__ for layer in gap.layers] == \
        [kind.replace("Flatten", "GlobalAveragePooling2D") for kind in kinds]
    assert "Flatten" in kinds
    for model in (gap, flatten):
        assert not model.layers[1].trainable and not model.layers[1].trainable_weights
    assert gap.layers[0].get_config()["scale"] == flatten.layers[0].get_config()["scale"]
    configs = [model.get_compile_config() for model in (gap, flatten)]
    for config in configs:
        del config["optimizer"]["config"]["name"]  # adam, adam_1: Keras numbers the names
    assert configs[0] == configs[1] and configs[0]["optimizer"]["config"]["learning_rate"] > 0


def test_command_line_check_passes_on_the_committed_tree():
    result = subprocess.run([sys.executable, str(REPO / "tools/make_notebooks.py"), "--check"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
