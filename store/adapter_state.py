"""Small facts an adapter keeps across restarts and replicas, by key.

Why a table rather than a file next to the database: on PostgreSQL several replicas (Discord shards
split across processes) share one store and no filesystem, and each must see, for instance, that the
application commands were already registered with this exact catalogue (the Discord adapter keeps a
hash of the command payload here, so it re-registers only when the catalogue changed).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from store.models import utcnow


class AdapterState(SQLModel, table=True):
    __tablename__ = "adapter_state"
    key: str = Field(primary_key=True, max_length=160)
    value: str = Field(max_length=200)
    updated_at: datetime = Field(default_factory=utcnow)


async def get_value(session: AsyncSession, key: str) -> str | None:
    row = await session.get(AdapterState, key[:160])
    return row.value if row is not None else None


async def put_value(session: AsyncSession, key: str, value: str) -> None:
    """Insert or replace; two replicas writing the same key at once both end with a value they wrote."""
    row = await session.get(AdapterState, key[:160])
    if row is None:
        session.add(AdapterState(key=key[:160], value=value[:200]))
    else:
        row.value, row.updated_at = value[:200], utcnow()
        session.add(row)
