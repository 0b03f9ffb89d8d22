"""What the server's visibility store answers: executions by query, counts, the approvals
inbox and the running workflows a batch operation selects, as typed records."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flowctl import catalog
from flowctl.errors import UsageError
from flowctl.ops import statuses
from flowctl.ops.rpc import rpc_errors
from flowctl_workflows import attributes as attrs_names

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowExecution


@dataclass(frozen=True)
class Execution:
    """A workflow execution as `list`, `describe` and batch operations show it."""

    workflow_id: str
    run_id: str
    workflow_type: str
    kind: str | None
    status: str
    flow_status: str | None
    start_time: str | None
    close_time: str | None
    task_queue: str
    history_length: int
    search_attributes: dict[str, Any]

    @classmethod
    def of(cls, execution: WorkflowExecution) -> Execution:
        attrs = search_attributes(execution)
        kind = catalog.for_workflow_type(execution.workflow_type)
        status = statuses.of(execution.status)
        keeps = execution.status is not None and execution.status.name in statuses.KEEPS_FLOW_STATUS
        flow_status = attrs.get(attrs_names.STATUS) if keeps else status
        return cls(
            workflow_id=execution.id,
            run_id=execution.run_id,
            workflow_type=execution.workflow_type,
            kind=attrs.get(attrs_names.KIND) or (kind.name if kind else None),
            status=status,
            flow_status=flow_status,
            start_time=iso(execution.start_time),
            close_time=iso(execution.close_time),
            task_queue=execution.task_queue,
            history_length=execution.history_length,
            search_attributes={k: _plain(v) for k, v in attrs.items()},
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Approval:
    """One entry of the inbox: what a workflow waits for, from whom, since when."""

    workflow_id: str
    kind: str | None
    waiting_for: str
    since: str | None
    approvers: list[str]
    status: str | None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def search_attributes(execution: WorkflowExecution) -> dict[str, Any]:
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


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@contextmanager
def refused_query(user_query: str | None) -> Iterator[None]:
    """A server refusal of a query as a usage error naming `user_query`, the part the user
    wrote (none: the refusal is flowctl's bug and stays one); other failures as `rpc_errors`."""
    from temporalio.service import RPCError, RPCStatusCode

    with rpc_errors():
        try:
            yield
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


async def list_workflows(
    client: Client, query: str | None, limit: int, *, user_query: str | None = None
) -> list[Execution]:
    """Executions `query` selects; a server refusal of it names `user_query`, the part the user wrote."""
    with refused_query(user_query):
        return [Execution.of(e) async for e in client.list_workflows(query or None, limit=limit)]


async def count_matching(client: Client, query: str | None) -> int:
    """How many executions `query` selects (the server counts them)."""
    with rpc_errors():
        return (await client.count_workflows(query or None)).count


GROUPINGS = ("status", "flow-status", "kind")


async def count_groups(
    client: Client, query: str | None, by: str | None, *, user_query: str | None = None
) -> tuple[int, dict[str, int]]:
    """How many executions `query` selects, by execution status, flow status or kind, counted
    by the server: one `GROUP BY ExecutionStatus` (the only grouping it offers), else one count
    per value, all at once. A workflow with no flow status (its first task has not run, or
    another client started it) is counted under "none", one of no known kind under "other".
    The total, and the count of each group that has any."""
    import asyncio

    from flowctl_workflows.models import FLOW_STATUSES

    def where(clause: str) -> str:
        return f"({query}) AND {clause}" if query else clause

    async def count(selected: str | None) -> int:
        return (await client.count_workflows(selected)).count

    with refused_query(user_query):
        if by is None:
            return await count(query), {}
        if by == "status":
            words = {
                statuses.visibility_status(name): statuses.status_word(name) for name in statuses.EXECUTION_STATUSES
            }
            grouped = await client.count_workflows(f"{query or ''} GROUP BY ExecutionStatus".strip())
            found = {}
            for group in grouped.groups:
                value = str(group.group_values[0]) if group.group_values else ""
                found[words.get(value, value.lower())] = group.count
            return grouped.count, dict(sorted(found.items(), key=lambda item: -item[1]))
        if by == "kind":
            names = catalog.names()
            selections = [where(f"WorkflowType = '{catalog.get(name).workflow_type}'") for name in names]
            rest = "other"
        else:  # as `Execution.flow_status` says it: a run stopped from outside by how it stopped
            keeps = ", ".join(f"'{statuses.visibility_status(name)}'" for name in statuses.KEEPS_FLOW_STATUS)
            clauses: dict[str, list[str]] = {}
            for name in statuses.EXECUTION_STATUSES:
                if name not in statuses.KEEPS_FLOW_STATUS:
                    clauses[statuses.status_word(name)] = [f"ExecutionStatus = '{statuses.visibility_status(name)}'"]
            for name in FLOW_STATUSES:
                clauses.setdefault(name, []).append(
                    f"({attrs_names.STATUS} = '{name}' AND ExecutionStatus IN ({keeps}))"
                )
            names = list(clauses)
            selections = [where(f"({' OR '.join(either)})") for either in clauses.values()]
            rest = "none"
        total, *counts = await asyncio.gather(count(query), *(count(selection) for selection in selections))
    found = {name: n for name, n in sorted(zip(names, counts, strict=True), key=lambda item: -item[1]) if n}
    if total - sum(found.values()) > 0:  # counted at a slightly different moment: never below zero
        found[rest] = total - sum(found.values())
    return total, found


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
        names = {statuses.status_word(name): statuses.visibility_status(name) for name in statuses.EXECUTION_STATUSES}
        names["canceled"] = names["cancelled"]  # Temporal's spelling too
        if status.lower() not in names:
            business = [s for s in FLOW_STATUSES if s not in names]
            raise UsageError(
                f"--status {status!r} is not a status",
                hint=f"one of: {', '.join(names)}; or a flow status: {', '.join(business)}",
            )
        clauses.append(f"ExecutionStatus = '{names[status.lower()]}'")
    if query:
        clauses.append(f"({query})")
    return " AND ".join(clauses) or None


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


async def similar_ids(client: Client, workflow_id: str) -> list[str]:
    """Workflows whose id is `workflow_id` under another kind's prefix, or with none: `A-1`
    and `onboarding-A-1` when `order-A-1` exists. One query, only after a not found."""
    from temporalio.service import RPCError

    prefixes = [kind.id_template.split("{", 1)[0] for kind in map(catalog.get, catalog.names())]
    bare = next((workflow_id.removeprefix(p) for p in prefixes if p and workflow_id.startswith(p)), workflow_id)
    candidates = {f"{prefix}{bare}" for prefix in prefixes} | {bare}
    candidates.discard(workflow_id)
    if not PLAIN_ID.fullmatch(bare) or not candidates:
        return []
    query = f"WorkflowId IN ({', '.join(map(quoted, sorted(candidates)))})"
    try:
        return sorted({e.id async for e in client.list_workflows(query, limit=5)})
    except RPCError:  # a suggestion only: the not found stands as it was
        return []


PLAIN_ID = re.compile(r"[\w.:@+-]{1,200}")


def quoted(value: str) -> str:
    """A string literal for a visibility query (`o'brien` stays `o'brien`); no backslash in it."""
    return "'" + value.replace("'", "\\'").replace('"', '\\"') + "'"


async def approvals(client: Client, approver: str | None, limit: int = 1000) -> list[Approval]:
    """The inbox: what each waiting workflow waits for, from whom, and since when."""
    rows = []
    with rpc_errors():
        async for execution in client.list_workflows(approvals_query(approver), limit=limit):
            attrs = search_attributes(execution)
            if approver and approver not in (attrs.get(attrs_names.APPROVERS) or []):
                continue
            tag = str(attrs.get(attrs_names.WAITING_FOR))
            since = attrs.get(attrs_names.WAITING_SINCE)
            rows.append(
                Approval(
                    workflow_id=execution.id,
                    kind=attrs.get(attrs_names.KIND),
                    waiting_for=attrs_names.WAITS.get(tag, tag),
                    since=since.isoformat() if isinstance(since, datetime) else None,
                    approvers=list(attrs.get(attrs_names.APPROVERS) or []),
                    status=attrs.get(attrs_names.STATUS),
                )
            )
    return sorted(rows, key=lambda row: row.since or "")


async def running_matches(client: Client, query: str, limit: int) -> list[Execution]:
    """The running workflows a batch operation's visibility query selects."""
    return await list_workflows(client, f"ExecutionStatus = 'Running' AND ({query})", limit, user_query=query)
