"""Events in: small immutable values saying who did what, where.

An adapter builds one of these from a platform payload and hands it to `Core.handle`. The
`event_id` is the platform's own delivery id; the core uses it to make duplicates harmless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class Actor:
    platform: str
    user_id: str
    display_name: str
    is_admin: bool = False
    locale: str = "en"


@dataclass(frozen=True, slots=True)
class Place:
    """Where an event happened. `workspace_id` is the platform's id (a guild, a Slack team)."""

    workspace_id: str | None
    channel_id: str
    thread_id: str | None = None
    is_dm: bool = False
    message_id: str | None = None
    workspace_name: str = ""


@dataclass(frozen=True, slots=True)
class Command:
    actor: Actor
    place: Place
    event_id: str
    group: str
    name: str
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Autocomplete:
    actor: Actor
    place: Place
    event_id: str
    group: str
    name: str
    option: str
    value: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file someone attached to a message (a Discord attachment, a Slack file share, a console path).

    The core judges `name` and `size` before reading a byte, then calls `fetch(limit)`: the
    adapter's download (Discord's CDN, Slack's `url_private` with the bot token, a local file),
    which reads at most `limit` bytes: the core asks for one more than it accepts, so a result
    that long means the file is too big, and nothing past it is ever read."""

    name: str
    size: int
    content_type: str = ""
    fetch: Callable[[int], Awaitable[bytes]] | None = field(default=None, compare=False, repr=False)


class FileAccessDenied(Exception):
    """An adapter's `fetch` was refused by the platform (a Slack app installed without
    `files:read`): attaching again will not help, so the creator is told who can fix it."""


@dataclass(frozen=True, slots=True)
class Message:
    """A message the bot may answer: in a DM, in a thread it follows, or one that mentions it.

    `content_hidden`: the platform withheld the text (Discord without the message-content intent
    only shows the bot DMs and messages that mention it), so the core can say how to go on."""

    actor: Actor
    place: Place
    event_id: str
    text: str
    mentioned: bool = False
    content_hidden: bool = False
    files: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class Action:
    """A button press, a select choice or a submitted form; `action_id` carries the state."""

    actor: Actor
    place: Place
    event_id: str
    action_id: str
    values: tuple[str, ...] = ()
    form: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HomeOpen:
    actor: Actor
    place: Place
    event_id: str


Event = Command | Autocomplete | Message | Action | HomeOpen


def _scrub(value: object) -> object:
    return value.replace("\x00", "") if isinstance(value, str) else value


def without_nul(event: Event) -> Event:
    """NUL characters mean nothing in chat and PostgreSQL's text refuses them: drop them at the door."""
    actor = replace(event.actor, display_name=event.actor.display_name.replace("\x00", ""))
    if isinstance(event, Command):
        return replace(event, actor=actor, options={k: _scrub(v) for k, v in event.options.items()})
    if isinstance(event, Message):
        return replace(event, actor=actor, text=event.text.replace("\x00", ""),
                       files=tuple(replace(f, name=f.name.replace("\x00", "")) for f in event.files))
    if isinstance(event, Action):
        return replace(event, actor=actor, action_id=event.action_id.replace("\x00", ""),
                       values=tuple(v.replace("\x00", "") for v in event.values),
                       form={k: v.replace("\x00", "") for k, v in event.form.items()})
    if isinstance(event, Autocomplete):
        return replace(event, actor=actor, value=event.value.replace("\x00", ""))
    return replace(event, actor=actor)
