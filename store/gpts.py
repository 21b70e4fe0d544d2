"""GPTs and their versions: lookup with visibility, creation, new versions."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import bindparam, func, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from store.db import detached, loaded
from store.models import Account, Gpt, GptStatus, GptVersion, Visibility, utcnow
from store.statements import Statements


@dataclass(frozen=True, slots=True)
class GptFields:
    name: str
    description: str
    instructions: str
    starters: tuple[str, ...]
    category: str
    model: str
    visibility: str


class NameTaken(Exception):
    pass


def name_key(name: str) -> str:
    return " ".join(name.casefold().split())


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return (slug or "gpt")[:40]


def can_see(gpt: Gpt, viewer_id: int | None, *, by_slug: bool = False) -> bool:
    """Private GPTs are their creator's alone; unlisted ones are reached only by exact slug."""
    if gpt.status == GptStatus.DELETED:
        return False
    if viewer_id is not None and gpt.creator_id == viewer_id:
        return True
    if gpt.taken_down_at is not None:  # the operator took it down: gone for all but its creator
        return False
    if gpt.status != GptStatus.PUBLISHED:
        return False
    if gpt.visibility == Visibility.PUBLIC:
        return True
    return gpt.visibility == Visibility.UNLISTED and by_slug


# Built once: a statement built on each call costs its construction and its cache key every time.
_BY_REF = select(Gpt).where(or_(col(Gpt.slug) == bindparam("slug"), col(Gpt.name_key) == bindparam("key")))


async def find_gpt(session: AsyncSession, ref: str, *, viewer_id: int | None) -> Gpt | None:
    """A GPT by slug (exact) or by name (any case), as this viewer may see it."""
    ref = ref.strip()
    if not ref:
        return None
    found = (await session.execute(_BY_REF, {"slug": ref.lower(), "key": name_key(ref)})).scalars().all()
    return seen_by(list(found), ref, viewer_id)


GPT_KEYS = [column.key for column in Gpt.__table__.columns]  # type: ignore[attr-defined]
_BY_REF_ROWS = select(*Gpt.__table__.columns).where(  # type: ignore[attr-defined]
    or_(col(Gpt.slug) == bindparam("slug"), col(Gpt.name_key) == bindparam("key")))


async def find_gpt_to_read(statements: Statements, ref: str, *, viewer_id: int | None) -> Gpt | None:
    """`find_gpt` in one driver-level statement, the row made into a `Gpt` without the ORM: every
    ask looks its GPT up. The Gpt is as if loaded by a closed session."""
    ref = ref.strip()
    if not ref:
        return None
    rows = (await statements.execute(_BY_REF_ROWS, {"slug": ref.lower(), "key": name_key(ref)})).all()
    return seen_by([detached(Gpt, dict(zip(GPT_KEYS, row, strict=True))) for row in rows], ref, viewer_id)


def seen_by(found: list[Gpt], ref: str, viewer_id: int | None) -> Gpt | None:
    """The slug's GPT if this viewer may see it, else the name's: a slug is exact, a name is not."""
    by_slug = next((gpt for gpt in found if gpt.slug == ref.lower()), None)
    if by_slug is not None and can_see(by_slug, viewer_id, by_slug=True):
        return by_slug
    by_name = next((gpt for gpt in found if gpt.name_key == name_key(ref)), None)
    if by_name is not None and can_see(by_name, viewer_id):
        return by_name
    return None


async def get_version(session: AsyncSession, version_id: int) -> GptVersion:
    version = await session.get(GptVersion, version_id)
    assert version is not None
    return version


_GPT_COLUMNS = list(Gpt.__table__.columns)  # type: ignore[attr-defined]
_VERSION_COLUMNS = list(GptVersion.__table__.columns)  # type: ignore[attr-defined]
_FOR_ANSWER = (
    select(*_GPT_COLUMNS, *_VERSION_COLUMNS, Account.display_name)  # type: ignore[call-overload]
    .join_from(Gpt, Account, Account.id == Gpt.creator_id)  # type: ignore[arg-type]
    .join(GptVersion, GptVersion.id == bindparam("version_id"))  # type: ignore[arg-type]
    .where(Gpt.id == bindparam("gpt_id"))
)


