"""Conversations and their turns: all state lives here, so any replica can continue any thread."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from store.models import Conversation, Turn, utcnow


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


async def history(session: AsyncSession, conversation_id: int, *, limit: int) -> list[Turn]:
    if limit <= 0:
        return []
    rows = await session.execute(
        select(Turn)
        .where(Turn.conversation_id == conversation_id)
        .order_by(Turn.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    return list(reversed(list(rows.scalars())))


def add_turn(
    session: AsyncSession, conversation: Conversation, *, role: str, content: str, gpt_id: int | None,
    invocation_id: int | None = None,
) -> Turn:
    assert conversation.id is not None
    turn = Turn(
        conversation_id=conversation.id, role=role, content=content, gpt_id=gpt_id, invocation_id=invocation_id
    )
    session.add(turn)
    conversation.updated_at = utcnow()
    session.add(conversation)
    return turn


async def first_prompt(session: AsyncSession, conversation_id: int) -> str:
    rows = await session.execute(
        select(Turn.content)
        .where(Turn.conversation_id == conversation_id, Turn.role == "user")
        .order_by(Turn.id)  # type: ignore[arg-type]
        .limit(1)
    )
    return rows.scalar_one_or_none() or ""
