"""`flowctl retry` and `flowctl reset`: a workflow run again does no business step twice, the
ledger read back; a reset point inside a compensation is refused."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime
from typing import Any

import pytest
from conftest import FLOWCTL, Cli, Stack, ledger, order_input, statuses, stop_process, uid

LATENCY = 4.0  # seconds every service call takes on the slow worker


def started(flowctl: Cli, data: dict[str, Any], env: dict[str, str] | None = None) -> str:
    run = flowctl("start", "order", "-i", json.dumps(data), "-o", "json", env=env)
    assert run.code == 0, str(run)
    return str(run.json()["workflow_id"])


def started_on_a_worker(flowctl: Cli, workflow_id: str, activity: str, env: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        run = flowctl("describe", workflow_id, "-o", "json", env=env)
        out = run.json()["pending_activities"] if run.code == 0 else []
        if any(a["activity"] == activity and a["state"] == "started" for a in out):
            return
        assert time.monotonic() < deadline, f"{workflow_id} never started {activity}: {run}"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_reset_to_before_the_charge_while_it_is_in_flight_keeps_exactly_one_charge(flowctl: Cli) -> None:
    """Every service call takes 4s on this worker: the charge is in flight when the run is reset
    to before it. The old run's call still reaches the payment service, and so does the new
    run's; the ledger keeps one charge, captured."""
    env = {"FLOWCTL_TASK_QUEUE": uid("tq-reset-")}
    worker = flowctl.worker(env={**env, "FLOWCTL_SERVICES__LOCAL__LATENCY": f"{LATENCY}s"})
    try:
        key = uid("rs")
        order = started(flowctl, order_input(key), env)
        started_on_a_worker(flowctl, order, "payment.charge", env)
        planned = flowctl("reset", order, "--to", "charge_payment", "--dry-run", "-o", "json", env=env)
        assert planned.code == 0, str(planned)
        plan = planned.json()
        assert plan["kept"] == ["reserve_inventory"] and plan["taken_again"] == ["charge_payment"], plan
        assert plan["in_flight"] == ["charge_payment"], plan
        assert ledger(flowctl, key)["charges"] == []  # the dry run changed nothing; the charge is still out
        resetting = time.time()
        reset = flowctl("reset", order, "--to", "charge_payment", "--reason", "test", "-o", "json", env=env)
        assert reset.code == 0, str(reset)
        assert reset.json()["new_run_id"] != plan["run_id"]
        done = flowctl("result", order, "--timeout", "2m", "-o", "json", env=env)
        assert done.code == 0 and done.json()["status"] == "completed", str(done)
    finally:
        stop_process(worker)
    book = ledger(flowctl, key)
    assert statuses(book, "charges") == ["captured"] and book["refunds"] == [], book
    # The new run's call began after the reset did, and takes LATENCY: a charge recorded sooner
    # is the old run's, which reached the service; the new run's was answered with it.
    charged = datetime.fromisoformat(book["charges"][0]["at"]).timestamp()
    assert charged < resetting + LATENCY, (charged - resetting, book)
    assert statuses(book, "reservations") == ["held"] and len(book["shipments"]) == 1, book
    assert len(book["outbox"]) == 1, book  # one confirmation email


def test_a_reset_of_a_completed_order_takes_every_step_again_and_does_none_twice(flowctl: Cli) -> None:
    key = uid("ra")
    order = started(flowctl, order_input(key))
    assert flowctl("result", order, "--timeout", "1m").code == 0
    before = ledger(flowctl, key)
    reset = flowctl("reset", order, "--to", "reserve_inventory", "--reason", "test")
    assert reset.code == 0, str(reset)
    assert "taken again: reserve_inventory, charge_payment, fraud_screen, create_shipment" in reset.stdout
    assert flowctl("result", order, "--timeout", "1m").code == 0
    after = ledger(flowctl, key)
    for table in ("reservations", "charges", "shipments", "outbox"):
        assert after[table] == before[table] and len(after[table]) == 1, (table, after)


