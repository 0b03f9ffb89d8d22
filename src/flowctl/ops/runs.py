"""A workflow run's life: start (or resume), wait for its outcome, describe, cancel, terminate."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from flowctl import catalog
from flowctl.errors import ConflictError, ExitCode, KeyMissingError
from flowctl.ops import statuses
from flowctl.ops.rpc import Outage, Patience, is_outage, rpc_errors
from flowctl.ops.visibility import Execution, iso, search_attributes
from flowctl_workflows import attributes as attrs_names
from flowctl_workflows import durations

if TYPE_CHECKING:
    from pydantic import BaseModel
    from temporalio.client import Client, WorkflowHandle

    from flowctl_workflows.kinds import Kind


def ui_url(base: str, namespace: str, workflow_id: str, run_id: str | None = None) -> str:
    url = f"{base}/namespaces/{quote(namespace, safe='')}/workflows/{quote(workflow_id, safe='')}"
    return f"{url}/{run_id}/history" if run_id else url


@dataclass(frozen=True)
class Started:
    workflow_id: str
    run_id: str
    attached: bool
    resumes: str | None = None  # the run this one takes over from (terminated, failed or timed out)


# A business object whose last run was stopped before it could finish or compensate may be
# started again: its steps keep their idempotency keys, so the new run resumes them (a step
# already done answers what it answered) and nothing is done twice. A cancelled run was
# compensated: its undone steps cannot be redone, so its business key is not used again.
RESUMABLE = frozenset({"terminated", "failed", "timed_out"})


def refuse_unsettled(workflow_id: str, attributes: dict[str, Any], run_id: str) -> None:
    """Refuse to resume a run from before idempotency keys named the business step: its steps
    used keys with its own run id, so a new run would not recognise them and repeat them. (A
    run that never got to a worker did nothing, and may be resumed.)"""
    from flowctl_workflows.models import SETTLED

    ran = bool(attributes.get(attrs_names.KIND))
    if ran and SETTLED not in (attributes.get("TemporalChangeVersion") or []):
        raise ConflictError(
            f"workflow {workflow_id!r} (run {run_id}) ran on a flowctl before runs could be resumed: "
            "a new run would not recognise its steps",
            hint="undo what it did by hand ('flowctl ledger'), then start the business object under a new key",
        )


def refuse_rerun(workflow_id: str, status: str, run_id: str) -> ConflictError:
    """Why a closed workflow's id is not started again."""
    if status == "cancelled":
        return ConflictError(
            f"workflow {workflow_id!r} was cancelled and compensated (run {run_id}); "
            "its business key is not used twice",
            hint="start it under a new business key (e.g. a new order_id); see 'flowctl result' for what was undone",
        )
    return ConflictError(
        f"workflow {workflow_id!r} already ran and {status} (run {run_id})",
        hint="use a new business key or --id",
    )


async def start(
    client: Client,
    kind: Kind,
    payload: BaseModel,
    *,
    workflow_id: str,
    task_queue: str,
    if_running: str = "fail",
) -> Started:
    """Start a workflow; an id already in use is a conflict, or attached to with `attach`.

    A closed id is started again only when its last run is RESUMABLE.
    """
    from temporalio.common import WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    async def begin(policy: WorkflowIDReusePolicy, memo: dict[str, Any] | None = None) -> str:
        handle = await client.start_workflow(
            kind.workflow_type, payload, id=workflow_id, task_queue=task_queue, id_reuse_policy=policy, memo=memo
        )
        return handle.result_run_id or ""

    with rpc_errors(workflow_id):
        try:
            return Started(workflow_id, await begin(WorkflowIDReusePolicy.REJECT_DUPLICATE), attached=False)
        except WorkflowAlreadyStartedError as exc:
            desc = await client.get_workflow_handle(workflow_id).describe()
            status = statuses.of(desc.status)
            if status == "running":
                if if_running == "attach":
                    return Started(workflow_id, desc.run_id, attached=True)
                raise ConflictError(
                    f"workflow {workflow_id!r} is already running (run {exc.run_id or desc.run_id})",
                    hint="use --if-running attach, or another id",
                ) from None
            if status not in RESUMABLE:
                raise refuse_rerun(workflow_id, status, desc.run_id) from None
            refuse_unsettled(workflow_id, search_attributes(desc), desc.run_id)
            first = await anext(
                aiter(client.get_workflow_handle(workflow_id, run_id=desc.run_id).fetch_history_events(page_size=1))
            )
            stopped_with = first.workflow_execution_started_event_attributes.input.payloads
            refuse_changed_input(
                workflow_id, desc.run_id, await decoded(client.data_converter, stopped_with, type(payload)), payload
            )
        try:
            # Only a resumable last run lets this through: a run started meanwhile is a conflict.
            from flowctl_workflows.models import RESUMES_MEMO

            run_id = await begin(WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY, {RESUMES_MEMO: desc.run_id})
        except WorkflowAlreadyStartedError as exc:
            if if_running == "attach":  # another start won the race: join it
                current = exc.run_id or (await client.get_workflow_handle(workflow_id).describe()).run_id
                return Started(workflow_id, current, attached=True)
            raise ConflictError(f"workflow {workflow_id!r} was started meanwhile (run {exc.run_id})") from None
        return Started(workflow_id, run_id, attached=False, resumes=desc.run_id)


