"""The course's message catalogue: every sentence a learner or user reads, in English and Russian.

Each sentence is written in English once, where it is used, and marked there as a message:
`N_("...")` (a module-level constant), `N_plural("...", "...")` (a sentence whose number agrees
with it: gettext's ngettext chooses the form, so Russian gets its three: «1 эпоха», «2 эпохи»,
«5 эпох») or `NC_(context, "...")` (a word that means something else elsewhere, as a flower's
name). The markers return what they are given, so tests can assert the English. `say()` and
`say_n()` show a sentence translated into the chosen language, its {fields} filled in.
The translations are a standard gettext catalogue, `flowers_tl/locale/ru/LC_MESSAGES/flowers_tl.po`,
compiled to the `.mo` that Python's `gettext` reads (`python tools/catalogue.py`);
tests/test_messages.py extracts the marks with Babel and checks every one has its Russian, with
the same format fields. The notebook chooses the language with `ftl.set_language("ru")`; the
command line follows the environment, as gettext programs do (`use_environment_language`).
"""

import gettext
import pathlib


def N_(text: str) -> str:
    """Mark `text` as a sentence to translate where it is written; `say(text)` translates it when shown."""
    return text


def N_plural(singular: str, plural: str) -> tuple:
    """Mark a sentence whose number agrees with it; `say_n(*pair, number)` shows the form for `number`."""
    return singular, plural


def NC_(context: str, text: str) -> str:
    """Mark `text` as a word to translate in `context` (gettext's msgctxt), shown by `class_name`."""
    return text


LANGUAGES = ("en", "ru")
UNKNOWN_LANGUAGE = N_("Unknown language '{language}': use one of {languages}.")
DOMAIN = "flowers_tl"
LOCALE_FOLDER = pathlib.Path(__file__).resolve().parent / "locale"

_translations = gettext.NullTranslations()  # English: the msgid itself


def catalogue(language: str) -> gettext.NullTranslations:
    """The gettext translations of `language` (English: none, the sentences are English)."""
    if language not in LANGUAGES:
        raise ValueError(say(UNKNOWN_LANGUAGE, language=language, languages=", ".join(LANGUAGES)))
    if language == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_FOLDER, languages=[language])


def use_environment_language() -> None:
    """Choose the language as gettext programs do, from LANGUAGE, LC_ALL, LC_MESSAGES or LANG
    (`LANG=ru_RU.UTF-8` gives Russian; a language without a catalogue gives English)."""
    global _translations
    _translations = gettext.translation(DOMAIN, LOCALE_FOLDER, fallback=True)


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
