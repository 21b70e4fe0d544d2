"""The Slack adapter: slack-bolt's AsyncApp in front of the core.

A thin translator. Slack payloads become core events (`/gpt …` and `/gpt-admin …` parsed with the
catalogue, mentions and DM or thread messages, buttons and modals, the App Home tab, the assistant
pane) and the core's replies go out through a `SlackOutbox`. Every listener acknowledges first and
does the work in a background task, so Slack always has its answer inside 3 seconds; an Events API
retry carries the same `event_id`, which the core's deduplication turns into a no-op.

Single workspace: a bot token and the signing secret. Many workspaces: Bolt's OAuth flow, with the
installations in our database (`slack_store`). HTTP mode serves `/slack/events`, `/slack/install`
and `/slack/oauth_redirect`; with an app-level token, Socket Mode is used instead (development).

Creators' statements reach their DMs (bot.commands.earnings decides who gets which): the adapter
registers the after-close hook when it is built and delivers what is pending at once. A statement
names a Slack user id but not a workspace, so with many workspaces `send_dm` asks each installed
workspace's bot, those it saw the user in first, for `users.info` and writes from the one the user
belongs to (their home team, or the org of an org-wide install); a user no installation knows stays
pending. That costs one call per workspace at most, once per creator per process (then cached).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp, AsyncAssistant
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack_events import PLATFORM, SlackEvents, plain
from bot.adapters.slack_outbox import SlackOutbox, Surface, Where
from bot.adapters.slack_store import DatabaseInstallationStore, DatabaseOAuthStateStore
from bot.bootstrap import App
from bot.events import Actor
from bot.i18n import normalize_locale
from bot.replies import DeliveryRefused, Reply, Target
from config import Settings

__all__ = ["BOT_SCOPES", "EVENTS_PATH", "PLATFORM", "SlackAdapter", "build_app", "plain", "start"]
log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
BOT_SCOPES = (
    "app_mentions:read", "assistant:write", "channels:history", "chat:write", "commands", "files:read",
    "groups:history", "im:history", "im:read", "im:write", "users:read",
)
USER_TTL = 300.0  # seconds a users.info answer (name, locale, admin) is trusted
CACHE_SIZE = 10_000


class SlackAdapter(SlackEvents):
    def __init__(self, app: App, *, client: AsyncWebClient | None = None, settings: Settings | None = None,
                 edit_interval: float = 1.0) -> None:
        self.app = app
        self.settings = settings or app.settings
        self.edit_interval = edit_interval
        self._tasks: set[asyncio.Task[None]] = set()
        self._users: OrderedDict[tuple[str, str], tuple[float, Actor]] = OrderedDict()
        self._dms: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._no_stream: set[str] = set()
        self._homes: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()  # user -> (enterprise, team)
        self._store: DatabaseInstallationStore | None = None
        self._authorize: AsyncInstallationStoreAuthorize | None = None
        client = client or AsyncWebClient()
        self._session = _share_connections(client)
        self.bolt = self._build(client)
        self._register()
        from bot.commands.earnings import catch_up_statements, statement_dms  # loaded by the core by now

        self._statements = statement_dms(app.services, PLATFORM, self.send_dm)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # built outside a loop: the first close delivers what is pending
            pass
        else:
            self.spawn(catch_up_statements(self._statements, PLATFORM))

    # --- wiring -----------------------------------------------------------------------------
    def _build(self, client: AsyncWebClient) -> AsyncApp:
        """`process_before_response`: every listener here only acknowledges and spawns the work (see
        `_register`), so Bolt may run it inline and answer Slack when it returns, instead of running it
        as a task and polling every 10 ms for the acknowledgement: under a burst each of those loop
        turns waits behind the core's work, and the acknowledgement came hundreds of ms late."""
        s = self.settings
        secret = s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else ""
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
        if s.slack_client_id and s.slack_client_secret:
            client_secret = s.slack_client_secret.get_secret_value()
            store = DatabaseInstallationStore(self.app.db, client_id=s.slack_client_id, sealer=self.app.services.sealer)
            oauth = AsyncOAuthSettings(
                client_id=s.slack_client_id, client_secret=client_secret, scopes=list(BOT_SCOPES),
                installation_store=store, state_store=DatabaseOAuthStateStore(self.app.db),
            )
            authorize = AsyncInstallationStoreAuthorize(
                installation_store=store, client_id=s.slack_client_id, client_secret=client_secret,
                cache_enabled=True, client=client, logger=log,
            )
            self._store, self._authorize = store, authorize
            # an AsyncAuthorize instance is accepted as is (Bolt checks isinstance); its cache spares an
            # auth.test call to Slack on every request
            bolt = AsyncApp(name="gptstore", signing_secret=secret, client=client, oauth_settings=oauth,
                            installation_store=store, authorize=authorize,  # type: ignore[arg-type]
                            process_before_response=True)
            bolt.enable_token_revocation_listeners()
            return bolt
        if not client.token and s.slack_bot_token:
            client.token = s.slack_bot_token.get_secret_value()
        return AsyncApp(name="gptstore", signing_secret=secret, client=client, process_before_response=True)

    def _register(self) -> None:
        bolt = self.bolt

        async def command(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            self.spawn(self._command(body, client))

        async def mention(body: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
            self.spawn(self._message(body, client, context.bot_user_id, mentioned=True))

        async def message(body: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
            self.spawn(self._message(body, client, context.bot_user_id, mentioned=False))

        async def home(body: dict[str, Any], client: AsyncWebClient) -> None:
            if body["event"].get("tab", "home") == "home":
                self.spawn(self._home(body, client))

        async def action(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            self.spawn(self._action(body, client))

        async def submission(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            self.spawn(self._submission(body, client))

        async def options(ack: Any, body: dict[str, Any]) -> None:
            await ack(options=await self._options(body))

        bolt.command("/gpt")(command)
        bolt.command("/gpt-admin")(command)
        bolt.event("app_mention")(mention)
        bolt.event("message")(message)
        bolt.event("app_home_opened")(home)
        bolt.action(re.compile(".+"))(action)
        bolt.view(re.compile(".+"))(submission)
        bolt.options(re.compile(".+"))(options)

        assistant = AsyncAssistant(logger=log)

        async def thread_started(body: dict[str, Any], client: AsyncWebClient) -> None:
            self.spawn(self._assistant_started(body, client))

        async def user_message(body: dict[str, Any], client: AsyncWebClient, request: Any, context: Any) -> None:
            retry = bool(request.headers.get("x-slack-retry-num"))
            self.spawn(self._message(body, client, context.bot_user_id, mentioned=False, status=not retry))

        async def context_changed() -> None:
            """The channel the user looks at does not change which GPT answers: nothing to save."""

        assistant.thread_started(thread_started)
        assistant.user_message(user_message)
        assistant.thread_context_changed(context_changed)
        bolt.use(assistant)

    # --- background work --------------------------------------------------------------------
    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(self._guard(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception:  # the core answers its own errors; this is Slack failing us before or after it
            log.exception("slack event handling failed")

    async def idle(self) -> None:
        """Wait until every acknowledged request has been fully handled (tests, shutdown)."""
        for _ in range(3):
            await asyncio.sleep(0)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self, grace: float = 10.0) -> None:
        self._statements.unregister()
        pending = list(self._tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # --- what Slack tells us about people and places -----------------------------------------
    def can_stream(self, team_id: str) -> bool:
        return team_id not in self._no_stream

    def no_streaming(self, team_id: str) -> None:
        self._no_stream.add(team_id)

    async def dm_channel(self, client: AsyncWebClient, team_id: str, user_id: str) -> str:
        key = (team_id, user_id)
        if key not in self._dms:
            response = await client.conversations_open(users=user_id)
            self._dms[key] = str(response["channel"]["id"])
            while len(self._dms) > CACHE_SIZE:
                self._dms.popitem(last=False)
        return self._dms[key]

    async def actor(self, client: AsyncWebClient, team_id: str, user_id: str, fallback: str = "") -> Actor:
        """Name, locale and admin flag from users.info (workspace admins and owners are admins)."""
        key = (team_id, user_id)
        cached = self._users.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        configured = user_id in self.settings.slack_admin_users
        try:
            user = (await client.users_info(user=user_id, include_locale=True))["user"]
        except SlackApiError as exc:
            log.warning("users.info failed for %s: %s", user_id, exc.response.get("error"))
            return Actor(PLATFORM, user_id, fallback or user_id, is_admin=configured)
        profile = user.get("profile") or {}
        actor = Actor(
            PLATFORM, user_id,
            profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name") or user_id,
            is_admin=configured or bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")),
            locale=user.get("locale") or "en",
        )
        self._users[key] = (time.monotonic() + USER_TTL, actor)
        while len(self._users) > CACHE_SIZE:
            self._users.popitem(last=False)
        return actor

    def tr(self, actor: Actor) -> Callable[..., str]:
        locale = normalize_locale(actor.locale, self.settings.default_locale)
        return lambda msgid, **params: self.app.services.tr(locale, msgid, **params)

    # --- statements in DMs --------------------------------------------------------------------
    async def send_dm(self, user_id: str, reply: Reply) -> None:
        """One DM to a user known only by id (a statement), through the outbox every DM goes through."""
        if self._authorize is None:
            client, team = self.bolt.client, ""
        else:
            found = await self._workspace_of(user_id)
            if found is None:
                raise DeliveryRefused("no installed workspace knows this user")
            client, team = found
        tr = self.tr(Actor(PLATFORM, user_id, user_id))
        await SlackOutbox(self, client, Surface.MESSAGE, Where(team, user_id, ""), tr).send(replace(reply, target=Target.DM))

    async def _workspace_of(self, user_id: str) -> tuple[AsyncWebClient, str] | None:
        """The bot client of the workspace `user_id` belongs to (see the module docstring)."""
        assert self._store is not None
        installed = await self._store.teams()
        seen = {team for team, user in (*self._users, *self._dms) if user == user_id}
        known = self._homes.get(user_id)
        installed.sort(key=lambda key: (key != known, key[1] not in seen))  # stable: newest install next
        for enterprise_id, team_id in installed:
            client = await self._bot_client(enterprise_id, team_id)
            if client is None:
                continue
            try:
                user = (await client.users_info(user=user_id))["user"]
            except SlackApiError:
                continue  # not a member there
            org = user.get("enterprise_user") or {}
            if user.get("team_id") == team_id or team_id in (org.get("teams") or ()) or (
                team_id is None and org.get("enterprise_id") == enterprise_id
            ):
                self._homes[user_id] = (enterprise_id, team_id)
                while len(self._homes) > CACHE_SIZE:
                    self._homes.popitem(last=False)
                return client, team_id or str(user.get("team_id") or "")
        return None

    async def _bot_client(self, enterprise_id: str | None, team_id: str | None) -> AsyncWebClient | None:
        """A client with that installation's bot token, as Bolt authorises a request (token rotation included)."""
        assert self._authorize is not None
        base = self.bolt.client
        context = AsyncBoltContext({"client": base, "is_enterprise_install": team_id is None, "logger": log})
        result = await self._authorize(context=context, enterprise_id=enterprise_id, team_id=team_id, user_id=None)
        if result is None or not result.bot_token:
            return None
        return AsyncWebClient(
            token=result.bot_token, base_url=base.base_url, timeout=base.timeout, ssl=base.ssl, proxy=base.proxy,
            session=base.session, headers=base.headers, team_id=team_id, logger=base.logger,
            retry_handlers=list(base.retry_handlers),
        )


def _share_connections(client: AsyncWebClient) -> aiohttp.ClientSession | None:
    """One HTTP session for every Web API call, which Bolt passes on to each request's client.

    Without one, slack_sdk opens a session, and a new connection to Slack, for every call and closes
    it afterwards: about 20 ms of a lone /gpt ask's answer, and more under a burst (bench/platform.py).
    Made only inside a running loop (where the adapter runs); `aclose` closes it."""
    if client.session is not None:
        return None
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    # no cap on connections, as before (a call never waits for another's connection); idle ones are kept
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=client.timeout),
                                    connector=aiohttp.TCPConnector(limit=0))
    client.session = session
    return session


def build_app(app: App, *, client: AsyncWebClient | None = None) -> AsyncApp:
    """The real Bolt AsyncApp wired to the core (tests point `client` at a fake Web API)."""
    return SlackAdapter(app, client=client).bolt


async def start(app: App, *, client: AsyncWebClient | None = None,
                settings: Settings | None = None) -> Callable[[], Awaitable[None]]:
    """Serve Slack (HTTP mode, or Socket Mode when an app-level token is set); returns the closer.
    `client` and `settings`: the Web API and the settings to use instead of Slack's and the app's."""
    settings = settings or app.settings
    adapter = SlackAdapter(app, client=client, settings=settings)
    if settings.slack_app_token:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(adapter.bolt, settings.slack_app_token.get_secret_value())
        await handler.connect_async()
        log.info("slack: connected in Socket Mode")

        async def close_socket() -> None:
            await handler.close_async()
            await adapter.aclose()

        return close_socket

    from slack_bolt.app.async_server import AsyncSlackAppServer

    server = AsyncSlackAppServer(port=settings.slack_port, path=EVENTS_PATH, app=adapter.bolt, host=settings.slack_host)
    server.web_app.router.add_get("/healthz", _healthz)
    runner = web.AppRunner(server.web_app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    await web.TCPSite(runner, settings.slack_host, settings.slack_port, backlog=2048).start()
    log.info("slack: listening on http://%s:%s%s", settings.slack_host, settings.slack_port, EVENTS_PATH)

    async def close_http() -> None:
        await runner.cleanup()
        await adapter.aclose()

    return close_http


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")
