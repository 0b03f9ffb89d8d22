"""The bridge through which activities reach business services.

A bridge takes a command name (`service.command`) and a JSON payload carrying an
`idempotency_key`, and answers a JSON object; `commands` says what each command takes and
answers. It raises `BusinessError` for a refusal that
retrying cannot change and `TransientError` for anything worth retrying.

What a service must do with keys, so that no order is charged twice however its workflow is
retried, cancelled or run again: a repeated key answers what its first call answered and
changes nothing; and once a step has been undone (by a command whose `undoes` names it), the step itself is refused
for that key, even when it arrives after its compensation (an attempt that was still in
flight on a worker being drained, or a second run of the same business object).
"""

from __future__ import annotations

from typing import Any, Protocol

# Inputs the reference (`local`) services fail on, on purpose; `flowctl kinds order` lists them.
DECLINED_CARD = "tok_declined"  # the charge is declined
FLAKY_CARD = "tok_flaky"  # the charge fails transiently twice, then succeeds
OUT_OF_STOCK_SKU = "SKU-OUT"  # never in stock

BUSINESS_ERROR = "BusinessError"  # the ApplicationError type of a business refusal
TRANSIENT_ERROR = "TransientError"  # the ApplicationError type of a fault worth retrying
CONTRACT_ERROR = "ContractError"  # the ApplicationError type of an answer outside its command's contract


class BusinessError(Exception):
    """A refusal by the service (declined card, no stock): not retried. `details` keeps what
    else the service said (HTTP status, trace id, validation errors)."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class TransientError(Exception):
    """A failure worth retrying (timeout, overload, injected fault), after `retry_after`
    seconds at least when the service says so."""

    def __init__(self, message: str, *, retry_after: float | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.details = details or {}


class ContractError(Exception):
    """An answer (or a mapping of one) outside the command's contract: retrying gets the same."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class Bridge(Protocol):
    async def call(self, command: str, payload: dict[str, Any]) -> dict[str, Any]: ...

    async def close(self) -> None: ...


UNDONE = "undone"  # the business error code of a step refused because it was undone
