"""Typed operations on workflows. They return plain data and raise `FlowctlError`s; never print."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from flowctl import catalog
from flowctl.connect import transport_detail
from flowctl.errors import (
    ConflictError,
    ExitCode,
    FlowctlError,
    KeyMissingError,
    NotFoundError,
    NoWorkerError,
    PendingError,
    UnreachableError,
    UsageError,
)
from flowctl_workflows import attributes as attrs_names

if TYPE_CHECKING:
    from pydantic import BaseModel
    from temporalio.api.history.v1 import HistoryEvent
    from temporalio.client import Client, WorkflowExecution, WorkflowHandle, WorkflowHistory
    from temporalio.converter import DataConverter
    from temporalio.service import ServiceClient

    from flowctl.inputs import BulkLine
    from flowctl_workflows.kinds import Kind

QUERY_TIMEOUT = timedelta(seconds=15)
DECISION_TIMEOUT = timedelta(seconds=10)  # how long approve/reject/update wait for a worker to confirm
UPDATE_FLOOR = timedelta(seconds=2)  # an update is given at least this long to be sent and taken


@contextlib.contextmanager
def rpc_errors(workflow_id: str | None = None) -> Iterator[None]:
    """Turn the SDK's RPC failures into flowctl errors with the right exit code."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        yield
    except RPCError as exc:
        what = f"workflow {workflow_id!r}" if workflow_id else "request"
        status = exc.status
        if status == RPCStatusCode.NOT_FOUND:
            namespace = re.search(r"namespace (\S+) is not found", exc.message, re.IGNORECASE)
            if namespace:
                raise NotFoundError(
                    f"namespace {namespace.group(1)!r} not found on the server",
                    hint="check --namespace, TEMPORAL_NAMESPACE or the profile's namespace",
                ) from None
            if "already completed" in exc.message:
                raise ConflictError(f"{what} is already closed", hint="see 'flowctl describe'") from None
            detail = "" if workflow_id and "workflow not found" in exc.message.lower() else f": {exc.message}"
            raise NotFoundError(f"{what} not found{detail}", hint="check the id with 'flowctl list'") from None
        if status in (RPCStatusCode.ALREADY_EXISTS, RPCStatusCode.FAILED_PRECONDITION):
            # e.g. a query of a workflow that closed before a worker ever ran it
            raise ConflictError(f"{what}: {exc.message}") from None
        if status == RPCStatusCode.INVALID_ARGUMENT:
            raise UsageError(f"{what} refused by the server: {exc.message}") from None
        if is_outage(exc):
            raise UnreachableError(
                f"Temporal stopped answering ({transport_detail(exc.message)}) while handling {what}",
                hint="is the server still up? 'flowctl server status' says for the embedded one; then try again",
            ) from None
        if status in (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED):
            raise UnreachableError(f"server refused {what}: {exc.message}") from None
        if status == RPCStatusCode.RESOURCE_EXHAUSTED:  # rate limits; the SDK has retried already
            raise UnreachableError(
                f"the server is turning requests away ({exc.message}) for {what}",
                hint="try again later; a bulk start can go slower with --rate or --concurrency",
            ) from None
        if _timed_out(exc):
            raise UnreachableError(f"{what}: no answer in time ({exc.message})") from None
        raise


def is_outage(exc: BaseException) -> bool:
    """Whether the server went away (refused, reset, stopped mid-call): worth waiting out."""
    from temporalio.service import RPCError, RPCStatusCode

    if not isinstance(exc, RPCError):
        return False
    if exc.status == RPCStatusCode.UNAVAILABLE:
        return True
    text = exc.message.lower()
    signs = ("transport error", "connection refused", "connection reset", "broken pipe", "reset by peer", "h2 protocol")
    return exc.status in (RPCStatusCode.UNKNOWN, RPCStatusCode.CANCELLED) and any(s in text for s in signs)


async def server_silence(client: Client, within: timedelta) -> str | None:
    """None if the server answers a cheap call now, else why not: one try, failing fast (a
    waiting call itself would retry for seconds before it said anything)."""
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

    try:
        await client.workflow_service.get_system_info(GetSystemInfoRequest(), retry=False, timeout=within)
    except Exception as exc:  # noqa: BLE001 - any failure means it does not answer
        return str(exc) or type(exc).__name__
    return None


# How long a waiting command waits out an outage when it has no --timeout (config: outage_limit).
OUTAGE_LIMIT = timedelta(minutes=2)


