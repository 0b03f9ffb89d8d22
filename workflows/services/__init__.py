"""The bridge through which activities reach business services.

A bridge takes a command name (`service.command`) and a JSON payload carrying an
`idempotency_key`, and answers a JSON object. It raises `BusinessError` for a refusal that
retrying cannot change and `TransientError` for anything worth retrying.
"""

from __future__ import annotations

from typing import Any, Protocol

BUSINESS_ERROR = "BusinessError"  # the ApplicationError type of a business refusal
TRANSIENT_ERROR = "TransientError"  # the ApplicationError type of a fault worth retrying


class BusinessError(Exception):
    """A refusal by the service (declined card, no stock): not retried."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TransientError(Exception):
    """A failure worth retrying (timeout, overload, injected fault)."""


class Bridge(Protocol):
    async def call(self, command: str, payload: dict[str, Any]) -> dict[str, Any]: ...

    async def close(self) -> None: ...


# Every command the workflows use; the worker registers one activity for each.
COMMANDS: tuple[str, ...] = (
    "inventory.reserve",
    "inventory.release",
    "payment.charge",
    "payment.refund",
    "fraud.screen",
    "shipping.create",
    "shipping.cancel",
    "email.send",
    "notify.send",
    "notify.admin",
    "accounts.create",
    "accounts.deactivate",
    "accounts.assign_role",
    "accounts.revoke_role",
    "workspace.create",
    "workspace.delete",
    "approvals.prescreen",
    "approvals.execute",
)
