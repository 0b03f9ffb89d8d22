"""Amounts of money as every layer takes them: floats in whole cents, read as written.

The checks only; `fields.Money` is the pydantic type built from them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flowctl_workflows.numbers import as_written


def whole_cents(value: float) -> float:
    # Rounding would change what was asked for: 0.001 would cost nothing, 999.995 would be 1000.00.
    exponent = Decimal(repr(value)).as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError(f"{value!r} has more than two decimals; money is counted in whole cents, e.g. 12.50")
    return value


def as_written_amount(value: Any) -> Any:
    # Text ("999.9999999999999999" from an environment variable) is read by pydantic as the
    # nearest float, 1000.0: another amount than the one written.
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value  # not a number: pydantic says so
        if "_" in value:  # Python reads "5_0" as 50
            raise ValueError(f"{value!r} is not an amount as written: digits and a point, e.g. 12.50")
        if number == number and not as_written(value.strip(), number):
            raise ValueError(f"{value!r} has more digits than an amount holds; money is counted in cents, e.g. 12.50")
    return value