@dataclass(frozen=True)
class Patience:
    """What a waiting command does when the server goes away: whom it tells, how long it waits."""

    tell: Callable[[str], None] | None = None
    limit: timedelta = OUTAGE_LIMIT


class Outage:
    """A waiting command's view of the server going away: say it once, retry, give up at a limit."""

    def __init__(self, client: Client, what: str, patience: Patience | None, timeout: timedelta | None) -> None:
        patience = patience or Patience()
        self.client = client
        self.what = what
        self.tell = patience.tell or (lambda _message: None)
        self.limit = patience.limit
        loop = asyncio.get_running_loop()
        self._now = loop.time
        self.deadline = self._now() + timeout.total_seconds() if timeout is not None else None
        self.began: float | None = None
        self.detail = ""

    @property
    def ongoing(self) -> bool:
        return self.began is not None

    def left(self) -> float | None:
        """Seconds left of the command's own timeout, if it has one."""
        return None if self.deadline is None else max(0.0, self.deadline - self._now())

    async def ride(self, exc: Exception) -> None:
        """Wait until the server answers again (saying so), or raise `UnreachableError` when the
        outage outlasts the command's patience. The caller then tries again."""
        from temporalio.service import RPCError

        self.detail = transport_detail(exc.message if isinstance(exc, RPCError) else str(exc))
        now = self._now()
        if self.began is None:
            self.began = now
            limit = self.left()
            patience = _spell(timedelta(seconds=round(limit)) if limit is not None else self.limit)
            self.tell(f"Temporal is unreachable ({self.detail}); still {self.what}, for up to {patience}")
        give_up = self.began + self.limit.total_seconds()
        if self.deadline is not None:
            give_up = self.deadline
        while True:
            now = self._now()
            if now >= give_up:
                raise self.unreachable()
            await asyncio.sleep(min(1.0, give_up - now))
            if await self.answers():
                self.over()
                return

    async def answers(self, within: timedelta = timedelta(seconds=2)) -> bool:
        return await server_silence(self.client, within) is None

    def over(self) -> None:
        if self.began is not None:
            self.tell(f"Temporal answers again; {self.what}")
            self.began = None

    def unreachable(self) -> UnreachableError:
        return UnreachableError(
            f"Temporal stayed unreachable ({self.detail}) while {self.what}",
            hint="is the server up? 'flowctl server status' says for the embedded one; then try again",
        )


