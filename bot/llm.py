"""The LLM gateway: every model call the bot makes goes through here.

Why one module: OpenAI and every OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio,
hosted gateways) speak the same chat-completions protocol but fail in many different ways. The
rest of the bot should see exactly two things: text deltas followed by one `Usage`, or one
`LLMError` whose `kind` says what went wrong (so the UI can word it and billing can skip it).

Design choices, each for a reason:

* One `openai.AsyncOpenAI` per gateway, made in `__init__`: a client per request re-creates its
  connection pool and costs ~25 ms per answer (seen in peer bots).
* Its HTTP layer is aiohttp (`openai.DefaultAioHttpClient`). The streamed answer, the one call on
  every answer's path, is sent with the client's URL and headers over a plain aiohttp session
  (bot/chat_request.py) and its body parsed by bot/sse.py rather than by openai's stream classes:
  with httpx's pool and a pydantic model per chunk, 1 000 concurrent 50-token answers cost ~10 s
  of CPU; the client's request machinery alone was ~0.5 ms per answer (bench/).
* The client's own retries are off; we retry ourselves, because only we know whether text has
  already reached the user. A retry after the first token would repeat or garble the answer, so
  we retry (429, 500/502/503/504, connection errors) only before the first delta is yielded.
* Retry-After is honoured up to a cap; a longer wait is the caller's business (it can tell the
  user "try again in N s"), so we raise RATE_LIMITED with `retry_after` rather than sleep.
* A stream that goes quiet for `stall_timeout` is abandoned (STALLED): a read timeout on the
  whole request would be far too long for a chat reply and could not tell a slow start from a
  hung server.
* The API key never appears in an error message or a log line: server messages are redacted
  before we repeat them, and openai's own exceptions (whose text is server-controlled) are not
  chained onto ours.

This module imports nothing from the rest of the bot and nothing platform-specific.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

import openai

from bot.chat_request import ChatRequest
from bot.sse import StreamError, StreamStalled, chat_deltas

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

__all__ = ["LLMError", "LLMErrorKind", "LLMGateway", "Usage"]

log = logging.getLogger(__name__)

PLACEHOLDER_API_KEY = "not-needed"
"""Sent when only a base URL is configured: local servers need no key, the client insists on one."""
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 8.0
RETRY_AFTER_MAX = 20.0
"""The longest Retry-After we wait out ourselves; beyond it the caller gets RATE_LIMITED."""
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_MAX_DETAIL = 200

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens as reported by the API (billing counts these; nothing is estimated locally)."""

    prompt_tokens: int
    completion_tokens: int


class LLMErrorKind(StrEnum):
    NOT_CONFIGURED = "not_configured"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    STALLED = "stalled"
    BAD_REQUEST = "bad_request"
    AUTH = "auth"
    MODEL_UNKNOWN = "model_unknown"
    BROKEN_STREAM = "broken_stream"


