"""search speed: FTS5 prefix indexes (SQLite), a names-only GIN index (PostgreSQL), a popularity index

Every search and autocomplete term is a prefix query (`"tut"*`); without prefix indexes FTS5
merges the doclists of every term starting with those letters, which costs tens of ms in a
100 000-GPT catalogue (bench/search.py). On PostgreSQL the name pool of a search needs its own
index: a weight-restricted tsquery (`tutor:*A`) has no statistics, and the planner then scans the
table for a word that is common in descriptions but rare in names. `ix_gpt_popular` serves "most used first" listings
(browse, autocomplete with nothing typed yet) without sorting the whole table.

Revision ID: 0006_search_speed
Revises: 0005_discord_sync
Create Date: 2026-11-23 00:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0006_search_speed"
down_revision = "0005_discord_sync"
branch_labels = None
depends_on = None

NAME_VECTOR = "to_tsvector('simple', coalesce(name, ''))"
"""Must match store/search.py's name pool expression exactly for PostgreSQL to use the index."""

_TRIGGERS = [
    """CREATE TRIGGER gpt_fts_ai AFTER INSERT ON gpt BEGIN
           INSERT INTO gpt_fts(rowid, name, description, category)
           VALUES (new.id, new.name, new.description, new.category); END""",
    """CREATE TRIGGER gpt_fts_ad AFTER DELETE ON gpt BEGIN
           INSERT INTO gpt_fts(gpt_fts, rowid, name, description, category)
           VALUES ('delete', old.id, old.name, old.description, old.category); END""",
    """CREATE TRIGGER gpt_fts_au AFTER UPDATE OF name, description, category ON gpt BEGIN
           INSERT INTO gpt_fts(gpt_fts, rowid, name, description, category)
           VALUES ('delete', old.id, old.name, old.description, old.category);
           INSERT INTO gpt_fts(rowid, name, description, category)
           VALUES (new.id, new.name, new.description, new.category); END""",
]


def _rebuild_fts(prefix: str) -> None:
    for trigger in ("gpt_fts_ai", "gpt_fts_ad", "gpt_fts_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS gpt_fts")
    op.execute(
        "CREATE VIRTUAL TABLE gpt_fts USING fts5(name, description, category, content='gpt', content_rowid='id', "
        f"tokenize='unicode61 remove_diacritics 2'{prefix})"
    )
    for statement in _TRIGGERS:
        op.execute(statement)
    op.execute("INSERT INTO gpt_fts(gpt_fts) VALUES ('rebuild')")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_fts(", prefix='1 2 3'")
    else:  # names alone, so that the planner knows how rare a word is in names (weights have no statistics)
        op.execute(f"CREATE INDEX ix_gpt_name_search ON gpt USING GIN ({NAME_VECTOR})")
    op.execute("CREATE INDEX ix_gpt_popular ON gpt (uses DESC, id)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_gpt_popular")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_fts("")
    else:
        op.execute("DROP INDEX IF EXISTS ix_gpt_name_search")
