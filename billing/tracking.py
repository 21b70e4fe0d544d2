"""Invocation tracking: every use is recorded before the LLM is called and completed after.

The pending row is the promise that the use will be accounted for: if the process dies in the
middle, `fail_interrupted()` at start-up marks it failed, so it never earns and never vanishes.
The platform's event id makes a second delivery of the same request a no-op (unique key).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Gpt, Invocation, InvocationStatus, utcnow


class DuplicateDelivery(Exception):
    """This platform event was already turned into an invocation."""


async def begin(
    session: AsyncSession,
    *,
    gpt: Gpt,
    version_id: int,
    account_id: int,
    platform: str,
    event_key: str | None,
    workspace_id: int | None,
    conversation_id: int | None,
    model: str,
    is_preview: bool = False,
) -> Invocation:
    assert gpt.id is not None
    invocation = Invocation(
        event_key=event_key,
        gpt_id=gpt.id,
        version_id=version_id,
        account_id=account_id,
        workspace_id=workspace_id,
        conversation_id=conversation_id,
        platform=platform,
        model=model,
        is_preview=is_preview,
        is_creator=gpt.creator_id == account_id,
    )
    # One statement, no savepoint: a second delivery of the same event inserts nothing.
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    insert = dialect.insert(Invocation).values(**invocation.model_dump(exclude={"id"}))
    insert = insert.on_conflict_do_nothing(index_elements=["event_key"]).returning(Invocation.id)  # type: ignore[arg-type]
    new_id = (await session.execute(insert)).scalar_one_or_none()
    if new_id is None:
        raise DuplicateDelivery(event_key)
    invocation.id = new_id
    return invocation


async def finish(
    session: AsyncSession,
    invocation: Invocation,
    *,
    ok: bool,
    error_code: str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> None:
    now = utcnow()
    started = invocation.created_at
    latency = int((now - started).total_seconds() * 1000) if started else None
    status = InvocationStatus.OK if ok else InvocationStatus.ERROR
    await session.execute(
        update(Invocation)
        .where(Invocation.id == invocation.id, Invocation.status == InvocationStatus.PENDING)  # type: ignore[arg-type]
        .values(
            status=status,
            error_code=error_code,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=latency,
            finished_at=now,
        )
    )
    if ok and not invocation.is_creator and not invocation.is_preview:
        await session.execute(
            update(Gpt).where(Gpt.id == invocation.gpt_id).values(uses=Gpt.uses + 1)  # type: ignore[arg-type]
        )


async def fail_interrupted(session: AsyncSession, *, older_than: timedelta = timedelta(0)) -> int:
    """Mark uses left pending by a process that died as failed; returns how many."""
    cutoff = utcnow() - older_than
    result = await session.execute(
        update(Invocation)
        .where(Invocation.status == InvocationStatus.PENDING, Invocation.created_at <= cutoff)  # type: ignore[arg-type]
        .values(status=InvocationStatus.ERROR, error_code="interrupted", finished_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
