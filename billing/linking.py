"""Joining two identities' accounts, money included, in one database transaction.

The code is spent, the rows move (store.links) and the joined account's balances move to the
survivor by ledger transfers — all or nothing. The money lock is taken first, so a join never
interleaves with a close reading the same balances.
"""

from __future__ import annotations

from billing import ledger
from billing.ledger import Leg
from store import links
from store.db import Database
from store.links import Joined


async def link_with_code(db: Database, *, code: str, account_id: int, currency: str) -> Joined:
    """Join `account_id` (who entered the code) into the account that issued it."""
    async with db.session() as session:
        await ledger.lock_money(session)
        target_id = await links.redeem_code(session, code=code, account_id=account_id)
        joined = await links.join_accounts(session, source_id=account_id, target_id=target_id)
        for kind, name in (("creator", ledger.creator), ("payout", ledger.payout)):
            amount = await ledger.balance(session, name(account_id))
            if amount:
                await ledger.post(
                    session, key=f"join:{account_id}:{target_id}:{kind}", kind="transfer", currency=currency,
                    legs=[Leg(name(account_id), -amount), Leg(name(target_id), amount)],
                    memo=f"account {account_id} joined into {target_id}",
                )
    return joined
