"""The scheduler: it fires a close at a period boundary and the statement reaches the creator's DM;
at start-up it closes the periods missed while the bot was down; `gptstore scheduler` runs it alone."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

from sqlmodel import select

from billing.periods import period_at
from billing.scheduler import start_scheduler
from bot.bootstrap import App
from bot.commands.earnings import deliver_statements
from bot.replies import Reply
from store.models import utcnow
from store.rewards import RewardClose, RewardPeriod
from tests.billing_support import GPTSTORE, cli_env, make_gpt, opt_in, person, uses


async def wait_for_close(app: App, starts_at, *, seconds: float = 60) -> RewardClose | None:  # type: ignore[no-untyped-def]
    for _ in range(max(1, int(seconds * 10))):
        async with app.db.reader() as session:
            found = (await session.execute(
                select(RewardClose).join(RewardPeriod, RewardPeriod.id == RewardClose.period_id)  # type: ignore[arg-type]
                .where(RewardPeriod.starts_at <= starts_at, RewardPeriod.ends_at > starts_at)
            )).scalar_one_or_none()
        if found is not None:
            return found
        await asyncio.sleep(0.1)
    return None


async def test_the_scheduler_closes_at_the_boundary_and_the_statement_reaches_the_dm(app: App) -> None:
    cron = "* * * * * */2"  # a period every two seconds (a sixth field of seconds, for tests)
    alice, bob = await person(app.db, "Alice"), await person(app.db, "Bob")
    tutor, _ = await make_gpt(app.db, alice, "Tutor")
    await opt_in(app.db, alice)
    used_at = utcnow()
    await uses(app.db, tutor, bob, [used_at])

    sent: list[tuple[str, Reply]] = []

    async def send_dm(user_id: str, reply: Reply) -> None:
        sent.append((user_id, reply))

    runs: list[int] = []

    async def after_close(plans: list) -> None:  # type: ignore[type-arg]
        runs.append(len(plans))
        await deliver_statements(app.services, "console", send_dm)

    app.services.extras.setdefault("after_close", []).append(after_close)
    stop = await start_scheduler(app, cron=cron, grace=0, catch_up=False)
    try:
        closed = await wait_for_close(app, used_at)
        for _ in range(100):
            if sent:
                break
            await asyncio.sleep(0.1)
    finally:
        await stop()
    assert closed is not None and runs and max(runs) >= 1  # the cron job fired and closed it
    bounds = period_at(cron, used_at)
    assert closed.closed_at >= bounds.end and closed.total_points == 1 and closed.paid_micros == 100_000_000
    assert [user for user, _ in sent] == ["alice"]
    card = sent[0][1].card
    assert card is not None and card.title.startswith("Your statement for")
    assert "100.00 USD is on its way" in card.description and "pa…" in card.description
    assert await deliver_statements(app.services, "console", send_dm) == 0  # delivered once


async def test_catch_up_at_start_closes_the_periods_missed_while_down(app: App) -> None:
    cron = "* * * * *"
    alice, bob = await person(app.db, "Alice"), await person(app.db, "Bob")
    tutor, _ = await make_gpt(app.db, alice, "Tutor")
    await opt_in(app.db, alice)
    used_at = utcnow() - timedelta(minutes=3)  # the bot was down since
    await uses(app.db, tutor, bob, [used_at])
    started = utcnow()
    stop = await start_scheduler(app, cron=cron, grace=0)  # the catch-up runs before this returns
    await stop()
    closed = await wait_for_close(app, used_at, seconds=0)
    assert closed is not None and closed.total_points == 1
    async with app.db.reader() as session:
        periods = list((await session.execute(select(RewardPeriod).order_by(RewardPeriod.starts_at))).scalars())  # type: ignore[arg-type]
    # every period that had ended when the bot started (one that ends meanwhile is the next run's)
    ended = [p for p in periods if p.ends_at <= started]
    assert len(ended) >= 3 and all(p.status == "closed" for p in ended)
    assert all(a.ends_at == b.starts_at for a, b in zip(periods, periods[1:], strict=False))  # contiguous


async def test_gptstore_scheduler_runs_the_close_alone(app: App, database_url: str) -> None:
    alice, bob = await person(app.db, "Alice"), await person(app.db, "Bob")
    tutor, _ = await make_gpt(app.db, alice, "Tutor")
    await opt_in(app.db, alice)
    used_at = utcnow() - timedelta(minutes=2)
    await uses(app.db, tutor, bob, [used_at])
    env = cli_env(database_url, GPTSTORE_REWARDS_PERIOD_CRON="* * * * *")
    process = await asyncio.create_subprocess_exec(
        str(GPTSTORE), "scheduler", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        closed = await wait_for_close(app, used_at)
    finally:
        process.send_signal(signal.SIGTERM)
        output = (await process.communicate())[0].decode()
    assert closed is not None and closed.total_points == 1, output
    assert process.returncode == 0 and "rewards scheduler running" in output


async def test_a_failed_close_is_retried_soon(app: App) -> None:
    """A close that fails (here: the period was opened in another currency) is tried again shortly,
    not a whole period later; once the operator fixes the cause, it closes."""
    from sqlalchemy import update

    alice, bob = await person(app.db, "Alice"), await person(app.db, "Bob")
    tutor, _ = await make_gpt(app.db, alice, "Tutor")
    await opt_in(app.db, alice)
    used_at = utcnow() - timedelta(days=40)
    await uses(app.db, tutor, bob, [used_at])
    bounds = period_at(app.settings.rewards_period_cron, used_at)
    async with app.db.session() as session:
        session.add(RewardPeriod(starts_at=bounds.start, ends_at=bounds.end, currency="EUR"))
    stop = await start_scheduler(app, grace=0, retry_after=0.5)  # the catch-up fails and schedules a retry
    try:
        assert await wait_for_close(app, used_at, seconds=0) is None
        async with app.db.session() as session:
            await session.execute(update(RewardPeriod).values(currency="USD"))
        closed = await wait_for_close(app, used_at, seconds=30)
    finally:
        await stop()
    assert closed is not None and closed.total_points == 1
