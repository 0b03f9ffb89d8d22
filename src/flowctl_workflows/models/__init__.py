"""Models shared by every kind: the status a `status` query returns and saga records.

Nothing here imports temporalio, so the CLI can read schemas without loading the SDK.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flowctl_workflows.fields import Money as Money  # re-exported: the models' amounts

CompensationState = Literal["pending", "done", "failed"]
# Every FlowStatus a kind sets: while it runs, while it waits for a person, and how it ended.
FLOW_STATUSES: tuple[str, ...] = (
    "running", "compensating", "awaiting_review", "awaiting_verification", "awaiting_decision", "escalated",
    "completed", "compensated", "rejected", "cancelled", "timed_out", "expired", "approved", "auto_approved",
    "auto_rejected",
)  # fmt: skip
RUNNING_PHASES = frozenset(
    {"compensating", "awaiting_review", "awaiting_verification", "awaiting_decision", "escalated"}
)
RESULT_MEMO = "result"  # the memo key where a cancelled run keeps its result: a cancel carries none
RESUMES_MEMO = "resumes"  # the memo key naming the stopped run a new run takes over from
# The workflow patch under which keys name the business step (so a run can be resumed), a cancel
# waits for the step in flight and compensations cannot be abandoned (see flow.py).
SETTLED = "saga-settled-steps"
# The workflow patch under which a run also keeps what it waits for in the memo (WAITING_MEMO), so
# its history says what was waited for, until when and what then: a watch replaying a finished
# run shows its waits as a live watch showed them.
WAITS_IN_MEMO = "flow-waits-in-memo"
# The workflow patch under which an order reads its review timeout from the worker's policy
# (the ORDER_POLICY activity) rather than from the fraud screen's answer.
POLICY_APART = "order-policy-apart"
# The workflow patch under which a run that takes over from another (resumed, or reset) and
# ends unsuccessfully without a failure, an approval rejected or expired, still undoes what the
# run before it did (its execution), not only what fails or is cancelled.
TAKEN_OVER_UNDONE = "taken-over-undone-on-any-end"
WAITING_MEMO = "waiting"


class Compensation(BaseModel):
    """One compensating action of a saga and how it went."""

    step: str
    action: str
    state: CompensationState = "pending"
    error: str | None = None
    note: str | None = None  # the service's word when there was nothing to undo


class FlowState(BaseModel):
    """What the `status` query of every kind returns."""

    kind: str
    step: str
    status: str = "running"
    completed_steps: list[str] = Field(default_factory=list)
    waiting_for: str | None = None
    waiting_since: datetime | None = None
    compensations: list[Compensation] = Field(default_factory=list)
    outcome: str | None = None
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)  # what only this kind tracks
    deadline: datetime | None = None  # when the current wait ends by itself ...
    at_deadline: str | None = None  # ... and what happens then ("rejected: no review decision")


class Decision(BaseModel):
    """A human decision on a held workflow: a fraud review of an order, say."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"] = Field(description="approve or reject")
    reviewer: str = Field(min_length=1, max_length=128, description="who decided")
    comment: str = Field(default="", max_length=2000)
