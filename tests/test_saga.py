"""The saga under cancels, re-runs and decisions: real server, real workers, the ledger read back.

Each test here reproduces a way money or stock was lost (or a decision misreported) while
flowctl reported a normal outcome, and checks the ledger afterwards.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import FLOWCTL, TEMPORAL, Cli, Stack, ledger, order_input, statuses, stop_process, uid, wait_for_state

# A worker whose every service call takes this long: a step stays in flight, and ends within
# the step timeout (10 s).
SLOW = "8s"
# The worker that takes over once the cancels are sent; its steps (the undos) take a while too.
TAKES_OVER = "3s"


def query(flowctl: Cli, wid: str, env: dict[str, str] | None = None) -> dict[str, Any] | None:
    run = flowctl("query", wid, "-o", "json", env=env)
    return run.json() if run.code == 0 else None


def wait_for(flowctl: Cli, wid: str, field: str, value: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    return wait_for_state(flowctl, wid, field, value, timeout=60, env=env)


def start(flowctl: Cli, kind: str, data: dict[str, Any], *args: str, env: dict[str, str] | None = None) -> Any:
    run = flowctl("start", kind, "-i", json.dumps(data), "-o", "json", *args, env=env)
    assert run.code == 0, str(run)
    return run.json()


def result(flowctl: Cli, wid: str, *, code: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    run = flowctl("result", wid, "--timeout", "2m", "-o", "json", env=env)
    assert run.code == code, str(run)
    return run.json()  # type: ignore[no-any-return]


@pytest.mark.slow
def test_a_cancel_during_a_step_waits_for_it_on_a_draining_worker_then_undoes_it(flowctl: Cli) -> None:
    """Worker A runs each kind's step slowly; A is drained (SIGTERM) and B takes over; the cancel
    must wait for A's step to end and then undo it, for every kind."""
    env = {"FLOWCTL_TASK_QUEUE": uid("tq-drain-")}
    slow = flowctl.worker("--shutdown-grace", "2m", env={**env, "FLOWCTL_SERVICES__LOCAL__LATENCY": SLOW})
    key = uid()
    order, user, request = f"order-{key}", f"onboarding-{key}", f"approval-{key}"
    start(flowctl, "order", order_input(key), env=env)
    approval = {"request_id": key, "requester": "alice", "title": "t", "amount": 10, "approvers": ["bob"]}
    start(flowctl, "approval", approval, env=env)  # below 1000: approved by the pre-screen, then executed
    # The order's charge and the approval's execution are second steps; the account is a first one.
    wait_for(flowctl, order, "step", "charge_payment", env)
    start(flowctl, "onboarding", {"user_id": key, "email": f"{key}@example.com", "name": "N"}, env=env)
    wait_for(flowctl, request, "step", "execute", env)
    wait_for(flowctl, user, "step", "create_account", env)
    fast = None
    try:
        slow.send_signal(signal.SIGTERM)  # a deploy: A stops polling, its steps in flight go on
        with ThreadPoolExecutor(3) as pool:  # at once: each while its step is still out, on a busy machine too
            runs = pool.map(lambda wid: flowctl("cancel", wid, "--reason", "customer asked", env=env),
                            (order, user, request))  # fmt: skip
            for cancelled in runs:
                assert cancelled.code == 0, str(cancelled)
        # B comes up after the cancels (starting a worker takes seconds on a busy machine, longer
        # than a step stays out): until then no worker takes the cancels, which wait for it.
        fast = flowctl.worker(env={**env, "FLOWCTL_SERVICES__LOCAL__LATENCY": TAKES_OVER})
        outcomes = {wid: result(flowctl, wid, code=12, env=env) for wid in (order, user, request)}
        assert slow.wait(timeout=120) == 0
    finally:
        stop_process(slow)
        if fast is not None:
            stop_process(fast)

    for outcome in outcomes.values():
        assert outcome["status"] == "cancelled" and outcome["error"] == "cancelled: customer asked", outcome
        kept = outcome["result"]
        assert kept["outcome"] == "cancelled" and kept["reason"] == "cancelled: customer asked", kept
        assert kept["compensations"] and all(c["state"] == "done" for c in kept["compensations"]), kept
    # A's step ended first (so the undo found something to undo), and was undone.
    book = ledger(flowctl, key)
    assert statuses(book, "charges") == ["refunded"] and len(book["refunds"]) == 1, book
    assert statuses(book, "reservations") == ["released"], book
    assert statuses(book, "accounts") == ["deactivated"], book
    assert statuses(book, "executions") == ["revoked"], book
    refund = next(c for c in outcomes[order]["result"]["compensations"] if c["action"] == "refund_payment")
    assert refund["note"] is None, refund  # not "no charge was taken"
    listed = flowctl("list", "--status", "cancelled", "--query", f"WorkflowId IN ('{order}', '{user}', '{request}')",
                     "-o", "json")  # fmt: skip
    assert sorted(row["workflow_id"] for row in listed.json()) == sorted(outcomes), str(listed)
    assert {row["flow_status"] for row in listed.json()} == {"cancelled"}


