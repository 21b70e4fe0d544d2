"""newest first without a sort: an index on when each GPT was published

"New" listings (the Home tab, `/gpt top`'s new arrivals, the assistant pane's suggestions) read the
catalogue newest first; without an index that order was a read and sort of every visible GPT, as
the popularity order was before store/search.py `_listed` (45–69 ms at 100 000 GPTs on SQLite).

Revision ID: 0009_gpt_published_index
Revises: 0008_gin_no_pending_list
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0009_gpt_published_index"
down_revision = "0008_gin_no_pending_list"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_gpt_published ON gpt (published_at DESC, id DESC)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_gpt_published")