def refuse_changed_input(workflow_id: str, run_id: str, stopped_with: Any, payload: BaseModel) -> None:
    """Refuse to resume a stopped run with other input: the steps it took are kept by their
    keys, so a new run would find them done as the old input asked (charged for one item,
    shipping three)."""
    if stopped_with != payload:
        raise ConflictError(
            f"workflow {workflow_id!r} (run {run_id}) was stopped with other input: a resumed run "
            "repeats none of its steps, so it must ask for the same",
            hint="start it again with the input it was started with (flowctl history shows it), or use another id",
        )


async def decoded(converter: Any, payloads: Any, model: type[BaseModel]) -> Any:
    """The stopped run's input as a `model`, or None when it does not read as one (a converter
    for another encoding, bytes or protobuf, returns what it reads whatever the type asked)."""
    try:
        value = (await converter.decode(list(payloads), [model]))[0]
    except KeyMissingError:
        raise
    except Exception:  # noqa: BLE001 - input another client wrote: not this payload, whatever it is
        return None
    return value if isinstance(value, model) else None


@dataclass(frozen=True)
class Outcome:
    """How waiting for a workflow ended, with the exit code that says so."""

    workflow_id: str
    status: str
    code: ExitCode
    result: Any = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"workflow_id": self.workflow_id, "status": self.status}
        if self.result is not None:
            data["result"] = self.result
        if self.error is not None:
            data["error"] = self.error
        return data


async def wait_result(
    client: Client,
    workflow_id: str,
    *,
    timeout: timedelta | None = None,
    patience: Patience | None = None,
    run_id: str | None = None,
) -> Outcome:
    """Wait for the workflow's outcome (`timeout` 0: look once); `succeeded: false` exits 10.

    An outage of the server shorter than `timeout` (else `patience.limit`) is ridden out, told
    to `patience.tell` as it begins and ends.
    """
    from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
    from temporalio.exceptions import CancelledError, TerminatedError
    from temporalio.exceptions import TimeoutError as WfTimeout
    from temporalio.service import RPCError

    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id, run_id=run_id)
    still_running = Outcome(
        workflow_id,
        "running",
        ExitCode.STILL_RUNNING,
        error=f"still running after {durations.format(timeout) if timeout is not None else 'waiting'}",
    )
    with rpc_errors(workflow_id):
        outage = Outage(client, f"waiting for {workflow_id}", patience, timeout or None)
        try:
            if timeout is not None and not timeout:
                if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    return still_running
            while True:
                try:
                    coro = handle.result(follow_runs=run_id is None)
                    left = outage.left()
                    result = await (asyncio.wait_for(coro, left) if left is not None else coro)
                    outage.over()
                    break
                except RPCError as exc:
                    if not is_outage(exc):
                        raise
                    await outage.ride(exc)
        except TimeoutError:
            # Out of time while the server was away: still running, if it answers once more.
            if outage.ongoing and not await outage.answers(timedelta(seconds=5)):
                raise outage.unreachable() from None
            outage.over()
            return still_running
        except WorkflowFailureError as exc:
            outage.over()
            cause = exc.cause
            if isinstance(cause, CancelledError):
                reason = await cancel_reason(handle)
                error = f"cancelled: {reason}" if reason else "workflow was cancelled"
                kept = await kept_result(handle)
                return Outcome(workflow_id, "cancelled", ExitCode.CANCELLED, result=kept, error=error)
            if isinstance(cause, TerminatedError):
                latest = None if run_id is not None else await client.get_workflow_handle(workflow_id).describe()
                if latest is not None and latest.status != WorkflowExecutionStatus.TERMINATED:
                    # A reset ends the run it replaces by terminating it; the workflow goes on
                    # in the new run (which the SDK does not follow): wait for that one.
                    left = outage.left()
                    rest = None if left is None else timedelta(seconds=left)
                    return await wait_result(client, workflow_id, timeout=rest, patience=patience)
                return Outcome(
                    workflow_id, "terminated", ExitCode.WORKFLOW_FAILED, error=f"terminated: {cause.message}"
                )
            if isinstance(cause, WfTimeout):
                return Outcome(workflow_id, "timed_out", ExitCode.WORKFLOW_FAILED, error="workflow timed out")
            return Outcome(workflow_id, "failed", ExitCode.WORKFLOW_FAILED, error=str(cause or exc))
    if isinstance(result, dict) and result.get("succeeded") is False:
        return Outcome(workflow_id, str(result.get("outcome", "unsuccessful")), ExitCode.BUSINESS_FAILURE, result)
    status = str(result.get("outcome", "completed")) if isinstance(result, dict) else "completed"
    return Outcome(workflow_id, status, ExitCode.OK, result)


