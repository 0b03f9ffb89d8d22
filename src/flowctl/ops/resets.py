"""Running a workflow again without doing anything twice: `retry` starts a stopped run anew
with its own input, `reset` replays a run to a point and lets it go on from there.

Both rely on what a run's steps are keyed by: the business step (workflow id and step, not the
run; see `flowctl_workflows.flow`), so a step the new run takes again is answered by its service
as it was answered the first time, and a step in flight when the old run stopped is the same
call as the new run's, of which the service keeps one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowctl.errors import ConflictError, NotFoundError, did_you_mean
from flowctl.ops import runs
from flowctl.ops.rpc import rpc_errors

if TYPE_CHECKING:
    from temporalio.api.history.v1 import HistoryEvent
    from temporalio.client import Client

LAST_TASK = "last-task"
ACTIVITY_ENDED = (
    "ACTIVITY_TASK_COMPLETED",
    "ACTIVITY_TASK_FAILED",
    "ACTIVITY_TASK_TIMED_OUT",
    "ACTIVITY_TASK_CANCELED",
)


@dataclass(frozen=True)
class Step:
    """A step a run scheduled, as its history tells it."""

    name: str  # the last part of its idempotency key: charge_payment, refund_payment
    scheduled: int  # its ActivityTaskScheduled event
    task: int  # the WorkflowTaskCompleted event of the task that scheduled it
    undoing: bool  # a compensation, or a step that undoes another (deactivate_account)
    ended: bool


@dataclass
class Plan:
    """What a reset would do: the run it replaces, the point it goes back to, the steps taken
    before the point (kept) and after it (taken again, each answered as before)."""

    workflow_id: str
    run_id: str
    to: str
    point: int  # the WorkflowTaskCompleted event the reset goes back to
    kept: list[str] = field(default_factory=list)
    again: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)  # out as the old run stops: one call with the new run's
    # Updates the old run took after the point: the server sends them again, before the new run
    # is back where it took them, and a workflow refuses a decision it does not wait for yet.
    updates_after: list[str] = field(default_factory=list)
    signals_after: list[str] = field(default_factory=list)  # sent again to the new run, and act as they did
    cancel_sent_on: bool = False  # a cancel reached the old run meanwhile: the new run was sent it too

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "to": self.to,
            "event_id": self.point,
            "kept": self.kept,
            "taken_again": self.again,
            "in_flight": self.in_flight,
            "updates_after": self.updates_after,
            "signals_after": self.signals_after,
            **({"cancel_sent_on": True} if self.cancel_sent_on else {}),
        }


@dataclass
class _Run:
    steps: list[Step]
    compensation: int | None  # the task that began its compensation, if one did
    cancel_requested: int | None  # the event of a cancel request, if one came
    last_task: int | None  # its last completed workflow task
    # The updates it took: event id, name, and the task that began the wait they answered.
    updates: list[tuple[int, str, int]]
    signals: list[tuple[int, str]] = field(default_factory=list)  # event id, name


async def _read(client: Client, workflow_id: str, run_id: str) -> _Run:
    """The run's steps in order, where its compensation began, a cancel request, its last
    task, its updates."""
    from flowctl import history
    from flowctl_workflows.attributes import STATUS
    from flowctl_workflows.models import RUNNING_PHASES
    from flowctl_workflows.services.commands import COMMANDS

    found: dict[int, Step] = {}
    ended: set[int] = set()
    run = _Run([], None, None, None, [])
    waiting_since = 0  # the task that set the flow status a person's decision answers
    async for event in history.events(client, workflow_id, follow=False, run_id=run_id):
        name = history.event_type(event)
        if name == "WORKFLOW_TASK_COMPLETED":
            run.last_task = event.event_id
        elif name == "ACTIVITY_TASK_SCHEDULED":
            attrs = event.activity_task_scheduled_event_attributes
            step = await _step_name(client, event) or attrs.activity_type.name
            # A compensation, or a step that undoes another as a forward one (an onboarding
            # not verified in time deactivates its account).
            undoes = getattr(COMMANDS.get(attrs.activity_type.name), "undoes", None) is not None
            undoing = run.compensation is not None or undoes
            found[event.event_id] = Step(step, event.event_id, attrs.workflow_task_completed_event_id, undoing, False)
        elif name in ACTIVITY_ENDED:
            ended.add(getattr(event, f"{name.lower()}_event_attributes").scheduled_event_id)
        elif name == "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES":
            upsert = event.upsert_workflow_search_attributes_event_attributes
            fields = upsert.search_attributes.indexed_fields
            status = history.keyword(fields[STATUS].data) if STATUS in fields else None
            if status == "compensating" and run.compensation is None:
                run.compensation = upsert.workflow_task_completed_event_id
            elif status in RUNNING_PHASES:
                waiting_since = upsert.workflow_task_completed_event_id
        elif name == "WORKFLOW_EXECUTION_SIGNALED":
            run.signals.append((event.event_id, event.workflow_execution_signaled_event_attributes.signal_name))
        elif name == "WORKFLOW_EXECUTION_CANCEL_REQUESTED" and run.cancel_requested is None:
            run.cancel_requested = event.event_id
        elif name == "WORKFLOW_EXECUTION_UPDATE_ACCEPTED":
            accepted = event.workflow_execution_update_accepted_event_attributes.accepted_request
            run.updates.append((event.event_id, accepted.input.name, waiting_since))
    run.steps = [Step(s.name, s.scheduled, s.task, s.undoing, s.scheduled in ended) for _, s in sorted(found.items())]
    return run


async def _step_name(client: Client, event: HistoryEvent) -> str | None:
    """The step an activity is, from the last part of the idempotency key it was given."""
    payloads = list(event.activity_task_scheduled_event_attributes.input.payloads)
    if not payloads:
        return None
    try:
        arg = (await client.data_converter.decode(payloads))[0]
    except (RuntimeError, ValueError, TypeError):  # another client's bytes; a missing codec key still stops it
        return None
    key = arg.get("idempotency_key") if isinstance(arg, dict) else None
    return key.rsplit("/", 1)[-1] if isinstance(key, str) and key else None


async def plan(client: Client, workflow_id: str, to: str) -> Plan:
    """Where a reset of the workflow's current run `to` a step (before it was scheduled) or
    `last-task` goes back to. Refused: a run asked to cancel (the cancel would be lost), one
    that began compensating or undid a step (the new run would cut that short, or go on as if
    what was undone still held), one whose keys name the run (the new run would not know its
    steps)."""
    info = await runs.describe(client, workflow_id)
    runs.kind_of(info)  # a workflow flowctl knows: its steps are keyed as flowctl keys them
    runs.refuse_unsettled(workflow_id, info.search_attributes, info.run_id)
    run = await _read(client, workflow_id, info.run_id)
    if run.cancel_requested is not None:
        raise ConflictError(
            f"workflow {workflow_id!r} (run {info.run_id}) was asked to cancel: the server does not "
            "send a cancel again to the run a reset makes, so the cancel would be lost",
            hint="let the cancel take its course ('flowctl watch')",
        )
    undoing = list(dict.fromkeys(step.name for step in run.steps if step.undoing))
    if run.compensation is not None or undoing:
        began = "began compensating" if run.compensation is not None else "undid a step"
        raise ConflictError(
            f"workflow {workflow_id!r} (run {info.run_id}) {began} ({', '.join(undoing) or 'its compensations'}): "
            "a reset would cut that short or go on as if the steps it undid still held",
            hint="start the business object again under a new key",
        )
    steps = run.steps
    if to == LAST_TASK:
        if run.last_task is None:
            raise ConflictError(
                f"workflow {workflow_id!r} has no completed workflow task to go back to",
                hint="no worker has run its first task yet, or that task keeps failing ('flowctl describe')",
            )
        point = run.last_task
    else:
        chosen = next((s for s in steps if s.name == to), None)
        if chosen is None:
            names = list(dict.fromkeys(s.name for s in steps))
            close = did_you_mean(to, names)
            raise NotFoundError(
                f"workflow {workflow_id!r} (run {info.run_id}) took no step {to!r}",
                hint=f"{close + ' ' if close else ''}its steps: {', '.join(names) or 'none yet'}; or --to {LAST_TASK}",
            )
        point = chosen.task
    done = Plan(workflow_id, info.run_id, to, point)
    for step in steps:
        (done.kept if step.ended and step.scheduled < point else done.again).append(step.name)
        if not step.ended:
            done.in_flight.append(step.name)
    # An update answered a wait the run began at or after the point: sent again, it reaches the
    # new run in that task, before the wait has begun again, and is refused.
    done.updates_after = [name for event_id, name, since in run.updates if event_id > point and since >= point]
    done.signals_after = [name for event_id, name in run.signals if event_id > point]
    return done


async def reset(client: Client, done: Plan, reason: str) -> str:
    """Reset the run as planned; the new run's id. Signals and updates sent after the point
    are sent again to the new run, as the server does by default; the new run undoes every
    undoable step should it end unsuccessfully, those the old run took beyond the point too."""
    import uuid

    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

    with rpc_errors(done.workflow_id):
        current = await client.get_workflow_handle(done.workflow_id).describe()
        if current.run_id != done.run_id:  # a reset (or a start) came first: this one would undo it
            raise ConflictError(
                f"workflow {done.workflow_id!r} is now run {current.run_id}, not the run {done.run_id} planned for",
                hint="see what it is doing ('flowctl watch') and plan again",
            )
        answer = await client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=done.workflow_id, run_id=done.run_id),
                reason=reason,
                workflow_task_finish_event_id=done.point,
                request_id=str(uuid.uuid4()),
                identity=client.identity,
            ),
            retry=True,
        )
    # A cancel that reached the old run after it was planned is not sent to the new run by the
    # server: it is sent here, so a cancel racing a reset is never lost.
    old = client.get_workflow_handle(done.workflow_id, run_id=done.run_id)
    with rpc_errors(done.workflow_id):
        if await runs.cancel_recorded(old):
            await client.get_workflow_handle(done.workflow_id, run_id=answer.run_id).cancel(
                reason=await runs.cancel_reason(old)
            )
            done.cancel_sent_on = True
    return str(answer.run_id)


@dataclass(frozen=True)
class Retried:
    workflow_id: str
    run_id: str
    resumes: str
    was: str  # how the run it takes over from ended

    def as_dict(self) -> dict[str, Any]:
        return {"workflow_id": self.workflow_id, "run_id": self.run_id, "resumes": self.resumes, "was": self.was}


async def retry(client: Client, workflow_id: str) -> Retried:
    """Start a failed, terminated or timed-out workflow again with the input its last run was
    started with, as `start` resumes one; any other state is refused as `start` refuses it."""
    info = await runs.describe(client, workflow_id)
    kind = runs.kind_of(info)
    if info.status == "running":
        raise ConflictError(
            f"workflow {workflow_id!r} is still running", hint="see 'flowctl watch' or 'flowctl result'"
        )
    if info.status not in runs.RESUMABLE:
        if info.status == "completed":
            raise ConflictError(
                f"workflow {workflow_id!r} completed (run {info.run_id}): there is nothing to retry",
                hint="see 'flowctl result'; to run a step again on purpose, 'flowctl reset' (not a run that compensated)",
            )
        raise runs.refuse_rerun(workflow_id, info.status, info.run_id)
    with rpc_errors(workflow_id):
        handle = client.get_workflow_handle(workflow_id, run_id=info.run_id)
        first = await anext(aiter(handle.fetch_history_events(page_size=1)))
    stopped_with = first.workflow_execution_started_event_attributes.input.payloads
    payload = await runs.decoded(client.data_converter, stopped_with, kind.input_model)
    if payload is None:
        raise ConflictError(
            f"workflow {workflow_id!r} (run {info.run_id}) was not started with an input flowctl reads as {kind.name}",
            hint=f"start it with a valid input: 'flowctl start {kind.name} --id {workflow_id} ...'",
        )
    started = await runs.start(client, kind, payload, workflow_id=workflow_id, task_queue=info.task_queue)
    return Retried(workflow_id, started.run_id, started.resumes or info.run_id, info.status)
