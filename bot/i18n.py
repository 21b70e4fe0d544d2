"""One translation function for every user-facing string.

Message ids are the English text with `{placeholders}`; catalogues are gettext `.po` files in
`bot/locales/`, read with Babel when the bot starts (no compile step, nothing at import time).
`N_()` marks a string for extraction where it is declared; it is translated where it is shown.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from babel.messages.pofile import read_po

SUPPORTED = ("en", "fr")


def N_(msgid: str) -> str:
    return msgid


def normalize_locale(locale: str | None, default: str = "en") -> str:
    """'fr-FR', 'fr_CA', 'FR' → 'fr'; anything we do not speak → the default."""
    if not locale:
        return default
    short = locale.replace("_", "-").split("-", 1)[0].lower()
    return short if short in SUPPORTED else default


class Translator:
    def __init__(self, catalogues: dict[str, dict[str, str]] | None = None) -> None:
        self._catalogues = catalogues if catalogues is not None else load_catalogues()

    def __call__(self, locale: str, msgid: str, /, **params: Any) -> str:
        text = self._catalogues.get(locale, {}).get(msgid) or msgid
        if params:
            try:
                return text.format(**params)
            except (KeyError, IndexError, ValueError):
                return msgid.format(**params)
        return text

    def has(self, locale: str, msgid: str) -> bool:
        return msgid in self._catalogues.get(locale, {})


def load_catalogues() -> dict[str, dict[str, str]]:
    catalogues: dict[str, dict[str, str]] = {}
    folder = resources.files("bot") / "locales"
    for locale in SUPPORTED:
        po = folder / f"{locale}.po"
        if not po.is_file():
            continue
        with po.open("rb") as handle:
            catalogue = read_po(handle, locale=locale)
        catalogues[locale] = {
            str(message.id): str(message.string)
            for message in catalogue
            if message.id and message.string and not message.fuzzy
        }
    return catalogues
