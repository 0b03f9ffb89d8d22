"""Onboarding on a real dev server: verification, the ledger's order of effects, compensation."""

from __future__ import annotations

import json

from conftest import Cli, start, uid, wait_for_status


def user(user_id: str, **extra: object) -> dict[str, object]:
    return {"user_id": user_id, "email": f"{user_id}@example.com", "name": "Lin", **extra}


def test_verified_user_gets_workspace_role_and_welcome_in_that_order(flowctl: Cli) -> None:
    user_id = uid()
    wid = start(flowctl, "onboarding", user(user_id, plan="pro"))
    status = wait_for_status(flowctl, wid, "awaiting_verification")
    assert status["step"] == "await_verification"
    assert status["completed_steps"] == ["create_account", "send_verification_email"]
    assert status["waiting_for"].startswith("email verification")
    sent = flowctl("signal", wid, "verify-email")
    assert sent.code == 0, str(sent)
    result = flowctl("result", wid, "--timeout", "30s", "-o", "json")
    assert result.code == 0, str(result)
    assert result.json()["result"]["role"] == "admin" and result.json()["result"]["verified_by"] == "user"
    book = flowctl("ledger", "--ref", user_id, "-o", "json").json()
    assert [a["status"] for a in book["accounts"]] == ["active"]
    effects = sorted(
        [("workspace", book["workspaces"][0]["at"]), ("role", book["roles"][0]["at"])]
        + [(m["template"], m["at"]) for m in book["outbox"]],
        key=lambda pair: pair[1],
    )
    assert [name for name, _ in effects] == ["verify_email", "workspace", "role", "welcome", "new_user"]
    assert book["roles"][0]["role"] == "admin"


def test_cancel_compensates_what_was_created(flowctl: Cli) -> None:
    user_id = uid()
    wid = start(flowctl, "onboarding", user(user_id))
    wait_for_status(flowctl, wid, "awaiting_verification")
    assert flowctl("cancel", wid, "--reason", "signup abandoned").code == 0
    assert flowctl("result", wid).code == 12
    book = flowctl("ledger", "--ref", user_id, "-o", "json").json()
    assert [a["status"] for a in book["accounts"]] == ["deactivated"]
    status = flowctl("query", wid, "-o", "json").json()
    # Every undoable step is undone: the account it made, and the later steps it never reached
    # (so that nothing of this onboarding can happen later).
    assert [(c["action"], c["state"]) for c in status["compensations"]] == [
        ("revoke_role", "done"), ("delete_workspace", "done"), ("deactivate_account", "done"),
    ]  # fmt: skip
    assert [c["note"] is not None for c in status["compensations"]] == [True, True, False]


def test_email_already_taken_is_compensated(flowctl: Cli) -> None:
    email = f"{uid()}@example.com"
    first = start(flowctl, "onboarding", {"user_id": uid(), "email": email, "name": "A"})
    wait_for_status(flowctl, first, "awaiting_verification")
    second = flowctl("start", "onboarding", "-i", json.dumps({"user_id": uid(), "email": email, "name": "B"}), "--wait")
    assert second.code == 10 and "already uses" in second.stdout, str(second)
    assert flowctl("terminate", first, "--reason", "cleanup").code == 0


def test_invalid_onboarding_inputs(flowctl: Cli) -> None:
    bad = flowctl("start", "onboarding", "-i", json.dumps(user(uid(), plan="platinum")))
    assert bad.code == 2 and "plan" in bad.stderr
    reminder = flowctl("start", "onboarding", "-i", json.dumps(user(uid(), verify_within="1d", remind_after="2d")))
    assert reminder.code == 2 and "remind_after must be shorter" in reminder.stderr
    duration = flowctl("start", "onboarding", "-i", json.dumps(user(uid(), verify_within="soon")))
    assert duration.code == 2 and "verify_within" in duration.stderr and "not a duration" in duration.stderr
    approval = flowctl("start", "approval", "-i", json.dumps({
        "request_id": uid(), "requester": "a", "title": "t", "amount": 5, "approvers": ["b"], "required_approvals": 2,
    }))  # fmt: skip
    assert approval.code == 2 and "required_approvals (2) exceeds" in approval.stderr
