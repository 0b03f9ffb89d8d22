"""Durations as people write them (`30s`, `5m`, `24h`, `7d`, `1h30m`), shared by CLI and models.

Parsing and spelling only, no pydantic: `fields.Duration` is the pydantic type built from them.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
MAX_SECONDS = 10 * 365 * 86400


def parse(value: str | float | timedelta) -> timedelta:
    """A duration from text, a number of seconds, or a timedelta; ValueError says how to write one."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raw = str(value).strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", raw):
            seconds = float(raw)
        elif raw and _PART.sub("", raw) == "":
            seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(raw))
        else:
            raise ValueError(f"{_shown(value)} is not a duration; write it like 30s, 5m, 24h, 7d or 1h30m")
    if seconds < 0 or seconds > MAX_SECONDS:
        raise ValueError(f"{_shown(value)} is out of range; use a duration between 0s and 3650d")
    return timedelta(seconds=seconds)


def _shown(value: object) -> str:
    """The value as an error quotes it: whole when short, cut with an ellipsis when not."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def format(delta: timedelta) -> str:  # noqa: A001 - the module's own name for it
    """The shortest exact spelling: 86400s → 1d, 90s → 1m30s."""
    total = round(delta.total_seconds() * 1000)
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