def _timed_out(exc: Exception) -> bool:
    """A deadline hit on either side (the SDK reports its own as CANCELLED, "Timeout expired")."""
    from temporalio.service import RPCError, RPCStatusCode

    if not isinstance(exc, RPCError):
        return False
    return exc.status == RPCStatusCode.DEADLINE_EXCEEDED or (
        exc.status == RPCStatusCode.CANCELLED and "timeout" in exc.message.lower()
    )


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
            status = _status(desc.status)
            if status == "running":
                if if_running == "attach":
                    return Started(workflow_id, desc.run_id, attached=True)
                raise ConflictError(
                    f"workflow {workflow_id!r} is already running (run {exc.run_id or desc.run_id})",
                    hint="use --if-running attach, or another id",
                ) from None
            if status not in RESUMABLE:
                raise refuse_rerun(workflow_id, status, desc.run_id) from None
            refuse_unsettled(workflow_id, _search_attributes(desc), desc.run_id)
            first = await anext(
                aiter(client.get_workflow_handle(workflow_id, run_id=desc.run_id).fetch_history_events(page_size=1))
            )
            stopped_with = first.workflow_execution_started_event_attributes.input.payloads
            refuse_changed_input(
                workflow_id, desc.run_id, await _decoded(client.data_converter, stopped_with, payload), payload
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


async def _decoded(converter: Any, payloads: Any, like: BaseModel) -> Any:
    """The stopped run's input as the model `like` is, or None when it does not read as one."""
    try:
        return (await converter.decode(list(payloads), [type(like)]))[0]
    except KeyMissingError:
        raise
    except Exception:  # noqa: BLE001 - input another client wrote: not this payload, whatever it is
        return None


def _status(status: Any) -> str:
    return "unknown" if status is None else status_word(status.name)


# Temporal's execution statuses by their enum names: flowctl's word for each (`status_word`),
# the visibility query's (`TimedOut`) and the closing event's type all follow from these.
EXECUTION_STATUSES = ("RUNNING", "COMPLETED", "FAILED", "CANCELED", "TERMINATED", "CONTINUED_AS_NEW", "TIMED_OUT")
CLOSED_BY_EVENT = {f"WORKFLOW_EXECUTION_{name}": name for name in EXECUTION_STATUSES if name != "RUNNING"}


def visibility_status(name: str) -> str:
    """The name a visibility query gives a status: TIMED_OUT → TimedOut."""
    return "".join(part.capitalize() for part in name.split("_"))


def status_word(name: str) -> str:
    """A Temporal execution status as flowctl says it: `CANCELED` → `cancelled`, `TIMED_OUT` → `timed_out`."""
    word = name.removeprefix("WORKFLOW_EXECUTION_STATUS_").lower()
    return "cancelled" if word == "canceled" else word


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
        workflow_id, "running", ExitCode.STILL_RUNNING, error=f"still running after {_spell(timeout)}"
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
                reason = await _cancel_reason(handle)
                error = f"cancelled: {reason}" if reason else "workflow was cancelled"
                kept = await _kept_result(handle)
                return Outcome(workflow_id, "cancelled", ExitCode.CANCELLED, result=kept, error=error)
            if isinstance(cause, TerminatedError):
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


def _spell(timeout: timedelta | None) -> str:
    from flowctl.inputs import format_duration

    return format_duration(timeout) if timeout is not None else "waiting"


async def _kept_result(handle: WorkflowHandle[Any, Any]) -> Any:
    """The result a cancelled run kept in its memo (what it compensated), if it kept one."""
    from flowctl_workflows.models import RESULT_MEMO

    memo = await (await handle.describe()).memo()
    return memo.get(RESULT_MEMO)


async def _cancel_reason(handle: WorkflowHandle[Any, Any]) -> str:
    """The reason given with the cancellation request, as recorded in the history."""
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_cancel_requested_event_attributes"):
            return str(event.workflow_execution_cancel_requested_event_attributes.cause)
    return ""


async def has_worker(client: Client, task_queue: str) -> bool:
    """Whether any worker polls `task_queue` for workflow tasks right now."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    with rpc_errors():
        answer = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
    return len(answer.pollers) > 0


def _search_attributes(execution: WorkflowExecution) -> dict[str, Any]:
    return {pair.key.name: pair.value for pair in execution.typed_search_attributes}


def _plain(value: Any) -> Any:
    """A search attribute value as JSON has it: lists stay lists, times become ISO text."""
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def execution_dict(execution: WorkflowExecution) -> dict[str, Any]:
    attrs = _search_attributes(execution)
    kind = catalog.for_workflow_type(execution.workflow_type)
    status = _status(execution.status)
    # A workflow stopped from outside (terminated, timed out, failed) could not say so in its
    # search attributes: its last FlowStatus ("awaiting_review") is not true any more.
    flow_status = attrs.get(attrs_names.STATUS) if status in ("running", "completed", "cancelled") else status
    return {
        "workflow_id": execution.id,
        "run_id": execution.run_id,
        "workflow_type": execution.workflow_type,
        "kind": attrs.get(attrs_names.KIND) or (kind.name if kind else None),
        "status": status,
        "flow_status": flow_status,
        "start_time": _iso(execution.start_time),
        "close_time": _iso(execution.close_time),
        "task_queue": execution.task_queue,
        "history_length": execution.history_length,
        "search_attributes": {k: _plain(v) for k, v in attrs.items()},
    }


async def describe(client: Client, workflow_id: str, run_id: str | None = None) -> dict[str, Any]:
    """The execution, with what it has out: activities (attempts, failures, next retry) and,
    when it keeps failing, its workflow task."""
    with rpc_errors(workflow_id):
        desc = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    info = execution_dict(desc)
    raw = desc.raw_description
    info["pending_activities"] = _activities_out(raw)
    failing = _failed_task_attempt(raw)
    if failing:
        info["workflow_task"] = {
            "attempt": failing,
            "failing": True,
            "note": "the workflow's own task keeps failing on the worker (bad input, a bug): see the worker's log",
        }
    return info


async def require_running(client: Client, workflow_id: str) -> dict[str, Any]:
    """Describe the workflow, refusing one that is closed (exit 4)."""
    info = await describe(client, workflow_id)
    refuse_closed(info)
    return info


def refuse_closed(info: dict[str, Any]) -> None:
    """Refuse a described workflow that is closed (exit 4)."""
    if info["status"] != "running":
        raise ConflictError(
            f"workflow {info['workflow_id']!r} is already {info['status']}", hint="see 'flowctl describe'"
        )


def kind_of(info: dict[str, Any]) -> Kind:
    """The kind of a described workflow, or `NotFoundError` for a type flowctl does not know."""
    return kind_by_type(info["workflow_type"])


def kind_by_type(workflow_type: str) -> Kind:
    """The kind that runs `workflow_type`, or `NotFoundError`."""
    kind = catalog.for_workflow_type(workflow_type)
    if kind is None:
        raise NotFoundError(f"workflow type {workflow_type!r} is not a flowctl kind")
    return kind


async def message_payload(
    client: Client, workflow_id: str, group: str, name: str, raw: Any, assignments: list[str]
) -> Any:
    """The payload for a signal or update, validated by the running workflow's kind.

    Unknown message names exit 3, invalid payloads exit 2; either way nothing is sent.
    """
    info = await describe(client, workflow_id)
    payload = payload_for(kind_of(info), group, name, raw, assignments)  # bad input is named first
    refuse_closed(info)
    return payload


def payload_for(kind: Kind, group: str, name: str, raw: Any, assignments: list[str]) -> Any:
    """A signal's or update's payload checked against `kind`: exit 3 for an unknown name, 2 for a bad payload."""
    from flowctl import inputs

    message = catalog.message(kind, group, name)
    if message.model is None:
        if raw is not None or assignments:
            raise UsageError(f"{group} {name!r} takes no payload", hint="drop -i and --set")
        return None
    return inputs.compose(
        message.model, raw, assignments, what=f"payload of {group} {name!r}", hint=f"see 'flowctl kinds {kind.name}'"
    )


async def signal(client: Client, workflow_id: str, name: str, payload: Any) -> None:
    with rpc_errors(workflow_id):
        await client.get_workflow_handle(workflow_id).signal(name, payload)


async def query(
    client: Client, workflow_id: str, name: str, *, timeout: timedelta = QUERY_TIMEOUT, task_queue: str | None = None
) -> Any:
    """Ask a query; a worker must answer it, so a silent task queue is named in the error."""
    from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
    from temporalio.service import RPCError

    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)
    with rpc_errors(workflow_id):
        try:
            return await handle.query(name, rpc_timeout=timeout)
        except WorkflowQueryFailedError as exc:
            if "unknown queryType" in exc.message or "not found" in exc.message.lower():
                raise NotFoundError(f"workflow {workflow_id!r} has no query {name!r}: {exc.message}") from None
            raise FlowctlError(f"query {name!r} failed: {exc.message}") from None
        except WorkflowQueryRejectedError as exc:
            raise ConflictError(f"query {name!r} rejected: workflow is {_status(exc.status)}") from None
        except RPCError as exc:
            # A task that failed is either waited on until the query times out, or named by the
            # server at once ("Unable to query workflow due to Workflow Task in failed state").
            failed_state = "Workflow Task in failed state" in exc.message
            if _timed_out(exc) or failed_state:
                failing = await _failing_task(handle)
                if failing or failed_state:
                    attempt = f" (attempt {failing})" if failing else ""
                    raise UnreachableError(
                        f"query {name!r} on {workflow_id!r}: the workflow's task keeps failing on the worker"
                        f"{attempt}, so nothing can answer",
                        hint="see the worker's log; 'flowctl describe' shows it too",
                    ) from None
                queue = f"task queue {task_queue!r}" if task_queue else "the workflow's task queue"
                raise NoWorkerError(
                    f"query {name!r} on {workflow_id!r}: no worker answered within {timeout.total_seconds():g}s",
                    hint=f"is 'flowctl worker' running on {queue}?",
                ) from None
            raise


async def _failing_task(handle: WorkflowHandle[Any, Any]) -> int:
    """The attempt of the workflow task when it has failed before (0 when it has not)."""
    from temporalio.service import RPCError

    try:
        raw = (await handle.describe()).raw_description
    except RPCError:
        return 0
    return _failed_task_attempt(raw)


def _failed_task_attempt(raw: Any) -> int:
    """The attempt of a described workflow's task when it has failed before (0 when it has not)."""
    attempt: int = raw.pending_workflow_task.attempt if raw.HasField("pending_workflow_task") else 0
    return attempt if attempt > 1 else 0


def _activities_out(raw: Any) -> list[dict[str, Any]]:
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
            "last_started": _iso(a.last_started_time.ToDatetime(tzinfo=UTC))
            if a.HasField("last_started_time")
            else None,
            "next_retry": _iso(a.next_attempt_schedule_time.ToDatetime(tzinfo=UTC))
            if a.HasField("next_attempt_schedule_time")
            else None,
        }
        for a in raw.pending_activities
    ]