def test_a_run_that_began_compensating_or_was_asked_to_cancel_is_not_reset(flowctl: Cli) -> None:
    """A point inside a compensation would cut it short; one before it would go on as if the
    steps it undid still held (a refunded charge shipped): neither is taken."""
    order = started(flowctl, order_input(uid("rc"), card="tok_declined"))  # the charge is declined: compensated
    assert flowctl("result", order, "--timeout", "1m").code == 10
    for to in ("last-task", "release_inventory", "charge_payment", "reserve_inventory"):
        run = flowctl("reset", order, "--to", to, "--dry-run")
        assert run.code == 4 and "began compensating (refund_payment, release_inventory)" in run.stderr, str(run)
        assert len(run.stderr.splitlines()) == 1
    held = started(flowctl, order_input(uid("rk"), price=5000))
    assert flowctl("wait", held, "--for", "awaiting_review", "--timeout", "60s").code == 0
    assert flowctl("cancel", held, "--reason", "test").code == 0
    assert flowctl("result", held, "--timeout", "1m").code == 12
    refused = flowctl("reset", held, "--to", "fraud_screen", "--reason", "test")
    assert refused.code == 4 and "was asked to cancel" in refused.stderr, str(refused)


def test_reset_refuses_what_it_cannot_do_in_one_line(flowctl: Cli) -> None:
    order = started(flowctl, order_input(uid("ru")))
    assert flowctl("result", order, "--timeout", "1m").code == 0
    for args, code, said in (
        ([order, "--to", "last-task"], 2, "--reason is required"),
        ([order, "--to", "chrge_payment", "--dry-run"], 3, "did you mean 'charge_payment'?"),
        (["order-nobody", "--to", "last-task", "--dry-run"], 3, "not found"),
        ([order], 2, "--to"),
    ):
        run = flowctl("reset", *args)
        assert run.code == code and said in run.stderr and len(run.stderr.splitlines()) == 1, str(run)


def test_retry_starts_a_terminated_order_again_with_its_input_and_charges_once(flowctl: Cli) -> None:
    key = uid("rt")
    order = started(flowctl, order_input(key, price=5000))  # held for review after its charge
    assert flowctl("wait", order, "--for", "awaiting_review", "--timeout", "60s").code == 0
    assert flowctl("retry", order).code == 4  # still running: nothing to retry
    assert flowctl("terminate", order, "--reason", "bad deploy").code == 0
    retried = flowctl("retry", order, "-o", "json")
    assert retried.code == 0, str(retried)
    assert retried.json()["was"] == "terminated" and retried.json()["resumes"] != retried.json()["run_id"]
    assert flowctl("wait", order, "--for", "awaiting_review", "--timeout", "60s").code == 0
    assert flowctl("approve", order, "--as", "risk").code == 0
    assert flowctl("result", order, "--timeout", "1m").code == 0
    book = ledger(flowctl, key)
    assert statuses(book, "charges") == ["captured"] and len(book["shipments"]) == 1, book
    again = flowctl("retry", order)
    assert again.code == 4 and "nothing to retry" in again.stderr, str(again)
    assert flowctl("retry", "order-nobody").code == 3
    assert flowctl("retry", order, "--timeout", "1s").code == 2


def test_a_reset_to_before_a_decision_says_the_decision_must_be_sent_again(flowctl: Cli) -> None:
    key = uid("rd")
    request = {"request_id": key, "requester": "alice", "title": "t", "amount": 5000, "approvers": ["bob"]}
    run = flowctl("start", "approval", "-i", json.dumps(request), "-o", "json")
    assert run.code == 0, str(run)
    approval = f"approval-{key}"
    assert flowctl("wait", approval, "--for", "awaiting_decision", "--timeout", "60s").code == 0
    assert flowctl("approve", approval, "--as", "bob").code == 0
    assert flowctl("result", approval, "--timeout", "1m").code == 0
    after = flowctl("reset", approval, "--to", "execute", "--dry-run", "-o", "json")
    assert after.code == 0 and after.json()["updates_after"] == [] and "send them" not in after.stderr, str(after)
    reset = flowctl("reset", approval, "--to", "request_review", "--reason", "test", "-o", "json")
    assert reset.code == 0 and reset.json()["updates_after"] == ["decide"], str(reset)
    assert "send them again once it waits" in reset.stderr
    # As said: the decision reached the new run before it waited for one, and was refused.
    assert flowctl("wait", approval, "--for", "awaiting_decision", "--timeout", "60s").code == 0
    # Decided otherwise this time: the payout the old run made beyond the point is revoked,
    # though the new run never reached it.
    assert flowctl("reject", approval, "--as", "bob", "--comment", "no").code == 0
    done = flowctl("result", approval, "--timeout", "1m", "-o", "json")
    assert done.code == 10, str(done)
    [revoke] = done.json()["result"]["compensations"]
    assert revoke["state"] == "done" and revoke["note"] == "taken by a run before this one, and undone", revoke
    book = ledger(flowctl, key)
    assert statuses(book, "executions") == ["revoked"]
    # The requester hears of the rejection too, not only of the approval the old run sent.
    told = [row["template"] for row in book["outbox"] if row["recipient"] == "alice"]
    assert told == ["approval_approved", "approval_rejected"], told


