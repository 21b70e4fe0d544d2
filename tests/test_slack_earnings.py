"""Creators' money on Slack: statements reach their DMs after each close (once, later if Slack
refused, at start-up for a close made while the app was away, from the workspace the creator is
in when the app serves many), and the App Home's "My GPTs" shows this period's estimate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import select

from billing.scheduler import run_closes
from bot.adapters.slack import SlackAdapter
from bot.bootstrap import App, bootstrap
from store.models import utcnow
from store.rewards import RewardStatement
from tests.billing_support import make_gpt, nothing_closed_again, opt_in, person, uses
from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_fake import BoltHTTPServer, FakeSlackAPI, SlackSender
from tests.slack_env import ALICE, BOB, SECRET, SlackEnv, open_slack_env, rendered, slack_settings

CRON = "* * * * *"  # a period a minute, so a use three minutes ago is in a period that has ended


async def creator_with_engagement(app: App) -> None:
    """Alice (a Slack creator, opted in) made Tutor; Bob used it once, three minutes ago."""
    alice = await person(app.db, "Alice", platform="slack", user_id=ALICE)
    bob = await person(app.db, "Bob", platform="slack", user_id=BOB)
    tutor, _ = await make_gpt(app.db, alice, "Tutor")
    await opt_in(app.db, alice)
    await uses(app.db, tutor, bob, [utcnow() - timedelta(minutes=3)])


def statements_seen(fake: FakeSlackAPI, user: str) -> list[str]:
    return [text for text in map(rendered, fake.messages(fake.dm_channel(user))) if "Your statement for" in text]


async def undelivered(app: App) -> int:
    async with app.db.reader() as session:
        rows = await session.execute(select(RewardStatement).where(RewardStatement.delivered_at.is_(None)))  # type: ignore[union-attr]
        return len(list(rows.scalars()))


async def test_the_statement_reaches_the_creator_once_after_the_close(slack_env: SlackEnv) -> None:
    env, app = slack_env, slack_env.app
    await creator_with_engagement(app)
    closed = await run_closes(app, cron=CRON)  # the scheduler's run: close, then the after-close hooks
    assert closed and sum(plan.paid for plan in closed) == 100_000_000
    (statement,) = statements_seen(env.fake, ALICE)
    assert "*Points*\n1" in statement and "*Your share*\n100.00 USD" in statement and "*Paid out*\n100.00 USD" in statement
    assert "100.00 USD is on its way to your payout destination (pa…" in statement and "*Tutor*\n1 points" in statement
    (post,) = [c for c in env.fake.calls_to("chat.postMessage") if c.args["channel"] == env.fake.dm_channel(ALICE)]
    assert post.token == "xoxb-test"
    assert statements_seen(env.fake, BOB) == []

    assert nothing_closed_again(await run_closes(app, cron=CRON), closed)  # a second run sends nothing
    assert len(statements_seen(env.fake, ALICE)) == 1 and await undelivered(app) == 0


async def test_a_refused_dm_stays_pending_until_slack_accepts_it(slack_env: SlackEnv) -> None:
    env, app = slack_env, slack_env.app
    await creator_with_engagement(app)
    env.fake.fail["conversations.open"] = "cannot_dm_bot"
    await run_closes(app, cron=CRON)
    assert statements_seen(env.fake, ALICE) == [] and await undelivered(app) == 1

    del env.fake.fail["conversations.open"]
    await run_closes(app, cron=CRON)
    assert len(statements_seen(env.fake, ALICE)) == 1 and await undelivered(app) == 0


async def test_a_close_while_the_app_was_away_is_delivered_at_start(app: App, fake_llm: FakeOpenAI) -> None:
    await creator_with_engagement(app)
    assert await run_closes(app, cron=CRON)  # no adapter running: nobody to DM yet
    assert await undelivered(app) == 1
    async with open_slack_env(app, fake_llm) as env:
        await env.settle()  # the start-up delivery
        assert len(statements_seen(env.fake, ALICE)) == 1 and await undelivered(app) == 0
    assert app.services.extras["after_close"] == []  # the stopped adapter's hook is gone


async def test_with_many_workspaces_the_dm_comes_from_the_creators_workspace(app: App) -> None:
    """The statement names a user, not a workspace: the adapter finds the installation whose
    workspace the user belongs to (users.info says which), and writes with that bot token."""
    client_id, client_secret = "1111.2222", "oauth-secret"
    await creator_with_engagement(app)
    async with FakeSlackAPI(client_id=client_id, client_secret=client_secret) as fake:
        fake.add_user(ALICE, "alice", real_name="Alice", team_id="T0TWO")
        settings = slack_settings(app, slack_client_id=client_id, slack_client_secret=SecretStr(client_secret))
        adapter = SlackAdapter(app, client=AsyncWebClient(base_url=fake.base_url), settings=settings)
        try:
            async with BoltHTTPServer(adapter.bolt) as server, SlackSender(server.url, SECRET, fake=fake) as slack:
                tokens = {}
                for team in ("T0TWO", "T0ONE"):  # Alice's workspace first, so it is not the newest install
                    _, redirect = await slack.oauth_install(team_id=team, user_id="U0ADMIN")
                    assert redirect.status == 200, redirect.text
                    answer = fake.calls_to("oauth.v2.access")[-1].response
                    assert answer is not None
                    tokens[team] = answer["access_token"]
                await run_closes(app, cron=CRON)
                await adapter.idle()
        finally:
            await adapter.aclose()
        assert len(statements_seen(fake, ALICE)) == 1
        (post,) = [c for c in fake.calls_to("chat.postMessage") if c.args["channel"] == fake.dm_channel(ALICE)]
        assert post.token == tokens["T0TWO"]
        (opened,) = fake.calls_to("conversations.open")
        assert opened.token == tokens["T0TWO"]


# --- the storefront's estimate ---------------------------------------------------------------

@pytest.fixture
async def euro_env(database_url: str, fake_llm: FakeOpenAI) -> AsyncIterator[SlackEnv]:
    """The Slack adapter in front of a store that pays 100 EUR a period."""
    bot = await bootstrap(make_settings(database_url, fake_llm.base_url, rewards_currency="EUR",
                                        rewards_pool_micros=100_000_000), migrate=True)
    try:
        async with open_slack_env(bot, fake_llm) as env:
            yield env
    finally:
        await bot.aclose()


async def test_my_gpts_on_the_home_tab_shows_this_periods_estimate(euro_env: SlackEnv) -> None:
    env = euro_env
    slug = await env.publish("Math Tutor")
    await env.publish("Poem Smith", category="Writing")
    await env.command(f"ask {slug} what is 1+1?", user=BOB)  # Bob's use: Math Tutor's one point
    alice = await person(env.app.db, "Alice", platform="slack", user_id=ALICE)

    await env.event(env.slack.app_home_opened(user_id=ALICE))
    shown = rendered(env.fake.home_view(ALICE) or {})
    assert "My GPTs" in shown
    assert "No earnings this period: you have not opted in to payouts" in shown  # not opted in yet
    assert "est. 0.00 EUR this period" in shown and "est. 100.00 EUR" not in shown

    await opt_in(env.app.db, alice)
    await env.event(env.slack.app_home_opened(user_id=ALICE))
    shown = rendered(env.fake.home_view(ALICE) or {})
    tutor = next(line for line in shown.splitlines() if line.startswith("1 uses"))
    assert tutor == "1 uses · not rated yet · est. 100.00 EUR this period"  # the whole pool: the only points
    assert "0 uses · not rated yet · est. 0.00 EUR this period" in shown  # Poem Smith: nobody used it
    assert "No earnings this period" not in shown

    await env.command("earnings", user=ALICE)  # the same figure as `/gpt earnings`
    assert "100.00 EUR" in rendered(env.fake.ephemerals(user_id=ALICE)[-1])

    await env.event(env.slack.app_home_opened(user_id=BOB))  # not a creator: no "My GPTs", no estimate
    assert "My GPTs" not in rendered(env.fake.home_view(BOB) or {})
