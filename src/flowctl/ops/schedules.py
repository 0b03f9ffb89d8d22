"""Schedules that start a kind's workflows: their spec checked before anything is sent, and
create, pause, unpause, trigger, backfill and delete on the server (`schedule_views` reads them).

A schedule flowctl creates carries the kind in its `FlowKind` search attribute (so `list --kind`
is one visibility query) and starts the kind's workflow type with the input checked against
the kind's model. Temporal names each run after the action's workflow id and the run's
scheduled time (`order-A1-2026-12-02T09:00:00Z`, `run_id`), which is what `flowctl list`
finds; `describe` says so for the next runs as for the recent ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from flowctl import cron
from flowctl.errors import ConflictError, NotFoundError, UsageError
from flowctl.ops.rpc import rpc_errors
from flowctl.ops.visibility import iso
from flowctl_workflows import attributes, durations

if TYPE_CHECKING:
    from pydantic import BaseModel
    from temporalio.client import Client, ScheduleOverlapPolicy

    from flowctl_workflows.kinds import Kind

# Temporal's ScheduleOverlapPolicy members, as the flags spell them.
OVERLAPS = ("skip", "buffer-one", "buffer-all", "cancel-other", "terminate-other", "allow-all")
MIN_INTERVAL = timedelta(seconds=1)  # the server refuses shorter ones ("interval is too small")
MIN_CATCHUP = timedelta(seconds=10)  # the server raises shorter ones to this, silently
BACKFILL_LIMIT = 1000  # the most scheduled times the server lists for a range
TRIGGER_WAIT = 5.0  # seconds `trigger` watches for the run it asked for
PAUSED_NOTE, UNPAUSED_NOTE = "paused with flowctl", "unpaused with flowctl"  # the SDK would say "via Python SDK"
RUN_TIME = "%Y-%m-%dT%H:%M:%SZ"  # how Temporal appends a run's scheduled time to the workflow id


def run_id_of(workflow_id: str, at: datetime) -> str:
    """The workflow id Temporal gives the run of a schedule action at `at`."""
    return f"{workflow_id}-{at.strftime(RUN_TIME)}"


def ui_url(base: str, namespace: str, schedule_id: str) -> str:
    return f"{base}/namespaces/{quote(namespace, safe='')}/schedules/{quote(schedule_id, safe='')}"


def overlap(text: str, *, flag: str = "--overlap") -> str:
    """An overlap policy as flowctl spells it (`buffer-one`; BUFFER_ONE and buffer_one too)."""
    import difflib

    name = text.strip().lower().replace("_", "-")
    if name in OVERLAPS:
        return name
    close = difflib.get_close_matches(name, OVERLAPS, n=1, cutoff=0.5)
    said = f"; did you mean {close[0]!r}?" if close else ""
    raise UsageError(f"{flag} {text!r} is not an overlap policy{said}", hint=f"one of: {', '.join(OVERLAPS)}")


@dataclass(frozen=True)
class Interval:
    every: timedelta
    offset: timedelta = timedelta(0)

    def __str__(self) -> str:
        every = durations.format(self.every)
        return f"{every}/{durations.format(self.offset)}" if self.offset else every


def interval(text: str) -> Interval:
    """`--every 1d` or, with an offset into each interval, `--every 1d/9h` (at 09:00 UTC)."""
    from flowctl.inputs import parse_duration

    every_text, slash, offset_text = text.partition("/")
    example = "e.g. --every 30s, --every 1h, or --every 1d/9h for 09:00 UTC daily"
    if slash and "/" in offset_text:
        raise UsageError(f"--every {text!r}: give one offset after the '/'", hint=example)
    every = parse_duration(every_text, field=f"--every {text!r}")
    if every < MIN_INTERVAL:
        raise UsageError(f"--every {text!r}: the interval must be at least 1s", hint=example)
    offset = parse_duration(offset_text, field=f"--every {text!r} offset") if slash else timedelta(0)
    if offset >= every:
        raise UsageError(f"--every {text!r}: the offset must be shorter than the interval", hint=example)
    return Interval(every, offset)


def time_zone(name: str, *, flag: str = "--time-zone") -> str:
    """An IANA time zone name (`Europe/Berlin`), checked against this machine's zone database
    when it has one (else the server checks it)."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        if zoneinfo.available_timezones():
            raise UsageError(
                f"{flag} {name!r} is not a time zone", hint="give an IANA name such as UTC or Europe/Berlin"
            ) from None
    return name


@dataclass(frozen=True)
class Spec:
    """When a schedule acts: intervals and cron expressions (their union), in a time zone."""

    every: tuple[Interval, ...] = ()
    cron: tuple[str, ...] = ()
    time_zone: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"every": [str(i) for i in self.every], "cron": list(self.cron), "time_zone": self.time_zone}


