"""The French catalogue (bot/locales/fr.po): complete, placeholder-safe, loaded at start-up, and
what a French-speaking member actually reads through the console."""

from __future__ import annotations

import string

import pytest
from babel.messages.catalog import Message

from bot.i18n import Translator
from tests import i18n_catalog
from tests.conftest import Terminal


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _entries() -> list[Message]:
    return [message for message in i18n_catalog.load() if message.id]


def test_every_msgid_has_a_french_translation() -> None:
    assert i18n_catalog.missing() == []


def test_catalogue_has_no_fuzzy_entries() -> None:
    """The translator skips fuzzy entries, and the bot has no plural msgids."""
    for message in _entries():
        assert not message.fuzzy, message.id
        assert isinstance(message.id, str), f"plural entries are not used here: {message.id!r}"


@pytest.mark.parametrize("message", _entries(), ids=lambda m: str(m.id)[:60])
def test_placeholders_are_kept(message: Message) -> None:
    msgid, msgstr = str(message.id), str(message.string)
    assert _placeholders(msgstr) == _placeholders(msgid), f"{msgid!r} → {msgstr!r}"
    params = {name: "x" for name in _placeholders(msgid)}
    msgstr.format(**params)  # no stray or unbalanced braces
    assert msgstr.count("\n") == msgid.count("\n")
    assert msgstr.count("`") == msgid.count("`")
    assert msgstr.count("**") == msgid.count("**")


def test_catalogue_loads_through_the_translator() -> None:
    tr = Translator()
    assert tr.has("fr", "Search the GPT store")
    assert tr("fr", "Search the GPT store") == "Rechercher un GPT"
    assert tr("fr", "No GPT called “{ref}”. Try `/gpt search`.", ref="demo") == (
        "Aucun GPT ne s'appelle « demo ». Essayez `/gpt search`."
    )
    assert tr("en", "Search the GPT store") == "Search the GPT store"
    for category, french in {"Writing": "Écriture", "Research & Analysis": "Recherche et analyse",
                             "Fun": "Divertissement", "unlisted": "non listé", "private": "privé"}.items():
        assert tr("fr", category) == french


async def test_french_member_through_the_console(terminal: Terminal) -> None:
    out = await terminal.run(":lang fr", "/gpt help")
    assert "**Boutique de GPT** : trouvez, utilisez et créez les GPT de la communauté." in out
    assert "`/gpt search <query>` — Rechercher un GPT" in out
    assert "find, use and build" not in out

    out = await terminal.run(":lang fr", "/gpt ask nothing-here hi")
    assert "Aucun GPT ne s'appelle « nothing-here ». Essayez `/gpt search`." in out
    assert "No GPT called" not in out