async def cancel(client: Client, workflow_id: str, reason: str = "") -> None:
    await require_running(client, workflow_id)
    with rpc_errors(workflow_id):
        await client.get_workflow_handle(workflow_id).cancel(reason=reason)


async def terminate(client: Client, workflow_id: str, reason: str) -> None:
    await require_running(client, workflow_id)
    with rpc_errors(workflow_id):
        await client.get_workflow_handle(workflow_id).terminate(reason=reason)


async def list_workflows(
    client: Client, query: str | None, limit: int, *, user_query: str | None = None
) -> list[dict[str, Any]]:
    """Executions `query` selects; a server refusal of it names `user_query`, the part the user wrote."""
    from temporalio.service import RPCError, RPCStatusCode

    with rpc_errors():
        try:
            return [execution_dict(e) async for e in client.list_workflows(query or None, limit=limit)]
        except RPCError as exc:
            # The dev server reports a query its full-text index cannot take as unavailable.
            refused = exc.status == RPCStatusCode.INVALID_ARGUMENT or (
                exc.status == RPCStatusCode.UNAVAILABLE and "SQL logic error" in exc.message
            )
            if not refused or user_query is None:
                raise
            # The server counts positions in its own wrapping of the query, not in the user's text.
            reason = re.sub(r"^invalid query: |\s+at position \d+", "", exc.message)
            raise UsageError(
                f"--query {user_query!r} is not a visibility query the server accepts: {reason}",
                hint="e.g. --query \"FlowKind = 'order' AND FlowStatus = 'awaiting_review'\"",
            ) from None


