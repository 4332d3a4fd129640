"""Price units. Everything becomes USD per 1,000 tokens, computed with Decimal (SPEC §4)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

THOUSAND = Decimal(1000)


def to_decimal(value) -> Decimal | None:
    """A price as given by an API (string, int or float) as a Decimal; None if it is not a finite number.

    Floats go through their shortest repr so that 5.9e-07 becomes Decimal('5.9E-7'), not the binary
    expansion 5.89999999999999..."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)
    elif not isinstance(value, (str, int, Decimal)):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _scaled(value, factor: Decimal, divide: bool) -> Decimal | None:
    number = to_decimal(value)
    # Negative prices are sentinels ("-1" = varies on OpenRouter): unknown, never negative, never free.
    if number is None or number < 0:
        return None
    result = number / factor if divide else number * factor
    return result.normalize() if result else Decimal(0)


def per_token_to_per_1k(value) -> Decimal | None:
    """USD per token (OpenRouter strings, LiteLLM floats) → USD per 1,000 tokens."""
    return _scaled(value, THOUSAND, divide=False)


def per_million_to_per_1k(value) -> Decimal | None:
    """USD per 1M tokens (models.dev) → USD per 1,000 tokens."""
    return _scaled(value, THOUSAND, divide=True)
