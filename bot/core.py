"""The core: one `handle(event, outbox)` for every platform.

It makes duplicate deliveries harmless, finds who and where, dispatches to the command
modules, and turns every failure into a reply a person can read: a `UserError` is shown as it
is (translated), anything else is logged with an incident id and only that id is shown.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot import commands
from bot.admission import Admission
from bot.catalog import ACTIONS, COMMANDS, CommandSpec, OptionType
from bot.context import Ctx, Services
from bot.errors import UserError
from bot.events import Action, Autocomplete, Command, Event, HomeOpen, Message, without_nul
from bot.i18n import N_, normalize_locale
from bot.logs import current_event
from bot.replies import Choice, Outbox, Reply
from store import search
from store.accounts import SEEN, known_actor, resolve_actor, set_workspace_active, viewer_here
from store.adapter_state import get_value, put_value
from store.models import utcnow

log = logging.getLogger(__name__)
RESTARTING = N_("The bot is restarting. Please try again in a moment.")


class Core:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._inflight: set[asyncio.Task[Any]] = set()
        self._accepting = True
        self._admission = Admission(services.settings.starts_at_once)
        commands.load()

    async def handle(self, event: Event, out: Outbox) -> None:
        event = without_nul(event)
        locale = normalize_locale(event.actor.locale, self.services.settings.default_locale)
        current_event.set(event.event_id or "-")
        if not self._accepting:
            await self._say(out, locale, RESTARTING)
            return
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            async with self._admission.turn(out) as turn:
                await self._handle(event, turn, locale)
        finally:
            if task is not None:
                self._inflight.discard(task)

    def urgent(self) -> AbstractContextManager[Callable[[], None]]:
        """For an adapter sending what a person is waiting to see (an acknowledgement): no event
        starts its work meanwhile; call the function given once the request is written. See
        `Admission.urgent`."""
        return self._admission.urgent()

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop taking events; let answers in flight finish for half the grace, then cut them
        with a message (streams check `services.cutting` between chunks), then cancel what is left."""
        self._accepting = False
        pending = {t for t in self._inflight if t is not asyncio.current_task()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=grace / 2)
        if pending:
            self.services.cutting.set()
            _, pending = await asyncio.wait(pending, timeout=grace / 2)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)

    async def _handle(self, event: Event, out: Outbox, locale: str) -> None:
        try:
            ctx = await self._context(event, out, locale)
            if ctx is None:
                log.info("duplicate delivery ignored", extra={"event_id": event.event_id})
                return
            locale = ctx.locale
            await self._dispatch(ctx)
        except UserError as exc:
            await self._say(out, locale, exc.msgid, **exc.params)
        except Exception as exc:
            incident = secrets.token_hex(4)
            if not _store_down(exc):
                log.exception("unhandled error [%s]", incident, extra={"event_id": event.event_id})
                await self._say(
                    out, locale, "Something went wrong on our side. (incident {incident})", incident=incident
                )
                return
            log.error(
                "store unavailable [%s]: %s: %s", incident, type(exc).__name__, str(exc).splitlines()[0][:300] if str(exc) else "",
                extra={"event_id": event.event_id},
            )
            await self._say(
                out, locale, "The store is briefly unavailable. Please try again in a moment. (incident {incident})",
                incident=incident,
            )

    async def autocomplete(self, event: Autocomplete) -> list[Choice]:
        """GPT names this user may see, best matches first; cheap, no writes, no dedup."""
        event = without_nul(event)  # type: ignore[assignment]
        spec = COMMANDS.get((event.group, event.name))
        option = next((o for o in spec.options if o.name == event.option), None) if spec else None
        if option is None or option.type is not OptionType.GPT:
            return []
        async with self.services.db.lookups() as session:  # reads only: no transaction on PostgreSQL
            # a workspace's policy hides what its members may not use; its admins' own commands see past it
            viewer, workspace = await viewer_here(
                session, platform=event.actor.platform, user_id=event.actor.user_id,
                workspace_id=None if spec is None or spec.admin else event.place.workspace_id)
            found = await search.autocomplete(session, event.value[:100], viewer=viewer, limit=25, workspace=workspace)
        return [Choice(name=name[:100], value=slug) for slug, name in found]

    async def workspaces_joined(self, platform: str, workspaces: Iterable[tuple[str, str]]) -> None:
        """The bot is in these workspaces (external id, name): it just joined one, or found them
        at start-up (it may have been added while it was down). Each exists and is active."""
        batch = list(workspaces)
        for start in range(0, len(batch), 200):
            async with self.services.db.session() as session:
                for external_id, name in batch[start:start + 200]:
                    await set_workspace_active(session, platform=platform, external_id=external_id, name=name, active=True)

    async def workspace_left(self, platform: str, external_id: str) -> None:
        """The bot was removed from a workspace: retire it (the row stays, so a return resumes it)."""
        async with self.services.db.session() as session:
            await set_workspace_active(session, platform=platform, external_id=external_id, active=False)

    async def adapter_state(self, key: str) -> str | None:
        """A small fact an adapter keeps across restarts and replicas (see store/adapter_state.py)."""
        async with self.services.db.reader() as session:
            return await get_value(session, key)

    async def set_adapter_state(self, key: str, value: str) -> None:
        async with self.services.db.session() as session:
            await put_value(session, key, value)

    async def _say(self, out: Outbox, locale: str, msgid: str, **params: Any) -> None:
        try:
            await out.send(Reply(text=self.services.tr(locale, msgid, **params), ephemeral=True))
        except Exception:
            log.exception("could not deliver an error message")

    @staticmethod
    def _delivery(event: Event) -> str | None:
        """The key a delivery is recorded under (a retry, or another replica, finds it), if any."""
        if isinstance(event, (Autocomplete, HomeOpen)) or not event.event_id:
            return None
        return f"{event.actor.platform}:{event.event_id}"[:160]

    async def _context(self, event: Event, out: Outbox, locale: str) -> Ctx | None:
        """Who and where, or None for a duplicate delivery. Usually everyone is known and nothing
        changed: `known_actor` reads them and records the delivery (on PostgreSQL in one statement
        that commits on its own: one round trip, bench/overhead.py). A new person or workspace, or
        a new name, takes the ORM's way, the delivery recorded in the same transaction as what is
        written, so that a failure there leaves the delivery unseen."""
        actor, place = event.actor, event.place
        who: dict[str, Any] = {
            "platform": actor.platform, "user_id": actor.user_id, "display_name": actor.display_name,
            "locale": locale if actor.locale else "", "workspace_id": place.workspace_id,
            "workspace_name": place.workspace_name,
        }
        delivery = self._delivery(event)
        async with self.services.db.autocommit() as statements:
            known = await known_actor(statements, **who, delivery=delivery)
        if known is not None:
            if not known.first:
                return None
            account, workspace = known.account, known.workspace
        else:
            async with self.services.db.session() as session:
                if delivery is not None and not (await session.execute(
                        SEEN, {"key": delivery, "created_at": utcnow()})).rowcount:  # type: ignore[attr-defined]
                    return None
                account, workspace = await resolve_actor(session, **who)
        if not actor.locale:  # the platform does not say (a Discord message): their last known language
            locale = normalize_locale(account.locale, locale)
        return Ctx(self.services, event, out, account, workspace, locale)

    async def _dispatch(self, ctx: Ctx) -> None:
        event = ctx.event
        if isinstance(event, Command):
            spec = COMMANDS.get((event.group, event.name))
            if spec is None:
                raise UserError("Unknown command `/{group} {name}`. Try `/gpt help`.", group=event.group, name=event.name)
            if spec.admin and not event.actor.is_admin:
                raise UserError("Only this server's admins can use `/{group} {name}`.", group=spec.group, name=spec.name)
            await spec.handler(ctx, **_checked_options(spec, event.options))
        elif isinstance(event, Action):
            prefix, *args = event.action_id.split(":")
            handler = ACTIONS.get(prefix)
            if handler is None:
                raise UserError("This button is no longer available.")
            await handler(ctx, args)
        elif isinstance(event, Message):
            await commands.route_message(ctx)
        elif isinstance(event, HomeOpen):
            await commands.open_home(ctx)


