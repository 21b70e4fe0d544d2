"""A fake Slack on 127.0.0.1 that the real slack_sdk / slack-bolt talk to over real HTTP.

Two halves:

* :class:`FakeSlackAPI` -- a fake Slack Web API (``https://slack.com/api/<method>``) served by aiohttp.
  Point the real ``AsyncWebClient(base_url=fake.base_url)`` at it. It records every call
  (:attr:`FakeSlackAPI.calls`), keeps the state a user would see (messages after updates and stream
  appends, App Home views, modals, thread status, reactions) and answers with Slack's response shapes.
  It also serves ``response_url`` endpoints (what Bolt's ``respond()`` posts to), and the files people
  share (``add_file(content=...)``) at ``url_private`` / ``url_private_download``, only to a bot token
  of the file's workspace with ``files:read``: any other request is redirected to the sign-in page
  (HTML, status 200), as Slack does. Downloads are recorded in ``file_downloads``.
* :class:`SlackSender` -- plays Slack's side towards a Bolt app served over HTTP: slash commands
  (form bodies), Events API envelopes (JSON) and interactivity payloads (``payload=<json>`` forms),
  each signed exactly like Slack (``v0=HMAC_SHA256(secret, "v0:{ts}:{body}")``).

:class:`BoltHTTPServer` serves a real ``AsyncApp`` on 127.0.0.1 with bolt's own aiohttp server class
(``AsyncSlackAppServer``), including the OAuth install/redirect routes when the app has OAuth settings.

Wiring::

    async with FakeSlackAPI() as fake:
        app = AsyncApp(signing_secret=SECRET,
                       client=AsyncWebClient(token="xoxb-test", base_url=fake.base_url))
        ...register listeners...
        async with BoltHTTPServer(app) as server, SlackSender(server.url, SECRET, fake=fake) as slack:
            res = await slack.slash_command(command="/gpt", text="search cats", user_id="U1", channel_id="C1")
            assert res.status == 200
            calls = await fake.wait_for("chat.postMessage")

Message ``ts`` values come from one process-wide monotonic clock (``1700000000.000100``,
``1700000000.000200`` ...) shared by the fake and the sender, so user messages and bot replies sort
correctly in threads.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from logging import Logger, getLogger
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

try:  # only needed for the optional in-memory OAuth stores
    from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
    from slack_sdk.oauth.installation_store.models.bot import Bot
    from slack_sdk.oauth.installation_store.models.installation import Installation
    from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
except ImportError:  # pragma: no cover
    AsyncInstallationStore = object  # type: ignore[assignment,misc]
    AsyncOAuthStateStore = object  # type: ignore[assignment,misc]

__all__ = [
    "ApiCall",
    "BoltHTTPServer",
    "FakeSlackAPI",
    "MemoryInstallationStore",
    "MemoryOAuthStateStore",
    "SlackResult",
    "SlackSender",
    "dm_channel_id",
    "next_ts",
    "sign_request",
]


# ---------------------------------------------------------------------------------------------
# shared helpers


class _TsClock:
    """Monotonic Slack-style message timestamps: "1700000000.000100", "1700000000.000200", ..."""

    def __init__(self, start_micros: int = 1_700_000_000_000_100, step: int = 100) -> None:
        self._value = start_micros - step
        self._step = step

    def next(self) -> str:
        self._value += self._step
        return f"{self._value // 1_000_000}.{self._value % 1_000_000:06d}"


_TS_CLOCK = _TsClock()
_IDS = itertools.count(1)


def next_ts() -> str:
    """The next message ts from the process-wide clock shared by FakeSlackAPI and SlackSender."""
    return _TS_CLOCK.next()


def _new_id(prefix: str, width: int = 8) -> str:
    n = next(_IDS)
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return prefix + out.rjust(width, "0")


def dm_channel_id(user_id: str) -> str:
    """The DM ("D...") channel id the fake gives the conversation between the bot and ``user_id``."""
    return "D" + user_id


def sign_request(signing_secret: str, timestamp: int | str, body: bytes | str) -> str:
    """Slack's request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    base = f"v0:{timestamp}:".encode() + raw
    return "v0=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def _rich_text(text: str, mention_user: str | None = None) -> list[dict[str, Any]]:
    elements: list[dict[str, Any]] = []
    if mention_user:
        elements.append({"type": "user", "user_id": mention_user})
    if text:
        elements.append({"type": "text", "text": text})
    return [
        {
            "type": "rich_text",
            "block_id": secrets.token_hex(2),
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]


def _guess_mimetype(name: str) -> str:
    """What Slack reports for a file: its guess from the name (Markdown is plain text to Slack)."""
    import mimetypes

    if name.lower().endswith((".md", ".markdown")):
        return "text/plain"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _channel_type(channel_id: str) -> str:
    if channel_id.startswith("D"):
        return "im"
    if channel_id.startswith("G"):
        return "group"
    return "channel"


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


# ---------------------------------------------------------------------------------------------
# the fake Web API


# arguments that the SDK JSON-encodes when it sends a form body; decoded back to objects in ApiCall.args
_JSON_ARG_KEYS = frozenset(
    {
        "blocks",
        "attachments",
        "view",
        "metadata",
        "chunks",
        "prompts",
        "loading_messages",
        "unfurls",
        "user_auth_blocks",
        "options",
    }
)
_STREAM_METHODS = frozenset({"chat.startStream", "chat.appendStream", "chat.stopStream"})
_NO_AUTH_METHODS = frozenset({"oauth.v2.access", "oauth.access", "api.test"})


@dataclass
class ApiCall:
    """One request the bot made to the fake Web API."""

    method: str  # "chat.postMessage"
    args: dict[str, Any]  # query + form/JSON body merged; JSON-in-form values decoded; no "token"
    token: str | None  # bearer token (Authorization header, or the "token" argument)
    timestamp: float  # time.perf_counter() when the request arrived
    http_method: str = "POST"
    status: int = 200  # HTTP status answered
    response: dict[str, Any] | None = None  # JSON answered

    @property
    def ok(self) -> bool:
        return bool(self.response and self.response.get("ok"))


class _SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class FakeSlackAPI:
    """A fake Slack Web API on 127.0.0.1 (async context manager).

    Knobs tests may set at any time:

    * ``fail[method] = "error_code"`` -- the method answers ``{"ok": false, "error": ...}`` until removed.
    * ``rate_limited[method] = seconds`` -- HTTP 429 + ``Retry-After`` + ``{"ok": false, "error": "ratelimited"}``.
    * ``streaming_supported = False`` -- chat.startStream/appendStream/stopStream answer
      ``streaming_error`` (default ``"unknown_method"``, what Slack says for a method it does not have).
    * ``stream_expiry = seconds`` -- a stream idle longer than this is finalised server-side; further
      appends/stops answer ``message_not_in_streaming_state``.
    * ``latency`` / ``method_latency[method]`` -- seconds to wait before answering.
    * ``invalid_tokens`` -- tokens answered with ``invalid_auth``.
    * ``admins`` / ``owners`` / ``primary_owner`` -- what users.info says about a user.
    * ``trigger_ttl`` -- seconds a trigger_id issued by a linked SlackSender stays valid (Slack: 3 s).
    """

    def __init__(
        self,
        *,
        team_id: str = "T0001",
        team_name: str = "Fake Workspace",
        team_domain: str = "fake-workspace",
        bot_user_id: str = "U0BOT0001",
        bot_id: str = "B0BOT0001",
        bot_name: str = "gptstore",
        app_id: str = "A0001",
        client_id: str | None = None,
        client_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.client_id = client_id  # when set, oauth.v2.access checks the Basic auth credentials
        self.client_secret = client_secret
        self.host = host
        self.port = port
        self.base_url = ""  # "http://127.0.0.1:PORT/api/" once started

        self.calls: list[ApiCall] = []
        self.admins: set[str] = set()
        self.owners: set[str] = set()
        self.primary_owner: str | None = None
        self.users: dict[str, dict[str, Any]] = {}
        self.strict_users = False  # users.info answers user_not_found for users never add_user()-ed
        self.channels: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.file_downloads: list[tuple[str, str | None, int]] = []  # (file id, bearer token, status)
        self._file_content: dict[str, tuple[str, bytes]] = {}  # file id -> (team id, bytes)

        self.streaming_supported = True
        self.streaming_error = "unknown_method"
        self.stream_expiry: float | None = None
        self.fail: dict[str, str] = {}
        self.rate_limited: dict[str, int] = {}
        self.latency = latency
        self.method_latency: dict[str, float] = {}
        self.invalid_tokens: set[str] = set()
        self.trigger_ttl = 3.0

        self.opened_views: list[dict[str, Any]] = []  # the view objects views.open created (as answered)
        self.pushed_views: list[dict[str, Any]] = []
        self.thread_status: dict[tuple[str, str], str] = {}  # (channel_id, thread_ts) -> status
        self.suggested_prompts: dict[tuple[str, str], dict[str, Any]] = {}
        self.thread_titles: dict[tuple[str, str], str] = {}
        self.reactions: dict[tuple[str, str], list[str]] = {}  # (channel, ts) -> reaction names

        self.oauth_scopes = (
            "app_mentions:read,channels:history,chat:write,commands,files:read,im:history,im:read,im:write,users:read"
        )
        self.oauth_installer_user_id = "U0INSTALL1"
        self.token_rotation = False  # oauth.v2.access returns refresh_token/expires_in when True

        self._messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> ts -> message
        self._ephemerals: list[dict[str, Any]] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._home: dict[str, str] = {}  # user -> view id
        self._dm_users: dict[str, str] = {}  # D channel -> user
        self._opened_dms: set[str] = set()
        self._tokens: dict[str, dict[str, Any]] = {}  # token -> identity
        self._refresh_tokens: dict[str, dict[str, Any]] = {}
        self._oauth_codes: dict[str, dict[str, Any]] = {}
        self._used_codes: set[str] = set()
        self._triggers: dict[str, float] = {}
        self._used_triggers: set[str] = set()
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._origin = ""
        self._runner: web.AppRunner | None = None
        self._changed: asyncio.Event | None = None
        self._handlers: dict[str, Callable[[dict[str, Any], str | None], dict[str, Any]]] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "auth.revoke": self._auth_revoke,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "users.info": self._users_info,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "assistant.threads.setStatus": self._assistant_set_status,
            "assistant.threads.setSuggestedPrompts": self._assistant_set_suggested_prompts,
            "assistant.threads.setTitle": self._assistant_set_title,
            "oauth.v2.access": self._oauth_v2_access,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "files.info": self._files_info,
        }

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> FakeSlackAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._changed = asyncio.Event()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{rid}", self._handle_response_url)
        app.router.add_get("/files-pri/{key}/{tail:.*}", self._handle_file)
        app.router.add_get("/", self._signin_page)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=2048)
        await site.start()
        port = self._runner.addresses[0][1]
        self._origin = f"http://{self.host}:{port}"
        self.base_url = f"{self._origin}/api/"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ----------------------------------------------------------------- reading what happened

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        method: str,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait, not one I/O
        predicate: Callable[[ApiCall], bool] | None = None,
    ) -> list[ApiCall]:
        """Wait until at least ``count`` calls to ``method`` (matching ``predicate``) were answered."""

        def found() -> list[ApiCall]:
            return [c for c in self.calls_to(method) if predicate is None or predicate(c)]

        await self.wait_until(lambda: len(found()) >= count, timeout=timeout,
                              what=f"{count} x {method} (got {len(found())})")
        return found()

    async def wait_until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait, not one I/O
        what: str = "a condition",
    ) -> None:
        """Wait until ``condition()`` holds, checked after every Web API call answered."""
        assert self._changed is not None, "FakeSlackAPI not started"
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [c.method for c in self.calls]
                raise AssertionError(f"timed out waiting for {what}; calls so far: {seen}")
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass

    def messages(self, channel: str, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Messages the bot posted in ``channel`` as a user now sees them (after updates, stream appends
        and deletes), oldest first. ``thread_ts=None``: every bot message in the channel (top level and
        thread replies); otherwise only the replies in that thread (and the parent, if the bot posted it).

        Each: ``{"ts", "channel", "thread_ts", "text", "blocks", "attachments", "metadata", "user",
        "bot_id", "streaming", "edited", "chunks"}``.
        """
        channel = self._resolve_channel(channel)
        out = []
        for msg in sorted(self._messages.get(channel, {}).values(), key=lambda m: float(m["ts"])):
            if not msg["_bot"]:
                continue
            if thread_ts is not None and thread_ts not in (msg.get("thread_ts"), msg["ts"]):
                continue
            out.append(self._public_message(msg))
        return out

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """Any message (bot or user) by channel and ts, in the shape :meth:`messages` gives."""
        msg = self._messages.get(self._resolve_channel(channel), {}).get(ts)
        return None if msg is None else self._public_message(msg)

    def ephemerals(self, channel: str | None = None, user_id: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages (chat.postEphemeral and ephemeral response_url replies)."""
        return [
            copy.deepcopy(e)
            for e in self._ephemerals
            if (channel is None or e["channel"] == channel) and (user_id is None or e["user"] == user_id)
        ]

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The App Home view last published for ``user_id`` (as views.publish answered it)."""
        vid = self._home.get(user_id)
        return copy.deepcopy(self._views[vid]) if vid else None

    def view(self, view_id: str) -> dict[str, Any] | None:
        v = self._views.get(view_id)
        return copy.deepcopy(v) if v else None

    # ----------------------------------------------------------------- seeding state

    def add_user(
        self,
        user_id: str,
        name: str,
        locale: str = "en-US",
        tz: str = "America/Los_Angeles",
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        team_id: str | None = None,
    ) -> dict[str, Any]:
        real = real_name or name
        self.users[user_id] = {
            "id": user_id,
            "team_id": team_id or self.team_id,
            "name": name,
            "real_name": real,
            "display_name": display_name if display_name is not None else name,
            "locale": locale,
            "tz": tz,
            "is_bot": is_bot,
            "deleted": deleted,
        }
        return self.users[user_id]

    def add_channel(
        self, channel_id: str, name: str, *, is_private: bool = False, is_archived: bool = False
    ) -> dict[str, Any]:
        self.channels[channel_id] = {
            "id": channel_id,
            "name": name,
            "is_private": is_private,
            "is_archived": is_archived,
        }
        return self.channels[channel_id]

    def add_file(
        self,
        file_id: str,
        name: str,
        *,
        mimetype: str = "text/plain",
        filetype: str = "text",
        size: int = 0,
        user: str | None = None,
        title: str | None = None,
        url_private: str | None = None,
        content: bytes | None = None,
        team_id: str | None = None,
    ) -> dict[str, Any]:
        """A file in the workspace (``team_id``, default this fake's). With ``content`` the fake hosts its
        bytes at its private URLs (and ``size`` is their length); without, the URLs are Slack's."""
        team = team_id or self.team_id
        host = "https://files.slack.com"
        if content is not None:
            self._file_content[file_id] = (team, bytes(content))
            size = len(content)
            host = self._origin
        self.files[file_id] = {
            "id": file_id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": title or name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.capitalize(),
            "user": user or "U0000",
            "user_team": team,
            "editable": False,
            "size": size,
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": url_private or f"{host}/files-pri/{team}-{file_id}/{name}",
            "url_private_download": f"{host}/files-pri/{team}-{file_id}/download/{name}",
            "permalink": f"https://{self.team_domain}.slack.com/files/{user or 'U0000'}/{file_id}/{name}",
            "comments_count": 0,
            "shares": {},
            "channels": [],
            "groups": [],
            "ims": [],
        }
        return self.files[file_id]

    def add_user_message(
        self, channel: str, user: str, text: str, *, ts: str | None = None, thread_ts: str | None = None
    ) -> str:
        """Record a message a person posted (what Slack stores before delivering the event)."""
        ts = ts or next_ts()
        msg: dict[str, Any] = {
            "type": "message",
            "user": user,
            "text": text,
            "ts": ts,
            "team": self.team_id,
            "blocks": _rich_text(text),
            "_bot": False,
            "_channel": channel,
        }
        if thread_ts and thread_ts != ts:
            msg["thread_ts"] = thread_ts
            msg["parent_user_id"] = self._messages.get(channel, {}).get(thread_ts, {}).get("user", user)
        self._store(channel, msg)
        return ts

    def dm_channel(self, user_id: str) -> str:
        ch = dm_channel_id(user_id)
        self._dm_users[ch] = user_id
        return ch

    def add_method(self, method: str, handler: Callable[[dict[str, Any], str | None], dict[str, Any]]) -> None:
        """Answer a Web API method this fake does not know (another fake's, e.g. Socket Mode's)."""
        self._handlers[method] = handler

    def issue_trigger_id(self) -> str:
        tid = f"{next(_IDS)}.{int(time.time())}.{secrets.token_hex(16)}"
        self._triggers[tid] = time.perf_counter()
        return tid

    def issue_oauth_code(
        self, *, team_id: str | None = None, team_name: str | None = None, user_id: str | None = None
    ) -> str:
        """A code for oauth.v2.access that installs into the given team (default: this fake's team)."""
        code = f"{next(_IDS)}.{secrets.token_hex(12)}"
        self._oauth_codes[code] = {"team_id": team_id, "team_name": team_name, "user_id": user_id}
        return code

    def new_response_url(
        self,
        *,
        channel_id: str | None,
        user_id: str,
        message_ts: str | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """A response_url on this fake (what Bolt's respond() posts to); posts are recorded as
        ApiCall(method="response_url") and applied to the messages a user sees."""
        rid = secrets.token_hex(12)
        self._response_urls[rid] = {
            "channel": channel_id,
            "user": user_id,
            "message_ts": message_ts,
            "thread_ts": thread_ts,
        }
        return f"{self._origin}/response/{rid}"

    # ----------------------------------------------------------------- HTTP handling

    async def _read_args(self, request: web.Request) -> tuple[dict[str, Any], str | None]:
        args: dict[str, Any] = dict(request.query)
        ctype = request.content_type
        if request.method == "POST" and request.can_read_body:
            if ctype == "application/json":
                raw = await request.read()
                if raw:
                    body = json.loads(raw)
                    if isinstance(body, dict):
                        args.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    args[key] = value if isinstance(value, str) else getattr(value, "filename", "file")
            else:
                raw_text = await request.text()
                if raw_text:
                    args.update(dict(parse_qsl(raw_text, keep_blank_values=True)))
        for key in _JSON_ARG_KEYS & args.keys():
            value = args[key]
            if isinstance(value, str) and value[:1] in ("[", "{"):
                try:
                    args[key] = json.loads(value)
                except ValueError:
                    pass
        token: str | None = None
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer ") :].strip()
        elif auth.startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
                args.setdefault("client_id", cid)
                args.setdefault("client_secret", secret)
            except ValueError:
                pass
        body_token = args.pop("token", None)
        if token is None and isinstance(body_token, str) and body_token:
            token = body_token
        return args, token

    async def _handle_api(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        method = request.match_info["method"]
        args, token = await self._read_args(request)
        delay = self.method_latency.get(method, self.latency)
        if delay:
            await asyncio.sleep(delay)
        status, body, headers = self._dispatch(method, args, token)
        self.calls.append(ApiCall(method, args, token, arrived, request.method, status=status, response=body))
        self._notify()
        return web.json_response(body, status=status, headers=headers)

    def _dispatch(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if method in self.rate_limited:
            retry = int(self.rate_limited[method])
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry)}
        if method in self.fail:
            return 200, {"ok": False, "error": self.fail[method]}, {}
        handler = self._handlers.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        if method in _STREAM_METHODS and not self.streaming_supported:
            return 200, {"ok": False, "error": self.streaming_error}, {}
        if method not in _NO_AUTH_METHODS:
            if not token:
                return 200, {"ok": False, "error": "not_authed"}, {}
            if token in self.invalid_tokens:
                return 200, {"ok": False, "error": "invalid_auth"}, {}
        try:
            body = handler(args, token)
        except _SlackError as e:
            body = {"ok": False, "error": e.error, **e.extra}
        headers: dict[str, str] = {}
        if method == "auth.test" and body.get("ok"):
            headers["x-oauth-scopes"] = self._identity(token)["scope"]
        return 200, body, headers

    async def _handle_file(self, request: web.Request) -> web.Response:
        """A private file: its bytes for a bot token of its workspace that has ``files:read``; for
        anyone else, a redirect to the workspace's sign-in page (Slack never answers 401 here)."""
        team, _, file_id = request.match_info["key"].partition("-")
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        hosted = self._file_content.get(file_id)
        allowed = (
            hosted is not None
            and hosted[0] == team
            and bool(token)
            and token not in self.invalid_tokens
            and self._identity(token)["team_id"] == team
            and "files:read" in self._identity(token)["scope"].split(",")
        )
        if hosted is None:
            status, response = 404, web.Response(status=404, text="File not found")
        elif not allowed:
            status = 302
            response = web.Response(status=302, headers={"Location": f"{self._origin}/?redir={request.path}"})
        else:
            status = 200
            mimetype = self.files[file_id]["mimetype"]
            headers = {"Content-Type": mimetype}
            if "/download/" in request.path:
                headers["Content-Disposition"] = f'attachment; filename="{self.files[file_id]["name"]}"'
            response = web.Response(status=200, body=hosted[1], headers=headers)
        self.file_downloads.append((file_id, token, status))
        self._notify()
        return response

    async def _signin_page(self, request: web.Request) -> web.Response:
        page = (
            "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head>"
            f"<body><h1>Sign in to {self.team_name}</h1><form action='/signin'></form></body></html>"
        )
        return web.Response(status=200, text=page, content_type="text/html")

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        rid = request.match_info["rid"]
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"text": raw.decode("utf-8", "replace")}
        ctx = self._response_urls.get(rid)
        if ctx is None:
            status, answer = 404, {"ok": False, "error": "no_response_url"}
        else:
            status, answer = 200, {"ok": True}
            self._apply_response(ctx, body)
        self.calls.append(
            ApiCall("response_url", body, None, arrived, "POST", status=status, response=answer)
        )
        self._notify()
        return web.json_response(answer, status=status)

    def _apply_response(self, ctx: dict[str, Any], body: dict[str, Any]) -> None:
        channel = ctx["channel"]
        if channel is None:
            return
        if _truthy(body.get("delete_original")) and ctx["message_ts"]:
            self._messages.get(channel, {}).pop(ctx["message_ts"], None)
            return
        if _truthy(body.get("replace_original")) and ctx["message_ts"]:
            msg = self._messages.get(channel, {}).get(ctx["message_ts"])
            if msg is not None:
                msg["text"] = body.get("text", msg.get("text"))
                if "blocks" in body:
                    msg["blocks"] = body["blocks"]
                msg["edited"] = {"user": self.bot_user_id, "ts": next_ts()}
                return
        thread_ts = body.get("thread_ts") or ctx["thread_ts"]
        if body.get("response_type") == "in_channel":
            msg = self._new_bot_message(channel, body, thread_ts=thread_ts)
            self._store(channel, msg)
        else:
            self._ephemerals.append(
                {
                    "channel": channel,
                    "user": ctx["user"],
                    "text": body.get("text"),
                    "blocks": body.get("blocks"),
                    "thread_ts": thread_ts,
                    "message_ts": next_ts(),
                }
            )

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    # ----------------------------------------------------------------- internals

    def _identity(self, token: str | None) -> dict[str, Any]:
        if token and token in self._tokens:
            return self._tokens[token]
        return {
            "team_id": self.team_id,
            "team": self.team_name,
            "domain": self.team_domain,
            "user_id": self.bot_user_id,
            "user": self.bot_name,
            "bot_id": self.bot_id,
            "scope": self.oauth_scopes,
            "is_bot": not (token or "").startswith("xoxp-"),
        }

    def _resolve_channel(self, channel: str) -> str:
        if channel.startswith("#"):
            for cid, info in self.channels.items():
                if info.get("name") == channel[1:]:
                    return cid
            raise _SlackError("channel_not_found")
        if channel[:1] in ("U", "W"):
            return self.dm_channel(channel)
        return channel

    def _require_channel(self, args: dict[str, Any], key: str = "channel") -> str:
        channel = args.get(key)
        if not channel or not isinstance(channel, str):
            raise _SlackError("channel_not_found")
        channel = self._resolve_channel(channel)
        if channel[:1] not in ("C", "D", "G"):
            raise _SlackError("channel_not_found")
        info = self.channels.get(channel)
        if info and info.get("is_archived"):
            raise _SlackError("is_archived")
        return channel

    def _store(self, channel: str, msg: dict[str, Any]) -> None:
        msg["_channel"] = channel
        self._messages.setdefault(channel, {})[msg["ts"]] = msg
        parent_ts = msg.get("thread_ts")
        if parent_ts and parent_ts != msg["ts"]:
            parent = self._messages[channel].get(parent_ts)
            if parent is not None:
                parent["thread_ts"] = parent_ts
                parent.setdefault("_replies", []).append(msg["ts"])

    def _bot_profile(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "app_id": self.app_id,
            "name": self.bot_name,
            "deleted": False,
            "team_id": self.team_id,
            "icons": {"image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png"},
        }

    def _new_bot_message(
        self, channel: str, args: dict[str, Any], *, thread_ts: str | None, token: str | None = None
    ) -> dict[str, Any]:
        ident = self._identity(token)
        text = args.get("markdown_text") if args.get("markdown_text") is not None else args.get("text")
        msg: dict[str, Any] = {
            "type": "message",
            "user": ident["user_id"],
            "bot_id": ident.get("bot_id") or self.bot_id,
            "app_id": self.app_id,
            "text": text if text is not None else "",
            "ts": next_ts(),
            "team": ident["team_id"],
            "bot_profile": self._bot_profile(),
            "_bot": True,
        }
        for key in ("blocks", "attachments", "metadata"):
            if args.get(key) is not None:
                msg[key] = args[key]
        if thread_ts:
            msg["thread_ts"] = thread_ts
            msg["parent_user_id"] = self._messages.get(channel, {}).get(thread_ts, {}).get("user")
        return msg

    def _api_message(self, msg: dict[str, Any]) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in msg.items() if not k.startswith("_")}
        replies = msg.get("_replies")
        if replies:
            users = [
                self._messages[msg["_channel"]][r]["user"]
                for r in replies
                if r in self._messages[msg["_channel"]]
            ]
            out["reply_count"] = len(users)
            out["reply_users_count"] = len(set(users))
            out["reply_users"] = sorted(set(users))
            out["latest_reply"] = replies[-1]
        return out

    def _public_message(self, msg: dict[str, Any]) -> dict[str, Any]:
        return {
            "ts": msg["ts"],
            "channel": msg["_channel"],
            "thread_ts": msg.get("thread_ts") if msg.get("thread_ts") != msg["ts"] else None,
            "text": msg.get("text"),
            "blocks": copy.deepcopy(msg.get("blocks")),
            "attachments": copy.deepcopy(msg.get("attachments")),
            "metadata": copy.deepcopy(msg.get("metadata")),
            "user": msg.get("user"),
            "bot_id": msg.get("bot_id"),
            "streaming": bool(msg.get("_streaming")),
            "edited": "edited" in msg,
            "chunks": copy.deepcopy(msg.get("_chunks", [])),
        }

    def _find_message(self, channel: str, ts: Any) -> dict[str, Any]:
        msg = self._messages.get(channel, {}).get(str(ts)) if ts else None
        if msg is None:
            raise _SlackError("message_not_found")
        return msg

    # ----------------------------------------------------------------- methods

    def _api_test(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        if args.get("error"):
            return {"ok": False, "error": args["error"], "args": args}
        return {"ok": True, "args": args}

    def _auth_test(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        ident = self._identity(token)
        body: dict[str, Any] = {
            "ok": True,
            "url": f"https://{ident.get('domain', self.team_domain)}.slack.com/",
            "team": ident.get("team", self.team_name),
            "user": ident.get("user", self.bot_name),
            "team_id": ident["team_id"],
            "user_id": ident["user_id"],
            "enterprise_id": None,
            "is_enterprise_install": False,
        }
        if ident.get("is_bot", True) and ident.get("bot_id"):
            body["bot_id"] = ident["bot_id"]
        return body

    def _auth_revoke(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        if token:
            self.invalid_tokens.add(token)
        return {"ok": True, "revoked": True}

    def _chat_post_message(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = self._require_channel(args)
        if not any(args.get(k) for k in ("text", "blocks", "attachments", "markdown_text")):
            raise _SlackError("no_text")
        thread_ts = args.get("thread_ts") or None
        msg = self._new_bot_message(channel, args, thread_ts=thread_ts, token=token)
        self._store(channel, msg)
        return {"ok": True, "channel": channel, "ts": msg["ts"], "message": self._api_message(msg)}

    def _chat_post_ephemeral(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = self._require_channel(args)
        user = args.get("user")
        if not user:
            raise _SlackError("user_not_in_channel")
        if not any(args.get(k) for k in ("text", "blocks", "attachments", "markdown_text")):
            raise _SlackError("no_text")
        ts = next_ts()
        self._ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "text": args.get("text") if args.get("markdown_text") is None else args["markdown_text"],
                "blocks": args.get("blocks"),
                "thread_ts": args.get("thread_ts"),
                "message_ts": ts,
            }
        )
        return {"ok": True, "message_ts": ts}

    def _chat_update(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = self._require_channel(args)
        msg = self._find_message(channel, args.get("ts"))
        if not msg["_bot"]:
            raise _SlackError("cant_update_message")
        if args.get("markdown_text") is not None:
            msg["text"] = args["markdown_text"]
        elif "text" in args:
            msg["text"] = args["text"]
        for key in ("blocks", "attachments", "metadata"):
            if key in args:
                msg[key] = args[key]
        msg["edited"] = {"user": msg["user"], "ts": next_ts()}
        return {
            "ok": True,
            "channel": channel,
            "ts": msg["ts"],
            "text": msg.get("text", ""),
            "message": self._api_message(msg),
        }

    def _chat_delete(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = self._require_channel(args)
        msg = self._find_message(channel, args.get("ts"))
        if not msg["_bot"]:
            raise _SlackError("cant_delete_message")
        del self._messages[channel][msg["ts"]]
        return {"ok": True, "channel": channel, "ts": msg["ts"]}

    def _chat_get_permalink(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = self._require_channel(args)
        msg = self._find_message(channel, args.get("message_ts"))
        link = f"https://{self.team_domain}.slack.com/archives/{channel}/p{msg['ts'].replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": link}

    # streaming (chat.startStream / appendStream / stopStream)

    def _stream_append(self, msg: dict[str, Any], args: dict[str, Any]) -> None:
        if args.get("markdown_text"):
            msg["text"] = (msg.get("text") or "") + args["markdown_text"]
        chunks = args.get("chunks") or []
        if not isinstance(chunks, list):
            raise _SlackError("invalid_chunks")
        for chunk in chunks:
            if not isinstance(chunk, dict) or "type" not in chunk:
                raise _SlackError("invalid_chunks")
            if chunk["type"] == "markdown_text":
                msg["text"] = (msg.get("text") or "") + str(chunk.get("text", ""))
            elif chunk["type"] == "blocks":
                msg.setdefault("blocks", []).extend(chunk.get("blocks") or [])
            else:
                msg.setdefault("_chunks", []).append(copy.deepcopy(chunk))
        msg["_stream_touched"] = time.monotonic()

    def _streaming_message(self, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        channel = self._require_channel(args)
        msg = self._find_message(channel, args.get("ts"))
        if not msg["_bot"]:
            raise _SlackError("message_not_owned_by_app")
        if msg.get("_streaming") and self.stream_expiry is not None:
            if time.monotonic() - msg.get("_stream_touched", 0.0) > self.stream_expiry:
                msg["_streaming"] = False
        if not msg.get("_streaming"):
            raise _SlackError("message_not_in_streaming_state")
        return channel, msg

    def _chat_start_stream(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = self._require_channel(args)
        if not channel.startswith("D") and not (
            args.get("recipient_user_id") and args.get("recipient_team_id")
        ):
            # "Required when streaming to channels" (chat.startStream docs)
            raise _SlackError("invalid_arguments")
        thread_ts = args.get("thread_ts") or None
        msg = self._new_bot_message(channel, {}, thread_ts=thread_ts, token=token)
        msg["_streaming"] = True
        msg["_recipient"] = {
            "user_id": args.get("recipient_user_id"),
            "team_id": args.get("recipient_team_id"),
        }
        self._stream_append(msg, args)
        self._store(channel, msg)
        return {"ok": True, "channel": channel, "ts": msg["ts"]}

    def _chat_append_stream(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel, msg = self._streaming_message(args)
        if not args.get("markdown_text") and not args.get("chunks"):
            raise _SlackError("invalid_arguments")
        self._stream_append(msg, args)
        return {"ok": True, "channel": channel, "ts": msg["ts"]}

    def _chat_stop_stream(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel, msg = self._streaming_message(args)
        self._stream_append(msg, args)
        if args.get("blocks"):
            blocks = args["blocks"]
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            msg.setdefault("blocks", []).extend(blocks)
        if args.get("metadata") is not None:
            msg["metadata"] = args["metadata"]
        msg["_streaming"] = False
        return {"ok": True, "channel": channel, "ts": msg["ts"], "message": self._api_message(msg)}

    # conversations

    def _im_object(self, channel: str) -> dict[str, Any]:
        return {
            "id": channel,
            "created": 1700000000,
            "is_im": True,
            "is_org_shared": False,
            "context_team_id": self.team_id,
            "updated": 1700000000000,
            "user": self._dm_users.get(channel, channel[1:]),
            "is_user_deleted": False,
            "priority": 0,
            "is_open": True,
        }

    def _conversations_open(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        if args.get("channel"):
            channel = self._require_channel(args)
        else:
            users = args.get("users")
            if isinstance(users, list):
                users = ",".join(users)
            user_ids = [u.strip() for u in str(users or "").split(",") if u.strip()]
            if not user_ids:
                raise _SlackError("users_list_not_supplied")
            if len(user_ids) > 1:
                channel = "G" + hashlib.sha1(",".join(sorted(user_ids)).encode()).hexdigest()[:10].upper()
            else:
                channel = self.dm_channel(user_ids[0])
        already = channel in self._opened_dms
        self._opened_dms.add(channel)
        body: dict[str, Any] = {"ok": True}
        if already:
            body["no_op"] = True
            body["already_open"] = True
        if _truthy(args.get("return_im")) and channel.startswith("D"):
            body["channel"] = self._im_object(channel)
        else:
            body["channel"] = {"id": channel}
        return body

    def _conversations_info(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel or channel[:1] not in ("C", "D", "G"):
            raise _SlackError("channel_not_found")
        if channel.startswith("D"):
            return {"ok": True, "channel": self._im_object(channel)}
        info = self.channels.get(channel, {})
        name = info.get("name", channel.lower())
        is_private = info.get("is_private", channel.startswith("G"))
        body = {
            "id": channel,
            "name": name,
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": is_private,
            "created": 1700000000,
            "is_archived": info.get("is_archived", False),
            "is_general": name == "general",
            "unlinked": 0,
            "name_normalized": name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": self.team_id,
            "updated": 1700000000000,
            "parent_conversation": None,
            "creator": "U0000",
            "is_ext_shared": False,
            "shared_team_ids": [self.team_id],
            "pending_connected_team_ids": [],
            "is_member": True,
            "last_read": "0000000000.000000",
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "previous_names": [],
        }
        if _truthy(args.get("include_locale")):
            body["locale"] = "en-US"
        if _truthy(args.get("include_num_members")):
            body["num_members"] = 2
        return {"ok": True, "channel": body}

    @staticmethod
    def _page(items: list[Any], args: dict[str, Any]) -> tuple[list[Any], str]:
        limit = int(args.get("limit") or 1000)
        start = int(args.get("cursor") or 0)
        page = items[start : start + limit]
        nxt = str(start + limit) if start + limit < len(items) else ""
        return page, nxt

    def _conversations_replies(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = self._require_channel(args)
        root = args.get("ts")
        msgs = self._messages.get(channel, {})
        thread = [m for m in msgs.values() if m["ts"] == root or m.get("thread_ts") == root]
        if not thread:
            raise _SlackError("thread_not_found")
        thread.sort(key=lambda m: float(m["ts"]))
        items = [self._api_message(m) for m in thread]
        page, nxt = self._page(items, args)
        return {
            "ok": True,
            "messages": page,
            "has_more": bool(nxt),
            "response_metadata": {"next_cursor": nxt},
        }

    def _conversations_history(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = self._require_channel(args)
        msgs = [
            m
            for m in self._messages.get(channel, {}).values()
            if not m.get("thread_ts") or m.get("thread_ts") == m["ts"]
        ]
        msgs.sort(key=lambda m: float(m["ts"]), reverse=True)
        items = [self._api_message(m) for m in msgs]
        page, nxt = self._page(items, args)
        return {
            "ok": True,
            "messages": page,
            "has_more": bool(nxt),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": nxt},
        }

    # users

    @staticmethod
    def _tz_info(tz: str) -> tuple[str, int]:
        try:
            from zoneinfo import ZoneInfo

            now = datetime.now(UTC).astimezone(ZoneInfo(tz))
            offset = now.utcoffset()
            return now.tzname() or tz, int(offset.total_seconds()) if offset else 0
        except Exception:  # noqa: BLE001 - no tzdata: fall back to UTC
            return "Coordinated Universal Time", 0

    def _users_info(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        uid = args.get("user")
        if not uid:
            raise _SlackError("user_not_found")
        if uid == self.bot_user_id:
            profile = {
                "id": uid,
                "name": self.bot_name,
                "real_name": self.bot_name,
                "display_name": "",
                "locale": "en-US",
                "tz": "America/Los_Angeles",
                "is_bot": True,
                "deleted": False,
                "team_id": self.team_id,
            }
        elif uid in self.users:
            profile = self.users[uid]
        elif self.strict_users or uid[:1] not in ("U", "W"):
            raise _SlackError("user_not_found")
        else:
            profile = {
                "id": uid,
                "name": uid.lower(),
                "real_name": uid.lower(),
                "display_name": uid.lower(),
                "locale": "en-US",
                "tz": "America/Los_Angeles",
                "is_bot": False,
                "deleted": False,
                "team_id": self.team_id,
            }
        tz_label, tz_offset = self._tz_info(profile["tz"])
        is_owner = uid in self.owners or uid == self.primary_owner
        user = {
            "id": uid,
            "team_id": profile["team_id"],
            "name": profile["name"],
            "deleted": profile["deleted"],
            "color": "9f69e7",
            "real_name": profile["real_name"],
            "tz": profile["tz"],
            "tz_label": tz_label,
            "tz_offset": tz_offset,
            "profile": {
                "title": "",
                "phone": "",
                "skype": "",
                "real_name": profile["real_name"],
                "real_name_normalized": profile["real_name"],
                "display_name": profile["display_name"],
                "display_name_normalized": profile["display_name"],
                "fields": None,
                "status_text": "",
                "status_emoji": "",
                "status_expiration": 0,
                "avatar_hash": "ge3b51ca72de",
                "first_name": profile["real_name"].split(" ")[0],
                "last_name": " ".join(profile["real_name"].split(" ")[1:]),
                "image_24": "https://secure.gravatar.com/avatar/x.jpg?s=24",
                "image_48": "https://secure.gravatar.com/avatar/x.jpg?s=48",
                "image_72": "https://secure.gravatar.com/avatar/x.jpg?s=72",
                "team": profile["team_id"],
            },
            "is_admin": uid in self.admins or is_owner,
            "is_owner": is_owner,
            "is_primary_owner": uid == self.primary_owner,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": profile["is_bot"],
            "is_app_user": False,
            "updated": 1700000000,
            "is_email_confirmed": True,
            "who_can_share_contact_card": "EVERYONE",
        }
        if profile["is_bot"]:
            user["profile"]["bot_id"] = self.bot_id
        if _truthy(args.get("include_locale")):
            user["locale"] = profile["locale"]
        return {"ok": True, "user": user}

    # views

    def _check_trigger(self, args: dict[str, Any]) -> None:
        trigger_id = args.get("trigger_id")
        if not trigger_id:
            raise _SlackError("invalid_arguments")
        if trigger_id in self._triggers:
            if trigger_id in self._used_triggers:
                raise _SlackError("trigger_exchanged")
            if time.perf_counter() - self._triggers[trigger_id] > self.trigger_ttl:
                raise _SlackError("expired_trigger_id")
            self._used_triggers.add(trigger_id)

    def _view_arg(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError as e:
                raise _SlackError("invalid_arguments") from e
        if not isinstance(view, dict) or "type" not in view:
            raise _SlackError("invalid_arguments")
        return view

    def _make_view(
        self,
        view: dict[str, Any],
        *,
        view_id: str | None = None,
        root: str | None = None,
        previous: str | None = None,
    ) -> dict[str, Any]:
        vid = view_id or _new_id("V", 10)
        obj = {
            "id": vid,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": copy.deepcopy(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": copy.deepcopy(view.get("title")),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "previous_view_id": previous,
            "root_view_id": root or vid,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self._views[vid] = obj
        return obj

    def _views_open(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        view = self._view_arg(args)
        if view["type"] != "modal":
            raise _SlackError("invalid_arguments")
        self._check_trigger(args)
        obj = self._make_view(view)
        self.opened_views.append(copy.deepcopy(obj))
        return {"ok": True, "view": copy.deepcopy(obj)}

    def _views_push(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        view = self._view_arg(args)
        self._check_trigger(args)
        root = self.opened_views[-1]["id"] if self.opened_views else None
        previous = self.pushed_views[-1]["id"] if self.pushed_views else root
        obj = self._make_view(view, root=root, previous=previous)
        self.pushed_views.append(copy.deepcopy(obj))
        return {"ok": True, "view": copy.deepcopy(obj)}

    def _views_update(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        view = self._view_arg(args)
        vid = args.get("view_id")
        if not vid and args.get("external_id"):
            vid = next(
                (v["id"] for v in self._views.values() if v["external_id"] == args["external_id"]), None
            )
        current = self._views.get(vid) if vid else None
        if current is None:
            raise _SlackError("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise _SlackError("hash_conflict")
        obj = self._make_view(
            view, view_id=current["id"], root=current["root_view_id"], previous=current["previous_view_id"]
        )
        return {"ok": True, "view": copy.deepcopy(obj)}

    def _views_publish(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        view = self._view_arg(args)
        if view["type"] != "home":
            raise _SlackError("invalid_arguments")
        user_id = args.get("user_id")
        if not user_id:
            raise _SlackError("invalid_arguments")
        current = self._views.get(self._home.get(user_id, ""))
        if current is not None and args.get("hash") and args["hash"] != current["hash"]:
            raise _SlackError("hash_conflict")
        obj = self._make_view(view, view_id=current["id"] if current else None)
        self._home[user_id] = obj["id"]
        return {"ok": True, "view": copy.deepcopy(obj)}

    # assistant threads

    @staticmethod
    def _thread_key(args: dict[str, Any]) -> tuple[str, str]:
        channel, thread_ts = args.get("channel_id"), args.get("thread_ts")
        if not channel or not thread_ts:
            raise _SlackError("invalid_arguments")
        return str(channel), str(thread_ts)

    def _assistant_set_status(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        self.thread_status[self._thread_key(args)] = str(args.get("status", ""))
        return {"ok": True}

    def _assistant_set_suggested_prompts(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        prompts = args.get("prompts")
        if not isinstance(prompts, list) or not prompts:
            raise _SlackError("invalid_arguments")
        self.suggested_prompts[self._thread_key(args)] = {"prompts": prompts, "title": args.get("title")}
        return {"ok": True}

    def _assistant_set_title(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        self.thread_titles[self._thread_key(args)] = str(args.get("title", ""))
        return {"ok": True}

    # oauth

    def _oauth_v2_access(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        if self.client_id is not None and args.get("client_id") != self.client_id:
            raise _SlackError("invalid_client_id")
        if self.client_secret is not None and args.get("client_secret") != self.client_secret:
            raise _SlackError("bad_client_secret")
        if args.get("grant_type") == "refresh_token":
            ident = self._refresh_tokens.pop(str(args.get("refresh_token")), None)
            if ident is None:
                raise _SlackError("invalid_refresh_token")
            return self._issue_tokens(ident["team_id"], ident["team"], ident.get("installer"), refresh=True)
        code = args.get("code")
        if not code or code in self._used_codes:
            raise _SlackError("invalid_code")
        self._used_codes.add(code)
        spec = self._oauth_codes.pop(code, {})
        team_id = spec.get("team_id") or self.team_id
        team_name = spec.get("team_name") or (
            self.team_name if team_id == self.team_id else f"Workspace {team_id}"
        )
        return self._issue_tokens(team_id, team_name, spec.get("user_id") or self.oauth_installer_user_id)

    def _issue_tokens(
        self, team_id: str, team_name: str, installer: str | None, *, refresh: bool = False
    ) -> dict[str, Any]:
        bot_token = f"xoxb-{next(_IDS)}-{secrets.token_hex(6)}-{secrets.token_urlsafe(18)}"
        ident = {
            "team_id": team_id,
            "team": team_name,
            "domain": team_name.lower().replace(" ", "-"),
            "user_id": self.bot_user_id,
            "user": self.bot_name,
            "bot_id": self.bot_id,
            "scope": self.oauth_scopes,
            "is_bot": True,
            "installer": installer,
        }
        self._tokens[bot_token] = ident
        body: dict[str, Any] = {
            "ok": True,
            "app_id": self.app_id,
            "access_token": bot_token,
            "token_type": "bot",
            "scope": self.oauth_scopes,
            "bot_user_id": self.bot_user_id,
            "team": {"id": team_id, "name": team_name},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if not refresh:
            body["authed_user"] = {"id": installer}
        if self.token_rotation:
            refresh_token = f"xoxe-1-{secrets.token_urlsafe(24)}"
            self._refresh_tokens[refresh_token] = ident
            body["refresh_token"] = refresh_token
            body["expires_in"] = 43200
        return body

    # reactions / files

    def _reactions_add(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = self._require_channel(args)
        name, ts = args.get("name"), args.get("timestamp")
        if not name:
            raise _SlackError("invalid_name")
        if not ts:
            raise _SlackError("no_item_specified")
        names = self.reactions.setdefault((channel, str(ts)), [])
        if name in names:
            raise _SlackError("already_reacted")
        names.append(str(name))
        return {"ok": True}

    def _reactions_remove(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = self._require_channel(args)
        names = self.reactions.get((channel, str(args.get("timestamp"))), [])
        if args.get("name") not in names:
            raise _SlackError("no_reaction")
        names.remove(args["name"])
        return {"ok": True}

    def _files_info(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        f = self.files.get(str(args.get("file")))
        if f is None:
            raise _SlackError("file_not_found")
        return {
            "ok": True,
            "file": copy.deepcopy(f),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }


# ---------------------------------------------------------------------------------------------
# Slack -> app: signed requests


@dataclass
class SlackResult:
    """What the app answered to one request the sender made."""

    status: int
    text: str
    headers: CIMultiDict[str]
    elapsed: float  # seconds from sending the request to having read the whole response
    payload: Any = None  # what was sent: the form fields, the envelope or the interactivity payload
    sent: float = 0.0  # when it was sent, `time.perf_counter()` (the same clock in every process)

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None

    @property
    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        for raw in self.headers.getall("Set-Cookie", []):
            jar.load(raw)
        return {name: morsel.value for name, morsel in jar.items()}


@dataclass
class _Defaults:
    team_id: str
    team_domain: str
    api_app_id: str
    bot_user_id: str
    verification_token: str = "fake-verification-token"
    enterprise_id: str | None = None


class SlackSender:
    """Sends correctly signed Slack requests to a Bolt app served over HTTP (async context manager).

    ``url`` is the app's events endpoint (``http://127.0.0.1:PORT/slack/events``). When ``fake`` is
    given, payloads are tied to it: trigger_ids are issued by the fake (so views.open can expire them),
    response_urls point at it, message events are recorded as user messages (so conversations.replies
    sees them), and block_action includes the real bot message being clicked.
    One shared aiohttp session; ``max_connections=0`` means unlimited (200 concurrent requests are fine).
    """

    def __init__(
        self,
        url: str,
        signing_secret: str,
        *,
        team_id: str = "T0001",
        api_app_id: str = "A0001",
        team_domain: str = "fake-workspace",
        bot_user_id: str | None = None,
        fake: FakeSlackAPI | None = None,
        max_connections: int = 0,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self.fake = fake
        self.defaults = _Defaults(
            team_id=team_id,
            team_domain=team_domain,
            api_app_id=api_app_id,
            bot_user_id=bot_user_id or (fake.bot_user_id if fake else "U0BOT0001"),
        )
        parts = urlsplit(url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._max_connections = max_connections
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def team_id(self) -> str:
        return self.defaults.team_id

    @property
    def bot_user_id(self) -> str:
        return self.defaults.bot_user_id

    async def __aenter__(self) -> SlackSender:
        self._get_session()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        return self._session

    # ----------------------------------------------------------------- signing / sending

    def sign(self, body: bytes | str, timestamp: int | str) -> str:
        return sign_request(self.signing_secret, timestamp, body)

    async def raw(
        self,
        body: bytes | str,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
        payload: Any = None,
    ) -> SlackResult:
        """POST ``body`` to the app, signed for ``timestamp`` (default now) unless ``signature`` is given."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        ts = int(time.time()) if timestamp is None else int(timestamp)
        hdrs = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature if signature is not None else self.sign(data, ts),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "Accept": "application/json,*/*",
        }
        hdrs.update(headers or {})
        return await self.post(data, hdrs, payload)

    async def post(self, data: bytes, headers: dict[str, str], payload: Any = None) -> SlackResult:
        """The signed request on the wire (a load benchmark sends it from a process of its own)."""
        session = self._get_session()
        started = time.perf_counter()
        async with session.post(self.url, data=data, headers=headers) as resp:
            text = await resp.text()
            elapsed = time.perf_counter() - started
            return SlackResult(resp.status, text, CIMultiDict(resp.headers), elapsed, payload, started)

    async def _form(
        self, fields: dict[str, Any], headers: dict[str, str] | None, payload: Any
    ) -> SlackResult:
        body = urlencode({k: v for k, v in fields.items() if v is not None})
        return await self.raw(body, "application/x-www-form-urlencoded", headers=headers, payload=payload)

    async def _interactive(self, payload: dict[str, Any], headers: dict[str, str] | None) -> SlackResult:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.raw(body, "application/x-www-form-urlencoded", headers=headers, payload=payload)

    async def get(
        self,
        url_or_path: str,
        *,
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
    ) -> SlackResult:
        """A plain browser-like GET (OAuth install pages); no redirects followed."""
        url = url_or_path if "://" in url_or_path else self.origin + url_or_path
        hdrs = dict(headers or {})
        if cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        session = self._get_session()
        started = time.perf_counter()
        async with session.get(url, headers=hdrs, allow_redirects=False) as resp:
            text = await resp.text()
            return SlackResult(resp.status, text, CIMultiDict(resp.headers), time.perf_counter() - started)

    async def oauth_install(
        self,
        *,
        code: str | None = None,
        install_path: str = "/slack/install",
        redirect_path: str = "/slack/oauth_redirect",
        cookie_name: str = "slack-app-oauth-state",
        team_id: str | None = None,
        user_id: str | None = None,
    ) -> tuple[SlackResult, SlackResult]:
        """Walk a browser through the install: GET install_path (sets the state cookie), then GET
        redirect_path?code=...&state=... with that cookie, as Slack's redirect would."""
        install = await self.get(install_path)
        state = install.cookies.get(cookie_name, "")
        if code is None:
            code = (
                self.fake.issue_oauth_code(team_id=team_id, user_id=user_id)
                if self.fake
                else secrets.token_hex(8)
            )
        query = urlencode({"code": code, "state": state})
        redirect = await self.get(f"{redirect_path}?{query}", cookies={cookie_name: state} if state else None)
        return install, redirect

    # ----------------------------------------------------------------- slash commands

    async def slash_command(
        self,
        *,
        command: str,
        text: str,
        user_id: str,
        channel_id: str,
        user_name: str = "",
        trigger_id: str | None = None,
        headers: dict[str, str] | None = None,
        channel_name: str | None = None,
        team_id: str | None = None,
        response_url: str | None = None,
    ) -> SlackResult:
        d = self.defaults
        team = team_id or d.team_id
        if response_url is None:
            response_url = (
                self.fake.new_response_url(channel_id=channel_id, user_id=user_id)
                if self.fake
                else f"https://hooks.slack.com/commands/{team}/{next(_IDS)}/{secrets.token_hex(12)}"
            )
        fields = {
            "token": d.verification_token,
            "team_id": team,
            "team_domain": d.team_domain,
            "enterprise_id": d.enterprise_id,
            "channel_id": channel_id,
            "channel_name": channel_name
            or ("directmessage" if channel_id.startswith("D") else channel_id.lower()),
            "user_id": user_id,
            "user_name": user_name or user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": d.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or self._trigger_id(),
        }
        return await self._form(fields, headers, fields)

    def _trigger_id(self) -> str:
        if self.fake:
            return self.fake.issue_trigger_id()
        return f"{next(_IDS)}.{int(time.time())}.{secrets.token_hex(16)}"

    # ----------------------------------------------------------------- Events API

    def envelope(
        self, event: dict[str, Any], *, event_id: str | None = None, team_id: str | None = None
    ) -> dict[str, Any]:
        d = self.defaults
        team = team_id or d.team_id
        eid = event_id or _new_id("Ev", 10)
        ctx = base64.b64encode(json.dumps({"ev": eid}).encode()).decode()
        return {
            "token": d.verification_token,
            "team_id": team,
            "context_team_id": team,
            "context_enterprise_id": d.enterprise_id,
            "api_app_id": d.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": eid,
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": d.enterprise_id,
                    "team_id": team,
                    "user_id": d.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{ctx}",
        }

    async def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        team_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SlackResult:
        """Deliver one Events API ``event_callback``. With ``retry_num``, adds X-Slack-Retry-Num and
        X-Slack-Retry-Reason (default "http_timeout") like Slack's redeliveries."""
        envelope = self.envelope(event, event_id=event_id, team_id=team_id)
        hdrs = dict(headers or {})
        if retry_num is not None:
            hdrs["X-Slack-Retry-Num"] = str(retry_num)
            hdrs["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        return await self.raw(json.dumps(envelope), "application/json", headers=hdrs, payload=envelope)

    async def url_verification(
        self, challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAY"
    ) -> SlackResult:
        body = {"token": self.defaults.verification_token, "challenge": challenge, "type": "url_verification"}
        return await self.raw(json.dumps(body), "application/json", payload=body)

    # event builders (return the inner "event" object; pass it to event())

    def _record_user_message(
        self, channel: str, user: str, text: str, ts: str, thread_ts: str | None
    ) -> None:
        if self.fake is not None:
            self.fake.add_user_message(channel, user, text, ts=ts, thread_ts=thread_ts)

    def _dm(self, user_id: str) -> str:
        return self.fake.dm_channel(user_id) if self.fake else dm_channel_id(user_id)

    def _message_event(
        self,
        *,
        event_type: str,
        user_id: str,
        channel_id: str,
        text: str,
        ts: str | None,
        thread_ts: str | None,
        blocks: list[dict[str, Any]],
        channel_type: str | None,
    ) -> dict[str, Any]:
        ts = ts or next_ts()
        event: dict[str, Any] = {
            "type": event_type,
            "user": user_id,
            "client_msg_id": secrets.token_hex(16),
            "text": text,
            "ts": ts,
            "team": self.defaults.team_id,
            "blocks": blocks,
            "channel": channel_id,
            "event_ts": ts,
        }
        if event_type == "message":
            event["channel_type"] = channel_type or _channel_type(channel_id)
        if thread_ts:
            event["thread_ts"] = thread_ts
            parent = self.fake.message(channel_id, thread_ts) if self.fake else None
            event["parent_user_id"] = parent["user"] if parent else user_id
        self._record_user_message(channel_id, user_id, text, ts, thread_ts)
        return event

    def app_mention(
        self,
        *,
        user_id: str,
        channel_id: str,
        text: str,
        thread_ts: str | None = None,
        ts: str | None = None,
        mention: bool = True,
    ) -> dict[str, Any]:
        """An ``app_mention`` event; the text gets a leading ``<@BOT>`` unless ``mention=False``."""
        tag = f"<@{self.defaults.bot_user_id}>"
        full = text if (not mention or tag in text) else f"{tag} {text}"
        blocks = _rich_text(
            " " + text if mention and tag not in text else text,
            mention_user=self.defaults.bot_user_id if mention else None,
        )
        return self._message_event(
            event_type="app_mention",
            user_id=user_id,
            channel_id=channel_id,
            text=full,
            ts=ts,
            thread_ts=thread_ts,
            blocks=blocks,
            channel_type=None,
        )

    def message_im(
        self,
        *,
        user_id: str,
        text: str,
        channel_id: str | None = None,
        ts: str | None = None,
        thread_ts: str | None = None,
    ) -> dict[str, Any]:
        """A ``message`` event (channel_type "im") in the DM between ``user_id`` and the bot."""
        return self._message_event(
            event_type="message",
            user_id=user_id,
            channel_id=channel_id or self._dm(user_id),
            text=text,
            ts=ts,
            thread_ts=thread_ts,
            blocks=_rich_text(text),
            channel_type="im",
        )

    def file_share(
        self,
        *,
        user_id: str,
        files: Mapping[str, bytes],
        text: str = "",
        channel_id: str | None = None,
        thread_ts: str | None = None,
        mimetypes: Mapping[str, str] | None = None,
        subtype: str | None = "file_share",
        trimmed: bool = False,
    ) -> dict[str, Any]:
        """A ``message`` event in which ``user_id`` shares files (name -> bytes; the linked fake hosts
        them), by default in their DM with the bot. Slack's shape: ``subtype: file_share``, ``upload``,
        ``files`` with the full file objects (``trimmed``: the ``check_file_info`` stubs Slack sends
        for some shares, which need ``files.info``). ``subtype=None``: newer clients' uploads."""
        if self.fake is None:
            raise RuntimeError("file_share needs a linked FakeSlackAPI to host the files")
        channel = channel_id or self._dm(user_id)
        objects = []
        for name, data in files.items():
            fid = _new_id("F", 10)
            mimetype = (mimetypes or {}).get(name) or _guess_mimetype(name)
            filetype = name.rsplit(".", 1)[-1].lower() if "." in name else "binary"
            entry = self.fake.add_file(fid, name, mimetype=mimetype, filetype=filetype, user=user_id,
                                       content=data, team_id=self.defaults.team_id)
            entry["ims" if channel.startswith("D") else "channels"].append(channel)
            stub = {"id": fid, "mode": "file_access", "file_access": "check_file_info", "created": 0, "user": user_id}
            objects.append(stub if trimmed else copy.deepcopy(entry))
        event = self._message_event(
            event_type="message",
            user_id=user_id,
            channel_id=channel,
            text=text,
            ts=None,
            thread_ts=thread_ts,
            blocks=_rich_text(text) if text else [],
            channel_type=None,
        )
        if subtype is not None:
            event["subtype"] = subtype
        event.update({"files": objects, "upload": False, "display_as_bot": False})
        return event

    def message_in_thread(
        self,
        *,
        user_id: str,
        channel_id: str,
        thread_ts: str,
        text: str,
        ts: str | None = None,
        channel_type: str | None = None,
    ) -> dict[str, Any]:
        """A ``message`` event replying in a thread (``thread_ts`` + ``parent_user_id``)."""
        return self._message_event(
            event_type="message",
            user_id=user_id,
            channel_id=channel_id,
            text=text,
            ts=ts,
            thread_ts=thread_ts,
            blocks=_rich_text(text),
            channel_type=channel_type,
        )

    def app_home_opened(
        self,
        *,
        user_id: str,
        tab: str = "home",
        channel_id: str | None = None,
        view: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": channel_id or self._dm(user_id),
            "tab": tab,
            "event_ts": next_ts(),
        }
        if view is None and self.fake is not None and tab == "home":
            view = self.fake.home_view(user_id)
        if view is not None:
            event["view"] = view
        return event

    def assistant_thread_started(
        self,
        *,
        user_id: str,
        channel_id: str | None = None,
        thread_ts: str | None = None,
        context_channel_id: str | None = None,
    ) -> dict[str, Any]:
        context: dict[str, Any] = {}
        if context_channel_id:
            context = {
                "channel_id": context_channel_id,
                "team_id": self.defaults.team_id,
                "enterprise_id": None,
            }
        return {
            "type": "assistant_thread_started",
            "assistant_thread": {
                "user_id": user_id,
                "context": context,
                "channel_id": channel_id or self._dm(user_id),
                "thread_ts": thread_ts or next_ts(),
            },
            "event_ts": next_ts(),
        }

    def assistant_user_message(
        self, *, user_id: str, channel_id: str, thread_ts: str, text: str, ts: str | None = None
    ) -> dict[str, Any]:
        """A user's message in an assistant (AI app) thread: an im ``message`` with ``thread_ts``."""
        return self._message_event(
            event_type="message",
            user_id=user_id,
            channel_id=channel_id,
            text=text,
            ts=ts,
            thread_ts=thread_ts,
            blocks=_rich_text(text),
            channel_type="im",
        )

    # ----------------------------------------------------------------- interactivity

    def _user(self, user_id: str) -> dict[str, Any]:
        return {
            "id": user_id,
            "username": user_id.lower(),
            "name": user_id.lower(),
            "team_id": self.defaults.team_id,
        }

    def _team(self) -> dict[str, Any]:
        return {"id": self.defaults.team_id, "domain": self.defaults.team_domain}

    async def block_action(
        self,
        *,
        action_id: str,
        value: str,
        user_id: str,
        channel_id: str | None,
        message_ts: str | None,
        view: dict[str, Any] | None = None,
        trigger_id: str | None = None,
        block_id: str | None = None,
        action_type: str = "button",
        action: dict[str, Any] | None = None,
        state_values: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> SlackResult:
        """A ``block_actions`` payload: a button (or ``action``) pressed on a message or in a view."""
        d = self.defaults
        act = action or {
            "action_id": action_id,
            "block_id": block_id or secrets.token_hex(3),
            "text": {"type": "plain_text", "text": value, "emoji": True},
            "value": value,
            "type": action_type,
        }
        act.setdefault("action_ts", next_ts())
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": d.api_app_id,
            "token": d.verification_token,
            "trigger_id": trigger_id or self._trigger_id(),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
            "state": {"values": state_values or {}},
            "actions": [act],
        }
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view.get("id")}
            payload["view"] = view
        elif message_ts is not None and channel_id is not None:
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": False,
            }
            message = None
            if self.fake is not None:
                stored = self.fake._messages.get(channel_id, {}).get(message_ts)
                message = self.fake._api_message(stored) if stored else None
            payload["message"] = message or {"type": "message", "ts": message_ts, "text": ""}
        if channel_id is not None:
            payload["channel"] = {"id": channel_id, "name": channel_id.lower()}
            payload["response_url"] = (
                self.fake.new_response_url(channel_id=channel_id, user_id=user_id, message_ts=message_ts)
                if self.fake
                else f"https://hooks.slack.com/actions/{d.team_id}/{next(_IDS)}/{secrets.token_hex(12)}"
            )
        return await self._interactive(payload, headers)

    async def view_submission(
        self,
        *,
        callback_id: str,
        private_metadata: str,
        values: dict[str, Any],
        user_id: str,
        view_id: str | None = None,
        trigger_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SlackResult:
        """A ``view_submission``. ``values`` is Slack's ``view.state.values``
        (``{block_id: {action_id: {"type": ..., "value": ...}}}``); a plain string leaf is taken as a
        ``plain_text_input`` value. With a linked fake, the last view opened with ``callback_id``
        supplies id/blocks/title."""
        d = self.defaults
        state: dict[str, Any] = {}
        for block, actions in values.items():
            state[block] = {
                a: ({"type": "plain_text_input", "value": v} if isinstance(v, str) or v is None else v)
                for a, v in actions.items()
            }
        base: dict[str, Any] | None = None
        if self.fake is not None:
            candidates = [
                v
                for v in self.fake._views.values()
                if (view_id and v["id"] == view_id) or (not view_id and v["callback_id"] == callback_id)
            ]
            base = copy.deepcopy(candidates[-1]) if candidates else None
        vid = view_id or (base["id"] if base else _new_id("V", 10))
        view = base or {
            "id": vid,
            "team_id": d.team_id,
            "type": "modal",
            "blocks": [],
            "title": {"type": "plain_text", "text": "GPT Store", "emoji": True},
            "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "previous_view_id": None,
            "root_view_id": vid,
            "app_id": d.api_app_id,
            "external_id": "",
            "app_installed_team_id": d.team_id,
            "bot_id": self.fake.bot_id if self.fake else "B0BOT0001",
            "clear_on_close": False,
            "notify_on_close": False,
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        }
        view["callback_id"] = callback_id
        view["private_metadata"] = private_metadata
        view["state"] = {"values": state}
        payload = {
            "type": "view_submission",
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": d.api_app_id,
            "token": d.verification_token,
            "trigger_id": trigger_id or self._trigger_id(),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return await self._interactive(payload, headers)

    async def view_closed(
        self,
        *,
        callback_id: str,
        user_id: str,
        private_metadata: str = "",
        view_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SlackResult:
        d = self.defaults
        vid = view_id or _new_id("V", 10)
        payload = {
            "type": "view_closed",
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": d.api_app_id,
            "token": d.verification_token,
            "view": {
                "id": vid,
                "type": "modal",
                "callback_id": callback_id,
                "private_metadata": private_metadata,
                "state": {"values": {}},
                "app_id": d.api_app_id,
                "team_id": d.team_id,
            },
            "is_cleared": False,
            "is_enterprise_install": False,
        }
        return await self._interactive(payload, headers)


# ---------------------------------------------------------------------------------------------
# serving a Bolt AsyncApp over HTTP


class BoltHTTPServer:
    """Serves a real slack-bolt ``AsyncApp`` on 127.0.0.1 with bolt's ``AsyncSlackAppServer`` routes
    (POST ``path``; GET install/redirect paths when the app has OAuth settings)."""

    def __init__(
        self,
        app: Any,
        *,
        path: str = "/slack/events",
        host: str = "127.0.0.1",
        port: int = 0,
        backlog: int = 2048,
    ) -> None:
        self.app = app
        self.path = path
        self.host = host
        self.port = port
        self.backlog = backlog
        self.base_url = ""
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> BoltHTTPServer:
        from slack_bolt.app.async_server import AsyncSlackAppServer

        server = AsyncSlackAppServer(port=self.port, path=self.path, app=self.app, host=self.host)
        self._runner = web.AppRunner(server.web_app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=self.backlog)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://{self.host}:{port}"
        self.url = self.base_url + self.path
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def install_url(self) -> str:
        flow = self.app.oauth_flow
        return self.base_url + (flow.install_path if flow else "/slack/install")

    @property
    def redirect_url(self) -> str:
        flow = self.app.oauth_flow
        return self.base_url + (flow.redirect_uri_path if flow else "/slack/oauth_redirect")


# ---------------------------------------------------------------------------------------------
# in-memory OAuth stores for tests (slack_sdk ships file/SQL ones only)


class MemoryInstallationStore(AsyncInstallationStore):  # type: ignore[misc]
    def __init__(self) -> None:
        self.installations: list[Installation] = []
        self.bots: list[Bot] = []
        self._logger = getLogger(__name__)

    @property
    def logger(self) -> Logger:
        return self._logger

    async def async_save(self, installation: Installation) -> None:
        self.installations.append(installation)
        await self.async_save_bot(installation.to_bot())

    async def async_save_bot(self, bot: Bot) -> None:
        self.bots.append(bot)

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        for bot in reversed(self.bots):
            if bot.enterprise_id == enterprise_id and (is_enterprise_install or bot.team_id == team_id):
                return bot
        return None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        for inst in reversed(self.installations):
            if inst.enterprise_id != enterprise_id or (not is_enterprise_install and inst.team_id != team_id):
                continue
            if user_id is None or inst.user_id == user_id:
                return inst
        return None

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        self.bots = [b for b in self.bots if not (b.enterprise_id == enterprise_id and b.team_id == team_id)]

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        self.installations = [
            i
            for i in self.installations
            if not (
                i.enterprise_id == enterprise_id
                and i.team_id == team_id
                and (user_id is None or i.user_id == user_id)
            )
        ]


class MemoryOAuthStateStore(AsyncOAuthStateStore):  # type: ignore[misc]
    def __init__(self, expiration_seconds: int = 600) -> None:
        self.expiration_seconds = expiration_seconds
        self._states: dict[str, float] = {}
        self._logger = getLogger(__name__)

    @property
    def logger(self) -> Logger:
        return self._logger

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(24)
        self._states[state] = time.time()
        return state

    async def async_consume(self, state: str) -> bool:
        created = self._states.pop(state, None)
        return created is not None and time.time() - created <= self.expiration_seconds
