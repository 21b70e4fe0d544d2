"""Catalogue listings (browse, autocomplete before a letter is typed, newest): a workspace's
featured GPTs first, then the order of the listing, every GPT once across pages wherever a page
ends, the same with and without a workspace's picks (store/search.py `_listed`)."""

from __future__ import annotations

from sqlmodel import col, select, update

from bot.bootstrap import App
from store import search
from store.accounts import ensure_workspace
from store.models import Gpt
from store.policy import set_entry
from tests.discord_support import ALICE, seed_gpt

USES = [30, 60, 10, 0, 50, 20, 40]  # Helper 0 … Helper 6
FEATURED = {2, 5}  # the two an admin picked: Helper 2 (10 uses) and Helper 5 (20 uses)


async def _catalogue(app: App) -> int:
    slugs = [await seed_gpt(app, ALICE, "Alice", f"Helper {n}") for n in range(len(USES))]
    async with app.db.session() as session:
        workspace = await ensure_workspace(session, platform="discord", external_id="guild-1", name="Guild")
        assert workspace is not None and workspace.id is not None
        for n, slug in enumerate(slugs):
            await session.execute(update(Gpt).where(col(Gpt.slug) == slug).values(uses=USES[n]))
            if n in FEATURED:
                gpt_id = (await session.execute(select(Gpt.id).where(col(Gpt.slug) == slug))).scalar_one()
                await set_entry(session, workspace.id, gpt_id, featured=True)
    return workspace.id


async def _browsed(app: App, workspace: int | None, per_page: int) -> list[str]:
    names: list[str] = []
    async with app.db.reader() as session:
        for page in range(len(USES)):
            result = await search.browse(session, category=None, viewer=None, page=page, per_page=per_page,
                                         workspace=workspace)
            names += [gpt.name for gpt in result.gpts]
            if not result.has_more:
                break
    return names


async def test_browse_lists_featured_first_then_most_used_across_pages(app: App) -> None:
    workspace = await _catalogue(app)
    by_uses = ["Helper 1", "Helper 4", "Helper 6", "Helper 0", "Helper 5", "Helper 2", "Helper 3"]
    here = ["Helper 5", "Helper 2", "Helper 1", "Helper 4", "Helper 6", "Helper 0", "Helper 3"]
    for per_page in (1, 2, 3, 7):
        assert await _browsed(app, workspace, per_page) == here
        assert await _browsed(app, None, per_page) == by_uses  # a DM: nothing is featured


async def test_autocomplete_before_typing_and_newest_put_featured_first(app: App) -> None:
    workspace = await _catalogue(app)
    async with app.db.reader() as session:
        shown = await search.autocomplete(session, "", viewer=None, limit=4, workspace=workspace)
        assert [c.name for c in shown] == ["Helper 5", "Helper 2", "Helper 1", "Helper 4"]
        shown = await search.autocomplete(session, "", viewer=None, limit=2, workspace=None)
        assert [c.name for c in shown] == ["Helper 1", "Helper 4"]
        newest = await search.newest(session, limit=4, workspace=workspace)
        assert [gpt.name for gpt in newest] == ["Helper 5", "Helper 2", "Helper 6", "Helper 4"]
        newest = await search.newest(session, limit=2, workspace=None)
        assert [gpt.name for gpt in newest] == ["Helper 6", "Helper 5"]


async def test_a_word_finds_its_gpts_at_every_length_as_it_is_typed(app: App) -> None:
    """Search and autocomplete match every word as a prefix: "tut" finds "Tutoring" and so do
    "tutor" and "tutoring", below, at and beyond the eight letters of SQLite's longest prefix index
    (migration 0010), and a word nothing begins with finds nothing."""
    await seed_gpt(app, ALICE, "Alice", "Tutoring Companion")
    await seed_gpt(app, ALICE, "Alice", "Chemistry Lab")
    async with app.db.reader() as session:
        for typed in ("t", "tut", "tutor", "tutori", "tutorin", "tutoring", "companio", "companion"):
            found = await search.search(session, typed, viewer=None)
            assert [g.name for g in found.gpts] == ["Tutoring Companion"], typed
            completed = await search.autocomplete(session, typed, viewer=None)
            assert [c.name for c in completed] == ["Tutoring Companion"], typed
        assert [g.name for g in (await search.search(session, "chemistr lab", viewer=None)).gpts] == ["Chemistry Lab"]
        for typed in ("tutorings", "tutx", "companions"):
            assert not (await search.search(session, typed, viewer=None)).gpts, typed
            assert not await search.autocomplete(session, typed, viewer=None), typed
