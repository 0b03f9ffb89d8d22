"""Exit codes and the errors that carry them; the CLI edge turns these into one line."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    NOT_FOUND = 3
    CONFLICT = 4
    UNREACHABLE = 5
    BUSINESS_FAILURE = 10
    WORKFLOW_FAILED = 11
    CANCELLED = 12
    STILL_RUNNING = 20
    PENDING = 21
    INTERRUPTED = 130
    TERMINATED = 143  # stopped by SIGTERM: 128 + 15, as the shell reports a process it ended
    CLOSED_PIPE = 141  # stdout's reader went away (`| head`): 128 + SIGPIPE, as other CLIs end


def overall(codes: Iterable[int]) -> ExitCode:
    """The exit code of a command that acted on many workflows, from each one's: 0 when none
    failed; else 5 when the server went away, else 2 when an input was bad, else the lowest."""
    failed = {ExitCode(code) for code in codes if code}
    for first in (ExitCode.UNREACHABLE, ExitCode.USAGE):
        if first in failed:
            return first
    return min(failed, default=ExitCode.OK)


def worst(codes: Iterable[int]) -> ExitCode:
    """The exit code of waiting for many workflows: 0 when every one succeeded; 5 when the server
    went away; else the worst way one ended, by its code (20 still running > 12 cancelled >
    11 failed > 10 unsuccessful > 4 > 3 no such workflow > 2)."""
    ended = {ExitCode(code) for code in codes if code}
    if ExitCode.UNREACHABLE in ended:
        return ExitCode.UNREACHABLE
    return max(ended, default=ExitCode.OK)


class FlowctlError(Exception):
    """An expected failure: its message is for the user, its code for the shell."""

    code: ExitCode = ExitCode.INTERNAL
    slug = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(FlowctlError):
    """Bad usage or invalid input; nothing was sent to the server."""

    code = ExitCode.USAGE
    slug = "invalid_input"


class NotFoundError(FlowctlError):
    code = ExitCode.NOT_FOUND
    slug = "not_found"
    workflow_id: str | None = None  # the workflow not found, when it is one: a similar id may be suggested


class ConflictError(FlowctlError):
    code = ExitCode.CONFLICT
    slug = "conflict"


class UnreachableError(FlowctlError):
    code = ExitCode.UNREACHABLE
    slug = "unreachable"


class NoWorkerError(UnreachableError):
    """The server took the request, but no worker answered it in time."""

    slug = "no_worker"


class PendingError(FlowctlError):
    """A decision reached the server and takes effect once a worker applies it: not a failure."""

    code = ExitCode.PENDING
    slug = "pending"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where SIGINT raises KeyboardInterrupt, so both stop a command the same way."""


class InterruptedByUser(FlowctlError):
    """SIGINT or SIGTERM stopped a command; the message says what it was doing and what that left."""

    slug = "interrupted"

    def __init__(self, message: str, *, terminated: bool) -> None:
        super().__init__(message)
        self.code = ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED


class KeyMissingError(FlowctlError):
    """A payload from the server this process cannot open: no key of its id, or it does not
    authenticate. Exit 5, like other credentials the server side needs: the server was
    reached, so exit 2's "nothing was sent" would be untrue."""

    code = ExitCode.UNREACHABLE
    slug = "codec_key"


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the choice closest to a mistyped `word`, if one is close: "did you mean 'order'?"."""
    from difflib import get_close_matches

    close = get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None
