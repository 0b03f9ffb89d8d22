"""History is standard and replayable; flowctl and the Temporal CLI work on each other's workflows."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

from conftest import FLOWCTL, TEMPORAL, Cli, Stack, order_input, uid
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from flowctl.connect import data_converter
from flowctl_workflows.order import OrderWorkflow


def replay(history: WorkflowHistory) -> None:
    replayer = Replayer(workflows=[OrderWorkflow], data_converter=data_converter())
    result = asyncio.run(replayer.replay_workflow(history, raise_on_replay_failure=False))
    assert result.replay_failure is None, result.replay_failure


def temporal_show(stack: Stack, workflow_id: str) -> dict[str, object]:
    proc = subprocess.run(
        [TEMPORAL, "workflow", "show", "-w", workflow_id, "--address", stack.address, "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_history_json_replays_and_matches_the_temporal_cli(flowctl: Cli, stack: Stack) -> None:
    for card in ("tok_visa", "tok_declined"):
        order_id = uid()
        wid = f"order-{order_id}"
        flowctl("start", "order", "-i", json.dumps(order_input(order_id, card=card)), "--wait")
        run = flowctl("history", wid, "-o", "json")
        assert run.code == 0, str(run)
        document = json.loads(run.stdout)
        replay(WorkflowHistory.from_json(wid, run.stdout))
        theirs = temporal_show(stack, wid)
        assert [(e["eventId"], e["eventType"]) for e in document["events"]] == [
            (e["eventId"], e["eventType"])
            for e in theirs["events"]  # type: ignore[attr-defined]
        ]
        assert document == theirs


def test_history_jsonl_and_text(flowctl: Cli) -> None:
    order_id = uid()
    wid = f"order-{order_id}"
    flowctl("start", "order", "-i", json.dumps(order_input(order_id, card="tok_declined")), "--wait")
    lines = flowctl("history", wid, "-o", "jsonl").stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert events[0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    text = flowctl("history", wid).stdout
    for name in (
        "inventory.reserve",
        "payment.charge",
        "payment.refund",
        "inventory.release",
        "WorkflowExecutionCompleted",
    ):
        assert name in text
    assert "\x1b[" not in text


def test_history_follow_streams_until_close(flowctl: Cli) -> None:
    order_id = uid()
    wid = f"order-{order_id}"
    assert flowctl("start", "order", "-i", json.dumps(order_input(order_id, price=1500.0))).code == 0
    follower = subprocess.Popen(
        [FLOWCTL, "history", wid, "--follow", "-o", "jsonl"], stdout=subprocess.PIPE, text=True, env=flowctl.env
    )
    assert follower.stdout is not None
    seen = []
    for line in follower.stdout:
        event = json.loads(line)
        seen.append(event["eventType"])
        if event["eventType"] == "EVENT_TYPE_TIMER_STARTED":
            # The workflow now waits for review: decide it while the follower is attached.
            sent = flowctl("signal", wid, "review", "--set", "decision=approve", "--set", "reviewer=ops")
            assert sent.code == 0, str(sent)
    assert follower.wait(timeout=60) == 0
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED" in seen
    assert seen[-1] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


def test_workflow_started_by_temporal_cli_is_run_by_flowctl_worker(flowctl: Cli, stack: Stack) -> None:
    order_id = uid()
    wid = f"cli-{order_id}"
    proc = subprocess.run(
        [
            TEMPORAL, "workflow", "start",
            "--type", "Order", "--task-queue", stack.task_queue, "--workflow-id", wid,
            "--address", stack.address,
            "-i", json.dumps(order_input(order_id)),
        ],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = flowctl("result", wid, "--timeout", "60s", "-o", "json")
    assert result.code == 0, str(result)
    assert result.json()["result"]["order_id"] == order_id
    status = flowctl("query", wid, "-o", "json")
    assert status.code == 0, str(status)
    assert status.json()["outcome"] == "completed"
    assert status.json()["completed_steps"][-1] == "send_confirmation"
    described = flowctl("describe", wid, "-o", "json").json()
    assert described["kind"] == "order"  # the workflow set its own search attributes


def test_history_text_is_readable(flowctl: Cli) -> None:
    order_id = uid()
    wid = f"order-{order_id}"
    assert flowctl("start", "order", "-i", json.dumps(order_input(order_id, card="tok_flaky", price=1500.0))).code == 0
    deadline = time.monotonic() + 30
    while "awaiting_review" not in flowctl("query", wid).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert flowctl("signal", wid, "review", "--set", "decision=approve", "--set", "reviewer=maria").code == 0
    assert flowctl("result", wid, "--timeout", "30s").code == 0
    text = flowctl("history", wid).stdout
    lines = text.splitlines()
    assert lines[0].split()[1] == "+0s" and "Order {" in lines[0]  # relative times, the input summarised
    assert "payment.charge attempt 3" in text  # the flaky card's retries
    assert "(last failure: payment.charge: card network timeout (tok_flaky))" in text
    assert any("TimerStarted" in line and "1d timer" in line for line in lines)
    signal = next(line for line in lines if "WorkflowExecutionSignaled" in line)
    assert 'review {"decision":"approve","reviewer":"maria"' in signal and " from " in signal
    assert any("ActivityTaskCompleted" in line and "payment.charge →" in line and "charge_id" in line for line in lines)
    iso = flowctl("history", wid, "--time-format", "iso").stdout.splitlines()
    assert iso[0].split()[1].endswith("Z") and iso[0].split()[1][:4].isdigit()
    assert flowctl("history", wid, "--time-format", "weekday").code == 2


def test_history_shows_updates_with_their_sender(flowctl: Cli) -> None:
    request_id = uid()
    data = {"request_id": request_id, "requester": "alice", "title": "t", "amount": 5000, "approvers": ["bob"]}
    wid = f"approval-{request_id}"
    assert flowctl("start", "approval", "-i", json.dumps(data)).code == 0
    deadline = time.monotonic() + 30
    while flowctl("approve", wid, "--as", "bob").code != 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert flowctl("result", wid).code == 0
    text = flowctl("history", wid).stdout
    accepted = next(line for line in text.splitlines() if "WorkflowExecutionUpdateAccepted" in line)
    assert 'decide {"approver":"bob","decision":"approve"' in accepted and " from " in accepted
    assert any("WorkflowExecutionUpdateCompleted" in line and "→" in line for line in text.splitlines())
