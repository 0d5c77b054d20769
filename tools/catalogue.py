"""Compile the message catalogue: flowers_tl/locale/<language>/LC_MESSAGES/flowers_tl.po -> .mo.

    python tools/catalogue.py          # write each .mo from its .po
    python tools/catalogue.py --check  # exit 1 if a committed .mo says something its .po does not

The package reads the compiled .mo with the standard library's gettext (no Babel at run time);
Babel, a test dependency, reads the .po and writes the .mo here. The check compares what the two
say, message by message, not their bytes (another Babel version writes another header).
"""

import argparse
import gettext
import io
import pathlib
import sys

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE = pathlib.Path(__file__).resolve().parents[1] / "flowers_tl" / "locale"


def read_catalogue(po_path: pathlib.Path):
    """The Babel catalogue of one .po file (an invalid entry stops with its line number)."""
    with open(po_path, "rb") as source:
        return read_po(source, locale=po_path.parts[-3], abort_invalid=True)


def compiled(po_path: pathlib.Path) -> bytes:
    """The .mo bytes of one .po file (fuzzy entries left out, as msgfmt does)."""
    output = io.BytesIO()
    write_mo(output, read_catalogue(po_path))
    return output.getvalue()


def differences(po_path: pathlib.Path, mo_path: pathlib.Path) -> list:
    """The msgids whose translation in the .mo differs from the .po's (or is missing from either)."""
    if not mo_path.exists():
        return ["(no .mo file)"]
    with open(mo_path, "rb") as source:
        translations = gettext.GNUTranslations(source)
    found, wanted = [], 0
    for message in read_catalogue(po_path):
        if not message.id or message.fuzzy or not message.string:
            continue
        if isinstance(message.id, tuple):
            wanted += len(message.string)
            said = tuple(translations.ngettext(*message.id, n) for n in (1, 2, 5))
            expected = tuple(message.string[:3])
        else:
            wanted += 1
            said, expected = translations.pgettext(message.context, message.id) if message.context \
                else translations.gettext(message.id), message.string
        if said != expected:
            found.append(message.id)
    if len(translations._catalog) - 1 != wanted:  # the .mo holds the header too
        found.append("(the .mo holds messages the .po does not)")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a .mo is out of date")
    args = parser.parse_args(argv)
    stale = []
    for po_path in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if not differences(po_path, mo_path):
            continue
        if args.check:
            stale.append(str(mo_path))
        else:
            mo_path.write_bytes(compiled(po_path))
            print(f"wrote {mo_path}")
    if stale:
        print("out of date (run python tools/catalogue.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
