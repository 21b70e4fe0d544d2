"""Build everything from settings, once: the store, the LLM gateway, the core.

Nothing is built at import time; the CLI, the adapters' tests and the benchmarks all call
`bootstrap()` and get the same wiring (a test passes its own settings or LLM gateway).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from billing import tracking
from bot import localmodel, policy
from bot.context import Services
from bot.core import Core
from bot.i18n import Translator
from bot.llm import LLMGateway
from config import Settings
from store.db import Database, make_engine
from store.migrate import current, upgrade

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    services: Services
    core: Core
    closers: list[Any] = field(default_factory=list)

    @property
    def db(self) -> Database:
        return self.services.db

    async def aclose(self) -> None:
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:  # shutting down: log and go on closing the rest
                log.exception("error while closing")
        await self.services.llm.aclose()
        await self.services.db.dispose()


def answer_deadline(settings: Settings) -> timedelta:
    """How long a use may stay pending before it is surely dead.

    The embedded SQLite store has one process, so at its start-up every pending use is an
    orphan of the last run. On a shared PostgreSQL other replicas may be answering right now:
    only uses older than the longest possible answer are orphans.
    """
    if settings.is_sqlite:
        return timedelta(0)
    attempts = settings.llm_max_retries + 1
    return timedelta(seconds=settings.llm_timeout * attempts + settings.llm_stall_timeout + 30)


def make_gateway(settings: Settings) -> LLMGateway:
    return LLMGateway(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        default_model=settings.llm_default_model,
        models=list(settings.llm_models),
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        stall_timeout=settings.llm_stall_timeout,
        moderation=settings.moderation_enabled,
    )


async def bootstrap(settings: Settings, *, llm: LLMGateway | None = None, migrate: bool | None = None) -> App:
    """The whole bot, ready to handle events.

    The embedded SQLite store upgrades its schema by itself; PostgreSQL is upgraded by the
    operator (`gptstore db upgrade`), so that many replicas never race to migrate.
    With no LLM endpoint configured, the `local` extra's model (if installed) is served by a
    child process that `App.aclose()` stops (bot/localmodel.py); the gateway is the same.
    """
    db = Database(make_engine(
        settings.database_url, pool_size=settings.database_pool_size, lock_timeout=settings.database_lock_timeout
    ))
    if migrate if migrate is not None else settings.is_sqlite:
        await upgrade(db.engine)
    elif await current(db.engine) is None:
        await db.dispose()
        raise RuntimeError("The database has no schema yet. Run `gptstore db upgrade` first.")
    async with db.session() as session:
        interrupted = await tracking.fail_interrupted(session, older_than=answer_deadline(settings))
    if interrupted:
        log.warning("marked %d interrupted invocations as failed", interrupted)
    local = None
    if llm is None:  # no endpoint configured: the `local` extra's model, if installed, serves instead
        settings, local = await localmodel.start_local(settings)
    services = Services(settings=settings, db=db, llm=llm or make_gateway(settings), tr=Translator())
    if llm is None and (notice := localmodel.notice_for(settings, local)):
        services.extras["llm_notice"] = notice
    app = App(settings=settings, services=services, core=Core(services))
    app.closers.append(policy.limiter(services).aclose)  # rate limits: the database, or Redis if set
    if local is not None:
        services.extras["local_model"] = local
        app.closers.append(local.aclose)
    return app
