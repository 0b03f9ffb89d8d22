"""Input, update and result of the `approval` kind."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flowctl_workflows.fields import Duration

from . import Compensation, Money
from .order import ID_PATTERN

Person = str


class ApprovalInput(BaseModel):
    """A request that needs `required_approvals` approvals from `approvers` to be executed."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=ID_PATTERN, description="business key; the workflow id is approval-{request_id}")
    requester: Person = Field(min_length=1, max_length=128, description="who asks; may not decide their own request")
    title: str = Field(min_length=1, max_length=200)
    amount: Money = Field(ge=0, le=1_000_000_000, allow_inf_nan=False, description="at most two decimals")
    approvers: list[Person] = Field(min_length=1, max_length=50, description="who may decide")
    required_approvals: int = Field(default=1, ge=1, le=50, description="approvals needed; one rejection rejects")
    escalate_to: Person | None = Field(default=None, max_length=128, description="who is asked when nobody decides")
    escalate_after: Duration = Field(default=timedelta(days=1))
    expire_after: Duration = Field(default=timedelta(days=3), description="from the start; then the request expires")

    @field_validator("approvers")
    @classmethod
    def _distinct(cls, approvers: list[str]) -> list[str]:
        if any(not a.strip() for a in approvers):
            raise ValueError("approver names must not be empty")
        if len(set(approvers)) != len(approvers):
            raise ValueError("approvers must be distinct")
        return approvers

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalInput:
        # The requester may not decide; escalate_to may, once asked. Fewer than that and nobody could decide.
        eligible = {a for a in [*self.approvers, self.escalate_to] if a and a != self.requester}
        if self.required_approvals > len(eligible):
            raise ValueError(
                f"required_approvals ({self.required_approvals}) exceeds the {len(eligible)} approver(s) who may "
                f"decide (the requester {self.requester!r} may not); add approvers or escalate_to, "
                "or lower required_approvals"
            )
        if self.escalate_after >= self.expire_after:
            raise ValueError("escalate_after must be shorter than expire_after")
        return self


class Vote(BaseModel):
    """One approver's decision, sent as the `decide` update."""

    model_config = ConfigDict(extra="forbid")

    approver: Person = Field(min_length=1, max_length=128)
    decision: Literal["approve", "reject"]
    comment: str = Field(default="", max_length=2000)


class RecordedVote(Vote):
    at: datetime


ApprovalOutcome = Literal[
    "approved", "rejected", "expired", "auto_approved", "auto_rejected", "compensated", "cancelled"
]


class ApprovalResult(BaseModel):
    request_id: str
    outcome: ApprovalOutcome
    succeeded: bool
    reason: str | None = None
    decisions: list[RecordedVote] = Field(default_factory=list)
    escalated: bool = False
    compensations: list[Compensation] = Field(default_factory=list)


EXAMPLE: dict[str, object] = {
    "request_id": "PR-2001",
    "requester": "alice",
    "title": "New laptops for the support team",
    "amount": 4800.0,
    "approvers": ["bob", "carol"],
    "required_approvals": 1,
    "escalate_to": "dana",
    "escalate_after": "1d",
    "expire_after": "3d",
}

# What the catalog (flowctl_workflows.kinds) loads for this kind.
INPUT = ApprovalInput
RESULT = ApprovalResult
