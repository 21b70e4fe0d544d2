"""The LLM gateway against the fake OpenAI server, through the real `openai` client.

Why not mocks: what matters is how the real client reacts to real bytes (SSE, status codes,
Retry-After, hung and cut connections), and that is what the gateway's retries and error kinds
are built on.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
import pytest_asyncio

from bot import llm
from bot.llm import LLMError, LLMErrorKind, LLMGateway, Usage
from tests.fakes.openai_server import FakeOpenAI, split_tokens

pytestmark = pytest.mark.asyncio

API_KEY = "sk-test-SECRET-0123456789abcdef"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exponential backoff starts at 0.5 s in production; tests need not wait that long."""
    monkeypatch.setattr(llm, "BACKOFF_INITIAL", 0.01)


def make_gateway(base_url: str | None, **kwargs: Any) -> LLMGateway:
    options: dict[str, Any] = {
        "api_key": API_KEY,
        "default_model": "gpt-4o-mini",
        "models": ["gpt-4o-mini", "gpt-4o"],
        "stall_timeout": 0.5,
    }
    options.update(kwargs)
    return LLMGateway(base_url=base_url, **options)


@pytest_asyncio.fixture
async def gateway(fake: FakeOpenAI) -> AsyncIterator[LLMGateway]:
    gw = make_gateway(fake.base_url)
    yield gw
    await gw.aclose()


async def collect(
    gw: LLMGateway, messages: Sequence[Mapping[str, str]], **kwargs: Any
) -> tuple[list[str], list[Usage]]:
    texts: list[str] = []
    usages: list[Usage] = []
    async for item in gw.stream(model=kwargs.pop("model", None), messages=messages, **kwargs):
        if isinstance(item, Usage):
            usages.append(item)
        else:
            assert not usages, "text after the Usage"
            texts.append(item)
    return texts, usages