def held_orders(flowctl: Cli, count: int, env: dict[str, str]) -> list[str]:
    """Start `count` orders over the review threshold; their ids once all are held for review."""
    keys = [uid() for _ in range(count)]
    for key in keys:
        start(flowctl, "order", order_input(key, price=2000.0), env=env)
    for key in keys:
        wait_for(flowctl, f"order-{key}", "status", "awaiting_review", env)
    return keys


def assert_nothing_kept(flowctl: Cli, key: str) -> None:
    """No net charge, no stock held, nothing shipped."""
    book = ledger(flowctl, key)
    assert "captured" not in statuses(book, "charges"), book
    assert len(book["refunds"]) == statuses(book, "charges").count("refunded"), book
    assert "held" not in statuses(book, "reservations"), book
    assert "created" not in statuses(book, "shipments"), book


@pytest.mark.slow
def test_a_cancel_during_compensations_abandons_none_of_them(flowctl: Cli) -> None:
    """Eight orders rejected on a worker that runs one activity at a time, cancelled while their
    refunds and releases are queued: every compensation runs to its end."""
    env = {"FLOWCTL_TASK_QUEUE": uid("tq-busy-"), "FLOWCTL_SERVICES__LOCAL__LATENCY": "0.5s"}
    worker = flowctl.worker("--max-activities", "1", env=env)
    try:
        keys = held_orders(flowctl, 8, env)
        with ThreadPoolExecutor(8) as pool:
            verdicts = pool.map(lambda k: flowctl("reject", f"order-{k}", "--as", "risk", "--comment", "fraud",
                                                  "--timeout", "1m", env=env), keys)  # fmt: skip
            assert all(run.code == 0 for run in verdicts)
            time.sleep(2.5)  # 16 compensations, one at a time: most are queued now
            runs = pool.map(lambda k: flowctl("cancel", f"order-{k}", "--reason", "chargeback", env=env), keys)
            cancels = {key: run.code for key, run in zip(keys, runs, strict=True)}
        assert set(cancels.values()) <= {0, 4}, cancels
        assert 0 in cancels.values(), "every order had finished before its cancel: the test proved nothing"
        ends = {key: flowctl("result", f"order-{key}", "--timeout", "2m", "-o", "json", env=env) for key in keys}
    finally:
        assert stop_process(worker) == 0
    for key, end in ends.items():
        assert_nothing_kept(flowctl, key)
        kept = end.json()["result"]
        assert [(c["action"], c["state"]) for c in kept["compensations"]] == [
            ("refund_payment", "done"),
            ("release_inventory", "done"),
        ], kept
        if cancels[key] == 0:  # cancelled while compensating: it says so, and what it had been doing
            assert end.code == 12 and kept["outcome"] == "cancelled", str(end)
            if kept["reason"] != "cancelled: chargeback (while compensating: rejected in fraud review by risk: fraud)":
                Path("/tmp/hist.txt").write_text(flowctl("history", f"order-{key}").stdout)
                raise AssertionError(kept)
        else:  # it had finished: the cancel was refused as a conflict
            assert end.code == 10 and kept["outcome"] == "rejected", str(end)
    rows = flowctl("list", "--query", f"TaskQueue = '{env['FLOWCTL_TASK_QUEUE']}'", "-o", "json").json()
    assert {row["flow_status"] for row in rows} <= {"cancelled", "rejected"}, rows


