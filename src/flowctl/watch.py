"""A workflow's progress as a stream of changes, for `flowctl watch` and `start --follow`.

The history is long-polled (no busy polling) and is the only source: steps, compensations,
waits, retries and the outcome are read from its events, in their order and timed from the
workflow's start, so a watch of a finished workflow prints what a live one printed, with no
worker running. Each change is one line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flowctl.history import event_type, keyword
from flowctl.ops.statuses import CLOSED_BY_EVENT, status_word
from flowctl_workflows import attributes

if TYPE_CHECKING:
    from temporalio.api.history.v1 import HistoryEvent
    from temporalio.client import Client

    from flowctl.ops.rpc import Patience

RETRY_POLL = timedelta(seconds=0.5)  # the first retry comes 1s after a failure
ACTIVITY_CLOSED = {
    "ACTIVITY_TASK_COMPLETED": "activity_task_completed_event_attributes",
    "ACTIVITY_TASK_FAILED": "activity_task_failed_event_attributes",
    "ACTIVITY_TASK_TIMED_OUT": "activity_task_timed_out_event_attributes",
    "ACTIVITY_TASK_CANCELED": "activity_task_canceled_event_attributes",
}
CLOSED = {event: status_word(name) for event, name in CLOSED_BY_EVENT.items()}  # closing event → status


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


def left_text(view: View, now: datetime | None = None) -> str | None:
    """Time left until the wait's deadline, to the second, as a duration (`23h59m59s`)."""
    from flowctl_workflows import durations

    left = view.timer_left(now)
    return durations.format(timedelta(seconds=round(left.total_seconds()))) if left is not None else None


def _closing(event: HistoryEvent, name: str) -> dict[str, Any]:
    status = CLOSED[name]
    outcome: dict[str, Any] = {"status": status}
    if name == "WORKFLOW_EXECUTION_FAILED":
        outcome["reason"] = event.workflow_execution_failed_event_attributes.failure.message
    elif name == "WORKFLOW_EXECUTION_TERMINATED":
        outcome["reason"] = event.workflow_execution_terminated_event_attributes.reason
    return outcome


@dataclass
class _Activity:
    activity_id: str
    activity: str  # the command, e.g. payment.charge
    name: str  # the business step or compensation, as the workflow names it
    undoing: bool  # scheduled while the workflow compensated


