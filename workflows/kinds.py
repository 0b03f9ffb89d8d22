"""The catalog of workflow kinds: names, models, id templates and message names.

Read by the CLI for validation, `kinds` and completion, so it imports neither temporalio
nor the workflow modules: those are named by dotted path and loaded only by the worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .models import Decision, FlowState
from .models import approval as approval_models
from .models import onboarding as onboarding_models
from .models import order as order_models


@dataclass(frozen=True)
class Message:
    """A signal, query or update a kind accepts, with its payload model if it takes one."""

    name: str
    description: str
    model: type[BaseModel] | None = None


@dataclass(frozen=True)
class Kind:
    """One workflow kind and everything a client needs to drive it."""

    name: str
    workflow_type: str
    workflow_class: str  # "module:Class", imported by the worker only
    description: str
    input_model: type[BaseModel]
    result_model: type[BaseModel]
    id_template: str
    example: dict[str, Any]
    signals: tuple[Message, ...] = ()
    queries: tuple[Message, ...] = ()
    updates: tuple[Message, ...] = ()
    failure_inputs: dict[str, str] = field(default_factory=dict)

    def workflow_id(self, payload: BaseModel) -> str:
        return self.id_template.format(**payload.model_dump())

    def message(self, group: str, name: str) -> Message | None:
        messages: tuple[Message, ...] = getattr(self, group)
        return next((m for m in messages if m.name == name), None)


STATUS_QUERY = Message("status", "current step, completed steps, what it waits for, compensations", FlowState)

ORDER = Kind(
    name="order",
    workflow_type="Order",
    workflow_class="flowctl_workflows.order:OrderWorkflow",
    description="reserve stock, charge, fraud review for large totals, ship, confirm; compensates on failure",
    input_model=order_models.OrderInput,
    result_model=order_models.OrderResult,
    id_template="order-{order_id}",
    example=order_models.EXAMPLE,
    signals=(Message("review", "fraud review decision for a held order", Decision),),
    queries=(STATUS_QUERY,),
    failure_inputs={
        "declined payment": f'"card": "{order_models.DECLINED_CARD}"',
        "out of stock": f'an item with "sku": "{order_models.OUT_OF_STOCK_SKU}"',
        "transient failures": f'"card": "{order_models.FLAKY_CARD}" (charge fails twice, then succeeds)',
        "fraud review": "a total at or above the review threshold (1000.00 by default)",
    },
)

ONBOARDING = Kind(
    name="onboarding",
    workflow_type="Onboarding",
    workflow_class="flowctl_workflows.onboarding:OnboardingWorkflow",
    description="account, email verification (reminder part-way), workspace, role by plan, welcome, admin notice",
    input_model=onboarding_models.OnboardingInput,
    result_model=onboarding_models.OnboardingResult,
    id_template="onboarding-{user_id}",
    example=onboarding_models.EXAMPLE,
    signals=(Message("verify-email", "the user confirmed the email address", onboarding_models.VerifyEmail),),
    queries=(STATUS_QUERY,),
    failure_inputs={
        "verification timeout": '"verify_within": "30s" and no verify-email signal',
        "email taken": "an email address an active account already uses",
    },
)

APPROVAL = Kind(
    name="approval",
    workflow_type="Approval",
    workflow_class="flowctl_workflows.approval:ApprovalWorkflow",
    description="pre-screen, ask approvers, decisions by update, escalate, expire; execute or notify rejection",
    input_model=approval_models.ApprovalInput,
    result_model=approval_models.ApprovalResult,
    id_template="approval-{request_id}",
    example=approval_models.EXAMPLE,
    updates=(
        Message(
            "decide",
            "an approver's decision; refused for non-approvers, the requester and second votes",
            approval_models.Vote,
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

# Search attributes every kind keeps current; the embedded server registers them at start.
SEARCH_ATTRIBUTES: dict[str, str] = {
    "FlowKind": "Keyword",
    "FlowStatus": "Keyword",
    "FlowWaitingFor": "Keyword",  # approval | review | verification, while a human decision is due
    "FlowWaitingSince": "Datetime",
    "FlowApprovers": "KeywordList",  # who may decide, where the kind names them
}
