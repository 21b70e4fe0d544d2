"""curation and safety: workspace policies, per-workspace GPT decisions, channel rules, the audit
log, leak attempts, daily quota counters, rate-limit buckets; operator takedowns (`gpt`) and bans
(`account`) as nullable columns (ALTER TABLE ADD COLUMN: the `gpt` table is not rebuilt, so the
FTS triggers of 0001_core stay in place)

Revision ID: 0002_policy
Revises: 0001_core
Create Date: 2026-11-23 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002_policy"
down_revision = "0001_core"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.add_column("gpt", sa.Column("taken_down_at", T(), nullable=True))
    op.add_column("gpt", sa.Column("takedown_reason", S(length=500), nullable=True))
    op.add_column("account", sa.Column("banned_at", T(), nullable=True))
    op.add_column("account", sa.Column("ban_reason", S(length=500), nullable=True))

    op.create_table(
        "workspacepolicy",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("mode", S(length=16), nullable=False),
        sa.Column("review_required", sa.Boolean(), nullable=False),
        sa.Column("member_daily_quota", sa.Integer(), nullable=True),
        sa.Column("workspace_daily_quota", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", T(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("workspace_id"),
    )
    op.create_table(
        "workspacegpt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("gpt_id", sa.Integer(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("featured", sa.Boolean(), nullable=False),
        sa.Column("approved_version_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", T(), nullable=True),
        sa.Column("updated_at", T(), nullable=False),
        sa.ForeignKeyConstraint(["approved_version_id"], ["gptversion.id"]),
        sa.ForeignKeyConstraint(["gpt_id"], ["gpt.id"]),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "gpt_id", name="uq_workspacegpt"),
    )
    op.create_index("ix_workspacegpt_workspace_id", "workspacegpt", ["workspace_id"], unique=False)
    op.create_table(
        "channelrule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("channel_ref", S(length=64), nullable=False),
        sa.Column("answers", sa.Boolean(), nullable=False),
        sa.Column("default_gpt_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["default_gpt_id"], ["gpt.id"]),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "channel_ref", name="uq_channelrule"),
    )
    op.create_index("ix_channelrule_workspace_id", "channelrule", ["workspace_id"], unique=False)
    op.create_table(
        "auditentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=True),
        sa.Column("actor_account_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", S(length=100), nullable=False),
        sa.Column("action", S(length=32), nullable=False),
        sa.Column("target", S(length=100), nullable=False),
        sa.Column("detail", S(length=500), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.ForeignKeyConstraint(["actor_account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_auditentry_created_at", "auditentry", ["created_at"], unique=False)
    op.create_index("ix_auditentry_workspace_id", "auditentry", ["workspace_id"], unique=False)
    op.create_table(
        "leakattempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gpt_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=True),
        sa.Column("invocation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", T(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["gpt_id"], ["gpt.id"]),
        sa.ForeignKeyConstraint(["invocation_id"], ["invocation.id"]),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_leakattempt_gpt_id", "leakattempt", ["gpt_id"], unique=False)
    op.create_table(
        "quotausage",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("scope", S(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("workspace_id", "scope", "day"),
    )
    op.create_table(
        "ratebucket",
        sa.Column("key", S(length=120), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("stamp", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("ratebucket")
    op.drop_table("quotausage")
    op.drop_index("ix_leakattempt_gpt_id", table_name="leakattempt")
    op.drop_table("leakattempt")
    op.drop_index("ix_auditentry_workspace_id", table_name="auditentry")
    op.drop_index("ix_auditentry_created_at", table_name="auditentry")
    op.drop_table("auditentry")
    op.drop_index("ix_channelrule_workspace_id", table_name="channelrule")
    op.drop_table("channelrule")
    op.drop_index("ix_workspacegpt_workspace_id", table_name="workspacegpt")
    op.drop_table("workspacegpt")
    op.drop_table("workspacepolicy")
    # SQLite >= 3.35 drops a column in place; the gpt table (and its FTS triggers) is not rebuilt.
    op.drop_column("account", "ban_reason")
    op.drop_column("account", "banned_at")
    op.drop_column("gpt", "takedown_reason")
    op.drop_column("gpt", "taken_down_at")
