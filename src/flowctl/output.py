"""The one place output is written: data to stdout, everything else to stderr.

`json` prints one document, `jsonl` one object per line (flushed as it happens); neither
passes through rich. `text` uses rich, which drops colour when stdout is not a terminal or
NO_COLOR is set. The streams are the process's unless others are given (an in-process test).
A command's text view is a `Renderer`; the shared ones are in `flowctl.cli.render`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

FORMATS = ("text", "json", "jsonl")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


# Control characters, and the invisible ones that reorder or hide text (bidi overrides, zero width)
# or break a line where a terminal shows none (the line and paragraph separators).
_INVISIBLE = "\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff"
UNSHOWABLE = f"\\x00-\\x1f\\x7f-\\x9f{_INVISIBLE}"  # a regex class body: what never reaches a terminal raw
_CONTROL = re.compile(f"[{UNSHOWABLE}]")
_CONTROL_BUT_LINES = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_INVISIBLE}]")
_RAW_IN_JSON = re.compile(f"[\x7f-\x9f{_INVISIBLE}]")  # what JSON leaves raw and a terminal would act on


def printable(text: str, *, lines: bool = False) -> str:
    """`text` with every control character shown as an escape (ESC as \\x1b): data from a
    workflow, a server or a file can never move the cursor, clear the screen or colour the
    terminal. With `lines`, newlines and tabs stay (multi-line text flowctl lays out itself)."""
    pattern = _CONTROL_BUT_LINES if lines else _CONTROL
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def text_value(value: Any) -> str:
    """A scalar as text output shows it: JSON's spelling for true, false and null (`-`), not Python's."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_json(value: Any, *, indent: int | None = None) -> str:
    """JSON as flowctl prints it: non-ASCII kept, but 8-bit controls and invisible reordering or
    line-breaking characters escaped too (json leaves them raw; the data is the same)."""
    text = json.dumps(value, default=_default, indent=indent, ensure_ascii=False)
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@dataclass(frozen=True)
class Streams:
    """Where a command writes, when not the process's own stdout and stderr (an in-process test)."""

    stdout: TextIO | None = None
    stderr: TextIO | None = None


class Output:
    def __init__(
        self, fmt: str = "text", *, no_color: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.format = fmt
        self.no_color = no_color or "NO_COLOR" in os.environ
        self._stdout, self._stderr = stdout, stderr
        self._out: Console | None = None
        self._err: Console | None = None

    @property
    def stdout(self) -> TextIO:
        return self._stdout or sys.stdout  # looked up when written: a redirect meanwhile is honoured

    @property
    def stderr(self) -> TextIO:
        return self._stderr or sys.stderr

    @property
    def machine(self) -> bool:
        return self.format != "text"

    @property
    def out(self) -> Console:
        if self._out is None:
            # Piped, rich would lay tables out for 80 columns and cut their cells; a script
            # reading them wants every value whole (COLUMNS, if set, still rules).
            wide = None if self.stdout.isatty() or "COLUMNS" in os.environ else 1_000
            self._out = _console(file=self.stdout, no_color=self.no_color, highlight=False, soft_wrap=True, width=wide)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            self._err = _console(file=self.stderr, no_color=self.no_color, highlight=False, soft_wrap=True)
        return self._err

    def line(self, value: Any) -> None:
        """One JSON object on its own line, flushed now (jsonl streams)."""
        self.stdout.write(to_json(value) + "\n")
        self.stdout.flush()

    def write(self, text: str) -> None:
        """A document as it is, on stdout (a history's JSON, a completion script, a key entry)."""
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def data(self, value: Any, text: Renderer | None = None) -> None:
        """Print a result: JSON as is, or `text` (a key/value listing if none is given)."""
        if self.format == "json":
            self.stdout.write(to_json(value, indent=2) + "\n")
        elif self.format == "jsonl":
            for item in value if isinstance(value, list) else [value]:
                self.line(item)
        elif text is not None:
            text(self)
        else:
            self.fields(value)
        self.stdout.flush()

    def print(self, *objects: Any, markup: bool = True) -> None:
        """Text (rich markup unless `markup` is False) on stdout; control characters escaped."""
        self.out.print(*objects, markup=markup)

    def fields(self, value: Any) -> None:
        if not isinstance(value, dict):
            self.out.print(to_json(value, indent=2), markup=False)
            return
        width = max((len(str(k)) for k in value), default=0)
        for key, item in value.items():
            shown = to_json(item) if isinstance(item, dict | list) else text_value(item)
            self.out.print(f"{printable(str(key)):<{width}}  {printable(shown)}", markup=False)

    def table(self, rows: Iterable[dict[str, Any]], columns: list[str]) -> None:
        from rich.table import Table

        rows = list(rows)
        table = Table(box=None, pad_edge=False, header_style="bold")
        for i, column in enumerate(columns):
            # The first column is the id people copy: it never shrinks or wraps.
            widest = max((len(str(row.get(column))) for row in rows), default=0) if i == 0 else None
            table.add_column(column.upper(), min_width=widest, no_wrap=i == 0)
        for row in rows:
            table.add_row(*(printable(text_value(row.get(c))) for c in columns))
        self.out.print(table)

    def info(self, message: str) -> None:
        """Progress for people, on stderr; quiet under -o json|jsonl."""
        if not self.machine:  # plain text: rich would only cost its import here
            self.say(message)

    def say(self, message: str) -> None:
        """A line for people on stderr, in every output format (a long-running command's log)."""
        self.stderr.write(printable(message, lines=True) + "\n")
        self.stderr.flush()

    def warn(self, message: str) -> None:
        """A warning on stderr, in every output format."""
        self.stderr.write(f"flowctl: warning: {printable(message)}\n")
        self.stderr.flush()

    def error(self, slug: str, code: int, message: str) -> None:
        """One line on stderr, whatever the message holds (user text can carry newlines)."""
        message = " ".join(message.splitlines())
        if self.machine:
            line = to_json({"error": {"code": code, "type": slug, "message": message}}) + "\n"
        else:
            line = f"flowctl: error: {printable(message)}\n"
        try:
            self.stderr.write(line)
            self.stderr.flush()
        except (BrokenPipeError, OSError, ValueError):  # nobody reads stderr any more: the exit code says it
            pass


Renderer = Callable[[Output], None]  # a result's text view


def _console(**options: Any) -> Console:
    """A rich console that escapes control characters and reports a closed pipe as such
    (rich's own exits with status 1)."""
    import errno

    from rich.console import Console

    class SafeConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, "stdout was closed")  # the edge makes it exit 141

        def print(self, *objects: Any, **kwargs: Any) -> None:
            # Whatever text reaches the terminal has its control characters escaped; rich's own
            # styling is added after this, so colours still work.
            super().print(*(printable(o, lines=True) if isinstance(o, str) else o for o in objects), **kwargs)

    return SafeConsole(**options)
