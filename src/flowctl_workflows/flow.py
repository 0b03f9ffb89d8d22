"""A run's progress, shared by every kind (`Flow`): its steps and their idempotency keys, its
status and search attributes, what it waits for, and the compensations that undo its steps.

Runs inside the workflow sandbox: deterministic code only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from . import attributes
    from .models import RESULT_MEMO, RESUMES_MEMO, SETTLED, WAITING_MEMO, WAITS_IN_MEMO, Compensation, FlowState
    from .services import BUSINESS_ERROR
    from .services.commands import Ans, Answer, Command, Req, Request

FLOW_KIND = SearchAttributeKey.for_keyword(attributes.KIND)
FLOW_STATUS = SearchAttributeKey.for_keyword(attributes.STATUS)
FLOW_WAITING_FOR = SearchAttributeKey.for_keyword(attributes.WAITING_FOR)
FLOW_WAITING_SINCE = SearchAttributeKey.for_datetime(attributes.WAITING_SINCE)
FLOW_APPROVERS = SearchAttributeKey.for_keyword_list(attributes.APPROVERS)

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
# Since SETTLED: an undo is retried until it is done; only a business refusal stops it.
UNDO_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[BUSINESS_ERROR],
)

# Under the SETTLED patch: idempotency keys name the business step (workflow id and step, no
# run id), so a re-run repeats nothing; a cancel waits for the step in flight to end before
# compensating it; compensations run to their end whatever arrives meanwhile; a cancelled run
# undoes every undoable step and ends cancelled, its result kept in the memo. Histories
# recorded before it replay the old path.


class Cancelled(asyncio.CancelledError):
    """The run ends cancelled, its compensations done: not a cancel still to handle."""


@dataclass(frozen=True)
class Waiting:
    """A human decision the workflow waits for: shown by `status`, found by `flowctl approvals`."""

    what: str
    tag: str  # one of attributes.WAITS
    approvers: tuple[str, ...] = ()
    within: timedelta | None = None  # how long the wait lasts at most ...
    then: str | None = None  # ... and what happens when nobody decides in time


@dataclass
class _Undo:
    record: Compensation
    command: Command[Any, Any]
    request: Request


# A step's compensation: (action, command, request), e.g. ("refund_payment", PAYMENT_REFUND, RefundPayment(...)).
Undo = tuple[str, Command[Any, Any], Request]


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
        self.settled = False  # SETTLED is in force for this run
        self.answers: dict[str, Answer] = {}  # each forward step's answer, by step
        self._declared: dict[str, Undo] = {}  # every step that can be undone, in step order
        self._reached: set[str] = set()  # the steps this run started
        self.taken_over = False  # it goes on from another run: one it resumes, or the run it was reset from

    def begin(self, undoes: Callable[[Callable[[str], str]], dict[str, Undo]] | None = None) -> None:
        """Start the run; `undoes` names each undoable step's compensation, given the key of a step."""
        self.settled = workflow.patched(SETTLED)
        self._declared = undoes(self.key) if undoes is not None else {}
        workflow.upsert_search_attributes(
            [FLOW_KIND.value_set(self.state.kind), FLOW_STATUS.value_set(self.state.status)]
        )
        info = workflow.info()
        # A reset run has the run id of its own and the first run id of the run it replays.
        reset = info.run_id != info.first_execution_run_id
        self.taken_over = workflow.memo_value(RESUMES_MEMO, None) is not None or reset
        if self.settled and self.taken_over:
            # It takes over from a run that may have done any step (a stopped run it resumes,
            # or the run it was reset from, beyond the reset point): whatever it ends up
            # compensating, it undoes them all, not only the ones it reaches itself. This
            # registers compensations only, in memory: no command changes, so no patch.
            self.undo_everything()

    def undo_everything(self) -> None:
        """Register the compensation of every undoable step, reached or not: undoing a step
        never done is a no-op that also bars the step from happening later (a late attempt,
        another run)."""
        for step in self._declared:
            self._register(step)

    def _register(self, step: str) -> None:
        if step in self._declared and all(u.record.step != step for u in self._undo):
            action, command, request = self._declared[step]
            self._undo.append(_Undo(Compensation(step=step, action=action), command, request))

    def key(self, step: str) -> str:
        """The idempotency key of one business step: the same for every retry, worker and run."""
        info = workflow.info()
        if self.settled:
            return f"{info.workflow_id}/{step}"
        return f"{info.workflow_id}/{info.run_id}/{step}"

    @property
    def undo_pending(self) -> bool:
        """Compensations are registered and not run: the run's steps, or a run's before it."""
        return bool(self._undo)

    @property
    def cancel_requested(self) -> bool:
        return self.settled and workflow.cancellation_reason() is not None

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
            within = waiting.within if waiting else None
            self.state.deadline = workflow.now() + within if waiting and within is not None else None
            self.state.at_deadline = waiting.then if waiting else None
            if waiting:
                updates += [FLOW_WAITING_FOR.value_set(waiting.tag), FLOW_WAITING_SINCE.value_set(workflow.now())]
                if waiting.approvers:
                    updates.append(FLOW_APPROVERS.value_set(list(waiting.approvers)))
            else:
                updates += [FLOW_WAITING_FOR.value_unset(), FLOW_WAITING_SINCE.value_unset()]
                if self.approvers_set:
                    updates.append(FLOW_APPROVERS.value_unset())
            self.approvers_set = bool(waiting and waiting.approvers)
        if waiting is not False:
            self._note_wait()  # before the attributes: a reader of the history knows the memo is kept
        if updates:
            workflow.upsert_search_attributes(updates)

    def narrow_wait(self, waiting: Waiting) -> None:
        """Update what an ongoing wait needs and from whom, keeping when it began."""
        self.state.waiting_for = waiting.what
        if waiting.approvers:
            workflow.upsert_search_attributes([FLOW_APPROVERS.value_set(list(waiting.approvers))])
        self._note_wait()

    def _note_wait(self) -> None:
        """Since WAITS_IN_MEMO: keep the current wait (or its end) in the memo, where the history holds it."""
        if not (self.settled and workflow.patched(WAITS_IN_MEMO)):
            return
        state = self.state
        wait = None
        if state.waiting_for is not None:
            deadline = state.deadline.isoformat() if state.deadline is not None else None
            wait = {"what": state.waiting_for, "deadline": deadline, "then": state.at_deadline}
        workflow.upsert_memo({WAITING_MEMO: wait})

    async def step(self, step: str, command: Command[Req, Ans], request: Req) -> Ans:
        """Run one forward step; its compensation (declared at `begin`), if any, is registered before it runs.

        A cancel that arrives while the step runs waits for the step's end, then raises
        `asyncio.CancelledError`: only then is it known what compensating the step means.
        """
        if self.cancel_requested:
            raise asyncio.CancelledError
        self.state.step = step
        self._reached.add(step)
        self._register(step)
        arg = request.model_copy(update={"idempotency_key": self.key(step)})
        options: dict[str, Any] = {
            "start_to_close_timeout": STEP_TIMEOUT,
            "schedule_to_close_timeout": STEP_DEADLINE,
            "retry_policy": STEP_RETRY,
            "result_type": command.answer,
        }
        result: Ans
        if not self.settled:
            result = await workflow.execute_activity(command.name, arg, **options)
        else:
            try:
                result = await settle(workflow.start_activity(command.name, arg, **options))
            except ActivityError:
                if self.cancel_requested:
                    raise asyncio.CancelledError from None
                raise
        self.answers[step] = result
        self.state.completed_steps.append(step)
        if self.cancel_requested:
            raise asyncio.CancelledError
        return result

    async def compensate(self) -> None:
        """Run registered compensations in reverse order; a failure is recorded, never dropped.

        Since SETTLED, each one runs to its end whatever arrives meanwhile (a cancel, a
        signal) and is retried until done; only a business refusal marks it failed.
        """
        self.set_status("compensating")
        for undo in reversed(self._undo):
            record = undo.record
            self.state.step = record.action
            self.state.compensations.append(record)
            arg = undo.request.model_copy(update={"idempotency_key": self.key(record.action)})
            answer_type = undo.command.answer
            try:
                answer: Answer
                if self.settled:
                    handle = workflow.start_activity(
                        undo.command.name,
                        arg,
                        start_to_close_timeout=STEP_TIMEOUT,
                        retry_policy=UNDO_RETRY,
                        result_type=answer_type,
                    )
                    answer = await settle(handle)
                else:
                    answer = await workflow.execute_activity(
                        undo.command.name,
                        arg,
                        start_to_close_timeout=STEP_TIMEOUT,
                        schedule_to_close_timeout=COMPENSATION_DEADLINE,
                        retry_policy=STEP_RETRY,
                        result_type=answer_type,
                    )
                record.state, record.note = "done", answer.note
                if record.note is None and record.step not in self._reached:
                    record.note = (
                        "taken by a run before this one, and undone"  # the service says when there was nothing
                        if self.taken_over
                        else "step not reached by this run: now barred from happening later"
                    )
            except ActivityError as err:
                record.state, record.error = "failed", failure_reason(err)
        self._undo.clear()

    def concluded(self, outcome: str, reason: str | None) -> tuple[str, str | None]:
        """The outcome to report: a cancel that arrived while compensating still ends the run cancelled."""
        if outcome != "cancelled" and not self.cancel_requested:
            return outcome, reason
        said = workflow.cancellation_reason() if self.settled else None
        text = f"cancelled: {said}" if said else "cancelled"
        if outcome != "cancelled" and reason:
            text += f" (while compensating: {reason})"
        return "cancelled", text

    def end_cancelled(self, result: Any) -> Cancelled:
        """Keep a cancelled run's result where `flowctl result` finds it; raise what this returns."""
        if self.settled:
            workflow.upsert_memo({RESULT_MEMO: result})
        return Cancelled()

    @property
    def compensation_failed(self) -> bool:
        return any(c.state == "failed" for c in self.state.compensations)

    def finish(self, outcome: str, reason: str | None = None) -> None:
        self.state.step, self.state.outcome, self.state.reason = "done", outcome, reason
        self.set_status(outcome, None if self.state.waiting_for is not None else False)


async def settle(handle: workflow.ActivityHandle[Any]) -> Any:
    """The activity's result once it has ended, whatever arrives meanwhile.

    A cancel of the workflow does not reach the activity (it is awaited through a shield);
    the caller learns of it from `workflow.cancellation_reason()`.
    """
    while True:
        try:
            return await asyncio.shield(handle)
        except asyncio.CancelledError:
            if handle.cancelled():
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # taken note of: later awaits are not cancelled by it again
