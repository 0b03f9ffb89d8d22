"""JSON and TOML numbers read as written, and JSON keys given once: the one check every reader
of flowctl's input applies (the CLI's `-i`/`--set`/`--from`, the settings, the workers'
payload converter). Standard library only: it runs in the workflow sandbox too.

Python reads a number's text into the nearest float: 1e-400 is 0.0, 4.9999999999999999999 is
5.0, 1e400 is infinite. And its JSON reader keeps the last of a key given twice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


class NotAsWrittenError(ValueError):
    """A number that would be read as another, or a key given twice."""


def shown(text: str) -> str:
    return text if len(text) <= 40 else text[:39] + "…"


def as_written(text: str, value: float) -> bool:
    """Whether the finite `value` read from `text` is the number written."""
    return Decimal(text) == Decimal(repr(value))


def exact_float(text: str) -> float:
    """`float(text)`, if that is the number written (a `parse_float` for json.loads)."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise NotAsWrittenError(f"the number {shown(text)}, outside what a number here can hold")
    if not as_written(text, value):
        raise NotAsWrittenError(f"the number {shown(text)}, more digits than a number here can hold")
    return value


def not_a_number(name: str) -> Any:
    """A `parse_constant` for json.loads: NaN and Infinity are not JSON."""
    raise NotAsWrittenError(f"{name}, which is not a JSON number; write a number")


def keys_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An `object_pairs_hook` for json.loads: a key given twice is refused, not the last kept."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise NotAsWrittenError(f"the key {shown(key)!r} twice: which one was meant?")
        seen.add(key)
    return dict(pairs)
