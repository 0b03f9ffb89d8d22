"""The service commands the workflows use: each a name, a request model and an answer model.

This is the contract between the workflows and the business services, whichever bridge
carries it: the workflows build the requests, the activities check both sides of every call
against it, the local services are written against it, and an HTTP service must meet it.

Every request carries an `idempotency_key`, set by the workflow for each business step (the
same for every retry, worker and run): a service answers a repeated key as it answered the
first call, and changes nothing. A compensating command names the key of the step it undoes.
Answers may carry more fields than these (a real service says more); `note` is a service's
word on a call that had nothing to do ("no charge was taken").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idempotency_key: str = Field(default="", description="the business step's key; set by the workflow")


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")

    note: str | None = None


Req = TypeVar("Req", bound=Request)
Ans = TypeVar("Ans", bound=Answer)


@dataclass(frozen=True)
class Command(Generic[Req, Ans]):
    """One service command: `service.command`, what it takes and what it answers."""

    name: str
    request: type[Req]
    answer: type[Ans]
    undoes: str | None = None  # a compensation: the forward command whose step it undoes ...
    key_field: str | None = None  # ... and the request field that names that step's key

    def __str__(self) -> str:
        return self.name


class Line(BaseModel):
    model_config = ConfigDict(extra="allow")  # an order line says more (its price) than stock needs

    sku: str
    quantity: int


class ReserveInventory(Request):
    order_id: str
    items: list[Line]


class Reservation(Answer):
    reservation_key: str
    lines: int


class ReleaseInventory(Request):
    reservation_key: str


class Released(Answer):
    released_lines: int = 0


class ChargePayment(Request):
    order_id: str
    customer_id: str
    amount_cents: int
    card: str | None = None


class Charge(Answer):
    charge_id: str
    amount_cents: int


class RefundPayment(Request):
    charge_key: str


class Refund(Answer):
    refunded: bool
    charge_id: str | None = None
    amount_cents: int | None = None


class ScreenOrder(Request):
    order_id: str
    customer_id: str
    total_cents: int


class Screening(Answer):
    review: bool  # the order is held for a fraud review
    threshold_cents: int | None = None


class CreateShipment(Request):
    order_id: str
    address: str


class Shipment(Answer):
    shipment_id: str
    tracking: str | None = None


class CancelShipment(Request):
    shipment_key: str


class ShipmentCancelled(Answer):
    cancelled: bool


class SendEmail(Request):
    to: str
    template: str
    subject: str
    ref: str | None = None


class Sent(Answer):
    message_id: str


class Notify(Request):
    to: list[str]
    template: str
    subject: str
    ref: str | None = None


class Notified(Answer):
    message_ids: list[str]


class NotifyAdmin(Request):
    template: str
    subject: str
    ref: str | None = None


class CreateAccount(Request):
    user_id: str
    email: str
    name: str


class Account(Answer):
    account_id: str


class DeactivateAccount(Request):
    account_key: str


class Deactivated(Answer):
    deactivated: bool
    account_id: str | None = None


class AssignRole(Request):
    account_key: str
    role: str


class RoleAssigned(Answer):
    role: str
    account_id: str


class RevokeRole(Request):
    role_key: str


class Revoked(Answer):
    revoked: bool


class CreateWorkspace(Request):
    user_id: str
    name: str


class Workspace(Answer):
    workspace_id: str


class DeleteWorkspace(Request):
    workspace_key: str


class WorkspaceDeleted(Answer):
    deleted: bool


class Prescreen(Request):
    request_id: str
    requester: str
    title: str
    amount_cents: int


class Prescreening(Answer):
    decision: Literal["approve", "reject", "review"]
    reason: str


class ExecuteRequest(Request):
    request_id: str
    amount_cents: int


class Execution(Answer):
    execution_id: str


class RevokeExecution(Request):
    execution_key: str


INVENTORY_RESERVE = Command("inventory.reserve", ReserveInventory, Reservation)
INVENTORY_RELEASE = Command("inventory.release", ReleaseInventory, Released, "inventory.reserve", "reservation_key")
PAYMENT_CHARGE = Command("payment.charge", ChargePayment, Charge)
PAYMENT_REFUND = Command("payment.refund", RefundPayment, Refund, "payment.charge", "charge_key")
FRAUD_SCREEN = Command("fraud.screen", ScreenOrder, Screening)
SHIPPING_CREATE = Command("shipping.create", CreateShipment, Shipment)
SHIPPING_CANCEL = Command("shipping.cancel", CancelShipment, ShipmentCancelled, "shipping.create", "shipment_key")
EMAIL_SEND = Command("email.send", SendEmail, Sent)
NOTIFY_SEND = Command("notify.send", Notify, Notified)
NOTIFY_ADMIN = Command("notify.admin", NotifyAdmin, Sent)
ACCOUNTS_CREATE = Command("accounts.create", CreateAccount, Account)
ACCOUNTS_DEACTIVATE = Command("accounts.deactivate", DeactivateAccount, Deactivated, "accounts.create", "account_key")
ACCOUNTS_ASSIGN_ROLE = Command("accounts.assign_role", AssignRole, RoleAssigned)
ACCOUNTS_REVOKE_ROLE = Command("accounts.revoke_role", RevokeRole, Revoked, "accounts.assign_role", "role_key")
WORKSPACE_CREATE = Command("workspace.create", CreateWorkspace, Workspace)
WORKSPACE_DELETE = Command("workspace.delete", DeleteWorkspace, WorkspaceDeleted, "workspace.create", "workspace_key")
APPROVALS_PRESCREEN = Command("approvals.prescreen", Prescreen, Prescreening)
APPROVALS_EXECUTE = Command("approvals.execute", ExecuteRequest, Execution)
APPROVALS_REVOKE = Command("approvals.revoke", RevokeExecution, Revoked, "approvals.execute", "execution_key")

# Every command the workflows use, by name; the worker registers one activity for each.
COMMANDS: dict[str, Command[Any, Any]] = {
    command.name: command
    for command in (
        INVENTORY_RESERVE,
        INVENTORY_RELEASE,
        PAYMENT_CHARGE,
        PAYMENT_REFUND,
        FRAUD_SCREEN,
        SHIPPING_CREATE,
        SHIPPING_CANCEL,
        EMAIL_SEND,
        NOTIFY_SEND,
        NOTIFY_ADMIN,
        ACCOUNTS_CREATE,
        ACCOUNTS_DEACTIVATE,
        ACCOUNTS_ASSIGN_ROLE,
        ACCOUNTS_REVOKE_ROLE,
        WORKSPACE_CREATE,
        WORKSPACE_DELETE,
        APPROVALS_PRESCREEN,
        APPROVALS_EXECUTE,
        APPROVALS_REVOKE,
    )
}