async def count_matching(client: Client, query: str | None) -> int:
    """How many executions `query` selects (the server counts them)."""
    with rpc_errors():
        return (await client.count_workflows(query or None)).count


async def history(client: Client, workflow_id: str, run_id: str | None = None) -> WorkflowHistory:
    with rpc_errors(workflow_id):
        return await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()


async def history_events(
    client: Client, workflow_id: str, *, follow: bool, patience: Patience | None = None, run_id: str | None = None
) -> AsyncIterator[HistoryEvent]:
    """Events as they are recorded; with `follow`, long-polls until the workflow closes."""
    async for page in history_pages(client, workflow_id, follow=follow, patience=patience, run_id=run_id):
        for event in page:
            yield event


async def pending_activities(client: Client, workflow_id: str) -> list[dict[str, Any]]:
    """The activities a workflow has out: id, type, current attempt and the last attempt's failure."""
    with rpc_errors(workflow_id):
        desc = await client.get_workflow_handle(workflow_id).describe()
    return _activities_out(desc.raw_description)


async def history_pages(
    client: Client,
    workflow_id: str,
    *,
    follow: bool = True,
    patience: Patience | None = None,
    run_id: str | None = None,
) -> AsyncIterator[list[HistoryEvent]]:
    """New events as the server returns them (long-polled with `follow`), a page at a time,
    until the close; an outage of the server is ridden out, resuming after the last page."""
    from temporalio.service import RPCError

    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id, run_id=run_id)
    token: bytes | None = None
    outage = Outage(client, f"following {workflow_id}", patience, None)
    with rpc_errors(workflow_id):
        while True:
            iterator = handle.fetch_history_events(wait_new_event=follow, next_page_token=token)
            try:
                await iterator.fetch_next_page()
            except RPCError as exc:
                if not (follow and is_outage(exc)):
                    raise
                await outage.ride(exc)
                continue
            outage.over()
            page = list(iterator.current_page or [])
            if page:
                yield page
            token = iterator.next_page_token
            if not token:
                return


