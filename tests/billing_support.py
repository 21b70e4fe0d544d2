"""Helpers for the rewards tests: a migrated store, people, GPTs and their uses at chosen times.

Uses are written as the invocation tracker writes them (the same columns and flags), but with a
chosen time, so a month of activity can be laid down in a second.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, update
from sqlmodel import col, select

from billing import payouts
from billing.close import ClosePlan, Rules
from billing.periods import Bounds, ensure_period
from store.accounts import resolve_account
from store.db import Database
from store.gpts import GptFields, create_gpt
from store.models import Gpt, Invocation, utcnow
from store.rewards import RewardPeriod

MICROS = 1_000_000
MARCH = Bounds(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))
APRIL = Bounds(datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC))
GPTSTORE = Path(sys.executable).with_name("gptstore")


def rules(**changes: object) -> Rules:
    base: dict[str, object] = {
        "currency": "USD", "fixed_pool": 100 * MICROS, "revenue_share_bps": 5000, "user_cap": 10,
        "min_payout": 0, "regions": (),
    }
    return Rules(**{**base, **changes})  # type: ignore[arg-type]


async def person(db: Database, name: str, *, platform: str = "console", user_id: str | None = None) -> int:
    async with db.session() as session:
        account = await resolve_account(
            session, platform=platform, user_id=user_id or name.lower(), display_name=name, locale="en"
        )
    assert account.id is not None
    return account.id


async def make_gpt(db: Database, creator_id: int, name: str) -> tuple[int, int]:
    fields = GptFields(name=name, description=f"{name} helps.", instructions="Be helpful.", starters=(),
                       category="Other", model="gpt-4o-mini", visibility="public")
    async with db.session() as session:
        gpt, version = await create_gpt(session, creator_id=creator_id, fields=fields)
    assert gpt.id is not None and version.id is not None
    return gpt.id, version.id


async def opt_in(db: Database, account_id: int, *, region: str = "FR", destination: str = "paypal:someone@example.com",
                 key: str | None = None) -> None:
    async with db.session() as session:
        await payouts.save(session, account_id, opted_in=True, region=region, destination=destination, key=key)


async def uses(db: Database, gpt_id: int, user_id: int, times: list[datetime], *, status: str = "ok",
               preview: bool = False) -> None:
    """Invocations of `gpt_id` by `user_id` at these times, flagged as the tracker flags them."""
    if not times:
        return
    async with db.session() as session:
        gpt = await session.get(Gpt, gpt_id)
        assert gpt is not None and gpt.current_version_id is not None
        await session.execute(insert(Invocation), [
            {"gpt_id": gpt_id, "version_id": gpt.current_version_id, "account_id": user_id, "platform": "console",
             "status": status, "is_preview": preview, "is_creator": gpt.creator_id == user_id, "model": "gpt-4o-mini",
             "prompt_tokens": 0, "completion_tokens": 0, "day": at.date(), "created_at": at, "finished_at": at}
            for at in times
        ])


def days(start: date | datetime, count: int, *, hour: int = 12, per_day: int = 1) -> list[datetime]:
    """`per_day` uses on each of `count` days from `start` (a minute apart)."""
    first = datetime(start.year, start.month, start.day, hour, tzinfo=UTC)
    return [first + timedelta(days=d, minutes=m) for d in range(count) for m in range(per_day)]


async def take_down(db: Database, gpt_id: int, reason: str) -> None:
    """What `gptstore gpts takedown` records (issue 6): the time and the reason on the GPT."""
    async with db.session() as session:
        await session.execute(
            update(Gpt).where(col(Gpt.id) == gpt_id).values(taken_down_at=utcnow(), takedown_reason=reason)
        )


async def period(db: Database, bounds: Bounds) -> int:
    async with db.session() as session:
        row = await ensure_period(session, bounds, "USD")
    assert row.id is not None
    return row.id


async def period_row(db: Database, period_id: int) -> RewardPeriod:
    async with db.reader() as session:
        return (await session.execute(select(RewardPeriod).where(RewardPeriod.id == period_id))).scalar_one()


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `gptstore` child process: this test's store and settings only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPTSTORE_") and k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.update({"GPTSTORE_DATABASE_URL": database_url, "GPTSTORE_LLM_LOCAL": "false", "GPTSTORE_LOG_LEVEL": "WARNING",
                "COLUMNS": "200"})
    env.update(extra)
    return env


def nothing_closed_again(again: list[ClosePlan] | None, first: list[ClosePlan]) -> bool:
    """A second scheduler run closed no period of the first run and paid nothing. With a period a
    minute, a minute may end between the two runs: that new, empty period may close, nothing more."""
    return again is not None and not {plan.period_id for plan in again} & {plan.period_id for plan in first} \
        and all(plan.paid == 0 for plan in again)
