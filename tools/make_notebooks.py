"""Generate the course notebooks from their single source, the English solution notebook.

    python tools/make_notebooks.py          # write the notebooks
    python tools/make_notebooks.py --check  # exit 1 if a committed notebook differs

Two courses, each from its English solution notebook: notebooks/flowers_tl_solution.ipynb (the course)
and notebooks/flowers_tl_your_photos.ipynb (its last chapter, your own photos). From each it writes:
* the solution itself, normalised: no outputs, kernelspec python3, `cellView: form` on each
  `#@title` cell (Colab folds it), its "Open in Colab" badge; each block between
  `#### SOLUTION START <exercise>` and `#### SOLUTION END` written from the exercise's function in
  flowers_tl/solutions.py (the single source of the solution code: edit it there), and after it
  the exercise's check cell, which calls `ftl.exercises.<exercise>.check()` and hands the model on
  as `model`;
* its playground edition (notebooks/flowers_tl_playground.ipynb, notebooks/flowers_tl_your_photos_playground.ipynb):
  the same, with each solution block replaced by the exercise's WORK REQUIRED stub (with `____` blanks);
* notebooks/ru/: every notebook with the Russian markdown of notebooks/i18n/ru.json (keyed by cell
  id, unique across the two courses), and in the code cells the Russian of each comment, `#@title` and
  printed string ("code" in ru.json: English fragment -> Russian, shared by both courses); the code
  itself stays identical.
The GitHub owner appears only in OWNER below: badges and the install cell are generated from it.
"""

import argparse
import copy
import json
import pathlib
import re
import sys

import nbformat

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from flowers_tl import quiet  # noqa: E402

quiet.set_defaults()  # importing the exercises loads TensorFlow: without its start-up lines
quiet.install_import_hook()
from flowers_tl import exercises  # noqa: E402  (the stubs and solutions live in the package)

OWNER = "flowers-tl"  # the GitHub account that hosts the repository
REPOSITORY = "flowers_tl"
INSTALL_REF = "main"  # Colab and Kaggle install the package of the branch the badges open
NOTEBOOKS = REPO / "notebooks"
SOURCE = NOTEBOOKS / "flowers_tl_solution.ipynb"
PHOTOS_SOURCE = NOTEBOOKS / "flowers_tl_your_photos.ipynb"
# Each course's source (its English solution edition) and the file name of each edition.
COURSES = {SOURCE: {"solution": "flowers_tl_solution.ipynb", "playground": "flowers_tl_playground.ipynb"},
           PHOTOS_SOURCE: {"solution": "flowers_tl_your_photos.ipynb",
                           "playground": "flowers_tl_your_photos_playground.ipynb"}}
TRANSLATIONS = {"ru": NOTEBOOKS / "i18n" / "ru.json"}
BADGE_CELL = "colab-badge"
CHECK_CELL_SUFFIX = "-check"
CODE_KEY = "code"  # in a translation file: {English fragment of a code cell: its translation}
SOLUTION_START = re.compile(r"^#### SOLUTION START (\w+)\n", re.MULTILINE)
SOLUTION_END = "#### SOLUTION END\n"
INSTALL_URL = re.compile(r"git\+https://github\.com/[\w.-]+/[\w.-]+@[\w.-]+")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
KEPT_CELL_METADATA = ("tags",)
TITLE = "#@title"  # a cell the learner need not read: Colab shows it folded, as a form

EDITION_NOTES = {
    "solution": "**Solution**: every WORK REQUIRED cell is filled in. The version with exercises is "
                "[{playground}]({playground}).",
    "playground": "**Playground**: fill in the `____` blanks of the cells marked WORK REQUIRED, then run the "
                  "check cell under each. `ftl.exercises.<name>.hint(1)`, `.hint(2)` give hints, `.solution()` "
                  "the answer.",
}
BADGE_ALT = {"en": "Open In Colab", "ru": "Открыть в Colab"}


def colab_url(relative_path: str) -> str:
    """The Colab address of a notebook of this repository's `INSTALL_REF` branch."""
    return f"https://colab.research.google.com/github/{OWNER}/{REPOSITORY}/blob/{INSTALL_REF}/{relative_path}"


def install_url() -> str:
    return f"git+https://github.com/{OWNER}/{REPOSITORY}@{INSTALL_REF}"


