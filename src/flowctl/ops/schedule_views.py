"""A schedule as `flowctl schedule describe` and `list` show it: its spec in flowctl's words
(the server keeps a cron expression as a calendar; it is written back as one), its input
decoded by its kind's model, its next runs and its recent runs with how each one stands.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flowctl import catalog, cron
from flowctl.ops import statuses
from flowctl.ops.rpc import rpc_errors
from flowctl.ops.schedules import Interval, fetch, overlap_name, run_id_of, schedule_errors, utc
from flowctl.ops.visibility import Execution, iso, quoted
from flowctl_workflows import attributes, durations

if TYPE_CHECKING:
    from temporalio.client import Client

    from flowctl_workflows.kinds import Kind


@dataclass(frozen=True)
class Run:
    """One run a schedule started: when it was due, when it started, its id and how it stands."""

    scheduled_at: str | None
    started_at: str | None
    workflow_id: str
    run_id: str
    status: str | None  # Temporal's (running, completed, ...), as visibility last saw it
    flow_status: str | None  # the kind's (completed, compensated, awaiting_review, ...)


@dataclass(frozen=True)
class Listed:
    """A schedule as `schedule list` shows it: what it starts, when, its next and last runs."""

    schedule_id: str
    kind: str | None
    created_by_flowctl: bool  # carries flowctl's FlowKind search attribute
    workflow_type: str
    spec: dict[str, Any]
    paused: bool
    note: str | None
    next_runs: list[dict[str, Any]]
    recent_runs: list[Run]  # newest first

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Described(Listed):
    """A schedule in full: what it starts and with which input, its policy and its counters."""

    workflow_id: str | None = None  # each run's: this, "-", its scheduled time
    task_queue: str | None = None
    input: Any = None
    input_error: str | None = None
    policy: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None
    runs_started: int = 0
    skipped_overlap: int = 0
    missed_catchup_window: int = 0
    buffered: int = 0
    running: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = super().as_dict()
        if self.input_error is None:
            del data["input_error"]
        return data


def _kind_of(search_attributes: Any, workflow_type: str) -> tuple[Kind | None, bool]:
    """The schedule's kind (flowctl's mark, else its workflow type) and whether flowctl made it."""
    marked = next((pair.value for pair in search_attributes if pair.key.name == attributes.KIND), None)
    kind = catalog.get(marked) if isinstance(marked, str) and marked in catalog.names() else None
    return kind or catalog.for_workflow_type(workflow_type), kind is not None


def _spec_of(raw: Any) -> dict[str, Any]:
    """A spec as the server keeps it (cron expressions become calendars): in flowctl's words."""

    def calendar(c: Any) -> str:
        names = ("second", "minute", "hour", "day_of_month", "month", "year", "day_of_week")
        return cron.written({n: [(r.start, r.end, r.step) for r in getattr(c, n)] for n in names}, c.comment or None)

    every = [
        str(Interval(i.interval.ToTimedelta(), i.phase.ToTimedelta() if i.HasField("phase") else timedelta(0)))
        for i in raw.interval
    ]
    return {
        "every": every,
        "cron": [calendar(c) for c in raw.structured_calendar] + list(raw.cron_string),
        "time_zone": raw.timezone_name or None,
        "skip": [calendar(c) for c in raw.exclude_structured_calendar],
        "start_at": iso(utc(raw.start_time)) if raw.HasField("start_time") else None,
        "end_at": iso(utc(raw.end_time)) if raw.HasField("end_time") else None,
        "jitter": durations.format(raw.jitter.ToTimedelta()) if raw.HasField("jitter") else None,
    }


def _next(times: Sequence[Any], workflow_id: str | None) -> list[dict[str, Any]]:
    return [{"at": iso(utc(t)), "workflow_id": run_id_of(workflow_id, utc(t)) if workflow_id else None} for t in times]


async def _runs(client: Client, actions: Sequence[Any]) -> list[Run]:
    """The runs of recent actions (raw protos), newest first, each with its status from one
    visibility query (a run visibility has not seen yet keeps the status the schedule noted)."""
    seen = await _executions(client, [a.start_workflow_result.workflow_id for a in actions])
    runs = []
    for action in sorted(actions, key=lambda a: utc(a.actual_time), reverse=True):
        started = action.start_workflow_result
        found = seen.get((started.workflow_id, started.run_id)) or seen.get((started.workflow_id, ""))
        noted = (
            statuses.status_word(_status_name(action.start_workflow_status)) if action.start_workflow_status else None
        )
        runs.append(
            Run(
                scheduled_at=iso(utc(action.schedule_time)),
                started_at=iso(utc(action.actual_time)),
                workflow_id=started.workflow_id,
                run_id=started.run_id,
                status=found.status if found else noted,
                flow_status=found.flow_status if found else None,
            )
        )
    return runs


def _status_name(status: int) -> str:
    from temporalio.api.enums.v1 import WorkflowExecutionStatus

    return WorkflowExecutionStatus.Name(status)  # type: ignore[arg-type]


