"""Acting on many workflows at once, a bounded number at a time: starting one per line of a
file, and the batch operations (cancel, terminate, signal by query)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from flowctl.errors import ConflictError, ExitCode, FlowctlError
from flowctl.ops.rpc import rpc_errors
from flowctl.ops.runs import RESUMABLE, decoded, refuse_changed_input, refuse_rerun, refuse_unsettled
from flowctl.ops.statuses import status_word
from flowctl_workflows import attributes as attrs_names

if TYPE_CHECKING:
    from pydantic import BaseModel
    from temporalio.converter import DataConverter
    from temporalio.service import ServiceClient

    from flowctl.inputs import BulkLine
    from flowctl_workflows.kinds import Kind

T = TypeVar("T")
R = TypeVar("R")
BATCH_CONCURRENCY = 20


async def bounded(items: Sequence[T], action: Callable[[T], Awaitable[R]], *, limit: int) -> list[R]:
    """`action` on every item, at most `limit` at a time; the results in the items' order."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with gate:
            return await action(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def for_each(workflow_ids: list[str], action: Callable[[str], Awaitable[None]]) -> list[dict[str, Any]]:
    """Run `action` on every id, a bounded number at a time; one line of outcome per id."""

    async def one(workflow_id: str) -> dict[str, Any]:
        try:
            await action(workflow_id)
        except FlowctlError as err:
            return {"workflow_id": workflow_id, "ok": False, "code": int(err.code), "error": str(err)}
        return {"workflow_id": workflow_id, "ok": True}

    return await bounded(workflow_ids, one, limit=BATCH_CONCURRENCY)


WAIT_CONCURRENCY = 200  # workflows waited for at once, each one long-poll


class Waiters:
    """Workflows waited for as they are added, a bounded number at a time, each by one
    long-poll (no polling); `report` hears of each as it ends, its line merged into `about`.
    `timeout` is one deadline for them all, counted from when the waiters were made. With
    `until`, each is waited for until it is in that flow status (`runs.reach`), not its end."""

    def __init__(
        self,
        client: Any,
        *,
        timeout: timedelta | None,
        patience: Any,
        report: Callable[[dict[str, Any]], None],
        limit: int = WAIT_CONCURRENCY,
        until: str | None = None,
    ) -> None:
        self._now = asyncio.get_running_loop().time
        self._deadline = None if timeout is None else self._now() + timeout.total_seconds()
        self._client, self._patience, self._report, self._until = client, patience, report, until
        self._gate = asyncio.Semaphore(limit)
        self._waiting: list[asyncio.Task[dict[str, Any]]] = []
        self._added: list[tuple[str, dict[str, Any]]] = []
        self._reported: set[str] = set()

    def add(self, workflow_id: str, about: dict[str, Any] | None = None) -> None:
        self._added.append((workflow_id, about or {}))
        self._waiting.append(asyncio.create_task(self._one(workflow_id, about or {})))

    def pending(self) -> list[dict[str, Any]]:
        """What was added for the workflows not reported yet (still waited for)."""
        return [{**about, "workflow_id": wid} for wid, about in self._added if wid not in self._reported]

    async def _one(self, workflow_id: str, about: dict[str, Any]) -> dict[str, Any]:
        from flowctl.ops import runs

        async with self._gate:
            left = None if self._deadline is None else timedelta(seconds=max(0.0, self._deadline - self._now()))
            try:
                if self._until is not None:
                    outcome = await runs.reach(
                        self._client, workflow_id, self._until, timeout=left, patience=self._patience
                    )
                else:
                    outcome = await runs.wait_result(self._client, workflow_id, timeout=left, patience=self._patience)
                line = {**about, **outcome.as_dict(), "code": int(outcome.code)}
            except FlowctlError as err:  # no such workflow, say: this one's line says so, the others go on
                line = {**about, "workflow_id": workflow_id, "status": err.slug, "code": int(err.code),
                        "error": str(err)}  # fmt: skip
        self._reported.add(workflow_id)
        self._report(line)
        return line

    async def ended(self) -> list[dict[str, Any]]:
        """Every line, in the order the workflows were added, once all have ended."""
        try:
            return list(await asyncio.gather(*self._waiting))
        finally:
            for task in self._waiting:
                task.cancel()


def summary(ended: list[dict[str, Any]]) -> str:
    """How many ended each way: `18 completed, 2 compensated`."""
    from collections import Counter

    counts = Counter(str(line["status"]) for line in ended)
    return ", ".join(f"{count} {status}" for status, count in counts.most_common()) or "no workflows"


async def wait_all(
    client: Any,
    workflow_ids: list[str],
    *,
    timeout: timedelta | None,
    patience: Any,
    report: Callable[[dict[str, Any]], None],
    limit: int = WAIT_CONCURRENCY,
    until: str | None = None,
) -> list[dict[str, Any]]:
    """Wait for every workflow to end, or to be in flow status `until` (see `Waiters`)."""
    waiters = Waiters(client, timeout=timeout, patience=patience, report=report, limit=limit, until=until)
    for workflow_id in workflow_ids:
        waiters.add(workflow_id)
    return await waiters.ended()


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
            workflow_id, info.execution.run_id, await decoded(converter, stopped_with, type(payload)), payload
        )
        policy = WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY
        run_id = await send(workflow_id, payload, policy, resumes=info.execution.run_id)
        if run_id is None:
            raise ConflictError(f"workflow {workflow_id!r} was started meanwhile")
        return {"run_id": run_id, "resumes": info.execution.run_id}

    async def one(numbered: tuple[int, BulkLine]) -> dict[str, Any]:
        index, item = numbered
        if item.payload is None:
            outcome: dict[str, Any] = {"line": item.line, "error": item.error, "code": int(ExitCode.USAGE)}
            report(outcome)
            return outcome
        if rate:
            await asyncio.sleep(max(0.0, began + index / rate - loop.time()))
        workflow_id = kind.workflow_id(item.payload)
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

    numbered, valid = [], 0
    for item in lines:  # paced by valid lines only: a bad line is reported, not waited for
        numbered.append((valid, item))
        valid += item.payload is not None
    return await bounded(numbered, one, limit=concurrency)