def badge_markdown(relative_path: str, edition: str, language: str, notes: dict, playground: str) -> str:
    """The badge cell: an 'Open in Colab' badge for this very file, and which edition it is
    (`playground`: the file name of the course's playground edition, which the solution links to)."""
    badge = (f"[![{BADGE_ALT[language]}](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"({colab_url(relative_path)})")
    return badge + "\n\n" + notes[edition].format(playground=playground)


def normalised(notebook):
    """A copy without outputs, execution counts or editor metadata, with kernelspec python3;
    each `#@title` cell keeps (or gets) `cellView: form`."""
    notebook = copy.deepcopy(notebook)
    notebook.metadata = nbformat.NotebookNode(
        kernelspec=dict(KERNELSPEC), language_info={"name": "python"})
    for cell in notebook.cells:
        cell.metadata = nbformat.NotebookNode(
            {key: value for key, value in cell.metadata.items() if key in KEPT_CELL_METADATA})
        if cell.cell_type == "code" and cell.source.startswith(TITLE):
            cell.metadata["cellView"] = "form"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.source = INSTALL_URL.sub(install_url(), cell.source)
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    return notebook


def solution_blocks(source: str):
    """(exercise name, start, end) of each marked solution block in a cell's source."""
    for match in SOLUTION_START.finditer(source):
        end = source.index(SOLUTION_END, match.end())
        yield match.group(1), match.start(), end + len(SOLUTION_END)


def with_check_cells(notebook, stubs: bool):
    """Add each exercise's check cell after its cell; with `stubs`, replace the solution block by the stub."""
    notebook = copy.deepcopy(notebook)
    cells = []
    for cell in notebook.cells:
        if cell.id.endswith(CHECK_CELL_SUFFIX):  # the solution notebook, read back, has them: made anew below
            continue
        cells.append(cell)
        if cell.cell_type != "code":
            continue
        source = cell.source if cell.source.endswith("\n") else cell.source + "\n"
        blocks = list(solution_blocks(source))
        for name, start, end in reversed(blocks):
            exercise = exercises.EXERCISES[name]
            if stubs:
                block = "# WORK REQUIRED: replace every ____, then run this cell and the check below.\n" + exercise.stub
            else:  # written from flowers_tl/solutions.py, whatever the block held
                block = source[start:end].split("\n", 1)[0] + "\n" + exercise.solution_code + SOLUTION_END
            source = source[:start] + block + source[end:]
        cell.source = source.rstrip("\n")
        for name, _, _ in blocks:
            cells.append(nbformat.v4.new_code_cell(exercises.EXERCISES[name].check_call(),
                                                   id=f"{cell.id}{CHECK_CELL_SUFFIX}"))
    notebook.cells = cells
    return notebook


def translated(notebook, language: str, known_ids=None):
    """The notebook with each markdown cell replaced by its translation (same id), and the comments,
    `#@title` labels and printed strings of its code cells translated (see translated_code).
    `known_ids`: the cell ids of every course's notebook (a translation keyed by another id is an error)."""
    texts = json.loads(TRANSLATIONS[language].read_text(encoding="utf-8"))
    notebook = copy.deepcopy(notebook)
    missing = [cell.id for cell in notebook.cells
               if cell.cell_type == "markdown" and cell.id != BADGE_CELL and cell.id not in texts]
    known_ids = known_ids or {cell.id for cell in notebook.cells}
    unused = set(texts) - set(known_ids) - {f"edition:{e}" for e in EDITION_NOTES} - {CODE_KEY}
    if missing or unused:
        raise SystemExit(f"{TRANSLATIONS[language]}: missing translations for cells {missing}, "
                         f"unknown keys {sorted(unused)}; keep it in step with the source notebooks.")
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.id != BADGE_CELL:
            cell.source = texts[cell.id]
        elif cell.cell_type == "code":
            cell.source = translated_code(cell.source, texts[CODE_KEY])
    return notebook


def translated_code(source: str, fragments: dict) -> str:
    """`source` with each English fragment (a comment, a `#@title`, the text of a printed string)
    replaced by its translation; the code around them stays as it is."""
    for english, translation in fragments.items():
        source = source.replace(english, translation)
    return source


def unused_code_fragments(sources, fragments: dict) -> list:
    """The English fragments of ru.json's "code" that appear in none of the code cells."""
    return [english for english in fragments if not any(english in source for source in sources)]


def with_badge(notebook, relative_path: str, edition: str, language: str, playground: str):
    notes = EDITION_NOTES
    if language != "en":
        texts = json.loads(TRANSLATIONS[language].read_text(encoding="utf-8"))
        notes = {key: texts[f"edition:{key}"] for key in EDITION_NOTES}
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.id == BADGE_CELL:
            cell.source = badge_markdown(relative_path, edition, language, notes, playground)
            return notebook
    raise SystemExit(f"{relative_path} has no markdown cell with id '{BADGE_CELL}' for the Colab badge.")


def course_editions(source: pathlib.Path) -> dict:
    """{edition: notebook} of one course: its solution and playground editions, in English."""
    solution = normalised(nbformat.read(source, as_version=4))
    return {"solution": with_check_cells(solution, stubs=False), "playground": with_check_cells(solution, stubs=True)}


def generate() -> dict:
    """{path relative to the repository: notebook text} for every generated notebook."""
    courses = {source: course_editions(source) for source in COURSES}
    sources = [cell.source for editions in courses.values() for notebook in editions.values()
               for cell in notebook.cells if cell.cell_type == "code"]
    known_ids = {cell.id for editions in courses.values() for notebook in editions.values() for cell in notebook.cells}
    for language, path in TRANSLATIONS.items():
        unused = unused_code_fragments(sources, json.loads(path.read_text(encoding="utf-8"))[CODE_KEY])
        if unused:
            raise SystemExit(f"{path}: code fragments found in no code cell: {unused}; keep it in step with the "
                             "source notebooks.")
    outputs = {}
    for source, editions in courses.items():
        names = COURSES[source]
        for language in ("en", *TRANSLATIONS):
            folder = "notebooks" if language == "en" else f"notebooks/{language}"
            for edition, notebook in editions.items():
                path = f"{folder}/{names[edition]}"
                if language != "en":
                    notebook = translated(notebook, language, known_ids)
                notebook = with_badge(notebook, path, edition, language, names["playground"])
                nbformat.validate(notebook)
                outputs[path] = nbformat.writes(notebook) + "\n"
    return outputs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a committed notebook differs from what would be generated")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generate().items():
        target = REPO / path
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run python tools/make_notebooks.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
