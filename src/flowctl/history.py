"""Readable one-line summaries of history events, for `history`, `start --follow` and `demo`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from temporalio.api.history.v1 import HistoryEvent


def event_dict(event: HistoryEvent) -> dict[str, Any]:
    """The event as standard proto-JSON (what `temporal workflow show -o json` prints per event)."""
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(event)


def _type_name(event: HistoryEvent) -> str:
    from temporalio.api.enums.v1 import EventType

    raw = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    return "".join(part.capitalize() for part in raw.split("_"))


@dataclass
class Summarizer:
    """Turns events into summaries, remembering activity names by their scheduled event."""

    activities: dict[int, str] = field(default_factory=dict)

    def summary(self, event: HistoryEvent) -> dict[str, Any]:
        kind = _type_name(event)
        detail = ""
        attrs = event.WhichOneof("attributes")
        a: Any = getattr(event, attrs) if attrs else None
        if kind == "ActivityTaskScheduled":
            self.activities[event.event_id] = a.activity_type.name
            detail = a.activity_type.name
        elif kind.startswith("ActivityTask") and hasattr(a, "scheduled_event_id"):
            detail = self.activities.get(a.scheduled_event_id, "")
            if kind == "ActivityTaskStarted" and a.attempt > 1:
                detail += f" (attempt {a.attempt})"
            if kind == "ActivityTaskFailed":
                detail += f": {a.failure.message}"
        elif kind == "WorkflowExecutionStarted":
            detail = a.workflow_type.name
        elif kind == "WorkflowExecutionSignaled":
            detail = a.signal_name
        elif kind == "TimerStarted":
            from flowctl.inputs import format_duration

            detail = format_duration(a.start_to_fire_timeout.ToTimedelta())
        elif kind == "WorkflowExecutionFailed":
            detail = a.failure.message
        elif kind == "WorkflowExecutionCancelRequested":
            detail = a.cause
        elif kind == "WorkflowExecutionTerminated":
            detail = a.reason
        elif kind == "UpsertWorkflowSearchAttributes":
            fields = a.search_attributes.indexed_fields
            detail = ", ".join(f"{k}={fields[k].data.decode(errors='replace')}" for k in sorted(fields))
        return {
            "event_id": event.event_id,
            "time": event.event_time.ToDatetime().isoformat(timespec="milliseconds") + "Z",
            "type": kind,
            "detail": detail,
        }
