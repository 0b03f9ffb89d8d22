"""A workflow's progress as a stream of changes, for `flowctl watch` and `start --follow`.

The history is long-polled (no busy polling); after each workflow task the `status` query
says which steps completed, which compensations ran and what the workflow waits for; the
history adds retries, timers and the outcome. Each difference is one change.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flowctl.errors import FlowctlError, KeyMissingError

if TYPE_CHECKING:
    from temporalio.api.history.v1 import HistoryEvent
    from temporalio.client import Client

    from flowctl.ops import Patience

STATUS_TIMEOUT = timedelta(seconds=3)
RETRY_POLL = timedelta(seconds=0.5)  # the first retry comes 1s after a failure
ACTIVITY_CLOSED = {
    "ACTIVITY_TASK_COMPLETED": "activity_task_completed_event_attributes",
    "ACTIVITY_TASK_FAILED": "activity_task_failed_event_attributes",
    "ACTIVITY_TASK_TIMED_OUT": "activity_task_timed_out_event_attributes",
    "ACTIVITY_TASK_CANCELED": "activity_task_canceled_event_attributes",
}
CLOSED = {
    "WORKFLOW_EXECUTION_COMPLETED": "completed",
    "WORKFLOW_EXECUTION_FAILED": "failed",
    "WORKFLOW_EXECUTION_TIMED_OUT": "timed_out",
    "WORKFLOW_EXECUTION_CANCELED": "cancelled",
    "WORKFLOW_EXECUTION_TERMINATED": "terminated",
    "WORKFLOW_EXECUTION_CONTINUED_AS_NEW": "continued_as_new",
}


@dataclass
class View:
    """Everything the live view shows; changes are the differences between two views."""

    workflow_id: str
    kind: str | None = None
    step: str | None = None
    completed: list[str] = field(default_factory=list)
    compensations: dict[str, str] = field(default_factory=dict)  # action → state
    waiting_for: str | None = None
    timers: dict[int, datetime] = field(default_factory=dict)  # started event id → fire time
    retries: dict[str, tuple[str, int]] = field(default_factory=dict)  # activity id → (type, attempts so far)
    outcome: dict[str, Any] | None = None
    deadline: datetime | None = None  # when the wait ends by itself, as the workflow says ...
    at_deadline: str | None = None  # ... and what happens then

    def timer_left(self, now: datetime | None = None) -> timedelta | None:
        """Time until the wait's deadline (else the earliest pending timer), if there is one.

        The workflow names the deadline that matters (the review's end, not a reminder before
        it); a kind that names none is shown its next timer.
        """
        now = now or datetime.now(UTC)
        if self.deadline is not None:
            return max(self.deadline - now, timedelta(0))
        if not self.timers:
            return None
        return max(min(self.timers.values()) - now, timedelta(0))


def left_text(view: View) -> str | None:
    """Time left until the wait's deadline, to the second, as a duration (`23h59m59s`)."""
    from flowctl.inputs import format_duration

    left = view.timer_left()
    return format_duration(timedelta(seconds=round(left.total_seconds()))) if left is not None else None


def _event_name(event: HistoryEvent) -> str:
    from temporalio.api.enums.v1 import EventType

    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")


def _closing(event: HistoryEvent, name: str) -> dict[str, Any]:
    status = CLOSED[name]
    outcome: dict[str, Any] = {"status": status}
    if name == "WORKFLOW_EXECUTION_COMPLETED":
        payloads = event.workflow_execution_completed_event_attributes.result.payloads
        try:
            result = json.loads(payloads[0].data) if payloads else None
        except ValueError:
            result = None
        if isinstance(result, dict):
            outcome.update({k: result[k] for k in ("outcome", "succeeded", "reason") if k in result})
    elif name == "WORKFLOW_EXECUTION_FAILED":
        outcome["reason"] = event.workflow_execution_failed_event_attributes.failure.message
    elif name == "WORKFLOW_EXECUTION_TERMINATED":
        outcome["reason"] = event.workflow_execution_terminated_event_attributes.reason
    return outcome