def test_waiting_commands_follow_a_reset_into_its_new_run(flowctl: Cli) -> None:
    """A reset ends the run it replaces by terminating it: a wait on the workflow goes on with
    the new run, and one that looks at a closed workflow with no time left still reads it."""
    held = started(flowctl, order_input(uid("rw"), price=5000))
    assert flowctl("wait", held, "--for", "awaiting_review", "--timeout", "60s").code == 0
    env = {**flowctl.env}
    waiting = [
        subprocess.Popen([FLOWCTL, "wait", held, *extra, "-o", "jsonl"], env=env, stdout=subprocess.PIPE, text=True)
        for extra in ([], ["--for", "closed"], ["--for", "completed"])
    ]
    time.sleep(2)  # all three are waiting
    assert flowctl("reset", held, "--to", "last-task", "--reason", "test").code == 0
    assert flowctl("wait", held, "--for", "awaiting_review", "--timeout", "60s").code == 0
    assert flowctl("approve", held, "--as", "risk").code == 0
    for proc in waiting:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and json.loads(out)["status"] == "completed", (proc.args, out)
    for args in (["--for", "closed", "--timeout", "0"], ["--for", "awaiting_review", "--timeout", "0"]):
        run = flowctl("wait", held, *args)
        assert run.code == 0, str(run)  # closed, and it had been awaiting review: nothing to wait for
    assert flowctl("watch", held, "--timeout", "0").code == 0


def test_an_onboarding_that_undid_its_account_is_not_reset_and_signals_sent_again_are_said(flowctl: Cli) -> None:
    """Not verified in time, an onboarding deactivates its account as a step of its own (not a
    compensation): a reset to before it would complete on a deactivated account."""
    key = uid("ro")
    data = {"user_id": key, "email": f"{key}@example.com", "name": "N", "verify_within": "2s"}
    assert flowctl("start", "onboarding", "-i", json.dumps(data)).code == 0
    assert flowctl("result", f"onboarding-{key}", "--timeout", "1m").code == 10  # timed out
    refused = flowctl("reset", f"onboarding-{key}", "--to", "send_verification", "--dry-run")
    assert refused.code == 4 and "undid a step (deactivate_account)" in refused.stderr, str(refused)
    held = started(flowctl, order_input(uid("rg"), price=5000))
    assert flowctl("wait", held, "--for", "awaiting_review", "--timeout", "60s").code == 0
    assert flowctl("approve", held, "--as", "risk").code == 0
    assert flowctl("result", held, "--timeout", "1m").code == 0
    planned = flowctl("reset", held, "--to", "fraud_screen", "--dry-run", "-o", "json")
    assert planned.code == 0 and planned.json()["signals_after"] == ["review"], str(planned)
    assert "a review decision decides again" in planned.stderr


def test_a_cancel_that_reaches_the_old_run_while_it_is_reset_is_sent_to_the_new_run(flowctl: Cli, stack: Stack) -> None:
    """The server does not send a cancel again to the run a reset makes: one that lands between
    the plan and the reset would be lost, the order completed and charged. Made certain here."""
    import asyncio

    from temporalio.client import Client

    from flowctl.ops import resets

    held = started(flowctl, order_input(uid("rx"), price=5000))
    assert flowctl("wait", held, "--for", "awaiting_review", "--timeout", "60s").code == 0

    async def race() -> None:
        client = await Client.connect(stack.address)
        plan = await resets.plan(client, held, "fraud_screen")
        await client.get_workflow_handle(held).cancel(reason="customer asked")
        await resets.reset(client, plan, "test")
        assert plan.cancel_sent_on

    asyncio.run(race())
    done = flowctl("result", held, "--timeout", "1m", "-o", "json")
    assert done.code == 12 and done.json()["error"] == "cancelled: customer asked", str(done)
    book = ledger(flowctl, held.removeprefix("order-"))
    assert statuses(book, "charges") == ["refunded"] and book["shipments"] == [], book
