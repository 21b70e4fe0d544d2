"""A fake Discord (REST API v10 + gateway) on 127.0.0.1, for driving a real discord.py bot end to end.

Why a real server rather than mocking discord.py: the adapter's behaviour depends on what discord.py
really does with real payloads on real sockets (how it parses READY/GUILD_CREATE, resolves slash
command options, routes component presses to views, retries, raises Forbidden...). Mocks would test
our assumptions about discord.py, not discord.py.

One aiohttp server serves both:

* REST under ``/api/v10/...``: users, gateway discovery, application and command registration,
  interaction callbacks and webhook follow-ups, DMs, messages, threads, typing, members. Every request
  is recorded in ``fake.calls`` (method, path with ids, parsed JSON or multipart ``payload_json``,
  status, ``time.perf_counter()`` timestamps, and the response body). Unknown routes answer 404 in
  Discord's error shape and are recorded too.
* Discord's CDN under ``/attachments/{channel_id}/{attachment_id}/{filename}``: the bytes of every file
  a user uploaded (``message(files=...)``) or the bot sent, behind signed, expiring URLs
  (``?ex=…&is=…&hm=…``) like Discord's; an unsigned, tampered or expired URL gets Discord's 404 text.
  Downloads are recorded in ``fake.cdn_downloads``.
* The gateway websocket at ``/`` (HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats, RESUME,
  REQUEST_GUILD_MEMBERS, sharding). ``compress=zlib-stream`` is honoured as Discord does (one zlib
  stream per connection, each message ending in a Z_SYNC_FLUSH); other requests get plain JSON text
  frames, which discord.py accepts.

Point discord.py at it (the only two things changed in discord.py: where it connects)::

    async with FakeDiscord() as fake:
        fake.add_guild(1001 << 22, "Test", owner_id=42, channels=[{"id": 555, "name": "general"}])
        with fake.patch_discord():     # sets discord.http.Route.BASE and DiscordWebSocket.DEFAULT_GATEWAY
            client = MyBot(intents=discord.Intents.default(), guild_ready_timeout=0.05)
            task = asyncio.create_task(client.start("any-token"))
            await fake.wait_ready()
            h = await fake.interact(fake.slash_command(guild_id=..., channel_id=555, user_id=42, name="ping"))
            assert (await h.response())["type"] == 5
            ...
            await client.close(); await task

What Discord does and the fake does too (so adapter bugs show up here rather than in production):
the 3 s deadline to acknowledge an interaction (10062), acknowledging twice (40060), a follow-up
after a deferred reply edits the "thinking" message, 2000-character / empty-message / embed /
component / autocomplete-choice limits (50035, 50006), closed DMs (50007), intent-gated events
(MESSAGE_CREATE needs GUILD_MESSAGES / DIRECT_MESSAGES; guild message content is blanked without
MESSAGE_CONTENT unless the bot is mentioned), the bot's own messages echoed back on the gateway, and,
optionally, per-route rate limits with Discord's headers and 429 bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import hashlib
import hmac
import itertools
import json
import mimetypes
import re
import secrets
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, WSMsgType, web

__all__ = ["FakeDiscord", "Interaction", "InteractionHandle", "RestCall", "DISCORD_EPOCH"]

DISCORD_EPOCH = 1420070400000
API_PREFIX = "/api/v10"

# Intents (https://discord.com/developers/docs/events/gateway#gateway-intents)
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15

# Permissions
_P = {
    "create_instant_invite": 1 << 0,
    "administrator": 1 << 3,
    "manage_guild": 1 << 5,
    "add_reactions": 1 << 6,
    "view_channel": 1 << 10,
    "send_messages": 1 << 11,
    "manage_messages": 1 << 13,
    "embed_links": 1 << 14,
    "attach_files": 1 << 15,
    "read_message_history": 1 << 16,
    "use_external_emojis": 1 << 18,
    "connect": 1 << 20,
    "speak": 1 << 21,
    "change_nickname": 1 << 26,
    "use_application_commands": 1 << 31,
    "manage_threads": 1 << 34,
    "create_public_threads": 1 << 35,
    "send_messages_in_threads": 1 << 38,
}
ALL_PERMISSIONS = (1 << 53) - 1
EVERYONE_PERMISSIONS = sum(
    _P[k]
    for k in (
        "create_instant_invite",
        "add_reactions",
        "view_channel",
        "send_messages",
        "embed_links",
        "attach_files",
        "read_message_history",
        "use_external_emojis",
        "connect",
        "speak",
        "change_nickname",
        "use_application_commands",
        "create_public_threads",
        "send_messages_in_threads",
    )
)
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | _P["manage_messages"] | _P["manage_threads"]
DM_PERMISSIONS = sum(
    _P[k]
    for k in (
        "add_reactions",
        "view_channel",
        "send_messages",
        "embed_links",
        "attach_files",
        "read_message_history",
        "use_external_emojis",
        "use_application_commands",
    )
)

# Message flags
EPHEMERAL = 1 << 6
LOADING = 1 << 7

# Channel types
GUILD_TEXT, DM, GUILD_VOICE, GUILD_CATEGORY, GUILD_NEWS = 0, 1, 2, 4, 5
NEWS_THREAD, PUBLIC_THREAD, PRIVATE_THREAD, GUILD_FORUM = 10, 11, 12, 15
THREAD_TYPES = (NEWS_THREAD, PUBLIC_THREAD, PRIVATE_THREAD)

_MENTION_RE = re.compile(r"<@!?(\d+)>")
_COMMAND_NAME_RE = re.compile(r"^[-_'\w]{1,32}$")
_MISSING: Any = object()


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat()


def _snowflake_time(snowflake: int) -> float:
    return ((snowflake >> 22) + DISCORD_EPOCH) / 1000


# --------------------------------------------------------------------------------------------------
# records


@dataclass(slots=True)
class RestCall:
    """One REST request the bot made. ``path`` is relative to ``/api/v10`` and carries the real ids."""

    method: str
    path: str
    json: Any
    query: dict[str, str]
    timestamp: float  # time.perf_counter() when the request arrived
    route: str | None = None  # the matched template, e.g. "/channels/{channel_id}/messages"
    status: int = 0  # filled in when answered
    responded_at: float | None = None  # time.perf_counter() when answered
    response: Any = None  # the JSON body sent back (None for 204)
    files: list[dict[str, Any]] = field(
        default_factory=list
    )  # multipart files: name, filename, content_type, data

    @property
    def duration(self) -> float | None:
        return None if self.responded_at is None else self.responded_at - self.timestamp

    def __repr__(self) -> str:
        return f"<RestCall {self.method} {self.path} -> {self.status}>"


class _Waiters:
    """Futures waiting for a predicate over some mutable state to become truthy."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    def notify(self) -> None:
        if not self._items:
            return
        keep = []
        for predicate, fut in self._items:
            if fut.done():
                continue
            try:
                result = predicate()
            except Exception as exc:  # the predicate's own bug: surface it to the waiter
                fut.set_exception(exc)
                continue
            if result:
                fut.set_result(result)
            else:
                keep.append((predicate, fut))
        self._items = keep

    async def wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:  # noqa: ASYNC109
        result = predicate()
        if result:
            return result
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._items.append((predicate, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}") from None


class InteractionHandle:
    """What the fake knows about one dispatched interaction: the bot's callback and the messages it made."""

    def __init__(self, fake: FakeDiscord, payload: dict[str, Any]) -> None:
        self._fake = fake
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.channel_id = int(payload["channel_id"])
        self.guild_id: int | None = int(payload["guild_id"]) if payload.get("guild_id") else None
        self.dispatched_at: float | None = None  # perf_counter() when sent on the gateway
        self.callback: dict[str, Any] | None = None  # the body POSTed to /interactions/{id}/{token}/callback
        self.callback_at: float | None = None
        self.original_id: int | None = None
        self.followup_ids: list[int] = []
        self.deleted_ids: set[int] = set()
        self._callback_fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters = _Waiters()
        message = payload.get("message")
        self.component_message_id: int | None = int(message["id"]) if message else None

    def __repr__(self) -> str:
        cb = None if self.callback is None else self.callback.get("type")
        return f"<InteractionHandle id={self.id} type={self.type} callback={cb} followups={len(self.followup_ids)}>"

    async def response(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The interaction callback body (``{"type": 5, "data": {...}}``) once the bot has POSTed it."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._callback_fut), timeout)
        except TimeoutError:
            raise TimeoutError(f"interaction {self.id} got no callback within {timeout}s") from None

    @property
    def latency(self) -> float | None:
        """Seconds from the gateway dispatch to the accepted callback."""
        if self.dispatched_at is None or self.callback_at is None:
            return None
        return self.callback_at - self.dispatched_at

    @property
    def original(self) -> dict[str, Any] | None:
        """The latest version of the @original message (None before a message response or after delete)."""
        if self.original_id is None or self.original_id in self.deleted_ids:
            return None
        return self._fake._get_message(self.original_id)

    @property
    def followups(self) -> list[dict[str, Any]]:
        """Latest versions of the messages POSTed to the follow-up webhook, in order.

        After a deferred reply (callback type 5) Discord turns the first follow-up into an edit of the
        "thinking" message, so that entry is the original message."""
        out = []
        for mid in self.followup_ids:
            msg = self._fake._get_message(mid)
            if msg is not None:
                out.append(msg)
        return out

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every live message this interaction produced (original first), without duplicates."""
        ids = ([self.original_id] if self.original_id is not None else []) + self.followup_ids
        seen: set[int] = set()
        out = []
        for mid in ids:
            if mid in seen:
                continue
            seen.add(mid)
            msg = self._fake._get_message(mid)
            if msg is not None:
                out.append(msg)
        return out

    @property
    def calls(self) -> list[RestCall]:
        """REST calls made with this interaction's id or token."""
        tok, iid = self.token, str(self.id)
        return [c for c in self._fake.calls if tok in c.path or f"/interactions/{iid}/" in c.path]

    async def wait_original(
        self,
        predicate: Callable[[dict[str, Any]], Any] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Wait until @original exists, is no longer "thinking", and satisfies ``predicate``."""

        def check() -> Any:
            msg = self.original
            if msg is None or msg["flags"] & LOADING:
                return None
            if predicate is not None and not predicate(msg):
                return None
            return msg

        return await self._waiters.wait(check, timeout, f"the original response of interaction {self.id}")

    async def wait_followups(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
        """Wait until at least ``count`` follow-ups were posted; returns them all."""

        def check() -> Any:
            return self.followups if len(self.followup_ids) >= count else None

        return await self._waiters.wait(check, timeout, f"{count} follow-up(s) of interaction {self.id}")

    async def wait(self, predicate: Callable[[InteractionHandle], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Wait until ``predicate(handle)`` is truthy (re-checked whenever this interaction changes)."""
        return await self._waiters.wait(
            lambda: predicate(self), timeout, f"a condition on interaction {self.id}"
        )


Interaction = InteractionHandle  # the name used in the design brief


class _HTTPError(Exception):
    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors
        self.headers = headers or {}
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        if self.retry_after is not None:  # 429 body
            return {
                "message": self.message,
                "retry_after": self.retry_after,
                "global": False,
                "code": self.code,
            }
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def _form_error(path: Iterable[str | int], code: str, message: str) -> _HTTPError:
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(list(path)):
        errors = {str(key): errors}
    return _HTTPError(400, 50035, "Invalid Form Body", errors)


def _unknown(what: str, code: int) -> _HTTPError:
    return _HTTPError(404, code, f"Unknown {what}")


@dataclass(slots=True)
class _Req:
    request: web.Request
    params: dict[str, str]
    body: Any
    files: list[dict[str, Any]]
    query: dict[str, str]


class _Session:
    """One gateway connection."""

    __slots__ = (
        "ws",
        "compressor",
        "lock",
        "seq",
        "session_id",
        "shard_id",
        "shard_count",
        "intents",
        "identified",
        "ready",
        "sharded",
    )

    def __init__(self, ws: web.WebSocketResponse, compress: bool) -> None:
        self.ws = ws
        self.compressor = zlib.compressobj() if compress else None
        self.lock = asyncio.Lock()
        self.seq = 0
        self.session_id: str | None = None
        self.shard_id = 0
        self.shard_count = 1
        self.sharded = False
        self.intents = 0
        self.identified = False
        self.ready = False

    async def _send_text(self, text: str) -> None:
        if self.ws.closed:
            return
        if self.compressor is not None:
            data = self.compressor.compress(text.encode()) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(text)

    async def send_op(self, op: int, d: Any) -> None:
        async with self.lock:
            await self._send_text(_dumps({"op": op, "d": d, "s": None, "t": None}))

    async def dispatch(self, event: str, data: Any) -> None:
        async with self.lock:
            self.seq += 1
            await self._send_text(_dumps({"op": 0, "t": event, "s": self.seq, "d": data}))

    def owns_guild(self, guild_id: int) -> bool:
        return (guild_id >> 22) % self.shard_count == self.shard_id


# --------------------------------------------------------------------------------------------------
# the fake


class FakeDiscord:
    """Fake Discord REST + gateway server. Use as ``async with FakeDiscord() as fake:``."""

    def __init__(
        self,
        *,
        application_id: int | None = None,
        bot_name: str = "GPT Store",
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval: int = 41250,
        recommended_shards: int = 1,
        interaction_deadline: float | None = 3.0,
        echo_bot_messages: bool = True,
        rate_limit: tuple[int, float] | None = None,
        bot_permissions: int = BOT_PERMISSIONS,
    ) -> None:
        """
        token: if set, REST requests and IDENTIFY must carry it (401 / close 4004 otherwise).
        interaction_deadline: seconds the bot has to acknowledge an interaction (Discord: 3); None = no limit.
        echo_bot_messages: dispatch MESSAGE_CREATE/UPDATE for the bot's own (non-ephemeral) messages, as Discord does.
        rate_limit: (requests, per_seconds) per bucket on message/webhook/thread/typing routes, with
            Discord's X-RateLimit-* headers and 429 bodies; None = unlimited.
        """
        self._ids = itertools.count(1)
        self.application_id: int = application_id or self._next_snowflake()
        self.token = token
        self.host, self._port = host, port
        self.heartbeat_interval = heartbeat_interval
        self.recommended_shards = recommended_shards
        self.interaction_deadline = interaction_deadline
        self.echo_bot_messages = echo_bot_messages
        self.rate_limit = rate_limit
        self.bot_permissions = bot_permissions

        self.bot_user: dict[str, Any] = {
            "id": str(self.application_id),
            "username": bot_name,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "system": False,
            "mfa_enabled": False,
            "verified": True,
            "email": None,
            "flags": 0,
            "public_flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "locale": "en-US",
        }
        self.calls: list[RestCall] = []
        self.close_dms_for: set[int] = set()
        # while set to an unset Event, interaction callbacks are taken but answered only once it is
        # set (a Discord slow to answer); `callbacks_held` counts those taken so far
        self.hold_callbacks: asyncio.Event | None = None
        self.callbacks_held = 0
        self.errors: list[Exception] = []  # exceptions raised inside the fake's handlers (answered 500)
        self.sent_events: list[tuple[float, str, int]] = []  # (perf_counter, event, shard_id) per dispatch

        self._users: dict[int, dict[str, Any]] = {self.application_id: self.bot_user}
        self._locales: dict[int, str] = {}
        self._guilds: dict[int, dict[str, Any]] = {}  # guild objects without channels/members
        self._guild_roles: dict[int, dict[int, dict[str, Any]]] = {}
        self._guild_channels: dict[int, list[int]] = {}
        self._members: dict[int, dict[int, dict[str, Any]]] = {}  # guild -> user -> member (no "user")
        self._channels: dict[int, dict[str, Any]] = {}
        self._dm_by_user: dict[int, int] = {}
        self._messages: dict[int, dict[int, dict[str, Any]]] = {}  # channel -> id -> message (ordered)
        self._message_channel: dict[int, int] = {}
        self._global_commands: dict[tuple[str, int], dict[str, Any]] = {}
        self._guild_commands: dict[int, dict[tuple[str, int], dict[str, Any]]] = {}
        self._command_ids: dict[tuple[int | None, str, int], int] = {}
        self._modals: dict[str, dict[str, Any]] = {}  # modal custom_id -> the modal the bot opened
        self._handles_by_id: dict[int, InteractionHandle] = {}
        self._handles_by_token: dict[str, InteractionHandle] = {}
        self._sessions: set[_Session] = set()
        self._session_store: dict[str, _Session] = {}
        self._buckets: dict[tuple[str, str, str], list[float]] = {}
        self._cdn: dict[str, tuple[bytes, str]] = {}  # CDN path -> (bytes, content type)
        self._cdn_key = secrets.token_bytes(16)
        self.cdn_ttl = 86400  # seconds a signed attachment URL stays valid (Discord: 24 h)
        self.cdn_downloads: list[str] = []  # CDN paths fetched, in order (answered or not)
        self._waiters = _Waiters()
        self._routes = self._build_routes()
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        # a deep accept queue: a burst of hundreds of simultaneous connects (benchmarks) must not overflow
        # the default backlog of 128, or the extra SYNs are retransmitted a second later
        site = web.TCPSite(self._runner, self.host, self._port, backlog=4096)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        for sess in list(self._sessions):
            with contextlib.suppress(Exception):
                await sess.ws.close(code=1001, message=b"fake discord shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def rest_base(self) -> str:
        return f"{self.url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self._port}"

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py at this fake (REST base and default gateway URL), restoring both on exit.

        ``discord.Client`` and ``AutoShardedClient(shard_count=N)`` connect to
        ``DiscordWebSocket.DEFAULT_GATEWAY`` directly; only ``AutoShardedClient()`` without a shard
        count asks ``GET /gateway/bot``, so both must be set."""
        import discord.gateway
        import discord.http
        import yarl

        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.rest_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    # ---- ids, users, guilds, channels -------------------------------------------------------------

    def _next_snowflake(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH
        return (ms << 22) | (1 << 17) | (next(self._ids) & 0x1FFFF)

    def add_user(
        self, user_id: int, name: str, *, locale: str = "en-US", bot: bool = False
    ) -> dict[str, Any]:
        user = {
            "id": str(user_id),
            "username": name.lower().replace(" ", "_")[:32],
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "bot": bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
        }
        self._users[user_id] = user
        self._locales[user_id] = locale
        return user

    def upload(
        self, channel_id: int, filename: str, data: bytes, content_type: str | None = None
    ) -> dict[str, Any]:
        """Put a file on the CDN; its attachment object, as Discord puts it in a message. Discord
        replaces spaces in the name with underscores and guesses the type from the name."""
        aid = self._next_snowflake()
        name = re.sub(r"[^\w.\-]", "_", filename) or "unknown"
        if content_type is None:
            guessed = mimetypes.guess_type(name)[0]
            if guessed is None and name.lower().endswith(".md"):
                guessed = "text/markdown"
            if guessed is not None and guessed.startswith("text/"):
                guessed += "; charset=utf-8"
            content_type = guessed
        path = f"/attachments/{channel_id}/{aid}/{quote(name)}"
        self._cdn[path] = (bytes(data), content_type or "application/octet-stream")
        att: dict[str, Any] = {
            "id": str(aid),
            "filename": name,
            "size": len(data),
            "url": self._signed(path),
            "proxy_url": self._signed(path),
        }
        if content_type:
            att["content_type"] = content_type
        return att

    def _signature(self, path: str, expires: str, issued: str) -> str:
        return hmac.new(self._cdn_key, f"{path}{expires}{issued}".encode(), hashlib.sha256).hexdigest()

    def _signed(self, path: str) -> str:
        issued = int(time.time())
        ex, is_ = f"{issued + self.cdn_ttl:x}", f"{issued:x}"
        return f"{self.url}{path}?ex={ex}&is={is_}&hm={self._signature(path, ex, is_)}&"

    def _serve_cdn(self, request: web.Request) -> web.Response:
        """Discord's CDN: the file for a valid signature, else the 404 text Discord answers."""
        path = request.raw_path.split("?", 1)[0]
        self.cdn_downloads.append(path)
        self._waiters.notify()
        q = request.query
        ex, is_, hm = q.get("ex", ""), q.get("is", ""), q.get("hm", "")
        try:
            live = int(ex, 16) > time.time()
        except ValueError:
            live = False
        if path not in self._cdn or not live or not hmac.compare_digest(hm, self._signature(path, ex, is_)):
            return web.Response(status=404, text="This content is no longer available.")
        data, content_type = self._cdn[path]
        headers = {"Content-Type": content_type, "Cache-Control": "public, max-age=2592000"}
        return web.Response(status=200, body=data if request.method == "GET" else b"", headers=headers)

    def user(self, user_id: int) -> dict[str, Any]:
        """The user object, creating a plain one ("user<ID>") if unknown."""
        user = self._users.get(user_id)
        if user is None:
            user = self.add_user(user_id, f"user{user_id}")
        return user

    def add_guild(
        self,
        guild_id: int,
        name: str,
        *,
        owner_id: int,
        channels: list[dict[str, Any]] | None = None,
        members: list[dict[str, Any]] | None = None,
        roles: list[dict[str, Any]] | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """Add a guild the bot is in. Returns the full GUILD_CREATE payload.

        channels: dicts with at least ``id`` and ``name`` (``type`` defaults to 0 = text; threads,
            types 10-12, need ``parent_id``). None: one text channel "general".
        members: dicts with ``id`` (or ``user``) and optionally ``name``, ``roles`` (ids), ``nick``.
            The owner and the bot are always members.
        roles: extra roles, dicts with ``id``, ``name``, optional ``permissions`` (int or str).
        If the gateway is already connected, GUILD_CREATE is sent to the owning shard (a guild join).
        """
        self._guilds[guild_id] = {
            "id": str(guild_id),
            "name": name,
            "icon": None,
            "icon_hash": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "emojis": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "max_presences": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": locale,
            "public_updates_channel_id": None,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw_level": 0,
            "stickers": [],
            "premium_progress_bar_enabled": False,
            "safety_alerts_channel_id": None,
            "incidents_data": None,
        }
        bot_role_id = self._next_snowflake()
        role_list = [
            self._role(guild_id, guild_id, "@everyone", EVERYONE_PERMISSIONS, position=0),
            self._role(
                guild_id, bot_role_id, self.bot_user["username"], self.bot_permissions, position=1, bot=True
            ),
        ]
        for i, r in enumerate(roles or [], start=2):
            role_list.append(
                self._role(
                    guild_id,
                    int(r["id"]),
                    r.get("name", f"role{i}"),
                    int(r.get("permissions", 0)),
                    position=i,
                )
            )
        self._guild_roles[guild_id] = {int(r["id"]): r for r in role_list}
        self._guild_channels[guild_id] = []
        self._members[guild_id] = {}
        if channels is None:
            channels = [{"id": self._next_snowflake(), "name": "general"}]
        for pos, ch in enumerate(channels):
            self._add_guild_channel(guild_id, ch, pos)
        text = [c for c in self._guild_channels[guild_id] if self._channels[c]["type"] == GUILD_TEXT]
        if text:
            self._guilds[guild_id]["system_channel_id"] = str(text[0])
        self._add_member(guild_id, self.application_id, roles=[bot_role_id])
        self.user(owner_id)
        self._add_member(guild_id, owner_id)
        for m in members or []:
            if "user" in m:
                uid = int(m["user"]["id"])
                self._users.setdefault(uid, m["user"])
            else:
                uid = int(m["id"])
                if "name" in m:
                    self.add_user(uid, m["name"], locale=m.get("locale", "en-US"))
                else:
                    self.user(uid)
            self._add_member(guild_id, uid, roles=[int(r) for r in m.get("roles", [])], nick=m.get("nick"))
        payload = self._guild_create_payload(guild_id, intents=GUILD_MEMBERS)
        self._spawn_guild_create(guild_id)
        return payload

    def _role(
        self, guild_id: int, role_id: int, name: str, permissions: int, *, position: int, bot: bool = False
    ) -> dict[str, Any]:
        role: dict[str, Any] = {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": bot,
            "mentionable": False,
            "flags": 0,
        }
        if bot:
            role["tags"] = {"bot_id": str(self.application_id)}
        return role

    def _add_guild_channel(self, guild_id: int, ch: dict[str, Any], position: int) -> dict[str, Any]:
        ctype = int(ch.get("type", GUILD_TEXT))
        cid = int(ch["id"])
        channel: dict[str, Any] = {
            "id": str(cid),
            "type": ctype,
            "guild_id": str(guild_id),
            "name": ch.get("name", f"channel-{cid}"),
            "position": ch.get("position", position),
            "permission_overwrites": ch.get("permission_overwrites", []),
            "parent_id": str(ch["parent_id"]) if ch.get("parent_id") else None,
            "nsfw": ch.get("nsfw", False),
            "flags": 0,
        }
        if ctype in (GUILD_TEXT, GUILD_NEWS, GUILD_FORUM):
            channel.update(
                topic=ch.get("topic"),
                last_message_id=None,
                rate_limit_per_user=0,
                default_auto_archive_duration=1440,
                default_thread_rate_limit_per_user=0,
            )
        if ctype == GUILD_FORUM:
            channel.update(
                available_tags=[],
                default_reaction_emoji=None,
                default_sort_order=None,
                default_forum_layout=0,
            )
        if ctype == GUILD_VOICE:
            channel.update(
                bitrate=64000, user_limit=0, rtc_region=None, last_message_id=None, rate_limit_per_user=0
            )
        if ctype in THREAD_TYPES:
            channel = self._thread_object(
                guild_id,
                int(ch["parent_id"]),
                cid,
                channel["name"],
                ctype,
                owner_id=int(ch.get("owner_id", self.application_id)),
            )
        self._channels[cid] = channel
        self._guild_channels[guild_id].append(cid)
        self._messages.setdefault(cid, {})
        return channel

    def _thread_object(
        self,
        guild_id: int,
        parent_id: int,
        thread_id: int,
        name: str,
        ctype: int,
        *,
        owner_id: int,
        auto_archive_duration: int = 1440,
    ) -> dict[str, Any]:
        now = _now_iso()
        return {
            "id": str(thread_id),
            "guild_id": str(guild_id),
            "parent_id": str(parent_id),
            "owner_id": str(owner_id),
            "type": ctype,
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": auto_archive_duration,
                "archive_timestamp": now,
                "locked": False,
                "invitable": ctype != PRIVATE_THREAD,
                "create_timestamp": now,
            },
            "member_ids_preview": [],
        }

    def _add_member(
        self, guild_id: int, user_id: int, *, roles: list[int] | None = None, nick: str | None = None
    ) -> dict[str, Any]:
        member = {
            "nick": nick,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in roles or []],
            "joined_at": _now_iso(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
            "unusual_dm_activity_until": None,
        }
        self._members[guild_id][user_id] = member
        return member

    def add_member(
        self, guild_id: int, user_id: int, *, roles: Iterable[int] = (), nick: str | None = None
    ) -> dict[str, Any]:
        """Add (or replace) a guild member; returns the member object with its user."""
        self.user(user_id)
        self._add_member(guild_id, user_id, roles=list(roles), nick=nick)
        return self._member_payload(guild_id, user_id)

    def _member_payload(
        self, guild_id: int, user_id: int, *, permissions: str | None = None
    ) -> dict[str, Any]:
        member = self._members[guild_id].get(user_id)
        if member is None:
            member = self._add_member(guild_id, user_id)
        out = {**member, "user": self.user(user_id)}
        if permissions is not None:
            out["permissions"] = permissions
        return out

    def member_permissions(self, guild_id: int, user_id: int) -> int:
        """Guild-level permissions of a member: everything for the owner, else the OR of their roles."""
        guild = self._guilds[guild_id]
        if int(guild["owner_id"]) == user_id:
            return ALL_PERMISSIONS
        roles = self._guild_roles[guild_id]
        perms = int(roles[guild_id]["permissions"])
        member = self._members[guild_id].get(user_id)
        for rid in member["roles"] if member else []:
            role = roles.get(int(rid))
            if role is not None:
                perms |= int(role["permissions"])
        if perms & _P["administrator"]:
            return ALL_PERMISSIONS
        return perms

    def guild(self, guild_id: int) -> dict[str, Any]:
        return self._guild_create_payload(guild_id, intents=GUILD_MEMBERS)

    def channel(self, channel_id: int) -> dict[str, Any] | None:
        return self._channels.get(channel_id)

    def dm_channel(self, user_id: int, *, channel_id: int | None = None) -> dict[str, Any]:
        """The bot's DM channel with ``user_id`` (created on first use, like POST /users/@me/channels)."""
        cid = self._dm_by_user.get(user_id)
        if cid is None:
            cid = channel_id or self._next_snowflake()
            self._dm_by_user[user_id] = cid
            self._channels[cid] = {
                "id": str(cid),
                "type": DM,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self.user(user_id)],
            }
            self._messages.setdefault(cid, {})
        return self._channels[cid]

    def _guild_of_channel(self, channel_id: int) -> int | None:
        ch = self._channels.get(channel_id)
        if ch is None or "guild_id" not in ch:
            return None
        return int(ch["guild_id"])

    def _guild_create_payload(self, guild_id: int, *, intents: int) -> dict[str, Any]:
        members = self._members[guild_id]
        if intents & GUILD_MEMBERS:
            member_ids = list(members)
        else:  # without the privileged intent Discord only sends the bot itself
            member_ids = [self.application_id]
        channels: list[dict[str, Any]] = []
        threads: list[dict[str, Any]] = []
        for cid in self._guild_channels[guild_id]:
            ch = self._channels[cid]
            (threads if ch["type"] in THREAD_TYPES else channels).append(ch)
        return {
            **self._guilds[guild_id],
            "roles": list(self._guild_roles[guild_id].values()),
            "joined_at": members[self.application_id]["joined_at"],
            "large": len(members) >= 250,
            "unavailable": False,
            "member_count": len(members),
            "voice_states": [],
            "members": [self._member_payload(guild_id, uid) for uid in member_ids],
            "channels": channels,
            "threads": threads,
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "lazy": True,
        }

    def _spawn_guild_create(self, guild_id: int) -> None:
        sessions = [s for s in self._sessions if s.ready and s.owns_guild(guild_id)]
        if not sessions:
            return

        async def send() -> None:
            for s in sessions:
                payload = self._guild_create_payload(guild_id, intents=s.intents)
                # Discord leaves `unavailable` out of a join's GUILD_CREATE (false means "available again")
                payload.pop("unavailable", None)
                await s.dispatch("GUILD_CREATE", payload)

        task = asyncio.get_running_loop().create_task(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- messages ------------------------------------------------------------------------------------

    def messages(self, channel_id: int) -> list[str]:
        """The latest content of each live message in a channel, oldest first (what a user reads)."""
        return [m["content"] for m in self._messages.get(channel_id, {}).values()]

    def message_objects(self, channel_id: int) -> list[dict[str, Any]]:
        """The latest full message objects in a channel, oldest first (embeds, components, flags...)."""
        return list(self._messages.get(channel_id, {}).values())

    def get_message(self, message_id: int) -> dict[str, Any] | None:
        return self._get_message(message_id)

    def _get_message(self, message_id: int) -> dict[str, Any] | None:
        cid = self._message_channel.get(message_id)
        if cid is None:
            return None
        return self._messages[cid].get(message_id)

    def _store_message(self, msg: dict[str, Any]) -> None:
        cid, mid = int(msg["channel_id"]), int(msg["id"])
        self._messages.setdefault(cid, {})[mid] = msg
        self._message_channel[mid] = cid
        ch = self._channels.get(cid)
        if ch is not None and not (msg["flags"] & EPHEMERAL):
            ch["last_message_id"] = msg["id"]
            if ch["type"] in THREAD_TYPES:
                ch["message_count"] += 1
                ch["total_message_sent"] += 1
        self._waiters.notify()

    def _mentions(self, content: str, extra: Iterable[int], guild_id: int | None) -> list[dict[str, Any]]:
        ids = list(
            dict.fromkeys([int(x) for x in _MENTION_RE.findall(content or "")] + [int(x) for x in extra])
        )
        out = []
        for uid in ids:
            user = self._users.get(uid)
            if user is None:
                continue
            entry = dict(user)
            if guild_id is not None and uid in self._members.get(guild_id, {}):
                entry["member"] = dict(self._members[guild_id][uid])
            out.append(entry)
        return out

    def _new_message(
        self,
        *,
        channel_id: int,
        author: dict[str, Any],
        content: str = "",
        embeds: list[dict[str, Any]] | None = None,
        components: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        flags: int = 0,
        mtype: int = 0,
        mentions: Iterable[int] = (),
        reference_message_id: int | None = None,
        webhook_id: int | None = None,
        interaction: InteractionHandle | None = None,
        nonce: Any = None,
        tts: bool = False,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        guild_id = self._guild_of_channel(channel_id)
        msg: dict[str, Any] = {
            "id": str(message_id or self._next_snowflake()),
            "channel_id": str(channel_id),
            "author": author,
            "content": content or "",
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": tts,
            "mention_everyone": "@everyone" in (content or ""),
            "mentions": self._mentions(content, mentions, guild_id),
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [_normalize_embed(e) for e in embeds or []],
            "pinned": False,
            "type": mtype,
            "flags": flags,
            "components": components or [],
        }
        if nonce is not None:
            msg["nonce"] = nonce
        if webhook_id is not None:
            msg["webhook_id"] = str(webhook_id)
            msg["application_id"] = str(self.application_id)
        if reference_message_id is not None:
            ref = self._get_message(reference_message_id)
            msg["message_reference"] = {
                "type": 0,
                "message_id": str(reference_message_id),
                "channel_id": str(channel_id),
                **({"guild_id": str(guild_id)} if guild_id else {}),
            }
            msg["referenced_message"] = ref
            if mtype == 0:
                msg["type"] = 19
        if interaction is not None:
            user = self._interaction_user(interaction.payload)
            meta = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": user,
                "authorizing_integration_owners": interaction.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
            if interaction.type == 2:
                meta["name"] = interaction.payload["data"]["name"]
                meta["command_type"] = interaction.payload["data"].get("type", 1)
            if interaction.component_message_id is not None:
                meta["interacted_message_id"] = str(interaction.component_message_id)
            msg["interaction_metadata"] = meta
            msg["interaction"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "name": interaction.payload.get("data", {}).get("name", ""),
                "user": user,
            }
        return msg

    @staticmethod
    def _interaction_user(payload: dict[str, Any]) -> dict[str, Any]:
        return payload["member"]["user"] if "member" in payload else payload["user"]

    def _gateway_message(self, msg: dict[str, Any]) -> dict[str, Any]:
        guild_id = self._guild_of_channel(int(msg["channel_id"]))
        if guild_id is None:
            return msg
        out = {**msg, "guild_id": str(guild_id)}
        author_id = int(msg["author"]["id"])
        member = self._members[guild_id].get(author_id)
        if member is not None and "webhook_id" not in msg:
            out["member"] = member
        return out

    async def _dispatch_message_event(self, event: str, msg: dict[str, Any]) -> int:
        """MESSAGE_CREATE/UPDATE with Discord's intent rules (GUILD_MESSAGES/DIRECT_MESSAGES, MESSAGE_CONTENT)."""
        if msg["flags"] & EPHEMERAL:
            return 0
        payload = self._gateway_message(msg)
        guild_id = int(payload["guild_id"]) if "guild_id" in payload else None
        needed = GUILD_MESSAGES if guild_id is not None else DIRECT_MESSAGES
        author_id = int(msg["author"]["id"])
        mentions_bot = any(int(u["id"]) == self.application_id for u in msg["mentions"])
        stripped = None
        sent = 0
        for sess in self._targets(guild_id):
            if not sess.intents & needed:
                continue
            data = payload
            if (
                guild_id is not None
                and not sess.intents & MESSAGE_CONTENT
                and author_id != self.application_id
                and not mentions_bot
            ):
                if stripped is None:
                    stripped = {**payload, "content": "", "embeds": [], "attachments": [], "components": []}
                data = stripped
            await self._dispatch_to(sess, event, data)
            sent += 1
        return sent

    # ---- gateway dispatch ----------------------------------------------------------------------------

    def _targets(self, guild_id: int | None) -> list[_Session]:
        out = []
        for s in self._sessions:
            if not s.ready:
                continue
            if guild_id is None:
                if s.shard_id == 0:  # DMs and guild-less events go to shard 0
                    out.append(s)
            elif s.owns_guild(guild_id):
                out.append(s)
        return out

    async def _dispatch_to(self, sess: _Session, event: str, data: Any) -> None:
        self.sent_events.append((time.perf_counter(), event, sess.shard_id))
        await sess.dispatch(event, data)

    async def send_dispatch(
        self, event: str, data: dict[str, Any], *, guild_id: int | None = _MISSING
    ) -> int:
        """Push a DISPATCH (op 0) with each session's next sequence number.

        Routed as Discord routes: an event with a guild goes to the session(s) whose shard owns the
        guild (every connected client that is not sharded); an event without one goes to shard 0.
        MESSAGE_CREATE and INTERACTION_CREATE payloads are also recorded (message store, interaction
        handles). Returns the number of sessions it was sent to."""
        if guild_id is _MISSING:
            guild_id = int(data["guild_id"]) if data.get("guild_id") else None
        if event == "INTERACTION_CREATE" and int(data["id"]) not in self._handles_by_id:
            self._register_handle(data)
        elif event == "MESSAGE_CREATE" and int(data["id"]) not in self._message_channel:
            stored = {k: v for k, v in data.items() if k not in ("guild_id", "member")}
            self._store_message(stored)
        targets = self._targets(guild_id)
        now = time.perf_counter()
        if event == "INTERACTION_CREATE":
            self._handles_by_id[int(data["id"])].dispatched_at = now
        for sess in targets:
            await self._dispatch_to(sess, event, data)
        return len(targets)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every session (discord.py then RESUMEs)."""
        for sess in list(self._sessions):
            await sess.send_op(7, None)

    async def disconnect_all(self, code: int = 4000) -> None:
        for sess in list(self._sessions):
            await sess.ws.close(code=code)

    # ---- waiting ------------------------------------------------------------------------------------

    def _all_shards_ready(self, shards: int | None) -> bool:
        by_count: dict[int, set[int]] = {}
        for s in self._sessions:
            if s.ready:
                by_count.setdefault(s.shard_count, set()).add(s.shard_id)
        for count, ids in by_count.items():
            if (shards is None or count == shards) and ids >= set(range(count)):
                return True
        return False

    async def wait_ready(self, timeout: float = 10, *, shards: int | None = None) -> None:  # noqa: ASYNC109
        """Wait until every shard of a client (``shards`` of them, if given) got READY and its GUILD_CREATEs."""
        await self._waiters.wait(lambda: self._all_shards_ready(shards), timeout, "gateway READY")

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy; re-checked after each REST call, stored message or READY."""
        return await self._waiters.wait(predicate, timeout, "a condition on the fake")

    async def wait_for_call(
        self,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        *,
        predicate: Callable[[RestCall], Any] | None = None,
        after: int = 0,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> RestCall:
        """Wait for an answered REST call matching method, path (exact string or regex) and predicate,
        among ``calls[after:]``."""

        def match() -> RestCall | None:
            for c in itertools.islice(self.calls, after, None):
                if not c.status:
                    continue
                if method is not None and c.method != method:
                    continue
                if path is not None and (
                    (isinstance(path, str) and c.path != path)
                    or (isinstance(path, re.Pattern) and not path.search(c.path))
                ):
                    continue
                if predicate is not None and not predicate(c):
                    continue
                return c
            return None

        return await self._waiters.wait(match, timeout, f"a REST call {method or '*'} {path or '*'}")

    async def wait_for_message(
        self,
        channel_id: int,
        predicate: Callable[[dict[str, Any]], Any] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Wait until a message in ``channel_id`` satisfies ``predicate`` (default: any message)."""

        def match() -> dict[str, Any] | None:
            for m in self._messages.get(channel_id, {}).values():
                if predicate is None or predicate(m):
                    return m
            return None

        return await self._waiters.wait(match, timeout, f"a message in channel {channel_id}")

    @property
    def unknown_calls(self) -> list[RestCall]:
        """Calls that matched no route (404 with code 0)."""
        return [c for c in self.calls if c.route is None]

    # ---- payload builders --------------------------------------------------------------------------

    def _resolve_place(self, guild_id: int | None, channel_id: int, user_id: int) -> int | None:
        if guild_id is None:
            guild_id = self._guild_of_channel(channel_id)
        if guild_id is None and channel_id not in self._channels:
            self.dm_channel(user_id, channel_id=channel_id)
        return guild_id

    def _interaction_base(
        self,
        itype: int,
        data: dict[str, Any] | None,
        *,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        locale: str | None,
        permissions: str | None,
    ) -> dict[str, Any]:
        guild_id = self._resolve_place(guild_id, channel_id, user_id)
        user = self.user(user_id)
        iid = self._next_snowflake()
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "token": f"aW50ZXJhY3Rpb246{iid}:{secrets.token_urlsafe(24)}",
            "version": 1,
            "locale": locale or self._locales.get(user_id, "en-US"),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            "channel_id": str(channel_id),
        }
        if data is not None:
            payload["data"] = data
        ch = self._channels.get(channel_id)
        if guild_id is not None:
            if guild_id not in self._guilds:
                raise KeyError(f"unknown guild {guild_id}: add_guild() it first")
            if user_id not in self._members[guild_id]:
                self._add_member(guild_id, user_id)
            perms = (
                permissions if permissions is not None else str(self.member_permissions(guild_id, user_id))
            )
            payload.update(
                guild_id=str(guild_id),
                guild={
                    "id": str(guild_id),
                    "locale": self._guilds[guild_id]["preferred_locale"],
                    "features": [],
                },
                guild_locale=self._guilds[guild_id]["preferred_locale"],
                member=self._member_payload(guild_id, user_id, permissions=perms),
                app_permissions=str(self.member_permissions(guild_id, self.application_id)),
                authorizing_integration_owners={"0": str(guild_id)},
                context=0,
            )
            channel = (
                dict(ch)
                if ch
                else {
                    "id": str(channel_id),
                    "type": GUILD_TEXT,
                    "guild_id": str(guild_id),
                    "name": f"channel-{channel_id}",
                    "position": 0,
                }
            )
            channel["permissions"] = perms
        else:
            is_bot_dm = self._dm_by_user.get(user_id) == channel_id
            payload.update(
                user=user,
                app_permissions=str(DM_PERMISSIONS),
                authorizing_integration_owners={"0": "0"} if is_bot_dm else {"1": str(user_id)},
                context=1 if is_bot_dm else 2,
            )
            channel = (
                dict(ch) if ch else {"id": str(channel_id), "type": DM, "recipients": [user], "flags": 0}
            )
            channel["permissions"] = permissions if permissions is not None else str(DM_PERMISSIONS)
        payload["channel"] = channel
        return payload

    def _find_command(self, guild_id: int | None, name: str, ctype: int = 1) -> dict[str, Any] | None:
        if guild_id is not None:
            cmd = self._guild_commands.get(guild_id, {}).get((name, ctype))
            if cmd is not None:
                return cmd
        return self._global_commands.get((name, ctype))

    def _command_data(
        self,
        guild_id: int | None,
        name: str,
        subcommand: str | None,
        options: dict[str, Any] | None,
        focused: str | None,
    ) -> dict[str, Any]:
        cmd = self._find_command(guild_id, name)
        if cmd is not None:
            cmd_id = int(cmd["id"])
            schema: list[dict[str, Any]] = cmd.get("options", [])
        else:
            key = (guild_id, name, 1)
            cmd_id = self._command_ids.setdefault(key, self._next_snowflake())
            schema = []
        path = subcommand.split() if subcommand else []
        leaf_schema = schema
        wrappers: list[tuple[int, str]] = []
        for depth, part in enumerate(path):
            sub = next((o for o in leaf_schema if o["name"] == part), None)
            if sub is None:
                sub_type = 2 if depth < len(path) - 1 else 1
                leaf_schema = []
            else:
                sub_type = sub["type"]
                leaf_schema = sub.get("options", [])
            wrappers.append((sub_type, part))
        resolved: dict[str, dict[str, Any]] = {}
        leaf: list[dict[str, Any]] = []
        given = dict(options or {})
        if focused is not None and focused not in given:
            given[focused] = ""
        order = [o["name"] for o in leaf_schema if o["name"] in given] + [
            k for k in given if k not in {o["name"] for o in leaf_schema}
        ]
        for opt_name in order:
            value = given[opt_name]
            spec = next((o for o in leaf_schema if o["name"] == opt_name), None)
            otype = spec["type"] if spec else _infer_option_type(value)
            entry: dict[str, Any] = {"name": opt_name, "type": otype}
            if opt_name == focused:
                entry["value"] = str(value)
                entry["focused"] = True
            else:
                entry["value"] = self._option_value(otype, value, guild_id, resolved)
            leaf.append(entry)
        opts = leaf
        for sub_type, part in reversed(wrappers):
            opts = [{"type": sub_type, "name": part, "options": opts}]
        data: dict[str, Any] = {"id": str(cmd_id), "name": name, "type": 1}
        if opts:
            data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        if cmd is not None and cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        return data

    def _option_value(
        self, otype: int, value: Any, guild_id: int | None, resolved: dict[str, dict[str, Any]]
    ) -> Any:
        if otype == 3:
            return str(value)
        if otype == 4:
            return int(value)
        if otype == 5:
            return bool(value)
        if otype == 10:
            return float(value)
        if otype == 11:
            att = value if isinstance(value, dict) else {"id": value}
            aid = int(att.get("id") or self._next_snowflake())
            filename = att.get("filename", "file.txt")
            resolved.setdefault("attachments", {})[str(aid)] = {
                "id": str(aid),
                "filename": filename,
                "size": att.get("size", 0),
                "url": att.get("url", f"https://cdn.discordapp.com/ephemeral-attachments/0/{aid}/{filename}"),
                "proxy_url": att.get(
                    "proxy_url", f"https://media.discordapp.net/ephemeral-attachments/0/{aid}/{filename}"
                ),
                "content_type": att.get("content_type", "text/plain"),
                "ephemeral": True,
            }
            return str(aid)
        sid = int(value["id"]) if isinstance(value, dict) else int(value)
        if otype == 9:
            otype = 6 if sid in self._users else 8
        if otype == 6:
            self._resolve_user(sid, guild_id, resolved)
        elif otype == 7:
            ch = self._channels.get(sid)
            if ch is not None:
                entry: dict[str, Any] = {
                    k: ch[k]
                    for k in ("id", "name", "type", "parent_id", "thread_metadata", "guild_id")
                    if k in ch
                }
                perms = self.member_permissions(guild_id, self.application_id) if guild_id else DM_PERMISSIONS
                entry["permissions"] = str(perms)
                resolved.setdefault("channels", {})[str(sid)] = entry
        elif otype == 8 and guild_id is not None:
            role = self._guild_roles[guild_id].get(sid)
            if role is not None:
                resolved.setdefault("roles", {})[str(sid)] = role
        return str(sid)

    def _resolve_user(self, uid: int, guild_id: int | None, resolved: dict[str, dict[str, Any]]) -> None:
        resolved.setdefault("users", {})[str(uid)] = self.user(uid)
        if guild_id is not None and uid in self._members[guild_id]:
            m = dict(self._members[guild_id][uid])
            m["permissions"] = str(self.member_permissions(guild_id, uid))
            resolved.setdefault("members", {})[str(uid)] = m

    def slash_command(
        self,
        *,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        name: str,
        subcommand: str | None = None,
        options: dict[str, Any] | None = None,
        locale: str | None = None,
        permissions: str | None = None,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE type 2 (chat input).

        subcommand: "sub" or "group sub" (nested as Discord nests them: type 2 group > type 1 sub).
        options: name -> value. Types come from the commands the bot registered (PUT .../commands);
            unregistered options are typed from the Python value (bool 5, int 4, float 10, str 3, dict 11).
            User/channel/role/mentionable values are ids; their objects go into ``data.resolved``.
        guild_id: None = a DM (or the guild of ``channel_id`` if it is a guild channel).
        locale: defaults to the user's locale (add_user). permissions: the member's permissions in
            the channel as a string; default computed from roles (owner: all).
        """
        guild_id = self._resolve_place(guild_id, channel_id, user_id)
        data = self._command_data(guild_id, name, subcommand, options, None)
        return self._interaction_base(
            2,
            data,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            locale=locale,
            permissions=permissions,
        )

    def autocomplete(
        self,
        *,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        name: str,
        focused: str,
        value: str = "",
        subcommand: str | None = None,
        options: dict[str, Any] | None = None,
        locale: str | None = None,
        permissions: str | None = None,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE type 4: the user is typing ``value`` into option ``focused``."""
        guild_id = self._resolve_place(guild_id, channel_id, user_id)
        opts = dict(options or {})
        opts[focused] = value
        data = self._command_data(guild_id, name, subcommand, opts, focused)
        return self._interaction_base(
            4,
            data,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            locale=locale,
            permissions=permissions,
        )

    def component(
        self,
        *,
        custom_id: str,
        message: dict[str, Any] | int,
        user_id: int,
        component_type: int = 2,
        values: list[str] | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        locale: str | None = None,
        permissions: str | None = None,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE type 3: a button press (2) or select (3, 5-8) on ``message``
        (a message object, or the id of a message in the store)."""
        if not isinstance(message, dict):
            found = self._get_message(int(message))
            if found is None:
                raise KeyError(f"unknown message {message}")
            message = found
        channel_id = channel_id or int(message["channel_id"])
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if component_type != 2:
            data["values"] = list(values or [])
        guild_id = self._resolve_place(guild_id, channel_id, user_id)
        if component_type in (5, 6, 7, 8) and values:
            resolved: dict[str, dict[str, Any]] = {}
            kind = {5: 6, 6: 8, 7: 9, 8: 7}[component_type]
            for v in values:
                self._option_value(kind, v, guild_id, resolved)
            data["resolved"] = resolved
        payload = self._interaction_base(
            3,
            data,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            locale=locale,
            permissions=permissions,
        )
        payload["message"] = message
        return payload

    def modal_submit(
        self,
        *,
        custom_id: str,
        fields: dict[str, str],
        user_id: int,
        channel_id: int,
        guild_id: int | None = None,
        message: dict[str, Any] | int | None = None,
        locale: str | None = None,
        permissions: str | None = None,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE type 5: the user submitted modal ``custom_id`` with text inputs ``fields``
        (input custom_id -> value). Mirrors the layout of the modal the bot opened (action rows, or
        labels - type 18) when the fake saw it; action rows otherwise."""
        modal = self._modals.get(custom_id)
        components: list[dict[str, Any]] = []
        if modal is not None:
            for comp in modal.get("components", []):
                if comp.get("type") == 18:
                    inner = comp["component"]
                    if inner.get("custom_id") in fields:
                        components.append(
                            {
                                "type": 18,
                                "id": comp.get("id", 0),
                                "component": {
                                    "type": inner["type"],
                                    "custom_id": inner["custom_id"],
                                    "value": fields[inner["custom_id"]],
                                },
                            }
                        )
                elif comp.get("type") == 1:
                    row = [
                        {"type": c["type"], "custom_id": c["custom_id"], "value": fields[c["custom_id"]]}
                        for c in comp.get("components", [])
                        if c.get("custom_id") in fields
                    ]
                    if row:
                        components.append({"type": 1, "components": row})
        if not components:
            components = [
                {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}
                for k, v in fields.items()
            ]
        data = {"custom_id": custom_id, "components": components}
        guild_id = self._resolve_place(guild_id, channel_id, user_id)
        payload = self._interaction_base(
            5,
            data,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            locale=locale,
            permissions=permissions,
        )
        if message is not None:
            payload["message"] = message if isinstance(message, dict) else self._get_message(int(message))
        return payload

    def message(
        self,
        *,
        channel_id: int,
        author_id: int,
        content: str,
        guild_id: int | None = None,
        mentions: Iterable[int] = (),
        reference_message_id: int | None = None,
        embeds: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> dict[str, Any]:
        """A MESSAGE_CREATE payload from a user. ``guild_id`` defaults to the channel's guild; a channel
        the fake does not know, without a guild, becomes ``author_id``'s DM channel. ``<@id>`` mentions
        in the content are parsed like Discord does. ``files`` (filename -> bytes) are uploaded to the
        CDN and become the message's attachments, as when a person drops files into the chat."""
        attachments = list(attachments or []) + [
            self.upload(channel_id, name, data) for name, data in (files or {}).items()
        ]
        guild_id = self._resolve_place(guild_id, channel_id, author_id)
        if guild_id is not None and author_id not in self._members[guild_id]:
            self._add_member(guild_id, author_id)
        msg = self._new_message(
            channel_id=channel_id,
            author=self.user(author_id),
            content=content,
            mentions=mentions,
            reference_message_id=reference_message_id,
            embeds=embeds,
            attachments=attachments,
        )
        return self._gateway_message(msg)

    # ---- helpers that dispatch -------------------------------------------------------------------------

    def _register_handle(self, payload: dict[str, Any]) -> InteractionHandle:
        handle = InteractionHandle(self, payload)
        self._handles_by_id[handle.id] = handle
        self._handles_by_token[handle.token] = handle
        return handle

    async def interact(self, payload: dict[str, Any]) -> InteractionHandle:
        """Dispatch INTERACTION_CREATE; returns the handle to await the bot's callback and messages."""
        handle = self._handles_by_id.get(int(payload["id"])) or self._register_handle(payload)
        sent = await self.send_dispatch("INTERACTION_CREATE", payload)
        if not sent:
            raise RuntimeError("no READY gateway session would receive this interaction")
        return handle

    def handle(self, interaction_id: int) -> InteractionHandle | None:
        return self._handles_by_id.get(interaction_id)

    async def send_message(self, **kwargs: Any) -> dict[str, Any]:
        """Build a user message (same arguments as ``message()``), store it, and dispatch MESSAGE_CREATE
        following the intent rules. Returns the gateway payload."""
        payload = self.message(**kwargs)
        stored = {k: v for k, v in payload.items() if k not in ("guild_id", "member")}
        self._store_message(stored)
        await self._dispatch_message_event("MESSAGE_CREATE", stored)
        return payload

    # ---- HTTP plumbing ------------------------------------------------------------------------------

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], str, Callable[..., Any], bool]]:
        table: list[tuple[str, str, Callable[..., Any], bool]] = [
            ("GET", "/users/@me", self._get_me, False),
            ("POST", "/users/@me/channels", self._create_dm, False),
            ("GET", "/users/{user_id}", self._get_user, False),
            ("GET", "/gateway", self._get_gateway, False),
            ("GET", "/gateway/bot", self._get_gateway_bot, False),
            ("GET", "/applications/@me", self._get_application, False),
            ("GET", "/oauth2/applications/@me", self._get_application, False),
            ("GET", "/applications/{application_id}/commands", self._get_commands, False),
            ("PUT", "/applications/{application_id}/commands", self._put_commands, False),
            ("POST", "/applications/{application_id}/commands", self._post_command, False),
            ("GET", "/applications/{application_id}/commands/{command_id}", self._get_command, False),
            ("DELETE", "/applications/{application_id}/commands/{command_id}", self._delete_command, False),
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", self._get_commands, False),
            ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", self._put_commands, False),
            ("POST", "/applications/{application_id}/guilds/{guild_id}/commands", self._post_command, False),
            (
                "GET",
                "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
                self._get_command,
                False,
            ),
            (
                "DELETE",
                "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
                self._delete_command,
                False,
            ),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._interaction_callback, False),
            ("POST", "/webhooks/{webhook_id}/{token}", self._webhook_execute, True),
            ("GET", "/webhooks/{webhook_id}/{token}/messages/{message_id}", self._webhook_get, True),
            ("PATCH", "/webhooks/{webhook_id}/{token}/messages/{message_id}", self._webhook_edit, True),
            ("DELETE", "/webhooks/{webhook_id}/{token}/messages/{message_id}", self._webhook_delete, True),
            ("GET", "/channels/{channel_id}", self._get_channel, False),
            ("GET", "/channels/{channel_id}/messages", self._get_messages, False),
            ("POST", "/channels/{channel_id}/messages", self._create_message, True),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_channel_message, False),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_message, True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message, True),
            (
                "PUT",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                self._add_reaction,
                True,
            ),
            ("POST", "/channels/{channel_id}/messages/{message_id}/threads", self._thread_from_message, True),
            ("POST", "/channels/{channel_id}/threads", self._thread_without_message, True),
            ("PUT", "/channels/{channel_id}/thread-members/@me", self._join_thread, False),
            ("DELETE", "/channels/{channel_id}/thread-members/@me", self._leave_thread, False),
            ("PUT", "/channels/{channel_id}/thread-members/{user_id}", self._add_thread_member, False),
            ("POST", "/channels/{channel_id}/typing", self._typing, True),
            ("GET", "/guilds/{guild_id}", self._get_guild, False),
            ("GET", "/guilds/{guild_id}/channels", self._get_guild_channels, False),
            ("GET", "/guilds/{guild_id}/roles", self._get_guild_roles, False),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self._get_member, False),
        ]
        out = []
        for method, template, handler, limited in table:
            regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
            out.append((method, re.compile(regex), template, handler, limited))
        return out

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._gateway(request)
        if request.method in ("GET", "HEAD") and request.path.startswith("/attachments/"):
            return self._serve_cdn(request)
        now = time.perf_counter()
        path = request.path[len(API_PREFIX) :] if request.path.startswith(API_PREFIX + "/") else request.path
        query = dict(request.query)
        call = RestCall(method=request.method, path=path, json=None, query=query, timestamp=now)
        self.calls.append(call)
        headers: dict[str, str] = {}
        try:
            body, files = await self._read_body(request)
            call.json, call.files = body, files
            if not request.path.startswith(API_PREFIX + "/"):
                raise _HTTPError(404, 0, "404: Not Found")
            route = None
            allowed = False
            for method, regex, template, handler, limited in self._routes:
                m = regex.match(path)
                if m is None:
                    continue
                allowed = True
                if method == request.method:
                    route = (template, handler, limited, m.groupdict())
                    break
            if route is None:
                if allowed:
                    raise _HTTPError(405, 0, "405: Method Not Allowed")
                raise _HTTPError(404, 0, "404: Not Found")
            template, handler, limited, params = route
            call.route = template
            if (
                self.token is not None
                and request.headers.get("Authorization") != f"Bot {self.token}"
                and not template.startswith(("/interactions/", "/webhooks/"))
            ):
                raise _HTTPError(401, 0, "401: Unauthorized")
            if limited and self.rate_limit is not None:
                headers = self._rate_limit(request.method, template, params)
            result = await handler(_Req(request, params, body, files, query))
            status, payload = result if isinstance(result, tuple) else (200, result)
        except _HTTPError as exc:
            status, payload = exc.status, exc.body()
            headers = exc.headers or headers
        except Exception as exc:  # a bug in the fake: answer like Discord's 500s, keep it for the test to see
            self.errors.append(exc)
            status, payload = 500, {"message": f"500: Internal Server Error ({exc!r})", "code": 0}
        call.status = status
        call.response = payload
        call.responded_at = time.perf_counter()
        self._waiters.notify()
        if status == 204 or payload is None:
            return web.Response(status=204, headers=headers)
        # exactly "application/json", no charset: discord.py compares the header verbatim, as Discord sends it
        headers["Content-Type"] = "application/json"
        return web.Response(status=status, body=_dumps(payload).encode(), headers=headers)

    async def _read_body(self, request: web.Request) -> tuple[Any, list[dict[str, Any]]]:
        if not request.can_read_body:
            return None, []
        ctype = request.content_type
        if ctype.startswith("multipart/"):
            body: Any = None
            files: list[dict[str, Any]] = []
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                else:
                    data = await part.read()
                    files.append(
                        {
                            "name": part.name,
                            "filename": part.filename,
                            "content_type": part.headers.get("Content-Type", "application/octet-stream"),
                            "data": bytes(data),
                        }
                    )
            return body, files
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            raise _HTTPError(400, 50109, "The request body contains invalid JSON.") from None

    def _rate_limit(self, method: str, template: str, params: dict[str, str]) -> dict[str, str]:
        assert self.rate_limit is not None
        limit, per = self.rate_limit
        major = (
            params.get("channel_id")
            or params.get("guild_id")
            or (f"{params.get('webhook_id')}/{params.get('token')}" if "token" in params else "")
        )
        key = (method, template, major)
        now = time.monotonic()
        state = self._buckets.get(key)
        if state is None or now >= state[0] + per:
            state = self._buckets[key] = [now, 0]
        reset_after = state[0] + per - now
        bucket = f"{abs(hash((method, template))):x}"[:16]
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket,
        }
        if state[1] >= limit:
            headers.update(
                {
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Scope": "user",
                    "Retry-After": f"{reset_after:.3f}",
                    "Via": "1.1 google",
                }
            )
            raise _HTTPError(
                429, 0, "You are being rate limited.", headers=headers, retry_after=round(reset_after, 3)
            )
        state[1] += 1
        headers["X-RateLimit-Remaining"] = str(limit - state[1])
        return headers

    # ---- REST handlers: users, gateway, application -------------------------------------------------

    async def _get_me(self, req: _Req) -> Any:
        return self.bot_user

    async def _get_user(self, req: _Req) -> Any:
        user = self._users.get(int(req.params["user_id"]))
        if user is None:
            raise _unknown("User", 10013)
        return user

    async def _create_dm(self, req: _Req) -> Any:
        body = req.body or {}
        try:
            uid = int(body["recipient_id"])
        except (KeyError, TypeError, ValueError):
            raise _form_error(["recipient_id"], "BASE_TYPE_REQUIRED", "This field is required") from None
        if uid not in self._users or uid == self.application_id:
            raise _HTTPError(400, 50033, "Invalid Recipient(s)")
        return self.dm_channel(uid)

    async def _get_gateway(self, req: _Req) -> Any:
        return {"url": self.gateway_url}

    async def _get_gateway_bot(self, req: _Req) -> Any:
        return {
            "url": self.gateway_url,
            "shards": self.recommended_shards,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14400000,
                "max_concurrency": 1,
            },
        }

    async def _get_application(self, req: _Req) -> Any:
        return {
            "id": str(self.application_id),
            "name": self.bot_user["username"],
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": (1 << 15) | (1 << 19) | (1 << 23),
            "owner": self._owner_user(),
            "team": None,
            "bot": self.bot_user,
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "tags": [],
            "install_params": {
                "scopes": ["bot", "applications.commands"],
                "permissions": str(self.bot_permissions),
            },
            "integration_types_config": {"0": {}, "1": {}},
            "approximate_guild_count": len(self._guilds),
            "approximate_user_install_count": 0,
        }

    def _owner_user(self) -> dict[str, Any]:
        for g in self._guilds.values():
            return self.user(int(g["owner_id"]))
        return {"id": "1", "username": "owner", "discriminator": "0", "global_name": "Owner", "avatar": None}

    # ---- REST handlers: application commands ---------------------------------------------------------

    def _command_scope(self, req: _Req) -> tuple[int | None, dict[tuple[str, int], dict[str, Any]]]:
        if int(req.params["application_id"]) != self.application_id:
            raise _HTTPError(403, 50001, "Missing Access")
        if "guild_id" in req.params:
            gid = int(req.params["guild_id"])
            if gid not in self._guilds:
                raise _HTTPError(403, 50001, "Missing Access")
            return gid, self._guild_commands.setdefault(gid, {})
        return None, self._global_commands

    def _make_command(self, gid: int | None, spec: dict[str, Any], index: int | None) -> dict[str, Any]:
        prefix: list[str | int] = [] if index is None else [index]
        _validate_command(spec, prefix)
        ctype = int(spec.get("type", 1))
        key = (gid, spec["name"], ctype)
        cid = self._command_ids.setdefault(key, self._next_snowflake())
        cmd = {
            "id": str(cid),
            "application_id": str(self.application_id),
            "version": str(self._next_snowflake()),
            "default_member_permissions": spec.get("default_member_permissions"),
            "type": ctype,
            "name": spec["name"],
            "name_localizations": spec.get("name_localizations"),
            "description": spec.get("description", ""),
            "description_localizations": spec.get("description_localizations"),
            "dm_permission": spec.get("dm_permission", True),
            "contexts": spec.get("contexts"),
            "integration_types": spec.get("integration_types", [0]),
            "nsfw": spec.get("nsfw", False),
        }
        if spec.get("options"):
            cmd["options"] = spec["options"]
        if gid is not None:
            cmd["guild_id"] = str(gid)
        return cmd

    async def _get_commands(self, req: _Req) -> Any:
        _, scope = self._command_scope(req)
        return list(scope.values())

    async def _put_commands(self, req: _Req) -> Any:
        gid, scope = self._command_scope(req)
        body = req.body
        if not isinstance(body, list):
            raise _HTTPError(
                400,
                50035,
                "Invalid Form Body",
                {
                    "_errors": [
                        {"code": "LIST_TYPE_CONVERT", "message": "Only iterables may be used in a ListType"}
                    ]
                },
            )
        if len(body) > 100:
            raise _form_error([], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        seen: set[tuple[str, int]] = set()
        new = {}
        for i, spec in enumerate(body):
            cmd = self._make_command(gid, spec, i)
            key = (cmd["name"], cmd["type"])
            if key in seen:
                raise _form_error(
                    [i, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique: {cmd['name']}",
                )
            seen.add(key)
            new[key] = cmd
        scope.clear()
        scope.update(new)
        return list(new.values())

    async def _post_command(self, req: _Req) -> Any:
        gid, scope = self._command_scope(req)
        cmd = self._make_command(gid, req.body or {}, None)
        key = (cmd["name"], cmd["type"])
        created = key not in scope
        scope[key] = cmd
        return (201 if created else 200), cmd

    async def _get_command(self, req: _Req) -> Any:
        _, scope = self._command_scope(req)
        for cmd in scope.values():
            if cmd["id"] == req.params["command_id"]:
                return cmd
        raise _unknown("application command", 10063)

    async def _delete_command(self, req: _Req) -> Any:
        _, scope = self._command_scope(req)
        for key, cmd in list(scope.items()):
            if cmd["id"] == req.params["command_id"]:
                del scope[key]
                return 204, None
        raise _unknown("application command", 10063)

    # ---- REST handlers: interactions and webhooks ---------------------------------------------------

    async def _interaction_callback(self, req: _Req) -> Any:
        if self.hold_callbacks is not None:
            self.callbacks_held += 1
            self._waiters.notify()
            await self.hold_callbacks.wait()
        handle = (
            self._handles_by_id.get(int(req.params["interaction_id"]))
            if req.params["interaction_id"].isdigit()
            else None
        )
        if handle is None or handle.token != req.params["token"]:
            raise _unknown("interaction", 10062)
        if handle.callback is not None:
            raise _HTTPError(400, 40060, "Interaction has already been acknowledged.")
        if (
            self.interaction_deadline is not None
            and handle.dispatched_at is not None
            and time.perf_counter() - handle.dispatched_at > self.interaction_deadline
        ):
            raise _unknown("interaction", 10062)
        body = req.body if isinstance(req.body, dict) else {}
        ctype = body.get("type")
        data = body.get("data") or {}
        allowed = {
            1: {1},
            2: {4, 5, 9, 10, 12},
            3: {4, 5, 6, 7, 9, 10, 12},
            4: {8},
            5: {4, 5, 6, 7, 10, 12},
        }[handle.type]
        if ctype not in allowed:
            raise _form_error(
                ["type"],
                "INTERACTION_RESPONSE_TYPE_INVALID",
                f"Interaction response type {ctype} is not valid for interaction type {handle.type}",
            )
        message: dict[str, Any] | None = None
        loading = False
        if ctype == 4:
            _validate_message(data, files=req.files)
            message = self._new_message(
                channel_id=handle.channel_id,
                author=self.bot_user,
                content=data.get("content", ""),
                embeds=data.get("embeds"),
                components=data.get("components"),
                attachments=self._attachments_from(data, req.files, handle.channel_id),
                flags=int(data.get("flags", 0)) & (EPHEMERAL | 4 | 4096 | 32768),
                mtype=20 if handle.type == 2 else 0,
                webhook_id=self.application_id,
                interaction=handle,
                tts=bool(data.get("tts")),
            )
        elif ctype == 5:
            loading = True
            message = self._new_message(
                channel_id=handle.channel_id,
                author=self.bot_user,
                flags=LOADING | (int(data.get("flags", 0)) & EPHEMERAL),
                mtype=20 if handle.type == 2 else 0,
                webhook_id=self.application_id,
                interaction=handle,
            )
        elif ctype in (6, 7):
            if handle.component_message_id is None:
                raise _form_error(
                    ["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "This interaction has no message"
                )
            handle.original_id = handle.component_message_id
            if ctype == 7:
                _validate_message(data, files=req.files, edit=True)
                target = self._get_message(handle.component_message_id)
                if target is None:
                    raw = handle.payload["message"]
                    target = {k: v for k, v in raw.items() if k not in ("guild_id", "member")}
                    self._store_message(target)
                self._apply_edit(target, data, req.files)
                message = target
        elif ctype == 8:
            choices = data.get("choices", [])
            if len(choices) > 25:
                raise _form_error(
                    ["data", "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            for i, ch in enumerate(choices):
                if not 1 <= len(str(ch.get("name", ""))) <= 100:
                    raise _form_error(
                        ["data", "choices", i, "name"],
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    )
        elif ctype == 9:
            if not 1 <= len(data.get("title", "")) <= 45:
                raise _form_error(
                    ["data", "title"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length."
                )
            if not 1 <= len(data.get("components", [])) <= 5:
                raise _form_error(
                    ["data", "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
                )
            self._modals[data.get("custom_id", "")] = data
        handle.callback = body
        handle.callback_at = time.perf_counter()
        if message is not None and ctype in (4, 5):
            handle.original_id = int(message["id"])
            self._store_message(message)
            await self._echo("MESSAGE_CREATE", message)
        elif message is not None and ctype == 7:
            self._waiters.notify()
            await self._echo("MESSAGE_UPDATE", message)
        if not handle._callback_fut.done():
            handle._callback_fut.set_result(body)
        handle._waiters.notify()
        if req.query.get("with_response") not in ("1", "true", "True"):
            return 204, None
        info: dict[str, Any] = {"id": str(handle.id), "type": handle.type}
        if handle.original_id is not None and ctype in (4, 5, 6, 7):
            info["response_message_id"] = str(handle.original_id)
            info["response_message_loading"] = loading
            orig = self._get_message(handle.original_id)
            info["response_message_ephemeral"] = bool(orig and orig["flags"] & EPHEMERAL)
        resource: dict[str, Any] = {"type": ctype}
        if message is not None:
            resource["message"] = message
        return {"interaction": info, "resource": resource}

    def _webhook_handle(self, req: _Req) -> InteractionHandle:
        handle = self._handles_by_token.get(req.params["token"])
        if handle is None or req.params["webhook_id"] != str(self.application_id):
            raise _unknown("Webhook", 10015)
        return handle

    def _webhook_message_id(self, handle: InteractionHandle, raw: str) -> int:
        if raw == "@original":
            if handle.original_id is None or handle.original_id in handle.deleted_ids:
                raise _unknown("Message", 10008)
            return handle.original_id
        mid = int(raw) if raw.isdigit() else -1
        if mid in handle.deleted_ids or (mid != handle.original_id and mid not in handle.followup_ids):
            raise _unknown("Message", 10008)
        return mid

    async def _webhook_execute(self, req: _Req) -> Any:
        handle = self._webhook_handle(req)
        if handle.callback is None:
            raise _unknown("Webhook", 10015)
        data = req.body if isinstance(req.body, dict) else {}
        _validate_message(data, files=req.files)
        original = handle.original
        if original is not None and original["flags"] & LOADING and handle.callback.get("type") == 5:
            # Discord: right after a deferred reply, a follow-up edits the "thinking" message instead
            self._apply_edit(original, data, req.files, clear_loading=True)
            message = original
            handle.followup_ids.append(int(message["id"]))
            await self._echo("MESSAGE_UPDATE", message)
        else:
            channel_id = int(req.query["thread_id"]) if req.query.get("thread_id") else handle.channel_id
            message = self._new_message(
                channel_id=channel_id,
                author=self.bot_user,
                content=data.get("content", ""),
                embeds=data.get("embeds"),
                components=data.get("components"),
                attachments=self._attachments_from(data, req.files, channel_id),
                flags=int(data.get("flags", 0)) & (EPHEMERAL | 4 | 4096 | 32768),
                webhook_id=self.application_id,
                interaction=handle,
                tts=bool(data.get("tts")),
            )
            handle.followup_ids.append(int(message["id"]))
            self._store_message(message)
            await self._echo("MESSAGE_CREATE", message)
        handle._waiters.notify()
        if req.query.get("wait") in ("1", "true", "True"):
            return message
        return 204, None

    async def _webhook_get(self, req: _Req) -> Any:
        handle = self._webhook_handle(req)
        msg = self._get_message(self._webhook_message_id(handle, req.params["message_id"]))
        if msg is None:
            raise _unknown("Message", 10008)
        return msg

    async def _webhook_edit(self, req: _Req) -> Any:
        handle = self._webhook_handle(req)
        msg = self._get_message(self._webhook_message_id(handle, req.params["message_id"]))
        if msg is None:
            raise _unknown("Message", 10008)
        data = req.body if isinstance(req.body, dict) else {}
        _validate_message(data, files=req.files, edit=True)
        self._apply_edit(msg, data, req.files, clear_loading=True)
        self._waiters.notify()
        handle._waiters.notify()
        await self._echo("MESSAGE_UPDATE", msg)
        return msg

    async def _webhook_delete(self, req: _Req) -> Any:
        handle = self._webhook_handle(req)
        mid = self._webhook_message_id(handle, req.params["message_id"])
        handle.deleted_ids.add(mid)
        await self._remove_message(mid)
        handle._waiters.notify()
        return 204, None

    # ---- REST handlers: channels and messages --------------------------------------------------------

    def _channel_or_404(self, req: _Req) -> tuple[int, dict[str, Any]]:
        cid = int(req.params["channel_id"]) if req.params["channel_id"].isdigit() else -1
        ch = self._channels.get(cid)
        if ch is None:
            raise _unknown("Channel", 10003)
        return cid, ch

    def _message_or_404(self, cid: int, raw: str) -> dict[str, Any]:
        msg = self._messages.get(cid, {}).get(int(raw)) if raw.isdigit() else None
        if msg is None:
            raise _unknown("Message", 10008)
        return msg

    async def _get_channel(self, req: _Req) -> Any:
        return self._channel_or_404(req)[1]

    async def _get_messages(self, req: _Req) -> Any:
        cid, _ = self._channel_or_404(req)
        limit = min(int(req.query.get("limit", 50)), 100)
        msgs = [m for m in self._messages.get(cid, {}).values() if not m["flags"] & EPHEMERAL]
        if "before" in req.query:
            msgs = [m for m in msgs if int(m["id"]) < int(req.query["before"])]
        if "after" in req.query:
            msgs = [m for m in msgs if int(m["id"]) > int(req.query["after"])]
            return list(reversed(msgs[:limit]))
        return list(reversed(msgs))[:limit]

    async def _get_channel_message(self, req: _Req) -> Any:
        cid, _ = self._channel_or_404(req)
        return self._message_or_404(cid, req.params["message_id"])

    def _attachments_from(
        self,
        data: dict[str, Any],
        files: list[dict[str, Any]],
        channel_id: int,
        keep: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        out = []
        keep_ids = {str(a.get("id")) for a in data.get("attachments", []) or []}
        for att in keep or []:
            if att["id"] in keep_ids:
                out.append(att)
        for i, f in enumerate(files):
            meta: dict[str, Any] = next(
                (a for a in data.get("attachments", []) or [] if str(a.get("id")) == str(i)), {}
            )
            name = meta.get("filename") or f["filename"] or f"file{i}"
            att = self.upload(channel_id, name, f["data"], f["content_type"])
            if meta.get("description"):
                att["description"] = meta["description"]
            out.append(att)
        return out

    def _apply_edit(
        self,
        msg: dict[str, Any],
        data: dict[str, Any],
        files: list[dict[str, Any]],
        *,
        clear_loading: bool = False,
    ) -> None:
        if "content" in data:
            msg["content"] = data["content"] or ""
            guild_id = self._guild_of_channel(int(msg["channel_id"]))
            msg["mentions"] = self._mentions(msg["content"], (), guild_id)
        if "embeds" in data:
            msg["embeds"] = [_normalize_embed(e) for e in data["embeds"] or []]
        if "components" in data:
            msg["components"] = data["components"] or []
        if "attachments" in data or files:
            msg["attachments"] = self._attachments_from(
                data, files, int(msg["channel_id"]), keep=msg["attachments"]
            )
        if "flags" in data and data["flags"] is not None:
            msg["flags"] = (msg["flags"] & ~4) | (int(data["flags"]) & 4)
        if clear_loading and msg["flags"] & LOADING:
            msg["flags"] &= ~LOADING
        else:
            msg["edited_timestamp"] = _now_iso()

    async def _echo(self, event: str, msg: dict[str, Any]) -> None:
        if self.echo_bot_messages:
            await self._dispatch_message_event(event, msg)

    async def _create_message(self, req: _Req) -> Any:
        cid, ch = self._channel_or_404(req)
        if ch["type"] == DM and int(ch["recipients"][0]["id"]) in self.close_dms_for:
            raise _HTTPError(403, 50007, "Cannot send messages to this user")
        if ch["type"] in (GUILD_CATEGORY, GUILD_FORUM):
            raise _HTTPError(400, 50008, "Cannot send messages in a non-text channel")
        data = req.body if isinstance(req.body, dict) else {}
        _validate_message(data, files=req.files)
        ref = data.get("message_reference") or {}
        ref_id = int(ref["message_id"]) if ref.get("message_id") else None
        if ref_id is not None and self._get_message(ref_id) is None and ref.get("fail_if_not_exists", True):
            raise _form_error(["message_reference"], "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
        msg = self._new_message(
            channel_id=cid,
            author=self.bot_user,
            content=data.get("content", ""),
            embeds=data.get("embeds"),
            components=data.get("components"),
            attachments=self._attachments_from(data, req.files, cid),
            flags=int(data.get("flags", 0)) & (4 | 4096 | 32768),
            reference_message_id=ref_id,
            nonce=data.get("nonce"),
            tts=bool(data.get("tts")),
        )
        self._store_message(msg)
        await self._echo("MESSAGE_CREATE", msg)
        return msg

    async def _edit_message(self, req: _Req) -> Any:
        cid, _ = self._channel_or_404(req)
        msg = self._message_or_404(cid, req.params["message_id"])
        data = req.body if isinstance(req.body, dict) else {}
        if int(msg["author"]["id"]) != self.application_id and set(data) - {"flags"}:
            raise _HTTPError(403, 50005, "Cannot edit a message authored by another user")
        _validate_message(data, files=req.files, edit=True)
        self._apply_edit(msg, data, req.files)
        self._waiters.notify()
        await self._echo("MESSAGE_UPDATE", msg)
        return msg

    async def _remove_message(self, mid: int) -> None:
        cid = self._message_channel.pop(mid, None)
        if cid is None:
            return
        msg = self._messages[cid].pop(mid, None)
        self._waiters.notify()
        if msg is not None and not msg["flags"] & EPHEMERAL:
            data: dict[str, Any] = {"id": str(mid), "channel_id": str(cid)}
            gid = self._guild_of_channel(cid)
            if gid is not None:
                data["guild_id"] = str(gid)
            needed = GUILD_MESSAGES if gid is not None else DIRECT_MESSAGES
            for sess in self._targets(gid):
                if sess.intents & needed:
                    await self._dispatch_to(sess, "MESSAGE_DELETE", data)

    async def _delete_message(self, req: _Req) -> Any:
        cid, _ = self._channel_or_404(req)
        msg = self._message_or_404(cid, req.params["message_id"])
        await self._remove_message(int(msg["id"]))
        return 204, None

    async def _add_reaction(self, req: _Req) -> Any:
        cid, _ = self._channel_or_404(req)
        msg = self._message_or_404(cid, req.params["message_id"])
        emoji = req.params["emoji"]
        reactions = msg.setdefault("reactions", [])
        for r in reactions:
            if r["emoji"]["name"] == emoji:
                if not r["me"]:
                    r["count"] += 1
                    r["me"] = True
                break
        else:
            reactions.append(
                {
                    "emoji": {"id": None, "name": emoji},
                    "count": 1,
                    "me": True,
                    "burst_colors": [],
                    "count_details": {"burst": 0, "normal": 1},
                    "me_burst": False,
                }
            )
        return 204, None

    async def _typing(self, req: _Req) -> Any:
        self._channel_or_404(req)
        return 204, None

    # ---- REST handlers: threads ----------------------------------------------------------------------

    def _bot_thread_member(self, thread: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": thread["id"],
            "user_id": str(self.application_id),
            "join_timestamp": _now_iso(),
            "flags": 0,
        }

    async def _create_thread(
        self, guild_id: int, parent_id: int, thread_id: int, name: str, ctype: int, auto_archive: int
    ) -> dict[str, Any]:
        thread = self._thread_object(
            guild_id,
            parent_id,
            thread_id,
            name,
            ctype,
            owner_id=self.application_id,
            auto_archive_duration=auto_archive,
        )
        thread["member"] = self._bot_thread_member(thread)
        self._channels[thread_id] = thread
        self._guild_channels[guild_id].append(thread_id)
        self._messages.setdefault(thread_id, {})
        for sess in self._targets(guild_id):
            if sess.intents & GUILDS:
                await self._dispatch_to(sess, "THREAD_CREATE", {**thread, "newly_created": True})
        return thread

    async def _thread_from_message(self, req: _Req) -> Any:
        cid, ch = self._channel_or_404(req)
        if ch["type"] not in (GUILD_TEXT, GUILD_NEWS):
            raise _HTTPError(400, 50024, "Cannot execute action on this channel type")
        msg = self._message_or_404(cid, req.params["message_id"])
        if "thread" in msg or int(msg["id"]) in self._channels:
            raise _HTTPError(400, 160004, "A thread has already been created for this message")
        data = req.body if isinstance(req.body, dict) else {}
        name = str(data.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise _form_error(["name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        ctype = NEWS_THREAD if ch["type"] == GUILD_NEWS else PUBLIC_THREAD
        thread = await self._create_thread(
            int(ch["guild_id"]),
            cid,
            int(msg["id"]),
            name,
            ctype,
            int(data.get("auto_archive_duration") or 1440),
        )
        msg["thread"] = thread
        return 201, thread

    async def _thread_without_message(self, req: _Req) -> Any:
        cid, ch = self._channel_or_404(req)
        if ch["type"] not in (GUILD_TEXT, GUILD_NEWS, GUILD_FORUM):
            raise _HTTPError(400, 50024, "Cannot execute action on this channel type")
        data = req.body if isinstance(req.body, dict) else {}
        name = str(data.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise _form_error(["name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if ch["type"] == GUILD_FORUM:
            starter = data.get("message")
            if not isinstance(starter, dict):
                raise _form_error(["message"], "BASE_TYPE_REQUIRED", "This field is required")
            _validate_message(starter, files=req.files)
            tid = self._next_snowflake()
            thread = await self._create_thread(
                int(ch["guild_id"]),
                cid,
                tid,
                name,
                PUBLIC_THREAD,
                int(data.get("auto_archive_duration") or 1440),
            )
            msg = self._new_message(
                channel_id=tid,
                author=self.bot_user,
                content=starter.get("content", ""),
                embeds=starter.get("embeds"),
                components=starter.get("components"),
                attachments=self._attachments_from(starter, req.files, tid),
                message_id=tid,
            )
            self._store_message(msg)
            await self._echo("MESSAGE_CREATE", msg)
            return 201, {**thread, "message": msg}
        ctype = int(data.get("type") or PRIVATE_THREAD)
        thread = await self._create_thread(
            int(ch["guild_id"]),
            cid,
            self._next_snowflake(),
            name,
            ctype,
            int(data.get("auto_archive_duration") or 1440),
        )
        return 201, thread

    async def _join_thread(self, req: _Req) -> Any:
        _, ch = self._channel_or_404(req)
        if ch["type"] not in THREAD_TYPES:
            raise _HTTPError(400, 50024, "Cannot execute action on this channel type")
        if "member" not in ch:
            ch["member"] = self._bot_thread_member(ch)
            ch["member_count"] += 1
        return 204, None

    async def _leave_thread(self, req: _Req) -> Any:
        _, ch = self._channel_or_404(req)
        if ch.pop("member", None) is not None:
            ch["member_count"] -= 1
        return 204, None

    async def _add_thread_member(self, req: _Req) -> Any:
        _, ch = self._channel_or_404(req)
        if ch["type"] not in THREAD_TYPES:
            raise _HTTPError(400, 50024, "Cannot execute action on this channel type")
        ch["member_count"] += 1
        return 204, None

    # ---- REST handlers: guilds -----------------------------------------------------------------------

    def _guild_or_404(self, req: _Req) -> int:
        gid = int(req.params["guild_id"]) if req.params["guild_id"].isdigit() else -1
        if gid not in self._guilds:
            raise _unknown("Guild", 10004)
        return gid

    async def _get_guild(self, req: _Req) -> Any:
        gid = self._guild_or_404(req)
        return {
            **self._guilds[gid],
            "roles": list(self._guild_roles[gid].values()),
            "approximate_member_count": len(self._members[gid]),
        }

    async def _get_guild_channels(self, req: _Req) -> Any:
        gid = self._guild_or_404(req)
        return [
            self._channels[c]
            for c in self._guild_channels[gid]
            if self._channels[c]["type"] not in THREAD_TYPES
        ]

    async def _get_guild_roles(self, req: _Req) -> Any:
        return list(self._guild_roles[self._guild_or_404(req)].values())

    async def _get_member(self, req: _Req) -> Any:
        gid = self._guild_or_404(req)
        uid = int(req.params["user_id"]) if req.params["user_id"].isdigit() else -1
        if uid not in self._members[gid]:
            raise _unknown("Member", 10007)
        return self._member_payload(gid, uid)

    # ---- gateway -----------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        compress = request.query.get("compress") == "zlib-stream"
        sess = _Session(ws, compress)
        self._sessions.add(sess)
        try:
            await sess.send_op(
                10, {"heartbeat_interval": self.heartbeat_interval, "_trace": ['["fake-gateway"]']}
            )
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        payload = json.loads(msg.data)
                    except ValueError:
                        await ws.close(code=4002, message=b"Error while decoding payload.")
                        break
                    await self._on_gateway_op(sess, payload)
                elif msg.type == WSMsgType.BINARY:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._sessions.discard(sess)
            self._waiters.notify()
        return ws

    async def _on_gateway_op(self, sess: _Session, payload: dict[str, Any]) -> None:
        op, d = payload.get("op"), payload.get("d")
        if op == 1:  # HEARTBEAT
            await sess.send_op(11, None)
        elif op == 2:  # IDENTIFY
            await self._identify(sess, d or {})
        elif op == 6:  # RESUME
            await self._resume(sess, d or {})
        elif op == 8:  # REQUEST_GUILD_MEMBERS
            if not sess.identified:
                await sess.ws.close(code=4003, message=b"Not authenticated.")
                return
            await self._request_members(sess, d or {})
        elif op in (3, 4):  # presence update / voice state: accepted, ignored
            if not sess.identified:
                await sess.ws.close(code=4003, message=b"Not authenticated.")
        else:
            await sess.ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, sess: _Session, d: dict[str, Any]) -> None:
        if sess.identified:
            await sess.ws.close(code=4005, message=b"Already authenticated.")
            return
        if self.token is not None and d.get("token") != self.token:
            await sess.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard = d.get("shard")
        if shard is not None:
            shard_id, shard_count = int(shard[0]), int(shard[1])
            if shard_count < 1 or not 0 <= shard_id < shard_count:
                await sess.ws.close(code=4010, message=b"Invalid shard.")
                return
            sess.shard_id, sess.shard_count, sess.sharded = shard_id, shard_count, True
        sess.intents = int(d.get("intents", 0))
        sess.identified = True
        sess.session_id = secrets.token_hex(16)
        self._session_store[sess.session_id] = sess
        guild_ids = [g for g in self._guilds if sess.owns_guild(g)]
        ready: dict[str, Any] = {
            "v": 10,
            "user": self.bot_user,
            "user_settings": {},
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
            "session_id": sess.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": (1 << 15) | (1 << 19) | (1 << 23)},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake"],
            "auth_session_id_hash": secrets.token_hex(16),
            "_trace": ['["fake-gateway"]'],
        }
        if sess.sharded:
            ready["shard"] = [sess.shard_id, sess.shard_count]
        await self._dispatch_to(sess, "READY", ready)
        if sess.intents & GUILDS:
            for g in guild_ids:
                await self._dispatch_to(
                    sess, "GUILD_CREATE", self._guild_create_payload(g, intents=sess.intents)
                )
        sess.ready = True
        self._waiters.notify()

    async def _resume(self, sess: _Session, d: dict[str, Any]) -> None:
        old = self._session_store.get(str(d.get("session_id")))
        if old is None or (self.token is not None and d.get("token") != self.token):
            await sess.send_op(9, False)
            return
        sess.session_id = old.session_id
        sess.shard_id, sess.shard_count, sess.sharded = old.shard_id, old.shard_count, old.sharded
        sess.intents = old.intents
        sess.seq = max(old.seq, int(d.get("seq") or 0))
        sess.identified = True
        self._session_store[sess.session_id] = sess  # type: ignore[index]
        self._sessions.discard(old)
        await self._dispatch_to(sess, "RESUMED", {"_trace": ['["fake-gateway"]']})
        sess.ready = True
        self._waiters.notify()

    async def _request_members(self, sess: _Session, d: dict[str, Any]) -> None:
        guild_ids = d.get("guild_id")
        for raw_gid in guild_ids if isinstance(guild_ids, list) else [guild_ids]:
            if raw_gid is None or int(raw_gid) not in self._members:
                continue
            gid = int(raw_gid)
            members = self._members[gid]
            uids = list(members)
            not_found: list[str] = []
            if d.get("user_ids"):
                wanted = [
                    int(u) for u in (d["user_ids"] if isinstance(d["user_ids"], list) else [d["user_ids"]])
                ]
                not_found = [str(u) for u in wanted if u not in members]
                uids = [u for u in wanted if u in members]
            elif d.get("query"):
                q = str(d["query"]).lower()
                uids = [
                    u
                    for u in uids
                    if self.user(u)["username"].lower().startswith(q)
                    or (members[u]["nick"] or "").lower().startswith(q)
                ]
            limit = int(d.get("limit") or 0)
            if limit:
                uids = uids[:limit]
            chunk: dict[str, Any] = {
                "guild_id": str(gid),
                "members": [self._member_payload(gid, u) for u in uids],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": not_found,
            }
            if d.get("presences"):
                chunk["presences"] = []
            if d.get("nonce"):
                chunk["nonce"] = d["nonce"]
            await self._dispatch_to(sess, "GUILD_MEMBERS_CHUNK", chunk)


# --------------------------------------------------------------------------------------------------
# validation helpers (the limits Discord enforces)


def _infer_option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    if isinstance(value, dict):
        return 11
    return 3


def _normalize_embed(embed: dict[str, Any]) -> dict[str, Any]:
    out = dict(embed)
    out.setdefault("type", "rich")
    return out


def _validate_command(spec: dict[str, Any], path: list[str | int]) -> None:
    if not isinstance(spec, dict):
        raise _form_error(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    ctype = int(spec.get("type", 1))
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise _form_error([*path, "name"], "BASE_TYPE_REQUIRED", "This field is required")
    if ctype == 1:
        if not _COMMAND_NAME_RE.match(name) or name != name.lower():
            raise _form_error(
                [*path, "name"], "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}"
            )
        desc = spec.get("description", "")
        if not 1 <= len(desc) <= 100:
            raise _form_error(
                [*path, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        _validate_options(spec.get("options") or [], [*path, "options"], depth=0)
    elif not 1 <= len(name) <= 32:
        raise _form_error([*path, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")


def _validate_options(options: list[dict[str, Any]], path: list[str | int], depth: int) -> None:
    if len(options) > 25:
        raise _form_error(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    seen: set[str] = set()
    optional_seen = False
    for i, opt in enumerate(options):
        otype = int(opt.get("type", 0))
        name = opt.get("name", "")
        here = [*path, i]
        if not _COMMAND_NAME_RE.match(name) or name != name.lower():
            raise _form_error(
                [*here, "name"], "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}"
            )
        if name in seen:
            raise _form_error(
                [*here, "name"],
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            )
        seen.add(name)
        if not 1 <= len(opt.get("description", "")) <= 100:
            raise _form_error(
                [*here, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        if otype in (1, 2):
            if otype == 2 and depth > 0 or otype == 1 and depth > 1:
                raise _form_error(
                    [*here, "type"],
                    "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                    "Sub-command groups and sub-commands nest at most two deep",
                )
            _validate_options(opt.get("options") or [], [*here, "options"], depth + 1)
            continue
        if not 3 <= otype <= 11:
            raise _form_error(
                [*here, "type"], "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", f"Invalid option type {otype}"
            )
        if opt.get("required"):
            if optional_seen:
                raise _form_error(
                    [*here, "required"],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        choices = opt.get("choices") or []
        if len(choices) > 25:
            raise _form_error([*here, "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if choices and opt.get("autocomplete"):
            raise _form_error(
                [*here, "autocomplete"],
                "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_CHOICES",
                "Autocomplete cannot be set with choices",
            )


def _validate_message(data: dict[str, Any], *, files: list[dict[str, Any]], edit: bool = False) -> None:
    content = data.get("content")
    if content is not None and len(str(content)) > 2000:
        raise _form_error(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    embeds = data.get("embeds") or []
    if len(embeds) > 10:
        raise _form_error(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for i, e in enumerate(embeds):
        for key, limit in (("title", 256), ("description", 4096)):
            n = len(str(e.get(key) or ""))
            total += n
            if n > limit:
                raise _form_error(
                    ["embeds", i, key], "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
                )
        fields = e.get("fields") or []
        if len(fields) > 25:
            raise _form_error(
                ["embeds", i, "fields"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        for j, f in enumerate(fields):
            if not 1 <= len(str(f.get("name", ""))) <= 256:
                raise _form_error(
                    ["embeds", i, "fields", j, "name"],
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 256 in length.",
                )
            if not 1 <= len(str(f.get("value", ""))) <= 1024:
                raise _form_error(
                    ["embeds", i, "fields", j, "value"],
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 1024 in length.",
                )
            total += len(str(f.get("name", ""))) + len(str(f.get("value", "")))
        footer = (e.get("footer") or {}).get("text") or ""
        author = (e.get("author") or {}).get("name") or ""
        if len(footer) > 2048:
            raise _form_error(
                ["embeds", i, "footer", "text"], "BASE_TYPE_MAX_LENGTH", "Must be 2048 or fewer in length."
            )
        total += len(footer) + len(author)
    if total > 6000:
        raise _form_error(["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    components = data.get("components") or []
    if not int(data.get("flags") or 0) & 32768:
        if len(components) > 5:
            raise _form_error(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        for i, row in enumerate(components):
            inner = row.get("components") or []
            if row.get("type") != 1 or not 1 <= len(inner) <= 5:
                raise _form_error(
                    ["components", i], "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "Action rows hold 1 to 5 components"
                )
            for j, comp in enumerate(inner):
                if len(str(comp.get("label") or "")) > 80:
                    raise _form_error(
                        ["components", i, "components", j, "label"],
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 80 or fewer in length.",
                    )
                if len(str(comp.get("custom_id") or "")) > 100:
                    raise _form_error(
                        ["components", i, "components", j, "custom_id"],
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 100 or fewer in length.",
                    )
                if len(comp.get("options") or []) > 25:
                    raise _form_error(
                        ["components", i, "components", j, "options"],
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 25 or fewer in length.",
                    )
    if not edit and not (
        content or embeds or components or files or data.get("sticker_ids") or data.get("poll")
    ):
        raise _HTTPError(400, 50006, "Cannot send an empty message")
