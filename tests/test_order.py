"""The order saga end to end: real server, real worker, the installed CLI."""

from __future__ import annotations

import json
from typing import Any

from conftest import Cli, Stack, ledger, order_input, uid, wait_for_state


def start_order(flowctl: Cli, data: dict[str, Any], *args: str) -> Any:
    return flowctl("start", "order", "-i", json.dumps(data), *args)


def test_successful_order_waits_and_prints_result(flowctl: Cli) -> None:
    order_id = uid()
    run = start_order(flowctl, order_input(order_id, qty=2, price=12.5), "--wait", "-o", "json")
    assert run.code == 0, str(run)
    out = run.json()
    assert out["workflow_id"] == f"order-{order_id}"
    assert out["run_id"] and out["ui_url"].endswith(f"/workflows/order-{order_id}/{out['run_id']}/history")
    assert out["status"] == "completed"
    result = out["result"]
    assert result["outcome"] == "completed" and result["succeeded"] is True
    assert result["total_cents"] == 2500
    book = ledger(flowctl, order_id)
    assert [c["status"] for c in book["charges"]] == ["captured"]
    assert book["charges"][0]["amount_cents"] == 2500
    assert [s["status"] for s in book["shipments"]] == ["created"]
    assert [m["template"] for m in book["outbox"]] == ["order_confirmation"]
    assert [r["status"] for r in book["reservations"]] == ["held"]


def test_declined_payment_exits_10_and_is_compensated(flowctl: Cli) -> None:
    order_id = uid()
    run = start_order(flowctl, order_input(order_id, card="tok_declined", qty=3), "--wait", "-o", "json")
    assert run.code == 10, str(run)
    result = run.json()["result"]
    assert result["outcome"] == "compensated" and result["succeeded"] is False
    assert "declined" in result["reason"]
    assert [(c["action"], c["state"], c["note"]) for c in result["compensations"]] == [
        ("refund_payment", "done", "no charge was taken"),
        ("release_inventory", "done", None),
    ]
    assert result["charge_id"] is None
    book = ledger(flowctl, order_id)
    assert [r["status"] for r in book["reservations"]] == ["released"]
    assert [c for c in book["charges"] if c["status"] == "captured"] == []
    assert book["shipments"] == [] and book["outbox"] == []
    # `result` on the closed workflow says the same with the same code.
    again = flowctl("result", f"order-{order_id}", "-o", "json")
    assert again.code == 10 and again.json()["result"]["outcome"] == "compensated"


def test_out_of_stock_is_compensated_without_a_charge(flowctl: Cli) -> None:
    order_id = uid()
    run = start_order(flowctl, order_input(order_id, sku="SKU-OUT"), "--wait", "-o", "json")
    assert run.code == 10, str(run)
    result = run.json()["result"]
    assert "SKU-OUT" in result["reason"] and result["outcome"] == "compensated"
    assert ledger(flowctl, order_id)["charges"] == []


def test_flaky_card_retries_and_charges_once(flowctl: Cli, stack: Stack) -> None:
    order_id = uid()
    run = start_order(flowctl, order_input(order_id, card="tok_flaky"), "--wait", "-o", "json")
    assert run.code == 0, str(run)
    assert len(ledger(flowctl, order_id)["charges"]) == 1
    history = flowctl("history", f"order-{order_id}", "-o", "jsonl")
    attempts = [
        json.loads(line)["activityTaskStartedEventAttributes"].get("attempt", 1)
        for line in history.stdout.splitlines()
        if "activityTaskStartedEventAttributes" in line
    ]
    assert max(attempts) == 3  # failed twice, succeeded on the third attempt
    # The worker logs each failed attempt on one line saying it will be retried, no traceback.
    assert stack.worker is not None
    log = stack.worker.log.read_text().splitlines()  # type: ignore[attr-defined]
    ours = [i for i, line in enumerate(log) if f"order-{order_id}" in line]
    assert len(ours) == 2, log[-20:]
    for i in ours:
        assert "to be retried" in log[i] and "card network timeout (tok_flaky)" in log[i], log[i]
        assert i + 1 == len(log) or not log[i + 1].startswith("Traceback"), log[i : i + 3]