class LLMError(Exception):
    """A model call that failed, classified.

    `str()` is a short technical description for logs ("rate_limited: HTTP 429 ..."); user-facing
    wording belongs to the caller, keyed on `kind`. It never contains the API key.
    """

    def __init__(self, kind: LLMErrorKind, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class _Failure:
    """An exception classified, before we decide whether to retry it."""

    kind: LLMErrorKind
    detail: str
    retryable: bool
    retry_after: float | None = None

    def error(self, attempts: int) -> LLMError:
        suffix = f" (after {attempts} attempts)" if attempts > 1 else ""
        return LLMError(self.kind, self.detail + suffix, retry_after=self.retry_after)


class LLMGateway:
    """Chat completions (streamed or not) and moderation against one OpenAI-compatible endpoint.

    `models`, when non-empty, is the allow-list creators may pick from; `default_model` is used
    when a GPT names none. `timeout` bounds connecting and waiting for the response to start;
    `stall_timeout` bounds the silence between two chunks of a stream.
    """

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str | None,
        default_model: str,
        models: Sequence[str],
        timeout: float = 60.0,
        max_retries: int = 2,
        stall_timeout: float = 30.0,
        moderation: bool = False,
    ) -> None:
        self.default_model = default_model
        self.models: tuple[str, ...] = tuple(models)
        self.max_retries = max(0, max_retries)
        self.stall_timeout = stall_timeout
        self.moderation = moderation
        self._secret = api_key or ""
        self._endpoint = _describe_endpoint(base_url)
        self._client: openai.AsyncOpenAI | None = None
        self._chat: ChatRequest | None = None
        if base_url is not None or api_key is not None:
            self._client = openai.AsyncOpenAI(
                base_url=base_url,
                api_key=api_key if api_key is not None else PLACEHOLDER_API_KEY,
                timeout=timeout,
                max_retries=0,
                http_client=openai.DefaultAioHttpClient(timeout=timeout),
            )
            self._chat = ChatRequest(self._client, timeout=timeout)

    @property
    def configured(self) -> bool:
        """False when neither a base URL nor an API key was given: there is nowhere to send calls."""
        return self._client is not None

    def resolve_model(self, model: str | None) -> str:
        """The model to call: the default when none is named; MODEL_UNKNOWN if not allowed."""
        if not model:
            return self.default_model
        if self.models and model not in self.models:
            raise LLMError(LLMErrorKind.MODEL_UNKNOWN, f"model {model!r} is not in the configured list")
        return model

    async def stream(
        self,
        *,
        model: str | None,
        messages: Sequence[Mapping[str, str]],
        user: str | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[str | Usage]:
        """Yield the text as it arrives (the deltas of one read joined), then exactly one `Usage`.

        Usage comes from the API's final usage chunk (we ask for it with `include_usage`); a
        server that sends none gets `Usage(0, <number of deltas>)`. Failures before the first
        delta are retried; after it, they raise at once (STALLED, BROKEN_STREAM, ...).
        """
        self._require_client()
        chat = cast(ChatRequest, self._chat)
        body: dict[str, Any] = {
            "model": self.resolve_model(model), "messages": [dict(m) for m in messages],
            "stream": True, "stream_options": {"include_usage": True},
        }
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if user:
            body["user"] = user
        attempt = 0
        while True:
            shown = False  # some text reached the caller
            usage: Usage | None = None
            started = False
            try:
                async with chat.stream(body) as chunks:
                    started = True
                    try:
                        async for item in chat_deltas(chunks, stall_timeout=self.stall_timeout):
                            if isinstance(item, str):
                                shown = True
                                yield item
                            else:
                                usage = Usage(*item)
                    except StreamStalled:
                        raise LLMError(
                            LLMErrorKind.STALLED,
                            f"no data from {self._endpoint} for {self.stall_timeout:g}s"
                            f" {'in the middle of the answer' if shown else 'before any text'}",
                        ) from None
                    except StreamError as exc:
                        raise openai.APIError(exc.message, chat.request(), body=exc.body) from None
            except (openai.OpenAIError, ValueError) as exc:
                failure = self._classify(exc, mid_stream=started)
                if shown:
                    # Text already reached the caller: never retry, and say the stream broke.
                    if failure.kind is LLMErrorKind.UNAVAILABLE:
                        failure = _Failure(LLMErrorKind.BROKEN_STREAM, failure.detail, False)
                    raise failure.error(1) from None
                delay = self._retry_delay(failure, attempt)
                if delay is None:
                    raise failure.error(attempt + 1) from None
                self._log_retry(failure, attempt, delay)
                attempt += 1
                await asyncio.sleep(delay)
                continue
            yield usage if usage is not None else Usage(0, 0)  # chat_deltas always ends with one
            return

    async def complete(
        self,
        *,
        model: str | None,
        messages: Sequence[Mapping[str, str]],
        json_mode: bool = False,
        max_tokens: int | None = None,
    ) -> tuple[str, Usage]:
        """One non-streamed answer and its usage (Usage(0, 0) if the server reports none).

        `json_mode` asks for `response_format={"type": "json_object"}`; the prompt must still
        say "JSON" (an OpenAI requirement), and the caller must still validate the result.
        """
        client = self._require_client()
        resolved = self.resolve_model(model)
        result = await self._with_retries(
            lambda: client.chat.completions.create(
                model=resolved,
                messages=_wire_messages(messages),
                max_tokens=max_tokens if max_tokens is not None else openai.omit,
                response_format={"type": "json_object"} if json_mode else openai.omit,
            )
        )
        if not result.choices:
            raise LLMError(LLMErrorKind.BROKEN_STREAM, f"{self._endpoint} returned no choices")
        text = result.choices[0].message.content or ""
        usage = result.usage
        return text, (Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(0, 0))

    async def moderate(self, text: str) -> list[str]:
        """Flagged category names (e.g. ["harassment", "violence"]); [] when moderation is off.

        Raises LLMError when moderation is on but the endpoint fails: whether to let the text
        through then is a policy decision for the caller, not for the gateway.
        """
        if not self.moderation or self._client is None:
            return []
        client = self._client
        result = await self._with_retries(lambda: client.moderations.create(input=text), what="moderation")
        flagged: list[str] = []
        for item in result.results:
            if not item.flagged:
                continue
            for name, hit in item.categories.model_dump(by_alias=True).items():
                if hit and name not in flagged:
                    flagged.append(name)
        return flagged

    async def embed(self, texts: list[str], *, model: str) -> list[bytes]:
        """Unit-length float32 vectors, packed: how knowledge passages are stored and compared
        (a dot product is then the cosine similarity, see bot/grounding.py)."""
        client = self._require_client()
        vectors: list[bytes] = []
        for start in range(0, len(texts), 256):
            batch = texts[start:start + 256]
            result = await self._with_retries(
                lambda batch=batch: client.embeddings.create(model=model, input=batch), what="embeddings"  # type: ignore[misc]
            )
            for item in sorted(result.data, key=lambda d: d.index):
                norm = math.sqrt(sum(x * x for x in item.embedding)) or 1.0
                vectors.append(array("f", (x / norm for x in item.embedding)).tobytes())
        return vectors

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        if self._chat is not None:
            await self._chat.aclose()
        if self._client is not None:
            await self._client.close()

    # -- internals -------------------------------------------------------------------------------

    def _require_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            raise LLMError(LLMErrorKind.NOT_CONFIGURED, "no LLM base URL or API key is configured")
        return self._client

    async def _with_retries(self, call: Callable[[], Awaitable[_T]], *, what: str = "completion") -> _T:
        attempt = 0
        while True:
            try:
                return await call()
            except (openai.OpenAIError, ValueError) as exc:
                failure = self._classify(exc, what=what)
                delay = self._retry_delay(failure, attempt)
                if delay is None:
                    raise failure.error(attempt + 1) from None
                self._log_retry(failure, attempt, delay)
                attempt += 1
                await asyncio.sleep(delay)

    def _retry_delay(self, failure: _Failure, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if not failure.retryable or attempt >= self.max_retries:
            return None
        if failure.retry_after is not None:
            return failure.retry_after if failure.retry_after <= RETRY_AFTER_MAX else None
        return min(BACKOFF_INITIAL * 2.0**attempt, BACKOFF_MAX)

    def _log_retry(self, failure: _Failure, attempt: int, delay: float) -> None:
        log.warning(
            "LLM call failed (%s: %s); retry %d/%d in %.2fs",
            failure.kind.value,
            failure.detail,
            attempt + 1,
            self.max_retries,
            delay,
        )

    def _redact(self, text: str) -> str:
        """A server-supplied message made safe to repeat: key removed (before truncating, so no
        partial key survives), whitespace collapsed, length bounded."""
        if self._secret and len(self._secret) >= 4:
            text = text.replace(self._secret, "***")
        return " ".join(text.split())[:_MAX_DETAIL]

    def _classify(self, exc: Exception, *, mid_stream: bool = False, what: str = "completion") -> _Failure:
        """Turn an openai (or parsing) exception into a kind, a safe detail and retryability."""
        where = self._endpoint
        refused = _refused(exc)
        if isinstance(exc, openai.APITimeoutError) and refused is None:
            return _Failure(LLMErrorKind.TIMEOUT, f"{where} timed out", False)
        if isinstance(exc, openai.APIConnectionError):
            cause = type(refused or exc.__cause__).__name__ if refused or exc.__cause__ else "connection error"
            if mid_stream:
                return _Failure(LLMErrorKind.BROKEN_STREAM, f"stream from {where} cut ({cause})", True)
            return _Failure(LLMErrorKind.UNAVAILABLE, f"cannot reach {where} ({cause})", True)
        if isinstance(exc, openai.APIStatusError):
            return self._classify_status(exc, what)
        if isinstance(exc, openai.APIError):
            # An error event inside a stream, or a response body that does not fit the schema.
            return _Failure(LLMErrorKind.BROKEN_STREAM, f"{where}: {self._redact(exc.message)}", False)
        if isinstance(exc, ValueError):  # json.JSONDecodeError and friends: a garbled chunk/body
            return _Failure(LLMErrorKind.BROKEN_STREAM, f"unparsable data from {where}", False)
        return _Failure(LLMErrorKind.UNAVAILABLE, f"{where}: {type(exc).__name__}", False)

    def _classify_status(self, exc: openai.APIStatusError, what: str) -> _Failure:
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        message = body.get("message") if isinstance(body.get("message"), str) else exc.message
        detail = f"HTTP {status} from {self._endpoint}: {self._redact(str(message))}"
        code = str(exc.code or "")
        if status in (401, 403):
            return _Failure(LLMErrorKind.AUTH, detail, False)
        if status == 404:
            if what == "completion" and (code == "model_not_found" or "model" in str(message).lower()):
                return _Failure(LLMErrorKind.MODEL_UNKNOWN, detail, False)
            return _Failure(LLMErrorKind.UNAVAILABLE, detail + " (check the base URL)", False)
        if status == 408:
            return _Failure(LLMErrorKind.TIMEOUT, detail, False)
        retry_after = _retry_after(exc)
        if status == 429:
            # Exhausted quota is a 429 too, but waiting does not fix it.
            return _Failure(LLMErrorKind.RATE_LIMITED, detail, code != "insufficient_quota", retry_after)
        if status >= 500:
            return _Failure(LLMErrorKind.UNAVAILABLE, detail, status in _RETRYABLE_STATUS, retry_after)
        return _Failure(LLMErrorKind.BAD_REQUEST, detail, False)


def _refused(exc: BaseException) -> OSError | None:
    """The socket error under a connection failure, if it is not a timeout.

    The aiohttp transport reports a refused connection as a connect *timeout* (its exception
    map picks the first match); the cause chain still holds the real `OSError`.
    """
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, OSError) and not isinstance(cause, TimeoutError):
            return cause
        cause = cause.__cause__
    return None


def _wire_messages(messages: Sequence[Mapping[str, str]]) -> list[ChatCompletionMessageParam]:
    return cast("list[ChatCompletionMessageParam]", [dict(m) for m in messages])


def _describe_endpoint(base_url: str | None) -> str:
    """The endpoint for error messages: scheme, host and path, without userinfo or query."""
    if base_url is None:
        return "the OpenAI API"
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else "the LLM endpoint"


def _retry_after(exc: openai.APIStatusError) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, or `retry-after` (seconds or date)."""
    headers: Any = exc.response.headers
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None
