"""The `onboarding` kind: account → verification email → wait for `verify-email` (reminder
part-way) → workspace → role by plan → welcome email → notify admin.

Not verified in time, the account is deactivated and the result says `timed_out`; a failure
or a cancellation compensates what was created.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from . import attributes
    from .models import FlowState
    from .models.onboarding import ROLE_BY_PLAN, OnboardingInput, OnboardingOutcome, OnboardingResult, VerifyEmail
    from .services import commands as c

from .flow import Cancelled, Flow, Undo, Waiting, failure_reason


def UNDOES(key: Callable[[str], str]) -> dict[str, Undo]:  # noqa: N802 - a table, spelled as one
    """Each undoable step of an onboarding and its compensation."""
    return {
        "create_account": (
            "deactivate_account",
            c.ACCOUNTS_DEACTIVATE,
            c.DeactivateAccount(account_key=key("create_account")),
        ),
        "setup_workspace": (
            "delete_workspace",
            c.WORKSPACE_DELETE,
            c.DeleteWorkspace(workspace_key=key("setup_workspace")),
        ),
        "assign_role": ("revoke_role", c.ACCOUNTS_REVOKE_ROLE, c.RevokeRole(role_key=key("assign_role"))),
    }


VERIFICATION = "email verification (signal 'verify-email')"


@workflow.defn(name="Onboarding")
class OnboardingWorkflow:
    @workflow.init
    def __init__(self, user: OnboardingInput) -> None:
        self._flow = Flow("onboarding")
        self._verified: VerifyEmail | None = None
        self._reminders = 0

    @workflow.run
    async def run(self, user: OnboardingInput) -> OnboardingResult:
        flow = self._flow
        flow.begin(UNDOES)
        account_key = flow.key("create_account")
        try:
            await flow.step(
                "create_account",
                c.ACCOUNTS_CREATE,
                c.CreateAccount(user_id=user.user_id, email=user.email, name=user.name),
            )
            await self._email(user, "send_verification_email", "verify_email", "Please confirm your email address")
            if not await self._await_verification(user):
                await flow.step(
                    "deactivate_account", c.ACCOUNTS_DEACTIVATE, c.DeactivateAccount(account_key=account_key)
                )
                reason = f"email not verified within {int(user.verify_within.total_seconds())}s"
                return self._result(user, "timed_out", reason)
            await flow.step(
                "setup_workspace",
                c.WORKSPACE_CREATE,
                c.CreateWorkspace(user_id=user.user_id, name=f"{user.name}'s workspace"),
            )
            role = ROLE_BY_PLAN[user.plan]
            await flow.step("assign_role", c.ACCOUNTS_ASSIGN_ROLE, c.AssignRole(account_key=account_key, role=role))
            await self._email(user, "send_welcome_email", "welcome", f"Welcome, {user.name}")
            await flow.step(
                "notify_admin",
                c.NOTIFY_ADMIN,
                c.NotifyAdmin(template="new_user", subject=f"New {user.plan} user: {user.email}", ref=user.user_id),
            )
        except ActivityError as err:
            reason = f"{flow.state.step} failed: {failure_reason(err)}"
            await flow.compensate()
            return self._result(user, "compensated", reason)
        except Cancelled:
            raise
        except asyncio.CancelledError:
            if not flow.settled:
                await flow.compensate()
                flow.finish("cancelled", "cancelled")
                raise
            flow.undo_everything()  # a cancelled onboarding keeps nothing, and can have nothing done later
            await flow.compensate()
            return self._result(user, "cancelled", None)
        return self._result(user, "completed", None)

    async def _email(self, user: OnboardingInput, step: str, template: str, subject: str) -> None:
        email = c.SendEmail(to=user.email, template=template, subject=subject, ref=user.user_id)
        await self._flow.step(step, c.EMAIL_SEND, email)

    async def _await_verification(self, user: OnboardingInput) -> bool:
        """Wait for `verify-email`, reminding the user part-way; False if the time ran out."""
        flow = self._flow
        flow.state.step = "await_verification"
        then = "the account is deactivated: email not verified"
        flow.set_status(
            "awaiting_verification",
            Waiting(VERIFICATION, attributes.VERIFICATION, within=user.verify_within, then=then),
        )
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
        """Finish with `outcome`; a cancelled run raises instead, keeping this result in its memo."""
        flow = self._flow
        outcome, reason = flow.concluded(outcome, reason)  # type: ignore[assignment]
        flow.finish(outcome, reason)
        account = flow.answers.get("create_account")
        workspace = flow.answers.get("setup_workspace")
        completed = outcome == "completed"
        result = OnboardingResult(
            user_id=user.user_id,
            outcome=outcome,
            succeeded=completed,
            reason=reason,
            account_id=account.account_id if isinstance(account, c.Account) else None,
            workspace_id=workspace.workspace_id if isinstance(workspace, c.Workspace) and completed else None,
            role=ROLE_BY_PLAN[user.plan] if "assign_role" in flow.answers and completed else None,
            verified_by=self._verified.verified_by if self._verified else None,
            reminders_sent=self._reminders,
            compensations=flow.state.compensations,
        )
        if outcome == "cancelled":
            raise flow.end_cancelled(result)
        return result

    @workflow.signal(name="verify-email")
    def verify_email(self, verification: VerifyEmail) -> None:
        """The address is confirmed; the first confirmation counts."""
        if self._verified is None:
            self._verified = verification

    @workflow.query(name="status")
    def status(self) -> FlowState:
        return self._flow.state
