"""Record one history per kind and major path into tests/histories/, for the replay test.

    make record-histories        # records the scenarios below that have no file yet

Existing files are never overwritten: they are the past the current code must replay.
A history of any other workflow can be added by hand, named by its workflow id:

    flowctl history WORKFLOW_ID -o json > tests/histories/WORKFLOW_ID.json
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowFailureError, WorkflowHandle
from timeskip import Env, time_skipping

HISTORIES = Path(__file__).parent / "histories"

ORDER = {"customer_id": "c-1", "email": "h@example.com", "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 20}]}
BIG = {**ORDER, "items": [{"sku": "SKU-2", "quantity": 1, "unit_price": 5000}]}
USER = {"email": "user@example.com", "name": "Hist"}
REQUEST = {"requester": "alice", "title": "History", "amount": 5000, "approvers": ["bob", "carol"]}

Scenario = Callable[[Env], Awaitable[WorkflowHandle[Any, Any]]]


async def finish(handle: WorkflowHandle[Any, Any]) -> WorkflowHandle[Any, Any]:
    try:
        await handle.result()
    except WorkflowFailureError:
        pass  # cancelled on purpose
    return handle


async def order_completed(env: Env) -> WorkflowHandle[Any, Any]:
    return await finish(await env.start("order", {**ORDER, "order_id": "h-completed"}))


async def order_declined(env: Env) -> WorkflowHandle[Any, Any]:
    return await finish(await env.start("order", {**ORDER, "order_id": "h-declined", "card": "tok_declined"}))


async def order_rejected(env: Env) -> WorkflowHandle[Any, Any]:
    handle = await env.start("order", {**BIG, "order_id": "h-rejected"})
    await env.wait_status(handle, "awaiting_review")
    await handle.signal("review", {"decision": "reject", "reviewer": "risk", "comment": "mismatch"})
    return await finish(handle)


async def order_review_timeout(env: Env) -> WorkflowHandle[Any, Any]:
    return await finish(await env.start("order", {**BIG, "order_id": "h-review-timeout"}))


async def order_cancelled(env: Env) -> WorkflowHandle[Any, Any]:
    handle = await env.start("order", {**BIG, "order_id": "h-cancelled"})
    await env.wait_status(handle, "awaiting_review")
    await handle.cancel()
    return await finish(handle)


async def order_completed_settled(env: Env) -> WorkflowHandle[Any, Any]:
    """Since the saga-settled-steps patch: keys name the business step, without the run id."""
    return await finish(await env.start("order", {**ORDER, "order_id": "h-completed-settled"}))


async def order_cancelled_settled(env: Env) -> WorkflowHandle[Any, Any]:
    """Since the patch: the cancel compensates, then keeps the result in the memo."""
    handle = await env.start("order", {**BIG, "order_id": "h-cancelled-settled"})
    await env.wait_status(handle, "awaiting_review")
    await handle.cancel(reason="customer asked")
    return await finish(handle)


async def order_rejected_then_cancelled(env: Env) -> WorkflowHandle[Any, Any]:
    """A cancel while a rejected order compensates: every compensation still runs."""
    handle = await env.start("order", {**BIG, "order_id": "h-rejected-then-cancelled"})
    await env.wait_status(handle, "awaiting_review")
    await handle.signal("review", {"decision": "reject", "reviewer": "risk", "comment": "mismatch"})
    await env.wait_status(handle, "compensating")
    await handle.cancel(reason="chargeback")
    return await finish(handle)


async def onboarding_verified(env: Env) -> WorkflowHandle[Any, Any]:
    handle = await env.start("onboarding", {**USER, "user_id": "h-verified", "plan": "pro"})
    await env.wait_status(handle, "awaiting_verification")
    await handle.signal("verify-email", {"verified_by": "user"})
    return await finish(handle)


async def onboarding_timed_out(env: Env) -> WorkflowHandle[Any, Any]:
    return await finish(await env.start("onboarding", {**USER, "user_id": "h-timed-out", "email": "late@example.com"}))


async def onboarding_cancelled(env: Env) -> WorkflowHandle[Any, Any]:
    handle = await env.start("onboarding", {**USER, "user_id": "h-cancelled", "email": "gone@example.com"})
    await env.wait_status(handle, "awaiting_verification")
    await handle.cancel()
    return await finish(handle)


async def onboarding_cancelled_settled(env: Env) -> WorkflowHandle[Any, Any]:
    handle = await env.start("onboarding", {**USER, "user_id": "h-cancelled-settled", "email": "left@example.com"})
    await env.wait_status(handle, "awaiting_verification")
    await handle.cancel(reason="signup abandoned")
    return await finish(handle)


async def decide(handle: WorkflowHandle[Any, Any], approver: str, decision: str) -> None:
    await handle.execute_update("decide", {"approver": approver, "decision": decision}, id=f"decide-{approver}")


async def approval_approved(env: Env) -> WorkflowHandle[Any, Any]:
    handle = await env.start("approval", {**REQUEST, "request_id": "h-approved", "required_approvals": 2})
    await env.wait_status(handle, "awaiting_decision")
    await decide(handle, "bob", "approve")
    await decide(handle, "carol", "approve")
    return await finish(handle)


async def approval_rejected(env: Env) -> WorkflowHandle[Any, Any]:
    handle = await env.start("approval", {**REQUEST, "request_id": "h-rejected"})
    await env.wait_status(handle, "awaiting_decision")
    await decide(handle, "carol", "reject")
    return await finish(handle)


async def approval_escalated(env: Env) -> WorkflowHandle[Any, Any]:
    handle = await env.start("approval", {**REQUEST, "request_id": "h-escalated", "escalate_to": "dana"})
    await env.env.sleep(timedelta(days=1, hours=1))
    await env.wait_status(handle, "escalated")
    await decide(handle, "dana", "approve")
    return await finish(handle)


async def approval_expired(env: Env) -> WorkflowHandle[Any, Any]:
    return await finish(await env.start("approval", {**REQUEST, "request_id": "h-expired", "escalate_to": "dana"}))


async def approval_cancelled(env: Env) -> WorkflowHandle[Any, Any]:
    handle = await env.start("approval", {**REQUEST, "request_id": "h-cancelled"})
    await env.wait_status(handle, "awaiting_decision")
    await handle.cancel(reason="withdrawn")
    return await finish(handle)


async def approval_auto_cancelled(env: Env) -> WorkflowHandle[Any, Any]:
    """Cancelled while the pre-screen's approval executes: the execution is revoked."""
    handle = await env.start("approval", {**REQUEST, "request_id": "h-auto-cancelled", "amount": 10})
    await env.wait_step(handle, "execute")
    await handle.cancel(reason="withdrawn")
    return await finish(handle)


