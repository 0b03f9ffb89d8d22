"""Input, signal and result of the `onboarding` kind."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flowctl_workflows.fields import Duration

from . import Compensation
from .order import EMAIL_PATTERN, ID_PATTERN

Plan = Literal["free", "pro", "enterprise"]
ROLE_BY_PLAN: dict[str, str] = {"free": "member", "pro": "admin", "enterprise": "owner"}


class OnboardingInput(BaseModel):
    """A new user to sign up: account, verified email, workspace, role, welcome."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(pattern=ID_PATTERN, description="business key; the workflow id is onboarding-{user_id}")
    email: str = Field(pattern=EMAIL_PATTERN, max_length=254)
    name: str = Field(min_length=1, max_length=200)
    plan: Plan = Field(default="free", description="free, pro or enterprise; decides the role")
    verify_within: Duration = Field(default=timedelta(days=7), description="time to verify the email address")
    remind_after: Duration | None = Field(default=None, description="when to send a reminder; default: halfway")

    @model_validator(mode="after")
    def _reminder_before_deadline(self) -> OnboardingInput:
        if self.verify_within <= timedelta(0):
            raise ValueError("verify_within must be longer than 0s")
        if self.remind_after is not None and self.remind_after >= self.verify_within:
            raise ValueError("remind_after must be shorter than verify_within")
        return self

    @property
    def reminder_at(self) -> timedelta:
        return self.remind_after if self.remind_after is not None else self.verify_within / 2


class VerifyEmail(BaseModel):
    """The user (or an operator on their behalf) confirmed the email address."""

    model_config = ConfigDict(extra="forbid")

    verified_by: str = Field(default="user", min_length=1, max_length=128)


OnboardingOutcome = Literal["completed", "timed_out", "compensated", "cancelled"]


class OnboardingResult(BaseModel):
    user_id: str
    outcome: OnboardingOutcome
    succeeded: bool
    reason: str | None = None
    account_id: str | None = None
    workspace_id: str | None = None
    role: str | None = None
    verified_by: str | None = None
    reminders_sent: int = 0
    compensations: list[Compensation] = Field(default_factory=list)


EXAMPLE: dict[str, object] = {
    "user_id": "u-1001",
    "email": "grace@example.com",
    "name": "Grace Hopper",
    "plan": "pro",
}

# What the catalog (flowctl_workflows.kinds) loads for this kind.
INPUT = OnboardingInput
RESULT = OnboardingResult
