"""Models shared by every kind: the status a `status` query returns and saga records.

Nothing here imports temporalio, so the CLI can read schemas without loading the SDK.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CompensationState = Literal["pending", "done", "failed"]


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


class Decision(BaseModel):
    """A human decision on a held workflow: a fraud review of an order, say."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"] = Field(description="approve or reject")
    reviewer: str = Field(min_length=1, max_length=128, description="who decided")
    comment: str = Field(default="", max_length=2000)
