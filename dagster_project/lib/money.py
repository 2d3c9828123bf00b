"""Money as people read it: the currency's own decimals (ISO 4217) and thousands separators.

``EUR 1,244.91``, ``JPY 125,000``, ``KWD 12.500``. The number of decimals comes from the CLDR
currency data that Babel ships (the same ISO 4217 minor units the dbt macro ``minor_unit_factor``
converts with); an unknown code gets two. Amounts in different currencies are never added or
compared here: callers keep one figure per currency.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=256)
def currency_digits(currency: str | None) -> int:
    """Decimals of a currency's minor unit (ISO 4217 via CLDR): 2 for EUR and USD, 0 for JPY, 3 for KWD."""
    if not currency:
        return 2
    from babel.numbers import get_currency_precision

    return get_currency_precision(currency.upper())


def format_amount(amount: Any, currency: str | None) -> str:
    """The amount alone, rounded half-up to the currency's decimals, with thousands separators."""
    try:
        value = Decimal(str(amount if amount is not None else 0))
    except InvalidOperation:
        raise ValueError(f"not an amount: {amount!r}") from None
    digits = currency_digits(currency)
    return f"{value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP):,.{digits}f}"


def format_money(amount: Any, currency: str | None) -> str:
    """``CUR 1,234.50``; no currency code when the currency is unknown, an empty string for no amount."""
    if amount is None:
        return ""
    return f"{currency or ''} {format_amount(amount, currency)}".strip()
