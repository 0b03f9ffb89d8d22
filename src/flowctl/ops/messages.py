"""Messages to a running workflow: signals, queries and updates, their payloads checked
against the workflow's kind before anything is sent."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flowctl import catalog
from flowctl.errors import (
    ConflictError,
    FlowctlError,
    NotFoundError,
    NoWorkerError,
    PendingError,
    UnreachableError,
    UsageError,
)
from flowctl.ops import statuses
from flowctl.ops.rpc import rpc_errors, timed_out
from flowctl.ops.runs import describe, failing_task, kind_of, refuse_closed
from flowctl_workflows import durations

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

    from flowctl_workflows.kinds import Kind

QUERY_TIMEOUT = timedelta(seconds=15)
DECISION_TIMEOUT = timedelta(seconds=10)  # how long approve/reject/update wait for a worker to confirm
UPDATE_FLOOR = timedelta(seconds=2)  # an update is given at least this long to be sent and taken


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
            raise ConflictError(f"query {name!r} rejected: workflow is {statuses.of(exc.status)}") from None
        except RPCError as exc:
            # A task that failed is either waited on until the query times out, or named by the
            # server at once ("Unable to query workflow due to Workflow Task in failed state").
            failed_state = "Workflow Task in failed state" in exc.message
            if timed_out(exc) or failed_state:
                failing = await failing_task(handle)
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
        if not await update_admitted(client, workflow_id, update_id):
            raise UnreachableError(f"update {name!r} on {workflow_id!r}: the server did not take it in time")
        queue = f"task queue {task_queue!r}" if task_queue else "the workflow's task queue"
        raise PendingError(
            f"update {name!r} reached {workflow_id!r}, but no worker took it within {durations.format(patience)}: "
            "it takes effect when one does, unless the workflow's checks refuse it then",
            hint=f"is 'flowctl worker' running on {queue}? Until a worker takes it, only the server's memory holds it",
        )


async def update_admitted(client: Client, workflow_id: str, update_id: str) -> bool:
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
            f"within {durations.format(timedelta(seconds=round(timeout.total_seconds())))}: a worker applies it when one runs "
            "(unless an earlier decision was applied first: the first counts)",
            hint=f"is 'flowctl worker' running on task queue {task_queue!r}?",
        ) from None
