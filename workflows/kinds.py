"""The catalog of workflow kinds: names, models, id templates and message names.

Read by the CLI for validation, `kinds` and completion, so it imports neither temporalio
nor the workflow modules: those are named by dotted path and loaded only by the worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .models import Decision, FlowState
from .models import order as order_models


@dataclass(frozen=True)
class Message:
    """A signal, query or update a kind accepts, with its payload model if it takes one."""

    name: str
    description: str
    model: type[BaseModel] | None = None


@dataclass(frozen=True)
class Kind:
    """One workflow kind and everything a client needs to drive it."""

    name: str
    workflow_type: str
    workflow_class: str  # "module:Class", imported by the worker only
    description: str
    input_model: type[BaseModel]
    result_model: type[BaseModel]
    id_template: str
    example: dict[str, Any]
    signals: tuple[Message, ...] = ()
    queries: tuple[Message, ...] = ()
    updates: tuple[Message, ...] = ()
    failure_inputs: dict[str, str] = field(default_factory=dict)

    def workflow_id(self, payload: BaseModel) -> str:
        return self.id_template.format(**payload.model_dump())

    def message(self, group: str, name: str) -> Message | None:
        messages: tuple[Message, ...] = getattr(self, group)
        return next((m for m in messages if m.name == name), None)


STATUS_QUERY = Message("status", "current step, completed steps, what it waits for, compensations", FlowState)

ORDER = Kind(
    name="order",
    workflow_type="Order",
    workflow_class="flowctl_workflows.order:OrderWorkflow",
    description="reserve stock, charge, fraud review for large totals, ship, confirm; compensates on failure",
    input_model=order_models.OrderInput,
    result_model=order_models.OrderResult,
    id_template="order-{order_id}",
    example=order_models.EXAMPLE,
    signals=(Message("review", "fraud review decision for a held order", Decision),),
    queries=(STATUS_QUERY,),
    failure_inputs={
        "declined payment": f'"card": "{order_models.DECLINED_CARD}"',
        "out of stock": f'an item with "sku": "{order_models.OUT_OF_STOCK_SKU}"',
        "transient failures": f'"card": "{order_models.FLAKY_CARD}" (charge fails twice, then succeeds)',
        "fraud review": "a total at or above the review threshold (1000.00 by default)",
    },
)

KINDS: dict[str, Kind] = {kind.name: kind for kind in (ORDER,)}
BY_WORKFLOW_TYPE: dict[str, Kind] = {kind.workflow_type: kind for kind in KINDS.values()}

# Search attributes every kind keeps current; the embedded server registers them at start.
SEARCH_ATTRIBUTES: dict[str, str] = {
    "FlowKind": "Keyword",
    "FlowStatus": "Keyword",
    "FlowWaitingFor": "Keyword",
}