@dataclass
class _Reader:
    """Turns history events into changes, in history order, each timed from the workflow's start.

    Everything comes from the history itself (no worker needs to answer): a step or a
    compensation is named by the last part of its idempotency key, an activity scheduled
    after the workflow set FlowStatus `compensating` is a compensation, and a wait is read
    from the memo the workflow keeps it in (from its FlowWaitingFor attribute in runs from
    before that memo).
    """

    client: Client
    view: View
    started: datetime | None = None
    undoing: bool = False
    waits_in_memo: bool = False
    cancel_requested: bool = False
    result: dict[str, Any] | None = None  # what a cancelled run kept in its memo
    task_failures: set[str] = field(default_factory=set)  # the workflow task's failures said so far
    scheduled: dict[int, _Activity] = field(default_factory=dict)  # scheduled event id → activity
    out: dict[int, _Activity] = field(default_factory=dict)  # the same, for the activities not ended yet

    def elapsed(self, at: datetime) -> float:
        return round(max((at - (self.started or at)).total_seconds(), 0.0), 3)

    async def _value(self, payloads: Any) -> Any:
        """The first payload's value; None for one no converter reads (another client's bytes).
        A payload sealed with a key flowctl lacks still stops the watch (KeyMissingError)."""
        if not payloads:
            return None
        try:
            return (await self.client.data_converter.decode(list(payloads)))[0]
        except (RuntimeError, ValueError, TypeError):
            return None

    async def read(self, event: HistoryEvent) -> list[dict[str, Any]]:
        at = event.event_time.ToDatetime(tzinfo=UTC)
        found = await self._changes(event, event_type(event), at)
        return [{**change, "elapsed": self.elapsed(at)} for change in found]

    async def _changes(self, event: HistoryEvent, name: str, at: datetime) -> list[dict[str, Any]]:
        from flowctl import catalog

        view = self.view
        if name == "WORKFLOW_EXECUTION_STARTED":
            self.started = at
            kind = catalog.for_workflow_type(event.workflow_execution_started_event_attributes.workflow_type.name)
            view.kind = kind.name if kind is not None else view.kind
        elif name == "ACTIVITY_TASK_SCHEDULED":
            attrs = event.activity_task_scheduled_event_attributes
            arg = await self._value(attrs.input.payloads)
            key = arg.get("idempotency_key") if isinstance(arg, dict) else None
            step = key.rsplit("/", 1)[-1] if isinstance(key, str) else attrs.activity_type.name
            activity = _Activity(attrs.activity_id, attrs.activity_type.name, step, self.undoing)
            self.scheduled[event.event_id] = self.out[event.event_id] = activity
            view.step = step
        elif name == "ACTIVITY_TASK_STARTED":
            started = event.activity_task_started_event_attributes
            if (known := self.scheduled.get(started.scheduled_event_id)) is not None:
                return _retry(view, known.activity_id, known.activity, started.attempt, started.last_failure.message)
        elif name in ACTIVITY_CLOSED:
            attrs = getattr(event, ACTIVITY_CLOSED[name])
            if (ended := self.out.pop(attrs.scheduled_event_id, None)) is not None:
                return await self._ended(ended, name, attrs)
        elif name == "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES":
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if attributes.STATUS in fields:
                self.undoing = keyword(fields[attributes.STATUS].data) == "compensating"
            if attributes.WAITING_FOR in fields and not self.waits_in_memo:
                tag = keyword(fields[attributes.WAITING_FOR].data)
                return self._wait({"what": tag} if tag else None, at)
        elif name == "WORKFLOW_EXECUTION_CANCEL_REQUESTED":
            self.cancel_requested = True
            reason = event.workflow_execution_cancel_requested_event_attributes.cause
            return [{"change": "cancel_requested", "reason": reason or None}]
        elif name == "WORKFLOW_PROPERTIES_MODIFIED":
            from flowctl_workflows.models import RESULT_MEMO, WAITING_MEMO

            memo = event.workflow_properties_modified_event_attributes.upserted_memo.fields
            if RESULT_MEMO in memo:  # a cancelled run's result: a cancel carries none
                result = await self._value([memo[RESULT_MEMO]])
                self.result = result if isinstance(result, dict) else None
            if WAITING_MEMO in memo:
                self.waits_in_memo = True
                wait = await self._value([memo[WAITING_MEMO]])
                return self._wait(wait if isinstance(wait, dict) else None, at)
        elif name == "TIMER_STARTED":
            timer = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            view.timers[event.event_id] = at + timer
        elif name == "TIMER_FIRED":
            view.timers.pop(event.timer_fired_event_attributes.started_event_id, None)
        elif name == "TIMER_CANCELED":
            view.timers.pop(event.timer_canceled_event_attributes.started_event_id, None)
        elif name == "WORKFLOW_TASK_FAILED":
            failure = event.workflow_task_failed_event_attributes.failure.message or "no message"
            if failure not in self.task_failures:  # once each: the worker retries the task, say, every 10s
                self.task_failures.add(failure)
                return [{"change": "task_failed", "message": failure}]
        elif name in CLOSED:
            view.outcome = _closing(event, name)
            result = self.result  # a cancelled run's, from its memo
            if name == "WORKFLOW_EXECUTION_COMPLETED":
                result = await self._value(event.workflow_execution_completed_event_attributes.result.payloads)
            if isinstance(result, dict) and name in ("WORKFLOW_EXECUTION_COMPLETED", "WORKFLOW_EXECUTION_CANCELED"):
                view.outcome.update({k: result[k] for k in ("outcome", "succeeded", "reason") if k in result})
            return [{"change": "outcome", **view.outcome}]
        return []

    async def _ended(self, activity: _Activity, name: str, attrs: Any) -> list[dict[str, Any]]:
        view = self.view
        if not activity.undoing:
            if name == "ACTIVITY_TASK_CANCELED":
                return []
            if name != "ACTIVITY_TASK_COMPLETED":  # given up on: a refusal, or out of time
                error = attrs.failure.message if name == "ACTIVITY_TASK_FAILED" else "timed out"
                return [{"change": "step_failed", "step": activity.name, "error": error or None}]
            view.completed.append(activity.name)
            return [{"change": "step", "step": activity.name}]
        if name == "ACTIVITY_TASK_COMPLETED":
            answer = await self._value(attrs.result.payloads)
            state, note = "done", answer.get("note") if isinstance(answer, dict) else None
        else:
            state = "failed"
            note = attrs.failure.message if name != "ACTIVITY_TASK_CANCELED" else "cancelled"
            note = note or name.removeprefix("ACTIVITY_TASK_").lower().replace("_", " ")
        view.compensations[activity.name] = state
        return [{"change": "compensation", "action": activity.name, "state": state, "note": note}]

    def _wait(self, wait: dict[str, Any] | None, at: datetime) -> list[dict[str, Any]]:
        view = self.view
        if wait is None:
            if view.waiting_for is None:
                return []
            view.waiting_for = view.deadline = view.at_deadline = None
            # A wait ended by a cancel or by compensating did not resume anything.
            return [] if self.undoing or self.cancel_requested else [{"change": "resumed"}]
        what = str(wait.get("what"))
        deadline = wait.get("deadline")
        view.deadline = datetime.fromisoformat(deadline) if isinstance(deadline, str) else None
        view.at_deadline = wait.get("then")
        if what == view.waiting_for:
            return []
        view.waiting_for = what
        left = left_text(view, at)
        return [{"change": "waiting", "waiting_for": what, "time_left": left, "then": view.at_deadline}]


