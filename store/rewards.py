"""The rewards tables: periods, revenue, scores, statements, the ledger, payout settings, links.

They sit beside the core tables and are keyed by `account_id`, so the core's `Account` stays as
it is. The database, not our code, refuses what must never happen twice or never at all:

- a period is unique by its bounds, and `rewardclose` has the period as its primary key, so a
  second close of one period fails however many schedulers race for it;
- a ledger transaction is unique by its idempotency key; its entries are written first and its
  header last, and triggers (0004_rewards) refuse a header whose entries do not sum to zero, new
  entries under a header already written, and any update or delete of either: the ledger is
  append-only and a mistake is fixed by a correcting transaction. The entries' foreign key to the
  header is deferred, so entries without a header never survive a commit.

Amounts are integer micro-units (BigInteger: a 32-bit column would stop at 2 147 USD).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from store.models import utcnow


class PeriodStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class RewardPeriod(SQLModel, table=True):
    """[starts_at, ends_at) in UTC, from the period cron; closed exactly once."""

    __table_args__ = (
        UniqueConstraint("starts_at", "ends_at", name="uq_reward_period_bounds"),
        CheckConstraint("ends_at > starts_at", name="ck_reward_period_order"),
        CheckConstraint("status IN ('open', 'closed')", name="ck_reward_period_status"),
        CheckConstraint(
            "(status = 'closed') = (closed_at IS NOT NULL)", name="ck_reward_period_closed_at"
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    starts_at: datetime = Field(index=True)
    ends_at: datetime
    status: str = Field(default=PeriodStatus.OPEN, max_length=8)
    currency: str = Field(max_length=3)
    closed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class RewardClose(SQLModel, table=True):
    """The close of one period: its primary key is the period, so there can be only one.

    It keeps the figures and the rules in force, so a statement can be checked later even if the
    operator has changed the settings since.
    """

    period_id: int = Field(foreign_key="rewardperiod.id", primary_key=True)
    closed_at: datetime = Field(default_factory=utcnow)
    currency: str = Field(max_length=3)
    fixed_micros: int = Field(sa_type=BigInteger)
    revenue_micros: int = Field(sa_type=BigInteger)
    revenue_share_bps: int
    pool_micros: int = Field(sa_type=BigInteger)
    allocated_micros: int = Field(sa_type=BigInteger)
    returned_micros: int = Field(sa_type=BigInteger)
    paid_micros: int = Field(sa_type=BigInteger)
    carried_micros: int = Field(sa_type=BigInteger)
    total_points: int
    rules: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class RevenueRecord(SQLModel, table=True):
    """Revenue the operator recorded for a period; a share of it joins the period's pool."""

    id: int | None = Field(default=None, primary_key=True)
    period_id: int = Field(foreign_key="rewardperiod.id", index=True)
    amount_micros: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    note: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


class GptScore(SQLModel, table=True):
    """A GPT's engagement in a closed period: distinct users, user-days before and after the cap."""

    __table_args__ = (UniqueConstraint("period_id", "gpt_id", name="uq_gpt_score_once"),)
    id: int | None = Field(default=None, primary_key=True)
    period_id: int = Field(foreign_key="rewardperiod.id", index=True)
    gpt_id: int = Field(foreign_key="gpt.id")
    creator_id: int = Field(foreign_key="account.id", index=True)
    users: int
    user_days: int
    points: int
    eligible: bool


class RewardStatement(SQLModel, table=True):
    """What one creator got from one close; `payout_micros > 0` rows are the payouts to make."""

    __table_args__ = (
        UniqueConstraint("period_id", "account_id", name="uq_statement_once"),
        Index("ix_statement_undelivered", "delivered_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    period_id: int = Field(foreign_key="rewardperiod.id", index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    currency: str = Field(max_length=3)
    points: int
    eligible: bool
    reason: str = Field(default="", max_length=32)  # why not eligible: not_opted_in | region
    share_micros: int = Field(sa_type=BigInteger)
    carried_in_micros: int = Field(sa_type=BigInteger)
    payout_micros: int = Field(sa_type=BigInteger)
    carried_out_micros: int = Field(sa_type=BigInteger)
    region: str = Field(default="", max_length=2)
    destination_mask: str = Field(default="", max_length=40)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None


class LedgerTransaction(SQLModel, table=True):
    """A transaction's header, written after its entries; triggers check that they balance."""

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=160, unique=True)
    kind: str = Field(max_length=16)  # fund | split | payout | transfer | correction
    period_id: int | None = Field(default=None, foreign_key="rewardperiod.id", index=True)
    memo: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow)


class LedgerEntry(SQLModel, table=True):
    """One leg: a signed amount on an account (operator, pool:<period>, creator:<id>, payout:<id>)."""

    id: int | None = Field(default=None, primary_key=True)
    txn_key: str = Field(
        sa_column=Column(
            String(160),
            ForeignKey("ledgertransaction.idempotency_key", deferrable=True, initially="DEFERRED"),
            nullable=False,
            index=True,
        )
    )
    account: str = Field(max_length=64, index=True)
    amount_micros: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    created_at: datetime = Field(default_factory=utcnow)


class PayoutSettings(SQLModel, table=True):
    """A creator's opt-in, region and payout destination.

    The destination is never stored in clear: a keyed hash (to notice one destination shared by
    many accounts), a mask for showing it back, and a ciphertext only when the operator set
    GPTSTORE_REWARDS_PAYOUT_KEY (the export decrypts it for the payment system).
    """

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    opted_in: bool = False
    region: str = Field(default="", max_length=2)
    destination_mask: str = Field(default="", max_length=40)
    destination_hash: str = Field(default="", max_length=64, index=True)
    destination_cipher: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow)


class LinkCode(SQLModel, table=True):
    """A one-time code joining two identities into one account; only its hash is stored."""

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    platform: str = Field(max_length=20)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
    used_by_id: int | None = Field(default=None, foreign_key="account.id")


class AccountMerge(SQLModel, table=True):
    """An account joined into another by a link; its past statements show under the survivor."""

    from_account_id: int = Field(foreign_key="account.id", primary_key=True)
    into_account_id: int = Field(foreign_key="account.id", index=True)
    merged_at: datetime = Field(default_factory=utcnow)
