"""Catalog queries: full-text search, autocomplete, browse, top, new.

SQLite uses the FTS5 index `gpt_fts` (bm25, lower is better); PostgreSQL the generated
`gpt.search` tsvector (ts_rank, higher is better). Both are weighted name > description >
category and multiplied by a popularity factor, 1 + 0.15·ln(1 + uses), so that among equally
relevant GPTs the used ones come first without drowning a better textual match. Pages are
fetched with one extra row instead of a COUNT, and the ranking is bounded (POOL), so a page costs
the same in a catalogue of any size (bench/search.py).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import false, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, exists, select

from store.models import Account, Gpt, GptStatus, Visibility, utcnow
from store.policy import CatalogFilter, WorkspaceGpt, admissible, catalog_filter, featured_ids

_WORD = re.compile(r"\w+", re.UNICODE)
_VISIBLE = "(g.status = 'published' AND (g.visibility = 'public' OR g.creator_id = :viewer))"
_PUBLIC = "(g.status = 'published' AND g.visibility = 'public')"  # listings: not even one's own private GPTs
POOL = 500
"""How many matches a search ranks, at most, twice over: POOL matching GPTs and POOL whose *name*
matches (on SQLite the newest; on PostgreSQL the first the GIN index yields, since ordering them by
id makes the planner walk the primary key, slow for a word it wrongly thinks common). Ranking every
match of a common word costs time in proportion to the catalogue (35 ms of CPU for a word in 24 000
of 100 000 GPTs on SQLite); with the pools it costs about the same at any size. A query matching
fewer than POOL GPTs is ranked exactly, and name matches (the strongest signal) have a pool of
their own, so a common word in a name is not lost among descriptions."""

AUTOCOMPLETE_POOL = 200
"""Autocomplete runs at every keystroke and shows 25 names: a smaller pool."""


@dataclass(frozen=True, slots=True)
class Page:
    gpts: list[Gpt]
    has_more: bool


def _terms(query: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(query)][:8]


def _fts_query(terms: list[str], *, any_term: bool, sqlite: bool) -> str:
    if sqlite:
        joiner = " OR " if any_term else " "
        return joiner.join(f'"{term}"*' for term in terms)
    joiner = " | " if any_term else " & "
    return joiner.join(f"{term}:*" for term in terms)


async def _ranked_ids(
    session: AsyncSession, terms: list[str], *, viewer: int | None, limit: int, offset: int, any_term: bool,
    workspace: int | None = None, pool: int = POOL,
) -> list[int]:
    sqlite = session.get_bind().dialect.name == "sqlite"
    match = _fts_query(terms, any_term=any_term, sqlite=sqlite)
    if not match:
        return []
    allowed = await catalog_filter(session, workspace)
    # Ranking is bounded (see POOL): POOL matches and POOL name matches, then the best of those.
    if sqlite:
        names = "{name} : (" + match + ")"
        sql = f"""
            WITH hits AS (
                SELECT * FROM (SELECT rowid AS id, bm25(gpt_fts, 10.0, 3.0, 1.0) AS score FROM gpt_fts
                               WHERE gpt_fts MATCH :match ORDER BY rowid DESC LIMIT :pool)
                UNION ALL
                SELECT * FROM (SELECT rowid AS id, bm25(gpt_fts, 10.0, 3.0, 1.0) AS score FROM gpt_fts
                               WHERE gpt_fts MATCH :names ORDER BY rowid DESC LIMIT :pool)
            ), best AS (SELECT id, MIN(score) AS score FROM hits GROUP BY id)
            SELECT g.id FROM best JOIN gpt AS g ON g.id = best.id
            WHERE {_VISIBLE} AND {allowed.where}
            ORDER BY best.score * (1.0 + 0.15 * ln(1 + g.uses)), g.id
            LIMIT :limit OFFSET :offset"""
    else:
        names = ""
        query = f"to_tsquery('simple', {_quoted(match)})"
        # The query is written into the SQL (terms are \w+ words, quoted all the same): as a bound
        # parameter, asyncpg's prepared statement soon gets a generic plan that cannot estimate how
        # many GPTs a word matches, and a rare word then costs a scan of the whole table. The name
        # pool uses the names-only index of migration 0006 (the same expression, or it is not used).
        # The pooled ids are looked up by primary key (`= ANY(ARRAY(...))`): joined to `gpt`, the
        # planner hashed them against a scan of the whole table (9 ms at 10 000 GPTs, growing).
        sql = f"""
            WITH hits AS (
                (SELECT h.id FROM gpt AS h WHERE h.search @@ {query} LIMIT :pool)
                UNION
                (SELECT h.id FROM gpt AS h WHERE to_tsvector('simple', coalesce(h.name, '')) @@ {query} LIMIT :pool)
            )
            SELECT g.id FROM gpt AS g WHERE g.id = ANY(ARRAY(SELECT id FROM hits))
            AND {_VISIBLE} AND {allowed.where}
            ORDER BY ts_rank(g.search, {query}) * (1.0 + 0.15 * ln(1 + g.uses)) DESC, g.id
            LIMIT :limit OFFSET :offset"""
    params = {"match": match, "names": names, "pool": pool, "viewer": viewer or -1, "limit": limit, "offset": offset,
              **allowed.params}
    if not sqlite:
        # Every value written in as well (all of them are whole numbers): asyncpg prepares each
        # statement, and after five runs of the same search PostgreSQL may switch it to a generic
        # plan, which cannot see how many GPTs match: a search that matches nothing then took 45 ms
        # at 100 000 GPTs instead of 6.
        sql = _ints_written_in(sql, params)
        params = {key: value for key, value in params.items() if not isinstance(value, int)}
    rows = await session.execute(text(sql), params)
    return [row[0] for row in rows.all()]


def _ints_written_in(sql: str, params: dict[str, object]) -> str:
    """`sql` with each `:name` whose value is an int replaced by that int."""
    def value(found: re.Match[str]) -> str:
        given = params.get(found.group(1))
        return str(int(given)) if isinstance(given, int) and not isinstance(given, bool) else found.group(0)
    return re.sub(r"(?<![:\w]):(\w+)", value, sql)


def _quoted(value: str) -> str:
    """A PostgreSQL string literal (standard_conforming_strings: only the quote needs doubling)."""
    return "'" + value.replace("'", "''") + "'"


async def _load(session: AsyncSession, ids: list[int]) -> list[Gpt]:
    if not ids:
        return []
    rows = await session.execute(select(Gpt).where(Gpt.id.in_(ids)))  # type: ignore[union-attr]
    by_id = {gpt.id: gpt for gpt in rows.scalars()}
    return [by_id[i] for i in ids if i in by_id]


async def search(
    session: AsyncSession, query: str, *, viewer: int | None, page: int = 0, per_page: int = 5,
    workspace: int | None = None,
) -> Page:
    """All words must match (as prefixes); if none does, any word may. `workspace`: its policy applies."""
    terms = _terms(query)
    if not terms:
        return Page([], False)
    ids = await _ranked_ids(
        session, terms, viewer=viewer, limit=per_page + 1, offset=page * per_page, any_term=False,
        workspace=workspace,
    )
    if not ids and page == 0 and len(terms) > 1:
        ids = await _ranked_ids(session, terms, viewer=viewer, limit=per_page + 1, offset=0, any_term=True,
                                workspace=workspace)
    return Page(await _load(session, ids[:per_page]), len(ids) > per_page)


class Completion(NamedTuple):
    slug: str
    name: str


async def autocomplete(
    session: AsyncSession, prefix: str, *, viewer: int | None, limit: int = 25, workspace: int | None = None
) -> list[Completion]:
    """The GPTs someone may mean while typing: those whose *name* matches first, then those whose
    description or category does; within each, the workspace's featured ones, then the most used.

    Why not the search's text rank: a prefix of one or two letters matches a good part of the
    catalogue, and bm25 over its matches cost 4 ms at 100 000 GPTs, at every keystroke, to order
    names that all match equally ("al" is as much in "Algebra" as in "Almanac"). Only the slug
    and the name are read: that is all an autocomplete list shows."""
    terms = _terms(prefix)
    allowed = await catalog_filter(session, workspace)
    params: dict[str, object] = {"viewer": viewer or -1, "limit": limit, **allowed.params}
    if not terms:
        listed = await _listed(session, allowed, ("slug", "name"), f"{_VISIBLE} AND {allowed.where}", params,
                                  limit=limit)
        return [Completion(slug, name) for slug, name in listed]
    if session.get_bind().dialect.name == "sqlite":
        match = _fts_query(terms, any_term=False, sqlite=True)
        params |= {"match": match, "names": "{name} : (" + match + ")", "pool": AUTOCOMPLETE_POOL}
        sql = f"""
            WITH hits AS (
                SELECT * FROM (SELECT rowid AS id, 0 AS named FROM gpt_fts
                               WHERE gpt_fts MATCH :names ORDER BY rowid DESC LIMIT :pool)
                UNION ALL
                SELECT * FROM (SELECT rowid AS id, 1 AS named FROM gpt_fts
                               WHERE gpt_fts MATCH :match ORDER BY rowid DESC LIMIT :pool)
            ), best AS (SELECT id, MIN(named) AS named FROM hits GROUP BY id)
            SELECT g.slug, g.name FROM best JOIN gpt AS g ON g.id = best.id
            WHERE {_VISIBLE} AND {allowed.where}
            ORDER BY best.named, {allowed.featured}, g.uses DESC, g.id LIMIT :limit"""
    else:  # written-in query and values, pooled ids by primary key: see `_ranked_ids`
        query = f"to_tsquery('simple', {_quoted(_fts_query(terms, any_term=False, sqlite=False))})"
        params["pool"] = AUTOCOMPLETE_POOL
        sql = _ints_written_in(f"""
            WITH named AS (SELECT h.id FROM gpt AS h
                           WHERE to_tsvector('simple', coalesce(h.name, '')) @@ {query} LIMIT :pool),
                 described AS (SELECT h.id FROM gpt AS h WHERE h.search @@ {query} LIMIT :pool)
            SELECT g.slug, g.name FROM gpt AS g
            WHERE g.id = ANY(ARRAY(SELECT id FROM named UNION SELECT id FROM described))
            AND {_VISIBLE} AND {allowed.where}
            ORDER BY (CASE WHEN g.id = ANY(ARRAY(SELECT id FROM named)) THEN 0 ELSE 1 END), {allowed.featured},
                     g.uses DESC, g.id
            LIMIT :limit""", params)
        params = {key: value for key, value in params.items() if not isinstance(value, int)}
    rows = await session.execute(text(sql), params)
    return [Completion(slug, name) for slug, name in rows.all()]


async def suggestions(
    session: AsyncSession, ref: str, *, viewer: int | None, limit: int = 3, workspace: int | None = None
) -> list[str]:
    """'Did you mean' names: candidates sharing a 3-letter prefix, ordered by similarity."""
    stems = [term[:3] for term in _terms(ref) if len(term) >= 2]
    candidates: list[Gpt] = []
    if stems:
        ids = await _ranked_ids(session, stems, viewer=viewer, limit=200, offset=0, any_term=True, workspace=workspace)
        candidates = await _load(session, ids)
    names = {gpt.name.casefold(): gpt.name for gpt in candidates}
    close = difflib.get_close_matches(ref.casefold(), list(names), n=limit, cutoff=0.5)
    return [names[key] for key in close]


async def browse(
    session: AsyncSession, *, category: str | None, viewer: int | None, page: int = 0, per_page: int = 5,
    workspace: int | None = None,
) -> Page:
    """Public GPTs, most used first; in a workspace, its featured GPTs first and its policy applied."""
    allowed = await catalog_filter(session, workspace)
    where = f"{_PUBLIC} AND {allowed.where}"
    params: dict[str, object] = dict(allowed.params)
    if category:
        where += " AND g.category = :category"
        params["category"] = category
    rows = await _listed(session, allowed, ("id",), where, params, limit=per_page + 1, offset=page * per_page)
    gpts = await _load(session, [gpt_id for (gpt_id,) in rows])
    return Page(gpts[:per_page], len(gpts) > per_page)


MOST_USED = (("uses", True), ("id", False))
NEWEST = (("published_at", True), ("id", True))
"""Listing orders: (column, descending) each, the columns of an index (ix_gpt_popular, ix_gpt_published)."""


async def _listed(
    session: AsyncSession, allowed: CatalogFilter, columns: tuple[str, ...], where: str, params: dict[str, object],
    *, order: tuple[tuple[str, bool], ...] = MOST_USED, limit: int, offset: int = 0,
) -> list[tuple[Any, ...]]:
    """`columns` of the GPTs `where` selects (alias `g`) in `order`, and in a workspace its
    featured GPTs before the rest.

    Why in two parts: an ORDER BY that begins with "is it featured?" cannot walk the index of the
    order, so every visible GPT was read and sorted: 45 to 69 ms at 100 000 GPTs on SQLite for the
    list autocomplete shows before a letter is typed, and for `/gpt browse`. Here the featured ones
    (the few an admin picked) are read by id, and the rest in the index's order, only as far as the
    page needs."""
    listed = ", ".join(f"g.{column} AS {column}" for column in columns)
    ordered = ", ".join(f"g.{column}{' DESC' if down else ''}" for column, down in order)
    wanted = {**params, "limit": limit, "offset": offset}
    if allowed.workspace_id is None:  # not in a workspace: nothing is featured
        sql = f"SELECT {listed} FROM gpt AS g WHERE {where} ORDER BY {ordered} LIMIT :limit OFFSET :offset"
    else:
        keys = ", ".join(f"g.{column} AS listed_{n}" for n, (column, _) in enumerate(order))
        again = ", ".join(f"listed_{n}{' DESC' if down else ''}" for n, (_, down) in enumerate(order))
        picked = "SELECT pf.gpt_id FROM workspacegpt AS pf WHERE pf.workspace_id = :pol_ws AND pf.featured"
        sql = f"""
            SELECT {", ".join(columns)} FROM (
                SELECT {listed}, 0 AS listed_rank, {keys} FROM gpt AS g WHERE g.id IN ({picked}) AND {where}
                UNION ALL
                SELECT * FROM (SELECT {listed}, 1 AS listed_rank, {keys} FROM gpt AS g
                               WHERE g.id NOT IN ({picked}) AND {where} ORDER BY {ordered} LIMIT :upto) AS rest
            ) AS listed
            ORDER BY listed_rank, {again} LIMIT :limit OFFSET :offset"""
        wanted["upto"] = limit + offset
    rows = await session.execute(text(sql), wanted)
    return [tuple(row) for row in rows.all()]


async def engaged_users(session: AsyncSession, *, days: int = 7, limit: int = 10) -> list[tuple[int, int]]:
    """(gpt id, distinct people with a successful use in the last `days`), most engaged first."""
    since = utcnow() - timedelta(days=days)
    rows = await session.execute(
        text(
            """SELECT gpt_id, COUNT(DISTINCT account_id) AS engaged FROM invocation
               WHERE status = 'ok' AND NOT is_creator AND NOT is_preview AND created_at >= :since
               GROUP BY gpt_id ORDER BY engaged DESC, gpt_id LIMIT :limit"""
        ),
        {"since": since, "limit": limit},
    )
    return [(gpt_id, engaged) for gpt_id, engaged in rows.all()]


async def engaged_for(session: AsyncSession, gpt_id: int, *, days: int = 7) -> int:
    since = utcnow() - timedelta(days=days)
    row = await session.execute(
        text(
            """SELECT COUNT(DISTINCT account_id) FROM invocation
               WHERE gpt_id = :gpt AND status = 'ok' AND NOT is_creator AND NOT is_preview
               AND created_at >= :since"""
        ),
        {"gpt": gpt_id, "since": since},
    )
    return int(row.scalar_one())


async def top(
    session: AsyncSession, *, viewer: int | None, limit: int = 10, workspace: int | None = None
) -> list[tuple[Gpt, int]]:
    """The most engaged public GPTs; in a workspace, the ones it features first (even if unused)."""
    ranked = dict(await engaged_users(session, limit=limit * 3))
    featured = await featured_ids(session, workspace) if workspace is not None else []
    shown = await admissible(session, [*ranked, *featured], workspace_id=workspace)
    gpts = {gpt.id: gpt for gpt in await _load(session, list(shown))}
    result = [(gpts[i], ranked.get(i) or await engaged_for(session, i)) for i in shown if i in gpts]
    result.sort(key=lambda pair: (not shown[pair[0].id or 0], -pair[1], -_rating(pair[0]), pair[0].id or 0))
    return result[:limit]


def _rating(gpt: Gpt) -> float:
    return gpt.rating_sum / gpt.rating_count if gpt.rating_count else 0.0


async def newest(session: AsyncSession, *, limit: int = 5, workspace: int | None = None) -> list[Gpt]:
    allowed = await catalog_filter(session, workspace)
    where = f"{_PUBLIC} AND {allowed.where}"
    rows = await _listed(session, allowed, ("id",), where, dict(allowed.params), order=NEWEST, limit=limit)
    return await _load(session, [gpt_id for (gpt_id,) in rows])


async def rising(
    session: AsyncSession, *, days_new: int = 30, limit: int = 5, workspace: int | None = None
) -> list[tuple[Gpt, int]]:
    """Recently published GPTs that people already use: a new creator's way to be seen."""
    since = utcnow() - timedelta(days=days_new)
    ranked = await engaged_users(session, limit=200)
    shown = await admissible(session, [gpt_id for gpt_id, _ in ranked], workspace_id=workspace)
    gpts = {gpt.id: gpt for gpt in await _load(session, list(shown))}
    result = []
    for gpt_id, engaged in ranked:
        gpt = gpts.get(gpt_id)
        if (
            gpt
            and gpt.status == GptStatus.PUBLISHED
            and gpt.visibility == Visibility.PUBLIC
            and gpt.published_at is not None
            and gpt.published_at >= since
        ):
            result.append((gpt, engaged))
    return result[:limit]


async def listing_marks(
    session: AsyncSession, gpts: list[Gpt], workspace: int | None
) -> tuple[dict[int, str], set[int]]:
    """What a listing shows beside each GPT: its creator's name, and whether this workspace
    features it. One statement (every search, browse and top list shows them)."""
    if not gpts:
        return {}, set()
    featured = exists().where(
        col(WorkspaceGpt.workspace_id) == workspace, col(WorkspaceGpt.gpt_id) == Gpt.id, col(WorkspaceGpt.featured),
    ) if workspace is not None else false()
    rows = await session.execute(
        select(Gpt.id, Account.display_name, featured)  # type: ignore[call-overload]
        .join(Account, col(Account.id) == Gpt.creator_id)
        .where(col(Gpt.id).in_([gpt.id for gpt in gpts]))
    )
    names: dict[int, str] = {}
    marked: set[int] = set()
    for gpt_id, name, is_featured in rows.all():
        names[gpt_id] = name
        if is_featured:
            marked.add(gpt_id)
    return names, marked