async def _executions(client: Client, workflow_ids: Sequence[str]) -> dict[tuple[str, str], Execution]:
    """The executions of these workflow ids, by (id, run id) and (id, "") for the newest, from
    visibility, 100 ids a query. Ids a query cannot quote as written (a backslash, a double
    quote) are left to the status the schedule noted."""
    plain = sorted({wid for wid in workflow_ids if not re.search(r'[\\"]', wid)})
    found: dict[tuple[str, str], Execution] = {}
    for at in range(0, len(plain), 100):
        chunk = plain[at : at + 100]
        query = f"WorkflowId IN ({', '.join(quoted(wid) for wid in chunk)})"
        async for execution in client.list_workflows(query, limit=len(chunk) * 5):
            row = Execution.of(execution)
            found[(row.workflow_id, row.run_id)] = row
            found.setdefault((row.workflow_id, ""), row)  # newest first: the first one seen
    return found


async def describe(client: Client, schedule_id: str) -> Described:
    """The schedule, with its input decoded by its kind's model, next runs and recent runs."""
    from temporalio.converter import decode_typed_search_attributes

    from flowctl.errors import KeyMissingError
    from flowctl.inputs import shortened

    with schedule_errors(schedule_id):
        raw = await fetch(client, schedule_id)
        start = raw.schedule.action.start_workflow
        kind, ours = _kind_of(decode_typed_search_attributes(raw.search_attributes), start.workflow_type.name)
        payload, error = None, None
        if kind is not None and start.input.payloads:
            try:
                decoded = await client.data_converter.decode(list(start.input.payloads), [kind.input_model])
                payload = decoded[0].model_dump(mode="json")
            except KeyMissingError:
                raise
            except Exception as exc:  # noqa: BLE001 - input another client wrote: shown as unreadable, not a crash
                error = f"not a valid {kind.name} input: {shortened(' '.join(str(exc).split()), 200)}"
        policies, state, info = raw.schedule.policies, raw.schedule.state, raw.info
        return Described(
            schedule_id=schedule_id,
            kind=kind.name if kind else None,
            created_by_flowctl=ours,
            workflow_type=start.workflow_type.name,
            spec=_spec_of(raw.schedule.spec),
            paused=state.paused,
            note=state.notes or None,
            next_runs=_next(info.future_action_times, start.workflow_id),
            recent_runs=await _runs(client, info.recent_actions),
            workflow_id=start.workflow_id,
            task_queue=start.task_queue.name,
            input=payload,
            input_error=error,
            policy={
                "overlap": overlap_name(policies.overlap_policy),
                "catchup_window": durations.format(policies.catchup_window.ToTimedelta())
                if policies.HasField("catchup_window")
                else None,
                "pause_on_failure": policies.pause_on_failure,
            },
            created_at=iso(utc(info.create_time)) if info.HasField("create_time") else None,
            updated_at=iso(utc(info.update_time)) if info.HasField("update_time") else None,
            runs_started=info.action_count,
            skipped_overlap=info.overlap_skipped,
            missed_catchup_window=info.missed_catchup_window,
            buffered=info.buffer_size,
            running=[run.workflow_id for run in info.running_workflows],
        )


async def list_schedules(client: Client, kind: str | None, limit: int) -> tuple[list[Listed], bool]:
    """Schedules (of `kind`: those flowctl made for it), and whether more were left out at `limit`."""
    from temporalio.api.workflowservice.v1 import ListSchedulesRequest
    from temporalio.converter import decode_typed_search_attributes

    query = f"{attributes.KIND} = '{catalog.get(kind).name}'" if kind else ""
    entries: list[Any] = []
    token = b""
    with rpc_errors():
        while len(entries) <= limit:
            page = await client.workflow_service.list_schedules(
                ListSchedulesRequest(
                    namespace=client.namespace,
                    maximum_page_size=min(limit + 1, 1000),
                    next_page_token=token,
                    query=query,
                ),
                retry=True,
            )
            entries += page.schedules
            token = page.next_page_token
            if not token:
                break
        more = len(entries) > limit
        entries = entries[:limit]
        runs = await _runs(client, [a for e in entries for a in e.info.recent_actions])
    by_id = {(r.workflow_id, r.run_id): r for r in runs}
    listed = []
    for entry in entries:
        info = entry.info
        found, ours = _kind_of(decode_typed_search_attributes(entry.search_attributes), info.workflow_type.name)
        recent = sorted(info.recent_actions, key=lambda a: utc(a.actual_time), reverse=True)
        listed.append(
            Listed(
                schedule_id=entry.schedule_id,
                kind=found.name if found else None,
                created_by_flowctl=ours,
                workflow_type=info.workflow_type.name,
                spec=_spec_of(info.spec),
                paused=info.paused,
                note=info.notes or None,
                # The list does not carry the action's workflow id: a run's id is known once it ran.
                next_runs=_next(info.future_action_times, None),
                recent_runs=[
                    by_id[(a.start_workflow_result.workflow_id, a.start_workflow_result.run_id)] for a in recent
                ],
            )
        )
    return listed, more
