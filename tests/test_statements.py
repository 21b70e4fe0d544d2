"""Driver-level statements (store/statements.py) on SQLite and PostgreSQL: what they write, the
ORM reads back unchanged; a failing statement is SQLAlchemy's error and leaves nothing behind."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from store.db import Database, typed_sql
from store.models import Account, Identity

_ACCOUNT = typed_sql(
    "INSERT INTO account (display_name, locale, created_at, banned_at) "
    "VALUES (:display_name, :locale, :created_at, :banned_at) RETURNING id", Account)
_IDENTITY = typed_sql(
    "INSERT INTO identity (platform, external_id, account_id, display_name) "
    "VALUES (:platform, :external_id, :account_id, :display_name)", Identity)
_READ = select(Account.created_at, Account.banned_at, Account.display_name).where(Account.id == 1)  # type: ignore[arg-type]


async def test_values_written_by_the_driver_read_back_through_the_orm(db: Database) -> None:
    when = datetime(2026, 11, 22, 6, 5, 0, tzinfo=UTC)  # microsecond 0: stored with its fraction all the same
    async with db.transaction() as statements:
        account_id = (await statements.execute(_ACCOUNT, {
            "display_name": "Zoë «quotes» 🙂", "locale": "fr", "created_at": when, "banned_at": None,
        })).scalar_one()
        await statements.execute(_IDENTITY, [
            {"platform": "discord", "external_id": "u1", "account_id": account_id, "display_name": "Zoë"},
            {"platform": "slack", "external_id": "U1", "account_id": account_id, "display_name": "Zoë"},
        ])
        # a select() compiled for this dialect: datetimes come back as the ORM gives them
        assert (await statements.execute(_READ)).one() == (when, None, "Zoë «quotes» 🙂")
    async with db.reader() as session:
        account = (await session.execute(select(Account))).scalar_one()
        identities = (await session.execute(select(Identity.platform).order_by(Identity.platform))).scalars().all()
    assert (account.id, account.display_name, account.locale, account.created_at) == (
        account_id, "Zoë «quotes» 🙂", "fr", when)
    assert identities == ["discord", "slack"]


async def test_a_failing_statement_is_sqlalchemys_error_and_nothing_is_kept(db: Database) -> None:
    when = datetime.now(UTC)
    async with db.transaction() as statements:
        first = (await statements.execute(_ACCOUNT, {
            "display_name": "A", "locale": "en", "created_at": when, "banned_at": None})).scalar_one()
        await statements.execute(_IDENTITY, {"platform": "discord", "external_id": "u1", "account_id": first,
                                             "display_name": "A"})
    with pytest.raises(IntegrityError):
        async with db.transaction() as statements:
            await statements.execute(_ACCOUNT, {"display_name": "B", "locale": "en", "created_at": when,
                                                "banned_at": None})
            await statements.execute(_IDENTITY, {"platform": "discord", "external_id": "u1", "account_id": first,
                                                 "display_name": "B"})
    async with db.reader() as session:
        names = (await session.execute(select(Account.display_name))).scalars().all()
    assert names == ["A"]  # B's account went with the failed transaction
    async with db.transaction() as statements:  # the connection went back to the pool usable
        assert (await statements.execute(_READ)).first() is not None
