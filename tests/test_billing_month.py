"""A month of simulated use — many people, GPTs and creators, abusers included — closed by the
operator's CLI, then checked by hand from the export, on SQLite and PostgreSQL.

The expected figures are computed here from the simulated events alone (not with billing/), the
way a person with a spreadsheet would: points per GPT from the rules, the pool from the settings,
exact shares as fractions; the export must agree to the micro-unit.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from billing.periods import Bounds
from store.db import Database
from tests.billing_support import (
    GPTSTORE,
    MARCH,
    MICROS,
    cli_env,
    make_gpt,
    opt_in,
    period,
    person,
    take_down,
    uses,
)

FEBRUARY = Bounds(datetime(2025, 2, 1, tzinfo=UTC), MARCH.start)
KEY = "a long random operator secret for the tests"
SETTINGS = {
    "GPTSTORE_REWARDS_POOL_MICROS": str(1000 * MICROS), "GPTSTORE_REWARDS_REVENUE_SHARE_BPS": "3000",
    "GPTSTORE_REWARDS_USER_CAP": "5", "GPTSTORE_REWARDS_MIN_PAYOUT_MICROS": str(25 * MICROS),
    "GPTSTORE_REWARDS_ELIGIBLE_REGIONS": "FR,US,DE", "GPTSTORE_REWARDS_PAYOUT_KEY": KEY,
}
FIXED, SHARE_BPS, CAP, MINIMUM = 1000 * MICROS, 3000, 5, 25 * MICROS
REVENUE = "1234.567891"


@dataclass
class World:
    """What happened, as the simulation knows it: the truth the export is checked against."""

    creators: dict[int, str] = field(default_factory=dict)  # account id -> region ('' = not opted in)
    destinations: dict[int, str] = field(default_factory=dict)
    gpt_creator: dict[int, int] = field(default_factory=dict)
    taken_down: set[int] = field(default_factory=set)
    counted: dict[tuple[int, int], set] = field(default_factory=lambda: defaultdict(set))  # type: ignore[type-arg]

    def use(self, gpt: int, user: int, when: datetime, *, ok: bool = True, preview: bool = False) -> None:
        if ok and not preview and user != self.gpt_creator[gpt]:
            self.counted[(gpt, user)].add(when.date())

    def points(self, bounds: Bounds) -> dict[int, int]:
        """Creator -> points: distinct days per (GPT, user) in the period, capped, taken-down GPTs out."""
        totals: dict[int, int] = defaultdict(int)
        for (gpt, _user), dates in self.counted.items():
            if gpt in self.taken_down:
                continue
            inside = [d for d in dates if bounds.start.date() <= d < bounds.end.date()]
            if inside:
                totals[self.gpt_creator[gpt]] += min(len(inside), CAP)
        return dict(totals)

    def eligible(self, creator: int) -> bool:
        return self.creators[creator] in ("FR", "US", "DE")


async def simulate(db: Database, rnd: random.Random) -> World:
    world = World()
    regions = ["FR", "US", "DE", "FR", "US", "DE", "FR", "US", "", "", "CN", "DE"]
    for index, region in enumerate(regions):
        creator = await person(db, f"Creator{index:02d}")
        world.creators[creator] = region
        if region:
            world.destinations[creator] = f"paypal:creator{index}@example.com"
            await opt_in(db, creator, region=region, destination=world.destinations[creator], key=KEY)
        for n in range(1 + index % 3):
            gpt, _ = await make_gpt(db, creator, f"GPT {index}-{n}")
            world.gpt_creator[gpt] = creator
    users = [await person(db, f"user{n:03d}") for n in range(120)]
    gpts = sorted(world.gpt_creator)

    async def lay(gpt: int, user: int, times: list[datetime], *, ok: bool = True, preview: bool = False) -> None:
        await uses(db, gpt, user, times, status="ok" if ok else "error", preview=preview)
        for when in times:
            world.use(gpt, user, when, ok=ok, preview=preview)

    for bounds, people in ((FEBRUARY, users[:30]), (MARCH, users)):
        length = (bounds.end - bounds.start).days
        for user in people:  # ordinary people: a few GPTs, some days, sometimes an error
            for gpt in rnd.sample(gpts, rnd.randint(1, 4)):
                times = [bounds.start + timedelta(days=rnd.randrange(length), minutes=rnd.randrange(1440))
                         for _ in range(rnd.randint(1, 9))]
                await lay(gpt, user, times, ok=rnd.random() > 0.1)
    # abusers, all in March
    hammered, farmed, spammed = gpts[0], gpts[5], gpts[7]
    await lay(hammered, users[0], [MARCH.start + timedelta(days=d, minutes=m) for d in range(31) for m in range(40)])
    farmer = world.gpt_creator[farmed]
    await lay(farmed, farmer, [MARCH.start + timedelta(days=d, hours=h) for d in range(31) for h in range(10)])
    await lay(spammed, world.gpt_creator[spammed], [MARCH.start + timedelta(days=d) for d in range(31)], preview=True)
    await lay(spammed, users[1], [MARCH.start + timedelta(days=d) for d in range(31)], ok=False)
    # a GPT taken down by the operator before the close: its points vanish
    doomed = gpts[9]
    await lay(doomed, users[2], [MARCH.start + timedelta(days=d) for d in range(20)])
    await take_down(db, doomed, "farming ring")
    world.taken_down.add(doomed)
    return world


async def gptstore(env: dict[str, str], *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(GPTSTORE), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, errors = await process.communicate()
    assert process.returncode == 0, (args, out.decode(), errors.decode())
    return out.decode()


def check_split(world: World, bounds: Bounds, rows: list[dict], pool: int, carried_in: dict[int, int]) -> dict[int, int]:  # type: ignore[type-arg]
    """Check every row by hand; returns what each creator carries out."""
    points = world.points(bounds)
    eligible_points = {c: p for c, p in points.items() if world.eligible(c)}
    total = sum(eligible_points.values())
    by_creator = {row["account_id"]: row for row in rows}
    expected_people = {c for c in points if points[c]} | {c for c, amount in carried_in.items() if amount}
    assert set(by_creator) == expected_people
    floors = {c: pool * p // total for c, p in eligible_points.items()}
    assert sum(row["share_micros"] for row in rows) == pool  # to the micro-unit
    extra = pool - sum(floors.values())
    assert sum(1 for c in eligible_points if by_creator[c]["share_micros"] == floors[c] + 1) == extra
    carried_out = {}
    for creator, row in by_creator.items():
        assert row["points"] == points.get(creator, 0)
        assert row["carried_in_micros"] == carried_in.get(creator, 0)
        if creator in eligible_points:
            assert abs(row["share_micros"] - Fraction(pool * eligible_points[creator], total)) < 1
        else:
            assert row["share_micros"] == 0 and row["eligible"] is False
            assert row["reason"] == ("not_opted_in" if not world.creators[creator] else "region")
        owed = row["carried_in_micros"] + row["share_micros"]
        paid = owed if row["eligible"] and owed >= MINIMUM else 0
        assert (row["payout_micros"], row["carried_out_micros"]) == (paid, owed - paid)
        assert Decimal(row["payout"]) * MICROS == paid
        carried_out[creator] = owed - paid
    return carried_out


async def test_a_month_of_use_closes_into_figures_that_add_up_by_hand(db: Database, database_url: str) -> None:
    world = await simulate(db, random.Random(7))
    february, march = await period(db, FEBRUARY), await period(db, MARCH)
    env = cli_env(database_url, **SETTINGS)
    await gptstore(env, "rewards", "add-revenue", REVENUE, "--period", "2025-03", "--note", "subscriptions")
    dry = await gptstore(env, "rewards", "close", "--period", str(march), "--dry-run")
    assert "Dry run: nothing was written." in dry
    refused = await asyncio.create_subprocess_exec(
        str(GPTSTORE), "rewards", "close", "--period", str(march), env=env, stdout=asyncio.subprocess.PIPE)
    assert "earlier period(s) are still open" in (await refused.communicate())[0].decode() and refused.returncode == 1
    await gptstore(env, "rewards", "close", "--period", str(february))
    await gptstore(env, "rewards", "close", "--period", str(march))

    feb = json.loads(await gptstore(env, "rewards", "export", "--period", str(february), "--format", "json", "--all"))
    assert feb["period"]["pool_micros"] == FIXED and feb["period"]["revenue_micros"] == 0
    carried = check_split(world, FEBRUARY, feb["rows"], FIXED, {})

    exported = json.loads(await gptstore(env, "rewards", "export", "--period", "2025-03-15", "--format", "json", "--all"))
    head, rows = exported["period"], exported["rows"]
    revenue = 1234_567891
    pool = FIXED + revenue * SHARE_BPS // 10_000
    assert (head["revenue_micros"], head["pool_micros"], head["allocated_micros"], head["returned_micros"]) == (revenue, pool, pool, 0)
    check_split(world, MARCH, rows, pool, carried)
    assert head["paid_micros"] == sum(r["payout_micros"] for r in rows)
    assert head["carried_micros"] == sum(r["carried_out_micros"] for r in rows)
    assert sum(r["carried_in_micros"] for r in rows) + pool == head["paid_micros"] + head["carried_micros"]

    # the payment system's file: payouts only, with the destinations decrypted by the operator's key
    payouts = list(csv.DictReader(io.StringIO(await gptstore(env, "rewards", "export", "--period", str(march)))))
    assert [int(r["account_id"]) for r in payouts] == [r["account_id"] for r in rows if r["payout_micros"] > 0]
    assert sum(int(r["payout_micros"]) for r in payouts) == head["paid_micros"] > 0
    for row in payouts:
        assert row["destination"] == world.destinations[int(row["account_id"])]
        assert row["destination_mask"] == "pa…" + row["destination"][-4:]

    balances = await gptstore(env, "rewards", "ledger")
    assert "sum of all balances: 0.00 USD" in balances
    status = await gptstore(env, "rewards", "status")
    assert "0 unbalanced transaction(s); all balances sum to 0" in status