@pytest.mark.slow
def test_a_mass_cancel_of_fresh_orders_leaves_nothing_held(flowctl: Cli, tmp_path: Path) -> None:
    """Orders cancelled by --query right after a bulk start, most of them mid-step or queued."""
    queue = uid("tq-mass-")
    env = {"FLOWCTL_TASK_QUEUE": queue, "FLOWCTL_SERVICES__LOCAL__LATENCY": "0.2s"}
    prefix = uid("m")
    orders = tmp_path / "orders.jsonl"
    orders.write_text("".join(json.dumps(order_input(f"{prefix}-{i}")) + "\n" for i in range(80)))
    worker = flowctl.worker("--max-activities", "4", env=env)
    try:
        assert flowctl("start", "order", "--from", str(orders), env=env).code == 0
        time.sleep(1.5)
        cancelled = flowctl("cancel", "--query", f"TaskQueue = '{queue}'", "--reason", "recall", "--yes", env=env)
        assert cancelled.code in (0, 4), str(cancelled)  # 4: some had completed in the meantime
        deadline = time.monotonic() + 180
        # One process long-polls them all to their ends; the loop then only confirms it.
        flowctl("wait", "--query", f"TaskQueue = '{queue}'", "--timeout", "180s", "-o", "json", timeout=240)
        while True:
            rows = flowctl("list", "--query", f"TaskQueue = '{queue}'", "--limit", "1000", "-o", "json").json()
            if len(rows) == 80 and all(row["status"] != "running" for row in rows):
                break
            assert time.monotonic() < deadline, [r for r in rows if r["status"] == "running"][:3]
            time.sleep(1)
    finally:
        assert stop_process(worker) == 0
    ends = {row["workflow_id"]: (row["status"], row["flow_status"]) for row in rows}
    assert set(ends.values()) <= {("cancelled", "cancelled"), ("completed", "completed")}, ends
    assert ("cancelled", "cancelled") in ends.values()
    for i in range(80):
        if ends[f"order-{prefix}-{i}"][0] == "cancelled":
            assert_nothing_kept(flowctl, f"{prefix}-{i}")
        else:
            book = ledger(flowctl, f"{prefix}-{i}")
            assert statuses(book, "charges") == ["captured"] and statuses(book, "reservations") == ["held"], book