CLOSED = "closed"  # `wait --for closed`: until the run ends, however it ends


async def reach(
    client: Client, workflow_id: str, status: str, *, timeout: timedelta | None = None, patience: Patience | None = None
) -> Outcome:
    """Wait until the workflow's current run is or has been in flow status `status` (`closed`:
    until it ends), following its history by long-poll, and the run that takes over when a
    reset ends it. Exit 0 once it got there; 20 at `timeout`, saying where it is; if it ended
    without getting there, how it ended (10 when it completed: what was waited for did not
    happen). The history there is now is read whatever the timeout (0 looks once)."""
    from flowctl import history
    from flowctl_workflows.attributes import STATUS

    now = "running"
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout.total_seconds()

    async def read(run_id: str, follow: bool) -> str | None:
        """ "reached" once there, "closed" once the run closed without getting there, else None."""
        nonlocal now
        async for page in history.pages(client, workflow_id, follow=follow, patience=patience, run_id=run_id):
            for event in page:
                name = history.event_type(event)
                if name == "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES":
                    fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
                    if STATUS in fields:
                        now = history.keyword(fields[STATUS].data) or now
                        if now == status:
                            return "reached"
                elif name in statuses.CLOSED_BY_EVENT:
                    return "closed"
        return "closed" if follow else None

    followed, seen = "", None
    while seen != "reached":
        current = await describe(client, workflow_id)
        if current.run_id == followed:  # the run closed, and no run took over from it (a reset's)
            break
        followed = current.run_id
        seen = await read(followed, follow=False)
        if seen is None:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                watching = read(followed, follow=True)
                seen = await (asyncio.wait_for(watching, left) if left is not None else watching)
            except TimeoutError:
                after = durations.format(timeout) if timeout is not None else "waiting"
                return Outcome(
                    workflow_id, now, ExitCode.STILL_RUNNING, error=f"not {status} after {after}: it is {now}"
                )
    if seen == "reached":
        return Outcome(workflow_id, status, ExitCode.OK)
    ended = await wait_result(client, workflow_id, timeout=timedelta(0), patience=patience, run_id=followed)
    if status == CLOSED:
        return Outcome(workflow_id, ended.status, ExitCode.OK, ended.result, ended.error)
    why = f"ended {ended.status} without reaching {status}" + (f": {ended.error}" if ended.error else "")
    return Outcome(workflow_id, ended.status, ended.code or ExitCode.BUSINESS_FAILURE, ended.result, why)


async def kept_result(handle: WorkflowHandle[Any, Any]) -> Any:
    """The result a cancelled run kept in its memo (what it compensated), if it kept one."""
    from flowctl_workflows.models import RESULT_MEMO

    memo = await (await handle.describe()).memo()
    return memo.get(RESULT_MEMO)


async def cancel_reason(handle: WorkflowHandle[Any, Any]) -> str:
    """The reason given with the cancellation request, as recorded in the history."""
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_cancel_requested_event_attributes"):
            return str(event.workflow_execution_cancel_requested_event_attributes.cause)
    return ""


async def has_worker(client: Client, task_queue: str) -> bool:
    """Whether any worker polls `task_queue` for workflow tasks right now (as `flowctl workers` counts it)."""
    from flowctl.ops import taskqueues

    return await taskqueues.polls(client, task_queue)


@dataclass(frozen=True)
class Description(Execution):
    """An execution described: what it has out (activities, and its workflow task when that
    keeps failing)."""

    pending_activities: list[dict[str, Any]] = field(default_factory=list)
    workflow_task: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        data = super().as_dict()
        if self.workflow_task is None:
            del data["workflow_task"]
        return data


