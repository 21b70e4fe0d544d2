"""A fake of Slack's Socket Mode on 127.0.0.1, beside a FakeSlackAPI.

What Slack does, as slack_sdk's Socket Mode client expects it: `apps.connections.open` (with the
app-level `xapp-` token) answers a WebSocket URL; on connecting the app gets `hello`; each request
(a slash command, an interaction, an event) arrives as an envelope the app must acknowledge with
its `envelope_id` (within 3 s on the real service); `disconnect` with `refresh_requested` asks the
app to open a new connection, as Slack does every few hours.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.slack_fake import FakeSlackAPI

_ENVELOPES = itertools.count(1)


class FakeSocketMode:
    """Register on `fake`, serve the WebSocket; `send` an envelope and get the app's ack back."""

    def __init__(self, fake: FakeSlackAPI, *, app_token_prefix: str = "xapp-") -> None:
        self.fake = fake
        self.prefix = app_token_prefix
        self.connections = 0  # WebSocket connections the app opened, in all
        self.acks: dict[str, dict[str, Any]] = {}
        self._socket: web.WebSocketResponse | None = None
        self._connected = asyncio.Event()
        self._acked: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._runner: web.AppRunner | None = None
        self._port = 0

    async def __aenter__(self) -> FakeSocketMode:
        app = web.Application()
        app.router.add_get("/link/", self._link)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self.fake.add_method("apps.connections.open", self._connections_open)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._socket is not None and not self._socket.closed:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _connections_open(self, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        if not token or not token.startswith(self.prefix):
            return {"ok": False, "error": "not_allowed_token_type"}
        return {"ok": True, "url": f"ws://127.0.0.1:{self._port}/link/?ticket={secrets.token_hex(8)}"}

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.connections += 1
        self._socket = socket
        await socket.send_json({"type": "hello", "num_connections": 1,
                                "connection_info": {"app_id": self.fake.app_id},
                                "debug_info": {"host": "fake", "approximate_connection_time": 18060}})
        self._connected.set()
        async for message in socket:
            if message.type is not WSMsgType.TEXT:
                continue
            body = json.loads(message.data)
            envelope = body.get("envelope_id")
            if envelope:
                self.acks[envelope] = body
                waiter = self._acked.pop(envelope, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(body)
        if self._socket is socket:
            self._socket = None
            self._connected.clear()
        return socket

    async def connected(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a deadline for the wait
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def send(self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0,
                   timeout: float = 3.0) -> dict[str, Any]:  # noqa: ASYNC109 - Slack's own 3 s
        """One envelope (`slash_commands`, `interactive`, `events_api`); the app's acknowledgement."""
        await self.connected()
        assert self._socket is not None
        envelope = f"env-{next(_ENVELOPES)}-{secrets.token_hex(4)}"
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acked[envelope] = waiter
        await self._socket.send_json({
            "envelope_id": envelope, "type": kind, "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt, "retry_reason": "timeout" if retry_attempt else "",
        })
        return await asyncio.wait_for(waiter, timeout)

    def slash_command(self, text: str, *, user_id: str, channel_id: str, command: str = "/gpt",
                      trigger_id: str | None = None) -> dict[str, Any]:
        """The payload of a slash command, as Socket Mode delivers it (the HTTP form's fields)."""
        fake = self.fake
        return {
            "token": "unused-in-socket-mode", "team_id": fake.team_id, "team_domain": fake.team_domain,
            "channel_id": channel_id, "channel_name": channel_id.lower(), "user_id": user_id,
            "user_name": user_id.lower(), "command": command, "text": text, "api_app_id": fake.app_id,
            "is_enterprise_install": "false",
            "response_url": fake.new_response_url(channel_id=channel_id, user_id=user_id),
            "trigger_id": trigger_id or fake.issue_trigger_id(),
        }

    async def refresh(self) -> None:
        """Slack's periodic `disconnect`: the app is expected to connect again."""
        assert self._socket is not None
        socket = self._socket
        await socket.send_json({"type": "disconnect", "reason": "refresh_requested",
                                "debug_info": {"host": "fake"}})
        await socket.close()
