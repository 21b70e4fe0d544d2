"""Reward periods: [start, end) in UTC between two firings of the period cron.

The same CronTrigger that apscheduler fires is the one that draws the boundaries, so the close
always runs at the end of the period it closes. Periods are rows created on demand (when revenue
is recorded, when a creator looks at earnings, when a close is due); `due_periods()` also creates
the rows of periods that passed while nothing ran, so a bot that was down for a month still closes
every period, in order. Periods are contiguous: if the operator changes the cron, the next period
starts where the last closed one ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from store.models import Invocation
from store.rewards import PeriodStatus, RewardPeriod

MAX_CATCH_UP = 1000  # periods; a mistaken per-minute cron after a long outage must not loop for ever
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Bounds:
    start: datetime
    end: datetime

    def __contains__(self, at: datetime) -> bool:
        return self.start <= at < self.end


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekdays(field: str) -> str:
    """Crontab weekday numbers (0 or 7 = Sunday) as names: apscheduler 3 counts 0 as Monday."""
    if field == "*":
        return field
    names = []
    for item in field.split(","):
        base, _, step_text = item.partition("/")
        low_text, _, high_text = base.partition("-")
        numeric = (base == "*" or low_text.isdigit() and (not high_text or high_text.isdigit())) and (
            not step_text or step_text.isdigit()
        )
        if not numeric:
            names.append(item)
            continue
        step = int(step_text or 1)
        low, high = (0, 6) if base == "*" else (int(low_text), int(high_text or (6 if step_text else low_text)))
        names.extend(_DAYS[day % 7] for day in range(low, high + 1, max(step, 1)))
    return ",".join(dict.fromkeys(names))


def trigger(cron: str) -> CronTrigger:
    """The period cron as an apscheduler trigger, in UTC, with crontab's meaning of weekdays.

    Five fields as in crontab; a sixth, trailing field of seconds is accepted for short periods in
    tests and demos (the operator's setting is validated as five fields).
    """
    fields = cron.split()
    if len(fields) not in (5, 6):
        raise ValueError(f"a cron has 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, weekday = fields[:5]
    second = fields[5] if len(fields) == 6 else "0"
    return CronTrigger(
        second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=_weekdays(weekday), timezone=UTC
    )


def next_boundary(cron: str, after: datetime) -> datetime:
    """The first firing strictly after `after`."""
    fire = trigger(cron).get_next_fire_time(None, after + _TICK)
    if fire is None:  # a 5-field cron always fires again; keep the type checker honest
        raise ValueError(f"the cron {cron!r} never fires after {after}")
    return fire.astimezone(UTC)


def last_boundary(cron: str, at: datetime) -> datetime:
    """The last firing at or before `at` (searching back in widening windows)."""
    window = timedelta(hours=1)
    while True:
        fire = next_boundary(cron, at - window - _TICK)
        if fire <= at:
            while (following := next_boundary(cron, fire)) <= at:
                fire = following
            return fire
        if window > timedelta(days=3660):
            raise ValueError(f"the cron {cron!r} did not fire in ten years before {at}")
        window *= 2


def period_at(cron: str, at: datetime) -> Bounds:
    start = last_boundary(cron, at)
    return Bounds(start, next_boundary(cron, start))


async def last_closed_end(session: AsyncSession) -> datetime | None:
    return (
        await session.execute(
            select(func.max(RewardPeriod.ends_at)).where(RewardPeriod.status == PeriodStatus.CLOSED)
        )
    ).scalar_one_or_none()


async def bounds_at(session: AsyncSession, cron: str, at: datetime) -> Bounds:
    """The period holding `at`, its start clipped to the end of the last closed period."""
    bounds = period_at(cron, at)
    closed_end = await last_closed_end(session)
    if closed_end is not None and bounds.start < closed_end <= at:
        return Bounds(closed_end, bounds.end)
    return bounds


async def ensure_period(session: AsyncSession, bounds: Bounds, currency: str) -> RewardPeriod:
    """The row for these bounds, created if missing (two creators race: the unique key decides)."""
    query = select(RewardPeriod).where(RewardPeriod.starts_at == bounds.start, RewardPeriod.ends_at == bounds.end)
    found = (await session.execute(query)).scalar_one_or_none()
    if found is not None:
        return found
    try:
        async with session.begin_nested():
            period = RewardPeriod(starts_at=bounds.start, ends_at=bounds.end, currency=currency)
            session.add(period)
            await session.flush()
        return period
    except IntegrityError:
        return (await session.execute(query)).scalar_one()


async def current_period(session: AsyncSession, cron: str, currency: str, now: datetime) -> RewardPeriod:
    return await ensure_period(session, await bounds_at(session, cron, now), currency)


async def due_periods(session: AsyncSession, cron: str, currency: str, now: datetime) -> list[RewardPeriod]:
    """Every period that has ended and is not closed, oldest first, creating missed ones.

    Missed periods are counted from the end of the last closed period, or else from the first
    invocation or the first period row: before that, nothing could have earned anything.
    """
    anchor = await last_closed_end(session)
    if anchor is None:
        first_use = (await session.execute(select(func.min(Invocation.created_at)))).scalar_one_or_none()
        first_row = (await session.execute(select(func.min(RewardPeriod.starts_at)))).scalar_one_or_none()
        candidates = [at for at in (first_use, first_row) if at is not None]
        anchor = min(candidates) if candidates else None
    if anchor is not None:
        start = anchor
        bounds = period_at(cron, anchor)
        for _ in range(MAX_CATCH_UP):
            if bounds.end > now:
                break
            await ensure_period(session, Bounds(max(start, bounds.start), bounds.end), currency)
            start = bounds.end
            bounds = Bounds(bounds.end, next_boundary(cron, bounds.end))
    rows = await session.execute(
        select(RewardPeriod)
        .where(RewardPeriod.status == PeriodStatus.OPEN, RewardPeriod.ends_at <= now)
        .order_by(RewardPeriod.ends_at, RewardPeriod.starts_at)  # type: ignore[arg-type]
    )
    return list(rows.scalars())


async def find_period(session: AsyncSession, ref: str, cron: str, currency: str, now: datetime) -> RewardPeriod:
    """An operator's `--period`: an id, `current`, `previous`, or a date/time inside the period."""
    ref = ref.strip().lower()
    if ref.isdigit():
        period = await session.get(RewardPeriod, int(ref))
        if period is None:
            raise LookupError(f"no period #{ref}")
        return period
    if ref in ("current", "now", ""):
        return await current_period(session, cron, currency, now)
    if ref in ("previous", "last"):
        current = await bounds_at(session, cron, now)
        return await ensure_period(session, await bounds_at(session, cron, current.start - _TICK), currency)
    try:
        at = datetime.fromisoformat(ref if len(ref) > 7 else f"{ref}-01")
    except ValueError:
        raise LookupError(f"{ref!r} is not a period: give its id, current, previous, or a date such as 2026-11") from None
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return await ensure_period(session, await bounds_at(session, cron, at), currency)