def spec(every: Sequence[str], crons: Sequence[str], zone: str | None) -> Spec:
    """The schedule's spec from `--every`, `--cron` and `--time-zone`, checked as the server would."""
    if not every and not crons:
        raise UsageError("a schedule needs --every or --cron", hint="e.g. --every 1h, or --cron '0 9 * * MON-FRI'")
    zones = {time_zone(zone)} if zone else set()
    checked = []
    for text in crons:
        try:
            found = cron.check(text)
        except ValueError as exc:
            raise UsageError(
                f"--cron {text!r}: {exc}", hint="minute hour day-of-month month day-of-week, e.g. '0 9 * * MON-FRI'"
            ) from None
        if found.time_zone:
            zones.add(time_zone(found.time_zone, flag=f"--cron {text!r}"))
        checked.append(found.text)
    if len(zones) > 1:
        raise UsageError(
            f"a schedule has one time zone, these name several: {', '.join(sorted(zones))}",
            hint="drop CRON_TZ= from the expressions and give --time-zone once",
        )
    return Spec(tuple(interval(text) for text in every), tuple(checked), zone)


@dataclass(frozen=True)
class Plan:
    """A schedule to create: what it starts (validated), when, and what it does about overlaps."""

    schedule_id: str
    kind: Kind
    payload: BaseModel
    workflow_id: str
    task_queue: str
    spec: Spec
    overlap: str = "skip"
    catchup_window: timedelta | None = None
    pause_on_failure: bool = False
    paused: bool = False
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "schedule_id": self.schedule_id,
            "kind": self.kind.name,
            "workflow_type": self.kind.workflow_type,
            "workflow_id": self.workflow_id,
            "task_queue": self.task_queue,
            "input": self.payload.model_dump(mode="json"),
            "spec": self.spec.as_dict(),
            "policy": {
                "overlap": self.overlap,
                "catchup_window": durations.format(self.catchup_window) if self.catchup_window else None,
                "pause_on_failure": self.pause_on_failure,
            },
            "paused": self.paused,
            "note": self.note,
        }


def _policy(name: str) -> ScheduleOverlapPolicy:
    from temporalio.client import ScheduleOverlapPolicy

    return ScheduleOverlapPolicy[name.upper().replace("-", "_")]


def _kind_attribute(kind: str) -> Any:
    from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

    return TypedSearchAttributes([SearchAttributePair(SearchAttributeKey.for_keyword(attributes.KIND), kind)])


def utc(stamp: Any) -> datetime:
    from datetime import UTC

    moment: datetime = stamp.ToDatetime(tzinfo=UTC)
    return moment


@contextlib.contextmanager
def schedule_errors(schedule_id: str) -> Iterator[None]:
    """`rpc_errors`, saying "schedule X not found" (exit 3) and "already exists" (exit 4)."""
    from temporalio.client import ScheduleAlreadyRunningError
    from temporalio.service import RPCError, RPCStatusCode

    with rpc_errors():
        try:
            yield
        except ScheduleAlreadyRunningError:
            raise ConflictError(
                f"schedule {schedule_id!r} already exists", hint="use another id, or 'flowctl schedule delete' it first"
            ) from None
        except RPCError as exc:
            # A missing namespace is NOT_FOUND too: rpc_errors names it (the id itself may say anything).
            said = exc.message.replace(schedule_id, "")
            if exc.status == RPCStatusCode.NOT_FOUND and not re.search(r"namespace \S+ is not found", said, re.I):
                raise NotFoundError(f"schedule {schedule_id!r} not found", hint="see 'flowctl schedule list'") from None
            raise


async def create(client: Client, plan: Plan) -> None:
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleIntervalSpec,
        SchedulePolicy,
        ScheduleSpec,
        ScheduleState,
    )

    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            plan.kind.workflow_type, plan.payload, id=plan.workflow_id, task_queue=plan.task_queue
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=i.every, offset=i.offset or None) for i in plan.spec.every],
            cron_expressions=list(plan.spec.cron),
            time_zone_name=plan.spec.time_zone,
        ),
        policy=SchedulePolicy(
            overlap=_policy(plan.overlap), catchup_window=plan.catchup_window, pause_on_failure=plan.pause_on_failure
        ),
        state=ScheduleState(note=plan.note, paused=plan.paused),
    )
    with schedule_errors(plan.schedule_id):
        await client.create_schedule(plan.schedule_id, schedule, search_attributes=_kind_attribute(plan.kind.name))


def overlap_name(value: int) -> str:
    from temporalio.api.enums.v1 import ScheduleOverlapPolicy

    name = ScheduleOverlapPolicy.Name(value).removeprefix("SCHEDULE_OVERLAP_POLICY_")  # type: ignore[arg-type]
    return "skip" if name == "UNSPECIFIED" else name.lower().replace("_", "-")  # the server's default


