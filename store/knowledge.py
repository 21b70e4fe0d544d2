"""Knowledge files and their passages: storing them, and finding the passages for a question.

Files are immutable and shared by the versions that list them; a draft lists its files in its
data until publishing writes `version_knowledge`. Retrieval only ever looks at the files it is
given, so a GPT can never draw on another GPT's passages. Ranking is full-text (bm25 on SQLite,
ts_rank on PostgreSQL) over every question word: stemmed on SQLite (porter, in the index and in the
query), taken as a prefix after a light suffix trim on PostgreSQL, so "derivatives" finds
"derivative" on both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, text, update
from sqlalchemy import select as columns
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from store.models import BuilderDraft, GptVersion, KnowledgeFile, KnowledgePassage, VersionKnowledge

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 16
STOPWORDS = frozenset(
    """a an and are as at be but by can could did do does for from had has have how i if in into is it its
    me my no not of on or our should so than that the their them then there these they this to up us was we
    were what when where which who whom why will with would you your about after all also any been before
    being between both each few more most other over same some such through under until very
    au aux avec ce ces dans de des du elle en est et eux il je la le les leur lui ma mais me mes moi mon ne
    nos notre nous on ou où par pas pour qu que qui sa se ses son sur ta te tes toi ton tu un une vos votre
    vous comment quel quelle quels quelles quoi est-ce""".split()
)
_SUFFIXES = ("ies", "ing", "es", "ed", "ly", "s")


@dataclass(frozen=True, slots=True)
class Found:
    """A passage found for a question, with what a citation needs."""

    id: int
    file_id: int
    file_name: str
    heading: str
    page: int | None
    position: int
    text: str
    rank: float


def words(question: str) -> list[str]:
    """The words worth searching for: no stopwords, no duplicates."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(question.lower()):
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        seen.setdefault(word, None)
        if len(seen) >= MAX_TERMS:
            break
    return list(seen)


def prefixes(question: str) -> list[str]:
    """The words with a suffix trimmed, to be matched as prefixes ("derivatives" → `derivative:*`):
    PostgreSQL's 'simple' configuration does not stem, and its GIN index answers a prefix cheaply."""
    trimmed: dict[str, None] = {}
    for word in words(question):
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 4:
                word = word[: -len(suffix)]
                break
        trimmed.setdefault(word, None)
    return list(trimmed)


async def add_file(
    session: AsyncSession, *, owner_id: int, name: str, kind: str, size: int, sha256: str, pages: int | None,
    passages: Sequence[tuple[str, str, int | None]], embeddings: Sequence[bytes] | None = None,
) -> KnowledgeFile:
    """Write a file and its passages (text, heading, page) in the caller's transaction."""
    row = KnowledgeFile(owner_id=owner_id, name=name[:200], kind=kind, size=size, sha256=sha256, pages=pages,
                        passage_count=len(passages))
    session.add(row)
    await session.flush()
    rows = [
        {"file_id": row.id, "position": position, "text": body, "heading": heading[:300], "page": page,
         "embedding": embeddings[position] if embeddings else None}
        for position, (body, heading, page) in enumerate(passages)
    ]
    for start in range(0, len(rows), 2000):
        await session.execute(insert(KnowledgePassage), rows[start:start + 2000])
    return row


async def files(session: AsyncSession, ids: Sequence[int]) -> list[KnowledgeFile]:
    """The files with these ids, in that order (ids that no longer exist are left out)."""
    if not ids:
        return []
    found = {f.id: f for f in (await session.execute(select(KnowledgeFile).where(col(KnowledgeFile.id).in_(ids)))).scalars()}
    return [found[i] for i in ids if i in found]


async def version_file_ids(session: AsyncSession, version_id: int) -> list[int]:
    rows = await session.execute(
        select(VersionKnowledge.file_id).where(VersionKnowledge.version_id == version_id).order_by(col(VersionKnowledge.file_id))
    )
    return list(rows.scalars())


async def attach(session: AsyncSession, version: GptVersion, file_ids: Sequence[int]) -> None:
    """List these files in a freshly published version (its one chance: versions are immutable)."""
    if file_ids:
        await session.execute(insert(VersionKnowledge), [{"version_id": version.id, "file_id": i} for i in file_ids])
    await session.execute(
        update(GptVersion).where(col(GptVersion.id) == version.id).values(knowledge_files=len(file_ids))
    )
    version.knowledge_files = len(file_ids)


