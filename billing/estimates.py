"""This period's estimate for one creator: the one figure `/gpt earnings` and the storefront show.

The estimate is the close as it would be now (`billing.close.plan_close` on the running period),
so what a creator reads before the close is computed by the same code that pays them after it.
Per GPT, the creator's estimated share is split over their GPTs by points with the same
largest-remainder split as the pool: the per-GPT figures add up exactly to the creator's share,
and an ineligible creator's GPTs show nothing, as their share is nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from billing.close import ClosePlan, CreatorLine, Rules, plan_close
from billing.periods import current_period
from billing.scoring import GptPoints
from billing.split import split
from config import Settings


@dataclass(frozen=True, slots=True)
class Estimate:
    plan: ClosePlan
    line: CreatorLine | None  # None: the creator has no points and no balance this period
    gpts: tuple[GptPoints, ...]  # the creator's GPTs that have points, by GPT id
    per_gpt: dict[int, int] = field(default_factory=dict)  # GPT id -> estimated micro-units

    @property
    def eligible(self) -> bool:
        return self.line is None or self.line.eligible

    @property
    def share(self) -> int:
        return self.line.share if self.line is not None else 0

    @property
    def currency(self) -> str:
        return self.plan.rules.currency


async def estimate(session: AsyncSession, settings: Settings, account_id: int, now: datetime) -> Estimate:
    """The running period's figures for `account_id` (opens the period's row if it has none yet)."""
    rules = Rules.from_settings(settings)
    period = await current_period(session, settings.rewards_period_cron, rules.currency, now)
    plan = await plan_close(session, period, rules)
    line = next((line for line in plan.creators if line.account_id == account_id), None)
    mine = tuple(g for g in plan.gpts if g.creator_id == account_id)
    share = line.share if line is not None else 0
    per_gpt = split(share, [(g.gpt_id, g.points) for g in mine]) if mine else {}
    return Estimate(plan=plan, line=line, gpts=mine, per_gpt=per_gpt)
