"""The apscheduler wiring that closes reward periods; the close itself lives in billing.close.

The job is wiring only. Correctness never depends on it: at start-up every period that ended
while nothing ran is closed (catch-up), and a second scheduler, a retry or a duplicate firing is
refused by the database (see billing.close). One job id with `replace_existing`, `coalesce` (a
backlog of missed firings runs once), `max_instances=1` and a generous `misfire_grace_time`.

At each firing the job waits `grace` seconds before closing, so answers still being written at the
boundary finish and count in the period they started in.

After each run it awaits the callables registered in `services.extras["after_close"]` with the
list of closes (possibly empty). Adapters that can write DMs register one there to deliver the
statements (see bot.commands.earnings.deliver_statements); billing itself never imports bot/.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from billing.close import ClosePlan, Rules, close_due
from billing.periods import trigger
from config import Settings
from store.db import Database, offloaded

log = logging.getLogger(__name__)

JOB_ID = "gptstore-rewards-close"
AfterClose = Callable[[list[ClosePlan]], Awaitable[None]]


class Host(Protocol):
    """What the scheduler needs from the bootstrapped app (bot.bootstrap.App fits)."""

    settings: Settings

    @property
    def db(self) -> Database: ...


def _hooks(app: Host) -> list[AfterClose]:
    services: Any = getattr(app, "services", None)
    extras = getattr(services, "extras", None) or {}
    return list(extras.get("after_close", []))


async def run_closes(app: Host, *, cron: str | None = None) -> list[ClosePlan] | None:
    """Close every period that is due, then call the after-close hooks; None if the close failed."""
    settings = app.settings
    failed = False
    try:
        with offloaded():  # long statements: on SQLite, run them off the event loop (store/sqlite_inline.py)
            closed = await close_due(app.db, Rules.from_settings(settings), cron or settings.rewards_period_cron)
    except Exception:
        log.exception("closing reward periods failed; it will be retried")
        closed, failed = [], True
    for plan in closed:
        log.info(
            "closed reward period #%d: pool %d, paid %d, carried %d micro-units",
            plan.period_id, plan.pool, plan.paid, plan.carried,
        )
    for hook in _hooks(app):
        try:
            await hook(closed)
        except Exception:
            log.exception("an after-close hook failed")
    return None if failed else closed


async def start_scheduler(
    app: Host, *, cron: str | None = None, grace: float | None = None, catch_up: bool = True,
    retry_after: float = 300.0,
) -> Callable[[], Awaitable[None]]:
    """Start the close job on the running loop, catch up at once; returns the closer.

    A failed close (the database unreachable at the boundary) is tried again `retry_after`
    seconds later rather than at the next boundary.
    """
    cron = cron or app.settings.rewards_period_cron
    wait = min(app.settings.llm_timeout + 30.0, 300.0) if grace is None else grace

    async def attempt() -> None:
        if await run_closes(app, cron=cron) is None:
            scheduler.add_job(
                attempt, "date", run_date=datetime.now(UTC) + timedelta(seconds=retry_after), id=f"{JOB_ID}-retry",
                replace_existing=True, misfire_grace_time=6 * 3600,
            )

    async def fire() -> None:
        if wait:
            await asyncio.sleep(wait)
        await attempt()

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        fire, trigger(cron), id=JOB_ID, name="close reward periods", replace_existing=True,
        coalesce=True, max_instances=1, misfire_grace_time=6 * 3600,
    )
    scheduler.start()
    log.info("rewards scheduler started (%s, UTC)", cron)
    if catch_up:
        await attempt()

    async def stop() -> None:
        scheduler.shutdown(wait=False)

    return stop
