"""Slack payloads → core events: slash commands, messages, the assistant pane, Home, buttons, modals.

The listener half of the Slack adapter (`bot/adapters/slack.py` does the wiring). Each method runs
after Bolt has already acknowledged the request: it finds who and where (users.info, the modal's
private_metadata, the DM channel for the Home tab), builds one neutral event with Slack's own
delivery id, and hands it to the core with a `SlackOutbox` for the replies. Nothing here decides
anything about GPTs, permissions or money. A message's shared files go along as `Attachment`s whose
bytes are downloaded (with that workspace's bot token) only if the core asks (`slack_files`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters import slack_blocks as kit
from bot.adapters.slack_files import attachments_of
from bot.adapters.slack_outbox import SlackOutbox, Surface, Where
from bot.catalog import CATALOG, COMMANDS, CommandSpec, OptionType
from bot.commands.builder import CATEGORIES
from bot.errors import UserError
from bot.events import Action, Actor, Autocomplete, Command, Event, HomeOpen, Message, Place
from bot.replies import Reply
from bot.textcommand import parse

if TYPE_CHECKING:
    from bot.bootstrap import App

PLATFORM = "slack"
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]+))?>")
_USER = re.compile(r"<@[UW][A-Z0-9]+\|([^>]+)>")


def plain(text: str, bot_user_id: str | None = None) -> str:
    """Slack's wire text → what the person typed: the bot's mention dropped, links and entities undone."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    text = _LINK.sub(lambda m: m[2] or m[1], text)
    text = _USER.sub(lambda m: f"@{m[1]}", text)  # `<@U123|bob>` (escaped slash commands) reads "@bob"
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


