"""Replies out: a neutral message that each adapter renders its own way.

A `Reply` with a `stream` is an answer still being written: the adapter posts `text` at once,
then appends the streamed chunks, editing at the pace its platform allows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CardField:
    name: str
    value: str
    inline: bool = True


@dataclass(frozen=True, slots=True)
class Card:
    title: str
    description: str = ""
    fields: tuple[CardField, ...] = ()
    footer: str = ""


class Style(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    DANGER = "danger"


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    action_id: str
    style: Style = Style.SECONDARY


@dataclass(frozen=True, slots=True)
class Option:
    label: str
    value: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Select:
    action_id: str
    placeholder: str
    options: tuple[Option, ...]


@dataclass(frozen=True, slots=True)
class FormField:
    id: str
    label: str
    long: bool = False
    required: bool = True
    max_length: int = 1000
    value: str = ""


@dataclass(frozen=True, slots=True)
class Form:
    """A modal: submitted as an `Action` with the same action_id and the values in `form`."""

    action_id: str
    title: str
    fields: tuple[FormField, ...]


class Target(StrEnum):
    HERE = "here"  # where the event happened (a reply to a command, or the same thread)
    DM = "dm"  # the actor's direct messages with the bot
    NEW_THREAD = "new_thread"  # a new thread opened on the message the action came from


@dataclass(frozen=True, slots=True, eq=False)
class Reply:
    text: str = ""
    card: Card | None = None
    cards: tuple[Card, ...] = ()
    actions: tuple[Button | Select, ...] = ()
    ephemeral: bool = False
    target: Target = Target.HERE
    thread_name: str = ""
    edit: bool = False  # replace the message the action came from (paging)
    form: Form | None = None
    stream: AsyncIterator[str] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Choice:
    """One autocomplete suggestion."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Sent:
    """What the platform made of a reply: ids the core keeps to follow the conversation."""

    message_id: str | None = None
    channel_id: str | None = None
    thread_id: str | None = None


class DeliveryRefused(Exception):
    """The platform refused a message (for example, the user's DMs are closed)."""


class Outbox(Protocol):
    """Implemented by each adapter for one event: sends replies where the event happened."""

    async def send(self, reply: Reply) -> Sent: ...
