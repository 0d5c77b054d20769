"""The course's message catalogue: every sentence a learner or user reads, in English and Russian.

Each module writes its sentences in English, as constants at their one call site (so tests can
assert them), and shows them through `say()`, which translates them into the language the
notebook chose with `ftl.set_language("ru")`. The translations are a standard gettext catalogue,
`flowers_tl/locale/ru/LC_MESSAGES/flowers_tl.po`, compiled to the `.mo` that Python's `gettext`
reads (`python tools/catalogue.py`). A sentence with a number that agrees with it is a pair,
(singular, plural), shown by `say_n()`: gettext's `ngettext` chooses the form, so Russian gets
its three («1 эпоха», «2 эпохи», «5 эпох»). Format fields ({loss}, {units}) are the same in
every language; tests/test_messages.py checks both.
"""

import gettext
import pathlib

LANGUAGES = ("en", "ru")
UNKNOWN_LANGUAGE = "Unknown language '{language}': use one of {languages}."
DOMAIN = "flowers_tl"
LOCALE_FOLDER = pathlib.Path(__file__).resolve().parent / "locale"

_translations = gettext.NullTranslations()  # English: the msgid itself


def catalogue(language: str) -> gettext.NullTranslations:
    """The gettext translations of `language` (English: none, the sentences are English)."""
    if language not in LANGUAGES:
        raise ValueError(UNKNOWN_LANGUAGE.format(language=language, languages=", ".join(LANGUAGES)))
    if language == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_FOLDER, languages=[language])


def set_language(language: str) -> None:
    """Choose the language of every message the course prints and draws ("en" or "ru")."""
    global _translations
    _translations = catalogue(language)


def translate(text: str) -> str:
    """`text` in the chosen language (the English text itself when it has no translation)."""
    return _translations.gettext(text)


def say(text: str, **fields) -> str:
    """`text` translated, then its {fields} filled in."""
    return translate(text).format(**fields)


def say_n(singular: str, plural: str, number: int, /, **fields) -> str:
    """The form of (singular, plural) that agrees with `number`, translated, then its {fields} filled in
    (any field name may be used, `count` and `number` included: the first three are positional only)."""
    return _translations.ngettext(singular, plural, number).format(**fields)


CLASS_NAME_CONTEXT = "flower class"  # gettext context: the course's class names, apart from other words


def class_name(name: str) -> str:
    """A class's name as shown in the chosen language: the course's five flowers are translated
    (the data keeps its English labels); a user's own class names are shown as they are."""
    return _translations.pgettext(CLASS_NAME_CONTEXT, name)