def test_a_terminated_order_started_again_resumes_and_charges_once(flowctl: Cli, tmp_path: Path) -> None:
    """Terminate skips compensation, so a terminated order holds its charge; starting it again,
    from a file or alone, resumes its steps under the same keys: one charge, however often."""
    held, plain = uid(), uid()
    orders = tmp_path / "orders.jsonl"
    orders.write_text(json.dumps(order_input(held, price=2000.0)) + "\n" + json.dumps(order_input(uid())) + "\n")
    assert flowctl("start", "order", "--from", str(orders)).code == 0
    wait_for(flowctl, f"order-{held}", "status", "awaiting_review")
    assert flowctl("terminate", f"order-{held}", "--reason", "stuck").code == 0
    for _ in range(2):  # the file again, twice: the first resumes, the second finds it running
        again = flowctl("start", "order", "--from", str(orders))
        assert again.code == 0, str(again)
        wait_for(flowctl, f"order-{held}", "status", "awaiting_review")
        assert flowctl("terminate", f"order-{held}", "--reason", "stuck again").code == 0
    lines = {json.loads(line)["line"]: json.loads(line) for line in again.stdout.splitlines()}
    assert lines[1]["resumes"] and lines[2]["already_started"] and lines[2]["status"] == "completed", lines
    book = ledger(flowctl, held)
    assert statuses(book, "charges") == ["captured"] and statuses(book, "reservations") == ["held"], book

    start(flowctl, "order", order_input(plain, price=2000.0))
    wait_for(flowctl, f"order-{plain}", "status", "awaiting_review")
    assert flowctl("terminate", f"order-{plain}", "--reason", "stuck").code == 0
    resumed = flowctl("start", "order", "-i", json.dumps(order_input(plain, price=2000.0)))
    assert resumed.code == 0 and "resumes run" in resumed.stdout, str(resumed)
    wait_for(flowctl, f"order-{plain}", "status", "awaiting_review")
    assert flowctl("approve", f"order-{plain}", "--as", "maria").code == 0
    done = result(flowctl, f"order-{plain}", code=0)
    book = ledger(flowctl, plain)
    assert statuses(book, "charges") == ["captured"] and done["result"]["charge_id"] == book["charges"][0]["charge_id"]
    assert statuses(book, "shipments") == ["created"] and statuses(book, "reservations") == ["held"], book


def test_a_terminated_order_is_not_resumed_with_other_input(flowctl: Cli, tmp_path: Path) -> None:
    """Its steps are kept under their keys: resumed with three items instead of one, it found
    the charge of one done and shipped three. Refused, alone and in a file; the same input resumes."""
    key = uid()
    start(flowctl, "order", order_input(key, price=2000.0))
    wait_for(flowctl, f"order-{key}", "status", "awaiting_review")
    assert flowctl("terminate", f"order-{key}", "--reason", "stuck").code == 0
    other = order_input(key, price=2000.0, qty=3)
    alone = flowctl("start", "order", "-i", json.dumps(other))
    assert alone.code == 4 and "stopped with other input" in alone.stderr and alone.stdout == "", str(alone)
    orders = tmp_path / "orders.jsonl"
    orders.write_text(json.dumps(other) + "\n")
    bulk = flowctl("start", "order", "--from", str(orders))
    assert bulk.code == 4 and "stopped with other input" in json.loads(bulk.stdout)["error"], str(bulk)
    assert flowctl("describe", f"order-{key}", "-o", "json").json()["status"] == "terminated"
    assert statuses(ledger(flowctl, key), "charges") == ["captured"]  # the one charge, nothing new
    same = flowctl("start", "order", "-i", json.dumps(order_input(key, price=2000.0)))
    assert same.code == 0 and "resumes run" in same.stdout, str(same)
    flowctl("terminate", f"order-{key}", "--reason", "cleanup")


def test_a_cancelled_order_is_not_started_again_however_it_is_started(
    flowctl: Cli, stack: Stack, tmp_path: Path
) -> None:
    key = uid()
    data = order_input(key, price=2000.0)
    start(flowctl, "order", data)
    wait_for(flowctl, f"order-{key}", "status", "awaiting_review")
    assert flowctl("cancel", f"order-{key}").code == 0
    result(flowctl, f"order-{key}", code=12)
    again = flowctl("start", "order", "-i", json.dumps(data))
    assert again.code == 4 and "was cancelled and compensated" in again.stderr, str(again)
    line = tmp_path / "one.jsonl"
    line.write_text(json.dumps(data) + "\n")
    bulk = flowctl("start", "order", "--from", str(line))
    assert bulk.code == 4 and json.loads(bulk.stdout)["code"] == 4, str(bulk)
    # Another client, with the server's default policy, does start it again: the services refuse
    # to redo the undone steps, so the run ends compensated without taking anything.
    subprocess.run(
        [TEMPORAL, "workflow", "start", "--type", "Order", "--task-queue", stack.task_queue, "--workflow-id",
         f"order-{key}", "--input", json.dumps(data), "--address", stack.address],
        check=True, capture_output=True,
    )  # fmt: skip
    rerun = result(flowctl, f"order-{key}", code=10)
    assert "undone" in rerun["result"]["reason"], rerun
    book = ledger(flowctl, key)
    assert statuses(book, "charges") == ["refunded"] and statuses(book, "reservations") == ["released"], book


