"""The command catalogue, declared once: names, typed options, who may run them.

Command modules declare their commands with `@command(...)` and their buttons with
`@action(prefix)`; adapters walk `CATALOG` to register commands natively, and the core
dispatches through `COMMANDS` and `ACTIONS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bot.i18n import N_

if TYPE_CHECKING:
    from bot.context import Ctx


class OptionType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    GPT = "gpt"  # a GPT's slug or name, autocompleted
    CATEGORY = "category"


@dataclass(frozen=True, slots=True)
class OptionSpec:
    name: str
    description: str
    type: OptionType = OptionType.STRING
    required: bool = True
    min_value: int | None = None
    max_value: int | None = None
    max_length: int | None = None

    @property
    def autocomplete(self) -> bool:
        return self.type is OptionType.GPT


Handler = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    group: str
    name: str
    description: str
    options: tuple[OptionSpec, ...]
    handler: Handler
    admin: bool = False
    # The command's first reply may be a form. Platforms where a form can only be the first
    # response (Discord's modals) then wait for that reply before acknowledging; every other
    # command is acknowledged at once, so the person sees "thinking…" without waiting for the core.
    opens_form: bool = False

    @property
    def usage(self) -> str:
        parts = [f"/{self.group} {self.name}"]
        for option in self.options:
            parts.append(f"<{option.name}>" if option.required else f"[{option.name}]")
        return " ".join(parts)


GROUPS = {"gpt": N_("Find, use and build GPTs"), "gpt-admin": N_("Decide which GPTs this server allows")}
CATALOG: list[CommandSpec] = []
COMMANDS: dict[tuple[str, str], CommandSpec] = {}
ACTIONS: dict[str, Callable[[Ctx, list[str]], Awaitable[None]]] = {}


def command(
    group: str, name: str, description: str, *options: OptionSpec, admin: bool = False, opens_form: bool = False
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        spec = CommandSpec(group, name, description, tuple(options), handler, admin, opens_form)
        if (group, name) in COMMANDS:
            raise RuntimeError(f"/{group} {name} declared twice")
        CATALOG.append(spec)
        COMMANDS[(group, name)] = spec
        return handler

    return register


def action(prefix: str) -> Callable[[Any], Any]:
    """Register a handler for action ids `prefix:arg1:arg2…`; it receives the args."""

    def register(handler: Any) -> Any:
        if prefix in ACTIONS:
            raise RuntimeError(f"action {prefix} declared twice")
        ACTIONS[prefix] = handler
        return handler

    return register


def opt(name: str, description: str, kind: OptionType = OptionType.STRING, **kw: Any) -> OptionSpec:
    return OptionSpec(name, description, kind, **kw)
