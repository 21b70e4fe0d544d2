"""Exactly once: closers race for one period — tasks in one process, two `gptstore` processes — on
SQLite and PostgreSQL; one close and one set of payouts come out. A close killed in the middle
leaves no trace, and the next run closes the period cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from billing import ledger
from billing.close import AlreadyClosed, ClosePlan, close_period
from store.db import Database
from store.rewards import GptScore, LedgerEntry, LedgerTransaction, RewardClose, RewardStatement
from tests.billing_support import (
    GPTSTORE,
    MARCH,
    MICROS,
    cli_env,
    days,
    make_gpt,
    opt_in,
    period,
    period_row,
    person,
    rules,
    uses,
)


async def seed(db: Database) -> int:
    """Three creators with different engagement in March; returns the period id."""
    creators = [await person(db, name) for name in ("Ann", "Ben", "Cat")]
    users = [await person(db, f"user{n}") for n in range(5)]
    for index, creator in enumerate(creators):
        gpt, _ = await make_gpt(db, creator, f"GPT {index}")
        await opt_in(db, creator)
        for user in users[: index + 2]:
            await uses(db, gpt, user, days(MARCH.start, index + 1))
    return await period(db, MARCH)


async def counts(db: Database) -> dict[str, int]:
    async with db.reader() as session:
        async def count(model) -> int:  # type: ignore[no-untyped-def]
            return int((await session.execute(select(func.count()).select_from(model))).scalar_one())

        return {
            "closes": await count(RewardClose), "statements": await count(RewardStatement),
            "scores": await count(GptScore), "transactions": await count(LedgerTransaction),
            "entries": await count(LedgerEntry),
        }


async def assert_closed_once(db: Database, period_id: int) -> None:
    assert (await period_row(db, period_id)).status == "closed"
    # one close: 3 scores, 3 statements, fund + split + 3 payouts
    assert await counts(db) == {"closes": 1, "statements": 3, "scores": 3, "transactions": 5, "entries": 2 + 4 + 6}
    async with db.reader() as session:
        paid = await ledger.balances(session, prefix="payout:")
        assert sum(paid.values()) == 100 * MICROS
        assert sum((await ledger.balances(session)).values()) == 0


@pytest.mark.parametrize("lock", [True, False], ids=["locked", "database-only"])
async def test_concurrent_tasks_close_once(db: Database, lock: bool) -> None:
    """Six closers at once; with the lock they queue politely, without it the database refuses."""
    period_id = await seed(db)

    async def hold() -> None:
        await asyncio.sleep(0.2)  # keep the transaction open while the others arrive

    async def closer() -> ClosePlan | str:
        try:
            return await close_period(db, rules(), period_id, lock=lock, before_commit=hold)
        except AlreadyClosed as exc:
            # refused by the lock and a re-read of the status, or by the database's unique keys
            return "constraint" if isinstance(exc.__cause__, IntegrityError) else "status"

    results = await asyncio.gather(*(closer() for _ in range(6)))
    plans = [r for r in results if isinstance(r, ClosePlan)]
    assert len(plans) == 1 and results.count("status") + results.count("constraint") == 5
    if lock:
        assert results.count("status") == 5
    else:
        assert results.count("constraint") >= 1
    await assert_closed_once(db, period_id)


async def _gptstore(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(GPTSTORE), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )


async def test_two_processes_close_once(db: Database, database_url: str) -> None:
    period_id = await seed(db)
    env = cli_env(database_url, GPTSTORE_TEST_CLOSE_PAUSE="1.5")
    first, second = [await _gptstore(env, "rewards", "close", "--period", str(period_id)) for _ in range(2)]
    outputs = [(await p.communicate())[0].decode() for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    closed = [out for out in outputs if "Closed — period" in out]
    refused = [out for out in outputs if "already closed" in out or "closed by another" in out]
    assert len(closed) == 1 and len(refused) == 1, outputs
    await assert_closed_once(db, period_id)


async def test_a_close_killed_in_the_middle_leaves_no_trace(db: Database, database_url: str, tmp_path: Path) -> None:
    period_id = await seed(db)
    ready = tmp_path / "inside-the-close"
    env = cli_env(database_url, GPTSTORE_TEST_CLOSE_PAUSE="120", GPTSTORE_TEST_CLOSE_READY=str(ready))
    victim = await _gptstore(env, "rewards", "close", "--period", str(period_id))
    for _ in range(600):  # until it has written everything and waits to commit
        if ready.exists() or victim.returncode is not None:
            break
        await asyncio.sleep(0.1)
    assert ready.exists(), (await victim.communicate())[0].decode()
    os.kill(victim.pid, signal.SIGKILL)
    await victim.wait()
    assert victim.returncode == -signal.SIGKILL

    assert (await period_row(db, period_id)).status == "open"
    assert await counts(db) == {"closes": 0, "statements": 0, "scores": 0, "transactions": 0, "entries": 0}

    plan = await close_period(db, rules(), period_id)  # the next run closes it cleanly
    assert plan.paid == 100 * MICROS
    await assert_closed_once(db, period_id)
    with pytest.raises(AlreadyClosed):
        await close_period(db, rules(), period_id)
