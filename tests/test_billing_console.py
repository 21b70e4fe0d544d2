"""Creators' money as people see it in the console: `/gpt earnings`, `/gpt payout-settings` (DM
only, the destination never shown back) and `/gpt link` joining a console and a Slack identity."""

from __future__ import annotations

import logging
import re

import pytest
from sqlmodel import select

from billing import ledger
from billing.close import Rules, close_period
from bot.bootstrap import App
from bot.events import Actor, Command, Place
from bot.replies import Reply, Sent
from store.models import Gpt, Identity, Rating
from store.rewards import PayoutSettings
from tests.billing_support import MARCH, MICROS, days, make_gpt, opt_in, period, person, uses
from tests.conftest import Terminal


class Collected:
    """An outbox that keeps what the core answered (a second platform in the same test)."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []

    async def send(self, reply: Reply) -> Sent:
        self.replies.append(reply)
        return Sent(f"m{len(self.replies)}")

    @property
    def text(self) -> str:
        return "\n".join(reply.text for reply in self.replies)


async def on_slack(app: App, event_id: str, *, code: str = "") -> Collected:
    out = Collected()
    actor = Actor("slack", "U0ALICE", "Alice S")
    await app.core.handle(Command(actor, Place("T1", "C1"), event_id, "gpt", "link", {"code": code} if code else {}), out)
    return out


async def test_earnings_and_payout_settings(app: App, terminal: Terminal, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    t = terminal
    alice = await person(app.db, "alice")  # the console's alice
    tutor, _ = await make_gpt(app.db, alice, "Math Tutor")
    bob = await person(app.db, "bob")
    await uses(app.db, tutor, bob, days(MARCH.start, 2))
    await close_period(app.db, Rules.from_settings(app.settings), await period(app.db, MARCH))  # alice is not in yet

    out = await t.run(":as bob", ":in #general", "/gpt ask math-tutor What is 2+2?")
    assert "Answer 1" in out
    out = await t.run(":as alice", "/gpt earnings")
    assert "Earnings this period" in out and "1 of 1" in out
    assert "none: you have not opted in to payouts" in out
    assert "Math Tutor" in out and "1 points · 1 people" in out
    assert "2025-03-01 → 2025-04-01 UTC" in out and "2 points · share 0.00 USD" in out  # March's statement
    assert "at most 10 points" in out

    out = await t.run("/gpt payout-settings yes FR paypal:alice@example.com")
    assert "use `/gpt payout-settings` in a DM" in out and "Nothing was saved" in out
    async with app.db.reader() as session:
        assert await session.get(PayoutSettings, alice) is None

    out = await t.run(":dm", "/gpt payout-settings yes fr paypal:alice@example.com")
    assert "Saved." in out and "pa….com" in out and "FR" in out
    assert "alice@example.com" not in out  # never echoed back
    out = await t.run("/gpt payout-settings")
    assert "Opted in: yes" in out and "In the next split: yes" in out and "alice@" not in out
    out = await t.run(":press Edit")
    assert "Payout settings — form" in out
    out = await t.run(":submit opt_in=yes | region=DE | destination=")
    assert "Region: DE" in out and "pa….com" in out  # an empty destination keeps the one stored
    out = await t.run("/gpt payout-settings maybe")
    assert "Answer yes or no" in out

    out = await t.run(":in #general", "/gpt earnings")
    assert "Estimated share: 100.00 USD" in out
    out = await t.run(":dm", ":press Opt out")
    assert "Opted in: no" in out
    assert "alice@example.com" not in caplog.text  # nor in any log line
    async with app.db.reader() as session:
        stored = await session.get(PayoutSettings, alice)
    assert stored is not None and "alice@example.com" not in repr(stored.model_dump())  # nor in the database


async def test_link_joins_two_platforms_into_one_account(app: App, terminal: Terminal) -> None:
    t = terminal
    # the person's Slack identity has its own GPT, a rating and a small balance carried from March
    slack_alice = await person(app.db, "Alice S", platform="slack", user_id="U0ALICE")
    carol, bob = await person(app.db, "carol"), await person(app.db, "bob")
    slack_gpt, _ = await make_gpt(app.db, slack_alice, "Slack Helper")
    carols, _ = await make_gpt(app.db, carol, "Carol Bot")
    await opt_in(app.db, slack_alice)
    await opt_in(app.db, carol)
    await uses(app.db, slack_gpt, bob, days(MARCH.start, 1))
    await uses(app.db, carols, bob, days(MARCH.start, 10))
    await uses(app.db, carols, await person(app.db, "dave"), days(MARCH.start, 9))
    await close_period(app.db, Rules.from_settings(app.settings), await period(app.db, MARCH))  # 5 USD carried
    async with app.db.session() as session:
        session.add(Rating(gpt_id=carols, account_id=slack_alice, stars=4))

    out = await t.run(":as alice", "/gpt link")
    first = re.search(r"Your link code: \*\*([A-Z0-9]{5}-[A-Z0-9]{5})\*\*", out)
    out = await t.run("/gpt link")  # a new code replaces the old one
    fresh = re.search(r"Your link code: \*\*([A-Z0-9]{5}-[A-Z0-9]{5})\*\*", out)
    assert first is not None and fresh is not None and first.group(1) != fresh.group(1), out
    assert "within 15 minutes" in out

    stale = await on_slack(app, "ev-1", code=first.group(1))
    assert "not valid" in stale.text
    own = await t.run(f"/gpt link {fresh.group(1)}")
    assert "This code is yours" in own
    linked = await on_slack(app, "ev-2", code=fresh.group(1).lower())
    assert "Linked" in linked.text and "1 GPT(s) moved over" in linked.text
    again = await on_slack(app, "ev-3", code=fresh.group(1))
    assert "already used" in again.text

    alice = await person(app.db, "alice")
    async with app.db.reader() as session:
        identities = (await session.execute(select(Identity).where(Identity.account_id == alice))).scalars().all()
        assert {(i.platform, i.external_id) for i in identities} == {("console", "alice"), ("slack", "U0ALICE")}
        assert (await session.get(Gpt, slack_gpt)).creator_id == alice  # type: ignore[union-attr]
        rating = (await session.execute(select(Rating).where(Rating.gpt_id == carols))).scalar_one()
        assert rating.account_id == alice
        assert await ledger.balance(session, ledger.creator(alice)) == 5 * MICROS
        assert await ledger.balance(session, ledger.creator(slack_alice)) == 0
        assert await session.get(PayoutSettings, alice) is not None  # the Slack side's settings came along

    out = await t.run("/gpt earnings")
    assert "Balance carried over: 5.00 USD" in out
    assert "1 points · share 5.00 USD · carried over 5.00 USD" in out  # the Slack identity's statement
    out = await t.run("/gpt mine")
    assert "Slack Helper" in out


async def test_link_codes_cannot_be_guessed_quickly(app: App, terminal: Terminal) -> None:
    out = await terminal.run(":as mallory", *[f"/gpt link AAAAA-BBBB{n}" for n in range(5)])
    assert out.count("not valid") == 5
    out = await terminal.run("/gpt link AAAAA-BBBB9")
    assert "Too many link attempts. Please try again in 3 minutes." in out
