"""Closing a reward period: one database transaction, exactly once.

The close reads the period's revenue and engagement, splits the pool, writes the scores, the
statements and the ledger transactions, and marks the period closed — all in one transaction, so a
process killed in the middle leaves nothing behind and the next run starts again from scratch.

Exactly once, three times over:
1. every close first takes the money lock (`ledger.lock_money`: BEGIN IMMEDIATE on SQLite, an
   advisory lock on PostgreSQL) and the period's row (SELECT … FOR UPDATE on PostgreSQL), then
   re-reads the status: a second closer waits, sees `closed`, and stops;
2. `rewardclose` has the period as primary key, and the status moves open → closed only by an
   UPDATE … WHERE status = 'open' that must touch one row;
3. every ledger transaction has a unique idempotency key derived from the period.
(1) makes the second closer polite; (2) and (3) make it impossible even without (1) — the tests
run the race both ways.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from billing import ledger
from billing.ledger import Leg
from billing.money import share_of
from billing.periods import due_periods, last_closed_end
from billing.scoring import GptPoints, by_creator, gpt_points, ineligible
from billing.split import split
from config import Settings
from store.accounts import creator_names
from store.db import Database
from store.models import Invocation, utcnow
from store.rewards import (
    GptScore,
    PayoutSettings,
    PeriodStatus,
    RevenueRecord,
    RewardClose,
    RewardPeriod,
    RewardStatement,
)

BeforeCommit = Callable[[], Awaitable[None]]


class CloseRefused(Exception):
    """The period cannot be closed now; the message says why."""


class AlreadyClosed(CloseRefused):
    pass


@dataclass(frozen=True, slots=True)
class Rules:
    """The settings a close applies, kept with the close so its figures can be checked later."""

    currency: str
    fixed_pool: int
    revenue_share_bps: int
    user_cap: int
    min_payout: int
    regions: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            currency=settings.rewards_currency,
            fixed_pool=settings.rewards_pool_micros,
            revenue_share_bps=settings.rewards_revenue_share_bps,
            user_cap=settings.rewards_user_cap,
            min_payout=settings.rewards_min_payout_micros,
            regions=tuple(region.upper() for region in settings.rewards_eligible_regions),
        )


@dataclass(frozen=True, slots=True)
class CreatorLine:
    account_id: int
    name: str
    points: int
    eligible: bool
    reason: str
    share: int
    carried_in: int
    payout: int
    carried_out: int
    region: str = ""
    destination_mask: str = ""


@dataclass(frozen=True, slots=True)
class ClosePlan:
    """Everything a close writes, computed before anything is written (and all a dry run shows)."""

    period_id: int
    starts_at: datetime
    ends_at: datetime
    rules: Rules
    revenue: int
    pool: int
    allocated: int
    returned: int
    total_points: int
    gpts: tuple[GptPoints, ...]
    creators: tuple[CreatorLine, ...]
    closed_at: datetime | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def paid(self) -> int:
        return sum(line.payout for line in self.creators)

    @property
    def carried(self) -> int:
        return sum(line.carried_out for line in self.creators)

    @property
    def revenue_part(self) -> int:
        return self.pool - self.rules.fixed_pool


async def plan_close(session: AsyncSession, period: RewardPeriod, rules: Rules) -> ClosePlan:
    """Compute the close of `period` from what the database holds now; writes nothing."""
    assert period.id is not None
    revenue = int(
        (
            await session.execute(
                select(func.coalesce(func.sum(RevenueRecord.amount_micros), 0)).where(
                    RevenueRecord.period_id == period.id
                )
            )
        ).scalar_one()
    )
    pool = rules.fixed_pool + share_of(max(revenue, 0), rules.revenue_share_bps)
    gpts = await gpt_points(session, start=period.starts_at, end=period.ends_at, cap=rules.user_cap)
    points = by_creator(gpts)
    carried_in = await ledger.creators_with_balance(session)
    everyone = sorted(set(points) | set(carried_in))
    reasons = await ineligible(session, everyone, rules.regions)
    eligible_points = {a: p for a, p in points.items() if not reasons.get(a) and p > 0}
    parts = split(pool, eligible_points) if eligible_points else {}
    allocated = sum(parts.values())
    names = await creator_names(session, set(everyone))
    payout_rows = {
        row.account_id: row
        for row in (
            await session.execute(select(PayoutSettings).where(col(PayoutSettings.account_id).in_(everyone)))
        ).scalars()
    }
    lines = []
    for account_id in everyone:
        share = parts.get(account_id, 0)
        owed = carried_in.get(account_id, 0) + share
        eligible = not reasons.get(account_id)
        payout = owed if eligible and owed > 0 and owed >= rules.min_payout else 0
        settings = payout_rows.get(account_id)
        lines.append(CreatorLine(
            account_id=account_id, name=names.get(account_id, "?"), points=points.get(account_id, 0),
            eligible=eligible, reason=reasons.get(account_id, ""), share=share,
            carried_in=carried_in.get(account_id, 0), payout=payout, carried_out=owed - payout,
            region=settings.region if settings else "", destination_mask=settings.destination_mask if settings else "",
        ))
    notes = () if eligible_points or not pool else ("no eligible points: the pool returns to the operator",)
    return ClosePlan(
        period_id=period.id, starts_at=period.starts_at, ends_at=period.ends_at, rules=rules, revenue=revenue,
        pool=pool, allocated=allocated, returned=pool - allocated, total_points=sum(eligible_points.values()),
        gpts=tuple(gpts), creators=tuple(lines), closed_at=period.closed_at, notes=notes,
    )


async def dry_run(db: Database, rules: Rules, period_id: int) -> ClosePlan:
    """The close as it would be now (or the estimate of a period still running): nothing written."""
    async with db.reader() as session:
        period = await session.get(RewardPeriod, period_id)
        if period is None:
            raise CloseRefused(f"there is no period #{period_id}")
        return await plan_close(session, period, rules)


async def close_period(
    db: Database,
    rules: Rules,
    period_id: int,
    *,
    now: datetime | None = None,
    lock: bool = True,
    before_commit: BeforeCommit | None = None,
) -> ClosePlan:
    """Close one ended period; AlreadyClosed if it is (or has just been) closed by anyone.

    `lock=False` skips the polite lock so the tests can prove the database alone refuses a second
    close; `before_commit` lets a test hold the transaction open (to race it, or to kill it).
    """
    now = now or utcnow()
    try:
        async with db.session() as session:
            if lock:
                await ledger.lock_money(session)
            query = select(RewardPeriod).where(RewardPeriod.id == period_id).execution_options(populate_existing=True)
            if lock and not db.is_sqlite:
                query = query.with_for_update()
            period = (await session.execute(query)).scalar_one_or_none()
            await _check_closable(session, period, period_id, rules, now)
            assert period is not None
            plan = await plan_close(session, period, rules)
            await _write(session, plan, now)
            if before_commit is not None:
                await before_commit()
    except IntegrityError as exc:
        async with db.reader() as session:
            status = (await session.execute(select(RewardPeriod.status).where(RewardPeriod.id == period_id))).scalar()
        if status == PeriodStatus.CLOSED:
            raise AlreadyClosed(f"period #{period_id} was closed by another process") from exc
        raise
    return replace(plan, closed_at=now)


async def _check_closable(
    session: AsyncSession, period: RewardPeriod | None, period_id: int, rules: Rules, now: datetime
) -> None:
    if period is None:
        raise CloseRefused(f"there is no period #{period_id}")
    if period.status == PeriodStatus.CLOSED:
        raise AlreadyClosed(f"period #{period_id} is already closed (at {period.closed_at:%Y-%m-%d %H:%M} UTC)")
    if period.ends_at > now:
        raise CloseRefused(f"period #{period_id} runs until {period.ends_at:%Y-%m-%d %H:%M} UTC; it cannot close before")
    if period.currency != rules.currency:
        raise CloseRefused(f"period #{period_id} was opened in {period.currency}; the store now pays in {rules.currency}")
    earlier = (
        await session.execute(
            select(func.count()).select_from(RewardPeriod).where(
                RewardPeriod.status == PeriodStatus.OPEN, RewardPeriod.ends_at <= period.starts_at,
                RewardPeriod.id != period_id,
            )
        )
    ).scalar_one()
    if earlier:
        raise CloseRefused(f"{earlier} earlier period(s) are still open; close them first (balances carry in order)")
    # periods tile time: each close starts where the last one ended, so no use is counted twice or never
    last_end = await last_closed_end(session)
    if last_end is not None and period.starts_at < last_end:
        raise CloseRefused(f"period #{period_id} overlaps a closed period (closed up to {last_end:%Y-%m-%d %H:%M} UTC)")
    if last_end is not None and period.starts_at > last_end:
        gap = f"{last_end:%Y-%m-%d %H:%M} → {period.starts_at:%Y-%m-%d %H:%M} UTC"
        raise CloseRefused(f"{gap} is not closed yet; `gptstore rewards close` closes every ended period in order")
    if last_end is None:
        first_use = (await session.execute(select(func.min(Invocation.created_at)))).scalar_one_or_none()
        if first_use is not None and first_use < period.starts_at:
            raise CloseRefused(
                f"uses from {first_use:%Y-%m-%d} come before period #{period_id}; "
                "`gptstore rewards close` closes every ended period in order"
            )


async def _write(session: AsyncSession, plan: ClosePlan, now: datetime) -> None:
    """The close itself. The claim comes first, so a racing closer is refused before any work."""
    rules, pid = plan.rules, plan.period_id
    session.add(RewardClose(
        period_id=pid, closed_at=now, currency=rules.currency, fixed_micros=rules.fixed_pool,
        revenue_micros=plan.revenue, revenue_share_bps=rules.revenue_share_bps, pool_micros=plan.pool,
        allocated_micros=plan.allocated, returned_micros=plan.returned, paid_micros=plan.paid,
        carried_micros=plan.carried, total_points=plan.total_points, rules=asdict(rules) | {"regions": list(rules.regions)},
    ))
    await session.flush()
    moved = await session.execute(
        update(RewardPeriod)
        .where(col(RewardPeriod.id) == pid, col(RewardPeriod.status) == PeriodStatus.OPEN)
        .values(status=PeriodStatus.CLOSED, closed_at=now)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise AlreadyClosed(f"period #{pid} was closed by another process")
    eligible = {line.account_id for line in plan.creators if line.eligible}
    session.add_all([
        GptScore(period_id=pid, gpt_id=g.gpt_id, creator_id=g.creator_id, users=g.users, user_days=g.user_days,
                 points=g.points, eligible=g.creator_id in eligible)
        for g in plan.gpts
    ])
    session.add_all([
        RewardStatement(
            period_id=pid, account_id=line.account_id, currency=rules.currency, points=line.points,
            eligible=line.eligible, reason=line.reason, share_micros=line.share, carried_in_micros=line.carried_in,
            payout_micros=line.payout, carried_out_micros=line.carried_out, region=line.region,
            destination_mask=line.destination_mask, created_at=now,
        )
        for line in plan.creators
    ])
    await session.flush()
    await _post_money(session, plan)


async def _post_money(session: AsyncSession, plan: ClosePlan) -> None:
    rules, pid = plan.rules, plan.period_id
    if plan.pool > 0:
        await ledger.post(session, key=f"close:{pid}:fund", kind="fund", period_id=pid, currency=rules.currency,
                          legs=[Leg(ledger.OPERATOR, -plan.pool), Leg(ledger.pool(pid), plan.pool)],
                          memo=f"pool of period #{pid}")
        legs = [Leg(ledger.pool(pid), -plan.pool), Leg(ledger.OPERATOR, plan.returned)]
        legs += [Leg(ledger.creator(line.account_id), line.share) for line in plan.creators]
        await ledger.post(session, key=f"close:{pid}:split", kind="split", period_id=pid, currency=rules.currency,
                          legs=legs, memo=f"split of period #{pid} by points")
    for line in plan.creators:
        if line.payout > 0:
            await ledger.post(
                session, key=f"close:{pid}:payout:{line.account_id}", kind="payout", period_id=pid,
                currency=rules.currency, memo=f"payout for period #{pid}",
                legs=[Leg(ledger.creator(line.account_id), -line.payout), Leg(ledger.payout(line.account_id), line.payout)],
            )


async def close_due(
    db: Database, rules: Rules, cron: str, *, now: datetime | None = None, before_commit: BeforeCommit | None = None
) -> list[ClosePlan]:
    """Close every period that has ended, oldest first (the catch-up); returns what this call closed."""
    now = now or utcnow()
    async with db.session() as session:
        due = [period.id for period in await due_periods(session, cron, rules.currency, now)]
    closed: list[ClosePlan] = []
    for period_id in due:
        assert period_id is not None
        try:
            closed.append(await close_period(db, rules, period_id, now=now, before_commit=before_commit))
        except AlreadyClosed:
            continue
    return closed


def totals_add_up(plan: ClosePlan) -> Sequence[str]:
    """What a person checks by hand; empty when every figure adds up."""
    problems = []
    if plan.allocated + plan.returned != plan.pool:
        problems.append("allocated + returned != pool")
    if sum(line.share for line in plan.creators) != plan.allocated:
        problems.append("shares != allocated")
    for line in plan.creators:
        if line.carried_in + line.share != line.payout + line.carried_out:
            problems.append(f"creator {line.account_id}: carried in + share != payout + carried out")
    return problems
