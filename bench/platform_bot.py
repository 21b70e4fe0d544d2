"""The bot process of the platform benchmark: one real adapter against a fake platform.

Run by bench/platform.py as a child, so that its CPU time is the bot's alone (the fake platform,
the load generator and the fake LLM are other processes). It bootstraps the app as `gptstore run`
does and starts the production adapter, pointed at the fakes on 127.0.0.1:

* Discord: discord.py's REST base and gateway URL (the only two things FakeDiscord changes);
* Slack: the Web API base URL of the adapter's `AsyncWebClient`, and Bolt's HTTP server on `--port`.

It records, per answer, when the LLM's last text chunk arrived (the prompt starts with a tag),
and answers commands on stdin, one per line: `cpu` (its CPU seconds), `ends` (the tags' end times,
`time.perf_counter()`, which on Linux is the same clock in every process), `quit`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from bench.harness import bench_settings
from bot.bootstrap import App, bootstrap
from bot.heap import settle_after_startup

SECRET = "bench-signing-secret-0123456789ab"


def tap_llm(app: App, ends: dict[str, float]) -> None:
    """Note when each answer's last chunk left the LLM gateway, keyed by the prompt's first word."""
    llm = app.services.llm
    stream = llm.stream

    async def tapped(**kwargs: Any) -> AsyncIterator[Any]:
        tag = str(kwargs["messages"][-1]["content"]).split(" ", 1)[0]
        async for item in stream(**kwargs):
            if isinstance(item, str):
                ends[tag] = time.perf_counter()
            yield item

    llm.stream = tapped  # type: ignore[method-assign]


async def start_discord(app: App, fake_url: str) -> Callable[[], Awaitable[None]]:
    import discord.gateway
    import discord.http
    import yarl

    from bot.adapters import discord as adapter

    discord.http.Route.BASE = f"{fake_url}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake_url.replace("http://", "ws://"))
    return await adapter.start(app)


async def start_slack(app: App, fake_url: str, port: int) -> Callable[[], Awaitable[None]]:
    from aiohttp import web
    from slack_bolt.app.async_server import AsyncSlackAppServer
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.adapters.slack import EVENTS_PATH, SlackAdapter

    client = AsyncWebClient(token="xoxb-bench", base_url=fake_url)
    adapter = SlackAdapter(app, client=client)
    server = AsyncSlackAppServer(port=port, path=EVENTS_PATH, app=adapter.bolt, host="127.0.0.1")
    runner = web.AppRunner(server.web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()

    async def close() -> None:
        await runner.cleanup()
        await adapter.aclose()

    return close


async def serve(args: argparse.Namespace) -> None:
    extra: dict[str, Any] = {}
    if args.platform == "discord":
        extra["discord_token"] = "bench-token"
    else:
        extra.update(slack_bot_token="xoxb-bench", slack_signing_secret=SECRET)
    app = await bootstrap(bench_settings(args.database, args.llm, **extra), migrate=True)
    ends: dict[str, float] = {}
    tap_llm(app, ends)
    close = await (start_discord(app, args.fake) if args.platform == "discord"
                   else start_slack(app, args.fake, args.port))
    settle_after_startup()  # as `gptstore run` does once its adapters are up
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := (await reader.readline()).decode().strip():
            if line == "cpu":
                print(json.dumps({"cpu": time.process_time()}), flush=True)
            elif line == "ends":
                print(json.dumps(ends), flush=True)
                ends.clear()
            elif line == "quit":
                break
    finally:
        await close()
        await app.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--platform", choices=("discord", "slack"), required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--llm", required=True)
    parser.add_argument("--fake", required=True, help="Discord: the fake's origin; Slack: its Web API base URL")
    parser.add_argument("--port", type=int, default=0, help="Slack: where Bolt listens")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