async def collect_until_error(
    gw: LLMGateway, messages: Sequence[Mapping[str, str]]
) -> tuple[list[str | Usage], LLMError]:
    got: list[str | Usage] = []
    with pytest.raises(LLMError) as info:
        async for item in gw.stream(model=None, messages=messages):
            got.append(item)
    return got, info.value


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_stream_yields_text_then_server_usage(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.token_rate = 500  # the tokens arrive one by one: each is shown as it comes
    texts, usages = await collect(gateway, ask("tell me a short story please"), user="u-1")

    assert len(texts) > 3
    assert "".join(texts) == "Answer 1: tell me a short story please"
    answer_tokens = len(split_tokens("Answer 1: tell me a short story please"))
    assert usages == [Usage(prompt_tokens=6, completion_tokens=answer_tokens)]
    sent = fake.requests[-1]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == "gpt-4o-mini"
    assert sent["user"] == "u-1"


async def test_stream_without_server_usage_counts_deltas(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.send_usage = False
    texts, usages = await collect(gateway, ask("one two three"))
    # the deltas the server sent, however many of them arrived in one read
    assert usages == [Usage(0, len(split_tokens("".join(texts))))]


async def test_history_reaches_server(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Answer 1: first"},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": "Answer 2: second"},
        {"role": "user", "content": "third"},
    ]
    texts, _ = await collect(gateway, messages, model="gpt-4o")
    assert "".join(texts) == "Answer 3: third"
    assert fake.requests[-1]["messages"] == messages
    assert fake.requests[-1]["model"] == "gpt-4o"


async def test_429_retry_after_is_honoured(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.fail_next(429, retry_after=0.2)
    started = time.monotonic()
    texts, usages = await collect(gateway, ask("hi"))
    assert time.monotonic() - started >= 0.2
    assert "".join(texts) == "Answer 1: hi"
    assert len(usages) == 1
    assert len(fake.requests) == 2


async def test_retry_after_beyond_cap_is_returned_not_slept(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.fail_next(429, retry_after=60)
    started = time.monotonic()
    _, err = await collect_until_error(gateway, ask("hi"))
    assert time.monotonic() - started < 5
    assert err.kind is LLMErrorKind.RATE_LIMITED
    assert err.retry_after == 60
    assert len(fake.requests) == 1


async def test_429_after_retries_is_rate_limited(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.fail_next(429, retry_after=0.01, times=3)
    _, err = await collect_until_error(gateway, ask("hi"))
    assert err.kind is LLMErrorKind.RATE_LIMITED
    assert err.retry_after == pytest.approx(0.01)
    assert len(fake.requests) == 3


@pytest.mark.usefixtures("fast_backoff")
async def test_500_twice_then_success(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.fail_next(500, times=2)
    texts, _ = await collect(gateway, ask("hi"))
    assert "".join(texts) == "Answer 1: hi"
    assert len(fake.requests) == 3


@pytest.mark.usefixtures("fast_backoff")
async def test_503_beyond_max_retries_is_unavailable(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.fail_next(503, times=5)
    _, err = await collect_until_error(gateway, ask("hi"))
    assert err.kind is LLMErrorKind.UNAVAILABLE
    assert len(fake.requests) == 3  # 1 + max_retries


async def test_backoff_is_exponential_and_capped() -> None:
    gw = make_gateway("http://127.0.0.1:9/v1", max_retries=10)
    failure = llm._Failure(LLMErrorKind.UNAVAILABLE, "x", retryable=True)
    delays = [gw._retry_delay(failure, attempt) for attempt in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert gw._retry_delay(failure, 10) is None
    await gw.aclose()


@pytest.mark.usefixtures("fast_backoff")
async def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and now has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gw = make_gateway(f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(LLMError) as info:
            await collect(gw, ask("hi"))
        assert info.value.kind is LLMErrorKind.UNAVAILABLE
        with pytest.raises(LLMError) as info:
            await gw.complete(model=None, messages=ask("hi"))
        assert info.value.kind is LLMErrorKind.UNAVAILABLE
    finally:
        await gw.aclose()


async def test_stall_after_three_tokens(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.stall_next(3)
    started = time.monotonic()
    got, err = await collect_until_error(gateway, ask("a b c d e f"))
    assert "".join(got) == "Answer 1: a "  # what came before the silence was shown (no Usage)
    assert err.kind is LLMErrorKind.STALLED
    assert 0.5 <= time.monotonic() - started < 5
    assert len(fake.requests) == 1  # never retried once text was out


async def test_malformed_chunk_is_broken_stream(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.malformed_next(2)
    got, err = await collect_until_error(gateway, ask("a b c d"))
    assert "".join(got) == "Answer 1: "  # the text before the bad chunk, and no Usage
    assert err.kind is LLMErrorKind.BROKEN_STREAM
    assert len(fake.requests) == 1


async def test_dropped_connection_mid_stream_is_broken_stream(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.drop_next(2)
    got, err = await collect_until_error(gateway, ask("a b c d"))
    assert "".join(got) == "Answer 1: "
    assert err.kind is LLMErrorKind.BROKEN_STREAM
    assert len(fake.requests) == 1


@pytest.mark.usefixtures("fast_backoff")
async def test_drop_before_first_token_is_retried(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.drop_next(0)
    texts, usages = await collect(gateway, ask("hi"))
    assert "".join(texts) == "Answer 1: hi"
    assert len(usages) == 1
    assert len(fake.requests) == 2


async def test_timeout_waiting_for_response(fake: FakeOpenAI) -> None:
    fake.latency = 3.0
    gw = make_gateway(fake.base_url, timeout=0.5)
    try:
        with pytest.raises(LLMError) as info:
            await gw.complete(model=None, messages=ask("hi"))
        assert info.value.kind is LLMErrorKind.TIMEOUT
        assert len(fake.requests) <= 1  # a timeout is not retried (the server may not have read it yet)
    finally:
        await gw.aclose()


async def test_not_configured() -> None:
    gw = LLMGateway(base_url=None, api_key=None, default_model="m", models=[], moderation=True)
    assert gw.configured is False
    with pytest.raises(LLMError) as info:
        await collect(gw, ask("hi"))
    assert info.value.kind is LLMErrorKind.NOT_CONFIGURED
    with pytest.raises(LLMError) as info:
        await gw.complete(model=None, messages=ask("hi"))
    assert info.value.kind is LLMErrorKind.NOT_CONFIGURED
    assert await gw.moderate("I will kill") == []
    await gw.aclose()


async def test_base_url_without_key_is_configured(fake: FakeOpenAI) -> None:
    gw = LLMGateway(base_url=fake.base_url, api_key=None, default_model="gpt-4o", models=[])
    try:
        assert gw.configured is True
        text, _ = await gw.complete(model=None, messages=ask("hi"))
        assert text == "Answer 1: hi"
    finally:
        await gw.aclose()


async def test_unknown_model(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    assert gateway.resolve_model(None) == "gpt-4o-mini"
    assert gateway.resolve_model("") == "gpt-4o-mini"
    assert gateway.resolve_model("gpt-4o") == "gpt-4o"
    with pytest.raises(LLMError) as info:
        await collect(gateway, ask("hi"), model="gpt-9")
    assert info.value.kind is LLMErrorKind.MODEL_UNKNOWN
    assert fake.requests == []  # refused locally

    open_gw = make_gateway(fake.base_url, models=[])  # no allow-list: the server says 404
    try:
        with pytest.raises(LLMError) as info:
            await open_gw.complete(model="gpt-9", messages=ask("hi"))
        assert info.value.kind is LLMErrorKind.MODEL_UNKNOWN
    finally:
        await open_gw.aclose()


async def test_bad_request_and_auth(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.fail_next(400)
    with pytest.raises(LLMError) as info:
        await gateway.complete(model=None, messages=ask("hi"))
    assert info.value.kind is LLMErrorKind.BAD_REQUEST
    fake.fail_next(401)
    _, err = await collect_until_error(gateway, ask("hi"))
    assert err.kind is LLMErrorKind.AUTH
    assert len(fake.requests) == 2  # neither retried


async def test_complete_json_mode_draft(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    messages = [
        {"role": "system", "content": "[[draft]] Reply with a JSON GPT draft."},
        {"role": "user", "content": "a pirate who explains algebra to kids"},
    ]
    text, usage = await gateway.complete(model=None, messages=messages, json_mode=True)
    draft = json.loads(text)
    assert draft["name"] == "A Pirate Who"
    assert draft["category"] == "Other"
    assert 1 <= len(draft["starters"]) <= 4
    assert draft["instructions"].startswith("You are A Pirate Who. ")
    assert usage.prompt_tokens == 14 and usage.completion_tokens > 0
    assert fake.requests[-1]["response_format"] == {"type": "json_object"}
    assert "stream" not in fake.requests[-1]


async def test_moderation(fake: FakeOpenAI) -> None:
    gw = make_gateway(fake.base_url, moderation=True)
    try:
        assert sorted(await gw.moderate("I will kill")) == ["harassment", "violence"]
        assert await gw.moderate("hello") == []
        assert [r["input"] for r in fake.moderation_requests] == ["I will kill", "hello"]
    finally:
        await gw.aclose()


async def test_moderation_disabled_sends_nothing(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    assert await gateway.moderate("I will kill") == []
    assert fake.moderation_requests == []


@pytest.mark.usefixtures("fast_backoff")
async def test_api_key_never_in_errors_or_logs(
    fake: FakeOpenAI, gateway: LLMGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # openai's and httpx2's own debug logging included
    errors: list[LLMError] = []
    fake.fail_next(401, message=f"Incorrect API key provided: {API_KEY}.")
    fake.fail_next(500, times=3, message=f"upstream rejected key {API_KEY}")
    fake.fail_next(429, retry_after=0.01, times=3, message=f"slow down, {API_KEY}")
    for _ in range(3):
        with pytest.raises(LLMError) as info:
            await gateway.complete(model=None, messages=ask("hi"))
        errors.append(info.value)
    fake.malformed_next(1)
    errors.append((await collect_until_error(gateway, ask("hi")))[1])

    assert [e.kind for e in errors] == [
        LLMErrorKind.AUTH,
        LLMErrorKind.UNAVAILABLE,
        LLMErrorKind.RATE_LIMITED,
        LLMErrorKind.BROKEN_STREAM,
    ]
    for err in errors:
        assert API_KEY not in str(err) and API_KEY not in repr(err)
        assert err.__cause__ is None or API_KEY not in str(err.__cause__)
    assert any(r.name == "bot.llm" for r in caplog.records)  # retries were logged
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in (record.exc_text or "")
    assert API_KEY not in caplog.text
    assert {r.name.split(".")[0] for r in caplog.records} >= {"bot", "openai"}


async def test_streamed_and_plain_calls_send_the_key_and_the_clients_headers(
    fake: FakeOpenAI, gateway: LLMGateway,
) -> None:
    """The streamed answer is sent without openai's request machinery (bot/chat_request.py): it
    must still carry what the client sends, or a real provider answers 401."""
    await collect(gateway, ask("hi"), user="acct-7", max_tokens=12)
    await gateway.complete(model=None, messages=ask("hi"))
    streamed, plain = fake.request_headers
    for headers in (streamed, plain):
        assert headers["Authorization"] == f"Bearer {API_KEY}"
        assert headers["Content-Type"] == "application/json"
    assert streamed["User-Agent"] == plain["User-Agent"]
    assert fake.requests[0]["user"] == "acct-7" and fake.requests[0]["max_tokens"] == 12
    assert fake.requests[0]["stream_options"] == {"include_usage": True}



@pytest.mark.usefixtures("fast_backoff")
async def test_streamed_errors_are_classified_and_never_carry_the_key(
    fake: FakeOpenAI, gateway: LLMGateway, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail_next(401, message=f"Incorrect API key provided: {API_KEY}.")
    fake.fail_next(429, retry_after=60, message=f"slow down, {API_KEY}")
    fake.fail_next(503, times=3, message=f"upstream rejected key {API_KEY}")
    errors = [(await collect_until_error(gateway, ask("hi")))[1] for _ in range(3)]
    assert [e.kind for e in errors] == [LLMErrorKind.AUTH, LLMErrorKind.RATE_LIMITED, LLMErrorKind.UNAVAILABLE]
    assert errors[1].retry_after == 60  # from the response's Retry-After header
    assert len(fake.requests) == 1 + 1 + 3  # 503 is retried (max_retries=2), 401 and a long 429 are not
    for err in errors:
        assert API_KEY not in str(err) and API_KEY not in repr(err)
    assert API_KEY not in caplog.text
