"""creator rewards: periods and their close, revenue, scores, statements, an append-only
double-entry ledger whose transactions must balance, payout settings, account links

Revision ID: 0004_rewards
Revises: 0003_slack_installations
Create Date: 2026-11-23 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004_rewards"
down_revision = "0003_slack_installations"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "rewardperiod",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("starts_at", T(), nullable=False),
        sa.Column("ends_at", T(), nullable=False),
        sa.Column("status", S(length=8), nullable=False),
        sa.Column("currency", S(length=3), nullable=False),
        sa.Column("closed_at", T(), nullable=True),
        sa.Column("created_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("starts_at", "ends_at", name="uq_reward_period_bounds"),
        sa.CheckConstraint("ends_at > starts_at", name="ck_reward_period_order"),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_reward_period_status"),
        sa.CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="ck_reward_period_closed_at"),
    )
    op.create_index("ix_rewardperiod_starts_at", "rewardperiod", ["starts_at"])

    money = sa.BigInteger()
    op.create_table(
        "rewardclose",
        sa.Column("period_id", sa.Integer(), sa.ForeignKey("rewardperiod.id"), nullable=False),
        sa.Column("closed_at", T(), nullable=False),
        sa.Column("currency", S(length=3), nullable=False),
        sa.Column("fixed_micros", money, nullable=False),
        sa.Column("revenue_micros", money, nullable=False),
        sa.Column("revenue_share_bps", sa.Integer(), nullable=False),
        sa.Column("pool_micros", money, nullable=False),
        sa.Column("allocated_micros", money, nullable=False),
        sa.Column("returned_micros", money, nullable=False),
        sa.Column("paid_micros", money, nullable=False),
        sa.Column("carried_micros", money, nullable=False),
        sa.Column("total_points", sa.Integer(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("period_id"),
    )
    op.create_table(
        "revenuerecord",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_id", sa.Integer(), sa.ForeignKey("rewardperiod.id"), nullable=False),
        sa.Column("amount_micros", money, nullable=False),
        sa.Column("currency", S(length=3), nullable=False),
        sa.Column("note", S(length=500), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_revenuerecord_period_id", "revenuerecord", ["period_id"])
    op.create_table(
        "gptscore",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_id", sa.Integer(), sa.ForeignKey("rewardperiod.id"), nullable=False),
        sa.Column("gpt_id", sa.Integer(), sa.ForeignKey("gpt.id"), nullable=False),
        sa.Column("creator_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("user_days", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("period_id", "gpt_id", name="uq_gpt_score_once"),
    )
    op.create_index("ix_gptscore_period_id", "gptscore", ["period_id"])
    op.create_index("ix_gptscore_creator_id", "gptscore", ["creator_id"])
    op.create_table(
        "rewardstatement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_id", sa.Integer(), sa.ForeignKey("rewardperiod.id"), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("currency", S(length=3), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("reason", S(length=32), nullable=False),
        sa.Column("share_micros", money, nullable=False),
        sa.Column("carried_in_micros", money, nullable=False),
        sa.Column("payout_micros", money, nullable=False),
        sa.Column("carried_out_micros", money, nullable=False),
        sa.Column("region", S(length=2), nullable=False),
        sa.Column("destination_mask", S(length=40), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("delivered_at", T(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("period_id", "account_id", name="uq_statement_once"),
    )
    op.create_index("ix_rewardstatement_period_id", "rewardstatement", ["period_id"])
    op.create_index("ix_rewardstatement_account_id", "rewardstatement", ["account_id"])
    op.create_index("ix_statement_undelivered", "rewardstatement", ["delivered_at"])

    op.create_table(
        "ledgertransaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", S(length=160), nullable=False),
        sa.Column("kind", S(length=16), nullable=False),
        sa.Column("period_id", sa.Integer(), sa.ForeignKey("rewardperiod.id"), nullable=True),
        sa.Column("memo", S(length=300), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index("ix_ledgertransaction_period_id", "ledgertransaction", ["period_id"])
    op.create_table(
        "ledgerentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "txn_key", sa.String(length=160),
            sa.ForeignKey("ledgertransaction.idempotency_key", deferrable=True, initially="DEFERRED"),
            nullable=False,
        ),
        sa.Column("account", S(length=64), nullable=False),
        sa.Column("amount_micros", money, nullable=False),
        sa.Column("currency", S(length=3), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ledgerentry_txn_key", "ledgerentry", ["txn_key"])
    op.create_index("ix_ledgerentry_account", "ledgerentry", ["account"])

    op.create_table(
        "payoutsettings",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("opted_in", sa.Boolean(), nullable=False),
        sa.Column("region", S(length=2), nullable=False),
        sa.Column("destination_mask", S(length=40), nullable=False),
        sa.Column("destination_hash", S(length=64), nullable=False),
        sa.Column("destination_cipher", sa.Text(), nullable=True),
        sa.Column("updated_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_index("ix_payoutsettings_destination_hash", "payoutsettings", ["destination_hash"])
    op.create_table(
        "linkcode",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", S(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("platform", S(length=20), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("expires_at", T(), nullable=False),
        sa.Column("used_at", T(), nullable=True),
        sa.Column("used_by_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash"),
    )
    op.create_index("ix_linkcode_account_id", "linkcode", ["account_id"])
    op.create_table(
        "accountmerge",
        sa.Column("from_account_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("into_account_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("merged_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("from_account_id"),
    )
    op.create_index("ix_accountmerge_into_account_id", "accountmerge", ["into_account_id"])

    for statement in _SQLITE_LEDGER if op.get_bind().dialect.name == "sqlite" else _POSTGRES_LEDGER:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    else:
        for table, trigger in _POSTGRES_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        for function in ("ledger_append_only", "ledger_entry_unsealed", "ledger_transaction_balanced"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    for table in (
        "accountmerge", "linkcode", "payoutsettings", "ledgerentry", "ledgertransaction",
        "rewardstatement", "gptscore", "revenuerecord", "rewardclose", "rewardperiod",
    ):
        op.drop_table(table)


# The ledger's rules, in the database ------------------------------------------------------
# Entries are inserted first, the header last. The header's insert checks that its entries are at
# least two, in one currency, and sum to zero; an entry whose header already exists is refused (a
# sealed transaction takes no new legs); nothing is ever updated or deleted. The deferred foreign
# key from entries to their header makes a transaction without a header fail at commit.

_SQLITE_TRIGGERS = (
    "ledgerentry_unsealed", "ledgerentry_no_update", "ledgerentry_no_delete",
    "ledgertransaction_balanced", "ledgertransaction_no_update", "ledgertransaction_no_delete",
)

_SQLITE_LEDGER = [
    """CREATE TRIGGER ledgerentry_unsealed BEFORE INSERT ON ledgerentry
       WHEN EXISTS (SELECT 1 FROM ledgertransaction WHERE idempotency_key = NEW.txn_key)
       BEGIN SELECT RAISE(ABORT, 'ledger transaction already sealed'); END""",
    """CREATE TRIGGER ledgerentry_no_update BEFORE UPDATE ON ledgerentry
       BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END""",
    """CREATE TRIGGER ledgerentry_no_delete BEFORE DELETE ON ledgerentry
       BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END""",
    """CREATE TRIGGER ledgertransaction_balanced BEFORE INSERT ON ledgertransaction
       WHEN (SELECT COUNT(*) FROM ledgerentry WHERE txn_key = NEW.idempotency_key) < 2
         OR (SELECT COALESCE(SUM(amount_micros), 0) FROM ledgerentry WHERE txn_key = NEW.idempotency_key) != 0
         OR (SELECT COUNT(DISTINCT currency) FROM ledgerentry WHERE txn_key = NEW.idempotency_key) != 1
       BEGIN SELECT RAISE(ABORT, 'ledger transaction does not balance'); END""",
    """CREATE TRIGGER ledgertransaction_no_update BEFORE UPDATE ON ledgertransaction
       BEGIN SELECT RAISE(ABORT, 'ledger transactions are append-only'); END""",
    """CREATE TRIGGER ledgertransaction_no_delete BEFORE DELETE ON ledgertransaction
       BEGIN SELECT RAISE(ABORT, 'ledger transactions are append-only'); END""",
]

_POSTGRES_TRIGGERS = (
    ("ledgerentry", "ledgerentry_unsealed"),
    ("ledgerentry", "ledgerentry_append_only"),
    ("ledgertransaction", "ledgertransaction_balanced"),
    ("ledgertransaction", "ledgertransaction_append_only"),
)

_POSTGRES_LEDGER = [
    """CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'ledger rows are append-only (%)', TG_TABLE_NAME USING ERRCODE = '23001';
       END $$""",
    """CREATE FUNCTION ledger_entry_unsealed() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM ledgertransaction WHERE idempotency_key = NEW.txn_key) THEN
           RAISE EXCEPTION 'ledger transaction % already sealed', NEW.txn_key USING ERRCODE = '23514';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE FUNCTION ledger_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE legs integer; total numeric; currencies integer;
       BEGIN
         SELECT count(*), coalesce(sum(amount_micros), 0), count(DISTINCT currency)
           INTO legs, total, currencies FROM ledgerentry WHERE txn_key = NEW.idempotency_key;
         IF legs < 2 OR total <> 0 OR currencies <> 1 THEN
           RAISE EXCEPTION 'ledger transaction % does not balance (% legs, sum %)',
             NEW.idempotency_key, legs, total USING ERRCODE = '23514';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER ledgerentry_unsealed BEFORE INSERT ON ledgerentry
       FOR EACH ROW EXECUTE FUNCTION ledger_entry_unsealed()""",
    """CREATE TRIGGER ledgerentry_append_only BEFORE UPDATE OR DELETE ON ledgerentry
       FOR EACH ROW EXECUTE FUNCTION ledger_append_only()""",
    """CREATE TRIGGER ledgertransaction_balanced BEFORE INSERT ON ledgertransaction
       FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced()""",
    """CREATE TRIGGER ledgertransaction_append_only BEFORE UPDATE OR DELETE ON ledgertransaction
       FOR EACH ROW EXECUTE FUNCTION ledger_append_only()""",
]
