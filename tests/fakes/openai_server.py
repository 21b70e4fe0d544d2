"""An OpenAI-compatible fake server on 127.0.0.1, for tests and benchmarks.

Why a real HTTP server rather than mocking the `openai` client: the gateway's retries, stall
detection and error mapping depend on what the real client does with real bytes on a real socket
(SSE parsing, status codes, Retry-After headers, connections that hang or drop). Mocks would test
our assumptions about the client, not the client.

The server speaks the subset of the API the bot uses (`/v1/models`, `/v1/chat/completions` with and
without streaming, `/v1/moderations`), records every request body so tests can assert on what was
sent, and lets a test queue faults (HTTP errors, stalls, malformed chunks, dropped connections)
that the next chat requests consume in FIFO order.

It is also a load target (1 000 concurrent streams on a small machine): per-request work is a few
string operations, and waits are `asyncio.sleep`, never busy loops.

    async with FakeOpenAI(latency=0.05, token_rate=200) as fake:
        gateway = LLMGateway(base_url=fake.base_url, ...)

Standalone: `python -m tests.fakes.openai_server --port 8001 --latency 0.2`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

__all__ = ["FakeOpenAI", "default_responder", "main"]

Responder = Callable[[list[dict[str, Any]], str], str]

DRAFT_MARKER = "[[draft]]"

MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
FLAGGED_CATEGORIES = frozenset({"harassment", "violence"})

_TOKEN_RE = re.compile(r"\S+\s*|\s+")
_WORD_RE = re.compile(r"[\w']+")


def _text(content: object) -> str:
    """The text of a message's content: a string, or the text parts of a multi-part content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def split_tokens(text: str) -> list[str]:
    """The fake's "tokens": a word plus the whitespace after it, so that `"".join(...) == text`."""
    return _TOKEN_RE.findall(text)


def count_prompt_tokens(messages: Iterable[dict[str, Any]]) -> int:
    """Whitespace-separated words over all message contents: crude, but deterministic."""
    return sum(len(_text(m.get("content")).split()) for m in messages)


def _draft(message: str) -> str:
    """A GPT draft (as the DM builder asks for) derived deterministically from the user's text."""
    words = [w[:1].upper() + w[1:].lower() for w in message.split()[:3]]
    name = " ".join(words)[:40].strip()
    if len(name) < 3:
        name = f"{name} GPT".strip()
    draft = {
        "name": name,
        "description": message[:300],
        "instructions": f"You are {name}. {message}",
        "starters": [f"What can {name} do?", "Where should I start?"],
        "category": "Other",
    }
    return json.dumps(draft)


def default_responder(messages: list[dict[str, Any]], model: str) -> str:
    """Answer so that tests can see what reached the server.

    A first system message starting with "[[draft]]" gets a JSON GPT draft; anything else gets
    "Answer <n>: <last user message>", n being the number of user messages (i.e. history was sent).
    """
    user_texts = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    last = user_texts[-1] if user_texts else ""
    first = messages[0] if messages else {}
    if first.get("role") == "system" and _text(first.get("content")).startswith(DRAFT_MARKER):
        return _draft(last)
    return f"Answer {len(user_texts)}: {last}"


FaultKind = Literal["fail", "stall", "malformed", "drop"]


@dataclass(frozen=True, slots=True)
class _Fault:
    kind: FaultKind
    status: int = 500
    retry_after: float | None = None
    after_tokens: int = 0
    message: str | None = None


_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def _error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """An error body shaped like OpenAI's: `{"error": {"message", "type", "code", "param"}}`."""
    err_type, code = _ERROR_TYPES.get(status, ("server_error", None))
    return {
        "error": {
            "message": message or f"Fake error (HTTP {status}).",
            "type": err_type,
            "param": None,
            "code": code,
        }
    }


