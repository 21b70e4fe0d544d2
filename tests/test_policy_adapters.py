"""Curation through the real platform adapters: on Discord an admin is whoever has Manage Server, on
Slack a workspace admin (users.info); the rules themselves are the core's, so these tests check that
each platform's people get what the console tests promise: the admin changes the rule, the member
is refused with the reason and who can change it, autocomplete and search hide the GPT, and a
Slack DM, which belongs to its workspace, obeys it too."""

from __future__ import annotations

from bot.bootstrap import App
from tests.discord_support import ALICE, BOB, CAROL, EPHEMERAL, World, seed_gpt, world
from tests.slack_env import ALICE as S_ALICE
from tests.slack_env import BOB as S_BOB
from tests.slack_env import CAROL as S_CAROL
from tests.slack_env import GENERAL as S_GENERAL
from tests.slack_env import SlackEnv, rendered

__all__ = ["world"]


async def test_discord_admins_block_and_members_are_told_why(world: World, app: App) -> None:
    w = world
    tutor = await seed_gpt(app, ALICE, "Alice", "Math Tutor")
    await seed_gpt(app, ALICE, "Alice", "Poem Bot")

    refused = await w.replies(await w.command(BOB, "block", group="gpt-admin", gpt=tutor))
    assert "Only this server's admins can use `/gpt-admin block`." in refused
    h = await w.command(CAROL, "block", group="gpt-admin", gpt=tutor)
    assert "“Math Tutor” is blocked here" in await w.replies(h)
    assert (await h.wait_original())["flags"] & EPHEMERAL

    h = await w.command(BOB, "ask", gpt=tutor, prompt="hi")
    text = await w.replies(h)
    assert "“Math Tutor” is blocked in this server. This server's admins decide this with `/gpt-admin`." in text
    assert "Last change by Carol" in text and "Answer 1" not in text
    assert "Math Tutor" not in await w.replies(await w.command(BOB, "search", query="tutor"))
    assert tutor not in [c["value"] for c in await w.autocomplete(BOB, "ask", "gpt", "")]
    assert tutor in [c["value"] for c in await w.autocomplete(CAROL, "unblock", "gpt", "tut", group="gpt-admin")]
    text = await w.replies(await w.command(CAROL, "ask", gpt=tutor, prompt="hi"))
    assert "You can lift the block with `/gpt-admin unblock math-tutor`." in text
    assert "blocked in this server" in await w.replies(await w.command(ALICE, "ask", gpt=tutor, prompt="hi"))

    await w.replies(await w.command(CAROL, "unblock", group="gpt-admin", gpt=tutor))
    assert "Answer 1: hi" in await w.replies(await w.command(BOB, "ask", gpt=tutor, prompt="hi"))


async def test_discord_allowlist_and_quota(world: World, app: App) -> None:
    w = world
    tutor = await seed_gpt(app, ALICE, "Alice", "Math Tutor")
    poem = await seed_gpt(app, ALICE, "Alice", "Poem Bot")
    for name, options in (("mode", {"mode": "allowlist"}), ("allow", {"gpt": poem}), ("quota", {"scope": "member", "limit": 1})):
        await w.replies(await w.command(CAROL, name, group="gpt-admin", **options))
    text = await w.replies(await w.command(BOB, "ask", gpt=tutor, prompt="hi"))
    assert "This server only allows GPTs its admins picked, and “Math Tutor” is not one of them." in text
    assert "Answer 1: one" in await w.replies(await w.command(BOB, "ask", gpt=poem, prompt="one"))
    text = await w.replies(await w.command(BOB, "ask", gpt=poem, prompt="two"))
    assert "You reached this server's daily limit of 1 questions." in text
    policy = await w.replies(await w.command(CAROL, "policy", group="gpt-admin"))
    assert "Mode: allowlist" in policy and "Allowed: Poem Bot (`poem-bot`)" in policy


async def test_slack_admins_curate_and_dms_obey_the_workspace(slack_env: SlackEnv) -> None:
    env = slack_env
    env.fake.admins.add(S_CAROL)  # a workspace admin, as users.info says
    tutor = await env.publish("Math Tutor", creator=S_ALICE)
    await env.publish("Poem Bot", creator=S_ALICE)

    await env.command(f"block {tutor}", user=S_BOB, command="/gpt-admin")
    assert any("Only this server's admins can use `/gpt-admin block`." in t for t in env.whispers(S_BOB))
    await env.command(f"block {tutor}", user=S_CAROL, command="/gpt-admin")
    assert any("“Math Tutor” is blocked here" in t for t in env.whispers(S_CAROL))

    await env.command(f"ask {tutor} hi", user=S_BOB)
    assert "“Math Tutor” is blocked in this server." in env.whispers(S_BOB)[-1]
    assert "Last change by Carol" in env.whispers(S_BOB)[-1]
    dm = env.fake.dm_channel(S_BOB)
    await env.command(f"use {tutor}", user=S_BOB, channel=dm)  # a Slack DM belongs to the workspace
    assert "“Math Tutor” is blocked in this server." in env.whispers(S_BOB)[-1]
    await env.command("search tutor", user=S_BOB)
    assert "Math Tutor" not in rendered(env.fake.ephemerals(S_GENERAL, S_BOB)[-1])

    await env.command("feature poem-bot", user=S_CAROL, command="/gpt-admin")
    await env.command("browse", user=S_BOB)
    assert "Featured by this server's admins" in rendered(env.fake.ephemerals(S_GENERAL, S_BOB)[-1])
    await env.command("log", user=S_CAROL, command="/gpt-admin")
    log = rendered(env.fake.ephemerals(S_GENERAL, S_CAROL)[-1])
    assert "Carol" in log and "block math-tutor" in log and "feature poem-bot" in log