def _store_down(error: Exception) -> bool:
    """The database could not be reached: a lock or pool timeout, the server gone, or a connection
    that died while it sat in the pool (SQLAlchemy then renews the pool: the next request gets a
    fresh connection; see PING_AFTER_IDLE in store/db.py)."""
    if isinstance(error, (OperationalError, PoolTimeout, ConnectionError, OSError)):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def _checked_options(spec: CommandSpec, given: Any) -> dict[str, Any]:
    """Typed, bounded options, or a UserError that says what is accepted."""
    values: dict[str, Any] = {}
    for option in spec.options:
        value = given.get(option.name)
        if value is None or value == "":
            if option.required:
                raise UserError("Missing {option}. Usage: `{usage}`", option=option.name, usage=spec.usage)
            values[option.name] = None
            continue
        if option.type is OptionType.INTEGER:
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise UserError("{option} must be a whole number. Usage: `{usage}`", option=option.name, usage=spec.usage) from None
            if (option.min_value is not None and value < option.min_value) or (
                option.max_value is not None and value > option.max_value
            ):
                raise UserError(
                    "{option} must be between {low} and {high}.",
                    option=option.name, low=option.min_value, high=option.max_value,
                )
        else:
            value = str(value).strip()
            if option.max_length is not None and len(value) > option.max_length:
                raise UserError(
                    "{option} is too long: {length} characters, at most {limit}.",
                    option=option.name, length=len(value), limit=option.max_length,
                )
        values[option.name] = value
    return values
