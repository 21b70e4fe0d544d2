"""The people of the platform benchmark: they `/gpt ask` on a fake Discord or a fake Slack.

A driver owns one fake platform (in this process) and one bot process (bench/platform_bot.py)
connected to it. `ask` sends the command the way the platform does (a gateway INTERACTION_CREATE;
a signed slash-command POST, sent from a process of its own: bench/slack_sender.py) and returns at
once; `outcome` reads, from the fake's own record of every REST / Web API call (timestamped with
`time.perf_counter()` on arrival), when each answer was first visible, when its first words
showed, when it was complete, and every edit in between. Each ask happens in a channel of its
own, so that every message can be traced to its ask.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

from bench.platform_bot import SECRET
from bench.slack_sender import SenderProcess, SentElsewhere
from tests.fakes.discord_fake import FakeDiscord, InteractionHandle
from tests.fakes.slack_fake import FakeSlackAPI

GUILD = 1000 << 22
OWNER = 800000000000000001
USER0 = 810000000000000000
CHANNEL0 = 900000000000000000


@dataclass
class Outcome:
    sent: float  # when the platform delivered the command to the bot
    first: float | None = None  # the first thing the person saw (a reply, or "thinking…")
    words: float | None = None  # the first write that shows the answer's first word
    done: float | None = None  # the final edit: the whole answer and its buttons
    edits: list[float] = field(default_factory=list)  # every edit of the answer's message, final included
    complete: bool = False
    ack: float | None = None  # Slack: seconds until the HTTP acknowledgement


class BotProcess:
    """bench/platform_bot.py as a child process, with its little stdin protocol."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.platform_bot", *self.args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if line.strip() != b"READY":
            raise RuntimeError(f"the bot process did not start: {line!r}")

    async def ask(self, command: str) -> Any:
        assert self.proc and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 30))

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        assert self.proc.stdin
        self.proc.stdin.write(b"quit\n")
        await self.proc.stdin.drain()
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class DiscordDriver:
    name = "discord"

    def __init__(self, database_url: str, llm_url: str, people: int) -> None:
        self.fake = FakeDiscord()
        self.people = people
        self.bot_args = ["--platform", "discord", "--database", database_url, "--llm", llm_url]
        self.bot: BotProcess | None = None
        self.handles: dict[str, InteractionHandle] = {}
        self._waiting: list[InteractionHandle] = []  # asked, answer not complete yet
        self._finished = 0

    async def start(self) -> None:
        await self.fake.start()
        self.fake.add_guild(
            GUILD, "Bench", owner_id=OWNER,
            channels=[{"id": CHANNEL0 + i, "name": f"c{i}"} for i in range(self.people)],
            members=[{"id": USER0 + i, "name": f"user{i}"} for i in range(self.people)],
        )
        self.bot = BotProcess([*self.bot_args, "--fake", self.fake.url])
        await self.bot.start()
        await self.fake.wait_ready(timeout=30)

    async def ask(self, i: int, slug: str, tag: str, *, member: int) -> None:
        """Ask `i` (in a channel of its own) by `member`."""
        payload = self.fake.slash_command(guild_id=GUILD, channel_id=CHANNEL0 + i, user_id=USER0 + member, name="gpt",
                                          subcommand="ask", options={"gpt": slug, "prompt": f"{tag} What can you do?"})
        self.handles[tag] = handle = await self.fake.interact(payload)
        self._waiting.append(handle)

    def finished(self) -> int:
        """Complete answers so far. Polled every millisecond in this process, which also serves
        the fake Discord: it only looks at the answers still awaited, so it does not slow the fake."""
        still = [h for h in self._waiting if not ((m := h.original) and m.get("components"))]
        self._finished += len(self._waiting) - len(still)
        self._waiting = still
        return self._finished

    def outcome(self, tag: str, answer: str) -> Outcome:
        handle = self.handles[tag]
        out = Outcome(sent=handle.dispatched_at or 0.0, first=handle.callback_at)
        edits = [c for c in handle.calls if c.method == "PATCH" and "/messages/" in c.path and c.status < 300]
        out.edits = [c.timestamp for c in edits]
        out.words = next((c.timestamp for c in handle.calls if c.status < 300 and _shows(c.json, answer)), None)
        message = handle.original
        out.complete = bool(message and answer in message.get("content", "") and message.get("components"))
        out.done = out.edits[-1] if out.edits else handle.callback_at
        return out

    def global_calls(self, start: float, end: float) -> list[float]:
        """REST calls that count against Discord's global rate limit: all but interaction responses
        and their webhooks."""
        return [c.timestamp for c in self.fake.calls if start <= c.timestamp <= end
                and not c.path.startswith(("/interactions/", "/webhooks/"))]

    async def stop(self) -> None:
        if self.bot:
            await self.bot.stop()
        await self.fake.stop()


