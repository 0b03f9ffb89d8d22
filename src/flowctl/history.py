"""A workflow's history: read from the server (whole, or followed as it grows), and summarised
in one readable line per event for `history`, `start --follow` and `demo`.

Activities are named with their attempts, payloads summarised as short JSON, signals and
updates shown with who sent them, timers with their durations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flowctl_workflows import durations

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from temporalio.api.common.v1 import Payloads
    from temporalio.api.history.v1 import HistoryEvent
    from temporalio.client import Client, WorkflowHandle, WorkflowHistory

    from flowctl.codec import KeyRing
    from flowctl.ops.rpc import Patience

SUMMARY_WIDTH = 80


async def fetch(client: Client, workflow_id: str, run_id: str | None = None) -> WorkflowHistory:
    from flowctl.ops.rpc import rpc_errors

    with rpc_errors(workflow_id):
        return await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()


async def events(
    client: Client, workflow_id: str, *, follow: bool, patience: Patience | None = None, run_id: str | None = None
) -> AsyncIterator[HistoryEvent]:
    """Events as they are recorded; with `follow`, long-polls until the workflow closes."""
    async for page in pages(client, workflow_id, follow=follow, patience=patience, run_id=run_id):
        for event in page:
            yield event


async def pages(
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

    from flowctl.ops.rpc import Outage, is_outage, rpc_errors

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


def event_dict(event: HistoryEvent) -> dict[str, Any]:
    """The event as standard proto-JSON (what `temporal workflow show -o json` prints per event)."""
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(event)


def event_type(event: HistoryEvent) -> str:
    """The event's type as the proto names it, without its prefix: ACTIVITY_TASK_SCHEDULED."""
    from temporalio.api.enums.v1 import EventType

    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")


def keyword(data: bytes) -> str | None:
    """A keyword search attribute's value as an upsert event carries it (JSON), None for none."""
    try:
        value = json.loads(data) if data else None
    except ValueError:
        return None
    return value if isinstance(value, str) and value else None


def _type_name(event: HistoryEvent) -> str:
    """The event's type as `temporal workflow show` prints it: ActivityTaskScheduled."""
    return "".join(part.capitalize() for part in event_type(event).split("_"))


def summarize(payloads: Payloads, width: int = SUMMARY_WIDTH, keys: KeyRing | None = None) -> str:
    """Payloads as compact JSON, cut to `width`; sealed ones opened with `keys`, binary ones by encoding."""
    from flowctl.codec import is_sealed, sealed_key_id
    from flowctl.errors import KeyMissingError

    parts = []
    for payload in payloads.payloads:
        if is_sealed(payload):
            try:
                opened = keys.open(payload) if keys is not None else None
            except KeyMissingError:
                opened = None
            if opened is None:
                parts.append(f"<encrypted with key {sealed_key_id(payload)!r}>")
                continue
            payload = opened
        encoding = payload.metadata.get("encoding", b"").decode(errors="replace")
        if encoding.startswith("json"):
            try:
                parts.append(json.dumps(json.loads(payload.data), separators=(",", ":"), ensure_ascii=False))
                continue
            except ValueError:
                pass
        parts.append(f"<{encoding or 'binary'} {len(payload.data)} bytes>")
    text = ", ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass
class Summarizer:
    """Turns events into summaries, remembering what earlier events named (activities, timers)."""

    time_format: str = "relative"  # or "iso"
    keys: KeyRing | None = None  # codec keys to open encrypted payloads with
    activities: dict[int, str] = field(default_factory=dict)
    timers: dict[int, str] = field(default_factory=dict)
    started_at: datetime | None = None

    def summary(self, event: HistoryEvent) -> dict[str, Any]:
        kind = _type_name(event)
        attrs = event.WhichOneof("attributes")
        a: Any = getattr(event, attrs) if attrs else None
        at = event.event_time.ToDatetime()
        if self.started_at is None:
            self.started_at = at
        return {
            "event_id": event.event_id,
            "time": at.isoformat(timespec="milliseconds") + "Z",
            "elapsed": "+" + durations.format(max(at - self.started_at, timedelta(0))),
            "type": kind,
            "detail": self._detail(event, kind, a),
        }

    def shown_time(self, item: dict[str, Any]) -> str:
        return str(item["time"] if self.time_format == "iso" else item["elapsed"])

    def _detail(self, event: HistoryEvent, kind: str, a: Any) -> str:
        if kind == "WorkflowExecutionStarted":
            return f"{a.workflow_type.name} {summarize(a.input, keys=self.keys)}"
        if kind == "ActivityTaskScheduled":
            self.activities[event.event_id] = a.activity_type.name
            return f"{a.activity_type.name} {summarize(a.input, keys=self.keys)}"
        if kind.startswith("ActivityTask") and hasattr(a, "scheduled_event_id"):
            name = self.activities.get(a.scheduled_event_id, "")
            if kind == "ActivityTaskStarted":
                if a.attempt <= 1:
                    return name
                return f"{name} attempt {a.attempt} (last failure: {a.last_failure.message})"
            if kind == "ActivityTaskCompleted":
                return f"{name} → {summarize(a.result, keys=self.keys)}"
            if kind == "ActivityTaskFailed":
                return f"{name}: {a.failure.message}"
            return name
        if kind == "WorkflowExecutionSignaled":
            return f"{a.signal_name} {summarize(a.input, keys=self.keys)} from {a.identity or 'unknown'}"
        if kind == "WorkflowExecutionUpdateAccepted":
            request = a.accepted_request
            return f"{request.input.name} {summarize(request.input.args, keys=self.keys)} from {request.meta.identity or 'unknown'}"
        if kind == "WorkflowExecutionUpdateCompleted":
            outcome = a.outcome
            result = (
                summarize(outcome.success, keys=self.keys) if outcome.HasField("success") else outcome.failure.message
            )
            return f"{a.meta.update_id} → {result}"
        if kind == "TimerStarted":
            duration = durations.format(a.start_to_fire_timeout.ToTimedelta())
            self.timers[event.event_id] = duration
            return f"{duration} timer"
        if kind in ("TimerFired", "TimerCanceled"):
            return f"{self.timers.get(a.started_event_id, '?')} timer"
        if kind == "WorkflowExecutionCompleted":
            return summarize(a.result, keys=self.keys)
        if kind == "WorkflowExecutionFailed":
            return str(a.failure.message)
        if kind == "WorkflowExecutionCancelRequested":
            return f"{a.cause} from {a.identity or 'unknown'}".strip()
        if kind == "WorkflowExecutionTerminated":
            return f"{a.reason} from {a.identity or 'unknown'}"
        if kind == "UpsertWorkflowSearchAttributes":
            fields = a.search_attributes.indexed_fields
            return ", ".join(f"{k}={fields[k].data.decode(errors='replace')}" for k in sorted(fields))
        return ""