async def approval_auto(env: Env) -> WorkflowHandle[Any, Any]:
    return await finish(await env.start("approval", {**REQUEST, "request_id": "h-auto", "amount": 10}))


async def order_reviewed_waits(env: Env) -> WorkflowHandle[Any, Any]:
    """Since the flow-waits-in-memo patch: the wait is kept in the memo, and its end."""
    handle = await env.start("order", {**BIG, "order_id": "h-reviewed-waits"})
    await env.wait_status(handle, "awaiting_review")
    await handle.signal("review", {"decision": "approve", "reviewer": "risk", "comment": "known customer"})
    return await finish(handle)


async def onboarding_verified_waits(env: Env) -> WorkflowHandle[Any, Any]:
    handle = await env.start("onboarding", {**USER, "user_id": "h-verified-waits", "plan": "pro"})
    await env.wait_status(handle, "awaiting_verification")
    await handle.signal("verify-email", {"verified_by": "user"})
    return await finish(handle)


async def approval_approved_waits(env: Env) -> WorkflowHandle[Any, Any]:
    """Two approvals: the wait narrows after the first, and the memo says so."""
    handle = await env.start("approval", {**REQUEST, "request_id": "h-approved-waits", "required_approvals": 2})
    await env.wait_status(handle, "awaiting_decision")
    await decide(handle, "bob", "approve")
    await decide(handle, "carol", "approve")
    return await finish(handle)


async def order_reviewed_policy(env: Env) -> WorkflowHandle[Any, Any]:
    """Since the order-policy-apart patch: the review timeout is the worker's policy, read by an
    activity (a local-activity marker), not a field the worker added to the screen's answer."""
    handle = await env.start("order", {**BIG, "order_id": "h-reviewed-policy"})
    await env.wait_status(handle, "awaiting_review")
    await handle.signal("review", {"decision": "approve", "reviewer": "risk", "comment": "known customer"})
    return await finish(handle)


async def order_review_timeout_policy(env: Env) -> WorkflowHandle[Any, Any]:
    return await finish(await env.start("order", {**BIG, "order_id": "h-review-timeout-policy"}))


SCENARIOS: dict[str, Scenario] = {
    "order-h-completed": order_completed,
    "order-h-declined": order_declined,
    "order-h-rejected": order_rejected,
    "order-h-review-timeout": order_review_timeout,
    "order-h-cancelled": order_cancelled,
    "onboarding-h-verified": onboarding_verified,
    "onboarding-h-timed-out": onboarding_timed_out,
    "onboarding-h-cancelled": onboarding_cancelled,
    "approval-h-approved": approval_approved,
    "approval-h-rejected": approval_rejected,
    "approval-h-escalated": approval_escalated,
    "approval-h-expired": approval_expired,
    "approval-h-auto": approval_auto,
    "order-h-completed-settled": order_completed_settled,
    "order-h-cancelled-settled": order_cancelled_settled,
    "order-h-rejected-then-cancelled": order_rejected_then_cancelled,
    "onboarding-h-cancelled-settled": onboarding_cancelled_settled,
    "approval-h-cancelled": approval_cancelled,
    "approval-h-auto-cancelled": approval_auto_cancelled,
    "order-h-reviewed-waits": order_reviewed_waits,
    "onboarding-h-verified-waits": onboarding_verified_waits,
    "approval-h-approved-waits": approval_approved_waits,
    "order-h-reviewed-policy": order_reviewed_policy,
    "order-h-review-timeout-policy": order_review_timeout_policy,
}


async def record() -> None:
    HISTORIES.mkdir(exist_ok=True)
    todo = {wid: scenario for wid, scenario in SCENARIOS.items() if not (HISTORIES / f"{wid}.json").exists()}
    if not todo:
        print("every scenario already has a recorded history")
        return
    with tempfile.TemporaryDirectory() as tmp:
        # Slow enough calls that a cancel lands while a step or a compensation runs.
        async with time_skipping(Path(tmp) / "ledger.db", latency_seconds=0.5) as env:
            for workflow_id, scenario in todo.items():
                handle = await scenario(env)
                assert handle.id == workflow_id, f"{scenario.__name__} ran {handle.id}, not {workflow_id}"
                history = await handle.fetch_history()
                (HISTORIES / f"{workflow_id}.json").write_text(history.to_json() + "\n")
                print(f"recorded {workflow_id} ({len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(record())
