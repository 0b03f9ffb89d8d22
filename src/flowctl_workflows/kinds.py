"""The catalog of workflow kinds: names, models, id templates and message names.

Read by the CLI for validation, `kinds` and completion, so it imports nothing heavy: the
workflow classes, models and examples are named by dotted path and loaded on first use
(`describe` maps a workflow type to its kind without building a single model).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowctl_workflows import services

if TYPE_CHECKING:
    from pydantic import BaseModel


def load(path: str) -> Any:
    """The object at `module:attribute`, importing the module if need be."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Message:
    """A signal, query or update a kind accepts, with its payload model if it takes one."""

    name: str
    description: str
    model_path: str | None = None

    @property
    def model(self) -> type[BaseModel] | None:
        return load(self.model_path) if self.model_path else None


@dataclass(frozen=True)
class Kind:
    """One workflow kind and everything a client needs to drive it."""

    name: str
    workflow_type: str
    workflow_path: str  # "module:Class": where the worker imports the class from (the CLI never does)
    description: str
    models: str  # the module holding the kind's INPUT, RESULT and EXAMPLE
    id_template: str
    signals: tuple[Message, ...] = ()
    queries: tuple[Message, ...] = ()
    updates: tuple[Message, ...] = ()
    failure_inputs: dict[str, str] = field(default_factory=dict)

    @property
    def input_model(self) -> type[BaseModel]:
        model: type[BaseModel] = load(f"{self.models}:INPUT")
        return model

    @property
    def result_model(self) -> type[BaseModel]:
        model: type[BaseModel] = load(f"{self.models}:RESULT")
        return model

    @property
    def example(self) -> dict[str, Any]:
        example: dict[str, Any] = load(f"{self.models}:EXAMPLE")
        return example

    def workflow_id(self, payload: BaseModel) -> str:
        return self.id_template.format(**payload.model_dump())

    def message(self, group: str, name: str) -> Message | None:
        messages: tuple[Message, ...] = getattr(self, group)
        return next((m for m in messages if m.name == name), None)


MODELS = "flowctl_workflows.models"
STATUS_QUERY = Message(
    "status", "current step, completed steps, what it waits for, compensations", f"{MODELS}:FlowState"
)

ORDER = Kind(
    name="order",
    workflow_type="Order",
    workflow_path="flowctl_workflows.order:OrderWorkflow",
    description="reserve stock, charge, fraud review for large totals, ship, confirm; compensates on failure",
    models=f"{MODELS}.order",
    id_template="order-{order_id}",
    signals=(Message("review", "fraud review decision for a held order", f"{MODELS}:Decision"),),
    queries=(STATUS_QUERY,),
    failure_inputs={
        "declined payment": f'"card": "{services.DECLINED_CARD}"',
        "out of stock": f'an item with "sku": "{services.OUT_OF_STOCK_SKU}"',
        "transient failures": f'"card": "{services.FLAKY_CARD}" (charge fails twice, then succeeds)',
        "fraud review": "a total at or above the review threshold (1000.00 by default)",
    },
)

ONBOARDING = Kind(
    name="onboarding",
    workflow_type="Onboarding",
    workflow_path="flowctl_workflows.onboarding:OnboardingWorkflow",
    description="account, email verification (reminder part-way), workspace, role by plan, welcome, admin notice",
    models=f"{MODELS}.onboarding",
    id_template="onboarding-{user_id}",
    signals=(Message("verify-email", "the user confirmed the email address", f"{MODELS}.onboarding:VerifyEmail"),),
    queries=(STATUS_QUERY,),
    failure_inputs={
        "verification timeout": '"verify_within": "30s" and no verify-email signal',
        "email taken": "an email address an active account already uses",
    },
)

APPROVAL = Kind(
    name="approval",
    workflow_type="Approval",
    workflow_path="flowctl_workflows.approval:ApprovalWorkflow",
    description="pre-screen, ask approvers, decisions by update, escalate, expire; execute or notify rejection",
    models=f"{MODELS}.approval",
    id_template="approval-{request_id}",
    updates=(
        Message(
            "decide",
            "an approver's decision; refused for non-approvers, the requester and second votes",
            f"{MODELS}.approval:Vote",
        ),
    ),
    queries=(STATUS_QUERY,),
    failure_inputs={
        "auto-approved": "an amount below approval.auto_approve_below (1000.00 by default)",
        "auto-rejected": "an amount above approval.reject_above, or a requester in approval.blocked_requesters",
        "escalation and expiry": '"escalate_after": "20s", "expire_after": "40s" and no decision',
    },
)

KINDS: dict[str, Kind] = {kind.name: kind for kind in (ORDER, ONBOARDING, APPROVAL)}
BY_WORKFLOW_TYPE: dict[str, Kind] = {kind.workflow_type: kind for kind in KINDS.values()}