async def for_answer(
    session: AsyncSession | Statements, gpt_id: int, version_id: int,
) -> tuple[Gpt, GptVersion, str]:
    """The GPT, the version a conversation is pinned to, and the creator's name: one statement,
    its row made into objects without the ORM's session or pydantic's validation (store.db.loaded)."""
    row = (await session.execute(_FOR_ANSWER, {"gpt_id": gpt_id, "version_id": version_id})).one()
    split = len(_GPT_COLUMNS)
    gpt = loaded(Gpt, {column.key: value for column, value in zip(_GPT_COLUMNS, row[:split], strict=True)})
    version = loaded(GptVersion, {
        column.key: value for column, value in zip(_VERSION_COLUMNS, row[split:-1], strict=True)
    })
    return gpt, version, row[-1]


async def create_gpt(
    session: AsyncSession, *, creator_id: int, fields: GptFields, remixed_from_id: int | None = None
) -> tuple[Gpt, GptVersion]:
    """Insert a GPT and its version 1; raise NameTaken if another GPT has this name."""
    base = slugify(fields.name)
    for attempt in range(50):
        slug = base if attempt == 0 else f"{base}-{attempt + 1}"
        try:
            async with session.begin_nested():
                gpt = Gpt(
                    slug=slug,
                    name_key=name_key(fields.name),
                    creator_id=creator_id,
                    remixed_from_id=remixed_from_id,
                    name=fields.name,
                    description=fields.description,
                    category=fields.category,
                    visibility=fields.visibility,
                )
                session.add(gpt)
                await session.flush()
            break
        except IntegrityError:
            if await _name_taken(session, fields.name, None):
                raise NameTaken(fields.name) from None
    else:  # pragma: no cover - fifty GPTs with one slug
        raise NameTaken(fields.name)
    version = await publish_version(session, gpt, fields)
    return gpt, version


async def _name_taken(session: AsyncSession, name: str, except_id: int | None) -> bool:
    query = select(Gpt.id).where(Gpt.name_key == name_key(name))
    if except_id is not None:
        query = query.where(Gpt.id != except_id)
    return (await session.execute(query)).first() is not None


async def publish_version(session: AsyncSession, gpt: Gpt, fields: GptFields) -> GptVersion:
    """Append a new immutable version and make it the GPT's public face."""
    assert gpt.id is not None
    if await _name_taken(session, fields.name, gpt.id):
        raise NameTaken(fields.name)
    number = gpt.version_count + 1
    version = GptVersion(
        gpt_id=gpt.id,
        number=number,
        name=fields.name,
        description=fields.description,
        instructions=fields.instructions,
        starters=list(fields.starters),
        category=fields.category,
        model=fields.model,
    )
    session.add(version)
    await session.flush()
    now = utcnow()
    gpt.version_count = number
    gpt.current_version_id = version.id
    gpt.name = fields.name
    gpt.name_key = name_key(fields.name)
    gpt.description = fields.description
    gpt.category = fields.category
    gpt.visibility = fields.visibility
    gpt.status = GptStatus.PUBLISHED
    gpt.updated_at = now
    gpt.published_at = gpt.published_at or now
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise NameTaken(fields.name) from None
    return version


async def mine(session: AsyncSession, account_id: int) -> list[Gpt]:
    rows = await session.execute(
        select(Gpt)
        .where(Gpt.creator_id == account_id, Gpt.status != GptStatus.DELETED)
        .order_by(Gpt.created_at.desc())  # type: ignore[attr-defined]
    )
    return list(rows.scalars())


async def remix_counts(session: AsyncSession, gpt_ids: list[int]) -> dict[int, int]:
    if not gpt_ids:
        return {}
    rows = await session.execute(
        select(Gpt.remixed_from_id, func.count())
        .where(Gpt.remixed_from_id.in_(gpt_ids), Gpt.status != GptStatus.DELETED)  # type: ignore[union-attr]
        .group_by(col(Gpt.remixed_from_id))
    )
    return {source: count for source, count in rows.all() if source is not None}


async def remixes_of(session: AsyncSession, gpt_id: int) -> list[Gpt]:
    rows = await session.execute(
        select(Gpt).where(Gpt.remixed_from_id == gpt_id, Gpt.status == GptStatus.PUBLISHED)
    )
    return list(rows.scalars())