async def describe(client: Client, workflow_id: str, run_id: str | None = None) -> Description:
    """The execution, with what it has out: activities (attempts, failures, next retry) and,
    when it keeps failing, its workflow task."""
    with rpc_errors(workflow_id):
        desc = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    raw = desc.raw_description
    failing = failed_task_attempt(raw)
    task = None
    if failing:
        task = {
            "attempt": failing,
            "failing": True,
            "note": "the workflow's own task keeps failing on the worker (bad input, a bug): see the worker's log",
        }
    return Description(**vars(Execution.of(desc)), pending_activities=activities_out(raw), workflow_task=task)


async def require_running(client: Client, workflow_id: str) -> Description:
    """Describe the workflow, refusing one that is closed (exit 4)."""
    info = await describe(client, workflow_id)
    refuse_closed(info)
    return info


def refuse_closed(info: Execution) -> None:
    """Refuse a described workflow that is closed (exit 4)."""
    if info.status != "running":
        raise ConflictError(f"workflow {info.workflow_id!r} is already {info.status}", hint="see 'flowctl describe'")


def kind_of(info: Execution) -> Kind:
    """The kind of a described workflow, or `NotFoundError` for a type flowctl does not know."""
    return catalog.by_type(info.workflow_type)


async def failing_task(handle: WorkflowHandle[Any, Any]) -> int:
    """The attempt of the workflow task when it has failed before (0 when it has not)."""
    from temporalio.service import RPCError

    try:
        raw = (await handle.describe()).raw_description
    except RPCError:
        return 0
    return failed_task_attempt(raw)


def failed_task_attempt(raw: Any) -> int:
    """The attempt of a described workflow's task when it has failed before (0 when it has not)."""
    attempt: int = raw.pending_workflow_task.attempt if raw.HasField("pending_workflow_task") else 0
    return attempt if attempt > 1 else 0


def activities_out(raw: Any) -> list[dict[str, Any]]:
    """A described workflow's activities out: id, type, state (scheduled, started), attempt, the
    failure before it, when it started, the next retry."""
    from temporalio.api.enums.v1 import PendingActivityState

    return [
        {
            "activity_id": a.activity_id,
            "activity": a.activity_type.name,
            "state": PendingActivityState.Name(a.state).removeprefix("PENDING_ACTIVITY_STATE_").lower(),
            "attempt": a.attempt,
            "last_failure": a.last_failure.message or None,
            "last_started": iso(a.last_started_time.ToDatetime(tzinfo=UTC))
            if a.HasField("last_started_time")
            else None,
            "next_retry": iso(a.next_attempt_schedule_time.ToDatetime(tzinfo=UTC))
            if a.HasField("next_attempt_schedule_time")
            else None,
        }
        for a in raw.pending_activities
    ]


async def cancel(client: Client, workflow_id: str, reason: str = "") -> None:
    """Ask the running workflow to cancel. The server also accepts, and drops, a cancel of a
    workflow that has just closed: one that closed meanwhile without it is a conflict (exit 4).
    One reset meanwhile goes on in a new run, which the cancel is sent to as well."""
    from temporalio.client import WorkflowExecutionStatus

    run_id = (await require_running(client, workflow_id)).run_id
    with rpc_errors(workflow_id):
        for _ in range(3):  # a reset, and a reset of that, while the cancel is on its way
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            await handle.cancel(reason=reason)
            after = await handle.describe()
            if after.status == WorkflowExecutionStatus.RUNNING:
                return
            latest = await client.get_workflow_handle(workflow_id).describe()
            if latest.run_id != run_id and latest.status == WorkflowExecutionStatus.RUNNING:
                run_id = latest.run_id  # reset meanwhile: the run that goes on is cancelled
                continue
            if not await cancel_recorded(handle):
                raise ConflictError(
                    f"workflow {workflow_id!r} ended {statuses.of(after.status)} before the cancel reached it",
                    hint=f"see 'flowctl result {workflow_id}'",
                )
            return


async def cancel_recorded(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether the run's history holds a cancel request."""
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_cancel_requested_event_attributes"):
            return True
    return False


async def terminate(client: Client, workflow_id: str, reason: str) -> None:
    await require_running(client, workflow_id)
    with rpc_errors(workflow_id):
        await client.get_workflow_handle(workflow_id).terminate(reason=reason)


async def pending_activities(client: Client, workflow_id: str) -> list[dict[str, Any]]:
    """The activities a workflow has out: id, type, current attempt and the last attempt's failure."""
    with rpc_errors(workflow_id):
        desc = await client.get_workflow_handle(workflow_id).describe()
    return activities_out(desc.raw_description)
