"""search speed: FTS5 prefix indexes up to eight letters (SQLite)

Every word of a search is a prefix query (`"tutor"*` finds "tutors" and "tutoring"), and FTS5
answers one from a prefix index only when one of that length exists: until now one to three
letters (0006), so a word of four letters or more merged the doclists of every word it begins,
in full, before the newest matches could be taken. That cost grows with the catalogue faster
than anything else in a search: `"tutor"*` 0.59 → 2.20 ms from 10 000 to 100 000 GPTs,
`"tutor"* "writing"*` 0.86 → 4.31 ms, against 0.45 → 0.93 ms and 0.61 → 1.57 ms for the same
words matched exactly. With indexes up to eight letters the prefix queries cost what the exact
ones do (0.98 and 1.63 ms at 100 000). Longer words still merge, over the few words that share
their first nine letters. The index grows (32.5 → 60.7 MB at 100 000 GPTs; this rebuild 1.0 →
2.5 s), and is written only when a GPT's name, description or category is. PostgreSQL's GIN
indexes answer prefixes of any length.

Revision ID: 0010_longer_prefixes
Revises: 0009_gpt_published_index
Create Date: 2026-12-08 00:00:00
"""

from __future__ import annotations

from importlib import import_module

from alembic import op

revision = "0010_longer_prefixes"
down_revision = "0009_gpt_published_index"
branch_labels = None
depends_on = None

_search_speed = import_module("store.migrations.versions.0006_search_speed")  # its table and triggers


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _search_speed._rebuild_fts(", prefix='1 2 3 4 5 6 7 8'")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _search_speed._rebuild_fts(", prefix='1 2 3'")
