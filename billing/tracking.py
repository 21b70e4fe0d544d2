"""Invocation tracking: every use is recorded before the LLM is called and completed after.

The pending row is the promise that the use will be accounted for: if the process dies in the
middle, `fail_interrupted()` at start-up marks it failed, so it never earns and never vanishes.
The platform's event id makes a second delivery of the same request a no-op (unique key).

Both statements run on every ask, so they are plain SQL, one statement each (store.db.typed_sql).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from store import conversations
from store.db import Writes, loaded, typed_sql
from store.models import Conversation, Gpt, Invocation, InvocationStatus, Turn, utcnow
from store.statements import Statements

Executor = AsyncSession | Statements


class DuplicateDelivery(Exception):
    """This platform event was already turned into an invocation."""


_COLUMNS = ("event_key, gpt_id, version_id, account_id, workspace_id, conversation_id, platform, status, is_preview, "
            "is_creator, error_code, model, latency_ms, prompt_tokens, completion_tokens, day, created_at, finished_at")
# One statement, no savepoint: a second delivery of the same event inserts nothing.
_BEGIN = typed_sql(
    f"INSERT INTO invocation ({_COLUMNS}) VALUES ({', '.join(':' + c for c in _COLUMNS.split(', '))}) "
    "ON CONFLICT (event_key) DO NOTHING RETURNING id",
    Invocation,
)

# PostgreSQL: the pending use, the conversation it opens and the member's message in one
# statement (a data-modifying WITH) instead of a transaction of three (6 round trips -> 1). The
# conversation's id is drawn for the invocation, and the conversation and the message are written
# only from the invocation's row: a second delivery of the event writes nothing at all.
_PENDING = (
    f"INSERT INTO invocation ({_COLUMNS}) VALUES (:event_key, :gpt_id, :version_id, :account_id, :workspace_id, "
    "{conversation}, :platform, 'pending', :is_preview, :is_creator, NULL, :model, NULL, 0, 0, :day, :created_at, NULL) "
    "ON CONFLICT (event_key) DO NOTHING RETURNING id, conversation_id"
)
_MESSAGE = ("INSERT INTO turn (conversation_id, role, content, gpt_id, invocation_id, created_at) "
            "SELECT i.conversation_id, 'user', :content, :gpt_id, NULL, :created_at FROM i")
_BEGIN_IN_NEW = typed_sql(
    "WITH i AS ({pending}), c AS (INSERT INTO conversation (id, gpt_id, version_id, account_id, platform, "
    "workspace_id, channel_ref, thread_ref, message_ref, kind, created_at, updated_at) SELECT i.conversation_id, "
    ":gpt_id, :version_id, :account_id, :platform, :workspace_id, :channel_ref, :thread_ref, NULL, :kind, "
    ":created_at, :created_at FROM i), t AS ({message}) SELECT id, conversation_id FROM i".format(
        pending=_PENDING.format(conversation="nextval(pg_get_serial_sequence('conversation', 'id'))"),
        message=_MESSAGE),
    Invocation, Conversation, Turn,
)
_BEGIN_WITH_MESSAGE = typed_sql(
    "WITH i AS ({pending}), t AS ({message}), c AS (UPDATE conversation SET updated_at = :created_at "
    "WHERE id = :conversation_id AND EXISTS (SELECT 1 FROM i)) SELECT id, conversation_id FROM i".format(
        pending=_PENDING.format(conversation=":conversation_id"), message=_MESSAGE),
    Invocation, Conversation, Turn,
)

_FINISH = typed_sql(
    "UPDATE invocation SET status = :status, error_code = :error_code, prompt_tokens = :prompt_tokens, "
    "completion_tokens = :completion_tokens, latency_ms = :latency_ms, finished_at = :finished_at "
    "WHERE id = :id AND status = 'pending'",
    Invocation,
)
# An answer that came out whole still earns nothing if its GPT was taken down meanwhile: the row
# says so ('blocked', 'taken_down'), read in the same statement that completes it.
_TAKEN = "(SELECT taken_down_at FROM gpt WHERE gpt.id = :gpt_id) IS NOT NULL"
_FINISH_UNLESS_TAKEN_DOWN = typed_sql(
    f"UPDATE invocation SET status = CASE WHEN {_TAKEN} THEN 'blocked' ELSE :status END, "
    f"error_code = CASE WHEN {_TAKEN} THEN 'taken_down' ELSE :error_code END, "
    f"prompt_tokens = CASE WHEN {_TAKEN} THEN invocation.prompt_tokens ELSE :prompt_tokens END, "
    f"completion_tokens = CASE WHEN {_TAKEN} THEN invocation.completion_tokens ELSE :completion_tokens END, "
    f"latency_ms = CASE WHEN {_TAKEN} THEN invocation.latency_ms ELSE :latency_ms END, "
    "finished_at = :finished_at WHERE id = :id AND status = 'pending'",
    Invocation,
)
_COUNT_USE = typed_sql("UPDATE gpt SET uses = uses + 1 WHERE id = :gpt_id AND taken_down_at IS NULL")


async def begin(
    session: Executor,
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
    """Write the use pending, in the caller's transaction; DuplicateDelivery if this platform
    event already has one. The `Invocation` returned is built from the row's values without
    validation (store.db.loaded): its values are the ones just written."""
    assert gpt.id is not None
    now = utcnow()
    values = {
        "event_key": event_key, "gpt_id": gpt.id, "version_id": version_id, "account_id": account_id,
        "workspace_id": workspace_id, "conversation_id": conversation_id, "platform": platform,
        "status": InvocationStatus.PENDING.value, "is_preview": is_preview, "is_creator": gpt.creator_id == account_id,
        "error_code": None, "model": model, "latency_ms": None, "prompt_tokens": 0, "completion_tokens": 0,
        "day": now.date(), "created_at": now, "finished_at": None,
    }
    new_id = (await session.execute(_BEGIN, values)).scalar_one_or_none()
    if new_id is None:
        raise DuplicateDelivery(event_key)
    values["id"] = new_id
    return loaded(Invocation, values)


async def begin_answer(
    session: Statements,
    conversation: Conversation,
    *,
    gpt: Gpt,
    version_id: int,
    account_id: int,
    platform: str,
    workspace_id: int | None,
    event_key: str | None,
    model: str,
    message: str | None,
) -> Invocation:
    """Write an answer's use pending, with the conversation when it is new (then given its id) and
    the member's `message` (None: an answer given again, to the message already kept), in the
    caller's transaction on SQLite and in one statement on PostgreSQL; DuplicateDelivery, with
    nothing written, if this platform event already has a use."""
    assert gpt.id is not None
    new = conversation.id is None
    if session.is_sqlite or message is None:
        if new:
            await conversations.create(session, conversation)
        invocation = await begin(
            session, gpt=gpt, version_id=version_id, account_id=account_id, platform=platform, event_key=event_key,
            workspace_id=workspace_id, conversation_id=conversation.id, model=model,
        )
        if message is not None:
            await conversations.record_turn(session, conversation, role="user", content=message, gpt_id=gpt.id,
                                            touch=not new)
        return invocation
    now = utcnow()
    values = {
        "event_key": event_key, "gpt_id": gpt.id, "version_id": version_id, "account_id": account_id,
        "workspace_id": workspace_id, "conversation_id": conversation.id, "platform": platform, "is_preview": False,
        "is_creator": gpt.creator_id == account_id, "model": model, "day": now.date(), "created_at": now, "content": message,
        "channel_ref": conversation.channel_ref, "thread_ref": conversation.thread_ref, "kind": conversation.kind,
    }
    row = (await session.execute(_BEGIN_IN_NEW if new else _BEGIN_WITH_MESSAGE, values)).first()
    if row is None:
        raise DuplicateDelivery(event_key)
    if new:
        conversations.created(conversation, row[1], now)
    conversation.updated_at = now
    values.update(id=row[0], conversation_id=row[1], status=InvocationStatus.PENDING.value, error_code=None,
                  latency_ms=None, prompt_tokens=0, completion_tokens=0, finished_at=None)
    for key in ("content", "channel_ref", "thread_ref", "kind"):
        del values[key]
    return loaded(Invocation, values)


def finish_writes(
    invocation: Invocation,
    *,
    ok: bool,
    error_code: str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> Writes:
    """The statements that complete a pending use (for `Database.grouped`, or `finish`). A
    successful use counts for its GPT, unless the GPT was taken down while it answered: then it
    is recorded blocked ('taken_down') and earns nothing."""
    now = utcnow()
    started = invocation.created_at
    latency = int((now - started).total_seconds() * 1000) if started else None
    status = InvocationStatus.OK if ok else InvocationStatus.ERROR
    writes: Writes = [(_FINISH_UNLESS_TAKEN_DOWN if ok else _FINISH, {
        "id": invocation.id, "gpt_id": invocation.gpt_id, "status": status.value, "error_code": error_code,
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "latency_ms": latency,
        "finished_at": now,
    })]
    if ok and not invocation.is_creator and not invocation.is_preview:
        writes.append((_COUNT_USE, {"gpt_id": invocation.gpt_id}))
    return writes


async def finish(
    session: Executor,
    invocation: Invocation,
    *,
    ok: bool,
    error_code: str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> None:
    """Complete a pending use in the caller's transaction (see `finish_writes`)."""
    for statement, params in finish_writes(invocation, ok=ok, error_code=error_code, prompt_tokens=prompt_tokens,
                                           completion_tokens=completion_tokens):
        await session.execute(statement, params)


async def fail_interrupted(session: AsyncSession, *, older_than: timedelta = timedelta(0)) -> int:
    """Mark uses left pending by a process that died as failed; returns how many."""
    cutoff = utcnow() - older_than
    result = await session.execute(
        update(Invocation)
        .where(Invocation.status == InvocationStatus.PENDING, Invocation.created_at <= cutoff)  # type: ignore[arg-type]
        .values(status=InvocationStatus.ERROR, error_code="interrupted", finished_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
