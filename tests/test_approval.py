"""Approvals on a real dev server: the decide update's validator, the inbox, approve and reject."""

from __future__ import annotations

import json
from typing import Any

from conftest import Cli, order_input, start, uid, wait_for_status


def approval_input(request_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "requester": "alice",
        "title": "Team offsite",
        "amount": 5000.0,
        "approvers": ["bob", "carol"],
        **extra,
    }


def inbox(flowctl: Cli, *args: str) -> set[str]:
    run = flowctl("approvals", *args, "-o", "json")
    assert run.code == 0, str(run)
    rows = run.json()
    for row in rows:
        assert {"workflow_id", "kind", "waiting_for", "since"} <= set(row)
    return {row["workflow_id"] for row in rows}


def update_events(flowctl: Cli, workflow_id: str) -> list[str]:
    events = [json.loads(line) for line in flowctl("history", workflow_id, "-o", "jsonl").stdout.splitlines()]
    return [e["eventType"] for e in events if "UPDATE" in e["eventType"]]


def test_two_approvers_two_approvals_and_the_validator(flowctl: Cli) -> None:
    wid = start(flowctl, "approval", approval_input(uid(), required_approvals=2))
    wait_for_status(flowctl, wid, "awaiting_decision")
    outsider = flowctl("approve", wid, "--as", "mallory")
    assert outsider.code == 4 and "mallory is not an approver" in outsider.stderr, str(outsider)
    own = flowctl("approve", wid, "--as", "alice")
    assert own.code == 4 and "alice requested" in own.stderr, str(own)
    first = flowctl("approve", wid, "--as", "bob", "--comment", "fine", "-o", "json")
    assert first.code == 0, str(first)
    assert first.json()["state"]["details"]["approvals"] == 1
    again = flowctl("update", wid, "decide", "--set", "approver=bob", "--set", "decision=approve")
    assert again.code == 4 and "bob has already decided" in again.stderr, str(again)
    assert flowctl("result", wid, "--timeout", "1s").code == 20  # one approval of two
    second = flowctl("approve", wid, "--as", "carol", "-o", "json")
    assert second.code == 0, str(second)
    # What the deciding vote led to, not the handler's snapshot of a request still awaiting it.
    assert second.json()["state"]["status"] != "awaiting_decision" and not second.json()["state"]["waiting_for"]
    result = flowctl("result", wid, "--timeout", "30s", "-o", "json")
    assert result.code == 0, str(result)
    assert result.json()["result"]["outcome"] == "approved"
    assert [d["approver"] for d in result.json()["result"]["decisions"]] == ["bob", "carol"]
    # Refused votes wrote nothing: exactly the two accepted decisions are in the history.
    assert (
        update_events(flowctl, wid)
        == [
            "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
            "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED",
        ]
        * 2
    )
    book = flowctl("ledger", "--ref", wid.removeprefix("approval-"), "-o", "json").json()
    assert len(book["executions"]) == 1
    late = flowctl("approve", wid, "--as", "bob")
    assert late.code == 4, str(late)


def test_one_rejection_rejects_and_result_exits_10(flowctl: Cli) -> None:
    request_id = uid()
    wid = start(flowctl, "approval", approval_input(request_id, required_approvals=2))
    wait_for_status(flowctl, wid, "awaiting_decision")
    assert flowctl("reject", wid, "--as", "carol").code == 2  # a rejection needs a comment
    rejected = flowctl("reject", wid, "--as", "carol", "--comment", "over budget")
    assert rejected.code == 0, str(rejected)
    assert rejected.stdout.startswith(f"carol's rejection sent to {wid}; now:"), rejected.stdout
    result = flowctl("result", wid, "-o", "json")
    assert result.code == 10, str(result)
    assert result.json()["result"]["outcome"] == "rejected" and "over budget" in result.json()["result"]["reason"]
    book = flowctl("ledger", "--ref", request_id, "-o", "json").json()
    assert book["executions"] == []
    assert [m["template"] for m in book["outbox"] if m["recipient"] == "alice"] == ["approval_rejected"]


def test_prescreen_auto_approves_small_and_rejects_huge(flowctl: Cli) -> None:
    small = start(flowctl, "approval", approval_input(uid(), amount=50.0))
    assert flowctl("result", small, "-o", "json").json()["result"]["outcome"] == "auto_approved"
    huge = start(flowctl, "approval", approval_input(uid(), amount=5_000_000.0))
    run = flowctl("result", huge, "-o", "json")
    assert run.code == 10 and run.json()["result"]["outcome"] == "auto_rejected"


def test_kinds_approval_example_needs_a_human(flowctl: Cli) -> None:
    example = flowctl("kinds", "approval", "-o", "json").json()["example"]
    wid = start(flowctl, "approval", {**example, "request_id": uid()})
    status = wait_for_status(flowctl, wid, "awaiting_decision")
    assert status["waiting_for"].startswith("1 more approval")
    assert flowctl("approve", wid, "--as", example["approvers"][0]).code == 0
    assert flowctl("result", wid).code == 0


def test_inbox_lists_exactly_the_waiting_workflows_and_drops_decided_ones(flowctl: Cli) -> None:
    before = inbox(flowctl)
    approver = uid("ann-")
    approval = start(flowctl, "approval", approval_input(uid(), approvers=[approver, "bob"]))
    order = start(flowctl, "order", order_input(uid(), price=2500.0))
    user = start(flowctl, "onboarding", {"user_id": uid(), "email": f"{uid()}@example.com", "name": "Ada"})
    done = start(flowctl, "approval", approval_input(uid(), amount=10.0))  # auto-approved: never waits
    assert flowctl("result", done).code == 0
    for wid, status in ((approval, "awaiting_decision"), (order, "awaiting_review"), (user, "awaiting_verification")):
        wait_for_status(flowctl, wid, status)
    assert inbox(flowctl) == before | {approval, order, user}
    assert inbox(flowctl, "--approver", approver) == {approval}
    rows = {r["workflow_id"]: r for r in flowctl("approvals", "-o", "json").json()}
    assert rows[order]["kind"] == "order" and rows[order]["waiting_for"] == "fraud review decision"
    assert rows[user]["waiting_for"] == "email verification" and rows[approval]["approvers"] == [approver, "bob"]
    assert flowctl("approve", approval, "--as", approver).code == 0
    assert approval not in inbox(flowctl)
    assert flowctl("approve", order, "--as", "risk-team").code == 0
    assert flowctl("approve", user, "--as", "support").code == 0
    assert inbox(flowctl) == before
    assert flowctl("result", order).code == 0 and flowctl("result", user).code == 0
    verified = flowctl("result", user, "-o", "json").json()["result"]
    assert verified["verified_by"] == "support"
    text = flowctl("approvals")
    assert text.code == 0


def test_decisions_on_workflows_not_waiting(flowctl: Cli) -> None:
    done = start(flowctl, "order", order_input(uid()))
    assert flowctl("result", done).code == 0
    assert flowctl("approve", done, "--as", "x").code == 4
    running = start(flowctl, "onboarding", {"user_id": uid(), "email": f"{uid()}@example.com", "name": "Bo"})
    wait_for_status(flowctl, running, "awaiting_verification")
    refused = flowctl("reject", running, "--as", "x", "--comment", "spam")
    assert refused.code == 2 and "flowctl cancel" in refused.stderr
    assert flowctl("approve", "approval-nope-" + uid(), "--as", "x").code == 3
    assert flowctl("cancel", running).code == 0