def test_fraud_review_holds_until_signal(flowctl: Cli) -> None:
    order_id = uid()
    wid = f"order-{order_id}"
    run = start_order(flowctl, order_input(order_id, price=2500.0), "-o", "json")
    assert run.code == 0, str(run)
    status = wait_for_state(flowctl, wid, "status", "awaiting_review")
    assert status["waiting_for"].startswith("fraud review")
    assert status["completed_steps"] == ["reserve_inventory", "charge_payment", "fraud_screen"]
    listed = flowctl("list", "--query", "FlowStatus = 'awaiting_review'", "-o", "json")
    assert wid in [w["workflow_id"] for w in listed.json()]
    sent = flowctl("signal", wid, "review", "--set", "decision=approve", "--set", "reviewer=maria")
    assert sent.code == 0, str(sent)
    done = flowctl("result", wid, "--timeout", "30s", "-o", "json")
    assert done.code == 0, str(done)
    assert done.json()["result"]["reviewed_by"] == "maria"


def test_fraud_rejection_refunds_and_exits_10(flowctl: Cli) -> None:
    order_id = uid()
    wid = f"order-{order_id}"
    assert start_order(flowctl, order_input(order_id, price=3000.0)).code == 0
    wait_for_state(flowctl, wid, "status", "awaiting_review")
    sent = flowctl(
        "signal", wid, "review", "-i", '{"decision": "reject", "reviewer": "ivan", "comment": "stolen card"}'
    )
    assert sent.code == 0, str(sent)
    done = flowctl("result", wid, "-o", "json")
    assert done.code == 10, str(done)
    assert done.json()["result"]["outcome"] == "rejected"
    book = ledger(flowctl, order_id)
    assert [c["status"] for c in book["charges"]] == ["refunded"]
    assert len(book["refunds"]) == 1 and book["refunds"][0]["amount_cents"] == 300000
    # The result names the charge that was refunded, so the two can be matched.
    assert done.json()["result"]["charge_id"] == book["charges"][0]["charge_id"] == book["refunds"][0]["charge_id"]
    assert [r["status"] for r in book["reservations"]] == ["released"]


def test_cancel_compensates_and_result_exits_12(flowctl: Cli) -> None:
    order_id = uid()
    wid = f"order-{order_id}"
    assert start_order(flowctl, order_input(order_id, price=2000.0)).code == 0
    wait_for_state(flowctl, wid, "status", "awaiting_review")
    assert flowctl("cancel", wid, "--reason", "customer asked").code == 0
    done = flowctl("result", wid, "-o", "json")
    assert done.code == 12, str(done)
    assert done.json()["status"] == "cancelled" and done.json()["error"] == "cancelled: customer asked"
    book = ledger(flowctl, order_id)
    assert [c["status"] for c in book["charges"]] == ["refunded"]
    assert [r["status"] for r in book["reservations"]] == ["released"]
    # A closed workflow cannot be cancelled again: a conflict.
    again = flowctl("cancel", wid)
    assert again.code == 4, str(again)


def test_terminate_exits_11_on_result(flowctl: Cli) -> None:
    order_id = uid()
    wid = f"order-{order_id}"
    assert start_order(flowctl, order_input(order_id, price=2000.0)).code == 0
    wait_for_state(flowctl, wid, "status", "awaiting_review")
    assert flowctl("terminate", wid).code == 2  # a reason is required
    assert flowctl("terminate", wid, "--reason", "test").code == 0
    assert flowctl("result", wid).code == 11


