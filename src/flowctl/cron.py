"""Temporal's cron grammar, checked here so a schedule that the server would refuse is refused
before anything is sent (`flowctl schedule create --cron`), and written back from the
calendars the server keeps (it stores a cron expression as a structured calendar).

The grammar is the server's (service/worker/scheduler): 5 fields (minute hour day-of-month
month day-of-week), 6 (+ year) or 7 (second first, + year); `*`, `x`, `x-y`, `x/step`,
`x-y/step` and lists of them; month names of three letters or more, day names of two or more;
`@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly`; a `CRON_TZ=Zone ` prefix and a
`# comment`. No imports beyond the standard library.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MONTHS = tuple("january february march april may june july august september october november december".split())
DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
PREDEFINED = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_INTEGER = re.compile(r"[+-]?[0-9]+")  # what Go's strconv.Atoi takes


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # month or day names, matched by prefix
    shortest: int = 0  # letters a name needs
    first: int = 0  # the number of the first name (January is 1, Sunday 0)


SECOND, MINUTE, HOUR = Field("second", 0, 59), Field("minute", 0, 59), Field("hour", 0, 23)
DAY_OF_MONTH = Field("day-of-month", 1, 31)
MONTH = Field("month", 1, 12, MONTHS, 3, 1)
DAY_OF_WEEK = Field("day-of-week", 0, 7, DAYS, 2, 0)  # 0 and 7 are both Sunday
YEAR = Field("year", 2000, 2100)
LAYOUTS = {
    5: (MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK),
    6: (MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR),
    7: (SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR),
}


@dataclass(frozen=True)
class Cron:
    """A checked expression: its text as given and the time zone its `CRON_TZ=` prefix names."""

    text: str
    time_zone: str | None


def check(text: str) -> Cron:
    """The expression checked as the server checks it, or ValueError saying what is wrong."""
    rest = text.strip()
    zone = None
    if rest.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, rest = rest.partition(" ")
        zone = prefix.partition("=")[2] or None
        if not rest.strip():
            raise ValueError(f"{prefix} names a time zone but no times follow it")
    body = rest.partition("#")[0].strip()
    if body.startswith("@every"):
        raise ValueError("@every is an interval, not calendar times: give it to --every (--every 1h, --every 1h/15m)")
    if body.startswith("@"):
        if body not in PREDEFINED:
            raise ValueError(f"{body.split()[0]} is not one of {', '.join(PREDEFINED)}")
        body = PREDEFINED[body]
    fields = body.split()
    layout = LAYOUTS.get(len(fields))
    if layout is None:
        raise ValueError(
            f"has {len(fields)} field(s); a cron expression has 5 (minute hour day-of-month month day-of-week), "
            "6 (the same and a year) or 7 (a second first, then those six)"
        )
    for value, field in zip(fields, layout, strict=True):
        _check_field(value, field)
    return Cron(text, zone)


def _check_field(text: str, field: Field) -> None:
    for part in text.split(","):
        values, slash, step = part.partition("/")
        if slash:
            if "/" in step:
                raise ValueError(f"{field.name} {text!r} has more than one '/'")
            if not _INTEGER.fullmatch(step) or int(step) < 1:
                raise ValueError(f"{field.name} {text!r}: the step after '/' must be a whole number of 1 or more")
        if values == "*":
            continue
        if values.startswith("-"):
            raise ValueError(f"{field.name} {text!r}: {values!r} is out of range {field.low}-{field.high}")
        if "-" in values:
            pieces = values.split("-")
            if len(pieces) != 2:
                raise ValueError(f"{field.name} {text!r} has more than one '-' in {part!r}")
            start = _value(pieces[0], field, field.low, text)
            _value(pieces[1], field, start, text)
        else:
            _value(values, field, field.low, text)


def _value(text: str, field: Field, low: int, whole: str) -> int:
    """One value of a field: a number, or (months, days) a name or its prefix; at least `low`."""
    number = None
    if field.names and len(text) >= field.shortest:
        number = next((n for n, name in enumerate(field.names, field.first) if name.startswith(text.lower())), None)
    if number is None:
        if not _INTEGER.fullmatch(text):
            what = f"a number or a {field.name.partition('-')[0]} name" if field.names else "a number"
            said = f"{text!r} is not {what}" if text else "has an empty part"
            close = difflib.get_close_matches(text.lower(), [n[:3] for n in field.names], n=1) if text.isalpha() else []
            hint = f"; did you mean {close[0].upper()}?" if close else ""
            raise ValueError(f"{field.name} {whole!r}: {said}{hint}")
        number = int(text)
    if not field.low <= number <= field.high:
        raise ValueError(f"{field.name} {number} is out of range {field.low}-{field.high}")
    if number < low:
        raise ValueError(f"{field.name} {whole!r}: a range must not end before it starts")
    return number


# Writing a calendar back: the (start, end) a field of a structured calendar holds when it means "any".
_ANY: dict[str, tuple[tuple[int, int], ...]] = {
    "second": (),
    "minute": ((0, 59),),
    "hour": ((0, 23),),
    "day_of_month": ((1, 31),),
    "month": ((1, 12),),
    "day_of_week": ((0, 6), (0, 7)),
    "year": (),
}


def _ranges(ranges: Sequence[tuple[int, int, int]], anything: tuple[tuple[int, int], ...]) -> str:
    parts = []
    for start, end, step in ranges:
        end, step = max(start, end), step or 1
        if (start, end) in anything:
            parts.append("*" if step == 1 else f"*/{step}")
        elif start == end:
            parts.append(str(start))
        else:
            parts.append(f"{start}-{end}" + (f"/{step}" if step != 1 else ""))
    return ",".join(parts) or "*"


def written(calendar: Mapping[str, Sequence[tuple[int, int, int]]], comment: str | None = None) -> str:
    """A structured calendar (each field a list of (start, end, step)) as a cron expression:
    5 fields, 6 with a year, or 7 when the second is not 0."""
    names = ("minute", "hour", "day_of_month", "month", "day_of_week")
    fields = [_ranges(calendar[name], _ANY[name]) for name in names]
    second = _ranges(calendar["second"], _ANY["second"]) if calendar["second"] else "0"
    year = _ranges(calendar["year"], _ANY["year"]) if calendar["year"] else None
    if second != "0":
        fields = [second, *fields, year or "*"]
    elif year:
        fields.append(year)
    return " ".join(fields) + (f" # {comment}" if comment else "")
