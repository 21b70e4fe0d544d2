"""Creators' statements reach their Discord DMs: after each close (the scheduler's after-close
hook the adapter registers), at start-up for a close that happened while the bot was away, once
each, and later when DMs that were closed open again."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from billing.scheduler import run_closes
from bot.bootstrap import App
from store.models import utcnow
from store.rewards import RewardStatement
from tests.billing_support import make_gpt, nothing_closed_again, opt_in, person, uses
from tests.discord_support import ALICE, BOB, World, offline_world, visible_text

__all__ = ["offline_world"]  # the fixture, used by name
CRON = "* * * * *"  # a period a minute, so a use three minutes ago is in a period that has ended


async def creator_with_engagement(app: App) -> None:
    """Alice (a Discord creator, opted in) made Tutor; Bob used it once, three minutes ago."""
    alice = await person(app.db, "Alice", platform="discord", user_id=str(ALICE))
    bob = await person(app.db, "Bob", platform="discord", user_id=str(BOB))
    tutor, _ = await make_gpt(app.db, alice, "Tutor")
    await opt_in(app.db, alice)
    await uses(app.db, tutor, bob, [utcnow() - timedelta(minutes=3)])


def statements_seen(world: World, user: int) -> list[str]:
    return [text for text in map(visible_text, world.bot_messages(world.dm_channel(user)))
            if "Your statement for" in text]


async def undelivered(app: App) -> list[RewardStatement]:
    async with app.db.reader() as session:
        rows = await session.execute(select(RewardStatement).where(RewardStatement.delivered_at.is_(None)))  # type: ignore[union-attr]
        return list(rows.scalars())


async def test_the_statement_reaches_the_creator_once_after_the_close(offline_world: World) -> None:
    world, app = offline_world, offline_world.app
    await creator_with_engagement(app)
    client = await world.start()
    assert client.statements_caught_up is not None
    await client.statements_caught_up  # nothing was pending at start
    assert statements_seen(world, ALICE) == []

    closed = await run_closes(app, cron=CRON)  # the scheduler's run: close, then the after-close hooks
    assert closed and sum(plan.paid for plan in closed) == 100_000_000
    (statement,) = statements_seen(world, ALICE)
    assert "Points: 1" in statement and "Your share: 100.00 USD" in statement and "Paid out: 100.00 USD" in statement
    assert "100.00 USD is on its way to your payout destination (pa…" in statement
    assert "Tutor: 1 points" in statement
    assert statements_seen(world, BOB) == []  # Bob earned nothing: no statement

    assert nothing_closed_again(await run_closes(app, cron=CRON), closed)  # a second run sends nothing
    assert len(statements_seen(world, ALICE)) == 1
    assert await undelivered(app) == []


async def test_closed_dms_keep_it_pending_until_they_open(offline_world: World) -> None:
    world, app = offline_world, offline_world.app
    await creator_with_engagement(app)
    await world.start()
    world.fake.close_dms_for.add(ALICE)
    await run_closes(app, cron=CRON)
    assert statements_seen(world, ALICE) == []
    assert len(await undelivered(app)) == 1  # refused, so still to deliver

    await run_closes(app, cron=CRON)  # still closed: still pending, nothing sent
    assert statements_seen(world, ALICE) == [] and len(await undelivered(app)) == 1

    world.fake.close_dms_for.discard(ALICE)
    await run_closes(app, cron=CRON)  # the next run delivers it
    assert len(statements_seen(world, ALICE)) == 1
    await run_closes(app, cron=CRON)
    assert len(statements_seen(world, ALICE)) == 1 and await undelivered(app) == []


async def test_a_close_while_the_bot_was_away_is_delivered_at_start(offline_world: World) -> None:
    world, app = offline_world, offline_world.app
    await creator_with_engagement(app)
    assert await run_closes(app, cron=CRON)  # closed with no adapter running: nobody to DM yet
    assert len(await undelivered(app)) == 1

    client = await world.start()
    assert client.statements_caught_up is not None
    await client.statements_caught_up
    (statement,) = statements_seen(world, ALICE)
    assert "Your share: 100.00 USD" in statement
    await world.stop()

    client = await world.start()  # a restart sends nothing again
    assert client.statements_caught_up is not None
    await client.statements_caught_up
    assert len(statements_seen(world, ALICE)) == 1
    assert len(app.services.extras["after_close"]) == 1  # the stopped client's hook is gone