async def delete_unused(session: AsyncSession, owner_id: int, candidates: Iterable[int], keep: Iterable[int] = ()) -> int:
    """Delete those of `candidates` (files of `owner_id`) that no version and no draft lists any more."""
    ids = set(candidates) - set(keep)
    if not ids:
        return 0
    listed = set((await session.execute(
        select(VersionKnowledge.file_id).where(col(VersionKnowledge.file_id).in_(ids))
    )).scalars())
    drafts = (await session.execute(select(BuilderDraft.data).where(BuilderDraft.account_id == owner_id))).scalars()
    for data in drafts:
        listed.update(item["id"] for item in data.get("knowledge", []))
    doomed = [i for i in ids - listed]
    if not doomed:
        return 0
    await session.execute(delete(KnowledgePassage).where(col(KnowledgePassage.file_id).in_(doomed)))
    result = await session.execute(
        delete(KnowledgeFile).where(col(KnowledgeFile.id).in_(doomed), col(KnowledgeFile.owner_id) == owner_id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


_SQLITE_SEARCH = text(
    """SELECT p.id, p.file_id, f.name, p.heading, p.page, p.position, p.text, bm25(knowledge_fts, 1.0, 0.6, 0.0) AS rank
         FROM knowledge_fts
         JOIN knowledge_passage p ON p.id = knowledge_fts.rowid
         JOIN knowledge_file f ON f.id = p.file_id
        WHERE knowledge_fts MATCH :query
        ORDER BY rank LIMIT :limit"""
)
_POSTGRES_SEARCH = text(
    """SELECT p.id, p.file_id, f.name, p.heading, p.page, p.position, p.text, ts_rank(p.search, q) AS rank
         FROM knowledge_passage p
         JOIN knowledge_file f ON f.id = p.file_id,
              to_tsquery('simple', :query) q
        WHERE p.file_id = ANY(:ids) AND p.search @@ q
        ORDER BY rank DESC, p.id LIMIT :limit"""
)


async def search(session: AsyncSession, file_ids: Sequence[int], question: str, *, limit: int = 8) -> list[Found]:
    """The passages of these files that best match the question, best first (empty if none match)."""
    if not file_ids or not words(question):
        return []
    if session.get_bind().dialect.name == "sqlite":  # stemmed by the index's porter tokenizer, both sides
        scope = " OR ".join(f'"{int(i)}"' for i in file_ids)
        query = f"file_id : ({scope}) AND (" + " OR ".join(f'"{w}"' for w in words(question)) + ")"
        rows = await session.execute(_SQLITE_SEARCH, {"query": query, "limit": limit})
        return [_found(row, -float(row[7])) for row in rows]
    rows = await session.execute(
        _POSTGRES_SEARCH, {"query": " | ".join(f"{w}:*" for w in prefixes(question)), "ids": list(file_ids), "limit": limit}
    )
    return [_found(row, float(row[7])) for row in rows]


_FOUND_COLUMNS = (col(KnowledgePassage.id), col(KnowledgePassage.file_id), col(KnowledgeFile.name),
                  col(KnowledgePassage.heading), col(KnowledgePassage.page), col(KnowledgePassage.position),
                  col(KnowledgePassage.text))


async def openings(session: AsyncSession, file_ids: Sequence[int], *, limit: int = 4) -> list[Found]:
    """The first passages of each file: what a question that names nothing in particular
    ("what is this about?") is grounded on."""
    if not file_ids:
        return []
    rows = await session.execute(
        columns(*_FOUND_COLUMNS)
        .join(KnowledgeFile, col(KnowledgeFile.id) == col(KnowledgePassage.file_id))
        .where(col(KnowledgePassage.file_id).in_(file_ids), col(KnowledgePassage.position) < 2)
        .order_by(col(KnowledgePassage.position), col(KnowledgePassage.file_id))
        .limit(limit)
    )
    return [_found(row, 0.0) for row in rows]


async def embeddings(session: AsyncSession, file_ids: Sequence[int], *, limit: int = 5000) -> list[tuple[int, bytes]]:
    """(passage id, embedding) of these files' passages that have one, for ranking by meaning."""
    if not file_ids:
        return []
    rows = await session.execute(
        select(KnowledgePassage.id, KnowledgePassage.embedding)
        .where(col(KnowledgePassage.file_id).in_(file_ids), col(KnowledgePassage.embedding).is_not(None))
        .limit(limit)
    )
    return [(int(i), bytes(e)) for i, e in rows]


async def passages(session: AsyncSession, ids: Sequence[int]) -> list[Found]:
    """These passages with their file names, in the order given."""
    if not ids:
        return []
    rows = await session.execute(
        columns(*_FOUND_COLUMNS)
        .join(KnowledgeFile, col(KnowledgeFile.id) == col(KnowledgePassage.file_id))
        .where(col(KnowledgePassage.id).in_(ids))
    )
    found = {row[0]: _found(row, 0.0) for row in rows}
    return [found[i] for i in ids if i in found]


async def count_passages(session: AsyncSession, file_ids: Sequence[int]) -> int:
    if not file_ids:
        return 0
    return int((await session.execute(
        select(func.count()).select_from(KnowledgePassage).where(col(KnowledgePassage.file_id).in_(file_ids))
    )).scalar_one())


def _found(row: Sequence[object], rank: float) -> Found:
    id_, file_id, name, heading, page, position, body = row[:7]
    return Found(int(id_), int(file_id), str(name), str(heading or ""), None if page is None else int(page),  # type: ignore[call-overload]
                 int(position), str(body), rank)  # type: ignore[call-overload]
