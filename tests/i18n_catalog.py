"""Extract every user-facing message id from the code, and keep bot/locales/fr.po in step.

    python -m tests.i18n_catalog          # report msgids without a French translation
    python -m tests.i18n_catalog --update # add the new msgids to fr.po (untranslated), drop none

The test suite calls `missing()` so that a string added without its translation fails a test.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "bot" / "locales" / "fr.po"
KEYWORDS = {"N_": None, "_": None, "say": None, "UserError": None, "NotFound": None, "Note": None, "_say": (3,)}
SKIP = ("bot/adapters/console.py",)  # the console's own help is for developers, in English


def extract() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT / "bot"), method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=()
    ):
        if isinstance(message, tuple):
            message = message[0]
        if not message or f"bot/{filename}" in SKIP:
            continue
        found.setdefault(message, set()).add(filename)
    return found


def load() -> Catalog:
    if not PO.exists():
        return Catalog(locale="fr")
    with PO.open("rb") as handle:
        return read_po(handle, locale="fr")


def missing() -> list[str]:
    catalog = load()
    return sorted(m for m in extract() if not (catalog.get(m) and catalog.get(m).string))


def update() -> int:
    catalog = load()
    added = 0
    for message, files in sorted(extract().items()):
        if catalog.get(message) is None:
            catalog.add(message, "", locations=[(f, 0) for f in sorted(files)])
            added += 1
    with PO.open("wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False, no_location=True, sort_output=True)
    return added


if __name__ == "__main__":
    if "--update" in sys.argv:
        print(f"added {update()} msgids to {PO}")
    for msgid in missing():
        print(repr(msgid))
