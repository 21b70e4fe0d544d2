"""`gptstore run`: start every adapter whose credentials are set, and stop them cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from rich.console import Console

from bot.bootstrap import App
from bot.heap import settle_after_startup
from config import Settings

log = logging.getLogger(__name__)

NOTHING_CONFIGURED = """No platform is configured, so there is nothing to connect to.
Set one of:
  GPTSTORE_DISCORD_TOKEN                                   (Discord)
  GPTSTORE_SLACK_BOT_TOKEN + GPTSTORE_SLACK_SIGNING_SECRET (Slack, one workspace, HTTP mode)
  GPTSTORE_SLACK_APP_TOKEN as well                         (Slack Socket Mode)
  GPTSTORE_SLACK_CLIENT_ID + GPTSTORE_SLACK_CLIENT_SECRET + GPTSTORE_SLACK_SIGNING_SECRET (Slack, many workspaces)
To try the store without any token: gptstore console"""

Starter = Callable[..., Awaitable[Callable[[], Awaitable[None]]]]


def configured_adapters(settings: Settings) -> list[str]:
    names = []
    if settings.discord_token:
        names.append("discord")
    if settings.slack_signing_secret and (settings.slack_bot_token or settings.slack_client_id):
        names.append("slack")
    return names


async def run_adapters(settings: Settings, *, scheduler: bool, out: Console) -> int:
    names = configured_adapters(settings)
    if not names:
        out.print(NOTHING_CONFIGURED, markup=False)
        return 1
    from bot.bootstrap import bootstrap

    app = await bootstrap(settings)
    if notice := app.services.extras.get("llm_notice"):  # the demo model, or no model at all
        out.print(app.services.tr(settings.default_locale, notice), style="yellow", markup=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for name in names:
            module = __import__(f"bot.adapters.{name}", fromlist=["start"])
            closer = await module.start(app)
            app.closers.append(closer)
            out.print(f"{name} adapter started")
        if scheduler:
            from billing.scheduler import start_scheduler

            app.closers.append(await start_scheduler(app))
        sweeper = asyncio.create_task(sweep_interrupted(app))
        settle_after_startup()
        out.print("gptstore is running. Ctrl-C to stop.")
        await stop.wait()
        out.print("Stopping: finishing the answers in flight…")
        sweeper.cancel()
        await app.core.shutdown(SHUTDOWN_GRACE)
    finally:
        await app.aclose()
    return 0


SHUTDOWN_GRACE = 10.0


async def sweep_interrupted(app: App, every: float = 60.0) -> None:
    """Mark uses orphaned by a replica that died as failed, so they never stay pending, and
    forget delivery ids older than any platform retry."""
    from billing.tracking import fail_interrupted
    from bot.bootstrap import answer_deadline
    from store.events import prune_seen

    while True:
        await asyncio.sleep(every)
        try:
            async with app.db.session() as session:
                count = await fail_interrupted(session, older_than=answer_deadline(app.settings))
                await prune_seen(session)
            if count:
                log.warning("marked %d orphaned invocations as failed", count)
        except Exception:
            log.exception("sweeping interrupted invocations failed; will retry")
