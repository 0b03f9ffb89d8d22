"""The `onboarding` kind: account → verification email → wait for `verify-email` (reminder
part-way) → workspace → role by plan → welcome email → notify admin.

Not verified in time, the account is deactivated and the result says `timed_out`; a failure
or a cancellation compensates what was created.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from .models import FlowState
    from .models.onboarding import ROLE_BY_PLAN, OnboardingInput, OnboardingOutcome, OnboardingResult, VerifyEmail

from .saga import Flow, Waiting, failure_reason

WAITING = Waiting("email verification (signal 'verify-email')", "verification")


@workflow.defn(name="Onboarding")
class OnboardingWorkflow:
    @workflow.init
    def __init__(self, user: OnboardingInput) -> None:
        self._flow = Flow("onboarding")
        self._verified: VerifyEmail | None = None
        self._reminders = 0
        self._ids: dict[str, str] = {}

    @workflow.run
    async def run(self, user: OnboardingInput) -> OnboardingResult:
        flow = self._flow
        flow.begin()
        account_key = flow.key("create_account")
        try:
            account = await flow.step(
                "create_account",
                "accounts.create",
                {"user_id": user.user_id, "email": user.email, "name": user.name},
                undo=("deactivate_account", "accounts.deactivate", {"account_key": account_key}),
            )
            self._ids["account_id"] = str(account["account_id"])
            await self._email(user, "send_verification_email", "verify_email", "Please confirm your email address")
            if not await self._await_verification(user):
                await flow.step("deactivate_account", "accounts.deactivate", {"account_key": account_key})
                reason = f"email not verified within {int(user.verify_within.total_seconds())}s"
                return self._result(user, "timed_out", reason)
            workspace = await flow.step(
                "setup_workspace",
                "workspace.create",
                {"user_id": user.user_id, "name": f"{user.name}'s workspace"},
                undo=("delete_workspace", "workspace.delete", {"workspace_key": flow.key("setup_workspace")}),
            )
            self._ids["workspace_id"] = str(workspace["workspace_id"])
            role = ROLE_BY_PLAN[user.plan]
            await flow.step(
                "assign_role",
                "accounts.assign_role",
                {"account_key": account_key, "role": role},
                undo=("revoke_role", "accounts.revoke_role", {"role_key": flow.key("assign_role")}),
            )
            self._ids["role"] = role
            await self._email(user, "send_welcome_email", "welcome", f"Welcome, {user.name}")
            await flow.step(
                "notify_admin",
                "notify.admin",
                {"template": "new_user", "subject": f"New {user.plan} user: {user.email}", "ref": user.user_id},
            )
        except ActivityError as err:
            reason = f"{flow.state.step} failed: {failure_reason(err)}"
            await flow.compensate()
            return self._result(user, "compensated", reason)
        except asyncio.CancelledError:
            await flow.compensate()
            flow.finish("cancelled", "cancelled")
            raise
        return self._result(user, "completed", None)

    async def _email(self, user: OnboardingInput, step: str, template: str, subject: str) -> None:
        payload = {"to": user.email, "template": template, "subject": subject, "ref": user.user_id}
        await self._flow.step(step, "email.send", payload)

    async def _await_verification(self, user: OnboardingInput) -> bool:
        """Wait for `verify-email`, reminding the user part-way; False if the time ran out."""
        flow = self._flow
        flow.state.step = "await_verification"
        flow.set_status("awaiting_verification", WAITING)
        verified = await self._wait(user.reminder_at)
        if not verified:
            self._reminders += 1
            await self._email(user, "send_reminder", "verify_reminder", "Reminder: confirm your email address")
            flow.state.step = "await_verification"
            verified = await self._wait(user.verify_within - user.reminder_at)
        flow.set_status("running", None)
        if verified:
            flow.state.completed_steps.append("email_verified")
        return verified

    async def _wait(self, timeout: timedelta) -> bool:
        try:
            await workflow.wait_condition(lambda: self._verified is not None, timeout=timeout)
        except TimeoutError:
            return False
        return True

    def _result(self, user: OnboardingInput, outcome: OnboardingOutcome, reason: str | None) -> OnboardingResult:
        self._flow.finish(outcome, reason)
        return OnboardingResult(
            user_id=user.user_id,
            outcome=outcome,
            succeeded=outcome == "completed",
            reason=reason,
            account_id=self._ids.get("account_id"),
            workspace_id=self._ids.get("workspace_id") if outcome == "completed" else None,
            role=self._ids.get("role") if outcome == "completed" else None,
            verified_by=self._verified.verified_by if self._verified else None,
            reminders_sent=self._reminders,
            compensations=self._flow.state.compensations,
        )

    @workflow.signal(name="verify-email")
    def verify_email(self, verification: VerifyEmail) -> None:
        """The address is confirmed; the first confirmation counts."""
        if self._verified is None:
            self._verified = verification

    @workflow.query(name="status")
    def status(self) -> FlowState:
        return self._flow.state