class SlackDriver:
    name = "slack"

    def __init__(self, database_url: str, llm_url: str, people: int) -> None:
        self.fake = FakeSlackAPI()
        self.people = people
        self.port = _free_port()
        self.bot_args = ["--platform", "slack", "--database", database_url, "--llm", llm_url, "--port", str(self.port)]
        self.bot: BotProcess | None = None
        self.wire: SenderProcess | None = None
        self.sender: SentElsewhere | None = None
        self.sent: dict[str, tuple[str, float, float]] = {}  # tag -> (channel, sent, ack seconds)
        self._asked: set[str] = set()  # the channels asked in (one per ask)
        self._done: set[str] = set()  # those whose answer is complete
        self._scanned = 0  # how much of the fake's call record `finished` has read

    async def start(self) -> None:
        await self.fake.start()
        for i in range(self.people):
            self.fake.add_user(f"U{i:07d}", f"user{i}")
            self.fake.add_channel(f"C{i:07d}", f"c{i}")
        self.bot = BotProcess([*self.bot_args, "--fake", self.fake.base_url])
        await self.bot.start()
        self.wire = SenderProcess()
        await self.wire.start()
        self.sender = SentElsewhere(f"http://127.0.0.1:{self.port}/slack/events", SECRET, fake=self.fake,
                                    wire=self.wire)

    async def ask(self, i: int, slug: str, tag: str, *, member: int) -> None:
        """Ask `i` (in a channel of its own) by `member`."""
        assert self.sender is not None
        channel = f"C{i:07d}"
        result = await self.sender.slash_command(command="/gpt", text=f"ask {slug} {tag} What can you do?",
                                                 user_id=f"U{member:07d}", channel_id=channel)
        if result.status != 200:
            raise RuntimeError(f"Slack command refused: {result.status} {result.text[:200]}")
        self.sent[tag] = (channel, result.sent, result.elapsed)  # as timed by the process that sent it
        self._asked.add(channel)

    def _calls(self, channel: str) -> list[Any]:
        return [c for c in self.fake.calls if c.args.get("channel") == channel and c.ok]

    def finished(self) -> int:
        """Complete answers so far. Polled every millisecond in this process, which also serves
        the fake Slack: it reads only the calls that came since the last poll (rescanning the whole
        record made the fake, and so every answer, slower the longer the benchmark ran)."""
        calls = self.fake.calls
        for call in itertools.islice(calls, self._scanned, None):
            if _answer_write(call) and call.ok and call.args.get("blocks"):  # the last one carries the buttons
                self._done.add(str(call.args.get("channel")))
        self._scanned = len(calls)
        return len(self._done & self._asked)

    def outcome(self, tag: str, answer: str) -> Outcome:
        channel, sent, ack = self.sent[tag]
        calls = self._calls(channel)
        out = Outcome(sent=sent, ack=ack, first=calls[0].timestamp if calls else None)
        edits = [c for c in calls if _answer_write(c)]
        out.edits = [c.timestamp for c in edits]
        out.words = next((c.timestamp for c in calls if _shows(c.args, answer)), None)
        out.done = out.edits[-1] if out.edits else None
        text = " ".join(m.get("text") or "" for m in self.fake.messages(channel))
        out.complete = answer in text and any(c.args.get("blocks") for c in edits)
        return out

    def global_calls(self, start: float, end: float) -> list[float]:
        return []

    async def stop(self) -> None:
        if self.wire:
            await self.wire.close()
        if self.bot:
            await self.bot.stop()
        await self.fake.close()


def _shows(sent: Any, answer: str) -> bool:
    """Whether a request's body (Discord's JSON, Slack's arguments) carries the answer's first word."""
    return answer.split(" ", 1)[0] in str(sent or "")


def _answer_write(call: Any) -> bool:
    """A Web API call that writes the answer under `/gpt ask`'s root message: a streaming call, an
    edit, or the answer posted whole in the thread (one that was complete before it was shown)."""
    if call.method == "chat.postMessage":
        return bool(call.args.get("thread_ts"))
    return call.method in ("chat.appendStream", "chat.stopStream", "chat.update")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