class FakeOpenAI:
    """An aiohttp server that behaves like the OpenAI API, with knobs for latency and faults.

    `latency` (seconds before the first token, or before a non-streamed response) and `token_rate`
    (tokens per second while streaming; None streams without pauses) may be changed at any time;
    they are read per request.
    """

    def __init__(
        self,
        latency: float = 0.0,
        token_rate: float | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.latency = latency
        self.token_rate = token_rate
        self.host = host
        self.port = port
        self.models: list[str] = ["gpt-4o-mini", "gpt-4o"]
        self.flag_words: set[str] = {"kill"}
        # False imitates servers that ignore `stream_options.include_usage` (some local ones do).
        self.send_usage = True
        self.responder: Responder = default_responder
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []  # of each chat request, as received
        self.moderation_requests: list[dict[str, Any]] = []
        self.embedding_requests: list[dict[str, Any]] = []
        # words the fake embedding model takes for the same meaning (a real model learns these)
        self.synonyms: dict[str, str] = {}
        self.embeddings_fail = False
        self._faults: deque[_Fault] = deque()
        self._ids = itertools.count(1)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`, with the real port once started on port 0."""
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        self._closing.clear()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/moderations", self._moderations)
        app.router.add_post("/v1/embeddings", self._embeddings)
        # handler_cancellation: a handler parked on a stall ends when the client hangs up.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=4096)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def close(self) -> None:
        self._closing.set()  # releases stalled streams so shutdown does not wait on them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- fault injection (each queued fault is consumed by one chat request, FIFO) --------------

    def fail_next(
        self,
        status: int,
        *,
        retry_after: float | None = None,
        times: int = 1,
        message: str | None = None,
    ) -> None:
        """The next `times` chat requests get an OpenAI-shaped JSON error with this status."""
        for _ in range(times):
            self._faults.append(_Fault("fail", status, retry_after, message=message))

    def stall_next(self, after_tokens: int, *, times: int = 1) -> None:
        """The next streams send `after_tokens` tokens, then hang without closing."""
        for _ in range(times):
            self._faults.append(_Fault("stall", after_tokens=after_tokens))

    def malformed_next(self, after_tokens: int) -> None:
        """The next stream sends `after_tokens` tokens, then a `data:` line that is not JSON."""
        self._faults.append(_Fault("malformed", after_tokens=after_tokens))

    def drop_next(self, after_tokens: int) -> None:
        """The next stream sends `after_tokens` tokens, then the connection is cut mid-body."""
        self._faults.append(_Fault("drop", after_tokens=after_tokens))

    # -- handlers ----------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(_error_body(400, "Body is not valid JSON."), status=400)
        if not isinstance(body, dict):
            return web.json_response(_error_body(400, "Body must be a JSON object."), status=400)
        self.requests.append(body)
        self.request_headers.append(dict(request.headers))
        fault = self._faults.popleft() if self._faults else None

        if fault is not None and fault.kind == "fail":
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            return web.json_response(
                _error_body(fault.status, fault.message), status=fault.status, headers=headers
            )
        model = body.get("model")
        messages = body.get("messages")
        if not isinstance(model, str) or not isinstance(messages, list) or not messages:
            return web.json_response(
                _error_body(400, "'model' and a non-empty 'messages' are required."), status=400
            )
        if self.models and model not in self.models:
            msg = f"The model `{model}` does not exist or you do not have access to it."
            return web.json_response(_error_body(404, msg), status=404)

        if self.latency > 0:
            await asyncio.sleep(self.latency)
        text = self.responder(messages, model)
        prompt_tokens = count_prompt_tokens(messages)
        if body.get("stream"):
            options = body.get("stream_options") or {}
            include_usage = self.send_usage and bool(options.get("include_usage"))
            return await self._stream(request, model, text, prompt_tokens, include_usage, fault)
        return await self._complete(request, model, text, prompt_tokens, fault)

    async def _complete(
        self,
        request: web.Request,
        model: str,
        text: str,
        prompt_tokens: int,
        fault: _Fault | None,
    ) -> web.StreamResponse:
        if fault is not None:
            if fault.kind == "stall":
                await self._closing.wait()
            elif fault.kind == "drop":
                _abort(request)
            return web.Response(text="{not json", content_type="application/json")
        completion_tokens = len(split_tokens(text))
        return web.json_response(
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": None,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": _usage(prompt_tokens, completion_tokens),
            }
        )

    async def _stream(
        self,
        request: web.Request,
        model: str,
        text: str,
        prompt_tokens: int,
        include_usage: bool,
        fault: _Fault | None,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        # Every chunk shares id/created/model; only the choices differ, so build the prefix once.
        prefix = json.dumps(
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": None,
            }
        )[:-1]

        # Like OpenAI, every chunk carries `"usage": null` only when usage was asked for.
        usage_tail = ', "usage": null}' if include_usage else "}"

        def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
            tail = f', "usage": {json.dumps(usage)}}}' if usage is not None else usage_tail
            return f'data: {prefix}, "choices": {json.dumps(choices)}{tail}\n\n'.encode()

        def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

        await resp.write(chunk(choice({"role": "assistant", "content": "", "refusal": None})))
        tokens = split_tokens(text)
        limit = fault.after_tokens if fault is not None else len(tokens)
        for i, token in enumerate(tokens[:limit]):
            rate = self.token_rate
            if rate and i:
                await asyncio.sleep(1.0 / rate)
            await resp.write(chunk(choice({"content": token})))

        if fault is not None:
            if fault.kind == "stall":
                await self._closing.wait()
            elif fault.kind == "malformed":
                await resp.write(b"data: {this is not json\n\n")
                await resp.write_eof()
            elif fault.kind == "drop":
                _abort(request)
            return resp

        await resp.write(chunk(choice({}, "stop")))
        if include_usage:
            await resp.write(chunk([], _usage(prompt_tokens, len(tokens))))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _embeddings(self, request: web.Request) -> web.Response:
        """Bag-of-words vectors (a word, or its synonym, hashed to one of 256 dimensions): texts
        sharing words, or synonyms, are close. Deterministic, so tests can reason about ranking."""
        if self.embeddings_fail:
            return web.json_response(_error_body(503, "Embeddings are unavailable."), status=503)
        body = await request.json()
        self.embedding_requests.append(body)
        raw = body.get("input", "")
        inputs = [raw] if isinstance(raw, str) else [str(p) for p in raw]
        data = []
        for index, text in enumerate(inputs):
            vector = [0.0] * 256
            for word in _WORD_RE.findall(text.lower()):
                word = self.synonyms.get(word, word)
                vector[zlib.crc32(word.encode()) % 256] += 1.0
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(len(t.split()) for t in inputs)
        return web.json_response({"object": "list", "model": body.get("model", ""), "data": data,
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _moderations(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(_error_body(400, "Body is not valid JSON."), status=400)
        self.moderation_requests.append(body)
        raw = body.get("input", "")
        inputs = (
            [raw] if isinstance(raw, str) else [_text([p]) if isinstance(p, dict) else str(p) for p in raw]
        )
        return web.json_response(
            {
                "id": f"modr-{next(self._ids)}",
                "model": body.get("model") or "omni-moderation-latest",
                "results": [self._moderate(text) for text in inputs],
            }
        )

    def _moderate(self, text: str) -> dict[str, Any]:
        flag_words = {w.lower() for w in self.flag_words}
        flagged = any(w.lower() in flag_words for w in _WORD_RE.findall(text))
        categories = {c: flagged and c in FLAGGED_CATEGORIES for c in MODERATION_CATEGORIES}
        return {
            "flagged": flagged,
            "categories": categories,
            "category_scores": {c: 0.9 if hit else 0.0001 for c, hit in categories.items()},
            "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
        }


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _abort(request: web.Request) -> None:
    """Cut the TCP connection without finishing the HTTP body (what a crashed upstream does)."""
    if request.transport is not None:
        request.transport.abort()


def main(argv: list[str] | None = None) -> None:
    """Serve the fake standalone, e.g. to point a locally running bot at it."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible fake server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument("--token-rate", type=float, default=None, help="tokens per second")
    args = parser.parse_args(argv)

    async def serve() -> None:
        async with FakeOpenAI(args.latency, args.token_rate, host=args.host, port=args.port) as fake:
            print(f"fake OpenAI API at {fake.base_url}", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