async def changes(
    client: Client, workflow_id: str, *, patience: Patience | None = None, run_id: str | None = None
) -> AsyncIterator[tuple[View, dict[str, Any]]]:
    """(view, change) for every change until the workflow closes, in history order.

    Each change carries `elapsed`, seconds from the workflow's start to the event, so a
    live watch and one replaying a finished run print the same lines. A retry writes no
    event until its activity ends, so while an activity is out, its attempts are read from
    the workflow's description every RETRY_POLL (and only then: an idle watch makes no calls).
    """
    from flowctl import history

    view = View(workflow_id)
    reader = _Reader(client, view)
    pages = aiter(history.pages(client, workflow_id, patience=patience, run_id=run_id))
    next_page: asyncio.Future[list[HistoryEvent]] = asyncio.ensure_future(anext(pages))
    try:
        while True:
            done, _ = await asyncio.wait({next_page}, timeout=RETRY_POLL.total_seconds() if reader.out else None)
            if not done:
                for change in await _retries(client, reader):
                    yield view, change
                continue
            try:
                page = next_page.result()
            except StopAsyncIteration:
                return
            next_page = asyncio.ensure_future(anext(pages))
            for event in page:
                for change in await reader.read(event):
                    yield view, change
                if view.outcome is not None:
                    return
    finally:
        next_page.cancel()


def _retry(view: View, activity_id: str, activity: str, attempt: int, last_failure: str) -> list[dict[str, Any]]:
    """A change for each attempt of one activity not reported yet, up to `attempt`."""
    # Counted per activity id, not type: a workflow may call one type several times. The
    # history keeps only the failure before an activity's last attempt: an attempt the polls
    # missed (or any earlier one, replayed) is still said, without the failure before it.
    reported = view.retries.get(activity_id, (activity, 1))[1]
    if attempt <= reported:
        return []
    view.retries[activity_id] = (activity, attempt)
    return [
        {
            "change": "retry",
            "activity": activity,
            "attempt": n,
            "last_failure": (last_failure or None) if n == attempt else None,
        }
        for n in range(reported + 1, attempt + 1)
    ]


async def _retries(client: Client, reader: _Reader) -> list[dict[str, Any]]:
    """Retries of the activities that are out, from the workflow's description."""
    from flowctl.ops import runs

    out = {activity.activity_id for activity in reader.out.values()}
    found: list[dict[str, Any]] = []
    for p in await runs.pending_activities(client, reader.view.workflow_id):
        # An attempt is said as soon as it is known, timed at its start, as its history event
        # will time it: while it waits out its backoff, at the start it is scheduled for.
        if p["activity_id"] in out:
            when = p["next_retry"] if p["state"] == "scheduled" else p["last_started"]
            at = datetime.fromisoformat(when) if when else datetime.now(UTC)
            changes = _retry(reader.view, p["activity_id"], p["activity"], p["attempt"], p["last_failure"])
            found += [{**change, "elapsed": reader.elapsed(at)} for change in changes]
    return found


def describe_change(change: dict[str, Any]) -> str:
    """A change as one line of text: what piped `watch` prints and `demo` tells as it goes (the
    live view draws the same marks: ✓ a step, ↩ an undo and how it went, … a wait)."""
    kind = change["change"]
    if kind == "step":
        return f"✓ {change['step']}"
    if kind == "compensation":
        note = f": {change['note']}" if change.get("note") else ""
        return f"↩ {change['action']} ({change['state']}{note})"
    if kind == "retry":
        failure = f" ({change['last_failure']})" if change.get("last_failure") else ""
        return f"↻ retry {change['activity']} attempt {change['attempt']}{failure}"
    if kind == "waiting":
        left = f", {change['time_left']} left" if change.get("time_left") else ""
        then = f", then {change['then']}" if change.get("then") else ""
        return f"… waiting for {change['waiting_for']}{left}{then}"
    if kind == "resumed":
        return "▶ resumed"
    if kind == "step_failed":
        return f"✗ {change['step']} failed" + (f": {change['error']}" if change.get("error") else "")
    if kind == "task_failed":
        return f"⚠ the workflow's task failed on the worker: {change['message']} (it is retried; see the worker's log)"
    if kind == "cancel_requested":
        return "✗ cancel requested" + (f": {change['reason']}" if change.get("reason") else "")
    done, reason = change.get("outcome") or change["status"], change.get("reason")
    if not reason or reason == done:
        return f"■ {done}"
    return f"■ {reason}" if reason.startswith(f"{done}: ") else f"■ {done}: {reason}"  # "cancelled: R" once