def test_a_second_workflow_for_one_order_cannot_take_a_second_charge(flowctl: Cli) -> None:
    key = uid()
    first = start(flowctl, "order", order_input(key), "--wait")
    assert first["status"] == "completed"
    second = flowctl("start", "order", "-i", json.dumps(order_input(key)), "--id", uid("dup-"), "--wait", "-o", "json")
    assert second.code == 10, str(second)
    assert f"order {key} already has a kept charge" in second.json()["result"]["reason"]
    book = ledger(flowctl, key)
    assert statuses(book, "charges") == ["captured"] and statuses(book, "reservations") == ["held", "released"], book


@pytest.mark.slow
def test_a_decision_sent_while_no_worker_runs_is_pending_then_takes_effect(flowctl: Cli) -> None:
    env = {"FLOWCTL_TASK_QUEUE": uid("tq-gone-")}
    worker = flowctl.worker(env=env)
    order = uid()
    start(flowctl, "order", order_input(order, price=2000.0), env=env)
    request = {"request_id": uid(), "requester": "alice", "title": "t", "amount": 5000, "approvers": ["bob"]}
    start(flowctl, "approval", request, env=env)
    order_id, approval_id = f"order-{order}", f"approval-{request['request_id']}"
    wait_for(flowctl, order_id, "status", "awaiting_review", env)
    wait_for(flowctl, approval_id, "status", "awaiting_decision", env)
    assert stop_process(worker) == 0

    for wid, person in ((order_id, "maria"), (approval_id, "bob")):
        began = time.monotonic()
        sent = flowctl("approve", wid, "--as", person, "--timeout", "2s", "-o", "json", env=env, timeout=60)
        assert sent.code == 21, str(sent)
        assert time.monotonic() - began < 45, "the decision command must return within its timeout"
        error = json.loads(sent.stderr)["error"]
        assert error["type"] == "pending" and "no worker" in error["message"] and sent.stdout == "", error
    text = flowctl("approve", order_id, "--as", "maria", "--timeout", "1s", env=env)
    assert text.code == 21 and "delivered" in text.stderr and len(text.stderr.splitlines()) == 1, str(text)

    worker = flowctl.worker(env=env)
    try:
        order_end = result(flowctl, order_id, code=0, env=env)
        approval_end = result(flowctl, approval_id, code=0, env=env)
    finally:
        stop_process(worker)
    assert order_end["result"]["reviewed_by"] == "maria"
    assert [v["approver"] for v in approval_end["result"]["decisions"]] == ["bob"]


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("approval", {"approvers": ["alice"]}, "required_approvals (1) exceeds the 0 approver(s) who may decide"),
        ("approval", {"approvers": ["bob"], "required_approvals": 2}, "exceeds the 1 approver(s)"),
        ("approval", {"amount": 999.995}, "amount: 999.995 has more than two decimals"),
        ("order", {"items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 0.001}]}, "more than two decimals"),
    ],
)
def test_a_workflow_nobody_could_finish_is_refused_at_start(
    local_cli: Cli, kind: str, data: dict[str, Any], message: str
) -> None:
    base = (
        {"request_id": "R-1", "requester": "alice", "title": "t", "amount": 5000, "approvers": ["bob"]}
        if kind == "approval"
        else order_input("A-1")
    )
    run = local_cli("start", kind, "-i", json.dumps({**base, **data}), "--dry-run")
    assert run.code == 2 and message in run.stderr and len(run.stderr.splitlines()) == 1, str(run)