class SlackEvents:
    """Mixed into `SlackAdapter`, which provides the app, the people cache and the DM channels."""

    app: App
    edit_interval: float

    def can_stream(self, team_id: str) -> bool:
        raise NotImplementedError

    def no_streaming(self, team_id: str) -> None:
        raise NotImplementedError

    async def actor(self, client: AsyncWebClient, team_id: str, user_id: str, fallback: str = "") -> Actor:
        raise NotImplementedError

    async def dm_channel(self, client: AsyncWebClient, team_id: str, user_id: str) -> str:
        raise NotImplementedError

    def tr(self, actor: Actor) -> Callable[..., str]:
        raise NotImplementedError

    async def _handle(self, event: Event, client: AsyncWebClient, surface: Surface, where: Where) -> None:
        outbox = SlackOutbox(self, client, surface, where, self.tr(event.actor))
        await self.app.core.handle(event, outbox)

    # --- slash commands ---------------------------------------------------------------------
    async def _command(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        team, user, channel = body.get("team_id") or "", body["user_id"], body["channel_id"]
        group = str(body.get("command", "/gpt")).lstrip("/")
        actor = await self.actor(client, team, user, body.get("user_name", ""))
        place = Place(team, channel, is_dm=channel.startswith("D"), workspace_name=body.get("team_domain") or "")
        where = Where(team, user, channel, trigger_id=body.get("trigger_id"), response_url=body.get("response_url"))
        text = plain(body.get("text") or "") or ("help" if (group, "help") in COMMANDS else "")
        event_id = f"cmd:{body.get('trigger_id') or time.time_ns()}"
        try:
            parsed = parse(group, text)
        except UserError as exc:
            await self._unparsed(client, actor, where, group, text, exc)
            return
        prompt = parsed.options.get("prompt")
        where = Where(team, user, channel, trigger_id=where.trigger_id, response_url=where.response_url,
                      prompt=str(prompt) if prompt else None)
        event = Command(actor, place, event_id, group, parsed.spec.name, parsed.options)
        await self._handle(event, client, Surface.COMMAND, where)

    async def _unparsed(self, client: AsyncWebClient, actor: Actor, where: Where, group: str, text: str,
                        error: UserError) -> None:
        """A modal for a command typed without its options, else the error and the usage lines."""
        tr = self.tr(actor)
        outbox = SlackOutbox(self, client, Surface.COMMAND, where, tr)
        name, _, rest = text.partition(" ")
        spec = COMMANDS.get((group, name.lower()))
        if spec is not None and not (spec.admin and not actor.is_admin):
            prefill, missing = _partial(spec, rest)
            if missing and await outbox.open_command(spec, prefill, CATEGORIES):
                return
        lines = [tr(error.msgid, **error.params), ""] if text else []
        lines.append(tr("Commands:"))
        lines += [f"`{s.usage}` — {tr(s.description)}" for s in CATALOG if s.group == group]
        await outbox.send(Reply(text="\n".join(lines), ephemeral=True))

    # --- messages, mentions, the assistant pane ---------------------------------------------
    async def _message(self, body: dict[str, Any], client: AsyncWebClient, bot_user_id: str | None, *,
                       mentioned: bool, status: bool = False) -> None:
        ev = body["event"]
        if ev.get("subtype") not in (None, "file_share", "thread_broadcast") or ev.get("bot_id") or not ev.get("user"):
            return
        team = body.get("team_id") or ev.get("team") or ""
        channel, ts = ev["channel"], ev["ts"]
        thread = ev.get("thread_ts") if ev.get("thread_ts") not in (None, ts) else None
        is_dm = ev.get("channel_type") == "im" or channel.startswith("D")
        raw = ev.get("text") or ""
        if not mentioned and not is_dm:
            # channel chatter is not ours; a mention arrives again as app_mention and is answered there
            if thread is None or (bot_user_id and f"<@{bot_user_id}" in raw):
                return
        actor = await self.actor(client, team, ev["user"])
        if status and thread:
            try:
                await client.assistant_threads_setStatus(channel_id=channel, thread_ts=thread,
                                                         status=self.tr(actor)("is thinking…"))
            except SlackApiError:
                pass  # a thread in a plain DM, not an assistant thread
        text = plain(raw, bot_user_id).lstrip(":, ")
        files = await attachments_of(ev, client) if ev.get("files") else ()
        event = Message(actor, Place(team, channel, thread_id=thread, is_dm=is_dm, message_id=ts),
                        str(body.get("event_id") or f"msg:{channel}:{ts}"), text, mentioned=mentioned, files=files)
        await self._handle(event, client, Surface.MESSAGE, Where(team, ev["user"], channel, thread, ts))

    async def _assistant_started(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        thread = body["event"]["assistant_thread"]
        team, user = body.get("team_id") or "", thread["user_id"]
        actor = await self.actor(client, team, user)
        place = Place(team, thread["channel_id"], thread_id=thread["thread_ts"], is_dm=True)
        event = Action(actor, place, str(body.get("event_id")), "assistant:greet")
        await self._handle(event, client, Surface.ASSISTANT, Where(team, user, thread["channel_id"], thread["thread_ts"]))

    async def _home(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        ev = body["event"]
        team = body.get("team_id") or ""
        actor = await self.actor(client, team, ev["user"])
        event = HomeOpen(actor, Place(team, ev.get("channel") or "", is_dm=True), str(body.get("event_id") or ""))
        await self._handle(event, client, Surface.HOME, Where(team, ev["user"], ev.get("channel") or ""))

    # --- buttons, selects, modals -----------------------------------------------------------
    async def _action(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        act = body["actions"][0]
        team, user = _team(body), body["user"]["id"]
        actor = await self.actor(client, team, user, body["user"].get("name", ""))
        container, view = body.get("container") or {}, body.get("view") or {}
        if container.get("type") == "message" or body.get("message"):
            message = body.get("message") or {}
            channel = container.get("channel_id") or (body.get("channel") or {}).get("id", "")
            ts = container.get("message_ts") or message.get("ts")
            thread = message.get("thread_ts") or container.get("thread_ts")
            where = Where(team, user, channel, thread if thread != ts else None, ts, body.get("trigger_id"),
                          body.get("response_url"), bool(container.get("is_ephemeral")))
        elif view.get("type") == "modal":
            where = await self._from_metadata(client, team, user, view.get("private_metadata"), body.get("trigger_id"))
        else:  # the Home tab: answers go to the app's Messages tab
            channel = await self.dm_channel(client, team, user)
            where = Where(team, user, channel, trigger_id=body.get("trigger_id"), from_home=True)
        chosen = act.get("selected_option") or {}
        values = tuple(str(o["value"]) for o in act.get("selected_options") or [chosen] if o.get("value") is not None)
        place = Place(team, where.channel_id, where.thread_ts, where.is_dm, where.message_ts, _domain(body))
        event_id = f"act:{body.get('trigger_id') or act.get('action_ts')}"
        await self._handle(Action(actor, place, event_id, act["action_id"], values), client, Surface.ACTION, where)

    async def _submission(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        view = body["view"]
        team, user = _team(body), body["user"]["id"]
        actor = await self.actor(client, team, user, body["user"].get("name", ""))
        where = await self._from_metadata(client, team, user, view.get("private_metadata"), body.get("trigger_id"))
        values = kit.form_values((view.get("state") or {}).get("values") or {})
        place = Place(team, where.channel_id, where.thread_ts, where.is_dm, where.message_ts, _domain(body))
        event_id = f"view:{body.get('trigger_id') or view.get('id')}:{view.get('hash', '')}"
        callback = str(view.get("callback_id") or "")
        event: Event
        if callback.startswith("cmd:"):
            _, group, name = (callback.split(":", 2) + ["", ""])[:3]
            options = {k: v for k, v in values.items() if v}
            if options.get("prompt"):
                where = Where(where.team_id, user, where.channel_id, where.thread_ts, where.message_ts,
                              where.trigger_id, from_home=where.from_home, prompt=options["prompt"])
            event = Command(actor, place, event_id, group, name, options)
        else:
            event = Action(actor, place, event_id, callback, form=values)
        await self._handle(event, client, Surface.FORM, where)

    async def _from_metadata(self, client: AsyncWebClient, team: str, user: str, raw: str | None,
                             trigger_id: str | None) -> Where:
        try:
            meta = json.loads(raw or "{}")
        except ValueError:
            meta = {}
        channel = meta.get("c") or await self.dm_channel(client, team, user)
        return Where(team, user, channel, meta.get("t"), meta.get("m"), trigger_id, from_home=bool(meta.get("h")))

    async def _options(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """GPT suggestions for an external select in a command modal (the core's autocomplete)."""
        callback = str((body.get("view") or {}).get("callback_id") or "")
        if not callback.startswith("cmd:"):
            return []
        _, group, name = (callback.split(":", 2) + ["", ""])[:3]
        user, team = body["user"]["id"], _team(body)
        request = Autocomplete(Actor(PLATFORM, user, ""), Place(team, ""), "", group, name,
                               str(body.get("block_id") or ""), str(body.get("value") or ""))
        choices = await self.app.core.autocomplete(request)
        return [{"text": kit.plain(c.name, 75), "value": c.value[:150]} for c in choices[:100]]


def _team(body: dict[str, Any]) -> str:
    return str((body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or "")


def _domain(body: dict[str, Any]) -> str:
    return str((body.get("team") or {}).get("domain") or "")


def _partial(spec: CommandSpec, rest: str) -> tuple[dict[str, str], bool]:
    """What a half-typed command already says, and whether a required option is missing."""
    values: dict[str, str] = {}
    remaining = rest.strip()
    for index, option in enumerate(spec.options):
        if not remaining:
            break
        if index == len(spec.options) - 1 and option.type is not OptionType.INTEGER:
            values[option.name], remaining = remaining, ""
        else:
            head, _, remaining = remaining.partition(" ")
            values[option.name], remaining = head, remaining.strip()
    missing = any(o.required and o.name not in values for o in spec.options)
    return values, missing