def list_query(kind: str | None, status: str | None, query: str | None) -> str | None:
    """A visibility query from the `list` filters."""
    from flowctl_workflows.models import FLOW_STATUSES, RUNNING_PHASES

    clauses = []
    if kind:
        # By type, not FlowKind: a workflow whose first task never ran (bad input from another
        # client) has no FlowKind yet, and is an order all the same.
        clauses.append(f"WorkflowType = '{catalog.get(kind).workflow_type}'")
    # Names that are also Temporal's own statuses keep Temporal's meaning (completed: closed normally).
    if (
        status
        and status.lower() in FLOW_STATUSES
        and status.lower() not in ("running", "completed", "timed_out", "cancelled")
    ):
        clauses.append(f"{attrs_names.STATUS} = '{status.lower()}'")
        if status.lower() in RUNNING_PHASES:  # a workflow terminated while waiting keeps that FlowStatus
            clauses.append("ExecutionStatus = 'Running'")
    elif status:
        statuses = {status_word(name): visibility_status(name) for name in EXECUTION_STATUSES}
        statuses["canceled"] = statuses["cancelled"]  # Temporal's spelling too
        if status.lower() not in statuses:
            business = [s for s in FLOW_STATUSES if s not in statuses]
            raise UsageError(
                f"--status {status!r} is not a status",
                hint=f"one of: {', '.join(statuses)}; or a flow status: {', '.join(business)}",
            )
        clauses.append(f"ExecutionStatus = '{statuses[status.lower()]}'")
    if query:
        clauses.append(f"({query})")
    return " AND ".join(clauses) or None


async def update(
    client: Client,
    workflow_id: str,
    name: str,
    payload: Any,
    *,
    update_id: str,
    timeout: timedelta = DECISION_TIMEOUT,
    task_queue: str | None = None,
) -> Any:
    """Run an update and return its result; a validator's refusal is a conflict (exit 4).

    `update_id` is fixed per invocation, so a retried request is applied at most once. With
    no worker to take it within `timeout`, an update the server holds is `PendingError`.
    """
    from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
    from temporalio.exceptions import ApplicationError

    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)
    # However short the timeout, the update gets the time to reach the server (and, with a
    # worker up, be applied); only then can it be called sent.
    patience = max(timedelta(seconds=round(timeout.total_seconds())), UPDATE_FLOOR)
    with rpc_errors(workflow_id):
        try:
            return await handle.execute_update(name, payload, id=update_id, rpc_timeout=patience)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise ConflictError(f"update {name!r} refused: {message}") from None
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):  # the SDK's word for the wait cut short
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # Ctrl-C, not the timeout: stop here
                raise asyncio.CancelledError from None
        if not await _update_admitted(client, workflow_id, update_id):
            raise UnreachableError(f"update {name!r} on {workflow_id!r}: the server did not take it in time")
        queue = f"task queue {task_queue!r}" if task_queue else "the workflow's task queue"
        raise PendingError(
            f"update {name!r} reached {workflow_id!r}, but no worker took it within {_spell(patience)}: "
            "it takes effect when one does, unless the workflow's checks refuse it then",
            hint=f"is 'flowctl worker' running on {queue}? Until a worker takes it, only the server's memory holds it",
        )


async def _update_admitted(client: Client, workflow_id: str, update_id: str) -> bool:
    """Whether the server holds the update (admitted, waiting for a worker, or further on)."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
    from temporalio.api.update.v1 import UpdateRef, WaitPolicy
    from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
    from temporalio.service import RPCError, RPCStatusCode

    request = PollWorkflowExecutionUpdateRequest(
        namespace=client.namespace,
        update_ref=UpdateRef(workflow_execution=WorkflowExecution(workflow_id=workflow_id), update_id=update_id),
        identity=client.identity,
        wait_policy=WaitPolicy(
            lifecycle_stage=UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED
        ),
    )
    try:
        answer = await client.workflow_service.poll_workflow_execution_update(
            request, retry=True, timeout=timedelta(seconds=5)
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return answer.stage >= UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED


async def confirm(client: Client, workflow_id: str, what: str, *, timeout: timedelta, task_queue: str) -> Any:
    """The workflow's status after a signal it has durably received; `PendingError` if no worker applies it in time."""
    try:
        return await query(
            client, workflow_id, "status", timeout=max(timeout, timedelta(seconds=1)), task_queue=task_queue
        )
    except NoWorkerError:
        raise PendingError(
            f"{what} was delivered to {workflow_id!r} and is recorded in its history, but no worker has applied it "
            f"within {_spell(timedelta(seconds=round(timeout.total_seconds())))}: a worker applies it when one runs "
            "(unless an earlier decision was applied first: the first counts)",
            hint=f"is 'flowctl worker' running on task queue {task_queue!r}?",
        ) from None


