"""Creators' payout settings: opt-in, region and a destination that is never kept in clear.

A destination (an e-mail for a payment service, an IBAN, a wallet) is stored three ways, none of
them the text itself: a mask to show it back ("pa…e.com"), a keyed hash (to see that one
destination is shared by many accounts, a farming signal), and — only when the operator set
GPTSTORE_REWARDS_PAYOUT_KEY — a ciphertext (store.sealing, Fernet) that `gptstore rewards export` decrypts for the
payment system. Without the key the export carries the mask, and the operator asks the creator.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import func, select

from store.models import utcnow
from store.rewards import PayoutSettings
from store.sealing import PREFIX as SEALED
from store.sealing import Sealer, SealingUnavailable

REGION = re.compile(r"^[A-Z]{2}$")
_UNKEYED = b"gptstore payout destination"


class PayoutError(ValueError):
    """A setting a creator gave that cannot be saved; the message is for the creator."""


@dataclass(frozen=True, slots=True)
class Sealed:
    mask: str
    digest: str
    cipher: str | None


def normalize_destination(text: str) -> str:
    value = " ".join(text.split())
    if not 3 <= len(value) <= 200:
        raise PayoutError("A payout destination is 3 to 200 characters long.")
    return value


def mask(destination: str) -> str:
    """Enough to recognise one's own destination, not enough to use it."""
    text = destination.replace(" ", "")
    if len(text) <= 6:
        return "…" + text[-2:]
    return f"{text[:2]}…{text[-4:]}"


def seal(destination: str, key: str | None) -> Sealed:
    value = normalize_destination(destination)
    digest = hmac.new((key or "").encode() or _UNKEYED, value.casefold().encode(), hashlib.sha256).hexdigest()
    cipher = Sealer(key).seal(value) if key else None
    return Sealed(mask(value), digest, cipher)


def reveal(row: PayoutSettings, key: str | None) -> str | None:
    """The destination in clear, for the payment export only; None without the right key."""
    if not key or not row.destination_cipher or not row.destination_cipher.startswith(SEALED):
        return None
    try:
        return Sealer(key).open(row.destination_cipher)
    except SealingUnavailable:  # sealed with another key
        return None


def normalize_region(text: str) -> str:
    region = text.strip().upper()
    if not REGION.match(region):
        raise PayoutError("A region is a two-letter country code, such as FR or US.")
    return region


async def get(session: AsyncSession, account_id: int) -> PayoutSettings | None:
    return await session.get(PayoutSettings, account_id)


async def save(
    session: AsyncSession,
    account_id: int,
    *,
    opted_in: bool | None = None,
    region: str | None = None,
    destination: str | None = None,
    key: str | None = None,
) -> PayoutSettings:
    """Apply the changes given (None = unchanged). Opting in needs a destination."""
    row = await session.get(PayoutSettings, account_id) or PayoutSettings(account_id=account_id)
    if region is not None:
        row.region = normalize_region(region) if region.strip() else ""
    if destination is not None and destination.strip():
        sealed = seal(destination, key)
        row.destination_mask, row.destination_hash, row.destination_cipher = sealed.mask, sealed.digest, sealed.cipher
    if opted_in is not None:
        if opted_in and not row.destination_mask:
            raise PayoutError("To opt in, tell me where to be paid (a destination).")
        row.opted_in = opted_in
    row.updated_at = utcnow()
    session.add(row)
    await session.flush()
    return row


async def shared_destinations(session: AsyncSession) -> list[tuple[str, int]]:
    """Destination masks used by more than one account (a signal for the operator)."""
    rows = await session.execute(
        select(PayoutSettings.destination_hash, func.min(PayoutSettings.destination_mask), func.count())
        .where(PayoutSettings.destination_hash != "")
        .group_by(PayoutSettings.destination_hash)
        .having(func.count() > 1)
    )
    return [(masked, count) for _, masked, count in rows.all()]
