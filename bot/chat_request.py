"""The streamed chat-completion request, sent over one aiohttp session of our own.

Why not through `openai.AsyncOpenAI` like every other model call: this is the one request on the
path of every answer, and the client's request machinery (a pydantic options object, a recursive
TypedDict transform of the parameters, two URL parses, an idempotency uuid, httpx2's request and
response objects over its aiohttp transport) cost more CPU than everything else the gateway does
(`python -m bench --only overhead` under py-spy: 36 % of an ask, ~0.5 ms; bench/README). The
request itself is one JSON POST, so it is written here with the client's own URL and headers
(its base URL and API key, including `OPENAI_BASE_URL` / `OPENAI_API_KEY`, its User-Agent,
organization and project), and every failure is raised as the `openai` exception the client would
have raised, so the gateway classifies and retries it exactly as before (bot/llm.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import openai

try:  # the HTTP library under openai's client: httpx2 since openai 3, httpx before
    import httpx2 as _http
except ImportError:  # pragma: no cover
    import httpx as _http  # type: ignore[no-redef]

__all__ = ["ChatRequest"]


class ChatRequest:
    """POST /chat/completions with `stream: true`; the body's bytes as they arrive."""

    def __init__(self, client: openai.AsyncOpenAI, *, timeout: float) -> None:
        self.url = str(client.base_url).rstrip("/") + "/chat/completions"
        headers = {name: value for name, value in client.default_headers.items() if isinstance(value, str)}
        headers["Accept"] = "text/event-stream"
        if client.api_key:
            headers["Authorization"] = f"Bearer {client.api_key}"
        self._headers = headers
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @asynccontextmanager
    async def stream(self, body: Mapping[str, Any]) -> AsyncIterator[AsyncIterator[bytes]]:
        """The response body, once the server has answered 200; an `openai` error otherwise.
        `timeout` bounds connecting and the wait for the response to start, not the body."""
        session = self._session_now()
        data = json.dumps(body, ensure_ascii=False).encode()
        try:
            async with asyncio.timeout(self._timeout):
                response = await session.post(self.url, data=data, headers=self._headers)
        except TimeoutError as error:
            raise openai.APITimeoutError(request=self.request()) from error
        except (aiohttp.ClientError, OSError) as error:
            raise openai.APIConnectionError(request=self.request()) from error
        try:
            if response.status >= 400:
                raise await self._status_error(response)
            yield self._body(response)
        finally:
            response.release()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _session_now(self) -> aiohttp.ClientSession:
        """Made on first use, inside the running loop (a session belongs to one loop)."""
        if self._session is None or self._session.closed:
            # No pool limit: a thousand answers at once are a thousand streams (openai's own
            # aiohttp client sets none either); keep-alive reuses them for the next answers.
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def _body(self, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        try:
            async for block in response.content.iter_any():
                yield block
        except (aiohttp.ClientError, OSError) as error:  # cut mid-body: the gateway says BROKEN_STREAM
            raise openai.APIConnectionError(request=self.request()) from error

    async def _status_error(self, response: aiohttp.ClientResponse) -> openai.APIStatusError:
        """The error openai's client raises for this status: the body's `error` object and the
        response's headers (Retry-After), which is what the gateway reads from it."""
        try:
            async with asyncio.timeout(self._timeout):
                raw = await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError):
            raw = b""
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        body = parsed.get("error", parsed) if isinstance(parsed, dict) else (parsed or raw.decode("utf-8", "replace"))
        http_response = _http.Response(
            response.status, headers=list(response.headers.items()), content=raw, request=self.request()
        )
        return openai.APIStatusError(f"Error code: {response.status} - {body}", response=http_response, body=body)

    def request(self) -> _http.Request:
        """What openai's exceptions carry as the failed request."""
        return _http.Request("POST", self.url)
