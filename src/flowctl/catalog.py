"""The kinds flowctl knows, looked up by name or workflow type, and described for users."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flowctl.errors import NotFoundError, did_you_mean
from flowctl_workflows.kinds import BY_WORKFLOW_TYPE, KINDS, Kind, Message, load

if TYPE_CHECKING:
    from pydantic import BaseModel

GROUPS = {"signal": "signals", "query": "queries", "update": "updates"}


def names() -> list[str]:
    return sorted(KINDS)


def get(name: str) -> Kind:
    kind = KINDS.get(name)
    if kind is None:
        known = f"kinds: {', '.join(names())}"
        close = did_you_mean(name, names())
        raise NotFoundError(f"unknown kind {name!r}", hint=f"{close} {known}" if close else known)
    return kind


def for_workflow_type(workflow_type: str) -> Kind | None:
    return BY_WORKFLOW_TYPE.get(workflow_type)


def by_type(workflow_type: str) -> Kind:
    """The kind that runs `workflow_type`, or `NotFoundError`."""
    kind = BY_WORKFLOW_TYPE.get(workflow_type)
    if kind is None:
        raise NotFoundError(f"workflow type {workflow_type!r} is not a flowctl kind")
    return kind


def kind_for_id(workflow_id: str) -> Kind | None:
    """The kind whose id template fits `workflow_id` (`order-A-1` → order), if one does."""
    for kind in KINDS.values():
        prefix = kind.id_template.split("{", 1)[0]
        if prefix and workflow_id.startswith(prefix):
            return kind
    return None


def message(kind: Kind, group: str, name: str) -> Message:
    """A signal, query or update of `kind`, or `NotFoundError` listing the ones it has."""
    found = kind.message(GROUPS[group], name)
    if found is None:
        known = ", ".join(m.name for m in getattr(kind, GROUPS[group])) or "none"
        raise NotFoundError(f"kind {kind.name!r} has no {group} {name!r}", hint=f"its {GROUPS[group]}: {known}")
    return found


def workflow_class(kind: Kind) -> type:
    cls: type = load(kind.workflow_path)
    return cls


def schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema, with defaults written as its fields take them (`7d`, not `P7D`)."""
    from pydantic.json_schema import GenerateJsonSchema

    from flowctl_workflows import durations

    class Schema(GenerateJsonSchema):
        def encode_default(self, dft: Any) -> Any:
            return durations.format(dft) if isinstance(dft, timedelta) else super().encode_default(dft)

    return model.model_json_schema(schema_generator=Schema)


def _messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    return [
        {
            "name": m.name,
            "description": m.description,
            "schema": schema(m.model) if m.model else None,
        }
        for m in messages
    ]


def describe(kind: Kind, task_queue: str) -> dict[str, Any]:
    """Everything a client needs to drive a kind: what `kinds KIND -o json` prints."""
    return {
        "name": kind.name,
        "description": kind.description,
        "workflow_type": kind.workflow_type,
        "task_queue": task_queue,
        "id_template": kind.id_template,
        "input_schema": schema(kind.input_model),
        "result_schema": schema(kind.result_model),
        "example": kind.example,
        "signals": _messages(kind.signals),
        "queries": _messages(kind.queries),
        "updates": _messages(kind.updates),
        "failure_inputs": kind.failure_inputs,
    }
