"""Reading user input: durations, `-i JSON|@file|-`, `--set key=value`, model validation.

Every failure is a `UsageError` whose one line names the field and what would fix it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from flowctl.errors import UsageError
from flowctl.files import BULK_LIMIT, INPUT_LIMIT, decode, is_text, read_bytes, read_text, within
from flowctl_workflows.numbers import NotAsWrittenError, exact_float, keys_once, not_a_number

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound="BaseModel")


def parse_duration(text: str | float | int | timedelta, *, field: str = "duration") -> timedelta:
    """`30s`, `5m`, `24h`, `7d`, `1h30m`, `500ms`, or a number of seconds."""
    from flowctl_workflows import durations

    try:
        return durations.parse(text)
    except ValueError as exc:
        raise UsageError(f"{field}: {exc}") from None


def parse_time(text: str, *, field: str = "time") -> datetime:
    """A moment: ISO 8601 (`2026-12-01T09:00:00Z`, `2026-12-01T10:00+01:00`), a date
    (`2026-12-01`, its midnight) or `now`; without an offset, in UTC (as Temporal shows times)."""
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # OverflowError: past year 9999 once in UTC
        why = "" if "Invalid isoformat" in str(exc) else f" ({exc})"
        if "offset must be a timedelta" in str(exc):  # Python's words for +99:00, with its reprs
            why = " (its offset must be within -23:59 and +23:59)"
        raise UsageError(
            f"{field} {shortened(text, 40)!r} is not a time{why}",
            hint="write it like 2026-12-01T09:00:00Z, 2026-12-01 or now",
        ) from None


# No input model nests more than a few levels; deeper documents are refused before they are
# parsed into models (pydantic and json.dumps recurse, and a few thousand levels overflow).
MAX_JSON_DEPTH = 100


class JSONRefusedError(ValueError):
    """JSON no model could take: nested too deep, a number too long or out of a float's range,
    NaN or Infinity (not JSON), text that is not Unicode."""

    def __init__(self, why: str = f"JSON nested more than {MAX_JSON_DEPTH} levels deep") -> None:
        super().__init__(why)


def loads(text: str) -> Any:
    """`json.loads`, raising `JSONRefusedError` for what no model could take (see there)."""
    try:
        value = json.loads(text, parse_float=exact_float, parse_constant=not_a_number, object_pairs_hook=keys_once)
    except RecursionError:
        raise JSONRefusedError from None
    except NotAsWrittenError as exc:
        raise JSONRefusedError(f"JSON with {exc}") from None
    except json.JSONDecodeError:
        raise
    except ValueError:  # an integer of thousands of digits, which Python refuses to convert
        raise JSONRefusedError("JSON with a number of thousands of digits") from None
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if not is_text(node):
                raise JSONRefusedError("JSON with a string that is not Unicode text (a lone surrogate)")
        elif isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise JSONRefusedError
            if isinstance(node, dict):
                stack.extend((key, depth + 1) for key in node)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return value


def read_stdin(what: str, limit: int = INPUT_LIMIT) -> str:
    return decode(read_stdin_bytes(what, limit), f"{what} (standard input)")


def read_stdin_bytes(what: str, limit: int) -> bytes:
    return within(sys.stdin.buffer.read(limit + 1), limit, f"{what} (standard input)")


def read_json_input(source: str, *, field: str = "--input") -> dict[str, Any]:
    """Parse `-i`: a JSON object inline, in `@path` or on `-` (standard input).

    Anything but an object is refused, `[]`, `0`, `""` and `null` included: none of them is
    an empty payload.
    """
    if source == "-":
        text, origin = read_stdin(field), "standard input"
    elif source.startswith("@"):
        path = Path(source[1:])
        text, origin = read_text(path, field, hint="check the path after '@'", limit=INPUT_LIMIT), str(path)
    else:
        text, origin = source, "inline JSON"
    example = 'pass a JSON object, e.g. -i \'{"order_id": "A-1"}\''
    try:
        value = loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{field}: malformed JSON in {origin} at line {exc.lineno} column {exc.colno}: {exc.msg}", hint=example
        ) from None
    except JSONRefusedError as exc:
        raise UsageError(f"{field}: {exc} in {origin}", hint=example) from None
    if not isinstance(value, dict):
        raise UsageError(f"{field}: expected a JSON object in {origin}, got {_json_type(value)}", hint=example)
    return value


def _field_annotation(model: type[BaseModel], path: list[str]) -> Any:
    """The annotation of a dotted field path in `model`, or None where it cannot be told."""
    from pydantic import BaseModel

    current: Any = model
    for part in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(part)
            if info is None:
                return None
            current = info.annotation
        else:
            return None
    return current


def apply_sets(base: Any, assignments: list[str], model: type[BaseModel]) -> dict[str, Any]:
    """Overlay `key=value` assignments on an input; dotted keys reach nested fields.

    A value is taken as JSON (so `quantity=3` is a number and `items=[...]` a list) unless
    the field is a string, where the text is kept as it is.
    """
    data: dict[str, Any] = dict(base) if isinstance(base, dict) else {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set {assignment!r}: expected key=value", hint="e.g. --set order_id=A-1")
        path = key.split(".")
        top = path[0]
        if top not in model.model_fields:
            from flowctl.errors import did_you_mean

            known = f"fields: {', '.join(model.model_fields)}"
            close = did_you_mean(top, model.model_fields)
            raise UsageError(f"--set {key}: unknown field {top!r}", hint=f"{close} {known}" if close else known)
        value: Any = raw
        if _field_annotation(model, path) is not str:
            try:
                value = loads(raw)
            except json.JSONDecodeError:
                value = raw
            except JSONRefusedError as exc:
                raise UsageError(f"--set {key}: {exc}", hint="give the value as a field takes it") from None
        target: Any = data
        for part in path[:-1]:
            if isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            elif isinstance(target, dict):
                target = target.setdefault(part, {})
            else:
                raise UsageError(f"--set {key}: cannot set inside {part!r}", hint="use -i with the whole JSON value")
        last = path[-1]
        if isinstance(target, list) and last.isdigit() and int(last) < len(target):
            target[int(last)] = value
        elif isinstance(target, dict):
            target[last] = value
        else:
            raise UsageError(f"--set {key}: cannot set {last!r} here", hint="use -i with the whole JSON value")
    return data


def _printable(part: object) -> str:
    """A field name as it can be shown on one line (a key with a newline is quoted)."""
    text = str(part)
    return text if text.isprintable() else json.dumps(text)


# Setting names whose values are secrets: never printed, not even in an error about them.
SECRET_KEYS = frozenset({"api_key", "client_key_data", "client_key", "key", "keys", "password", "token"})


def shortened(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters, saying it was cut (not JSON that just stops); a URL's
    user and password (`http://u:p@host`) never shown."""
    text = without_credentials(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def without_credentials(text: str) -> str:
    """`text` with the user and password of any URL in it left out: `http://…@host`."""
    import re

    return re.sub(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@", r"\1…@", text)


def fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The field names of the model found at `loc` inside `model` (through nested models, the
    items of lists and the values of tables), or none when `loc` leads elsewhere."""
    import typing

    from pydantic import BaseModel

    current: Any = model
    keyed = False  # the part before named a table: this part is one of its keys
    for part in loc:
        if isinstance(part, int) or keyed:
            keyed = False
            continue  # a list's item or a table's value: the same model
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = None
        for candidate in (field.annotation, *typing.get_args(field.annotation)):
            keyed = keyed or typing.get_origin(candidate) is dict
            for inner in (candidate, *typing.get_args(candidate)):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    current = inner
        if current is None:
            return []
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def describe_validation_error(err: ValidationError, what: str, model: type[BaseModel] | None = None) -> str:
    """One line naming each wrong field, what is wrong and, where useful, what was given; an
    unknown field of `model` names the closest known one.

    The value given is left out for secret fields (`SECRET_KEYS`).
    """
    from flowctl.errors import did_you_mean

    parts = []
    for item in err.errors(include_url=False):
        loc = ".".join(_printable(p) for p in item["loc"]) or "(input)"
        secret = any(str(p) in SECRET_KEYS for p in item["loc"])
        message = item["msg"]
        if item["type"] == "missing":
            message = "is required"
        elif item["type"] == "extra_forbidden":
            message = "is not a known field"
            close = did_you_mean(str(item["loc"][-1]), fields_at(model, item["loc"][:-1])) if model else None
            message += f" ({close})" if close else ""
        elif item["type"] == "model_type":
            message = "must be a JSON object"
        elif item["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        given = item.get("input")
        shown = (
            ""
            if secret or item["type"] in ("missing", "extra_forbidden", "model_type") or isinstance(given, dict)
            else f" (got {shortened(json.dumps(given, default=str, ensure_ascii=False))})"
        )
        parts.append(f"{loc}: {message}{shown}")
    return f"invalid {what}: " + "; ".join(parts)


def validate(model: type[M], data: Any, *, what: str, hint: str | None = None) -> M:
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise UsageError(describe_validation_error(err, what, model), hint=hint) from None


def build_payload(
    model: type[M], raw_input: str | None, assignments: list[str] | None, *, what: str, hint: str | None = None
) -> M:
    """The validated payload from `-i` and `--set` together (`--set` wins)."""
    base = read_json_input(raw_input) if raw_input is not None else None
    return compose(model, base, assignments, what=what, hint=hint)


def compose(
    model: type[M], base: dict[str, Any] | None, assignments: list[str] | None, *, what: str, hint: str | None = None
) -> M:
    """The validated payload from a `-i` object (None: not given) and `--set` assignments."""
    return validate(model, apply_sets(base or {}, assignments or [], model), what=what, hint=hint)


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class BulkLine:
    """One input line of a bulk start: its payload, or why it is invalid."""

    line: int
    payload: BaseModel | None = None
    error: str | None = None


def without_duplicates(lines: list[BulkLine], workflow_id: Callable[[BaseModel], str]) -> list[BulkLine]:
    """A line naming the same workflow as an earlier one becomes an error saying so: it is not
    started twice, and "already started" would read like a second run of the file."""
    seen: dict[str, int] = {}
    kept: list[BulkLine] = []
    for item in lines:
        if item.payload is not None:
            first = seen.setdefault(workflow_id(item.payload), item.line)
            if first != item.line:
                item = BulkLine(item.line, error=f"line {item.line}: duplicate of line {first} (the same workflow id)")
        kept.append(item)
    return kept


def workflow_ids_from(source: str) -> tuple[list[str], int]:
    """The workflow ids a JSONL file (or `-`) names, in order and once each (the output of
    `start --from`: a line's `workflow_id`), and how many lines named none (lines it refused)."""
    if source == "-":
        data_ = read_stdin_bytes("--from", BULK_LIMIT)
    else:
        data_ = read_bytes(Path(source), "--from", hint="give the JSONL that start --from printed", limit=BULK_LIMIT)
    ids: dict[str, None] = {}
    without = 0
    for number, line in enumerate(data_.removeprefix(b"\xef\xbb\xbf").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found = loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, JSONRefusedError):
            raise UsageError(
                f"--from {source}: line {number} is not a JSON object", hint="give start --from's output"
            ) from None
        workflow_id = found.get("workflow_id") if isinstance(found, dict) else None
        if isinstance(workflow_id, str) and workflow_id:
            ids[workflow_id] = None
        else:
            without += 1
    if not ids:
        raise UsageError(f"--from {source}: no line names a workflow_id", hint="give start --from's output")
    return list(ids), without


def read_bulk(source: str, model: type[BaseModel]) -> list[BulkLine]:
    """Parse a JSONL file (or `-`): one input per non-blank line, each validated on its own.

    An unreadable file is a usage error; a bad line is reported with its number and does
    not stop the others.
    """
    from pydantic import ValidationError

    if source == "-":
        data_ = read_stdin_bytes("--from", BULK_LIMIT)
    else:
        data_ = read_bytes(Path(source), "--from", hint="give a JSONL file, or - for stdin", limit=BULK_LIMIT)
    lines: list[BulkLine] = []
    for number, line in enumerate(data_.removeprefix(b"\xef\xbb\xbf").splitlines(), start=1):
        try:
            raw = line.decode("utf-8")  # a line that is not UTF-8 is a bad line, not a bad file
        except UnicodeDecodeError as exc:
            why = f"not UTF-8 text (byte 0x{line[exc.start]:02x} at column {exc.start + 1})"
            lines.append(BulkLine(number, error=f"line {number}: {why}"))
            continue
        if not raw.strip():
            continue
        try:
            data = loads(raw)
        except json.JSONDecodeError as exc:
            lines.append(BulkLine(number, error=f"line {number}: malformed JSON at column {exc.colno}: {exc.msg}"))
            continue
        except JSONRefusedError as exc:
            lines.append(BulkLine(number, error=f"line {number}: {exc}"))
            continue
        try:
            lines.append(BulkLine(number, payload=model.model_validate(data)))
        except ValidationError as err:
            lines.append(BulkLine(number, error=f"line {number}: {describe_validation_error(err, 'input')}"))
    if not lines:
        raise UsageError(f"--from {source}: no input lines", hint="one JSON object per line")
    return lines
