"""The server's failures as flowctl errors with the right exit code, and a waiting command's
patience while the server is away."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from flowctl.connect import transport_detail
from flowctl.errors import ConflictError, NotFoundError, UnreachableError, UsageError
from flowctl_workflows import durations

if TYPE_CHECKING:
    from temporalio.client import Client


@contextlib.contextmanager
def rpc_errors(workflow_id: str | None = None) -> Iterator[None]:
    """Turn the SDK's RPC failures into flowctl errors with the right exit code."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        yield
    except RPCError as exc:
        what = f"workflow {workflow_id!r}" if workflow_id else "request"
        status = exc.status
        if status == RPCStatusCode.NOT_FOUND:
            namespace = re.search(r"namespace (\S+) is not found", exc.message, re.IGNORECASE)
            if namespace:
                raise NotFoundError(
                    f"namespace {namespace.group(1)!r} not found on the server",
                    hint="check --namespace, TEMPORAL_NAMESPACE or the profile's namespace",
                ) from None
            if "already completed" in exc.message:
                raise ConflictError(f"{what} is already closed", hint="see 'flowctl describe'") from None
            detail = "" if workflow_id and "workflow not found" in exc.message.lower() else f": {exc.message}"
            missing = NotFoundError(f"{what} not found{detail}", hint="check the id with 'flowctl list'")
            missing.workflow_id = workflow_id
            raise missing from None
        if status in (RPCStatusCode.ALREADY_EXISTS, RPCStatusCode.FAILED_PRECONDITION):
            # e.g. a query of a workflow that closed before a worker ever ran it
            raise ConflictError(f"{what}: {exc.message}") from None
        if status == RPCStatusCode.INVALID_ARGUMENT:
            raise UsageError(f"{what} refused by the server: {exc.message}") from None
        if is_outage(exc):
            raise UnreachableError(
                f"Temporal stopped answering ({transport_detail(exc.message)}) while handling {what}",
                hint="is the server still up? 'flowctl server status' says for the embedded one; then try again",
            ) from None
        if status in (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED):
            raise UnreachableError(f"server refused {what}: {exc.message}") from None
        if status == RPCStatusCode.RESOURCE_EXHAUSTED:  # rate limits; the SDK has retried already
            raise UnreachableError(
                f"the server is turning requests away ({exc.message}) for {what}",
                hint="try again later; a bulk start can go slower with --rate or --concurrency",
            ) from None
        if timed_out(exc):
            raise UnreachableError(f"{what}: no answer in time ({exc.message})") from None
        raise


def is_outage(exc: BaseException) -> bool:
    """Whether the server went away (refused, reset, stopped mid-call): worth waiting out."""
    from temporalio.service import RPCError, RPCStatusCode

    if not isinstance(exc, RPCError):
        return False
    if exc.status == RPCStatusCode.UNAVAILABLE:
        return True
    text = exc.message.lower()
    signs = ("transport error", "connection refused", "connection reset", "broken pipe", "reset by peer", "h2 protocol")
    return exc.status in (RPCStatusCode.UNKNOWN, RPCStatusCode.CANCELLED) and any(s in text for s in signs)


async def server_silence(client: Client, within: timedelta) -> str | None:
    """None if the server answers a cheap call now, else why not: one try, failing fast (a
    waiting call itself would retry for seconds before it said anything)."""
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

    try:
        await client.workflow_service.get_system_info(GetSystemInfoRequest(), retry=False, timeout=within)
    except Exception as exc:  # noqa: BLE001 - any failure means it does not answer
        return str(exc) or type(exc).__name__
    return None


# How long a waiting command waits out an outage when it has no --timeout (config: outage_limit).
OUTAGE_LIMIT = timedelta(minutes=2)


@dataclass(frozen=True)
class Patience:
    """What a waiting command does when the server goes away: whom it tells, how long it waits."""

    tell: Callable[[str], None] | None = None
    limit: timedelta = OUTAGE_LIMIT


class Outage:
    """A waiting command's view of the server going away: say it once, retry, give up at a limit."""

    def __init__(self, client: Client, what: str, patience: Patience | None, timeout: timedelta | None) -> None:
        patience = patience or Patience()
        self.client = client
        self.what = what
        self.tell = patience.tell or (lambda _message: None)
        self.limit = patience.limit
        loop = asyncio.get_running_loop()
        self._now = loop.time
        self.deadline = self._now() + timeout.total_seconds() if timeout is not None else None
        self.began: float | None = None
        self.detail = ""

    @property
    def ongoing(self) -> bool:
        return self.began is not None

    def left(self) -> float | None:
        """Seconds left of the command's own timeout, if it has one."""
        return None if self.deadline is None else max(0.0, self.deadline - self._now())

    async def ride(self, exc: Exception) -> None:
        """Wait until the server answers again (saying so), or raise `UnreachableError` when the
        outage outlasts the command's patience. The caller then tries again."""
        from temporalio.service import RPCError

        self.detail = transport_detail(exc.message if isinstance(exc, RPCError) else str(exc))
        now = self._now()
        if self.began is None:
            self.began = now
            limit = self.left()
            patience = durations.format(timedelta(seconds=round(limit)) if limit is not None else self.limit)
            self.tell(f"Temporal is unreachable ({self.detail}); still {self.what}, for up to {patience}")
        give_up = self.began + self.limit.total_seconds()
        if self.deadline is not None:
            give_up = self.deadline
        while True:
            now = self._now()
            if now >= give_up:
                raise self.unreachable()
            await asyncio.sleep(min(1.0, give_up - now))
            if await self.answers():
                self.over()
                return

    async def answers(self, within: timedelta = timedelta(seconds=2)) -> bool:
        return await server_silence(self.client, within) is None

    def over(self) -> None:
        if self.began is not None:
            self.tell(f"Temporal answers again; {self.what}")
            self.began = None

    def unreachable(self) -> UnreachableError:
        return UnreachableError(
            f"Temporal stayed unreachable ({self.detail}) while {self.what}",
            hint="is the server up? 'flowctl server status' says for the embedded one; then try again",
        )


def timed_out(exc: Exception) -> bool:
    """A deadline hit on either side (the SDK reports its own as CANCELLED, "Timeout expired")."""
    from temporalio.service import RPCError, RPCStatusCode

    if not isinstance(exc, RPCError):
        return False
    return exc.status == RPCStatusCode.DEADLINE_EXCEEDED or (
        exc.status == RPCStatusCode.CANCELLED and "timeout" in exc.message.lower()
    )
