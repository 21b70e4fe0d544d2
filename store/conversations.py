"""Conversations and their turns: all state lives here, so any replica can continue any thread."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from store.db import Writes, typed_sql
from store.models import Conversation, Turn, utcnow
from store.statements import Statements

_CONVERSATION_COLUMNS = ("gpt_id, version_id, account_id, platform, workspace_id, channel_ref, thread_ref, message_ref, "
                         "kind, created_at, updated_at").split(", ")
_CREATE = typed_sql(
    f"INSERT INTO conversation ({', '.join(_CONVERSATION_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _CONVERSATION_COLUMNS)}) RETURNING id",
    Conversation,
)
_TURN = typed_sql(
    "INSERT INTO turn (conversation_id, role, content, gpt_id, invocation_id, created_at) "
    "VALUES (:conversation_id, :role, :content, :gpt_id, :invocation_id, :created_at)",
    Turn,
)
_TOUCH = typed_sql("UPDATE conversation SET updated_at = :updated_at WHERE id = :id", Conversation)


async def by_thread(session: AsyncSession, *, platform: str, thread_ref: str) -> Conversation | None:
    rows = await session.execute(
        select(Conversation)
        .where(Conversation.platform == platform, Conversation.thread_ref == thread_ref)
        .order_by(Conversation.id.desc())  # type: ignore[union-attr]
        .limit(1)
    )
    return rows.scalar_one_or_none()


async def dm_conversation(session: AsyncSession, *, platform: str, channel_ref: str) -> Conversation | None:
    """The GPT chosen with `/gpt use` in this DM: the latest DM conversation there."""
    rows = await session.execute(
        select(Conversation)
        .where(
            Conversation.platform == platform,
            Conversation.channel_ref == channel_ref,
            Conversation.kind == "dm",
        )
        .order_by(Conversation.id.desc())  # type: ignore[union-attr]
        .limit(1)
    )
    return rows.scalar_one_or_none()


async def create(session: AsyncSession | Statements, conversation: Conversation) -> None:
    """Insert a new conversation in one statement (no unit of work); see `created`."""
    now = utcnow()
    conversation.created_at = conversation.updated_at = now
    values = {column: getattr(conversation, column) for column in _CONVERSATION_COLUMNS}
    created(conversation, (await session.execute(_CREATE, values)).scalar_one(), now)


def created(conversation: Conversation, conversation_id: int, now: datetime) -> None:
    """`conversation` (made by `store.db.loaded`) as written with this id at `now`. It stays out
    of the ORM's reach, as `loaded` leaves it (making it detached cost ~5 % of an ask's CPU):
    nothing adds a conversation it has just created to a session."""
    conversation.__dict__.update(id=conversation_id, created_at=now, updated_at=now)


def turn_writes(
    conversation: Conversation, *, role: str, content: str, gpt_id: int | None, invocation_id: int | None = None,
) -> Writes:
    """A turn and the conversation's `updated_at`, as statements (for `Database.grouped`)."""
    assert conversation.id is not None
    now = utcnow()
    conversation.updated_at = now
    return [
        (_TURN, {"conversation_id": conversation.id, "role": role, "content": content, "gpt_id": gpt_id,
                 "invocation_id": invocation_id, "created_at": now}),
        (_TOUCH, {"updated_at": now, "id": conversation.id}),
    ]


async def record_turn(
    session: AsyncSession | Statements, conversation: Conversation, *, role: str, content: str,
    gpt_id: int | None, invocation_id: int | None = None, touch: bool = True,
) -> None:
    """A turn in plain statements, and the conversation's `updated_at` unless
    `touch` is False (a conversation created in the same transaction is as new as its turn)."""
    assert conversation.id is not None
    now = utcnow()
    await session.execute(_TURN, {
        "conversation_id": conversation.id, "role": role, "content": content, "gpt_id": gpt_id,
        "invocation_id": invocation_id, "created_at": now,
    })
    if touch:
        await session.execute(_TOUCH, {"updated_at": now, "id": conversation.id})
    conversation.updated_at = now


_REFS = typed_sql("UPDATE conversation SET message_ref = :message_ref, thread_ref = :thread_ref WHERE id = :id",
                  Conversation)
_TOUCH_AND_REFS = typed_sql(
    "UPDATE conversation SET updated_at = :updated_at, message_ref = :message_ref, thread_ref = :thread_ref "
    "WHERE id = :id",
    Conversation,
)


def with_refs(writes: Writes, conversation_id: int, *, message_ref: str | None, thread_ref: str | None) -> Writes:
    """`writes` and where the answer that opened the conversation was posted (and the thread it
    started), for `Database.grouped`: folded into the conversation's `updated_at` among them when
    there is one, so that a first answer updates its conversation once."""
    refs = {"message_ref": message_ref, "thread_ref": thread_ref, "id": conversation_id}
    for index, (statement, params) in enumerate(writes):
        if statement is _TOUCH and params["id"] == conversation_id:
            return [*writes[:index], (_TOUCH_AND_REFS, {**params, **refs}), *writes[index + 1:]]
    return [*writes, (_REFS, refs)]


class PastTurn(NamedTuple):
    """A turn as a prompt needs it."""

    role: str
    content: str
    gpt_id: int | None


_HISTORY = typed_sql(
    "SELECT role, content, gpt_id FROM turn WHERE conversation_id = :conversation_id ORDER BY id DESC LIMIT :limit",
    Turn,
)


async def history(session: AsyncSession | Statements, conversation_id: int, *, limit: int) -> list[PastTurn]:
    """The last `limit` turns, oldest first (plain rows: every answer to a conversation reads them)."""
    if limit <= 0:
        return []
    rows = await session.execute(_HISTORY, {"conversation_id": conversation_id, "limit": limit})
    return [PastTurn(*row) for row in reversed(rows.all())]


async def first_prompt(session: AsyncSession, conversation_id: int) -> str:
    rows = await session.execute(
        select(Turn.content)
        .where(Turn.conversation_id == conversation_id, Turn.role == "user")
        .order_by(Turn.id)  # type: ignore[arg-type]
        .limit(1)
    )
    return rows.scalar_one_or_none() or ""