async def changes(
    client: Client, workflow_id: str, *, patience: Patience | None = None, run_id: str | None = None
) -> AsyncIterator[tuple[View, dict[str, Any]]]:
    """(view, change) for every change until the workflow closes.

    The status is asked once per page of new events, after the page's events are known,
    so a wait that starts a timer is reported with the time left on it. A retry writes no
    event until its activity ends, so while an activity is out, its attempts are read from
    the workflow's description every RETRY_POLL (and only then: an idle watch makes no calls).
    """
    from flowctl import ops

    view = View(workflow_id)
    scheduled: dict[int, tuple[str, str]] = {}  # scheduled event id → (activity id, type)
    out: dict[int, tuple[str, str]] = {}  # the same, for the activities not ended yet
    pages = aiter(ops.history_pages(client, workflow_id, patience=patience, run_id=run_id))
    next_page: asyncio.Future[list[HistoryEvent]] = asyncio.ensure_future(anext(pages))
    try:
        while True:
            done, _ = await asyncio.wait({next_page}, timeout=RETRY_POLL.total_seconds() if out else None)
            if not done:
                for change in await _retries(client, view, {activity_id for activity_id, _ in out.values()}):
                    yield view, change
                continue
            try:
                page = next_page.result()
            except StopAsyncIteration:
                return
            next_page = asyncio.ensure_future(anext(pages))
            found: list[dict[str, Any]] = []
            task_done = False
            closing: dict[str, Any] | None = None
            for event in page:
                name = _event_name(event)
                if name == "ACTIVITY_TASK_SCHEDULED":
                    attrs = event.activity_task_scheduled_event_attributes
                    scheduled[event.event_id] = out[event.event_id] = (attrs.activity_id, attrs.activity_type.name)
                elif name == "ACTIVITY_TASK_STARTED":
                    started = event.activity_task_started_event_attributes
                    activity_id, activity = scheduled.get(started.scheduled_event_id, ("", "activity"))
                    found += _retry(view, activity_id, activity, started.attempt, started.last_failure.message)
                elif name in ACTIVITY_CLOSED:
                    out.pop(getattr(event, ACTIVITY_CLOSED[name]).scheduled_event_id, None)
                elif name == "TIMER_STARTED":
                    timer = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
                    view.timers[event.event_id] = event.event_time.ToDatetime().replace(tzinfo=UTC) + timer
                elif name == "TIMER_FIRED":
                    view.timers.pop(event.timer_fired_event_attributes.started_event_id, None)
                elif name == "TIMER_CANCELED":
                    view.timers.pop(event.timer_canceled_event_attributes.started_event_id, None)
                elif name == "WORKFLOW_TASK_COMPLETED":
                    task_done = True
                elif name in CLOSED:
                    closing = _closing(event, name)
            if task_done or closing is not None:
                found += await _status_changes(client, view)
            if closing is not None:
                view.outcome = closing
                found.append({"change": "outcome", **closing})
            for change in found:
                yield view, change
            if view.outcome is not None:
                return
    finally:
        next_page.cancel()


def _retry(view: View, activity_id: str, activity: str, attempt: int, last_failure: str) -> list[dict[str, Any]]:
    """A change for each attempt of one activity not reported yet, up to `attempt`."""
    # Counted per activity id, not type: a workflow may call one type several times. An
    # attempt the polls missed is still said, without the failure before it.
    reported = view.retries.get(activity_id, (activity, 1))[1]
    if attempt <= reported:
        return []
    view.retries[activity_id] = (activity, attempt)
    return [
        {"change": "retry", "activity": activity, "attempt": n, "last_failure": last_failure if n == attempt else None}
        for n in range(reported + 1, attempt + 1)
    ]


async def _retries(client: Client, view: View, out: set[str]) -> list[dict[str, Any]]:
    """Retries of the activities that are out (by id), from the workflow's description."""
    from flowctl import ops

    found: list[dict[str, Any]] = []
    for p in await ops.pending_activities(client, view.workflow_id):
        if p["activity_id"] in out:
            found += _retry(view, p["activity_id"], p["activity"], p["attempt"], p["last_failure"])
    return found


async def _status_changes(client: Client, view: View) -> list[dict[str, Any]]:
    """Ask the workflow its status and say what differs from the view (nothing if no worker answers)."""
    from flowctl import ops

    try:
        status = await ops.query(client, view.workflow_id, "status", timeout=STATUS_TIMEOUT)
    except KeyMissingError:
        raise  # no key for the answer: waiting on would show nothing, forever
    except FlowctlError:
        return []
    if not isinstance(status, dict):
        return []
    found: list[dict[str, Any]] = []
    view.kind = status.get("kind", view.kind)
    waiting = status.get("waiting_for")
    deadline = status.get("deadline")
    view.deadline = datetime.fromisoformat(deadline) if isinstance(deadline, str) else None
    view.at_deadline = status.get("at_deadline")
    if view.waiting_for and not waiting:  # what resumed it comes before the steps it led to
        view.waiting_for = None
        found.append({"change": "resumed"})
    for step in status.get("completed_steps", []):
        if step not in view.completed:
            view.completed.append(step)
            found.append({"change": "step", "step": step})
    for comp in status.get("compensations", []):
        if comp["state"] != "pending" and view.compensations.get(comp["action"]) != comp["state"]:
            view.compensations[comp["action"]] = comp["state"]
            found.append(
                {
                    "change": "compensation",
                    "action": comp["action"],
                    "state": comp["state"],
                    "note": comp.get("note") or comp.get("error"),
                }  # fmt: skip
            )
    if waiting and waiting != view.waiting_for:
        view.waiting_for = waiting
        found.append(
            {"change": "waiting", "waiting_for": waiting, "time_left": left_text(view), "then": view.at_deadline}
        )
    view.step = status.get("step")
    return found


def describe_change(change: dict[str, Any]) -> str:
    """One plain line for a change (piped output and the live view's log)."""
    kind = change["change"]
    if kind == "step":
        return f"✓ {change['step']}"
    if kind == "compensation":
        note = f": {change['note']}" if change.get("note") else ""
        return f"↩ compensation {change['action']} {change['state']}{note}"
    if kind == "retry":
        failure = f" ({change['last_failure']})" if change.get("last_failure") else ""
        return f"↻ retry {change['activity']} attempt {change['attempt']}{failure}"
    if kind == "waiting":
        left = f", {change['time_left']} left" if change.get("time_left") else ""
        then = f", then {change['then']}" if change.get("then") else ""
        return f"… waiting for {change['waiting_for']}{left}{then}"
    if kind == "resumed":
        return "▶ resumed"
    reason = f": {change['reason']}" if change.get("reason") else ""
    return f"■ {change.get('outcome') or change['status']}{reason}"
