"""Money is integer minor units; people read and type major units (12.50)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# ISO 4217 currencies without minor units (the others used by restaurants have two).
ZERO_DECIMAL = frozenset({"JPY", "KRW", "ISK", "CLP", "VND", "UGX", "XAF", "XOF", "PYG"})


def exponent(currency: str) -> int:
    return 0 if currency.upper() in ZERO_DECIMAL else 2


def to_major(minor: int, currency: str) -> str:
    places = exponent(currency)
    return f"{Decimal(minor).scaleb(-places):.{places}f}"


def to_minor(text: str, currency: str) -> int:
    """Parse "12.50" (or "12,50") into minor units; ValueError when it is not a price."""
    places = exponent(currency)
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        raise ValueError("Not a number.") from None
    if not value.is_finite() or value < 0:
        raise ValueError("Use zero or more.")
    if value.adjusted() > 9:
        raise ValueError("That is more than any dish costs.")
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        raise ValueError(f"Use at most {places} decimals.")
    if minor > 10_000_000:
        raise ValueError("That is more than any dish costs.")
    return int(minor)
