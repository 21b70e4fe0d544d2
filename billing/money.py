"""Money: integer micro-units that carry their currency, parsed and printed without floats.

1 USD = 1 000 000 micro-units. A float never touches an amount: "12.50" is parsed digit by digit
and printed back the same way, so every figure a creator sees can be added up by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MICROS = 1_000_000
DECIMALS = 6
_AMOUNT = re.compile(r"^(?P<sign>[+-])?(?P<whole>\d{1,15})(?:\.(?P<frac>\d{1,6}))?$")


class MoneyError(ValueError):
    """An amount that is not a plain decimal with at most six decimals, or mixed currencies."""


def parse_micros(text: str) -> int:
    """'12.50' → 12_500_000; '-0.000001' → -1; '1e3', '12.5000001', '1,5' and floats are refused."""
    if not isinstance(text, str):
        raise MoneyError("an amount is written as text, such as 12.50")
    match = _AMOUNT.match(text.strip().replace("_", ""))
    if match is None:
        raise MoneyError(f"{text!r} is not an amount: write digits with at most 6 decimals, such as 12.50")
    frac = (match["frac"] or "").ljust(DECIMALS, "0")
    micros = int(match["whole"]) * MICROS + int(frac)
    return -micros if match["sign"] == "-" else micros


def format_micros(micros: int, *, min_decimals: int = 2) -> str:
    """12_500_000 → '12.50'; 1 → '0.000001': exact, trailing zeros trimmed down to two decimals."""
    if isinstance(micros, bool) or not isinstance(micros, int):
        raise MoneyError("amounts are integers of micro-units")
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS)
    digits = f"{frac:06d}".rstrip("0").ljust(min_decimals, "0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


@dataclass(frozen=True, slots=True, order=True)
class Money:
    """An amount and its currency; arithmetic refuses to mix currencies."""

    micros: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.micros, bool) or not isinstance(self.micros, int):
            raise MoneyError("amounts are integers of micro-units, never floats")
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise MoneyError(f"{self.currency!r} is not a currency code such as USD")

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """'12.50' or '12.50 USD' (the code, if given, must be `currency`)."""
        amount, _, code = text.strip().partition(" ")
        if code and code.strip().upper() != currency:
            raise MoneyError(f"this store pays in {currency}, not {code.strip().upper()}")
        return cls(parse_micros(amount), currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise MoneyError(f"cannot mix {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.micros + other.micros, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.micros - other.micros, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.micros, self.currency)

    def __str__(self) -> str:
        return f"{format_micros(self.micros)} {self.currency}"


def fmt(micros: int, currency: str) -> str:
    """The one way amounts are shown to people: '12.50 USD'."""
    return str(Money(micros, currency))


def share_of(amount: int, bps: int) -> int:
    """`bps` basis points of `amount`, rounded down (the pool never promises a fraction it lacks)."""
    return amount * bps // 10_000