def approvals_query(approver: str | None) -> str:
    """Running workflows waiting for a person, optionally one named as an approver."""
    tags = ", ".join(f"'{tag}'" for tag in attrs_names.WAITS)
    query = f"ExecutionStatus = 'Running' AND {attrs_names.WAITING_FOR} IN ({tags})"
    if approver and PLAIN_NAME.fullmatch(approver):
        query += f" AND {attrs_names.APPROVERS} = {quoted(approver)}"
    return query


# Names a visibility query matches as written on every server. Others are matched by `approvals`
# itself: servers read a backslash each their own way (the dev server finds `p\q` with neither
# 'p\q' nor 'p\\q'), and a double quote breaks its full-text index ("fts5: syntax error").
PLAIN_NAME = re.compile(r"[\w.@' +-]+")


def quoted(value: str) -> str:
    """A string literal for a visibility query (`o'brien` stays `o'brien`); no backslash in it."""
    return "'" + value.replace("'", "\\'").replace('"', '\\"') + "'"


async def approvals(client: Client, approver: str | None, limit: int = 1000) -> list[dict[str, Any]]:
    """The inbox: what each waiting workflow waits for, from whom, and since when."""
    rows = []
    with rpc_errors():
        async for execution in client.list_workflows(approvals_query(approver), limit=limit):
            attrs = _search_attributes(execution)
            if approver and approver not in (attrs.get(attrs_names.APPROVERS) or []):
                continue
            tag = str(attrs.get(attrs_names.WAITING_FOR))
            since = attrs.get(attrs_names.WAITING_SINCE)
            rows.append(
                {
                    "workflow_id": execution.id,
                    "kind": attrs.get(attrs_names.KIND),
                    "waiting_for": attrs_names.WAITS.get(tag, tag),
                    "since": since.isoformat() if isinstance(since, datetime) else None,
                    "approvers": list(attrs.get(attrs_names.APPROVERS) or []),
                    "status": attrs.get(attrs_names.STATUS),
                }
            )
    return sorted(rows, key=lambda row: row["since"] or "")


BATCH_CONCURRENCY = 20


async def running_matches(client: Client, query: str, limit: int) -> list[dict[str, Any]]:
    """The running workflows a batch operation's visibility query selects."""
    return await list_workflows(client, f"ExecutionStatus = 'Running' AND ({query})", limit, user_query=query)


async def for_each(workflow_ids: list[str], action: Callable[[str], Awaitable[None]]) -> list[dict[str, Any]]:
    """Run `action` on every id, a bounded number at a time; one line of outcome per id."""
    gate = asyncio.Semaphore(BATCH_CONCURRENCY)

    async def one(workflow_id: str) -> dict[str, Any]:
        async with gate:
            try:
                await action(workflow_id)
            except FlowctlError as err:
                return {"workflow_id": workflow_id, "ok": False, "code": int(err.code), "error": str(err)}
        return {"workflow_id": workflow_id, "ok": True}

    return list(await asyncio.gather(*(one(wid) for wid in workflow_ids)))