def test_escalate_to_counts_as_an_approver_and_cents_are_kept(local_cli: Cli) -> None:
    request = {"request_id": "R-1", "requester": "alice", "title": "t", "amount": 999.99, "approvers": ["alice"]}
    run = local_cli("start", "approval", "-i", json.dumps({**request, "escalate_to": "dana"}), "--dry-run")
    assert run.code == 0, str(run)
    order = local_cli("start", "order", "-i", json.dumps(order_input("A-1", price=0.01)), "--dry-run", "-o", "json")
    assert order.code == 0 and order.json()["input"]["items"][0]["unit_price"] == 0.01, str(order)


@pytest.mark.parametrize("value", ["500ms", "0s", "0.9s"])
def test_a_review_timeout_under_a_second_is_refused(local_cli: Cli, value: str) -> None:
    run = local_cli("config", "set", "order.review_timeout", value)
    assert run.code == 2 and "review_timeout" in run.stderr and "at least 1s" in run.stderr, str(run)
    assert local_cli("config", "set", "order.review_timeout", "1s").code == 0


@pytest.mark.slow
def test_a_resumed_order_undoes_what_the_stopped_run_did_beyond_it(flowctl: Cli) -> None:
    """The stopped run had shipped; the new run is asked to review again and rejects: the
    shipment the earlier run made is cancelled too. Parallel re-starts attach to one run."""
    env = {"FLOWCTL_TASK_QUEUE": uid("tq-resume-"), "FLOWCTL_SERVICES__LOCAL__LATENCY": "2s"}
    worker = flowctl.worker(env=env)
    key = uid()
    wid = f"order-{key}"
    data = json.dumps(order_input(key, price=1500.0))
    try:
        assert flowctl("start", "order", "-i", data, env=env).code == 0
        wait_for(flowctl, wid, "status", "awaiting_review", env)
        assert flowctl("approve", wid, "--as", "rev", env=env).code == 0
        wait_for(flowctl, wid, "step", "send_confirmation", env)  # shipped
        assert flowctl("terminate", wid, "--reason", "stuck", env=env).code == 0
        with ThreadPoolExecutor(4) as pool:
            starts = list(pool.map(lambda _: flowctl("start", "order", "-i", data, "--if-running", "attach", "-o",
                                                     "json", env=env), range(4)))  # fmt: skip
        assert [run.code for run in starts] == [0] * 4, [str(run) for run in starts]
        assert sum(1 for run in starts if run.json().get("resumes")) == 1, [run.stdout for run in starts]
        assert len({run.json()["run_id"] for run in starts}) == 1
        wait_for(flowctl, wid, "status", "awaiting_review", env)  # a human decision is asked again
        assert flowctl("reject", wid, "--as", "rev2", "--comment", "changed my mind", env=env).code == 0
        ended = result(flowctl, wid, code=10, env=env)
    finally:
        stop_process(worker)
    assert ended["result"]["outcome"] == "rejected"
    assert_nothing_kept(flowctl, key)
    assert statuses(ledger(flowctl, key), "shipments") == ["cancelled"]