async def fetch(client: Client, schedule_id: str) -> Any:
    """The server's description of the schedule, as it sent it (the SDK's model of it refuses
    what it does not know, an overlap policy left unspecified by another client, say)."""
    from temporalio.api.workflowservice.v1 import DescribeScheduleRequest

    request = DescribeScheduleRequest(namespace=client.namespace, schedule_id=schedule_id)
    return await client.workflow_service.describe_schedule(request, retry=True)


async def pause(client: Client, schedule_id: str, note: str | None) -> None:
    with schedule_errors(schedule_id):
        await client.get_schedule_handle(schedule_id).pause(note=note or PAUSED_NOTE)


async def unpause(client: Client, schedule_id: str, note: str | None) -> None:
    with schedule_errors(schedule_id):
        await client.get_schedule_handle(schedule_id).unpause(note=note or UNPAUSED_NOTE)


async def delete(client: Client, schedule_id: str) -> None:
    with schedule_errors(schedule_id):
        await client.get_schedule_handle(schedule_id).delete()


async def trigger(client: Client, schedule_id: str, policy: str | None) -> dict[str, Any]:
    """Start a run now; then watch the schedule for what became of it (up to TRIGGER_WAIT):
    `started` (with its workflow id), `buffered` (it starts when the running one ends),
    `skipped` (the overlap policy kept it from overlapping a running one) or `unknown`."""
    from temporalio.service import RPCError

    handle = client.get_schedule_handle(schedule_id)
    loop = asyncio.get_running_loop()
    with schedule_errors(schedule_id):
        before = (await fetch(client, schedule_id)).info
        await handle.trigger(overlap=_policy(policy) if policy else None)
    outcome: dict[str, Any] = {"schedule_id": schedule_id, "triggered": True, "outcome": "unknown"}
    deadline = loop.time() + TRIGGER_WAIT
    while loop.time() < deadline:
        await asyncio.sleep(0.2)
        try:
            after = (await fetch(client, schedule_id)).info
        except RPCError:  # the trigger was taken; what became of it is then unknown, not a failure
            return outcome
        if after.action_count > before.action_count:
            newest = max(after.recent_actions, key=lambda a: utc(a.actual_time))
            started = newest.start_workflow_result
            return outcome | {"outcome": "started", "workflow_id": started.workflow_id, "run_id": started.run_id}
        if after.overlap_skipped > before.overlap_skipped:
            running = [r.workflow_id for r in after.running_workflows]
            return outcome | {"outcome": "skipped", "running": running}
        if after.buffer_size > before.buffer_size:
            return outcome | {"outcome": "buffered", "running": [r.workflow_id for r in after.running_workflows]}
    return outcome


async def backfill(
    client: Client, schedule_id: str, start: datetime, end: datetime, policy: str | None
) -> dict[str, Any]:
    """Take the actions the schedule would have taken from `start` to `end` (both included), now.

    Returns the times and the workflow ids their runs get; more than BACKFILL_LIMIT is refused.
    """
    from google.protobuf.timestamp_pb2 import Timestamp
    from temporalio.api.workflowservice.v1 import ListScheduleMatchingTimesRequest
    from temporalio.client import ScheduleBackfill

    def stamp(moment: datetime) -> Timestamp:
        out = Timestamp()
        out.FromDatetime(moment)
        return out

    handle = client.get_schedule_handle(schedule_id)
    with schedule_errors(schedule_id):
        raw = await fetch(client, schedule_id)
        # The server's backfill takes a time equal to `start`; its list of matching times only
        # those after its start: asked from just before, the two agree.
        request = ListScheduleMatchingTimesRequest(
            namespace=client.namespace,
            schedule_id=schedule_id,
            start_time=stamp(start - timedelta(microseconds=1)),
            end_time=stamp(end),
        )
        times = [utc(t) for t in (await client.workflow_service.list_schedule_matching_times(request)).start_time]
        if len(times) >= BACKFILL_LIMIT:
            raise UsageError(
                f"{len(times)} or more scheduled times fall in that range: a backfill takes at most {BACKFILL_LIMIT - 1}",
                hint="backfill a shorter range, one after another",
            )
        if times:
            await handle.backfill(ScheduleBackfill(start, end, _policy(policy) if policy else None))
    prefix = raw.schedule.action.start_workflow.workflow_id or None
    effective = policy or overlap_name(raw.schedule.policies.overlap_policy)
    return {
        "schedule_id": schedule_id,
        "from": iso(start),
        "to": iso(end),
        "overlap": effective,
        "runs": [{"scheduled_at": iso(t), "workflow_id": run_id_of(prefix, t) if prefix else None} for t in times],
    }
