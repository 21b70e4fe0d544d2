"""full-text GIN indexes of the catalogue without a pending list (PostgreSQL)

A GIN index with `fastupdate` on (PostgreSQL's default) puts new entries in a pending list that
every search reads from start to end, until a VACUUM or a list of 4 MB merges it into the index.
For the catalogue the list never stops filling: every answer adds one to its GPT's `uses`, a
column indexed for "most used first" (ix_gpt_popular), so the update cannot be a HOT one and each
ask writes the GPT's whole tsvector to both search indexes again. Measured on a catalogue of
10 000 GPTs whose entries were all pending: autocomplete's statement took 7.5 ms at the median and
13 ms at p99 (prefixes that match few GPTs scanned the whole table or the whole list); with the
entries in the index, 1.2 and 3.2 ms (bench/search.py). The price is paid by each write: the
`uses` update of an ask went from 0.31 to 0.45 ms; searches and autocomplete, at every keystroke,
far outnumber asks.

Knowledge passages keep the pending list: they are written thousands at once when a file is
added and never updated, which is what the list is for (storing a 10 MB Markdown file went from
3.5 to 0.7 MB/s with direct inserts: bench/knowledge.py). SQLite's FTS5 tables are not concerned.

Revision ID: 0008_gin_no_pending_list
Revises: 0007_knowledge
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0008_gin_no_pending_list"
down_revision = "0007_knowledge"
branch_labels = None
depends_on = None

INDEXES = ("ix_gpt_search", "ix_gpt_name_search")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in INDEXES:
        op.execute(f"ALTER INDEX {index} SET (fastupdate = off)")
        op.execute(f"SELECT gin_clean_pending_list('{index}'::regclass)")  # what is pending goes in now


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in INDEXES:
        op.execute(f"ALTER INDEX {index} RESET (fastupdate)")