def test_an_order_cancelled_before_its_first_step_can_have_nothing_done_later(flowctl: Cli, stack: Stack) -> None:
    env = {"FLOWCTL_TASK_QUEUE": uid("tq-early-")}
    key = uid()
    data = order_input(key)
    assert flowctl("start", "order", "-i", json.dumps(data), env=env).code == 0
    assert flowctl("cancel", f"order-{key}", "--reason", "early", env=env).code == 0  # no worker yet
    worker = flowctl.worker(env=env)
    try:
        kept = result(flowctl, f"order-{key}", code=12, env=env)["result"]
        assert {c["action"] for c in kept["compensations"]} == {
            "release_inventory",
            "refund_payment",
            "cancel_shipment",
        }
        subprocess.run(
            [TEMPORAL, "workflow", "start", "--type", "Order", "--task-queue", env["FLOWCTL_TASK_QUEUE"],
             "--workflow-id", f"order-{key}", "--input", json.dumps(data), "--address", stack.address],
            check=True, capture_output=True,
        )  # fmt: skip
        rerun = result(flowctl, f"order-{key}", code=10, env=env)
    finally:
        stop_process(worker)
    assert "undone" in rerun["result"]["reason"], rerun
    book = ledger(flowctl, key)
    assert book["charges"] == [] and book["shipments"] == [] and book["reservations"] == [], book


def test_an_approval_whose_execution_is_refused_ends_compensated(flowctl: Cli) -> None:
    request = {"request_id": uid(), "requester": "alice", "title": "t", "amount": 50, "approvers": ["bob"]}
    first = start(flowctl, "approval", request, "--wait")
    assert first["status"] == "auto_approved", first
    second = flowctl("start", "approval", "-i", json.dumps(request), "--id", uid("again-"), "--wait", "-o", "json")
    assert second.code == 10, str(second)
    assert (
        second.json()["result"]["outcome"] == "compensated" and "already executed" in second.json()["result"]["reason"]
    )
    assert statuses(ledger(flowctl, str(request["request_id"])), "executions") == ["executed"]


def test_a_vote_with_a_tiny_timeout_is_still_sent_and_a_signal_stopped_midway_says_so(flowctl: Cli) -> None:
    env = {"FLOWCTL_TASK_QUEUE": uid("tq-vote-")}
    worker = flowctl.worker(env=env)
    requests = [{"request_id": uid(), "requester": "alice", "title": "t", "amount": 5000, "approvers": ["bob"]}
                for _ in range(2)]  # fmt: skip
    try:
        for request in requests:
            start(flowctl, "approval", request, env=env)
            wait_for(flowctl, f"approval-{request['request_id']}", "status", "awaiting_decision", env)
        voted = flowctl("approve", f"approval-{requests[0]['request_id']}", "--as", "bob", "--timeout", "0", env=env)
        assert voted.code == 0, str(voted)
    finally:
        assert stop_process(worker) == 0
    # No worker: Ctrl-C while the vote waits for one is one line, not a traceback.
    proc = subprocess.Popen([FLOWCTL, "approve", f"approval-{requests[1]['request_id']}", "--as", "bob"],
                            env={**flowctl.env, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and len(err.splitlines()) == 1 and "Traceback" not in err, (out, err)
    assert "decision" in err, err


def test_a_cancel_that_reaches_an_order_just_ended_says_so_instead_of_requested(
    flowctl: Cli, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server accepts, and drops, a cancel of a workflow that has just closed: a cancel
    that found the order running and reached it closed must not say "requested" (exit 0)
    while the order ended compensated, charge and all as before. The race is made certain
    here by a describe that still says running."""
    import dataclasses
    import io

    from flowctl.cli import run
    from flowctl.ops import runs
    from flowctl.output import Streams

    order = start(flowctl, "order", order_input(uid(), card="tok_declined"))["workflow_id"]
    result(flowctl, order, code=10)
    described = runs.describe

    async def stale(client: Any, workflow_id: str) -> runs.Description:
        return dataclasses.replace(await described(client, workflow_id), status="running")

    monkeypatch.setattr(runs, "require_running", stale)
    for key, value in stack.cli.env.items():
        monkeypatch.setenv(key, value)
    err = io.StringIO()
    code = run(["cancel", order, "--reason", "too late"], Streams(stdout=io.StringIO(), stderr=err))
    assert code == 4 and "ended completed before the cancel reached it" in err.getvalue(), err.getvalue()
    assert result(flowctl, order, code=10)["status"] == "compensated"
