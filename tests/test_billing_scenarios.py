"""The money rules, one scenario each, on SQLite and PostgreSQL: who earns, who is left out, what
carries over, and a ledger whose every transaction sums to zero."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from billing import ledger
from billing.close import AlreadyClosed, CloseRefused, close_period, dry_run
from billing.ledger import Leg, Unbalanced
from billing.periods import Bounds
from store.db import Database
from store.rewards import GptScore, LedgerEntry, LedgerTransaction, RevenueRecord, RewardStatement
from tests.billing_support import (
    APRIL,
    MARCH,
    MICROS,
    days,
    make_gpt,
    opt_in,
    period,
    person,
    rules,
    take_down,
    uses,
)


async def statements(db: Database, period_id: int) -> dict[int, RewardStatement]:
    async with db.reader() as session:
        rows = await session.execute(select(RewardStatement).where(RewardStatement.period_id == period_id))
        return {row.account_id: row for row in rows.scalars()}


async def test_self_use_previews_and_failures_earn_nothing(db: Database) -> None:
    alice, bob, carol = [await person(db, name) for name in ("Alice", "Bob", "Carol")]
    tutor, _ = await make_gpt(db, alice, "Tutor")
    await opt_in(db, alice)
    await uses(db, tutor, bob, days(MARCH.start, 3))  # 3 people-days: 3 points
    await uses(db, tutor, alice, days(MARCH.start, 20, per_day=5))  # the creator's own use
    await uses(db, tutor, alice, days(MARCH.start, 5), preview=True)  # previews
    await uses(db, tutor, carol, days(MARCH.start, 5), preview=True)
    await uses(db, tutor, carol, days(MARCH.start, 4), status="error")
    await uses(db, tutor, carol, days(MARCH.start, 4), status="blocked")
    await uses(db, tutor, carol, days(MARCH.start, 4), status="pending")
    await uses(db, tutor, bob, [MARCH.end])  # the next period, not this one

    plan = await close_period(db, rules(), await period(db, MARCH))
    assert [(g.gpt_id, g.users, g.points) for g in plan.gpts] == [(tutor, 1, 3)]
    got = (await statements(db, plan.period_id))[alice]
    assert (got.points, got.share_micros, got.payout_micros) == (3, 100 * MICROS, 100 * MICROS)


async def test_the_cap_holds_against_one_user_hammering_a_gpt(db: Database) -> None:
    alice, bob, carol = [await person(db, name) for name in ("Alice", "Bob", "Carol")]
    tutor, _ = await make_gpt(db, alice, "Tutor")
    await opt_in(db, alice)
    await uses(db, tutor, bob, days(MARCH.start, 20, per_day=50))  # 1 000 uses over 20 days
    await uses(db, tutor, carol, days(datetime(2025, 3, 10, tzinfo=UTC), 1, per_day=100))  # 100 uses in one day
    plan = await close_period(db, rules(user_cap=3), await period(db, MARCH))
    async with db.reader() as session:
        score = (await session.execute(select(GptScore))).scalar_one()
    assert (score.users, score.user_days, score.points) == (2, 21, 3 + 1)
    assert plan.total_points == 4


async def test_an_ineligible_creator_is_left_out_and_the_others_share_the_whole_pool(db: Database) -> None:
    alice, bob, carol, dave, user = [await person(db, n) for n in ("Alice", "Bob", "Carol", "Dave", "User")]
    gpts = {who: (await make_gpt(db, who, f"GPT {who}"))[0] for who in (alice, bob, carol, dave)}
    await opt_in(db, alice, region="FR")
    await opt_in(db, carol, region="CN")  # opted in, but not in an eligible region
    await opt_in(db, dave, region="us")
    # bob never opted in
    for who, count in ((alice, 1), (bob, 5), (carol, 5), (dave, 2)):
        await uses(db, gpts[who], user, days(MARCH.start, count))
    plan = await close_period(db, rules(regions=("FR", "US"), fixed_pool=10 * MICROS), await period(db, MARCH))
    got = await statements(db, plan.period_id)
    assert got[bob].eligible is False and got[bob].reason == "not_opted_in" and got[bob].share_micros == 0
    assert got[carol].eligible is False and got[carol].reason == "region" and got[carol].share_micros == 0
    assert got[alice].share_micros + got[dave].share_micros == 10 * MICROS
    assert (got[alice].share_micros, got[dave].share_micros) == (3_333_333, 6_666_667)  # 1:2, remainder to the larger
    assert plan.total_points == 3 and plan.returned == 0


async def test_a_balance_under_the_minimum_carries_over_and_is_paid_when_it_crosses(db: Database) -> None:
    alice, bob, user = [await person(db, n) for n in ("Alice", "Bob", "User")]
    a, _ = await make_gpt(db, alice, "Alpha")
    b, _ = await make_gpt(db, bob, "Beta")
    await opt_in(db, alice)
    await opt_in(db, bob)
    the_rules = rules(min_payout=60 * MICROS)
    await uses(db, a, user, days(MARCH.start, 1))
    await uses(db, b, user, days(MARCH.start, 3))
    march = await close_period(db, the_rules, await period(db, MARCH))
    got = await statements(db, march.period_id)
    assert (got[alice].share_micros, got[alice].payout_micros, got[alice].carried_out_micros) == (25 * MICROS, 0, 25 * MICROS)
    assert (got[bob].share_micros, got[bob].payout_micros, got[bob].carried_out_micros) == (75 * MICROS, 75 * MICROS, 0)

    await uses(db, a, user, days(APRIL.start, 3))
    await uses(db, b, user, days(APRIL.start, 1))
    april = await close_period(db, the_rules, await period(db, APRIL))
    got = await statements(db, april.period_id)
    assert (got[alice].carried_in_micros, got[alice].share_micros, got[alice].payout_micros) == (25 * MICROS, 75 * MICROS, 100 * MICROS)
    assert (got[bob].share_micros, got[bob].payout_micros, got[bob].carried_out_micros) == (25 * MICROS, 0, 25 * MICROS)
    async with db.reader() as session:
        assert await ledger.balance(session, ledger.creator(alice)) == 0
        assert await ledger.balance(session, ledger.payout(alice)) == 100 * MICROS
        assert await ledger.balance(session, ledger.creator(bob)) == 25 * MICROS
        assert await ledger.balance(session, ledger.payout(bob)) == 75 * MICROS
    await _ledger_adds_up(db)


async def test_a_taken_down_gpts_points_vanish(db: Database) -> None:
    alice, user = await person(db, "Alice"), await person(db, "User")
    kept, _ = await make_gpt(db, alice, "Kept")
    gone, _ = await make_gpt(db, alice, "Gone")
    await opt_in(db, alice)
    await uses(db, kept, user, days(MARCH.start, 2))
    await uses(db, gone, user, days(MARCH.start, 9))
    pid = await period(db, MARCH)
    assert (await dry_run(db, rules(), pid)).total_points == 11
    await take_down(db, gone, "copied instructions")
    plan = await close_period(db, rules(), pid)
    assert [(g.gpt_id, g.points) for g in plan.gpts] == [(kept, 2)]
    assert (await statements(db, pid))[alice].points == 2


async def test_revenue_joins_the_pool_and_an_empty_period_returns_it(db: Database) -> None:
    alice, user = await person(db, "Alice"), await person(db, "User")
    tutor, _ = await make_gpt(db, alice, "Tutor")
    await opt_in(db, alice)
    pid = await period(db, MARCH)
    async with db.session() as session:
        session.add(RevenueRecord(period_id=pid, amount_micros=30 * MICROS + 1, currency="USD", note="ads"))
    await uses(db, tutor, user, days(MARCH.start, 1))
    plan = await close_period(db, rules(revenue_share_bps=2500), pid)
    assert plan.pool == 100 * MICROS + (30 * MICROS + 1) // 4  # a quarter, rounded down
    empty = await close_period(db, rules(), await period(db, APRIL))
    assert (empty.pool, empty.allocated, empty.returned, empty.creators) == (100 * MICROS, 0, 100 * MICROS, ())
    async with db.reader() as session:
        # the operator funded two pools and got the empty one back
        assert await ledger.balance(session, ledger.OPERATOR) == -plan.pool
    await _ledger_adds_up(db)


async def test_closes_are_refused_when_they_must_be(db: Database) -> None:
    alice, bob = await person(db, "Alice"), await person(db, "Bob")
    tutor, _ = await make_gpt(db, alice, "Tutor")
    await uses(db, tutor, bob, days(MARCH.start, 1))
    with pytest.raises(CloseRefused, match="come before period"):  # March was never materialized
        await close_period(db, rules(), await period(db, APRIL))
    march, april = await period(db, MARCH), await period(db, APRIL)
    with pytest.raises(CloseRefused, match="earlier period"):
        await close_period(db, rules(), april)
    with pytest.raises(CloseRefused, match="cannot close before"):
        await close_period(db, rules(), march, now=datetime(2025, 3, 31, tzinfo=UTC))
    await close_period(db, rules(), march)
    with pytest.raises(AlreadyClosed):
        await close_period(db, rules(), march)
    with pytest.raises(AlreadyClosed):
        await close_period(db, rules(), march, lock=False)
    # periods tile time: one overlapping a closed period, or leaving a gap after it, is refused
    overlap = await period(db, Bounds(MARCH.start + timedelta(days=20), APRIL.start + timedelta(days=5)))
    with pytest.raises(CloseRefused, match="overlaps a closed period"):
        await close_period(db, rules(), overlap)
    gap = await period(db, Bounds(APRIL.start + timedelta(days=1), APRIL.start + timedelta(days=2)))
    with pytest.raises(CloseRefused, match="is not closed yet"):
        await close_period(db, rules(), gap)
    assert (await close_period(db, rules(), april)).period_id == april


async def test_the_database_refuses_an_unbalanced_or_edited_ledger(db: Database) -> None:
    async with db.session() as session:
        await ledger.post(session, key="t1", kind="correction", currency="USD",
                          legs=[Leg(ledger.OPERATOR, -5), Leg("creator:1", 5)])
        assert not await ledger.post(session, key="t1", kind="correction", currency="USD",
                                     legs=[Leg(ledger.OPERATOR, -5), Leg("creator:1", 5)])  # a retry: nothing
    with pytest.raises(Unbalanced):
        async with db.session() as session:
            await ledger.post(session, key="t2", kind="correction", currency="USD",
                              legs=[Leg(ledger.OPERATOR, -5), Leg("creator:1", 4)])
    entry = "INSERT INTO ledgerentry (txn_key, account, amount_micros, currency, created_at) VALUES ('{k}', '{a}', {n}, 'USD', '2025-01-01')"
    header = "INSERT INTO ledgertransaction (idempotency_key, kind, memo, created_at) VALUES ('{k}', 'x', '', '2025-01-01')"
    attempts = {
        "unbalanced": [entry.format(k="t3", a="x", n=5), entry.format(k="t3", a="y", n=-4), header.format(k="t3")],
        "one leg": [entry.format(k="t4", a="x", n=0), header.format(k="t4")],
        "no header": [entry.format(k="t5", a="x", n=5), entry.format(k="t5", a="y", n=-5)],
        "leg added later": [entry.format(k="t1", a="x", n=0)],
        "edited": ["UPDATE ledgerentry SET amount_micros = 6"],
        "deleted": ["DELETE FROM ledgertransaction"],
    }
    for name, statements_ in attempts.items():
        with pytest.raises(IntegrityError):
            async with db.session() as session:
                for statement in statements_:
                    await session.execute(text(statement))
        assert name
    async with db.reader() as session:
        assert await ledger.balances(session) == {"creator:1": 5, "operator": -5}


async def _ledger_adds_up(db: Database) -> None:
    """Every transaction sums to zero; every balance is the sum of its entries; all balances sum to zero."""
    async with db.reader() as session:
        entries = list((await session.execute(select(LedgerEntry))).scalars())
        keys = set((await session.execute(select(LedgerTransaction.idempotency_key))).scalars())
        by_txn: dict[str, int] = defaultdict(int)
        by_account: dict[str, int] = defaultdict(int)
        for entry in entries:
            by_txn[entry.txn_key] += entry.amount_micros
            by_account[entry.account] += entry.amount_micros
        assert set(by_txn) == keys and all(total == 0 for total in by_txn.values())
        assert await ledger.balances(session) == dict(by_account)
        for account, total in by_account.items():
            assert await ledger.balance(session, account) == total
        assert sum(by_account.values()) == 0 and await ledger.unbalanced(session) == []
