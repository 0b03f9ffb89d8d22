"""Workflow-side bookkeeping shared by every kind: steps, status, search attributes, saga.

Runs inside the workflow sandbox: deterministic code only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from .models import Compensation, FlowState
    from .services import BUSINESS_ERROR

FLOW_KIND = SearchAttributeKey.for_keyword("FlowKind")
FLOW_STATUS = SearchAttributeKey.for_keyword("FlowStatus")
FLOW_WAITING_FOR = SearchAttributeKey.for_keyword("FlowWaitingFor")
FLOW_WAITING_SINCE = SearchAttributeKey.for_datetime("FlowWaitingSince")
FLOW_APPROVERS = SearchAttributeKey.for_keyword_list("FlowApprovers")

STEP_TIMEOUT = timedelta(seconds=10)
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=20),
    non_retryable_error_types=[BUSINESS_ERROR],
)
STEP_DEADLINE = timedelta(minutes=10)
# Compensations retry far longer than forward steps: undoing must not be given up lightly.
COMPENSATION_DEADLINE = timedelta(hours=6)


@dataclass(frozen=True)
class Waiting:
    """A human decision the workflow waits for: shown by `status`, found by `flowctl approvals`."""

    what: str
    tag: str  # approval | review | verification
    approvers: tuple[str, ...] = ()


@dataclass
class _Undo:
    record: Compensation
    command: str
    payload: dict[str, Any]


def failure_reason(err: ActivityError) -> str:
    """The service's own words for why an activity failed."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == BUSINESS_ERROR:
        return cause.message
    return str(cause or err)


class Flow:
    """A kind's progress: the `status` query's state, kept in step with search attributes."""

    def __init__(self, kind: str) -> None:
        self.state = FlowState(kind=kind, step="starting")
        self._undo: list[_Undo] = []
        self.approvers_set = False

    def begin(self) -> None:
        workflow.upsert_search_attributes(
            [FLOW_KIND.value_set(self.state.kind), FLOW_STATUS.value_set(self.state.status)]
        )

    def key(self, step: str) -> str:
        """The idempotency key of one step: stable across retries and worker restarts."""
        info = workflow.info()
        return f"{info.workflow_id}/{info.run_id}/{step}"

    def set_status(self, status: str, waiting: Waiting | None | Literal[False] = False) -> None:
        """Change the status and, unless `waiting` is False, what the workflow waits for.

        Pass a `Waiting` when a wait starts and None when it ends; every attribute that
        changes goes in one upsert, so the history gains one event, not several.
        """
        updates: list[SearchAttributeUpdate[Any]] = []
        if status != self.state.status:
            self.state.status = status
            updates.append(FLOW_STATUS.value_set(status))
        if waiting is not False:
            self.state.waiting_for = waiting.what if waiting else None
            self.state.waiting_since = workflow.now() if waiting else None
            if waiting:
                updates += [FLOW_WAITING_FOR.value_set(waiting.tag), FLOW_WAITING_SINCE.value_set(workflow.now())]
                if waiting.approvers:
                    updates.append(FLOW_APPROVERS.value_set(list(waiting.approvers)))
            else:
                updates += [FLOW_WAITING_FOR.value_unset(), FLOW_WAITING_SINCE.value_unset()]
                if self.approvers_set:
                    updates.append(FLOW_APPROVERS.value_unset())
            self.approvers_set = bool(waiting and waiting.approvers)
        if updates:
            workflow.upsert_search_attributes(updates)

    def narrow_wait(self, waiting: Waiting) -> None:
        """Update what an ongoing wait needs and from whom, keeping when it began."""
        self.state.waiting_for = waiting.what
        if waiting.approvers:
            workflow.upsert_search_attributes([FLOW_APPROVERS.value_set(list(waiting.approvers))])

    async def step(
        self,
        step: str,
        command: str,
        payload: dict[str, Any],
        *,
        undo: tuple[str, str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Run one forward step; its compensation, if any, is registered before it runs."""
        self.state.step = step
        if undo is not None:
            action, undo_command, undo_payload = undo
            self._undo.append(_Undo(Compensation(step=step, action=action), undo_command, undo_payload))
        result: dict[str, Any] = await workflow.execute_activity(
            command,
            {**payload, "idempotency_key": self.key(step)},
            start_to_close_timeout=STEP_TIMEOUT,
            schedule_to_close_timeout=STEP_DEADLINE,
            retry_policy=STEP_RETRY,
        )
        self.state.completed_steps.append(step)
        return result

    async def compensate(self) -> None:
        """Run registered compensations in reverse order; a failure is recorded, never dropped."""
        self.set_status("compensating")
        for undo in reversed(self._undo):
            record = undo.record
            self.state.step = record.action
            self.state.compensations.append(record)
            try:
                answer: dict[str, Any] = await workflow.execute_activity(
                    undo.command,
                    {**undo.payload, "idempotency_key": self.key(record.action)},
                    start_to_close_timeout=STEP_TIMEOUT,
                    schedule_to_close_timeout=COMPENSATION_DEADLINE,
                    retry_policy=STEP_RETRY,
                )
                record.state, record.note = "done", answer.get("note")
            except ActivityError as err:
                record.state, record.error = "failed", failure_reason(err)
        self._undo.clear()

    @property
    def compensation_failed(self) -> bool:
        return any(c.state == "failed" for c in self.state.compensations)

    def finish(self, outcome: str, reason: str | None = None) -> None:
        self.state.step, self.state.outcome, self.state.reason = "done", outcome, reason
        self.set_status(outcome, None if self.state.waiting_for is not None else False)
