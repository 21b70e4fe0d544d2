"""The schema is Alembic's: one line of migrations whose result matches the models exactly, and
that can be walked down to nothing and up again, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import store.tables  # noqa: F401
from store.db import make_engine
from store.migrate import alembic_config, current, upgrade

SEARCH_OBJECTS = {"gpt_fts", "gpt_fts_data", "gpt_fts_idx", "gpt_fts_content", "gpt_fts_docsize", "gpt_fts_config",
                  "ix_gpt_search", "ix_gpt_name_lower", "ix_gpt_popular", "ix_gpt_name_search", "ix_gpt_published", "search",
                  "ix_knowledge_passage_search", *(f"knowledge_fts{s}" for s in ("", "_data", "_idx", "_content", "_docsize", "_config"))}


def test_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1


async def test_models_match_migrations_and_downgrade_works(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert await current(engine) == head

        def diff(connection):  # type: ignore[no-untyped-def]
            context = MigrationContext.configure(connection, opts={
                "include_object": lambda obj, name, kind, reflected, compare_to: name not in SEARCH_OBJECTS,
                "compare_type": False,
            })
            return compare_metadata(context, SQLModel.metadata)

        async with engine.connect() as connection:
            differences = await connection.run_sync(diff)
        assert differences == []

        def down_and_up(connection):  # type: ignore[no-untyped-def]
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "base")
            command.upgrade(cfg, "head")

        async with engine.begin() as connection:
            await connection.run_sync(down_and_up)
        assert await current(engine) == head
    finally:
        await engine.dispose()
