"""Activities: one thin activity per service command, each a call through the bridge, and the
worker's policy for the workflows.

Both sides of a call are held to the command's contract (`services.commands`): the request
as the workflow built it, the answer as the service gave it. Business refusals become
non-retryable `ApplicationError`s carrying the service's code and message, and so does an
answer outside the contract (a retry would get the same); anything else is left to the
activity's retry policy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from .models.order import ORDER_POLICY, OrderPolicy
from .services import (
    BUSINESS_ERROR,
    CONTRACT_ERROR,
    TRANSIENT_ERROR,
    Bridge,
    BusinessError,
    ContractError,
    TransientError,
)
from .services.commands import COMMANDS, Command, Request


def _said(command: str, what: str, details: dict[str, Any], message: str) -> None:
    """One line in the worker's log for what a service said that ends a step (never a payload)."""
    info = activity.info()
    status = f"HTTP {details['status']}, " if "status" in details else ""
    trace = f"trace {_one_line(str(details['trace_id']))[:64]}, " if details.get("trace_id") else ""
    said = _one_line(message)
    said = said if len(said) <= 300 else said[:299] + "…"
    logging.getLogger("flowctl.services").warning(
        "%s %s (%s%sworkflow %s, attempt %s): %s", command, what, status, trace, info.workflow_id, info.attempt, said
    )


def _one_line(text: str) -> str:
    """A service's words as one log line: line breaks and control characters shown as escapes."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", lambda m: m.group().encode("unicode_escape").decode(), text)


def build(bridge: Bridge, *, review_timeout: timedelta) -> list[Callable[..., Awaitable[Any]]]:
    """The activities the worker registers, each bound to `bridge`, and the order policy."""

    def make(command: Command[Any, Any]) -> Callable[[Request], Awaitable[dict[str, Any]]]:
        async def run(request: Request) -> dict[str, Any]:
            try:
                answer = await bridge.call(command.name, request.model_dump(mode="json"))
            except BusinessError as exc:
                if "status" in exc.details:  # a remote service's refusal: its words and trace id in the worker's log
                    _said(command.name, "refused", exc.details, exc.message)
                # A refusal is an expected outcome, not a fault: BENIGN keeps it out of the SDK's warnings.
                raise ApplicationError(
                    exc.message,
                    {"code": exc.code, **exc.details},
                    type=BUSINESS_ERROR,
                    non_retryable=True,
                    category=ApplicationErrorCategory.BENIGN,
                ) from None
            except TransientError as exc:
                wait = timedelta(seconds=exc.retry_after) if exc.retry_after else None
                raise ApplicationError(str(exc), exc.details, type=TRANSIENT_ERROR, next_retry_delay=wait) from None
            except ContractError as exc:
                _said(command.name, "answered outside its contract", exc.details, str(exc))
                raise ApplicationError(str(exc), exc.details, type=CONTRACT_ERROR, non_retryable=True) from None
            try:
                command.answer.model_validate(answer)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "answer"
                raise ApplicationError(
                    f"{command.name} answered outside its contract: {where}: {first['msg']}",
                    {"answer": answer},
                    type=CONTRACT_ERROR,
                    non_retryable=True,
                ) from None
            return answer  # as the service said it: the history keeps its own words

        run.__name__ = run.__qualname__ = command.name.replace(".", "_")
        # The converter reads the request as the command's model; the workflow reads the answer so.
        run.__annotations__ = {"request": command.request, "return": dict[str, Any]}
        return activity.defn(name=command.name)(run)

    @activity.defn(name=ORDER_POLICY)
    async def order_policy() -> OrderPolicy:
        """The worker's order policy (config `order.*`), recorded in the history where it is used."""
        return OrderPolicy(review_timeout_seconds=review_timeout.total_seconds())

    return [*(make(command) for command in COMMANDS.values()), order_policy]
