"""Temporal's execution statuses as flowctl names them: one table for the word flowctl says,
the visibility query's name and the event that closes a run. Light: no SDK import."""

from __future__ import annotations

from typing import Any

# Temporal's execution statuses by their enum names: flowctl's word for each (`status_word`),
# the visibility query's (`TimedOut`) and the closing event's type all follow from these.
EXECUTION_STATUSES = ("RUNNING", "COMPLETED", "FAILED", "CANCELED", "TERMINATED", "CONTINUED_AS_NEW", "TIMED_OUT")
# The statuses of a run that set its own FlowStatus to the end; one stopped from outside
# (failed, terminated, timed out) could not: its last FlowStatus ("awaiting_review") is stale.
KEEPS_FLOW_STATUS = ("RUNNING", "COMPLETED", "CANCELED")
CLOSED_BY_EVENT = {f"WORKFLOW_EXECUTION_{name}": name for name in EXECUTION_STATUSES if name != "RUNNING"}


def visibility_status(name: str) -> str:
    """The name a visibility query gives a status: TIMED_OUT → TimedOut."""
    return "".join(part.capitalize() for part in name.split("_"))


def status_word(name: str) -> str:
    """A Temporal execution status as flowctl says it: `CANCELED` → `cancelled`, `TIMED_OUT` → `timed_out`."""
    word = name.removeprefix("WORKFLOW_EXECUTION_STATUS_").lower()
    return "cancelled" if word == "canceled" else word


def of(status: Any) -> str:
    """flowctl's word for an SDK or proto status enum member (`None`: unknown)."""
    return "unknown" if status is None else status_word(status.name)
