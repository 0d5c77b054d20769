"""Every sentence a learner or user reads is marked where it is written, and exists in Russian.

The marks (`N_`, `N_plural`, `NC_`, and `say`/`say_n` called with a literal) are extracted with
Babel from every module of the package, as `pybabel extract` would; the Russian `.po` must
translate each one, with the same format fields and all three plural forms, and hold nothing
else. The solution cells' end-of-line comments are messages too (`solution()` prints them
translated), so solutions.py is read by an extractor that adds them. A sentence raised or
printed without a mark is found by reading the code (`unmarked_sentences`).
"""

import ast
import json
import pathlib
import re
import string
import subprocess
import sys
import textwrap

from babel.messages.extract import extract_from_dir, extract_python
from babel.messages.pofile import read_po

from flowers_tl import exercises, messages, plots

RUSSIAN = messages.catalogue("ru")
REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "flowers_tl"
PO_FILE = messages.LOCALE_FOLDER / "ru" / "LC_MESSAGES" / "flowers_tl.po"

# The markers and the showing functions, as Babel keywords: which arguments are the message.
KEYWORDS = {"N_": None, "N_plural": (1, 2), "NC_": ((1, "c"), 2), "say": None, "say_n": (1, 2)}
MESSAGE_ARGUMENTS = {"N_": 1, "N_plural": 2, "NC_": 2, "say": 1, "say_n": 3}  # say_n(singular, plural, number)
SHOWN_BY = {"print", "error", "warn", "exit"}  # calls whose text a user reads, as `raise` does
COMMENT = re.compile(r"(?<=  # )(.+)$", re.MULTILINE)  # an end-of-line comment, as comments_translated finds it


def extract_solution_cells(fileobj, keywords, comment_tags, options):
    """Babel extractor for solutions.py: its marks, plus each end-of-line comment of the solution cells."""
    yield from extract_python(fileobj, keywords, comment_tags, options)
    fileobj.seek(0)
    for number, line in enumerate(fileobj.read().decode("utf-8").splitlines(), 1):
        comment = COMMENT.search(line)
        if comment:
            yield number, None, comment.group(1), []


def extracted(folder: pathlib.Path) -> dict:
    """{(context, msgid): 'file:line'} of every marked message under `folder` (msgid: a str, or a plural pair)."""
    method_map = [("**/solutions.py", extract_solution_cells), ("**.py", "python")]
    found = {}
    for filename, line, message, _, context in extract_from_dir(str(folder), method_map, keywords=KEYWORDS):
        found.setdefault((context, message), f"{filename}:{line}")
    return found


def russian_entries(po_path: pathlib.Path = PO_FILE) -> dict:
    """{(context, msgid): msgstr} of the .po (a plural's msgid is the pair, its msgstr the forms)."""
    with open(po_path, "rb") as source:
        catalog = read_po(source, locale="ru")
    return {(message.context, message.id): (None if message.fuzzy else message.string)
            for message in catalog if message.id}


def fields(text: str) -> set:
    """The names of the {format fields} in `text`."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def translation_problems(marked: dict, russian: dict) -> list:
    """'where: what is wrong' for each marked message the Russian catalogue does not translate fully."""
    problems = []
    for key, where in sorted(marked.items(), key=lambda item: item[1]):
        english = key[1] if isinstance(key[1], tuple) else (key[1],)
        forms = russian.get(key)
        forms = forms if isinstance(forms, tuple) else (forms,)
        if not all(forms) or len(forms) != (3 if len(english) == 2 else 1):
            problems.append(f"{where}: no Russian (every form) for {english[0]!r}")
        elif any(fields(form) != fields(english[0]) for form in (*english, *forms)):
            problems.append(f"{where}: other format fields in Russian or plural for {english[0]!r}")
    return problems


def literal_words(node: ast.AST, shown_call: bool = True):
    """The string literals holding words that `node` shows: itself, the parts of an f-string, a `+`, an `or`,
    an `a if c else b`, and the arguments of the exception or print() call (of a marker or say(): only the
    {fields}, its message is marked). A key (`row["loss"]`) or another function's argument is data."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if re.search(r"[A-Za-z]{2,}", node.value):
            yield node
        return
    if isinstance(node, ast.Call):
        name = getattr(node.func, "id", getattr(node.func, "attr", None))
        if name not in MESSAGE_ARGUMENTS and not shown_call:
            return
        parts = node.args[MESSAGE_ARGUMENTS.get(name, 0):] + [keyword.value for keyword in node.keywords]
    elif isinstance(node, ast.IfExp):
        parts = [node.body, node.orelse]
    elif isinstance(node, (ast.JoinedStr, ast.FormattedValue, ast.BinOp, ast.BoolOp, ast.Tuple, ast.List)):
        parts = [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr)]
    else:
        return
    for part in parts:
        yield from literal_words(part, shown_call=False)


