"""The `approval` kind: pre-screen → ask the approvers → decisions as the `decide` update →
escalate after `escalate_after` → expire after `expire_after` → execute or notify rejection.

The update's validator refuses unknown approvers, the requester, second votes and votes
on a decided request, so a refused vote never reaches the history. One rejection rejects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from . import attributes
    from .models import TAKEN_OVER_UNDONE, FlowState
    from .models.approval import ApprovalInput, ApprovalOutcome, ApprovalResult, RecordedVote, Vote
    from .services import commands as c

from .flow import Cancelled, Flow, Undo, Waiting, failure_reason


def UNDOES(key: Callable[[str], str]) -> dict[str, Undo]:  # noqa: N802 - a table, spelled as one
    """The undoable step of an approval and its compensation."""
    return {"execute": ("revoke_execution", c.APPROVALS_REVOKE, c.RevokeExecution(execution_key=key("execute")))}


SUCCESS: frozenset[str] = frozenset({"approved", "auto_approved"})


@workflow.defn(name="Approval")
class ApprovalWorkflow:
    @workflow.init
    def __init__(self, request: ApprovalInput) -> None:
        self._flow = Flow("approval")
        self._request = request
        self._allowed: list[str] = list(request.approvers)
        self._votes: list[RecordedVote] = []
        self._open = False  # taking decisions
        self._escalated = False
        self._publish()

    @workflow.run
    async def run(self, request: ApprovalInput) -> ApprovalResult:
        flow = self._flow
        flow.begin(UNDOES)
        try:
            return await self._run(request)
        except Cancelled:
            raise
        except ActivityError as err:
            if not flow.settled:
                raise
            # A refusal (an execution refused by the service, say) ends the request, compensated.
            self._open = False
            reason = f"{flow.state.step} failed: {failure_reason(err)}"
            await flow.compensate()
            return await self._finish("compensated", reason)
        except asyncio.CancelledError:
            if not flow.settled:
                raise
            self._open = False
            flow.undo_everything()
            await flow.compensate()
            return await self._finish("cancelled", "cancelled")

    async def _run(self, request: ApprovalInput) -> ApprovalResult:
        flow = self._flow
        screen = await flow.step(
            "prescreen",
            c.APPROVALS_PRESCREEN,
            c.Prescreen(
                request_id=request.request_id,
                requester=request.requester,
                title=request.title,
                amount_cents=round(request.amount * 100),
            ),
        )
        if screen.decision == "approve":
            await self._execute()
            return await self._finish("auto_approved", f"pre-screen: {screen.reason}")
        if screen.decision == "reject":
            await self._tell_requester("approval_rejected", "was rejected")
            return await self._finish("auto_rejected", f"pre-screen: {screen.reason}")
        await self._notify(request.approvers, "request_review", "approval_request", "needs your decision")
        self._open = True
        flow.state.step = "await_decisions"
        flow.set_status("awaiting_decision", self._waiting())
        decided = await self._wait(request.escalate_after)
        if not decided and request.escalate_to:
            self._escalated = True
            if request.escalate_to not in self._allowed:
                self._allowed.append(request.escalate_to)
            await self._notify([request.escalate_to], "escalate", "approval_escalated", "is escalated to you")
            flow.state.step = "await_decisions"
            flow.set_status("escalated", self._waiting())
        if not decided:
            decided = await self._wait(request.expire_after - request.escalate_after)
        self._open = False
        flow.set_status("running", None)
        self._publish()
        if not decided:
            await self._tell_requester("approval_expired", "expired without a decision")
            return await self._finish("expired", f"no decision within {int(request.expire_after.total_seconds())}s")
        rejection = next((v for v in self._votes if v.decision == "reject"), None)
        if rejection is not None:
            await self._tell_requester("approval_rejected", "was rejected")
            reason = f"rejected by {rejection.approver}" + (f": {rejection.comment}" if rejection.comment else "")
            return await self._finish("rejected", reason)
        await self._execute()
        await self._tell_requester("approval_approved", "was approved")
        approvers = ", ".join(v.approver for v in self._votes)
        return await self._finish("approved", f"approved by {approvers}")

    def _waiting(self) -> Waiting:
        """What the request waits for, from whom (the allowed approvers who have not voted), and
        what comes next if nobody decides: escalation, then expiry."""
        request = self._request
        voted = {v.approver for v in self._votes}
        if request.escalate_to and not self._escalated:
            within, then = request.escalate_after, f"escalated to {request.escalate_to}"
        else:
            within = request.expire_after - (request.escalate_after if self._escalated else timedelta(0))
            then = "expires: no decision"
        return Waiting(
            f"{request.required_approvals - self._approvals()} more approval(s) (update 'decide')",
            attributes.APPROVAL,
            tuple(a for a in self._allowed if a not in voted),
            within=within,
            then=then,
        )

    def _approvals(self) -> int:
        return sum(1 for v in self._votes if v.decision == "approve")

    def _decided(self) -> bool:
        return any(v.decision == "reject" for v in self._votes) or self._approvals() >= self._request.required_approvals

    async def _wait(self, timeout: timedelta) -> bool:
        try:
            await workflow.wait_condition(self._decided, timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def _notify(self, to: list[str], step: str, template: str, what: str) -> None:
        request = self._request
        subject = f"Request {request.request_id} ({request.title}, {request.amount:.2f}) {what}"
        notice = c.Notify(to=to, template=template, subject=subject, ref=request.request_id)
        await self._flow.step(step, c.NOTIFY_SEND, notice)

    async def _tell_requester(self, template: str, what: str) -> None:
        # A step per message: after a reset decided otherwise, the rejection is its own call,
        # not answered with the approval the earlier run sent.
        step = f"notify_requester_{template.removeprefix('approval_')}"
        await self._notify([self._request.requester], step, template, what)

    async def _execute(self) -> None:
        request = self._request
        execute = c.ExecuteRequest(request_id=request.request_id, amount_cents=round(request.amount * 100))
        await self._flow.step("execute", c.APPROVALS_EXECUTE, execute)

    async def _finish(self, outcome: ApprovalOutcome, reason: str) -> ApprovalResult:
        """Finish with `outcome`; a cancelled run raises instead, keeping this result in its memo."""
        flow = self._flow
        if outcome not in SUCCESS and flow.undo_pending and workflow.patched(TAKEN_OVER_UNDONE):
            # Rejected or expired in a run that took over from one that executed the request
            # (only such a run has anything registered here): the execution is revoked.
            await flow.compensate()
        outcome, reason = flow.concluded(outcome, reason)  # type: ignore[assignment]
        assert reason is not None
        flow.finish(outcome, reason)
        self._publish()
        result = ApprovalResult(
            request_id=self._request.request_id,
            outcome=outcome,
            succeeded=outcome in SUCCESS,
            reason=reason,
            decisions=self._votes,
            escalated=self._escalated,
            compensations=flow.state.compensations,
        )
        if outcome == "cancelled":
            raise flow.end_cancelled(result)
        return result

    def _publish(self) -> None:
        """Keep the decision tally in the status query's details."""
        details: dict[str, Any] = {
            "approvers": list(self._allowed),
            "required_approvals": self._request.required_approvals,
            "approvals": self._approvals(),
            "votes": [v.model_dump(mode="json") for v in self._votes],
            "escalated": self._escalated,
        }
        self._flow.state.details = details

    @workflow.update(name="decide")
    def decide(self, vote: Vote) -> FlowState:
        """Record one approver's decision and return the new state."""
        self._votes.append(RecordedVote(**vote.model_dump(), at=workflow.now()))
        self._publish()
        if self._decided():
            self._flow.state.waiting_for = None  # the run loop takes it from here
            self._flow.state.step = "decided"
        else:
            self._flow.narrow_wait(self._waiting())
        return self._flow.state

    @decide.validator
    def _check_vote(self, vote: Vote) -> None:
        request = self._request
        if not self._open or self._decided():
            state = "already decided" if self._decided() else f"not taking decisions ({self._flow.state.status})"
            raise ValueError(f"request {request.request_id} is {state}")
        if vote.approver == request.requester:
            raise ValueError(f"{vote.approver} requested {request.request_id} and may not decide it")
        if vote.approver not in self._allowed:
            raise ValueError(
                f"{vote.approver} is not an approver of {request.request_id} (approvers: {', '.join(self._allowed)})"
            )
        if any(v.approver == vote.approver for v in self._votes):
            raise ValueError(f"{vote.approver} has already decided on {request.request_id}")

    @workflow.query(name="status")
    def status(self) -> FlowState:
        return self._flow.state
