"""Every sentence a learner reads exists in Russian, with the same format fields."""

import json
import pathlib
import re
import string
import subprocess
import sys

import pytest

from flowers_tl import (accelerator, convert, data, exercises, explain, files, frozen, learner_errors, messages,
                        model, modelfile, notebook_setup, own_photos, pace, photo_checks, pictures, plots, rules, runs,
                        scores, sources, training)

RUSSIAN = messages.catalogue("ru")

REPO = pathlib.Path(__file__).resolve().parents[1]

NOT_MESSAGES = {"FAST_ENV_VARIABLE", "SPARSE_LOSS", "RIGHT_COLOR", "WRONG_COLOR", "LANGUAGES",
                "PARTIAL_PREFIX", "LOCK_NAME", "PARTIAL_SUFFIX", "CACHE_ENV_VARIABLE", "_DONE_FILE", "DOMAIN",
                "CLASS_NAME_CONTEXT", "DEFAULT_DATA_PATTERN", "DATA_ENV_VARIABLE", "ACCURACY_NAMES",
                "WEIGHTS_ENV_VARIABLE", "IMAGENET_FILE", "CONFIG_NAME", "OWN_MODULE", "PHOTOS_ENV_VARIABLE"}
PLURALS = (exercises.WRONG_EPOCHS, exercises.WRONG_STEPS, pace.PACE, *data.SHARDS_OF_PHOTOS.values(),
           data.VALIDATION_SHARDS_OUT_OF_RANGE, data.SHARDS_IN_FOLDER, convert.MORE_DUPLICATES, convert.STALE_PARTIALS,
           convert.FEWER_SHARDS, runs.TRAINED_ON_SCORED, runs.SCORES_TRAINED_ON, photo_checks.FEW_PHOTOS,
           photo_checks.MORE_PROBLEMS, photo_checks.PROBLEMS_FOUND, exercises.SHARE_TOO_SMALL)


def learner_facing():
    """{name: English text} of every message constant, exercise text and plot label."""
    found = {}
    for module in (accelerator, exercises, frozen, learner_errors, pace, plots, messages, files, pictures, convert,
                   sources, notebook_setup, scores, explain, data, model, training, rules, modelfile, runs, photo_checks,
                   own_photos):
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


def russian_catalogue():
    """{msgid: msgstr} of the Russian .po (plural entries: {singular: (forms...)}), read with Babel."""
    from babel.messages.pofile import read_po

    with open(messages.LOCALE_FOLDER / "ru" / "LC_MESSAGES" / "flowers_tl.po", "rb") as source:
        catalog = read_po(source, locale="ru")
    return {(message.id[0] if isinstance(message.id, tuple) else message.id): message.string
            for message in catalog if message.id and not message.context}


@pytest.mark.parametrize("name", sorted(learner_facing()))
def test_message_has_a_russian_translation_with_the_same_fields(name):
    english = learner_facing()[name]
    translated = RUSSIAN.gettext(english)
    assert translated != english or english.startswith("'{path}'"), \
        f"{name} has no Russian translation in flowers_tl/locale/ru/LC_MESSAGES/flowers_tl.po"
    assert fields(translated) == fields(english)


@pytest.mark.parametrize("pair", PLURALS, ids=lambda pair: pair[0][:40])
def test_plural_messages_have_three_russian_forms_with_the_same_fields(pair):
    singular, plural = pair
    assert fields(singular) == fields(plural)
    forms = [RUSSIAN.ngettext(singular, plural, count) for count in (1, 2, 5, 11, 21, 22)]
    # three forms (1, 2, 5), of which two may agree: "из 2 шардов", "из 5 шардов" (after a preposition)
    assert len(set(forms[:3])) >= 2 and forms[3] == forms[2] and forms[4] == forms[0] and forms[5] == forms[1]
    assert all(fields(form) == fields(singular) for form in forms)


def test_every_russian_entry_translates_a_message_of_the_course():
    known = set(learner_facing().values()) | {pair[0] for pair in PLURALS}
    assert set(russian_catalogue()) <= known


def test_the_compiled_catalogue_says_what_the_po_file_says():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "catalogue.py"), "--check"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_solution_comments_match_the_russian_notebook():
    """solution() prints the same Russian comments as the Russian edition's solution cells."""
    code = json.loads((REPO / "notebooks/i18n/ru.json").read_text(encoding="utf-8"))["code"]
    for exercise in exercises.EXERCISES.values():
        for comment in re.findall(r"  # (.+)$", exercise.solution_code, re.MULTILINE):
            assert code["# " + comment] == "# " + RUSSIAN.gettext(comment)


def test_say_translates_and_fills_in():
    messages.set_language("ru")
    try:
        assert messages.say(plots.CONFUSION_TITLE, accuracy=0.5) == "матрица ошибок (точность 0.500)"
    finally:
        messages.set_language("en")
    assert messages.say(plots.CONFUSION_TITLE, accuracy=0.5) == "confusion matrix (accuracy 0.500)"