def unmarked_sentences(folder: pathlib.Path) -> list:
    """'file:line: text' of each literal with words shown without a mark: by a `raise`, a print(), or an
    exception made to be raised later (a call of a class whose name ends in Error)."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = getattr(getattr(node, "func", None), "id", getattr(getattr(node, "func", None), "attr", ""))
            if isinstance(node, ast.Raise) and node.exc is not None:
                shown, whole_call = [node.exc], True
            elif isinstance(node, ast.Call) and name.endswith("Error"):
                shown, whole_call = [node], True
            elif isinstance(node, ast.Call) and name in SHOWN_BY:
                shown, whole_call = node.args, False
            else:
                continue
            for literal in (literal for part in shown for literal in literal_words(part, shown_call=whole_call)):
                line = f"{path.relative_to(folder.parent)}:{literal.lineno}: {literal.value!r}"
                found += [line] if line not in found else []
    return found


MARKED = extracted(PACKAGE)


def test_the_package_marks_its_messages():
    assert len(MARKED) > 200  # the extraction read the package (a wrong keyword or folder finds none)
    assert (messages.CLASS_NAME_CONTEXT, "daisy") in MARKED
    assert (None, plots.CONFUSION_TITLE) in MARKED and (None, exercises.WRONG_EPOCHS) in MARKED


def test_every_marked_message_has_a_russian_translation_with_the_same_fields():
    assert translation_problems(MARKED, russian_entries()) == []


def test_the_russian_catalogue_holds_only_messages_the_package_marks():
    obsolete = sorted(str(key) for key in set(russian_entries()) - set(MARKED))
    assert obsolete == [], "remove these entries from flowers_tl.po (no mark produces them)"


def test_no_sentence_is_raised_or_printed_without_a_mark():
    assert unmarked_sentences(PACKAGE) == []


def test_plural_messages_follow_the_three_russian_forms():
    for singular, plural in (key[1] for key in MARKED if isinstance(key[1], tuple)):
        forms = [RUSSIAN.ngettext(singular, plural, count) for count in (1, 2, 5, 11, 21, 22)]
        # three forms (1, 2, 5), two may agree: "из 2 шардов", "из 5 шардов" (after a preposition)
        assert len(set(forms[:3])) >= 2 and forms[3] == forms[2] and forms[4] == forms[0] and forms[5] == forms[1], \
            singular


def test_an_unmarked_raise_and_a_missing_translation_are_reported(tmp_path):
    """The checks above can fail: a small module with one unmarked error and one untranslated mark."""
    module = tmp_path / "flowers_tl" / "tool" / "new_command.py"
    module.parent.mkdir(parents=True)
    module.write_text(textwrap.dedent("""\
        from flowers_tl.errors import DataError
        from flowers_tl.messages import N_, N_plural, say

        UNTRANSLATED = N_("The photo '{path}' is upside down: turn it.")
        FEWER = N_plural("{count} picture left", "{count} pictures left")
        OTHER_FIELDS = N_("Running on {kind} with 1 replica (Keras backend: {backend})")


        def check(path):
            if not path:
                raise DataError(f"no photo given: pass one, e.g. {path!r}")
            print("Checking " + path, file=sys.stderr)
            raise DataError(say(UNTRANSLATED, path=path))
        """), encoding="utf-8")
    marked = extracted(tmp_path / "flowers_tl")
    assert set(marked) == {(None, "The photo '{path}' is upside down: turn it."),
                           (None, ("{count} picture left", "{count} pictures left")),
                           (None, "Running on {kind} with 1 replica (Keras backend: {backend})")}
    problems = translation_problems(marked, russian_entries())
    assert len(problems) == 2 and "upside down" in problems[0] and "picture left" in problems[1]
    assert unmarked_sentences(tmp_path / "flowers_tl") == [
        "flowers_tl/tool/new_command.py:11: 'no photo given: pass one, e.g. '",
        "flowers_tl/tool/new_command.py:12: 'Checking '"]
    upside_down = (None, "The photo '{path}' is upside down: turn it.")
    translated = {**russian_entries(), upside_down: "Фото «{file}» вверх ногами."}
    assert "other format fields" in translation_problems(marked, translated)[0]


def test_the_compiled_catalogue_says_what_the_po_file_says():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "catalogue.py"), "--check"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_solution_comments_match_the_russian_notebook():
    """solution() prints the same Russian comments as the Russian edition's solution cells."""
    code = json.loads((REPO / "notebooks/i18n/ru.json").read_text(encoding="utf-8"))["code"]
    for exercise in exercises.EXERCISES.values():
        for comment in COMMENT.findall(exercise.solution_code):
            assert code["# " + comment] == "# " + RUSSIAN.gettext(comment)


def test_say_translates_and_fills_in():
    messages.set_language("ru")
    try:
        assert messages.say(plots.CONFUSION_TITLE, accuracy=0.5) == "матрица ошибок (точность 0.500)"
    finally:
        messages.set_language("en")
    assert messages.say(plots.CONFUSION_TITLE, accuracy=0.5) == "confusion matrix (accuracy 0.500)"
