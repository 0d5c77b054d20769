"""Every sentence a learner reads exists in Russian, with the same format fields."""

import json
import pathlib
import re
import string

import pytest

from flowers_tl import (accelerator, convert, data, exercises, files, frozen, learner_errors, messages, modelfile,
                        pace, pictures, plots, runs, sources)
from flowers_tl.messages import RUSSIAN

REPO = pathlib.Path(__file__).resolve().parents[1]

NOT_MESSAGES = {"FAST_ENV_VARIABLE", "SPARSE_LOSS", "RIGHT_COLOR", "WRONG_COLOR", "LANGUAGES",
                "PARTIAL_PREFIX", "LOCK_NAME", "PARTIAL_SUFFIX", "CACHE_ENV_VARIABLE", "_DONE_FILE",
                "CONFIG_NAME", "OWN_MODULE", "DEFAULT_DATA_PATTERN", "DATA_ENV_VARIABLE"}


def learner_facing():
    """{name: English text} of every message constant, exercise text and plot label."""
    found = {}
    for module in (accelerator, exercises, frozen, learner_errors, pace, plots, messages, files, pictures, convert,
                   sources, modelfile, runs, data):
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, str) and name not in NOT_MESSAGES:
                found[f"{module.__name__}.{name}"] = value
    for exercise in exercises.EXERCISES.values():
        found[f"{exercise.name}.what"] = exercise.what
        for number, hint in enumerate(exercise.hints, 1):
            found[f"{exercise.name}.hint({number})"] = hint
        for number, comment in enumerate(re.findall(r"  # (.+)$", exercise.solution_code, re.MULTILINE)):
            found[f"{exercise.name}.solution_code comment {number}"] = comment
    for metric, label in plots.METRIC_NAMES.items():
        found[f"plots.METRIC_NAMES[{metric}]"] = label
    return found


def fields(text: str) -> set:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.mark.parametrize("name", sorted(learner_facing()))
def test_message_has_a_russian_translation_with_the_same_fields(name):
    english = learner_facing()[name]
    assert english in RUSSIAN, f"{name} has no Russian translation in flowers_tl/messages.py"
    assert fields(RUSSIAN[english]) == fields(english)


def test_every_russian_entry_translates_a_message_of_the_course():
    assert set(RUSSIAN) <= set(learner_facing().values())


def test_solution_comments_match_the_russian_notebook():
    """solution() prints the same Russian comments as the Russian edition's solution cells."""
    code = json.loads((REPO / "notebooks/i18n/ru.json").read_text(encoding="utf-8"))["code"]
    for exercise in exercises.EXERCISES.values():
        for comment in re.findall(r"  # (.+)$", exercise.solution_code, re.MULTILINE):
            assert code["# " + comment] == "# " + RUSSIAN[comment]


def test_say_translates_and_fills_in():
    messages.set_language("ru")
    try:
        assert messages.say(plots.CONFUSION_TITLE, accuracy=0.5) == "матрица ошибок (точность 0.500)"
    finally:
        messages.set_language("en")
    assert messages.say(plots.CONFUSION_TITLE, accuracy=0.5) == "confusion matrix (accuracy 0.500)"
