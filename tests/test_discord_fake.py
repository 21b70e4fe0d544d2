"""The fake Discord driven by a real discord.py bot, end to end over 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.fakes.discord_fake import FakeDiscord

GUILD_ID = 1000 << 22  # shard 0 of 2
OTHER_GUILD_ID = 1001 << 22  # shard 1 of 2
CHANNEL_ID = 900000000000000001
OWNER_ID = 800000000000000001
MEMBER_ID = 800000000000000002
CLOSED_ID = 800000000000000003


class PersistentView(discord.ui.View):
    def __init__(self, bot: Bot) -> None:
        super().__init__(timeout=None)
        self.bot = bot

    @discord.ui.button(label="Hello", custom_id="persist:hello", style=discord.ButtonStyle.primary)
    async def hello(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.bot.events.append(("button", interaction.user.id))
        await interaction.response.edit_message(content=f"pressed by {interaction.user.id}", view=self)


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    text: discord.ui.TextInput = discord.ui.TextInput(label="Your feedback", custom_id="feedback:text")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"thanks: {self.text.value}", ephemeral=True)


class Bot(discord.Client):
    def __init__(
        self, *, sync_guild: int | None = GUILD_ID, intents: discord.Intents | None = None, **kwargs: object
    ) -> None:
        intents = intents or discord.Intents.default()
        super().__init__(intents=intents, guild_ready_timeout=0.05, **kwargs)  # type: ignore[arg-type]
        self.tree = app_commands.CommandTree(self)
        self.sync_guild = sync_guild
        self.events: list[tuple[str, object]] = []
        gpt = app_commands.Group(name="gpt", description="GPTs")

        @self.tree.command(description="Ping")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.followup.send("pong")

        async def fruit_choices(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            fruits = ["apple", "apricot", "banana", "cherry"]
            return [app_commands.Choice(name=f, value=f) for f in fruits if f.startswith(current)]

        @self.tree.command(description="Pick a fruit")
        @app_commands.autocomplete(name=fruit_choices)
        async def fruit(interaction: discord.Interaction, name: str) -> None:
            await interaction.response.send_message(f"you picked {name}")

        @gpt.command(description="Search GPTs")
        async def search(interaction: discord.Interaction, query: str, limit: int = 5) -> None:
            self.events.append(("search", (query, limit)))
            await interaction.response.send_message(f"search {query!r} limit={limit}", ephemeral=True)

        @self.tree.command(description="Who is this")
        async def whois(interaction: discord.Interaction, user: discord.Member) -> None:
            await interaction.response.send_message(f"{user.id} {user.display_name}")

        @self.tree.command(description="Leave feedback")
        async def feedback(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(FeedbackModal())

        @self.tree.command(description="Start a thread")
        async def talk(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("starting a thread")
            message = await interaction.original_response()
            thread = await message.create_thread(name="talk")
            await thread.send("hello in the thread")

        self.tree.add_command(gpt)

    async def setup_hook(self) -> None:
        self.add_view(PersistentView(self))
        if self.sync_guild is not None:
            guild = discord.Object(self.sync_guild)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        if message.guild is not None:
            self.events.append(("guild_message", message.content))
        else:
            await message.reply(f"echo: {message.content}")


@dataclass
class Env:
    fake: FakeDiscord
    bot: Bot


async def _start(client: discord.Client, fake: FakeDiscord, shards: int | None = None) -> asyncio.Task[None]:
    task = asyncio.create_task(client.start("fake-token"))
    ready = asyncio.create_task(fake.wait_ready(shards=shards))
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():  # the client died first: surface its error
        ready.cancel()
        await client.close()
        await task
    await ready
    await asyncio.wait_for(client.wait_until_ready(), 5)
    return task


async def _stop(client: discord.Client, task: asyncio.Task[None]) -> None:
    await client.close()
    await asyncio.wait_for(task, 5)


def _assert_no_leftover_tasks() -> None:
    gc.collect()
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not left, f"pending tasks after shutdown: {left}"


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with FakeDiscord(token="fake-token") as fake:
        fake.add_user(OWNER_ID, "Owner")
        fake.add_user(MEMBER_ID, "Member", locale="fr")
        fake.add_user(CLOSED_ID, "Closed")
        fake.add_guild(
            GUILD_ID,
            "Test Guild",
            owner_id=OWNER_ID,
            channels=[{"id": CHANNEL_ID, "name": "general"}],
            members=[{"id": MEMBER_ID}, {"id": CLOSED_ID}],
        )
        with fake.patch_discord():
            bot = Bot()
            task = await _start(bot, fake)
            try:
                yield Env(fake, bot)
            finally:
                await _stop(bot, task)
    _assert_no_leftover_tasks()


async def test_login_sync_and_ready(env: Env) -> None:
    fake, bot = env.fake, env.bot
    paths = [(c.method, c.route) for c in fake.calls]
    assert paths[:2] == [("GET", "/users/@me"), ("GET", "/oauth2/applications/@me")]
    assert ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands") in paths
    assert bot.user is not None and bot.user.id == fake.application_id
    guild = bot.get_guild(GUILD_ID)
    assert guild is not None and guild.name == "Test Guild"
    assert guild.get_channel(CHANNEL_ID) is not None
    assert all(c.status < 400 for c in fake.calls)
    # discord.py asks for zlib-stream when zstd is unavailable; the fake compresses as Discord does
    assert all(s.compressor is not None for s in fake._sessions) or discord.utils._ZSTD_SOURCE is not None


async def test_slash_command_defer_then_followup(env: Env) -> None:
    fake = env.fake
    n = len(fake.calls)
    h = await fake.interact(
        fake.slash_command(guild_id=GUILD_ID, channel_id=CHANNEL_ID, user_id=MEMBER_ID, name="ping")
    )
    assert (await h.response())["type"] == 5
    followups = await h.wait_followups(1)
    assert followups[0]["content"] == "pong"
    # after a deferred reply the first follow-up edits the "thinking" message (Discord's behaviour)
    assert h.original is not None and h.original["content"] == "pong" and not h.original["flags"] & 128
    calls = [
        c for c in fake.calls[n:] if c.route and ("/interactions/" in c.route or "/webhooks/" in c.route)
    ]
    assert [(c.method, c.route) for c in calls] == [
        ("POST", "/interactions/{interaction_id}/{token}/callback"),
        ("POST", "/webhooks/{webhook_id}/{token}"),
    ]
    assert calls[0].json == {"type": 5} and calls[1].json["content"] == "pong"
    assert calls[0].timestamp <= calls[1].timestamp and calls[1].status == 200
    assert h.latency is not None and h.latency < 3
    assert fake.messages(CHANNEL_ID)[-1] == "pong"


async def test_subcommand_group_typed_options_and_locale(env: Env) -> None:
    fake, bot = env.fake, env.bot
    payload = fake.slash_command(
        guild_id=GUILD_ID,
        channel_id=CHANNEL_ID,
        user_id=MEMBER_ID,
        name="gpt",
        subcommand="search",
        options={"query": "cats", "limit": 3},
    )
    data = payload["data"]
    assert data["guild_id"] == str(GUILD_ID) and payload["locale"] == "fr"
    assert data["options"] == [
        {
            "type": 1,
            "name": "search",
            "options": [
                {"name": "query", "type": 3, "value": "cats"},
                {"name": "limit", "type": 4, "value": 3},
            ],
        }
    ]
    h = await fake.interact(payload)
    cb = await h.response()
    assert cb["type"] == 4 and cb["data"]["content"] == "search 'cats' limit=3" and cb["data"]["flags"] == 64
    assert ("search", ("cats", 3)) in bot.events
    assert h.original is not None and h.original["flags"] & 64


async def test_user_option_is_resolved(env: Env) -> None:
    fake = env.fake
    h = await fake.interact(
        fake.slash_command(
            guild_id=GUILD_ID,
            channel_id=CHANNEL_ID,
            user_id=OWNER_ID,
            name="whois",
            options={"user": MEMBER_ID},
        )
    )
    assert (await h.response())["data"]["content"] == f"{MEMBER_ID} Member"


async def test_autocomplete_returns_choices(env: Env) -> None:
    fake = env.fake
    h = await fake.interact(
        fake.autocomplete(
            guild_id=GUILD_ID,
            channel_id=CHANNEL_ID,
            user_id=MEMBER_ID,
            name="fruit",
            focused="name",
            value="ap",
        )
    )
    cb = await h.response()
    assert cb == {
        "type": 8,
        "data": {"choices": [{"name": "apple", "value": "apple"}, {"name": "apricot", "value": "apricot"}]},
    }


async def test_persistent_button_reaches_view(env: Env) -> None:
    fake, bot = env.fake, env.bot
    channel = bot.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("Press the button", view=PersistentView(bot))
    stored = fake.get_message(sent.id)
    assert stored is not None and stored["components"][0]["components"][0]["custom_id"] == "persist:hello"
    h = await fake.interact(fake.component(custom_id="persist:hello", message=sent.id, user_id=MEMBER_ID))
    cb = await h.response()
    assert cb["type"] == 7 and cb["data"]["content"] == f"pressed by {MEMBER_ID}"
    assert ("button", MEMBER_ID) in bot.events
    assert fake.messages(CHANNEL_ID)[-1] == f"pressed by {MEMBER_ID}"
    assert h.original is not None and h.original["id"] == str(sent.id)


async def test_modal_open_and_submit(env: Env) -> None:
    fake = env.fake
    h = await fake.interact(
        fake.slash_command(guild_id=GUILD_ID, channel_id=CHANNEL_ID, user_id=MEMBER_ID, name="feedback")
    )
    cb = await h.response()
    assert cb["type"] == 9 and cb["data"]["title"] == "Feedback"
    h2 = await fake.interact(
        fake.modal_submit(
            custom_id=cb["data"]["custom_id"],
            fields={"feedback:text": "great"},
            user_id=MEMBER_ID,
            channel_id=CHANNEL_ID,
        )
    )
    cb2 = await h2.response()
    assert cb2["type"] == 4 and cb2["data"]["content"] == "thanks: great"


async def test_thread_from_interaction_message(env: Env) -> None:
    fake, bot = env.fake, env.bot
    h = await fake.interact(
        fake.slash_command(guild_id=GUILD_ID, channel_id=CHANNEL_ID, user_id=MEMBER_ID, name="talk")
    )
    await h.response()
    original = await h.wait_original()
    thread_id = int(original["id"])  # a thread started from a message shares its id
    msg = await fake.wait_for_message(thread_id)
    assert msg["content"] == "hello in the thread"
    thread = fake.channel(thread_id)
    assert thread is not None and thread["type"] == 11 and thread["parent_id"] == str(CHANNEL_ID)
    routes = [c.route for c in fake.calls]
    assert "/webhooks/{webhook_id}/{token}/messages/{message_id}" in routes  # GET @original
    assert "/channels/{channel_id}/messages/{message_id}/threads" in routes
    # THREAD_CREATE reached discord.py's cache
    await asyncio.sleep(0.05)
    guild = bot.get_guild(GUILD_ID)
    assert guild is not None and guild.get_thread(thread_id) is not None


async def test_dm_message_gets_reply_and_closed_dms_raise(env: Env) -> None:
    fake, bot = env.fake, env.bot
    dm = int(fake.dm_channel(MEMBER_ID)["id"])
    sent = await fake.send_message(channel_id=dm, author_id=MEMBER_ID, content="hi bot")
    reply = await fake.wait_for_message(dm, lambda m: m["author"]["id"] == str(fake.application_id))
    assert reply["content"] == "echo: hi bot"
    assert reply["message_reference"]["message_id"] == sent["id"] and reply["type"] == 19
    assert fake.messages(dm) == ["hi bot", "echo: hi bot"]

    fake.close_dms_for.add(CLOSED_ID)
    user = await bot.fetch_user(CLOSED_ID)
    with pytest.raises(discord.Forbidden) as info:
        await user.send("hello?")
    assert info.value.code == 50007 and info.value.status == 403
    assert fake.calls[-1].status == 403 and fake.calls[-1].route == "/channels/{channel_id}/messages"


async def test_reconnect_resumes_and_guild_join_after_ready(env: Env) -> None:
    fake, bot = env.fake, env.bot
    resumed = asyncio.Event()

    async def on_resumed() -> None:
        resumed.set()

    bot.on_resumed = on_resumed  # type: ignore[attr-defined]  # discord.py looks up on_<event> on the client
    await fake.request_reconnect()  # op 7: discord.py closes and RESUMEs on resume_gateway_url
    await asyncio.wait_for(resumed.wait(), 5)
    h = await fake.interact(
        fake.slash_command(guild_id=GUILD_ID, channel_id=CHANNEL_ID, user_id=MEMBER_ID, name="ping")
    )
    assert (await h.response())["type"] == 5
    # a guild added while connected arrives as GUILD_CREATE (a guild join)
    fake.add_guild(OTHER_GUILD_ID, "Joined later", owner_id=OWNER_ID)
    for _ in range(100):
        if bot.get_guild(OTHER_GUILD_ID) is not None:
            break
        await asyncio.sleep(0.01)
    assert bot.get_guild(OTHER_GUILD_ID) is not None


async def test_file_upload_is_parsed_from_multipart(env: Env) -> None:
    fake, bot = env.fake, env.bot
    channel = bot.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("see attached", file=discord.File(io.BytesIO(b"hello"), "notes.txt"))
    assert sent.attachments[0].filename == "notes.txt" and sent.attachments[0].size == 5
    call = fake.calls[-1]
    assert call.json["content"] == "see attached"  # payload_json, parsed
    assert call.files[0]["filename"] == "notes.txt" and call.files[0]["data"] == b"hello"
    assert not fake.errors


async def test_unknown_route_is_404_and_recorded(env: Env) -> None:
    fake, bot = env.fake, env.bot
    with pytest.raises(discord.NotFound):
        await bot.http.request(discord.http.Route("GET", "/nothing/{x}", x=1))
    assert fake.unknown_calls[-1].path == "/nothing/1" and fake.unknown_calls[-1].status == 404
    assert fake.unknown_calls[-1].response == {"message": "404: Not Found", "code": 0}


async def test_guild_message_content_needs_intent_unless_mentioned(env: Env) -> None:
    fake, bot = env.fake, env.bot
    await fake.send_message(channel_id=CHANNEL_ID, author_id=MEMBER_ID, content="secret")
    await fake.send_message(
        channel_id=CHANNEL_ID, author_id=MEMBER_ID, content=f"<@{fake.application_id}> hi"
    )
    for _ in range(100):
        seen = [content for kind, content in bot.events if kind == "guild_message"]
        if len(seen) == 2:
            break
        await asyncio.sleep(0.01)
    assert seen == ["", f"<@{fake.application_id}> hi"]  # Intents.default() lacks message_content
    assert fake.messages(CHANNEL_ID) == [
        "secret",
        f"<@{fake.application_id}> hi",
    ]  # the store keeps the truth


async def test_members_intent_chunks_guild_at_startup() -> None:
    async with FakeDiscord() as fake:
        fake.add_user(MEMBER_ID, "Member")
        fake.add_guild(GUILD_ID, "G", owner_id=OWNER_ID, members=[{"id": MEMBER_ID, "nick": "Mem"}])
        with fake.patch_discord():
            intents = discord.Intents.default()
            intents.members = True  # discord.py then sends op 8 and waits for GUILD_MEMBERS_CHUNK
            bot = Bot(sync_guild=None, intents=intents)
            started = time.perf_counter()
            task = await _start(bot, fake)
            try:
                assert time.perf_counter() - started < 3  # no chunk timeout
                guild = bot.get_guild(GUILD_ID)
                assert guild is not None and guild.chunked
                member = guild.get_member(MEMBER_ID)
                assert member is not None and member.display_name == "Mem"
                assert {m.id for m in guild.members} == {fake.application_id, OWNER_ID, MEMBER_ID}
            finally:
                await _stop(bot, task)
    _assert_no_leftover_tasks()


async def test_auto_sharded_client_gets_ready_on_both_shards() -> None:
    class ShardedBot(discord.AutoShardedClient):
        async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
            return None  # discord.py would sleep 5 s between shards (Discord's identify rate limit)

    async with FakeDiscord() as fake:
        fake.add_guild(GUILD_ID, "Zero", owner_id=OWNER_ID)
        fake.add_guild(OTHER_GUILD_ID, "One", owner_id=OWNER_ID)
        with fake.patch_discord():
            bot = ShardedBot(shard_count=2, intents=discord.Intents.default(), guild_ready_timeout=0.05)
            task = await _start(bot, fake, shards=2)
            try:
                assert sorted(bot.shards) == [0, 1]
                g0, g1 = bot.get_guild(GUILD_ID), bot.get_guild(OTHER_GUILD_ID)
                assert g0 is not None and g0.shard_id == 0
                assert g1 is not None and g1.shard_id == 1
                shards = sorted((s.shard_id, s.shard_count) for s in fake._sessions)
                assert shards == [(0, 2), (1, 2)]
                # an interaction in guild 1 reaches only shard 1, exactly once
                ch = int(fake.guild(OTHER_GUILD_ID)["channels"][0]["id"])
                payload = fake.slash_command(
                    guild_id=OTHER_GUILD_ID, channel_id=ch, user_id=OWNER_ID, name="nope"
                )
                assert await fake.send_dispatch("INTERACTION_CREATE", payload) == 1
            finally:
                await _stop(bot, task)
    _assert_no_leftover_tasks()


async def test_protocol_rules_without_a_bot() -> None:
    """Deadline, double acknowledgement, follow-up before acknowledgement, empty message."""
    async with FakeDiscord(interaction_deadline=0.05) as fake, aiohttp.ClientSession() as http:
        fake.add_guild(GUILD_ID, "G", owner_id=OWNER_ID, channels=[{"id": CHANNEL_ID, "name": "general"}])
        payload = fake.slash_command(guild_id=GUILD_ID, channel_id=CHANNEL_ID, user_id=OWNER_ID, name="x")
        assert payload["member"]["permissions"] == str((1 << 53) - 1)  # the owner has every permission
        fast = fake.slash_command(guild_id=GUILD_ID, channel_id=CHANNEL_ID, user_id=OWNER_ID, name="x")
        for p in (payload, fast):
            fake._register_handle(p).dispatched_at = time.perf_counter()
        base = fake.rest_base

        async def post(path: str, body: object) -> tuple[int, dict]:
            async with http.post(base + path, json=body) as r:
                return r.status, (await r.json() if r.status != 204 else {})

        status, body = await post(
            f"/webhooks/{fake.application_id}/{fast['token']}?wait=1", {"content": "early"}
        )
        assert (status, body["code"]) == (404, 10015)
        status, body = await post(
            f"/interactions/{fast['id']}/{fast['token']}/callback?with_response=1", {"type": 5}
        )
        assert status == 200 and body["interaction"]["response_message_loading"] is True
        status, body = await post(f"/interactions/{fast['id']}/{fast['token']}/callback", {"type": 4})
        assert (status, body["code"]) == (400, 40060)
        status, body = await post(f"/webhooks/{fake.application_id}/{fast['token']}?wait=1", {})
        assert (status, body["code"]) == (400, 50006)
        status, body = await post(
            f"/webhooks/{fake.application_id}/{fast['token']}?wait=1", {"content": "x" * 2001}
        )
        assert (status, body["code"]) == (400, 50035) and "content" in body["errors"]
        await asyncio.sleep(0.1)
        status, body = await post(
            f"/interactions/{payload['id']}/{payload['token']}/callback",
            {"type": 4, "data": {"content": "late"}},
        )
        assert (status, body["code"]) == (404, 10062)
        assert [c.status for c in fake.calls] == [404, 200, 400, 400, 400, 404]


async def test_rate_limits_are_honoured_by_discord_py() -> None:
    async with FakeDiscord(rate_limit=(2, 0.3)) as fake:
        fake.add_guild(GUILD_ID, "G", owner_id=OWNER_ID, channels=[{"id": CHANNEL_ID, "name": "general"}])
        with fake.patch_discord():
            bot = Bot(sync_guild=None)
            task = await _start(bot, fake)
            try:
                channel = bot.get_channel(CHANNEL_ID)
                assert isinstance(channel, discord.TextChannel)
                for i in range(5):
                    await channel.send(f"m{i}")
                sends = [c for c in fake.calls if c.route == "/channels/{channel_id}/messages"]
                assert fake.messages(CHANNEL_ID) == [f"m{i}" for i in range(5)]
                assert all(c.status == 200 for c in sends)  # discord.py waited on the headers, no 429
                assert sends[-1].timestamp - sends[0].timestamp >= 0.5
            finally:
                await _stop(bot, task)
    _assert_no_leftover_tasks()


async def test_rate_limit_answers_429_with_discord_headers() -> None:
    async with FakeDiscord(rate_limit=(1, 10.0)) as fake, aiohttp.ClientSession() as http:
        fake.add_guild(GUILD_ID, "G", owner_id=OWNER_ID, channels=[{"id": CHANNEL_ID, "name": "general"}])
        url = f"{fake.rest_base}/channels/{CHANNEL_ID}/messages"
        async with http.post(url, json={"content": "one"}) as r:
            assert r.status == 200 and r.headers["X-RateLimit-Remaining"] == "0"
        async with http.post(url, json={"content": "two"}) as r:
            body = await r.json()
            assert r.status == 429 and r.headers["Via"] and float(r.headers["Retry-After"]) > 0
            assert body["message"] == "You are being rate limited." and body["retry_after"] > 0
        assert fake.messages(CHANNEL_ID) == ["one"]