async def bulk_start(
    service: ServiceClient,
    namespace: str,
    converter: DataConverter,
    kind: Kind,
    lines: list[BulkLine],
    *,
    task_queue: str,
    concurrency: int,
    rate: float | None,
    report: Callable[[dict[str, Any]], None],
) -> list[dict[str, Any]]:
    """Start one workflow per valid line; ids come from the kind's template, so a line
    already started is reported as such, and running a file twice starts nothing twice.

    It sends the start requests `Client.start_workflow` would send for these options, over
    the bare connection (see `connect.connect_service`): same converter and codec, a fresh
    request id per workflow (kept across the SDK's retries). An id already in use is decided
    as `start` decides it: already started, resumed, or refused.
    """
    import json
    import uuid

    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.enums.v1 import WorkflowExecutionStatus, WorkflowIdReusePolicy
    from temporalio.api.workflowservice.v1 import (
        DescribeWorkflowExecutionRequest,
        GetWorkflowExecutionHistoryRequest,
        StartWorkflowExecutionRequest,
    )
    from temporalio.service import RPCError, RPCStatusCode

    from flowctl_workflows.models import RESUMES_MEMO

    gate = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    began = loop.time()
    gone: list[str] = []  # why the server is unreachable, once it is

    async def send(
        workflow_id: str, payload: BaseModel, policy: WorkflowIdReusePolicy.ValueType, resumes: str | None = None
    ) -> str | None:
        """The new run's id, or None when the id is taken (running, or closed and `policy` forbids it)."""
        request = StartWorkflowExecutionRequest(
            namespace=namespace,
            workflow_id=workflow_id,
            identity=service.config.identity,
            request_id=str(uuid.uuid4()),
            workflow_id_reuse_policy=policy,
        )
        request.workflow_type.name = kind.workflow_type
        request.task_queue.name = task_queue
        # Without the SDK's serialization context (workflow id and namespace): flowctl's
        # converter and codec use none. One that did would need it here, as in the SDK.
        request.input.payloads.extend(await converter.encode([payload]))
        if resumes is not None:
            request.memo.fields[RESUMES_MEMO].CopyFrom((await converter.encode([resumes]))[0])
        try:
            response = await service.workflow_service.start_workflow_execution(request, retry=True)
        except RPCError as exc:
            if exc.status == RPCStatusCode.ALREADY_EXISTS:
                return None
            raise
        return response.run_id

    async def start(workflow_id: str, payload: BaseModel) -> dict[str, Any]:
        """What became of one line: started, already started, resumed, or refused as `start` refuses it."""
        run_id = await send(workflow_id, payload, WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE)
        if run_id is not None:
            return {"run_id": run_id}
        described = await service.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(namespace=namespace, execution=WorkflowExecution(workflow_id=workflow_id)),
            retry=True,
        )
        info = described.workflow_execution_info
        status = status_word(WorkflowExecutionStatus.Name(info.status))
        if status in ("running", "completed"):
            return {"run_id": info.execution.run_id, "already_started": True, "status": status}
        if status not in RESUMABLE:
            raise refuse_rerun(workflow_id, status, info.execution.run_id)
        indexed = info.search_attributes.indexed_fields
        attributes = {
            name: json.loads(indexed[name].data)
            for name in (attrs_names.KIND, "TemporalChangeVersion")
            if name in indexed
        }
        refuse_unsettled(workflow_id, attributes, info.execution.run_id)
        first = await service.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(namespace=namespace, execution=info.execution, maximum_page_size=1),
            retry=True,
        )
        stopped_with = first.history.events[0].workflow_execution_started_event_attributes.input.payloads
        refuse_changed_input(
            workflow_id, info.execution.run_id, await _decoded(converter, stopped_with, payload), payload
        )
        policy = WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY
        run_id = await send(workflow_id, payload, policy, resumes=info.execution.run_id)
        if run_id is None:
            raise ConflictError(f"workflow {workflow_id!r} was started meanwhile")
        return {"run_id": run_id, "resumes": info.execution.run_id}

    async def one(index: int, item: BulkLine) -> dict[str, Any]:
        if item.payload is None:
            outcome: dict[str, Any] = {"line": item.line, "error": item.error, "code": int(ExitCode.USAGE)}
            report(outcome)
            return outcome
        if rate:
            await asyncio.sleep(max(0.0, began + index / rate - loop.time()))
        workflow_id = kind.workflow_id(item.payload)
        async with gate:
            if gone:  # the server went away: the rest are not tried, one error each
                outcome = {"line": item.line, "workflow_id": workflow_id, "code": int(ExitCode.UNREACHABLE),
                           "error": f"not started: {gone[0]}"}  # fmt: skip
                report(outcome)
                return outcome
            try:
                with rpc_errors(workflow_id):
                    outcome = {"line": item.line, "workflow_id": workflow_id, **await start(workflow_id, item.payload)}
            except FlowctlError as err:
                outcome = {"line": item.line, "workflow_id": workflow_id, "error": str(err), "code": int(err.code)}
                if err.code == ExitCode.UNREACHABLE and not gone:
                    gone.append(err.message)
            except RPCError as exc:  # one flowctl has no meaning for: this line fails, the others go on
                error = f"server error {exc.status.name}: {exc.message}"
                outcome = {
                    "line": item.line,
                    "workflow_id": workflow_id,
                    "error": error,
                    "code": int(ExitCode.INTERNAL),
                }
        report(outcome)
        return outcome

    valid = 0
    tasks = []
    for item in lines:
        tasks.append(one(valid, item))
        valid += item.payload is not None
    return list(await asyncio.gather(*tasks))
