"""knowledge: files creators attach to their GPTs, kept as passages indexed for retrieval

A version lists its files (`version_knowledge`), so a conversation pinned to an old version keeps
the files it started with. Passages are found by full-text search restricted to the version's
files: on SQLite an FTS5 table whose `file_id` column is indexed too, so the restriction is one
more term of the MATCH (`file_id : ("3" OR "7") AND (...)`) and FTS5 intersects the doclists
instead of ranking every passage of the store; its words are stemmed (porter), so a question's
words are matched exactly: a prefix query (`"derivativ"*`) would merge the doclists of every word
with that prefix across the whole store (46 ms p99 at 160 000 passages, against 13 ms for exact
stemmed terms: bench/knowledge.py). On PostgreSQL a generated tsvector with a GIN index, next to
the `file_id` index.

Revision ID: 0007_knowledge
Revises: 0006_search_speed
Create Date: 2026-11-22 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007_knowledge"
down_revision = "0006_search_speed"
branch_labels = None
depends_on = None

_SQLITE = [
    "CREATE VIRTUAL TABLE knowledge_fts USING fts5(text, heading, file_id, content='knowledge_passage', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    """CREATE TRIGGER knowledge_fts_ai AFTER INSERT ON knowledge_passage BEGIN
           INSERT INTO knowledge_fts(rowid, text, heading, file_id) VALUES (new.id, new.text, new.heading, new.file_id); END""",
    """CREATE TRIGGER knowledge_fts_ad AFTER DELETE ON knowledge_passage BEGIN
           INSERT INTO knowledge_fts(knowledge_fts, rowid, text, heading, file_id)
           VALUES ('delete', old.id, old.text, old.heading, old.file_id); END""",
]
_POSTGRES = [
    """ALTER TABLE knowledge_passage ADD COLUMN search tsvector GENERATED ALWAYS AS (
           setweight(to_tsvector('simple', text), 'A') ||
           setweight(to_tsvector('simple', coalesce(heading, '')), 'B')) STORED""",
    "CREATE INDEX ix_knowledge_passage_search ON knowledge_passage USING GIN (search)",
]


def upgrade() -> None:
    op.add_column("gptversion", sa.Column("knowledge_files", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "knowledge_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("passage_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_knowledge_file_owner_id", "knowledge_file", ["owner_id"])
    op.create_table(
        "knowledge_passage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("heading", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["file_id"], ["knowledge_file.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_knowledge_passage_file_id", "knowledge_passage", ["file_id"])
    op.create_table(
        "version_knowledge",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["gptversion.id"]),
        sa.ForeignKeyConstraint(["file_id"], ["knowledge_file.id"]),
        sa.PrimaryKeyConstraint("version_id", "file_id"),
    )
    op.create_index("ix_version_knowledge_file_id", "version_knowledge", ["file_id"])
    for statement in _SQLITE if op.get_bind().dialect.name == "sqlite" else _POSTGRES:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS knowledge_fts_ad")
        op.execute("DROP TRIGGER IF EXISTS knowledge_fts_ai")
        op.execute("DROP TABLE IF EXISTS knowledge_fts")
    op.drop_index("ix_version_knowledge_file_id", "version_knowledge")
    op.drop_table("version_knowledge")
    op.drop_index("ix_knowledge_passage_file_id", "knowledge_passage")
    op.drop_table("knowledge_passage")
    op.drop_index("ix_knowledge_file_owner_id", "knowledge_file")
    op.drop_table("knowledge_file")
    with op.batch_alter_table("gptversion") as batch:
        batch.drop_column("knowledge_files")