def test_same_business_key_is_a_conflict_or_attaches(flowctl: Cli) -> None:
    order_id = uid()
    data = order_input(order_id, price=2000.0)
    first = start_order(flowctl, data, "-o", "json")
    assert first.code == 0
    second = start_order(flowctl, data)
    assert second.code == 4 and "already running" in second.stderr
    attached = start_order(flowctl, data, "--if-running", "attach", "-o", "json")
    assert attached.code == 0 and attached.json()["run_id"] == first.json()["run_id"]
    assert attached.json()["attached"] is True
    flowctl("terminate", f"order-{order_id}", "--reason", "cleanup")


def test_completed_order_cannot_run_twice(flowctl: Cli) -> None:
    data = order_input(uid())
    assert start_order(flowctl, data, "--wait").code == 0
    again = start_order(flowctl, data, "--wait")
    assert again.code == 4 and "already ran" in again.stderr


def test_wait_timeout_exits_20(flowctl: Cli) -> None:
    order_id = uid()
    run = start_order(flowctl, order_input(order_id, price=5000.0), "--wait", "--timeout", "1s", "-o", "json")
    assert run.code == 20, str(run)
    assert run.json()["status"] == "running"
    assert flowctl("result", f"order-{order_id}", "--timeout", "0").code == 20  # looks once, returns at once
    flowctl("terminate", f"order-{order_id}", "--reason", "cleanup")
    assert flowctl("result", f"order-{order_id}", "--timeout", "0").code == 11


def test_explicit_id_and_set_values(flowctl: Cli) -> None:
    wid = uid("custom-")
    run = flowctl(
        "start", "order", "--id", wid,
        "--set", f"order_id={uid()}", "--set", "customer_id=c9", "--set", "email=x@example.com",
        "--set", 'items=[{"sku": "SKU-2", "quantity": 1, "unit_price": 1}]',
        "--set", "items.0.quantity=4",
        "--wait", "-o", "json",
    )  # fmt: skip
    assert run.code == 0, str(run)
    assert run.json()["workflow_id"] == wid and run.json()["result"]["total_cents"] == 400


def test_describe_and_list(flowctl: Cli, stack: Stack) -> None:
    order_id = uid()
    assert start_order(flowctl, order_input(order_id), "--wait").code == 0
    wid = f"order-{order_id}"
    described = flowctl("describe", wid, "-o", "json")
    assert described.code == 0, str(described)
    info = described.json()
    assert info["kind"] == "order" and info["status"] == "completed" and info["flow_status"] == "completed"
    assert info["task_queue"] == stack.task_queue and "/namespaces/default/workflows/" in info["ui_url"]
    for name, value in info["search_attributes"].items():  # JSON values, not Python reprs
        assert isinstance(value, str | int | float | bool | list), (name, value)
        assert not (isinstance(value, str) and value.startswith("[")), (name, value)
    listed = flowctl("list", "--kind", "order", "--status", "completed", "--limit", "1000", "-o", "jsonl")
    assert listed.code == 0
    ids = [json.loads(line)["workflow_id"] for line in listed.stdout.splitlines()]
    assert wid in ids
    assert flowctl("describe", "order-does-not-exist").code == 3
    assert flowctl("list", "--status", "bogus").code == 2
    assert flowctl("list", "--kind", "bogus").code == 3


def test_start_follow_streams_steps_then_the_outcome(flowctl: Cli) -> None:
    order_id = uid()
    run = start_order(flowctl, order_input(order_id, card="tok_declined"), "--follow", "-o", "jsonl")
    assert run.code == 10, str(run)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    *changes, final = lines
    assert all(c["workflow_id"] == f"order-{order_id}" for c in changes)
    assert [(c["action"], c["state"]) for c in changes if c["change"] == "compensation"] == [
        ("refund_payment", "done"),
        ("release_inventory", "done"),
    ]
    assert changes[-1]["change"] == "outcome" and changes[-1]["outcome"] == "compensated"
    assert final["status"] == "compensated" and final["result"]["succeeded"] is False
    text = start_order(flowctl, order_input(uid()), "--follow")
    assert text.code == 0, str(text)
    assert "✓ send_confirmation" in text.stdout and "■ completed" in text.stdout
    assert "\x1b[" not in text.stdout + text.stderr
