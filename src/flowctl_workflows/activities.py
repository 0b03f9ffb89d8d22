"""Activities: one thin activity per service command, each a call through the bridge.

Business refusals become non-retryable `ApplicationError`s carrying the service's code and
message; anything else is left to the activity's retry policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from .services import BUSINESS_ERROR, COMMANDS, TRANSIENT_ERROR, Bridge, BusinessError, TransientError


def build(bridge: Bridge, *, review_timeout_seconds: float) -> list[Callable[..., Awaitable[dict[str, Any]]]]:
    """The activities the worker registers, each bound to `bridge`."""

    def make(command: str) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
        async def run(payload: dict[str, Any]) -> dict[str, Any]:
            try:
                answer = await bridge.call(command, payload)
            except BusinessError as exc:
                # A refusal is an expected outcome, not a fault: BENIGN keeps it out of warnings.
                raise ApplicationError(
                    exc.message,
                    {"code": exc.code},
                    type=BUSINESS_ERROR,
                    non_retryable=True,
                    category=ApplicationErrorCategory.BENIGN,
                ) from None
            except TransientError as exc:
                raise ApplicationError(str(exc), type=TRANSIENT_ERROR) from None
            if command == "fraud.screen":
                answer = {**answer, "review_timeout_seconds": review_timeout_seconds}
            return answer

        run.__name__ = run.__qualname__ = command.replace(".", "_")
        return activity.defn(name=command)(run)

    return [make(command) for command in COMMANDS]
