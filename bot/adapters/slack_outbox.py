"""Where a core reply goes in Slack, and how a streamed answer is written there.

One `SlackOutbox` per event. It knows the event's Slack coordinates (team, user, channel, thread,
the message clicked, a trigger_id for modals, a response_url) and turns each neutral `Reply` into
Web API calls: ephemeral → chat.postEphemeral; Target.DM → conversations.open + chat.postMessage;
a form → views.open; `edit` → chat.update (or the response_url for ephemeral messages); the Home
tab → views.publish. A GPT's answer in a channel always lands in a thread (the mention's thread, or
a thread under a short root message for `/gpt ask`), and `Sent.thread_id` tells the core so it
follows that thread. Answers stream with chat.startStream/appendStream/stopStream when the workspace
has them, else chat.postMessage + chat.update, paced to about one edit per second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.adapters import slack_blocks as kit
from bot.catalog import CommandSpec
from bot.replies import DeliveryRefused, Form, Reply, Sent, Target

log = logging.getLogger(__name__)

STREAM_UNAVAILABLE = frozenset({
    "unknown_method", "method_deprecated", "not_allowed", "feature_not_enabled", "not_allowed_token_type",
    "missing_scope", "team_not_allowed", "invalid_arguments",
})
NOT_A_MEMBER = frozenset({"not_in_channel", "channel_not_found"})
STREAM_PIECE = 12_000  # markdown_text limit of one streaming call


class Runtime(Protocol):
    """What an outbox needs from the adapter that outlives one event (implemented by SlackAdapter)."""

    edit_interval: float

    def can_stream(self, team_id: str) -> bool: ...

    def no_streaming(self, team_id: str) -> None: ...

    async def dm_channel(self, client: AsyncWebClient, team_id: str, user_id: str) -> str: ...


class Surface(StrEnum):
    COMMAND = "command"  # a slash command: no message to thread on, a response_url
    MESSAGE = "message"  # a mention, a DM, a reply in a thread
    ACTION = "action"  # a button or a select on a message (or in the Home tab)
    FORM = "form"  # a modal submitted; the place comes from the modal's private_metadata
    HOME = "home"  # the App Home tab opened
    ASSISTANT = "assistant"  # the assistant pane opened a new thread


@dataclass(frozen=True, slots=True)
class Where:
    """The Slack coordinates of one event."""

    team_id: str
    user_id: str
    channel_id: str
    thread_ts: str | None = None
    message_ts: str | None = None  # the mention, or the message whose button was pressed
    trigger_id: str | None = None
    response_url: str | None = None
    ephemeral_source: bool = False  # the pressed button sits on an ephemeral message
    from_home: bool = False  # the event came from the Home tab: replies go to the Messages tab
    prompt: str | None = None  # the question typed with /gpt ask, quoted on the thread's root

    @property
    def is_dm(self) -> bool:
        return self.channel_id.startswith("D")

    def metadata(self) -> dict[str, Any]:
        """What a modal must remember to answer where it was opened from."""
        data = {"c": self.channel_id, "t": self.thread_ts, "m": self.message_ts, "h": int(self.from_home)}
        return {k: v for k, v in data.items() if v}


async def pace(chunks: AsyncIterator[str], push: Callable[[str], Awaitable[None]], *, interval: float) -> str:
    """Read the whole stream, pushing the text so far at most once per `interval` seconds.

    The stream is always read to its end (the core records the invocation when it ends), and a
    slow or rate-limited push never holds the model back: at most one push runs at a time, and the
    text it did not show is shown by the next one. A push shows the text as it is when the push
    starts, not when it was scheduled: chunks that arrived together go out together, and an answer
    that was complete before its first push started is left whole to the final write (one Web API
    call instead of two). Returns the full text; the caller does the final write.
    """
    loop = asyncio.get_running_loop()
    text, last, inflight = "", float("-inf"), None
    begun = False  # the inflight push has started (an unstarted one can still be called off)

    async def show() -> None:
        nonlocal begun
        begun = True
        await push(text)

    async for chunk in chunks:
        text += chunk
        if inflight is not None:
            if not inflight.done():
                continue
            _reap(inflight)
            inflight = None
        if loop.time() - last >= interval:
            last, begun = loop.time(), False
            inflight = asyncio.ensure_future(show())
    if inflight is not None:
        if not begun:
            inflight.cancel()
        await asyncio.gather(inflight, return_exceptions=True)
        _reap(inflight)
    return text


def _reap(task: asyncio.Future[None] | None) -> None:
    if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
        log.warning("a streaming edit failed: %r", task.exception())


async def drain(chunks: AsyncIterator[str]) -> str:
    return "".join([chunk async for chunk in chunks])


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error", "")) if exc.response is not None else ""


class SlackOutbox:
    def __init__(
        self, adapter: Runtime, client: AsyncWebClient, surface: Surface, where: Where,
        tr: Callable[[str], str],
    ) -> None:
        self.adapter = adapter
        self.client = client
        self.surface = surface
        self.where = where
        self.tr = tr

    async def send(self, reply: Reply) -> Sent:
        w = self.where
        if reply.form is not None:
            return await self._open(kit.modal_view(reply.form, metadata=w.metadata(), submit=self.tr("Submit"),
                                                   close=self.tr("Cancel")), reply.form)
        if self.surface is Surface.HOME:
            await self.client.views_publish(user_id=w.user_id, view=kit.home_view(reply))
            return Sent()
        if reply.target is Target.DM:
            try:
                channel = await self.adapter.dm_channel(self.client, w.team_id, w.user_id)
            except SlackApiError as exc:  # e.g. a guest whose DMs with apps are off
                raise DeliveryRefused(_error(exc)) from exc
            return await self._deliver(reply, channel, None, refused=DeliveryRefused)
        if reply.target is Target.NEW_THREAD and w.message_ts:
            root = w.thread_ts or w.message_ts
            sent = await self._deliver(reply, w.channel_id, root)
            return Sent(sent.message_id, w.channel_id, root)
        if reply.edit and w.message_ts and self.surface is Surface.ACTION:
            return await self._edit(reply)
        if reply.ephemeral and not w.from_home:
            text = await drain(reply.stream) if reply.stream is not None else None
            return await self._ephemeral(reply, text)
        if reply.stream is not None:
            return await self._answer(reply)
        sent = await self._deliver(reply, w.channel_id, w.thread_ts)
        if self.surface is Surface.ASSISTANT and w.thread_ts:
            await self._suggest(reply)
        return sent

    # --- plain messages ---------------------------------------------------------------------
    async def _deliver(self, reply: Reply, channel: str, thread: str | None,
                       refused: type[Exception] | None = None) -> Sent:
        if reply.stream is not None:
            return await self._write(reply, channel, thread, head=reply.text)
        try:
            ts = await self._post(reply, channel, thread)
        except SlackApiError as exc:
            if refused is not None:
                raise refused(_error(exc)) from exc
            raise
        return Sent(ts, channel, thread)

    async def _post(self, reply: Reply, channel: str, thread: str | None, *, text: str | None = None) -> str | None:
        """chat.postMessage; in a channel the bot has not joined, the command's response_url."""
        try:
            response = await self.client.chat_postMessage(
                channel=channel, thread_ts=thread, text=kit.fallback_text(reply, text=text),
                blocks=kit.message_blocks(reply, text=text),
            )
        except SlackApiError as exc:
            if _error(exc) in NOT_A_MEMBER and self.where.response_url and not thread:
                await self._respond(reply, text=text, response_type="in_channel")
                return None
            raise
        return str(response["ts"])

    async def _ephemeral(self, reply: Reply, text: str | None) -> Sent:
        w = self.where
        try:
            await self.client.chat_postEphemeral(
                channel=w.channel_id, user=w.user_id, thread_ts=w.thread_ts,
                text=kit.fallback_text(reply, text=text), blocks=kit.message_blocks(reply, text=text),
            )
        except SlackApiError:
            if not w.response_url:
                raise
            await self._respond(reply, text=text, response_type="ephemeral")
        return Sent(None, w.channel_id, w.thread_ts)

    async def _edit(self, reply: Reply) -> Sent:
        w = self.where
        text = await drain(reply.stream) if reply.stream is not None else None
        if (reply.ephemeral or w.ephemeral_source) and w.response_url:
            await self._respond(reply, text=text, replace_original=True)
        else:
            await self.client.chat_update(
                channel=w.channel_id, ts=w.message_ts or "", text=kit.fallback_text(reply, text=text),
                blocks=kit.message_blocks(reply, text=text),
            )
        return Sent(w.message_ts, w.channel_id, w.thread_ts)

    async def _respond(self, reply: Reply, *, text: str | None = None, response_type: str | None = None,
                       replace_original: bool = False) -> None:
        assert self.where.response_url
        response = await AsyncWebhookClient(self.where.response_url).send(
            text=kit.fallback_text(reply, text=text), blocks=kit.message_blocks(reply, text=text),
            response_type=response_type, replace_original=replace_original or None,
        )
        if response.status_code != 200:
            log.warning("response_url answered %s", response.status_code)

    async def _open(self, view: dict[str, Any], form: Form | None = None) -> Sent:
        if not self.where.trigger_id:
            log.warning("a form (%s) with no trigger_id to open it", form.action_id if form else view.get("callback_id"))
            return Sent()
        await self.client.views_open(trigger_id=self.where.trigger_id, view=view)
        return Sent()

    async def open_command(self, spec: CommandSpec, prefill: dict[str, str], categories: list[str]) -> bool:
        """A modal asking for the options a typed command lacked; False when none can be opened."""
        if not self.where.trigger_id:
            return False
        view = kit.command_modal(spec, tr=self.tr, prefill=prefill, metadata=self.where.metadata(),
                                 categories=categories, submit=self.tr("Submit"), close=self.tr("Cancel"))
        try:
            await self._open(view)
        except SlackApiError as exc:
            log.warning("could not open the %s modal: %s", spec.name, _error(exc))
            return False
        return True

    async def _suggest(self, reply: Reply) -> None:
        prompts = kit.suggested_prompts(reply.actions)
        if not prompts:
            return
        try:
            await self.client.assistant_threads_setSuggestedPrompts(
                channel_id=self.where.channel_id, thread_ts=self.where.thread_ts or "", prompts=prompts,
            )
        except SlackApiError as exc:
            log.info("no suggested prompts: %s", _error(exc))

    # --- answers ----------------------------------------------------------------------------
    async def _answer(self, reply: Reply) -> Sent:
        """A GPT's answer: threaded in channels, top level in a DM, where the conversation continues."""
        w = self.where
        if w.thread_ts or w.is_dm:
            return await self._write(reply, w.channel_id, w.thread_ts, head=reply.text)
        if w.message_ts and not w.ephemeral_source:
            return await self._write(reply, w.channel_id, w.message_ts, head=reply.text)
        question = "\n".join(f"> {line}" for line in (w.prompt or "").splitlines()[:10])
        root = await self._post(Reply(text="\n".join(p for p in (reply.text, question) if p)), w.channel_id, None)
        if root is None:  # not a member of this channel: answer once, through the command's response_url
            text = await drain(reply.stream)  # type: ignore[arg-type]
            await self._respond(Reply(actions=reply.actions), text=text, response_type="in_channel")
            return Sent()
        return await self._write(reply, w.channel_id, root, head="")

    async def _write(self, reply: Reply, channel: str, thread: str | None, *, head: str) -> Sent:
        assert reply.stream is not None
        if thread and self.adapter.can_stream(self.where.team_id):
            sent = await self._via_stream(reply, channel, thread, head)
            if sent is not None:
                return sent
        return await self._via_update(reply, channel, thread, head)

    async def _via_stream(self, reply: Reply, channel: str, thread: str, head: str) -> Sent | None:
        """chat.startStream, appendStream as the answer comes, stopStream with the rest and the
        buttons. With a header, the stream starts at once (it says who is answering); without
        one (under `/gpt ask`'s root message, already on screen) it starts with the first words,
        and an answer complete before then is one chat.postMessage: two Web API calls fewer."""
        w, client = self.where, self.client
        # markdown_text is parsed for mentions like any message text: `<!channel>` in an answer
        # would ping everyone, so every piece is escaped (per character, so chunking is safe)
        state: dict[str, Any] = {"ts": None, "shown": 0, "broken": False}

        async def start(text: str) -> None:
            started = await client.chat_startStream(
                channel=channel, thread_ts=thread, recipient_team_id=w.team_id, recipient_user_id=w.user_id,
                markdown_text=kit.escape(text) or None,
            )
            state["ts"] = str(started["ts"])

        if head:
            try:
                await start(f"{head}\n\n")
            except SlackApiError as exc:
                if _error(exc) not in STREAM_UNAVAILABLE:
                    raise
                self._unavailable(exc)
                return None

        async def push(text: str) -> None:
            if state["broken"]:
                return
            try:
                if state["ts"] is None:
                    await start(text[:STREAM_PIECE])
                    state["shown"] = min(len(text), STREAM_PIECE)
                for begin in range(state["shown"], len(text), STREAM_PIECE):
                    piece = text[begin : begin + STREAM_PIECE]
                    await client.chat_appendStream(channel=channel, ts=state["ts"], markdown_text=kit.escape(piece))
                    state["shown"] = begin + len(piece)
            except SlackApiError as exc:
                state["broken"] = True  # e.g. the stream expired: the final write shows it all
                if state["ts"] is None and _error(exc) in STREAM_UNAVAILABLE:
                    self._unavailable(exc)
                else:
                    log.info("streaming failed: %s", _error(exc))

        text = await pace(reply.stream, push, interval=self.adapter.edit_interval)  # type: ignore[arg-type]
        ts: str | None = state["ts"]
        if ts is None:  # nothing on screen yet: the whole answer at once
            posted = await self._post(Reply(actions=reply.actions), channel, thread, text=text)
            return Sent(posted, channel, thread)
        rest = text[state["shown"]:]
        stopped = False
        if not state["broken"] and len(rest) <= STREAM_PIECE:
            try:
                await client.chat_stopStream(channel=channel, ts=ts, markdown_text=kit.escape(rest) or None,
                                             blocks=kit.action_blocks(reply.actions) or None)
                stopped = True
            except SlackApiError as exc:
                log.info("stopStream failed: %s", _error(exc))
        if not stopped:  # show the whole answer and its buttons by editing the message instead
            full = f"{head}\n\n{text}" if head else text
            await client.chat_update(channel=channel, ts=ts, text=kit.fallback_text(reply, text=full),
                                     blocks=kit.message_blocks(Reply(actions=reply.actions), text=full))
        return Sent(ts, channel, thread)

    def _unavailable(self, exc: SlackApiError) -> None:
        team = self.where.team_id
        log.info("chat streaming unavailable in %s (%s): editing messages instead", team, _error(exc))
        self.adapter.no_streaming(team)

    async def _via_update(self, reply: Reply, channel: str, thread: str | None, head: str) -> Sent:
        client = self.client
        first = Reply(text=f"{head}\n\n…" if head else "…")
        ts = await self._post(first, channel, thread)
        if ts is None:
            text = await drain(reply.stream)  # type: ignore[arg-type]
            await self._respond(Reply(actions=reply.actions), text=f"{head}\n\n{text}" if head else text,
                                response_type="in_channel")
            return Sent()

        def joined(text: str) -> str:
            return f"{head}\n\n{text}" if head else text

        async def push(text: str) -> None:
            await client.chat_update(channel=channel, ts=ts, text=kit.fallback_text(first, text=joined(text)),
                                     blocks=kit.text_sections(joined(text))[: kit.MESSAGE_BLOCKS])

        text = await pace(reply.stream, push, interval=self.adapter.edit_interval)  # type: ignore[arg-type]
        final = Reply(actions=reply.actions)
        await client.chat_update(channel=channel, ts=ts, text=kit.fallback_text(final, text=joined(text)),
                                 blocks=kit.message_blocks(final, text=joined(text)))
        return Sent(ts, channel, thread)
