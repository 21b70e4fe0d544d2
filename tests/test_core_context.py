"""Who and where, for every event (bot/core.py `_context`): a known person in a known place takes
the plain-statement path, anyone or anything new or renamed takes the ORM's; both keep a second
delivery of the same event harmless and the rows up to date."""

from __future__ import annotations

from sqlalchemy import select

from bot.bootstrap import App
from bot.events import Actor, Command, Place
from store.models import Account, Identity, SeenEvent, Workspace
from tests.test_fuzz_core import Recorder


def help_command(event_id: str, *, name: str = "Ana", locale: str = "en", guild: str = "Guild") -> Command:
    return Command(Actor("discord", "u-ana", name, locale=locale), Place("g1", "c1", workspace_name=guild),
                   event_id, "gpt", "help")


async def rows(app: App) -> tuple[list[tuple[str, str]], list[str], list[str], int]:
    async with app.db.reader() as session:
        accounts = [(a.display_name, a.locale) for a in (await session.execute(select(Account))).scalars()]
        identities = [i.display_name for i in (await session.execute(select(Identity))).scalars()]
        workspaces = [w.name for w in (await session.execute(select(Workspace))).scalars()]
        seen = len((await session.execute(select(SeenEvent))).scalars().all())
    return accounts, identities, workspaces, seen


async def test_first_sight_renames_and_repeated_deliveries(app: App) -> None:
    out = Recorder()
    await app.core.handle(help_command("e1"), out)  # a new person in a new server
    await app.core.handle(help_command("e1"), out)  # the platform delivers it again
    assert len(out.replies) == 1
    assert await rows(app) == ([("Ana", "en")], ["Ana"], ["Guild"], 1)

    await app.core.handle(help_command("e2"), out)  # known, nothing changed: the plain path
    await app.core.handle(help_command("e2"), out)
    assert len(out.replies) == 2
    assert await rows(app) == ([("Ana", "en")], ["Ana"], ["Guild"], 2)

    await app.core.handle(help_command("e3", name="Ana B.", locale="fr"), out)  # renamed, now in French
    await app.core.handle(help_command("e3", name="Ana B.", locale="fr"), out)
    assert len(out.replies) == 3
    assert "/gpt" in out.replies[-1].text and out.replies[-1].text != out.replies[0].text  # answered in French
    assert await rows(app) == ([("Ana B.", "fr")], ["Ana B."], ["Guild"], 3)

    await app.core.handle(help_command("e4", name="Ana B.", locale="fr", guild="Guild of Makers"), out)
    await app.core.handle(help_command("e5", name="Ana B.", locale="fr", guild="Guild of Makers"), out)
    assert len(out.replies) == 5
    assert await rows(app) == ([("Ana B.", "fr")], ["Ana B."], ["Guild of Makers"], 5)

    await app.core.handle(help_command("e6", name="Ana B.", locale="en", guild="Guild of Makers"), out)  # back to English
    await app.core.handle(help_command("e6", name="Ana B.", locale="en", guild="Guild of Makers"), out)
    assert out.replies[-1].text == out.replies[0].text
    assert await rows(app) == ([("Ana B.", "en")], ["Ana B."], ["Guild of Makers"], 6)


async def test_dms_unnamed_places_long_names_and_no_locale(app: App) -> None:
    """The cases where the platform leaves something out: a DM (no workspace), a workspace whose name
    it does not give, a message that does not say the member's language, and a name past 100
    characters (stored cut). Each is found unchanged the second time, and recorded once."""
    out = Recorder()
    long_name = "Ana " + "x" * 120

    def event(event_id: str, place: Place, *, name: str = long_name, locale: str = "fr") -> Command:
        return Command(Actor("discord", "u-ana", name, locale=locale), place, event_id, "gpt", "help")

    dm, unnamed = Place(None, "d1", is_dm=True), Place("g1", "c1")
    for event_id, place, locale in (("e1", dm, "fr"), ("e2", dm, "fr"), ("e3", dm, ""), ("e4", unnamed, ""),
                                    ("e5", unnamed, "fr")):
        await app.core.handle(event(event_id, place, locale=locale), out)
        await app.core.handle(event(event_id, place, locale=locale), out)  # delivered twice
    assert len(out.replies) == 5
    assert all(reply.text == out.replies[0].text for reply in out.replies)  # all in French: the last known language
    assert await rows(app) == ([(long_name[:100], "fr")], [long_name[:100]], [""], 5)

    await app.core.handle(event("e6", unnamed, name="Ana"), out)  # the name shrinks: written, once
    await app.core.handle(event("e6", unnamed, name="Ana"), out)
    assert len(out.replies) == 6
    assert await rows(app) == ([("Ana", "fr")], ["Ana"], [""], 6)


async def test_a_delivery_another_replica_handled_is_ignored_on_the_plain_path(app: App) -> None:
    """Two replicas share the store: the one that records a delivery first answers it, the other
    finds the record (here written by hand, as the other replica would) and stays silent."""
    out = Recorder()
    await app.core.handle(help_command("e1"), out)
    async with app.db.session() as session:
        session.add(SeenEvent(key="discord:e2"))
    await app.core.handle(help_command("e2"), out)
    await app.core.handle(help_command("e3"), out)
    assert len(out.replies) == 2
    assert await rows(app) == ([("Ana", "en")], ["Ana"], ["Guild"], 3)
