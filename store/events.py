"""Platform deliveries already handled (`SeenEvent`): kept long enough to catch every retry.

Platforms retry within minutes (Slack: three times over about an hour); a day of keys is plenty,
and pruning keeps the table, and the insert that guards every event, small.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import SeenEvent, utcnow

KEEP = timedelta(days=1)


async def prune_seen(session: AsyncSession, *, older_than: timedelta = KEEP) -> int:
    result = await session.execute(delete(SeenEvent).where(SeenEvent.created_at < utcnow() - older_than))  # type: ignore[arg-type]
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
