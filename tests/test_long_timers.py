"""Long timers (days) tested in seconds on the time-skipping test server."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from timeskip import time_skipping

from flowctl_workflows.services.local import read_ledger

SLACK = timedelta(minutes=1)


async def event_times(handle: WorkflowHandle[Any, Any]) -> list[tuple[str, str, datetime]]:
    """(event type, activity type or '', time) for each event."""
    from temporalio.api.enums.v1 import EventType

    rows = []
    async for event in handle.fetch_history_events():
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        activity = event.activity_task_scheduled_event_attributes.activity_type.name
        rows.append((name, activity, event.event_time.ToDatetime()))
    return rows


def near(actual: timedelta, expected: timedelta) -> bool:
    return abs(actual - expected) <= SLACK


def test_order_without_review_decision_for_a_day_is_rejected(tmp_path: Path) -> None:
    async def scenario() -> dict[str, Any]:
        async with time_skipping(tmp_path / "ledger.db") as env:
            order = {"order_id": "big-1", "customer_id": "c", "email": "a@example.com",
                     "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 5000}]}  # fmt: skip
            handle = await env.start("order", order)
            return await handle.result()  # type: ignore[no-any-return]

    result = asyncio.run(scenario())
    assert result["outcome"] == "rejected" and result["reviewed_by"] == "timeout"
    assert "no decision within 86400s" in result["reason"]
    ledger = read_ledger(tmp_path / "ledger.db")
    assert [c["status"] for c in ledger["charges"]] == ["refunded"]
    assert [r["status"] for r in ledger["reservations"]] == ["released"]


def test_the_review_timeout_is_the_workers_policy_and_the_screen_answer_is_the_services_own(tmp_path: Path) -> None:
    # The worker's order.review_timeout reaches the workflow through its own activity; the
    # fraud screen's recorded answer is what the service said, nothing added to it.
    async def scenario() -> tuple[dict[str, Any], Any]:
        async with time_skipping(tmp_path / "ledger.db", review_timeout=timedelta(hours=2)) as env:
            order = {"order_id": "big-2", "customer_id": "c", "email": "a@example.com",
                     "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 5000}]}  # fmt: skip
            handle = await env.start("order", order)
            result = await handle.result()
            screened = None
            async for event in handle.fetch_history_events():
                if event.HasField("activity_task_completed_event_attributes"):
                    answer = event.activity_task_completed_event_attributes.result.payloads[0].data
                    if b"threshold_cents" in answer:
                        screened = json.loads(answer)
            return result, screened

    result, screened = asyncio.run(scenario())
    assert result["outcome"] == "rejected" and "no decision within 7200s" in result["reason"]
    assert screened == {"review": True, "threshold_cents": 100000}


def test_onboarding_not_verified_in_7_days_times_out_and_deactivates(tmp_path: Path) -> None:
    async def scenario() -> tuple[dict[str, Any], list[tuple[str, str, datetime]]]:
        async with time_skipping(tmp_path / "ledger.db") as env:
            handle = await env.start("onboarding", {"user_id": "u-late", "email": "late@example.com", "name": "Late"})
            result = await handle.result()
            return result, await event_times(handle)

    result, events = asyncio.run(scenario())
    assert result["outcome"] == "timed_out" and result["succeeded"] is False and result["reminders_sent"] == 1
    ledger = read_ledger(tmp_path / "ledger.db", "u-late")
    assert [a["status"] for a in ledger["accounts"]] == ["deactivated"]
    assert ledger["workspaces"] == [] and ledger["roles"] == []
    assert [m["template"] for m in ledger["outbox"]] == ["verify_email", "verify_reminder"]
    start = events[0][2]
    emails = [t for kind, activity, t in events if kind == "ACTIVITY_TASK_SCHEDULED" and activity == "email.send"]
    assert near(emails[1] - start, timedelta(days=3.5))  # the reminder, halfway
    assert events[-1][0] == "WORKFLOW_EXECUTION_COMPLETED" and near(events[-1][2] - start, timedelta(days=7))


def test_onboarding_verified_after_the_reminder_completes(tmp_path: Path) -> None:
    async def scenario() -> dict[str, Any]:
        async with time_skipping(tmp_path / "ledger.db") as env:
            data = {"user_id": "u-slow", "email": "slow@example.com", "name": "Slow", "plan": "enterprise",
                    "verify_within": "2d", "remind_after": "1d"}  # fmt: skip
            handle = await env.start("onboarding", data)
            await env.env.sleep(timedelta(days=1, hours=1))
            await handle.signal("verify-email", {"verified_by": "user"})
            return await handle.result()  # type: ignore[no-any-return]

    result = asyncio.run(scenario())
    assert result["outcome"] == "completed" and result["reminders_sent"] == 1 and result["role"] == "owner"


def test_approval_left_alone_escalates_then_expires_at_the_configured_times(tmp_path: Path) -> None:
    async def scenario() -> tuple[dict[str, Any], list[tuple[str, str, datetime]]]:
        async with time_skipping(tmp_path / "ledger.db") as env:
            data = {"request_id": "PR-idle", "requester": "alice", "title": "Idle", "amount": 5000,
                    "approvers": ["bob"], "escalate_to": "dana", "escalate_after": "2d", "expire_after": "5d"}  # fmt: skip
            handle = await env.start("approval", data)
            result = await handle.result()
            return result, await event_times(handle)

    result, events = asyncio.run(scenario())
    assert result["outcome"] == "expired" and result["escalated"] is True and result["succeeded"] is False
    start = events[0][2]
    notices = [t for kind, activity, t in events if kind == "ACTIVITY_TASK_SCHEDULED" and activity == "notify.send"]
    assert len(notices) == 3  # review request, escalation, expiry notice to the requester
    assert near(notices[0] - start, timedelta(0))
    assert near(notices[1] - start, timedelta(days=2))
    assert near(notices[2] - start, timedelta(days=5))
    ledger = read_ledger(tmp_path / "ledger.db", "PR-idle")
    assert [(m["recipient"], m["template"]) for m in ledger["outbox"]] == [
        ("bob", "approval_request"),
        ("dana", "approval_escalated"),
        ("alice", "approval_expired"),
    ]
    assert ledger["executions"] == []


def test_escalated_approver_may_decide(tmp_path: Path) -> None:
    async def scenario() -> dict[str, Any]:
        async with time_skipping(tmp_path / "ledger.db") as env:
            data = {"request_id": "PR-esc", "requester": "alice", "title": "Esc", "amount": 5000,
                    "approvers": ["bob"], "escalate_to": "dana", "escalate_after": "1d", "expire_after": "3d"}  # fmt: skip
            handle = await env.start("approval", data)
            await env.env.sleep(timedelta(days=1, hours=1))
            await env.wait_status(handle, "escalated")
            await handle.execute_update("decide", {"approver": "dana", "decision": "approve"}, id="decide-dana")
            return await handle.result()  # type: ignore[no-any-return]

    result = asyncio.run(scenario())
    assert result["outcome"] == "approved" and result["escalated"] is True
    assert [d["approver"] for d in result["decisions"]] == ["dana"]
