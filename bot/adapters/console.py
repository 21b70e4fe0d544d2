"""The console: a terminal platform with one workspace, channels, DMs and threads.

It lets a newcomer try the whole store with no Discord or Slack token, and it is how the
end-to-end tests and docs drive the core. Lines starting with `/` are commands (parsed from
the catalogue as Slack's text commands are), lines starting with `:` drive the console itself,
anything else is a message in the current place.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import mimetypes
import shlex
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console as RichConsole
from rich.markup import escape
from rich.panel import Panel

from bot.core import Core
from bot.errors import UserError
from bot.events import Action, Actor, Attachment, Command, Event, Message, Place
from bot.replies import Button, Form, Reply, Select, Sent, Target
from bot.textcommand import parse

PLATFORM = "console"
WORKSPACE = "console"

HELP = """Console commands:
  /gpt <subcommand> …     run a command (e.g. /gpt create, /gpt search tutor, /gpt ask tutor hi)
  :as NAME                become another user            :admin on|off   server admin or not
  :in #CHANNEL | :in tN   go to a channel or a thread    :dm             go to your DM with the bot
  :press N|LABEL          press a button of the last reply
  :pick N VALUE           choose VALUE in the select N of the last reply
  :submit k=v | k2=v2     submit the open form           :lang en|fr     your language
  :attach PATH [PATH…]    send files here (a GPT's knowledge, in the DM builder)
  :repeat                 deliver the last event again (a platform retry)
  :where  :help  :quit"""


@dataclass
class _Control:
    kind: str  # button | select
    action_id: str
    label: str
    options: tuple[str, ...] = ()
    message_id: str = ""


@dataclass
class ConsoleState:
    user: str = "alice"
    admin: bool = False
    lang: str = "en"
    channel: str = "general"
    thread: str | None = None
    dm: bool = False
    controls: list[_Control] = field(default_factory=list)
    form: Form | None = None
    last_event: Event | None = None
    threads: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (channel, name)


class ConsoleOutbox:
    """Prints replies for one event; threads and DMs are console places with stable ids."""

    def __init__(self, console: ConsoleAdapter, event: Event) -> None:
        self.console = console
        self.event = event

    async def send(self, reply: Reply) -> Sent:
        return await self.console.render(self.event, reply)


class ConsoleAdapter:
    def __init__(self, core: Core, *, out: RichConsole | None = None, user: str = "alice") -> None:
        self.core = core
        self.out = out or RichConsole(highlight=False)
        self.state = ConsoleState(user=user)
        self._ids = itertools.count(1)
        self._thread_ids = itertools.count(1)

    # --- input ---------------------------------------------------------------------------
    async def run_lines(self, lines: Iterable[str], *, echo: bool = True) -> None:
        for raw in lines:
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if echo:
                self.out.print(f"[dim]{escape(self.prompt())}[/dim] {escape(line)}")
            if not await self.line(line):
                break

    def prompt(self) -> str:
        where = "DM" if self.state.dm else (f"#{self.state.channel} › {self.state.thread}" if self.state.thread else f"#{self.state.channel}")
        return f"{self.state.user}{' (admin)' if self.state.admin else ''} @ {where} >"

    async def line(self, line: str) -> bool:
        """Handle one input line; False when the user asked to quit."""
        line = line.strip()
        if line.startswith(":"):
            return await self._meta(line[1:])
        if line.startswith("/"):
            group, _, rest = line[1:].partition(" ")
            try:
                parsed = parse(group, rest)
            except UserError as exc:
                self._error(self.core.services.tr(self.state.lang, exc.msgid, **exc.params))
                return True
            await self.deliver(Command(self._actor(), self._place(), self._event_id(), group, parsed.spec.name, parsed.options))
            return True
        mentioned = line.startswith("@gptstore")
        text = line.removeprefix("@gptstore").strip(" :,") if mentioned else line
        await self.deliver(Message(self._actor(), self._place(), self._event_id(), text, mentioned=mentioned))
        return True

    async def deliver(self, event: Event) -> None:
        self.state.last_event = event
        await self.core.handle(event, ConsoleOutbox(self, event))

    async def _meta(self, text: str) -> bool:
        word, _, rest = text.partition(" ")
        rest = rest.strip()
        if word == "quit":
            return False
        if word == "help":
            self.out.print(HELP, markup=False)
        elif word == "as" and rest:
            self.state.user, self.state.admin, self.state.dm = rest.lower(), False, False
        elif word == "admin":
            self.state.admin = rest != "off"
        elif word == "lang" and rest in ("en", "fr"):
            self.state.lang = rest
        elif word == "dm":
            self.state.dm, self.state.thread = True, None
        elif word == "in" and rest:
            self._go(rest)
        elif word == "where":
            self.out.print(self.prompt(), markup=False)
        elif word == "press":
            await self._press(rest)
        elif word == "pick":
            await self._pick(rest)
        elif word == "submit":
            await self._submit(rest)
        elif word == "attach" and rest:
            await self._attach(rest)
        elif word == "repeat" and self.state.last_event is not None:
            await self.deliver(self.state.last_event)
        else:
            self._error(f"Unknown console command :{word}. Type :help.")
        return True

    def _go(self, where: str) -> None:
        self.state.dm = False
        if where in self.state.threads:
            self.state.channel, _ = self.state.threads[where]
            self.state.thread = where
        else:
            self.state.channel, self.state.thread = where.lstrip("#"), None

    def _control(self, ref: str, kind: str) -> _Control | None:
        controls = [c for c in self.state.controls if c.kind == kind]
        if ref.isdigit() and 1 <= int(ref) <= len(self.state.controls):
            found = self.state.controls[int(ref) - 1]
            return found if found.kind == kind else None
        return next((c for c in controls if c.label.casefold() == ref.casefold()), None)

    async def _press(self, ref: str) -> None:
        control = self._control(ref, "button")
        if control is None:
            self._error(f"No button {ref!r} in the last reply.")
            return
        await self.deliver(Action(self._actor(), self._place(control.message_id), self._event_id(), control.action_id))

    async def _pick(self, rest: str) -> None:
        ref, _, value = rest.partition(" ")
        control = self._control(ref, "select")
        if control is None:
            self._error(f"No select {ref!r} in the last reply.")
            return
        chosen = next((v for v in control.options if v.casefold() == value.strip().casefold()), value.strip())
        await self.deliver(Action(self._actor(), self._place(control.message_id), self._event_id(), control.action_id, (chosen,)))

    async def _attach(self, rest: str) -> None:
        """Files as a platform delivers them: announced by name and size, read only if the core asks."""
        paths = await asyncio.to_thread(lambda: [Path(raw).expanduser() for raw in shlex.split(rest)])
        sizes = await asyncio.to_thread(lambda: [p.stat().st_size if p.is_file() else None for p in paths])
        files = []
        for path, size in zip(paths, sizes, strict=True):
            if size is None:
                self._error(f"No file {str(path)!r}.")
                return
            files.append(Attachment(path.name, size, mimetypes.guess_type(path.name)[0] or "",
                                    fetch=functools.partial(_read_file, path)))
        await self.deliver(Message(self._actor(), self._place(), self._event_id(), "", files=tuple(files)))

    async def _submit(self, rest: str) -> None:
        if self.state.form is None:
            self._error("No form is open.")
            return
        values = {}
        for part in rest.split("|"):
            key, sep, value = part.partition("=")
            if sep:
                values[key.strip()] = value.strip()
        form, self.state.form = self.state.form, None
        await self.deliver(Action(self._actor(), self._place(), self._event_id(), form.action_id, form=values))

    # --- who and where --------------------------------------------------------------------
    def _actor(self) -> Actor:
        s = self.state
        return Actor(PLATFORM, s.user, s.user.capitalize(), is_admin=s.admin, locale=s.lang)

    def _place(self, message_id: str | None = None) -> Place:
        s = self.state
        if s.dm:
            return Place(None, f"dm-{s.user}", is_dm=True, message_id=message_id)
        return Place(WORKSPACE, s.channel, thread_id=s.thread, message_id=message_id, workspace_name="Console")

    def _event_id(self) -> str:
        return f"{uuid.uuid4().hex[:12]}-{next(self._ids)}"

    # --- output ---------------------------------------------------------------------------
    def _error(self, text: str) -> None:
        self.out.print(f"[red]{escape(text)}[/red]")

    async def render(self, event: Event, reply: Reply) -> Sent:
        message_id = f"m{next(self._ids)}"
        channel = self._place().channel_id
        thread_id: str | None = None
        prefix = ""
        if reply.target is Target.DM:
            channel = f"dm-{event.actor.user_id}"
            prefix = f"(DM to {event.actor.user_id}) "
        elif reply.target is Target.NEW_THREAD:
            thread_id = f"t{next(self._thread_ids)}"
            self.state.threads[thread_id] = (event.place.channel_id, reply.thread_name)
            prefix = f"(new thread {thread_id}: {reply.thread_name}) "
        if reply.ephemeral:
            prefix += "(only you) "
        if reply.form is not None:
            self.state.form = reply.form
            fields = ", ".join(f"{f.id} ({f.label})" for f in reply.form.fields)
            self.out.print(f"[bold]{escape(reply.form.title)}[/bold] — form: {escape(fields)}. Use :submit {reply.form.fields[0].id}=…")
            return Sent(message_id, channel, thread_id)
        if reply.text:
            self.out.print(f"[cyan]gptstore[/cyan] {escape(prefix)}{escape(reply.text)}")
        elif prefix:
            self.out.print(f"[cyan]gptstore[/cyan] {escape(prefix)}")
        for card in (reply.card, *reply.cards):
            if card is None:
                continue
            body = [escape(card.description)] if card.description else []
            body += [f"[bold]{escape(f.name)}[/bold]: {escape(f.value)}" for f in card.fields]
            if card.footer:
                body.append(f"[dim]{escape(card.footer)}[/dim]")
            self.out.print(Panel("\n".join(body) or " ", title=escape(card.title), expand=False))
        if reply.stream is not None:
            parts = []
            async for chunk in reply.stream:
                parts.append(chunk)
                self.out.print(escape(chunk), end="", soft_wrap=True)
            self.out.print()
        self._remember(reply.actions, message_id)
        if thread_id and not reply.ephemeral:
            self.out.print(f"[dim](:in {thread_id} to write in the thread)[/dim]")
        return Sent(message_id, channel, thread_id)

    def _remember(self, actions: tuple[Button | Select, ...], message_id: str) -> None:
        if not actions:
            return
        self.state.controls = []
        shown = []
        for index, item in enumerate(actions, 1):
            if isinstance(item, Button):
                self.state.controls.append(_Control("button", item.action_id, item.label, message_id=message_id))
                shown.append(f"[{index}] {item.label}")
            else:
                values = tuple(o.value for o in item.options)
                self.state.controls.append(_Control("select", item.action_id, item.placeholder, values, message_id))
                shown.append(f"[{index}] {item.placeholder}: " + " / ".join(o.label for o in item.options))
        self.out.print("[dim]" + escape("  ".join(shown)) + "[/dim]")


def split_script(text: str) -> list[str]:
    """Script files are lines; a trailing backslash continues a line (for multi-line answers)."""
    lines, current = [], ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            current += raw[:-1] + "\n"
            continue
        lines.append(current + raw)
        current = ""
    if current:
        lines.append(current)
    return lines


__all__ = ["ConsoleAdapter", "split_script"]


async def _read_file(path: Path, limit: int) -> bytes:
    def read() -> bytes:
        with path.open("rb") as handle:
            return handle.read(limit)

    return await asyncio.to_thread(read)
